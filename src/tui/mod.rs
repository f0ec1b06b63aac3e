//! The console (feature `tui`): attaches to the daemon, keeps a replicated
//! model, and redraws only when something changed (at most ~30 frames/s;
//! an idle console writes nothing). The terminal is restored on `q`, on
//! panic, on SIGTERM and on SIGHUP; Ctrl-Z suspends and `fg` resumes.

pub mod action;
#[cfg(test)]
pub mod fixture;
pub mod model;
pub mod theme;
pub mod update;
pub mod view;

use crate::clock::now_ms;
use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{Event, EventStream, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::crossterm::{cursor, execute, terminal};

use crate::client::{Client, ClientError, Incoming, Session};
use crate::proto::Request;
use model::{Conn, Model};
use theme::Theme;

/// Shortest time between two frames.
const FRAME: Duration = Duration::from_millis(33);
/// How often the selected agent's output is fetched.
const LOG_POLL: Duration = Duration::from_millis(500);

/// Counts what we write to the terminal (for the idle-bytes benchmark).
struct Counting<W> {
    inner: W,
    bytes: Arc<AtomicU64>,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

type Term = Terminal<CrosstermBackend<Counting<io::Stdout>>>;

fn enter() -> io::Result<()> {
    terminal::enable_raw_mode()?;
    execute!(io::stdout(), terminal::EnterAlternateScreen, cursor::Hide)
}

/// Puts the terminal back as we found it. Safe to call more than once.
pub fn restore() {
    let _ = terminal::disable_raw_mode();
    let _ = execute!(io::stdout(), terminal::LeaveAlternateScreen, cursor::Show);
}

/// Restores the terminal when dropped (every exit path, including `?`).
struct Guard;
impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}

/// How the console reaches its daemon (again, after a drop).
pub type Connect =
    Box<dyn Fn() -> futures_util::future::BoxFuture<'static, Result<Client, ClientError>> + Send>;

/// Console options.
pub struct Options {
    /// Built-in theme name or a theme file.
    pub theme: String,
    /// `user@host` when attached over ssh.
    pub remote: Option<String>,
    /// `[console] keys` from the config.
    pub keys: Vec<(String, Vec<crate::core::keys::KeySpec>)>,
}

/// Runs the console until the operator detaches.
pub async fn run(connect: Connect, opts: Options) -> ExitCode {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let theme = match Theme::load(&opts.theme, no_color) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // The console's own log goes to its diagnostics pane, never to the screen.
    {
        use tracing_subscriber::prelude::*;
        let _ = tracing_subscriber::registry()
            .with(tui_logger::TuiTracingSubscriberLayer)
            .try_init();
        tui_logger::set_default_level(tui_logger::LevelFilter::Info);
    }
    let first = match connect().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let session = match Session::start(first).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        hook(info);
    }));
    if let Err(e) = enter() {
        restore();
        eprintln!("error: cannot set up the terminal: {e}");
        return ExitCode::FAILURE;
    }
    let guard = Guard;
    let bytes = Arc::new(AtomicU64::new(0));
    let backend = CrosstermBackend::new(Counting {
        inner: io::stdout(),
        bytes: bytes.clone(),
    });
    let mut term = match Terminal::new(backend) {
        Ok(t) => t,
        Err(e) => {
            drop(guard);
            eprintln!("error: cannot set up the terminal: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut model = Model::new(now_ms());
    model.remote = opts.remote;
    let stats = std::env::var("AUTONOMOS_CONSOLE_STATS")
        .ok()
        .map(|path| (path, bytes.clone()));
    let keymap = action::keymap_with(&opts.keys);
    let (code, frames) = event_loop(
        &mut term,
        &mut model,
        &theme,
        &keymap,
        session,
        connect,
        stats.as_ref(),
    )
    .await;
    drop(term);
    drop(guard);
    if let Ok(path) = std::env::var("AUTONOMOS_CONSOLE_STATS") {
        let _ = std::fs::write(
            path,
            format!(
                "{{\"bytes\":{},\"frames\":{frames}}}\n",
                bytes.load(Ordering::Relaxed)
            ),
        );
    }
    if code == ExitCode::SUCCESS {
        println!("detached; the fleet keeps running");
    }
    code
}

async fn event_loop(
    term: &mut Term,
    m: &mut Model,
    theme: &Theme,
    keymap: &[action::Binding],
    session: Session,
    connect: Connect,
    stats: Option<&(String, Arc<AtomicU64>)>,
) -> (ExitCode, u64) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut keys = EventStream::new();
    let mut session = Some(session);
    if let Some(s) = &session {
        m.conn = Conn::Attached {
            host: s.daemon.host.clone(),
            pid: s.daemon.pid,
            version: s.daemon.version.clone(),
        };
    }
    let mut term_sig = signal(SignalKind::terminate()).ok();
    let mut hup_sig = signal(SignalKind::hangup()).ok();
    let mut cont_sig = signal(SignalKind::from_raw(libc::SIGCONT)).ok();
    let mut last_frame = Instant::now() - FRAME;
    let mut frames = 0u64;
    let mut log_poll = tokio::time::interval(LOG_POLL);
    log_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut reconnect: Option<
        futures_util::future::BoxFuture<'static, Result<Client, ClientError>>,
    > = None;
    let mut retry_at: Option<tokio::time::Instant> = None;
    let mut shutting_down = false;
    let mut logs_in_flight = false;
    loop {
        m.now = now_ms();
        if m.dirty {
            let wait = FRAME.saturating_sub(last_frame.elapsed());
            if wait.is_zero() {
                tui_logger::move_events();
                if term.draw(|f| view::view(m, theme, keymap, f)).is_err() {
                    return (ExitCode::FAILURE, frames);
                }
                frames += 1;
                last_frame = Instant::now();
                m.dirty = false;
                // For the idle-output benchmark: what has been written so far.
                if let Some((path, bytes)) = stats {
                    let _ = std::fs::write(
                        path,
                        format!(
                            "{{\"bytes\":{},\"frames\":{frames}}}\n",
                            bytes.load(Ordering::Relaxed)
                        ),
                    );
                }
            }
        }
        if m.quit {
            return (ExitCode::SUCCESS, frames);
        }
        let redraw_in = if m.dirty {
            FRAME.saturating_sub(last_frame.elapsed())
        } else {
            Duration::from_secs(3600)
        };
        let mut requests: Vec<Request> = Vec::new();
        tokio::select! {
            _ = tokio::time::sleep(redraw_in) => {}
            ev = keys.next() => match ev {
                Some(Ok(Event::Key(k))) if k.kind != KeyEventKind::Release => {
                    if k.code == KeyCode::Char('z') && k.modifiers.contains(KeyModifiers::CONTROL) {
                        suspend();
                        m.dirty = true;
                        let _ = term.clear();
                    } else if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
                        m.quit = true;
                    } else {
                        let action = match &m.mode {
                            model::Mode::Normal => action::lookup(keymap, k),
                            model::Mode::Confirm { .. } => action::confirm(k),
                            model::Mode::Help => action::lookup(keymap, k).or(Some(action::Action::Back)),
                            _ => action::text_input(k),
                        };
                        if let Some(a) = action {
                            requests = update::update(m, a);
                        }
                    }
                }
                Some(Ok(Event::Resize(..))) => { m.dirty = true; let _ = term.autoresize(); }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return (ExitCode::FAILURE, frames),
            },
            inc = async { match session.as_mut() { Some(s) => s.rx.recv().await, None => std::future::pending().await } } => {
                match inc {
                    Some(Incoming::Answer(Request::Shutdown, _)) if shutting_down => {
                        m.quit = true;
                    }
                    Some(i) => {
                        if matches!(i, Incoming::Answer(Request::Logs { .. }, _)) {
                            logs_in_flight = false;
                        }
                        let fleet_changed = matches!(i, Incoming::Update(crate::client::Update::Event(_, crate::proto::ServerEvent::FleetChanged)));
                        update::apply(m, i);
                        if fleet_changed {
                            requests.push(Request::Status);
                        }
                    }
                    None => {
                        m.conn = Conn::Reconnecting { error: "connection lost".into(), attempts: 0 };
                        m.dirty = true;
                    }
                }
                if matches!(m.conn, Conn::Reconnecting { .. }) {
                    if shutting_down {
                        m.quit = true;
                    }
                    session = None;
                    logs_in_flight = false;
                    retry_at = Some(tokio::time::Instant::now());
                }
            }
            _ = log_poll.tick() => {
                if let (Some(s), false) = (&session, logs_in_flight)
                    && let Some(r) = update::logs_request(m)
                {
                    logs_in_flight = s.send(r);
                }
                // Notices expire: redraw once when the newest one ages out.
                if m.notices.back().is_some_and(|n| (7900..8500).contains(&m.now.saturating_sub(n.at))) {
                    m.dirty = true;
                }
            }
            _ = async { match retry_at { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } } => {
                retry_at = None;
                reconnect = Some(connect());
            }
            r = async { match reconnect.as_mut() { Some(f) => f.await, None => std::future::pending().await } } => {
                reconnect = None;
                match r {
                    Ok(c) => match tokio::time::timeout(Duration::from_secs(10), Session::start(c))
                        .await
                        .unwrap_or_else(|_| Err(ClientError::Protocol("no snapshot within 10 s".into())))
                    {
                        Ok(s) => {
                            m.conn = Conn::Attached { host: s.daemon.host.clone(), pid: s.daemon.pid, version: s.daemon.version.clone() };
                            m.notify("reconnected", false);
                            session = Some(s);
                        }
                        Err(e) => bump_retry(m, e.to_string(), &mut retry_at),
                    },
                    Err(e) => bump_retry(m, e.to_string(), &mut retry_at),
                }
            }
            _ = async { match term_sig.as_mut() { Some(s) => s.recv().await, None => std::future::pending().await } } => {
                return (ExitCode::SUCCESS, frames);
            }
            _ = async { match hup_sig.as_mut() { Some(s) => s.recv().await, None => std::future::pending().await } } => {
                return (ExitCode::SUCCESS, frames);
            }
            _ = async { match cont_sig.as_mut() { Some(s) => s.recv().await, None => std::future::pending().await } } => {
                let _ = enter();
                let _ = term.clear();
                m.dirty = true;
            }
        }
        for r in requests {
            if r == Request::Shutdown {
                shutting_down = true;
            }
            match &session {
                Some(s) if s.send(r) => {}
                _ => m.notify("not connected: the request was not sent", true),
            }
        }
    }
}

fn bump_retry(m: &mut Model, error: String, retry_at: &mut Option<tokio::time::Instant>) {
    let attempts = match &m.conn {
        Conn::Reconnecting { attempts, .. } => attempts + 1,
        _ => 1,
    };
    tracing::warn!(%error, attempts, "reconnect failed");
    m.conn = Conn::Reconnecting { error, attempts };
    m.dirty = true;
    *retry_at = Some(tokio::time::Instant::now() + Duration::from_secs(1));
}

/// Ctrl-Z: give the terminal back, stop; SIGCONT brings us back.
fn suspend() {
    restore();
    let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::TSTP);
    // Execution continues here after `fg`.
    let _ = enter();
}
