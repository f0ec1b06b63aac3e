//! Reactive vs predictive autoscaling on the real daemon with real task
//! agents (`examples/task_agent.py`, python3). Run: `cargo bench --bench
//! autoscale_live` (about 7 minutes).
//!
//! The load, the same for both runs: arrivals ramp from 1 to 6 tasks/s
//! over 120 s, hold for 60 s, then stop; every task works 1 s on a replica
//! (concurrency 1); a new replica announces itself 5 s after it starts (a
//! cold start). The target: utilization 0.8 (tasks in flight over what the
//! replicas can run). Reported per mode: queue wait p50/p95/max (from each
//! task's `submitted_at` to `started_at`), the replica-minutes paid
//! (replicas running, sampled every second, until the queue is empty), the
//! peak, and how often the direction of change flipped.

mod common;

use std::time::{Duration, Instant};

use autonomos::core::task::TaskState;
use autonomos::proto::{NewTask, Request, Response, Submit};
use common::Daemon;

const RAMP: f64 = 120.0;
const HOLD: f64 = 60.0;
const PEAK: f64 = 6.0;

fn rate(t: f64) -> f64 {
    1.0 + (PEAK - 1.0) * (t / RAMP).min(1.0)
}

struct Outcome {
    p50: f64,
    p95: f64,
    max: f64,
    replica_minutes: f64,
    peak: u32,
    flips: u32,
    tasks: usize,
}

fn config(predict: bool) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/task_agent.py");
    format!(
        "[agents.w]\ncommand = [\"python3\", \"{script}\"]\nprotocol = \"jsonrpc\"\n\
         ready = \"announce\"\nconcurrency = 1\nmax_queue = 100000\nstop_timeout = \"3s\"\n\
         env = {{ TASK_AGENT_START_DELAY = \"5\" }}\n\
         autoscale = {{ min = 1, max = 12, utilization = 0.8, \
         scale_down_window = \"30s\", cooldown = \"10s\", predict = {predict}, horizon = \"20s\" }}\n"
    )
}

async fn run(predict: bool) -> Outcome {
    let bin = env!("CARGO_BIN_EXE_autonomos");
    let d = Daemon::start(bin, &config(predict));
    let mut c = d.connect().await;
    // The first replica up and announced.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let t0 = Instant::now();
    let (mut sent, mut replica_secs, mut peak) = (0f64, 0f64, 0u32);
    let (mut last_dir, mut flips, mut last_running) = (0i32, 0u32, 1u32);
    let mut next_sample = 0f64;
    loop {
        let t = t0.elapsed().as_secs_f64();
        if t < RAMP + HOLD {
            // Submits what the rate owes by now.
            let owed = (0..=(t * 10.0) as u64)
                .map(|i| rate(i as f64 / 10.0) / 10.0)
                .sum::<f64>();
            let n = (owed - sent).floor() as usize;
            if n > 0 {
                let tasks = (0..n)
                    .map(|_| NewTask {
                        input: serde_json::json!({ "sleep": 1.0 }),
                        key: None,
                        context_id: None,
                    })
                    .collect();
                let req = Request::TaskSubmit(Submit {
                    agent: Some("w".into()),
                    skill: None,
                    tasks,
                    priority: 0,
                    timeout_ms: None,
                });
                c.request(req).await.expect("submit");
                sent += n as f64;
            }
        }
        if t >= next_sample {
            next_sample += 1.0;
            let Ok(Response::Status { status }) = c.request(Request::Status).await else {
                panic!("status");
            };
            let a = &status.agents[0];
            replica_secs += f64::from(a.running);
            peak = peak.max(a.running);
            let dir = (a.running as i32 - last_running as i32).signum();
            if dir != 0 {
                if last_dir != 0 && dir != last_dir {
                    flips += 1;
                }
                last_dir = dir;
            }
            last_running = a.running;
            let waiting = a.tasks.as_ref().map_or(0, |s| s.queue + s.in_flight);
            if t > RAMP + HOLD && waiting == 0 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let Ok(Response::Tasks { tasks }) = c
        .request(Request::TaskList {
            agent: Some("w".into()),
            state: Some(TaskState::Completed),
            limit: 100_000,
        })
        .await
    else {
        panic!("task list");
    };
    let mut waits: Vec<f64> = tasks
        .iter()
        .filter_map(|t| Some(t.started_at?.saturating_sub(t.submitted_at) as f64 / 1000.0))
        .collect();
    waits.sort_by(f64::total_cmp);
    let q = |p: f64| waits[((waits.len() as f64 * p) as usize).min(waits.len() - 1)];
    Outcome {
        p50: q(0.5),
        p95: q(0.95),
        max: *waits.last().unwrap_or(&0.0),
        replica_minutes: replica_secs / 60.0,
        peak,
        flips,
        tasks: waits.len(),
    }
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    println!(
        "| mode | tasks | wait p50 | wait p95 | wait max | replica-minutes | peak | direction flips |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for predict in [false, true] {
        let o = rt.block_on(run(predict));
        println!(
            "| {} | {} | {:.2} s | {:.2} s | {:.2} s | {:.1} | {} | {} |",
            if predict {
                "predictive (horizon 20 s)"
            } else {
                "reactive"
            },
            o.tasks,
            o.p50,
            o.p95,
            o.max,
            o.replica_minutes,
            o.peak,
            o.flips
        );
    }
}
