//! The console's logic: `update(&mut Model, Action) -> Vec<Request>` for the
//! operator's intents and `apply` for what the daemon sends. Pure: no IO, no
//! clock (the loop sets `model.now`), so every path is unit-tested.

mod incoming;
mod palette;
pub mod tasks;
pub mod term;
pub use incoming::*;
pub use palette::*;

use crate::client::{Incoming, Update};
use crate::proto::{Request, Response, ServerEvent};
use crate::tui::action::{Action, VERBS};
use crate::tui::model::{
    LOG_LINES, Mode, Model, Panel, PendingScale, Row, SCALE_DELAY_MS, push, push_day,
};

/// Applies an operator action; returns the requests to send to the daemon.
pub fn update(m: &mut Model, action: Action) -> Vec<Request> {
    m.dirty = true;
    match m.mode.clone() {
        Mode::Help | Mode::Doctor => {
            match action {
                Action::Back | Action::Help | Action::Doctor | Action::Detach | Action::Submit => {
                    m.mode = Mode::Normal;
                    m.help_page = 0;
                }
                Action::Down | Action::PageDown | Action::ToggleExpand => m.help_page += 1,
                // The view turns pages around (page % pages), so every
                // key visibly turns one.
                Action::Up | Action::PageUp => m.help_page = m.help_page.saturating_sub(1),
                _ => {}
            }
            vec![]
        }
        // Keys in focus mode go to the agent (`term::focus_key`); an
        // action arriving here anyway only leaves it.
        Mode::Focus => {
            if action == Action::Unfocus {
                m.mode = Mode::Normal;
            }
            vec![]
        }
        Mode::Confirm { request, .. } => {
            m.mode = Mode::Normal;
            match action {
                Action::Yes => {
                    m.notify(format!("sent: {}", request), false);
                    vec![request]
                }
                _ => {
                    m.notify("cancelled", false);
                    vec![]
                }
            }
        }
        Mode::Filter => {
            text(&mut m.filter, &action);
            if matches!(action, Action::Submit | Action::Back) {
                if action == Action::Back {
                    m.filter.clear();
                }
                m.mode = Mode::Normal;
            }
            m.selected = 0;
            vec![]
        }
        Mode::Search => {
            text(&mut m.search, &action);
            m.search_hit = None;
            if matches!(action, Action::Submit | Action::Back) {
                if action == Action::Back {
                    m.search.clear();
                    m.log_filter = false;
                }
                m.mode = Mode::Normal;
            }
            vec![]
        }
        Mode::Palette(mut input) => match action {
            Action::Back => {
                m.mode = Mode::Normal;
                vec![]
            }
            Action::Submit => {
                m.mode = Mode::Normal;
                palette_command(m, &input)
            }
            Action::Complete => {
                input = complete(m, &input);
                m.mode = Mode::Palette(input);
                vec![]
            }
            a => {
                text(&mut input, &a);
                m.mode = Mode::Palette(input);
                vec![]
            }
        },
        Mode::Normal => normal(m, action),
    }
}

fn text(buf: &mut String, action: &Action) {
    match action {
        Action::Char(c) => buf.push(*c),
        Action::Backspace => {
            buf.pop();
        }
        _ => {}
    }
}

fn confirm(m: &mut Model, prompt: String, request: Request) -> Vec<Request> {
    m.mode = Mode::Confirm { prompt, request };
    vec![]
}

