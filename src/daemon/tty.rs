//! A replica on its own pseudo-terminal (`tty = true`): the pty pair, the
//! terminal emulator that knows its screen at any moment, the writer that
//! types into it, and the reader that hands the log plain text.
//!
//! What the agent writes is hostile: its bytes go into the emulator (a
//! screen of cells) and, stripped of every escape sequence, into the log.
//! Nothing it writes is ever passed on raw.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

pub use crate::proto::{Attention, Screen};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::mpsc;

/// Lines of scrollback kept per replica.
pub const SCROLLBACK: usize = 1000;
/// Bytes one `send` may type.
pub const MAX_INPUT: usize = 64 * 1024;

/// One run's terminal: its emulator, its input, its size.
pub struct Term {
    parser: Mutex<vt100::Parser>,
    input: mpsc::UnboundedSender<Vec<u8>>,
    /// The master side, for the window size.
    master: OwnedFd,
    /// When it last wrote anything (ms since the epoch).
    last_output: AtomicU64,
    /// The slave side's path (`/dev/pts/N`): how its readers are known.
    path: std::path::PathBuf,
    /// Who holds its input, and since their last keystroke (ms).
    holder: Mutex<Option<(String, u64)>>,
}

/// A hold on a replica's input lapses this long after the holder's last
/// keystroke (a console that went away does not block others for good).
pub const HOLD_MS: u64 = 30_000;

impl std::fmt::Debug for Term {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Term").finish_non_exhaustive()
    }
}

/// A new pty pair sized `rows` × `cols`: (master, slave, the slave's path).
pub fn open(rows: u16, cols: u16) -> std::io::Result<(OwnedFd, OwnedFd, std::path::PathBuf)> {
    use rustix::fs::{Mode, OFlags};
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let name = ptsname(&master, Vec::new())?;
    let slave = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    set_size(&master, rows, cols)?;
    let path = std::path::PathBuf::from(
        <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name.as_bytes()),
    );
    Ok((master, slave, path))
}

fn set_size(master: &OwnedFd, rows: u16, cols: u16) -> std::io::Result<()> {
    let ws = rustix::termios::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(master, ws)?;
    Ok(())
}

impl Term {
    /// The terminal of a run whose pty `master` it takes: the reader for
    /// the log (plain text) and the terminal. Must run in the runtime.
    // `AsyncFd::new` is deprecated for fds that may be closed behind the
    // reactor's back; these are owned (`OwnedFd`) and closed only when the
    // `AsyncFd` drops, and the replacement is `unsafe`, which we forbid.
    #[allow(deprecated)]
    pub fn start(
        master: OwnedFd,
        path: std::path::PathBuf,
        rows: u16,
        cols: u16,
    ) -> std::io::Result<(Arc<Term>, TtyReader)> {
        rustix::io::ioctl_fionbio(&master, true)?;
        let reader_fd = master.try_clone()?;
        let writer_fd = master.try_clone()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let term = Arc::new(Term {
            parser: Mutex::new(vt100::Parser::new(rows, cols, SCROLLBACK)),
            input: tx,
            master,
            last_output: AtomicU64::new(crate::clock::now_ms()),
            path,
            holder: Mutex::new(None),
        });
        tokio::spawn(write_loop(AsyncFd::new(writer_fd)?, rx));
        let reader = TtyReader {
            fd: AsyncFd::new(reader_fd)?,
            term: term.clone(),
            strip: vte::Parser::new(),
            raw: vec![0u8; 16 * 1024],
            text: Vec::new(),
            done: false,
            osc: OscGuard::default(),
        };
        Ok((term, reader))
    }

