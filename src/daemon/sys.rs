//! The only `unsafe` in Autonomos: calls whose safety rests on fd
//! ownership the compiler cannot see (a pidfd's registration, a flag on a
//! descriptor known by number, the spawner's own descriptor table), and
//! the password database lookup (libc's `getpwuid_r`, so NSS sources such
//! as LDAP answer too).
//! Everything else goes through rustix's safe wrappers.
#![allow(unsafe_code)]

use std::os::fd::{BorrowedFd, OwnedFd};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// Registers a pidfd with the reactor, to learn when the process exits.
pub fn watch_fd(fd: OwnedFd) -> std::io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: an OwnedFd stays open and names the same file description
    // until it is dropped, and the AsyncFd owns it for its whole life.
    unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.map_err(|e| e.into_parts().1)
}

/// Sets FD_CLOEXEC on a descriptor known only by number.
pub fn set_cloexec(fd: i32) -> std::io::Result<()> {
    // SAFETY: the borrow lives only for the two fcntl calls; if the number
    // was closed meanwhile, fcntl fails with EBADF and nothing else happens.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let flags = rustix::io::fcntl_getfd(borrowed)?;
    rustix::io::fcntl_setfd(borrowed, flags | rustix::io::FdFlags::CLOEXEC)?;
    Ok(())
}

/// The user name of `uid` from the password database, if it has one.
pub fn user_name(uid: u32) -> Option<String> {
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; `buf` outlives the
    // read of `pw.pw_name`, which points into it.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) };
    if rc != 0 || out.is_null() || pw.pw_name.is_null() {
        return None;
    }
    // SAFETY: getpwuid_r succeeded, so pw_name is a NUL-terminated string in `buf`.
    let name = unsafe { std::ffi::CStr::from_ptr(pw.pw_name) };
    let name = name.to_string_lossy().into_owned();
    (!name.is_empty()).then_some(name)
}

/// Gives the calling thread a descriptor table of its own: a copy of the
/// process's, in which every descriptor above 2 but `keep` is then closed.
/// What the thread opens afterwards exists in its table only, and a child
/// it spawns inherits that small table, not the daemon's thousands of
/// pipes and pidfds (each one copied at the spawn and closed again at the
/// child's `execve`).
///
/// For the spawner thread only, called first thing: it must never use a
/// descriptor made before this call (but `keep` and 0-2), nor hand a
/// descriptor of its table to another thread except through `SCM_RIGHTS`.
///
/// Every signal is blocked in the thread first: a handler (tokio's, for
/// SIGTERM, and for SIGCHLD once a `tokio::process` child was dropped
/// before its end) writes to a descriptor of the process's table by
/// number, and run on this thread it would write into this table, where
/// that number is closed, and the signal would be lost. The thread's
/// children do not inherit the mask: [`posix_spawn`] gives them an empty
/// one (std's `Command` would pass this one on).
///
/// `keep` is a descriptor number open in the process's table and owned
/// there by the caller of [`crate::daemon::supervisor`]'s spawner start,
/// which closes it once told this returned: the returned descriptor is the
/// thread's own copy.
pub fn private_fd_table(keep: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: `set` is a valid sigset_t for both calls; the old mask is
    // not asked for.
    let blocked = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set) == 0
            && libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) == 0
    };
    if !blocked {
        return Err(std::io::Error::other("cannot block signals in the spawner"));
    }
    // SAFETY: (rustix: threads must never observe descriptors from an
    // unshared table.) The calling thread holds no descriptor but `keep`,
    // and passes none to other threads by number (see above).
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::FILES) }?;
    let copies: Vec<i32> = std::fs::read_dir("/proc/thread-self/fd")?
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .filter(|&fd| fd > 2 && fd != keep)
        .collect();
    for fd in copies {
        // SAFETY: these numbers are copies in this thread's own table,
        // owned by no object this thread uses (objects on other threads use
        // the process's table, where their descriptors stay open), and no
        // other thread uses this table. The directory handle among them is
        // closed already: it is skipped.
        let open = rustix::io::fcntl_getfd(unsafe { BorrowedFd::borrow_raw(fd) }).is_ok();
        if open {
            unsafe { rustix::io::close(fd) };
        }
    }
    // SAFETY: `keep` is open in this table (copied by the unshare), and
    // this is its only owner here (the process's copy is the caller's).
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(keep) })
}

/// Set once the daemon moved itself from `SCHED_OTHER` to `SCHED_BATCH`
/// ([`batch_scheduling`]): its agents are then spawned back in
/// `SCHED_OTHER`, the class the daemon was started in.
static AGENTS_NORMAL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Moves the calling thread, and so every thread it starts afterwards,
/// from `SCHED_OTHER` to `SCHED_BATCH`, which the kernel never lets
/// preempt a running task when it wakes: the daemon's wake-ups (an exited
/// replica's pipes and pidfd, its own follow-up right after a spawn) no
/// longer take the CPU from the child that is exiting or starting on it.
/// Call it while the process has one thread. Any other class the daemon
/// was started in (an operator's `chrt`, `nice` stays as it is) is kept:
/// returns whether the class changed.
pub fn batch_scheduling() -> std::io::Result<bool> {
    // SAFETY: plain syscalls on the calling thread; `param` is a valid
    // sched_param for the call's duration.
    let changed = unsafe {
        if libc::sched_getscheduler(0) != libc::SCHED_OTHER {
            return Ok(false);
        }
        let param = libc::sched_param { sched_priority: 0 };
        libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) == 0
    };
    if !changed {
        return Err(std::io::Error::last_os_error());
    }
    AGENTS_NORMAL.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(true)
}

