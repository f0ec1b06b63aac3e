//! What comes from the daemon: snapshots, events, the metric history.

use super::*;

/// Applies what the daemon sent.
pub fn apply(m: &mut Model, incoming: Incoming) {
    // An answer that changes nothing keeps a redraw already asked for.
    let was = m.dirty;
    m.dirty = true;
    match incoming {
        Incoming::Answer(req, result) => match (req, result) {
            (Request::Logs { agent, .. }, Ok(Response::Logs { lines, next })) => {
                if m.logs_agent.as_deref() == Some(agent.as_str()) {
                    if lines.is_empty() && m.log_cursor == Some(next) {
                        m.dirty = was;
                    }
                    for l in lines {
                        if m.logs.len() == LOG_LINES {
                            m.logs.pop_front();
                            // The match `n` moved to shifts with the buffer.
                            m.search_hit = m.search_hit.and_then(|i| i.checked_sub(1));
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
            (Request::Status, Ok(Response::Status { status })) => fleet_changed(m, *status),
            (Request::TaskList { agent, .. }, Ok(Response::Tasks { tasks })) => {
                super::tasks::on_task_list(m, agent, tasks);
            }
            (Request::TaskGet { .. }, Ok(Response::Tasks { tasks })) => {
                super::tasks::on_task_detail(m, tasks);
            }
            (Request::TaskSubmit(_), Ok(Response::Tasks { tasks })) => {
                for t in tasks {
                    m.notify(format!("task {} queued for {}", t.id, t.agent), false);
                }
            }
            (Request::Doctor, Ok(Response::Doctor { checks })) => m.doctor = Some(checks),
            (Request::Screen { .. }, Ok(Response::Screen { screen })) => {
                m.term_pending = false;
                m.term_error = None;
                m.term = Some(screen);
            }
            (
                Request::Worktree { agent, replica, .. },
                Ok(Response::Worktree {
                    branch, changes, ..
                }),
            ) => m.worktree = Some((agent, replica, branch, changes)),
            (Request::Worktree { remove: false, .. }, Err(_)) => m.worktree = None,
            (Request::Screen { .. }, Err(e)) => {
                m.term_pending = false;
                m.term_error = Some(e.message);
            }
            (
                Request::Send {
                    hold: Some(true), ..
                },
                Err(e),
            ) => {
                // Someone else holds the input, or the replica went away.
                m.mode = Mode::Normal;
                m.focus_target = None;
                m.term_sending = false;
                m.term_input.clear();
                m.notify(e.message, true);
            }
            (Request::Send { hold, .. }, Ok(_)) => {
                if hold.is_some() {
                    m.term_sending = false;
                }
                m.dirty = was;
            }
            (
                Request::Send {
                    hold: Some(false), ..
                },
                Err(_),
            ) => m.term_sending = false,
            (Request::Resize { .. }, Ok(_)) => m.dirty = was,
            (_, Ok(Response::Done { message } | Response::Stopped { message, .. })) => {
                m.notify(message, false);
            }
            (req, Err(e)) => m.notify(format!("{}: {}", req, e.message), true),
            (_, Ok(_)) => m.dirty = was,
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
        Incoming::Closed(reason) => link_lost(m, reason),
    }
}

/// The link ended: after the daemon said it is shutting down, that is the
/// daemon stopped; otherwise a lost link, to reconnect.
pub fn link_lost(m: &mut Model, reason: String) {
    use crate::tui::model::Conn;
    m.dirty = true;
    m.conn = match m.conn {
        Conn::Stopping | Conn::Stopped { .. } => {
            if !matches!(m.conn, Conn::Stopped { .. }) {
                m.notify("the daemon stopped: no agent is running (q quits)", true);
            }
            Conn::Stopped { at: m.now }
        }
        _ => Conn::Reconnecting {
            error: reason,
            attempts: 0,
        },
    };
}

/// The link was lost and the daemon's socket is gone: it shut down (its
/// shutting-down notice did not arrive before the link closed).
pub fn link_lost_stopped(m: &mut Model) {
    m.conn = crate::tui::model::Conn::Stopping;
    link_lost(m, "the daemon's socket is gone".into());
}

/// A reload changed the set of agents: the fresh status replaces the
/// fleet (added agents appear, removed ones go, changed ones show their
/// new counts); the selection stays on the same agent when it still exists,
/// and the graphs of removed agents are dropped. Histories fetched for the
/// detail view are kept when longer than the status's.
pub fn fleet_changed(m: &mut Model, mut fresh: crate::proto::FleetStatus) {
    let selected = m.selected_agent().map(|a| a.name.clone());
    let old: Vec<String> = m.agents().iter().map(|a| a.name.clone()).collect();
    if let Some(cur) = m.status.take() {
        for a in fresh.agents.iter_mut() {
            let Some(prev) = cur.agents.iter().find(|p| p.name == a.name) else {
                continue;
            };
            for r in a.replicas.iter_mut() {
                if let Some(pr) = prev.replicas.iter().find(|p| p.index == r.index)
                    && pr.history.len() > r.history.len()
                    && pr.history.last() == r.history.last()
                {
                    r.history = pr.history.clone();
                }
            }
        }
    }
    let names: Vec<&str> = fresh.agents.iter().map(|a| a.name.as_str()).collect();
    let added: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !old.iter().any(|o| o == n))
        .collect();
    let removed: Vec<&String> = old
        .iter()
        .filter(|o| !names.contains(&o.as_str()))
        .collect();
    let mut what = Vec::new();
    if !added.is_empty() {
        what.push(format!("added {}", added.join(", ")));
    }
    if !removed.is_empty() {
        let r: Vec<&str> = removed.iter().map(|s| s.as_str()).collect();
        what.push(format!("removed {}", r.join(", ")));
    }
    m.agent_cpu.retain(|k, _| names.contains(&k.as_str()));
    m.agent_mem.retain(|k, _| names.contains(&k.as_str()));
    m.expanded.retain(|k| names.contains(&k.as_str()));
    if m.logs_agent
        .as_ref()
        .is_some_and(|l| !names.contains(&l.as_str()))
    {
        m.logs_agent = None;
        m.logs.clear();
        m.log_cursor = None;
    }
    fresh.history = None;
    m.status = Some(fresh);
    let rows = m.rows();
    m.selected = selected
        .and_then(|name| {
            rows.iter().position(
                |r| matches!(r, crate::tui::model::Row::Agent(i) if m.agents()[*i].name == name),
            )
        })
        .unwrap_or(m.selected)
        .min(rows.len().saturating_sub(1));
    let text = if what.is_empty() {
        "config reloaded: the fleet follows it".to_string()
    } else {
        format!("config reloaded: {}", what.join("; "))
    };
    m.notify(text, false);
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

pub(super) fn apply_event(m: &mut Model, event: ServerEvent) {
    let Some(status) = m.status.as_mut() else {
        return;
    };
    match event {
        ServerEvent::Transition {
            agent,
            replica,
            transition,
        } => on_transition(status, &agent, replica, transition),
        ServerEvent::Samples {
            host,
            replicas,
            tasks,
        } => {
            on_samples(m, host, replicas);
            super::tasks::on_task_figures(m, tasks);
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
        // The connection asks for a fresh status; `fleet_changed` applies it.
        ServerEvent::FleetChanged => {}
        ServerEvent::ShuttingDown => {
            m.conn = crate::tui::model::Conn::Stopping;
            m.notify(
                "the daemon is shutting down: the fleet is being stopped",
                true,
            );
        }
    }
}

/// A replica changed state: its row follows (a new replica appears).
fn on_transition(
    status: &mut crate::proto::FleetStatus,
    agent: &str,
    replica: u32,
    transition: crate::core::lifecycle::Transition,
) {
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
                    health: None,
                    ready: None,
                    attention: None,
                });
                a.replicas.sort_by_key(|r| r.index);
            }
        }
        a.running = a.replicas.iter().filter(|r| r.state.is_running()).count() as u32;
        // Scaled-away replicas disappear once stopped.
        let desired = a.desired;
        a.replicas
            .retain(|r| r.index < desired || r.state != crate::core::lifecycle::State::Stopped);
    }
}

/// A collector tick: host and per-agent series, replica figures.
fn on_samples(
    m: &mut Model,
    host: crate::proto::HostStatus,
    replicas: Vec<crate::proto::ReplicaSample>,
) {
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
    let Some(status) = m.status.as_mut() else {
        return;
    };
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
            if s.attention.is_some() {
                r.attention = s.attention;
            }
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
