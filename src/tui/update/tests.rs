//! The console's update function: keys, the palette and incoming events,
//! each turned into model changes and requests.

use super::*;
use crate::core::lifecycle::{State, Transition};
use crate::proto::{ErrorKind, ErrorReply, HostStatus, ReplicaSample};
use crate::tui::fixture::{NOW, model};
use crate::tui::model::Sort;

fn select(m: &mut Model, agent: &str) {
    m.selected = m
        .rows()
        .iter()
        .position(|r| matches!(r, Row::Agent(i) if m.agents()[*i].name == agent))
        .expect("agent row");
}

#[test]
fn detach_quits_without_touching_the_fleet() {
    let mut m = model();
    assert!(update(&mut m, Action::Detach).is_empty());
    assert!(m.quit);
}

#[test]
fn shutdown_asks_first_and_only_yes_sends_it() {
    let mut m = model();
    assert!(update(&mut m, Action::Shutdown).is_empty());
    assert!(matches!(m.mode, Mode::Confirm { .. }));
    assert!(update(&mut m, Action::No).is_empty());
    assert_eq!(m.mode, Mode::Normal);
    update(&mut m, Action::Shutdown);
    assert_eq!(update(&mut m, Action::Yes), vec![Request::Shutdown]);
}

#[test]
fn focus_moves_with_tab_shift_tab_and_digits() {
    let mut m = model();
    update(&mut m, Action::FocusNext);
    assert_eq!(m.focus, Panel::Graphs);
    update(&mut m, Action::FocusPrev);
    update(&mut m, Action::FocusPrev);
    assert_eq!(m.focus, Panel::Tasks, "wraps around");
    update(&mut m, Action::Focus(Panel::Logs));
    assert_eq!(m.focus, Panel::Logs);
}

#[test]
fn arrows_move_the_selection_within_bounds() {
    let mut m = model();
    update(&mut m, Action::Up);
    assert_eq!(m.selected, 0);
    update(&mut m, Action::Down);
    update(&mut m, Action::Down);
    assert_eq!(
        m.selected_agent().map(|a| a.name.as_str()),
        Some("flaky-tool")
    );
    update(&mut m, Action::PageDown);
    assert_eq!(m.selected, 3);
    update(&mut m, Action::Top);
    assert_eq!(m.selected, 0);
    update(&mut m, Action::Bottom);
    assert_eq!(m.selected, 3);
    update(&mut m, Action::PageUp);
    assert_eq!(m.selected, 0);
}

#[test]
fn in_the_logs_arrows_scroll_and_g_follows() {
    let mut m = model();
    m.focus = Panel::Logs;
    update(&mut m, Action::Up);
    update(&mut m, Action::PageUp);
    assert_eq!(m.log_scroll, 11);
    update(&mut m, Action::Down);
    assert_eq!(m.log_scroll, 10);
    update(&mut m, Action::Top);
    assert_eq!(m.log_scroll, 29);
    update(&mut m, Action::Bottom);
    assert_eq!(m.log_scroll, 0, "G follows again");
    update(&mut m, Action::PageDown);
    assert_eq!(m.log_scroll, 0);
}

#[test]
fn enter_opens_detail_and_esc_goes_back() {
    let mut m = model();
    update(&mut m, Action::Enter);
    assert_eq!(m.focus, Panel::Detail);
    update(&mut m, Action::Back);
    assert_eq!(m.focus, Panel::Fleet);
    m.filter = "res".into();
    update(&mut m, Action::Back);
    assert!(m.filter.is_empty(), "Esc in the fleet clears the filter");
}

