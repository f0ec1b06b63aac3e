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

/// The `index`-th replica of the first agent, from `status -r --json`.
fn replica_json(d: &BinDaemon, agent: usize, index: usize) -> serde_json::Value {
    let (_, out, _) = d.cli(&["status", "-r", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    v["agents"][agent]["replicas"][index].clone()
}

#[test]
fn readiness_keeps_tasks_from_an_unready_replica_until_it_passes() {
    if !have_tool("python3", "python3") {
        return;
    }
    let agent = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/task_agent.py");
    let port = free_port();
    let d = BinDaemon::start(&format!(
        r#"
[metrics]
listen = "127.0.0.1:{port}"
interval = "200ms"

[agents.echo]
command = ["python3", "{agent}"]
protocol = "jsonrpc"
replicas = 2
concurrency = 4
health = {{ interval = "200ms", timeout = "1s", failure_threshold = 2, start_period = "0s", readiness = {{ exec = ["sh", "-c", "test -f ready-$AUTONOMOS_REPLICA"] }} }}
"#
    ));
    let ctx = std::path::PathBuf::from(d.status().agents[0].context_dir.clone());
    std::fs::create_dir_all(&ctx).expect("ctx");
    std::fs::write(ctx.join("ready-0"), "").expect("ready-0");
    d.wait_status("0 ready, 1 unready", Duration::from_secs(15), |s| {
        let r = &s.agents[0].replicas;
        r.len() == 2 && r[0].ready == Some(true) && r[1].health.as_deref() == Some("unready")
    });
    let s = d.status();
    assert_eq!(s.agents[0].running, 2, "an unready replica still runs");
    let r1 = replica_json(&d, 0, 1);
    assert_eq!(r1["state"], "PerformanceMonitoring", "{r1:#}");
    assert!(
        r1["history"]
            .to_string()
            .contains("readiness probe failing"),
        "{r1:#}"
    );
    // Every task goes to the ready replica.
    let replicas_of = |n: usize| -> Vec<u64> {
        let ids: Vec<String> = (0..n)
            .map(|i| {
                let input = format!("{{\"sleep\": 0.2, \"n\": {i}}}");
                d.json(&["task", "submit", "echo", "--input", &input])[0]["id"]
                    .as_str()
                    .expect("id")
                    .to_string()
            })
            .collect();
        ids.iter()
            .map(|id| {
                let t = Instant::now();
                loop {
                    let v = d.json(&["task", "show", id]);
                    if v["state"] == "completed" {
                        return v["result"]["replica"].as_u64().expect("replica");
                    }
                    assert!(t.elapsed() < Duration::from_secs(20), "{v:#}");
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
            .collect()
    };
    let on = replicas_of(12);
    assert!(on.iter().all(|&r| r == 0), "tasks went to {on:?}");
    // Ready now: it takes work; replica 0 unready: none goes there.
    std::fs::write(ctx.join("ready-1"), "").expect("ready-1");
    std::fs::remove_file(ctx.join("ready-0")).expect("rm ready-0");
    d.wait_status("1 ready, 0 unready", Duration::from_secs(15), |s| {
        let r = &s.agents[0].replicas;
        r[1].ready == Some(true) && r[0].ready == Some(false)
    });
    let r1 = replica_json(&d, 0, 1);
    assert_eq!(r1["state"], "ActiveOperation", "{r1:#}");
    let on = replicas_of(12);
    assert!(on.iter().all(|&r| r == 1), "tasks went to {on:?}");
    let t = Instant::now();
    loop {
        let (_, body) = http_get(&format!("127.0.0.1:{port}"), "/metrics").expect("scrape");
        if body.contains("autonomos_replica_ready{agent=\"echo\",replica=\"0\"} 0")
            && body.contains("autonomos_replica_ready{agent=\"echo\",replica=\"1\"} 1")
        {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "{body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `db`, unready until a file `up` is in its context dir, and `app`
/// (running `app_command`) that depends on it; returns once `db` runs.
fn db_and_app(app_command: &str) -> BinDaemon {
    let d = BinDaemon::start(&format!(
        r#"
[agents.db]
command = ["sleep", "1000"]
min_uptime = "100ms"
health = {{ interval = "200ms", timeout = "1s", start_period = "0s", readiness = {{ exec = ["test", "-f", "up"] }} }}

[agents.app]
command = {app_command}
depends_on = ["db"]
"#
    ));
    d.wait_status("db runs", Duration::from_secs(10), |s| {
        s.agents[0].running == 1 && s.agents[0].replicas[0].health.as_deref() == Some("unready")
    });
    d
}

#[test]
fn depends_on_waits_for_the_dependency_s_readiness() {
    let d = db_and_app(r#"["sleep", "1000"]"#);
    std::thread::sleep(Duration::from_millis(1500));
    let s = d.status();
    assert_eq!(s.agents[1].running, 0, "app started before db was ready");
    let waiting = s.agents[1].replicas[0].waiting.clone().unwrap_or_default();
    assert!(waiting.contains("db"), "{waiting}");
    let ctx = std::path::PathBuf::from(s.agents[0].context_dir.clone());
    std::fs::write(ctx.join("up"), "").expect("up");
    d.wait_status("app runs", Duration::from_secs(10), |s| {
        s.agents[1].running == 1
    });
}

/// A waiting agent's context dir is made ahead of its spawn; removed by
/// hand before the spawn, it is made again, and the spawn counts no
/// failure.
#[test]
fn a_context_dir_made_ahead_and_removed_before_the_spawn_is_made_again() {
    let d = db_and_app(r#"["sh", "-c", "touch here && exec sleep 1000"]"#);
    let app = d.context_dir("app");
    let t = Instant::now();
    while !app.is_dir() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "app's context dir never made"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::remove_dir_all(&app).expect("remove app's context dir");
    let db = std::path::PathBuf::from(d.status().agents[0].context_dir.clone());
    std::fs::write(db.join("up"), "").expect("up");
    d.wait_status("app runs", Duration::from_secs(10), |s| {
        s.agents[1].running == 1
    });
    let s = d.status();
    let r = &s.agents[1].replicas[0];
    assert_eq!(
        (r.failures, r.restarts),
        (0, 0),
        "{:#?}",
        replica_json(&d, 1, 0)
    );
    let t = Instant::now();
    while !app.join("here").exists() {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "app did not run in its context dir"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_task_agent_that_stops_reading_is_caught_by_its_heartbeat_probe() {
    if !have_tool("python3", "python3") {
        return;
    }
    let agent = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/task_agent.py");
    let d = BinDaemon::start(&format!(
        r#"
[agents.echo]
command = ["python3", "{agent}"]
protocol = "jsonrpc"
max_attempts = 1
health = {{ interval = "300ms", timeout = "300ms", failure_threshold = 2, start_period = "0s", liveness = {{ heartbeat = "500ms" }} }}
"#
    ));
    d.wait_status("healthy", Duration::from_secs(10), |s| {
        s.agents[0].replicas[0].health.as_deref() == Some("healthy")
    });
    // Idle but answering pings: left alone.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(restarts(&d), 0, "{:#?}", replica_json(&d, 0, 0));
    let v = d.json(&["task", "submit", "echo", "--input", "{\"hang\": true}"]);
    assert!(v[0]["id"].is_string(), "{v:#}");
    let t = Instant::now();
    d.wait_status("restarted", Duration::from_secs(15), |s| {
        s.agents[0]
            .replicas
            .first()
            .is_some_and(|r| r.restarts >= 1)
    });
    // 500 ms heard + 2 × (300 ms interval + 300 ms timeout), and slack.
    let took = t.elapsed();
    assert!(took < Duration::from_secs(6), "restarted after {took:?}");
    let history = replica_json(&d, 0, 0)["history"].to_string();
    assert!(
        history.contains("liveness probe failed 2/2") && history.contains("heartbeat"),
        "{history}"
    );
}

#[test]
fn hung_http_and_tcp_servers_are_restarted() {
    if !have_tool("python3", "python3") {
        return;
    }
    let (web, tcp) = (free_port(), free_port());
    // Answers for 2 s, then its one thread blocks for good (connections
    // queue, nothing answers).
    let hang_http = format!(
        "import http.server,time,threading\n\
         t0=time.time()\n\
         class H(http.server.BaseHTTPRequestHandler):\n\
         \x20def do_GET(s):\n\
         \x20 if time.time()-t0>2: time.sleep(10**6)\n\
         \x20 s.send_response(200); s.end_headers()\n\
         http.server.HTTPServer(('127.0.0.1',{web}),H).serve_forever()\n"
    );
    // Listens for 2 s, then closes the port and lives on.
    let close_tcp = format!(
        "import socket,time\n\
         s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
         s.bind(('127.0.0.1',{tcp})); s.listen()\n\
         time.sleep(2); s.close(); time.sleep(10**6)\n"
    );
    let d = BinDaemon::start(&format!(
        r#"
[agents.web]
command = ["python3", "-c", {hang_http:?}]
health = {{ interval = "300ms", timeout = "300ms", failure_threshold = 2, start_period = "500ms", liveness = {{ http = "http://127.0.0.1:{web}/" }} }}

[agents.port]
command = ["python3", "-c", {close_tcp:?}]
health = {{ interval = "300ms", timeout = "300ms", failure_threshold = 2, start_period = "500ms", liveness = {{ tcp = {tcp} }} }}
"#
    ));
    d.wait_status("both healthy", Duration::from_secs(10), |s| {
        s.agents
            .iter()
            .all(|a| a.replicas[0].health.as_deref() == Some("healthy"))
    });
    let t = Instant::now();
    d.wait_status("both restarted", Duration::from_secs(15), |s| {
        s.agents.iter().all(|a| a.replicas[0].restarts >= 1)
    });
    // 2 s healthy, then 2 failures 300 ms apart (+ timeouts, + slack).
    let took = t.elapsed();
    assert!(took < Duration::from_secs(7), "restarted after {took:?}");
    for a in 0..2 {
        let h = replica_json(&d, a, 0)["history"].to_string();
        assert!(h.contains("liveness probe failed 2/2"), "{h}");
    }
}

#[test]
fn many_fast_exec_probes_never_lose_their_child_to_the_orphan_reaper() {
    // The daemon reaps orphans on SIGCHLD; a probe's child must be left to
    // the probe (else its wait fails with ECHILD and a healthy replica
    // looks sick). 20 replicas probed every 100 ms for 6 s: 1,200 probes.
    let mut cfg = String::new();
    for i in 0..20 {
        cfg.push_str(&format!(
            "[agents.p{i}]\ncommand = [\"sleep\", \"1000\"]\n\
             health = {{ interval = \"100ms\", failure_threshold = 100, start_period = \"0s\", liveness = {{ exec = [\"true\"] }} }}\n"
        ));
    }
    let d = BinDaemon::start(&cfg);
    d.wait_status("running", Duration::from_secs(15), |s| {
        s.agents.iter().all(|a| a.running == 1)
    });
    std::thread::sleep(Duration::from_secs(6));
    let (_, out, _) = d.cli(&["status", "-r", "--json"]);
    assert!(!out.contains("liveness probe failing"), "{out}");
    let s = d.status();
    for a in &s.agents {
        assert_eq!(a.replicas[0].health.as_deref(), Some("healthy"), "{a:#?}");
    }
}
