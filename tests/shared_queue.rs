//! Several daemons share one task queue in a real PostgreSQL server
//! (Debian package `postgresql`; the test starts its own throwaway cluster
//! on a private port). Shown: work submitted on one daemon runs on all of
//! them; a daemon killed with SIGKILL while it holds tasks loses none (they
//! finish elsewhere once its lease runs out); the database restarted under
//! load loses nothing acknowledged and the daemons reconnect on their own.
//! Needs python3 for the example agent.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::postgres::Postgres;
use common::*;
use serde_json::Value;

fn config(store: &str, host: &str, agent: &str) -> String {
    format!(
        r#"[tasks]
store = "{store}"
lease = "3s"
host = "{host}"

[agents.work]
{agent}
protocol = "jsonrpc"
replicas = 2
concurrency = 2
max_attempts = 5
max_queue = 100000
"#
    )
}

fn python_agent() -> String {
    let agent = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/task_agent.py");
    format!("command = [\"python3\", \"{agent}\"]")
}

fn echo_agent(record: &std::path::Path) -> String {
    let bin = env!("CARGO_BIN_EXE_autonomos");
    format!(
        "command = [\"{bin}\", \"demo-agent\", \"--role\", \"echo\"]\nenv = {{ ECHO_RECORD = \"{}\" }}",
        record.display()
    )
}

fn up(d: &BinDaemon) {
    d.wait_status("replicas up", Duration::from_secs(20), |s| {
        s.agents[0].running == 2
    });
}

fn list(d: &BinDaemon, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["task", "list", "-n", "100000"];
    args.extend_from_slice(extra);
    let v = d.json(&args);
    v.as_array().cloned().unwrap_or_default()
}

fn kill9(pid: i32) {
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).expect("pid"),
        rustix::process::Signal::KILL,
    )
    .expect("kill");
}

