//! A filled area graph in braille dots: the primary series filled from the
//! bottom, other series drawn as lines over the empty part, the current
//! value at the right end of the title line, y labels in their own gutter
//! (never running into a neighbouring graph) and the time span below.

use ratatui::buffer::Buffer;

use super::*;

/// One series: points (seconds ago ≤ 0, value), style, filled or a line.
pub(super) struct Trace<'a> {
    pub points: &'a [(f64, f64)],
    pub style: Style,
    pub fill: bool,
}

/// What one graph shows.
pub(super) struct AreaGraph<'a> {
    pub title: String,
    /// The current value, right-aligned on the title line.
    pub value: String,
    pub value_style: Style,
    pub traces: Vec<Trace<'a>>,
    pub max: f64,
    /// The top of the y axis, as labelled ("100%", "19K/s").
    pub max_label: String,
    /// How far back the graph reaches, seconds.
    pub span_s: f64,
    /// The left x label ("-5m", "-24h").
    pub span_label: String,
    /// Said in the plot when there is too little to draw.
    pub empty_note: Option<String>,
}

/// Braille dot bits, by (column 0-1, row 0-3 from the top).
const DOTS: [[u8; 4]; 2] = [[0x01, 0x02, 0x04, 0x40], [0x08, 0x10, 0x20, 0x80]];

/// The mean value per dot column (`None` where there are no points).
pub(super) fn columns(points: &[(f64, f64)], span_s: f64, n: usize) -> Vec<Option<f64>> {
    let mut sum = vec![(0.0f64, 0u32); n];
    if n == 0 || span_s <= 0.0 {
        return vec![None; n];
    }
    for &(x, v) in points {
        let pos = ((x + span_s) / span_s * n as f64).floor();
        if pos < 0.0 {
            continue;
        }
        let i = (pos as usize).min(n - 1);
        sum[i].0 += v;
        sum[i].1 += 1;
    }
    sum.into_iter()
        .map(|(s, c)| (c > 0).then(|| s / f64::from(c)))
        .collect()
}

/// How many dot rows (of `rows`) a value fills.
fn height(v: f64, max: f64, rows: usize) -> usize {
    if max <= 0.0 || !v.is_finite() {
        return 0;
    }
    let h = (v / max * rows as f64).round() as usize;
    // Anything above zero shows at least one dot.
    if v > 0.0 { h.clamp(1, rows) } else { 0 }
}

pub(super) fn draw_area(f: &mut Frame, area: Rect, t: &Theme, g: &AreaGraph) {
    if area.width < 8 || area.height < 3 {
        return;
    }
    let buf = f.buffer_mut();
    // Title and value on the first line; the value wins the room.
    let value_w = g.value.chars().count() as u16;
    let title_w = area.width.saturating_sub(value_w + 1);
    buf.set_stringn(area.x, area.y, &g.title, title_w as usize, t.text);
    if value_w < area.width {
        buf.set_string(area.right() - value_w, area.y, &g.value, g.value_style);
    }
    let x_labels = area.height >= 5;
    let plot_h = area.height - 1 - u16::from(x_labels);
    let gutter = g.max_label.chars().count().max(2) as u16 + 1;
    if area.width <= gutter + 4 {
        return;
    }
    let plot = Rect {
        x: area.x + gutter,
        y: area.y + 1,
        width: area.width - gutter,
        height: plot_h,
    };
    buf.set_string(area.x, plot.y, &g.max_label, t.muted);
    buf.set_string(area.x, plot.bottom() - 1, "0", t.muted);
    for y in plot.y..plot.bottom() {
        buf.set_string(plot.x - 1, y, "│", t.border);
    }
    if x_labels {
        let y = plot.bottom();
        buf.set_string(plot.x, y, &g.span_label, t.muted);
        buf.set_string(plot.right().saturating_sub(3), y, "now", t.muted);
    }
    plot_traces(buf, plot, g, t);
    if let Some(note) = &g.empty_note {
        let w = note.chars().count() as u16;
        let x = plot.x + plot.width.saturating_sub(w) / 2;
        let y = plot.y + plot.height / 2;
        buf.set_stringn(x, y, note, plot.width as usize, t.muted);
    }
}

