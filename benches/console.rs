//! Console benchmarks. Run: `cargo bench --bench console`.
//! 1. Frame draw time at 120×40 with 500 agents (TestBackend: the layout,
//!    widgets and diff, without a terminal's own cost).
//! 2. Bytes written to a real terminal (tmux) per idle minute: a daemon with
//!    500 sleeping agents and sampling set to once an hour, so nothing
//!    changes; measured as the difference between a console that detaches
//!    at once and one that idles 60 s first.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use autonomos::core::lifecycle::{State, Transition};
use autonomos::proto::{AgentStatus, FleetStatus, HostStatus, ReplicaStatus};
use autonomos::tui::model::{Conn, Model, push};
use autonomos::tui::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn fleet(n: usize, now: u64) -> FleetStatus {
    let agents = (0..n)
        .map(|i| AgentStatus {
            name: format!("agent-{i:03}"),
            desired: 1,
            running: 1,
            enabled: true,
            command: vec!["sleep".into(), "100000".into()],
            context_dir: format!("/data/agents/agent-{i:03}/context"),
            replicas_omitted: 0,
            replicas: vec![ReplicaStatus {
                index: 0,
                state: State::ActiveOperation,
                since: now - 60_000,
                pid: Some(1000 + i as i32),
                started_at: Some(now - 60_000),
                restarts: (i % 7) as u64,
                failures: (i % 7) as u64,
                last_exit: None,
                waiting: None,
                error: None,
                cpu_percent: (i % 13) as f64,
                rss_bytes: (i as u64 % 50) << 20,
                processes: 1,
                cpu_seconds: 1.0,
                history: (0..16)
                    .map(|k| Transition {
                        at: now - 60_000 + k,
                        from: State::ActiveOperation,
                        to: State::PerformanceMonitoring,
                        reason: "memory at 91% of its limit".into(),
                    })
                    .collect(),
                health: None,
                ready: None,
                attention: None,
            }],
            log_lines: 0,
            log_dropped: 0,
            env: vec![("MODEL".into(), "m".into())],
            restart: "always".into(),
            cpu_request: 0.0,
            memory_request: 0,
            memory_limit: None,
            memory_limit_action: "restart".into(),
            tasks: None,
            autoscale: None,
            tty: None,
            workspace: None,
        })
        .collect();
    FleetStatus {
        daemon_pid: 1,
        started_at: now - 3_600_000,
        now,
        data_dir: "/data".into(),
        config: None,
        agents,
        agents_omitted: 0,
        host: HostStatus {
            cpu_percent: 12.0,
            per_core: vec![10.0, 14.0],
            memory_used: 4 << 30,
            memory_total: 16 << 30,
            net_rx_bps: 200_000.0,
            net_tx_bps: 50_000.0,
            ..HostStatus::default()
        },
        pool_used: (0.0, 0, 500),
        alerts: vec![],
        alerts_omitted: 0,
        incidents_omitted: 0,
        incidents: vec![],
        notifiers: vec![],
        audit: vec![],
        backup_running: false,
        backup_progress: None,
        tick_seconds: 0.0,
        storage: Vec::new(),
        shared_queue: None,
        history: None,
    }
}

