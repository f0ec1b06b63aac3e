//! The audit trail end to end: what gets recorded, verification of the
//! real files by the real CLI, tampering, a torn last line after a crash,
//! and 10,000 records across restarts.

mod common;

use std::time::Duration;

use autonomos::core::audit::{Record, verify, verifying_key};
use autonomos::daemon::audit::{Audit, read};
use common::BinDaemon;

fn records(d: &BinDaemon) -> Vec<Record> {
    std::fs::read_to_string(d.data_dir().join("audit/audit.jsonl"))
        .expect("audit log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a record per line"))
        .collect()
}

const FLEET: &str = r#"
[agents.w]
command = ["sleep", "1000"]

[agents.broken]
command = ["sh", "-c", "exit 1"]
min_uptime = "0ms"
backoff = { initial = "0ms", max = "0ms", jitter = 0 }
start_limit = { burst = 2, interval = "10s" }
"#;

#[test]
fn operator_actions_and_system_events_are_recorded_and_the_chain_verifies() {
    let mut d = BinDaemon::start(FLEET);
    d.wait_status("broken failed", Duration::from_secs(10), |s| {
        s.agents.iter().any(|a| {
            a.name == "broken"
                && a.replicas
                    .iter()
                    .any(|r| r.state == autonomos::core::lifecycle::State::Failed)
        })
    });
    assert_eq!(d.cli(&["scale", "w", "2"]).0, 0);
    assert_ne!(d.cli(&["scale", "nope", "2"]).0, 0);
    assert_eq!(d.cli(&["restart", "w/1"]).0, 0);
    assert_eq!(d.cli(&["reload"]).0, 0);
    d.stop();
    let recs = records(&d);
    let find = |action: &str| {
        recs.iter()
            .find(|r| r.action == action)
            .unwrap_or_else(|| panic!("no {action} record in {recs:#?}"))
    };
    assert_eq!(recs[0].action, "daemon-start");
    let scale = find("scale");
    assert!(
        scale.actor.starts_with("uid ")
            && scale.actor.contains(" pid ")
            && scale.actor.contains("local"),
        "{scale:?}"
    );
    assert_eq!(scale.args["agent"], "w");
    assert_eq!(scale.args["replicas"], 2);
    assert!(scale.result.starts_with("ok"), "{scale:?}");
    // A refused request is recorded with its error.
    assert!(
        recs.iter()
            .any(|r| r.action == "scale" && r.result.starts_with("error: unknown agent `nope`")),
        "{recs:#?}"
    );
    assert_eq!(find("restart").args["replica"], 1);
    assert!(find("reload").result.starts_with("ok"));
    let failed = find("replica-failed");
    assert_eq!(failed.actor, "autonomos");
    assert_eq!(failed.args["agent"], "broken");
    assert!(failed.result.contains("start limit"), "{failed:?}");
    assert_eq!(recs.last().map(|r| r.action.as_str()), Some("daemon-stop"));

    // The CLI verifies the real files; the shutdown checkpoint covers all.
    let (code, out, err) = d.cli(&["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("ok: {} records, chain intact", recs.len())),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "signed checkpoint matched up to seq {}",
            recs.len()
        )),
        "{out}"
    );
    assert!(!out.contains("not protected"), "{out}");
    // Files are private.
    use std::os::unix::fs::PermissionsExt;
    for f in [
        "audit",
        "audit/audit.jsonl",
        "audit/signing.key",
        "audit/checkpoints.jsonl",
    ] {
        let mode = std::fs::metadata(d.data_dir().join(f))
            .expect(f)
            .permissions()
            .mode()
            & 0o077;
        assert_eq!(mode, 0, "{f} is readable by others");
    }
}

