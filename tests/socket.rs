//! The control socket: permissions from the first instant, runtime-dir
//! checks, peer uid checks, hostile and idle connections, versions.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::*;

const ONE: &str = "[agents.w]\ncommand = [\"sleep\", \"1000\"]\n";

fn hello() -> String {
    format!(
        r#"{{"type":"hello","proto_version":{},"app_version":"{}"}}"#,
        autonomos::proto::PROTO_VERSION,
        autonomos::proto::APP_VERSION
    )
}

/// A good client: handshake, then `status` over the raw protocol.
fn good_status(socket: &std::path::Path) -> Result<(), String> {
    let mut s = UnixStream::connect(socket).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    s.write_all(&frame(&hello())).map_err(|e| e.to_string())?;
    let h = read_frame(&mut s).ok_or("no hello")?;
    if h["type"] != "hello" {
        return Err(format!("refused: {h}"));
    }
    s.write_all(&frame(
        r#"{"type":"request","id":7,"request":{"op":"status"}}"#,
    ))
    .map_err(|e| e.to_string())?;
    let r = read_frame(&mut s).ok_or("no response")?;
    if r["id"] == 7 && r["result"]["Ok"]["kind"] == "status" {
        Ok(())
    } else {
        Err(format!("bad response {r}"))
    }
}

#[test]
fn the_socket_is_never_wider_than_0600_across_100_daemon_starts() {
    let mut d = BinDaemon::start("[agents.w]\ncommand = [\"sleep\", \"1000\"]\nreplicas = 0\n");
    let socket = d.socket();
    d.stop();
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(AtomicU32::new(0));
    let wide = Arc::new(AtomicU32::new(0));
    let (s2, seen2, wide2, path) = (stop.clone(), seen.clone(), wide.clone(), socket.clone());
    let watcher = std::thread::spawn(move || {
        while !s2.load(Ordering::Relaxed) {
            if let Ok(m) = std::fs::symlink_metadata(&path) {
                seen2.fetch_add(1, Ordering::Relaxed);
                let mode = m.permissions().mode() & 0o777;
                if mode & !0o600 != 0 {
                    wide2.store(mode, Ordering::Relaxed);
                }
            }
        }
    });
    for _ in 0..100 {
        d.spawn();
        d.stop();
    }
    stop.store(true, Ordering::Relaxed);
    watcher.join().expect("watcher");
    assert!(
        seen.load(Ordering::Relaxed) > 100,
        "the stat loop saw the socket"
    );
    assert_eq!(
        wide.load(Ordering::Relaxed),
        0,
        "socket mode {:o} seen",
        wide.load(Ordering::Relaxed)
    );
}

