//! Agent logs and the console's own diagnostics.

use super::*;

pub(super) fn draw_logs(m: &Model, t: &Theme, f: &mut Frame, area: Rect) {
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

pub(super) fn draw_diagnostics(m: &Model, t: &Theme, f: &mut Frame, area: Rect) {
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
