//! The audit trail on disk: `DATA_DIR/audit/audit.jsonl` (one chained record
//! per line), `checkpoints.jsonl` (signed checkpoints), `signing.key` (the
//! ed25519 secret, 0600, made at first start) and `key.pub`.
//!
//! One writer thread owns the files: records queue on a bounded channel, are
//! numbered and chained there, written in batches with one `fdatasync` per
//! batch, and checkpointed every [`CHECKPOINT_EVERY`] records, at shutdown
//! and on demand. At start a torn last line (a write cut short by a crash)
//! is cut off and the repair is itself recorded.

use crate::clock::now_ms;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use ed25519_dalek::SigningKey;
use tokio::sync::oneshot;

use crate::core::audit::{Checkpoint, GENESIS, Record, Rotation, hex, unhex};
use crate::daemon::health::{Health, Part};

/// How long the answer to a mutating request waits for its audit record
/// to reach the disk before it goes out with a warning instead.
pub const DURABLE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A signed checkpoint every this many records.
pub const CHECKPOINT_EVERY: u64 = 1000;
const QUEUE: usize = 65_536;

/// The files of an audit dir.
#[derive(Debug, Clone)]
pub struct Paths {
    pub dir: PathBuf,
}

impl Paths {
    pub fn new(data_dir: &Path) -> Paths {
        Paths {
            dir: data_dir.join("audit"),
        }
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("audit.jsonl")
    }
    pub fn checkpoints(&self) -> PathBuf {
        self.dir.join("checkpoints.jsonl")
    }
    pub fn secret(&self) -> PathBuf {
        self.dir.join("signing.key")
    }
    pub fn public(&self) -> PathBuf {
        self.dir.join("key.pub")
    }
    /// Key rotations, one JSON line each (see `core::audit::Rotation`).
    pub fn rotations(&self) -> PathBuf {
        self.dir.join("rotations.jsonl")
    }
    /// A new secret staged during a rotation, before it replaces the old.
    fn staged_secret(&self) -> PathBuf {
        self.dir.join("signing.key.new")
    }
}

/// Learns when a record is on disk: `Ok(seq)`, or the write error (the
/// record is kept and retried; it is not lost).
pub type Durable = oneshot::Receiver<Result<u64, String>>;

enum Cmd {
    Record {
        actor: String,
        action: String,
        args: serde_json::Value,
        result: String,
        done: Option<oneshot::Sender<Result<u64, String>>>,
    },
    Checkpoint(oneshot::Sender<Result<Checkpoint, String>>),
    /// Replace the signing key (see [`Audit::rotate_key`]).
    Rotate(oneshot::Sender<Result<Rotation, String>>),
    /// Checkpoint and stop.
    Close(oneshot::Sender<()>),
}

/// Records sealed but not yet on disk (the disk is failing) past which the
/// writer stops taking more: the queue then fills and callers wait.
const MAX_PENDING: u64 = 100_000;
/// Threads allowed to wait for room in a full queue; past it a record is
/// lost, counted and logged as an error.
const MAX_WAITING_THREADS: usize = 256;
/// A failed write is retried after this, doubling up to `RETRY_MAX`.
const RETRY_MIN: std::time::Duration = std::time::Duration::from_millis(200);
const RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(5);

/// Records kept in memory for clients (the console's audit view).
const RECENT: usize = 50;

/// A cheap, cloneable handle to the writer.
#[derive(Clone, Debug)]
pub struct Audit {
    tx: crate::daemon::bounded::Sender<Cmd>,
    recent: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<Record>>>,
    /// Threads waiting for room in the queue.
    waiting: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    health: Health,
}

impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cmd")
    }
}

