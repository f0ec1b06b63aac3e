//! A real PostgreSQL server for the shared-queue tests: a throwaway
//! cluster (`initdb` in a temp dir, a private port on 127.0.0.1, no system
//! service). `initdb` refuses to run as root, so as root the server runs as
//! the `postgres` user (`runuser`). Needs Debian's `postgresql` package.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Where Debian keeps the server's programs (not on PATH).
fn bin_dir() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .find(|d| d.join("initdb").is_file() && d.join("postgres").is_file())
    });
    if let Some(d) = on_path {
        // A symlink on PATH (Debian's wrappers, a local link): the real
        // directory has the other programs too.
        return std::fs::canonicalize(d.join("initdb"))
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .or(Some(d));
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").is_file() && b.join("postgres").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

/// The server's programs, or a visible skip (a failure under
/// `AUTONOMOS_REQUIRE_TOOLS=1`).
pub fn available() -> Option<PathBuf> {
    let found = bin_dir();
    if found.is_none() {
        if std::env::var("AUTONOMOS_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!(
                "PostgreSQL (`initdb`, `postgres`) is required (AUTONOMOS_REQUIRE_TOOLS=1): apt-get install postgresql"
            );
        }
        eprintln!(
            "SKIPPED: PostgreSQL not found; install the Debian package `postgresql` to run this test"
        );
    }
    found
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Runs one of the server's programs, as `postgres` when we are root.
fn as_server_user(bin: &Path, program: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(program));
        c
    } else {
        Command::new(bin.join(program))
    }
}

/// A running cluster. The server goes down with this value, or with the
/// test process: it runs under a small shell that stops it (fast
/// shutdown) and removes its files once the test's end of a pipe closes.
pub struct Postgres {
    bin: PathBuf,
    pub dir: PathBuf,
    pub port: u16,
    keeper: Option<Child>,
    dbs: AtomicU32,
}

impl Postgres {
    /// initdb and start; None when PostgreSQL is not installed (skipped).
    pub fn start() -> Option<Postgres> {
        let bin = available()?;
        let dir = std::env::temp_dir().join(format!(
            "autonomos-pg-{}-{}",
            std::process::id(),
            super::free_port()
        ));
        std::fs::create_dir_all(&dir).expect("pg dir");
        if is_root() {
            let ok = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir)
                .status()
                .expect("chown")
                .success();
            assert!(ok, "chown postgres {}", dir.display());
        }
        let out = as_server_user(&bin, "initdb")
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-A", "trust", "-U", "autonomos", "-E", "UTF8", "--no-sync"])
            .output()
            .expect("initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut pg = Postgres {
            bin,
            dir,
            port: super::free_port(),
            keeper: None,
            dbs: AtomicU32::new(0),
        };
        pg.run();
        Some(pg)
    }

    /// Starts the server under its keeper and waits until it answers.
    fn run(&mut self) {
        let server = self.bin.join("postgres");
        let data = self.dir.join("data");
        // setpriv execs the server in place (runuser would stay between and
        // not pass the shutdown signal on).
        let prefix = if is_root() {
            "setpriv --reuid postgres --regid postgres --init-groups "
        } else {
            ""
        };
        // The keeper: the server in the background; when stdin closes (this
        // value dropped, or the test process gone), a fast shutdown.
        let script = format!(
            "{prefix}'{}' -D '{}' -p {} -k '{}' -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200 >>'{}/server.log' 2>&1 &\n\
             p=$!\ncat >/dev/null\nkill -INT $p 2>/dev/null\nwait $p\n[ -e '{}/keep' ] || rm -rf '{}'\n",
            server.display(),
            data.display(),
            self.port,
            self.dir.display(),
            self.dir.display(),
            self.dir.display(),
            self.dir.display(),
        );
        let keeper = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start postgres");
        self.keeper = Some(keeper);
        let t = Instant::now();
        while !self.ready() {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "postgres did not start: {}",
                std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn ready(&self) -> bool {
        Command::new(self.bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// Stops the server (fast shutdown) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut k) = self.keeper.take() {
            drop(k.stdin.take());
            let _ = k.wait();
        }
    }

    /// Stops and starts the server again, on the same port and files.
    pub fn restart(&mut self, down_for: Duration) {
        let keep = self.dir.join("keep");
        std::fs::write(&keep, "").expect("keep marker");
        self.stop();
        std::thread::sleep(down_for);
        self.run();
        let _ = std::fs::remove_file(keep);
    }

    /// A fresh database; its URL.
    pub fn database(&self) -> String {
        let name = format!("t{}", self.dbs.fetch_add(1, Ordering::Relaxed));
        let out = Command::new(self.bin.join("createdb"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "autonomos",
                &name,
            ])
            .output()
            .expect("createdb");
        assert!(
            out.status.success(),
            "createdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.url(&name)
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://autonomos@127.0.0.1:{}/{db}", self.port)
    }

    /// One SQL statement through `psql`; its unaligned output.
    pub fn sql(&self, url: &str, statement: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-XAtq", url, "-c", statement])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql {statement}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
