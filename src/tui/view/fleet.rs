//! The fleet table.

use super::*;

pub(super) fn draw_fleet(m: &Model, t: &Theme, f: &mut Frame, area: Rect) {
    let agents = m.agents();
    let now = m.status.as_ref().map(|s| s.now).unwrap_or(m.now);
    let wide = area.width >= 90;
    // Task agents' queues, when the fleet has any: the queue always, its
    // p95 too when wide (narrow tables make room with tighter columns).
    let tasks = agents.iter().any(|a| a.tasks.is_some());
    let mut rows: Vec<TRow> = m
        .rows()
        .iter()
        .map(|row| match *row {
            Row::Agent(i) => agent_row(m, t, &agents[i], now, wide, tasks),
            Row::Replica(i, j) => replica_row(t, &agents[i].replicas[j], now, wide, tasks),
        })
        .collect();
    rows.extend(elsewhere(m, t));
    // Other hosts' names and headings count too (so no `── host` is cut).
    let name_w = agents
        .iter()
        .map(|a| a.name.chars().count() + 2)
        .chain(
            m.elsewhere_agents
                .iter()
                .map(|a| (a.name.chars().count() + 2).max(a.host.chars().count() + 3)),
        )
        .max()
        .unwrap_or(5)
        .clamp(8, 26) as u16;
    let tight = tasks && !wide;
    let mut widths = vec![
        if wide {
            Constraint::Length(name_w)
        } else {
            Constraint::Min(name_w.min(14))
        },
        Constraint::Length(if tight { 5 } else { 7 }),
        Constraint::Length(if wide { 19 } else { 9 }),
        Constraint::Length(if tight { 6 } else { 7 }),
        Constraint::Length(if tight { 8 } else { 9 }),
        Constraint::Length(8),
        Constraint::Length(if tight { 6 } else { 7 }),
    ];
    let mut header = vec![
        "AGENT", "REPL", "STATE", "CPU", "MEMORY", "RESTARTS", "UPTIME",
    ];
    if tight {
        widths.push(Constraint::Length(5));
        header.push("QUEUE");
    } else if tasks {
        widths.extend([Constraint::Length(6), Constraint::Length(7)]);
        header.extend(["QUEUE", "P95"]);
    }
    if wide {
        widths.push(Constraint::Fill(1));
        let fixed = name_w + 7 + 19 + 7 + 9 + 8 + 7 + 7 + 2 + if tasks { 15 } else { 0 };
        header.push(if area.width >= fixed + 19 {
            "LAST EXIT · WAITING"
        } else {
            "LAST EXIT"
        });
    }
    let others = m.elsewhere_agents.len();
    let extra = format!(
        " · {} agents{} · sort {}{}",
        agents.len(),
        if others > 0 {
            format!(" (+{others} on other hosts)")
        } else {
            String::new()
        },
        m.sort.label(),
        if m.filter.is_empty() {
            String::new()
        } else {
            format!(" · filter “{}”", m.filter)
        }
    );
    let table = Table::new(rows, widths)
        .header(TRow::new(header).style(t.accent))
        .block(block(m, t, Panel::Fleet, extra))
        .row_highlight_style(t.selection);
    let mut state = TableState::default();
    if !m.rows().is_empty() {
        state.select(Some(m.selected.min(m.rows().len() - 1)));
    }
    f.render_stateful_widget(table, area, &mut state);
}

/// The other hosts' agents under this host's, grouped by host: a heading
/// row per host, then its agents (muted; not selectable: switch host to
/// act on one).
fn elsewhere<'a>(m: &Model, t: &Theme) -> Vec<TRow<'a>> {
    let mut out = Vec::new();
    let mut last: Option<&str> = None;
    for a in &m.elsewhere_agents {
        if last != Some(a.host.as_str()) {
            out.push(TRow::new(vec![format!("── {}", a.host)]).style(t.accent));
            last = Some(a.host.as_str());
        }
        out.push(
            TRow::new(vec![
                format!("  {}", a.name),
                format!("{}/{}", a.running, a.desired),
                a.state.clone(),
                format!("{:.1}%", a.cpu),
                format_size(a.rss),
                a.restarts.to_string(),
            ])
            .style(t.muted),
        );
    }
    out
}

/// Rows the other hosts add to the fleet table (headings and agents).
pub(super) fn elsewhere_rows(m: &Model) -> usize {
    let mut hosts: Vec<&str> = m.elsewhere_agents.iter().map(|a| a.host.as_str()).collect();
    hosts.dedup();
    hosts.len() + m.elsewhere_agents.len()
}

/// State names that fit a narrow column (at most 9 characters).
pub(super) fn short_label(s: State) -> &'static str {
    match s {
        State::Initialization => "init",
        State::ResourceAllocation => "alloc",
        State::ContextPreparation => "context",
        State::TaskCompletion => "done",
        State::Decommissioning => "decomm",
        State::PerformanceMonitoring => "monitor",
        other => other.label(),
    }
}

