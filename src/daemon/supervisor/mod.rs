//! The supervisor actor: the single owner of the fleet's state.
//!
//! Requests, process events and samples arrive on one bounded channel
//! (`actor.rs`). What a replica does next is decided by the pure
//! `core::supervise`; the actor carries out the effects (`execute.rs`:
//! spawn, signal, timers, the pool, persistence, events) and answers
//! requests, one file per family (`fleet.rs`, `reload.rs`, `logs.rs`,
//! `alerts.rs`, `incidents.rs`). It never blocks: spawning is a
//! `posix_spawn`, the database has its own thread, process trees are
//! watched by run tasks, and /proc sampling runs on the collector thread.
//!
//! Backups, restores, the audit trail's commands and reads of old records
//! are not the actor's: `daemon::router` answers them above it.

mod actor;
mod alerts;
mod api;
mod autoscale;
mod contexts;
mod events;
mod execute;
mod fleet;
mod handle;
mod incidents;
mod logs;
mod probes;
mod reconcile;
mod reload;
mod spawn;
mod spawner;
mod status;
mod term;
mod tick;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::config::Config;
use crate::daemon::health::Health;
use crate::daemon::metrics::Published;
use crate::daemon::store::{Loaded, Store};
use crate::proto::{ErrorKind, ErrorReply};

pub use contexts::Early as EarlyContexts;
pub use events::{EVENT_BACKLOG, Events};
pub use handle::Supervisor;

/// Transitions per replica carried in a status or snapshot (the actor
/// keeps up to `lifecycle::HISTORY_CAP`, which `Request::History` returns),
/// fewer in large fleets (`proto::STATUS_TRANSITIONS` over all replicas).
pub const STATUS_HISTORY: usize = 16;
/// A status or snapshot is trimmed to this many bytes of JSON (the frame
/// cap less room for the envelope), whatever the fleet.
pub const STATUS_BUDGET: usize = crate::proto::MAX_FRAME - 256 * 1024;
/// Bytes of log text in one `logs` answer (escaped JSON can double it),
/// so that it always fits a frame.
pub const LOGS_REPLY_BYTES: usize = 1024 * 1024;
/// Bound of the actor's inbox.
pub const INBOX: usize = 8192;
/// Audit records carried in a status and in audit events.
const AUDIT_SHOWN: usize = 20;
/// Replicas spawned in one reconcile pass (~0.5 ms each): a thousand
/// replicas due at once start over several passes, and requests and
/// process events are handled between them.
const SPAWNS_PER_PASS: usize = 128;
/// Bound of each run task's command queue.
const RUN_QUEUE: usize = 4;

fn err(kind: ErrorKind, message: impl Into<String>) -> ErrorReply {
    ErrorReply {
        kind,
        message: message.into(),
    }
}

fn shutting_down() -> ErrorReply {
    err(ErrorKind::ShuttingDown, "the daemon is shutting down")
}

/// Agents' context dirs, under the data dir.
pub const CONTEXTS: &str = "contexts";
/// Where earlier versions kept them, as `agents/NAME/context`.
pub const LEGACY_CONTEXTS: &str = "agents";

/// Where the daemon keeps things.
#[derive(Debug, Clone)]
pub struct Layout {
    pub data_dir: PathBuf,
    /// The data dir was made by a version that kept contexts in
    /// `agents/NAME/context` (it has `agents/`): those stay where they are.
    legacy_contexts: bool,
}

impl Layout {
    pub fn new(data_dir: PathBuf) -> Layout {
        let legacy_contexts = data_dir.join(LEGACY_CONTEXTS).is_dir();
        Layout {
            data_dir,
            legacy_contexts,
        }
    }