/// Writes a 0600 file whole or not at all (temporary file, fsync, rename),
/// so a crash never leaves an empty key behind.
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent()
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reads the key, or makes one (0600) at first use.
fn load_or_create_key(p: &Paths) -> std::io::Result<SigningKey> {
    if let Ok(text) = std::fs::read_to_string(p.secret()) {
        let bytes = unhex(text.trim())
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| {
                std::io::Error::other(format!("{} is not an audit key", p.secret().display()))
            })?;
        return Ok(SigningKey::from_bytes(&bytes));
    }
    let mut seed = [0u8; 32];
    rand::fill(&mut seed);
    let key = SigningKey::from_bytes(&seed);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(p.secret())?;
    writeln!(f, "{}", hex(&seed))?;
    f.sync_all()?;
    std::fs::write(
        p.public(),
        format!("{}\n", hex(key.verifying_key().as_bytes())),
    )?;
    Ok(key)
}

/// A rotation cut short by a crash: the staged secret replaces the old one
/// if `rotations.jsonl` already names it, and is dropped otherwise.
fn finish_rotation(p: &Paths) -> std::io::Result<()> {
    let Ok(text) = std::fs::read_to_string(p.staged_secret()) else {
        return Ok(());
    };
    let staged = unhex(text.trim())
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .map(|b| hex(SigningKey::from_bytes(&b).verifying_key().as_bytes()));
    let named = read_rotations(&p.dir)
        .last()
        .is_some_and(|r| Some(&r.new_key) == staged.as_ref());
    if named {
        std::fs::rename(p.staged_secret(), p.secret())?;
        if let Some(k) = staged {
            write_private(&p.public(), &format!("{k}\n"))?;
        }
        tracing::warn!("audit: finished a key rotation cut short by a crash");
    } else {
        std::fs::remove_file(p.staged_secret())?;
    }
    Ok(())
}

