//! Console intents (`Action`) and the keymap that turns keys into them.
//! The help overlay is generated from the keymap in force.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::tui::model::Panel;

/// What the operator asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Detach,
    Shutdown,
    FocusNext,
    FocusPrev,
    Focus(Panel),
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Enter,
    Back,
    ToggleExpand,
    ScaleUp,
    ScaleDown,
    Restart,
    StartStop,
    Backup,
    Ack,
    /// Add a note to the selected incident.
    Note,
    /// Move the selected incident to its next phase.
    Advance,
    Slash,
    Palette,
    Help,
    Sort,
    /// Graphs: the last 5 minutes or the last 24 hours.
    Span,
    /// Logs: the previous match (`n`, the note key, is the next one there).
    PrevMatch,
    /// Logs: show only the lines that match the search.
    LogFilter,
    /// Logs: wrap long lines.
    Wrap,
    /// Submit a task to the selected agent (a one-line prompt).
    SubmitTask,
    /// Turn the selected agent's autoscaler on or off (asks first).
    ToggleAutoscale,
    /// Run the System Health Check and show its report.
    Doctor,
    /// Keys go to the selected `tty` replica (focus mode).
    TypeInto,
    /// Leave focus mode (only looked up in focus mode).
    Unfocus,
    /// Select the next replica waiting for input.
    NextWaiting,
    // Input modes.
    Char(char),
    Backspace,
    Submit,
    Complete,
    Yes,
    No,
}

/// One binding: keys as shown in help, the action, and what it does.
#[derive(Debug, Clone)]
pub struct Binding {
    /// The action's name in `[console] keys`.
    pub name: &'static str,
    pub action: Action,
    /// What it does; empty for the second half of a paired row (`+ / -`).
    pub help: &'static str,
    /// How help shows the default keys of this row.
    label: &'static str,
    codes: Vec<(KeyCode, KeyModifiers)>,
    /// Rebound in the config.
    custom: bool,
}

const NONE: KeyModifiers = KeyModifiers::NONE;
const SHIFT: KeyModifiers = KeyModifiers::SHIFT;
const CTRL: KeyModifiers = KeyModifiers::CONTROL;
const ALT: KeyModifiers = KeyModifiers::ALT;

