//! Pure views: `view(&Model, &Theme, &mut Frame)` draws everything from the
//! model and nothing else. Agent output is sanitized before it is drawn.

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::symbols;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{
    Axis, Block, Borders, Cell, Chart, Clear, Dataset, GraphType, Paragraph, Row as TRow, Table,
    TableState, Wrap,
};

use crate::core::lifecycle::State;
use crate::core::sanitize::sanitize_line;
use crate::core::units::{fmt_age, format_size};
use crate::proto::agent_state;
use crate::tui::action::{Binding, help_rows};
use crate::tui::model::{Conn, Mode, Model, Panel, Row, Series};
use crate::tui::theme::Theme;

/// Smallest terminal the panels are drawn in.
pub const MIN_SIZE: (u16, u16) = (40, 10);

/// Draws the whole console.
pub fn view(m: &Model, t: &Theme, keymap: &[Binding], f: &mut Frame) {
    let area = f.area();
    if area.width < MIN_SIZE.0 || area.height < MIN_SIZE.1 {
        let msg = format!(
            "terminal {}×{} is too small (at least {}×{}); q detaches",
            area.width, area.height, MIN_SIZE.0, MIN_SIZE.1
        );
        f.render_widget(
            Paragraph::new(msg).wrap(Wrap { trim: true }).style(t.warn),
            area,
        );
        return;
    }
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(m, t, f, header);
    draw_body(m, t, f, body);
    draw_footer(m, t, f, footer);
    match &m.mode {
        Mode::Help => draw_help(t, keymap, f, area),
        Mode::Confirm { prompt, .. } => draw_confirm(t, prompt, f, area),
        _ => {}
    }
}

fn block<'a>(m: &Model, t: &Theme, p: Panel, extra: String) -> Block<'a> {
    let focused = m.focus == p;
    let title = format!(" {} {}{} ", p.number(), p.title(), extra);
    Block::default()
        .borders(Borders::ALL)
        .border_style(if focused { t.border_focus } else { t.border })
        .title(Span::styled(title, if focused { t.accent } else { t.text }))
}

fn draw_header(m: &Model, t: &Theme, f: &mut Frame, area: Rect) {
    let mut spans = vec![Span::styled(" Autonomos ", t.accent)];
    match (&m.status, &m.conn) {
        (Some(s), _) => {
            let running: u32 = s.agents.iter().map(|a| a.running).sum();
            let desired: u32 = s.agents.iter().map(|a| a.desired).sum();
            let firing = s.alerts.iter().filter(|a| a.state == "firing").count();
            let host = match &m.conn {
                Conn::Attached { host, .. } => host.clone(),
                _ => "?".into(),
            };
            spans.push(Span::styled(format!("{host} "), t.text));
            // First, so it shows on the narrowest screen.
            if !s.storage.is_empty() {
                let parts: Vec<&str> = s.storage.iter().map(|f| f.part.as_str()).collect();
                spans.push(Span::styled(
                    format!("· DATA DIR FAILING ({}) ", parts.join(", ")),
                    t.bad,
                ));
            }
            spans.push(Span::styled(
                format!("· up {} ", fmt_age(s.now.saturating_sub(s.started_at))),
                t.muted,
            ));
            let style = if running < desired { t.warn } else { t.ok };
            spans.push(Span::styled(
                format!("· replicas {running}/{desired} "),
                style,
            ));
            spans.push(Span::styled(
                format!("· alerts {firing} "),
                if firing > 0 { t.bad } else { t.muted },
            ));
            spans.push(Span::styled(
                format!("· cpu {:.0}% ", s.host.cpu_percent),
                t.muted,
            ));
            match &s.backup_progress {
                Some(p) if p.total > 0 => {
                    let pct = (p.done.min(p.total) as f64 / p.total as f64 * 100.0).floor();
                    spans.push(Span::styled(format!("· backup {pct:.0}% "), t.warn));
                }
                _ if s.backup_running => {
                    spans.push(Span::styled("· backup running ", t.warn));
                }
                _ => {}
            }
        }
        (None, _) => spans.push(Span::styled("waiting for the daemon… ", t.muted)),
    }
    let conn = match &m.conn {
        Conn::Connecting => Span::styled("○ connecting", t.warn),
        Conn::Attached { pid, .. } => match &m.remote {
            Some(r) => Span::styled(format!("● attached via ssh to {r} (pid {pid})"), t.ok),
            None => Span::styled(format!("● attached (pid {pid})"), t.ok),
        },
        Conn::Reconnecting { attempts, .. } => {
            Span::styled(format!("◌ reconnecting (attempt {attempts})"), t.bad)
        }
    };
    spans.push(conn);
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_footer(m: &Model, t: &Theme, f: &mut Frame, area: Rect) {
    let line = match &m.mode {
        Mode::Filter => Line::from(vec![
            Span::styled("filter: ", t.accent),
            Span::styled(format!("{}▏", m.filter), t.text),
            Span::styled("  Enter keeps it, Esc clears", t.muted),
        ]),
        Mode::Search => Line::from(vec![
            Span::styled("search logs: ", t.accent),
            Span::styled(format!("{}▏", m.search), t.text),
        ]),
        Mode::Palette(input) => Line::from(vec![
            Span::styled(":", t.accent),
            Span::styled(format!("{input}▏"), t.text),
            Span::styled("  Tab completes, Enter runs, Esc cancels", t.muted),
        ]),
        _ => match m.notices.back() {
            Some(n) if m.now.saturating_sub(n.at) < 8000 => Line::from(Span::styled(
                sanitize_line(n.text.as_bytes()),
                if n.error { t.bad } else { t.ok },
            )),
            _ => Line::from(Span::styled(
                "? help  q detach  Tab panels  +/- scale  r restart  s stop/start  / filter  : command",
                t.muted,
            )),
        },
    };
    f.render_widget(Paragraph::new(line), area);
}

fn draw_body(m: &Model, t: &Theme, f: &mut Frame, area: Rect) {
    if area.width >= 120 && area.height >= 30 {
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)])
                .areas(area);
        let [fleet, bottom] =
            Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(left);
        draw_fleet(m, t, f, fleet);
        if m.focus == Panel::Diagnostics {
            draw_diagnostics(m, t, f, bottom);
        } else {
            draw_logs(m, t, f, bottom);
        }
        let [graphs, detail, lists] = Layout::vertical([
            Constraint::Percentage(38),
            Constraint::Percentage(40),
            Constraint::Percentage(22),
        ])
        .areas(right);
        draw_graphs(m, t, f, graphs);
        match m.focus {
            Panel::Alerts => draw_alert_detail(m, t, f, detail),
            Panel::Incidents => draw_incident_detail(m, t, f, detail),
            _ => draw_detail(m, t, f, detail),
        }
        let [alerts, incidents] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(lists);
        draw_alerts(m, t, f, alerts);
        draw_incidents(m, t, f, incidents);
    } else {
        // Small terminals: the fleet and the focused panel (the agent's
        // detail while the fleet itself has focus).
        let fleet_rows = (m.rows().len() as u16 + 3)
            .min(area.height / 2)
            .max(3.min(area.height));
        let [fleet, other] =
            Layout::vertical([Constraint::Length(fleet_rows), Constraint::Min(3)]).areas(area);
        draw_fleet(m, t, f, fleet);
        match m.focus {
            Panel::Fleet | Panel::Detail => draw_detail(m, t, f, other),
            Panel::Graphs => draw_graphs(m, t, f, other),
            Panel::Alerts | Panel::Incidents => {
                let [list, detail] =
                    Layout::vertical([Constraint::Percentage(40), Constraint::Percentage(60)])
                        .areas(other);
                if m.focus == Panel::Alerts {
                    draw_alerts(m, t, f, list);
                    draw_alert_detail(m, t, f, detail);
                } else {
                    draw_incidents(m, t, f, list);
                    draw_incident_detail(m, t, f, detail);
                }
            }
            Panel::Logs => draw_logs(m, t, f, other),
            Panel::Diagnostics => draw_diagnostics(m, t, f, other),
        }
    }
}

