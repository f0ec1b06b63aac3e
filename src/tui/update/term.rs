//! The terminal of a `tty` replica in the console: polling its screen
//! while it is in view, focus mode (keys go to the agent until the leave
//! key), its size following the view, and the jump to the next replica
//! waiting for input.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::proto::{Attention, Request};
use crate::tui::model::{Mode, Model, Panel, Row};

/// How often the screen in view is asked for (one request in flight).
pub const TERM_POLL_MS: u64 = 30;

/// The screen request due now, and in focus mode a resize when the view's
/// size changed.
pub fn term_poll(m: &mut Model) -> Vec<Request> {
    let Some((agent, replica)) = m.term_target() else {
        if m.term.is_some() {
            m.term = None;
            m.term_error = None;
        }
        return vec![];
    };
    let mut out = flush_input(m);
    out.extend(worktree_poll(m));
    if m.mode == Mode::Focus && m.focus_target.is_none() {
        m.mode = Mode::Normal;
    }
    if m.mode == Mode::Focus {
        let (rows, cols) = m.term_area.get();
        let want = (agent.clone(), replica, rows, cols);
        if rows >= 2 && cols >= 10 && m.term_sized.as_ref() != Some(&want) {
            m.term_sized = Some(want);
            out.push(Request::Resize {
                agent: agent.clone(),
                replica,
                rows,
                cols,
            });
        }
    }
    // A lost answer does not stop the view for good.
    let stale = m.now.saturating_sub(m.term_asked) > 2000;
    if (!m.term_pending || stale) && m.now.saturating_sub(m.term_asked) >= TERM_POLL_MS {
        m.term_pending = true;
        m.term_asked = m.now;
        out.push(Request::Screen {
            agent,
            replica,
            cells: true,
        });
    }
    out
}

/// The selected replica's worktree, every 5 s while the agent's detail
/// (or its terminal) shows and it has `workspace` worktrees.
pub fn worktree_poll(m: &mut Model) -> Vec<Request> {
    if m.focus != Panel::Detail && m.mode != Mode::Focus {
        return vec![];
    }
    let Some(a) = m.selected_agent() else {
        return vec![];
    };
    if !a.workspace.as_ref().is_some_and(|(_, own)| *own)
        || m.now.saturating_sub(m.worktree_asked) < 5000
    {
        return vec![];
    }
    let agent = a.name.clone();
    let replica = m.selected_replica_index().unwrap_or(0);
    m.worktree_asked = m.now;
    vec![Request::Worktree {
        agent,
        replica,
        remove: false,
    }]
}

/// `i`: focus mode on the selected `tty` replica.
pub fn type_into(m: &mut Model) -> Vec<Request> {
    m.focus = Panel::Detail;
    match m.term_target() {
        Some((agent, replica)) => {
            m.mode = Mode::Focus;
            m.focus_target = Some((agent.clone(), replica));
            m.term_sized = None;
            m.notify(
                format!("typing into {agent}/{replica}: Ctrl-] returns to the console"),
                false,
            );
        }
        None => m.notify("the selected agent has no terminal (tty = true)", true),
    }
    vec![]
}

/// A key in focus mode: the leave key returns to the console (and gives
/// the input back); every other key goes to the agent as a terminal would
/// send it.
pub fn focus_key(m: &mut Model, k: KeyEvent, leave: bool) -> Vec<Request> {
    m.dirty = true;
    let Some((agent, replica)) = m.term_target() else {
        m.mode = Mode::Normal;
        return vec![];
    };
    if leave {
        m.mode = Mode::Normal;
        m.focus_target = None;
        m.notify(
            format!("left {agent}/{replica}: keys go to the console"),
            false,
        );
        // Given back after what was typed (requests are answered in any
        // order, so the release waits for the send in flight).
        m.term_release = Some((agent, replica));
        return flush_input(m);
    }
    let Some(text) = key_bytes(k) else {
        return vec![];
    };
    m.term_input.push_str(&text);
    // The echo is asked for at once.
    m.term_asked = 0;
    flush_input(m)
}

