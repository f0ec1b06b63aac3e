//! Pure views: `view(&Model, &Theme, &mut Frame)` draws everything from the
//! model and nothing else. Agent output is sanitized before it is drawn.

mod alerts;
mod area;
mod chrome;
mod detail;
mod doctor;
mod fleet;
mod graphs;
mod hosts;
mod incidents;
mod logs;
mod tasks;
mod term;
use alerts::*;
use area::*;
use chrome::*;
pub use detail::*;
use fleet::*;
use graphs::*;
use incidents::*;
use logs::*;
use tasks::*;

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{
    Block, Borders, Cell, Clear, Paragraph, Row as TRow, Table, TableState, Wrap,
};

use crate::core::lifecycle::State;
use crate::core::sanitize::sanitize_line;
use crate::core::units::{fmt_age, format_size};
use crate::proto::agent_state;
use crate::tui::action::{Binding, help_rows};
use crate::tui::model::{Conn, Mode, Model, Panel, Row, Series};
use crate::tui::theme::Theme;

/// Smallest terminal the panels are drawn in.
pub const MIN_SIZE: (u16, u16) = (40, 10);

/// Draws the whole console.
pub fn view(m: &Model, t: &Theme, keymap: &[Binding], f: &mut Frame) {
    let area = f.area();
    if area.width < MIN_SIZE.0 || area.height < MIN_SIZE.1 {
        let msg = format!(
            "terminal {}×{} is too small (at least {}×{}); q detaches",
            area.width, area.height, MIN_SIZE.0, MIN_SIZE.1
        );
        f.render_widget(
            Paragraph::new(msg).wrap(Wrap { trim: true }).style(t.warn),
            area,
        );
        return;
    }
    let bar = u16::from(!m.hosts.is_empty());
    let [header, host_bar, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(bar),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(m, t, f, header);
    if bar > 0 {
        hosts::draw(m, t, f, host_bar);
    }
    draw_body(m, t, f, body);
    draw_footer(m, t, f, footer);
    if let Some(msg) = &m.message {
        draw_message(t, msg, f, body);
    }
    match &m.mode {
        Mode::Help => draw_help(m, t, keymap, f, area),
        Mode::Doctor => doctor::draw(m, t, f, area),
        Mode::Confirm { prompt, .. } => draw_confirm(t, prompt, f, area),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::tui::action::keymap;
    use crate::tui::fixture::model;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn render(m: &Model, w: u16, h: u16) -> Terminal<TestBackend> {
        let theme = Theme::default_dark(false);
        let mut term = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
        term.draw(|f| view(m, &theme, &keymap(), f)).expect("draw");
        term
    }

    #[test]
    fn every_panel_at_80x24_100x30_and_120x40() {
        for (w, h) in [(80u16, 24u16), (100, 30), (120, 40)] {
            for p in Panel::ALL {
                let mut m = model();
                m.focus = p;
                if p == Panel::Fleet {
                    m.expanded.insert("researcher".into());
                }
                let term = render(&m, w, h);
                insta::assert_snapshot!(
                    format!("{}_{w}x{h}", p.title().to_lowercase()),
                    term.backend()
                );
            }
        }
    }

    /// The header and footer drop whole parts, never cut one: at every
    /// width the header ends with the link's state and the footer with a
    /// whole hint.
    #[test]
    fn header_and_footer_keep_whole_parts_at_every_width() {
        let m = model();
        for w in [40u16, 60, 80, 100, 120, 160] {
            let term = render(&m, w, 24);
            let text = format!("{}", term.backend());
            let lines: Vec<&str> = text.lines().collect();
            let header = lines[0].trim_matches('"').trim_end();
            let footer = lines[lines.len() - 1].trim_matches('"').trim_end();
            assert!(
                header.ends_with("● attached") || header.ends_with("(pid 4242)"),
                "{w}: {header:?}"
            );
            assert!(
                FOOTER_HINTS.iter().any(|h| footer.ends_with(h)),
                "{w}: {footer:?}"
            );
            for part in header.split(" · ") {
                assert!(!part.is_empty(), "{w}: {header:?}");
            }
        }
    }

    #[test]
    fn the_help_overlay_lists_every_binding_at_both_sizes() {
        for (w, h) in [(80u16, 24u16), (120, 40)] {
            let mut m = model();
            m.mode = Mode::Help;
            let term = render(&m, w, h);
            // Small terminals page the help: every page together.
            let mut text = String::new();
            for page in 0..4 {
                m.help_page = page;
                text.push_str(&format!("{}", render(&m, w, h).backend()));
            }
            for (keys, what) in help_rows(&keymap()) {
                // The description too: the keys alone also show in the footer.
                assert!(
                    text.contains(&keys) && text.contains(what),
                    "help at {w}x{h} lacks `{keys}` ({what})"
                );
            }
            insta::assert_snapshot!(format!("help_{w}x{h}"), term.backend());
        }
    }

    #[test]
    fn the_doctor_report_shows_problems_first_with_their_fix() {
        use crate::core::doctor::Check;
        let mut m = model();
        m.mode = Mode::Doctor;
        assert!(format!("{}", render(&m, 80, 24).backend()).contains("checking the config"));
        m.doctor = Some(vec![
            Check::ok("state.db", "integrity ok"),
            Check::problem(
                "probes",
                "1 of 2 probed replicas: web/0: unready",
                "see status -r",
            ),
        ]);
        let text = format!("{}", render(&m, 80, 24).backend());
        let (fail, ok) = (text.find("FAIL  probes"), text.find("ok    state.db"));
        assert!(fail.is_some() && ok.is_some() && fail < ok, "{text}");
        assert!(text.contains("→ see status -r"), "{text}");
    }

    #[test]
    fn confirm_filter_and_palette_show_in_the_footer_or_a_popup() {
        let mut m = model();
        m.mode = Mode::Confirm {
            prompt: "Stop planner? (y/n)".into(),
            request: crate::proto::Request::Stop {
                agent: "planner".into(),
            },
        };
        assert!(format!("{}", render(&m, 80, 24).backend()).contains("Stop planner? (y/n)"));
        m.mode = Mode::Palette("scale researcher 3".into());
        assert!(format!("{}", render(&m, 80, 24).backend()).contains(":scale researcher 3"));
        m.mode = Mode::Filter;
        m.filter = "res".into();
        let text = format!("{}", render(&m, 120, 40).backend());
        assert!(
            text.contains("filter: res") && !text.contains("planner "),
            "{text}"
        );
    }

    #[test]
    fn hostile_log_lines_render_without_control_characters_or_panics() {
        let mut m = model();
        m.focus = Panel::Logs;
        m.logs.push_back(crate::proto::LogLine {
            seq: 99,
            at: 0,
            replica: 0,
            stream: crate::proto::Stream::Stdout,
            text: "\u{1b}[2J\u{1b}]52;c;ZXZpbA==\u{7}\u{1b}]0;pwned\u{7}visible\u{fffd}".into(),
        });
        m.logs.push_back(crate::proto::LogLine {
            seq: 100,
            at: 0,
            replica: 0,
            stream: crate::proto::Stream::Stdout,
            text: "x".repeat(1 << 20),
        });
        let term = render(&m, 120, 40);
        let buf = term.backend().buffer();
        for cell in buf.content() {
            assert!(
                !cell.symbol().chars().any(|c| c.is_control()),
                "control char {:?}",
                cell.symbol()
            );
        }
        let text = format!("{}", term.backend());
        assert!(text.contains("visible") && !text.contains("pwned") && !text.contains("ZXZpbA"));
    }

    #[test]
    fn any_size_renders_without_panicking() {
        let m = model();
        for w in [0u16, 1, 10, 39, 40, 41, 79, 80, 119, 120, 200] {
            for h in [0u16, 1, 5, 9, 10, 11, 23, 24, 29, 30, 39, 40, 60] {
                for focus in Panel::ALL {
                    let mut m = m.clone();
                    m.focus = focus;
                    render(&m, w, h);
                }
            }
        }
        let text = format!("{}", render(&m, 30, 5).backend());
        assert!(text.contains("too small"), "{text}");
    }

    #[test]
    fn a_failing_data_dir_shows_in_the_header_at_both_sizes() {
        for (w, h) in [(80u16, 24u16), (120, 40)] {
            let mut m = model();
            if let Some(s) = m.status.as_mut() {
                s.storage.push(crate::proto::StorageFault {
                    part: "state".into(),
                    what: "state database (state.db)".into(),
                    error: "database or disk is full".into(),
                    since: 0,
                    errors: 3,
                });
            }
            let term = render(&m, w, h);
            let text = format!("{}", term.backend());
            let header = text.lines().next().unwrap_or_default();
            assert!(
                header.contains("DATA DIR FAILING (state)"),
                "{w}x{h}: {header}"
            );
        }
    }

    #[test]
    fn the_day_view_labels_its_axis() {
        let mut m = model();
        m.focus = Panel::Graphs;
        let text = |m: &Model| {
            let term = render(m, 120, 40);
            let b = term.backend().buffer().clone();
            b.content().iter().map(|c| c.symbol()).collect::<String>()
        };
        assert!(!text(&m).contains("-24h"));
        m.day_view = true;
        let shown = text(&m);
        assert!(
            shown.contains("-24h") && shown.contains("last 24 h"),
            "{shown}"
        );
    }

    #[test]
    fn highlighting_never_slices_inside_a_char() {
        let theme = Theme::default_dark(false);
        // The Kelvin sign shrinks when lowercased and İ grows: together the
        // byte lengths match, but the offsets do not.
        let text = "\u{212A}İİ iii".to_string();
        let spans = highlight(text.clone(), "i", theme.text, theme.selection);
        let joined: String = spans.iter().map(|s| s.content.as_ref()).collect();
        assert_eq!(joined, text);
    }

    #[test]
    fn search_matches_are_highlighted() {
        let theme = Theme::default_dark(false);
        let spans = highlight(
            "step 4 of T-4004".into(),
            "t-40",
            theme.text,
            theme.selection,
        );
        let hl: Vec<&str> = spans
            .iter()
            .filter(|s| s.style == theme.selection)
            .map(|s| s.content.as_ref())
            .collect();
        assert_eq!(hl, vec!["T-40"]);
    }
}
