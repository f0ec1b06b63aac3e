//! The console's logic: `update(&mut Model, Action) -> Vec<Request>` for the
//! operator's intents and `apply` for what the daemon sends. Pure: no IO, no
//! clock (the loop sets `model.now`), so every path is unit-tested.

mod incoming;
mod palette;
pub use incoming::*;
pub use palette::*;

use crate::client::{Incoming, Update};
use crate::proto::{Request, Response, ServerEvent};
use crate::tui::action::{Action, VERBS};
use crate::tui::model::{LOG_LINES, Mode, Model, Panel, Row, push, push_day};

/// Applies an operator action; returns the requests to send to the daemon.
pub fn update(m: &mut Model, action: Action) -> Vec<Request> {
    m.dirty = true;
    match m.mode.clone() {
        Mode::Help => {
            if matches!(
                action,
                Action::Back | Action::Help | Action::Detach | Action::Submit
            ) {
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
            if matches!(action, Action::Submit | Action::Back) {
                if action == Action::Back {
                    m.search.clear();
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
fn normal(m: &mut Model, action: Action) -> Vec<Request> {
    match action {
        Action::ScaleUp
        | Action::ScaleDown
        | Action::Restart
        | Action::StartStop
        | Action::Backup => fleet_action(m, action),
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
            if opened { history_request(m) } else { vec![] }
        }
        Action::Focus(p) => {
            let opened = p == Panel::Detail && m.focus != Panel::Detail;
            m.focus = p;
            if opened { history_request(m) } else { vec![] }
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
            if m.focus != Panel::Fleet {
                return vec![];
            }
            m.focus = Panel::Detail;
            history_request(m)
        }
        Action::Back => {
            if m.focus != Panel::Fleet {
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
            Some((name, desired, _)) => {
                let to = if action == Action::ScaleUp {
                    desired.saturating_add(1)
                } else if desired == 0 {
                    m.notify(format!("{name} is already scaled to 0"), true);
                    return vec![];
                } else {
                    desired - 1
                };
                m.notify(format!("sent: scale {name} {to}"), false);
                vec![Request::Scale {
                    agent: name,
                    replicas: to,
                }]
            }
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
        Action::Backup => {
            m.notify("sent: backup", false);
            vec![Request::Backup]
        }
        _ => vec![],
    }
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
            let pick = if m.focus == Panel::Alerts {
                alerts.get(m.alert_selected)
            } else {
                alerts
                    .iter()
                    .find(|a| a.state == "firing" && !a.acknowledged)
            };
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

/// The incident the keys act on: the selected one in the incident log,
/// else the newest open one. (id, phase, open)
fn selected_incident(m: &Model) -> Option<(u64, String, bool)> {
    let list = m
        .status
        .as_ref()
        .map(|s| s.incidents.as_slice())
        .unwrap_or(&[]);
    let i = if m.focus == Panel::Incidents {
        list.get(m.incident_selected)
    } else {
        list.iter().find(|i| i.status == "open")
    }?;
    Some((i.id, i.phase.clone(), i.status == "open"))
}

fn move_cursor(m: &mut Model, action: &Action, rows: usize) {
    let page = 10;
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
