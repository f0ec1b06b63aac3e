//! The daemon runs in `SCHED_BATCH`, so that its wake-ups never preempt
//! an agent starting or exiting on the same CPU; its agents, piped or on a
//! terminal, run in the class the daemon was started in (`SCHED_OTHER`).
//! `AUTONOMOS_SCHEDULING=normal` keeps the daemon in `SCHED_OTHER`.

mod common;

use std::time::{Duration, Instant};

use common::{BinDaemon, running_pid, stat_field};

const OTHER: &str = "0";
const BATCH: &str = "3";

/// A thread's or process's scheduling policy (`/proc/.../stat` field 41).
fn policy(path: &str) -> Option<String> {
    let s = std::fs::read_to_string(path).ok()?;
    let (_, rest) = s.rsplit_once(')')?;
    rest.split_whitespace().nth(38).map(str::to_string)
}

/// The policy of every thread of `pid`, with its name.
fn thread_policies(pid: i32) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("task dir")
        .flatten()
    {
        let dir = e.path();
        let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if let Some(p) = policy(&dir.join("stat").display().to_string()) {
            out.push((name.trim().to_string(), p));
        }
    }
    out
}

const FLEET: &str = r#"
[agents.piped]
command = ["sleep", "60"]
inherit_env = ["PATH"]

[agents.term]
command = ["sleep", "61"]
tty = true
inherit_env = ["PATH"]
"#;

/// The policy of `agent`'s replica 0 once it runs `sleep` (a `tty`
/// replica execs `autonomos tty-exec` first).
fn agent_policy(d: &BinDaemon, agent: &str) -> String {
    let t = Instant::now();
    loop {
        let s = d.status();
        if let Some(pid) = running_pid(&s, agent, 0)
            && common::cmdline(pid).starts_with("sleep")
            && let Some(p) = stat_field(pid, 38)
        {
            return p;
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "{agent} never ran sleep: {s:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_daemon_runs_in_sched_batch_and_its_agents_in_sched_other() {
    let d = BinDaemon::start(FLEET);
    assert_eq!(agent_policy(&d, "piped"), OTHER, "a piped agent");
    assert_eq!(agent_policy(&d, "term"), OTHER, "a terminal agent");
    // Its agents run, so its threads are up (the spawner among them).
    let threads = thread_policies(d.pid());
    assert!(threads.len() > 3, "{threads:?}");
    // The spawner ("autonomos-spawn"; its receiving thread, "autonomos-
    // spawned", reads the same, cut to 15 bytes) keeps SCHED_OTHER: a
    // start of many goes at its pace.
    let other: Vec<_> = threads.iter().filter(|(_, p)| p != BATCH).collect();
    assert!(
        other.len() == 1 && other[0].0 == "autonomos-spawn" && other[0].1 == OTHER,
        "every daemon thread but the spawner in SCHED_BATCH: {threads:?}"
    );
}

#[test]
fn autonomos_scheduling_normal_keeps_the_daemon_in_sched_other() {
    let d = BinDaemon::start_with_env(FLEET, &[("AUTONOMOS_SCHEDULING", "normal")]);
    assert_eq!(agent_policy(&d, "piped"), OTHER);
    assert_eq!(agent_policy(&d, "term"), OTHER);
    let threads = thread_policies(d.pid());
    assert!(
        threads.iter().all(|(_, p)| p == OTHER),
        "every daemon thread in SCHED_OTHER: {threads:?}"
    );
}
