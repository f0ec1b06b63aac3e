//! The daemon's own children, read on the way from a replica's exit to
//! its respawn (leftover scan) and by the orphan reaper: every thread's
//! `/proc/self/task/*/children`, through handles kept open.

use std::fs;

use super::procfs::children;

/// The daemon's own children, from every thread's
/// `/proc/self/task/*/children`, through handles kept open: a rewound
/// directory read, then one `pread` per thread. A fresh open of each file
/// cost four syscalls per thread, on the way from a replica's exit to its
/// respawn. Threads come and go (the blocking pool): each call lists them
/// anew and drops the handles of those gone.
pub fn own_children(out: &mut Vec<i32>) {
    static OWN: std::sync::Mutex<Option<OwnThreads>> = std::sync::Mutex::new(None);
    let mut guard = match OWN.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    if guard.is_none() {
        *guard = OwnThreads::open();
    }
    let Some(own) = guard.as_mut() else {
        return children(std::process::id() as i32, out);
    };
    let before = out.len();
    if own.read(out).is_none() {
        *guard = None;
        out.truncate(before);
        children(std::process::id() as i32, out);
    }
}

/// The children of the daemon's main thread: where the kernel re-parents
/// an orphan of the subreaper (to the first live thread of its group,
/// the main thread, alive for the daemon's whole life). One `pread` of a
/// handle kept open: the leftover scan on the way from a replica's exit
/// to its respawn looks for orphans only (the processes other threads
/// spawned are leaders and claimed children, which it skips anyway), and
/// reading every thread's file cost it about 40 µs.
pub fn orphans(out: &mut Vec<i32>) {
    static MAIN: std::sync::OnceLock<Option<fs::File>> = std::sync::OnceLock::new();
    let main = MAIN.get_or_init(|| {
        let pid = std::process::id();
        fs::File::open(format!("/proc/self/task/{pid}/children")).ok()
    });
    match main {
        Some(f) => pread_pids(f, out),
        None => own_children(out),
    }
}

struct OwnThreads {
    dir: rustix::fs::Dir,
    files: std::collections::HashMap<i32, fs::File>,
    tids: Vec<i32>,
}

impl OwnThreads {
    fn open() -> Option<Self> {
        use rustix::fs::{Mode, OFlags};
        let fd = rustix::fs::open(
            "/proc/self/task",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        Some(Self {
            dir: rustix::fs::Dir::new(fd).ok()?,
            files: Default::default(),
            tids: Vec::new(),
        })
    }

    /// `None`: a thread's `children` file cannot be opened (no
    /// CONFIG_PROC_CHILDREN); the caller falls back to a full scan.
    ///
    /// A handle is kept per thread id. Were a thread to end and a new one
    /// of the daemon's get the same id between two calls (the pid space
    /// wrapping around meanwhile), the old handle would read nothing and
    /// that thread's children would be missed; they could only be
    /// processes the thread spawned itself (leaders and claimed children,
    /// which callers skip anyway): orphans are re-parented to the main
    /// thread.
    fn read(&mut self, out: &mut Vec<i32>) -> Option<()> {
        self.dir.rewind();
        self.tids.clear();
        while let Some(entry) = self.dir.read() {
            let entry = entry.ok()?;
            if let Some(tid) = entry.file_name().to_str().ok().and_then(|n| n.parse().ok()) {
                self.tids.push(tid);
            }
        }
        let tids = &self.tids;
        self.files.retain(|tid, _| tids.contains(tid));
        for &tid in tids {
            let f = match self.files.entry(tid) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    match fs::File::open(format!("/proc/self/task/{tid}/children")) {
                        Ok(f) => v.insert(f),
                        // The thread ended since the listing.
                        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => continue,
                        Err(_)
                            if std::path::Path::new(&format!("/proc/self/task/{tid}")).exists() =>
                        {
                            return None;
                        }
                        Err(_) => continue,
                    }
                }
            };
            pread_pids(f, out);
        }
        Some(())
    }
}

/// Parses a `children` file read from its start: one `pread` for a short
/// list, more for a long one. The file is a `seq_file` of one record per
/// pid: a read returns the records that fit one page, so a read that
/// stops well short of the buffer (more than a record's length) has them
/// all, and one that comes near its end goes on until a read returns 0.
fn pread_pids(f: &fs::File, out: &mut Vec<i32>) {
    use std::os::unix::fs::FileExt;
    let mut buf = [0u8; 4096];
    let mut long;
    let text: &[u8] = match f.read_at(&mut buf, 0) {
        Ok(n) if n + 64 < buf.len() => &buf[..n],
        Ok(n) => {
            long = buf[..n].to_vec();
            let mut chunk = [0u8; 4096];
            while let Ok(k) = f.read_at(&mut chunk, long.len() as u64) {
                if k == 0 {
                    break;
                }
                long.extend_from_slice(&chunk[..k]);
            }
            &long
        }
        Err(_) => return,
    };
    out.extend(
        std::str::from_utf8(text)
            .unwrap_or("")
            .split_ascii_whitespace()
            .filter_map(|s| s.parse::<i32>().ok()),
    );
}