#[test]
fn tampering_is_detected_naming_the_record_and_a_torn_line_is_a_crash() {
    let mut d = BinDaemon::start("[agents.w]\ncommand = [\"sleep\", \"1000\"]\n");
    for n in 1..=4 {
        assert_eq!(d.cli(&["scale", "w", &n.to_string()]).0, 0);
    }
    let export = d.dir.path().join("kept-elsewhere.json");
    let (code, _, err) = d.cli(&[
        "audit",
        "checkpoint",
        "--export",
        export.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{err}");
    d.stop();
    let path = d.data_dir().join("audit/audit.jsonl");
    let pristine = std::fs::read_to_string(&path).expect("log");

    // An edited record: named by its sequence number.
    let edited = pristine.replacen("\"replicas\":3", "\"replicas\":9", 1);
    assert_ne!(edited, pristine);
    std::fs::write(&path, &edited).expect("write");
    let (code, out, _) = d.cli(&["audit", "verify"]);
    assert_eq!(code, 1, "{out}");
    let bad: Vec<Record> = pristine
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|r: &Record| r.args["replicas"] == 3)
        .collect();
    assert!(
        out.contains(&format!(
            "TAMPERED: record {}: content does not match its hash",
            bad[0].seq
        )),
        "{out}"
    );

    // A deleted record.
    let lines: Vec<&str> = pristine.lines().collect();
    let without: String = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    std::fs::write(&path, without).expect("write");
    let (code, out, _) = d.cli(&["audit", "verify"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("TAMPERED: record 3: found seq 4 instead"),
        "{out}"
    );

    // A rollback to an older copy: the exported checkpoint catches it.
    let older: String = lines[..3].iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, &older).expect("write");
    std::fs::write(d.data_dir().join("audit/checkpoints.jsonl"), "")
        .expect("attacker drops checkpoints");
    let (code, out, _) = d.cli(&["audit", "verify"]);
    assert_eq!(
        code, 0,
        "without the kept checkpoint nothing proves the loss: {out}"
    );
    assert!(out.contains("not protected against truncation"), "{out}");
    let (code, out, _) = d.cli(&[
        "audit",
        "verify",
        "--checkpoint",
        export.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("TAMPERED: record 4: the log ends at seq 3"),
        "{out}"
    );

    // A torn last line is reported as a crash, and repaired at the next start.
    std::fs::write(&path, format!("{pristine}{{\"seq\":99,\"ts\":17")).expect("write");
    let (code, out, _) = d.cli(&["audit", "verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("a write cut short by a crash, not tampering"),
        "{out}"
    );
    d.spawn();
    d.stop();
    let recs = records(&d);
    let repair = recs
        .iter()
        .find(|r| r.action == "repair")
        .expect("a repair record");
    assert_eq!(repair.args["torn_bytes"], 17);
    let (code, out, _) = d.cli(&[
        "audit",
        "verify",
        "--checkpoint",
        export.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn ten_thousand_records_across_restarts_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut total = 0;
    for round in 0..4 {
        let (audit, torn) = Audit::open(dir.path(), Default::default()).expect("open");
        assert_eq!(torn, None);
        for i in 0..2500 {
            audit.record(
                "uid 1000 pid 1 local",
                "scale",
                serde_json::json!({ "agent": format!("a{}", i % 50), "replicas": i % 7, "round": round }),
                "ok",
            );
            total += 1;
        }
        audit.close_blocking();
    }
    let (log, cps, key) = read(dir.path()).expect("read");
    let v = verify(&log, &cps, &verifying_key(&key).expect("key"));
    assert!(v.ok(), "{v:?}");
    assert_eq!(v.records, total);
    assert_eq!(
        v.checkpoint,
        Some(total),
        "the close checkpoint covers every record"
    );
    assert_eq!(v.unprotected, 0);
    // Checkpoints every 1000 records plus one per close.
    assert!(cps.len() >= 10, "{}", cps.len());
}

#[test]
fn a_rotated_key_keeps_the_trail_verifiable_with_and_without_an_older_exported_checkpoint() {
    let mut d = BinDaemon::start("[agents.w]\ncommand = [\"sleep\", \"1000\"]\n");
    for n in [2, 1, 3] {
        let (code, _, err) = d.cli(&["scale", "w", &n.to_string()]);
        assert_eq!(code, 0, "{err}");
    }
    let exported = d.dir.path().join("before-rotation.json");
    let (code, _, err) = d.cli(&[
        "audit",
        "checkpoint",
        "--export",
        exported.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{err}");
    let old_pub = std::fs::read_to_string(d.data_dir().join("audit/key.pub")).expect("key.pub");

    let (code, out, err) = d.cli(&["audit", "rotate-key"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("signing key rotated"), "{out}");
    let new_pub = std::fs::read_to_string(d.data_dir().join("audit/key.pub")).expect("key.pub");
    assert_ne!(old_pub, new_pub, "key.pub holds the new key");
    for n in [1, 2] {
        let (code, _, err) = d.cli(&["scale", "w", &n.to_string()]);
        assert_eq!(code, 0, "{err}");
    }
    let (code, _, err) = d.cli(&["audit", "checkpoint"]);
    assert_eq!(code, 0, "{err}");
    let recs = records(&d);
    assert!(
        recs.iter().any(|r| r.action == "key-rotated"),
        "the chain records the rotation"
    );
    // With key.pub (the new key) as the anchor, and with the old exported
    // checkpoint (the old key) as the anchor: both pass across the rotation.
    let (code, out, err) = d.cli(&["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("rotated 1 time"), "{out}");
    assert!(!out.contains("ignored checkpoints"), "{out}");
    let (code, out, err) = d.cli(&[
        "audit",
        "verify",
        "--checkpoint",
        exported.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("ignored checkpoints"), "{out}");
    // The new key's checkpoint covers the records after the rotation.
    let rotated = recs
        .iter()
        .find(|r| r.action == "key-rotated")
        .map(|r| r.seq)
        .expect("rotation record");
    let v = d.json(&["audit", "verify"]);
    assert!(
        v["checkpoint"].as_u64().is_some_and(|c| c >= rotated + 2),
        "{v}"
    );

    // The rotation survives a restart: the daemon signs with the new key.
    d.stop();
    d.spawn();
    let (code, _, err) = d.cli(&["audit", "checkpoint"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = d.cli(&["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("ignored checkpoints"), "{out}");

    // A forged rotation (signed by a key nobody trusts) is refused, and so
    // are the checkpoints of the key it names.
    d.stop();
    let rot_path = d.data_dir().join("audit/rotations.jsonl");
    let text = std::fs::read_to_string(&rot_path).expect("rotations");
    let mut forged: serde_json::Value =
        serde_json::from_str(text.lines().next().expect("a rotation")).expect("json");
    forged["by_old"] = serde_json::Value::String("00".repeat(64));
    std::fs::write(&rot_path, format!("{forged}\n")).expect("forge");
    let (code, out, err) = d.cli(&[
        "audit",
        "verify",
        "--checkpoint",
        exported.to_str().expect("utf-8"),
    ]);
    assert!(
        err.contains("key rotations that do not verify"),
        "{out}{err}"
    );
    assert!(out.contains("ignored checkpoints"), "{out}");
    assert_eq!(code, 1, "pinned to the old key, untrusted checkpoints fail");
    // Removing the rotations altogether fails the same way.
    std::fs::remove_file(&rot_path).expect("remove rotations");
    let (code, out, err) = d.cli(&[
        "audit",
        "verify",
        "--checkpoint",
        exported.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("does not lead to"), "{err}");
}
