//! The Tasks panel: live figures from each tick, the list asked for while
//! the panel has focus, a task in full on Enter.

use super::*;
use crate::proto::TaskSummary;
use crate::tui::action::Action;
use crate::tui::fixture::{NOW, model};

fn figures(queue: u64, completed: u64) -> Vec<(String, TaskSummary)> {
    vec![(
        "planner".to_string(),
        TaskSummary {
            queue,
            completed,
            ..TaskSummary::default()
        },
    )]
}

#[test]
fn each_tick_updates_the_agent_s_queue_and_the_finishing_rate() {
    let mut m = model();
    m.tasks.queue.clear();
    m.tasks.rate.clear();
    m.now = NOW;
    tasks::on_task_figures(&mut m, figures(7, 100));
    m.now = NOW + 2000;
    tasks::on_task_figures(&mut m, figures(3, 140));
    m.now = NOW + 12_000;
    tasks::on_task_figures(&mut m, figures(0, 160));
    let a = &m.agents()[0];
    assert_eq!(a.tasks.as_ref().map(|t| t.queue), Some(0));
    let q: Vec<f64> = m.tasks.queue["planner"].iter().map(|p| p.1).collect();
    assert_eq!(q, [7.0, 3.0, 0.0]);
    let r: Vec<f64> = m.tasks.rate["planner"].iter().map(|p| p.1).collect();
    assert_eq!(
        r,
        [20.0, 2.0],
        "40 finished in 2 s; then 20 in the last 10 s"
    );
}

#[test]
fn the_list_is_asked_for_only_while_the_panel_has_focus_and_once_a_second() {
    let mut m = model();
    m.tasks = Default::default();
    m.now = NOW;
    assert!(due(&mut m).is_empty(), "not focused: nothing asked");
    let asked = update(&mut m, Action::Focus(Panel::Tasks));
    assert_eq!(
        asked,
        vec![Request::TaskList {
            agent: Some("planner".into()),
            state: None,
            limit: tasks::LIST_LEN,
        }]
    );
    m.now = NOW + 500;
    assert!(due(&mut m).is_empty(), "within the second");
    m.now = NOW + 1000;
    assert_eq!(due(&mut m).len(), 1);
    // An answer for another agent (the selection moved) is dropped.
    tasks::on_task_list(&mut m, Some("researcher".into()), model().tasks.list);
    assert!(m.tasks.list.is_empty());
    tasks::on_task_list(&mut m, Some("planner".into()), model().tasks.list);
    assert_eq!(m.tasks.list.len(), 3);
    // Selecting an agent that takes no tasks clears the panel.
    m.focus = Panel::Fleet;
    update(&mut m, Action::Down);
    m.focus = Panel::Tasks;
    m.now += 5000;
    assert!(due(&mut m).is_empty());
    assert!(m.tasks.list.is_empty() && m.tasks.agent.is_none());
}

#[test]
fn enter_fetches_the_selected_task_and_esc_closes_it_before_leaving() {
    let mut m = model();
    m.focus = Panel::Tasks;
    update(&mut m, Action::Down);
    assert_eq!(m.tasks.selected, 1);
    let asked = update(&mut m, Action::Enter);
    assert_eq!(
        asked,
        vec![Request::TaskGet {
            id: "1a2b3c4d5e600002".into()
        }]
    );
    let full = m.tasks.list[1].clone();
    apply(
        &mut m,
        crate::client::Incoming::Answer(
            Request::TaskGet {
                id: full.id.clone(),
            },
            Ok(Response::Tasks { tasks: vec![full] }),
        ),
    );
    assert!(m.tasks.detail.is_some());
    update(&mut m, Action::Back);
    assert!(m.tasks.detail.is_none());
    assert_eq!(m.focus, Panel::Tasks, "the first Esc closes the task");
    update(&mut m, Action::Back);
    assert_eq!(m.focus, Panel::Fleet);
}

#[test]
fn a_toggles_the_autoscaler_after_a_confirmation() {
    let mut m = model();
    update(&mut m, Action::ToggleAutoscale);
    assert!(
        m.notices
            .back()
            .is_some_and(|n| n.text.contains("no `autoscale`")),
        "the fixture's planner has none"
    );
    if let Some(s) = m.status.as_mut() {
        s.agents[0].autoscale = Some(crate::proto::AutoscaleStatus {
            enabled: true,
            min: 1,
            max: 4,
            desired: 1,
            recommended: 3,
            ..Default::default()
        });
    }
    update(&mut m, Action::ToggleAutoscale);
    let Mode::Confirm { prompt, .. } = &m.mode else {
        panic!("asks first: {:?}", m.mode);
    };
    assert!(prompt.contains("off for planner"), "{prompt}");
    assert_eq!(
        update(&mut m, Action::Yes),
        vec![Request::AutoscaleSet {
            agent: "planner".into(),
            on: false
        }]
    );
}
