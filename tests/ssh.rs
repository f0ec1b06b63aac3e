//! Remote control over a real OpenSSH server on 127.0.0.1 (its own host key,
//! user key and config in a temp dir): `--host ssh://` for verbs and attach
//! (ssh + `dial-stdio`), and tmux-style `ssh -t host autonomos attach`.
//! Needs the Debian packages openssh-server and openssh-client.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

struct Sshd {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sshd {
    fn config(&self) -> PathBuf {
        self.dir.path().join("ssh_config")
    }
}

fn sshd_available() -> bool {
    let sshd = Path::new("/usr/sbin/sshd").exists();
    if !sshd {
        if std::env::var("AUTONOMOS_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!(
                "`/usr/sbin/sshd` is required (AUTONOMOS_REQUIRE_TOOLS=1): apt-get install openssh-server"
            );
        }
        eprintln!("SKIPPED: /usr/sbin/sshd not found; install the Debian package `openssh-server`");
        return false;
    }
    have_tool("ssh", "openssh-client") && have_tool("ssh-keygen", "openssh-client")
}

fn keygen(path: &Path) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen");
    assert!(ok.success());
}

/// Starts sshd on a free loopback port; remote sessions get the daemon's
/// runtime and data dirs through `SetEnv`.
fn start_sshd(d: &BinDaemon) -> Sshd {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path();
    keygen(&p.join("host_key"));
    keygen(&p.join("id"));
    std::fs::copy(p.join("id.pub"), p.join("authorized_keys")).expect("authorized_keys");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    std::fs::create_dir_all("/run/sshd").expect("privilege separation dir");
    let cfg = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {p}/host_key\nAuthorizedKeysFile {p}/authorized_keys\n\
         PidFile {p}/sshd.pid\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
         UsePAM no\nPermitRootLogin prohibit-password\nLogLevel ERROR\n\
         SetEnv XDG_RUNTIME_DIR={rt} AUTONOMOS_DATA_DIR={data}\n",
        p = p.display(),
        rt = d.runtime_dir().display(),
        data = d.data_dir().display()
    );
    std::fs::write(p.join("sshd_config"), cfg).expect("sshd_config");
    let host_pub = std::fs::read_to_string(p.join("host_key.pub")).expect("host key");
    std::fs::write(
        p.join("known_hosts"),
        format!("[127.0.0.1]:{port} {host_pub}"),
    )
    .expect("known_hosts");
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    std::fs::write(
        p.join("ssh_config"),
        format!(
            "Host testhost\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  IdentityFile {p}/id\n  IdentitiesOnly yes\n\
             UserKnownHostsFile {p}/known_hosts\n  StrictHostKeyChecking yes\n  BatchMode yes\n  LogLevel ERROR\n",
            p = p.display()
        ),
    )
    .expect("ssh_config");
    let child = Command::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-f"])
        .arg(p.join("sshd_config"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sshd starts");
    let sshd = Sshd { child, dir, port };
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t.elapsed() < Duration::from_secs(10), "sshd did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    sshd
}

/// `autonomos --host ssh://testhost:PORT ARGS` with the test's ssh config.
fn remote(d: &BinDaemon, sshd: &Sshd, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_autonomos"));
    // A clean local environment: nothing points at the daemon but ssh.
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("XDG_RUNTIME_DIR", d.dir.path().join("elsewhere"))
        .arg("--host")
        .arg(format!("ssh://testhost:{}", sshd.port))
        .arg("--ssh-config")
        .arg(sshd.config())
        .arg("--remote-bin")
        .arg(env!("CARGO_BIN_EXE_autonomos"))
        .args(args);
    c
}

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
    let log = std::fs::read_to_string(d.data_dir().join("logs/daemon.jsonl")).expect("log");
    assert!(
        log.lines().any(|l| l.contains("operator request")
            && l.contains("via ssh from 127.0.0.1")
            && l.contains("Scale")),
        "no audit line for the remote scale"
    );

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
        let dialing = std::fs::read_dir("/proc")
            .expect("/proc")
            .flatten()
            .any(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|s| s.parse::<i32>().ok())
                    .is_some_and(|p| cmdline(p).ends_with("dial-stdio"))
            });
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
        let dialing = std::fs::read_dir("/proc")
            .expect("/proc")
            .flatten()
            .any(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|s| s.parse::<i32>().ok())
                    .is_some_and(|p| cmdline(p).ends_with("dial-stdio") && alive(p))
            });
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
        .arg(format!("{} attach", env!("CARGO_BIN_EXE_autonomos")))
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
        let attached = std::fs::read_dir("/proc")
            .expect("/proc")
            .flatten()
            .any(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|s| s.parse::<i32>().ok())
                    .is_some_and(|p| cmdline(p).ends_with("autonomos attach") && alive(p))
            });
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
