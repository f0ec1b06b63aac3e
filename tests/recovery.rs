//! The recovery workflow through the real daemon: point-in-time restore of
//! an agent's context from the CLI, `recovery = "restore-latest"` on a
//! crash-looping agent, and `kill -9` of the daemon in the middle of a
//! backup.

mod common;

use std::time::{Duration, Instant};

use autonomos::core::lifecycle::State;
use common::{BinDaemon, pids_where};

/// Runs while its context holds no `corrupt` file; writes `state` on start.
const AGENT: &str = r#"
[agents.w]
command = ["sh", "-c", "if [ -f \"$AUTONOMOS_CONTEXT_DIR/corrupt\" ]; then exit 1; fi; date +%s%N > \"$AUTONOMOS_CONTEXT_DIR/started\"; exec sleep 1000"]
min_uptime = "0ms"
backoff = { initial = "50ms", max = "100ms" }
start_limit = { burst = 3, interval = "30s" }
"#;

fn running(d: &BinDaemon) {
    d.wait_status("w running", Duration::from_secs(15), |s| {
        s.agents[0].running == 1 && s.agents[0].replicas[0].pid.is_some()
    });
}

fn snapshots(d: &BinDaemon) -> Vec<serde_json::Value> {
    d.json(&["backup", "list"])
        .as_array()
        .cloned()
        .expect("a list")
}

#[test]
fn restore_at_a_time_runs_the_workflow_and_leaves_a_working_agent() {
    let mut d = BinDaemon::start(AGENT);
    running(&d);
    let ctx = d.context_dir("w");
    std::fs::write(ctx.join("memory.md"), "version one\n").expect("write");
    let (code, out, err) = d.cli(&["backup"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("backup done"), "{out}");
    // The first backup says where the new password is, once.
    assert!(out.contains("New repository password in"), "{out}");
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::write(ctx.join("memory.md"), "version two\n").expect("write");
    let (code, out, _) = d.cli(&["backup"]);
    assert_eq!(code, 0);
    assert!(!out.contains("New repository password"), "{out}");
    let snaps = snapshots(&d);
    assert_eq!(snaps.len(), 2);
    let t1 = snaps[0]["time"].as_u64().expect("time");
    // The agent's context goes bad.
    std::fs::write(ctx.join("memory.md"), "garbage\n").expect("write");
    std::fs::write(ctx.join("junk"), "x").expect("write");
    let before_pid = d.status().agents[0].replicas[0].pid;

    // Restore as of just after the first backup (RFC 3339, UTC).
    let at = jiff::Timestamp::from_millisecond(t1 as i64 + 500)
        .expect("ts")
        .to_string();
    let (code, out, err) = d.cli(&["restore", "--agent", "w", "--at", &at]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("restored w from snapshot"), "{out}");
    assert_eq!(
        std::fs::read_to_string(ctx.join("memory.md")).expect("read"),
        "version one\n"
    );
    assert!(
        !ctx.join("junk").exists(),
        "the restore replaced the context as a whole"
    );
    running(&d);
    assert_ne!(
        d.status().agents[0].replicas[0].pid,
        before_pid,
        "restarted"
    );
    // What was there before the restore was backed up first.
    let snaps = snapshots(&d);
    assert_eq!(snaps.len(), 3);
    assert_eq!(snaps[2]["reason"], "before restoring w");
    // Every step is on the audit trail.
    let (code, log, _) = d.cli(&["audit", "log", "-n", "100"]);
    assert_eq!(code, 0);
    for step in [
        "DetectFailure",
        "IsolateSystem",
        "LoadBackup",
        "ValidateIntegrity",
        "SystemRecovery",
    ] {
        assert!(log.contains(step), "no {step} in the audit log:\n{log}");
    }
    // Nothing left beside the context.
    let leftovers: Vec<_> = std::fs::read_dir(ctx.parent().expect("contexts dir"))
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "w")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // One at a time; an unknown snapshot is a clear error.
    let (code, _, err) = d.cli(&["restore", "--agent", "w", "--snapshot", "ffffffff"]);
    assert_ne!(code, 0);
    assert!(err.contains("no snapshot `ffffffff`"), "{err}");
    let (code, _, _) = d.cli(&["backup", "verify", "--read-data"]);
    assert_eq!(code, 0);
    d.stop();
}

