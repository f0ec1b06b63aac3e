//! Reads what the supervisor needs from Linux `/proc`: a process's parent,
//! group, start time, CPU ticks and RSS, its children, and its Autonomos marker.
//!
//! Reads only; never signals. Every function tolerates processes that vanish
//! between two reads (they simply return `None` or are skipped).

use std::fs;
use std::io::Read;

/// One process as seen in `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: i32,
    pub state: u8,
    pub ppid: i32,
    pub pgid: i32,
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    /// Start time after boot, in clock ticks: with the pid it names a process uniquely.
    pub start_ticks: u64,
    /// Resident set size in pages.
    pub rss_pages: u64,
    pub num_threads: u32,
}

/// Parses `/proc/PID/stat`. `None` if the process is gone.
pub fn stat(pid: i32) -> Option<ProcStat> {
    let mut buf = [0u8; 1024];
    let n = read_small(&format!("/proc/{pid}/stat"), &mut buf)?;
    parse_stat(pid, &buf[..n])
}

fn read_small(path: &str, buf: &mut [u8]) -> Option<usize> {
    let mut f = fs::File::open(path).ok()?;
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return None,
        }
    }
    Some(n)
}

/// Reads a `children` file (space-separated pids) into `out`, however long
/// it is: the daemon itself, a subreaper of 1,000 replicas, has a list of
/// several KiB. A stack buffer serves the usual short list; a longer one
/// continues into the heap, so no pid is ever cut in two. `None` if the
/// file cannot be read.
fn read_pids(path: &str, out: &mut Vec<i32>) -> Option<()> {
    let mut f = fs::File::open(path).ok()?;
    let mut buf = [0u8; 4096];
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return None,
        }
    }
    let mut long;
    let text: &[u8] = if n == buf.len() {
        long = buf.to_vec();
        f.read_to_end(&mut long).ok()?;
        &long
    } else {
        &buf[..n]
    };
    out.extend(
        std::str::from_utf8(text)
            .unwrap_or("")
            .split_ascii_whitespace()
            .filter_map(|s| s.parse::<i32>().ok()),
    );
    Some(())
}

/// Parses the text of a stat file. The command name may contain spaces and
/// parentheses, so fields are counted from the last `)`.
pub fn parse_stat(pid: i32, text: &[u8]) -> Option<ProcStat> {
    let close = text.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(text.get(close + 2..)?).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    // Field 3 (state) is the first after the name.
    let state = *fields.next()?.as_bytes().first()?;
    let mut f = fields.map(|s| s.parse::<i64>().unwrap_or(0));
    let ppid = f.next()? as i32; // 4
    let pgid = f.next()? as i32; // 5
    let mut f = f.skip(8); // 6..=13
    let utime = f.next()? as u64; // 14
    let stime = f.next()? as u64; // 15
    let mut f = f.skip(4); // 16..=19
    let num_threads = f.next()?.max(1) as u32; // 20
    let _itrealvalue = f.next()?; // 21
    let start_ticks = f.next()? as u64; // 22
    let _vsize = f.next()?; // 23
    let rss_pages = f.next()?.max(0) as u64; // 24
    Some(ProcStat {
        pid,
        state,
        ppid,
        pgid,
        cpu_ticks: utime + stime,
        start_ticks,
        rss_pages,
        num_threads,
    })
}

/// Direct children of `pid`, across all of its threads.
///
/// Uses `/proc/PID/task/TID/children` (CONFIG_PROC_CHILDREN, on by default);
/// falls back to a scan of every process's parent when that file is missing.
pub fn children(pid: i32, out: &mut Vec<i32>) {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return;
    };
    for task in tasks.flatten() {
        let path = task.path().join("children");
        let Some(path) = path.to_str() else { continue };
        match read_pids(path, out) {
            Some(()) => {}
            None if !std::path::Path::new(path).exists() => {
                children_by_scan(pid, out);
                return;
            }
            None => {}
        }
    }
}

pub use super::own_children::{orphans, own_children};

fn children_by_scan(pid: i32, out: &mut Vec<i32>) {
    let Ok(dir) = fs::read_dir("/proc") else {
        return;
    };
    for e in dir.flatten() {
        let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if stat(p).is_some_and(|s| s.ppid == pid) {
            out.push(p);
        }
    }
}