#[test]
fn opening_the_detail_asks_for_the_whole_history_and_keeps_it() {
    use crate::core::lifecycle::{State, Transition};
    for open in [Action::Enter, Action::Focus(Panel::Detail)] {
        let mut m = model();
        let (agent, replica) = {
            let a = m.selected_agent().expect("agent");
            (a.name.clone(), m.selected_replica().expect("replica").index)
        };
        let asked = update(&mut m, open);
        assert_eq!(
            asked,
            vec![Request::History {
                agent: agent.clone(),
                replica
            }]
        );
        let long: Vec<Transition> = (0..40)
            .map(|i| Transition {
                at: i,
                from: State::ActiveOperation,
                to: State::Adaptation,
                reason: format!("step {i}"),
            })
            .collect();
        apply(
            &mut m,
            Incoming::Answer(
                Request::History {
                    agent: agent.clone(),
                    replica,
                },
                Ok(Response::History {
                    transitions: long.clone(),
                }),
            ),
        );
        let r = m.selected_replica().expect("replica");
        assert!(r.history.len() >= 40, "the fetched history is kept whole");
        assert_eq!(&r.history[..40], &long[..]);
    }
}

#[test]
fn space_expands_replicas_and_restart_targets_the_selected_replica() {
    let mut m = model();
    select(&mut m, "researcher");
    update(&mut m, Action::ToggleExpand);
    assert_eq!(m.rows().len(), 4 + 3);
    update(&mut m, Action::Down);
    update(&mut m, Action::Down);
    assert_eq!(m.selected_replica_index(), Some(1));
    update(&mut m, Action::Restart);
    assert_eq!(
        update(&mut m, Action::Yes),
        vec![Request::Restart {
            agent: "researcher".into(),
            replica: Some(1)
        }]
    );
    select(&mut m, "researcher");
    update(&mut m, Action::ToggleExpand);
    assert_eq!(m.rows().len(), 4);
}

#[test]
fn plus_and_minus_show_the_new_count_and_send_it_after_the_delay_unless_cancelled() {
    let mut m = model();
    select(&mut m, "researcher");
    assert!(
        update(&mut m, Action::ScaleUp).is_empty(),
        "nothing sent yet"
    );
    assert!(update(&mut m, Action::ScaleUp).is_empty());
    let p = m.pending_scale.clone().expect("pending");
    assert_eq!((p.from, p.to), (3, 5));
    m.now = p.due - 1;
    assert!(due(&mut m).is_empty());
    m.now = p.due;
    assert_eq!(
        due(&mut m),
        vec![Request::Scale {
            agent: "researcher".into(),
            replicas: 5
        }]
    );
    assert!(m.pending_scale.is_none());
    // Esc takes it back; nothing is ever sent.
    update(&mut m, Action::ScaleDown);
    update(&mut m, Action::Back);
    m.now += 10_000;
    assert!(due(&mut m).is_empty());
    assert!(
        m.notices
            .back()
            .is_some_and(|n| n.text.contains("cancelled"))
    );
    // Enter sends at once; q with one pending does not leave silently.
    update(&mut m, Action::ScaleDown);
    update(&mut m, Action::Detach);
    assert!(!m.quit);
    assert_eq!(
        update(&mut m, Action::Enter),
        vec![Request::Scale {
            agent: "researcher".into(),
            replicas: 2
        }]
    );
    m.status.as_mut().expect("status").agents[1].desired = 0;
    assert!(update(&mut m, Action::ScaleDown).is_empty());
    assert!(m.notices.back().is_some_and(|n| n.error));
    assert!(m.pending_scale.is_none());
}

#[test]
fn fleet_keys_need_the_fleet_focused() {
    let mut m = model();
    for p in [Panel::Alerts, Panel::Incidents, Panel::Logs, Panel::Graphs] {
        m.focus = p;
        for a in [
            Action::ScaleUp,
            Action::ScaleDown,
            Action::Restart,
            Action::StartStop,
        ] {
            assert!(update(&mut m, a.clone()).is_empty(), "{a:?} in {p:?}");
            assert_eq!(m.mode, Mode::Normal, "{a:?} in {p:?} asks nothing");
            assert!(m.pending_scale.is_none(), "{a:?} in {p:?}");
        }
    }
}

#[test]
fn s_stops_after_confirmation_and_starts_at_once() {
    let mut m = model();
    select(&mut m, "planner");
    assert!(update(&mut m, Action::StartStop).is_empty());
    assert_eq!(
        update(&mut m, Action::Yes),
        vec![Request::Stop {
            agent: "planner".into()
        }]
    );
    select(&mut m, "indexer");
    assert_eq!(
        update(&mut m, Action::StartStop),
        vec![Request::Start {
            agent: "indexer".into()
        }]
    );
}

