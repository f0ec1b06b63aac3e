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
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::Instant;

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
        std::thread::Builder::new()
            .name("autonomos-spawn".into())
            .spawn(move || spawner(send, job_rx, told))
            .ok()?;
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

/// The spawner thread: spawns each job in its own descriptor table and
/// sends the new descriptors on `send`, then tells `told` how it went.
fn spawner(
    send: OwnedFd,
    jobs: std::sync::mpsc::Receiver<Job>,
    told: std::sync::mpsc::Sender<Told>,
) {
    if let Err(e) = crate::daemon::sys::private_fd_table(send.as_fd()) {
        // Spawns still work; each child inherits the daemon's table.
        tracing::warn!(error = %e, "the spawner shares the daemon's descriptor table");
    }
    while let Ok(job) = jobs.recv() {
        let result = spawn(&job, launch::spawn_piped).and_then(|s| hand_over(&send, job.run_id, s));
        if told.send(Told { job, result }).is_err() {
            break;
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
        let result = result.and_then(|meta| receive(&recv, job.run_id, meta));
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
    let lost = |why: String| {
        // Its pidfd and pipes are lost: kill it by pid, which is still
        // ours (in the leader set, unreaped).
        launch::kill_pid(pid, process::leaders());
        why
    };
    match got {
        Ok(m) if m.bytes == 8 && u64::from_le_bytes(id) == run_id => {}
        Ok(_) => return Err(lost(format!("descriptors of run {run_id} out of order"))),
        Err(e) => {
            return Err(lost(format!(
                "cannot receive the new process's descriptors: {e}"
            )));
        }
    }
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