    /// Types `bytes` into the terminal for `who` (refused past
    /// [`MAX_INPUT`], or while another client holds the input). `hold`:
    /// take or keep the input (Some(true)), give it back (Some(false)).
    pub fn type_in(&self, bytes: Vec<u8>, who: &str, hold: Option<bool>) -> Result<(), String> {
        let now = crate::clock::now_ms();
        {
            let mut h = self.holder.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((other, at)) = h.as_ref()
                && other != who
                && now.saturating_sub(*at) < HOLD_MS
            {
                return Err(format!(
                    "{other} holds this terminal's input (typed {} ago); it frees {} after their last key",
                    crate::core::units::fmt_ms(now.saturating_sub(*at)),
                    crate::core::units::fmt_ms(HOLD_MS)
                ));
            }
            match hold {
                Some(true) => *h = Some((who.to_string(), now)),
                Some(false) => *h = None,
                None => {}
            }
        }
        if bytes.is_empty() {
            return Ok(());
        }
        if bytes.len() > MAX_INPUT {
            return Err(format!(
                "{} bytes is more than one send may type ({MAX_INPUT})",
                bytes.len()
            ));
        }
        self.input
            .send(bytes)
            .map_err(|_| "the replica's terminal is closed".to_string())
    }

    /// Resizes the terminal (the agent gets SIGWINCH from the kernel).
    pub fn resize(&self, rows: u16, cols: u16) -> Result<(), String> {
        let (rows, cols) = (rows.clamp(2, 500), cols.clamp(10, 1000));
        if let Ok(mut p) = self.parser.lock() {
            p.screen_mut().set_size(rows, cols);
        }
        set_size(&self.master, rows, cols).map_err(|e| format!("resize: {e}"))
    }

    /// Who holds the input now (a hold lapses [`HOLD_MS`] after the last
    /// key).
    pub fn holder(&self) -> Option<String> {
        let now = crate::clock::now_ms();
        self.holder
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .filter(|(_, at)| now.saturating_sub(*at) < HOLD_MS)
            .map(|(who, _)| who.clone())
    }

    /// The screen now (with `cells`, also the emulator's rendition).
    pub fn screen(&self, agent: &str, replica: u32, cells: bool) -> Screen {
        let holder = self.holder();
        let p = self.parser.lock().unwrap_or_else(|e| e.into_inner());
        let s = p.screen();
        let (rows, cols) = s.size();
        Screen {
            agent: agent.to_string(),
            replica,
            rows,
            cols,
            cursor: s.cursor_position(),
            lines: s.rows(0, cols).collect(),
            formatted: if cells {
                String::from_utf8_lossy(&s.contents_formatted()).into_owned()
            } else {
                String::new()
            },
            holder,
        }
    }

    /// The emulator, for the console's view of cells.
    pub fn with_screen<T>(&self, f: impl FnOnce(&vt100::Screen) -> T) -> T {
        let p = self.parser.lock().unwrap_or_else(|e| e.into_inner());
        f(p.screen())
    }

    /// Milliseconds since it last wrote anything.
    pub fn quiet_ms(&self, now: u64) -> u64 {
        now.saturating_sub(self.last_output.load(Ordering::Relaxed))
    }

    /// The terminal's foreground process group.
    pub fn foreground(&self) -> Option<i32> {
        rustix::termios::tcgetpgrp(&self.master)
            .ok()
            .map(|p| p.as_raw_nonzero().get())
    }
}

async fn write_loop(fd: AsyncFd<OwnedFd>, mut rx: mpsc::UnboundedReceiver<Vec<u8>>) {
    while let Some(bytes) = rx.recv().await {
        let mut at = 0;
        while at < bytes.len() {
            let Ok(mut guard) = fd.writable().await else {
                return;
            };
            match guard.try_io(|f| rustix::io::write(f.get_ref(), &bytes[at..]).map_err(Into::into))
            {
                Ok(Ok(n)) => at += n,
                Ok(Err(_)) => return,
                Err(_would_block) => continue,
            }
        }
    }
}

/// Reads the pty: every byte into the emulator; plain text (escape
/// sequences dropped) to whoever reads this, the log's drain.
pub struct TtyReader {
    fd: AsyncFd<OwnedFd>,
    term: Arc<Term>,
    strip: vte::Parser,
    raw: Vec<u8>,
    /// Stripped text not yet handed out.
    text: Vec<u8>,
    done: bool,
    /// Bounds the strings the parsers keep (OSC bodies are buffered whole).
    osc: OscGuard,
}

