//! Control-plane benchmarks (issue: socket, protocol). Run:
//! `cargo bench --bench control`. Prints Markdown rows for docs/benchmarks.md.
//!
//! The daemon is the real `autonomos daemon` binary with 500 sleeping agents;
//! the client is the library's `Client` over the Unix socket. Set
//! `AUTONOMOS_BIN` to run another build of the daemon side by side (the
//! client speaks to older daemons of the same protocol version).

mod common;

use std::time::{Duration, Instant};

use autonomos::client::{Client, Update};
use autonomos::proto::{Request, ServerMsg};
use common::Daemon;

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// The daemon under test; `AUTONOMOS_BIN` runs another build (an older
/// one, side by side).
fn start(toml: &str) -> Daemon {
    let bin =
        std::env::var("AUTONOMOS_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_autonomos").into());
    Daemon::start(&bin, toml)
}

async fn connect(d: &Daemon) -> Client {
    d.connect().await
}

fn fleet(n: usize, flood: bool) -> String {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!(
            "[agents.a{i}]\ncommand = [\"sleep\", \"100000\"]\n"
        ));
    }
    if flood {
        s.push_str("[agents.flood]\ncommand = [\"sh\", \"-c\", \"yes 'a line of agent output, 48 bytes long.........'\"]\n");
    }
    s
}

async fn status_round_trips(c: &mut Client, n: usize) -> (f64, f64) {
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let s = c.status().await.expect("status");
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(!s.agents.is_empty());
    }
    (percentile(&mut lat, 0.5), percentile(&mut lat, 0.99))
}

/// Mutating requests: each answer waits for its state.db commit (scale)
/// and for its audit record on disk (both).
async fn mutation_round_trips(c: &mut Client, n: usize) -> ((f64, f64), (f64, f64)) {
    let mut scale = Vec::with_capacity(n);
    let mut ack = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let _ = c
            .request(Request::Scale {
                agent: "a0".into(),
                replicas: 1 + (i % 2) as u32,
            })
            .await
            .expect("scale");
        scale.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        // Refused (nothing matches) but recorded: the audit wait alone.
        let _ = c
            .request(Request::Ack {
                pattern: format!("nothing-{i}"),
            })
            .await;
        ack.push(t.elapsed().as_secs_f64() * 1e3);
    }
    (
        (percentile(&mut scale, 0.5), percentile(&mut scale, 0.99)),
        (percentile(&mut ack, 0.5), percentile(&mut ack, 0.99)),
    )
}

/// CPU seconds (user + system) the process has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / rustix::param::clock_ticks_per_second() as f64
}