#[test]
fn b_asks_then_sends_a_backup_and_the_refusal_is_shown() {
    let mut m = model();
    assert!(update(&mut m, Action::Backup).is_empty());
    assert!(matches!(m.mode, Mode::Confirm { .. }));
    assert_eq!(update(&mut m, Action::Yes), vec![Request::Backup]);
    apply(
        &mut m,
        Incoming::Answer(
            Request::Backup,
            Err(ErrorReply {
                kind: ErrorKind::NotAvailable,
                message: "backups are not available yet".into(),
            }),
        ),
    );
    let n = m.notices.back().expect("notice");
    assert!(n.error && n.text.contains("not available yet"), "{n:?}");
}

#[test]
fn a_acks_only_the_selected_alert_in_a_focused_alert_feed() {
    let mut m = model();
    // Outside the alert feed it does nothing (a stray key acks nothing).
    for p in [Panel::Fleet, Panel::Logs, Panel::Incidents, Panel::Detail] {
        m.focus = p;
        assert!(update(&mut m, Action::Ack).is_empty(), "{p:?}");
    }
    assert!(
        m.notices
            .back()
            .is_some_and(|n| n.text.contains("alert feed (4)"))
    );
    m.focus = Panel::Alerts;
    assert_eq!(
        update(&mut m, Action::Ack),
        vec![Request::Ack {
            pattern: "replica-failed/flaky-tool".into()
        }]
    );
    // A pending alert cannot be acked.
    update(&mut m, Action::Down);
    assert_eq!(m.alert_selected, 1);
    assert!(update(&mut m, Action::Ack).is_empty());
    assert!(
        m.notices
            .back()
            .is_some_and(|n| n.error && n.text.contains("pending"))
    );
    if let Some(s) = m.status.as_mut() {
        s.alerts.clear();
    }
    assert!(update(&mut m, Action::Ack).is_empty());
    assert!(
        m.notices
            .back()
            .is_some_and(|n| n.text.contains("no firing alert"))
    );
}

#[test]
fn the_day_view_keeps_its_gaps_and_a_stored_view_shows_before_the_first_tick() {
    let mut m = Model::new(NOW);
    let h = crate::proto::MetricHistory {
        day_step_ms: 60_000,
        day_end: NOW - 120_000,
        // Two minutes, an hour apart (the daemon was down between).
        day_times: vec![NOW - 3_720_000, NOW - 120_000],
        day_cpu: vec![10.0, 20.0],
        day_mem: vec![30.0, 40.0],
        // No tick yet: no 5-minute series.
        ..Default::default()
    };
    load_history(&mut m, &h);
    let day: Vec<_> = m.day_cpu.iter().copied().collect();
    assert_eq!(day, vec![(NOW - 3_720_000, 10.0), (NOW - 120_000, 20.0)]);
    assert_eq!(m.day_mem.back(), Some(&(NOW - 120_000, 40.0)));
}

#[test]
fn a_snapshot_with_history_fills_the_graphs_at_once() {
    let mut m = Model::new(NOW);
    let mut status = crate::tui::fixture::status();
    status.history = Some(Box::new(crate::proto::MetricHistory {
        step_ms: 1000,
        end: NOW,
        host_cpu: vec![10.0, 20.0, 30.0],
        host_mem: vec![50.0; 3],
        net_rx: vec![0.0; 3],
        net_tx: vec![0.0; 3],
        cores: vec![vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]],
        agents: vec![crate::proto::AgentHistory {
            name: "planner".into(),
            cpu: vec![1.0, 2.0],
            mem: vec![1e6, 2e6],
        }],
        ..Default::default()
    }));
    apply(
        &mut m,
        Incoming::Update(Update::Snapshot(1, Box::new(status))),
    );
    let cpu: Vec<_> = m.host_cpu.iter().copied().collect();
    assert_eq!(
        cpu,
        vec![(NOW - 2000, 10.0), (NOW - 1000, 20.0), (NOW, 30.0)]
    );
    assert_eq!(m.cores.len(), 2);
    assert_eq!(m.agent_cpu["planner"].back(), Some(&(NOW, 2.0)));
    assert_eq!(m.agent_mem["planner"].front(), Some(&(NOW - 1000, 1e6)));
    // The history is not kept in the replicated status.
    assert!(m.status.as_ref().is_some_and(|s| s.history.is_none()));
}