/// Sends what was typed in focus mode, unless a send is in flight (its
/// answer lets the next go): keys reach the agent in the order typed.
pub fn flush_input(m: &mut Model) -> Vec<Request> {
    if m.term_sending {
        return vec![];
    }
    let target = m.focus_target.clone().or_else(|| m.term_release.clone());
    let Some((agent, replica)) = target else {
        m.term_input.clear();
        return vec![];
    };
    if !m.term_input.is_empty() {
        m.term_sending = true;
        return vec![Request::Send {
            agent,
            replica,
            text: std::mem::take(&mut m.term_input),
            enter: false,
            hold: Some(true),
        }];
    }
    match m.term_release.take() {
        Some((agent, replica)) => {
            m.term_sending = true;
            vec![Request::Send {
                agent,
                replica,
                text: String::new(),
                enter: false,
                hold: Some(false),
            }]
        }
        None => vec![],
    }
}

/// What a terminal sends for a key (xterm's sequences).
pub fn key_bytes(k: KeyEvent) -> Option<String> {
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    let alt = k.modifiers.contains(KeyModifiers::ALT);
    let s = match k.code {
        KeyCode::Char(c) if ctrl => {
            let b = (c.to_ascii_lowercase() as u32).checked_sub(0x60)?;
            match c {
                ' ' | '@' | '2' => "\0".to_string(),
                _ if (1..=26).contains(&b) => char::from_u32(b)?.to_string(),
                _ => return None,
            }
        }
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Enter => "\r".into(),
        KeyCode::Tab => "\t".into(),
        KeyCode::BackTab => "\x1b[Z".into(),
        KeyCode::Backspace => "\x7f".into(),
        KeyCode::Esc => "\x1b".into(),
        KeyCode::Up => "\x1b[A".into(),
        KeyCode::Down => "\x1b[B".into(),
        KeyCode::Right => "\x1b[C".into(),
        KeyCode::Left => "\x1b[D".into(),
        KeyCode::Home => "\x1b[H".into(),
        KeyCode::End => "\x1b[F".into(),
        KeyCode::PageUp => "\x1b[5~".into(),
        KeyCode::PageDown => "\x1b[6~".into(),
        KeyCode::Delete => "\x1b[3~".into(),
        KeyCode::Insert => "\x1b[2~".into(),
        KeyCode::F(n @ 1..=4) => format!("\x1bO{}", (b'P' + n - 1) as char),
        KeyCode::F(n @ 5..=12) => {
            let code = [15, 17, 18, 19, 20, 21, 23, 24][usize::from(n - 5)];
            format!("\x1b[{code}~")
        }
        _ => return None,
    };
    Some(if alt { format!("\x1b{s}") } else { s })
}

/// `W`: selects the next replica (after the selection) waiting for input
/// and shows its terminal.
pub fn next_waiting(m: &mut Model) -> Vec<Request> {
    let agents = m.agents();
    let waiting: Vec<(String, u32)> = agents
        .iter()
        .flat_map(|a| {
            a.replicas
                .iter()
                .filter(|r| r.attention == Some(Attention::WaitingInput))
                .map(|r| (a.name.clone(), r.index))
        })
        .collect();
    if waiting.is_empty() {
        m.notify("no replica is waiting for input", false);
        return vec![];
    }
    let current = m.term_target();
    let at = current
        .and_then(|c| waiting.iter().position(|w| *w == c))
        .map_or(0, |i| (i + 1) % waiting.len());
    let (agent, replica) = waiting[at].clone();
    m.expanded.insert(agent.clone());
    let rows = m.rows();
    let names = m.agents();
    if let Some(i) = rows.iter().position(|r| match r {
        Row::Replica(a, x) => {
            names[*a].name == agent
                && names[*a]
                    .replicas
                    .get(*x)
                    .is_some_and(|r| r.index == replica)
        }
        Row::Agent(_) => false,
    }) {
        m.selected = i;
    }
    m.focus = Panel::Detail;
    m.notify(
        format!("{agent}/{replica} waits for input: i types into it"),
        false,
    );
    vec![]
}
