//! The log search: filter mode, `n`/`N` through the matches, Esc, and a
//! search kept per agent.

use super::*;
use crate::tui::fixture::model;

fn search(m: &mut Model, text: &str) {
    m.focus = Panel::Logs;
    update(m, Action::Slash);
    for c in text.chars() {
        update(m, Action::Char(c));
    }
    update(m, Action::Submit);
}

#[test]
fn n_and_shift_n_step_through_matches_and_f_filters() {
    let mut m = model();
    // Lines "step 1 of ...", "step 10".."step 19": eleven matches of "step 1".
    search(&mut m, "step 1");
    assert_eq!(log_matches(&m).len(), 11);
    update(&mut m, Action::Note);
    assert_eq!(m.search_hit, Some(19), "n: the newest match first");
    assert_eq!(m.log_scroll, 30 - 1 - 19, "scrolled so it shows");
    update(&mut m, Action::Note);
    assert_eq!(m.search_hit, Some(18));
    update(&mut m, Action::PrevMatch);
    assert_eq!(m.search_hit, Some(19), "N goes back to the newer one");
    update(&mut m, Action::PrevMatch);
    assert!(m.notices.back().is_some_and(|n| n.text == "no newer match"));
    assert!(m.mode == Mode::Normal && m.pending_scale.is_none());

    update(&mut m, Action::LogFilter);
    assert!(m.log_filter);
    update(&mut m, Action::Note);
    assert_eq!(m.search_hit, Some(19));
    assert_eq!(m.log_scroll, 0, "the newest of the matching lines");

    // Esc clears the search (and the filter), a second Esc leaves the logs.
    update(&mut m, Action::Back);
    assert!(m.search.is_empty() && !m.log_filter && m.search_hit.is_none());
    assert_eq!(m.focus, Panel::Logs);
    update(&mut m, Action::Back);
    assert_eq!(m.focus, Panel::Fleet);
}

#[test]
fn each_agent_keeps_its_own_search() {
    let mut m = model();
    search(&mut m, "decomposed");
    m.focus = Panel::Fleet;
    update(&mut m, Action::Down);
    let _ = logs_request(&mut m);
    assert_ne!(m.logs_agent.as_deref(), Some("planner"));
    assert!(m.search.is_empty(), "another agent starts without a search");
    update(&mut m, Action::Up);
    let _ = logs_request(&mut m);
    assert_eq!(m.search, "decomposed", "the planner's search is back");
}

#[test]
fn the_filter_and_wrap_keys_need_the_logs_and_a_search() {
    let mut m = model();
    update(&mut m, Action::LogFilter);
    assert!(!m.log_filter);
    m.focus = Panel::Logs;
    update(&mut m, Action::LogFilter);
    assert!(!m.log_filter, "no search to filter by");
    update(&mut m, Action::Wrap);
    assert!(m.log_wrap);
}
