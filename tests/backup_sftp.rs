//! Backups to repositories on another machine over SFTP: a real OpenSSH
//! server on 127.0.0.1 (Debian `openssh-server`), the system's `ssh`
//! client, and the real `restic` CLI (Debian `restic`) reading the remote
//! repository back over SFTP.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use autonomos::core::repo::BackupRepo;
use autonomos::daemon::backup::{self, Job};
use autonomos::daemon::restore;
use common::sshd::{Sshd, sshd_available, start_sshd_with};
use common::{BinDaemon, have_tool};

/// `text` parsed as the config would, with the test's ssh config.
fn repo(text: &str, sshd: &Sshd, timeout: Duration) -> BackupRepo {
    let mut r = BackupRepo::parse(text, None).expect("repository");
    if let BackupRepo::Sftp(t) = &mut r {
        t.ssh_config = Some(sshd.config());
        t.timeout = timeout;
    }
    r
}

fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("readable").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).expect("under").to_path_buf();
                out.push((rel, std::fs::read(&p).expect("read")));
            }
        }
    }
    out.sort();
    out
}

struct Setup {
    dir: tempfile::TempDir,
    data: PathBuf,
    ctx: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let ctx = data.join("contexts/worker");
    std::fs::create_dir_all(ctx.join("memory")).expect("dirs");
    std::fs::write(ctx.join("memory/notes.md"), "remember the milk\n").expect("write");
    let big: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
    std::fs::write(ctx.join("memory/vectors.bin"), big).expect("write");
    Setup { dir, data, ctx }
}

fn job(s: &Setup, repositories: Vec<BackupRepo>) -> Job {
    Job {
        data_dir: s.data.clone(),
        repositories,
        config_file: None,
        contexts: vec![s.ctx.clone()],
        reason: "test".into(),
        keep: (None, None, None),
    }
}

fn tools() -> bool {
    sshd_available() && have_tool("restic", "restic")
}

#[test]
fn an_sftp_primary_and_mirror_are_written_read_back_by_restic_and_restored() {
    if !tools() {
        return;
    }
    let sshd = start_sshd_with("");
    let s = setup();
    let primary_dir = s.dir.path().join("remote-primary");
    let mirror_dir = s.dir.path().join("remote mirror");
    // restic's two spellings: the short form (port from the ssh config)
    // and the URL form with a port and an absolute path.
    let primary = repo(
        &format!("sftp:testhost:{}", primary_dir.display()),
        &sshd,
        Duration::from_secs(30),
    );
    let mirror = repo(
        &format!("sftp://testhost:{}/{}", sshd.port, mirror_dir.display()),
        &sshd,
        Duration::from_secs(30),
    );
    let written = backup::run(&job(&s, vec![primary.clone(), mirror.clone()])).expect("backup");
    assert!(written.iter().all(|w| w.error.is_none()), "{written:?}");
    assert_eq!(written[0].repository, primary.to_string());
    // The repositories are really on the "remote" side, private to its user.
    assert!(primary_dir.join("config").is_file());
    assert!(mirror_dir.join("config").is_file());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&primary_dir)
        .expect("dir")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "repository dir mode {mode:o}");
    assert!(primary_dir.join("data/00").is_dir(), "pack dirs made");

    // A second, changed backup with retention removes files remotely.
    std::fs::write(s.ctx.join("memory/notes.md"), "changed\n").expect("write");
    let second = backup::run(&Job {
        keep: (Some(1), None, None),
        ..job(&s, vec![primary.clone(), mirror.clone()])
    })
    .expect("second backup");
    assert!(second.iter().all(|w| w.error.is_none()), "{second:?}");
    assert_eq!(second[0].forgotten, 1, "{second:?}");
    for r in [&primary, &mirror] {
        let snaps = backup::list(r, &s.data).expect("list over sftp");
        assert_eq!(snaps.len(), 1, "{r}");
        let (errors, warnings) = backup::verify(r, &s.data, true).expect("check over sftp");
        assert!(
            errors.is_empty() && warnings.is_empty(),
            "{errors:?} {warnings:?}"
        );
    }

    // The real restic reads the remote repository over SFTP.
    let pf = backup::password_file(&s.data);
    let restic = |r: &Path, args: &[&str]| {
        let out = std::process::Command::new("restic")
            .arg("-r")
            .arg(format!("sftp:testhost:{}", r.display()))
            .arg("-o")
            .arg(format!(
                "sftp.command=ssh -F {} testhost -s sftp",
                sshd.config().display()
            ))
            .arg("--password-file")
            .arg(&pf)
            .arg("--no-cache")
            .args(args)
            .output()
            .expect("restic runs");
        assert!(
            out.status.success(),
            "restic {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let snaps: serde_json::Value =
        serde_json::from_str(&restic(&primary_dir, &["snapshots", "--json"])).expect("json");
    assert_eq!(snaps.as_array().map(|a| a.len()), Some(1), "{snaps}");
    restic(&mirror_dir, &["check", "--read-data"]);
    let target = s.data.join("by-restic");
    let id = snaps[0]["short_id"].as_str().expect("id").to_string();
    restic(
        &primary_dir,
        &["restore", &id, "--target", target.to_str().expect("utf-8")],
    );
    let inner = target.join(s.ctx.strip_prefix("/").expect("absolute"));
    assert_eq!(files(&inner), files(&s.ctx));

    // And Autonomos restores from the remote primary.
    let snaps = backup::list(&primary, &s.data).expect("list");
    let dest = s.data.join("restored");
    restore::restore_dir(&primary, &s.data, &snaps[0].id, &s.ctx, &dest).expect("restore");
    assert_eq!(files(&dest), files(&s.ctx));
}

/// Accepts connections and then says nothing more than `greeting`: a
/// host that hangs before (empty) or after (an SSH banner) the banner.
fn silent_listener(greeting: &'static [u8]) -> (u16, std::thread::JoinHandle<()>) {
    use std::io::Write;
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let h = std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut c in l.incoming().take(4).flatten() {
            let _ = c.write_all(greeting);
            held.push(c);
        }
        std::thread::sleep(Duration::from_secs(30));
    });
    (port, h)
}

