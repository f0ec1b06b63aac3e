//! The process runtime: spawn a replica's argv in its own process group,
//! watch it through a pidfd, stop its whole tree, reap only what we own.
//!
//! Rules kept here (DESIGN §6):
//! - each replica runs in its own process group; the daemon is a child
//!   subreaper, so escaped descendants are re-parented to it;
//! - a replica's leader is reaped only by its own run task, after every
//!   signal to its group was sent (a zombie leader keeps the group id
//!   reserved, so a group signal can never reach a stranger);
//! - orphans (re-parented descendants) are reaped by [`reap_orphans`], which
//!   skips every pid in the [`Leaders`] set;
//! - stop = stop signal + SIGCONT to the group and to escapees, then SIGKILL
//!   at the deadline; escapees are signalled through pidfds opened and then
//!   checked against the start time we saw, so a reused pid is never hit.

use std::collections::HashSet;
use std::os::fd::{AsFd, OwnedFd};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rustix::process::{Pid, PidfdFlags, Signal, WaitId, WaitIdOptions};
use tokio::sync::mpsc;

use crate::daemon::procfs;

/// Pids of live replica leaders: owned by their run tasks, never reaped by
/// the orphan reaper. The lock also orders spawn against orphan reaping.
/// Process-wide, like the subreaper flag it goes with: two supervisors in
/// one process (tests) must not reap each other's leaders.
pub type Leaders = &'static Mutex<HashSet<i32>>;

/// The process-wide leader set.
pub fn leaders() -> Leaders {
    static LEADERS: std::sync::OnceLock<Mutex<HashSet<i32>>> = std::sync::OnceLock::new();
    LEADERS.get_or_init(|| Mutex::new(HashSet::new()))
}

/// A child the daemon waits for itself (a probe, a notifier command): its
/// pid stays in the leader set while the claim lives, so the orphan reaper
/// never reaps it first (which would leave its waiter an ECHILD) and no
/// run counts it as one of its processes.
pub struct Claimed(Option<i32>);

impl Drop for Claimed {
    fn drop(&mut self) {
        if let Some(pid) = self.0
            && let Ok(mut l) = leaders().lock()
        {
            l.remove(&pid);
        }
    }
}

/// Spawns `cmd` claimed (see [`Claimed`]): the set's lock is held across
/// the spawn, so the reaper cannot see the pid before it is in the set.
/// Keep the claim until the child has been waited for.
pub fn spawn_claimed(
    cmd: &mut tokio::process::Command,
) -> std::io::Result<(tokio::process::Child, Claimed)> {
    let mut guard = leaders()
        .lock()
        .map_err(|_| std::io::Error::other("process table poisoned"))?;
    let child = cmd.spawn()?;
    let pid = child.id().map(|p| p as i32);
    if let Some(pid) = pid {
        guard.insert(pid);
    }
    Ok((child, Claimed(pid)))
}

/// [`spawn_claimed`] for a blocking caller.
pub fn spawn_std_claimed(
    cmd: &mut std::process::Command,
) -> std::io::Result<(std::process::Child, Claimed)> {
    let mut guard = leaders()
        .lock()
        .map_err(|_| std::io::Error::other("process table poisoned"))?;
    let child = cmd.spawn()?;
    let pid = child.id() as i32;
    guard.insert(pid);
    Ok((child, Claimed(Some(pid))))
}

/// Runs `cmd` to its end and returns its output, claimed from the orphan
/// reaper like [`spawn_claimed`] (blocking: for a blocking thread).
pub fn output_claimed(cmd: &mut std::process::Command) -> std::io::Result<std::process::Output> {
    let child = {
        let mut guard = leaders()
            .lock()
            .map_err(|_| std::io::Error::other("process table poisoned"))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        guard.insert(child.id() as i32);
        child
    };
    let _claim = Claimed(Some(child.id() as i32));
    child.wait_with_output()
}

/// Identifies the descendants of one run of a replica through their
/// environment. The run id differs for every spawn, so the cleanup of run
/// N never mistakes the processes of run N+1 (which carry the same context
/// dir and replica index) for its leftovers.
#[derive(Debug, Clone)]
pub struct Marker {
    pub context_dir: String,
    pub replica: String,
    /// `AUTONOMOS_RUN`: unique per spawn in this daemon's life.
    pub run: String,
}