#[test]
fn the_day_view_averages_samples_per_minute_and_t_toggles_it() {
    let mut m = model();
    let mut day = crate::tui::model::Series::new();
    let mut acc = None;
    let minute = 60_000 * 1000;
    for (i, v) in [10.0, 20.0, 30.0].iter().enumerate() {
        crate::tui::model::push_day(&mut day, &mut acc, minute + i as u64 * 1000, *v);
    }
    assert!(day.is_empty(), "the minute is still open");
    crate::tui::model::push_day(&mut day, &mut acc, minute + 60_000, 50.0);
    assert_eq!(day.back(), Some(&(minute, 20.0)));
    assert!(!m.day_view);
    assert!(update(&mut m, Action::Span).is_empty());
    assert!(m.day_view);
    update(&mut m, Action::Span);
    assert!(!m.day_view);
}

#[test]
fn incident_keys_note_and_advance_the_selected_incident() {
    let mut m = model();
    m.focus = Panel::Incidents;
    assert!(update(&mut m, Action::Note).is_empty());
    assert_eq!(m.mode, Mode::Palette("note 3 ".into()));
    for c in "restarted by hand".chars() {
        update(&mut m, Action::Char(c));
    }
    assert_eq!(
        update(&mut m, Action::Submit),
        vec![Request::IncidentNote {
            id: 3,
            text: "restarted by hand".into()
        }]
    );
    assert!(update(&mut m, Action::Advance).is_empty());
    match &m.mode {
        Mode::Confirm { prompt, request } => {
            assert!(
                prompt.contains("from Assessment to Containment"),
                "{prompt}"
            );
            assert_eq!(request, &Request::IncidentAdvance { id: 3, phase: None });
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        update(&mut m, Action::Yes),
        vec![Request::IncidentAdvance { id: 3, phase: None }]
    );
}

#[test]
fn palette_incident_and_alert_verbs() {
    let mut m = model();
    let run = |m: &mut Model, line: &str| {
        update(m, Action::Palette);
        for c in line.chars() {
            update(m, Action::Char(c));
        }
        update(m, Action::Submit)
    };
    assert_eq!(
        run(&mut m, "incident 1 disk full on gpu-box"),
        vec![Request::IncidentOpen {
            title: "disk full on gpu-box".into(),
            level: 1,
            agent: None
        }]
    );
    assert_eq!(
        run(&mut m, "silence crash-loop 2h"),
        vec![Request::Silence {
            pattern: "crash-loop".into(),
            for_ms: 7_200_000
        }]
    );
    assert_eq!(
        run(&mut m, "resolve #3"),
        vec![Request::IncidentResolve { id: 3, note: None }]
    );
    assert!(run(&mut m, "incident 7 nope").is_empty());
    assert!(m.notices.back().is_some_and(|n| n.error));
}

#[test]
fn slash_filters_the_fleet_and_searches_the_logs() {
    let mut m = model();
    update(&mut m, Action::Slash);
    assert_eq!(m.mode, Mode::Filter);
    for c in "flak".chars() {
        update(&mut m, Action::Char(c));
    }
    update(&mut m, Action::Submit);
    assert_eq!(m.mode, Mode::Normal);
    assert_eq!(m.rows().len(), 1);
    m.focus = Panel::Logs;
    update(&mut m, Action::Slash);
    assert_eq!(m.mode, Mode::Search);
    update(&mut m, Action::Char('x'));
    update(&mut m, Action::Backspace);
    update(&mut m, Action::Char('T'));
    update(&mut m, Action::Back);
    assert!(m.search.is_empty(), "Esc clears the search");
}

#[test]
fn o_cycles_the_sort_order() {
    let mut m = model();
    update(&mut m, Action::Sort);
    assert_eq!(m.sort, Sort::Cpu);
    assert_eq!(
        m.selected_agent().map(|a| a.name.as_str()),
        Some("researcher")
    );
    for _ in 0..4 {
        update(&mut m, Action::Sort);
    }
    assert_eq!(m.sort, Sort::Name);
}

#[test]
fn d_runs_the_health_check_and_shows_its_answer() {
    let mut m = model();
    assert_eq!(update(&mut m, Action::Doctor), vec![Request::Doctor]);
    assert_eq!(m.mode, Mode::Doctor);
    assert!(m.doctor.is_none());
    let checks = vec![crate::core::doctor::Check::ok("daemon", "pid 1")];
    apply(
        &mut m,
        Incoming::Answer(
            Request::Doctor,
            Ok(Response::Doctor {
                checks: checks.clone(),
            }),
        ),
    );
    assert_eq!(m.doctor, Some(checks));
    update(&mut m, Action::Back);
    assert_eq!(m.mode, Mode::Normal);
}

#[test]
fn help_opens_and_closes() {
    let mut m = model();
    update(&mut m, Action::Help);
    assert_eq!(m.mode, Mode::Help);
    update(&mut m, Action::Back);
    assert_eq!(m.mode, Mode::Normal);
}

#[test]
fn the_palette_runs_verbs_and_completes_them() {
    let mut m = model();
    update(&mut m, Action::Palette);
    for c in "sc".chars() {
        update(&mut m, Action::Char(c));
    }
    update(&mut m, Action::Complete);
    assert_eq!(m.mode, Mode::Palette("scale ".into()));
    for c in "re".chars() {
        update(&mut m, Action::Char(c));
    }
    update(&mut m, Action::Complete);
    assert_eq!(m.mode, Mode::Palette("scale researcher ".into()));
    update(&mut m, Action::Char('3'));
    assert_eq!(
        update(&mut m, Action::Submit),
        vec![Request::Scale {
            agent: "researcher".into(),
            replicas: 3
        }]
    );
    fn run_in(m: &mut Model, line: &str) -> Vec<Request> {
        update(m, Action::Palette);
        for c in line.chars() {
            update(m, Action::Char(c));
        }
        update(m, Action::Submit)
    }
    assert_eq!(
        run_in(&mut m, "restart researcher/2"),
        vec![Request::Restart {
            agent: "researcher".into(),
            replica: Some(2)
        }]
    );
    assert_eq!(
        run_in(&mut m, "stop planner"),
        vec![Request::Stop {
            agent: "planner".into()
        }]
    );
    assert_eq!(
        run_in(&mut m, "start planner"),
        vec![Request::Start {
            agent: "planner".into()
        }]
    );
    assert_eq!(run_in(&mut m, "reload"), vec![Request::Reload]);
    assert_eq!(run_in(&mut m, "backup"), vec![Request::Backup]);
    assert!(run_in(&mut m, "scale researcher lots").is_empty());
    assert!(run_in(&mut m, "frobnicate").is_empty());
    assert!(
        m.notices
            .back()
            .is_some_and(|n| n.text.contains("unknown command"))
    );
    assert!(run_in(&mut m, "shutdown").is_empty(), "asks first");
    assert!(matches!(m.mode, Mode::Confirm { .. }));
    update(&mut m, Action::No);
    assert!(run_in(&mut m, "logs flaky-tool").is_empty());
    assert_eq!(m.focus, Panel::Logs);
    assert_eq!(
        m.selected_agent().map(|a| a.name.as_str()),
        Some("flaky-tool")
    );
    assert!(run_in(&mut m, "detach").is_empty());
    assert!(m.quit);
}

#[test]
fn palette_escape_cancels() {
    let mut m = model();
    update(&mut m, Action::Palette);
    update(&mut m, Action::Char('s'));
    assert!(update(&mut m, Action::Back).is_empty());
    assert_eq!(m.mode, Mode::Normal);
}

#[test]
fn backup_progress_events_reach_the_status_and_clear_when_done() {
    let mut m = model();
    let progress = crate::proto::BackupProgress {
        what: "backup to /b".into(),
        step: "backing up".into(),
        done: 1,
        total: 4,
        bytes: true,
    };
    apply(
        &mut m,
        Incoming::Update(Update::Event(
            9,
            ServerEvent::Audit {
                records: vec![],
                backup_running: true,
                progress: Some(progress.clone()),
            },
        )),
    );
    let s = m.status.as_ref().expect("status");
    assert!(s.backup_running);
    assert_eq!(s.backup_progress, Some(progress));
    apply(
        &mut m,
        Incoming::Update(Update::Event(
            10,
            ServerEvent::Audit {
                records: vec![],
                backup_running: false,
                progress: None,
            },
        )),
    );
    let s = m.status.as_ref().expect("status");
    assert!(!s.backup_running);
    assert_eq!(s.backup_progress, None);
}

#[test]
fn events_update_the_replica_and_samples_feed_the_graphs() {
    let mut m = model();
    apply(
        &mut m,
        Incoming::Update(Update::Event(
            9,
            ServerEvent::Transition {
                agent: "planner".into(),
                replica: 0,
                transition: Transition {
                    at: NOW + 1,
                    from: State::ActiveOperation,
                    to: State::TaskCompletion,
                    reason: "exit 1".into(),
                },
            },
        )),
    );
    let r = &m.agents()[0].replicas[0];
    assert_eq!(r.state, State::TaskCompletion);
    assert_eq!(r.waiting, None);
    assert_eq!(r.pid, None);
    assert_eq!(m.agents()[0].running, 0);
    let before = m.host_cpu.len();
    m.now = NOW + 1000;
    apply(
        &mut m,
        Incoming::Update(Update::Event(
            10,
            ServerEvent::Samples {
                host: HostStatus {
                    cpu_percent: 99.0,
                    per_core: vec![98.0, 100.0],
                    memory_used: 1,
                    memory_total: 2,
                    net_rx_bps: 1000.0,
                    net_tx_bps: 10.0,
                    ..HostStatus::default()
                },
                replicas: vec![ReplicaSample {
                    agent: "researcher".into(),
                    replica: 0,
                    cpu_percent: 12.0,
                    rss_bytes: 7,
                    processes: 2,
                    attention: None,
                }],
                tasks: vec![],
            },
        )),
    );
    assert_eq!(m.host_cpu.len(), before + 1);
    assert_eq!(m.host_cpu.back(), Some(&(NOW + 1000, 99.0)));
    assert_eq!(m.net_rx.back(), Some(&(NOW + 1000, 1000.0)));
    assert_eq!(m.agents()[1].replicas[0].cpu_percent, 12.0);
    assert_eq!(m.agent_cpu["researcher"].back(), Some(&(NOW + 1000, 12.0)));
    apply(
        &mut m,
        Incoming::Update(Update::Event(
            11,
            ServerEvent::Agent {
                name: "planner".into(),
                desired: 5,
                enabled: false,
            },
        )),
    );
    assert_eq!((m.agents()[0].desired, m.agents()[0].enabled), (5, false));
    apply(&mut m, Incoming::Closed("gone".into()));
    assert!(matches!(
        m.conn,
        crate::tui::model::Conn::Reconnecting { .. }
    ));
}

#[test]
fn logs_follow_the_selected_agent_with_a_cursor() {
    let mut m = model();
    let r = logs_request(&mut m);
    assert_eq!(
        r,
        Some(Request::Logs {
            agent: "planner".into(),
            lines: 500,
            since: Some(30)
        })
    );
    select(&mut m, "flaky-tool");
    let r = logs_request(&mut m);
    assert_eq!(
        r,
        Some(Request::Logs {
            agent: "flaky-tool".into(),
            lines: 500,
            since: None
        })
    );
    assert!(m.logs.is_empty(), "a new agent starts a new buffer");
    apply(
        &mut m,
        Incoming::Answer(
            Request::Logs {
                agent: "flaky-tool".into(),
                lines: 500,
                since: None,
            },
            Ok(Response::Logs {
                lines: vec![],
                next: 77,
            }),
        ),
    );
    assert_eq!(m.log_cursor, Some(77));
}