/// The key rotations recorded in an audit dir, oldest first (unreadable
/// lines are skipped: verification then finds the chain broken).
pub fn read_rotations(audit_dir: &Path) -> Vec<Rotation> {
    std::fs::read_to_string(audit_dir.join("rotations.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Finds the end of the last complete line; returns (its length, the last
/// complete line).
fn scan(path: &Path) -> std::io::Result<(u64, u64, Option<Record>)> {
    let mut text = Vec::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut text)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let total = text.len() as u64;
    let good = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    // The newest record that parses: an unreadable line after it is left
    // for `audit verify` to report, and the chain goes on from the record
    // (never from the start again).
    let last = text[..good]
        .split(|&b| b == b'\n')
        .rev()
        .filter(|l| !l.is_empty())
        .find_map(|l| serde_json::from_slice::<Record>(l).ok());
    Ok((total, good as u64, last))
}

struct Writer {
    /// (seq, head) of the last record known to be on disk.
    durable: (u64, String),
    /// The log's length up to that record: a failed write is cut back to it.
    durable_len: u64,
    /// Sealed records not yet on disk, as lines.
    batch: String,
    /// How many records `batch` holds.
    pending: u64,
    /// Who waits for a record to be on disk: (its seq, the answer).
    waiters: Vec<(u64, oneshot::Sender<Result<u64, String>>)>,
    recent: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<Record>>>,
    log: File,
    checkpoints: File,
    key: SigningKey,
    seq: u64,
    head: String,
    checkpointed: u64,
    health: Health,
    paths: Paths,
}

impl Writer {
    fn append(&mut self, actor: &str, action: &str, args: serde_json::Value, result: &str) {
        self.seq += 1;
        let r = Record::seal(self.seq, now_ms(), actor, action, args, result, &self.head);
        self.head = r.hash.clone();
        self.batch.push_str(&r.line());
        self.pending += 1;
        if let Ok(mut recent) = self.recent.lock() {
            if recent.len() == RECENT {
                recent.pop_front();
            }
            recent.push_back(r);
        }
    }

    /// Writes the sealed records and syncs them. On an error the file is
    /// cut back to the last durable record and the records stay sealed
    /// and queued, in order, for the next attempt: a failed write loses
    /// nothing, a retry never duplicates a record, and a checkpoint never
    /// names a record that is not on disk.
    fn flush(&mut self) -> std::io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let written = (|| {
            if self.log.metadata()?.len() != self.durable_len {
                self.log.set_len(self.durable_len)?;
            }
            self.log.seek(SeekFrom::Start(self.durable_len))?;
            self.log.write_all(self.batch.as_bytes())?;
            self.log.sync_data()
        })();
        if let Err(e) = written {
            let _ = self.log.set_len(self.durable_len);
            return Err(e);
        }
        self.durable_len += self.batch.len() as u64;
        self.durable = (self.seq, self.head.clone());
        self.batch.clear();
        self.pending = 0;
        Ok(())
    }

    /// Flushes and tells the waiters (and the health report) how it went.
    fn flush_and_answer(&mut self) -> Result<(), String> {
        let outcome = self.flush().map_err(|e| e.to_string());
        match &outcome {
            Ok(()) => {
                self.health.succeeded(Part::Audit);
                let seq = self.durable.0;
                for (_, w) in self.waiters.drain(..) {
                    let _ = w.send(Ok(seq));
                }
            }
            Err(e) => {
                self.health.failed(Part::Audit, e);
                for (seq, w) in self.waiters.drain(..) {
                    let _ = w.send(Err(format!(
                        "audit record {seq} is not on disk yet ({e}); it is kept and retried"
                    )));
                }
            }
        }
        outcome
    }

    /// Replaces the signing key: everything queued is written and signed
    /// by the old key, a rotation signed by both keys is appended to
    /// `rotations.jsonl`, the new key replaces the old on disk (staged
    /// first, so a crash leaves one key or the other, never none), and the
    /// chain records the rotation, checkpointed by the new key.
    fn rotate(&mut self) -> std::io::Result<Rotation> {
        self.flush()?;
        let (seq, head) = self.durable.clone();
        let last = Checkpoint::sign(&self.key, seq, &head, now_ms());
        let mut seed = [0u8; 32];
        rand::fill(&mut seed);
        let new = SigningKey::from_bytes(&seed);
        let rotation = Rotation::sign(&self.key, last, &new);
        write_private(&self.paths.staged_secret(), &format!("{}\n", hex(&seed)))?;
        let mut line = serde_json::to_string(&rotation).map_err(std::io::Error::other)?;
        line.push('\n');
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .mode(0o600)
            .open(self.paths.rotations())?;
        // A line cut short by an earlier crash would swallow this one.
        let mut text = Vec::new();
        file.read_to_end(&mut text)?;
        if let Some(last) = text.last()
            && *last != b'\n'
        {
            let keep = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            file.set_len(keep as u64)?;
        }
        file.write_all(line.as_bytes())?;
        file.sync_data()?;
        // The rotation is on record: from here the new key signs, whatever
        // else fails (the next start finishes installing it).
        let installed =
            std::fs::rename(self.paths.staged_secret(), self.paths.secret()).and_then(|()| {
                write_private(
                    &self.paths.public(),
                    &format!("{}\n", hex(new.verifying_key().as_bytes())),
                )
            });
        let old_key = std::mem::replace(&mut self.key, new);
        self.append(
            "autonomos",
            "key-rotated",
            serde_json::json!({
                "old_key": hex(old_key.verifying_key().as_bytes()),
                "new_key": rotation.new_key,
                "at_seq": seq,
            }),
            "ok",
        );
        self.flush()?;
        self.checkpoint()?;
        installed.map_err(|e| {
            std::io::Error::other(format!(
                "rotated and signing with the new key, but installing it failed ({e}); the next daemon start finishes it"
            ))
        })?;
        Ok(rotation)
    }

    fn checkpoint(&mut self) -> std::io::Result<Checkpoint> {
        // Only what is on disk is signed.
        let (seq, head) = self.durable.clone();
        let cp = Checkpoint::sign(&self.key, seq, &head, now_ms());
        if seq > self.checkpointed {
            let mut line = serde_json::to_string(&cp).map_err(std::io::Error::other)?;
            line.push('\n');
            self.checkpoints.write_all(line.as_bytes())?;
            self.checkpoints.sync_data()?;
            self.checkpointed = seq;
        }
        Ok(cp)
    }
}

impl Audit {
    /// Opens (creating) the audit dir, repairs a torn last line, and starts
    /// the writer. Returns the handle and, when a repair happened, what was
    /// cut (it is also recorded).
    pub fn open(data_dir: &Path, health: Health) -> std::io::Result<(Audit, Option<u64>)> {
        let p = Paths::new(data_dir);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&p.dir)?;
        finish_rotation(&p)?;
        let key = load_or_create_key(&p)?;
        // key.pub always names the key in use (a crash may have left the
        // old one after a rotation).
        let public = format!("{}\n", hex(key.verifying_key().as_bytes()));
        if std::fs::read_to_string(p.public()).ok().as_deref() != Some(public.as_str()) {
            write_private(&p.public(), &public)?;
        }
        if !p.public().exists() {
            std::fs::write(
                p.public(),
                format!("{}\n", hex(key.verifying_key().as_bytes())),
            )?;
        }
        let (total, good, last) = scan(&p.log())?;
        let mut log = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            // Appended to, never truncated (a torn tail is cut below).
            .truncate(false)
            .mode(0o600)
            .open(p.log())?;
        let torn = (total > good).then_some(total - good);
        if torn.is_some() {
            log.set_len(good)?;
            log.sync_all()?;
        }
        let durable_len = log.seek(SeekFrom::End(0))?;
        let checkpoints = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(p.checkpoints())?;
        let checkpointed = std::fs::read_to_string(p.checkpoints())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Checkpoint>(l).ok())
            .map(|c| c.seq)
            .max()
            .unwrap_or(0);
        let (seq, head) = match last {
            Some(r) => (r.seq, r.hash),
            None => (0, GENESIS.to_string()),
        };
        let recent = std::sync::Arc::new(std::sync::Mutex::new(std::collections::VecDeque::new()));
        let mut w = Writer {
            durable: (seq, head.clone()),
            durable_len,
            batch: String::new(),
            pending: 0,
            waiters: Vec::new(),
            health: health.clone(),
            paths: p.clone(),
            recent: recent.clone(),
            log,
            checkpoints,
            key,
            seq,
            head,
            checkpointed,
        };
        if let Some(bytes) = torn {
            w.append(
                "autonomos",
                "repair",
                serde_json::json!({ "torn_bytes": bytes, "after_seq": seq }),
                "cut an incomplete last line left by a crash",
            );
            w.flush()?;
            tracing::warn!(
                bytes,
                after_seq = seq,
                "audit log: cut a torn last line left by a crash"
            );
        }
        let (tx, rx) = crate::daemon::bounded::channel::<Cmd>(QUEUE);
        std::thread::Builder::new()
            .name("autonomos-audit".into())
            .spawn(move || run(w, rx))?;
        Ok((
            Audit {
                tx,
                recent,
                waiting: Default::default(),
                health,
            },
            torn,
        ))
    }

    /// Appends a record without waiting. When 65,536 records are already
    /// queued (the disk has stalled) a thread waits with it, so no record
    /// is dropped while the writer lives.
    pub fn record(&self, actor: &str, action: &str, args: serde_json::Value, result: &str) {
        self.queue(actor, action, args, result, None);
    }

    /// Appends a record and returns a receiver that learns when it is on
    /// disk (batched with others: one sync for many records).
    pub fn record_durable(
        &self,
        actor: &str,
        action: &str,
        args: serde_json::Value,
        result: &str,
    ) -> Durable {
        let (tx, rx) = oneshot::channel();
        self.queue(actor, action, args, result, Some(tx));
        rx
    }

    fn queue(
        &self,
        actor: &str,
        action: &str,
        args: serde_json::Value,
        result: &str,
        done: Option<oneshot::Sender<Result<u64, String>>>,
    ) {
        use std::sync::atomic::Ordering;
        let cmd = Cmd::Record {
            actor: actor.to_string(),
            action: action.to_string(),
            args,
            result: result.to_string(),
            done,
        };
        match self.tx.try_send(cmd) {
            Ok(()) => {}
            Err(crate::daemon::bounded::TrySendError::Full(cmd)) => {
                // The disk has stalled: hand the record to a thread that
                // waits, so the caller (maybe the supervisor) never does.
                if self.waiting.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING_THREADS {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    self.lost(action, "the queue and its waiting threads are full");
                    return;
                }
                tracing::warn!(action, "audit queue full: the record waits for the disk");
                let (tx, waiting) = (self.tx.clone(), self.waiting.clone());
                let spawned = std::thread::Builder::new()
                    .name("autonomos-audit-wait".into())
                    .spawn(move || {
                        if tx.send(cmd).is_err() {
                            tracing::error!("audit writer stopped: record lost");
                        }
                        waiting.fetch_sub(1, Ordering::SeqCst);
                    });
                if spawned.is_err() {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    self.lost(action, "cannot start a thread to wait for room");
                }
            }
            Err(crate::daemon::bounded::TrySendError::Disconnected(_)) => {
                self.lost(action, "the audit writer stopped");
            }
        }
    }

    fn lost(&self, action: &str, why: &str) {
        tracing::error!(action, why, "audit record lost");
        self.health
            .failed(Part::Audit, &format!("an audit record was lost: {why}"));
    }

    /// The newest `n` records written since the daemon started, oldest first.
    pub fn recent(&self, n: usize) -> Vec<Record> {
        self.recent
            .lock()
            .map(|r| r.iter().skip(r.len().saturating_sub(n)).cloned().collect())
            .unwrap_or_default()
    }

    /// Writes a checkpoint now and returns it.
    pub async fn checkpoint(&self) -> Result<Checkpoint, String> {
        let (tx, rx) = oneshot::channel();
        let sender = self.tx.clone();
        tokio::task::spawn_blocking(move || sender.send(Cmd::Checkpoint(tx)))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|_| "the audit writer stopped".to_string())?;
        rx.await
            .map_err(|_| "the audit writer stopped".to_string())?
    }

    /// Replaces the signing key; returns the rotation (also appended to
    /// `rotations.jsonl`).
    pub async fn rotate_key(&self) -> Result<Rotation, String> {
        let (tx, rx) = oneshot::channel();
        let sender = self.tx.clone();
        tokio::task::spawn_blocking(move || sender.send(Cmd::Rotate(tx)))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|_| "the audit writer stopped".to_string())?;
        rx.await
            .map_err(|_| "the audit writer stopped".to_string())?
    }

    /// Checkpoints and stops the writer (at shutdown); waits for it.
    pub fn close_blocking(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Cmd::Close(tx)).is_ok() {
            let _ = rx.blocking_recv();
        }
    }
}

