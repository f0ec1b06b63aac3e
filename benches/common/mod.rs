//! What the benchmarks share: the real daemon on a temp dir, a client
//! connected to it, free ports and CPU readings.
#![allow(dead_code)] // each bench uses its own part

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use autonomos::client::Client;

/// The `autonomos daemon` binary on its own temp dir (`a.toml`, `rt/`,
/// `data/`), stopped with SIGTERM when dropped.
pub struct Daemon {
    pub child: Child,
    pub dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(p) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::TERM);
        }
        let _ = self.child.wait();
    }
}

impl Daemon {
    /// Writes `toml` and starts `bin` on a new temp dir.
    pub fn start(bin: &str, toml: &str) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.toml"), toml).expect("config");
        let child = spawn(bin, &dir);
        Daemon { child, dir }
    }

    /// Starts the daemon again on the same dir (after a kill).
    pub fn respawn(&mut self, bin: &str) {
        self.child = spawn(bin, &self.dir);
    }

    /// A client, once the socket answers (at most 20 s: a fleet of 500
    /// takes a while to start).
    pub async fn connect(&self) -> Client {
        let (run, data) = (
            self.dir.path().join("rt/autonomos"),
            self.dir.path().join("data"),
        );
        let t = Instant::now();
        loop {
            if let Ok(c) = Client::connect_local(&run, &data).await {
                return c;
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "daemon did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn spawn(bin: &str, dir: &tempfile::TempDir) -> Child {
    Command::new(bin)
        .env("XDG_RUNTIME_DIR", dir.path().join("rt"))
        .args(["daemon", "--config"])
        .arg(dir.path().join("a.toml"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("daemon")
}

/// A loopback port free now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

/// (own, reaped children) CPU seconds of `pid`, from /proc.
pub fn cpu_seconds(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = after
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // utime, stime, cutime, cstime: fields 14-17 (the state is skipped).
    let g = |i: usize| f.get(i).copied().unwrap_or(0.0) / 100.0;
    (g(10) + g(11), g(12) + g(13))
}

/// A throwaway PostgreSQL cluster (the tests' helper).
#[path = "../../tests/common/postgres.rs"]
pub mod postgres;

/// A metric of agent `agent` from a daemon's /metrics (None when absent).
pub fn metric(port: u16, name: &str, agent: &str) -> Option<f64> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    let prefix = format!("{name}{{agent=\"{agent}\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|v| v.trim().parse().ok())
}

/// Now, µs since the Unix epoch (what the echo agent records).
pub fn micros_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// `n` tasks for the echo agent, inputs `{"n": i}`.
pub fn batch(n: usize) -> autonomos::proto::Submit {
    autonomos::proto::Submit {
        agent: Some("echo".into()),
        skill: None,
        tasks: (0..n)
            .map(|i| autonomos::proto::NewTask {
                input: serde_json::json!({ "n": i }),
                key: None,
                context_id: None,
            })
            .collect(),
        priority: 0,
        timeout_ms: None,
    }
}

/// utime + stime of a process, in clock ticks.
pub fn proc_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

/// A process's resident set (`VmRSS`), in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}
