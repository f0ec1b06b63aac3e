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

#[test]
fn the_match_n_moved_to_stays_on_its_line_as_old_lines_drop() {
    let mut m = model();
    search(&mut m, "step 29");
    update(&mut m, Action::Note);
    assert_eq!(m.search_hit, Some(29));
    // Fill the buffer past its size: the hit follows its line down.
    let more: Vec<crate::proto::LogLine> = (0..crate::tui::model::LOG_LINES as u64)
        .map(|i| crate::proto::LogLine {
            seq: 100 + i,
            at: 0,
            replica: 0,
            stream: crate::proto::Stream::Stdout,
            text: format!("filler {i}"),
        })
        .take(crate::tui::model::LOG_LINES - 30 + 5)
        .collect();
    apply(
        &mut m,
        Incoming::Answer(
            Request::Logs {
                agent: "planner".into(),
                lines: 500,
                since: Some(30),
            },
            Ok(Response::Logs {
                lines: more,
                next: 9999,
            }),
        ),
    );
    let hit = m.search_hit.expect("still a hit");
    assert!(m.logs[hit].text.contains("step 29"), "{}", m.logs[hit].text);
}

#[test]
fn a_scale_typed_against_a_count_that_changed_meanwhile_is_not_sent() {
    let mut m = model();
    m.focus = Panel::Fleet;
    m.selected = 1; // researcher, at 3
    update(&mut m, Action::ScaleUp);
    // Another operator scales it to 6 before the delay is over.
    if let Some(s) = m.status.as_mut() {
        s.agents[1].desired = 6;
    }
    m.now += 10_000;
    assert!(due(&mut m).is_empty(), "4 would undo their 6");
    assert!(
        m.notices
            .back()
            .is_some_and(|n| n.error && n.text.contains("it is at 6 now"))
    );
}
