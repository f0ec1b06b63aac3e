//! Starting a replica's process: its program found up front, a process
//! group of its own, its output on pipes the daemon reads (or a
//! pseudo-terminal), a pidfd to learn of its exit, and its pid in the
//! leader set before the orphan reaper can see it.

use std::ffi::{CString, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use rustix::fs::{Mode, OFlags};
use rustix::process::{Pid, PidfdFlags, Signal};

use crate::daemon::process::{Leaders, leaders};
use crate::daemon::procfs;

/// Everything needed to start one replica.
#[derive(Debug, Clone)]
pub struct SpawnSpec {
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    /// A pipe on stdin (task agents take JSON-RPC there); else /dev/null.
    pub stdin: bool,
    /// Its own pseudo-terminal of (rows, cols) instead of pipes.
    pub tty: Option<(u16, u16)>,
}

/// Finds the program the way `execvp` would, but up front, so "not found"
/// is a clear error naming the search path.
pub fn resolve_program(
    program: &str,
    cwd: &Path,
    path_var: Option<&OsString>,
) -> Result<PathBuf, String> {
    if program.contains('/') {
        let p = Path::new(program);
        let full = if p.is_absolute() {
            p.to_path_buf()
        } else {
            cwd.join(p)
        };
        return Ok(full);
    }
    let search = path_var
        .cloned()
        .unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));
    for dir in std::env::split_paths(&search) {
        let candidate = dir.join(program);
        if let Ok(meta) = std::fs::metadata(&candidate) {
            use std::os::unix::fs::PermissionsExt;
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
        }
    }
    Err(format!(
        "command not found: `{program}` (searched PATH={})",
        search.to_string_lossy()
    ))
}

/// A spawned leader with its pipes (or its terminal).
pub struct Spawned {
    pub pid: i32,
    pub pidfd: OwnedFd,
    pub stdout: crate::daemon::tty::Output,
    /// None on a terminal (stderr goes to the terminal too).
    pub stderr: Option<tokio::net::unix::pipe::Receiver>,
    /// With `SpawnSpec::tty`: its terminal.
    pub term: Option<std::sync::Arc<crate::daemon::tty::Term>>,
    /// With `SpawnSpec::stdin`.
    pub stdin: Option<tokio::net::unix::pipe::Sender>,
    pub started: Instant,
    /// A lower bound of the leader's start time in clock ticks since boot
    /// (as `/proc/PID/stat` counts it), read just before the spawn: no
    /// process of this run started earlier.
    pub born: u64,
}

/// The boot-time clock in clock ticks, rounded down (`/proc/PID/stat`'s
/// start time is this clock at the process's start, in the same unit).
fn boot_ticks() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    let ns = t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64;
    ns / (1_000_000_000 / procfs::ticks_per_second().max(1))
}

/// Spawns `spec` in a new process group. The pid is in `leaders` before any
/// orphan reaper can see it.
pub fn spawn(spec: &SpawnSpec, leaders: Leaders) -> Result<Spawned, String> {
    spawn_on(spec, leaders, None)
}

/// [`spawn`] on output pipes made ahead, if there are (a terminal agent
/// takes none: they close unused).
pub fn spawn_on(
    spec: &SpawnSpec,
    leaders: Leaders,
    pipes: Option<OutputPipes>,
) -> Result<Spawned, String> {
    if spec.tty.is_none() {
        return spawn_piped_on(spec, leaders, pipes)?.into_spawned(leaders);
    }
    drop(pipes);
    let (mut cmd, resolved) = command(spec)?;
    let Some((rows, cols)) = spec.tty else {
        return Err("no terminal size".into());
    };
    let (master, path) = crate::daemon::tty::prepare(&mut cmd, rows, cols)
        .map_err(|e| format!("cannot open a pseudo-terminal: {e}"))?;
    let (mut child, pid, pidfd, started, born) = launch(&mut cmd, spec, &resolved, leaders)?;
    // The slave's copies in `cmd` close with it: the terminal's end is
    // then the agent's (and its children's) end.
    drop(cmd);
    let (term, reader) = match crate::daemon::tty::Term::start(master, path, rows, cols) {
        Ok(t) => t,
        Err(e) => {
            return Err(abandon_child(
                &mut child,
                pid,
                leaders,
                format!("pseudo-terminal: {e}"),
            ));
        }
    };
    Ok(Spawned {
        pid,
        pidfd,
        stdout: crate::daemon::tty::Output::Tty(Box::new(reader)),
        stderr: None,
        term: Some(term),
        stdin: None,
        started,
        born,
    })
}

