//! The real `autonomos daemon` binary: signals, the data-dir lock, bad configs.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_autonomos"))
}

fn daemon(dir: &std::path::Path, toml: &str) -> Child {
    let cfg = dir.join("autonomos.toml");
    std::fs::write(&cfg, toml).expect("config");
    bin()
        .args(["daemon", "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("daemon spawns")
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

const FLEET: &str = r#"
[agents.tree]
command = ["sh", "-c", "sleep 1000 & (setsid sleep 1001 &); sleep 1002 & wait"]
replicas = 3
stop_timeout = "2s"

[agents.stubborn]
command = ["sh", "-c", "trap '' TERM; sleep 1000 & wait"]
stop_timeout = "1s"
"#;

#[test]
fn sigterm_to_the_daemon_decommissions_everything_and_leaves_no_process_of_the_fleet() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = daemon(dir.path(), FLEET);
    let ctx_tree = dir.path().join("data/contexts/tree");
    let ctx_stub = dir.path().join("data/contexts/stubborn");
    // 3 replicas × (sh + 3 sleeps) + stubborn (sh + sleep).
    wait_until("the fleet is up", Duration::from_secs(15), || {
        marked(&ctx_tree).len() == 12 && marked(&ctx_stub).len() == 2
    });
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "daemon did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "daemon exit status {status:?}");
    let left: Vec<(i32, String)> = marked(&ctx_tree)
        .into_iter()
        .chain(marked(&ctx_stub))
        .map(|p| (p, cmdline(p)))
        .collect();
    assert!(left.is_empty(), "processes left behind: {left:?}");
    // The JSON log recorded the transitions.
    let log = std::fs::read_to_string(dir.path().join("data/logs/daemon.jsonl")).expect("json log");
    let transitions: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["message"] == "transition")
        .collect();
    assert!(
        transitions
            .iter()
            .any(|v| v["to"] == "Stopped" && v["agent"] == "stubborn")
    );
    assert!(
        transitions.iter().all(|v| v["@timestamp"].is_string()
            && v["log.level"] == "INFO"
            && v["from"].is_string())
    );
}

#[test]
fn a_second_daemon_on_the_same_data_dir_refuses_and_leaves_the_first_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = "[agents.one]\ncommand = [\"sleep\", \"1000\"]\n";
    let mut first = daemon(dir.path(), toml);
    let ctx = dir.path().join("data/contexts/one");
    wait_until("first daemon's agent", Duration::from_secs(10), || {
        marked(&ctx).len() == 1
    });
    let before = marked(&ctx);
    let out = bin()
        .args(["daemon", "--config"])
        .arg(dir.path().join("autonomos.toml"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .expect("second daemon runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already running"), "{err}");
    assert!(err.contains(&format!("pid {}", first.id())), "{err}");
    assert_eq!(
        marked(&ctx),
        before,
        "the first daemon's agent is untouched"
    );
    assert!(
        first.try_wait().expect("wait").is_none(),
        "the first daemon still runs"
    );
    let pid = rustix::process::Pid::from_raw(first.id() as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
    assert!(first.wait().expect("wait").success());
}

#[test]
fn an_agent_whose_context_an_older_layout_made_keeps_it_and_its_leftovers_are_stopped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // Before 2026-12-07 a context was `agents/NAME/context`.
    let old = data.join("agents/old/context");
    std::fs::create_dir_all(&old).expect("old context");
    std::fs::write(old.join("memory.md"), "kept\n").expect("memory");
    // A process an earlier daemon left behind in that context.
    let mut stray = Command::new("sleep")
        .arg("1000")
        .env("AUTONOMOS_CONTEXT_DIR", &old)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("stray");
    let toml = r#"
[agents.old]
command = ["sh", "-c", "cp \"$AUTONOMOS_CONTEXT_DIR/memory.md\" \"$AUTONOMOS_CONTEXT_DIR/seen\"; exec sleep 1000"]
[agents.new]
command = ["sleep", "1000"]
"#;
    let mut d = daemon(dir.path(), toml);
    let new = data.join("contexts/new");
    wait_until("both agents", Duration::from_secs(10), || {
        old.join("seen").exists() && marked(&new).len() == 1
    });
    assert_eq!(
        std::fs::read_to_string(old.join("seen")).expect("seen"),
        "kept\n",
        "the agent found its memory where it was"
    );
    assert!(
        !data.join("contexts/old").exists(),
        "no second, empty context beside the old one"
    );
    wait_until("the leftover stopped", Duration::from_secs(10), || {
        stray.try_wait().expect("wait").is_some()
    });
    let pid = rustix::process::Pid::from_raw(d.id() as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
    assert!(d.wait().expect("wait").success());
    assert!(marked(&old).is_empty() && marked(&new).is_empty());
}

#[test]
fn a_detached_daemon_writes_plain_warnings_to_its_stderr_and_everything_to_the_json_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("autonomos.toml");
    let toml = "[agents.ok]\ncommand = [\"sleep\", \"1000\"]\n[agents.missing]\ncommand = [\"/nonexistent/agent\"]\n";
    std::fs::write(&cfg, toml).expect("config");
    let out = dir.path().join("daemon.out");
    let file = std::fs::File::create(&out).expect("daemon.out");
    let mut d = bin()
        .args(["daemon", "--detached", "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("daemon spawns");
    let ok = dir.path().join("data/contexts/ok");
    wait_until("the warning", Duration::from_secs(10), || {
        marked(&ok).len() == 1
            && std::fs::read_to_string(&out).is_ok_and(|s| s.contains("spawn failed"))
    });
    let pid = rustix::process::Pid::from_raw(d.id() as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
    assert!(d.wait().expect("wait").success());
    let text = std::fs::read_to_string(&out).expect("daemon.out");
    assert!(
        !text.contains('\x1b'),
        "no terminal escapes in a file: {text:?}"
    );
    assert!(
        !text.contains("transition") && !text.contains("daemon started"),
        "info lines only in the JSON log: {text}"
    );
    let json = std::fs::read_to_string(dir.path().join("data/logs/daemon.jsonl")).expect("json");
    assert!(json.contains("daemon started") && json.contains("spawn failed"));
    // A run of transitions is one line that names the states between:
    // the start up to ActiveOperation is one line, or two when the spawn
    // finished in a later pass (the spawner thread's).
    let start: Vec<serde_json::Value> = json
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["message"] == "transition" && v["agent"] == "ok")
        .take_while(|v| v["from"] != "ActiveOperation")
        .collect();
    assert!((1..=2).contains(&start.len()), "{start:?}");
    assert_eq!(start[0]["from"], "Stopped");
    assert_eq!(start.last().expect("a line")["to"], "ActiveOperation");
    assert!(
        start[0]["via"]
            .as_str()
            .is_some_and(|v| v.contains("Initialization (start) → ResourceAllocation")),
        "{:?}",
        start[0]
    );
}

#[test]
fn a_daemon_with_a_bad_config_exits_2_and_spawns_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("autonomos.toml");
    std::fs::write(&cfg, "[agents.ok]\ncommand = [\"sleep\", \"1000\"]\n\n[agents.bad]\ncommand = []\nstop_timout = \"1s\"\n").expect("config");
    let out = bin()
        .args(["daemon", "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("autonomos.toml:5:"), "{err}");
    assert!(err.contains("stop_timeout"), "{err}");
    assert!(marked(&dir.path().join("data/contexts/ok")).is_empty());
    assert!(
        !dir.path().join("data").exists(),
        "nothing created for a rejected config"
    );
}

/// `n` agents running `sleep`, but agent `bad` (if any) whose program is
/// not there.
fn many(n: usize, bad: Option<usize>) -> String {
    (0..n)
        .map(|i| {
            let program = if Some(i) == bad {
                "no-such-program-here"
            } else {
                "sleep"
            };
            format!("[agents.a{i}]\ncommand = [\"{program}\", \"1000\"]\n")
        })
        .collect()
}

#[test]
fn a_start_of_many_spawns_each_replica_once_and_a_bad_one_among_them_says_why() {
    // All but the first spawn of a pass go through the spawner thread.
    let d = BinDaemon::start(&many(60, Some(37)));
    let s = d.wait_status("the fleet up", Duration::from_secs(20), |s| {
        s.agents.iter().filter(|a| a.running == 1).count() == 59
    });
    for i in (0..60).filter(|&i| i != 37) {
        let procs = marked(&d.context_dir(&format!("a{i}")));
        assert_eq!(procs.len(), 1, "a{i}: {procs:?}");
        // Whatever thread spawned it: no signal blocked, SIGPIPE not
        // ignored (the daemon ignores it), a process group of its own.
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", procs[0])).unwrap_or_default();
        let mask = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
                .unwrap_or(u64::MAX)
        };
        assert_eq!(mask("SigBlk:"), 0, "a{i} starts with signals blocked");
        assert_eq!(mask("SigIgn:") & (1 << (13 - 1)), 0, "a{i} ignores SIGPIPE");
        assert_eq!(
            stat_field(procs[0], 2),
            Some(procs[0].to_string()),
            "a{i}'s process group"
        );
        // Its stdin reads /dev/null; stdout and stderr are the daemon's pipes.
        let fd = |n: u32| {
            std::fs::read_link(format!("/proc/{}/fd/{n}", procs[0]))
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        assert_eq!(fd(0), "/dev/null", "a{i}'s stdin");
        assert!(
            fd(1).starts_with("pipe:") && fd(2).starts_with("pipe:"),
            "a{i}: {} {}",
            fd(1),
            fd(2)
        );
        assert_ne!(fd(1), fd(2), "a{i}'s stdout and stderr are apart");
    }
    // The start went through the spawner thread.
    let threads: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", d.pid()))
        .expect("threads")
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .collect();
    assert!(
        threads.iter().any(|c| c.trim() == "autonomos-spawn"),
        "no spawner thread: {threads:?}"
    );
    let bad = s.agents.iter().find(|a| a.name == "a37").expect("a37");
    assert_eq!(bad.running, 0);
    let error = bad.replicas[0].error.clone().unwrap_or_default();
    assert!(
        error.contains("no-such-program-here"),
        "the spawn error names the program: {error:?}"
    );
    assert!(bad.replicas[0].failures >= 1, "a failed spawn counts");
}

#[test]
fn a_fleet_stopped_while_its_spawns_are_under_way_leaves_no_process() {
    let n = 200;
    let mut d = BinDaemon::start(&many(n, None));
    // Stopped as soon as the first replica runs: the rest of the start
    // is being spawned.
    wait_until("a first replica", Duration::from_secs(20), || {
        !marked(&d.context_dir("a0")).is_empty()
    });
    let status = d.stop().expect("daemon exit");
    assert!(status.success(), "daemon exit status {status:?}");
    let left: Vec<(usize, Vec<i32>)> = (0..n)
        .map(|i| (i, marked(&d.context_dir(&format!("a{i}")))))
        .filter(|(_, p)| !p.is_empty())
        .collect();
    assert!(left.is_empty(), "processes left behind: {left:?}");
}

#[test]
fn a_reload_during_a_start_restarts_the_replicas_whose_spawn_was_under_way() {
    let n = 150;
    let d = BinDaemon::start(&many(n, None));
    // At once: most spawns of the start are still queued or under way.
    std::fs::write(
        d.dir.path().join("autonomos.toml"),
        many(n, None).replace("\"1000\"", "\"2000\""),
    )
    .expect("new config");
    let (code, out, err) = d.cli(&["reload"]);
    assert_eq!(code, 0, "reload: {out} {err}");
    let t = Instant::now();
    loop {
        let old: Vec<String> = (0..n)
            .flat_map(|i| marked(&d.context_dir(&format!("a{i}"))))
            .map(cmdline)
            .filter(|c| !c.contains("2000"))
            .collect();
        let new = (0..n)
            .filter(|i| marked(&d.context_dir(&format!("a{i}"))).len() == 1)
            .count();
        if old.is_empty() && new == n {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "{} agents run one replica; still on the old command: {old:?}",
            new
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A restart skips the `mkdir` of a context dir its last run ran in; a
/// dir removed by hand meanwhile is made again and the spawn tried once
/// more: the restart neither fails nor counts a failure for it.
#[test]
fn a_context_dir_removed_by_hand_is_made_again_at_the_next_restart() {
    let d = BinDaemon::start(
        "[agents.w]\ncommand = [\"sh\", \"-c\", \"pwd >> \\\"$AUTONOMOS_CONTEXT_DIR/../w-runs\\\"; exec sleep 60\"]\ninherit_env = [\"PATH\"]\nbackoff = { initial = \"0ms\", max = \"0ms\", jitter = 0 }\n",
    );
    let ctx = d.context_dir("w");
    let runs = ctx.with_file_name("w-runs");
    let first = d.wait_status("w running", Duration::from_secs(15), |s| {
        running_pid(s, "w", 0).is_some()
    });
    let pid = running_pid(&first, "w", 0).expect("pid");
    let failures = replica(&first, "w", 0).expect("replica").failures;
    wait_until("the first run's line", Duration::from_secs(5), || {
        std::fs::read_to_string(&runs).is_ok_and(|s| s.lines().count() == 1)
    });
    std::fs::remove_dir_all(&ctx).expect("remove the context dir");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).expect("pid"),
        rustix::process::Signal::KILL,
    )
    .expect("kill");
    let s = d.wait_status("w running again", Duration::from_secs(15), |s| {
        running_pid(s, "w", 0).is_some_and(|p| p != pid)
    });
    let r = replica(&s, "w", 0).expect("replica");
    assert!(ctx.is_dir(), "the context dir is made again");
    wait_until("the second run's line", Duration::from_secs(5), || {
        std::fs::read_to_string(&runs).is_ok_and(|s| s.lines().count() == 2)
    });
    let lines = std::fs::read_to_string(&runs).expect("runs");
    for line in lines.lines() {
        assert_eq!(std::path::Path::new(line), ctx, "{lines}");
    }
    // The kill is the one failure: the spawn into the missing dir was
    // retried, not failed.
    assert_eq!(r.failures, failures + 1, "{s:#?}");
    assert_eq!(r.error, None, "{s:#?}");
}

/// The daemon installs no SIGCHLD handler (a replica's exit wakes it
/// through the pidfd only), and a process that outlived its replica and
/// exits later is still reaped, by the scan once a second.
#[test]
fn the_daemon_catches_no_sigchld_and_still_reaps_an_orphan_that_exits_later() {
    let d = BinDaemon::start(
        "[agents.o]\ncommand = [\"sh\", \"-c\", \"(setsid sh -c 'echo $$ > \\\"$AUTONOMOS_CONTEXT_DIR/esc\\\"; sleep 0.5' &); exec sleep 60\"]\ninherit_env = [\"PATH\"]\n",
    );
    let daemon = d.pid();
    let status = std::fs::read_to_string(format!("/proc/{daemon}/status")).expect("status");
    let caught = status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .map(|m| u64::from_str_radix(m.trim(), 16).expect("mask"))
        .expect("SigCgt");
    assert_eq!(caught & (1 << (libc::SIGCHLD - 1)), 0, "{status}");
    let esc = d.context_dir("o").join("esc");
    wait_until("the escapee's pid", Duration::from_secs(10), || {
        std::fs::read_to_string(&esc).is_ok_and(|s| s.trim().parse::<i32>().is_ok())
    });
    let pid: i32 = std::fs::read_to_string(&esc)
        .expect("pid")
        .trim()
        .parse()
        .expect("pid");
    // It becomes the daemon's child once its parent shell is gone.
    wait_until("the escapee re-parented", Duration::from_secs(5), || {
        stat_field(pid, 1).as_deref() == Some(daemon.to_string().as_str())
    });
    // It exits after 0.5 s; its zombie is reaped within about a second.
    wait_until("the escapee reaped", Duration::from_secs(5), || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    });
}
