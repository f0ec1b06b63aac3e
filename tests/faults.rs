//! Correctness under faults, against the real binary: what was
//! acknowledged is durable and true, and a change that could not be saved
//! is not applied.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use autonomos::proto::Request;
use common::*;

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// A small tmpfs mounted over a directory for the length of a test (so the
/// disk can really fill up). Needs root (mount); without it the test skips,
/// and fails under AUTONOMOS_REQUIRE_TOOLS=1.
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    fn mount(path: &Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(path).expect("mount point");
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(path)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(SmallDisk {
                path: path.to_path_buf(),
            }),
            other => {
                let why = format!("cannot mount a small tmpfs (needs root): {other:?}");
                if std::env::var("AUTONOMOS_REQUIRE_TOOLS").as_deref() == Ok("1") {
                    panic!("{why} (AUTONOMOS_REQUIRE_TOOLS=1)");
                }
                eprintln!("SKIPPED: {why}");
                None
            }
        }
    }

    /// Writes a file until the disk is full; returns its path.
    fn fill(&self) -> PathBuf {
        let f = self.path.join("filler");
        let mut file = std::fs::File::create(&f).expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        while file.write_all(&chunk).is_ok() {}
        // Whatever is left below a chunk.
        while file.write_all(&chunk[..512]).is_ok() {}
        let _ = file.sync_all();
        f
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

fn audit_records(data: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(data.join("audit").join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn a_change_that_cannot_be_saved_is_not_applied_and_its_audit_record_waits_for_the_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    std::fs::write(
        dir.path().join("autonomos.toml"),
        format!(
            r#"
[metrics]
listen = "127.0.0.1:{port}"

[agents.web]
command = ["sleep", "1000"]
replicas = 2
"#
        ),
    )
    .expect("config");
    let Some(disk) = SmallDisk::mount(&dir.path().join("data"), "16m") else {
        return;
    };
    let mut d = BinDaemon { child: None, dir };
    d.spawn();
    let running = |s: &autonomos::proto::FleetStatus| {
        s.agents
            .iter()
            .find(|a| a.name == "web")
            .map_or(0, |a| a.running)
    };
    d.wait_status("web running twice", SECS(10), |s| running(s) == 2);

    let (code, out, err) = d.cli(&["incidents", "open", "web is slow", "--agent", "web"]);
    assert_eq!(code, 0, "{out}{err}");
    let filler = disk.fill();
    let (code, out, err) = d.cli(&["scale", "web", "3"]);
    assert_eq!(code, 1, "a scale that cannot be saved fails: {out}{err}");
    assert!(
        err.contains("could not record the change durably") && err.contains("not applied"),
        "{err}"
    );
    // Not applied: still 2 desired, and no third replica ever starts.
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(1500) {
        let s = d.status();
        let web = s.agents.iter().find(|a| a.name == "web").expect("web");
        assert_eq!(web.desired, 2, "the refused scale changed nothing");
        assert!(web.replicas.len() <= 2, "{:?}", web.replicas);
        std::thread::sleep(Duration::from_millis(100));
    }
    // The data dir is said to be failing: status (text and JSON), metrics,
    // and the shipped alert rule.
    let s = d.status();
    assert!(
        s.storage.iter().any(|f| f.part == "state"),
        "{:?}",
        s.storage
    );
    let (_, text, _) = d.cli(&["status"]);
    assert!(text.contains("DATA DIR FAILING"), "{text}");
    let (_, body) = http_get(&format!("127.0.0.1:{port}"), "/metrics").expect("scrape");
    let errors: f64 = body
        .lines()
        .find(|l| l.starts_with("autonomos_storage_errors_total{part=\"state\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no storage error counter in:\n{body}"));
    assert!(errors >= 1.0, "storage errors counted: {errors}");
    d.wait_json(&["alerts"], "storage-failing fires", SECS(15), |v| {
        v["alerts"].as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x["id"] == "storage-failing" && x["state"] == "firing")
        })
    });

    // Operator actions go on while the disk is full: their audit records
    // are kept (the answers say they are not on disk yet) and the data dir
    // is said to be failing for the audit trail too.
    let mut warned = 0;
    for i in 0..40 {
        let (_, _, err) = d.cli(&["alerts", "ack", &format!("nothing-{i}")]);
        if err.contains("not on disk yet") && err.contains("kept and retried") {
            warned += 1;
        }
    }
    assert!(warned > 0, "no answer said its audit record waits");
    let s = d.status();
    assert!(
        s.storage.iter().any(|f| f.part == "audit"),
        "{:?}",
        s.storage
    );

    // Room again: the kept audit records reach the disk, and a new change
    // is saved and applied.
    std::fs::remove_file(&filler).expect("free the disk");
    let (code, out, err) = d.cli(&["scale", "web", "3"]);
    assert_eq!(code, 0, "{out}{err}");
    d.wait_status("web runs 3 and the data dir is healthy", SECS(15), |s| {
        running(s) == 3 && s.storage.is_empty()
    });
    let records = audit_records(&d.data_dir());
    let scales: Vec<&str> = records
        .iter()
        .filter(|r| r["action"] == "scale")
        .filter_map(|r| r["result"].as_str())
        .collect();
    assert_eq!(
        scales.len(),
        2,
        "both requests are on the trail: {scales:?}"
    );
    assert!(
        scales[0].starts_with("error: could not record"),
        "{scales:?}"
    );
    assert!(
        scales[1].starts_with("ok: scaled web from 2 to 3"),
        "{scales:?}"
    );
    let acks = records.iter().filter(|r| r["action"] == "ack").count();
    assert_eq!(acks, 40, "every acknowledgement is on the trail");
    // The incident's timeline holds the applied scale, not the refused one.
    let inc = d.json(&["incidents", "show", "1"]);
    let scales: Vec<&serde_json::Value> = inc["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter(|e| e["text"] == "scale web to 3")
        .collect();
    assert_eq!(scales.len(), 1, "{inc:#}");
    let (code, out, _) = d.cli(&["audit", "verify"]);
    assert_eq!(code, 0, "the chain is whole across the failure: {out}");

    // What runs is what a restart runs.
    d.stop();
    d.spawn();
    d.wait_status("web runs 3 after a restart", SECS(10), |s| running(s) == 3);
    d.stop();
    drop(disk);
}