    /// `contexts/NAME`: one directory per agent, made at its first start
    /// (a directory is the dearest thing a start of hundreds creates). An
    /// agent whose context an older version made in `agents/NAME/context`
    /// keeps it there.
    pub fn context_dir(&self, agent: &str) -> PathBuf {
        if self.legacy_contexts {
            let old = self
                .data_dir
                .join(LEGACY_CONTEXTS)
                .join(agent)
                .join("context");
            if old.is_dir() {
                return old;
            }
        }
        self.data_dir.join(CONTEXTS).join(agent)
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.data_dir.join("logs")
    }
    pub fn state_db(&self) -> PathBuf {
        self.data_dir.join("state.db")
    }
}

/// What backups are doing, as the status shows it.
#[derive(Debug, Clone)]
pub struct BackupWatch {
    /// A backup or restore holds the slot.
    pub busy: Arc<AtomicBool>,
    pub meter: Arc<crate::daemon::backup::Meter>,
}

/// What a reload also applies beside the fleet (the backup settings);
/// true when that changed something.
pub type ReloadHook = Box<dyn FnOnce(&Config) -> bool + Send>;

/// An automatic recovery the actor asks for: (agent, why).
pub type RecoveryJob = (String, String);

/// What the supervisor works with beside the fleet (all optional, so tests
/// can run a bare supervisor).
#[derive(Default)]
pub struct Services {
    /// Where to publish the /metrics snapshot, when the endpoint is on.
    pub published: Option<Published>,
    pub audit: Option<crate::daemon::audit::Audit>,
    pub backups: Option<BackupWatch>,
    /// Where `recovery = "restore-latest"` sends its restores.
    pub recoveries: Option<mpsc::UnboundedSender<RecoveryJob>>,
    /// Whether the data dir takes writes.
    pub health: Health,
    /// The task engine, told when task agents' replicas come and go.
    pub tasks: Option<crate::daemon::tasks::Tasks>,
    /// The context dirs the daemon's start began making.
    pub contexts: EarlyContexts,
}

/// Starts the actor and its collector. The returned join handle ends
/// after a `Shutdown` request completed.
///
/// No SIGCHLD handler: a replica's exit wakes the daemon once, through
/// its pidfd. A handler ran on some runtime thread at every exit (and
/// woke an orphan scan), on the way from the exit to the respawn, for the
/// few processes that outlive their replica and exit later: the actor's
/// scan once a second reaps those.
pub fn start(
    cfg: Config,
    layout: Layout,
    store: Store,
    loaded: Loaded,
    sample_every: Duration,
    services: Services,
) -> std::io::Result<(Supervisor, tokio::task::JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel(INBOX);
    let audit = services.audit.clone();
    let config_source = cfg.source.clone();
    let actor = actor::Actor::new(cfg, layout, store, &loaded, tx.clone(), services)?;
    let handle = Supervisor::new(tx, actor.events.clone(), config_source, audit);
    let join = run_alone(actor, rx)?;
    crate::daemon::collector::start(handle.collector_link(), sample_every);
    Ok((handle, join))
}

/// Runs the actor on a thread and a single-threaded runtime of its own,
/// with everything it starts: run watchers, output drains, probes,
/// timers. The returned handle ends with the actor.
///
/// On the daemon's shared runtime, a replica's exit (its pidfd and its
/// two pipes ready at once) made the woken worker wake a second one to
/// share the work; that second thread then held the CPU the new child
/// would have taken at its spawn, so the child started on the other,
/// idle CPU, whose wake-up cost tens of microseconds (more in a virtual
/// machine), and the restart paid both. Alone, the actor's thread
/// wakes no other. Requests, the API and the gateway stay on the shared
/// runtime and talk to the actor through its inbox, as before.
fn run_alone(
    actor: actor::Actor,
    rx: mpsc::Receiver<actor::Msg>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (done, ended) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("autonomos-actor".into())
        .spawn(move || {
            rt.block_on(async move {
                actor.run(rx).await;
                let _ = done.send(());
                // What the actor started (the last lines of output being
                // drained) goes on until the daemon's process ends, as on
                // the shared runtime.
                std::future::pending::<()>().await
            })
        })?;
    Ok(tokio::spawn(async move {
        let _ = ended.await;
    }))
}