/// The longest OSC string (title, clipboard, hyperlink) kept: the
/// emulators buffer its body until it ends, so an agent that opens one and
/// never closes it would grow the daemon without end. Past this, it is cut
/// (CAN to both parsers).
pub const MAX_OSC: usize = 8 * 1024;

/// Follows OSC strings across reads: `ESC ]` opens one; BEL, ESC, CAN
/// and SUB end it.
#[derive(Debug, Default)]
struct OscGuard {
    esc: bool,
    open: Option<usize>,
}

impl OscGuard {
    /// Whether `bytes` take an open OSC string past [`MAX_OSC`].
    fn overruns(&mut self, bytes: &[u8]) -> bool {
        let mut over = false;
        for &b in bytes {
            match (self.esc, b) {
                (true, b']') => self.open = Some(0),
                (_, 0x07 | 0x18 | 0x1a) => self.open = None,
                _ => {}
            }
            if let Some(n) = self.open.as_mut() {
                *n += 1;
                if *n > MAX_OSC {
                    self.open = None;
                    over = true;
                }
            }
            self.esc = b == 0x1b;
            if self.esc && self.open.is_some_and(|n| n > 1) {
                self.open = None;
            }
        }
        over
    }
}

impl AsFd for TtyReader {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.get_ref().as_fd()
    }
}

impl AsyncRead for TtyReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.text.is_empty() {
                let n = this.text.len().min(buf.remaining());
                buf.put_slice(&this.text[..n]);
                this.text.drain(..n);
                return Poll::Ready(Ok(()));
            }
            if this.done {
                return Poll::Ready(Ok(()));
            }
            let mut guard = ready!(this.fd.poll_read_ready(cx))?;
            let raw = &mut this.raw;
            match guard.try_io(|f| rustix::io::read(f.get_ref(), &mut raw[..]).map_err(Into::into))
            {
                Ok(Ok(0)) => this.done = true,
                Ok(Ok(n)) => {
                    let bytes = &this.raw[..n];
                    this.term
                        .last_output
                        .store(crate::clock::now_ms(), Ordering::Relaxed);
                    let cut = this.osc.overruns(bytes);
                    let mut plain = Plain(&mut this.text);
                    if let Ok(mut p) = this.term.parser.lock() {
                        p.process(bytes);
                        if cut {
                            p.process(b"\x18");
                        }
                    }
                    this.strip.advance(&mut plain, bytes);
                    if cut {
                        this.strip.advance(&mut plain, b"\x18");
                    }
                }
                // EIO: every slave end closed (the agent and its children
                // are gone). The end of the output.
                Ok(Err(_)) => this.done = true,
                Err(_would_block) => continue,
            }
        }
    }
}

/// Collects what a terminal would print, as text lines: printable
/// characters, tabs and newlines; every control and escape sequence goes.
struct Plain<'a>(&'a mut Vec<u8>);

impl vte::Perform for Plain<'_> {
    fn print(&mut self, c: char) {
        let mut b = [0u8; 4];
        self.0.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
    }

    fn execute(&mut self, byte: u8) {
        match byte {
            b'\n' | b'\t' => self.0.push(byte),
            _ => {}
        }
    }
}

/// The agent's `attention` patterns, compiled once per pattern.
pub fn patterns(list: &[String]) -> Vec<regex::Regex> {
    static CACHE: std::sync::OnceLock<Mutex<std::collections::HashMap<String, regex::Regex>>> =
        std::sync::OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    list.iter()
        .filter_map(|p| {
            if let Some(r) = cache.get(p) {
                return Some(r.clone());
            }
            let r = regex::Regex::new(p).ok()?;
            cache.insert(p.clone(), r.clone());
            Some(r)
        })
        .collect()
}

/// Output quiet this long before a blocked read counts as waiting.
pub const QUIET_MS: u64 = 700;

