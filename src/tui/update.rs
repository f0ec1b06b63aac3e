//! The console's logic: `update(&mut Model, Action) -> Vec<Request>` for the
//! operator's intents and `apply` for what the daemon sends. Pure: no IO, no
//! clock (the loop sets `model.now`), so every path is unit-tested.

use crate::client::{Incoming, Update};
use crate::proto::parse_target;
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

fn normal(m: &mut Model, action: Action) -> Vec<Request> {
    let rows = m.rows().len();
    let agent = m
        .selected_agent()
        .map(|a| (a.name.clone(), a.desired, a.enabled));
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
            if let Some((name, ..)) = agent
                && !m.expanded.remove(&name)
            {
                m.expanded.insert(name);
            }
            vec![]
        }
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
        Action::Char(_)
        | Action::Backspace
        | Action::Submit
        | Action::Complete
        | Action::Yes
        | Action::No => vec![],
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

/// Runs a palette line such as `scale researcher 3`.
fn palette_command(m: &mut Model, line: &str) -> Vec<Request> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let known = |m: &Model, a: &str| m.agents().iter().any(|x| x.name == a);
    let req = match words.as_slice() {
        [] => return vec![],
        ["scale", a, n] => match n.parse::<u32>() {
            Ok(n) => Request::Scale {
                agent: a.to_string(),
                replicas: n,
            },
            Err(_) => {
                m.notify(format!("`{n}` is not a replica count"), true);
                return vec![];
            }
        },
        ["restart", t] => match parse_target(t) {
            Ok((agent, replica)) => Request::Restart { agent, replica },
            Err(e) => {
                m.notify(e, true);
                return vec![];
            }
        },
        ["stop", a] => Request::Stop {
            agent: a.to_string(),
        },
        ["start", a] => Request::Start {
            agent: a.to_string(),
        },
        ["logs", a] if known(m, a) => {
            let rows = m.rows();
            if let Some(pos) = rows.iter().position(|r| match r {
                Row::Agent(i) => m.agents()[*i].name == *a,
                _ => false,
            }) {
                m.selected = pos;
            }
            m.focus = Panel::Logs;
            return vec![];
        }
        ["reload"] => Request::Reload,
        ["backup"] => Request::Backup,
        ["ack", pattern] => Request::Ack {
            pattern: pattern.to_string(),
        },
        ["silence", pattern, d] => match crate::core::units::parse_duration(d) {
            Ok(d) => Request::Silence {
                pattern: pattern.to_string(),
                for_ms: d.as_millis() as u64,
            },
            Err(e) => {
                m.notify(e, true);
                return vec![];
            }
        },
        ["incident", level, _, ..] => match level.parse::<u8>() {
            Ok(level @ 1..=3) => Request::IncidentOpen {
                title: rest_after(line, 2),
                level,
                agent: None,
            },
            _ => {
                m.notify("the level is 1 (critical), 2 (major) or 3 (minor)", true);
                return vec![];
            }
        },
        ["note", id, _, ..] | ["advance", id] | ["resolve", id] => {
            let Ok(id) = id.trim_start_matches('#').parse::<u64>() else {
                m.notify(format!("`{id}` is not an incident number"), true);
                return vec![];
            };
            match words[0] {
                "note" => Request::IncidentNote {
                    id,
                    text: rest_after(line, 2),
                },
                "advance" => Request::IncidentAdvance { id, phase: None },
                _ => Request::IncidentResolve { id, note: None },
            }
        }
        ["shutdown"] => {
            return confirm(
                m,
                "Shut the whole fleet down and stop the daemon? (y/n)".into(),
                Request::Shutdown,
            );
        }
        ["detach"] | ["quit"] | ["q"] => {
            m.quit = true;
            return vec![];
        }
        [verb, ..] => {
            let usage = VERBS
                .iter()
                .find(|(v, _)| v == verb)
                .map(|(v, args)| format!("usage: {v} {args}"))
                .unwrap_or_else(|| {
                    format!(
                        "unknown command `{verb}`; commands: {}",
                        VERBS.iter().map(|(v, _)| *v).collect::<Vec<_>>().join(", ")
                    )
                });
            m.notify(usage, true);
            return vec![];
        }
    };
    m.notify(format!("sent: {}", req), false);
    vec![req]
}

/// The text of `line` after its first `n` words.
fn rest_after(line: &str, n: usize) -> String {
    let mut rest = line.trim_start();
    for _ in 0..n {
        rest = rest
            .split_once(char::is_whitespace)
            .map_or("", |(_, r)| r)
            .trim_start();
    }
    rest.trim_end().to_string()
}

