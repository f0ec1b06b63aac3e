//! Remote control over a real OpenSSH server on 127.0.0.1 (its own host key,
//! user key and config in a temp dir): `--host ssh://` for verbs and attach
//! (ssh + `dial-stdio`), and tmux-style `ssh -t host autonomos attach`.
//! Needs the Debian packages openssh-server and openssh-client.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::sshd::*;
use common::*;

const FLEET: &str = "[agents.worker]\ncommand = [\"sleep\", \"1000\"]\n\n[agents.other]\ncommand = [\"sleep\", \"1000\"]\n";

fn pids(s: &autonomos::proto::FleetStatus) -> Vec<i32> {
    s.agents
        .iter()
        .flat_map(|a| a.replicas.iter().filter_map(|r| r.pid))
        .collect()
}

#[test]
fn verbs_work_over_ssh_and_a_killed_ssh_client_leaves_the_fleet_untouched() {
    if !sshd_available() {
        return;
    }
    let d = BinDaemon::start(FLEET);
    let sshd = start_sshd(&d);
    d.wait_status("up", Duration::from_secs(10), |s| {
        s.agents.iter().all(|a| a.running == 1)
    });

    // scale through ssh + dial-stdio
    let out = remote(&d, &sshd, &["scale", "worker", "3", "--json"])
        .output()
        .expect("runs");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(v["ok"], true, "{v}");
    let s = d.wait_status("3 workers", Duration::from_secs(10), |s| {
        s.agents[0].running == 3
    });
    // status over ssh matches the local view
    let out = remote(&d, &sshd, &["status", "--json"])
        .output()
        .expect("runs");
    let rs: autonomos::proto::FleetStatus =
        serde_json::from_slice(&out.stdout).expect("remote status");
    assert_eq!(rs.daemon_pid, s.daemon_pid);
    assert_eq!(rs.agents[0].desired, 3);
    // the daemon recorded who did it, and that it came over ssh
    wait_log(&d.data_dir(), "an audit line for the remote scale", |l| {
        l.contains("operator request")
            && l.contains("via ssh from 127.0.0.1")
            && l.contains("Scale")
    });

    // attach over ssh, then kill the ssh client mid-subscription
    let before = d.status();
    let mut attach = remote(&d, &sshd, &["attach"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("attach");
    let attach_pid = attach.id() as i32;
    let t = Instant::now();
    let ssh_pid = loop {
        let mut kids = Vec::new();
        for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
            if let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok())
                && stat_field(p, 1).as_deref() == Some(attach_pid.to_string().as_str())
                && cmdline(p).starts_with("ssh ")
            {
                kids.push(p);
            }
        }
        // Wait until the remote side subscribed (dial-stdio is running there).
        let dialing = !pids_where(|p| cmdline(p).ends_with("dial-stdio")).is_empty();
        if let Some(&k) = kids.first()
            && dialing
        {
            break k;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "attach never connected over ssh"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(500));
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(ssh_pid).expect("pid"),
        rustix::process::Signal::KILL,
    )
    .expect("kill ssh");
    let status = attach.wait().expect("attach exits");
    assert!(!status.success(), "attach notices the lost link");
    let out = attach
        .wait_with_output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    let _ = out;
    // The daemon and the fleet are exactly as before.
    std::thread::sleep(Duration::from_millis(500));
    let after = d.status();
    assert_eq!(after.daemon_pid, before.daemon_pid);
    assert_eq!(pids(&after), pids(&before), "the fleet was touched");
    // The remote relay went away with the link.
    let t = Instant::now();
    loop {
        let dialing = !pids_where(|p| cmdline(p).ends_with("dial-stdio") && alive(p)).is_empty();
        if !dialing {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "dial-stdio outlived its ssh link"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn tmux_style_ssh_t_attach_works_and_dropping_it_leaves_the_fleet() {
    if !sshd_available() {
        return;
    }
    let d = BinDaemon::start(FLEET);
    let sshd = start_sshd(&d);
    let before = d.wait_status("up", Duration::from_secs(10), |s| {
        s.agents.iter().all(|a| a.running == 1)
    });
    let mut ssh = Command::new("ssh")
        .arg("-tt")
        .arg("-F")
        .arg(sshd.config())
        .arg("testhost")
        // No local terminal here, so give the remote one a size.
        .arg(format!(
            "stty cols 120 rows 40; {} attach",
            env!("CARGO_BIN_EXE_autonomos")
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ssh -t");
    let mut stdout = ssh.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            match std::io::Read::read(&mut stdout, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
            if String::from_utf8_lossy(&all).contains("worker") {
                break;
            }
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    let text = reader.join().expect("reader");
    // A terminal on the far side gets the console itself.
    assert!(text.contains("Autonomos"), "{text}");
    assert!(text.contains("worker"), "{text}");
    // The link drops.
    let _ = ssh.kill();
    let _ = ssh.wait();
    std::thread::sleep(Duration::from_millis(500));
    let after = d.status();
    assert_eq!(pids(&after), pids(&before));
    // The remote attach process went away too (SIGHUP from the closed session).
    let t = Instant::now();
    loop {
        let attached =
            !pids_where(|p| cmdline(p).ends_with("autonomos attach") && alive(p)).is_empty();
        if !attached {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "remote attach outlived its session"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The daemon runs with one runtime dir (as under systemd), the ssh login
/// gets another: the remote side finds the daemon by its data dir (the
/// pointer file there), or by `--remote-socket`. A remote host without
/// `autonomos` on its PATH gets an error that names `--remote-bin`.
#[test]
fn a_login_with_another_runtime_dir_finds_the_daemon_by_its_data_dir() {
    if !sshd_available() {
        return;
    }
    let d = BinDaemon::start("[agents.w]\ncommand = [\"sleep\", \"1000\"]\n");
    let login_runtime = d.dir.path().join("login-runtime");
    std::fs::create_dir_all(&login_runtime).expect("mkdir");
    std::fs::set_permissions(
        &login_runtime,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .expect("chmod");
    let sshd = start_sshd_env(&d, &format!("XDG_RUNTIME_DIR={}", login_runtime.display()));
    let data = d.data_dir().display().to_string();
    let out = remote(&d, &sshd, &["--remote-data-dir", &data, "status", "--json"])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: autonomos::proto::FleetStatus = serde_json::from_slice(&out.stdout).expect("status");
    assert_eq!(s.daemon_pid as i32, d.pid());

    // The socket named outright works too, whatever the data dir says.
    let socket = d.socket().display().to_string();
    let out = remote(
        &d,
        &sshd,
        &[
            "--remote-data-dir",
            "/nonexistent",
            "--remote-socket",
            &socket,
            "status",
        ],
    )
    .output()
    .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // No daemon for the data dir named: the error says what to pass.
    let out = remote(&d, &sshd, &["--remote-data-dir", "/nonexistent", "status"])
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("--remote-socket") && err.contains("--remote-data-dir"),
        "{err}"
    );

    // No autonomos on the remote PATH: the error names --remote-bin.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_autonomos"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .arg("--host")
        .arg(format!("ssh://testhost:{}", sshd.port))
        .arg("--ssh-config")
        .arg(sshd.config())
        .args(["--remote-bin", "autonomos-not-installed", "status"])
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("command not found") && err.contains("pass --remote-bin"),
        "{err}"
    );
}
