//! The task core: states, the queue's order and bound, routing (balance,
//! capacity, affinity) and what an attempt's end decides.

use proptest::prelude::*;
use serde_json::json;

use super::outcome::{Decision, Ending, RetryPolicy, decide, retry_delay};
use super::route::{Contexts, Slot, owner, pick};
use super::*;

fn rank(priority: i32, seq: u64) -> Rank {
    Rank {
        priority,
        seq,
        not_before: 0,
    }
}

#[test]
fn states_move_only_as_the_a2a_lifecycle_allows() {
    use TaskState::*;
    assert!(Submitted.may_become(Working));
    assert!(Working.may_become(Completed));
    assert!(Working.may_become(Submitted), "a retry");
    assert!(Failed.may_become(Submitted), "an operator's retry");
    assert!(!Completed.may_become(Submitted), "completed is final");
    assert!(!Submitted.may_become(Completed), "never without running");
    assert!(!Completed.may_become(Failed));
    for s in TaskState::ALL {
        assert_eq!(TaskState::parse(s.name()), Some(s));
    }
}

#[test]
fn higher_priority_first_fifo_within_and_delayed_tasks_do_not_block() {
    let mut q = Queue::new(10);
    q.push("a".into(), rank(0, 1)).expect("room");
    q.push("b".into(), rank(5, 2)).expect("room");
    q.push("c".into(), rank(0, 3)).expect("room");
    q.push(
        "d".into(),
        Rank {
            priority: 9,
            seq: 4,
            not_before: 5_000,
        },
    )
    .expect("room");
    assert_eq!(q.pop(0).as_deref(), Some("b"));
    assert_eq!(q.pop(0).as_deref(), Some("a"), "d waits for its delay");
    assert_eq!(q.next_ready_at(0), Some(0));
    assert_eq!(q.pop(0).as_deref(), Some("c"));
    assert_eq!(q.pop(0), None);
    assert_eq!(q.next_ready_at(0), Some(5_000));
    assert_eq!(q.pop(5_000).as_deref(), Some("d"));
    assert!(q.is_empty());
}

#[test]
fn a_full_queue_refuses_naming_the_limit_and_a_batch_is_whole_or_nothing() {
    let mut q = Queue::new(2);
    q.push("a".into(), rank(0, 1)).expect("room");
    let e = q.room_for(2).expect_err("2 more do not fit");
    assert_eq!(
        e.to_string(),
        "the queue is full: 2 tasks already wait (max_queue = 2)"
    );
    q.push("b".into(), rank(0, 2)).expect("room");
    assert!(q.push("c".into(), rank(0, 3)).is_err());
    // An acknowledged task coming back (a retry) is never refused.
    q.push_back("z".into(), rank(0, 0));
    assert_eq!(q.len(), 3);
    assert!(q.remove("a"));
    assert!(!q.remove("a"));
    assert_eq!(q.ids().collect::<Vec<_>>(), ["z", "b"]);
}

#[test]
fn idempotency_keys_find_the_existing_task() {
    let mut q = Queue::new(5);
    q.remember_key("k1".into(), "t1".into());
    assert_eq!(q.by_key("k1"), Some("t1"));
    q.forget_key("k1");
    assert_eq!(q.by_key("k1"), None);
}

fn slot(index: u32, concurrency: u32, in_flight: u32) -> Slot {
    Slot {
        index,
        concurrency,
        in_flight,
        routable: true,
    }
}

#[test]
fn least_outstanding_relative_to_concurrency_never_at_capacity_or_unroutable() {
    let slots = [slot(0, 4, 2), slot(1, 1, 0), slot(2, 2, 0)];
    // 1 and 2 are both idle (0/1, 0/2): either, by the sample.
    let a = pick(&slots, None, 0).expect("one");
    let b = pick(&slots, None, 1).expect("one");
    assert!([1, 2].contains(&a) && [1, 2].contains(&b) && a != b);
    let slots = [slot(0, 4, 2), slot(1, 1, 1), slot(2, 2, 1)];
    // 0 is at 2/4, 2 at 1/2: tied; 1 is full.
    for sample in 0..8 {
        assert_ne!(pick(&slots, None, sample), Some(1));
    }
    let mut stopping = slot(3, 8, 0);
    stopping.routable = false;
    assert_eq!(pick(&[slot(0, 1, 1), stopping], None, 0), None);
}

#[test]
fn a_context_stays_on_its_replica_and_waits_for_it_when_it_is_busy() {
    let slots = [slot(0, 2, 0), slot(1, 2, 0), slot(2, 2, 0)];
    let home = owner(&slots, "conv-7").expect("an owner");
    for sample in 0..10 {
        assert_eq!(pick(&slots, Some("conv-7"), sample), Some(home));
    }
    let busy: Vec<Slot> = slots
        .iter()
        .map(|s| {
            if s.index == home {
                slot(home, 2, 2)
            } else {
                *s
            }
        })
        .collect();
    assert_eq!(
        pick(&busy, Some("conv-7"), 0),
        None,
        "it waits, it does not move"
    );
}

