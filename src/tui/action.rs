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
    Slash,
    Palette,
    Help,
    Sort,
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
    pub keys: &'static str,
    pub action: Action,
    pub help: &'static str,
    codes: &'static [(KeyCode, KeyModifiers)],
}

const NONE: KeyModifiers = KeyModifiers::NONE;
const SHIFT: KeyModifiers = KeyModifiers::SHIFT;
const CTRL: KeyModifiers = KeyModifiers::CONTROL;

/// The keymap in force (Normal mode).
pub fn keymap() -> Vec<Binding> {
    use KeyCode::*;
    let b = |keys, action, help, codes| Binding {
        keys,
        action,
        help,
        codes,
    };
    vec![
        b(
            "q",
            Action::Detach,
            "detach (the fleet keeps running)",
            &[(Char('q'), NONE)],
        ),
        b(
            "Q",
            Action::Shutdown,
            "shut the fleet down (asks first)",
            &[(Char('Q'), SHIFT), (Char('Q'), NONE)],
        ),
        b(
            "Tab / Shift-Tab",
            Action::FocusNext,
            "next / previous panel",
            &[(Tab, NONE)],
        ),
        b(
            "",
            Action::FocusPrev,
            "",
            &[(BackTab, SHIFT), (BackTab, NONE)],
        ),
        b(
            "1-7",
            Action::Focus(Panel::Fleet),
            "jump to a panel",
            &[(Char('1'), NONE)],
        ),
        b("", Action::Focus(Panel::Graphs), "", &[(Char('2'), NONE)]),
        b("", Action::Focus(Panel::Detail), "", &[(Char('3'), NONE)]),
        b("", Action::Focus(Panel::Alerts), "", &[(Char('4'), NONE)]),
        b(
            "",
            Action::Focus(Panel::Incidents),
            "",
            &[(Char('5'), NONE)],
        ),
        b("", Action::Focus(Panel::Logs), "", &[(Char('6'), NONE)]),
        b(
            "",
            Action::Focus(Panel::Diagnostics),
            "",
            &[(Char('7'), NONE)],
        ),
        b(
            "↑ k / ↓ j",
            Action::Up,
            "move up / down (scroll in logs)",
            &[(Up, NONE), (Char('k'), NONE)],
        ),
        b("", Action::Down, "", &[(Down, NONE), (Char('j'), NONE)]),
        b(
            "PgUp / PgDn",
            Action::PageUp,
            "page up / down",
            &[(PageUp, NONE), (Char('u'), CTRL)],
        ),
        b(
            "",
            Action::PageDown,
            "",
            &[(PageDown, NONE), (Char('d'), CTRL)],
        ),
        b(
            "g / G",
            Action::Top,
            "top / bottom (G follows the logs)",
            &[(Home, NONE), (Char('g'), NONE)],
        ),
        b(
            "",
            Action::Bottom,
            "",
            &[(End, NONE), (Char('G'), SHIFT), (Char('G'), NONE)],
        ),
        b(
            "Enter / l →",
            Action::Enter,
            "open the agent's detail",
            &[(Enter, NONE), (Char('l'), NONE), (Right, NONE)],
        ),
        b(
            "Esc / h ←",
            Action::Back,
            "back",
            &[(Esc, NONE), (Char('h'), NONE), (Left, NONE)],
        ),
        b(
            "Space",
            Action::ToggleExpand,
            "show / hide an agent's replicas",
            &[(Char(' '), NONE)],
        ),
        b(
            "+ / -",
            Action::ScaleUp,
            "scale the selected agent up / down",
            &[(Char('+'), NONE), (Char('+'), SHIFT), (Char('='), NONE)],
        ),
        b("", Action::ScaleDown, "", &[(Char('-'), NONE)]),
        b(
            "r",
            Action::Restart,
            "restart the agent or replica (asks first)",
            &[(Char('r'), NONE)],
        ),
        b(
            "s",
            Action::StartStop,
            "stop / start the agent (stop asks first)",
            &[(Char('s'), NONE)],
        ),
        b(
            "b",
            Action::Backup,
            "take a backup now",
            &[(Char('b'), NONE)],
        ),
        b(
            "a",
            Action::Ack,
            "acknowledge the selected alert",
            &[(Char('a'), NONE)],
        ),
        b(
            "o",
            Action::Sort,
            "cycle the fleet's sort order",
            &[(Char('o'), NONE)],
        ),
        b(
            "/",
            Action::Slash,
            "filter the fleet / search the logs",
            &[(Char('/'), NONE)],
        ),
        b(
            ":",
            Action::Palette,
            "command palette (Tab completes)",
            &[(Char(':'), NONE), (Char(':'), SHIFT)],
        ),
        b(
            "?",
            Action::Help,
            "this help",
            &[(Char('?'), NONE), (Char('?'), SHIFT)],
        ),
    ]
}

/// Normal-mode key → action.
pub fn lookup(map: &[Binding], key: KeyEvent) -> Option<Action> {
    let mods = key.modifiers & (SHIFT | CTRL);
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

/// (keys, description) rows for the help overlay.
pub fn help_rows(map: &[Binding]) -> Vec<(&'static str, &'static str)> {
    map.iter()
        .filter(|b| !b.keys.is_empty())
        .map(|b| (b.keys, b.help))
        .collect()
}

/// The palette's verbs, for completion: (verb, argument hint).
pub const VERBS: [(&str, &str); 9] = [
    ("scale", "AGENT N"),
    ("restart", "AGENT[/N]"),
    ("stop", "AGENT"),
    ("start", "AGENT"),
    ("logs", "AGENT"),
    ("reload", ""),
    ("backup", ""),
    ("shutdown", ""),
    ("detach", ""),
];
