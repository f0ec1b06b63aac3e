//! Drains agents' stdout and stderr: every byte is read promptly (a child is
//! never blocked by us), split into lines, written to the agent's rotated log
//! file and kept in a bounded per-replica ring of recent lines.
//!
//! Bounds: a line longer than [`MAX_LINE`] is split; the ring keeps at most
//! `ring_lines` lines and [`RING_BYTES`] bytes; log files rotate at
//! `max_size` and keep `max_files`. Lines that could not be written are
//! counted as dropped, never silently lost.

use std::collections::{HashSet, VecDeque};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::BufMut;
use tokio::io::AsyncReadExt;

use crate::config::LogSpec;
use crate::daemon::rotate::RotatingFile;

/// Longest line kept whole; longer lines are split at this many bytes.
pub const MAX_LINE: usize = 64 * 1024;
/// Byte budget of one replica's ring of recent lines.
pub const RING_BYTES: usize = 1024 * 1024;
const READ_CHUNK: usize = 64 * 1024;
/// First read size: most agents are quiet, and a fleet of 500 has 1,000
/// drains, so buffers start small and grow when a read fills them. Each
/// 4 KiB buffer took a fresh page from the heap (a fault and a page clear,
/// measured at a third of the runtime's page clearing on a start of 500).
const FIRST_READ: usize = 512;
/// Pipe size and read size for agents that write as fast as they can.
const FAST_PIPE: usize = 1024 * 1024;

pub use crate::proto::{LogLine, Stream};

fn tag(stream: Stream) -> &'static str {
    match stream {
        Stream::Stdout => "out",
        Stream::Stderr => "err",
    }
}

/// A run of consecutive lines from one read, stored as one buffer: cheap to
/// keep, split into [`LogLine`]s only when someone reads the ring.
#[derive(Debug)]
struct Block {
    /// Sequence number of the first line.
    first_seq: u64,
    at: u64,
    replica: u32,
    stream: Stream,
    data: Vec<u8>,
    /// (start, end) of each line in `data`.
    lines: Vec<(u32, u32)>,
}

/// Recent lines of one replica, bounded by line count and bytes.
#[derive(Debug, Default)]
pub struct Ring {
    blocks: VecDeque<Block>,
    lines: usize,
    bytes: usize,
    cap_lines: usize,
}

impl Ring {
    pub fn new(cap_lines: usize) -> Self {
        Self {
            blocks: VecDeque::new(),
            lines: 0,
            bytes: 0,
            cap_lines,
        }
    }

    fn push_block(&mut self, block: Block) {
        if self.cap_lines == 0 || block.lines.is_empty() {
            return;
        }
        self.lines += block.lines.len();
        self.bytes += block.data.len();
        self.blocks.push_back(block);
        // Drop whole blocks while the rest still holds enough.
        while let Some(front) = self.blocks.front() {
            let over_lines = self.lines - front.lines.len() >= self.cap_lines;
            let over_bytes = self.bytes > RING_BYTES && self.blocks.len() > 1;
            if !(over_lines || over_bytes) {
                break;
            }
            self.lines -= front.lines.len();
            self.bytes -= front.data.len();
            self.blocks.pop_front();
        }
    }

    #[cfg(test)]
    fn push(&mut self, line: LogLine) {
        let len = line.text.len() as u32;
        self.push_block(Block {
            first_seq: line.seq,
            at: line.at,
            replica: line.replica,
            stream: line.stream,
            data: line.text.into_bytes(),
            lines: vec![(0, len)],
        });
    }

    /// The newest `n` lines (at most `cap_lines`), oldest first.
    pub fn tail(&self, n: usize) -> Vec<LogLine> {
        self.tail_since(0, n)
    }