/// The state of a live tty replica: waiting when its screen matches one
/// of `patterns`, or when its output is quiet and a process of its
/// terminal's foreground group sleeps reading (or polling) the terminal.
pub fn attention(term: &Term, patterns: &[regex::Regex], now: u64, cpu_busy: bool) -> Attention {
    if !patterns.is_empty() {
        let text = term.with_screen(|s| s.contents());
        if patterns.iter().any(|p| p.is_match(&text)) {
            return Attention::WaitingInput;
        }
    }
    let quiet = term.quiet_ms(now) >= QUIET_MS;
    if !quiet || cpu_busy {
        return Attention::Working;
    }
    match term.foreground() {
        Some(pgid) if group_reads_tty(pgid, &term.path) => Attention::WaitingInput,
        _ => Attention::Idle,
    }
}

#[cfg(target_arch = "x86_64")]
mod nr {
    pub const READ: u64 = 0;
    /// poll, select, pselect6, ppoll, epoll_wait, epoll_pwait,
    /// epoll_pwait2 (event loops: Node, Go, tokio).
    pub const POLLS: [u64; 7] = [7, 23, 270, 271, 232, 281, 441];
}

#[cfg(target_arch = "aarch64")]
mod nr {
    pub const READ: u64 = 63;
    /// pselect6, ppoll, epoll_pwait, epoll_pwait2.
    pub const POLLS: [u64; 4] = [72, 73, 22, 441];
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod nr {
    pub const READ: u64 = u64::MAX;
    pub const POLLS: [u64; 0] = [];
}

/// `/proc/PID/syscall`: the system call a sleeping process is in, with its
/// first argument (None when running or unreadable).
pub fn parse_syscall(text: &str) -> Option<(u64, u64)> {
    let mut f = text.split_ascii_whitespace();
    let nr: u64 = f.next()?.parse().ok()?;
    let arg = u64::from_str_radix(f.next()?.trim_start_matches("0x"), 16).ok()?;
    Some((nr, arg))
}

/// Whether a process of group `pgid` (its leader or the leader's
/// descendants in that group) sleeps in `read` on the terminal at `tty`,
/// or in poll/select with the terminal as its stdin.
fn group_reads_tty(pgid: i32, tty: &std::path::Path) -> bool {
    let mut pids = Vec::new();
    crate::daemon::procfs::tree(pgid, &mut pids);
    pids.into_iter().take(256).any(|pid| {
        let Some(st) = crate::daemon::procfs::stat(pid) else {
            return false;
        };
        if st.pgid != pgid || st.state != b'S' {
            return false;
        }
        let Some((call, arg)) = std::fs::read_to_string(format!("/proc/{pid}/syscall"))
            .ok()
            .and_then(|t| parse_syscall(&t))
        else {
            return false;
        };
        let fd_is_tty =
            |fd: u64| std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).is_ok_and(|p| p == tty);
        (call == nr::READ && fd_is_tty(arg)) || (nr::POLLS.contains(&call) && fd_is_tty(0))
    })
}

/// Sets `cmd` up to run on a new pty of `rows` × `cols`: the slave as its
/// stdin, stdout and stderr and its controlling terminal, in a session of
/// its own (so also its own process group). Returns the master and the
/// slave's path.
pub fn prepare(
    cmd: &mut std::process::Command,
    rows: u16,
    cols: u16,
) -> std::io::Result<(OwnedFd, std::path::PathBuf)> {
    let (master, slave, path) = open(rows, cols)?;
    cmd.stdin(std::process::Stdio::from(slave.try_clone()?))
        .stdout(std::process::Stdio::from(slave.try_clone()?))
        .stderr(std::process::Stdio::from(slave));
    Ok((master, path))
}