fn draw_fleet(m: &Model, t: &Theme, f: &mut Frame, area: Rect) {
    let agents = m.agents();
    let now = m.status.as_ref().map(|s| s.now).unwrap_or(m.now);
    let wide = area.width >= 90;
    let rows: Vec<TRow> = m
        .rows()
        .iter()
        .map(|row| match *row {
            Row::Agent(i) => {
                let a = &agents[i];
                let cpu: f64 = a.replicas.iter().map(|r| r.cpu_percent).sum();
                let mem: u64 = a.replicas.iter().map(|r| r.rss_bytes).sum();
                let restarts: u64 = a.replicas.iter().map(|r| r.restarts).sum();
                let oldest = a.replicas.iter().filter_map(|r| r.started_at).min();
                let state = agent_state(a);
                let st = a
                    .replicas
                    .iter()
                    .map(|r| r.state)
                    .find(|s| s.label() == state);
                let marker = if a.replicas.is_empty() {
                    "  "
                } else if m.expanded.contains(&a.name) {
                    "▾ "
                } else {
                    "▸ "
                };
                let mut cells = vec![
                    Cell::from(format!("{marker}{}", a.name)),
                    Cell::from(format!("{}/{}", a.running, a.desired)),
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
            Row::Replica(i, j) => {
                let r = &agents[i].replicas[j];
                let state = match (&r.waiting, &r.error) {
                    (Some(w), _) | (None, Some(w)) => {
                        format!("{} ({})", r.state.label(), sanitize_line(w.as_bytes()))
                    }
                    _ => r.state.label().to_string(),
                };
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
                if wide {
                    cells.push(Cell::from(
                        r.last_exit
                            .map(|e| e.to_string())
                            .unwrap_or_else(|| "-".into()),
                    ));
                }
                TRow::new(cells).style(t.muted)
            }
        })
        .collect();
    let mut widths = vec![
        Constraint::Min(16),
        Constraint::Length(6),
        Constraint::Length(16),
        Constraint::Length(7),
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Length(7),
    ];
    let mut header = vec![
        "AGENT", "REPL", "STATE", "CPU", "MEMORY", "RESTARTS", "UPTIME",
    ];
    if wide {
        widths.push(Constraint::Length(16));
        header.push("LAST EXIT");
    }
    let extra = format!(
        " · {} agents · sort {}{}",
        agents.len(),
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

/// One line of a chart: name, points (seconds ago, value), style.
type Plot<'a> = (String, &'a [(f64, f64)], Style);

fn series_points(s: &Series, now: u64, window_ms: u64, scale: f64) -> Vec<(f64, f64)> {
    s.iter()
        .filter(|(at, _)| now.saturating_sub(*at) <= window_ms)
        .map(|(at, v)| (-(now.saturating_sub(*at) as f64) / 1000.0, v * scale))
        .collect()
}

fn draw_graphs(m: &Model, t: &Theme, f: &mut Frame, area: Rect) {
    let title = if m.day_view {
        " · host: last 24 h, agent: last 5 min"
    } else {
        " · last 5 min"
    };
    let outer = block(m, t, Panel::Graphs, title.into());
    let inner = outer.inner(area);
    f.render_widget(outer, area);
    let now = m.now;
    let window = 300_000u64;
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(inner);
    let [cpu_area, mem_area, net_area] = Layout::horizontal([
        Constraint::Ratio(1, 3),
        Constraint::Ratio(1, 3),
        Constraint::Ratio(1, 3),
    ])
    .areas(top);
    let [acpu_area, amem_area] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(bottom);
    let kib = 1.0 / 1024.0;
    let rx = series_points(&m.net_rx, now, window, kib);
    let tx = series_points(&m.net_tx, now, window, kib);
    let net_max = rx.iter().chain(&tx).map(|p| p.1).fold(16.0f64, f64::max) * 1.2;
    let rx_now = rx.last().map(|p| p.1).unwrap_or(0.0);
    let tx_now = tx.last().map(|p| p.1).unwrap_or(0.0);
    render_chart(
        f,
        net_area,
        t,
        format!("net ↓{rx_now:.0} ↑{tx_now:.0} KiB/s"),
        &[
            ("rx".into(), rx.as_slice(), t.graph_net),
            ("tx".into(), tx.as_slice(), t.graph_cpu),
        ],
        net_max,
        "K",
    );

    let cores: Vec<Vec<(f64, f64)>> = m
        .cores
        .iter()
        .map(|s| series_points(s, now, window, 1.0))
        .collect();
    const DAY: u64 = 86_400_000;
    let (host_window, cpu_series, mem_series) = if m.day_view {
        (DAY, &m.day_cpu, &m.day_mem)
    } else {
        (window, &m.host_cpu, &m.host_mem)
    };
    let total = series_points(cpu_series, now, host_window, 1.0);
    // Per-core lines only in the 5-minute view.
    let mut sets: Vec<Plot> = if m.day_view {
        Vec::new()
    } else {
        cores
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("cpu{i}"), p.as_slice(), t.muted))
            .collect()
    };
    sets.push(("total".into(), total.as_slice(), t.graph_cpu));
    let cur = m.host_cpu.back().map(|x| x.1).unwrap_or(0.0);
    render_chart_span(
        f,
        cpu_area,
        t,
        format!("host CPU {cur:.0}%"),
        &sets,
        100.0,
        "%",
        host_window,
    );

    let mem = series_points(mem_series, now, host_window, 1.0);
    let (used, total_mem) = m
        .status
        .as_ref()
        .map(|s| (s.host.memory_used, s.host.memory_total))
        .unwrap_or((0, 0));
    render_chart_span(
        f,
        mem_area,
        t,
        // Short enough for a third of a narrow graphs panel.
        format!(
            "mem {:.0}% of {}",
            if total_mem == 0 {
                0.0
            } else {
                used as f64 * 100.0 / total_mem as f64
            },
            compact_bytes(total_mem)
        ),
        &[("used".into(), mem.as_slice(), t.graph_mem)],
        100.0,
        "%",
        host_window,
    );

    let name = m
        .selected_agent()
        .map(|a| a.name.clone())
        .unwrap_or_default();
    let empty = Series::new();
    let acpu = series_points(m.agent_cpu.get(&name).unwrap_or(&empty), now, window, 1.0);
    let amem = series_points(
        m.agent_mem.get(&name).unwrap_or(&empty),
        now,
        window,
        1.0 / (1024.0 * 1024.0),
    );
    let cpu_max = acpu.iter().map(|p| p.1).fold(100.0f64, f64::max);
    let mem_max = amem.iter().map(|p| p.1).fold(64.0f64, f64::max) * 1.2;
    let acur = acpu.last().map(|p| p.1).unwrap_or(0.0);
    let mcur = amem.last().map(|p| p.1).unwrap_or(0.0);
    render_chart(
        f,
        acpu_area,
        t,
        format!("{name} CPU {acur:.0}%"),
        &[("cpu".into(), acpu.as_slice(), t.graph_cpu)],
        cpu_max,
        "%",
    );
    render_chart(
        f,
        amem_area,
        t,
        format!("{name} RSS {mcur:.0} MiB"),
        &[("rss".into(), amem.as_slice(), t.graph_mem)],
        mem_max,
        "MiB",
    );
}

fn render_chart(
    f: &mut Frame,
    area: Rect,
    t: &Theme,
    title: String,
    sets: &[Plot],
    max: f64,
    unit: &str,
) {
    render_chart_span(f, area, t, title, sets, max, unit, 300_000);
}

/// `pts` cut wherever two neighbours are more than `max_gap` apart.
fn gapless_runs(pts: &[(f64, f64)], max_gap: f64) -> impl Iterator<Item = &[(f64, f64)]> {
    pts.chunk_by(move |a, b| b.0 - a.0 <= max_gap)
}

/// A chart over the last `window_ms`.
#[allow(clippy::too_many_arguments)]
fn render_chart_span(
    f: &mut Frame,
    area: Rect,
    t: &Theme,
    title: String,
    sets: &[Plot],
    max: f64,
    unit: &str,
    window_ms: u64,
) {
    let span = window_ms as f64 / 1000.0;
    let label = if window_ms >= 3_600_000 {
        format!("-{}h", window_ms / 3_600_000)
    } else {
        format!("-{}m", window_ms / 60_000)
    };
    // Where points are missing (the daemon was down, the console detached)
    // the line breaks instead of bridging the gap.
    let max_gap = span / 50.0;
    let datasets: Vec<Dataset> = sets
        .iter()
        .flat_map(|(_, pts, style)| {
            gapless_runs(pts, max_gap).map(move |run| {
                Dataset::default()
                    .marker(symbols::Marker::Braille)
                    .graph_type(GraphType::Line)
                    .style(*style)
                    .data(run)
            })
        })
        .collect();
    let chart = Chart::new(datasets)
        .block(Block::default().title(Span::styled(title, t.text)))
        .x_axis(
            Axis::default()
                .bounds([-span, 0.0])
                .labels(vec![
                    Span::styled(label, t.muted),
                    Span::styled("now", t.muted),
                ])
                .style(t.muted),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, max])
                .labels(vec![
                    Span::styled(format!("0{unit}"), t.muted),
                    Span::styled(format!("{max:.0}{unit}"), t.muted),
                ])
                .style(t.muted),
        )
        .legend_position(None);
    f.render_widget(chart, area);
}