/// Keys outside any prompt: move around, act on the fleet, work incidents.
/// Keys act only on what is selected and visible: fleet actions need the
/// fleet or the agent's detail focused, `a` the alert feed, `n` and `>` the
/// incident log (`n` and `N` step through log matches in the logs).
fn normal(m: &mut Model, action: Action) -> Vec<Request> {
    if m.message.is_some() && matches!(action, Action::Back | Action::Enter) {
        // Dismissed; the same key still cancels or sends a pending scale.
        m.message = None;
        if m.pending_scale.is_none() {
            return vec![];
        }
    }
    if m.pending_scale.is_some() {
        match action {
            Action::Back => {
                if let Some(p) = m.pending_scale.take() {
                    m.notify(format!("cancelled: {} stays at {}", p.agent, p.from), false);
                }
                return vec![];
            }
            Action::Enter => return send_pending_scale(m),
            Action::Detach => {
                let p = m.pending_scale.as_ref().map(|p| (p.agent.clone(), p.to));
                if let Some((agent, to)) = p {
                    m.notify(
                        format!(
                            "scale of {agent} to {to} pending: Enter sends it now, Esc cancels it"
                        ),
                        true,
                    );
                }
                return vec![];
            }
            _ => {}
        }
    }
    match action {
        Action::ScaleUp | Action::ScaleDown | Action::Restart | Action::StartStop => {
            if matches!(m.focus, Panel::Fleet | Panel::Detail) {
                fleet_action(m, action)
            } else {
                m.notify(
                    "fleet keys act on the selected agent: focus the fleet (1) first",
                    true,
                );
                vec![]
            }
        }
        Action::Backup => confirm(
            m,
            "Take a backup of every agent's context now? (y/n)".into(),
            Request::Backup,
        ),
        Action::Note if m.focus == Panel::Logs => {
            step_search(m, false);
            vec![]
        }
        Action::PrevMatch => {
            if m.focus == Panel::Logs {
                step_search(m, true);
            }
            vec![]
        }
        Action::LogFilter | Action::Wrap => {
            log_toggle(m, action);
            vec![]
        }
        Action::SubmitTask => {
            let replica = m.selected_replica_index().unwrap_or(0);
            match m
                .selected_agent()
                .map(|a| (a.name.clone(), a.tasks.is_some(), a.tty.is_some()))
            {
                Some((name, true, _)) => m.mode = Mode::Palette(format!("task {name} ")),
                // A tty agent: a line typed into its terminal.
                Some((name, _, true)) => m.mode = Mode::Palette(format!("send {name}/{replica} ")),
                Some((name, false, false)) => m.notify(
                    format!("{name} takes no tasks (it has no protocol = \"jsonrpc\")"),
                    true,
                ),
                None => m.notify("no agent selected", true),
            }
            vec![]
        }
        Action::ToggleAutoscale => match m.selected_agent() {
            Some(a) => match &a.autoscale {
                Some(x) => {
                    let (name, on) = (a.name.clone(), !x.enabled);
                    let verb = if on { "on" } else { "off" };
                    let prompt = format!("Turn the autoscaler {verb} for {name}? (y/n)");
                    confirm(m, prompt, Request::AutoscaleSet { agent: name, on })
                }
                None => {
                    let why = format!("{} has no `autoscale` in the config", a.name);
                    m.notify(why, true);
                    vec![]
                }
            },
            None => {
                m.notify("no agent selected", true);
                vec![]
            }
        },
        Action::Ack | Action::Note | Action::Advance => incident_action(m, action),
        Action::Char(_)
        | Action::Backspace
        | Action::Submit
        | Action::Complete
        | Action::Yes
        | Action::No => vec![],
        _ => navigate(m, action),
    }
}

/// Moving around: focus, cursor, detail, search, palette, help, span, sort.
fn navigate(m: &mut Model, action: Action) -> Vec<Request> {
    let rows = m.rows().len();
    match action {
        Action::Detach => {
            m.quit = true;
            vec![]
        }
        Action::Shutdown => confirm(
            m,
            "Shut the whole fleet down and stop the daemon? (y/n)".into(),
            Request::Shutdown,
        ),
        Action::FocusNext | Action::FocusPrev => {
            let i = m.focus.number() - 1;
            let n = Panel::ALL.len();
            let j = if action == Action::FocusNext {
                (i + 1) % n
            } else {
                (i + n - 1) % n
            };
            let opened = Panel::ALL[j] == Panel::Detail && m.focus != Panel::Detail;
            m.focus = Panel::ALL[j];
            if opened {
                history_request(m)
            } else {
                tasks::task_poll(m).into_iter().collect()
            }
        }
        Action::Focus(p) => {
            let opened = p == Panel::Detail && m.focus != Panel::Detail;
            m.focus = p;
            if opened {
                history_request(m)
            } else {
                tasks::task_poll(m).into_iter().collect()
            }
        }
        Action::Up
        | Action::Down
        | Action::PageUp
        | Action::PageDown
        | Action::Top
        | Action::Bottom => {
            move_cursor(m, &action, rows);
            vec![]
        }
        Action::Enter => {
            if m.focus == Panel::Tasks {
                return tasks::enter(m);
            }
            if m.focus != Panel::Fleet {
                return vec![];
            }
            m.focus = Panel::Detail;
            history_request(m)
        }
        Action::Back => {
            if m.focus == Panel::Tasks && tasks::back(m) {
                return vec![];
            }
            if m.focus == Panel::Logs && !m.search.is_empty() {
                // Esc clears the log search first, then leaves the logs.
                m.search.clear();
                m.search_hit = None;
                m.log_filter = false;
            } else if m.focus != Panel::Fleet {
                m.focus = Panel::Fleet;
            } else if !m.filter.is_empty() {
                m.filter.clear();
            }
            vec![]
        }
        Action::ToggleExpand => {
            if let Some(name) = m.selected_agent().map(|a| a.name.clone())
                && !m.expanded.remove(&name)
            {
                m.expanded.insert(name);
            }
            vec![]
        }
        Action::Slash => {
            m.mode = if m.focus == Panel::Logs {
                Mode::Search
            } else {
                Mode::Filter
            };
            vec![]
        }
        Action::Palette => {
            m.mode = Mode::Palette(String::new());
            vec![]
        }
        Action::Help => {
            m.mode = Mode::Help;
            vec![]
        }
        Action::Doctor => open_doctor(m),
        Action::TypeInto => term::type_into(m),
        Action::NextWaiting => term::next_waiting(m),
        Action::Unfocus => vec![],
        Action::Span => {
            m.day_view = !m.day_view;
            m.notify(
                if m.day_view {
                    "host graphs: last 24 hours (a point a minute)"
                } else {
                    "host graphs: last 5 minutes"
                },
                false,
            );
            vec![]
        }
        Action::Sort => {
            m.sort = m.sort.next();
            m.notify(format!("sorted by {}", m.sort.label()), false);
            vec![]
        }
        _ => vec![],
    }
}