#[test]
fn three_daemons_share_a_queue_and_a_killed_one_s_tasks_finish_elsewhere() {
    if !have_tool("python3", "python3") {
        return;
    }
    let Some(pg) = Postgres::start() else { return };
    let url = pg.database();
    let a = BinDaemon::start(&config(&url, "a", &python_agent()));
    let b = BinDaemon::start(&config(&url, "b", &python_agent()));
    let mut c = BinDaemon::start(&config(&url, "c", &python_agent()));
    for d in [&a, &b, &c] {
        up(d);
    }
    // 40 tasks of 1.5 s, all submitted on a: 12 slots in all, so every
    // daemon works some at once.
    let batch = a.dir.path().join("batch.jsonl");
    let lines: Vec<String> = (0..40)
        .map(|i| format!("{{\"sleep\": 1.5, \"n\": {i}}}"))
        .collect();
    std::fs::write(&batch, lines.join("\n")).expect("write");
    let acked = a.json(&[
        "task",
        "submit",
        "work",
        "--batch",
        batch.to_str().expect("utf-8"),
    ]);
    assert_eq!(acked.as_array().map(Vec::len), Some(40), "{acked}");

    // c takes some; kill -9 it while it holds them.
    let t = Instant::now();
    let held_by_c = loop {
        let on_c: Vec<String> = list(&b, &["--state", "working"])
            .iter()
            .filter(|t| t["host"] == "c")
            .filter_map(|t| t["id"].as_str().map(str::to_string))
            .collect();
        if !on_c.is_empty() {
            break on_c;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "c never took a task");
        std::thread::sleep(Duration::from_millis(50));
    };
    kill9(c.pid());
    c.stop();

    // Every task completes, on a or b for those c held (after its lease).
    let t = Instant::now();
    let done = loop {
        let done = list(&a, &["--state", "completed"]);
        if done.len() == 40 {
            break done;
        }
        let all = list(&a, &[]);
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "{} of 40 completed: {all:#?}",
            done.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut hosts: BTreeMap<String, usize> = BTreeMap::new();
    for t in &done {
        *hosts
            .entry(t["host"].as_str().unwrap_or("-").into())
            .or_default() += 1;
    }
    assert!(
        hosts.get("a").is_some_and(|n| *n > 0) && hosts.get("b").is_some_and(|n| *n > 0),
        "work ran on a and b: {hosts:?}"
    );
    for id in &held_by_c {
        let t = a.json(&["task", "show", id]);
        assert_eq!(t["state"], "completed", "{t:#}");
        assert!(
            t["attempts"].as_u64() >= Some(2),
            "re-run after c died: {t:#}"
        );
        assert_ne!(t["host"], "c", "{t:#}");
    }
    // An idempotency key holds across daemons: b names a's task.
    let x = a.json(&["task", "submit", "work", "--input", "1", "--key", "once"]);
    let y = b.json(&["task", "submit", "work", "--input", "2", "--key", "once"]);
    assert_eq!(x[0]["id"], y[0]["id"], "{x} {y}");
    // Any daemon lists the whole shared queue, with the host in the table.
    assert_eq!(list(&b, &[]).len(), 41);
    let (code, out, err) = b.cli(&["task", "list", "-n", "5"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines().next().is_some_and(|h| h.contains("HOST")),
        "{out}"
    );
}

#[test]
fn the_database_restarted_under_load_loses_nothing_acknowledged() {
    let Some(mut pg) = Postgres::start() else {
        return;
    };
    let url = pg.database();
    let dir = tempfile::tempdir().expect("tempdir");
    let record = dir.path().join("answered.log");
    let a = BinDaemon::start(&config(&url, "a", &echo_agent(&record)));
    let b = BinDaemon::start(&config(&url, "b", &echo_agent(&record)));
    up(&a);
    up(&b);

    // Submit 150 tasks one by one, each with its own key, alternating
    // daemons; a refused submit is sent again with the same key (what a
    // client does), so a task is never queued twice.
    let mut refused = Vec::new();
    let mut acked: BTreeSet<String> = BTreeSet::new();
    let count = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        // The database goes down for a second while submits go on.
        s.spawn(|| {
            while count.load(std::sync::atomic::Ordering::Relaxed) < 40 {
                std::thread::sleep(Duration::from_millis(10));
            }
            pg.restart(Duration::from_secs(1));
        });
        for i in 0..150 {
            let d = if i % 2 == 0 { &a } else { &b };
            count.store(i, std::sync::atomic::Ordering::Relaxed);
            let key = format!("k{i}");
            let input = format!("{{\"n\": {i}}}");
            let t = Instant::now();
            loop {
                let (code, out, err) = d.cli(&[
                    "task", "submit", "work", "--input", &input, "--key", &key, "--json",
                ]);
                if code == 0 {
                    let v: Value = serde_json::from_str(&out).expect("json");
                    acked.insert(v[0]["id"].as_str().expect("id").to_string());
                    break;
                }
                refused.push(err);
                assert!(t.elapsed() < Duration::from_secs(30), "{refused:#?}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    });
    eprintln!(
        "{} submits refused while the database was down",
        refused.len()
    );
    assert_eq!(acked.len(), 150, "one task per key");
    let t = Instant::now();
    loop {
        let done = list(&a, &["--state", "completed"]);
        if done.len() == 150 {
            let ids: BTreeSet<String> = done
                .iter()
                .filter_map(|t| t["id"].as_str().map(str::to_string))
                .collect();
            assert_eq!(ids, acked);
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "{} of 150 completed",
            done.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // While the database was down, submits were refused in so many words.
    for e in &refused {
        assert!(
            (e.contains("none was queued") || e.contains("may or may not be stored"))
                && e.contains("shared task queue"),
            "{e}"
        );
    }
    // Both daemons still take new work (they reconnected).
    for d in [&a, &b] {
        let v = d.json(&["task", "submit", "work", "--input", "\"after\"", "--wait"]);
        assert_eq!(v["state"], "completed", "{v:#}");
    }
    // Each task ran once or more; none was lost.
    let ran: BTreeSet<String> = std::fs::read_to_string(&record)
        .expect("record")
        .lines()
        .filter_map(|l| l.split(' ').next().map(str::to_string))
        .collect();
    assert!(acked.is_subset(&ran));
}

#[test]
fn a_daemon_whose_database_is_away_refuses_submits_and_doctor_names_it() {
    // No server on this port: the daemon starts anyway and keeps trying.
    let url = format!("postgres://autonomos@127.0.0.1:{}/fleet", free_port());
    let bin = env!("CARGO_BIN_EXE_autonomos");
    let agent = format!("command = [\"{bin}\", \"demo-agent\", \"--role\", \"echo\"]");
    let d = BinDaemon::start(&config(&url, "lonely", &agent));
    up(&d);
    let (code, _, err) = d.cli(&["task", "submit", "work", "--input", "1"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("unreachable") && err.contains("none was queued") && err.contains("/fleet"),
        "{err}"
    );
    let (code, out, _) = d.cli(&["doctor", "--json"]);
    assert_eq!(code, 1, "{out}");
    let v: Value = serde_json::from_str(&out).expect("json");
    let checks = v.as_array().cloned().unwrap_or_default();
    let q = checks
        .iter()
        .find(|c| c["name"] == "shared queue")
        .unwrap_or_else(|| panic!("no shared queue check: {v:#}"));
    assert_eq!(q["level"], "problem", "{q:#}");
    assert!(
        q["detail"]
            .as_str()
            .is_some_and(|s| s.contains("unreachable")),
        "{q:#}"
    );
}

#[test]
fn results_finished_while_the_database_is_down_are_written_when_it_returns() {
    if !have_tool("python3", "python3") {
        return;
    }
    let Some(mut pg) = Postgres::start() else {
        return;
    };
    let url = pg.database();
    let d = BinDaemon::start(
        &config(&url, "a", &python_agent()).replace("lease = \"3s\"", "lease = \"20s\""),
    );
    up(&d);
    let batch = d.dir.path().join("batch.jsonl");
    let lines: Vec<String> = (0..4)
        .map(|i| format!("{{\"sleep\": 2, \"n\": {i}}}"))
        .collect();
    std::fs::write(&batch, lines.join("\n")).expect("write");
    let acked = d.json(&[
        "task",
        "submit",
        "work",
        "--batch",
        batch.to_str().expect("utf-8"),
    ]);
    let ids: Vec<String> = acked
        .as_array()
        .expect("ids")
        .iter()
        .filter_map(|t| t["id"].as_str().map(str::to_string))
        .collect();
    let t = Instant::now();
    while list(&d, &["--state", "working"]).len() < 4 {
        assert!(t.elapsed() < Duration::from_secs(20), "not all working");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The tasks end while the database is away: their results wait in the
    // daemon and are written once it is back.
    pg.restart(Duration::from_secs(4));
    let t = Instant::now();
    loop {
        let done: Vec<Value> = ids.iter().map(|id| d.json(&["task", "show", id])).collect();
        if done.iter().all(|t| t["state"] == "completed") {
            for t in &done {
                assert_eq!(t["attempts"], 1, "not run again: {t:#}");
            }
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "{done:#?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_cancel_on_another_daemon_stops_the_task_and_odd_results_are_stored() {
    if !have_tool("python3", "python3") {
        return;
    }
    let Some(pg) = Postgres::start() else { return };
    let url = pg.database();
    let a = BinDaemon::start(&config(&url, "a", &python_agent()));
    let b = BinDaemon::start(
        &config(&url, "b", &python_agent()).replace("replicas = 2", "replicas = 0"),
    );
    up(&a);
    // Submitted on b, which runs nothing: a runs it.
    let v = b.json(&["task", "submit", "work", "--input", r#"{"sleep": 8}"#]);
    let id = v[0]["id"].as_str().expect("id").to_string();
    let t = Instant::now();
    while b.json(&["task", "show", &id])["state"] != "working" {
        assert!(t.elapsed() < Duration::from_secs(20), "never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, out, err) = b.cli(&["task", "cancel", &id, "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("cancel requested"), "{out}");
    let t = Instant::now();
    loop {
        let s = b.json(&["task", "show", &id]);
        if s["state"] == "canceled" {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "a did not stop it: {s:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // NUL (which PostgreSQL's jsonb refuses) in an input and its result is
    // stored and read back as given.
    let v = a.json(&[
        "task",
        "submit",
        "work",
        "--input",
        r#"{"text": "a\u0000b"}"#,
        "--wait",
    ]);
    assert_eq!(v["state"], "completed", "{v:#}");
    let id = v["id"].as_str().expect("id");
    let shown = a.json(&["task", "show", id]);
    assert_eq!(shown["input"]["text"], "a\u{0}b", "{shown:#}");
    assert_eq!(shown["result"]["echo"]["text"], "a\u{0}b", "{shown:#}");
}