/// The default keymap (Normal mode).
pub fn keymap() -> Vec<Binding> {
    use KeyCode::*;
    let b = |name, label, action, help, codes: &[(KeyCode, KeyModifiers)]| Binding {
        name,
        label,
        action,
        help,
        codes: codes.to_vec(),
        custom: false,
    };
    vec![
        b(
            "detach",
            "q",
            Action::Detach,
            "detach (the fleet keeps running)",
            &[(Char('q'), NONE)],
        ),
        b(
            "shutdown",
            "Q",
            Action::Shutdown,
            "shut the fleet down (asks first)",
            &[(Char('Q'), SHIFT), (Char('Q'), NONE)],
        ),
        b(
            "focus_next",
            "Tab / Shift-Tab",
            Action::FocusNext,
            "next / previous panel",
            &[(Tab, NONE)],
        ),
        b(
            "focus_prev",
            "",
            Action::FocusPrev,
            "",
            &[(BackTab, SHIFT), (BackTab, NONE)],
        ),
        b(
            "",
            "1-8",
            Action::Focus(Panel::Fleet),
            "jump to a panel",
            &[(Char('1'), NONE)],
        ),
        b(
            "",
            "",
            Action::Focus(Panel::Graphs),
            "",
            &[(Char('2'), NONE)],
        ),
        b(
            "",
            "",
            Action::Focus(Panel::Detail),
            "",
            &[(Char('3'), NONE)],
        ),
        b(
            "",
            "",
            Action::Focus(Panel::Alerts),
            "",
            &[(Char('4'), NONE)],
        ),
        b(
            "",
            "",
            Action::Focus(Panel::Incidents),
            "",
            &[(Char('5'), NONE)],
        ),
        b("", "", Action::Focus(Panel::Logs), "", &[(Char('6'), NONE)]),
        b(
            "",
            "",
            Action::Focus(Panel::Diagnostics),
            "",
            &[(Char('7'), NONE)],
        ),
        b(
            "",
            "",
            Action::Focus(Panel::Tasks),
            "",
            &[(Char('8'), NONE)],
        ),
        b(
            "up",
            "↑ k / ↓ j",
            Action::Up,
            "move up / down (scroll in logs)",
            &[(Up, NONE), (Char('k'), NONE)],
        ),
        b(
            "down",
            "",
            Action::Down,
            "",
            &[(Down, NONE), (Char('j'), NONE)],
        ),
        b(
            "page_up",
            "PgUp / PgDn",
            Action::PageUp,
            "page up / down",
            &[(PageUp, NONE), (Char('u'), CTRL)],
        ),
        b(
            "page_down",
            "",
            Action::PageDown,
            "",
            &[(PageDown, NONE), (Char('d'), CTRL)],
        ),
        b(
            "top",
            "g / G",
            Action::Top,
            "top / bottom (G follows the logs)",
            &[(Home, NONE), (Char('g'), NONE)],
        ),
        b(
            "bottom",
            "",
            Action::Bottom,
            "",
            &[(End, NONE), (Char('G'), SHIFT), (Char('G'), NONE)],
        ),
        b(
            "enter",
            "Enter / l →",
            Action::Enter,
            "open the agent's detail",
            &[(Enter, NONE), (Char('l'), NONE), (Right, NONE)],
        ),
        b(
            "back",
            "Esc / h ←",
            Action::Back,
            "back",
            &[(Esc, NONE), (Char('h'), NONE), (Left, NONE)],
        ),
        b(
            "expand",
            "Space",
            Action::ToggleExpand,
            "show / hide an agent's replicas",
            &[(Char(' '), NONE)],
        ),
        b(
            "scale_up",
            "+ / -",
            Action::ScaleUp,
            "scale the selected agent (sent after 3 s; Esc cancels)",
            &[(Char('+'), NONE), (Char('+'), SHIFT), (Char('='), NONE)],
        ),
        b(
            "scale_down",
            "",
            Action::ScaleDown,
            "",
            &[(Char('-'), NONE)],
        ),
        b(
            "restart",
            "r",
            Action::Restart,
            "restart the selected agent or replica (asks first)",
            &[(Char('r'), NONE)],
        ),
        b(
            "start_stop",
            "s",
            Action::StartStop,
            "stop / start the agent (stop asks first)",
            &[(Char('s'), NONE)],
        ),
        b(
            "backup",
            "b",
            Action::Backup,
            "take a backup now (asks first)",
            &[(Char('b'), NONE)],
        ),
        b(
            "ack",
            "a",
            Action::Ack,
            "acknowledge the selected alert (alert feed: 4)",
            &[(Char('a'), NONE)],
        ),
        b(
            "note",
            "n",
            Action::Note,
            "note on the selected incident (5) / next match (logs)",
            &[(Char('n'), NONE)],
        ),
        b(
            "prev_match",
            "N",
            Action::PrevMatch,
            "previous match (logs)",
            &[(Char('N'), SHIFT), (Char('N'), NONE)],
        ),
        b(
            "advance",
            ">",
            Action::Advance,
            "advance the selected incident's phase (5, asks first)",
            &[(Char('>'), NONE), (Char('>'), SHIFT)],
        ),
        b(
            "autoscale",
            "A",
            Action::ToggleAutoscale,
            "turn the selected agent's autoscaler on/off (asks first)",
            &[(Char('A'), SHIFT), (Char('A'), NONE)],
        ),
        b(
            "submit_task",
            "T",
            Action::SubmitTask,
            "submit a task to the selected task agent (a one-line prompt)",
            &[(Char('T'), SHIFT), (Char('T'), NONE)],
        ),
        b(
            "log_filter",
            "f",
            Action::LogFilter,
            "logs: show only matching lines / all lines",
            &[(Char('f'), NONE)],
        ),
        b(
            "type_into",
            "i",
            Action::TypeInto,
            "type into the selected tty agent's terminal (focus mode)",
            &[(Char('i'), NONE)],
        ),
        b(
            "unfocus",
            "Ctrl-]",
            Action::Unfocus,
            "leave focus mode: keys go to the console again",
            &[(Char(']'), CTRL), (Char('5'), CTRL)],
        ),
        b(
            "next_waiting",
            "W",
            Action::NextWaiting,
            "jump to the next replica waiting for input",
            &[(Char('W'), SHIFT), (Char('W'), NONE)],
        ),
        b(
            "doctor",
            "D",
            Action::Doctor,
            "System Health Check: run `doctor` and show its report",
            &[(Char('D'), SHIFT), (Char('D'), NONE)],
        ),
        b(
            "wrap",
            "w",
            Action::Wrap,
            "logs: wrap long lines / cut them",
            &[(Char('w'), NONE)],
        ),
        b(
            "sort",
            "o",
            Action::Sort,
            "cycle the fleet's sort order",
            &[(Char('o'), NONE)],
        ),
        b(
            "span",
            "t",
            Action::Span,
            "host graphs: 5 minutes / 24 hours",
            &[(Char('t'), NONE)],
        ),
        b(
            "filter",
            "/",
            Action::Slash,
            "filter the fleet / search the logs",
            &[(Char('/'), NONE)],
        ),
        b(
            "palette",
            ":",
            Action::Palette,
            "command palette (Tab completes)",
            &[(Char(':'), NONE), (Char(':'), SHIFT)],
        ),
        b(
            "help",
            "?",
            Action::Help,
            "this help",
            &[(Char('?'), NONE), (Char('?'), SHIFT)],
        ),
    ]
}