/// Direct children of a process whose stat we just read: a single-threaded
/// process needs one read, without listing its tasks.
pub fn children_of(st: &ProcStat, out: &mut Vec<i32>) {
    if st.num_threads > 1 {
        return children(st.pid, out);
    }
    let path = format!("/proc/{0}/task/{0}/children", st.pid);
    if read_pids(&path, out).is_none() {
        children(st.pid, out);
    }
}

/// Walks the tree under `root`, calling `visit` with each live process's
/// stat (root first). One stat read and one children read per process.
pub fn walk(root: i32, mut visit: impl FnMut(&ProcStat)) {
    let mut queue = vec![root];
    let mut i = 0;
    while i < queue.len() && i < 100_000 {
        let pid = queue[i];
        i += 1;
        let Some(st) = stat(pid) else { continue };
        visit(&st);
        if st.state != b'Z' {
            children_of(&st, &mut queue);
        }
    }
}

/// Open `/proc` handles kept across collector ticks: re-reading an open
/// `stat` or `children` file with `pread` costs one syscall instead of
/// open + read + close (which resolve the path each time), and that is
/// most of a tick with hundreds of replicas.
#[derive(Default)]
pub struct Cache {
    /// pid -> (start time, stat file, children file of a single-threaded
    /// process, seen this tick)
    open: std::collections::HashMap<i32, Cached>,
}

struct Cached {
    start_ticks: u64,
    stat: fs::File,
    children: Option<fs::File>,
    /// A single-threaded process: how to tell it did nothing since.
    quiet: Option<Quiet>,
    seen: bool,
}

/// A single-threaded process's run time (`/proc/PID/schedstat`, ns, a far
/// cheaper read than `stat`) and what the last full read found. While the
/// run time stands still the process did nothing: no CPU, no fork, no page
/// touched, so the last stat and children hold (its RSS can only shrink by
/// reclaim, caught by a full read every [`FULL_EVERY`] ticks). Only for one
/// thread: schedstat counts the main thread alone.
///
/// A process quiet for a while is looked at less often: every 2nd tick
/// after 5 quiet ticks, every 4th after 20, unless the walk is eager (its
/// agent has a memory limit to enforce). Its CPU time is cumulative, so
/// nothing is lost: work it starts is seen up to 3 ticks late.
struct Quiet {
    schedstat: fs::File,
    runtime: u64,
    last: ProcStat,
    kids: Vec<i32>,
    age: u32,
    /// Quiet looks in a row.
    streak: u32,
    /// Ticks to skip before the next look.
    wait: u32,
}

/// A quiet process is read in full at least this often (ticks).
const FULL_EVERY: u32 = 30;

fn runtime_ns(f: &fs::File) -> Option<u64> {
    let mut buf = [0u8; 128];
    let n = pread_line(f, &mut buf)?;
    std::str::from_utf8(&buf[..n])
        .ok()?
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Most handles the cache holds (three per process): past it, files are
/// opened per read as before.
pub const CACHE_MAX: usize = 4096;

fn pread_all(f: &fs::File, buf: &mut [u8]) -> Option<usize> {
    use std::os::unix::fs::FileExt;
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return None,
        }
    }
    Some(n)
}

/// Reads a one-line `/proc` file (`stat`, `schedstat`) in one syscall: the
/// line is generated whole, so a read that does not fill the buffer has
/// it all and the usual extra read that returns 0 is skipped.
fn pread_line(f: &fs::File, buf: &mut [u8]) -> Option<usize> {
    use std::os::unix::fs::FileExt;
    match f.read_at(buf, 0) {
        Ok(n) if n < buf.len() => Some(n),
        Ok(_) => pread_all(f, buf),
        Err(_) => None,
    }
}

impl Cache {
    fn stat(&mut self, pid: i32) -> Option<ProcStat> {
        let mut buf = [0u8; 1024];
        if let Some(c) = self.open.get_mut(&pid)
            && let Some(n) = pread_line(&c.stat, &mut buf)
            && let Some(st) = parse_stat(pid, &buf[..n])
            && st.start_ticks == c.start_ticks
        {
            c.seen = true;
            return Some(st);
        }
        // Not cached, gone, or the pid was reused: open afresh.
        self.open.remove(&pid);
        let f = fs::File::open(format!("/proc/{pid}/stat")).ok()?;
        let n = pread_all(&f, &mut buf)?;
        let st = parse_stat(pid, &buf[..n])?;
        if self.open.len() < CACHE_MAX / 3 {
            let children = if st.num_threads == 1 {
                fs::File::open(format!("/proc/{0}/task/{0}/children", pid)).ok()
            } else {
                None
            };
            self.open.insert(
                pid,
                Cached {
                    start_ticks: st.start_ticks,
                    stat: f,
                    children,
                    quiet: None,
                    seen: true,
                },
            );
        }
        Some(st)
    }

