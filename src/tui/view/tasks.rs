//! The Tasks panel: the selected task agent's queue figures, its queue and
//! finishing rate over 5 minutes, its newest tasks, and one task in full.

use super::*;
use crate::core::task::TaskState;
use crate::core::units::fmt_ms;
use crate::proto::TaskStatus;

const WINDOW_MS: u64 = 300_000;

pub(super) fn draw_tasks(m: &Model, t: &Theme, f: &mut Frame, area: Rect) {
    let agent = m.selected_agent();
    let title = agent.map(|a| format!(" · {}", a.name)).unwrap_or_default();
    let outer = block(m, t, Panel::Tasks, title);
    let inner = outer.inner(area);
    f.render_widget(outer, area);
    let Some((a, s)) = agent.and_then(|a| a.tasks.as_ref().map(|s| (a, s))) else {
        let text = match agent {
            Some(a) => format!(
                "{} takes no tasks (protocol = \"jsonrpc\" makes a task agent)",
                a.name
            ),
            None => "no agent selected".into(),
        };
        f.render_widget(
            Paragraph::new(text)
                .style(t.muted)
                .wrap(Wrap { trim: true }),
            inner,
        );
        return;
    };
    let p95 = |v: Option<u64>| v.map_or("-".into(), fmt_ms);
    let err = if s.error_rate > 0.0 {
        format!(" ({:.1}% of 5 min)", s.error_rate * 100.0)
    } else {
        String::new()
    };
    let wait = if s.oldest_wait_ms > 0 {
        format!(" (oldest {})", fmt_ms(s.oldest_wait_ms))
    } else {
        String::new()
    };
    let mut figures = vec![Line::from(vec![
        Span::styled(format!("queue {}{wait}", s.queue), queue_style(t, s.queue)),
        Span::styled(format!(" · running {}/{}", s.in_flight, s.capacity), t.text),
        Span::styled(format!(" · done {}", s.completed), t.ok),
        Span::styled(
            format!(" · failed {}{err}", s.failed),
            if s.failed > 0 { t.warn } else { t.text },
        ),
    ])];
    let latency = Span::styled(
        format!(
            "p95 run {} · wait {}",
            p95(s.run_p95_ms),
            p95(s.wait_p95_ms)
        ),
        t.muted,
    );
    // One line when it fits, else the latencies on their own.
    if figures[0].width() + latency.width() + 3 <= inner.width as usize {
        figures[0].spans.push(Span::styled(" · ", t.muted));
        figures[0].spans.push(latency);
    } else {
        figures.push(Line::from(latency));
    }
    let figures_h = figures.len() as u16;
    let graphs_h = if inner.height >= 16 {
        5
    } else if inner.height >= 11 {
        4
    } else {
        0
    };
    let detail_h = match &m.tasks.detail {
        Some(_) => (inner.height.saturating_sub(graphs_h + 1) / 2).max(4),
        None => 0,
    };
    let [line, graphs, list, detail] = Layout::vertical([
        Constraint::Length(figures_h),
        Constraint::Length(graphs_h),
        Constraint::Min(2),
        Constraint::Length(detail_h),
    ])
    .areas(inner);
    f.render_widget(Paragraph::new(Text::from(figures)), line);
    if graphs_h > 0 {
        draw_task_graphs(m, t, f, graphs, &a.name);
    }
    draw_task_list(m, t, f, list);
    if let Some(d) = &m.tasks.detail {
        draw_task_detail(t, f, detail, d);
    }
}

fn queue_style(t: &Theme, n: u64) -> Style {
    if n > 0 { t.warn } else { t.text }
}

fn draw_task_graphs(m: &Model, t: &Theme, f: &mut Frame, area: Rect, agent: &str) {
    let [q_area, r_area] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
            .spacing(1)
            .areas(area);
    let empty = Series::new();
    let queue = series_points(
        m.tasks.queue.get(agent).unwrap_or(&empty),
        m.now,
        WINDOW_MS,
        1.0,
    );
    let rate = series_points(
        m.tasks.rate.get(agent).unwrap_or(&empty),
        m.now,
        WINDOW_MS,
        1.0,
    );
    let graph = |title: &str, points: &[(f64, f64)], style: Style, unit: &str| {
        let max = points.iter().map(|p| p.1).fold(1.0f64, f64::max);
        let now = points.last().map_or(0.0, |p| p.1);
        AreaGraph {
            title: title.into(),
            value: format!("{}{unit}", compact(now)),
            value_style: style,
            traces: Vec::new(),
            max: nice_max(max),
            max_label: compact(nice_max(max)),
            span_s: WINDOW_MS as f64 / 1000.0,
            span_label: "-5m".into(),
            empty_note: points.is_empty().then(|| "no figures yet".into()),
        }
    };
    let mut q = graph("waiting", &queue, t.graph_mem, "");
    q.traces.push(Trace {
        points: &queue,
        style: t.graph_mem,
        fill: true,
    });
    draw_area(f, q_area, t, &q);
    let mut r = graph("finished/s", &rate, t.graph_cpu, "/s");
    r.traces.push(Trace {
        points: &rate,
        style: t.graph_cpu,
        fill: true,
    });
    draw_area(f, r_area, t, &r);
}

/// 1, 2, 5 × 10ⁿ at or above `v`.
fn nice_max(v: f64) -> f64 {
    let mut m = 1.0;
    loop {
        for k in [1.0, 2.0, 5.0] {
            if k * m >= v {
                return k * m;
            }
        }
        m *= 10.0;
    }
}

