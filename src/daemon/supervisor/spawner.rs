//! The spawner: a thread with a descriptor table of its own that starts
//! replicas' processes for the actor, in the order it is given them.
//!
//! Two costs came with spawning on the actor. A spawn holds its caller
//! until the child has called `execve` (std spawns with vfork semantics),
//! and the actor's own work for each replica came on top of that wait.
//! And every child got a copy of the daemon's descriptor table (a pidfd
//! and two pipes per replica, the collector's `/proc` handles), copied at
//! the spawn and closed again at the child's `execve`: with 500 replicas,
//! 1,500 descriptors and more per spawn, which doubled a child's time
//! from spawn to `execve`.
//!
//! The spawner unshares its descriptor table once (closing its copies),
//! so its children inherit a handful of descriptors. It makes the pipes
//! and the pidfd in its table and hands them over through a socket
//! (`SCM_RIGHTS`) to a receiving thread in the daemon's table, which
//! passes them to the actor. The actor hands it every spawn but the first
//! of a reconcile pass (a lone restart does not pay for the hand-off) and
//! those of `tty` agents (their terminal joins the runtime at once), and
//! goes on preparing the next while the spawner waits on a child.
//!
//! Until its result is in, the replica stays in ContextPreparation, which
//! no request moves (it waits the same way for a git worktree).

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::Instant;

use rustix::io::Errno;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use tokio::sync::mpsc;

use super::actor::Msg;
use crate::daemon::launch::{self, SpawnSpec, Spawned, Started};
use crate::daemon::process::{self, Leaders};

/// One replica to start.
pub(super) struct Job {
    pub ai: usize,
    pub index: u32,
    pub run_id: u64,
    pub spec: SpawnSpec,
    /// Its context dir, and whether it was made ahead (then, should the
    /// spawn fail with the dir gone, it is made and the spawn tried once
    /// more).
    pub ctx: PathBuf,
    pub made_ahead: bool,
}

/// A job the spawner did, with the started process's descriptors, now in
/// the daemon's table.
pub(super) struct Done {
    pub job: Job,
    pub result: Result<Started, String>,
}

/// What the spawner tells the receiving thread, beside the descriptors
/// (which go through the socket, in the same order).
struct Told {
    job: Job,
    result: Result<(i32, Instant, u64, bool), String>,
}

/// The actor's end of the spawner.
pub(super) struct Spawner {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl Spawner {
    /// Starts the spawner and its receiving thread; they answer on
    /// `actor`. `None` when they cannot be made: the actor then spawns
    /// every replica itself.
    pub fn start(actor: mpsc::Sender<Msg>) -> Option<Spawner> {
        let (send, recv) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .ok()?;
        let (jobs, job_rx) = std::sync::mpsc::channel::<Job>();
        let (told, told_rx) = std::sync::mpsc::channel::<Told>();
        let (ready, is_ready) = std::sync::mpsc::channel::<bool>();
        let keep = send.as_raw_fd();
        std::thread::Builder::new()
            .name("autonomos-spawn".into())
            .spawn(move || match crate::daemon::sys::private_fd_table(keep) {
                Ok(send) => {
                    // In SCHED_OTHER, unlike the rest of the daemon: a start
                    // of many replicas goes at the rate this thread takes the
                    // CPU back from each child at its `execve`.
                    if crate::daemon::sys::agents_normal_scheduling() {
                        let _ = crate::daemon::sys::normal_scheduling();
                    }
                    let _ = ready.send(true);
                    spawner(send, job_rx, told);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "no spawner thread: the supervisor spawns every replica");
                    let _ = ready.send(false);
                }
            })
            .ok()?;
        // The spawner has its own copy of `send` now; this one goes.
        if is_ready.recv() != Ok(true) {
            return None;
        }
        drop(send);
        std::thread::Builder::new()
            .name("autonomos-spawned".into())
            .spawn(move || receiver(recv, told_rx, actor))
            .ok()?;
        Some(Spawner { jobs })
    }

    /// Queues `job`; gives it back if the spawner is gone.
    pub fn send(&self, job: Job) -> Result<(), Box<Job>> {
        self.jobs.send(job).map_err(|e| Box::new(e.0))
    }
}

/// Spawns the job's process with `how` (where the caller runs: the
/// spawner or the actor), once more after making a context dir made ahead
/// and gone since.
pub(super) fn spawn<T>(
    job: &Job,
    how: impl Fn(&SpawnSpec, Leaders) -> Result<T, String>,
) -> Result<T, String> {
    let mut spawned = how(&job.spec, process::leaders());
    if job.made_ahead && spawned.is_err() && !job.ctx.is_dir() {
        spawned = std::fs::create_dir_all(&job.ctx)
            .map_err(|e| format!("cannot create context dir {}: {e}", job.ctx.display()))
            .and_then(|()| how(&job.spec, process::leaders()));
    }
    spawned
}

