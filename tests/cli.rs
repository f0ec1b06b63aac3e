//! Every CLI verb against a real daemon binary, human and `--json`; reload;
//! durability of acknowledged changes across `kill -9`.

mod common;

use std::time::{Duration, Instant};

use autonomos::core::lifecycle::State;
use common::*;

const FLEET: &str = r#"
[agents.web]
command = ["sh", "-c", "while true; do echo hello from $AUTONOMOS_REPLICA; sleep 0.2; done"]
replicas = 2
stop_timeout = "2s"

[agents.worker]
command = ["sleep", "1000"]
"#;

const SECS: fn(u64) -> Duration = Duration::from_secs;

#[test]
fn every_verb_works_against_a_real_daemon_and_its_json_parses_back() {
    let mut d = BinDaemon::start(FLEET);
    let s = d.wait_status("fleet up", SECS(10), |s| {
        s.agents.iter().all(|a| a.running == a.desired)
    });
    assert_eq!(s.agents.len(), 2);
    assert_eq!(s.daemon_pid as i32, d.pid());

    // Human status: a header and one row per agent.
    let (code, out, _) = d.cli(&["status"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("AGENT"), "{out}");
    assert!(
        out.contains("web") && out.contains("2/2") && out.contains("active"),
        "{out}"
    );
    let (_, out, _) = d.cli(&["status", "--replicas"]);
    assert!(out.contains("web/1") && out.contains("pid "), "{out}");

    // scale
    let v = d.json(&["scale", "web", "3"]);
    assert_eq!(v["ok"], true);
    assert_eq!(v["message"], "scaled web from 2 to 3");
    d.wait_status("3 web", SECS(10), |s| s.agents[0].running == 3);

    // restart one replica, then the whole agent
    let before = d.status();
    let pid1 = running_pid(&before, "web", 1);
    let v = d.json(&["restart", "web/1"]);
    assert_eq!(v["ok"], true, "{v}");
    d.wait_status("web/1 replaced", SECS(10), |s| {
        running_pid(s, "web", 1).is_some() && running_pid(s, "web", 1) != pid1
    });
    let (code, out, _) = d.cli(&["restart", "worker"]);
    assert_eq!(code, 0);
    assert!(out.contains("restarting 1 replica(s) of worker"), "{out}");

    // stop / start
    let v = d.json(&["stop", "worker"]);
    assert_eq!(v["ok"], true);
    let s = d.wait_status("worker stopped", SECS(10), |s| {
        state_of(s, "worker", 0) == Some(State::Stopped)
    });
    assert!(!s.agents[1].enabled);
    let (_, out, _) = d.cli(&["status"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("worker") && l.contains("stopped")),
        "{out}"
    );
    let v = d.json(&["start", "worker"]);
    assert_eq!(v["ok"], true);
    d.wait_status("worker back", SECS(10), |s| s.agents[1].running == 1);

    // logs: human and JSON lines
    d.wait_status("some output", SECS(10), |s| s.agents[0].log_lines >= 8);
    let (code, out, _) = d.cli(&["logs", "web", "-n", "5"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 5, "{out}");
    // As in the log file: time, replica, stream, text.
    let file = std::fs::read_to_string(d.data_dir().join("logs/web.log")).expect("log file");
    for l in out.lines() {
        let parts: Vec<&str> = l.splitn(4, ' ').collect();
        assert!(
            parts.len() == 4
                && parts[0].ends_with('Z')
                && parts[0].contains('T')
                && ["0", "1", "2"].contains(&parts[1])
                && parts[2] == "out"
                && parts[3].starts_with("hello from"),
            "{out}"
        );
        assert!(file.contains(l), "the file has the same line: {l}");
    }
    let (_, out, _) = d.cli(&["logs", "web", "-n", "2", "--no-time"]);
    assert!(
        out.lines()
            .all(|l| l.contains(" out hello from") && !l.contains("Z ")),
        "{out}"
    );
    let (_, out, _) = d.cli(&["logs", "web", "-n", "3", "--json"]);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(
        lines
            .windows(2)
            .all(|w| w[0]["seq"].as_u64() < w[1]["seq"].as_u64())
    );
    assert_eq!(lines[0]["stream"], "stdout");

    // logs -f keeps printing new lines
    let mut follow = d
        .cmd()
        .args(["logs", "web", "-f", "-n", "1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("logs -f");
    std::thread::sleep(Duration::from_millis(1500));
    let _ = follow.kill();
    let out = follow.wait_with_output().expect("output");
    let n = String::from_utf8_lossy(&out.stdout).lines().count();
    assert!(n >= 4, "logs -f printed {n} lines in 1.5 s");

    // backup answers with the snapshot written
    let v = d.json(&["backup"]);
    assert_eq!(v["ok"], true, "{v}");
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("backup done")),
        "{v}"
    );

    // shutdown decommissions everything and the daemon exits 0
    let ctx = d.context_dir("web");
    let v = d.json(&["shutdown"]);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["message"], "fleet decommissioned");
    let status = d.stop();
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert!(marked(&ctx).is_empty());
}

#[test]
fn errors_are_clear_unknown_agent_bad_count_no_daemon() {
    let d = BinDaemon::start(FLEET);
    let (code, _, err) = d.cli(&["scale", "wbe", "1"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("unknown agent `wbe` (did you mean `web`?)"),
        "{err}"
    );
    let v = d.json(&["stop", "wroker"]);
    assert_eq!(v["kind"], "unknown_agent");
    // One clear error with the real range, for a negative count too.
    for n in ["-1", "100000"] {
        let (code, _, err) = d.cli(&["scale", "web", n]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains(&format!("{n} replicas is out of range: 0 to 1024")),
            "{err}"
        );
        assert!(
            !err.contains("4294967295") && !err.contains("-- -1"),
            "{err}"
        );
    }
    let (code, _, err) = d.cli(&["restart", "web/x"]);
    assert_eq!(code, 2);
    assert!(err.contains("AGENT/N"), "{err}");
    // No daemon for another data dir.
    let other = tempfile::tempdir().expect("tempdir");
    let out = d
        .cmd()
        .env("AUTONOMOS_DATA_DIR", other.path())
        .arg("status")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no Autonomos daemon is running") && err.contains("autonomos up"),
        "{err}"
    );
}

fn pids(s: &autonomos::proto::FleetStatus, agent: &str) -> Vec<i32> {
    s.agents
        .iter()
        .find(|a| a.name == agent)
        .map(|a| a.replicas.iter().filter_map(|r| r.pid).collect())
        .unwrap_or_default()
}

#[test]
fn reload_applies_only_the_difference_and_a_rejected_reload_changes_nothing() {
    let d = BinDaemon::start(
        r#"
[agents.keep]
command = ["sleep", "1000"]

[agents.change]
command = ["sleep", "1000"]
env = { VERSION = "1" }

[agents.remove]
command = ["sleep", "1000"]
"#,
    );
    let s = d.wait_status("up", SECS(10), |s| s.agents.iter().all(|a| a.running == 1));
    let (keep, change) = (pids(&s, "keep"), pids(&s, "change"));
    std::fs::write(
        d.dir.path().join("autonomos.toml"),
        r#"
[agents.keep]
command = ["sleep", "1000"]

[agents.change]
command = ["sleep", "1000"]
env = { VERSION = "2" }
replicas = 2

[agents.add]
command = ["sleep", "1000"]
"#,
    )
    .expect("rewrite config");
    let v = d.json(&["reload"]);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(
        v["message"],
        "reloaded: added add; removed remove; changed change; 1 unchanged"
    );
    let s = d.wait_status("diff applied", SECS(15), |s| {
        let names: Vec<&str> = s.agents.iter().map(|a| a.name.as_str()).collect();
        names == ["keep", "change", "add"]
            && s.agents.iter().all(|a| a.running == a.desired)
            && s.agents[1].running == 2
    });
    assert_eq!(pids(&s, "keep"), keep, "an unchanged agent is not touched");
    assert!(
        !pids(&s, "change").contains(&change[0]),
        "a changed agent restarted"
    );
    let env = std::fs::read(format!("/proc/{}/environ", pids(&s, "change")[0])).expect("environ");
    assert!(env.split(|&b| b == 0).any(|kv| kv == b"VERSION=2"));
    let t = Instant::now();
    while !marked(&d.context_dir("remove")).is_empty() {
        assert!(t.elapsed() < SECS(10), "removed agent still running");
        std::thread::sleep(Duration::from_millis(20));
    }

    // A change of the replica count alone is a scale: nothing restarts.
    std::fs::write(
        d.dir.path().join("autonomos.toml"),
        r#"
[agents.keep]
command = ["sleep", "1000"]
replicas = 2

[agents.change]
command = ["sleep", "1000"]
env = { VERSION = "2" }
replicas = 2

[agents.add]
command = ["sleep", "1000"]
"#,
    )
    .expect("rewrite config");
    let v = d.json(&["reload"]);
    assert_eq!(v["ok"], true, "{v}");
    let s = d.wait_status("keep at 2", SECS(15), |s| s.agents[0].running == 2);
    assert!(
        pids(&s, "keep").contains(&keep[0]),
        "the running replica of keep was not restarted"
    );

    // A bad config is rejected with locations, and nothing changes.
    let before = d.status();
    std::fs::write(
        d.dir.path().join("autonomos.toml"),
        "[agents.keep]\ncommand = [\"sleep\", \"1000\"]\nreplicas = -3\n",
    )
    .expect("rewrite config");
    let (code, _, err) = d.cli(&["reload"]);
    assert_eq!(code, 1);
    assert!(err.contains("reload rejected, nothing changed"), "{err}");
    assert!(err.contains("autonomos.toml:3:12"), "{err}");
    std::thread::sleep(Duration::from_millis(500));
    let after = d.status();
    for name in ["keep", "change", "add"] {
        assert_eq!(pids(&before, name), pids(&after, name), "{name} changed");
    }
}

#[test]
fn an_acknowledged_change_survives_kill_9_of_the_daemon_at_any_moment() {
    let mut d = BinDaemon::start("[agents.w]\ncommand = [\"sleep\", \"1000\"]\nreplicas = 0\n");
    for round in 0..4u64 {
        // Scale in a tight loop while the daemon is killed after a varying delay.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let acked = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(u32::MAX));
        let (stop2, acked2) = (stop.clone(), acked.clone());
        let mut cmd_env = d.cmd();
        let bin = cmd_env.get_program().to_owned();
        let envs: Vec<(std::ffi::OsString, std::ffi::OsString)> = cmd_env
            .get_envs()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned())))
            .collect();
        let _ = &mut cmd_env;
        let scaler = std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop2.load(std::sync::atomic::Ordering::SeqCst) {
                n = n % 5 + 1;
                let ok = std::process::Command::new(&bin)
                    .envs(envs.iter().map(|(k, v)| (k, v)))
                    .args(["scale", "w", &n.to_string()])
                    .output()
                    .map(|o| o.status.success())
                    .unwrap_or(false);
                if ok {
                    acked2.store(n, std::sync::atomic::Ordering::SeqCst);
                } else {
                    break;
                }
            }
            n
        });
        std::thread::sleep(Duration::from_millis(300 + 170 * round));
        let pid = rustix::process::Pid::from_raw(d.pid()).expect("pid");
        rustix::process::kill_process(pid, rustix::process::Signal::KILL).expect("kill -9");
        let mut child = d.child.take().expect("child");
        let _ = child.wait();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let in_flight = scaler.join().expect("scaler");
        let last_acked = acked.load(std::sync::atomic::Ordering::SeqCst);
        assert_ne!(
            last_acked,
            u32::MAX,
            "round {round}: no scale was acknowledged"
        );
        // The database opens and holds the last acknowledged value, or the
        // one in flight when the daemon died (committed, not yet answered).
        let loaded =
            autonomos::daemon::store::load(&d.data_dir().join("state.db")).expect("state.db opens");
        let desired = loaded.agents.get("w").map(|r| r.desired);
        assert!(
            desired == Some(last_acked) || desired == Some(in_flight),
            "round {round}: db has {desired:?}, last acknowledged {last_acked}, in flight {in_flight}"
        );
        // A new daemon stops the old one's orphans and brings the fleet back at that scale.
        d.spawn();
        let want = desired.unwrap_or(0);
        let s = d.wait_status("restored", SECS(15), |s| s.agents[0].running == want);
        assert_eq!(s.agents[0].desired, want);
        let t = Instant::now();
        while marked(&d.context_dir("w")).len() != want as usize {
            assert!(
                t.elapsed() < SECS(10),
                "strays of the killed daemon still run: {:?}",
                marked(&d.context_dir("w"))
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn up_starts_a_detached_daemon_that_outlives_the_client_and_attach_finds_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("autonomos.toml"),
        "[agents.w]\ncommand = [\"sleep\", \"1000\"]\n",
    )
    .expect("config");
    let env = |c: &mut std::process::Command| {
        c.env("XDG_RUNTIME_DIR", dir.path().join("rt"))
            .env("AUTONOMOS_DATA_DIR", dir.path().join("data"))
            .env("AUTONOMOS_CONFIG", dir.path().join("autonomos.toml"));
    };
    let bin = env!("CARGO_BIN_EXE_autonomos");
    let mut up = std::process::Command::new(bin);
    env(&mut up);
    let up = up
        .arg("up")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("up");
    let ctx = dir.path().join("data/contexts/w");
    let t = Instant::now();
    while marked(&ctx).is_empty() {
        assert!(t.elapsed() < SECS(15), "fleet never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Detaching the client (SIGINT, as Ctrl-C) leaves the daemon and fleet.
    let upid = rustix::process::Pid::from_raw(up.id() as i32).expect("pid");
    std::thread::sleep(Duration::from_millis(300));
    rustix::process::kill_process(upid, rustix::process::Signal::INT).expect("SIGINT");
    let out = up.wait_with_output().expect("up exits");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("attached to the Autonomos daemon"), "{text}");
    let agent = marked(&ctx);
    assert_eq!(agent.len(), 1, "the fleet keeps running after detach");
    let mut status = std::process::Command::new(bin);
    env(&mut status);
    let out = status.args(["status", "--json"]).output().expect("status");
    let s: autonomos::proto::FleetStatus = serde_json::from_slice(&out.stdout).expect("json");
    let daemon_pid = s.daemon_pid as i32;
    // Fully detached: its own session, not ours.
    assert_eq!(
        stat_field(daemon_pid, 3),
        Some(daemon_pid.to_string()),
        "daemon leads its own session"
    );
    // SIGHUP does not take it down.
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(daemon_pid).expect("pid"),
        rustix::process::Signal::HUP,
    )
    .expect("SIGHUP");
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(daemon_pid));
    // A second `up` attaches to the same daemon instead of starting another.
    let mut up2 = std::process::Command::new(bin);
    env(&mut up2);
    let up2 = up2
        .arg("up")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("up");
    std::thread::sleep(Duration::from_millis(800));
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(up2.id() as i32).expect("pid"),
        rustix::process::Signal::INT,
    )
    .expect("SIGINT");
    let out = up2.wait_with_output().expect("exits");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("pid {daemon_pid}")));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("started the daemon"));
    // Clean up through the CLI.
    let mut sd = std::process::Command::new(bin);
    env(&mut sd);
    assert!(
        sd.arg("shutdown")
            .output()
            .expect("shutdown")
            .status
            .success()
    );
    let t = Instant::now();
    while alive(daemon_pid) {
        assert!(t.elapsed() < SECS(10));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(marked(&ctx).is_empty());
}