/// A replica spawned with pipes, before its pipes join the runtime: all
/// plain descriptors, so that a thread outside the runtime (the spawner)
/// can make it and pass it on.
pub struct Started {
    pub pid: i32,
    pub pidfd: OwnedFd,
    /// The read ends of its stdout and stderr (non-blocking).
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    /// The write end of its stdin, with `SpawnSpec::stdin`.
    pub stdin: Option<OwnedFd>,
    pub started: Instant,
    pub born: u64,
}

/// [`spawn`] for a `spec` without a terminal, up to the runtime: the
/// pipes (and the process) are plain descriptors of the calling thread's
/// table. Spawned through [`crate::daemon::sys::posix_spawn`]: no signal
/// blocked in the child, whatever the calling thread blocks.
pub fn spawn_piped(spec: &SpawnSpec, leaders: Leaders) -> Result<Started, String> {
    spawn_piped_on(spec, leaders, None)
}

/// [`spawn_piped`] on output pipes made ahead (`pipes`, made in the
/// calling thread's descriptor table), or on new ones.
pub fn spawn_piped_on(
    spec: &SpawnSpec,
    leaders: Leaders,
    pipes: Option<OutputPipes>,
) -> Result<Started, String> {
    let (resolved, argv, envp, cwd) = c_command(spec)?;
    let program = c_string(resolved.as_os_str().as_encoded_bytes(), "program path")?;
    let OutputPipes {
        out: (out, out_child),
        err: (err, err_child),
    } = match pipes {
        Some(p) => p,
        None => OutputPipes::new()?,
    };
    let (in_child, stdin) = if spec.stdin {
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| format!("cannot create the stdin pipe: {e}"))?;
        (Some(r), Some(w))
    } else {
        (None, None)
    };
    let args = crate::daemon::sys::SpawnArgs {
        program: &program,
        argv: &argv,
        envp: &envp,
        cwd: &cwd,
        stdio: [
            match &in_child {
                Some(fd) => fd.as_fd(),
                None => dev_null()?,
            },
            out_child.as_fd(),
            err_child.as_fd(),
        ],
    };
    let mut guard = leaders
        .lock()
        .map_err(|_| "leader set poisoned".to_string())?;
    let started = Instant::now();
    let born = boot_ticks();
    let pid =
        crate::daemon::sys::posix_spawn(&args).map_err(|e| spawn_error(&spec.cwd, &resolved, e))?;
    guard.insert(pid);
    drop(guard);
    // The child's ends are the child's alone now.
    drop((in_child, out_child, err_child));
    // The child is ours and unreaped, so this pidfd cannot name anyone else.
    let pidfd = Pid::from_raw(pid)
        .ok_or_else(|| "spawn returned pid 0".to_string())
        .and_then(|p| {
            rustix::process::pidfd_open(p, PidfdFlags::empty())
                .map_err(|e| format!("pidfd_open({pid}): {e}"))
        });
    let pidfd = match pidfd {
        Ok(fd) => fd,
        Err(why) => {
            // Nothing could watch it: kill and reap it here.
            kill_pid(pid, leaders);
            if let Some(p) = Pid::from_raw(pid) {
                let _ = rustix::process::waitpid(Some(p), rustix::process::WaitOptions::empty());
            }
            return Err(why);
        }
    };
    Ok(Started {
        pid,
        pidfd,
        stdout: out,
        stderr: err,
        stdin,
        started,
        born,
    })
}

/// `spec` as C strings: the program found (the way `execvp` would),
/// `argv` (its first the program as written), the environment alone, and
/// the working dir.
fn c_command(spec: &SpawnSpec) -> Result<(PathBuf, Vec<CString>, Vec<CString>, CString), String> {
    let program = spec
        .argv
        .first()
        .ok_or_else(|| "empty command".to_string())?;
    let resolved = resolve_program(program, &spec.cwd, search_path(program, spec).as_ref())?;
    let argv = spec
        .argv
        .iter()
        .map(|a| c_string(a.as_bytes(), "argument"))
        .collect::<Result<Vec<_>, _>>()?;
    let envp = spec
        .env
        .iter()
        .map(|(k, v)| c_string(format!("{k}={v}").as_bytes(), "environment variable"))
        .collect::<Result<Vec<_>, _>>()?;
    let cwd = c_string(spec.cwd.as_os_str().as_encoded_bytes(), "working dir")?;
    Ok((resolved, argv, envp, cwd))
}