/// A TCP relay to `to` that stops relaying (both ways, sockets kept open)
/// once `after` bytes went from the client to the server: a host that
/// stops answering in the middle of a session.
fn freezing_relay(to: u16, after: usize) -> u16 {
    use std::io::{Read, Write};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for client in l.incoming().flatten() {
            let server = std::net::TcpStream::connect(("127.0.0.1", to)).expect("sshd");
            let frozen = Arc::new(AtomicBool::new(false));
            let sent = Arc::new(AtomicUsize::new(0));
            for (mut from, mut to, count) in [
                (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                    true,
                ),
                (server, client, false),
            ] {
                let (frozen, sent) = (frozen.clone(), sent.clone());
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16384];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 || frozen.load(Ordering::SeqCst) {
                            break;
                        }
                        if count && sent.fetch_add(n, Ordering::SeqCst) + n > after {
                            frozen.store(true, Ordering::SeqCst);
                            break;
                        }
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    // Hold the socket open, silent, like a hung host.
                    std::thread::sleep(Duration::from_secs(60));
                    drop((from, to));
                });
            }
        }
    });
    port
}

#[test]
fn dead_and_silent_mirrors_fail_within_their_limit_naming_the_host_and_the_primary_is_kept() {
    if !tools() {
        return;
    }
    let sshd = start_sshd_with("");
    let s = setup();
    let primary = s.dir.path().join("local-primary");
    let closed = common::free_port();
    let (silent, _h) = silent_listener(b"");
    let (mute, _h2) = silent_listener(b"SSH-2.0-OpenSSH_9.2p1\r\n");
    let limit = Duration::from_secs(3);
    let refused = repo(&format!("sftp://127.0.0.1:{closed}//srv/x"), &sshd, limit);
    let hangs = repo(&format!("sftp://127.0.0.1:{silent}//srv/y"), &sshd, limit);
    let after_banner = repo(&format!("sftp://127.0.0.1:{mute}//srv/z"), &sshd, limit);
    let good = repo(
        &format!("sftp:testhost:{}", s.dir.path().join("good").display()),
        &sshd,
        Duration::from_secs(30),
    );
    let t = Instant::now();
    let written = backup::run(&job(
        &s,
        vec![
            BackupRepo::Local(primary.clone()),
            refused,
            hangs,
            good,
            after_banner,
        ],
    ))
    .expect("the primary is written");
    let took = t.elapsed();
    assert!(written[0].snapshot.is_some(), "{written:?}");
    assert!(
        written[3].snapshot.is_some(),
        "the good mirror: {written:?}"
    );
    let e1 = written[1].error.clone().expect("refused fails");
    assert!(e1.contains(&format!("127.0.0.1:{closed}")), "{e1}");
    assert!(e1.contains("refused"), "ssh's cause is named: {e1}");
    let e2 = written[2].error.clone().expect("silent fails");
    assert!(e2.contains(&format!("127.0.0.1:{silent}")), "{e2}");
    assert!(
        e2.contains("timed out") || e2.contains("no answer"),
        "the time limit is named: {e2}"
    );
    let e3 = written[4]
        .error
        .clone()
        .expect("silent after the banner fails");
    assert!(e3.contains(&format!("127.0.0.1:{mute}")), "{e3}");
    assert!(
        e3.contains("timed out") || e3.contains("no answer"),
        "the time limit is named: {e3}"
    );
    eprintln!("refused: {e1}\nsilent: {e2}\nafter banner: {e3}\ntook {took:?}");
    // Mirrors run side by side: the silent one costs about one limit.
    assert!(took < Duration::from_secs(25), "took {took:?}");
    assert_eq!(
        backup::list(&BackupRepo::Local(primary), &s.data)
            .expect("list")
            .len(),
        1
    );
}