fn plot_traces(buf: &mut Buffer, plot: Rect, g: &AreaGraph, t: &Theme) {
    let (w, h) = (plot.width as usize, plot.height as usize);
    let rows = h * 4;
    // Per cell: filled bits with their style, line bits with theirs.
    let mut fill = vec![0u8; w * h];
    let mut fill_style = vec![None; w * h];
    let mut line = vec![0u8; w * h];
    let mut line_style = vec![None; w * h];
    for tr in &g.traces {
        let cols = columns(tr.points, g.span_s, w * 2);
        for (c, v) in cols.iter().enumerate() {
            let Some(v) = v else { continue };
            let top = height(*v, g.max, rows);
            if top == 0 && !tr.fill {
                continue;
            }
            let (cx, sub) = (c / 2, c % 2);
            let from = if tr.fill { 0 } else { top.saturating_sub(1) };
            for d in from..top.max(from + usize::from(!tr.fill)) {
                // Dot row d counted from the bottom.
                let cell_row = h - 1 - d / 4;
                let bit = DOTS[sub][3 - d % 4];
                let i = cell_row * w + cx;
                if tr.fill {
                    fill[i] |= bit;
                    fill_style[i] = Some(tr.style);
                } else {
                    line[i] |= bit;
                    line_style[i] = Some(tr.style);
                }
            }
        }
    }
    for row in 0..h {
        for col in 0..w {
            let i = row * w + col;
            let (bits, style) = if fill[i] != 0 {
                (fill[i] | line[i], fill_style[i])
            } else {
                (line[i], line_style[i])
            };
            if bits == 0 {
                continue;
            }
            let ch = char::from_u32(0x2800 + u32::from(bits)).unwrap_or(' ');
            let cell = &mut buf[(plot.x + col as u16, plot.y + row as u16)];
            cell.set_char(ch);
            cell.set_style(style.unwrap_or(t.text));
        }
    }
}

/// Short rates for tight labels: `512B/s`, `19K/s`, `3.2M/s`.
pub(super) fn compact_rate(bps: f64) -> String {
    let k = bps / 1024.0;
    if k < 1.0 {
        format!("{bps:.0}B/s")
    } else if k < 1024.0 {
        format!("{k:.0}K/s")
    } else if k < 10.0 * 1024.0 {
        format!("{:.1}M/s", k / 1024.0)
    } else {
        format!("{:.0}M/s", k / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_average_into_their_columns_and_gaps_stay_empty() {
        let pts = [(-300.0, 10.0), (-299.0, 20.0), (-1.0, 50.0)];
        let c = columns(&pts, 300.0, 10);
        assert_eq!(c[0], Some(15.0));
        assert!(c[1..9].iter().all(Option::is_none));
        assert_eq!(c[9], Some(50.0));
    }

    #[test]
    fn a_filled_graph_fills_from_the_bottom_and_labels_the_current_value() {
        let theme = Theme::default_dark(false);
        let pts: Vec<(f64, f64)> = (0..300).map(|i| (f64::from(i) - 299.0, 50.0)).collect();
        let g = AreaGraph {
            title: "host CPU".into(),
            value: "50%".into(),
            value_style: theme.graph_cpu,
            traces: vec![Trace {
                points: &pts,
                style: theme.graph_cpu,
                fill: true,
            }],
            max: 100.0,
            max_label: "100%".into(),
            span_s: 300.0,
            span_label: "-5m".into(),
            empty_note: None,
        };
        let mut term =
            ratatui::Terminal::new(ratatui::backend::TestBackend::new(30, 6)).expect("term");
        term.draw(|f| draw_area(f, f.area(), &theme, &g))
            .expect("draw");
        let text = format!("{}", term.backend());
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("host CPU") && lines[0].trim_end().ends_with("50%\""));
        // 4 plot rows at 50 %: the lower two full (⣿), the upper two empty.
        assert!(
            lines[3].contains("⣿⣿⣿") && lines[4].contains("⣿⣿⣿"),
            "{text}"
        );
        assert!(!lines[1].contains('⣿') && !lines[2].contains('⣿'), "{text}");
        assert!(
            lines[1].contains("100%│") && lines[4].contains("0   │"),
            "{text}"
        );
        assert!(
            lines[5].contains("-5m") && lines[5].contains("now"),
            "{text}"
        );
    }

    #[test]
    fn rates_are_per_second() {
        assert_eq!(compact_rate(512.0), "512B/s");
        assert_eq!(compact_rate(19.0 * 1024.0), "19K/s");
        assert_eq!(compact_rate(3.5 * 1024.0 * 1024.0), "3.5M/s");
    }
}
