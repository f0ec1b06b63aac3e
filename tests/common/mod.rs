//! Shared helpers for the integration tests: an in-process daemon on a temp
//! data dir, supervising real processes; and /proc readers.
#![allow(dead_code)]

pub mod postgres;
pub mod sshd;
pub mod tmux;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use autonomos::config::{self, Config, HostFacts};
use autonomos::core::lifecycle::State;
use autonomos::daemon::router::Router;
use autonomos::daemon::{Daemon, DaemonOptions};
use autonomos::proto::{AgentStatus, FleetStatus, ReplicaStatus};
use autonomos::proto::{Request, Response};

pub fn host() -> HostFacts {
    HostFacts {
        cpus: 2.0,
        memory: 4 << 30,
    }
}

/// Parses a test config; panics with the rendered diagnostics if it is bad.
pub fn config(dir: &Path, toml: &str) -> Config {
    let path = dir.join("autonomos.toml");
    std::fs::write(&path, toml).expect("write config");
    match config::load_file(&path, &host()) {
        Ok(c) => c,
        Err(e) => panic!("test config is invalid:\n{e}"),
    }
}

pub struct TestDaemon {
    pub daemon: Option<Daemon>,
    pub dir: tempfile::TempDir,
}

impl TestDaemon {
    pub fn start(toml: &str) -> TestDaemon {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(dir, toml)
    }

    pub fn start_in(dir: tempfile::TempDir, toml: &str) -> TestDaemon {
        let cfg = config(dir.path(), toml);
        let daemon = Daemon::start(DaemonOptions {
            config: cfg,
            data_dir: dir.path().join("data"),
            sample_every: Duration::from_millis(200),
        })
        .expect("daemon starts");
        TestDaemon {
            daemon: Some(daemon),
            dir,
        }
    }

    pub fn sup(&self) -> &Router {
        &self.daemon.as_ref().expect("running").router
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn context_dir(&self, agent: &str) -> PathBuf {
        self.data_dir().join("contexts").join(agent)
    }

    pub async fn status(&self) -> FleetStatus {
        self.sup().status().await.expect("status")
    }

    pub async fn agent(&self, name: &str) -> AgentStatus {
        self.status()
            .await
            .agents
            .into_iter()
            .find(|a| a.name == name)
            .expect("agent exists")
    }

    pub async fn request(&self, r: Request) -> String {
        match self.sup().request(r).await.expect("request accepted") {
            Response::Done { message } | Response::Stopped { message, .. } => message,
            other => panic!("unexpected reply {other:?}"),
        }
    }

    /// Polls the status until `pred` holds, or panics after `timeout`.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&FleetStatus) -> bool,
    ) -> FleetStatus {
        let start = Instant::now();
        loop {
            let s = self.status().await;
            if pred(&s) {
                return s;
            }
            if start.elapsed() > timeout {
                panic!("timed out after {timeout:?} waiting for {what}; status: {s:#?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn shutdown(&mut self) {
        if let Some(d) = self.daemon.take() {
            d.shutdown().await;
        }
    }
}

pub fn replica<'a>(s: &'a FleetStatus, agent: &str, index: u32) -> Option<&'a ReplicaStatus> {
    s.agents
        .iter()
        .find(|a| a.name == agent)?
        .replicas
        .iter()
        .find(|r| r.index == index)
}

pub fn state_of(s: &FleetStatus, agent: &str, index: u32) -> Option<State> {
    replica(s, agent, index).map(|r| r.state)
}

pub fn running_pid(s: &FleetStatus, agent: &str, index: u32) -> Option<i32> {
    replica(s, agent, index)
        .filter(|r| r.state.is_running())
        .and_then(|r| r.pid)
}

/// A live (non-zombie) process?
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Pids of live processes whose environment has `AUTONOMOS_CONTEXT_DIR=ctx`.
pub fn marked(ctx: &Path) -> Vec<i32> {
    let needle = format!("AUTONOMOS_CONTEXT_DIR={}", ctx.display());
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if env.split(|&b| b == 0).any(|kv| kv == needle.as_bytes()) && alive(pid) {
            out.push(pid);
        }
    }
    out
}

