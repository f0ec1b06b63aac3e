//! The incidents panel and an incident's timeline.

use super::*;

pub(super) fn draw_incidents(m: &Model, t: &Theme, f: &mut Frame, area: Rect) {
    let incidents = m
        .status
        .as_ref()
        .map(|s| s.incidents.as_slice())
        .unwrap_or(&[]);
    let open = incidents.iter().filter(|i| i.status == "open").count();
    let elsewhere = &m.elsewhere_incidents;
    let mut lines: Vec<Line> = if incidents.is_empty() && !elsewhere.is_empty() {
        Vec::new()
    } else if incidents.is_empty() {
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
                let age = fmt_age(m.now.saturating_sub(i.opened_at));
                let state = if i.status == "open" {
                    i.phase.clone()
                } else {
                    i.status.clone()
                };
                Line::from(vec![
                    Span::styled(format!("L{} #{:<3} ", i.level, i.id), level_style),
                    Span::styled(format!("{state:<14}{age:>5}  "), t.muted),
                    Span::styled(sanitize_line(i.title.as_bytes()), t.text),
                ])
            })
            .collect();
        selectable(rows, m.incident_selected, m.focus == Panel::Incidents, t)
    };
    // Other hosts' open incidents, tagged with the host (read-only here).
    for (host, i) in elsewhere {
        let style = match i.level {
            1 => t.bad,
            2 => t.warn,
            _ => t.muted,
        };
        lines.push(Line::from(vec![
            Span::styled(format!("L{} #{:<3} ", i.level, i.id), style),
            Span::styled(format!("[{host}] {:<14}", i.phase), t.muted),
            Span::styled(sanitize_line(i.title.as_bytes()), t.muted),
        ]));
    }
    let others = if elsewhere.is_empty() {
        String::new()
    } else {
        format!(" · {} on other hosts", elsewhere.len())
    };
    f.render_widget(
        Paragraph::new(lines).block(block(
            m,
            t,
            Panel::Incidents,
            format!(" · {open} open{others}"),
        )),
        area,
    );
}

/// The selected incident with its recent timeline.
pub(super) fn draw_incident_detail(m: &Model, t: &Theme, f: &mut Frame, area: Rect) {
    let i = m
        .status
        .as_ref()
        .and_then(|s| s.incidents.get(m.incident_selected));
    let b = detail_block(t, " Incident ");
    let Some(i) = i else {
        return nothing_selected(f, area, b, t, "no incident selected");
    };
    let kv = |k: &str, v: String, style: Style| kv_line(t, 8, k, v, style);
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
    // Entries wrap; show as many of the newest as fit, under a heading
    // that only shows with at least one of them.
    let mut room = area.height.saturating_sub(lines.len() as u16 + 4) as usize;
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
    if skip < i.recent.len() {
        lines.push(Line::from(Span::styled(
            format!("timeline ({} entries, newest last)", i.entries),
            t.accent,
        )));
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
