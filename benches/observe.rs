//! Observability benchmarks. Run: `cargo bench --bench observe -- [tick|scrape|rules|all]`.
//!
//! - tick: an in-process daemon with 500 sleeping agents, the default alert
//!   rules and the metrics endpoint on; for 30 ticks, the collector's own
//!   duration (the /proc walk of every tree plus the host figures) and the
//!   supervisor's tick (series, rule evaluation, the /metrics snapshot).
//! - scrape: `GET /metrics` of that daemon, 200 times, client-side round
//!   trip over loopback.
//! - rules: the pure engine, 50 rules over 500 agents with 15 minutes of
//!   1-second history each.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use autonomos::config::{self, HostFacts};
use autonomos::core::alert::expr::parse;
use autonomos::core::alert::{Engine, Metric, Rule, Severity, Source};
use autonomos::core::series::{Agg, Series};
use autonomos::daemon::{Daemon, DaemonOptions};

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn fleet(port: u16) -> String {
    let mut s =
        format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n\n[pool]\nmax_agents = 1000\n\n");
    for i in 0..500 {
        s.push_str(&format!(
            "[agents.a{i:03}]\ncommand = [\"sleep\", \"100000\"]\n\n"
        ));
    }
    s
}

fn start(dir: &Path, port: u16) -> Daemon {
    let path = dir.join("autonomos.toml");
    std::fs::write(&path, fleet(port)).expect("config");
    let host = HostFacts {
        cpus: 64.0,
        memory: 64 << 30,
    };
    let cfg = config::load_file(&path, &host).unwrap_or_else(|e| panic!("{e}"));
    Daemon::start(DaemonOptions {
        config: cfg,
        data_dir: dir.join("data"),
        sample_every: Duration::from_secs(1),
    })
    .expect("daemon")
}

fn get(addr: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

async fn all_running(d: &Daemon) {
    let t = Instant::now();
    loop {
        let s = d.router.status().await.expect("status");
        if s.agents.iter().all(|a| a.running == 1) {
            return;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "fleet never came up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn daemon_benches(which: &str) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    rt.block_on(async {
        let d = start(dir.path(), port);
        all_running(&d).await;
        // Settle: CPU figures need two samples.
        tokio::time::sleep(Duration::from_secs(3)).await;
        if which == "tick" || which == "all" {
            let (mut collect, mut tick) = (Vec::new(), Vec::new());
            for _ in 0..30 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let s = d.router.status().await.expect("status");
                collect.push(s.host.collect_seconds * 1000.0);
                tick.push(s.tick_seconds * 1000.0);
            }
            println!(
                "| collector tick, 500 agents (30 ticks) | p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms | ≤ 5 ms |",
                percentile(&mut collect, 0.5),
                percentile(&mut collect, 0.95),
                percentile(&mut collect, 1.0)
            );
            println!(
                "| supervisor tick: series + 5 default rules + /metrics snapshot, 500 agents | p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms | |",
                percentile(&mut tick, 0.5),
                percentile(&mut tick, 0.95),
                percentile(&mut tick, 1.0)
            );
        }
        if which == "scrape" || which == "all" {
            let addr = format!("127.0.0.1:{port}");
            let addr2 = addr.clone();
            let (times, size, series) = tokio::task::spawn_blocking(move || {
                let mut times = Vec::new();
                let mut body = String::new();
                for _ in 0..200 {
                    let t = Instant::now();
                    body = get(&addr2);
                    times.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                let series = body
                    .split("\r\n\r\n")
                    .nth(1)
                    .unwrap_or("")
                    .lines()
                    .filter(|l| !l.starts_with('#') && !l.is_empty())
                    .count();
                (times, body.len(), series)
            })
            .await
            .expect("scrapes");
            let mut times = times;
            println!(
                "| `/metrics` scrape, 500 agents ({series} series, {} KiB), 200 scrapes of {addr} | p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms | ≤ 20 ms |",
                size / 1024,
                percentile(&mut times, 0.5),
                percentile(&mut times, 0.95),
                percentile(&mut times, 1.0)
            );
        }
        d.shutdown().await;
    });
}

struct Fake {
    host: Vec<Series>,
    agents: HashMap<String, Vec<Series>>,
}

const AGENT_METRICS: [Metric; 4] = [
    Metric::Cpu,
    Metric::Memory,
    Metric::Restarts,
    Metric::Running,
];

impl Source for Fake {
    fn value(&self, agent: Option<&str>, m: Metric, agg: Agg, w: u64, now: u64) -> Option<f64> {
        let s = match m {
            Metric::HostCpu => &self.host[0],
            Metric::HostMemory => &self.host[1],
            _ => {
                let slot = AGENT_METRICS.iter().position(|x| *x == m)?;
                &self.agents.get(agent?)?[slot]
            }
        };
        if agg == Agg::Last {
            s.last()
        } else {
            s.aggregate(agg, now, w)
        }
    }
}

fn rules_bench() {
    let now = 900_000u64;
    let names: Vec<String> = (0..500).map(|i| format!("a{i:03}")).collect();
    let mut agents = HashMap::new();
    for (i, n) in names.iter().enumerate() {
        let mut v: Vec<Series> = (0..4).map(|_| Series::new(900_000, 1000)).collect();
        for t in 0..900u64 {
            v[0].push(t * 1000, ((t + i as u64) % 97) as f64);
            v[1].push(t * 1000, ((t * 7 + i as u64) % 1000) as f64 * 1e6);
            v[2].push(t * 1000, (t / 120) as f64);
            v[3].push(t * 1000, 1.0);
        }
        agents.insert(n.clone(), v);
    }
    let mut host = vec![Series::new(900_000, 1000), Series::new(900_000, 1000)];
    for t in 0..900u64 {
        host[0].push(t * 1000, (t % 100) as f64);
        host[1].push(t * 1000, 50.0);
    }
    let src = Fake { host, agents };
    let forms = [
        "increase(restarts, 10m) > 3",
        "avg(cpu, 1m) > 80",
        "max(memory, 5m) > 900MB",
        "running < 1",
        "cpu > 95 and memory > 500MB",
        "rate(restarts, 5m) > 0.1 or avg(cpu, 15m) > 90",
        "host.cpu > 90",
        "min(cpu, 30s) > 50",
        "not (running >= 1)",
        "avg(host.memory, 5m) > 90 and cpu > 10",
    ];
    let rules: Vec<Rule> = (0..50)
        .map(|i| {
            let src = forms[i % forms.len()];
            Rule {
                name: format!("r{i}"),
                source: src.into(),
                expr: parse(src).expect("parses"),
                for_ms: 60_000,
                severity: Severity::Major,
                agents: vec![],
                summary: "{agent} {value}".into(),
            }
        })
        .collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut e = Engine::new(rules);
    // Warm up (creates the pending/firing instances).
    for k in 0..3 {
        e.evaluate(&src, &refs, now + k);
    }
    let mut times = Vec::new();
    for k in 0..50 {
        let t = Instant::now();
        e.evaluate(&src, &refs, now + 10 + k);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let live = e.alerts().count();
    println!(
        "| rule evaluation: 50 rules × 500 agents, 15 min of 1 s history ({live} live alerts), 50 rounds | p50 {:.2} ms, p95 {:.2} ms | |",
        percentile(&mut times, 0.5),
        percentile(&mut times, 0.95)
    );
}

fn main() {
    let which = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_else(|| "all".into());
    println!("| what | measured | bar |\n| --- | --- | --- |");
    if which == "rules" || which == "all" {
        rules_bench();
    }
    if which != "rules" {
        daemon_benches(&which);
    }
}
