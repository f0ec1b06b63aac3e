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

/// The footer's hints, most useful first; each shows whole or not at all.
pub(super) const FOOTER_HINTS: [&str; 8] = [
    "? help",
    "q detach",
    "Tab panels",
    "+/- scale",
    "r restart",
    "s stop/start",
    "/ filter",
    ": command",
];

/// Keeps the parts that fit, most important first, in their order: each
/// part is shown whole or not at all. Parts: (priority, 0 first; spans).
fn fit_parts<'a>(mut parts: Vec<(u8, Vec<Span<'a>>)>, width: u16) -> Line<'a> {
    let w = |p: &[(u8, Vec<Span>)]| -> usize {
        p.iter()
            .flat_map(|(_, s)| s.iter())
            .map(|s| s.content.chars().count())
            .sum()
    };
    while w(&parts) > width as usize {
        let Some(worst) = parts
            .iter()
            .enumerate()
            .max_by_key(|(i, (p, _))| (*p, *i))
            .map(|(i, _)| i)
        else {
            break;
        };
        parts.remove(worst);
    }
    Line::from(parts.into_iter().flat_map(|(_, s)| s).collect::<Vec<_>>())
}

pub(super) fn draw_header(m: &Model, t: &Theme, f: &mut Frame, area: Rect) {
    let mut parts: Vec<(u8, Vec<Span>)> = vec![(0, vec![Span::styled(" Autonomos ", t.accent)])];
    match &m.status {
        Some(s) => {
            let running: u32 = s.agents.iter().map(|a| a.running).sum();
            let desired: u32 = s.agents.iter().map(|a| a.desired).sum();
            let firing = s.alerts.iter().filter(|a| a.state == "firing").count();
            if let Conn::Attached { host, .. } = &m.conn {
                parts.push((5, vec![Span::styled(format!("{host} "), t.text)]));
            }
            if !s.storage.is_empty() {
                let names: Vec<&str> = s.storage.iter().map(|f| f.part.as_str()).collect();
                let text = format!("· DATA DIR FAILING ({}) ", names.join(", "));
                parts.push((1, vec![Span::styled(text, t.bad)]));
            }
            let up = fmt_age(s.now.saturating_sub(s.started_at));
            parts.push((7, vec![Span::styled(format!("· up {up} "), t.muted)]));
            let style = if running < desired { t.warn } else { t.ok };
            let replicas = format!("· replicas {running}/{desired} ");
            parts.push((2, vec![Span::styled(replicas, style)]));
            let alerts = Span::styled(
                format!("· alerts {firing} "),
                if firing > 0 { t.bad } else { t.muted },
            );
            parts.push((3, vec![alerts]));
            let waiting = m.waiting_input();
            if waiting > 0 {
                let text = format!("· {waiting} waiting ");
                parts.push((
                    2,
                    vec![Span::styled(text, t.warn.add_modifier(Modifier::BOLD))],
                ));
            }
            let cpu = format!("· cpu {:.0}% ", s.host.cpu_percent);
            parts.push((6, vec![Span::styled(cpu, t.muted)]));
            match &s.backup_progress {
                Some(p) if p.total > 0 => {
                    let pct = (p.done.min(p.total) as f64 / p.total as f64 * 100.0).floor();
                    let text = format!("· backup {pct:.0}% ");
                    parts.push((4, vec![Span::styled(text, t.warn)]));
                }
                _ if s.backup_running => {
                    parts.push((4, vec![Span::styled("· backup running ", t.warn)]));
                }
                _ => {}
            }
        }
        None => parts.push((1, vec![Span::styled("waiting for the daemon… ", t.muted)])),
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
    // The link's state always shows: shortened before anything else goes.
    let short = match &m.conn {
        Conn::Attached { .. } => Span::styled("● attached", t.ok),
        _ => conn.clone(),
    };
    let full = fit_parts(
        parts.iter().cloned().chain([(0, vec![conn])]).collect(),
        area.width,
    );
    let brief = fit_parts(
        parts.into_iter().chain([(0, vec![short])]).collect(),
        area.width,
    );
    // The long form of the link unless it costs another part.
    let line = if brief.spans.len() > full.spans.len() {
        brief
    } else {
        full
    };
    f.render_widget(Paragraph::new(line), area);
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
        _ if m.pending_scale.is_some() => {
            let p = m.pending_scale.as_ref().expect("checked");
            let secs = p.due.saturating_sub(m.now).div_ceil(1000);
            Line::from(vec![
                Span::styled(format!("scale {} {} → {} ", p.agent, p.from, p.to), t.warn),
                Span::styled(
                    format!("in {secs}s · Enter sends now · Esc cancels"),
                    t.muted,
                ),
            ])
        }
        _ if matches!(m.conn, Conn::Stopped { .. }) => Line::from(Span::styled(
            "the daemon stopped: no agent runs · q quits · the console attaches again if it starts",
            t.bad,
        )),
        _ => match m.notices.back() {
            Some(n) if m.now.saturating_sub(n.at) < 8000 => Line::from(Span::styled(
                sanitize_line(n.text.as_bytes()),
                if n.error { t.bad } else { t.ok },
            )),
            _ => {
                let parts = FOOTER_HINTS
                    .iter()
                    .enumerate()
                    .map(|(i, h)| (i as u8, vec![Span::styled(format!("{h}  "), t.muted)]))
                    .collect();
                fit_parts(parts, area.width)
            }
        },
    };
    f.render_widget(Paragraph::new(line), area);
}

