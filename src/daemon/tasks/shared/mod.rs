//! The task queue several daemons share, in PostgreSQL
//! (`[tasks] store = "postgres://..."`). Each daemon keeps its own engine
//! and replicas; the queue lives in one table. A daemon with room claims
//! tasks (`FOR UPDATE SKIP LOCKED`), holds them under a lease it renews,
//! and writes their states back fenced by its claim, so a daemon whose
//! lease ran out cannot overwrite the work of the one that took over.
//! Submits wake the others with `NOTIFY`; a poll every second covers a
//! lost notification and retry delays.
//!
//! One actor (`actor.rs`) owns the connection: it reconnects on its own,
//! keeps state writes that could not be sent and sends them again in
//! order, and answers everything else with an error while the database is
//! away (a submit it could not store is refused, never half-taken).

mod actor;
pub use actor::UNCERTAIN;
mod schema;
mod sql;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use super::store::{QueueStore, Write};
use crate::core::task::TaskState;
use crate::proto::TaskStatus;

/// A task to add, with what the queue needs beside its status.
#[derive(Debug, Clone)]
pub struct NewRow {
    pub task: TaskStatus,
    pub max_attempts: u32,
}

/// A claimed task and its place in the queue.
#[derive(Debug)]
pub struct ClaimedRow {
    pub seq: u64,
    pub task: TaskStatus,
    pub max_attempts: u32,
}

/// Milliseconds on a clock that only goes forward (since the first call):
/// claims and renewals are ordered by it, whatever the wall clock does.
pub fn mono_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
}

/// What a renewal found: the tasks this daemon still holds (ids), and those
/// of them an operator asked to cancel from another daemon.
#[derive(Debug, Default)]
pub struct Held {
    /// When the renewal started (`mono_ms`): a claim newer than this is
    /// not in `ids` yet.
    pub since: u64,
    pub ids: Vec<String>,
    pub cancel: Vec<String>,
}

/// Figures the actor refreshes every second for the engine: each agent's
/// waiting tasks in the shared queue, and the task agents other daemons
/// offer.
#[derive(Debug, Default, Clone)]
pub struct Cache {
    /// agent → (tasks waiting, oldest submit time ms).
    pub waiting: HashMap<String, (u64, Option<u64>)>,
    /// agent → skills, as any daemon announced them in the last minutes.
    pub offered: HashMap<String, Vec<String>>,
    /// Whether the database answers now.
    pub connected: bool,
    /// The last connection error (for `doctor` and the log).
    pub error: Option<String>,
}

type Reply<T> = oneshot::Sender<Result<T, String>>;

/// What the actor is asked.
pub(crate) enum Op {
    Submit(Vec<NewRow>, Reply<Vec<TaskStatus>>),
    Claim {
        agent: String,
        n: u32,
        answer: Reply<Vec<ClaimedRow>>,
    },
    /// A state write, fenced by this daemon's claim.
    Put {
        task: Box<TaskStatus>,
        /// Back to the queue for any daemon after this many ms (a retry),
        /// or None: it stays claimed (working) or is final.
        release_after: Option<u64>,
        /// Not counted as an attempt (claimed, never run).
        unclaimed: bool,
    },
    /// Answered once every write before it is in the database.
    Flush(Reply<()>),
    List {
        agent: Option<String>,
        state: Option<TaskState>,
        limit: usize,
        answer: Reply<Vec<TaskStatus>>,
    },
    Get(String, Reply<Option<TaskStatus>>),
    /// Cancels a task nobody runs, or asks its daemon to (the answer is its
    /// status and the daemon holding it, if any).
    Cancel(String, Reply<(TaskStatus, Option<String>)>),
    Retry(String, Reply<TaskStatus>),
    /// The task agents this daemon runs, with their skills.
    Offer(Vec<(String, Vec<String>)>),
    /// Claims the engine does not hold (a claim whose answer was lost, a
    /// task dropped here): given up, so the expiry returns them to the
    /// queue by the usual rules (an attempt counted if one ran).
    Unclaim(Vec<String>),
}

/// Who this daemon is in the shared queue.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The name shown as a task's host.
    pub host: String,
    /// This run's claim token, `HOST:RANDOM`: unique to the run, so two
    /// daemons never mistake each other's claims for their own.
    pub owner: String,
    /// The previous run's token on this data dir (`shared-queue.owner`):
    /// its claims go back to the queue at once, not after the lease.
    pub previous: Option<String>,
}

