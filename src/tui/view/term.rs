//! The terminal of a `tty` replica, over the whole body: its screen drawn
//! from the daemon's emulator (cells, colors, cursor) by `tui-term`, never
//! from the agent's raw bytes; in focus mode the keys go to it.

use super::*;

pub(super) fn draw(m: &Model, t: &Theme, f: &mut Frame, area: Rect, target: &(String, u32)) {
    let (agent, replica) = target;
    let focused = m.mode == Mode::Focus;
    let shot = m
        .term
        .as_ref()
        .filter(|s| s.agent == *agent && s.replica == *replica);
    let attention = m
        .selected_agent()
        .and_then(|a| a.replicas.iter().find(|r| r.index == *replica))
        .and_then(|r| r.attention)
        .map_or("-".to_string(), |a| a.to_string());
    let size = shot.map_or(String::new(), |s| format!(" · {}×{}", s.cols, s.rows));
    let holder = shot
        .and_then(|s| s.holder.as_deref())
        .map_or(String::new(), |h| {
            format!(" · input: {}", sanitize_line(h.as_bytes()))
        });
    let work = m
        .worktree
        .as_ref()
        .filter(|w| w.0 == *agent && w.1 == *replica)
        .map_or(String::new(), |w| {
            format!(
                " · {} · {}",
                sanitize_line(w.2.as_bytes()),
                sanitize_line(w.3.as_bytes())
            )
        });
    let title = format!(" {agent}/{replica}{size} · {attention}{holder}{work} ");
    let hint = if focused {
        " TYPING · Ctrl-] returns "
    } else {
        " i type · T send a line · W next waiting · Esc back "
    };
    let block = Block::bordered()
        .title(Span::styled(title, t.accent))
        .title_bottom(Span::styled(hint, if focused { t.warn } else { t.muted }))
        .border_style(if focused { t.warn } else { t.border_focus });
    let inner = block.inner(area);
    m.term_area.set((inner.height, inner.width));
    f.render_widget(block, area);
    let Some(shot) = shot else {
        let text = match &m.term_error {
            Some(e) => sanitize_line(e.as_bytes()),
            None => "waiting for the screen…".into(),
        };
        f.render_widget(Paragraph::new(Span::styled(text, t.muted)), inner);
        return;
    };
    // A fresh emulator fed the daemon's rendition: the same cells. A view
    // shorter than the agent's terminal shows its bottom rows (where the
    // cursor and the latest output are): the rendition's rows scroll up.
    let rows = shot.rows.min(inner.height).max(1);
    let mut parser = vt100::Parser::new(rows, shot.cols.max(1), 0);
    parser.process(shot.formatted.as_bytes());
    let cursor = tui_term::widget::Cursor::default().visibility(focused);
    f.render_widget(
        tui_term::widget::PseudoTerminal::new(parser.screen()).cursor(cursor),
        inner,
    );
}
