//! Supervisor benchmarks (DESIGN.md §7). Run: `cargo bench --bench supervisor -- [respawn|start|idle|ingest|all]`.
//!
//! Each prints one Markdown table row for docs/benchmarks.md. They drive an
//! in-process daemon (respawn, start, ingest: the same supervisor code as
//! the binary) or the real `autonomos daemon` binary (idle CPU and RSS).

mod common;

use common::{proc_ticks, rss_kib};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use autonomos::config::{self, HostFacts};
use autonomos::daemon::{Daemon, DaemonOptions};

fn host() -> HostFacts {
    HostFacts {
        cpus: 64.0,
        memory: 64 << 30,
    }
}

fn start_daemon(dir: &Path, toml: &str) -> Daemon {
    let path = dir.join("autonomos.toml");
    std::fs::write(&path, toml).expect("write config");
    let cfg = config::load_file(&path, &host()).unwrap_or_else(|e| panic!("{e}"));
    Daemon::start(DaemonOptions {
        config: cfg,
        data_dir: dir.join("data"),
        sample_every: Duration::from_secs(1),
    })
    .expect("daemon")
}

fn mono_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// A C child that stamps CLOCK_MONOTONIC as its first act, then waits.
fn stamper(dir: &Path) -> PathBuf {
    let src = dir.join("stamp.c");
    std::fs::write(
        &src,
        r#"#include <time.h>
#include <stdio.h>
#include <fcntl.h>
#include <unistd.h>
int main(int argc, char **argv) {
  struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
  char buf[64]; int n = snprintf(buf, sizeof buf, "%lld %d\n", (long long)t.tv_sec * 1000000000LL + t.tv_nsec, getpid());
  int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0600); write(fd, buf, n); close(fd);
  for (;;) pause();
}
"#,
    )
    .expect("write stamp.c");
    let bin = dir.join("stamp");
    let ok = Command::new("cc")
        .args(["-O2", "-static", "-o"])
        .arg(&bin)
        .arg(&src)
        .status();
    if !ok.is_ok_and(|s| s.success()) {
        let ok = Command::new("cc")
            .args(["-O2", "-o"])
            .arg(&bin)
            .arg(&src)
            .status();
        assert!(
            ok.is_ok_and(|s| s.success()),
            "a C compiler (cc) is needed for this benchmark"
        );
    }
    bin
}

fn stamps(file: &Path) -> Vec<(u64, i32)> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.split(' ');
            Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
        })
        .collect()
}

fn respawn(rt: &tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = stamper(dir.path());
    let file = dir.path().join("stamps");
    let toml = format!(
        "[agents.victim]\ncommand = [{:?}, {:?}]\nmin_uptime = \"0ms\"\nbackoff = {{ initial = \"0ms\", max = \"0ms\", jitter = 0 }}\nstart_limit = {{ burst = 10000, interval = \"1s\" }}\n",
        bin.display().to_string(),
        file.display().to_string()
    );
    let n = 500;
    let mut lat = Vec::with_capacity(n);
    rt.block_on(async {
        let d = start_daemon(dir.path(), &toml);
        let mut seen = 0;
        while stamps(&file).is_empty() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        seen += 1;
        for _ in 0..n + 10 {
            let (_, pid) = stamps(&file)[seen - 1];
            // Let the stamp settle into pause().
            tokio::time::sleep(Duration::from_millis(5)).await;
            let t_kill = mono_ns();
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(pid).expect("pid"),
                rustix::process::Signal::KILL,
            );
            let t = Instant::now();
            loop {
                let s = stamps(&file);
                if s.len() > seen {
                    lat.push((s[seen].0.saturating_sub(t_kill)) as f64 / 1e6);
                    seen += 1;
                    break;
                }
                assert!(t.elapsed() < Duration::from_secs(5), "no respawn");
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        }
        d.shutdown().await;
    });
    let mut lat = lat.split_off(10); // warm-up
    let p50 = percentile(&mut lat, 0.5);
    let p99 = percentile(&mut lat, 0.99);
    let max = percentile(&mut lat, 1.0);
    println!(
        "| crash → respawn (kill -9 → child's first instruction), {} runs | p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms | p50 ≤ 2 ms, p99 ≤ 10 ms |",
        lat.len()
    );
}

fn fleet_toml(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!(
            "[agents.a{i}]\ncommand = [\"sleep\", \"100000\"]\n"
        ));
    }
    s
}

