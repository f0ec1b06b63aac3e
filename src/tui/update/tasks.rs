//! The Tasks panel's logic: the live queue figures of every task agent
//! (from each collector tick), the selected agent's newest tasks (asked for
//! every second while the panel has focus), and one task in full.

use super::*;
use crate::core::lifecycle::Millis;
use crate::proto::{TaskStatus, TaskSummary};

/// How often the panel asks for the newest tasks.
const LIST_EVERY_MS: Millis = 1000;
/// The span the finishing rate is measured over.
const RATE_WINDOW_MS: Millis = 10_000;
/// Tasks the panel lists.
pub const LIST_LEN: usize = 50;

/// A tick's figures: each agent's summary, and the queue length and
/// finishing rate kept as series for the panel's graphs.
pub fn on_task_figures(m: &mut Model, figures: Vec<(String, TaskSummary)>) {
    let now = m.now;
    for (name, s) in figures {
        push(
            m.tasks.queue.entry(name.clone()).or_default(),
            now,
            s.queue as f64,
        );
        // The finishing rate over the last 10 s (slow agents finish a task
        // now and then: a per-tick rate would be mostly zeros).
        let done = (s.completed + s.failed) as f64;
        let counts = m.tasks.done.entry(name.clone()).or_default();
        while counts
            .front()
            .is_some_and(|(at, _)| now.saturating_sub(*at) > RATE_WINDOW_MS)
        {
            counts.pop_front();
        }
        if let Some((at, before)) = counts.front().copied()
            && now > at
        {
            let rate = (done - before).max(0.0) * 1000.0 / (now - at) as f64;
            push(m.tasks.rate.entry(name.clone()).or_default(), now, rate);
        }
        counts.push_back((now, done));
        if let Some(a) = m
            .status
            .as_mut()
            .and_then(|st| st.agents.iter_mut().find(|a| a.name == name))
        {
            a.tasks = Some(s);
        }
    }
}

/// The newest tasks of an agent arrived (kept only if still selected).
pub fn on_task_list(m: &mut Model, agent: Option<String>, list: Vec<TaskStatus>) {
    if agent.is_none() || m.tasks.agent != agent {
        return;
    }
    m.tasks.list = list;
    m.tasks.selected = m.tasks.selected.min(m.tasks.list.len().saturating_sub(1));
}

/// A task in full arrived.
pub fn on_task_detail(m: &mut Model, tasks: Vec<TaskStatus>) {
    // A late answer for a task no longer selected is dropped.
    let selected = m.tasks.list.get(m.tasks.selected).map(|t| t.id.clone());
    if let Some(t) = tasks.into_iter().next()
        && Some(&t.id) == selected.as_ref()
    {
        m.tasks.detail = Some(t);
    }
}

/// The selected agent, when it takes tasks.
fn task_agent(m: &Model) -> Option<String> {
    m.selected_agent()
        .filter(|a| a.tasks.is_some())
        .map(|a| a.name.clone())
}

/// While the panel has focus: the newest tasks of the selected agent,
/// once a second (at once after the selection changed).
pub fn task_poll(m: &mut Model) -> Option<Request> {
    if m.focus != Panel::Tasks {
        return None;
    }
    let agent = task_agent(m);
    if agent != m.tasks.agent {
        m.tasks.agent = agent.clone();
        m.tasks.list.clear();
        m.tasks.selected = 0;
        m.tasks.detail = None;
        m.tasks.asked_at = 0;
    }
    let agent = agent?;
    if m.now.saturating_sub(m.tasks.asked_at) < LIST_EVERY_MS {
        return None;
    }
    m.tasks.asked_at = m.now;
    Some(Request::TaskList {
        agent: Some(agent),
        state: None,
        limit: LIST_LEN,
    })
}

/// Enter in the panel: the selected task in full.
pub fn enter(m: &mut Model) -> Vec<Request> {
    match m.tasks.list.get(m.tasks.selected) {
        Some(t) => vec![Request::TaskGet { id: t.id.clone() }],
        None => {
            let why = match task_agent(m) {
                Some(a) => format!("{a} has no tasks yet: T submits one"),
                None => "the selected agent takes no tasks".to_string(),
            };
            m.notify(why, false);
            vec![]
        }
    }
}

/// Esc in the panel: closes the task's detail first.
pub fn back(m: &mut Model) -> bool {
    m.tasks.detail.take().is_some()
}

pub fn move_cursor(m: &mut Model, action: &Action) {
    let last = m.tasks.list.len().saturating_sub(1);
    let cur = m.tasks.selected;
    m.tasks.selected = match action {
        Action::Up => cur.saturating_sub(1),
        Action::Down => (cur + 1).min(last),
        Action::PageUp => cur.saturating_sub(10),
        Action::PageDown => (cur + 10).min(last),
        Action::Top => 0,
        _ => last,
    };
    if m.tasks.detail.as_ref().map(|d| &d.id) != m.tasks.list.get(m.tasks.selected).map(|t| &t.id) {
        m.tasks.detail = None;
    }
}
