//! A probe storm: 500 replicas, each with a 1 s exec liveness probe
//! (`true`). Run: `cargo bench --bench probes` (about a minute).
//! Prints the daemon's CPU over 20 s (its own, and its probes' as reaped
//! children), then `status` round trips over the socket (p50, p99).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use autonomos::client::Client;
use autonomos::proto::Request;

/// (own, children) CPU seconds of `pid`.
fn cpu(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = after
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // utime, stime, cutime, cstime: fields 14-17 (the state is skipped).
    let g = |i: usize| f.get(i).copied().unwrap_or(0.0) / 100.0;
    (g(10) + g(11), g(12) + g(13))
}

fn main() {
    let bin = env!("CARGO_BIN_EXE_autonomos");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = String::new();
    for i in 0..500 {
        cfg.push_str(&format!(
            "[agents.p{i}]\ncommand = [\"sleep\", \"100000\"]\n\
             health = {{ interval = \"1s\", timeout = \"2s\", start_period = \"1s\", liveness = {{ exec = [\"true\"] }} }}\n"
        ));
    }
    std::fs::write(dir.path().join("a.toml"), cfg).expect("config");
    let mut child = Command::new(bin)
        .env("XDG_RUNTIME_DIR", dir.path().join("rt"))
        .args(["daemon", "--config"])
        .arg(dir.path().join("a.toml"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("daemon");
    let pid = child.id();
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
        let (run, data) = (dir.path().join("rt/autonomos"), dir.path().join("data"));
        let mut c = Client::connect_local(&run, &data).await.expect("connect");
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
    if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(p, rustix::process::Signal::TERM);
    }
    let _ = child.wait();
}
