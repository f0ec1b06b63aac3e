//! Agent logs and the console's own diagnostics.

use super::*;

pub(super) fn draw_logs(m: &Model, t: &Theme, f: &mut Frame, area: Rect) {
    let agent = m
        .selected_agent()
        .map(|a| a.name.clone())
        .unwrap_or_default();
    let height = area.height.saturating_sub(2) as usize;
    let width = area.width.saturating_sub(2) as usize;
    // The lines shown: all, or in filter mode only the matching ones.
    let shown: Vec<usize> = if m.log_filter {
        crate::tui::update::log_matches(m)
    } else {
        (0..m.logs.len()).collect()
    };
    // Scrolled to the top still shows a full page.
    let end = shown
        .len()
        .saturating_sub(m.log_scroll)
        .max(height.min(shown.len()));
    let start = end.saturating_sub(height);
    let hl = t.selection.add_modifier(Modifier::BOLD);
    let mut lines: Vec<Line> = Vec::new();
    for &i in &shown[start..end] {
        let l = &m.logs[i];
        // Cut before sanitizing a huge line: at most a few screenfuls show.
        let cap = if m.log_wrap { width * 8 } else { width * 4 };
        let raw = &l.text.as_bytes()[..l.text.len().min(cap + 64)];
        let text = sanitize_line(raw);
        // A line that names its level is styled by it (task agents log
        // everything to stderr); others by their stream.
        let base = match level_of(&text) {
            Some(Level::Error) => t.bad,
            Some(Level::Warn) => t.warn,
            Some(Level::Debug) => t.muted,
            Some(Level::Info) => t.text,
            None if l.stream == crate::proto::Stream::Stderr => t.warn,
            None => t.text,
        };
        let marker = if m.search_hit == Some(i) { "▶" } else { " " };
        let mut spans = vec![Span::styled(format!("{marker}{} ", l.replica), t.muted)];
        spans.extend(highlight(text, &m.search, base, hl));
        lines.push(Line::from(spans));
    }
    let mode = if m.log_scroll == 0 {
        "following".to_string()
    } else {
        format!("scrolled up {}", m.log_scroll)
    };
    let mut extra = String::new();
    if !m.search.is_empty() {
        let n = crate::tui::update::log_matches(m).len();
        let how = if m.log_filter { "filter" } else { "search" };
        extra = format!(" · {how} “{}” {n} lines", m.search);
    }
    if m.log_wrap {
        extra.push_str(" · wrap");
    }
    let mut p = Paragraph::new(lines).block(block(
        m,
        t,
        Panel::Logs,
        format!(" · {agent} · {mode}{extra}"),
    ));
    if m.log_wrap {
        // Wrapped lines take more rows: keep the newest in view.
        let rows: usize = shown[start..end]
            .iter()
            .map(|&i| {
                (m.logs[i].text.chars().count() + 3)
                    .div_ceil(width.max(1))
                    .max(1)
            })
            .sum();
        p = p
            .wrap(Wrap { trim: false })
            .scroll((rows.saturating_sub(height) as u16, 0));
    }
    f.render_widget(p, area);
}

pub(super) fn draw_diagnostics(m: &Model, t: &Theme, f: &mut Frame, area: Rect) {
    // The console's own messages above, the daemon's audit trail below.
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    // What the console said (notices, answers, errors), newest last.
    let room = top.height.saturating_sub(2) as usize;
    let said: Vec<Line> = if m.notices.is_empty() {
        vec![Line::from(Span::styled("nothing yet", t.muted))]
    } else {
        let skip = m.notices.len().saturating_sub(room);
        m.notices
            .iter()
            .skip(skip)
            .map(|n| {
                Line::from(vec![
                    Span::styled(format!("{} ", hhmmss(n.at)), t.muted),
                    Span::styled(
                        sanitize_line(n.text.as_bytes()),
                        if n.error { t.bad } else { t.text },
                    ),
                ])
            })
            .collect()
    };
    f.render_widget(
        Paragraph::new(said).block(block(
            m,
            t,
            Panel::Diagnostics,
            " · console messages".into(),
        )),
        top,
    );
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

/// The level a line starts with (`ERROR`, `WARN`, `[info]`, `debug:` …).
fn level_of(text: &str) -> Option<Level> {
    let word: String = text
        .trim_start_matches(|c: char| c == '[' || c.is_whitespace())
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .take(8)
        .collect::<String>()
        .to_ascii_uppercase();
    match word.as_str() {
        "ERROR" | "ERR" | "FATAL" | "CRITICAL" => Some(Level::Error),
        "WARN" | "WARNING" => Some(Level::Warn),
        "INFO" | "NOTICE" => Some(Level::Info),
        "DEBUG" | "TRACE" => Some(Level::Debug),
        _ => None,
    }
}

#[cfg(test)]
mod level_tests {
    use super::*;

    #[test]
    fn a_leading_level_word_is_recognized() {
        assert_eq!(level_of("ERROR tool: crashed"), Some(Level::Error));
        assert_eq!(level_of("[warn] disk"), Some(Level::Warn));
        assert_eq!(level_of("INFO  plan: goal"), Some(Level::Info));
        assert_eq!(level_of("debug: x"), Some(Level::Debug));
        assert_eq!(level_of("Errors found: 3"), None, "a whole word only");
        assert_eq!(level_of("information"), None);
        assert_eq!(level_of("plain text"), None);
    }
}