/// The lifecycle as a diagram, the current state highlighted:
///
/// ```text
/// Stopped → Init → Alloc → Context
///    ↑       ↑                 ↓
/// Decomm  Backoff  Monitor ⇄ Active
///    ↑       ↑        ↓        ↓
///    └─────Adapt ←────────── Done → Failed
/// ```
pub fn state_machine(current: Option<State>, t: &Theme) -> Vec<Line<'static>> {
    let s = |st: State| {
        let name = match st {
            State::Initialization => "Init",
            State::ResourceAllocation => "Alloc",
            State::ContextPreparation => "Context",
            State::ActiveOperation => "Active",
            State::PerformanceMonitoring => "Monitor",
            State::Adaptation => "Adapt",
            State::TaskCompletion => "Done",
            State::Decommissioning => "Decomm",
            State::Backoff => "Backoff",
            State::Failed => "Failed",
            State::Stopped => "Stopped",
        };
        let style = if Some(st) == current {
            t.state(st)
                .add_modifier(Modifier::REVERSED | Modifier::BOLD)
        } else {
            t.state(st)
        };
        Span::styled(name, style)
    };
    let a = |x: &'static str| Span::styled(x, t.muted);
    vec![
        Line::from(vec![
            s(State::Stopped),
            a(" → "),
            s(State::Initialization),
            a(" → "),
            s(State::ResourceAllocation),
            a(" → "),
            s(State::ContextPreparation),
        ]),
        Line::from(a("   ↑       ↑                 ↓")),
        Line::from(vec![
            s(State::Decommissioning),
            a("  "),
            s(State::Backoff),
            a("  "),
            s(State::PerformanceMonitoring),
            a(" ⇄ "),
            s(State::ActiveOperation),
        ]),
        Line::from(a("   ↑       ↑        ↓        ↓")),
        Line::from(vec![
            a("   └─────"),
            s(State::Adaptation),
            a(" ←────────── "),
            s(State::TaskCompletion),
            a(" → "),
            s(State::Failed),
        ]),
    ]
}

