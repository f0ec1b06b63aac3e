//! `autonomos doctor` against the real daemon and its real files: a
//! healthy fleet passes; a failing probe, a tampered audit trail, a
//! damaged backup repository, a corrupt state.db and a missing daemon are
//! each named with what to do, and exit 1; a daemon it cannot reach at all
//! is exit 2.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

fn level<'a>(checks: &'a Value, name: &str) -> &'a str {
    checks
        .as_array()
        .expect("a list of checks")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no `{name}` check in {checks:#}"))["level"]
        .as_str()
        .expect("level")
}

#[test]
fn a_healthy_fleet_passes_and_each_fault_is_named() {
    let mut d = BinDaemon::start(
        r#"
[agents.w]
command = ["sleep", "1000"]

[agents.sick]
command = ["sleep", "1000"]
health = { interval = "200ms", failure_threshold = 100, start_period = "0s", liveness = { exec = ["false"] } }
"#,
    );
    d.wait_status("running", Duration::from_secs(10), |s| {
        s.agents.iter().all(|a| a.running == 1)
    });
    assert_eq!(d.cli(&["backup"]).0, 0);
    d.wait_status("probe failing", Duration::from_secs(10), |s| {
        s.agents[1].replicas[0]
            .health
            .as_deref()
            .is_some_and(|h| h.starts_with("failing"))
    });
    let (code, out, err) = d.cli(&["doctor", "--json"]);
    let checks: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    assert_eq!(code, 1, "{checks:#}");
    // The machine's own disk is what it is: a full one is a problem here
    // too, and the exit codes below allow for it.
    let disk_full = level(&checks, "disk space") == "problem";
    for ok in [
        "daemon",
        "config",
        "data dir",
        "state.db",
        "audit trail",
        "last backup",
        "backup repository",
        "storage writes",
        "resource pool",
    ] {
        assert_eq!(level(&checks, ok), "ok", "{ok}: {checks:#}");
    }
    assert_eq!(level(&checks, "probes"), "problem");
    let text = d.cli(&["doctor"]).1;
    assert!(text.contains("sick/0: failing"), "{text}");
    assert!(text.contains("→ `autonomos status -r`"), "{text}");

    // The probe's agent goes: nothing wrong any more.
    let toml = "[agents.w]\ncommand = [\"sleep\", \"1000\"]\n";
    std::fs::write(d.dir.path().join("autonomos.toml"), toml).expect("config");
    assert_eq!(d.cli(&["reload"]).0, 0);
    let (code, out, _) = d.cli(&["doctor"]);
    assert_eq!(code, i32::from(disk_full), "{out}");

    // A config that no longer loads: a reload would fail.
    std::fs::write(d.dir.path().join("autonomos.toml"), "[agents.w]\n").expect("config");
    let checks = d.json(&["doctor"]);
    assert_eq!(level(&checks, "config"), "problem", "{checks:#}");
    std::fs::write(d.dir.path().join("autonomos.toml"), toml).expect("config");

    // A damaged repository: an index file gone.
    let index = d.data_dir().join("backups/index");
    let gone = std::fs::read_dir(&index)
        .expect("index dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_file())
        .expect("an index file");
    std::fs::remove_file(&gone).expect("rm index");
    let checks = d.json(&["doctor"]);
    assert_eq!(level(&checks, "backup repository"), "problem", "{checks:#}");

    // Without the daemon: its files still checked, its absence a problem.
    d.stop();
    let audit = d.data_dir().join("audit/audit.jsonl");
    let log = std::fs::read_to_string(&audit).expect("audit log");
    let tampered = log.replacen("\"action\":\"backup\"", "\"action\":\"nothing\"", 1);
    assert_ne!(tampered, log);
    std::fs::write(&audit, tampered).expect("tamper");
    let (code, out, _) = d.cli(&["doctor", "--json"]);
    assert_eq!(code, 1, "{out}");
    let checks: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(level(&checks, "daemon"), "problem");
    assert_eq!(level(&checks, "audit trail"), "problem", "{checks:#}");
    assert_eq!(level(&checks, "state.db"), "ok");

    // A corrupt state.db.
    let db = d.data_dir().join("state.db");
    let _ = std::fs::remove_file(d.data_dir().join("state.db-wal"));
    let _ = std::fs::remove_file(d.data_dir().join("state.db-shm"));
    let mut bytes = std::fs::read(&db).expect("state.db");
    // Everything after the file header, up to the second page: the schema
    // page at least (the rest may still have been in the WAL, removed
    // above, when the daemon stopped).
    assert!(bytes.len() >= 4096, "state.db of {} bytes", bytes.len());
    let end = bytes.len().min(8192);
    for b in &mut bytes[100..end] {
        *b = 0x5a;
    }
    std::fs::write(&db, bytes).expect("write");
    let checks = d.json(&["doctor"]);
    assert_eq!(level(&checks, "state.db"), "problem", "{checks:#}");
}

#[test]
fn a_daemon_that_cannot_be_reached_is_exit_2() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_autonomos"))
        .args(["--socket", "/nonexistent/autonomos.sock", "doctor"])
        .current_dir(dir.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("doctor"),
        "{out:?}"
    );
}