fn run(mut w: Writer, rx: crate::daemon::bounded::Receiver<Cmd>) {
    // While writes fail, records wait in `w.batch` and are written again
    // no sooner than `retry.next` (backing off up to RETRY_MAX), however
    // many arrive meanwhile. Commands are always read, so a checkpoint, a
    // rotation or the shutdown is answered even on a failing disk.
    let mut retry = Retry::default();
    let mut lost: u64 = 0;
    loop {
        let Some(cmds) = next_batch(&rx, &mut w, retry.next) else {
            return;
        };
        let mut replies = Vec::new();
        let mut close = None;
        let mut rotate = Vec::new();
        for c in cmds {
            match c {
                Cmd::Record {
                    actor,
                    action,
                    args,
                    result,
                    done,
                } => {
                    if w.pending >= MAX_PENDING {
                        lose(&w, &mut lost, &action, done);
                        continue;
                    }
                    w.append(&actor, &action, args, &result);
                    if let Some(done) = done {
                        w.waiters.push((w.seq, done));
                    }
                    if retry.next.is_none()
                        && w.seq.is_multiple_of(CHECKPOINT_EVERY)
                        && w.flush_and_answer().is_ok()
                        && let Err(e) = w.checkpoint()
                    {
                        tracing::error!(error = %e, "audit checkpoint failed");
                    }
                }
                Cmd::Checkpoint(reply) => replies.push(reply),
                Cmd::Rotate(reply) => rotate.push(reply),
                Cmd::Close(done) => close = Some(done),
            }
        }
        let due = retry.next.is_none_or(|at| std::time::Instant::now() >= at);
        if due || close.is_some() || !rotate.is_empty() {
            retry.flush(&mut w);
        } else {
            // Between retries: whoever waits hears at once that the disk
            // is failing (the record stays queued and is retried).
            for (seq, waiter) in w.waiters.drain(..) {
                let _ = waiter.send(Err(format!(
                    "audit record {seq} is not on disk yet ({}); it is kept and retried",
                    retry.last_error
                )));
            }
        }
        for reply in replies {
            let _ = reply.send(w.checkpoint().map_err(|e| e.to_string()));
        }
        for reply in rotate {
            let _ = reply.send(w.rotate().map_err(|e| e.to_string()));
        }
        if let Some(done) = close {
            if w.pending > 0 {
                tracing::error!(
                    records = w.pending,
                    "audit writer stopped with records not on disk"
                );
            }
            if let Err(e) = w.checkpoint() {
                tracing::error!(error = %e, "audit checkpoint at shutdown failed");
            }
            let _ = done.send(());
            return;
        }
    }
}

