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

/// One daemon of a multi-host console: its name and how to reach it.
pub struct Host {
    pub name: String,
    pub connect: Connect,
}

/// One host's side of the console: its own model and link (requests go to
/// the daemon whose model they came from).
struct Pane {
    name: String,
    model: Model,
    link: Link,
}

/// Runs the console until the operator detaches.
pub async fn run(connect: Connect, opts: Options) -> ExitCode {
    run_hosts(
        vec![Host {
            name: String::new(),
            connect,
        }],
        opts,
    )
    .await
}

/// The console over one or several daemons. With several, a host bar shows
/// each at a glance (`{`/`}` switch); a host that cannot be reached at
/// start is shown so and tried again, and only when none answers does the
/// console refuse to start.
pub async fn run_hosts(hosts: Vec<Host>, opts: Options) -> ExitCode {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let theme = match Theme::load(&opts.theme, no_color) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // Every host at once; with several, each within its own time limit
    // (one host may take as long as its ssh login needs).
    let limit = if hosts.len() > 1 {
        Duration::from_secs(15)
    } else {
        Duration::MAX
    };
    let starts = hosts.iter().map(|h| async move {
        let one = async { Session::start((h.connect)().await?).await };
        match tokio::time::timeout(limit, one).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Protocol("no answer within 15 s".into())),
        }
    });
    let sessions = futures_util::future::join_all(starts).await;
    if sessions.iter().all(Result::is_err) {
        for (h, s) in hosts.iter().zip(&sessions) {
            if let Err(e) = s {
                match h.name.as_str() {
                    "" => eprintln!("error: {e}"),
                    name => eprintln!("error: host {name}: {e}"),
                }
            }
        }
        return ExitCode::FAILURE;
    }
    let mut screen = match Screen::open() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let keymap = action::keymap_with(&opts.keys);
    let mut panes: Vec<Pane> = hosts
        .into_iter()
        .zip(sessions)
        .map(|(h, s)| {
            let mut model = Model::new(now_ms());
            model.remote = opts.remote.clone();
            let link = match s {
                Ok(session) => Link::new(h.connect, session, &mut model),
                Err(e) => Link::pending(h.connect, &mut model, e.to_string()),
            };
            Pane {
                name: h.name,
                model,
                link,
            }
        })
        .collect();
    let mut active = panes
        .iter()
        .position(|p| matches!(p.model.conn, model::Conn::Attached { .. }))
        .unwrap_or(0);
    let code = event_loop(&mut screen, &mut panes, &mut active, &theme, &keymap).await;
    screen.write_stats();
    drop(screen);
    if code == ExitCode::SUCCESS
        && let Some(p) = panes.get(active)
    {
        println!("{}", p.model.conn.farewell());
    }
    code
}

/// The next thing any host's link does, and which host. Polling starts at
/// `first` (rotated by the caller) so a busy host cannot starve the others.
async fn next_link(panes: &mut [Pane], first: usize) -> (usize, connection::Happened) {
    let first = first % panes.len().max(1);
    let (before, after) = panes.split_at_mut(first);
    let waits = after
        .iter_mut()
        .enumerate()
        .map(|(i, p)| (first + i, p))
        .chain(before.iter_mut().enumerate())
        .map(|(i, p)| Box::pin(async move { (i, p.link.next().await) }));
    futures_util::future::select_all(waits).await.0
}

/// Every host's badge into the model in view (several hosts only).
fn badges(panes: &mut [Pane], active: usize) {
    if panes.len() < 2 {
        return;
    }
    let list: Vec<model::HostBadge> = panes
        .iter()
        .map(|p| model::HostBadge::of(&p.name, &p.model))
        .collect();
    // The other hosts' live alerts and open incidents, for one feed.
    let mut alerts = Vec::new();
    let mut incidents = Vec::new();
    let mut agents = Vec::new();
    for (i, p) in panes.iter().enumerate() {
        let Some(s) = p.model.status.as_ref().filter(|_| i != active) else {
            continue;
        };
        alerts.extend(
            s.alerts
                .iter()
                .filter(|a| a.state == "firing" || a.state == "pending")
                .map(|a| (p.name.clone(), a.clone())),
        );
        incidents.extend(
            s.incidents
                .iter()
                .filter(|x| x.status == "open")
                .map(|x| (p.name.clone(), x.clone())),
        );
        agents.extend(
            s.agents
                .iter()
                .map(|a| model::ElsewhereAgent::of(&p.name, a)),
        );
    }
    if let Some(p) = panes.get_mut(active) {
        let m = &mut p.model;
        if m.hosts != list
            || m.host_index != active
            || m.elsewhere_alerts != alerts
            || m.elsewhere_incidents != incidents
            || m.elsewhere_agents != agents
        {
            m.dirty = true;
        }
        m.hosts = list;
        m.host_index = active;
        m.elsewhere_alerts = alerts;
        m.elsewhere_incidents = incidents;
        m.elsewhere_agents = agents;
    }
}