    /// The newest `n` lines with a sequence number above `since`, oldest first.
    pub fn tail_since(&self, since: u64, n: usize) -> Vec<LogLine> {
        let n = n.min(self.cap_lines);
        let mut out = Vec::with_capacity(n.min(self.lines));
        'blocks: for b in self.blocks.iter().rev() {
            for (i, &(s, e)) in b.lines.iter().enumerate().rev() {
                let seq = b.first_seq + i as u64;
                if out.len() == n || seq <= since {
                    break 'blocks;
                }
                out.push(LogLine {
                    seq,
                    at: b.at,
                    replica: b.replica,
                    stream: b.stream,
                    text: String::from_utf8_lossy(&b.data[s as usize..e as usize]).into_owned(),
                });
            }
        }
        out.reverse();
        out
    }
}

/// Counters for one agent's output, shared by all its pipes.
#[derive(Debug, Default)]
pub struct OutputStats {
    pub lines: AtomicU64,
    pub bytes: AtomicU64,
    /// Lines that could not be written to the log file.
    pub dropped: AtomicU64,
}

/// One agent's log file (`NAME.log`), rotated by size.
#[derive(Debug)]
pub struct LogFile(RotatingFile, Warned);

/// The names in `dir`, for [`LogFile::lazy`] (None if it cannot be read:
/// then each file is looked at).
pub fn list_dir(dir: &Path) -> Option<HashSet<OsString>> {
    let names = fs::read_dir(dir).ok()?;
    Some(names.flatten().map(|e| e.file_name()).collect())
}

/// Whether a failed write was reported in the daemon log yet (once per
/// agent: the lines themselves are counted as dropped).
#[derive(Debug, Default)]
struct Warned(bool);

