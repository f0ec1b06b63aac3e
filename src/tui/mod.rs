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

mod connection;
mod terminal;

pub use terminal::restore;

use std::process::ExitCode;
use std::time::Duration;

use futures_util::StreamExt;
use ratatui::crossterm::event::{
    Event, EventStream, KeyCode, KeyEvent, KeyEventKind, KeyModifiers,
};
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::client::{Client, ClientError, Session};
use crate::clock::now_ms;
use crate::proto::Request;
use connection::Link;
use model::Model;
use terminal::Screen;
use theme::Theme;

/// How often the selected agent's output is fetched.
const LOG_POLL: Duration = Duration::from_millis(500);

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
    let mut screen = match Screen::open() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut model = Model::new(now_ms());
    model.remote = opts.remote;
    let keymap = action::keymap_with(&opts.keys);
    let link = Link::new(connect, session, &mut model);
    let code = event_loop(&mut screen, &mut model, &theme, &keymap, link).await;
    screen.write_stats();
    drop(screen);
    if code == ExitCode::SUCCESS {
        println!("{}", model.conn.farewell());
    }
    code
}

/// Draws when something changed; reacts to keys, the daemon, the log
/// poll and signals; until the operator detaches.
async fn event_loop(
    screen: &mut Screen,
    m: &mut Model,
    theme: &Theme,
    keymap: &[action::Binding],
    mut link: Link,
) -> ExitCode {
    let mut keys = EventStream::new();
    let mut signals = Signals::new();
    let mut log_poll = tokio::time::interval(LOG_POLL);
    log_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut term_poll = tokio::time::interval(Duration::from_millis(update::term::TERM_POLL_MS));
    term_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        m.now = now_ms();
        if screen.draw_due(m, theme, keymap).is_err() {
            return ExitCode::FAILURE;
        }
        if m.quit {
            return ExitCode::SUCCESS;
        }
        let mut requests: Vec<Request> = Vec::new();
        tokio::select! {
            _ = tokio::time::sleep(screen.redraw_in(m)) => {}
            ev = keys.next() => match ev {
                Some(Ok(Event::Key(k))) if k.kind != KeyEventKind::Release => {
                    requests = on_key(m, keymap, screen, k);
                }
                Some(Ok(Event::Resize(..))) => {
                    m.dirty = true;
                    screen.resized();
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return ExitCode::FAILURE,
            },
            h = link.next() => requests = link.handle(m, h).await,
            // Only while a terminal is in view does this send anything.
            _ = term_poll.tick(), if m.term_target().is_some()
                || m.term.is_some()
                || m.term_release.is_some() => {
                requests = update::term::term_poll(m);
            }
            _ = log_poll.tick() => {
                requests = update::due(m);
                if m.pending_scale.is_some() {
                    m.dirty = true; // the countdown
                }
                link.poll_logs(m);
                // Notices expire: redraw once when the newest one ages out.
                if m.notices.back().is_some_and(|n| (7900..8500).contains(&m.now.saturating_sub(n.at))) {
                    m.dirty = true;
                }
            }
            sig = signals.next() => match sig {
                Sig::Leave => return ExitCode::SUCCESS,
                Sig::Continue => {
                    let _ = terminal::enter();
                    screen.clear();
                    m.dirty = true;
                }
            },
        }
        link.send(m, requests);
    }
}

/// A key: Ctrl-Z suspends, Ctrl-C detaches, the rest go through the keymap
/// of the mode the console is in.
fn on_key(
    m: &mut Model,
    keymap: &[action::Binding],
    screen: &mut Screen,
    k: KeyEvent,
) -> Vec<Request> {
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    if m.mode == model::Mode::Focus {
        // Every key goes to the agent (Ctrl-C and Ctrl-Z too), but the
        // leave key.
        let leave = action::lookup(keymap, k) == Some(action::Action::Unfocus);
        let mut out = update::term::focus_key(m, k, leave);
        out.extend(update::term::term_poll(m));
        return out;
    }
    if k.code == KeyCode::Char('z') && ctrl {
        terminal::suspend();
        m.dirty = true;
        screen.clear();
        return vec![];
    }
    if k.code == KeyCode::Char('c') && ctrl {
        m.quit = true;
        return vec![];
    }
    let action = match &m.mode {
        model::Mode::Normal => action::lookup(keymap, k),
        model::Mode::Confirm { .. } => action::confirm(k),
        model::Mode::Help => action::lookup(keymap, k).or(Some(action::Action::Back)),
        _ => action::text_input(k),
    };
    action.map(|a| update::update(m, a)).unwrap_or_default()
}

/// The signals the console answers: SIGTERM and SIGHUP end it (the
/// terminal restored), SIGCONT redraws after `fg`.
enum Sig {
    Leave,
    Continue,
}

struct Signals {
    term: Option<Signal>,
    hup: Option<Signal>,
    cont: Option<Signal>,
}

impl Signals {
    fn new() -> Self {
        Self {
            term: signal(SignalKind::terminate()).ok(),
            hup: signal(SignalKind::hangup()).ok(),
            cont: signal(SignalKind::from_raw(libc::SIGCONT)).ok(),
        }
    }

    async fn next(&mut self) -> Sig {
        async fn recv(s: &mut Option<Signal>) {
            match s.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            _ = recv(&mut self.term) => Sig::Leave,
            _ = recv(&mut self.hup) => Sig::Leave,
            _ = recv(&mut self.cont) => Sig::Continue,
        }
    }
}
