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
        " · host: last 24 h, agent: last 5 min"
    } else {
        " · last 5 min"
    };
    let outer = block(m, t, Panel::Graphs, title.into());
    let inner = outer.inner(area);
    f.render_widget(outer, area);
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
    draw_net(m, t, f, net_area);
    draw_host(m, t, f, cpu_area, mem_area);
    draw_agent(m, t, f, acpu_area, amem_area);
}

/// Network receive and transmit, KiB/s.
fn draw_net(m: &Model, t: &Theme, f: &mut Frame, net_area: Rect) {
    let (now, window) = (m.now, WINDOW);
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
}

/// Host CPU (total and per core; the day view shows the total) and memory.
fn draw_host(m: &Model, t: &Theme, f: &mut Frame, cpu_area: Rect, mem_area: Rect) {
    let (now, window) = (m.now, WINDOW);
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

pub(super) fn render_chart(
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
pub(super) fn gapless_runs(
    pts: &[(f64, f64)],
    max_gap: f64,
) -> impl Iterator<Item = &[(f64, f64)]> {
    pts.chunk_by(move |a, b| b.0 - a.0 <= max_gap)
}

/// A chart over the last `window_ms`.
#[allow(clippy::too_many_arguments)]
pub(super) fn render_chart_span(
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