    fn children_of(&mut self, st: &ProcStat, out: &mut Vec<i32>) {
        if st.num_threads == 1
            && let Some(c) = self.open.get(&st.pid)
            && let Some(f) = &c.children
        {
            let mut buf = [0u8; 4096];
            if let Some(n) = pread_all(f, &mut buf) {
                out.extend(
                    std::str::from_utf8(&buf[..n])
                        .unwrap_or("")
                        .split_ascii_whitespace()
                        .filter_map(|s| s.parse::<i32>().ok()),
                );
                return;
            }
        }
        children_of(st, out);
    }

    /// Like [`walk`], through the cache; a quiet process costs one small
    /// read (see [`Quiet`]), or none.
    pub fn walk(&mut self, root: i32, visit: impl FnMut(&ProcStat)) {
        self.walk_with(root, true, visit)
    }

    /// [`Cache::walk`]; `eager`: look at quiet processes every tick.
    pub fn walk_with(&mut self, root: i32, eager: bool, mut visit: impl FnMut(&ProcStat)) {
        let mut queue = vec![root];
        let mut i = 0;
        while i < queue.len() && i < 100_000 {
            let pid = queue[i];
            i += 1;
            if let Some(st) = self.unchanged(pid, eager, &mut queue) {
                visit(&st);
                continue;
            }
            let Some(st) = self.stat(pid) else { continue };
            visit(&st);
            let from = queue.len();
            if st.state != b'Z' {
                self.children_of(&st, &mut queue);
            }
            self.remember(&st, &queue[from..]);
        }
    }

    /// The last stat of a process whose run time has not moved (its
    /// children appended to `out`), else None (the new run time is kept).
    fn unchanged(&mut self, pid: i32, eager: bool, out: &mut Vec<i32>) -> Option<ProcStat> {
        let c = self.open.get_mut(&pid)?;
        let q = c.quiet.as_mut()?;
        if q.wait > 0 && !eager && q.age < FULL_EVERY {
            q.wait -= 1;
        } else {
            let Some(now) = runtime_ns(&q.schedstat) else {
                c.quiet = None;
                return None;
            };
            if now != q.runtime {
                q.runtime = now;
                q.streak = 0;
                q.wait = 0;
                return None;
            }
            if q.age >= FULL_EVERY {
                return None;
            }
            q.streak += 1;
            q.wait = match q.streak {
                _ if eager => 0,
                0..5 => 0,
                5..20 => 1,
                _ => 3,
            };
        }
        q.age += 1;
        c.seen = true;
        out.extend_from_slice(&q.kids);
        Some(q.last)
    }

    /// After a full read: what a quiet tick will reuse.
    fn remember(&mut self, st: &ProcStat, kids: &[i32]) {
        let Some(c) = self.open.get_mut(&st.pid) else {
            return;
        };
        if st.num_threads != 1 {
            c.quiet = None;
            return;
        }
        match &mut c.quiet {
            Some(q) => {
                q.last = *st;
                q.kids = kids.to_vec();
                q.age = 0;
            }
            None => {
                let Ok(f) = fs::File::open(format!("/proc/{}/schedstat", st.pid)) else {
                    return;
                };
                let Some(runtime) = runtime_ns(&f) else {
                    return;
                };
                c.quiet = Some(Quiet {
                    schedstat: f,
                    runtime,
                    last: *st,
                    kids: kids.to_vec(),
                    // Spread the full reads of a fleet started at once.
                    age: st.pid.unsigned_abs() % FULL_EVERY,
                    streak: 0,
                    wait: 0,
                });
            }
        }
    }