impl Marker {
    fn pairs(&self) -> [(&str, &str); 3] {
        [
            ("AUTONOMOS_CONTEXT_DIR", &self.context_dir),
            ("AUTONOMOS_REPLICA", &self.replica),
            ("AUTONOMOS_RUN", &self.run),
        ]
    }
}

/// Prepares the daemon process itself: subreaper, and no fd of ours leaks
/// into an agent (everything above 2 becomes close-on-exec).
pub fn prepare_daemon() -> std::io::Result<()> {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))?;
    mark_fds_cloexec();
    Ok(())
}

/// Sets FD_CLOEXEC on every open descriptor above 2. Descriptors we open
/// later are close-on-exec already (std and tokio open with O_CLOEXEC).
pub fn mark_fds_cloexec() {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // The fd may be the read_dir handle, now closed: errors are harmless.
        let _ = crate::daemon::sys::set_cloexec(fd);
    }
}

/// Orders from the supervisor to a run task.
#[derive(Debug, Clone, Copy)]
pub enum RunCmd {
    /// Graceful stop: `signal` + SIGCONT now, SIGKILL after `timeout`.
    /// `hangup`: SIGHUP first, as a closing terminal would (tty agents:
    /// interactive shells ignore SIGTERM).
    Stop {
        signal: i32,
        timeout: Duration,
        hangup: bool,
    },
    /// SIGKILL the tree now.
    Kill,
}

pub use crate::core::supervise::RunEvent;

/// A process we found in a replica's tree, identified by pid and start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Member {
    pub(crate) pid: i32,
    pub(crate) start: u64,
    pub(crate) pgid: i32,
}

/// Finds the run's processes: the leader's live tree, plus re-parented
/// orphans of ours (not leaders) that carry the run's marker or its
/// process group, with their trees. An orphan that started before the run
/// (`born`, the leader's start time in clock ticks) is never the run's.
fn discover(
    leader: i32,
    pgid: i32,
    marker: &Marker,
    born: u64,
    leaders: Leaders,
    gone: bool,
) -> Vec<Member> {
    let mut pids = Vec::new();
    // Once reaped, the leader's pid may belong to a stranger; once exited,
    // its children are ours: never walk it then.
    if !gone {
        procfs::tree(leader, &mut pids);
    }
    let mut ours = Vec::new();
    procfs::orphans(&mut ours);
    if let Ok(set) = leaders.lock() {
        ours.retain(|c| !set.contains(c));
    }
    for child in ours {
        if pids.contains(&child) {
            continue;
        }
        let Some(st) = procfs::stat(child) else {
            continue;
        };
        if st.start_ticks < born {
            continue;
        }
        if st.pgid == pgid || procfs::environ_has(child, &marker.pairs()) {
            procfs::tree(child, &mut pids);
        }
    }
    let mut seen = HashSet::new();
    pids.into_iter()
        .filter(|&p| p != leader && seen.insert(p))
        .filter_map(procfs::stat)
        .filter(|s| s.state != b'Z')
        .map(|s| Member {
            pid: s.pid,
            start: s.start_ticks,
            pgid: s.pgid,
        })
        .collect()
}

pub(crate) fn alive(m: &Member) -> bool {
    procfs::stat(m.pid).is_some_and(|s| s.start_ticks == m.start && s.state != b'Z')
}

/// Signals one process through a pidfd checked against its start time.
pub(crate) fn signal_member(m: &Member, sig: Signal) {
    let Some(pid) = Pid::from_raw(m.pid) else {
        return;
    };
    let Ok(fd) = rustix::process::pidfd_open(pid, PidfdFlags::empty()) else {
        return;
    };
    // The pidfd now pins one process; make sure it is the one we saw.
    if procfs::stat(m.pid).is_some_and(|s| s.start_ticks == m.start) {
        let _ = rustix::process::pidfd_send_signal(fd.as_fd(), sig);
    }
}

fn signal_of(n: i32) -> Signal {
    Signal::from_named_raw(n).unwrap_or(Signal::TERM)
}