/// Every verb that takes `--json` prints a `{"ok": false, ...}` object on
/// stdout when it fails, whatever failed: the daemon refused, the arguments
/// are wrong, the config is invalid, no daemon runs.
#[test]
fn every_verb_s_json_failure_is_an_object_on_stdout() {
    let d = BinDaemon::start(FLEET);
    let bad_config = d.dir.path().join("bad.toml");
    std::fs::write(&bad_config, "[agents.x]\nreplicas = -3\n").expect("write");
    let bad = bad_config.to_str().expect("utf-8");
    let cases: &[&[&str]] = &[
        &["scale", "nope", "1"],
        &["scale", "web", "-1"],
        &["restart", "nope"],
        &["restart", "web/x"],
        &["stop", "nope"],
        &["start", "nope"],
        &["logs", "nope"],
        &["alerts", "ack", "no-such-alert"],
        &["alerts", "silence", "x", "forever"],
        &["incidents", "show", "999"],
        &["incidents", "note", "999", "text"],
        &["incidents", "advance", "999"],
        &["incidents", "resolve", "999"],
        &["restore", "--at", "yesterday-ish"],
        &["backup", "list", "--repository", "9"],
        &["audit", "verify", "--checkpoint", "/nonexistent"],
        &["config", "check", bad],
    ];
    for args in cases {
        let mut a = args.to_vec();
        a.push("--json");
        let (code, out, err) = d.cli(&a);
        assert_ne!(code, 0, "{args:?} should fail: {out}{err}");
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| {
            panic!("{args:?}: stdout is not one JSON object ({e}): {out:?} / {err}")
        });
        assert_eq!(v["ok"], false, "{args:?}: {v}");
        assert!(
            v["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{args:?}: {v}"
        );
    }
    // The config's errors come located.
    let (_, out, _) = d.cli(&["config", "check", bad, "--json"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v["errors"][1]["line"], 2, "{v}");
    assert_eq!(v["errors"][1]["column"], 12, "{v}");
    // No daemon: status, reload, backup, metrics.
    let other = tempfile::tempdir().expect("tempdir");
    for args in [
        &["status", "--json"][..],
        &["reload", "--json"],
        &["backup", "--json"],
        &["incidents", "--json"],
    ] {
        let out = d
            .cmd()
            .env("AUTONOMOS_DATA_DIR", other.path())
            .args(args)
            .output()
            .expect("runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let v: serde_json::Value =
            serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{args:?}: {e}: {text:?}"));
        assert_eq!(
            (v["ok"].clone(), v["kind"].clone()),
            (false.into(), "no_daemon".into()),
            "{args:?}"
        );
    }
}

/// A scale past what the pool admits says how many will wait and why, and
/// `status -r` gives each waiting replica's reason its own line.
#[test]
fn a_scale_beyond_the_pool_says_who_waits_and_status_shows_why() {
    let d = BinDaemon::start(
        r#"
[pool]
cpu = 1
memory = "1GiB"

[agents.big]
command = ["sleep", "1000"]
resources = { cpu = 0.4, memory = "16MiB" }
"#,
    );
    d.wait_status("up", SECS(10), |s| s.agents[0].running == 1);
    let v = d.json(&["scale", "big", "5"]);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(
        v["message"],
        "scaled big from 1 to 5; 1 can start now, 3 will wait: waiting for CPU: needs 0.40 cores, 0.20 free",
        "{v}"
    );
    d.wait_status("two running", SECS(10), |s| s.agents[0].running == 2);
    let (_, out, _) = d.cli(&["status", "-r"]);
    let waiting = out
        .lines()
        .filter(|l| l.trim_start().starts_with("└ waiting: waiting for CPU"))
        .count();
    assert_eq!(waiting, 3, "{out}");
    assert!(out.lines().all(|l| l.chars().count() < 110), "{out}");
}
