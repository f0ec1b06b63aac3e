//! Interactive agents in the console: focus mode's keys, what a key
//! sends, the worktree of a workspace agent.

use super::*;
use crate::client::Incoming;
use crate::tui::fixture::model;

#[test]
fn focus_mode_sends_keys_in_order_one_send_at_a_time_and_ctrl_bracket_leaves() {
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let mut m = model();
    // The first agent becomes a tty agent, its detail in view.
    if let Some(s) = m.status.as_mut() {
        s.agents[0].tty = Some((40, 120));
    }
    m.focus = crate::tui::model::Panel::Detail;
    let name = m.selected_agent().map(|a| a.name.clone()).expect("agent");
    assert_eq!(super::term::type_into(&mut m), vec![]);
    assert_eq!(m.mode, Mode::Focus);
    let key = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
    let first = super::term::focus_key(&mut m, key('a'), false);
    assert!(
        matches!(&first[..], [Request::Send { text, hold: Some(true), .. }] if text == "a"),
        "{first:?}"
    );
    // While it is in flight, keys wait, in order.
    assert!(super::term::focus_key(&mut m, key('b'), false).is_empty());
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert!(super::term::focus_key(&mut m, ctrl_c, false).is_empty());
    apply(
        &mut m,
        Incoming::Answer(
            first[0].clone(),
            Ok(Response::Done {
                message: String::new(),
            }),
        ),
    );
    let next = super::term::flush_input(&mut m);
    assert!(
        matches!(&next[..], [Request::Send { text, agent, .. }] if text == "b\u{3}" && *agent == name),
        "{next:?}"
    );
    // Leaving: the hold is given back after the send in flight.
    assert!(super::term::focus_key(&mut m, key(']'), true).is_empty());
    assert_eq!(m.mode, Mode::Normal);
    apply(
        &mut m,
        Incoming::Answer(
            next[0].clone(),
            Ok(Response::Done {
                message: String::new(),
            }),
        ),
    );
    let release = super::term::flush_input(&mut m);
    assert!(
        matches!(&release[..], [Request::Send { hold: Some(false), agent, .. }] if *agent == name),
        "{release:?}"
    );
    // The selection moving meanwhile never redirects focus-mode keys.
    assert_eq!(super::term::type_into(&mut m), vec![]);
    m.selected = 1;
    let sent = super::term::focus_key(&mut m, key('z'), false);
    assert!(sent.is_empty(), "the release is still in flight");
    apply(
        &mut m,
        Incoming::Answer(
            release[0].clone(),
            Ok(Response::Done {
                message: String::new(),
            }),
        ),
    );
    let z = super::term::flush_input(&mut m);
    assert!(
        matches!(&z[..], [Request::Send { text, agent, .. }] if text == "z" && *agent == name),
        "{z:?}"
    );
}

#[test]
fn keys_become_what_a_terminal_sends() {
    use super::term::key_bytes;
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let k = |c, m| KeyEvent::new(c, m);
    assert_eq!(
        key_bytes(k(KeyCode::Enter, KeyModifiers::NONE)).as_deref(),
        Some("\r")
    );
    assert_eq!(
        key_bytes(k(KeyCode::Up, KeyModifiers::NONE)).as_deref(),
        Some("\x1b[A")
    );
    assert_eq!(
        key_bytes(k(KeyCode::Char('d'), KeyModifiers::CONTROL)).as_deref(),
        Some("\x04")
    );
    assert_eq!(
        key_bytes(k(KeyCode::Char('x'), KeyModifiers::ALT)).as_deref(),
        Some("\x1bx")
    );
    assert_eq!(
        key_bytes(k(KeyCode::Backspace, KeyModifiers::NONE)).as_deref(),
        Some("\x7f")
    );
    assert_eq!(
        key_bytes(k(KeyCode::F(5), KeyModifiers::NONE)).as_deref(),
        Some("\x1b[15~")
    );
    assert_eq!(
        key_bytes(k(KeyCode::Char('é'), KeyModifiers::NONE)).as_deref(),
        Some("é")
    );
}

#[test]
fn a_workspace_agent_s_detail_asks_for_its_worktree_every_few_seconds() {
    let mut m = model();
    if let Some(s) = m.status.as_mut() {
        s.agents[0].workspace = Some(("/repo".into(), true));
    }
    assert!(
        super::term::worktree_poll(&mut m).is_empty(),
        "not while the fleet has focus"
    );
    m.focus = crate::tui::model::Panel::Detail;
    m.now = 10_000;
    let asked = super::term::worktree_poll(&mut m);
    assert!(
        matches!(&asked[..], [Request::Worktree { remove: false, .. }]),
        "{asked:?}"
    );
    m.now = 12_000;
    assert!(
        super::term::worktree_poll(&mut m).is_empty(),
        "at most every 5 s"
    );
    let answer = Response::Worktree {
        path: "/w/0".into(),
        branch: "autonomos/x/0".into(),
        changes: "1 file changed".into(),
    };
    apply(&mut m, Incoming::Answer(asked[0].clone(), Ok(answer)));
    assert_eq!(
        m.worktree.as_ref().map(|w| w.2.as_str()),
        Some("autonomos/x/0")
    );
}
