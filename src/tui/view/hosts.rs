//! The host bar of a console over several daemons: each host at a glance
//! (attached or not, agents running of desired, firing alerts, replicas
//! waiting for input), the one in view marked; `{`/`}` switch.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::model::{HostBadge, Model};
use crate::tui::theme::Theme;

/// One host's part of the bar, as (text, style) pieces.
fn badge<'a>(h: &HostBadge, current: bool, t: &Theme) -> Vec<Span<'a>> {
    let name_style = if current {
        t.selection.add_modifier(Modifier::BOLD)
    } else {
        t.text
    };
    let mut out = vec![Span::styled(format!(" {} ", h.name), name_style)];
    if h.up {
        let style = if h.running < h.desired { t.warn } else { t.ok };
        out.push(Span::styled(
            format!("● {}/{}", h.running, h.desired),
            style,
        ));
    } else {
        out.push(Span::styled(format!("✕ {}", h.state), t.bad));
    }
    if h.firing > 0 {
        out.push(Span::styled(format!(" ⚠{}", h.firing), t.bad));
    }
    if h.waiting > 0 {
        out.push(Span::styled(format!(" ⌨{}", h.waiting), t.warn));
    }
    out
}

fn width(spans: &[Span<'_>]) -> usize {
    spans.iter().map(|s| s.content.chars().count()).sum()
}

/// Draws the bar: whole badges only, the current one always; the switch
/// hint when there is room.
pub fn draw(m: &Model, t: &Theme, f: &mut Frame, area: Rect) {
    let room = area.width as usize;
    let current = m.host_index.min(m.hosts.len().saturating_sub(1));
    let mut spans: Vec<Span<'_>> = Vec::new();
    let mut used = 0;
    // The current host first in priority, then the others in order.
    let mut shown = vec![false; m.hosts.len()];
    let cur = badge(&m.hosts[current], true, t);
    used += width(&cur) + 1;
    shown[current] = true;
    let all: usize = m.hosts.iter().map(|h| width(&badge(h, false, t)) + 1).sum();
    // Not all fit: room is kept for the count of those left out.
    let budget = if all <= room {
        room
    } else {
        room.saturating_sub(4)
    };
    for (i, h) in m.hosts.iter().enumerate() {
        if i == current {
            continue;
        }
        let w = width(&badge(h, false, t)) + 1;
        if used + w <= budget {
            used += w;
            shown[i] = true;
        }
    }
    let hidden = shown.iter().filter(|s| !**s).count();
    for (i, h) in m.hosts.iter().enumerate() {
        if shown[i] {
            spans.extend(badge(h, i == current, t));
            spans.push(Span::raw(" "));
        }
    }
    if hidden > 0 {
        spans.push(Span::styled(format!("+{hidden} "), t.muted));
    }
    let hint = " { } switch host";
    if width(&spans) + hint.len() <= room {
        spans.push(Span::styled(hint, t.muted));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

#[cfg(test)]
mod tests {
    use super::*;

    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn host(name: &str, up: bool, firing: usize) -> HostBadge {
        HostBadge {
            name: name.into(),
            up,
            state: if up {
                String::new()
            } else {
                "unreachable (3)".into()
            },
            running: 2,
            desired: 3,
            firing,
            waiting: 0,
        }
    }

    fn bar(m: &Model, w: u16) -> String {
        let theme = Theme::default_dark(false);
        let mut term = Terminal::new(TestBackend::new(w, 1)).expect("terminal");
        term.draw(|f| draw(m, &theme, f, f.area())).expect("draw");
        let buf = term.backend().buffer().clone();
        (0..w).map(|x| buf[(x, 0)].symbol().to_string()).collect()
    }

    #[test]
    fn the_bar_shows_every_host_and_keeps_the_current_one_when_narrow() {
        let mut m = crate::tui::fixture::model();
        m.hosts = vec![
            host("alpha", true, 0),
            host("beta", false, 0),
            host("gamma", true, 2),
        ];
        m.host_index = 2;
        let wide = bar(&m, 120);
        assert!(
            wide.starts_with(" alpha ● 2/3  beta ✕ unreachable (3)  gamma ● 2/3 ⚠2"),
            "{wide}"
        );
        assert!(wide.contains("{ } switch host"), "{wide}");
        // Too narrow for all: the current host stays, the rest are counted.
        let narrow = bar(&m, 34);
        assert!(
            narrow.contains("alpha ● 2/3  gamma ● 2/3 ⚠2 +1"),
            "{narrow}"
        );
        assert!(!narrow.contains("switch"), "{narrow}");
        let tiny = bar(&m, 22);
        assert!(tiny.starts_with(" gamma ● 2/3 ⚠2 +2"), "{tiny}");
    }
}