/// Signals the group (its leader is unreaped, so the id is still ours) and
/// every member outside it.
fn signal_tree(pgid: i32, members: &[Member], sig: Signal) {
    if let Some(g) = Pid::from_raw(pgid) {
        let _ = rustix::process::kill_process_group(g, sig);
    }
    for m in members.iter().filter(|m| m.pgid != pgid) {
        signal_member(m, sig);
    }
}

/// Watches one leader until it and its leftovers are gone.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    spawned_pid: i32,
    pidfd: OwnedFd,
    (started, born): (Instant, u64),
    marker: Marker,
    stop_signal: i32,
    stop_timeout: Duration,
    leaders: Leaders,
    mut cmds: mpsc::Receiver<RunCmd>,
    report: impl Fn(RunEvent) + Send + 'static,
) {
    let tree = Tree {
        leader: spawned_pid,
        born,
        marker,
        leaders,
        stop_signal: signal_of(stop_signal),
    };
    let afd = match crate::daemon::sys::watch_fd(pidfd) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(pid = spawned_pid, error = %e, "cannot watch pidfd; falling back to polling");
            return poll_fallback(spawned_pid, started, leaders, report).await;
        }
    };
    let mut stop = Stop::default();
    tree.watch(&afd, &mut cmds, &mut stop).await;
    // The leader is a zombie: its group id is still reserved. Deal with the
    // rest of the tree before reaping it. Its children are ours by now
    // (re-parented when it exited), so it is not walked.
    let leftovers = tree.members(true);
    if !leftovers.is_empty() {
        tree.signal(&leftovers, stop.signal(&tree));
        tree.signal(&leftovers, Signal::CONT);
        if stop.deadline.is_none() && !stop.killed {
            stop.deadline = Some(tokio::time::Instant::now() + stop_timeout);
            stop.sent = Some(Instant::now());
        }
    }
    let (code, signal) = tree.reap(&afd);
    report(RunEvent::Exited {
        code,
        signal,
        ran: started.elapsed(),
        tree_gone: leftovers.is_empty(),
        killed_after: stop.killed_after,
    });
    if leftovers.is_empty() {
        // The actor restarts the replica first; the pidfd's deregistration
        // and close (two system calls) wait until then.
        tokio::task::yield_now().await;
        drop(afd);
        return;
    }
    let killed_after = tree.drain(leftovers, &mut stop).await;
    report(RunEvent::TreeGone { killed_after });
}

/// One run's process tree: its leader (and group), and how to tell its
/// members from strangers.
struct Tree {
    leader: i32,
    born: u64,
    marker: Marker,
    leaders: Leaders,
    stop_signal: Signal,
}

/// How a stop went so far.
#[derive(Default)]
struct Stop {
    stopping: bool,
    killed: bool,
    /// SIGKILL is due then.
    deadline: Option<tokio::time::Instant>,
    /// When the stop signal went out.
    sent: Option<Instant>,
    /// How long after the stop signal SIGKILL was needed.
    killed_after: Option<Duration>,
}

impl Stop {
    /// What a straggler gets now.
    fn signal(&self, tree: &Tree) -> Signal {
        if self.killed {
            Signal::KILL
        } else {
            tree.stop_signal
        }
    }
}

impl Tree {
    /// The tree's live members (`gone`: the leader exited, so its children
    /// are ours now, or was reaped, so its pid may be a stranger's: it is
    /// not walked).
    fn members(&self, gone: bool) -> Vec<Member> {
        discover(
            self.leader,
            self.leader,
            &self.marker,
            self.born,
            self.leaders,
            gone,
        )
    }

    fn signal(&self, members: &[Member], sig: Signal) {
        signal_tree(self.leader, members, sig);
    }

