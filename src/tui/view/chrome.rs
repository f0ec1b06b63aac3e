//! The frame around the panels: header, footer, layout, help, prompts,
//! and the small helpers every panel uses.

use super::*;

pub(super) fn block<'a>(m: &Model, t: &Theme, p: Panel, extra: String) -> Block<'a> {
    let focused = m.focus == p;
    let title = format!(" {} {}{} ", p.number(), p.title(), extra);
    Block::default()
        .borders(Borders::ALL)
        .border_style(if focused { t.border_focus } else { t.border })
        .title(Span::styled(title, if focused { t.accent } else { t.text }))
}

pub(super) fn draw_header(m: &Model, t: &Theme, f: &mut Frame, area: Rect) {
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
        Conn::Stopping => Span::styled("◌ daemon shutting down", t.bad),
        Conn::Stopped { .. } => Span::styled("■ daemon stopped · q quits", t.bad),
    };
    spans.push(conn);
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

pub(super) fn draw_footer(m: &Model, t: &Theme, f: &mut Frame, area: Rect) {
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
        _ if matches!(m.conn, Conn::Stopped { .. }) => Line::from(Span::styled(
            "the daemon stopped: no agent runs · q quits · the console attaches again if it starts",
            t.bad,
        )),
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

pub(super) fn draw_body(m: &Model, t: &Theme, f: &mut Frame, area: Rect) {
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

/// `24G`, `512M`: whole units, for tight titles.
pub(super) fn compact_bytes(b: u64) -> String {
    let g = b as f64 / (1u64 << 30) as f64;
    if g >= 1.0 {
        format!("{g:.0}G")
    } else {
        format!("{:.0}M", b as f64 / (1u64 << 20) as f64)
    }
}

pub(super) fn severity_style(t: &Theme, severity: &str) -> Style {
    match severity {
        "critical" => t.bad,
        "major" => t.warn,
        _ => t.text,
    }
}

pub(super) fn hhmmss(ms: u64) -> String {
    jiff::Timestamp::from_millisecond(ms as i64)
        .map(|x| x.strftime("%H:%M:%S").to_string())
        .unwrap_or_default()
}

/// A list with the selected row marked while the panel has focus.
pub(super) fn selectable<'a>(
    rows: Vec<Line<'a>>,
    selected: usize,
    focused: bool,
    t: &Theme,
) -> Vec<Line<'a>> {
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

/// Splits `text` so that every match of `needle` is highlighted.
pub(super) fn highlight<'a>(text: String, needle: &str, base: Style, hl: Style) -> Vec<Span<'a>> {
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

pub(super) fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

pub(super) fn draw_help(t: &Theme, keymap: &[Binding], f: &mut Frame, area: Rect) {
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

pub(super) fn draw_confirm(t: &Theme, prompt: &str, f: &mut Frame, area: Rect) {
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

/// The frame of a detail pane.
pub(super) fn detail_block<'a>(t: &Theme, title: &'a str) -> Block<'a> {
    Block::bordered()
        .title(title)
        .border_style(t.border)
        .title_style(t.accent)
}

/// A detail pane with nothing to show yet.
pub(super) fn nothing_selected(f: &mut Frame, area: Rect, b: Block<'_>, t: &Theme, what: &str) {
    f.render_widget(
        Paragraph::new(Span::styled(what.to_string(), t.muted)).block(b),
        area,
    );
}

/// `key      value`: the key muted and padded to `width`.
pub(super) fn kv_line(t: &Theme, width: usize, k: &str, v: String, style: Style) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{k:<width$}"), t.muted),
        Span::styled(v, style),
    ])
}
