//! `D`: the System Health Check's report over the console, one line per
//! check (problems first), with what to do under each that is not fine.

use super::*;
use crate::core::doctor::Level;

pub(super) fn draw(m: &Model, t: &Theme, f: &mut Frame, area: Rect) {
    let width = area.width.min(100);
    let inner = width.saturating_sub(2) as usize;
    let mut lines: Vec<Line> = Vec::new();
    match &m.doctor {
        None => lines.push(Line::from(Span::styled(
            "checking the config, data dir, state.db, audit trail, backups, probes, pool…",
            t.muted,
        ))),
        Some(checks) => {
            let mut sorted: Vec<_> = checks.iter().collect();
            sorted.sort_by_key(|c| std::cmp::Reverse(c.level));
            let name_w = 18.min(inner / 3);
            for c in sorted {
                let (mark, style) = match c.level {
                    Level::Ok => ("ok  ", t.ok),
                    Level::Warn => ("WARN", t.warn),
                    Level::Problem => ("FAIL", t.bad),
                };
                let detail = sanitize_line(c.detail.as_bytes());
                let room = inner.saturating_sub(name_w + 6).max(10);
                for (i, part) in wrap_words(&detail, room).into_iter().enumerate() {
                    let head = if i == 0 {
                        vec![
                            Span::styled(format!("{mark}  "), style),
                            Span::styled(format!("{:<name_w$}", c.name), t.accent),
                        ]
                    } else {
                        vec![Span::raw(" ".repeat(name_w + 6))]
                    };
                    let mut spans = head;
                    spans.push(Span::styled(part, t.text));
                    lines.push(Line::from(spans));
                }
                if let Some(fix) = c.fix.as_ref().filter(|_| c.level != Level::Ok) {
                    for part in wrap_words(&format!("→ {fix}"), room) {
                        lines.push(Line::from(vec![
                            Span::raw(" ".repeat(name_w + 6)),
                            Span::styled(part, t.muted),
                        ]));
                    }
                }
            }
        }
    }
    // Scrolls a page at a time when it does not fit.
    let room = area.height.saturating_sub(3).max(1) as usize;
    let pages = lines.len().div_ceil(room).max(1);
    let page = m.help_page % pages;
    let mut shown: Vec<Line> = lines.into_iter().skip(page * room).take(room).collect();
    let foot = if pages > 1 {
        format!("page {}/{pages} · ↓ ↑ turn · Esc or D closes", page + 1)
    } else {
        "Esc or D closes · `autonomos doctor` prints the same".into()
    };
    shown.push(Line::from(Span::styled(foot, t.muted)));
    let height = (shown.len() as u16 + 2).min(area.height);
    let r = chrome::centered(area, width, height);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(shown).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(t.border_focus)
                .title(" System Health Check "),
        ),
        r,
    );
}