/// Scale, restart, start/stop the selected agent; back up now.
fn fleet_action(m: &mut Model, action: Action) -> Vec<Request> {
    let agent = m
        .selected_agent()
        .map(|a| (a.name.clone(), a.desired, a.enabled));
    match action {
        Action::ScaleUp | Action::ScaleDown => match agent {
            Some((name, desired, _)) => stage_scale(m, name, desired, action == Action::ScaleUp),
            None => no_agent(m),
        },
        Action::Restart => match agent {
            Some((name, ..)) => {
                let replica = m.selected_replica_index();
                let what = match replica {
                    Some(i) => format!("{name}/{i}"),
                    None => format!("every replica of {name}"),
                };
                confirm(
                    m,
                    format!("Restart {what}? (y/n)"),
                    Request::Restart {
                        agent: name,
                        replica,
                    },
                )
            }
            None => no_agent(m),
        },
        Action::StartStop => match agent {
            Some((name, _, true)) => confirm(
                m,
                format!("Stop {name}? (y/n)"),
                Request::Stop { agent: name },
            ),
            Some((name, _, false)) => {
                m.notify(format!("sent: start {name}"), false);
                vec![Request::Start { agent: name }]
            }
            None => no_agent(m),
        },
        _ => vec![],
    }
}

/// `+`/`-`: the new count is shown and sent after [`SCALE_DELAY_MS`]
/// (each press restarts the delay); Esc cancels, Enter sends it now. A
/// press on another agent sends the pending one at once.
fn stage_scale(m: &mut Model, name: String, desired: u32, up: bool) -> Vec<Request> {
    let mut out = Vec::new();
    if m.pending_scale.as_ref().is_some_and(|p| p.agent != name) {
        out = send_pending_scale(m);
    }
    let (from, cur) = match &m.pending_scale {
        Some(p) => (p.from, p.to),
        None => (desired, desired),
    };
    let to = if up {
        cur.saturating_add(1).min(crate::core::pool::MAX_REPLICAS)
    } else if cur == 0 {
        m.notify(format!("{name} is already scaled to 0"), true);
        return out;
    } else {
        cur - 1
    };
    m.pending_scale = Some(PendingScale {
        agent: name,
        from,
        to,
        due: m.now + SCALE_DELAY_MS,
    });
    out
}

fn send_pending_scale(m: &mut Model) -> Vec<Request> {
    let Some(p) = m.pending_scale.take() else {
        return vec![];
    };
    // Someone (another console, a reload) changed the count meanwhile: an
    // absolute count typed against the old one would undo their change.
    let now = m
        .agents()
        .iter()
        .find(|a| a.name == p.agent)
        .map(|a| a.desired);
    if now != Some(p.from) {
        let what = match now {
            Some(n) => format!("it is at {n} now"),
            None => "it is gone".into(),
        };
        let text = format!(
            "not sent: scale {} {} was typed against {}, but {what}",
            p.agent, p.to, p.from
        );
        m.notify(text, true);
        return vec![];
    }
    if p.to == p.from {
        m.notify(format!("{} stays at {}", p.agent, p.from), false);
        return vec![];
    }
    m.notify(format!("sent: scale {} {}", p.agent, p.to), false);
    vec![Request::Scale {
        agent: p.agent,
        replicas: p.to,
    }]
}

