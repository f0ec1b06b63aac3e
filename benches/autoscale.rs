//! Reactive vs predictive autoscaling on a steady ramp, with the real
//! decision code (`core::autoscale::decide`) driving a simulated agent, one
//! decision a second. Run: `cargo bench --bench autoscale` (a second).
//!
//! The load: arrivals ramp from 1 to 20 tasks/s over 5 minutes, then stay
//! for 5; every task takes 1 s on a replica (concurrency 1); a new replica
//! is ready 20 s after it is asked for (a cold start: a model loading), a
//! removed one goes at once. Reported per policy: queue wait p50/p95/max and the
//! replica-minutes paid (replicas asked for, ready or starting).

use std::collections::VecDeque;

use autonomos::core::autoscale::{Metrics, Spec, State, Target, decide};

const START_DELAY: u64 = 20;
const SECONDS: u64 = 600;

struct Outcome {
    mean: f64,
    waited: usize,
    p99: f64,
    p95: f64,
    max: f64,
    replica_minutes: f64,
    peak: u32,
}

fn rate(t: u64) -> f64 {
    1.0 + 19.0 * (t as f64 / 300.0).min(1.0)
}

fn run(spec: &Spec) -> Outcome {
    let mut state = State::default();
    let mut desired: u32 = 1;
    // When each asked-for replica is ready (index = replica).
    let mut ready_at: Vec<u64> = vec![0];
    let mut queue: VecDeque<f64> = VecDeque::new();
    let mut carry = 0.0;
    let mut waits = Vec::new();
    let (mut paid, mut peak) = (0.0, 1);
    for t in 0..SECONDS {
        // Arrivals this second, spread over it.
        carry += rate(t);
        let n = carry.floor() as usize;
        carry -= n as f64;
        for k in 0..n {
            queue.push_back(t as f64 + k as f64 / n.max(1) as f64);
        }
        let ready = ready_at.iter().filter(|r| **r <= t).count();
        let busy = ready.min(queue.len());
        for _ in 0..busy {
            if let Some(at) = queue.pop_front() {
                waits.push((t as f64 - at).max(0.0));
            }
        }
        paid += f64::from(desired) / 60.0;
        let m = Metrics {
            current: desired,
            queue: queue.len() as f64,
            in_flight: busy as f64,
            concurrency: 1.0,
            latency_p95: Some(1.0),
            mean_run: Some(1.0),
            cpu: 0.0,
            arrivals: n as f64,
            pool_room: 1000,
        };
        let d = decide(spec, &mut state, t * 1000, &m);
        if d.to > desired {
            ready_at.extend((desired..d.to).map(|_| t + START_DELAY));
        } else {
            ready_at.truncate(d.to as usize);
        }
        desired = d.to;
        peak = peak.max(desired);
    }
    waits.sort_by(f64::total_cmp);
    let q = |x: f64| waits[((waits.len() - 1) as f64 * x) as usize];
    Outcome {
        mean: waits.iter().sum::<f64>() / waits.len() as f64,
        waited: waits.iter().filter(|w| **w >= 1.0).count(),
        p99: q(0.99),
        p95: q(0.95),
        max: q(1.0),
        replica_minutes: paid,
        peak,
    }
}

fn main() {
    let base = |targets: Vec<Target>| Spec {
        min: 1,
        max: 50,
        targets,
        cooldown_ms: 30_000,
        scale_down_window_ms: 60_000,
        max_step_up: 4.0,
        ..Spec::default()
    };
    println!(
        "| policy | mean wait | tasks that waited ≥ 1 s | p95 | p99 | max | replica-minutes | peak replicas |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut rows = Vec::new();
    for util in [0.8, 0.7, 0.6, 0.5] {
        let targets = vec![Target::Utilization(util), Target::QueuePerReplica(2.0)];
        rows.push((
            format!("reactive, utilization {util}"),
            base(targets.clone()),
        ));
        if util == 0.8 {
            let mut p = base(targets);
            p.predict_horizon_ms = Some(30_000);
            rows.push(("predictive, utilization 0.8, 30 s ahead".into(), p));
        }
    }
    for (name, spec) in rows {
        let o = run(&spec);
        println!(
            "| {name} | {:.3} s | {} | {:.1} s | {:.1} s | {:.1} s | {:.0} | {} |",
            o.mean, o.waited, o.p95, o.p99, o.max, o.replica_minutes, o.peak
        );
    }
}