impl LogFile {
    /// Opens (appending to) `dir/NAME.log`.
    pub fn open(dir: &Path, name: &str, spec: LogSpec) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let path = dir.join(format!("{name}.log"));
        RotatingFile::open(&path, spec.max_size, spec.max_files).map(|f| LogFile(f, Warned(false)))
    }

    /// `dir/NAME.log`, opened (and created, with `dir`) at the first line.
    /// What can be known without creating it is checked now: an existing
    /// path must be a file this process may write (a missing one is
    /// created in the logs dir, which the daemon's own log proves
    /// writable). `listing`, the names `dir` held a moment ago (see
    /// [`list_dir`]), spares the look for a file it does not name: a start
    /// of 500 agents on a fresh data dir made 500 failed lookups.
    pub fn lazy(
        dir: &Path,
        name: &str,
        spec: LogSpec,
        listing: Option<&HashSet<OsString>>,
    ) -> io::Result<Self> {
        let file = format!("{name}.log");
        let path = dir.join(&file);
        let listed = listing.is_none_or(|names| names.contains(OsStr::new(&file)));
        match if listed {
            fs::metadata(&path)
        } else {
            Err(io::ErrorKind::NotFound.into())
        } {
            Ok(m) if !m.is_file() => {
                return Err(io::Error::other(format!(
                    "log file {} is not a regular file",
                    path.display()
                )));
            }
            Ok(_) => rustix::fs::access(&path, rustix::fs::Access::WRITE_OK)
                .map_err(|e| io::Error::other(format!("log file {}: {e}", path.display())))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(LogFile(
            RotatingFile::lazy(&path, spec.max_size, spec.max_files),
            Warned(false),
        ))
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// Appends whole lines; rotates first if they would pass the size limit.
    pub fn write(&mut self, buf: &[u8]) -> io::Result<()> {
        let r = self.0.append(buf);
        if let Err(e) = &r
            && !self.1.0
        {
            self.1.0 = true;
            tracing::warn!(
                path = %self.0.path().display(),
                error = %e,
                "cannot write an agent's log file; its lines are counted as dropped"
            );
        }
        r
    }
}

/// Everything the pipe readers of one agent share.
#[derive(Debug)]
pub struct AgentOutput {
    pub file: Mutex<LogFile>,
    pub stats: OutputStats,
}

/// Splits a byte stream into lines of at most [`MAX_LINE`] bytes.
#[derive(Debug)]
pub struct LineSplitter {
    partial: Vec<u8>,
    max: usize,
}

impl Default for LineSplitter {
    fn default() -> Self {
        LineSplitter::with_max(MAX_LINE)
    }
}

/// The longest line of a task agent's stdout: a JSON-RPC answer carries a
/// result of up to 1 MiB.
pub const TASK_LINE: usize = (1 << 20) + 64 * 1024;

impl LineSplitter {
    /// Lines of at most `max` bytes (longer ones are split).
    pub fn with_max(max: usize) -> Self {
        LineSplitter {
            partial: Vec::new(),
            max: max.max(1),
        }
    }

    /// Feeds `chunk`, calling `emit` for each complete line (without `\n`).
    pub fn feed(&mut self, mut chunk: &[u8], mut emit: impl FnMut(&[u8])) {
        while !chunk.is_empty() {
            match memchr::memchr(b'\n', chunk) {
                Some(i) => {
                    let (line, rest) = (&chunk[..i], &chunk[i + 1..]);
                    if self.partial.is_empty() {
                        self.emit_split(line, &mut emit);
                    } else {
                        self.partial.extend_from_slice(line);
                        let whole = std::mem::take(&mut self.partial);
                        self.emit_split(&whole, &mut emit);
                        self.partial = whole;
                        self.partial.clear();
                    }
                    chunk = rest;
                }
                None => {
                    self.partial.extend_from_slice(chunk);
                    while self.partial.len() >= self.max {
                        let rest = self.partial.split_off(self.max);
                        emit(&self.partial);
                        self.partial = rest;
                    }
                    chunk = &[];
                }
            }
        }
    }

    fn emit_split(&self, mut line: &[u8], emit: &mut impl FnMut(&[u8])) {
        while line.len() > self.max {
            emit(&line[..self.max]);
            line = &line[self.max..];
        }
        emit(line);
    }

    /// The unterminated tail at end of stream, if any.
    pub fn finish(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.partial.is_empty() {
            let p = std::mem::take(&mut self.partial);
            emit(&p);
        }
    }
}

/// Reads one pipe to its end. Never stops reading early: a slow log file
/// costs disk, never a blocked child.
/// A stdout filter: true when it took the line (a JSON-RPC message of a
/// task agent), which then is not logged.
pub type LineFilter = Box<dyn FnMut(&[u8]) -> bool + Send>;

/// `take`, for a task agent's stdout: a line it takes (a JSON-RPC
/// message) is not logged.
pub async fn drain<R: tokio::io::AsyncRead + std::os::fd::AsFd + Unpin>(
    mut pipe: R,
    stream: Stream,
    replica: u32,
    out: Arc<AgentOutput>,
    ring: Arc<Mutex<Ring>>,
    mut take: Option<LineFilter>,
) {
    let mut splitter = if take.is_some() {
        LineSplitter::with_max(TASK_LINE)
    } else {
        LineSplitter::default()
    };
    let mut keep = |line: &[u8]| take.as_mut().is_none_or(|t| !t(line));
    // Read into spare capacity: nothing is zeroed (or even touched) for
    // an agent that never writes.
    let mut buf: Vec<u8> = Vec::with_capacity(FIRST_READ);
    let mut size = FIRST_READ;
    let mut file_buf: Vec<u8> = Vec::new();
    let mut recent: Vec<(usize, usize)> = Vec::new();
    let tag = tag(stream);
    loop {
        buf.clear();
        buf.reserve(size);
        let n = match pipe.read_buf(&mut (&mut buf).limit(size)).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // A writer that fills the buffer gets a bigger one, then a bigger
        // pipe (fewer wake-ups for both sides); quiet agents keep the
        // small defaults.
        let full = n == size;
        if full && size < READ_CHUNK {
            size = READ_CHUNK;
        } else if full && size < FAST_PIPE {
            size = if rustix::pipe::fcntl_setpipe_size(pipe.as_fd(), FAST_PIPE).is_ok() {
                FAST_PIPE
            } else {
                FAST_PIPE / 4
            };
        }
        let now = jiff::Timestamp::now();
        let prefix = format!(
            "{} {replica} {tag} ",
            now.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        );
        file_buf.clear();
        recent.clear();
        let mut lines = 0u64;
        splitter.feed(&buf[..n], |line| {
            if !keep(line) {
                return;
            }
            file_buf.extend_from_slice(prefix.as_bytes());
            let start = file_buf.len();
            file_buf.extend_from_slice(line);
            recent.push((start, file_buf.len()));
            file_buf.push(b'\n');
            lines += 1;
        });
        commit(
            &out, &ring, &file_buf, &recent, lines, n, now, replica, stream,
        );
    }
    file_buf.clear();
    recent.clear();
    let mut lines = 0u64;
    let now = jiff::Timestamp::now();
    splitter.finish(|line| {
        if !keep(line) {
            return;
        }
        let prefix = format!(
            "{} {replica} {tag} ",
            now.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        );
        file_buf.extend_from_slice(prefix.as_bytes());
        let start = file_buf.len();
        file_buf.extend_from_slice(line);
        recent.push((start, file_buf.len()));
        file_buf.push(b'\n');
        lines += 1;
    });
    if lines > 0 {
        commit(
            &out, &ring, &file_buf, &recent, lines, 0, now, replica, stream,
        );
    }
    // The pipe ends with its replica, whose run task (reap, restart) the
    // same wake-up made ready: the pipe's deregistration and close wait
    // for the runtime's next turn, off the way to the respawn.
    tokio::task::yield_now().await;
    drop(pipe);
}

#[allow(clippy::too_many_arguments)]
fn commit(
    out: &AgentOutput,
    ring: &Mutex<Ring>,
    file_buf: &[u8],
    recent: &[(usize, usize)],
    lines: u64,
    bytes: usize,
    now: jiff::Timestamp,
    replica: u32,
    stream: Stream,
) {
    out.stats.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    if lines == 0 {
        return;
    }
    // Line numbers: this chunk's lines are base+1 ..= base+lines.
    let seq_base = out.stats.lines.fetch_add(lines, Ordering::Relaxed);
    let written = match out.file.lock() {
        Ok(mut f) => f.write(file_buf).is_ok(),
        Err(_) => false,
    };
    if !written {
        out.stats.dropped.fetch_add(lines, Ordering::Relaxed);
    }
    // Only the newest lines of a chunk can survive in the ring anyway.
    if let Ok(mut r) = ring.lock() {
        let keep = r.cap_lines.min(recent.len());
        if keep == 0 {
            return;
        }
        let kept = &recent[recent.len() - keep..];
        let base = kept[0].0;
        let end = kept[keep - 1].1;
        r.push_block(Block {
            first_seq: seq_base + (recent.len() - keep) as u64 + 1,
            at: now.as_millisecond().max(0) as u64,
            replica,
            stream,
            data: file_buf[base..end].to_vec(),
            lines: kept
                .iter()
                .map(|&(s, e)| ((s - base) as u32, (e - base) as u32))
                .collect(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        for c in chunks {
            s.feed(c, |l| out.push(l.to_vec()));
        }
        s.finish(|l| out.push(l.to_vec()));
        out
    }

    #[test]
    fn joins_lines_across_chunks_and_keeps_the_tail() {
        assert_eq!(
            split(&[b"ab", b"c\nde", b"\n\nf"]),
            vec![b"abc".to_vec(), b"de".to_vec(), b"".to_vec(), b"f".to_vec()]
        );
    }

    #[test]
    fn splits_lines_longer_than_the_cap() {
        let long = vec![b'x'; MAX_LINE * 2 + 10];
        let mut with_nl = long.clone();
        with_nl.push(b'\n');
        let lens: Vec<usize> = split(&[&with_nl]).iter().map(Vec::len).collect();
        assert_eq!(lens, vec![MAX_LINE, MAX_LINE, 10]);
        // Also when the long line arrives in small pieces without a newline.
        let pieces: Vec<&[u8]> = long.chunks(1000).collect();
        let lens: Vec<usize> = split(&pieces).iter().map(Vec::len).collect();
        assert_eq!(lens, vec![MAX_LINE, MAX_LINE, 10]);
    }

    #[test]
    fn ring_is_bounded_by_lines_and_bytes() {
        let mut r = Ring::new(3);
        for i in 0..10 {
            r.push(LogLine {
                seq: i + 1,
                at: i,
                replica: 0,
                stream: Stream::Stdout,
                text: format!("{i}"),
            });
        }
        let t: Vec<_> = r.tail(10).into_iter().map(|l| l.text).collect();
        assert_eq!(t, vec!["7", "8", "9"]);
        let since: Vec<_> = r.tail_since(9, 10).into_iter().map(|l| l.text).collect();
        assert_eq!(
            since,
            vec!["9"],
            "only lines after cursor 9 (seq 10 holds \"9\")"
        );
        let mut r = Ring::new(1000);
        for i in 0..40 {
            r.push(LogLine {
                seq: i + 1,
                at: i,
                replica: 0,
                stream: Stream::Stdout,
                text: "y".repeat(MAX_LINE),
            });
        }
        assert!(r.bytes <= RING_BYTES);
        assert_eq!(r.tail(1000).len(), RING_BYTES / MAX_LINE);
        assert_eq!(r.tail(3).len(), 3);
    }

    #[test]
    fn a_lazy_log_file_is_checked_up_front_and_a_later_failure_warns_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = LogSpec {
            max_size: 100,
            max_files: 2,
            ring_lines: 10,
        };
        // A directory where the file should be: refused up front.
        fs::create_dir_all(dir.path().join("a.log").join("x")).expect("dir");
        let err = LogFile::lazy(dir.path(), "a", spec, None).expect_err("not a file");
        assert!(err.to_string().contains("not a regular file"), "{err}");
        // The same with the dir's listing, which names it.
        let listing = list_dir(dir.path());
        assert!(
            listing
                .as_ref()
                .is_some_and(|l| l.contains(OsStr::new("a.log")))
        );
        let err = LogFile::lazy(dir.path(), "a", spec, listing.as_ref()).expect_err("not a file");
        assert!(err.to_string().contains("not a regular file"), "{err}");
        // One that becomes unusable later fails its writes, reported once.
        let mut f = LogFile::lazy(dir.path(), "c", spec, listing.as_ref()).expect("lazy");
        fs::create_dir_all(dir.path().join("c.log").join("x")).expect("dir");
        assert!(!f.1.0);
        assert!(f.write(b"line\n").is_err());
        assert!(f.1.0, "the failure is reported");
        assert!(f.write(b"line\n").is_err(), "and keeps failing, counted");
        // A good one is created at its first line, not before.
        let mut g = LogFile::lazy(dir.path(), "b", spec, None).expect("lazy");
        assert!(!dir.path().join("b.log").exists());
        g.write(b"line\n").expect("write");
        assert_eq!(fs::read(dir.path().join("b.log")).expect("read"), b"line\n");
    }

    #[test]
    fn a_log_file_removed_by_hand_does_not_stop_logging() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = LogSpec {
            max_size: 100,
            max_files: 2,
            ring_lines: 10,
        };
        let mut f = LogFile::open(dir.path(), "a", spec).expect("open");
        f.write(&[b'z'; 60]).expect("write");
        fs::remove_file(dir.path().join("a.log")).expect("rm");
        for _ in 0..3 {
            f.write(&[b'y'; 60]).expect("write goes on");
        }
        assert!(dir.path().join("a.log").exists());
    }

    #[test]
    fn log_file_rotates_and_caps_the_file_count() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = LogSpec {
            max_size: 100,
            max_files: 2,
            ring_lines: 10,
        };
        let mut f = LogFile::open(dir.path(), "a", spec).expect("open");
        for _ in 0..10 {
            f.write(&[b'z'; 60]).expect("write");
        }
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .expect("readdir")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf8"))
            .collect();
        names.sort();
        assert_eq!(names, vec!["a.log", "a.log.1", "a.log.2"]);
        assert!(fs::metadata(dir.path().join("a.log")).expect("stat").len() <= 100);
    }
}