pub(super) fn draw_body(m: &Model, t: &Theme, f: &mut Frame, area: Rect) {
    // A tty agent's detail is its terminal, over the whole body.
    if let Some(target) = m.term_target() {
        return term::draw(m, t, f, area, &target);
    }
    if area.width >= 120 && area.height >= 30 {
        // Panels sized by their content: the fleet by its rows (up to
        // 45 % of the height), alerts and incidents by theirs (a few rows,
        // the whole left width so ids, levels, ages and titles show), the
        // logs take the rest.
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)])
                .areas(area);
        let s = m.status.as_ref();
        let alerts = s.map_or(0, |s| s.alerts.len()) + m.elsewhere_alerts.len();
        let failing = s.is_some_and(|s| s.notifiers.iter().any(|n| n.last_error.is_some()));
        let incidents = s.map_or(0, |s| s.incidents.len()) + m.elsewhere_incidents.len();
        let rows = m.rows().len() + elsewhere_rows(m);
        let fleet_h = (rows as u16 + 3).clamp(5, (left.height * 45 / 100).max(5));
        let alerts_h = (alerts.max(1) as u16 + failing as u16 + 2).min(8);
        let incidents_h = (incidents.max(1) as u16 + 2).min(7);
        let [fleet, alerts_a, incidents_a, bottom] = Layout::vertical([
            Constraint::Length(fleet_h),
            Constraint::Length(alerts_h),
            Constraint::Length(incidents_h),
            Constraint::Min(5),
        ])
        .areas(left);
        draw_fleet(m, t, f, fleet);
        draw_alerts(m, t, f, alerts_a);
        draw_incidents(m, t, f, incidents_a);
        match m.focus {
            Panel::Diagnostics => draw_diagnostics(m, t, f, bottom),
            Panel::Tasks => draw_tasks(m, t, f, bottom),
            _ => draw_logs(m, t, f, bottom),
        }
        let [graphs, detail] = Layout::vertical([
            Constraint::Length(right.height * 45 / 100),
            Constraint::Min(8),
        ])
        .areas(right);
        draw_graphs(m, t, f, graphs);
        match m.focus {
            Panel::Alerts => draw_alert_detail(m, t, f, detail),
            Panel::Incidents => draw_incident_detail(m, t, f, detail),
            _ => draw_detail(m, t, f, detail),
        }
    } else {
        // Small terminals: the fleet and the focused panel (the agent's
        // detail while the fleet itself has focus).
        let fleet_rows = ((m.rows().len() + elsewhere_rows(m)) as u16 + 3)
            .min(area.height / 2)
            .max(3.min(area.height));
        let [fleet, other] =
            Layout::vertical([Constraint::Length(fleet_rows), Constraint::Min(3)]).areas(area);
        draw_fleet(m, t, f, fleet);
        match m.focus {
            Panel::Fleet | Panel::Detail => draw_detail(m, t, f, other),
            Panel::Graphs => draw_graphs(m, t, f, other),
            Panel::Alerts | Panel::Incidents => {
                // The list by its rows (up to 40 %), the detail the rest.
                let n = m.status.as_ref().map_or(0, |s| {
                    if m.focus == Panel::Alerts {
                        s.alerts.len() + m.elsewhere_alerts.len()
                    } else {
                        s.incidents.len() + m.elsewhere_incidents.len()
                    }
                });
                let list_h = (n.max(1) as u16 + 2).min((other.height * 2 / 5).max(3));
                let [list, detail] =
                    Layout::vertical([Constraint::Length(list_h), Constraint::Min(3)]).areas(other);
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
            Panel::Tasks => draw_tasks(m, t, f, other),
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
    // Lowercasing can change a char's byte length (the Kelvin sign, İ):
    // then byte offsets in `lower` are not offsets in `text`, so such a
    // line is shown without highlighting rather than sliced inside a char.
    let same_len = |c: char| c.to_lowercase().map(char::len_utf8).sum::<usize>() == c.len_utf8();
    if !text.chars().all(same_len) || !needle.chars().all(same_len) {
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

/// The rule every key follows, said at the top of the help.
pub const KEY_RULE: &str = "Keys act on what is selected and visible: a needs the alert feed (4), \
n and > the incident log (5); +/- are sent after 3 s (Esc cancels); r, s, b and Q ask first.";

pub(super) fn draw_help(m: &Model, t: &Theme, keymap: &[Binding], f: &mut Frame, area: Rect) {
    let rows = help_rows(keymap);
    let width = area.width.min(80);
    let inner = width.saturating_sub(2) as usize;
    let mut rule: Vec<Line> = wrap_words(KEY_RULE, inner)
        .into_iter()
        .map(|l| Line::from(Span::styled(l, t.muted)))
        .collect();
    rule.push(Line::from(""));
    let key_w = 16.min(inner / 3);
    let body: Vec<Line> = rows
        .iter()
        .map(|(k, d)| {
            Line::from(vec![
                Span::styled(format!("{k:<key_w$}"), t.accent),
                Span::styled(d.to_string(), t.text),
            ])
        })
        .collect();
    // Whole rows per page: the rule on the first, a footer line on each.
    let room = area.height.saturating_sub(3) as usize;
    let mut pages: Vec<Vec<Line>> = vec![rule.clone()];
    for l in body {
        if pages.last().is_some_and(|p| p.len() >= room) {
            pages.push(Vec::new());
        }
        if let Some(p) = pages.last_mut() {
            p.push(l);
        }
    }
    let page = m.help_page % pages.len();
    let mut lines = pages[page].clone();
    let foot = if pages.len() > 1 {
        format!(
            "page {}/{} · ↓ ↑ turn · Esc or ? closes",
            page + 1,
            pages.len()
        )
    } else {
        "Esc or ? closes this help".into()
    };
    lines.push(Line::from(Span::styled(foot, t.muted)));
    let height = if pages.len() > 1 {
        room as u16 + 3
    } else {
        lines.len() as u16 + 2
    };
    let r = centered(area, width, height);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(t.border_focus)
                .title(" Keys "),
        ),
        r,
    );
}

/// Greedy word wrap to `width` columns.
pub(super) fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    for w in text.split_whitespace() {
        if !cur.is_empty() && cur.chars().count() + 1 + w.chars().count() > width {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(w);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A long message, whole, at the bottom of the body until dismissed.
pub(super) fn draw_message(t: &Theme, n: &crate::tui::model::Notice, f: &mut Frame, body: Rect) {
    let width = body.width.saturating_sub(4).min(100);
    let lines: Vec<Line> = wrap_words(&sanitize_line(n.text.as_bytes()), width as usize - 2)
        .into_iter()
        .map(|l| Line::from(Span::styled(l, if n.error { t.bad } else { t.text })))
        .collect();
    let h = (lines.len() as u16 + 2).min(body.height);
    let r = Rect {
        x: body.x + (body.width - width) / 2,
        y: body.bottom().saturating_sub(h),
        width,
        height: h,
    };
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .border_style(if n.error { t.bad } else { t.border_focus })
                .title(" Message · Esc or Enter dismisses "),
        ),
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