fn draw_detail(m: &Model, t: &Theme, f: &mut Frame, area: Rect) {
    let Some(a) = m.selected_agent() else {
        f.render_widget(
            Paragraph::new("no agent").block(block(m, t, Panel::Detail, String::new())),
            area,
        );
        return;
    };
    let r = m.selected_replica();
    let title = match r {
        Some(r) => format!(" · {}/{}", a.name, r.index),
        None => format!(" · {}", a.name),
    };
    let mut lines = state_machine(r.map(|r| r.state), t);
    lines.push(Line::from(""));
    let kv = |k: &str, v: String| {
        Line::from(vec![
            Span::styled(format!("{k:<9}"), t.muted),
            Span::styled(v, t.text),
        ])
    };
    lines.push(kv("command", sanitize_line(a.command.join(" ").as_bytes())));
    let limit = a
        .memory_limit
        .map(|l| format!(", limit {} ({})", format_size(l), a.memory_limit_action))
        .unwrap_or_default();
    lines.push(kv(
        "requests",
        format!(
            "{:.2} cpu, {}{limit}",
            a.cpu_request,
            format_size(a.memory_request)
        ),
    ));
    lines.push(kv("restart", a.restart.clone()));
    if !a.env.is_empty() {
        let env: Vec<String> = a.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        lines.push(kv("env", sanitize_line(env.join(" ").as_bytes())));
    }
    lines.push(kv("context", a.context_dir.clone()));
    if let Some(r) = r {
        if let Some(w) = r.waiting.as_ref().or(r.error.as_ref()) {
            lines.push(Line::from(Span::styled(
                sanitize_line(w.as_bytes()),
                t.warn,
            )));
        }
        lines.push(Line::from(Span::styled("recent transitions", t.accent)));
        for tr in r.history.iter().rev() {
            let when = jiff::Timestamp::from_millisecond(tr.at as i64)
                .map(|x| x.strftime("%H:%M:%S").to_string())
                .unwrap_or_default();
            lines.push(Line::from(vec![
                Span::styled(format!("{when} "), t.muted),
                Span::styled(tr.to.label().to_string(), t.state(tr.to)),
                Span::styled(format!("  {}", sanitize_line(tr.reason.as_bytes())), t.text),
            ]));
        }
    }
    f.render_widget(
        Paragraph::new(Text::from(lines)).block(block(m, t, Panel::Detail, title)),
        area,
    );
}