/// Draws when something changed; reacts to keys, the daemons, the log
/// poll and signals; until the operator detaches.
async fn event_loop(
    screen: &mut Screen,
    panes: &mut [Pane],
    active: &mut usize,
    theme: &Theme,
    keymap: &[action::Binding],
) -> ExitCode {
    let mut keys = EventStream::new();
    let mut signals = Signals::new();
    let mut log_poll = tokio::time::interval(LOG_POLL);
    log_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut term_poll = tokio::time::interval(Duration::from_millis(update::term::TERM_POLL_MS));
    term_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let several = panes.len() > 1;
    let mut turn = 0usize;
    loop {
        turn = turn.wrapping_add(1);
        badges(panes, *active);
        let now = now_ms();
        for p in panes.iter_mut() {
            p.model.now = now;
        }
        let m = &mut panes[*active].model;
        if screen.draw_due(m, theme, keymap).is_err() {
            return ExitCode::FAILURE;
        }
        if m.quit {
            return ExitCode::SUCCESS;
        }
        let term_active = m.term_target().is_some() || m.term.is_some() || m.term_release.is_some();
        let mut target = *active;
        let mut requests: Vec<Request> = Vec::new();
        tokio::select! {
            _ = tokio::time::sleep(screen.redraw_in(&panes[*active].model)) => {}
            ev = keys.next() => match ev {
                Some(Ok(Event::Key(k))) if k.kind != KeyEventKind::Release => {
                    let m = &mut panes[*active].model;
                    match switch_key(several, m, k) {
                        Some(_) if m.pending_scale.is_some() || m.term_sending || m.term_release.is_some() => {
                            // Its countdown and terminal input belong to
                            // this host: they finish (or are canceled) here.
                            m.notify("a scale or terminal input is still on its way on this host: wait a moment (Esc cancels a scale)", true);
                        }
                        Some(step) => {
                            *active = (*active + panes.len()).wrapping_add_signed(step) % panes.len();
                            panes[*active].model.dirty = true;
                            screen.clear();
                        }
                        None => requests = on_key(m, keymap, screen, k),
                    }
                }
                Some(Ok(Event::Resize(..))) => {
                    panes[*active].model.dirty = true;
                    screen.resized();
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return ExitCode::FAILURE,
            },
            (i, h) = next_link(panes, turn) => {
                let p = &mut panes[i];
                requests = p.link.handle(&mut p.model, h).await;
                if several {
                    // A host's shutdown never ends a console over several:
                    // it shows as stopped; `q` detaches.
                    p.model.quit = false;
                }
                target = i;
            }
            // Only while a terminal is in view does this send anything.
            _ = term_poll.tick(), if term_active => {
                requests = update::term::term_poll(&mut panes[*active].model);
            }
            _ = log_poll.tick() => {
                let p = &mut panes[*active];
                let m = &mut p.model;
                requests = update::due(m);
                if m.pending_scale.is_some() {
                    m.dirty = true; // the countdown
                }
                p.link.poll_logs(m);
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
                    panes[*active].model.dirty = true;
                }
            },
        }
        let p = &mut panes[target];
        p.link.send(&mut p.model, requests);
    }
}

/// `{` and `}` move between hosts (several hosts, in the normal mode).
fn switch_key(several: bool, m: &Model, k: KeyEvent) -> Option<isize> {
    if !several || m.mode != model::Mode::Normal {
        return None;
    }
    match k.code {
        KeyCode::Char('{') => Some(-1),
        KeyCode::Char('}') => Some(1),
        _ => None,
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
