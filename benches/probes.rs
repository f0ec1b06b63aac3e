//! A probe storm: 500 replicas, each with a 1 s exec liveness probe
//! (`true`). Run: `cargo bench --bench probes` (about a minute).
//! Prints the daemon's CPU over 20 s (its own, and its probes' as reaped
//! children), then `status` round trips over the socket (p50, p99).

mod common;

use std::time::{Duration, Instant};

use autonomos::proto::Request;
use common::{Daemon, cpu_seconds as cpu};

fn main() {
    let bin = env!("CARGO_BIN_EXE_autonomos");
    let mut cfg = String::new();
    for i in 0..500 {
        cfg.push_str(&format!(
            "[agents.p{i}]\ncommand = [\"sleep\", \"100000\"]\n\
             health = {{ interval = \"1s\", timeout = \"2s\", start_period = \"1s\", liveness = {{ exec = [\"true\"] }} }}\n"
        ));
    }
    let d = Daemon::start(bin, &cfg);
    let pid = d.child.id();
    std::thread::sleep(Duration::from_secs(15));
    let (t0, (own0, kids0)) = (Instant::now(), cpu(pid));
    std::thread::sleep(Duration::from_secs(20));
    let secs = t0.elapsed().as_secs_f64();
    let (own1, kids1) = cpu(pid);
    println!("| what | measured |");
    println!("| --- | --- |");
    println!(
        "| daemon CPU with 500 probed replicas (1 s exec probes), 20 s | {:.1} % of a core itself, {:.1} % in its probes |",
        (own1 - own0) / secs * 100.0,
        (kids1 - kids0) / secs * 100.0
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let mut c = d.connect().await;
        let mut lat = Vec::new();
        for _ in 0..200 {
            let t = Instant::now();
            c.request(Request::Status).await.expect("status");
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        lat.sort_by(f64::total_cmp);
        let q = |x: f64| lat[((lat.len() - 1) as f64 * x) as usize];
        println!(
            "| status round trip during the storm (200) | p50 {:.1} ms, p99 {:.1} ms |",
            q(0.5),
            q(0.99)
        );
    });
}