/// A key from the config as terminal key events (a capital letter also
/// arrives with SHIFT).
fn codes_of(k: &crate::core::keys::KeySpec) -> Vec<(KeyCode, KeyModifiers)> {
    let mut mods = NONE;
    if k.ctrl {
        mods |= CTRL;
    }
    if k.alt {
        mods |= ALT;
    }
    let code = match k.key.as_str() {
        "enter" => KeyCode::Enter,
        "esc" => KeyCode::Esc,
        "tab" => KeyCode::Tab,
        "backtab" => return vec![(KeyCode::BackTab, mods | SHIFT), (KeyCode::BackTab, mods)],
        "backspace" => KeyCode::Backspace,
        "space" => KeyCode::Char(' '),
        "up" => KeyCode::Up,
        "down" => KeyCode::Down,
        "left" => KeyCode::Left,
        "right" => KeyCode::Right,
        "pageup" => KeyCode::PageUp,
        "pagedown" => KeyCode::PageDown,
        "home" => KeyCode::Home,
        "end" => KeyCode::End,
        "delete" => KeyCode::Delete,
        f if f.len() > 1 && f.starts_with('f') => KeyCode::F(f[1..].parse().unwrap_or(1)),
        c => {
            let ch = c.chars().next().unwrap_or(' ');
            return vec![(KeyCode::Char(ch), mods), (KeyCode::Char(ch), mods | SHIFT)];
        }
    };
    vec![(code, mods)]
}

/// The default keymap with the config's `[console] keys` applied: a rebound
/// action loses its default keys, and a key taken by it leaves any other
/// action.
pub fn keymap_with(overrides: &[(String, Vec<crate::core::keys::KeySpec>)]) -> Vec<Binding> {
    let mut map = keymap();
    for (name, keys) in overrides {
        let codes: Vec<(KeyCode, KeyModifiers)> = keys.iter().flat_map(codes_of).collect();
        for b in map.iter_mut() {
            b.codes.retain(|c| !codes.contains(c));
        }
        if let Some(b) = map.iter_mut().find(|b| b.name == name) {
            b.codes = codes;
            b.custom = true;
        }
    }
    map
}

fn show(code: &(KeyCode, KeyModifiers)) -> String {
    let (c, m) = code;
    let key = match c {
        KeyCode::Char(' ') => "Space".to_string(),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::F(n) => format!("F{n}"),
        KeyCode::BackTab => "Shift-Tab".to_string(),
        other => format!("{other:?}"),
    };
    let mut s = String::new();
    if m.contains(CTRL) {
        s.push_str("Ctrl-");
    }
    if m.contains(ALT) {
        s.push_str("Alt-");
    }
    s + &key
}

/// Normal-mode key → action.
pub fn lookup(map: &[Binding], key: KeyEvent) -> Option<Action> {
    let mods = key.modifiers & (SHIFT | CTRL | ALT);
    map.iter()
        .find(|b| b.codes.iter().any(|(c, m)| *c == key.code && *m == mods))
        .map(|b| b.action.clone())
}

