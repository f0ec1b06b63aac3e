//! Liveness probes on the real daemon: a replica that stops answering
//! while its process lives is restarted; a probe that hangs (and forks) is
//! killed as a group; a healthy replica is left alone.
//! The http test needs python3 (Debian package python3).

mod common;

use std::time::{Duration, Instant};

use common::*;

fn restarts(d: &BinDaemon) -> u64 {
    d.status().agents[0]
        .replicas
        .first()
        .map_or(0, |r| r.restarts)
}

#[test]
fn a_replica_whose_exec_probe_fails_is_restarted_within_interval_times_threshold() {
    // Healthy for 2 s (the file exists), then "hung": alive but failing.
    let d = BinDaemon::start(
        r#"
[agents.hang]
command = ["sh", "-c", "touch ok; sleep 2; rm ok; exec sleep 1000"]
health = { interval = "300ms", timeout = "500ms", failure_threshold = 3, start_period = "300ms", liveness = { exec = ["test", "-f", "ok"] } }
"#,
    );
    d.wait_status("running", Duration::from_secs(10), |s| {
        s.agents[0].running == 1
    });
    let t = Instant::now();
    d.wait_status("restarted", Duration::from_secs(15), |s| {
        s.agents[0]
            .replicas
            .first()
            .is_some_and(|r| r.restarts >= 1)
    });
    // 2 s healthy, then 3 failures 300 ms apart (+ the timeout, + slack).
    let took = t.elapsed();
    assert!(took < Duration::from_secs(8), "restarted after {took:?}");
    let (_, out, _) = d.cli(&["status", "-r", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let history = v["agents"][0]["replicas"][0]["history"].to_string();
    assert!(history.contains("liveness probe failed 3/3"), "{history}");
    let failures = v["agents"][0]["replicas"][0]["failures"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        failures >= 1,
        "a liveness restart counts as a failure: {v:#}"
    );
}

#[test]
fn a_hanging_probe_is_killed_with_what_it_started() {
    let d = BinDaemon::start(
        r#"
[agents.quiet]
command = ["sleep", "1000"]
health = { interval = "1s", timeout = "300ms", failure_threshold = 100, start_period = "100ms", liveness = { exec = ["sh", "-c", "sleep 4321 & sleep 4321"] } }
"#,
    );
    d.wait_status("running", Duration::from_secs(10), |s| {
        s.agents[0].running == 1
    });
    std::thread::sleep(Duration::from_millis(2500));
    // Each overrun probe's group was killed: at most the running probe's
    // two sleeps live (its shell is not counted: `^sleep`).
    let out = std::process::Command::new("pgrep")
        .args(["-f", "^sleep 4321"])
        .output()
        .expect("pgrep");
    let n = String::from_utf8_lossy(&out.stdout).lines().count();
    assert!(n <= 2, "{n} probe processes left behind");
    let (_, out, _) = d.cli(&["status", "-r", "--json"]);
    assert!(out.contains("liveness probe failing"), "{out}");
    assert!(out.contains("\"health\": \"failing "), "{out}");
    let (_, text, _) = d.cli(&["status", "-r"]);
    assert!(text.contains("health: failing"), "{text}");
}

#[test]
fn a_healthy_http_probe_leaves_the_replica_alone_and_a_dead_port_restarts_it() {
    if !have_tool("python3", "python3") {
        return;
    }
    let port = free_port();
    let dead = free_port();
    let d = BinDaemon::start(&format!(
        r#"
[agents.web]
command = ["python3", "-m", "http.server", "--bind", "127.0.0.1", "{port}"]
health = {{ interval = "300ms", timeout = "1s", failure_threshold = 2, start_period = "1s", liveness = {{ http = "http://127.0.0.1:{port}/" }} }}

[agents.gone]
command = ["sleep", "1000"]
health = {{ interval = "300ms", timeout = "300ms", failure_threshold = 2, start_period = "100ms", liveness = {{ tcp = {dead} }} }}
"#
    ));
    d.wait_status("gone restarted", Duration::from_secs(15), |s| {
        s.agents[1]
            .replicas
            .first()
            .is_some_and(|r| r.restarts >= 1)
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(restarts(&d), 0, "the healthy web server was left alone");
    let s = d.status();
    assert_eq!(s.agents[0].replicas[0].health.as_deref(), Some("healthy"));
}