fn draw_time() {
    let now = 1_795_000_000_000u64;
    let mut m = Model::new(now);
    m.status = Some(fleet(500, now));
    m.conn = Conn::Attached {
        host: "box".into(),
        pid: 1,
        version: "x".into(),
    };
    for i in 0..300u64 {
        push(&mut m.host_cpu, now - (300 - i) * 1000, (i % 100) as f64);
        push(&mut m.host_mem, now - (300 - i) * 1000, 30.0);
        push(
            m.agent_cpu.entry("agent-000".into()).or_default(),
            now - (300 - i) * 1000,
            5.0,
        );
        push(
            m.agent_mem.entry("agent-000".into()).or_default(),
            now - (300 - i) * 1000,
            1e7,
        );
    }
    m.cores = vec![m.host_cpu.clone(), m.host_cpu.clone()];
    let theme = Theme::default_dark(false);
    let keymap = autonomos::tui::action::keymap();
    let mut term = Terminal::new(TestBackend::new(120, 40)).expect("terminal");
    let mut times = Vec::new();
    for i in 0..500 {
        m.selected = i % 40;
        let t = Instant::now();
        term.draw(|f| autonomos::tui::view::view(&m, &theme, &keymap, f))
            .expect("draw");
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    println!(
        "| console frame at 120×40 with 500 agents (view + diff, 500 frames) | p50 {:.2} ms, p99 {:.2} ms | ≤ 2 ms |",
        times[times.len() / 2],
        times[times.len() * 99 / 100]
    );
}

fn idle_bytes() {
    if Command::new("tmux").arg("-V").output().is_err() {
        println!("| bytes per idle minute | SKIPPED: tmux not installed | 0 |");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut toml = String::new();
    for i in 0..500 {
        toml.push_str(&format!(
            "[agents.a{i}]\ncommand = [\"sleep\", \"100000\"]\n"
        ));
    }
    std::fs::write(dir.path().join("a.toml"), toml).expect("config");
    let bin = env!("CARGO_BIN_EXE_autonomos");
    let env = |c: &mut Command| {
        c.env("XDG_RUNTIME_DIR", dir.path().join("rt"))
            .env("AUTONOMOS_DATA_DIR", dir.path().join("data"))
            .env("AUTONOMOS_CONFIG", dir.path().join("a.toml"));
    };
    let mut daemon = Command::new(bin);
    env(&mut daemon);
    let mut daemon = daemon
        .args(["daemon", "--sample-every", "1h"])
        .stderr(Stdio::null())
        .spawn()
        .expect("daemon");
    std::thread::sleep(Duration::from_secs(3));
    let stats = dir.path().join("stats.json");
    let sock = "autonomos-bench-idle".to_string();
    let cmd = format!(
        "env XDG_RUNTIME_DIR={} AUTONOMOS_DATA_DIR={} AUTONOMOS_CONSOLE_STATS={} {bin} attach; sleep 60",
        dir.path().join("rt").display(),
        dir.path().join("data").display(),
        stats.display()
    );
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .arg("-L")
            .arg(&sock)
            .args(args)
            .output()
            .expect("tmux");
    };
    let read = || -> (u64, u64) {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&stats).unwrap_or_default())
                .unwrap_or_default();
        (
            v["bytes"].as_u64().unwrap_or(0),
            v["frames"].as_u64().unwrap_or(0),
        )
    };
    tmux(&[
        "new-session",
        "-d",
        "-s",
        "b",
        "-x",
        "120",
        "-y",
        "40",
        &cmd,
    ]);
    // Settle: first frames, first log polls, the connect notice aged out.
    std::thread::sleep(Duration::from_secs(12));
    let (b0, f0) = read();
    std::thread::sleep(Duration::from_secs(60));
    let (b1, f1) = read();
    tmux(&["send-keys", "-t", "b", "q"]);
    std::thread::sleep(Duration::from_millis(500));
    tmux(&["kill-server"]);
    // SIGTERM: the daemon decommissions its 500 agents before exiting.
    if let Some(p) = rustix::process::Pid::from_raw(daemon.id() as i32) {
        let _ = rustix::process::kill_process(p, rustix::process::Signal::TERM);
    }
    let _ = daemon.wait();
    println!(
        "| bytes written to the terminal per idle minute (500 agents, nothing changing) | {} bytes, {} frames ({b0} bytes in the first 12 s) | 0 |",
        b1.saturating_sub(b0),
        f1.saturating_sub(f0)
    );
}

fn main() {
    println!("| what | measured | bar |\n| --- | --- | --- |");
    draw_time();
    idle_bytes();
}