/// The spawner thread (in its own descriptor table): spawns each job and
/// sends the new descriptors on `send`, then tells `told` how it went.
fn spawner(
    send: OwnedFd,
    jobs: std::sync::mpsc::Receiver<Job>,
    told: std::sync::mpsc::Sender<Told>,
) {
    while let Ok(job) = jobs.recv() {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            spawn(&job, launch::spawn_piped).and_then(|s| hand_over(&send, job.run_id, s))
        }))
        .unwrap_or_else(|_| Err("the spawner failed (a bug; see the daemon log)".into()));
        if let Err(std::sync::mpsc::SendError(Told {
            result: Ok(meta), ..
        })) = told.send(Told { job, result })
        {
            // Nobody would receive it (the daemon is ending).
            launch::kill_pid(meta.0, process::leaders());
        }
    }
}

/// Sends a started process's descriptors (pidfd, stdout, stderr, stdin)
/// with its run id; on failure the process is killed (nobody could watch
/// it). The spawner's copies close on return.
fn hand_over(send: &OwnedFd, run_id: u64, s: Started) -> Result<(i32, Instant, u64, bool), String> {
    let mut fds: Vec<BorrowedFd<'_>> = vec![s.pidfd.as_fd(), s.stdout.as_fd(), s.stderr.as_fd()];
    if let Some(stdin) = &s.stdin {
        fds.push(stdin.as_fd());
    }
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let sent = control.push(SendAncillaryMessage::ScmRights(&fds))
        && rustix::net::sendmsg(
            send,
            &[IoSlice::new(&run_id.to_le_bytes())],
            &mut control,
            SendFlags::empty(),
        )
        .is_ok();
    drop(fds);
    let meta = (s.pid, s.started, s.born, s.stdin.is_some());
    if !sent {
        launch::kill_started(s, process::leaders());
        return Err("cannot hand the new process's descriptors to the daemon".into());
    }
    Ok(meta)
}

/// The receiving thread (in the daemon's table): pairs what the spawner
/// told with the descriptors it sent, and passes the result to the actor.
fn receiver(recv: OwnedFd, told: std::sync::mpsc::Receiver<Told>, actor: mpsc::Sender<Msg>) {
    while let Ok(Told { job, result }) = told.recv() {
        let result = result.and_then(|meta| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                receive(&recv, job.run_id, meta)
            }))
            .unwrap_or_else(|_| {
                launch::kill_pid(meta.0, process::leaders());
                Err("the spawner failed (a bug; see the daemon log)".into())
            })
        });
        let done = Box::new(Done { job, result });
        if let Err(mpsc::error::SendError(Msg::Spawned(done))) =
            actor.blocking_send(Msg::Spawned(done))
            && let Ok(s) = done.result
        {
            // The actor is gone (the daemon is ending): no child may
            // outlive it unsupervised.
            launch::kill_started(s, process::leaders());
        }
    }
}

/// The descriptors of run `run_id`, as the spawner sent them.
fn receive(
    recv: &OwnedFd,
    run_id: u64,
    (pid, started, born, has_stdin): (i32, Instant, u64, bool),
) -> Result<Started, String> {
    let lost = |why: String| {
        // Its pidfd and pipes are lost: kill it by pid, which is still
        // ours (in the leader set, unreaped).
        launch::kill_pid(pid, process::leaders());
        why
    };
    let mut tries = 0;
    let mut fds = loop {
        let mut id = [0u8; 8];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let got = rustix::net::recvmsg(
            recv,
            &mut [IoSliceMut::new(&mut id)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        );
        let mut fds: Vec<OwnedFd> = Vec::with_capacity(4);
        for msg in control.drain() {
            if let RecvAncillaryMessage::ScmRights(rights) = msg {
                fds.extend(rights);
            }
        }
        match got {
            Ok(m) if m.bytes == 8 && u64::from_le_bytes(id) == run_id => break fds,
            // An earlier run's, whose receipt failed (its process was
            // killed then): dropped, and the next read.
            Ok(m) if m.bytes == 8 && u64::from_le_bytes(id) < run_id => continue,
            Ok(_) => return Err(lost(format!("descriptors of run {run_id} out of order"))),
            Err(e) if tries < 100 && matches!(e, Errno::INTR | Errno::AGAIN | Errno::NOMEM) => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(e) => {
                return Err(lost(format!(
                    "cannot receive the new process's descriptors: {e}"
                )));
            }
        }
    };
    let want = if has_stdin { 4 } else { 3 };
    if fds.len() != want {
        return Err(lost(format!(
            "{} descriptors received, {want} sent",
            fds.len()
        )));
    }
    let stdin = has_stdin.then(|| fds.pop()).flatten();
    let mut it = fds.into_iter();
    match (it.next(), it.next(), it.next()) {
        (Some(pidfd), Some(stdout), Some(stderr)) => Ok(Started {
            pid,
            pidfd,
            stdout,
            stderr,
            stdin,
            started,
            born,
        }),
        _ => Err(lost("descriptors missing".into())),
    }
}

/// A spawner result in the actor (in the runtime): the pipes join it.
pub(super) fn finish(done: Done) -> (Job, Result<Spawned, String>) {
    let result = done.result.and_then(|s| s.into_spawned(process::leaders()));
    (done.job, result)
}