/// Narrow tables show short state names so the column never cuts one.
fn label(st: State, wide: bool) -> &'static str {
    if wide { st.label() } else { short_label(st) }
}

/// An agent's row: totals over its replicas.
fn agent_row<'a>(
    m: &Model,
    t: &Theme,
    a: &crate::proto::AgentStatus,
    now: u64,
    wide: bool,
    tasks: bool,
) -> TRow<'a> {
    let cpu: f64 = a.replicas.iter().map(|r| r.cpu_percent).sum();
    let mem: u64 = a.replicas.iter().map(|r| r.rss_bytes).sum();
    let restarts: u64 = a.replicas.iter().map(|r| r.restarts).sum();
    let oldest = a.replicas.iter().filter_map(|r| r.started_at).min();
    let full = agent_state(a);
    let st = a
        .replicas
        .iter()
        .map(|r| r.state)
        .find(|s| s.label() == full);
    let state = match st {
        Some(s) if a.enabled => label(s, wide).to_string(),
        _ if !wide && a.replicas.is_empty() && a.enabled => "scaled 0".into(),
        _ => full,
    };
    let marker = if a.replicas.is_empty() {
        "  "
    } else if m.expanded.contains(&a.name) {
        "▾ "
    } else {
        "▸ "
    };
    let mut cells = vec![
        Cell::from(format!("{marker}{}", a.name)),
        // The autoscaler about to change the count: which way.
        Cell::from(format!(
            "{}/{}{}",
            a.running,
            a.desired,
            match &a.autoscale {
                Some(x) if x.enabled && x.recommended.clamp(x.min, x.max) > x.desired => "↑",
                Some(x) if x.enabled && x.recommended.clamp(x.min, x.max) < x.desired => "↓",
                _ => "",
            }
        )),
        Cell::from(state.clone()).style(st.map(|s| t.state(s)).unwrap_or(t.muted)),
        Cell::from(format!("{cpu:5.1}%")),
        Cell::from(format_size(mem)),
        Cell::from(restarts.to_string()),
        Cell::from(
            oldest
                .map(|s| fmt_age(now.saturating_sub(s)))
                .unwrap_or_else(|| "-".into()),
        ),
    ];
    if tasks {
        match &a.tasks {
            Some(s) => {
                let q = Cell::from(s.queue.to_string());
                cells.push(if s.queue > 0 { q.style(t.warn) } else { q });
                let p95 = s.run_p95_ms.map_or("-".into(), crate::core::units::fmt_ms);
                cells.push(Cell::from(p95));
            }
            None => cells.extend([Cell::from("-"), Cell::from("-")]),
        }
        if !wide {
            cells.pop(); // the p95 needs a wide table
        }
    }
    if wide {
        let last = a
            .replicas
            .iter()
            .filter_map(|r| r.last_exit)
            .max_by_key(|e| e.at);
        cells.push(Cell::from(
            last.map(|e| e.to_string()).unwrap_or_else(|| "-".into()),
        ));
    }
    TRow::new(cells)
}

/// A replica's row, under its agent.
fn replica_row<'a>(
    t: &Theme,
    r: &crate::proto::ReplicaStatus,
    now: u64,
    wide: bool,
    tasks: bool,
) -> TRow<'a> {
    let state = label(r.state, wide).to_string();
    let mut cells = vec![
        Cell::from(format!("   /{}", r.index)),
        Cell::from(r.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into())),
        Cell::from(state).style(t.state(r.state)),
        Cell::from(format!("{:5.1}%", r.cpu_percent)),
        Cell::from(format_size(r.rss_bytes)),
        Cell::from(r.restarts.to_string()),
        Cell::from(
            r.started_at
                .map(|s| fmt_age(now.saturating_sub(s)))
                .unwrap_or_else(|| "-".into()),
        ),
    ];
    if tasks {
        cells.push(Cell::from(""));
        if wide {
            cells.push(Cell::from(""));
        }
    }
    if wide {
        // Why it waits or failed, else how it last ended.
        let failing = r.health.as_ref().filter(|h| h.starts_with("failing"));
        let unready = r.health.as_deref() == Some("unready");
        let note = match (&r.waiting, &r.error, &r.last_exit) {
            (Some(w), _, _) | (None, Some(w), _) => sanitize_line(w.as_bytes()),
            _ if failing.is_some() => format!("liveness {}", failing.map_or("", |h| h.as_str())),
            _ if unready => "unready: no tasks".into(),
            _ if r.attention == Some(crate::proto::Attention::WaitingInput) => {
                "waiting for input (W jumps, i types)".into()
            }
            (None, None, Some(e)) => e.to_string(),
            _ => "-".into(),
        };
        cells.push(Cell::from(note));
    }
    TRow::new(cells).style(t.muted)
}