fn start500(rt: &tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = fleet_toml(500);
    let took = rt.block_on(async {
        let t = Instant::now();
        let d = start_daemon(dir.path(), &toml);
        let boot = t.elapsed();
        loop {
            let s = d.router.status().await.expect("status");
            if s.agents.iter().all(|a| a.running == 1) {
                break;
            }
            // A status of 500 agents costs the actor about a millisecond:
            // polling it faster would slow the very start being measured.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let took = t.elapsed();
        d.shutdown().await;
        (took, boot)
    });
    let (took, boot) = took;
    println!(
        "| start 500 agents until all are running (status polled every 20 ms) | {:.3} s (config check and daemon start: {:.0} ms) | ≤ 0.5 s |",
        took.as_secs_f64(),
        boot.as_secs_f64() * 1e3
    );
}

fn idle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("autonomos.toml");
    std::fs::write(&cfg, fleet_toml(500)).expect("config");
    let exe = env!("CARGO_BIN_EXE_autonomos");
    let mut child = Command::new(exe)
        .args(["daemon", "--sample-every", "1s", "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("daemon");
    // Settle: all started, first samples taken.
    std::thread::sleep(Duration::from_secs(5));
    let secs = 30;
    let t0 = proc_ticks(child.id());
    let i0 = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let t1 = proc_ticks(child.id());
    let wall = i0.elapsed().as_secs_f64();
    let hz = rustix::param::clock_ticks_per_second() as f64;
    let cpu = (t1 - t0) as f64 / hz / wall * 100.0;
    let rss = rss_kib(child.id()) as f64 / 1024.0;
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).expect("pid"),
        rustix::process::Signal::TERM,
    );
    let _ = child.wait();
    println!(
        "| daemon idle CPU, 500 sleeping agents sampled every 1 s, over {secs} s | {cpu:.2} % of one core | ≤ 1 % |"
    );
    println!("| daemon RSS, 500 agents | {rss:.1} MiB | ≤ 40 MiB |");
}

fn ingest(rt: &tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().expect("tempdir");
    let lines = 1_000_000u64;
    // 33 digits + newline = 34 bytes per line, numbered to check order.
    let source = dir.path().join("numbered.txt");
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("seq -f %033.0f 1 {lines} > {}", source.display()))
        .status()
        .expect("seq");
    assert!(ok.success());
    // The producer writes as fast as a pipe takes it.
    let producer = format!("cat {}", source.display());
    // Baseline: the same producer piped to a file by cat; median of 5.
    let plain = dir.path().join("plain.txt");
    let mut bases: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let ok = Command::new("sh")
                .arg("-c")
                .arg(format!("{producer} | cat > {}", plain.display()))
                .status()
                .expect("sh");
            assert!(ok.success());
            t.elapsed().as_secs_f64()
        })
        .collect();
    let base = percentile(&mut bases, 0.5);
    let toml = format!(
        "[agents.firehose]\ncommand = [\"sh\", \"-c\", {producer:?}]\nrestart = \"never\"\nreplicas = 0\n[logs]\nmax_size = \"1GiB\"\n"
    );
    let mut runs = Vec::new();
    for run in 0..5 {
        let _ = std::fs::remove_dir_all(dir.path().join("data"));
        let took = rt.block_on(async {
            let d = start_daemon(dir.path(), &toml);
            // Time from the scale request (the spawn) to the last line counted.
            let t = Instant::now();
            d.router
                .request(autonomos::proto::Request::Scale {
                    agent: "firehose".into(),
                    replicas: 1,
                })
                .await
                .expect("scale");
            loop {
                let s = d.router.status().await.expect("status");
                if s.agents[0].log_lines >= lines {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let took = t.elapsed().as_secs_f64();
            d.shutdown().await;
            took
        });
        let log = std::fs::read_to_string(dir.path().join("data/logs/firehose.log")).expect("log");
        let mut expect = 1u64;
        for l in log.lines() {
            let body = l.rsplit(' ').next().unwrap_or("");
            let n: u64 = body.parse().expect("numbered line");
            assert_eq!(n, expect, "line lost or reordered");
            expect += 1;
        }
        assert_eq!(expect - 1, lines, "lines lost (run {run})");
        runs.push(took);
    }
    let took = percentile(&mut runs, 0.5);
    let ours = lines as f64 / took / 1e6;
    let theirs = lines as f64 / base / 1e6;
    println!(
        "| stdout → log file, {lines} lines of 34 bytes, none lost or reordered (median of 5) | {ours:.2} M lines/s ({:.0} % of `cat numbered.txt | cat > file` at {theirs:.2} M lines/s in the same run) | ≥ 50 % |",
        ours / theirs * 100.0
    );
}

fn main() {
    let what = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_else(|| "all".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("| what | measured | bar |\n| --- | --- | --- |");
    if what == "respawn" || what == "all" {
        respawn(&rt);
    }
    if what == "start" || what == "all" {
        start500(&rt);
    }
    if what == "ingest" || what == "all" {
        ingest(&rt);
    }
    if what == "idle" || what == "all" {
        idle();
    }
}
