//! The shared task queue on PostgreSQL. Run: `cargo bench --bench
//! shared_queue` (about a minute; `BENCH_SECS` sets each window, default
//! 20). Needs Debian's `postgresql` (a throwaway cluster on a private
//! port, `fsync` on).
//!
//! For 1 and then 3 daemons on one database, each with 4 replicas of
//! `autonomos demo-agent --role echo` (`concurrency = 64`): a client
//! submits batches of 500 to the daemons in turn, keeping at most 20,000
//! not yet completed, and reads completions from each daemon's /metrics:
//! durable submit → complete throughput. Then dispatch: single tasks at
//! 200/s for 5 s; the agent records when each `task.run` arrived, compared
//! with when the client had its answer.

mod common;

use std::time::{Duration, Instant};

use autonomos::proto::{Request, Response};
use common::postgres::Postgres;
use common::{Daemon, batch, free_port, metric, micros_now};

fn main() {
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let Some(pg) = Postgres::start() else {
        return;
    };
    println!("| daemons | what | measured |");
    println!("| --- | --- | --- |");
    for n in [1usize, 3] {
        run(&pg, n, secs);
    }
}

fn run(pg: &Postgres, n: usize, secs: u64) {
    let bin = env!("CARGO_BIN_EXE_autonomos");
    let url = pg.database();
    let record = std::env::temp_dir().join(format!(
        "autonomos-bench-shared-{}-{n}.log",
        std::process::id()
    ));
    let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
    let daemons: Vec<Daemon> = ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            Daemon::start(
                bin,
                &format!(
                    "[tasks]\nstore = \"{url}\"\nhost = \"d{i}\"\n\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n\n\
                     [agents.echo]\ncommand = [\"{bin}\", \"demo-agent\", \"--role\", \"echo\"]\n\
                     protocol = \"jsonrpc\"\nreplicas = 4\nconcurrency = 64\nmax_queue = 1000000\n\
                     env = {{ ECHO_RECORD = \"{}\" }}\n",
                    record.display()
                ),
            )
        })
        .collect();
    let completed = || -> u64 {
        ports
            .iter()
            .map(|p| metric(*p, "autonomos_tasks_completed_total", "echo").unwrap_or(0.0) as u64)
            .sum()
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let mut clients = Vec::new();
        for d in &daemons {
            clients.push(d.connect().await);
        }
        tokio::time::sleep(Duration::from_secs(3)).await; // replicas up
        let (mut submitted, mut turn) = (0u64, 0usize);
        let done0 = completed();
        let start = Instant::now();
        let mut done = done0;
        while start.elapsed() < Duration::from_secs(secs) {
            if submitted - (done - done0) > 20_000 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                done = completed();
                continue;
            }
            let c = &mut clients[turn % n];
            turn += 1;
            match c.request(Request::TaskSubmit(batch(500))).await {
                Ok(Response::Tasks { tasks }) => submitted += tasks.len() as u64,
                other => panic!("submit failed: {other:?}"),
            }
            done = completed();
        }
        let elapsed = start.elapsed().as_secs_f64();
        let done = completed() - done0;
        println!(
            "| {n} | durable submit → complete, 4 echo replicas per daemon, batches of 500, {secs} s | {:.0} tasks/s completed ({done} tasks) |",
            done as f64 / elapsed
        );
        // Let the backlog drain, then single tasks at 200/s.
        let t = Instant::now();
        while completed() - done0 < submitted && t.elapsed() < Duration::from_secs(120) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // (The record file stays: the agents hold it open; old ids do not
        // match.)
        let mut acked: Vec<(String, i64)> = Vec::new();
        let t0 = Instant::now();
        for i in 0..1000u64 {
            tokio::time::sleep_until((t0 + Duration::from_millis(i * 5)).into()).await;
            let c = &mut clients[i as usize % n];
            if let Ok(Response::Tasks { tasks }) = c.request(Request::TaskSubmit(batch(1))).await {
                acked.push((tasks[0].id.clone(), micros_now()));
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rec = std::fs::read_to_string(&record).unwrap_or_default();
        let got: std::collections::HashMap<&str, i64> = rec
            .lines()
            .filter_map(|l| {
                let mut p = l.split(' ');
                let id = p.next()?;
                let _attempt = p.next()?;
                Some((id, p.next()?.parse().ok()?))
            })
            .collect();
        let mut lag: Vec<f64> = acked
            .iter()
            .filter_map(|(id, at)| got.get(id.as_str()).map(|r| (r - at) as f64 / 1000.0))
            .collect();
        lag.sort_by(f64::total_cmp);
        if !lag.is_empty() {
            let q = |x: f64| lag[((lag.len() - 1) as f64 * x) as usize];
            println!(
                "| {n} | dispatch at 200 tasks/s: agent receives task.run minus client has the answer ({} of {} tasks) | p50 {:.2} ms, p99 {:.2} ms |",
                lag.len(),
                acked.len(),
                q(0.5),
                q(0.99)
            );
        }
        let _ = std::fs::remove_file(&record);
    });
    drop(daemons);
}