/// What is due now: a staged scale whose delay is over.
pub fn due(m: &mut Model) -> Vec<Request> {
    let mut out = match &m.pending_scale {
        Some(p) if m.now >= p.due => send_pending_scale(m),
        _ => vec![],
    };
    out.extend(tasks::task_poll(m));
    if m.term_target().is_none() {
        out.extend(term::worktree_poll(m));
    }
    out
}

/// Log lines that match the search (case-insensitive), oldest first.
pub fn log_matches(m: &Model) -> Vec<usize> {
    if m.search.is_empty() {
        return vec![];
    }
    let n = m.search.to_lowercase();
    m.logs
        .iter()
        .enumerate()
        .filter(|(_, l)| l.text.to_lowercase().contains(&n))
        .map(|(i, _)| i)
        .collect()
}

/// `n` (older) and `N` (newer): moves to the next match and scrolls so it
/// shows.
fn step_search(m: &mut Model, newer: bool) {
    let hits = log_matches(m);
    if hits.is_empty() {
        let what = if m.search.is_empty() {
            "no search: / starts one".to_string()
        } else {
            format!("no line matches “{}”", m.search)
        };
        m.notify(what, true);
        return;
    }
    let cur = m.search_hit.unwrap_or(m.logs.len());
    let next = if newer {
        hits.iter().copied().find(|&i| i > cur)
    } else {
        hits.iter().rev().copied().find(|&i| i < cur)
    };
    let Some(i) = next else {
        m.notify(
            if newer {
                "no newer match"
            } else {
                "no older match"
            },
            false,
        );
        return;
    };
    m.search_hit = Some(i);
    let pos = hits.iter().position(|&h| h == i).unwrap_or(0);
    // Scrolled so the hit is the bottom line (in filter mode, of the
    // matching lines).
    m.log_scroll = if m.log_filter {
        hits.len() - 1 - pos
    } else {
        m.logs.len() - 1 - i
    };
    m.notify(format!("match {} of {}", pos + 1, hits.len()), false);
}

fn log_toggle(m: &mut Model, action: Action) {
    if m.focus != Panel::Logs {
        m.notify("focus the logs (6) first", true);
        return;
    }
    if action == Action::Wrap {
        m.log_wrap = !m.log_wrap;
        let what = if m.log_wrap { "wrap" } else { "are cut" };
        m.notify(format!("long lines {what}"), false);
        return;
    }
    if m.search.is_empty() {
        m.notify("no search to filter by: / starts one", true);
        return;
    }
    m.log_filter = !m.log_filter;
    m.log_scroll = 0;
    m.search_hit = None;
    let what = if m.log_filter {
        format!("only lines matching “{}”", m.search)
    } else {
        "all lines".into()
    };
    m.notify(format!("logs: {what}"), false);
}

/// Acknowledge, note, advance: the selected alert or incident.
fn incident_action(m: &mut Model, action: Action) -> Vec<Request> {
    match action {
        Action::Ack => {
            let alerts = m
                .status
                .as_ref()
                .map(|s| s.alerts.as_slice())
                .unwrap_or(&[]);
            if m.focus != Panel::Alerts {
                m.notify(
                    "a acknowledges the selected alert: focus the alert feed (4) first",
                    true,
                );
                return vec![];
            }
            let pick = alerts.get(m.alert_selected);
            match pick {
                Some(a) if a.state == "firing" => {
                    let id = a.id.clone();
                    m.notify(format!("sent: ack {id}"), false);
                    vec![Request::Ack { pattern: id }]
                }
                Some(a) => {
                    let msg = format!(
                        "{} is {}: only firing alerts are acknowledged",
                        a.id, a.state
                    );
                    m.notify(msg, true);
                    vec![]
                }
                None => {
                    m.notify("no firing alert to acknowledge", true);
                    vec![]
                }
            }
        }
        Action::Note => match selected_incident(m) {
            Some((id, _, _)) => {
                m.mode = Mode::Palette(format!("note {id} "));
                vec![]
            }
            None => {
                m.notify("no incident selected (focus the incident log: 5)", true);
                vec![]
            }
        },
        Action::Advance => {
            match selected_incident(m) {
                Some((id, phase, open)) => {
                    if !open {
                        m.notify(format!("incident #{id} is resolved"), true);
                        return vec![];
                    }
                    let next = crate::core::incident::Phase::parse(&phase).and_then(|p| p.next());
                    match next {
                        Some(n) => confirm(
                            m,
                            format!("Advance incident #{id} from {phase} to {}? (y/n)", n.name()),
                            Request::IncidentAdvance { id, phase: None },
                        ),
                        None => {
                            m.notify(format!("incident #{id} is in its last phase; resolve it with :resolve {id}"), true);
                            vec![]
                        }
                    }
                }
                None => {
                    m.notify("no incident selected (focus the incident log: 5)", true);
                    vec![]
                }
            }
        }
        _ => vec![],
    }
}