/// Retrying failed writes: when next, after how long, and why the last
/// one failed.
struct Retry {
    after: std::time::Duration,
    next: Option<std::time::Instant>,
    last_error: String,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            after: RETRY_MIN,
            next: None,
            last_error: String::new(),
        }
    }
}

impl Retry {
    /// Writes what waits; on failure, backs off (doubling up to RETRY_MAX).
    fn flush(&mut self, w: &mut Writer) {
        match w.flush_and_answer() {
            Ok(()) => {
                if self.next.is_some() {
                    tracing::info!(
                        "audit log writes succeed again; the queued records are on disk"
                    );
                }
                self.after = RETRY_MIN;
                self.next = None;
            }
            Err(e) => {
                if self.next.is_none() {
                    tracing::error!(error = %e, records = w.pending, "audit log write failed; the records are kept and retried");
                }
                self.last_error = e;
                self.next = Some(std::time::Instant::now() + self.after);
                self.after = (self.after * 2).min(RETRY_MAX);
            }
        }
    }
}

/// The next commands: the first one waited for (until a retry is due, if
/// one is pending), then what is queued behind it. None when the writer
/// should stop (every sender gone).
fn next_batch(
    rx: &crate::daemon::bounded::Receiver<Cmd>,
    w: &mut Writer,
    next_retry: Option<std::time::Instant>,
) -> Option<Vec<Cmd>> {
    let first = match next_retry {
        None => Some(rx.recv().ok()?),
        Some(at) => {
            let wait = at.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(wait) {
                Ok(c) => Some(c),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    if w.flush_and_answer().is_err() {
                        tracing::error!(
                            records = w.pending,
                            "audit writer stopped with records not on disk"
                        );
                    }
                    return None;
                }
            }
        }
    };
    let mut cmds: Vec<Cmd> = first.into_iter().collect();
    while !cmds.is_empty()
        && cmds.len() < 4096
        && let Ok(more) = rx.try_recv()
    {
        cmds.push(more);
    }
    Some(cmds)
}

/// Memory is bounded: past MAX_PENDING a record is lost, and says so
/// loudly (its requester is told too).
fn lose(
    w: &Writer,
    lost: &mut u64,
    action: &str,
    done: Option<oneshot::Sender<Result<u64, String>>>,
) {
    *lost += 1;
    let n = *lost;
    w.health.failed(
        Part::Audit,
        &format!("{n} audit record(s) lost: {MAX_PENDING} already wait for the disk"),
    );
    tracing::error!(
        action,
        lost = n,
        "audit record lost: too many wait for the disk"
    );
    if let Some(done) = done {
        let _ = done.send(Err(format!(
            "the audit record was lost: {MAX_PENDING} records already wait for a failing disk"
        )));
    }
}

/// Reads the files for `audit verify`: the log bytes, the checkpoints and
/// the public key.
pub fn read(data_dir: &Path) -> std::io::Result<(Vec<u8>, Vec<Checkpoint>, String)> {
    let p = Paths::new(data_dir);
    let log = std::fs::read(p.log())?;
    let cps = std::fs::read_to_string(p.checkpoints())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let key = std::fs::read_to_string(p.public())?;
    Ok((log, cps, key.trim().to_string()))
}