/// Where a daemon keeps its claim token between runs.
const OWNER_FILE: &str = "shared-queue.owner";

impl Identity {
    pub fn new(host: Option<&str>, data_dir: &std::path::Path) -> Identity {
        let host = host.map(str::to_string).unwrap_or_else(|| {
            rustix::system::uname()
                .nodename()
                .to_string_lossy()
                .into_owned()
        });
        let owner = format!("{host}:{:016x}", rand::random::<u64>());
        let file = data_dir.join(OWNER_FILE);
        let previous = std::fs::read_to_string(&file)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty() && *s != owner);
        if let Err(e) = std::fs::write(&file, &owner) {
            tracing::warn!(file = %file.display(), error = %e, "cannot record the shared queue claim token; a restart returns this run's claims only after the lease");
        }
        Identity {
            host,
            owner,
            previous,
        }
    }
}

/// A cheap handle to the shared queue's actor.
#[derive(Clone)]
pub struct SharedQueue {
    tx: mpsc::UnboundedSender<Op>,
    cache: Arc<Mutex<Cache>>,
    pub me: Arc<Identity>,
    /// host:port/database, for messages.
    pub place: String,
}

impl std::fmt::Debug for SharedQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedQueue({})", self.me.owner)
    }
}

/// What the actor tells the engine.
pub enum Event {
    /// Tasks for this agent were submitted or came back to the queue.
    Wake(String),
    /// A lease renewal's result.
    Held(Held),
}

impl SharedQueue {
    /// Starts the actor. It connects in the background: a database that is
    /// down at start is retried, and submits are refused until it answers.
    pub fn start(
        url: &str,
        me: Identity,
        spec: &crate::config::TasksSpec,
        events: mpsc::UnboundedSender<Event>,
    ) -> Result<SharedQueue, String> {
        let pg: tokio_postgres::Config = url
            .parse()
            .map_err(|e| format!("[tasks] store: {e} (write postgres://user@host:port/db)"))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let cache = Arc::new(Mutex::new(Cache::default()));
        let me = Arc::new(me);
        let place = where_of(url);
        let a = actor::Actor::new(pg, place.clone(), me.clone(), spec, cache.clone(), events);
        tokio::spawn(a.run(rx));
        Ok(SharedQueue {
            tx,
            cache,
            me,
            place,
        })
    }

    pub(crate) fn send(&self, op: Op) {
        if let Err(mpsc::error::SendError(op)) = self.tx.send(op) {
            stopped(op);
        }
    }

    pub fn cache(&self) -> Cache {
        self.cache.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Asks and waits for the answer.
    pub(crate) async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Op) -> Result<T, String> {
        let (answer, rx) = oneshot::channel();
        self.send(make(answer));
        rx.await
            .unwrap_or_else(|_| Err("the shared queue stopped".into()))
    }
}

/// An op the actor will never see: its asker hears why.
fn stopped(op: Op) {
    let why = || "the shared queue stopped".to_string();
    match op {
        Op::Submit(_, a) | Op::List { answer: a, .. } => drop(a.send(Err(why()))),
        Op::Claim { answer, .. } => drop(answer.send(Err(why()))),
        Op::Flush(a) => drop(a.send(Err(why()))),
        Op::Get(_, a) => drop(a.send(Err(why()))),
        Op::Cancel(_, a) => drop(a.send(Err(why()))),
        Op::Retry(_, a) => drop(a.send(Err(why()))),
        Op::Put { .. } | Op::Offer(_) | Op::Unclaim(_) => {}
    }
}

/// The store's address without credentials, for messages.
fn where_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}:{}{}",
            u.host_str().unwrap_or("?"),
            u.port().unwrap_or(5432),
            u.path()
        ),
        Err(_) => "the shared store".into(),
    }
}

impl QueueStore for SharedQueue {
    fn write(&self, w: Write) -> oneshot::Receiver<Result<(), String>> {
        self.write_soon(w);
        let (answer, rx) = oneshot::channel();
        self.send(Op::Flush(answer));
        rx
    }

    fn write_soon(&self, w: Write) {
        match w {
            Write::Put { task, .. } => self.send(Op::Put {
                task,
                release_after: None,
                unclaimed: false,
            }),
            // Submits go through `Op::Submit`; finished tasks are trimmed by
            // the queue itself (`[tasks] keep` over the whole queue).
            Write::PutMany(_) | Write::Delete(_) => {}
        }
    }
}