#[test]
fn every_answered_request_is_on_the_audit_trail_after_a_kill_9() {
    // Many clients send mutating requests as fast as they can (scales, and
    // acknowledgements that match nothing: refused, but still operator
    // actions on the trail); the daemon is killed the moment the N-th
    // answer arrives. Every answered request must be on the trail.
    let mut d = BinDaemon::start(
        r#"
[agents.web]
command = ["sleep", "1000"]
replicas = 1
"#,
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let recorded = |d: &BinDaemon| {
        audit_records(&d.data_dir())
            .iter()
            .filter(|r| r["action"] == "scale" || r["action"] == "ack")
            .count()
    };
    for round in 0..3 {
        const KILL_AT: usize = 400;
        d.wait_status("web running", SECS(10), |s| {
            s.agents.iter().any(|a| a.name == "web" && a.running >= 1)
        });
        let before = recorded(&d);
        let socket = d.socket();
        let pid = d.pid();
        let answered = rt.block_on(async move {
            let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let mut tasks = Vec::new();
            for c in 0..12u32 {
                let (socket, answered) = (socket.clone(), answered.clone());
                tasks.push(tokio::spawn(async move {
                    let Ok(mut client) = autonomos::client::Client::connect_socket(&socket).await
                    else {
                        return;
                    };
                    for i in 0u32.. {
                        let req = if c % 3 == 0 {
                            Request::Scale {
                                agent: "web".into(),
                                replicas: 1 + (c + i) % 2,
                            }
                        } else {
                            Request::Ack {
                                pattern: format!("nothing-{c}-{i}"),
                            }
                        };
                        match client.request(req).await {
                            Ok(_) | Err(autonomos::client::ClientError::Request(_)) => {
                                let n = answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                if n + 1 == KILL_AT
                                    && let Some(p) = rustix::process::Pid::from_raw(pid)
                                {
                                    let _ = rustix::process::kill_process(
                                        p,
                                        rustix::process::Signal::KILL,
                                    );
                                }
                            }
                            Err(_) => return,
                        }
                    }
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
            answered.load(std::sync::atomic::Ordering::SeqCst)
        });
        if let Some(mut c) = d.child.take() {
            let _ = c.wait();
        }
        let on_trail = recorded(&d) - before;
        assert!(
            answered >= KILL_AT,
            "round {round}: only {answered} answers"
        );
        assert!(
            on_trail >= answered,
            "round {round}: {answered} requests were answered but only {on_trail} are on the audit trail"
        );
        d.spawn();
    }
    d.stop();
}