/// The command line of a process, space-joined.
pub fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .split('\0')
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// Field from /proc/PID/stat after the name: 0 = state, 1 = ppid, 2 = pgrp, 3 = session.
pub fn stat_field(pid: i32, i: usize) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = s.rsplit_once(')')?;
    rest.split_whitespace().nth(i).map(str::to_string)
}

/// Whether an outside tool is installed; under AUTONOMOS_REQUIRE_TOOLS=1 a
/// missing tool fails the test instead of skipping it.
pub fn have_tool(tool: &str, package: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    if !found {
        if std::env::var("AUTONOMOS_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("`{tool}` is required (AUTONOMOS_REQUIRE_TOOLS=1): apt-get install {package}");
        }
        eprintln!(
            "SKIPPED: `{tool}` not found; install the Debian package `{package}` to run this test"
        );
    }
    found
}

/// The real `autonomos daemon` binary on a temp data dir, with its own
/// runtime dir (so its socket is private to the test).
pub struct BinDaemon {
    pub child: Option<std::process::Child>,
    pub dir: tempfile::TempDir,
}

impl BinDaemon {
    pub fn start(toml: &str) -> BinDaemon {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("autonomos.toml"), toml).expect("config");
        let mut d = BinDaemon { child: None, dir };
        d.spawn();
        d
    }

    /// [`BinDaemon::start`] with these variables in the daemon's environment.
    pub fn start_with_env(toml: &str, env: &[(&str, &str)]) -> BinDaemon {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("autonomos.toml"), toml).expect("config");
        let mut d = BinDaemon { child: None, dir };
        d.spawn_with_env(env);
        d
    }

    /// Starts (again) the daemon on this dir and waits for its socket.
    pub fn spawn(&mut self) {
        self.spawn_with_env(&[]);
    }

    fn spawn_with_env(&mut self, env: &[(&str, &str)]) {
        let child = self
            .cmd()
            .arg("daemon")
            .envs(env.iter().copied())
            // Webhooks go straight to their URL: a proxy in the daemon's
            // environment (an unreachable one here) is not used.
            .env("http_proxy", "http://127.0.0.1:9")
            .env("https_proxy", "http://127.0.0.1:9")
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("ALL_PROXY", "http://127.0.0.1:9")
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("daemon spawns");
        self.child = Some(child);
        let t = Instant::now();
        while std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(15),
                "daemon socket never appeared"
            );
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                panic!("daemon exited early: {st:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn runtime_dir(&self) -> PathBuf {
        self.dir.path().join("rt")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn socket(&self) -> PathBuf {
        autonomos::paths::socket_path(&self.runtime_dir().join("autonomos"), &self.data_dir())
    }

    pub fn context_dir(&self, agent: &str) -> PathBuf {
        self.data_dir().join("contexts").join(agent)
    }

    /// The binary with this daemon's environment.
    pub fn cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_autonomos"));
        c.env("XDG_RUNTIME_DIR", self.runtime_dir())
            .env("AUTONOMOS_DATA_DIR", self.data_dir())
            .env("AUTONOMOS_CONFIG", self.dir.path().join("autonomos.toml"))
            .env_remove("AUTONOMOS_HOST");
        c
    }

    /// Runs a CLI verb; returns (exit code, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.cmd().args(args).output().expect("cli runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs a verb with `--json` and parses its stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        let (code, out, err) = self.cli(&a);
        serde_json::from_str(&out).unwrap_or_else(|e| {
            panic!("{args:?} (exit {code}) printed no JSON ({e}): {out}\n{err}")
        })
    }

    /// Runs a `--json` verb until `pred` holds (10 s at most).
    pub fn wait_json(
        &self,
        args: &[&str],
        what: &str,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let t = Instant::now();
        loop {
            let v = self.json(args);
            if pred(&v) {
                return v;
            }
            assert!(t.elapsed() < timeout, "timed out waiting for {what}: {v:#}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn status(&self) -> FleetStatus {
        let v = self.json(&["status"]);
        serde_json::from_value(v).expect("status JSON is a FleetStatus")
    }

    pub fn wait_status(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&FleetStatus) -> bool,
    ) -> FleetStatus {
        let t = Instant::now();
        loop {
            let s = self.status();
            if pred(&s) {
                return s;
            }
            assert!(
                t.elapsed() < timeout,
                "timed out waiting for {what}: {s:#?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> i32 {
        self.child
            .as_ref()
            .map(|c| c.id() as i32)
            .expect("daemon running")
    }

    /// SIGTERM and wait; returns the exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let t = Instant::now();
        loop {
            if let Ok(Some(s)) = child.try_wait() {
                return Some(s);
            }
            if t.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for BinDaemon {
    fn drop(&mut self) {
        self.stop();
        // Whatever a killed daemon left behind.
        for agent in std::fs::read_dir(self.data_dir().join("contexts"))
            .into_iter()
            .flatten()
            .flatten()
        {
            for p in marked(&agent.path()) {
                if let Some(pid) = rustix::process::Pid::from_raw(p) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
        }
    }
}

/// Every live process for which `pred(pid)` holds.
pub fn pids_where(pred: impl Fn(i32) -> bool) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
        .filter(|&p| pred(p))
        .collect()
}

/// One protocol frame: u32 big-endian length, then the bytes.
pub fn frame(json: &str) -> Vec<u8> {
    let mut v = (json.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(json.as_bytes());
    v
}

/// Reads one frame as JSON; `None` on EOF, error or bad JSON.
pub fn read_frame(s: &mut std::os::unix::net::UnixStream) -> Option<serde_json::Value> {
    use std::io::Read;
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let mut buf = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).ok()?;
    serde_json::from_slice(&buf).ok()
}

/// Waits until the daemon's JSON log has a line for which `pred` holds
/// (the log is written by a background thread, so give it a moment).
pub fn wait_log(data_dir: &Path, what: &str, pred: impl Fn(&str) -> bool) {
    let path = data_dir.join("logs/daemon.jsonl");
    let t = Instant::now();
    loop {
        let log = std::fs::read_to_string(&path).unwrap_or_default();
        if log.lines().any(&pred) {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the daemon's log never had {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A plain HTTP/1.1 GET; returns (status code, body).
pub fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((code, body.to_string()))
}

/// Flips one byte in the middle of the biggest pack of a restic-format
/// repository (simulated disk corruption).
pub fn damage_biggest_pack(repo: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut packs = Vec::new();
    let mut stack = vec![repo.join("data")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("pack dir").flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                packs.push((e.metadata().expect("meta").len(), e.path()));
            }
        }
    }
    packs.sort();
    let (len, pack) = packs.last().cloned().expect("a pack");
    let mut bytes = std::fs::read(&pack).expect("read pack");
    bytes[(len / 2) as usize] ^= 0x55;
    std::fs::set_permissions(&pack, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::fs::write(&pack, bytes).expect("write pack");
}

/// How the daemon names this test's user in timelines and acks:
/// `root (local)` (the user name, from `id -un`).
pub fn me_local() -> String {
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .expect("id runs");
    format!("{} (local)", String::from_utf8_lossy(&out.stdout).trim())
}

/// `promtool check metrics` on a scrape; panics with what it said.
pub fn promtool_check(body: &str) {
    use std::io::Write;
    let mut p = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs");
    p.stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("write");
    let out = p.wait_with_output().expect("promtool finishes");
    assert!(
        out.status.success(),
        "promtool check metrics complained:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
