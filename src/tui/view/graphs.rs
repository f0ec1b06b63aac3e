//! CPU and memory graphs.

use super::*;

/// The span of the live graphs.
const WINDOW: u64 = 300_000;

pub(super) fn series_points(s: &Series, now: u64, window_ms: u64, scale: f64) -> Vec<(f64, f64)> {
    s.iter()
        .filter(|(at, _)| now.saturating_sub(*at) <= window_ms)
        .map(|(at, v)| (-(now.saturating_sub(*at) as f64) / 1000.0, v * scale))
        .collect()
}

pub(super) fn draw_graphs(m: &Model, t: &Theme, f: &mut Frame, area: Rect) {
    let title = if m.day_view {
        // How much of the day there is yet (a fresh install has minutes).
        let recorded = m
            .day_cpu
            .front()
            .map(|p| fmt_age(m.now.saturating_sub(p.0)))
            .unwrap_or_else(|| "nothing".into());
        format!(" · host: last 24 h ({recorded} recorded) · agent: last 5 min")
    } else {
        " · last 5 min".into()
    };
    let outer = block(m, t, Panel::Graphs, title);
    let inner = outer.inner(area);
    f.render_widget(outer, area);
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(inner);
    let [cpu_area, mem_area, net_area] = Layout::horizontal([
        Constraint::Ratio(1, 3),
        Constraint::Ratio(1, 3),
        Constraint::Ratio(1, 3),
    ])
    .spacing(1)
    .areas(top);
    let [acpu_area, amem_area] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
            .spacing(1)
            .areas(bottom);
    draw_net(m, t, f, net_area);
    draw_host(m, t, f, cpu_area, mem_area);
    draw_agent(m, t, f, acpu_area, amem_area);
}

fn span_label(window_ms: u64) -> String {
    if window_ms >= 3_600_000 {
        format!("-{}h", window_ms / 3_600_000)
    } else {
        format!("-{}m", window_ms / 60_000)
    }
}

/// A graph over the live window (5 minutes).
fn live<'a>(title: String, value: String, style: Style, traces: Vec<Trace<'a>>) -> AreaGraph<'a> {
    AreaGraph {
        title,
        value,
        value_style: style,
        traces,
        max: 100.0,
        max_label: "100%".into(),
        span_s: WINDOW as f64 / 1000.0,
        span_label: span_label(WINDOW),
        empty_note: None,
    }
}

/// Network receive (filled) and transmit (a line), per second.
fn draw_net(m: &Model, t: &Theme, f: &mut Frame, net_area: Rect) {
    let (now, window) = (m.now, WINDOW);
    let rx = series_points(&m.net_rx, now, window, 1.0);
    let tx = series_points(&m.net_tx, now, window, 1.0);
    let net_max = rx
        .iter()
        .chain(&tx)
        .map(|p| p.1)
        .fold(16_384.0f64, f64::max)
        * 1.2;
    let rx_now = rx.last().map(|p| p.1).unwrap_or(0.0);
    let tx_now = tx.last().map(|p| p.1).unwrap_or(0.0);
    let mut g = live(
        "net ↓ ↑".into(),
        format!("↓{} ↑{}", compact_rate(rx_now), compact_rate(tx_now)),
        t.graph_net,
        vec![
            Trace {
                points: &rx,
                style: t.graph_net,
                fill: true,
            },
            Trace {
                points: &tx,
                style: t.graph_cpu,
                fill: false,
            },
        ],
    );
    g.max = net_max;
    g.max_label = compact_rate(net_max);
    draw_area(f, net_area, t, &g);
}

/// Host CPU (filled; each core a line in the 5-minute view) and memory.
fn draw_host(m: &Model, t: &Theme, f: &mut Frame, cpu_area: Rect, mem_area: Rect) {
    let (now, window) = (m.now, WINDOW);
    const DAY: u64 = 86_400_000;
    let (host_window, cpu_series, mem_series) = if m.day_view {
        (DAY, &m.day_cpu, &m.day_mem)
    } else {
        (window, &m.host_cpu, &m.host_mem)
    };
    let cores: Vec<Vec<(f64, f64)>> = if m.day_view {
        Vec::new()
    } else {
        m.cores
            .iter()
            .map(|s| series_points(s, now, window, 1.0))
            .collect()
    };
    let total = series_points(cpu_series, now, host_window, 1.0);
    let mut traces = vec![Trace {
        points: &total,
        style: t.graph_cpu,
        fill: true,
    }];
    traces.extend(cores.iter().map(|p| Trace {
        points: p,
        style: t.muted,
        fill: false,
    }));
    let cur = m.host_cpu.back().map(|x| x.1).unwrap_or(0.0);
    let note = (m.day_view && total.len() < 2).then(|| "a point a minute…".to_string());
    let mut g = live("host CPU".into(), format!("{cur:.0}%"), t.graph_cpu, traces);
    g.span_s = host_window as f64 / 1000.0;
    g.span_label = span_label(host_window);
    g.empty_note = note.clone();
    draw_area(f, cpu_area, t, &g);

    let mem = series_points(mem_series, now, host_window, 1.0);
    let (used, total_mem) = m
        .status
        .as_ref()
        .map(|s| (s.host.memory_used, s.host.memory_total))
        .unwrap_or((0, 0));
    let pct = if total_mem == 0 {
        0.0
    } else {
        used as f64 * 100.0 / total_mem as f64
    };
    let mut g = live(
        format!("mem of {}", compact_bytes(total_mem)),
        format!("{pct:.0}%"),
        t.graph_mem,
        vec![Trace {
            points: &mem,
            style: t.graph_mem,
            fill: true,
        }],
    );
    g.span_s = host_window as f64 / 1000.0;
    g.span_label = span_label(host_window);
    g.empty_note = note;
    draw_area(f, mem_area, t, &g);
}

/// The selected agent's CPU and memory.
fn draw_agent(m: &Model, t: &Theme, f: &mut Frame, acpu_area: Rect, amem_area: Rect) {
    let (now, window) = (m.now, WINDOW);
    let name = m
        .selected_agent()
        .map(|a| a.name.clone())
        .unwrap_or_default();
    let empty = Series::new();
    let acpu = series_points(m.agent_cpu.get(&name).unwrap_or(&empty), now, window, 1.0);
    let amem = series_points(m.agent_mem.get(&name).unwrap_or(&empty), now, window, 1.0);
    let cpu_max = acpu.iter().map(|p| p.1).fold(100.0f64, f64::max);
    let mem_max = amem
        .iter()
        .map(|p| p.1)
        .fold(64.0 * 1024.0 * 1024.0, f64::max)
        * 1.2;
    let acur = acpu.last().map(|p| p.1).unwrap_or(0.0);
    let mcur = amem.last().map(|p| p.1).unwrap_or(0.0);
    let mut g = live(
        format!("{name} CPU"),
        format!("{acur:.0}%"),
        t.graph_cpu,
        vec![Trace {
            points: &acpu,
            style: t.graph_cpu,
            fill: true,
        }],
    );
    g.max = cpu_max;
    g.max_label = format!("{cpu_max:.0}%");
    draw_area(f, acpu_area, t, &g);
    let mut g = live(
        format!("{name} RSS"),
        format_size(mcur as u64),
        t.graph_mem,
        vec![Trace {
            points: &amem,
            style: t.graph_mem,
            fill: true,
        }],
    );
    g.max = mem_max;
    g.max_label = compact_bytes(mem_max as u64);
    draw_area(f, amem_area, t, &g);
}
