//! A real OpenSSH server on 127.0.0.1 for the SSH tests: its own host key,
//! user key and config in a temp dir.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

pub struct Sshd {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sshd {
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("ssh_config")
    }
}

pub fn sshd_available() -> bool {
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
pub fn start_sshd(d: &BinDaemon) -> Sshd {
    start_sshd_env(
        d,
        &format!(
            "XDG_RUNTIME_DIR={} AUTONOMOS_DATA_DIR={}",
            d.runtime_dir().display(),
            d.data_dir().display()
        ),
    )
}

/// Starts sshd whose sessions get `env` (`NAME=value ...`) through `SetEnv`.
pub fn start_sshd_env(_d: &BinDaemon, env: &str) -> Sshd {
    start_sshd_with(env)
}

/// Starts sshd on a free loopback port, `env` set in its sessions; it
/// serves SFTP too (`internal-sftp`). Its client config names it
/// `testhost`.
pub fn start_sshd_with(env: &str) -> Sshd {
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
         UsePAM no\nPermitRootLogin prohibit-password\nLogLevel ERROR\nSubsystem sftp internal-sftp\n\
         {setenv}",
        p = p.display(),
        setenv = if env.is_empty() {
            String::new()
        } else {
            format!("SetEnv {env}\n")
        },
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
pub fn remote(d: &BinDaemon, sshd: &Sshd, args: &[&str]) -> Command {
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