/// `24G`, `512M`: whole units, for tight titles.
fn compact_bytes(b: u64) -> String {
    let g = b as f64 / (1u64 << 30) as f64;
    if g >= 1.0 {
        format!("{g:.0}G")
    } else {
        format!("{:.0}M", b as f64 / (1u64 << 20) as f64)
    }
}

fn severity_style(t: &Theme, severity: &str) -> Style {
    match severity {
        "critical" => t.bad,
        "major" => t.warn,
        _ => t.text,
    }
}

fn hhmmss(ms: u64) -> String {
    jiff::Timestamp::from_millisecond(ms as i64)
        .map(|x| x.strftime("%H:%M:%S").to_string())
        .unwrap_or_default()
}

/// A list with the selected row marked while the panel has focus.
fn selectable<'a>(rows: Vec<Line<'a>>, selected: usize, focused: bool, t: &Theme) -> Vec<Line<'a>> {
    rows.into_iter()
        .enumerate()
        .map(|(i, l)| {
            if focused && i == selected {
                l.patch_style(t.selection)
            } else {
                l
            }
        })
        .collect()
}

fn draw_alerts(m: &Model, t: &Theme, f: &mut Frame, area: Rect) {
    let s = m.status.as_ref();
    let alerts = s.map(|s| s.alerts.as_slice()).unwrap_or(&[]);
    let firing = alerts.iter().filter(|a| a.state == "firing").count();
    let failing: Vec<&str> = s
        .map(|s| {
            s.notifiers
                .iter()
                .filter(|n| n.last_error.is_some())
                .map(|n| n.name.as_str())
                .collect()
        })
        .unwrap_or_default();
    let mut lines: Vec<Line> = if alerts.is_empty() {
        vec![Line::from(Span::styled("no alerts", t.muted))]
    } else {
        let rows = alerts
            .iter()
            .map(|a| {
                let mut marks = String::new();
                if a.acknowledged {
                    marks.push_str(" ack");
                }
                if a.silenced_until.is_some_and(|u| u > m.now) {
                    marks.push_str(" muted");
                }
                if a.flapping {
                    marks.push_str(" flapping");
                }
                let state_style = if a.state == "firing" {
                    severity_style(t, &a.severity)
                } else {
                    t.muted
                };
                Line::from(vec![
                    Span::styled(format!("{:<9}", a.state), state_style),
                    Span::styled(format!("{} ", a.id), t.accent),
                    Span::styled(sanitize_line(a.summary.as_bytes()), t.text),
                    Span::styled(marks, t.muted),
                ])
            })
            .collect();
        selectable(rows, m.alert_selected, m.focus == Panel::Alerts, t)
    };
    if !failing.is_empty() {
        lines.push(Line::from(Span::styled(
            format!("notifier failing: {}", failing.join(", ")),
            t.bad,
        )));
    }
    f.render_widget(
        Paragraph::new(lines).block(block(
            m,
            t,
            Panel::Alerts,
            format!(" · {firing} firing · {} listed", alerts.len()),
        )),
        area,
    );
}

fn draw_incidents(m: &Model, t: &Theme, f: &mut Frame, area: Rect) {
    let incidents = m
        .status
        .as_ref()
        .map(|s| s.incidents.as_slice())
        .unwrap_or(&[]);
    let open = incidents.iter().filter(|i| i.status == "open").count();
    let lines: Vec<Line> = if incidents.is_empty() {
        vec![Line::from(Span::styled("no incidents", t.muted))]
    } else {
        let rows = incidents
            .iter()
            .map(|i| {
                let level_style = match (i.status.as_str(), i.level) {
                    ("open", 1) => t.bad,
                    ("open", 2) => t.warn,
                    _ => t.muted,
                };
                Line::from(vec![
                    Span::styled(format!("L{} #{} ", i.level, i.id), level_style),
                    Span::styled(format!("{} · {} ", i.status, i.phase), t.muted),
                    Span::styled(sanitize_line(i.title.as_bytes()), t.text),
                ])
            })
            .collect();
        selectable(rows, m.incident_selected, m.focus == Panel::Incidents, t)
    };
    f.render_widget(
        Paragraph::new(lines).block(block(m, t, Panel::Incidents, format!(" · {open} open"))),
        area,
    );
}

