//! Processes left behind by an earlier daemon of the same data dir, found
//! and stopped at start.

use std::path::Path;
use std::time::{Duration, Instant};

use rustix::process::Signal;

use super::process::{Member, alive, signal_member};
use super::procfs;

/// How long an earlier daemon's leftovers get between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(3);

/// [`stop_strays`] under way beside the rest of the daemon's start: it
/// reads every process's environment (tens of ms on a busy host), which
/// need not hold up opening the databases. [`Search::finish`] waits for
/// it, before the supervisor (the first spawn) starts.
pub struct Search(Option<Result<std::thread::JoinHandle<usize>, Dirs>>);

type Dirs = [std::path::PathBuf; 2];

impl Search {
    /// Starts the search for leftovers of contexts under `dirs` (the
    /// context dirs' parents, this layout's and the earlier one's).
    pub fn begin(dirs: Dirs) -> Search {
        let copy = dirs.clone();
        Search(Some(
            std::thread::Builder::new()
                .name("autonomos-strays".into())
                .spawn(move || stop_strays(&copy, GRACE))
                .map_err(|_| dirs),
        ))
    }

    /// Waits until every leftover found is stopped (searching here if no
    /// thread could be started).
    pub fn finish(mut self) {
        self.wait();
    }

    fn wait(&mut self) {
        let failed = match self.0.take() {
            Some(Ok(search)) => search.join().is_err(),
            Some(Err(dirs)) => {
                stop_strays(&dirs, GRACE);
                false
            }
            None => false,
        };
        if failed {
            tracing::error!("the search for an earlier daemon's processes failed");
        }
    }
}

/// A start that fails midway still finishes the search: what was sent
/// SIGTERM gets its SIGKILL after the grace period.
impl Drop for Search {
    fn drop(&mut self) {
        self.wait();
    }
}

/// Stops processes left behind by an earlier daemon of the same data dir
/// that died without decommissioning (kill -9, OOM, power loss of the
/// supervisor only): anything of our uid whose environment names a context
/// dir under one of `dirs`. They would otherwise run twice once the fleet
/// starts again. SIGTERM first, SIGKILL after `grace`. Returns how many.
pub fn stop_strays(dirs: &[impl AsRef<Path>], grace: Duration) -> usize {
    use std::os::unix::fs::MetadataExt;
    let me = std::process::id() as i32;
    let uid = rustix::process::geteuid().as_raw();
    let prefixes: Vec<String> = dirs
        .iter()
        .map(|d| format!("AUTONOMOS_CONTEXT_DIR={}/", d.as_ref().display()))
        .collect();
    let mut strays = Vec::new();
    let mut buf = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me || e.metadata().map(|m| m.uid()).ok() != Some(uid) {
            continue;
        }
        let Some(n) = procfs::environ(pid, &mut buf) else {
            continue;
        };
        if !buf[..n]
            .split(|&b| b == 0)
            .any(|kv| prefixes.iter().any(|p| kv.starts_with(p.as_bytes())))
        {
            continue;
        }
        if let Some(s) = procfs::stat(pid)
            && s.state != b'Z'
        {
            strays.push(Member {
                pid,
                start: s.start_ticks,
                pgid: s.pgid,
            });
        }
    }
    if strays.is_empty() {
        return 0;
    }
    tracing::warn!(
        count = strays.len(),
        pids = ?strays.iter().map(|m| m.pid).collect::<Vec<_>>(),
        "stopping processes left behind by an earlier daemon of this data dir"
    );
    for m in &strays {
        signal_member(m, Signal::TERM);
        signal_member(m, Signal::CONT);
    }
    let deadline = Instant::now() + grace;
    while strays.iter().any(alive) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for m in strays.iter().filter(|m| alive(m)) {
        signal_member(m, Signal::KILL);
    }
    strays.len()
}
