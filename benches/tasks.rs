//! Task-layer benchmark. Run: `cargo bench --bench tasks` (about a minute;
//! `BENCH_SECS` sets the measured window, default 30).
//!
//! The real daemon binary with 8 replicas of `autonomos demo-agent --role
//! echo` (answers every task at once), `concurrency = 64`. A client submits
//! batches of 2,000 tasks over the Unix socket (each answered once
//! durable), keeping at most 100,000 not yet completed; completions are
//! read from `/metrics`. Prints durable submit → complete throughput and
//! the daemon's RSS at the start and end of the window. Then dispatch:
//! single tasks at 1,000/s for 5 s; the agent records when each
//! `task.run` arrived, compared with when the client had its answer (and
//! with when it sent the submit). Then the idle cost: the daemon's CPU over
//! 30 s with 50 plain agents, and with 50 idle task agents
//! (`BENCH_IDLE=0` skips it).

mod common;

use std::time::{Duration, Instant};

use autonomos::proto::{Request, Response};
use common::{Daemon, batch, cpu_seconds, free_port, metric, micros_now};

fn completed(port: u16) -> u64 {
    metric(port, "autonomos_tasks_completed_total", "echo").map_or(0, |v| v as u64)
}

fn record_path() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("autonomos-bench-tasks-{}.log", std::process::id()))
}

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let bin = env!("CARGO_BIN_EXE_autonomos");
    let port = free_port();
    let d = Daemon::start(
        bin,
        &format!(
            "[metrics]\nlisten = \"127.0.0.1:{port}\"\n\n[agents.echo]\ncommand = [\"{bin}\", \"demo-agent\", \"--role\", \"echo\"]\n\
             protocol = \"jsonrpc\"\nreplicas = 8\nconcurrency = 64\nmax_queue = 1000000\n\
             env = {{ ECHO_RECORD = \"{}\" }}\n",
            record_path().display()
        ),
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let mut c = d.connect().await;
        tokio::time::sleep(Duration::from_secs(2)).await; // replicas up
        let (mut submitted, mut acks) = (0u64, Vec::new());
        let mut done = completed(port);
        let start = Instant::now();
        let (done0, rss0) = (done, rss_mib(d.child.id()));
        let mut rss_every_10s = Vec::new();
        let window = Duration::from_secs(secs);
        while start.elapsed() < window {
            if start.elapsed().as_secs() >= 10 * (rss_every_10s.len() as u64 + 1) {
                rss_every_10s.push(format!("{:.0}", rss_mib(d.child.id())));
            }
            if submitted - (done - done0) > 100_000 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                done = completed(port);
                continue;
            }
            let t = Instant::now();
            match c.request(Request::TaskSubmit(batch(2000))).await {
                Ok(Response::Tasks { tasks }) => submitted += tasks.len() as u64,
                other => panic!("submit failed: {other:?}"),
            }
            acks.push(t.elapsed().as_secs_f64() * 1000.0);
            done = completed(port);
        }
        let elapsed = start.elapsed().as_secs_f64();
        let done = completed(port) - done0;
        let rss1 = rss_mib(d.child.id());
        acks.sort_by(f64::total_cmp);
        let p = |q: f64| acks[((acks.len() - 1) as f64 * q) as usize];
        println!("| what | measured |");
        println!("| --- | --- |");
        println!(
            "| durable submit → complete, 8 echo replicas, batches of 2,000, {secs} s | {:.0} tasks/s completed ({done} tasks; {submitted} submitted) |",
            done as f64 / elapsed
        );
        println!(
            "| batch of 2,000 acknowledged (durable) | p50 {:.1} ms, p99 {:.1} ms |",
            p(0.5),
            p(0.99)
        );
        println!("| daemon RSS at the start and end of the window | {rss0:.0} MiB → {rss1:.0} MiB |");
        println!(
            "| daemon RSS every 10 s of the window | {} MiB |",
            rss_every_10s.join(" → ")
        );
        // Dispatch: let the backlog drain, then single tasks at 1,000/s.
        while completed(port) - done0 < submitted {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut acked: Vec<(String, i64, i64)> = Vec::new();
        let t0 = Instant::now();
        for i in 0..5000u64 {
            let due = t0 + Duration::from_micros(i * 1000);
            tokio::time::sleep_until(due.into()).await;
            let sent = micros_now();
            if let Ok(Response::Tasks { tasks }) = c.request(Request::TaskSubmit(batch(1))).await {
                acked.push((tasks[0].id.clone(), sent, micros_now()));
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rec = std::fs::read_to_string(record_path()).unwrap_or_default();
        let got: std::collections::HashMap<&str, i64> = rec
            .lines()
            .filter_map(|l| {
                let mut p = l.split(' ');
                let id = p.next()?;
                let _attempt = p.next()?;
                Some((id, p.next()?.parse().ok()?))
            })
            .collect();
        let lags = |from_sent: bool| {
            let mut v: Vec<f64> = acked
                .iter()
                .filter_map(|(id, sent, at)| {
                    let from = if from_sent { sent } else { at };
                    got.get(id.as_str()).map(|r| (r - from) as f64 / 1000.0)
                })
                .collect();
            v.sort_by(f64::total_cmp);
            v
        };
        for (from_sent, what) in [
            (false, "agent receives task.run minus client has the answer"),
            (true, "agent receives task.run minus client sent the submit (commit included)"),
        ] {
            let lag = lags(from_sent);
            if lag.is_empty() {
                continue;
            }
            let q = |x: f64| lag[((lag.len() - 1) as f64 * x) as usize];
            println!(
                "| dispatch at 1,000 tasks/s: {what} ({} tasks) | p50 {:.2} ms, p99 {:.2} ms |",
                lag.len(),
                q(0.5),
                q(0.99)
            );
        }
        let _ = std::fs::remove_file(record_path());
    });
    drop(d);
    if std::env::var("BENCH_KILL").as_deref() != Ok("0") {
        kill_rerun(bin);
    }
    if std::env::var("BENCH_IDLE").as_deref() != Ok("0") {
        let plain = "command = [\"sleep\", \"100000\"]\n".to_string();
        let task = format!(
            "command = [\"{bin}\", \"demo-agent\", \"--role\", \"echo\"]\nprotocol = \"jsonrpc\"\n"
        );
        let a = idle_cpu(bin, &plain);
        let b = idle_cpu(bin, &task);
        println!("| daemon CPU, 50 idle plain agents, 30 s | {a:.2} % of a core |");
        println!("| daemon CPU, 50 idle task agents (no tasks), 30 s | {b:.2} % of a core |");
    }
}