/// The selected alert, in the detail area while the alert feed has focus.
fn draw_alert_detail(m: &Model, t: &Theme, f: &mut Frame, area: Rect) {
    let a = m
        .status
        .as_ref()
        .and_then(|s| s.alerts.get(m.alert_selected));
    let b = Block::bordered()
        .title(" Alert ")
        .border_style(t.border)
        .title_style(t.accent);
    let Some(a) = a else {
        f.render_widget(
            Paragraph::new(Span::styled("no alert selected", t.muted)).block(b),
            area,
        );
        return;
    };
    let kv = |k: &str, v: String, style: Style| {
        Line::from(vec![
            Span::styled(format!("{k:<10}"), t.muted),
            Span::styled(v, style),
        ])
    };
    let level = match a.severity.as_str() {
        "critical" => "Level 1",
        "major" => "Level 2",
        _ => "Level 3",
    };
    let mut lines = vec![
        kv("alert", a.id.clone(), t.accent),
        kv(
            "state",
            format!("{} since {}", a.state, hhmmss(a.since)),
            severity_style(t, &a.severity),
        ),
        kv(
            "severity",
            format!("{} ({level})", a.severity),
            severity_style(t, &a.severity),
        ),
        kv("summary", sanitize_line(a.summary.as_bytes()), t.text),
    ];
    if let Some(v) = a.value {
        lines.push(kv("value", format!("{v:.2}"), t.text));
    }
    if let Some(by) = &a.acknowledged_by {
        lines.push(kv("acked by", by.clone(), t.text));
    }
    if let Some(u) = a.silenced_until.filter(|u| *u > m.now) {
        lines.push(kv("silenced", format!("until {}", hhmmss(u)), t.text));
    }
    if a.flapping {
        lines.push(kv(
            "flapping",
            "notifications muted until it settles".into(),
            t.warn,
        ));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        "a acknowledge · :silence ID 1h · :incident LEVEL TITLE",
        t.muted,
    )));
    f.render_widget(
        Paragraph::new(lines)
            .wrap(ratatui::widgets::Wrap { trim: false })
            .block(b),
        area,
    );
}

/// The selected incident with its recent timeline.
fn draw_incident_detail(m: &Model, t: &Theme, f: &mut Frame, area: Rect) {
    let i = m
        .status
        .as_ref()
        .and_then(|s| s.incidents.get(m.incident_selected));
    let b = Block::bordered()
        .title(" Incident ")
        .border_style(t.border)
        .title_style(t.accent);
    let Some(i) = i else {
        f.render_widget(
            Paragraph::new(Span::styled("no incident selected", t.muted)).block(b),
            area,
        );
        return;
    };
    let kv = |k: &str, v: String, style: Style| {
        Line::from(vec![
            Span::styled(format!("{k:<8}"), t.muted),
            Span::styled(v, style),
        ])
    };
    let phase = crate::core::incident::Phase::parse(&i.phase);
    let step = phase
        .and_then(|p| crate::core::incident::PHASES.iter().position(|x| *x == p))
        .map_or(0, |n| n + 1);
    let next = phase
        .and_then(|p| p.next())
        .map(|n| format!(" · next: {}", n.name()))
        .unwrap_or_default();
    let mut lines = vec![
        kv(
            &format!("#{}", i.id),
            sanitize_line(i.title.as_bytes()),
            t.accent,
        ),
        kv(
            "level",
            crate::core::incident::level_name(i.level).to_string(),
            if i.level == 1 { t.bad } else { t.warn },
        ),
        kv(
            "status",
            format!(
                "{} · opened {} · owner {}",
                i.status,
                hhmmss(i.opened_at),
                i.owner.as_deref().unwrap_or("none")
            ),
            t.text,
        ),
        kv(
            "phase",
            format!("{} ({step} of 6){next}", i.phase),
            t.selection,
        ),
    ];
    if let Some(a) = &i.agent {
        lines.push(kv("agent", a.clone(), t.text));
    }
    lines.push(Line::from(Span::styled(
        format!("timeline ({} entries, newest last)", i.entries),
        t.accent,
    )));
    // Entries wrap; show as many of the newest as fit.
    let mut room = area.height.saturating_sub(lines.len() as u16 + 3) as usize;
    let width = area.width.saturating_sub(2).max(1) as usize;
    let mut skip = i.recent.len();
    for e in i.recent.iter().rev() {
        let len = 18 + e.text.chars().count();
        let h = len.div_ceil(width);
        if h > room {
            break;
        }
        room -= h;
        skip -= 1;
    }
    for e in &i.recent[skip..] {
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", hhmmss(e.at)), t.muted),
            Span::styled(format!("{:<8}", e.kind.name()), t.accent),
            Span::styled(sanitize_line(e.text.as_bytes()), t.text),
        ]));
    }
    lines.push(Line::from(Span::styled(
        "n note · > advance · :resolve ID",
        t.muted,
    )));
    f.render_widget(
        Paragraph::new(lines)
            .wrap(ratatui::widgets::Wrap { trim: false })
            .block(b),
        area,
    );
}

/// Splits `text` so that every match of `needle` is highlighted.
fn highlight<'a>(text: String, needle: &str, base: Style, hl: Style) -> Vec<Span<'a>> {
    if needle.is_empty() {
        return vec![Span::styled(text, base)];
    }
    let mut out = Vec::new();
    let lower = text.to_lowercase();
    let n = needle.to_lowercase();
    let mut pos = 0;
    // Lowercasing can change byte lengths for some scripts: fall back to
    // no highlighting rather than slicing inside a char.
    if lower.len() != text.len() {
        return vec![Span::styled(text, base)];
    }
    while let Some(i) = lower[pos..].find(&n) {
        let s = pos + i;
        out.push(Span::styled(text[pos..s].to_string(), base));
        out.push(Span::styled(text[s..s + n.len()].to_string(), hl));
        pos = s + n.len();
    }
    out.push(Span::styled(text[pos..].to_string(), base));
    out
}