#[test]
fn restore_latest_recovers_a_crash_looping_agent_and_not_again_at_once() {
    let mut d = BinDaemon::start(&AGENT.replace(
        "start_limit = { burst = 3, interval = \"30s\" }",
        "start_limit = { burst = 3, interval = \"30s\" }\nrecovery = \"restore-latest\"",
    ));
    running(&d);
    let ctx = d.context_dir("w");
    std::fs::write(ctx.join("memory.md"), "good\n").expect("write");
    assert_eq!(d.cli(&["backup"]).0, 0);
    // Corrupt it and restart: it crash-loops into Failed, and the workflow
    // restores the newest backup taken before it began.
    std::fs::write(ctx.join("corrupt"), "x").expect("write");
    assert_eq!(d.cli(&["restart", "w"]).0, 0);
    let t = Instant::now();
    loop {
        let s = d.status();
        let r = &s.agents[0].replicas[0];
        if r.pid.is_some() && r.state.is_running() && !ctx.join("corrupt").exists() {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "not recovered: {s:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        std::fs::read_to_string(ctx.join("memory.md")).expect("read"),
        "good\n"
    );
    let (_, log, _) = d.cli(&["audit", "log", "-n", "100"]);
    assert!(log.contains("recovery = restore-latest"), "{log}");
    // A second failure at once (inside the 10-minute quiet time) is left to
    // the operator.
    std::fs::write(ctx.join("corrupt"), "x").expect("write");
    assert_eq!(d.cli(&["restart", "w"]).0, 0);
    d.wait_status("Failed again", Duration::from_secs(15), |s| {
        s.agents[0].replicas[0].state == State::Failed
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        ctx.join("corrupt").exists(),
        "the automatic restore ran again within its quiet time"
    );
    d.stop();
}

/// Polls the daemon's status over its socket until the running backup's
/// progress satisfies `phase`; returns what it saw then, or None when the
/// backup client exited first.
fn wait_phase(
    d: &BinDaemon,
    backup: &mut std::process::Child,
    phase: &dyn Fn(&autonomos::proto::BackupProgress) -> bool,
) -> Option<autonomos::proto::BackupProgress> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut c = autonomos::client::Client::connect_socket(&d.socket())
            .await
            .expect("connect");
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(60) {
            let s = c.status().await.expect("status");
            if let Some(p) = s.backup_progress.filter(|p| phase(p)) {
                return Some(p);
            }
            if let Ok(Some(_)) = backup.try_wait() {
                return None;
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        None
    })
}

#[test]
fn kill_9_in_the_middle_of_a_backup_leaves_earlier_snapshots_verifiable() {
    let mut d = BinDaemon::start("[agents.w]\ncommand = [\"sleep\", \"1000\"]\n");
    let ctx = d.context_dir("w");
    // Enough data that a backup takes a while.
    let chunk: Vec<u8> = (0..(4u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for n in 0..8 {
        std::fs::write(ctx.join(format!("blob-{n}")), &chunk).expect("write");
    }
    assert_eq!(d.cli(&["backup"]).0, 0);
    let good = snapshots(&d).len();
    // Each kill lands in a known phase, read from the daemon's own progress.
    type Phase = (&'static str, fn(&autonomos::proto::BackupProgress) -> bool);
    let phases: [Phase; 3] = [
        ("before any data is written", |p| p.step != "backing up"),
        ("in the first half of the data", |p| {
            p.step == "backing up" && p.total > 0 && p.done > 0 && p.done < p.total / 2
        }),
        ("in the second half of the data", |p| {
            p.step == "backing up" && p.total > 0 && p.done >= p.total / 2 && p.done < p.total
        }),
    ];
    for (round, (name, phase)) in phases.iter().enumerate() {
        // New content so the next backup has work to do.
        for n in 0..8 {
            let mut c = chunk.clone();
            c[n * 1000 + round] ^= 0xff;
            c.rotate_left(round * 7 + n + 1);
            std::fs::write(ctx.join(format!("blob-{n}")), &c).expect("write");
        }
        let mut backup = d
            .cmd()
            .arg("backup")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("backup client");
        let hit = wait_phase(&d, &mut backup, phase);
        let pid = d.pid();
        if let Some(p) = rustix::process::Pid::from_raw(pid) {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        }
        let hit = hit.unwrap_or_else(|| panic!("round {round}: the backup ended before {name}"));
        eprintln!("round {round}: killed {name}: {}", hit.line());
        let _ = d.child.take().map(|mut c| c.wait());
        let _ = backup.wait();
        // The agents the dead daemon left are stopped by the next one.
        d.spawn();
        let (code, out, err) = d.cli(&["backup", "verify", "--read-data"]);
        assert_eq!(
            code,
            0,
            "round {round} (killed {name}: {}): {out}{err}",
            hit.line()
        );
        let snaps = snapshots(&d);
        assert!(snaps.len() >= good, "round {round}: snapshots lost");
        // The first snapshot still restores.
        let first = snaps[0]["id"].as_str().expect("id")[..8].to_string();
        let (code, out, err) = d.cli(&["restore", "--agent", "w", "--snapshot", &first]);
        assert_eq!(code, 0, "round {round}: {out}{err}");
        assert_eq!(std::fs::read(ctx.join("blob-0")).expect("read"), chunk);
    }
    d.stop();
    assert!(
        pids_where(|p| common::cmdline(p).contains(&d.data_dir().display().to_string())).is_empty()
    );
}

#[test]
fn a_restore_from_a_damaged_repository_leaves_the_context_and_restarts_the_agent() {
    let mut d = BinDaemon::start(AGENT);
    running(&d);
    let ctx = d.context_dir("w");
    let big: Vec<u8> = (0..(2u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    std::fs::write(ctx.join("model.bin"), &big).expect("write");
    assert_eq!(d.cli(&["backup"]).0, 0);
    // Damage the biggest pack.
    common::damage_biggest_pack(&d.data_dir().join("backups"));
    // What is there now must survive the failed restore.
    std::fs::write(ctx.join("memory.md"), "current\n").expect("write");
    let (code, out, err) = d.cli(&["restore", "--agent", "w"]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("current context untouched"), "{err}");
    assert_eq!(
        std::fs::read_to_string(ctx.join("memory.md")).expect("read"),
        "current\n"
    );
    running(&d);
    let (code, _, _) = d.cli(&["backup", "verify", "--read-data"]);
    assert_ne!(code, 0, "verify reports the damage");
    d.stop();
}

#[test]
fn restore_without_an_agent_restores_every_agent_the_snapshot_holds() {
    let two = format!("{AGENT}{}", AGENT.replace("[agents.w]", "[agents.v]"));
    let mut d = BinDaemon::start(&two);
    d.wait_status("both running", Duration::from_secs(15), |s| {
        s.agents.iter().all(|a| a.running == 1)
    });
    let (w, v) = (d.context_dir("w"), d.context_dir("v"));
    std::fs::write(w.join("memory.md"), "w one\n").expect("write");
    std::fs::write(v.join("memory.md"), "v one\n").expect("write");
    assert_eq!(d.cli(&["backup"]).0, 0);
    let first = snapshots(&d)[0]["id"].as_str().expect("id").to_string();
    // Both change; `v` is stopped by the operator; `u` is added later.
    std::fs::write(w.join("memory.md"), "w two\n").expect("write");
    std::fs::write(v.join("memory.md"), "v two\n").expect("write");
    assert_eq!(d.cli(&["stop", "v"]).0, 0);
    let three = format!("{two}{}", AGENT.replace("[agents.w]", "[agents.u]"));
    std::fs::write(d.dir.path().join("autonomos.toml"), three).expect("config");
    assert_eq!(d.cli(&["reload"]).0, 0);
    d.wait_status("u running", Duration::from_secs(15), |s| {
        s.agents.iter().any(|a| a.name == "u" && a.running == 1)
    });
    let u = d.context_dir("u");
    std::fs::write(u.join("memory.md"), "u only now\n").expect("write");

    let (code, out, err) = d.cli(&["restore", "--snapshot", &first[..8]]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("restored "), "{out}");
    assert!(
        out.contains("left as they are: u"),
        "the agent added since is named: {out}"
    );
    for (ctx, want) in [(&w, "w one\n"), (&v, "v one\n"), (&u, "u only now\n")] {
        assert_eq!(
            std::fs::read_to_string(ctx.join("memory.md")).expect("read"),
            want,
            "{}",
            ctx.display()
        );
    }
    // `w` runs again; `v` stays stopped as the operator left it.
    d.wait_status("w running again", Duration::from_secs(15), |s| {
        s.agents.iter().any(|a| a.name == "w" && a.running == 1)
    });
    std::thread::sleep(Duration::from_millis(500));
    let s = d.status();
    let v_status = s.agents.iter().find(|a| a.name == "v").expect("v");
    assert_eq!(v_status.running, 0, "{v_status:#?}");
    // One pre-restore backup covered all of them.
    let snaps = snapshots(&d);
    assert_eq!(snaps.len(), 2);
    let reason = snaps[1]["reason"].as_str().expect("reason");
    assert!(reason.starts_with("before restoring "), "{reason}");
    assert!(reason.contains('v') && reason.contains('w'), "{reason}");
    // A named agent the snapshot does not hold: refused before anything stops.
    let (code, _, err) = d.cli(&["restore", "--agent", "u", "--snapshot", &first[..8]]);
    assert_ne!(code, 0);
    assert!(err.contains("holds no context of `u`"), "{err}");
    assert_eq!(
        std::fs::read_to_string(u.join("memory.md")).expect("read"),
        "u only now\n"
    );
    d.stop();
}

#[test]
fn the_schedule_catches_up_on_an_overdue_backup_and_keeps_its_clock_across_restarts() {
    if !common::have_tool("restic", "restic") {
        return;
    }
    let cfg = "[backup]\nevery = \"1m\"\n\n[agents.w]\ncommand = [\"sleep\", \"1000\"]\n";
    // A repository whose newest snapshot is from 2020, made by the real
    // restic with the password file the daemon will use.
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let pass = data.join("backup-password");
    std::fs::write(&pass, "a password for the test\n").expect("password");
    let repo = data.join("backups");
    let restic = |args: &[&str]| {
        let out = std::process::Command::new("restic")
            .arg("-r")
            .arg(&repo)
            .arg("--password-file")
            .arg(&pass)
            .args(args)
            .output()
            .expect("restic runs");
        assert!(
            out.status.success(),
            "restic {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    restic(&["init"]);
    let old = dir.path().join("old");
    std::fs::write(&old, "from long ago\n").expect("write");
    restic(&[
        "backup",
        "--host",
        "autonomos",
        "--time",
        "2020-01-01 00:00:00",
        &old.to_string_lossy(),
    ]);
    std::fs::write(dir.path().join("autonomos.toml"), cfg).expect("config");
    let mut d = BinDaemon { child: None, dir };
    d.spawn();
    // Overdue by years: backed up soon after the start, not a minute later.
    let t = Instant::now();
    let snaps = loop {
        let snaps = snapshots(&d);
        if snaps.len() >= 2 {
            break snaps;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "no catch-up backup: {snaps:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(snaps.len(), 2, "{snaps:?}");
    assert_eq!(snaps[1]["reason"], "schedule");
    // A restart does not reset the clock to a fresh backup: the newest is
    // seconds old, so nothing is due for about a minute.
    d.stop();
    d.spawn();
    std::thread::sleep(Duration::from_secs(10));
    assert_eq!(
        snapshots(&d).len(),
        2,
        "backed up again right after a restart"
    );
    d.stop();
}

#[test]
fn a_reload_turns_the_schedule_on_and_adds_a_mirror() {
    let mut d = BinDaemon::start("[agents.w]\ncommand = [\"sleep\", \"1000\"]\n");
    let (primary, mirror) = (d.dir.path().join("primary"), d.dir.path().join("mirror"));
    std::fs::write(
        d.dir.path().join("autonomos.toml"),
        format!(
            "[backup]\nrepositories = [\"{}\", \"{}\"]\nevery = \"1m\"\n\n[agents.w]\ncommand = [\"sleep\", \"1000\"]\n",
            primary.display(),
            mirror.display()
        ),
    )
    .expect("config");
    let (code, out, err) = d.cli(&["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("[backup] changed"), "{out}");
    // Never backed up: the schedule, now on, backs up at once, to both.
    let t = Instant::now();
    while !primary.join("config").exists() || snapshots(&d).is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the reloaded schedule never ran"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let snaps = snapshots(&d);
    assert_eq!(snaps[0]["reason"], "schedule");
    let mirrored = d.json(&["backup", "list", "--repository", "1"]);
    assert_eq!(mirrored.as_array().map(|a| a.len()), Some(1), "{mirrored}");
    assert!(
        !d.data_dir().join("backups").exists(),
        "the old default was used"
    );
    // The same config again changes nothing.
    let (_, out, _) = d.cli(&["reload"]);
    assert!(!out.contains("[backup] changed"), "{out}");
    d.stop();
}

#[test]
fn backup_prune_forgets_by_the_retention_rules_and_leaves_restic_a_sound_repository() {
    let mut d = BinDaemon::start(AGENT);
    running(&d);
    let ctx = d.context_dir("w");
    for i in 0..3 {
        std::fs::write(
            ctx.join("memory.md"),
            format!("version {i}\n").repeat(10_000),
        )
        .expect("write");
        let (code, _, err) = d.cli(&["backup"]);
        assert_eq!(code, 0, "{err}");
    }
    assert_eq!(snapshots(&d).len(), 3);
    // No retention rules: nothing is forgotten, unused data is pruned.
    let (code, out, err) = d.cli(&["backup", "prune"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("0 snapshot(s) forgotten, 3 kept"), "{out}");

    // A restic run by hand holds a lock: prune refuses and says so.
    let repo = d.data_dir().join("backups");
    std::fs::create_dir_all(repo.join("locks")).expect("locks dir");
    std::fs::write(repo.join("locks").join("0123456789abcdef"), b"x").expect("lock");
    let (code, out, err) = d.cli(&["backup", "prune"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("restic holds 1 lock(s)"), "{err}");
    assert_eq!(snapshots(&d).len(), 3, "nothing was changed");
    std::fs::remove_file(repo.join("locks").join("0123456789abcdef")).expect("unlock");

    // Rules in force: keep the newest one.
    let cfg = d.dir.path().join("autonomos.toml");
    let text = std::fs::read_to_string(&cfg).expect("config");
    std::fs::write(&cfg, format!("[backup]\nkeep_last = 1\n{text}")).expect("config");
    let (code, out, err) = d.cli(&["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = d.cli(&["backup", "prune"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("2 snapshot(s) forgotten, 1 kept"), "{out}");
    assert_eq!(snapshots(&d).len(), 1);
    let audit = std::fs::read_to_string(d.data_dir().join("audit/audit.jsonl")).expect("audit");
    assert!(audit.contains("\"backup-prune\""), "on the audit trail");
    if common::have_tool("restic", "restic") {
        let out = std::process::Command::new("restic")
            .args(["-r"])
            .arg(&repo)
            .arg("--password-file")
            .arg(d.data_dir().join("backup-password"))
            .args(["check", "--read-data"])
            .output()
            .expect("restic runs");
        assert!(
            out.status.success(),
            "restic check after our prune: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    d.stop();
}

#[test]
fn a_snapshot_of_a_context_in_the_older_layout_restores_into_contexts() {
    // A data dir of an earlier version: the context in agents/w/context.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("autonomos.toml"), AGENT).expect("config");
    let old = dir.path().join("data/agents/w/context");
    std::fs::create_dir_all(&old).expect("old context");
    std::fs::write(old.join("memory.md"), "old layout\n").expect("memory");
    let mut d = BinDaemon { child: None, dir };
    d.spawn();
    running(&d);
    assert_eq!(
        std::path::PathBuf::from(&d.status().agents[0].context_dir),
        old,
        "the agent keeps its context where it is"
    );
    let (code, out, err) = d.cli(&["backup"]);
    assert_eq!(code, 0, "{out}{err}");
    let id = snapshots(&d)[0]["id"].as_str().expect("id").to_string();
    // The old context is lost (a disaster recovery into a fresh layout).
    d.stop();
    std::fs::remove_dir_all(d.data_dir().join("agents")).expect("rm");
    d.spawn();
    running(&d);
    let ctx = d.context_dir("w");
    assert_eq!(
        std::path::PathBuf::from(&d.status().agents[0].context_dir),
        ctx
    );
    assert!(!ctx.join("memory.md").exists());
    let (code, out, err) = d.cli(&["restore", "--agent", "w", "--snapshot", &id]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        std::fs::read_to_string(ctx.join("memory.md")).expect("restored"),
        "old layout\n"
    );
    running(&d);
}