/// Whether agents are spawned back in `SCHED_OTHER` (see
/// [`batch_scheduling`]).
pub fn agents_normal_scheduling() -> bool {
    AGENTS_NORMAL.load(std::sync::atomic::Ordering::Relaxed)
}

/// Puts the calling process back in `SCHED_OTHER` (a `tty` replica's
/// first step, when [`agents_normal_scheduling`]).
pub fn normal_scheduling() -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: a plain syscall; `param` is valid for its duration.
    match unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &param) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// What [`posix_spawn`] starts.
pub struct SpawnArgs<'a> {
    /// The program's path, found already.
    pub program: &'a std::ffi::CStr,
    /// Its arguments, `argv[0]` first.
    pub argv: &'a [std::ffi::CString],
    /// Its whole environment, as `NAME=value`.
    pub envp: &'a [std::ffi::CString],
    pub cwd: &'a std::ffi::CStr,
    /// Its stdin, stdout and stderr.
    pub stdio: [BorrowedFd<'a>; 3],
}

/// `posix_spawn` as a supervisor wants it: the child in a process group
/// of its own, in `cwd`, on `stdio`, in the scheduling class the daemon
/// was started in (see [`batch_scheduling`]), with no signal blocked (whatever the
/// calling thread blocks) and SIGPIPE at its default (the daemon ignores
/// it; what the daemon handles, glibc resets in the child; naming every
/// signal here cost the child 64 `sigaction` calls, 50-90 µs on a
/// restart); the parent waits only until the
/// child's `execve` (glibc spawns with `CLONE_VFORK`), and an `execve`
/// that fails is the spawn's error. Returns the child's pid.
///
/// The spawner thread blocks every signal (see [`private_fd_table`]);
/// this sets the child's mask and dispositions explicitly, whatever the
/// calling thread's.
pub fn posix_spawn(a: &SpawnArgs<'_>) -> std::io::Result<i32> {
    use std::os::fd::AsRawFd;
    let mut argv: Vec<*mut libc::c_char> = a.argv.iter().map(|s| s.as_ptr().cast_mut()).collect();
    argv.push(std::ptr::null_mut());
    let mut envp: Vec<*mut libc::c_char> = a.envp.iter().map(|s| s.as_ptr().cast_mut()).collect();
    envp.push(std::ptr::null_mut());
    let check = |rc: libc::c_int| {
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::from_raw_os_error(rc))
        }
    };
    // SAFETY: the attribute and file-action objects are initialised before
    // use and destroyed once, on every path; every pointer passed (argv,
    // envp, program, cwd: NUL-terminated, with NULL-terminated arrays)
    // outlives the posix_spawn call, which copies what it keeps.
    unsafe {
        let mut fa: libc::posix_spawn_file_actions_t = std::mem::zeroed();
        let mut attr: libc::posix_spawnattr_t = std::mem::zeroed();
        check(libc::posix_spawn_file_actions_init(&mut fa))?;
        if let Err(e) = check(libc::posix_spawnattr_init(&mut attr)) {
            libc::posix_spawn_file_actions_destroy(&mut fa);
            return Err(e);
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        let mut pipe: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigemptyset(&mut pipe);
        libc::sigaddset(&mut pipe, libc::SIGPIPE);
        let mut flags = libc::POSIX_SPAWN_SETSIGMASK
            | libc::POSIX_SPAWN_SETSIGDEF
            | libc::POSIX_SPAWN_SETPGROUP;
        let mut ready = Ok(());
        if agents_normal_scheduling() {
            flags |= libc::POSIX_SPAWN_SETSCHEDULER;
            let param = libc::sched_param { sched_priority: 0 };
            ready = check(libc::posix_spawnattr_setschedpolicy(
                &mut attr,
                libc::SCHED_OTHER,
            ))
            .and_then(|()| check(libc::posix_spawnattr_setschedparam(&mut attr, &param)));
        }
        ready = ready
            .and_then(|()| check(libc::posix_spawnattr_setsigmask(&mut attr, &none)))
            .and_then(|()| check(libc::posix_spawnattr_setsigdefault(&mut attr, &pipe)))
            .and_then(|()| check(libc::posix_spawnattr_setpgroup(&mut attr, 0)))
            .and_then(|()| {
                check(libc::posix_spawnattr_setflags(
                    &mut attr,
                    flags as libc::c_short,
                ))
            });
        for (to, fd) in a.stdio.iter().enumerate() {
            ready = ready.and_then(|()| {
                check(libc::posix_spawn_file_actions_adddup2(
                    &mut fa,
                    fd.as_raw_fd(),
                    to as libc::c_int,
                ))
            });
        }
        ready = ready.and_then(|()| {
            check(libc::posix_spawn_file_actions_addchdir_np(
                &mut fa,
                a.cwd.as_ptr(),
            ))
        });
        let mut pid: libc::pid_t = 0;
        let spawned = ready.and_then(|()| {
            check(libc::posix_spawn(
                &mut pid,
                a.program.as_ptr(),
                &fa,
                &attr,
                argv.as_ptr(),
                envp.as_ptr(),
            ))
        });
        libc::posix_spawnattr_destroy(&mut attr);
        libc::posix_spawn_file_actions_destroy(&mut fa);
        spawned.map(|()| pid)
    }
}