fn draw_logs(m: &Model, t: &Theme, f: &mut Frame, area: Rect) {
    let agent = m
        .selected_agent()
        .map(|a| a.name.clone())
        .unwrap_or_default();
    let height = area.height.saturating_sub(2) as usize;
    let width = area.width.saturating_sub(2) as usize;
    // Scrolled to the top still shows a full page.
    let end = m
        .logs
        .len()
        .saturating_sub(m.log_scroll)
        .max(height.min(m.logs.len()));
    let start = end.saturating_sub(height);
    let hl = t.selection.add_modifier(Modifier::BOLD);
    let lines: Vec<Line> = m
        .logs
        .range(start..end)
        .map(|l| {
            // Cut before sanitizing a huge line: only a screenful is shown.
            let raw = &l.text.as_bytes()[..l.text.len().min(width * 4 + 64)];
            let text = sanitize_line(raw);
            let base = if l.stream == crate::proto::Stream::Stderr {
                t.warn
            } else {
                t.text
            };
            let mut spans = vec![Span::styled(format!("{} ", l.replica), t.muted)];
            spans.extend(highlight(text, &m.search, base, hl));
            Line::from(spans)
        })
        .collect();
    let mode = if m.log_scroll == 0 {
        "following".to_string()
    } else {
        format!("scrolled up {}", m.log_scroll)
    };
    let search = if m.search.is_empty() {
        String::new()
    } else {
        format!(" · search “{}”", m.search)
    };
    f.render_widget(
        Paragraph::new(lines).block(block(
            m,
            t,
            Panel::Logs,
            format!(" · {agent} · {mode}{search}"),
        )),
        area,
    );
}

fn draw_diagnostics(m: &Model, t: &Theme, f: &mut Frame, area: Rect) {
    // The console's own log above, the daemon's audit trail below.
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    let w = tui_logger::TuiLoggerWidget::default()
        .block(block(m, t, Panel::Diagnostics, " · console log".into()))
        .style(t.text)
        .style_error(t.bad)
        .style_warn(t.warn)
        .output_separator(' ')
        .output_timestamp(Some("%H:%M:%S".into()))
        .output_level(Some(tui_logger::TuiLoggerLevelOutput::Abbreviated))
        .output_target(false)
        .output_file(false)
        .output_line(false);
    f.render_widget(w, top);
    let records = m.status.as_ref().map(|s| s.audit.as_slice()).unwrap_or(&[]);
    let progress = m.status.as_ref().and_then(|s| s.backup_progress.as_ref());
    let room =
        (bottom.height.saturating_sub(2) as usize).saturating_sub(progress.is_some() as usize);
    let mut lines: Vec<Line> = if records.is_empty() {
        vec![Line::from(Span::styled("no audit records yet", t.muted))]
    } else {
        records[records.len().saturating_sub(room)..]
            .iter()
            .map(|r| {
                let style = if r.result.starts_with("error") {
                    t.bad
                } else {
                    t.text
                };
                Line::from(vec![
                    Span::styled(format!("{:>6} {} ", r.seq, hhmmss(r.ts)), t.muted),
                    Span::styled(format!("{:<18} ", r.action), t.accent),
                    Span::styled(format!("{} · ", sanitize_line(r.actor.as_bytes())), t.muted),
                    Span::styled(sanitize_line(r.result.as_bytes()), style),
                ])
            })
            .collect()
    };
    if let Some(p) = progress {
        lines.push(Line::from(Span::styled(
            format!("       running: {}", sanitize_line(p.line().as_bytes())),
            t.warn,
        )));
    }
    let b = Block::bordered()
        .title(" Audit trail · newest last ")
        .border_style(t.border)
        .title_style(t.accent);
    f.render_widget(Paragraph::new(lines).block(b), bottom);
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn draw_help(t: &Theme, keymap: &[Binding], f: &mut Frame, area: Rect) {
    let rows = help_rows(keymap);
    let mut lines: Vec<Line> = rows
        .iter()
        .map(|(k, d)| {
            Line::from(vec![
                Span::styled(format!("{k:<16}"), t.accent),
                Span::styled(d.to_string(), t.text),
            ])
        })
        .collect();
    lines.push(Line::from(Span::styled(
        "Esc or ? closes this help",
        t.muted,
    )));
    let r = centered(area, 64, lines.len() as u16 + 2);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines)
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .border_style(t.border_focus)
                    .title(" Keys "),
            )
            .wrap(Wrap { trim: false }),
        r,
    );
}