fn c_string(bytes: &[u8], what: &str) -> Result<CString, String> {
    CString::new(bytes).map_err(|_| {
        format!(
            "a{} {what} contains a NUL byte",
            if what.starts_with(['a', 'e']) {
                "n"
            } else {
                ""
            }
        )
    })
}

/// The PATH `program` is looked up in, if it is (a path is not): the
/// replica's, else the daemon's.
fn search_path(program: &str, spec: &SpawnSpec) -> Option<OsString> {
    if program.contains('/') {
        return None;
    }
    path_of(spec)
}

/// The PATH the program is looked up in: the replica's, else the daemon's.
fn path_of(spec: &SpawnSpec) -> Option<OsString> {
    spec.env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| OsString::from(v))
        .or_else(|| std::env::var_os("PATH"))
}

/// Kills a started run nobody can watch (SIGKILL to its process group)
/// and takes it out of the leader set, so the orphan reaper reaps it.
pub fn kill_started(s: Started, leaders: Leaders) {
    kill_pid(s.pid, leaders);
}

/// [`kill_started`] by pid.
pub fn kill_pid(pid: i32, leaders: Leaders) {
    if let Some(p) = Pid::from_raw(pid) {
        let _ = rustix::process::kill_process_group(p, Signal::KILL);
    }
    if let Ok(mut g) = leaders.lock() {
        g.remove(&pid);
    }
}

impl Started {
    /// Hands the pipes to the runtime (in its context). On an error the
    /// child is killed: nothing would read or watch it.
    pub fn into_spawned(self, leaders: Leaders) -> Result<Spawned, String> {
        let pid = self.pid;
        let fail = |why: String| {
            kill_pid(pid, leaders);
            why
        };
        let (stdout, stderr) = runtime_pipes((self.stdout, self.stderr)).map_err(fail)?;
        let stdin = match self
            .stdin
            .map(tokio::net::unix::pipe::Sender::from_owned_fd)
        {
            Some(Ok(p)) => Some(p),
            Some(Err(e)) => return Err(fail(format!("stdin pipe: {e}"))),
            None => None,
        };
        Ok(Spawned {
            pid,
            pidfd: self.pidfd,
            stdout: crate::daemon::tty::Output::Pipe(stdout),
            stderr: Some(stderr),
            term: None,
            stdin,
            started: self.started,
            born: self.born,
        })
    }
}

/// The command for `spec`: its program found on the way `execvp` would,
/// its arguments, its environment alone and its working dir.
fn command(spec: &SpawnSpec) -> Result<(Command, PathBuf), String> {
    let (program, args) = spec
        .argv
        .split_first()
        .ok_or_else(|| "empty command".to_string())?;
    let resolved = resolve_program(program, &spec.cwd, search_path(program, spec).as_ref())?;
    let mut cmd = command_for(spec.tty.is_some(), &resolved, program)?;
    cmd.args(args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spec.cwd);
    Ok((cmd, resolved))
}

/// Spawns `cmd` with its pid in `leaders` before the orphan reaper can see
/// it, and opens its pidfd: (child, pid, pidfd, started, born).
fn launch(
    cmd: &mut Command,
    spec: &SpawnSpec,
    resolved: &Path,
    leaders: Leaders,
) -> Result<(std::process::Child, i32, OwnedFd, Instant, u64), String> {
    let mut guard = leaders
        .lock()
        .map_err(|_| "leader set poisoned".to_string())?;
    let started = Instant::now();
    let born = boot_ticks();
    let mut child = cmd
        .spawn()
        .map_err(|e| spawn_error(&spec.cwd, resolved, e))?;
    let pid = child.id() as i32;
    guard.insert(pid);
    drop(guard);
    // Past this point a failure must not leave an unsupervised child.
    let Some(raw_pid) = Pid::from_raw(pid) else {
        return Err(abandon_child(
            &mut child,
            pid,
            leaders,
            "spawn returned pid 0".into(),
        ));
    };
    // The child is ours and unreaped, so this pidfd cannot name anyone else.
    match rustix::process::pidfd_open(raw_pid, PidfdFlags::empty()) {
        Ok(fd) => Ok((child, pid, fd, started, born)),
        Err(e) => Err(abandon_child(
            &mut child,
            pid,
            leaders,
            format!("pidfd_open({pid}): {e}"),
        )),
    }
}