/// Tab completion: the verb, then an agent name.
pub fn complete(m: &Model, input: &str) -> String {
    let ends_with_space = input.ends_with(' ');
    let words: Vec<&str> = input.split_whitespace().collect();
    let common = |cands: Vec<&str>, prefix: &str| -> Option<String> {
        let first = cands.first()?;
        let mut p = first.to_string();
        for c in &cands[1..] {
            while !c.starts_with(&p) {
                p.pop();
            }
        }
        (p.len() >= prefix.len()).then_some(p)
    };
    match (words.as_slice(), ends_with_space) {
        ([], _) => input.to_string(),
        ([verb], false) => {
            let cands: Vec<&str> = VERBS
                .iter()
                .map(|(v, _)| *v)
                .filter(|v| v.starts_with(verb))
                .collect();
            match (cands.len(), common(cands.clone(), verb)) {
                (1, _) => format!("{} ", cands[0]),
                (_, Some(p)) => p,
                _ => input.to_string(),
            }
        }
        ([verb], true) | ([verb, _], false) => {
            let prefix = if ends_with_space { "" } else { words[1] };
            let names: Vec<&str> = m
                .agents()
                .iter()
                .map(|a| a.name.as_str())
                .filter(|n| n.starts_with(prefix))
                .collect();
            match (names.len(), common(names.clone(), prefix)) {
                (1, _) => format!("{verb} {} ", names[0]),
                (_, Some(p)) => format!("{verb} {p}"),
                _ => input.to_string(),
            }
        }
        _ => input.to_string(),
    }
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

/// Applies what the daemon sent.
pub fn apply(m: &mut Model, incoming: Incoming) {
    m.dirty = true;
    match incoming {
        Incoming::Answer(req, result) => match (req, result) {
            (Request::Logs { agent, .. }, Ok(Response::Logs { lines, next })) => {
                if m.logs_agent.as_deref() == Some(agent.as_str()) {
                    if lines.is_empty() && m.log_cursor == Some(next) {
                        m.dirty = false;
                    }
                    for l in lines {
                        if m.logs.len() == LOG_LINES {
                            m.logs.pop_front();
                        }
                        m.logs.push_back(l);
                    }
                    m.log_cursor = Some(next);
                }
            }
            (Request::History { agent, replica }, Ok(Response::History { transitions })) => {
                if let Some(r) = m
                    .status
                    .as_mut()
                    .and_then(|s| s.agents.iter_mut().find(|a| a.name == agent))
                    .and_then(|a| a.replicas.iter_mut().find(|r| r.index == replica))
                {
                    // Transitions that arrived as events meanwhile stay.
                    let newest = transitions.last().map_or(0, |t| t.at);
                    let later: Vec<_> = r.history.drain(..).filter(|t| t.at > newest).collect();
                    r.history = transitions;
                    r.history.extend(later);
                }
            }
            (_, Ok(Response::Done { message } | Response::Stopped { message, .. })) => {
                m.notify(message, false);
            }
            (req, Err(e)) => m.notify(format!("{}: {}", req, e.message), true),
            (_, Ok(_)) => m.dirty = false,
        },
        Incoming::Update(Update::Snapshot(seq, mut status)) => {
            m.seq = seq;
            if let Some(h) = status.history.take() {
                load_history(m, &h);
            }
            m.status = Some(*status);
        }
        Incoming::Update(Update::Event(seq, event)) => {
            m.seq = seq;
            apply_event(m, event);
        }
        Incoming::Closed(reason) => {
            m.conn = crate::tui::model::Conn::Reconnecting {
                error: reason,
                attempts: 0,
            };
        }
    }
}

/// Fills the graphs from a snapshot's history, so they show the past at
/// once (a reconnect replaces what the console had).
pub fn load_history(m: &mut Model, h: &crate::proto::MetricHistory) {
    let fill = |series: &mut crate::tui::model::Series, values: &[f32]| {
        series.clear();
        let n = values.len() as u64;
        for (i, v) in values.iter().enumerate() {
            let at = h.end.saturating_sub((n - 1 - i as u64) * h.step_ms);
            push(series, at, f64::from(*v));
        }
    };
    // Before the daemon's first tick only the stored day view is there.
    if h.step_ms > 0 {
        fill(&mut m.host_cpu, &h.host_cpu);
        fill(&mut m.host_mem, &h.host_mem);
        fill(&mut m.net_rx, &h.net_rx);
        fill(&mut m.net_tx, &h.net_tx);
        m.cores = vec![Default::default(); h.cores.len()];
        for (s, v) in m.cores.iter_mut().zip(&h.cores) {
            fill(s, v);
        }
    }
    m.day_cpu.clear();
    m.day_mem.clear();
    if h.day_step_ms > 0 {
        let n = h.day_cpu.len() as u64;
        for (i, (c, mm)) in h.day_cpu.iter().zip(&h.day_mem).enumerate() {
            let at = match h.day_times.get(i) {
                Some(at) if h.day_times.len() == h.day_cpu.len() => *at,
                _ => h.day_end.saturating_sub((n - 1 - i as u64) * h.day_step_ms),
            };
            m.day_cpu.push_back((at, f64::from(*c)));
            m.day_mem.push_back((at, f64::from(*mm)));
        }
        // The newest minute, if still open, is refilled from the live
        // samples.
        if m.day_cpu
            .back()
            .is_some_and(|p| h.step_ms > 0 && p.0 + h.day_step_ms > h.end)
        {
            m.day_cpu.pop_back();
            m.day_mem.pop_back();
        }
        m.day_acc = (None, None);
    }
    if h.step_ms == 0 {
        m.dirty = true;
        return;
    }
    m.agent_cpu.clear();
    m.agent_mem.clear();
    for a in &h.agents {
        fill(m.agent_cpu.entry(a.name.clone()).or_default(), &a.cpu);
        fill(m.agent_mem.entry(a.name.clone()).or_default(), &a.mem);
    }
    m.dirty = true;
}

fn apply_event(m: &mut Model, event: ServerEvent) {
    let Some(status) = m.status.as_mut() else {
        return;
    };
    match event {
        ServerEvent::Transition {
            agent,
            replica,
            transition,
        } => {
            if let Some(a) = status.agents.iter_mut().find(|a| a.name == agent) {
                match a.replicas.iter_mut().find(|r| r.index == replica) {
                    Some(r) => {
                        r.state = transition.to;
                        r.since = transition.at;
                        // What it was waiting for is over; a new wait says so.
                        r.waiting = matches!(transition.to, crate::core::lifecycle::State::Backoff)
                            .then(|| transition.reason.clone());
                        if transition.to.is_running() {
                            r.error = None;
                        }
                        if transition.to == crate::core::lifecycle::State::ActiveOperation
                            && transition.from == crate::core::lifecycle::State::ContextPreparation
                        {
                            r.started_at = Some(transition.at);
                            r.pid = transition
                                .reason
                                .strip_prefix("spawned pid ")
                                .and_then(|p| p.parse().ok());
                        }
                        if !transition.to.may_have_process() {
                            r.pid = None;
                            r.started_at = None;
                            r.cpu_percent = 0.0;
                            r.rss_bytes = 0;
                        }
                        if transition.from == crate::core::lifecycle::State::Adaptation
                            && matches!(
                                transition.to,
                                crate::core::lifecycle::State::Initialization
                                    | crate::core::lifecycle::State::Backoff
                            )
                        {
                            r.restarts += 1;
                        }
                        r.history.push(transition);
                        // As many as the daemon keeps (a fetched history
                        // stays whole).
                        if r.history.len() > crate::core::lifecycle::HISTORY_CAP {
                            r.history.remove(0);
                        }
                    }
                    None => {
                        // A new replica (scale up): it shows up fully in the next snapshot;
                        // start it from this transition.
                        a.replicas.push(crate::proto::ReplicaStatus {
                            index: replica,
                            state: transition.to,
                            since: transition.at,
                            pid: None,
                            started_at: None,
                            restarts: 0,
                            failures: 0,
                            cpu_seconds: 0.0,
                            last_exit: None,
                            waiting: None,
                            error: None,
                            cpu_percent: 0.0,
                            rss_bytes: 0,
                            processes: 0,
                            history: vec![transition],
                        });
                        a.replicas.sort_by_key(|r| r.index);
                    }
                }
                a.running = a.replicas.iter().filter(|r| r.state.is_running()).count() as u32;
                // Scaled-away replicas disappear once stopped.
                let desired = a.desired;
                a.replicas.retain(|r| {
                    r.index < desired || r.state != crate::core::lifecycle::State::Stopped
                });
            }
        }
        ServerEvent::Samples { host, replicas } => {
            let now = m.now;
            push(&mut m.host_cpu, now, host.cpu_percent);
            push_day(&mut m.day_cpu, &mut m.day_acc.0, now, host.cpu_percent);
            if host.memory_total > 0 {
                let pct = host.memory_used as f64 * 100.0 / host.memory_total as f64;
                push(&mut m.host_mem, now, pct);
                push_day(&mut m.day_mem, &mut m.day_acc.1, now, pct);
            }
            push(&mut m.net_rx, now, host.net_rx_bps);
            push(&mut m.net_tx, now, host.net_tx_bps);
            if m.cores.len() != host.per_core.len() {
                m.cores = vec![Default::default(); host.per_core.len()];
            }
            for (s, v) in m.cores.iter_mut().zip(&host.per_core) {
                push(s, now, *v);
            }
            status.host = host;
            let mut per_agent: std::collections::HashMap<&str, (f64, u64)> = Default::default();
            for s in &replicas {
                let e = per_agent.entry(s.agent.as_str()).or_default();
                e.0 += s.cpu_percent;
                e.1 += s.rss_bytes;
                if let Some(a) = status.agents.iter_mut().find(|a| a.name == s.agent)
                    && let Some(r) = a.replicas.iter_mut().find(|r| r.index == s.replica)
                {
                    r.cpu_percent = s.cpu_percent;
                    r.rss_bytes = s.rss_bytes;
                    r.processes = s.processes;
                }
            }
            for a in &status.agents {
                let (cpu, mem) = per_agent.get(a.name.as_str()).copied().unwrap_or_default();
                push(m.agent_cpu.entry(a.name.clone()).or_default(), now, cpu);
                push(
                    m.agent_mem.entry(a.name.clone()).or_default(),
                    now,
                    mem as f64,
                );
            }
            status.now = now;
        }
        ServerEvent::Audit {
            records,
            backup_running,
            progress,
        } => {
            status.audit = records;
            status.backup_running = backup_running;
            status.backup_progress = progress;
        }
        ServerEvent::Storage { faults } => status.storage = faults,
        ServerEvent::Alerts {
            alerts,
            incidents,
            notifiers,
            alerts_omitted,
            incidents_omitted,
        } => {
            status.alerts_omitted = alerts_omitted;
            status.incidents_omitted = incidents_omitted;
            status.alerts = alerts;
            status.incidents = incidents;
            status.notifiers = notifiers;
            m.alert_selected = m.alert_selected.min(status.alerts.len().saturating_sub(1));
            m.incident_selected = m
                .incident_selected
                .min(status.incidents.len().saturating_sub(1));
        }
        ServerEvent::Agent {
            name,
            desired,
            enabled,
        } => {
            if let Some(a) = status.agents.iter_mut().find(|a| a.name == name) {
                a.desired = desired;
                a.enabled = enabled;
            }
        }
        ServerEvent::FleetChanged => m.notify("the fleet changed (reload)", false),
        ServerEvent::ShuttingDown => m.notify("the daemon is shutting down", true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::lifecycle::{State, Transition};
    use crate::proto::{ErrorKind, ErrorReply, HostStatus, ReplicaSample};
    use crate::tui::fixture::{NOW, model};
    use crate::tui::model::Sort;

    fn select(m: &mut Model, agent: &str) {
        m.selected = m
            .rows()
            .iter()
            .position(|r| matches!(r, Row::Agent(i) if m.agents()[*i].name == agent))
            .expect("agent row");
    }

    #[test]
    fn detach_quits_without_touching_the_fleet() {
        let mut m = model();
        assert!(update(&mut m, Action::Detach).is_empty());
        assert!(m.quit);
    }

    #[test]
    fn shutdown_asks_first_and_only_yes_sends_it() {
        let mut m = model();
        assert!(update(&mut m, Action::Shutdown).is_empty());
        assert!(matches!(m.mode, Mode::Confirm { .. }));
        assert!(update(&mut m, Action::No).is_empty());
        assert_eq!(m.mode, Mode::Normal);
        update(&mut m, Action::Shutdown);
        assert_eq!(update(&mut m, Action::Yes), vec![Request::Shutdown]);
    }

    #[test]
    fn focus_moves_with_tab_shift_tab_and_digits() {
        let mut m = model();
        update(&mut m, Action::FocusNext);
        assert_eq!(m.focus, Panel::Graphs);
        update(&mut m, Action::FocusPrev);
        update(&mut m, Action::FocusPrev);
        assert_eq!(m.focus, Panel::Diagnostics, "wraps around");
        update(&mut m, Action::Focus(Panel::Logs));
        assert_eq!(m.focus, Panel::Logs);
    }

    #[test]
    fn arrows_move_the_selection_within_bounds() {
        let mut m = model();
        update(&mut m, Action::Up);
        assert_eq!(m.selected, 0);
        update(&mut m, Action::Down);
        update(&mut m, Action::Down);
        assert_eq!(
            m.selected_agent().map(|a| a.name.as_str()),
            Some("flaky-tool")
        );
        update(&mut m, Action::PageDown);
        assert_eq!(m.selected, 3);
        update(&mut m, Action::Top);
        assert_eq!(m.selected, 0);
        update(&mut m, Action::Bottom);
        assert_eq!(m.selected, 3);
        update(&mut m, Action::PageUp);
        assert_eq!(m.selected, 0);
    }

    #[test]
    fn in_the_logs_arrows_scroll_and_g_follows() {
        let mut m = model();
        m.focus = Panel::Logs;
        update(&mut m, Action::Up);
        update(&mut m, Action::PageUp);
        assert_eq!(m.log_scroll, 11);
        update(&mut m, Action::Down);
        assert_eq!(m.log_scroll, 10);
        update(&mut m, Action::Top);
        assert_eq!(m.log_scroll, 29);
        update(&mut m, Action::Bottom);
        assert_eq!(m.log_scroll, 0, "G follows again");
        update(&mut m, Action::PageDown);
        assert_eq!(m.log_scroll, 0);
    }

    #[test]
    fn enter_opens_detail_and_esc_goes_back() {
        let mut m = model();
        update(&mut m, Action::Enter);
        assert_eq!(m.focus, Panel::Detail);
        update(&mut m, Action::Back);
        assert_eq!(m.focus, Panel::Fleet);
        m.filter = "res".into();
        update(&mut m, Action::Back);
        assert!(m.filter.is_empty(), "Esc in the fleet clears the filter");
    }

    #[test]
    fn opening_the_detail_asks_for_the_whole_history_and_keeps_it() {
        use crate::core::lifecycle::{State, Transition};
        for open in [Action::Enter, Action::Focus(Panel::Detail)] {
            let mut m = model();
            let (agent, replica) = {
                let a = m.selected_agent().expect("agent");
                (a.name.clone(), m.selected_replica().expect("replica").index)
            };
            let asked = update(&mut m, open);
            assert_eq!(
                asked,
                vec![Request::History {
                    agent: agent.clone(),
                    replica
                }]
            );
            let long: Vec<Transition> = (0..40)
                .map(|i| Transition {
                    at: i,
                    from: State::ActiveOperation,
                    to: State::Adaptation,
                    reason: format!("step {i}"),
                })
                .collect();
            apply(
                &mut m,
                Incoming::Answer(
                    Request::History {
                        agent: agent.clone(),
                        replica,
                    },
                    Ok(Response::History {
                        transitions: long.clone(),
                    }),
                ),
            );
            let r = m.selected_replica().expect("replica");
            assert!(r.history.len() >= 40, "the fetched history is kept whole");
            assert_eq!(&r.history[..40], &long[..]);
        }
    }

    #[test]
    fn space_expands_replicas_and_restart_targets_the_selected_replica() {
        let mut m = model();
        select(&mut m, "researcher");
        update(&mut m, Action::ToggleExpand);
        assert_eq!(m.rows().len(), 4 + 3);
        update(&mut m, Action::Down);
        update(&mut m, Action::Down);
        assert_eq!(m.selected_replica_index(), Some(1));
        update(&mut m, Action::Restart);
        assert_eq!(
            update(&mut m, Action::Yes),
            vec![Request::Restart {
                agent: "researcher".into(),
                replica: Some(1)
            }]
        );
        select(&mut m, "researcher");
        update(&mut m, Action::ToggleExpand);
        assert_eq!(m.rows().len(), 4);
    }

    #[test]
    fn plus_and_minus_scale_the_selected_agent() {
        let mut m = model();
        select(&mut m, "researcher");
        assert_eq!(
            update(&mut m, Action::ScaleUp),
            vec![Request::Scale {
                agent: "researcher".into(),
                replicas: 4
            }]
        );
        assert_eq!(
            update(&mut m, Action::ScaleDown),
            vec![Request::Scale {
                agent: "researcher".into(),
                replicas: 2
            }]
        );
        m.status.as_mut().expect("status").agents[1].desired = 0;
        assert!(update(&mut m, Action::ScaleDown).is_empty());
        assert!(m.notices.back().is_some_and(|n| n.error));
    }

    #[test]
    fn s_stops_after_confirmation_and_starts_at_once() {
        let mut m = model();
        select(&mut m, "planner");
        assert!(update(&mut m, Action::StartStop).is_empty());
        assert_eq!(
            update(&mut m, Action::Yes),
            vec![Request::Stop {
                agent: "planner".into()
            }]
        );
        select(&mut m, "indexer");
        assert_eq!(
            update(&mut m, Action::StartStop),
            vec![Request::Start {
                agent: "indexer".into()
            }]
        );
    }

    #[test]
    fn b_sends_a_backup_and_the_refusal_is_shown() {
        let mut m = model();
        assert_eq!(update(&mut m, Action::Backup), vec![Request::Backup]);
        apply(
            &mut m,
            Incoming::Answer(
                Request::Backup,
                Err(ErrorReply {
                    kind: ErrorKind::NotAvailable,
                    message: "backups are not available yet".into(),
                }),
            ),
        );
        let n = m.notices.back().expect("notice");
        assert!(n.error && n.text.contains("not available yet"), "{n:?}");
    }

    #[test]
    fn a_acks_the_first_firing_alert_or_says_there_is_none() {
        let mut m = model();
        assert_eq!(
            update(&mut m, Action::Ack),
            vec![Request::Ack {
                pattern: "replica-failed/flaky-tool".into()
            }]
        );
        // In the alert feed: the selected one; a pending alert cannot be acked.
        m.focus = Panel::Alerts;
        update(&mut m, Action::Down);
        assert_eq!(m.alert_selected, 1);
        assert!(update(&mut m, Action::Ack).is_empty());
        assert!(
            m.notices
                .back()
                .is_some_and(|n| n.error && n.text.contains("pending"))
        );
        if let Some(s) = m.status.as_mut() {
            s.alerts.clear();
        }
        m.focus = Panel::Fleet;
        assert!(update(&mut m, Action::Ack).is_empty());
        assert!(
            m.notices
                .back()
                .is_some_and(|n| n.text.contains("no firing alert"))
        );
    }

    #[test]
    fn the_day_view_keeps_its_gaps_and_a_stored_view_shows_before_the_first_tick() {
        let mut m = Model::new(NOW);
        let h = crate::proto::MetricHistory {
            day_step_ms: 60_000,
            day_end: NOW - 120_000,
            // Two minutes, an hour apart (the daemon was down between).
            day_times: vec![NOW - 3_720_000, NOW - 120_000],
            day_cpu: vec![10.0, 20.0],
            day_mem: vec![30.0, 40.0],
            // No tick yet: no 5-minute series.
            ..Default::default()
        };
        load_history(&mut m, &h);
        let day: Vec<_> = m.day_cpu.iter().copied().collect();
        assert_eq!(day, vec![(NOW - 3_720_000, 10.0), (NOW - 120_000, 20.0)]);
        assert_eq!(m.day_mem.back(), Some(&(NOW - 120_000, 40.0)));
    }

    #[test]
    fn a_snapshot_with_history_fills_the_graphs_at_once() {
        let mut m = Model::new(NOW);
        let mut status = crate::tui::fixture::status();
        status.history = Some(Box::new(crate::proto::MetricHistory {
            step_ms: 1000,
            end: NOW,
            host_cpu: vec![10.0, 20.0, 30.0],
            host_mem: vec![50.0; 3],
            net_rx: vec![0.0; 3],
            net_tx: vec![0.0; 3],
            cores: vec![vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]],
            agents: vec![crate::proto::AgentHistory {
                name: "planner".into(),
                cpu: vec![1.0, 2.0],
                mem: vec![1e6, 2e6],
            }],
            ..Default::default()
        }));
        apply(
            &mut m,
            Incoming::Update(Update::Snapshot(1, Box::new(status))),
        );
        let cpu: Vec<_> = m.host_cpu.iter().copied().collect();
        assert_eq!(
            cpu,
            vec![(NOW - 2000, 10.0), (NOW - 1000, 20.0), (NOW, 30.0)]
        );
        assert_eq!(m.cores.len(), 2);
        assert_eq!(m.agent_cpu["planner"].back(), Some(&(NOW, 2.0)));
        assert_eq!(m.agent_mem["planner"].front(), Some(&(NOW - 1000, 1e6)));
        // The history is not kept in the replicated status.
        assert!(m.status.as_ref().is_some_and(|s| s.history.is_none()));
    }

    #[test]
    fn the_day_view_averages_samples_per_minute_and_t_toggles_it() {
        let mut m = model();
        let mut day = crate::tui::model::Series::new();
        let mut acc = None;
        let minute = 60_000 * 1000;
        for (i, v) in [10.0, 20.0, 30.0].iter().enumerate() {
            crate::tui::model::push_day(&mut day, &mut acc, minute + i as u64 * 1000, *v);
        }
        assert!(day.is_empty(), "the minute is still open");
        crate::tui::model::push_day(&mut day, &mut acc, minute + 60_000, 50.0);
        assert_eq!(day.back(), Some(&(minute, 20.0)));
        assert!(!m.day_view);
        assert!(update(&mut m, Action::Span).is_empty());
        assert!(m.day_view);
        update(&mut m, Action::Span);
        assert!(!m.day_view);
    }

    #[test]
    fn incident_keys_note_and_advance_the_selected_incident() {
        let mut m = model();
        m.focus = Panel::Incidents;
        assert!(update(&mut m, Action::Note).is_empty());
        assert_eq!(m.mode, Mode::Palette("note 3 ".into()));
        for c in "restarted by hand".chars() {
            update(&mut m, Action::Char(c));
        }
        assert_eq!(
            update(&mut m, Action::Submit),
            vec![Request::IncidentNote {
                id: 3,
                text: "restarted by hand".into()
            }]
        );
        assert!(update(&mut m, Action::Advance).is_empty());
        match &m.mode {
            Mode::Confirm { prompt, request } => {
                assert!(
                    prompt.contains("from Assessment to Containment"),
                    "{prompt}"
                );
                assert_eq!(request, &Request::IncidentAdvance { id: 3, phase: None });
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            update(&mut m, Action::Yes),
            vec![Request::IncidentAdvance { id: 3, phase: None }]
        );
    }

    #[test]
    fn palette_incident_and_alert_verbs() {
        let mut m = model();
        let run = |m: &mut Model, line: &str| {
            update(m, Action::Palette);
            for c in line.chars() {
                update(m, Action::Char(c));
            }
            update(m, Action::Submit)
        };
        assert_eq!(
            run(&mut m, "incident 1 disk full on gpu-box"),
            vec![Request::IncidentOpen {
                title: "disk full on gpu-box".into(),
                level: 1,
                agent: None
            }]
        );
        assert_eq!(
            run(&mut m, "silence crash-loop 2h"),
            vec![Request::Silence {
                pattern: "crash-loop".into(),
                for_ms: 7_200_000
            }]
        );
        assert_eq!(
            run(&mut m, "resolve #3"),
            vec![Request::IncidentResolve { id: 3, note: None }]
        );
        assert!(run(&mut m, "incident 7 nope").is_empty());
        assert!(m.notices.back().is_some_and(|n| n.error));
    }

    #[test]
    fn slash_filters_the_fleet_and_searches_the_logs() {
        let mut m = model();
        update(&mut m, Action::Slash);
        assert_eq!(m.mode, Mode::Filter);
        for c in "flak".chars() {
            update(&mut m, Action::Char(c));
        }
        update(&mut m, Action::Submit);
        assert_eq!(m.mode, Mode::Normal);
        assert_eq!(m.rows().len(), 1);
        m.focus = Panel::Logs;
        update(&mut m, Action::Slash);
        assert_eq!(m.mode, Mode::Search);
        update(&mut m, Action::Char('x'));
        update(&mut m, Action::Backspace);
        update(&mut m, Action::Char('T'));
        update(&mut m, Action::Back);
        assert!(m.search.is_empty(), "Esc clears the search");
    }

    #[test]
    fn o_cycles_the_sort_order() {
        let mut m = model();
        update(&mut m, Action::Sort);
        assert_eq!(m.sort, Sort::Cpu);
        assert_eq!(
            m.selected_agent().map(|a| a.name.as_str()),
            Some("researcher")
        );
        for _ in 0..4 {
            update(&mut m, Action::Sort);
        }
        assert_eq!(m.sort, Sort::Name);
    }

    #[test]
    fn help_opens_and_closes() {
        let mut m = model();
        update(&mut m, Action::Help);
        assert_eq!(m.mode, Mode::Help);
        update(&mut m, Action::Back);
        assert_eq!(m.mode, Mode::Normal);
    }

    #[test]
    fn the_palette_runs_verbs_and_completes_them() {
        let mut m = model();
        update(&mut m, Action::Palette);
        for c in "sc".chars() {
            update(&mut m, Action::Char(c));
        }
        update(&mut m, Action::Complete);
        assert_eq!(m.mode, Mode::Palette("scale ".into()));
        for c in "re".chars() {
            update(&mut m, Action::Char(c));
        }
        update(&mut m, Action::Complete);
        assert_eq!(m.mode, Mode::Palette("scale researcher ".into()));
        update(&mut m, Action::Char('3'));
        assert_eq!(
            update(&mut m, Action::Submit),
            vec![Request::Scale {
                agent: "researcher".into(),
                replicas: 3
            }]
        );
        fn run_in(m: &mut Model, line: &str) -> Vec<Request> {
            update(m, Action::Palette);
            for c in line.chars() {
                update(m, Action::Char(c));
            }
            update(m, Action::Submit)
        }
        assert_eq!(
            run_in(&mut m, "restart researcher/2"),
            vec![Request::Restart {
                agent: "researcher".into(),
                replica: Some(2)
            }]
        );
        assert_eq!(
            run_in(&mut m, "stop planner"),
            vec![Request::Stop {
                agent: "planner".into()
            }]
        );
        assert_eq!(
            run_in(&mut m, "start planner"),
            vec![Request::Start {
                agent: "planner".into()
            }]
        );
        assert_eq!(run_in(&mut m, "reload"), vec![Request::Reload]);
        assert_eq!(run_in(&mut m, "backup"), vec![Request::Backup]);
        assert!(run_in(&mut m, "scale researcher lots").is_empty());
        assert!(run_in(&mut m, "frobnicate").is_empty());
        assert!(
            m.notices
                .back()
                .is_some_and(|n| n.text.contains("unknown command"))
        );
        assert!(run_in(&mut m, "shutdown").is_empty(), "asks first");
        assert!(matches!(m.mode, Mode::Confirm { .. }));
        update(&mut m, Action::No);
        assert!(run_in(&mut m, "logs flaky-tool").is_empty());
        assert_eq!(m.focus, Panel::Logs);
        assert_eq!(
            m.selected_agent().map(|a| a.name.as_str()),
            Some("flaky-tool")
        );
        assert!(run_in(&mut m, "detach").is_empty());
        assert!(m.quit);
    }

    #[test]
    fn palette_escape_cancels() {
        let mut m = model();
        update(&mut m, Action::Palette);
        update(&mut m, Action::Char('s'));
        assert!(update(&mut m, Action::Back).is_empty());
        assert_eq!(m.mode, Mode::Normal);
    }

    #[test]
    fn backup_progress_events_reach_the_status_and_clear_when_done() {
        let mut m = model();
        let progress = crate::proto::BackupProgress {
            what: "backup to /b".into(),
            step: "backing up".into(),
            done: 1,
            total: 4,
            bytes: true,
        };
        apply(
            &mut m,
            Incoming::Update(Update::Event(
                9,
                ServerEvent::Audit {
                    records: vec![],
                    backup_running: true,
                    progress: Some(progress.clone()),
                },
            )),
        );
        let s = m.status.as_ref().expect("status");
        assert!(s.backup_running);
        assert_eq!(s.backup_progress, Some(progress));
        apply(
            &mut m,
            Incoming::Update(Update::Event(
                10,
                ServerEvent::Audit {
                    records: vec![],
                    backup_running: false,
                    progress: None,
                },
            )),
        );
        let s = m.status.as_ref().expect("status");
        assert!(!s.backup_running);
        assert_eq!(s.backup_progress, None);
    }

    #[test]
    fn events_update_the_replica_and_samples_feed_the_graphs() {
        let mut m = model();
        apply(
            &mut m,
            Incoming::Update(Update::Event(
                9,
                ServerEvent::Transition {
                    agent: "planner".into(),
                    replica: 0,
                    transition: Transition {
                        at: NOW + 1,
                        from: State::ActiveOperation,
                        to: State::TaskCompletion,
                        reason: "exit 1".into(),
                    },
                },
            )),
        );
        let r = &m.agents()[0].replicas[0];
        assert_eq!(r.state, State::TaskCompletion);
        assert_eq!(r.waiting, None);
        assert_eq!(r.pid, None);
        assert_eq!(m.agents()[0].running, 0);
        let before = m.host_cpu.len();
        m.now = NOW + 1000;
        apply(
            &mut m,
            Incoming::Update(Update::Event(
                10,
                ServerEvent::Samples {
                    host: HostStatus {
                        cpu_percent: 99.0,
                        per_core: vec![98.0, 100.0],
                        memory_used: 1,
                        memory_total: 2,
                        net_rx_bps: 1000.0,
                        net_tx_bps: 10.0,
                        ..HostStatus::default()
                    },
                    replicas: vec![ReplicaSample {
                        agent: "researcher".into(),
                        replica: 0,
                        cpu_percent: 12.0,
                        rss_bytes: 7,
                        processes: 2,
                    }],
                },
            )),
        );
        assert_eq!(m.host_cpu.len(), before + 1);
        assert_eq!(m.host_cpu.back(), Some(&(NOW + 1000, 99.0)));
        assert_eq!(m.net_rx.back(), Some(&(NOW + 1000, 1000.0)));
        assert_eq!(m.agents()[1].replicas[0].cpu_percent, 12.0);
        assert_eq!(m.agent_cpu["researcher"].back(), Some(&(NOW + 1000, 12.0)));
        apply(
            &mut m,
            Incoming::Update(Update::Event(
                11,
                ServerEvent::Agent {
                    name: "planner".into(),
                    desired: 5,
                    enabled: false,
                },
            )),
        );
        assert_eq!((m.agents()[0].desired, m.agents()[0].enabled), (5, false));
        apply(&mut m, Incoming::Closed("gone".into()));
        assert!(matches!(
            m.conn,
            crate::tui::model::Conn::Reconnecting { .. }
        ));
    }

    #[test]
    fn logs_follow_the_selected_agent_with_a_cursor() {
        let mut m = model();
        let r = logs_request(&mut m);
        assert_eq!(
            r,
            Some(Request::Logs {
                agent: "planner".into(),
                lines: 500,
                since: Some(30)
            })
        );
        select(&mut m, "flaky-tool");
        let r = logs_request(&mut m);
        assert_eq!(
            r,
            Some(Request::Logs {
                agent: "flaky-tool".into(),
                lines: 500,
                since: None
            })
        );
        assert!(m.logs.is_empty(), "a new agent starts a new buffer");
        apply(
            &mut m,
            Incoming::Answer(
                Request::Logs {
                    agent: "flaky-tool".into(),
                    lines: 500,
                    since: None,
                },
                Ok(Response::Logs {
                    lines: vec![],
                    next: 77,
                }),
            ),
        );
        assert_eq!(m.log_cursor, Some(77));
    }
}