/// 1,000 agents crash-looping (exit 3, backoff 100 ms doubling to 2 s):
/// the daemon's CPU and the restarts it handled, over 30 s after 10 s.
fn crash_storm(rt: &tokio::runtime::Runtime) {
    let mut toml = String::from("[metrics]\ninterval = \"1s\"\n[pool]\nmax_agents = 10000\n");
    for i in 0..1000 {
        toml.push_str(&format!(
            "[agents.s{i}]\ncommand = [\"sh\", \"-c\", \"exit 3\"]\nbackoff = {{ initial = \"100ms\", max = \"2s\", multiplier = 2.0, jitter = 0.1 }}\nstart_limit = {{ burst = 1000, interval = \"10s\" }}\nresources = {{ cpu = 0, memory = 0 }}\n"
        ));
    }
    let d = start(&toml);
    rt.block_on(async {
        let mut c = connect(&d).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        let restarts = |s: &autonomos::proto::FleetStatus| -> u64 {
            s.agents.iter().flat_map(|a| &a.replicas).map(|r| r.restarts).sum()
        };
        let r0 = c.status().await.map_or(0, |s| restarts(&s));
        let (cpu0, t0) = (cpu_seconds(d.child.id()), Instant::now());
        let mut lat = Vec::new();
        let mut failed = 0;
        while t0.elapsed() < Duration::from_secs(30) {
            let t = Instant::now();
            match c.status().await {
                Ok(s) => {
                    lat.push(t.elapsed().as_secs_f64() * 1e3);
                    assert!(!s.agents.is_empty());
                }
                Err(_) => failed += 1,
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        lat.push(0.0);
        let cpu = (cpu_seconds(d.child.id()) - cpu0) / t0.elapsed().as_secs_f64() * 100.0;
        let r1 = c.status().await.map_or(r0, |s| restarts(&s));
        let rate = (r1 - r0) as f64 / t0.elapsed().as_secs_f64();
        let (p50, p99) = (percentile(&mut lat, 0.5), percentile(&mut lat, 0.99));
        println!("| daemon CPU during a crash storm: 1,000 agents exiting 3, backoff 100 ms → 2 s (30 s after 10 s) | {cpu:.1} % of a core, {rate:.0} restarts/s; `status` p50 {p50:.1} ms, p99 {p99:.1} ms, {failed} failed | status never fails |");
    });
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("| what | measured | bar |\n| --- | --- | --- |");
    if std::env::var("AUTONOMOS_BENCH_ONLY_STORM").is_ok() {
        crash_storm(&rt);
        return;
    }
    for flood in [false, true] {
        let d = start(&fleet(500, flood));
        rt.block_on(async {
            let mut c = connect(&d).await;
            // Wait for the fleet to be up, then let it settle.
            loop {
                let s = c.status().await.expect("status");
                if s.agents.iter().all(|a| a.running == a.desired) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            let (p50, p99) = status_round_trips(&mut c, 300).await;
            if !flood {
                let ((s50, s99), (a50, a99)) = mutation_round_trips(&mut c, 300).await;
                println!("| `scale` round trip, 500 agents (state.db commit, then its audit record on disk) (300 requests) | p50 {s50:.2} ms, p99 {s99:.2} ms | |");
                println!("| refused `alerts ack` round trip (its audit record on disk before the answer) (300 requests) | p50 {a50:.2} ms, p99 {a99:.2} ms | |");
            }
            let what = if flood { "while one agent floods stdout at full speed" } else { "idle" };
            println!("| `status` round trip over the socket, 500 agents, {what} (300 requests) | p50 {p50:.2} ms, p99 {p99:.2} ms | p99 ≤ 50 ms under the flood |");
            if flood {
                let s = c.status().await.expect("status");
                let lines = s.agents.iter().find(|a| a.name == "flood").map(|a| a.log_lines).unwrap_or(0);
                println!("| (the flood meanwhile) | {:.1} M lines ingested since start | |", lines as f64 / 1e6);
            } else {
                // Snapshot size and encode time.
                let s = c.status().await.expect("status");
                let mut times = Vec::new();
                let mut size = 0;
                for _ in 0..50 {
                    let t = Instant::now();
                    let msg = ServerMsg::Snapshot { seq: 1, status: Box::new(s.clone()) };
                    let bytes = serde_json::to_vec(&msg).expect("encode");
                    times.push(t.elapsed().as_secs_f64() * 1e3);
                    size = bytes.len();
                }
                let enc = percentile(&mut times, 0.5);
                println!("| snapshot of 500 agents (with 4-6 transitions each) | {:.0} KiB, encoded in {enc:.2} ms (median of 50) | frame cap 4 MiB |", size as f64 / 1024.0);
            }
        });
        drop(d);
    }
    // Events a subscriber absorbs: a crash-looping fleet makes transitions.
    let mut toml = String::new();
    for i in 0..20 {
        toml.push_str(&format!(
            "[agents.loop{i}]\ncommand = [\"true\"]\nmin_uptime = \"0ms\"\nbackoff = {{ initial = \"0ms\", max = \"0ms\", jitter = 0 }}\nstart_limit = {{ burst = 10000, interval = \"1s\" }}\n"
        ));
    }
    let d = start(&toml);
    rt.block_on(async {
        let mut c = connect(&d).await;
        c.subscribe().await.expect("subscribe");
        let t = Instant::now();
        let mut events = 0u64;
        let mut resyncs = 0;
        while t.elapsed() < Duration::from_secs(10) {
            match c.next_event().await.expect("event") {
                Update::Event(..) => events += 1,
                Update::Snapshot(..) => resyncs += 1,
            }
        }
        let rate = events as f64 / t.elapsed().as_secs_f64();
        println!("| events a subscribed client absorbs (20 agents crash-looping with no delay, 10 s) | {rate:.0} events/s, {resyncs} resyncs | all the fleet produces |");
        let _ = c.request(Request::Shutdown).await;
    });
    drop(d);
    if std::env::var("AUTONOMOS_BENCH_SKIP_STORM").is_err() {
        crash_storm(&rt);
    }
}