fn draw_confirm(t: &Theme, prompt: &str, f: &mut Frame, area: Rect) {
    let r = centered(area, (prompt.chars().count() as u16 + 6).max(30), 3);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(Span::styled(prompt.to_string(), t.warn))
            .alignment(Alignment::Center)
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .border_style(t.bad)
                    .title(" Confirm "),
            ),
        r,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_break_at_gaps() {
        let pts = [
            (-100.0, 1.0),
            (-99.0, 1.0),
            (-50.0, 2.0),
            (-49.0, 2.0),
            (-48.0, 2.0),
        ];
        let runs: Vec<usize> = gapless_runs(&pts, 5.0).map(<[_]>::len).collect();
        assert_eq!(runs, vec![2, 3]);
        assert_eq!(gapless_runs(&[], 5.0).count(), 0);
    }
    use crate::tui::action::keymap;
    use crate::tui::fixture::model;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn render(m: &Model, w: u16, h: u16) -> Terminal<TestBackend> {
        let theme = Theme::default_dark(false);
        let mut term = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
        term.draw(|f| view(m, &theme, &keymap(), f)).expect("draw");
        term
    }

    #[test]
    fn every_panel_at_80x24_and_120x40() {
        for (w, h) in [(80u16, 24u16), (120, 40)] {
            for p in Panel::ALL {
                let mut m = model();
                m.focus = p;
                if p == Panel::Fleet {
                    m.expanded.insert("researcher".into());
                }
                let term = render(&m, w, h);
                insta::assert_snapshot!(
                    format!("{}_{w}x{h}", p.title().to_lowercase()),
                    term.backend()
                );
            }
        }
    }

    #[test]
    fn the_help_overlay_lists_every_binding_at_both_sizes() {
        for (w, h) in [(80u16, 24u16), (120, 40)] {
            let mut m = model();
            m.mode = Mode::Help;
            let term = render(&m, w, h);
            let text = format!("{}", term.backend());
            for (keys, what) in help_rows(&keymap()) {
                // The description too: the keys alone also show in the footer.
                assert!(
                    text.contains(&keys) && text.contains(what),
                    "help at {w}x{h} lacks `{keys}` ({what})"
                );
            }
            insta::assert_snapshot!(format!("help_{w}x{h}"), term.backend());
        }
    }

    #[test]
    fn confirm_filter_and_palette_show_in_the_footer_or_a_popup() {
        let mut m = model();
        m.mode = Mode::Confirm {
            prompt: "Stop planner? (y/n)".into(),
            request: crate::proto::Request::Stop {
                agent: "planner".into(),
            },
        };
        assert!(format!("{}", render(&m, 80, 24).backend()).contains("Stop planner? (y/n)"));
        m.mode = Mode::Palette("scale researcher 3".into());
        assert!(format!("{}", render(&m, 80, 24).backend()).contains(":scale researcher 3"));
        m.mode = Mode::Filter;
        m.filter = "res".into();
        let text = format!("{}", render(&m, 120, 40).backend());
        assert!(
            text.contains("filter: res") && !text.contains("planner "),
            "{text}"
        );
    }

    #[test]
    fn hostile_log_lines_render_without_control_characters_or_panics() {
        let mut m = model();
        m.focus = Panel::Logs;
        m.logs.push_back(crate::proto::LogLine {
            seq: 99,
            at: 0,
            replica: 0,
            stream: crate::proto::Stream::Stdout,
            text: "\u{1b}[2J\u{1b}]52;c;ZXZpbA==\u{7}\u{1b}]0;pwned\u{7}visible\u{fffd}".into(),
        });
        m.logs.push_back(crate::proto::LogLine {
            seq: 100,
            at: 0,
            replica: 0,
            stream: crate::proto::Stream::Stdout,
            text: "x".repeat(1 << 20),
        });
        let term = render(&m, 120, 40);
        let buf = term.backend().buffer();
        for cell in buf.content() {
            assert!(
                !cell.symbol().chars().any(|c| c.is_control()),
                "control char {:?}",
                cell.symbol()
            );
        }
        let text = format!("{}", term.backend());
        assert!(text.contains("visible") && !text.contains("pwned") && !text.contains("ZXZpbA"));
    }

    #[test]
    fn any_size_renders_without_panicking() {
        let m = model();
        for w in [0u16, 1, 10, 39, 40, 41, 79, 80, 119, 120, 200] {
            for h in [0u16, 1, 5, 9, 10, 11, 23, 24, 29, 30, 39, 40, 60] {
                for focus in Panel::ALL {
                    let mut m = m.clone();
                    m.focus = focus;
                    render(&m, w, h);
                }
            }
        }
        let text = format!("{}", render(&m, 30, 5).backend());
        assert!(text.contains("too small"), "{text}");
    }

    #[test]
    fn a_failing_data_dir_shows_in_the_header_at_both_sizes() {
        for (w, h) in [(80u16, 24u16), (120, 40)] {
            let mut m = model();
            if let Some(s) = m.status.as_mut() {
                s.storage.push(crate::proto::StorageFault {
                    part: "state".into(),
                    what: "state database (state.db)".into(),
                    error: "database or disk is full".into(),
                    since: 0,
                    errors: 3,
                });
            }
            let term = render(&m, w, h);
            let text = format!("{}", term.backend());
            let header = text.lines().next().unwrap_or_default();
            assert!(
                header.contains("DATA DIR FAILING (state)"),
                "{w}x{h}: {header}"
            );
        }
    }

    #[test]
    fn the_day_view_labels_its_axis() {
        let mut m = model();
        m.focus = Panel::Graphs;
        let text = |m: &Model| {
            let term = render(m, 120, 40);
            let b = term.backend().buffer().clone();
            b.content().iter().map(|c| c.symbol()).collect::<String>()
        };
        assert!(!text(&m).contains("-24h"));
        m.day_view = true;
        let shown = text(&m);
        assert!(
            shown.contains("-24h") && shown.contains("last 24 h"),
            "{shown}"
        );
    }

    #[test]
    fn search_matches_are_highlighted() {
        let theme = Theme::default_dark(false);
        let spans = highlight(
            "step 4 of T-4004".into(),
            "t-40",
            theme.text,
            theme.selection,
        );
        let hl: Vec<&str> = spans
            .iter()
            .filter(|s| s.style == theme.selection)
            .map(|s| s.content.as_ref())
            .collect();
        assert_eq!(hl, vec!["T-40"]);
    }
}