fn no_agent(m: &mut Model) -> Vec<Request> {
    m.notify("no agent selected", true);
    vec![]
}

/// The incident the keys act on: the selected one, while the incident log
/// has focus. (id, phase, open)
fn selected_incident(m: &Model) -> Option<(u64, String, bool)> {
    let list = m
        .status
        .as_ref()
        .map(|s| s.incidents.as_slice())
        .unwrap_or(&[]);
    if m.focus != Panel::Incidents {
        return None;
    }
    let i = list.get(m.incident_selected)?;
    Some((i.id, i.phase.clone(), i.status == "open"))
}

fn move_cursor(m: &mut Model, action: &Action, rows: usize) {
    let page = 10;
    if m.focus == Panel::Tasks {
        return tasks::move_cursor(m, action);
    }
    if matches!(m.focus, Panel::Alerts | Panel::Incidents) {
        let (len, cur) = match (m.focus, m.status.as_ref()) {
            (Panel::Alerts, Some(s)) => (s.alerts.len(), &mut m.alert_selected),
            (_, Some(s)) => (s.incidents.len(), &mut m.incident_selected),
            (Panel::Alerts, None) => (0, &mut m.alert_selected),
            (_, None) => (0, &mut m.incident_selected),
        };
        let last = len.saturating_sub(1);
        *cur = match action {
            Action::Up => cur.saturating_sub(1),
            Action::Down => (*cur + 1).min(last),
            Action::PageUp => cur.saturating_sub(page),
            Action::PageDown => (*cur + page).min(last),
            Action::Top => 0,
            _ => last,
        };
        return;
    }
    if m.focus == Panel::Logs {
        let max = m.logs.len().saturating_sub(1);
        m.log_scroll = match action {
            Action::Up => (m.log_scroll + 1).min(max),
            Action::Down => m.log_scroll.saturating_sub(1),
            Action::PageUp => (m.log_scroll + page).min(max),
            Action::PageDown => m.log_scroll.saturating_sub(page),
            Action::Top => max,
            _ => 0,
        };
        return;
    }
    let last = rows.saturating_sub(1);
    m.selected = match action {
        Action::Up => m.selected.saturating_sub(1),
        Action::Down => (m.selected + 1).min(last),
        Action::PageUp => m.selected.saturating_sub(page),
        Action::PageDown => (m.selected + page).min(last),
        Action::Top => 0,
        _ => last,
    };
}

/// The request that fetches new output of the selected agent, when the
/// logs panel needs it. Also resets the buffer when the selection changed.
pub fn logs_request(m: &mut Model) -> Option<Request> {
    let agent = m.selected_agent()?.name.clone();
    if m.logs_agent.as_deref() != Some(agent.as_str()) {
        // Each agent keeps its own search.
        if let Some(old) = m.logs_agent.take() {
            let s = std::mem::take(&mut m.search);
            if s.is_empty() {
                m.searches.remove(&old);
            } else {
                m.searches.insert(old, s);
            }
        }
        m.search = m.searches.remove(&agent).unwrap_or_default();
        m.log_filter = m.log_filter && !m.search.is_empty();
        m.search_hit = None;
        m.logs.clear();
        m.log_cursor = None;
        m.log_scroll = 0;
        m.logs_agent = Some(agent.clone());
        m.dirty = true;
    }
    Some(Request::Logs {
        agent,
        lines: 500,
        since: m.log_cursor,
    })
}

/// A large fleet's status carries few transitions per replica: the
/// detail asks for the selected replica's whole history when it opens.
fn history_request(m: &Model) -> Vec<Request> {
    match (m.selected_agent(), m.selected_replica()) {
        (Some(a), Some(r)) => vec![Request::History {
            agent: a.name.clone(),
            replica: r.index,
        }],
        _ => vec![],
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_incoming;
#[cfg(test)]
mod tests_logs;
#[cfg(test)]
mod tests_tasks;
#[cfg(test)]
mod tests_term;

/// `D`: the System Health Check runs; its report shows when it answers.
fn open_doctor(m: &mut Model) -> Vec<Request> {
    m.mode = Mode::Doctor;
    m.doctor = None;
    vec![Request::Doctor]
}