/// `autonomos tty-exec -- PROGRAM ARG0 ARGS...`, what a `tty` replica
/// starts as: it makes itself a session leader with its stdin (the pty's
/// slave) as its controlling terminal, then becomes the agent (same pid,
/// environment and directory). A separate step because doing this between
/// fork and exec would need `unsafe` code, which Autonomos does not allow.
pub fn exec_on_terminal(argv: &[String]) -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let [program, arg0, args @ ..] = argv else {
        return std::io::Error::other("tty-exec: PROGRAM ARG0 [ARGS...] expected");
    };
    if let Err(e) = rustix::process::setsid() {
        return e.into();
    }
    if let Err(e) = rustix::process::ioctl_tiocsctty(rustix::stdio::stdin()) {
        return e.into();
    }
    std::process::Command::new(program)
        .arg0(arg0)
        .args(args)
        .exec()
}

/// A replica's output: its stdout pipe, or its terminal.
pub enum Output {
    Pipe(tokio::net::unix::pipe::Receiver),
    Tty(Box<TtyReader>),
}

impl AsFd for Output {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Output::Pipe(p) => p.as_fd(),
            Output::Tty(t) => t.as_fd(),
        }
    }
}

impl AsyncRead for Output {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Output::Pipe(p) => Pin::new(p).poll_read(cx, buf),
            Output::Tty(t) => Pin::new(t).poll_read(cx, buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_syscall_line_gives_the_call_and_its_first_argument() {
        assert_eq!(
            parse_syscall("0 0x3 0x7ffd 0x400 0x0 0x0 0x0 0x7ffd 0x7f\n"),
            Some((0, 3))
        );
        assert_eq!(parse_syscall("running\n"), None);
        assert_eq!(parse_syscall("-1 0x7ffd 0x7f\n"), None);
    }

    #[test]
    fn one_client_holds_the_input_until_it_gives_it_back() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let (master, _slave, path) = open(24, 80).expect("pty");
            let (term, _reader) = Term::start(master, path, 24, 80).expect("term");
            let (a, b) = ("root (local) pid 10", "root (local) pid 11");
            term.type_in(b"x".to_vec(), a, Some(true)).expect("a types");
            assert_eq!(term.holder().as_deref(), Some(a));
            let refused = term
                .type_in(b"y".to_vec(), b, Some(true))
                .expect_err("b is refused");
            assert!(refused.contains("root (local) pid 10 holds"), "{refused}");
            // A one-off send from another client is refused too.
            assert!(term.type_in(b"y".to_vec(), b, None).is_err());
            term.type_in(Vec::new(), a, Some(false))
                .expect("a gives it back");
            assert_eq!(term.holder(), None);
            term.type_in(b"z".to_vec(), b, Some(true)).expect("b types");
            let big = vec![b'q'; MAX_INPUT + 1];
            let err = term.type_in(big, b, None).expect_err("too big");
            assert!(err.contains(&MAX_INPUT.to_string()), "{err}");
        });
    }

    #[test]
    fn an_osc_string_that_never_ends_is_cut_at_its_bound() {
        let mut g = OscGuard::default();
        assert!(!g.overruns(b"\x1b]0;title\x07plain"));
        assert!(!g.overruns(b"\x1b]52;c;"));
        let body = vec![b'A'; MAX_OSC];
        assert!(g.overruns(&body), "past the bound");
        assert!(!g.overruns(&body), "cut: what follows is plain text");
        // Ended by ESC \ (ST) in another read.
        assert!(!g.overruns(b"\x1b]8;;http://x"));
        assert!(!g.overruns(b"\x1b\\"));
        assert!(!g.overruns(&body));
    }

    #[test]
    fn plain_text_keeps_what_prints_and_drops_every_sequence() {
        let mut out = Vec::new();
        let mut p = vte::Parser::new();
        let hostile = b"a\x1b]52;c;aGk=\x07b\x1b]0;title\x07c\x1bP$qm\x1b\\\x1b[31md\x1b[0m\r\n\x1b[?1049he\n";
        p.advance(&mut Plain(&mut out), hostile);
        assert_eq!(String::from_utf8(out).expect("utf-8"), "abcd\ne\n");
    }
}