/// Kills and reaps a child that cannot be supervised; returns `why`.
fn abandon_child(
    child: &mut std::process::Child,
    pid: i32,
    leaders: Leaders,
    why: String,
) -> String {
    let _ = child.kill();
    let _ = child.wait();
    if let Ok(mut g) = leaders.lock() {
        g.remove(&pid);
    }
    why
}

/// Ends a spawned run nobody will supervise: SIGKILL to its process
/// group, and out of the leader set, so the orphan reaper reaps it.
pub fn abandon(s: Spawned) {
    kill_pid(s.pid, leaders());
}

/// Why a spawn failed. A working directory that is missing or no
/// directory fails the spawn with an error that reads like the program's
/// own, so it is looked at here, after the fact (not before every spawn:
/// a `stat` on the way to each restart).
fn spawn_error(cwd: &Path, resolved: &Path, e: std::io::Error) -> String {
    match std::fs::metadata(cwd) {
        Ok(m) if m.is_dir() => format!("cannot start {}: {e}", resolved.display()),
        Ok(_) => format!(
            "cannot use working directory {}: not a directory",
            cwd.display()
        ),
        Err(c) => format!("cannot use working directory {}: {c}", cwd.display()),
    }
}

/// The command that runs `resolved` (named `program`): directly, or for a
/// terminal through `autonomos tty-exec`, which takes the terminal first.
fn command_for(tty: bool, resolved: &Path, program: &str) -> Result<Command, String> {
    if tty {
        // The running binary, even after an upgrade replaced the file.
        let mut c = Command::new("/proc/self/exe");
        c.arg("tty-exec");
        if crate::daemon::sys::agents_normal_scheduling() {
            c.arg("--normal-scheduling");
        }
        c.arg("--").arg(resolved).arg(program);
        return Ok(c);
    }
    let mut c = Command::new(resolved);
    c.arg0(program);
    Ok(c)
}

/// /dev/null for a child's stdin: opened once per thread (the spawner
/// has a descriptor table of its own) and kept open for the thread's life
/// (one descriptor per spawning thread: the actor's own thread and
/// the spawner), so a spawn neither looks the path up nor duplicates it.
fn dev_null() -> Result<BorrowedFd<'static>, String> {
    thread_local! {
        static NULL: std::cell::OnceCell<&'static OwnedFd> = const { std::cell::OnceCell::new() };
    }
    NULL.with(|null| {
        if let Some(&fd) = null.get() {
            return Ok(fd.as_fd());
        }
        let fd = rustix::fs::open("/dev/null", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| format!("cannot open /dev/null: {e}"))?;
        let &kept = null.get_or_init(|| Box::leak(Box::new(fd)));
        Ok(kept.as_fd())
    })
}

/// A replica's stdout and stderr pipes: (read end, write end) each. The
/// read ends are non-blocking for the runtime; the write ends are the
/// child's (the spawn puts them on fds 1 and 2; the child gets them
/// blocking). All close-on-exec. The actor makes a set ahead, after a
/// spawn, so the next restart does not wait for four system calls.
pub struct OutputPipes {
    out: (OwnedFd, OwnedFd),
    err: (OwnedFd, OwnedFd),
}

impl OutputPipes {
    pub fn new() -> Result<OutputPipes, String> {
        Ok(OutputPipes {
            out: output_pipe()?,
            err: output_pipe()?,
        })
    }
}

/// A new output pipe: (read end, write end).
fn output_pipe() -> Result<(OwnedFd, OwnedFd), String> {
    let fail = |e: rustix::io::Errno| format!("cannot create an output pipe: {e}");
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(fail)?;
    rustix::fs::fcntl_setfl(&read, rustix::fs::OFlags::NONBLOCK).map_err(fail)?;
    Ok((read, write))
}

/// The read ends, handed to the runtime as they are: pipes, non-blocking.
fn runtime_pipes(
    (stdout, stderr): (OwnedFd, OwnedFd),
) -> Result<
    (
        tokio::net::unix::pipe::Receiver,
        tokio::net::unix::pipe::Receiver,
    ),
    String,
> {
    let o = tokio::net::unix::pipe::Receiver::from_owned_fd_unchecked(stdout)
        .map_err(|e| format!("stdout pipe: {e}"))?;
    let e = tokio::net::unix::pipe::Receiver::from_owned_fd_unchecked(stderr)
        .map_err(|e| format!("stderr pipe: {e}"))?;
    Ok((o, e))
}