/// Key → action while typing (filter, search, palette).
pub fn text_input(key: KeyEvent) -> Option<Action> {
    match key.code {
        KeyCode::Esc => Some(Action::Back),
        KeyCode::Enter => Some(Action::Submit),
        KeyCode::Backspace => Some(Action::Backspace),
        KeyCode::Tab => Some(Action::Complete),
        KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => Some(Action::Char(c)),
        _ => None,
    }
}

/// Key → action while confirming.
pub fn confirm(key: KeyEvent) -> Option<Action> {
    match key.code {
        KeyCode::Char('y') | KeyCode::Char('Y') => Some(Action::Yes),
        KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => Some(Action::No),
        _ => None,
    }
}

/// (keys, description) rows for the help overlay: a row and the unlabelled
/// bindings after it; rebound rows show their keys in force.
pub fn help_rows(map: &[Binding]) -> Vec<(String, &'static str)> {
    let mut rows: Vec<(String, &'static str)> = Vec::new();
    let mut i = 0;
    while i < map.len() {
        let head = &map[i];
        let mut j = i + 1;
        while j < map.len() && map[j].help.is_empty() {
            j += 1;
        }
        let group = &map[i..j];
        let keys = if group.iter().any(|b| b.custom) {
            group
                .iter()
                .map(|b| {
                    let mut seen = Vec::new();
                    for c in &b.codes {
                        let k = show(c);
                        if !seen.contains(&k) {
                            seen.push(k);
                        }
                    }
                    if seen.is_empty() {
                        "(none)".to_string()
                    } else {
                        seen.join(" ")
                    }
                })
                .collect::<Vec<_>>()
                .join(" / ")
        } else {
            head.label.to_string()
        };
        rows.push((keys, head.help));
        i = j;
    }
    rows
}

/// The palette's verbs, for completion: (verb, argument hint).
pub const VERBS: [(&str, &str); 17] = [
    ("scale", "AGENT N"),
    ("restart", "AGENT[/N]"),
    ("stop", "AGENT"),
    ("start", "AGENT"),
    ("logs", "AGENT"),
    ("reload", ""),
    ("backup", ""),
    ("task", "AGENT INPUT…"),
    ("send", "AGENT[/N] LINE…"),
    ("ack", "ALERT"),
    ("silence", "ALERT DURATION"),
    ("incident", "LEVEL TITLE…"),
    ("note", "INCIDENT TEXT…"),
    ("advance", "INCIDENT"),
    ("resolve", "INCIDENT"),
    ("shutdown", ""),
    ("detach", ""),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::keys::parse_key;
    use ratatui::crossterm::event::KeyEvent;

    fn key(c: KeyCode, m: KeyModifiers) -> KeyEvent {
        KeyEvent::new(c, m)
    }

    #[test]
    fn every_rebindable_action_name_exists_in_the_keymap() {
        let map = keymap();
        for name in crate::core::keys::ACTIONS {
            assert!(map.iter().any(|b| b.name == name), "{name}");
        }
    }

    #[test]
    fn a_rebound_action_takes_its_new_keys_and_help_shows_them() {
        let map = keymap_with(&[
            ("detach".into(), vec![parse_key("x").expect("key")]),
            ("up".into(), vec![parse_key("ctrl-p").expect("key")]),
        ]);
        assert_eq!(
            lookup(&map, key(KeyCode::Char('x'), NONE)),
            Some(Action::Detach)
        );
        assert_eq!(
            lookup(&map, key(KeyCode::Char('q'), NONE)),
            None,
            "q is no longer detach"
        );
        assert_eq!(
            lookup(&map, key(KeyCode::Char('p'), CTRL)),
            Some(Action::Up)
        );
        assert_eq!(lookup(&map, key(KeyCode::Char('k'), NONE)), None);
        let rows = help_rows(&map);
        assert!(
            rows.iter()
                .any(|(k, h)| k == "x" && h.starts_with("detach")),
            "{rows:?}"
        );
        assert!(rows.iter().any(|(k, _)| k == "Ctrl-p / Down j"), "{rows:?}");
        // Taking a key from another action removes it there.
        let map = keymap_with(&[("sort".into(), vec![parse_key("r").expect("key")])]);
        assert_eq!(
            lookup(&map, key(KeyCode::Char('r'), NONE)),
            Some(Action::Sort)
        );
    }
}