/// `7`, `1.2k`, `34k`, `1.5M`.
fn compact(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if v >= 10.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn state_style(t: &Theme, s: TaskState) -> Style {
    match s {
        TaskState::Completed => t.ok,
        TaskState::Failed | TaskState::Rejected => t.bad,
        TaskState::Working => t.accent,
        TaskState::Canceled => t.muted,
        TaskState::Submitted => t.warn,
    }
}

/// How long it ran (or has run, or has waited).
fn took(t: &TaskStatus, now: u64) -> String {
    match (t.started_at, t.finished_at) {
        (Some(s), Some(e)) => fmt_ms(e.saturating_sub(s)),
        (Some(s), None) => format!("{}…", fmt_ms(now.saturating_sub(s))),
        (None, Some(e)) => fmt_ms(e.saturating_sub(t.submitted_at)),
        (None, None) => format!("waits {}", fmt_ms(now.saturating_sub(t.submitted_at))),
    }
}

fn excerpt(v: &serde_json::Value, n: usize) -> String {
    // Only the head of a large value is looked at (a task's input or
    // result may be a megabyte; the row shows a few dozen characters).
    let head = |s: &str| -> String { s.chars().take(n * 4 + 16).collect() };
    let s = match v {
        serde_json::Value::String(s) => head(s),
        other => head(&other.to_string()),
    };
    let s = sanitize_line(s.as_bytes());
    if s.chars().count() > n {
        format!(
            "{}…",
            s.chars().take(n.saturating_sub(1)).collect::<String>()
        )
    } else {
        s
    }
}

fn draw_task_list(m: &Model, t: &Theme, f: &mut Frame, area: Rect) {
    if m.tasks.list.is_empty() {
        let note = if m.focus == Panel::Tasks {
            "no tasks kept for this agent yet · T submits one"
        } else {
            "8 (or Tab) focuses this panel to list the newest tasks"
        };
        f.render_widget(Paragraph::new(note).style(t.muted), area);
        return;
    }
    let header = TRow::new(["ID", "STATE", "R", "TRY", "TIME", "INPUT / RESULT"]).style(t.muted);
    let rows: Vec<TRow> = m
        .tasks
        .list
        .iter()
        .map(|x| {
            let what = match (&x.result, &x.error) {
                (Some(r), _) if x.state == TaskState::Completed => format!("→ {}", excerpt(r, 60)),
                (_, Some(e)) if x.state.is_final() => {
                    format!("✗ {}", excerpt(&e.clone().into(), 60))
                }
                _ => match &x.progress {
                    Some(p) => {
                        let pct = p
                            .fraction
                            .map(|f| format!("{:.0}% ", f * 100.0))
                            .unwrap_or_default();
                        format!("{pct}{}", p.message.clone().unwrap_or_default())
                    }
                    None => excerpt(&x.input, 60),
                },
            };
            TRow::new(vec![
                Cell::from(x.id.clone()),
                Cell::from(Span::styled(x.state.to_string(), state_style(t, x.state))),
                Cell::from(x.replica.map_or("-".into(), |r| r.to_string())),
                Cell::from(x.attempts.to_string()),
                Cell::from(took(x, m.now)),
                Cell::from(sanitize_line(what.as_bytes())),
            ])
        })
        .collect();
    let widths = [
        Constraint::Length(16),
        Constraint::Length(9),
        Constraint::Length(2),
        Constraint::Length(3),
        Constraint::Length(9),
        Constraint::Min(8),
    ];
    let mut state = TableState::default();
    if m.focus == Panel::Tasks {
        state.select(Some(m.tasks.selected));
    }
    let table = Table::new(rows, widths)
        .header(header)
        .row_highlight_style(t.selection)
        .column_spacing(1);
    f.render_stateful_widget(table, area, &mut state);
}

fn draw_task_detail(t: &Theme, f: &mut Frame, area: Rect, d: &TaskStatus) {
    let kv = |k: &str, v: String, style: Style| {
        Line::from(vec![
            Span::styled(format!("{k:<9}"), t.muted),
            Span::styled(v, style),
        ])
    };
    let width = area.width.saturating_sub(10) as usize;
    let mut lines = vec![kv(
        "task",
        format!(
            "{} · {} · attempt {} · replica {}",
            d.id,
            d.state,
            d.attempts,
            d.replica.map_or("-".into(), |r| r.to_string())
        ),
        state_style(t, d.state),
    )];
    if let Some(c) = &d.context_id {
        lines.push(kv("context", sanitize_line(c.as_bytes()), t.text));
    }
    lines.push(kv("input", excerpt(&d.input, width.max(8) * 2), t.text));
    if let Some(p) = &d.progress {
        let pct = p
            .fraction
            .map(|f| format!("{:.0}% ", f * 100.0))
            .unwrap_or_default();
        lines.push(kv(
            "progress",
            sanitize_line(format!("{pct}{}", p.message.clone().unwrap_or_default()).as_bytes()),
            t.accent,
        ));
    }
    if let Some(r) = &d.result {
        lines.push(kv("result", excerpt(r, width.max(8) * 3), t.ok));
    }
    if let Some(e) = &d.error {
        lines.push(kv("error", sanitize_line(e.as_bytes()), t.bad));
    }
    let block = Block::default()
        .borders(Borders::TOP)
        .border_style(t.border)
        .title(Span::styled(" task · Esc closes ", t.muted));
    f.render_widget(
        Paragraph::new(Text::from(lines))
            .wrap(Wrap { trim: false })
            .block(block),
        area,
    );
}