    /// Until the leader exits: stop and kill commands, and SIGKILL at the
    /// stop deadline.
    async fn watch(
        &self,
        afd: &tokio::io::unix::AsyncFd<OwnedFd>,
        cmds: &mut mpsc::Receiver<RunCmd>,
        stop: &mut Stop,
    ) {
        let mut cmds_open = true;
        loop {
            tokio::select! {
                ready = afd.readable() => {
                    if let Ok(mut g) = ready { g.retain_ready(); }
                    return;
                }
                cmd = cmds.recv(), if cmds_open => match cmd {
                    Some(RunCmd::Stop { signal, timeout, hangup }) if !stop.stopping => {
                        stop.stopping = true;
                        let members = self.members(false);
                        if hangup {
                            self.signal(&members, Signal::HUP);
                        }
                        self.signal(&members, signal_of(signal));
                        self.signal(&members, Signal::CONT);
                        stop.deadline = Some(tokio::time::Instant::now() + timeout);
                        stop.sent = Some(Instant::now());
                    }
                    Some(RunCmd::Stop { .. }) => {}
                    Some(RunCmd::Kill) => {
                        self.signal(&self.members(false), Signal::KILL);
                        stop.killed = true;
                    }
                    None => cmds_open = false,
                },
                _ = sleep_until_opt(stop.deadline) => {
                    self.signal(&self.members(false), Signal::KILL);
                    stop.killed = true;
                    stop.killed_after = stop.sent.map(|t| t.elapsed());
                    stop.deadline = None;
                }
            }
        }
    }

    /// Reaps the leader (under the leader-set lock, so the orphan reaper
    /// never takes it): (exit code, signal).
    fn reap(&self, afd: &tokio::io::unix::AsyncFd<OwnedFd>) -> (Option<i32>, Option<i32>) {
        let status = {
            let guard = self.leaders.lock();
            let status = rustix::process::waitid(
                WaitId::PidFd(afd.get_ref().as_fd()),
                WaitIdOptions::EXITED | WaitIdOptions::NOHANG,
            );
            if let Ok(mut g) = guard {
                g.remove(&self.leader);
            }
            status
        };
        match status {
            Ok(Some(s)) => (s.exit_status(), s.terminating_signal()),
            _ => (None, None),
        }
    }

    /// Waits for the leftovers; SIGKILL at the deadline. Re-discovers, so
    /// that processes forked during the stop are caught too. Returns how
    /// long after the stop signal SIGKILL was needed, if it was.
    async fn drain(&self, mut leftovers: Vec<Member>, stop: &mut Stop) -> Option<Duration> {
        let mut killed_after = None;
        loop {
            leftovers.retain(alive);
            for m in self.members(true) {
                if !leftovers.contains(&m) {
                    signal_member(&m, stop.signal(self));
                    leftovers.push(m);
                }
            }
            if leftovers.is_empty() {
                return killed_after;
            }
            if let Some(d) = stop.deadline
                && tokio::time::Instant::now() >= d
            {
                for m in &leftovers {
                    signal_member(m, Signal::KILL);
                }
                stop.killed = true;
                killed_after = stop.sent.map(|t| t.elapsed());
                stop.deadline = None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn poll_fallback(pid: i32, started: Instant, leaders: Leaders, report: impl Fn(RunEvent)) {
    let Some(p) = Pid::from_raw(pid) else { return };
    loop {
        let status = {
            let guard = leaders.lock();
            let s = rustix::process::waitpid(Some(p), rustix::process::WaitOptions::NOHANG);
            if let (Ok(Some(_)), Ok(mut g)) = (&s, guard) {
                g.remove(&pid);
            }
            s
        };
        match status {
            Ok(Some((_, st))) => {
                report(RunEvent::Exited {
                    code: st.exit_status(),
                    signal: st.terminating_signal(),
                    ran: started.elapsed(),
                    tree_gone: true,
                    killed_after: None,
                });
                return;
            }
            Ok(None) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(_) => return,
        }
    }
}

/// Reaps exited children that are not replica leaders; returns how many.
pub fn reap_orphans(leaders: Leaders) -> usize {
    // No child exited: no need to list hundreds of children (costly).
    use rustix::process::{WaitId, WaitIdOptions, waitid};
    if let Ok(None) = waitid(
        WaitId::All,
        WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT,
    ) {
        return 0;
    }
    let Ok(guard) = leaders.lock() else { return 0 };
    let mut kids = Vec::new();
    procfs::own_children(&mut kids);
    let mut reaped = 0;
    for pid in kids {
        if guard.contains(&pid) {
            continue;
        }
        let Some(p) = Pid::from_raw(pid) else {
            continue;
        };
        if let Ok(Some(_)) = rustix::process::waitpid(Some(p), rustix::process::WaitOptions::NOHANG)
        {
            reaped += 1;
        }
    }
    reaped
}