/// The daemon's CPU (% of one core) over 30 s with 50 agents of `agent`
/// (the body of each `[agents.NAME]` table), after 5 s to settle.
fn idle_cpu(bin: &str, agent: &str) -> f64 {
    let mut cfg = String::new();
    for i in 0..50 {
        cfg.push_str(&format!("[agents.a{i}]\n{agent}\n"));
    }
    let d = Daemon::start(bin, &cfg);
    std::thread::sleep(Duration::from_secs(5));
    let ticks = |pid: u32| cpu_seconds(pid).0 * 100.0;
    let (t0, c0) = (Instant::now(), ticks(d.child.id()));
    std::thread::sleep(Duration::from_secs(30));
    let used = (ticks(d.child.id()) - c0) / 100.0;
    used / t0.elapsed().as_secs_f64() * 100.0
}

/// Re-runs after a kill -9 at full speed: batches submitted as fast as
/// the daemon takes them for 5 s, SIGKILL, a restart on the same data dir,
/// then every acknowledged task must have run, and the agent's record
/// says how many ran twice.
fn kill_rerun(bin: &str) {
    let port = free_port();
    let record =
        std::env::temp_dir().join(format!("autonomos-bench-kill-{}.log", std::process::id()));
    let mut d = Daemon::start(
        bin,
        &format!(
            "[metrics]\nlisten = \"127.0.0.1:{port}\"\n\n[agents.echo]\ncommand = [\"{bin}\", \"demo-agent\", \"--role\", \"echo\"]\n\
             protocol = \"jsonrpc\"\nreplicas = 8\nconcurrency = 64\nmax_queue = 1000000\n\
             env = {{ ECHO_RECORD = \"{}\" }}\n",
            record.display()
        ),
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let acked: Vec<String> = rt.block_on(async {
        let mut c = d.connect().await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut acked = Vec::new();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Response::Tasks { tasks }) = c.request(Request::TaskSubmit(batch(2000))).await
            {
                acked.extend(tasks.into_iter().map(|t| t.id));
            }
        }
        acked
    });
    if let Some(p) = rustix::process::Pid::from_raw(d.child.id() as i32) {
        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
    }
    let _ = d.child.wait();
    std::thread::sleep(Duration::from_millis(500));
    d.respawn(bin);
    let t = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let q = metric(port, "autonomos_task_queue_length", "echo");
        let f = metric(port, "autonomos_task_in_flight", "echo");
        if q == Some(0.0) && f == Some(0.0) {
            break;
        }
        if t.elapsed() > Duration::from_secs(120) {
            println!("| kill -9 at full speed | the queue did not drain after the restart |");
            return;
        }
    }
    let rec = std::fs::read_to_string(&record).unwrap_or_default();
    let mut runs: std::collections::HashMap<&str, u32> = std::collections::HashMap::new();
    for l in rec.lines() {
        if let Some(id) = l.split(' ').next() {
            *runs.entry(id).or_default() += 1;
        }
    }
    let missing = acked
        .iter()
        .filter(|id| !runs.contains_key(id.as_str()))
        .count();
    let twice = runs.values().filter(|n| **n > 1).count();
    println!(
        "| kill -9 at full speed (5 s of batches, then SIGKILL and a restart) | {} acknowledged, {missing} never ran, {twice} ran more than once ({:.2} %) |",
        acked.len(),
        twice as f64 * 100.0 / acked.len().max(1) as f64
    );
    drop(d);
    let _ = std::fs::remove_file(&record);
}