fn daemon_in(runtime_parent: &std::path::Path) -> std::process::Output {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.toml"), ONE).expect("config");
    std::process::Command::new(env!("CARGO_BIN_EXE_autonomos"))
        .env("XDG_RUNTIME_DIR", runtime_parent)
        .args(["daemon", "--config"])
        .arg(dir.path().join("a.toml"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .expect("runs")
}

#[test]
fn unsafe_runtime_dirs_are_refused_naming_the_path_and_the_problem() {
    // Group- and world-accessible.
    let t = tempfile::tempdir().expect("tempdir");
    let rt = t.path().join("autonomos");
    std::fs::create_dir(&rt).expect("mkdir");
    std::fs::set_permissions(&rt, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = daemon_in(t.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&rt.display().to_string()) && err.contains("mode 0755"),
        "{err}"
    );

    // A symlink (to a perfectly private dir).
    let t = tempfile::tempdir().expect("tempdir");
    let real = t.path().join("real");
    std::fs::create_dir(&real).expect("mkdir");
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    std::os::unix::fs::symlink(&real, t.path().join("autonomos")).expect("symlink");
    let err = String::from_utf8_lossy(&daemon_in(t.path()).stderr).into_owned();
    assert!(err.contains("is a symlink"), "{err}");

    // Owned by someone else (needs root to arrange).
    if rustix::process::geteuid().is_root() {
        let t = tempfile::tempdir().expect("tempdir");
        let rt = t.path().join("autonomos");
        std::fs::create_dir(&rt).expect("mkdir");
        std::fs::set_permissions(&rt, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        std::os::unix::fs::chown(&rt, Some(65534), Some(65534)).expect("chown");
        let err = String::from_utf8_lossy(&daemon_in(t.path()).stderr).into_owned();
        assert!(err.contains("owned by uid 65534"), "{err}");
    } else {
        eprintln!("SKIPPED part: foreign-owned runtime dir needs root");
    }
}

#[test]
fn another_uid_is_refused_even_when_the_socket_was_loosened_to_0666() {
    if !have_tool("setpriv", "util-linux") {
        return;
    }
    if !rustix::process::geteuid().is_root() {
        if std::env::var("AUTONOMOS_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("this test switches uid with setpriv and must run as root");
        }
        eprintln!("SKIPPED: switching to another uid needs root");
        return;
    }
    let d = BinDaemon::start(ONE);
    // Open the way by hand: every directory on the path and the socket itself.
    let mut p = d.socket();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).expect("chmod socket");
    while let Some(parent) = p.parent().map(|x| x.to_path_buf()) {
        if parent == std::path::Path::new("/tmp")
            || parent.as_os_str().is_empty()
            || parent == std::path::Path::new("/")
        {
            break;
        }
        let mode = std::fs::metadata(&parent)
            .expect("stat")
            .permissions()
            .mode();
        std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(mode | 0o711))
            .expect("chmod dir");
        p = parent;
    }
    let out = std::process::Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_autonomos"))
        .arg("status")
        .env_clear()
        .env("XDG_RUNTIME_DIR", d.runtime_dir())
        .env("AUTONOMOS_DATA_DIR", d.data_dir())
        .output()
        .expect("setpriv runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("permission denied: this daemon belongs to uid 0, and you are uid 65534"),
        "{err}"
    );
    // The owner is still served.
    assert!(good_status(&d.socket()).is_ok());
    // The refusal is in the daemon's log.
    wait_log(&d.data_dir(), "the refusal", |l| {
        l.contains("connection refused: not the daemon's user")
    });
    // And on the audit trail, with who tried.
    let t = std::time::Instant::now();
    loop {
        let (_, log, _) = d.cli(&["audit", "log", "-n", "50"]);
        if log.contains("connection-refused") && log.contains("uid 65534") {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no audit record of the refusal:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn ten_thousand_malformed_frames_close_only_their_connections() {
    let d = BinDaemon::start(ONE);
    let socket = d.socket();
    let stop = Arc::new(AtomicBool::new(false));
    let (stop2, sock2) = (stop.clone(), socket.clone());
    let good = std::thread::spawn(move || {
        let mut n = 0;
        while !stop2.load(Ordering::Relaxed) {
            good_status(&sock2).unwrap_or_else(|e| panic!("good client failed after {n}: {e}"));
            n += 1;
        }
        n
    });
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..10_000u32 {
        let Ok(mut s) = UnixStream::connect(&socket) else {
            panic!("connect {i} failed");
        };
        let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
        let payload: Vec<u8> = match i % 6 {
            // Random bytes.
            0 => (0..(rand() % 64 + 1)).map(|_| rand() as u8).collect(),
            // A 4 GiB length prefix.
            1 => [0xff, 0xff, 0xff, 0xff, b'{'].to_vec(),
            // A truncated frame.
            2 => {
                let mut f = frame(&hello());
                f.truncate(f.len() / 2);
                f
            }
            // Valid framing, wrong types.
            3 => frame(r#"{"type":"hello","proto_version":"one","app_version":7}"#),
            // A request before the hello.
            4 => frame(r#"{"type":"request","id":1,"request":{"op":"shutdown"}}"#),
            // A good hello, then garbage.
            _ => {
                let mut f = frame(&hello());
                f.extend(frame(
                    r#"{"type":"request","id":"x","request":{"op":"nope"}}"#,
                ));
                f
            }
        };
        let _ = s.write_all(&payload);
        if i % 6 == 5 {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = read_frame(&mut s);
        }
        drop(s);
    }
    stop.store(true, Ordering::Relaxed);
    let served = good.join().expect("good client thread");
    assert!(
        served > 10,
        "the good client was served {served} times meanwhile"
    );
    // The daemon is alive, the fleet untouched, nothing panicked.
    assert!(good_status(&socket).is_ok());
    let s = d.status();
    assert_eq!(s.agents[0].running, 1);
    let log = std::fs::read_to_string(d.data_dir().join("logs/daemon.jsonl")).expect("log");
    assert!(!log.contains("panicked"));
}

#[test]
fn a_thousand_idle_connections_do_not_keep_a_real_client_out() {
    // This test process needs the descriptors too.
    let lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let _ = rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: lim.maximum,
            maximum: lim.maximum,
        },
    );
    let d = BinDaemon::start(ONE);
    let idle: Vec<UnixStream> = (0..1000)
        .map(|i| UnixStream::connect(d.socket()).unwrap_or_else(|e| panic!("idle {i}: {e}")))
        .collect();
    let t = Instant::now();
    good_status(&d.socket()).expect("served");
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "a real client waited {took:?}"
    );
    drop(idle);
}

#[test]
fn a_protocol_version_mismatch_is_refused_naming_both_versions() {
    let d = BinDaemon::start(ONE);
    let mut s = UnixStream::connect(d.socket()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(&frame(
        r#"{"type":"hello","proto_version":99,"app_version":"9.9.9"}"#,
    ))
    .expect("write");
    let r = read_frame(&mut s).expect("an answer");
    assert_eq!(r["type"], "refused");
    let reason = r["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains(&format!(
            "speaks protocol {}",
            autonomos::proto::PROTO_VERSION
        )) && reason.contains("speaks protocol 99")
            && reason.contains("9.9.9")
            && reason.contains(autonomos::proto::APP_VERSION),
        "{reason}"
    );
}