    /// Closes the handles of processes not seen since the last sweep.
    pub fn sweep(&mut self) {
        self.open.retain(|_, c| std::mem::take(&mut c.seen));
    }

    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

/// `root` and every descendant reachable through live parents, root first.
pub fn tree(root: i32, out: &mut Vec<i32>) {
    let start = out.len();
    out.push(root);
    let mut i = start;
    while i < out.len() {
        let p = out[i];
        children(p, out);
        i += 1;
        // A pathological fork bomb must not make one sample unbounded.
        if out.len() - start > 100_000 {
            break;
        }
    }
}

/// True if the process's environment carries every `KEY=VALUE` in `marker`.
pub fn environ_has(pid: i32, marker: &[(&str, &str)]) -> bool {
    let mut buf = Vec::new();
    let Some(n) = environ(pid, &mut buf) else {
        return false;
    };
    let env = &buf[..n];
    marker.iter().all(|(k, v)| {
        env.split(|&b| b == 0).any(|entry| {
            entry.len() == k.len() + 1 + v.len()
                && entry.starts_with(k.as_bytes())
                && entry[k.len()] == b'='
                && entry.ends_with(v.as_bytes())
        })
    })
}

/// Reads `/proc/PID/environ` into `buf`, returning how many bytes it
/// holds. `buf` is scratch space, kept between calls (16 KiB at least,
/// doubled when an environment fills it). Each read of another process's
/// environment walks that process's memory, so it is read in one large
/// read (and a short one to see the end), not in the growing reads of
/// `fs::read`, which took eight per process. `None` if the process is
/// gone or not ours to read.
pub fn environ(pid: i32, buf: &mut Vec<u8>) -> Option<usize> {
    let mut f = fs::File::open(format!("/proc/{pid}/environ")).ok()?;
    if buf.len() < 16 * 1024 {
        buf.resize(16 * 1024, 0);
    }
    let mut n = 0;
    loop {
        if n == buf.len() {
            buf.resize(n * 2, 0);
        }
        match f.read(&mut buf[n..]) {
            Ok(0) => return Some(n),
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// Clock ticks per second for the CPU fields of `stat`.
pub fn ticks_per_second() -> u64 {
    rustix::param::clock_ticks_per_second()
}

/// Page size in bytes for `rss_pages`.
pub fn page_size() -> u64 {
    rustix::param::page_size() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_with_a_hostile_name() {
        let line = b"42 (a) b (c) R 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 5555 1000000 250 18446744073709551615";
        let s = parse_stat(42, line).expect("parses");
        assert_eq!(s.state, b'R');
        assert_eq!((s.ppid, s.pgid), (1, 42));
        assert_eq!(s.cpu_ticks, 10);
        assert_eq!(s.start_ticks, 5555);
        assert_eq!(s.rss_pages, 250);
        assert_eq!(s.num_threads, 1);
    }

    /// Counts (processes, cpu ticks) under `root` through the cache.
    fn census(c: &mut Cache, root: i32) -> (usize, u64) {
        let (mut n, mut ticks) = (0, 0);
        c.walk(root, |st| {
            if st.state != b'Z' {
                n += 1;
                ticks += st.cpu_ticks;
            }
        });
        c.sweep();
        (n, ticks)
    }

    #[test]
    fn a_quiet_process_is_reused_until_it_forks_or_works() {
        use std::io::Write;
        // Blocked in `read` (quiet), then forks a child, then burns CPU.
        let mut sh = std::process::Command::new("sh")
            .args(["-c", "read a; sleep 60 & read b; while :; do :; done"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("spawn sh");
        let pid = sh.id() as i32;
        let mut c = Cache::default();
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert_eq!(census(&mut c, pid).0, 1);
        // Quiet: the second look reuses the first (the same answer).
        assert_eq!(census(&mut c, pid).0, 1);
        assert!(
            c.open
                .get(&pid)
                .and_then(|x| x.quiet.as_ref())
                .is_some_and(|q| q.age == (pid as u32 % FULL_EVERY) + 1)
        );
        // Looked at lazily (no memory limit), a long-quiet process is not
        // read on every tick; eagerly, it is.
        for _ in 0..12 {
            c.walk_with(pid, false, |_| {});
            c.sweep();
        }
        let streak = |c: &Cache| {
            c.open
                .get(&pid)
                .and_then(|x| x.quiet.as_ref())
                .map(|q| q.streak)
        };
        let lazy = streak(&c).expect("quiet");
        assert!(
            (5..12).contains(&lazy),
            "some ticks skipped: {lazy} looks in 12"
        );
        for _ in 0..4 {
            c.walk_with(pid, true, |_| {});
            c.sweep();
        }
        // (One of them may be the periodic full read, which is no look.)
        let eager = streak(&c).expect("quiet");
        assert!(
            eager >= lazy + 3,
            "eager walks look every time: {lazy} → {eager}"
        );
        let mut stdin = sh.stdin.take().expect("stdin");
        stdin.write_all(b"go\n").expect("write");
        let t = std::time::Instant::now();
        while census(&mut c, pid).0 < 2 {
            assert!(
                t.elapsed() < std::time::Duration::from_secs(10),
                "the fork was never seen"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        stdin.write_all(b"go\n").expect("write");
        let (_, before) = census(&mut c, pid);
        std::thread::sleep(std::time::Duration::from_millis(500));
        let (_, after) = census(&mut c, pid);
        assert!(
            after > before,
            "a busy process's CPU is counted: {before} → {after}"
        );
        let mut kids = Vec::new();
        c.walk(pid, |st| kids.push(st.pid));
        let _ = sh.kill();
        let _ = sh.wait();
        for k in kids.into_iter().filter(|&k| k != pid) {
            if let Some(p) = rustix::process::Pid::from_raw(k) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
        }
    }

    #[test]
    fn a_children_list_longer_than_a_page_is_read_whole() {
        // 1,200 children: about 8 KiB of pids, twice the first buffer.
        let mut parent = std::process::Command::new("sh")
            .args([
                "-c",
                "i=0; while [ $i -lt 1200 ]; do sleep 60 & i=$((i+1)); done; wait",
            ])
            .spawn()
            .expect("spawn sh");
        let pid = parent.id() as i32;
        let t = std::time::Instant::now();
        let mut kids = Vec::new();
        while t.elapsed() < std::time::Duration::from_secs(30) {
            kids.clear();
            if let Some(st) = stat(pid) {
                children_of(&st, &mut kids);
            }
            if kids.len() >= 1200 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let mut via_tasks = Vec::new();
        children(pid, &mut via_tasks);
        // Every pid read is a real child: none was cut in two at a buffer end.
        let strangers: Vec<i32> = kids
            .iter()
            .copied()
            .filter(|&k| stat(k).is_none_or(|s| s.ppid != pid))
            .collect();
        let _ = parent.kill();
        for &k in &kids {
            if let Some(p) = rustix::process::Pid::from_raw(k) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
        }
        let _ = parent.wait();
        assert_eq!(kids.len(), 1200);
        assert!(strangers.is_empty(), "{strangers:?}");
        let mut a = kids.clone();
        a.sort_unstable();
        via_tasks.sort_unstable();
        assert_eq!(a, via_tasks);
    }

    #[test]
    fn walk_finds_a_child_of_a_multithreaded_process() {
        let me = std::process::id() as i32;
        // The test harness runs tests on threads, so this process has several.
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("spawn sleep");
        let mut seen = Vec::new();
        walk(me, |s| seen.push(s.pid));
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(seen.first(), Some(&me));
        assert!(seen.contains(&(child.id() as i32)), "{seen:?}");
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id() as i32;
        let s = stat(me).expect("own stat");
        assert_eq!(s.pid, me);
        assert!(s.rss_pages > 0);
        assert!(stat(i32::MAX).is_none());
    }

    #[test]
    fn the_cache_sees_new_children_and_forgets_dead_processes() {
        let mut root = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30 & wait"])
            .spawn()
            .expect("spawn sh");
        let pid = root.id() as i32;
        let mut cache = Cache::default();
        let mut seen = Vec::new();
        let t = std::time::Instant::now();
        while seen.len() < 3 && t.elapsed() < std::time::Duration::from_secs(5) {
            seen.clear();
            cache.walk(pid, |s| seen.push(s.pid));
            cache.sweep();
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(seen.len(), 3, "sh and its two sleeps: {seen:?}");
        assert_eq!(cache.len(), 3);
        // A second walk through the open handles gives the same tree.
        let mut again = Vec::new();
        cache.walk(pid, |s| again.push(s.pid));
        assert_eq!(again, seen);
        let kids: Vec<i32> = seen[1..].to_vec();
        for k in kids {
            if let Some(p) = rustix::process::Pid::from_raw(k) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
        }
        let _ = root.wait();
        cache.sweep();
        let mut after = Vec::new();
        cache.walk(pid, |s| after.push(s.pid));
        assert!(after.is_empty(), "{after:?}");
        cache.sweep();
        assert!(cache.is_empty());
    }
}