#[test]
fn the_daemon_backs_up_to_an_sftp_mirror_from_its_config_and_doctor_checks_it() {
    if !tools() {
        return;
    }
    let sshd = start_sshd_with("");
    let remote = tempfile::tempdir().expect("tempdir");
    let mirror = remote.path().join("fleet");
    // A mirror whose host refuses: ssh's own words must reach the operator
    // (the daemon reaps orphans; it must leave ssh to the backup).
    let closed = common::free_port();
    let toml = format!(
        r#"
[backup]
repositories = ["backups", "sftp:testhost:{}", "sftp://127.0.0.1:{closed}//srv/x"]
ssh_config = "{}"
remote_timeout = "20s"

[agents.w]
command = "sleep 1000"
"#,
        mirror.display(),
        sshd.config().display()
    );
    let d = BinDaemon::start(&toml);
    d.wait_status("w running", Duration::from_secs(15), |s| {
        s.agents[0].running == 1
    });
    let (code, out, err) = d.cli(&["backup"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("sftp:testhost:{}", mirror.display())),
        "{out}"
    );
    assert!(mirror.join("config").is_file(), "{out}");
    assert!(
        out.contains(&format!("MIRROR FAILED: sftp://127.0.0.1:{closed}//srv/x: cannot open SFTP: connect to host 127.0.0.1 port {closed}: Connection refused")),
        "{out}"
    );
    let listed = d.json(&["backup", "list", "--repository", "1"]);
    assert_eq!(listed.as_array().map(|a| a.len()), Some(1), "{listed}");
    let (_, doc, _) = d.cli(&["doctor"]);
    let line = doc
        .lines()
        .find(|l| l.contains("backup mirror 1"))
        .unwrap_or_else(|| panic!("{doc}"));
    assert!(line.contains("metadata verified"), "{doc}");
    let line = doc
        .lines()
        .find(|l| l.contains("backup mirror 2"))
        .unwrap_or_else(|| panic!("{doc}"));
    assert!(line.contains("Connection refused"), "{doc}");
}

#[test]
fn a_mirror_that_stops_answering_mid_backup_fails_within_its_limit() {
    if !tools() {
        return;
    }
    let sshd = start_sshd_with("");
    let s = setup();
    // The handshake and the repository's creation pass; the packs do not.
    let relay = freezing_relay(sshd.port, 200_000);
    let remote = s.dir.path().join("frozen");
    // Through the relay, with sshd's own host key.
    let cfg = std::fs::read_to_string(sshd.config())
        .expect("ssh config")
        .replace("Host testhost", "Host relayhost")
        .replace(
            &format!("Port {}\n", sshd.port),
            &format!("Port {relay}\n  HostKeyAlias [127.0.0.1]:{}\n", sshd.port),
        );
    let cfg_path = s.dir.path().join("relay_ssh_config");
    std::fs::write(&cfg_path, cfg).expect("relay config");
    let mut frozen = repo(
        &format!("sftp:relayhost:{}", remote.display()),
        &sshd,
        Duration::from_secs(3),
    );
    if let BackupRepo::Sftp(t) = &mut frozen {
        t.ssh_config = Some(cfg_path);
    }
    let primary = s.dir.path().join("local");
    let t = Instant::now();
    let written = backup::run(&job(&s, vec![BackupRepo::Local(primary.clone()), frozen]))
        .expect("the primary is written");
    let took = t.elapsed();
    assert!(written[0].snapshot.is_some(), "{written:?}");
    let e = written[1].error.clone().expect("the frozen mirror fails");
    assert!(e.contains("no answer within 3s"), "{e}");
    assert!(
        remote.join("config").exists() || e.contains("create"),
        "it got going first: {e}"
    );
    // One limit after the last byte (plus the work before), not one per file.
    assert!(took < Duration::from_secs(20), "took {took:?}: {e}");
    eprintln!("frozen: {e}\ntook {took:?}");
}