#[test]
fn context_new_is_true_the_first_time_after_a_move_and_after_a_restart() {
    let mut c = Contexts::default();
    assert!(c.serve("x", 0, 1));
    assert!(!c.serve("x", 0, 1));
    assert!(c.serve("x", 1, 5), "moved to replica 1");
    assert!(c.serve("x", 1, 6), "replica 1 restarted");
    c.retain_live(&[(0, 1)]);
    assert!(c.is_empty());
}

#[test]
fn answers_timeouts_and_lost_replicas_decide_as_the_protocol_says() {
    let p = RetryPolicy {
        max_attempts: 3,
        delay: 1000,
        max_delay: 1500,
    };
    assert_eq!(
        decide(Ending::Result(json!({"ok": 1})), 1, &p),
        Decision::Complete(json!({"ok": 1}))
    );
    let refused = Ending::Error {
        code: REFUSED,
        message: "not my job".into(),
        retryable: None,
    };
    assert!(matches!(decide(refused, 1, &p), Decision::Reject(r) if r.contains("not my job")));
    let final_error = Ending::Error {
        code: 7,
        message: "bad input".into(),
        retryable: Some(false),
    };
    assert!(matches!(decide(final_error, 1, &p), Decision::Fail(r) if r.contains("not retryable")));
    assert_eq!(
        decide(Ending::Timeout, 1, &p),
        Decision::Retry {
            after: 1000,
            reason: "timeout".into()
        }
    );
    assert_eq!(retry_delay(&p, 3), 1500, "doubling, capped");
    assert!(matches!(
        decide(Ending::Timeout, 3, &p),
        Decision::Fail(r) if r == "timeout (attempt 3 of 3)"
    ));
    assert!(matches!(
        decide(Ending::Lost("replica 2 exited (exit 1)".into()), 2, &p),
        Decision::Retry { after: 1500, .. }
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Whatever the load, the pick has room, is routable, and has the least
    /// outstanding work relative to its concurrency among those with room.
    #[test]
    fn the_pick_has_room_and_the_least_relative_load(
        loads in proptest::collection::vec((1u32..8, 0u32..8, any::<bool>()), 1..12),
        sample in any::<u64>(),
    ) {
        let slots: Vec<Slot> = loads
            .iter()
            .enumerate()
            .map(|(i, (c, f, r))| Slot { index: i as u32, concurrency: *c, in_flight: (*f).min(*c), routable: *r })
            .collect();
        let open: Vec<&Slot> = slots.iter().filter(|s| s.routable && s.in_flight < s.concurrency).collect();
        match pick(&slots, None, sample) {
            None => prop_assert!(open.is_empty()),
            Some(i) => {
                let s = slots[i as usize];
                prop_assert!(s.routable && s.in_flight < s.concurrency);
                let load = |s: &Slot| f64::from(s.in_flight) / f64::from(s.concurrency);
                prop_assert!(open.iter().all(|o| load(&s) <= load(o) + 1e-12));
            }
        }
    }

    /// Affinity: 50 contexts over 4 replicas each map to one replica; when
    /// one replica goes, only its contexts move.
    #[test]
    fn only_the_dead_replica_s_contexts_move(dead in 0u32..4, salt in any::<u32>()) {
        let all: Vec<Slot> = (0..4).map(|i| slot(i, 1, 0)).collect();
        let rest: Vec<Slot> = all.iter().copied().filter(|s| s.index != dead).collect();
        for c in 0..50 {
            let ctx = format!("ctx-{salt}-{c}");
            let before = owner(&all, &ctx).expect("owner");
            let after = owner(&rest, &ctx).expect("owner");
            if before != dead {
                prop_assert_eq!(before, after);
            } else {
                prop_assert_ne!(after, dead);
            }
        }
    }

    /// The queue hands tasks out by priority, then submission order, each
    /// once, whatever the order they arrived in.
    #[test]
    fn the_queue_orders_by_priority_then_arrival(prios in proptest::collection::vec(-3i32..3, 0..60)) {
        let mut q = Queue::new(1000);
        for (seq, p) in prios.iter().enumerate() {
            q.push(format!("t{seq}"), rank(*p, seq as u64)).expect("room");
        }
        let mut out = Vec::new();
        while let Some(id) = q.pop(0) {
            out.push(id);
        }
        let mut want: Vec<(i32, usize)> = prios.iter().enumerate().map(|(i, p)| (-*p, i)).collect();
        want.sort();
        let want: Vec<String> = want.into_iter().map(|(_, i)| format!("t{i}")).collect();
        prop_assert_eq!(out, want);
    }
}
