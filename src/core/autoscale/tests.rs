use super::*;

fn spec(targets: Vec<Target>) -> Spec {
    Spec {
        min: 1,
        max: 20,
        targets,
        ..Spec::default()
    }
}

fn metrics(current: u32, queue: f64) -> Metrics {
    Metrics {
        current,
        queue,
        concurrency: 1.0,
        pool_room: 100,
        ..Metrics::default()
    }
}

#[test]
fn each_target_follows_the_hpa_rule_and_the_largest_wins() {
    let s = spec(vec![Target::QueuePerReplica(5.0), Target::Utilization(0.5)]);
    let mut st = State::default();
    // 30 waiting over 2 replicas is 15 each: ×3 → 6. In flight 2 of 2: 100 %
    // of room against 50 % → 4. The queue's 6 wins, bounded to ×2 → 4.
    let m = Metrics {
        in_flight: 2.0,
        ..metrics(2, 30.0)
    };
    let d = decide(&s, &mut st, 0, &m);
    assert_eq!(d.recommendations[0].desired, 6);
    assert_eq!(d.recommendations[1].desired, 4);
    assert_eq!(d.recommended, 6);
    assert_eq!(d.to, 4, "at most ×2 of the last minute: {}", d.reason);
    assert!(d.reason.contains("×2"), "{}", d.reason);
}

#[test]
fn a_wobble_within_the_tolerance_changes_nothing() {
    let s = spec(vec![Target::QueuePerReplica(10.0)]);
    let mut st = State::default();
    for (i, q) in [38.0, 42.0, 39.0, 41.0, 43.0].iter().enumerate() {
        let d = decide(&s, &mut st, i as u64 * 1000, &metrics(4, *q));
        assert_eq!(d.to, 4, "{q}: {}", d.reason);
    }
}

#[test]
fn down_waits_for_the_window_and_the_cooldown() {
    let s = Spec {
        scale_down_window_ms: 60_000,
        cooldown_ms: 30_000,
        ..spec(vec![Target::QueuePerReplica(5.0)])
    };
    let mut st = State::default();
    assert_eq!(decide(&s, &mut st, 0, &metrics(4, 20.0)).to, 4);
    // The load drops: the window still holds the 4.
    for t in (1..=60).map(|s| s * 1000) {
        let d = decide(&s, &mut st, t, &metrics(4, 0.0));
        assert_eq!(d.to, 4, "at {t}: {}", d.reason);
    }
    let d = decide(&s, &mut st, 61_000, &metrics(4, 0.0));
    assert_eq!(d.to, 1, "{}", d.reason);
    // Load again: up at once (no cool-down on the way up).
    let d = decide(&s, &mut st, 62_000, &metrics(1, 10.0));
    assert_eq!(d.to, 2);
    // And not down again within the cool-down.
    let d = decide(&s, &mut st, 70_000, &metrics(2, 0.0));
    assert_eq!(d.to, 2);
}

#[test]
fn min_max_and_the_pool_bound_the_decision_and_say_so() {
    let s = Spec {
        min: 2,
        max: 5,
        max_step_up: 100.0,
        ..spec(vec![Target::QueuePerReplica(1.0)])
    };
    let mut st = State::default();
    let d = decide(&s, &mut st, 0, &metrics(2, 100.0));
    assert_eq!(d.to, 5);
    assert!(d.reason.contains("max 5"), "{}", d.reason);
    let mut st = State::default();
    let m = Metrics {
        pool_room: 1,
        ..metrics(2, 100.0)
    };
    let d = decide(&s, &mut st, 0, &m);
    assert_eq!(d.to, 3);
    assert!(d.reason.contains("the pool admits 1 more"), "{}", d.reason);
    let mut st = State::default();
    let d = decide(&s, &mut st, 0, &metrics(2, 0.0));
    assert_eq!(d.to, 2, "never below min: {}", d.reason);
}

#[test]
fn min_zero_sleeps_after_the_idle_window_and_a_task_wakes_it() {
    let s = Spec {
        min: 0,
        idle_window_ms: 10_000,
        cooldown_ms: 0,
        scale_down_window_ms: 0,
        ..spec(vec![Target::QueuePerReplica(5.0)])
    };
    let mut st = State::default();
    assert_eq!(decide(&s, &mut st, 0, &metrics(1, 0.0)).to, 1);
    assert_eq!(
        decide(&s, &mut st, 5_000, &metrics(1, 0.0)).to,
        1,
        "not idle long enough"
    );
    let d = decide(&s, &mut st, 10_000, &metrics(1, 0.0));
    assert_eq!(d.to, 0, "{}", d.reason);
    assert!(d.reason.contains("idle"));
    assert_eq!(decide(&s, &mut st, 11_000, &metrics(0, 0.0)).to, 0);
    let d = decide(&s, &mut st, 12_000, &metrics(0, 1.0));
    assert_eq!(d.to, 1, "{}", d.reason);
    assert!(d.reason.contains("waking"));
}

#[test]
fn the_forecast_meets_a_ramp_before_the_reactive_rule_does() {
    let reactive = Spec {
        max_step_up: 100.0,
        ..spec(vec![Target::Utilization(0.8)])
    };
    let predictive = Spec {
        predict_horizon_ms: Some(30_000),
        ..reactive.clone()
    };
    let (mut a, mut b) = (State::default(), State::default());
    let mut last = (0, 0);
    // Arrivals ramp by 0.2 tasks/s every second; each task runs 1 s.
    for i in 0..20u64 {
        let rate = 0.2 * i as f64;
        let m = Metrics {
            in_flight: rate.min(4.0),
            arrivals: rate,
            mean_run: Some(1.0),
            ..metrics(4, 0.0)
        };
        last = (
            decide(&reactive, &mut a, i * 1000, &m).to,
            decide(&predictive, &mut b, i * 1000, &m).to,
        );
    }
    assert!(
        last.1 > last.0,
        "forecast asks for more ahead of the ramp: {last:?}"
    );
}

#[test]
fn holt_follows_a_trend() {
    let mut h = Holt::default();
    for i in 0..30u64 {
        h.observe(i * 1000, i as f64);
    }
    let ahead = h.forecast(10_000).expect("a forecast");
    assert!((ahead - 39.0).abs() < 2.0, "{ahead}");
    let mut flat = Holt::default();
    for i in 0..30u64 {
        flat.observe(i * 1000, 5.0);
    }
    assert!((flat.forecast(60_000).expect("f") - 5.0).abs() < 0.01);
}
