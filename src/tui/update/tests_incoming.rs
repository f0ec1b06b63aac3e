//! What the daemon sends that changes the fleet or the link itself: a
//! reload's fresh status, a shutdown, a lost link.

use super::*;
use crate::tui::action::Action;
use crate::tui::fixture::{model, status};
use crate::tui::model::Conn;

fn fresh_after_reload() -> crate::proto::FleetStatus {
    let mut s = status();
    // flaky-tool removed; a new agent "auditor" added; researcher changed.
    s.agents.retain(|a| a.name != "flaky-tool");
    let mut added = s.agents[0].clone();
    added.name = "auditor".into();
    s.agents.push(added);
    s.agents.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(r) = s.agents.iter_mut().find(|a| a.name == "researcher") {
        r.desired = 4;
    }
    s
}

#[test]
fn a_reload_adds_and_removes_agents_and_keeps_the_selection_by_name() {
    let mut m = model();
    m.selected = m
        .rows()
        .iter()
        .position(|r| matches!(r, Row::Agent(i) if m.agents()[*i].name == "researcher"))
        .expect("row");
    m.agent_cpu.insert("flaky-tool".into(), Default::default());
    apply(
        &mut m,
        Incoming::Update(Update::Event(40, ServerEvent::FleetChanged)),
    );
    assert!(
        m.agents().iter().any(|a| a.name == "flaky-tool"),
        "the event alone changes nothing: the status answer does"
    );
    apply(
        &mut m,
        Incoming::Answer(
            Request::Status,
            Ok(Response::Status {
                status: Box::new(fresh_after_reload()),
            }),
        ),
    );
    let names: Vec<&str> = m.agents().iter().map(|a| a.name.as_str()).collect();
    assert!(names.contains(&"auditor"), "{names:?}");
    assert!(!names.contains(&"flaky-tool"), "{names:?}");
    assert_eq!(
        m.selected_agent().map(|a| (a.name.as_str(), a.desired)),
        Some(("researcher", 4)),
        "the selection follows the agent, which shows its new count"
    );
    assert!(!m.agent_cpu.contains_key("flaky-tool"), "its graph is gone");
    let n = m.notices.back().expect("a notice");
    assert!(
        n.text.contains("added auditor") && n.text.contains("removed flaky-tool"),
        "{}",
        n.text
    );
}

#[test]
fn a_shutdown_ends_as_daemon_stopped_never_as_a_lost_link() {
    let mut m = model();
    apply(
        &mut m,
        Incoming::Update(Update::Event(41, ServerEvent::ShuttingDown)),
    );
    assert_eq!(m.conn, Conn::Stopping);
    apply(&mut m, Incoming::Closed("connection reset".into()));
    assert!(matches!(m.conn, Conn::Stopped { .. }), "{:?}", m.conn);
    assert!(m.conn.farewell().contains("no agent is running"));
    assert!(!m.conn.farewell().contains("keeps running"));
    // A link lost without a shutdown is a reconnect, and leaving then does
    // not claim the fleet runs either.
    let mut m = model();
    apply(&mut m, Incoming::Closed("connection reset".into()));
    assert!(matches!(m.conn, Conn::Reconnecting { .. }));
    assert!(!m.conn.farewell().contains("keeps running"));
    assert!(model().conn.farewell().contains("keeps running"));
}

#[test]
fn a_message_too_long_for_the_footer_stays_whole_until_dismissed() {
    let mut m = model();
    let text = "backup done: snapshot 1a2b3c4d; new repository password in \
                /var/lib/autonomos/backup/password (keep a copy off this machine)";
    apply(
        &mut m,
        Incoming::Answer(
            Request::Backup,
            Ok(Response::Done {
                message: text.into(),
            }),
        ),
    );
    assert_eq!(m.message.as_ref().map(|n| n.text.as_str()), Some(text));
    m.now += 60_000;
    assert!(m.message.is_some(), "it does not time out");
    update(&mut m, Action::Back);
    assert!(m.message.is_none());
    // Short ones stay in the footer only.
    m.notify("scaled x from 1 to 2", false);
    assert!(m.message.is_none());
}

#[test]
fn shift_t_prompts_for_a_task_and_the_palette_submits_it() {
    let mut m = model();
    // Only the fixture's planner takes tasks: T on another says so.
    if let Some(s) = m.status.as_mut() {
        s.agents[0].tasks = None;
    }
    update(&mut m, Action::SubmitTask);
    assert!(
        m.notices
            .back()
            .is_some_and(|n| n.error && n.text.contains("takes no tasks"))
    );
    if let Some(s) = m.status.as_mut() {
        s.agents[0].tasks = Some(crate::proto::TaskSummary::default());
    }
    update(&mut m, Action::SubmitTask);
    assert_eq!(m.mode, Mode::Palette("task planner ".into()));
    for c in r#"{"goal": "ship it"}"#.chars() {
        update(&mut m, Action::Char(c));
    }
    let sent = update(&mut m, Action::Submit);
    match sent.as_slice() {
        [Request::TaskSubmit(s)] => {
            assert_eq!(s.agent.as_deref(), Some("planner"));
            assert_eq!(s.tasks[0].input, serde_json::json!({"goal": "ship it"}));
        }
        other => panic!("{other:?}"),
    }
    // Text that is not JSON goes as a JSON string.
    m.mode = Mode::Palette("task planner summarize the logs".into());
    match update(&mut m, Action::Submit).as_slice() {
        [Request::TaskSubmit(s)] => {
            assert_eq!(s.tasks[0].input, serde_json::json!("summarize the logs"))
        }
        other => panic!("{other:?}"),
    }
}
