//! The supervisor actor: the single owner of the fleet's state.
//!
//! Requests, process events and samples arrive on one bounded channel; the
//! actor applies them to the lifecycle state machines, decides (restart,
//! backoff, fail, admit, decommission), executes the effects (spawn, signal,
//! persist) and answers. It never blocks: spawning is a `posix_spawn`, the
//! database has its own thread, process trees are watched by run tasks, and
//! /proc sampling runs on the collector thread.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{broadcast, mpsc, oneshot};

use crate::config::{AgentSpec, Config, LimitAction, RestartPolicy};
use crate::core::backoff::{Backoff, StartLimit};
use crate::core::lifecycle::{Lifecycle, Millis, State, Transition};
use crate::core::pool::{Pool, ReplicaKey, Request as PoolRequest};
use crate::daemon::collector::{self, Sample, Target};
use crate::daemon::health::{Health, Part};
use crate::daemon::metrics::{Published, Scrape};
use crate::daemon::notify::Notifiers;
use crate::daemon::observe::{AgentFacts, INCIDENTS_REPORTED, Observe};
use crate::daemon::output::{self, AgentOutput, LogFile, OutputStats, Ring};
use crate::daemon::process::{self, Marker, RunCmd, RunEvent, SpawnSpec};
use crate::daemon::store::{AgentRow, Change, Loaded, ReplicaRow, Store};
use crate::proto::{
    ALERTS_LISTED, AgentStatus, ErrorKind, ErrorReply, ExitInfo, FleetStatus, HostStatus,
    INCIDENTS_LISTED, LogLine, ReplicaSample, ReplicaStatus, Request, Response, ServerEvent,
    Stream,
};

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
/// Audit records carried in a status and in audit events.
const AUDIT_SHOWN: usize = 20;
/// Why a replica restarts when an operator asked for it, or a reload
/// changed its agent: recorded once per request on incident timelines (by
/// who asked), not once per replica.
const OPERATOR_RESTART: &str = "restart requested by operator";
const RELOAD_RESTART: &str = "config changed by reload";
/// Bound of the actor's inbox.
pub const INBOX: usize = 8192;
/// Replicas spawned in one reconcile pass (~0.5 ms each): a thousand
/// replicas due at once start over several passes, and requests and
/// process events are handled between them.
const SPAWNS_PER_PASS: usize = 128;
/// Bound of each run task's command queue.
const RUN_QUEUE: usize = 4;
/// A spawn error is retried no sooner than this, whatever the backoff says.
const SPAWN_ERROR_MIN_DELAY: Duration = Duration::from_millis(250);

fn err(kind: ErrorKind, message: impl Into<String>) -> ErrorReply {
    ErrorReply {
        kind,
        message: message.into(),
    }
}

/// Capacity of the event broadcast: a client further behind than this gets
/// a fresh snapshot instead of the backlog.
pub const EVENT_BACKLOG: usize = 4096;

/// The supervisor's event stream, with sequence numbers.
#[derive(Clone, Debug)]
pub struct Events {
    tx: broadcast::Sender<Arc<(u64, ServerEvent)>>,
    seq: Arc<AtomicU64>,
    /// Restarts, failures and stops, for incident timelines (drained by
    /// the actor after every message).
    tap: Arc<Mutex<Vec<(String, u32, Transition)>>>,
}

impl Events {
    fn new() -> Self {
        let (tx, _) = broadcast::channel(EVENT_BACKLOG);
        Self {
            tx,
            seq: Arc::new(AtomicU64::new(0)),
            tap: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn emit(&self, event: ServerEvent) {
        if let ServerEvent::Transition {
            agent,
            replica,
            transition,
        } = &event
            && matches!(
                transition.to,
                State::Adaptation | State::Failed | State::Stopped
            )
            && let Ok(mut tap) = self.tap.lock()
            && tap.len() < 100_000
        {
            tap.push((agent.clone(), *replica, transition.clone()));
        }
        let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        // No subscriber is fine: nobody is listening.
        let _ = self.tx.send(Arc::new((seq, event)));
    }

    /// True while at least one client is subscribed.
    pub fn has_subscribers(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// The sequence number of the last event sent.
    pub fn seq(&self) -> u64 {
        self.seq.load(Ordering::SeqCst)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<(u64, ServerEvent)>> {
        self.tx.subscribe()
    }
}

type Answer = oneshot::Sender<Result<Response, ErrorReply>>;

enum Msg {
    Api(Request, Answer, String),
    Reload(Box<Config>, Answer, String),
    Snapshot(oneshot::Sender<(u64, FleetStatus)>),
    Run {
        agent: usize,
        index: u32,
        run_id: u64,
        ev: RunEvent,
    },
    Targets(oneshot::Sender<Vec<Target>>),
    Samples(Vec<Sample>, HostStatus),
    Sigchld,
    /// A recovery workflow step for the agent's incident timelines.
    Recovery(String, String),
    /// An agent change was written to `state.db` (or failed to be): apply
    /// it and answer, or refuse it.
    Persisted {
        agent: usize,
        change: AgentChange,
        result: Result<(), String>,
        answer: Answer,
        /// Who asked (for incident timelines).
        who: String,
    },
}

/// An operator change to an agent's durable intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AgentChange {
    Scale(u32),
    Start,
    Stop,
}

/// What the supervisor works with beside the fleet (all optional, so tests
/// can run a bare supervisor).
#[derive(Default)]
pub struct Services {
    /// Where to publish the /metrics snapshot, when the endpoint is on.
    pub published: Option<Published>,
    pub audit: Option<crate::daemon::audit::Audit>,
    pub recovery: Option<Arc<crate::daemon::recovery::Settings>>,
    /// Whether the data dir takes writes.
    pub health: Health,
}

/// A cheap, cloneable handle to the actor.
#[derive(Clone, Debug)]
pub struct Supervisor {
    tx: mpsc::Sender<Msg>,
    events: Events,
    config_source: Option<PathBuf>,
    audit: Option<crate::daemon::audit::Audit>,
    recovery: Option<Arc<crate::daemon::recovery::Settings>>,
    /// Read (never written) here for what the actor does not keep in
    /// memory: old incidents, the alert history.
    state_db: PathBuf,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

impl Supervisor {
    /// Records a recovery step on the agent's open incidents.
    pub async fn note_recovery(&self, agent: &str, text: &str) -> Result<(), ErrorReply> {
        self.tx
            .send(Msg::Recovery(agent.to_string(), text.to_string()))
            .await
            .map_err(|_| shutting_down())
    }

    /// Appends to the audit trail (never waits).
    pub fn audit(&self, actor: &str, action: &str, args: serde_json::Value, result: &str) {
        if let Some(a) = &self.audit {
            a.record(actor, action, args, result);
        }
    }

    /// Appends to the audit trail and returns what learns when the record
    /// is on disk (None when this daemon keeps no audit trail).
    pub fn audit_durable(
        &self,
        actor: &str,
        action: &str,
        args: serde_json::Value,
        result: &str,
    ) -> Option<crate::daemon::audit::Durable> {
        self.audit
            .as_ref()
            .map(|a| a.record_durable(actor, action, args, result))
    }

    fn audit_trail(&self) -> Result<&crate::daemon::audit::Audit, ErrorReply> {
        self.audit
            .as_ref()
            .ok_or_else(|| err(ErrorKind::NotAvailable, "this daemon keeps no audit trail"))
    }

    fn backup_settings(&self) -> Result<&Arc<crate::daemon::recovery::Settings>, ErrorReply> {
        self.recovery.as_ref().ok_or_else(|| {
            err(
                ErrorKind::NotAvailable,
                "this daemon has no backup settings",
            )
        })
    }

    /// Sends a request and waits for its answer. `Subscribe` is the
    /// connection's business (see `daemon::server`), not the actor's.
    pub async fn request(&self, req: Request) -> Result<Response, ErrorReply> {
        self.request_as(req, "autonomos".into()).await
    }

    /// Sends a request on behalf of `who` (an operator, as the server
    /// identified the peer): recorded on incident timelines.
    pub async fn request_as(&self, req: Request, who: String) -> Result<Response, ErrorReply> {
        match req {
            Request::Reload => return self.reload(who).await,
            Request::Backup => {
                let r = self.backup_settings()?;
                // Boxed: the workflow calls back into `request`.
                let fut: std::pin::Pin<
                    Box<dyn std::future::Future<Output = Result<Response, ErrorReply>> + Send + '_>,
                > = Box::pin(crate::daemon::recovery::backup(self, r, "operator"));
                return fut.await;
            }
            Request::BackupPrune => {
                let r = self.backup_settings()?;
                return crate::daemon::recovery::prune(self, r).await;
            }
            Request::Restore {
                agent,
                snapshot,
                at,
            } => {
                let r = self.backup_settings()?;
                let fut: std::pin::Pin<
                    Box<dyn std::future::Future<Output = Result<Response, ErrorReply>> + Send + '_>,
                > = Box::pin(crate::daemon::recovery::restore(
                    self,
                    r,
                    agent.as_deref(),
                    snapshot.as_deref(),
                    at,
                    "operator request",
                ));
                return fut.await;
            }
            Request::Subscribe => return Ok(Response::Subscribed),
            Request::Incident { id } => {
                let answer = self.actor_request(Request::Incident { id }, who).await;
                if answer.is_ok() {
                    return answer;
                }
                // Older resolved incidents are in state.db only.
                let path = self.state_db.clone();
                let stored =
                    tokio::task::spawn_blocking(move || crate::daemon::store::incident(&path, id))
                        .await;
                return match stored {
                    Ok(Ok(Some(i))) => Ok(Response::Incident {
                        incident: Box::new(i),
                    }),
                    _ => answer,
                };
            }
            Request::AlertHistory { alert, limit } => {
                let path = self.state_db.clone();
                let limit = limit.clamp(1, 100_000);
                return tokio::task::spawn_blocking(move || {
                    crate::daemon::store::alert_events(&path, alert.as_deref(), limit)
                })
                .await
                .map_err(|e| err(ErrorKind::Storage, e.to_string()))?
                .map(|events| Response::AlertHistory { events })
                .map_err(|e| err(ErrorKind::Storage, e.to_string()));
            }
            Request::AuditCheckpoint => {
                let a = self.audit_trail()?;
                return a
                    .checkpoint()
                    .await
                    .map(|checkpoint| Response::Checkpoint {
                        checkpoint: Box::new(checkpoint),
                    })
                    .map_err(|e| err(ErrorKind::Storage, e));
            }
            Request::AuditRotateKey => {
                let a = self.audit_trail()?;
                return a
                    .rotate_key()
                    .await
                    .map(|r| Response::Done {
                        message: format!(
                            "audit signing key rotated at seq {}: old key {}…, new key {}… \
                             (the old key's last checkpoint is signed by the new one; \
                             checkpoints exported before keep verifying)",
                            r.checkpoint.seq,
                            &r.checkpoint.key[..16.min(r.checkpoint.key.len())],
                            &r.new_key[..16.min(r.new_key.len())]
                        ),
                    })
                    .map_err(|e| err(ErrorKind::Storage, format!("key rotation failed: {e}")));
            }
            _ => {}
        }
        let mut answer = self.actor_request(req, who).await;
        // Off the actor: however large the fleet, the answer fits a frame.
        if let Ok(Response::Status { status }) = &mut answer
            && status.fit(STATUS_BUDGET)
        {
            tracing::debug!("status trimmed to fit one frame");
        }
        answer
    }

    /// A request the actor itself answers (status, scale, start, stop, …),
    /// sent straight to it. Used by the recovery workflow, which is itself
    /// started from `request_as`.
    pub async fn actor_request(&self, req: Request, who: String) -> Result<Response, ErrorReply> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Api(req, tx, who))
            .await
            .map_err(|_| shutting_down())?;
        rx.await.map_err(|_| shutting_down())?
    }

    /// The fleet's status, straight from the actor.
    pub async fn actor_status(&self) -> Result<FleetStatus, ErrorReply> {
        match self
            .actor_request(Request::Status, "autonomos".into())
            .await?
        {
            Response::Status { status } => Ok(*status),
            other => Err(err(
                ErrorKind::Protocol,
                format!("unexpected reply {other:?}"),
            )),
        }
    }

    /// The fleet's status.
    pub async fn status(&self) -> Result<FleetStatus, ErrorReply> {
        match self.request(Request::Status).await? {
            Response::Status { status } => Ok(*status),
            other => Err(err(
                ErrorKind::Protocol,
                format!("unexpected reply {other:?}"),
            )),
        }
    }

    /// The status together with the sequence number of the last event it
    /// includes: events with a higher number come after it.
    pub async fn snapshot(&self) -> Result<(u64, FleetStatus), ErrorReply> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Snapshot(tx))
            .await
            .map_err(|_| shutting_down())?;
        let (seq, mut status) = rx.await.map_err(|_| shutting_down())?;
        // The metric history is sized by its own budget; the rest fits
        // beside it (off the actor).
        let history = status.history.as_ref().map_or(0, crate::proto::json_len);
        status.fit(STATUS_BUDGET.saturating_sub(history));
        Ok((seq, status))
    }

    pub fn events(&self) -> &Events {
        &self.events
    }

    /// Re-reads the config file; a rejected config changes nothing.
    async fn reload(&self, who: String) -> Result<Response, ErrorReply> {
        let Some(path) = self.config_source.clone() else {
            return Err(err(
                ErrorKind::Invalid,
                "this daemon runs the built-in demo fleet, which has no file to reload; \
                 start the daemon with --config FILE to use reload",
            ));
        };
        let loaded = tokio::task::spawn_blocking(move || {
            crate::paths::load_config(&crate::paths::ConfigSource::File(path))
        })
        .await
        .map_err(|e| err(ErrorKind::Invalid, e.to_string()))?;
        let cfg = loaded.map_err(|e| {
            err(
                ErrorKind::ConfigRejected,
                format!("reload rejected, nothing changed:\n{e}"),
            )
        })?;
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Reload(Box::new(cfg), tx, who))
            .await
            .map_err(|_| shutting_down())?;
        rx.await.map_err(|_| shutting_down())?
    }

    /// Reports a SIGCHLD (orphans may need reaping).
    pub fn notify_sigchld(&self) {
        let _ = self.tx.try_send(Msg::Sigchld);
    }
}

fn shutting_down() -> ErrorReply {
    err(ErrorKind::ShuttingDown, "the daemon is shutting down")
}

/// Where the daemon keeps things.
#[derive(Debug, Clone)]
pub struct Layout {
    pub data_dir: PathBuf,
}

impl Layout {
    pub fn context_dir(&self, agent: &str) -> PathBuf {
        self.data_dir.join("agents").join(agent).join("context")
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.data_dir.join("logs")
    }
    pub fn state_db(&self) -> PathBuf {
        self.data_dir.join("state.db")
    }
}

struct Run {
    pid: i32,
    id: u64,
    started_at: Millis,
    cmds: mpsc::Sender<RunCmd>,
}

struct Replica {
    index: u32,
    lc: Lifecycle,
    run: Option<Run>,
    /// Leftovers of the last run are still being stopped.
    /// Runs whose leftover processes are still being stopped.
    tree_busy: u32,
    backoff: Backoff,
    start_limit: StartLimit,
    /// Every restart (operator, reload, crash).
    restarts: u64,
    /// Crashes, failed starts and limit kills (what a crash loop counts).
    failures: u64,
    last_exit: Option<ExitInfo>,
    waiting: Option<String>,
    error: Option<String>,
    /// Do not start again until an operator starts it (restart = never, a
    /// clean exit under on-failure, or limit action stop).
    parked: bool,
    /// Set by an operator restart: the coming exit is not a failure.
    restart_requested: Option<&'static str>,
    /// Set by the memory-limit restart action: the coming exit is a failure.
    limit_restart: bool,
    /// Set by the memory-limit stop action.
    limit_stop: bool,
    /// Invalidates old backoff timers.
    timer_gen: u64,
    ring: Arc<Mutex<Ring>>,
    cpu_percent: f64,
    rss_bytes: u64,
    processes: u32,
    /// CPU time of this slot's trees since the daemon started.
    cpu_seconds: f64,
    /// The stop of the last run escalated to SIGKILL this long after the
    /// stop signal (said when the replica reaches Stopped).
    sigkill: Option<Duration>,
}

struct Agent {
    spec: AgentSpec,
    /// Removed by a reload: decommissioned, then kept as a tombstone so that
    /// agent indexes held by run tasks stay valid.
    removed: bool,
    desired: u32,
    enabled: bool,
    replicas: BTreeMap<u32, Replica>,
    output: Arc<AgentOutput>,
    context_dir: PathBuf,
    /// A change to `desired`/`enabled` is being written to `state.db`; it
    /// applies once it is durable.
    writing: bool,
    /// Changes that arrived meanwhile, applied in order after it.
    queued: std::collections::VecDeque<(Request, Answer, String)>,
    /// A reload changed the agent while a change was being written: write
    /// the whole row again once that change is applied.
    resave: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// Backoff elapsed: (agent, replica, timer_gen).
    Backoff(usize, u32, u64),
    /// A run reached its min_uptime: re-check dependencies.
    Healthy,
}

struct Actor {
    cfg: Config,
    layout: Layout,
    agents: Vec<Agent>,
    pool: Pool,
    store: Store,
    tx: mpsc::Sender<Msg>,
    timers: BinaryHeap<Reverse<(Millis, Timer)>>,
    clock: Clock,
    next_run_id: u64,
    host: HostStatus,
    shutdown_waiters: Vec<Answer>,
    shutting_down: bool,
    started_at: Millis,
    daemon_env: Vec<(String, String)>,
    events: Events,
    observe: Observe,
    /// The latest /metrics scrape, when the endpoint is on.
    published: Option<Published>,
    /// Duration of the last `observe_tick`.
    tick_seconds: f64,
    /// A handle to ourselves, for work that runs beside the actor (the
    /// automatic recovery workflow).
    me: Option<Supervisor>,
    /// When each agent's automatic recovery ran in this daemon's life.
    recovered: HashMap<String, Vec<Millis>>,
    /// What clients last heard of the audit trail and backups: (newest
    /// record's seq, a backup running).
    audit_seen: (u64, bool, Option<crate::proto::BackupProgress>),
    /// Notifications handled, as clients last heard.
    notifiers_seen: u64,
    /// The storage faults clients last heard of.
    storage_seen: Vec<crate::proto::StorageFault>,
    /// Whether the data dir takes writes.
    health: Health,
    /// Scratch list of replicas to step (kept to avoid an allocation per
    /// agent per reconcile).
    to_step: Vec<u32>,
    /// Agents something happened to since the last reconcile; `dirty_all`
    /// for changes that may touch any (requests, reloads, the 1 s tick).
    dirty: Vec<bool>,
    dirty_all: bool,
    /// Agents with replicas waiting to start (dependencies, the pool):
    /// stepped on every reconcile, since other agents unblock them.
    waiting_start: Vec<bool>,
    /// Spawns left in this reconcile pass, and whether some had to wait
    /// for the next pass.
    spawn_budget: usize,
    more_to_spawn: bool,
}

/// A monotonic clock in wall-clock milliseconds: immune to clock jumps.
#[derive(Clone, Copy)]
struct Clock {
    base: Instant,
    base_ms: Millis,
}

impl Clock {
    fn new() -> Self {
        let base_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Self {
            base: Instant::now(),
            base_ms,
        }
    }
    fn now(&self) -> Millis {
        self.base_ms + self.base.elapsed().as_millis() as u64
    }
}

/// Starts the actor, its collector and its SIGCHLD watcher. The returned
/// join handle ends after a `Shutdown` request completed.
pub fn start(
    cfg: Config,
    layout: Layout,
    store: Store,
    loaded: Loaded,
    sample_every: Duration,
    services: Services,
) -> std::io::Result<(Supervisor, tokio::task::JoinHandle<()>)> {
    let Services {
        published,
        audit,
        recovery,
        health,
    } = services;
    let (tx, rx) = mpsc::channel(INBOX);
    let clock = Clock::new();
    let now = clock.now();
    let pool = Pool::new(cfg.pool);
    let mut actor = Actor {
        layout,
        agents: Vec::new(),
        pool,
        store: store.clone(),
        tx: tx.clone(),
        timers: BinaryHeap::new(),
        clock,
        next_run_id: 1,
        host: HostStatus::default(),
        shutdown_waiters: Vec::new(),
        shutting_down: false,
        started_at: now,
        daemon_env: std::env::vars().collect(),
        observe: Observe::new(
            &cfg,
            &loaded,
            store.clone(),
            Notifiers::start(&cfg.notifiers),
            audit.clone(),
        ),
        published,
        tick_seconds: 0.0,
        me: None,
        recovered: Default::default(),
        audit_seen: (0, false, None),
        notifiers_seen: 0,
        storage_seen: Vec::new(),
        health,
        to_step: Vec::new(),
        dirty: Vec::new(),
        dirty_all: true,
        waiting_start: Vec::new(),
        spawn_budget: SPAWNS_PER_PASS,
        more_to_spawn: false,
        cfg: cfg.clone(),
        events: Events::new(),
    };
    for spec in &cfg.agents {
        let agent = actor.new_agent(spec.clone(), &loaded, now)?;
        actor.agents.push(agent);
    }
    let handle = Supervisor {
        tx: tx.clone(),
        events: actor.events.clone(),
        config_source: cfg.source.clone(),
        audit: audit.clone(),
        recovery,
        state_db: actor.layout.state_db(),
    };
    actor.me = Some(handle.clone());
    let join = tokio::spawn(actor.run(rx));
    collector::start(handle_sender(&handle), sample_every);
    watch_sigchld(handle.clone());
    Ok((handle, join))
}

fn handle_sender(h: &Supervisor) -> collector::Link {
    let tx = h.tx.clone();
    let tx2 = h.tx.clone();
    collector::Link {
        targets: Box::new(move || {
            let (otx, orx) = oneshot::channel();
            tx.blocking_send(Msg::Targets(otx)).ok()?;
            orx.blocking_recv().ok()
        }),
        deliver: Box::new(move |samples, host| {
            tx2.blocking_send(Msg::Samples(samples, host)).is_ok()
        }),
    }
}

fn watch_sigchld(h: Supervisor) {
    tokio::spawn(async move {
        let Ok(mut sig) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())
        else {
            tracing::error!("cannot watch SIGCHLD; orphans are reaped once a second only");
            return;
        };
        while sig.recv().await.is_some() {
            if h.tx.is_closed() {
                break;
            }
            h.notify_sigchld();
        }
    });
}

impl Actor {
    fn new_agent(&self, spec: AgentSpec, loaded: &Loaded, now: Millis) -> std::io::Result<Agent> {
        let (desired, enabled) = match loaded.agents.get(&spec.name) {
            // A changed config value wins over an old runtime scale.
            Some(row) if row.config_replicas == spec.replicas => (row.desired, row.enabled),
            Some(row) => (spec.replicas, row.enabled),
            None => (spec.replicas, true),
        };
        let file = LogFile::open(&self.layout.logs_dir(), &spec.name, self.cfg.logs)?;
        let mut replicas = BTreeMap::new();
        for ((agent, index), row) in &loaded.replicas {
            if agent == &spec.name && *index < desired {
                let mut r = self.new_replica(*index, now);
                r.restarts = row.restarts;
                r.failures = row.failures;
                r.last_exit = row.last_exit_at.map(|at| ExitInfo {
                    code: row.last_exit_code,
                    signal: row.last_exit_signal,
                    at,
                    ran_ms: 0,
                });
                replicas.insert(*index, r);
            }
        }
        Ok(Agent {
            context_dir: self.layout.context_dir(&spec.name),
            writing: false,
            queued: Default::default(),
            resave: false,
            removed: false,
            spec,
            desired,
            enabled,
            replicas,
            output: Arc::new(AgentOutput {
                file: Mutex::new(file),
                stats: OutputStats::default(),
            }),
        })
    }

    fn new_replica(&self, index: u32, now: Millis) -> Replica {
        Replica {
            index,
            lc: Lifecycle::new(now),
            run: None,
            tree_busy: 0,
            backoff: Backoff::default(),
            start_limit: StartLimit::default(),
            restarts: 0,
            failures: 0,
            last_exit: None,
            waiting: None,
            error: None,
            parked: false,
            restart_requested: None,
            limit_restart: false,
            limit_stop: false,
            timer_gen: 0,
            ring: Arc::new(Mutex::new(Ring::new(self.cfg.logs.ring_lines))),
            cpu_percent: 0.0,
            rss_bytes: 0,
            processes: 0,
            cpu_seconds: 0.0,
            sigkill: None,
        }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut reap_tick = tokio::time::interval(Duration::from_secs(1));
        reap_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.reconcile();
        loop {
            let next = self.timers.peek().map(|Reverse((at, _))| *at);
            let sleep = async {
                match next {
                    Some(at) => {
                        let now = self.clock.now();
                        tokio::time::sleep(Duration::from_millis(at.saturating_sub(now))).await
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(m) => {
                        self.handle(m);
                        // Drain what is already queued before reconciling once.
                        while let Ok(m) = rx.try_recv() {
                            self.handle(m);
                        }
                        self.drain_tap();
                    }
                    None => break,
                },
                _ = sleep => self.fire_timers(),
                _ = reap_tick.tick() => {
                    process::reap_orphans(process::leaders());
                    // A safety net: once a second every agent is looked at.
                    self.dirty_all = true;
                }
            }
            self.reconcile();
            self.drain_tap();
            if self.shutting_down && self.all_stopped() {
                self.observe.flush();
                process::reap_orphans(process::leaders());
                for w in self.shutdown_waiters.drain(..) {
                    let _ = w.send(Ok(Response::Done {
                        message: "fleet decommissioned".into(),
                    }));
                }
                tracing::info!("fleet decommissioned");
                break;
            }
        }
    }

    fn all_stopped(&self) -> bool {
        self.agents.iter().all(|a| {
            // A change being written is answered before the actor ends.
            !a.writing
                && a.replicas.values().all(|r| {
                    matches!(r.lc.state(), State::Stopped | State::Failed)
                        && r.run.is_none()
                        && r.tree_busy == 0
                })
        })
    }

    /// Something happened to agent `ai`: step it at the next reconcile.
    fn touch(&mut self, ai: usize) {
        match self.dirty.get_mut(ai) {
            Some(d) => *d = true,
            None => self.dirty_all = true,
        }
    }

    fn handle(&mut self, msg: Msg) {
        match &msg {
            Msg::Run { agent, .. } => self.touch(*agent),
            Msg::Samples(..) | Msg::Snapshot(_) | Msg::Targets(_) | Msg::Sigchld => {}
            Msg::Api(..) | Msg::Reload(..) | Msg::Recovery(..) | Msg::Persisted { .. } => {
                self.dirty_all = true
            }
        }
        match msg {
            Msg::Api(req, answer, who) => self.api(req, answer, &who),
            Msg::Reload(cfg, answer, who) => {
                let result = self.apply_config(*cfg);
                if let Ok(Response::Done { message }) = &result {
                    let now = self.clock.now();
                    self.observe.on_action(None, &who, message, now);
                    self.observe.flush();
                }
                let _ = answer.send(result);
            }
            Msg::Snapshot(reply) => {
                let now = self.clock.now();
                let mut status = self.status(now);
                status.history = Some(Box::new(self.observe.history()));
                let _ = reply.send((self.events.seq(), status));
            }
            Msg::Run {
                agent,
                index,
                run_id,
                ev,
            } => self.on_run_event(agent, index, run_id, ev),
            Msg::Targets(reply) => {
                let mut targets = Vec::new();
                for (ai, a) in self.agents.iter().enumerate() {
                    for r in a.replicas.values() {
                        if let Some(run) = &r.run {
                            targets.push(Target {
                                agent: ai,
                                index: r.index,
                                run_id: run.id,
                                pid: run.pid,
                            });
                        }
                    }
                }
                let _ = reply.send(targets);
            }
            Msg::Samples(samples, host) => {
                self.host = host.clone();
                // Nobody subscribed: skip building the event (500 names a second).
                let publish = self.events.has_subscribers();
                let mut replicas = Vec::with_capacity(if publish { samples.len() } else { 0 });
                for s in samples {
                    if publish && let Some(a) = self.agents.get(s.agent) {
                        replicas.push(ReplicaSample {
                            agent: a.spec.name.clone(),
                            replica: s.index,
                            cpu_percent: s.cpu_percent,
                            rss_bytes: s.rss_bytes,
                            processes: s.processes,
                        });
                    }
                    self.on_sample(s);
                }
                if publish {
                    self.events.emit(ServerEvent::Samples { host, replicas });
                }
                self.observe_tick();
            }
            Msg::Sigchld => {
                process::reap_orphans(process::leaders());
            }
            Msg::Recovery(agent, text) => {
                let now = self.clock.now();
                self.observe
                    .on_action(Some(&agent), "autonomos (recovery)", &text, now);
                self.observe.flush();
            }
            Msg::Persisted {
                agent,
                change,
                result,
                answer,
                who,
            } => self.on_persisted(agent, change, result, answer, &who),
        }
    }

    /// Feeds restarts, failures and stops to the incident log.
    fn drain_tap(&mut self) {
        let tapped = match self.events.tap.lock() {
            Ok(mut t) if !t.is_empty() => std::mem::take(&mut *t),
            _ => return,
        };
        for (agent, replica, t) in tapped {
            if t.to == State::Failed {
                self.observe.audit(
                    "replica-failed",
                    serde_json::json!({ "agent": agent, "replica": replica }),
                    &t.reason,
                );
                self.auto_recover(&agent, &t.reason);
            }
            let asked = t.to == State::Adaptation
                && (t.reason == OPERATOR_RESTART || t.reason == RELOAD_RESTART);
            if !asked {
                self.observe.on_transition(&agent, replica, &t);
            }
        }
        self.publish_alerts();
    }

    /// `recovery = "restore-latest"`: when a replica of the agent reaches
    /// `Failed`, restore its newest backup; again for a later failure only
    /// after a growing quiet time (`core::backoff::recovery_allowed`).
    fn auto_recover(&mut self, agent: &str, reason: &str) {
        let wanted = self
            .agents
            .iter()
            .any(|a| a.spec.name == agent && !a.removed && a.spec.restore_latest);
        let now = self.clock.now();
        let past = self.recovered.entry(agent.to_string()).or_default();
        if !wanted || !crate::core::backoff::recovery_allowed(past, now) {
            if wanted && let Some(last) = past.last() {
                tracing::warn!(
                    agent,
                    seconds_since = now.saturating_sub(*last) / 1000,
                    "replica Failed soon after an automatic recovery; this one is left to the operator"
                );
            }
            return;
        }
        past.push(now);
        let Some(me) = self.me.clone() else { return };
        let Some(settings) = me.recovery.clone() else {
            return;
        };
        let (agent, why) = (
            agent.to_string(),
            format!("replica Failed ({reason}); recovery = restore-latest"),
        );
        tokio::spawn(async move {
            // A backup in progress (say, the schedule's) holds the slot:
            // wait for it rather than give the one automatic attempt up.
            let t = Instant::now();
            while settings.busy.load(Ordering::SeqCst) && t.elapsed() < Duration::from_secs(1800) {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            match crate::daemon::recovery::restore(&me, &settings, Some(&agent), None, None, &why)
                .await
            {
                Ok(Response::Done { message }) => tracing::warn!(agent = %agent, "{message}"),
                Ok(_) => {}
                Err(e) => tracing::error!(agent = %agent, error = %e, "automatic recovery failed"),
            }
        });
    }

    fn backup_running(&self) -> bool {
        self.me
            .as_ref()
            .and_then(|m| m.recovery.as_ref())
            .is_some_and(|r| r.busy.load(Ordering::SeqCst))
    }

    fn backup_progress(&self) -> Option<crate::proto::BackupProgress> {
        self.me
            .as_ref()
            .and_then(|m| m.recovery.as_ref())
            .and_then(|r| r.meter.read())
    }

    /// Tells subscribers about new audit records and backups starting or
    /// ending (checked once per tick).
    fn publish_audit(&mut self) {
        let recent = self.observe.audit_recent(AUDIT_SHOWN);
        let seen = (
            recent.last().map_or(0, |r| r.seq),
            self.backup_running(),
            self.backup_progress(),
        );
        if seen != self.audit_seen && self.events.has_subscribers() {
            self.events.emit(ServerEvent::Audit {
                records: recent,
                backup_running: seen.1,
                progress: seen.2.clone(),
            });
        }
        self.audit_seen = seen;
    }

    /// Tells subscribers when writes to the data dir start or stop failing
    /// (checked once per tick; the error counts alone do not wake them).
    fn publish_storage(&mut self) {
        let faults = self.health.faults();
        let parts = |v: &[crate::proto::StorageFault]| -> Vec<String> {
            v.iter()
                .map(|f| format!("{}: {}", f.part, f.error))
                .collect()
        };
        if parts(&faults) != parts(&self.storage_seen) {
            if self.events.has_subscribers() {
                self.events.emit(ServerEvent::Storage {
                    faults: faults.clone(),
                });
            }
            self.storage_seen = faults;
        }
    }

    /// Tells subscribers when alerts, incidents or notifiers changed.
    fn publish_alerts(&mut self) {
        let notifiers: u64 = self
            .observe
            .notifier_status()
            .iter()
            .map(|n| n.sent + n.failed + n.dropped)
            .sum();
        let notifiers_changed = notifiers != self.notifiers_seen;
        self.notifiers_seen = notifiers;
        if (self.observe.take_changed() | notifiers_changed) && self.events.has_subscribers() {
            let (alerts, alerts_omitted) = self.observe.alerts_listed(ALERTS_LISTED);
            let (incidents, incidents_omitted) = self.observe.incidents(false, INCIDENTS_LISTED);
            self.events.emit(ServerEvent::Alerts {
                alerts,
                incidents,
                notifiers: self.observe.notifier_status(),
                alerts_omitted,
                incidents_omitted,
            });
        }
    }

    /// A new incident about an agent starts with what led to it: that
    /// agent's restarts, failures and stops of the last ten minutes, from
    /// the replicas' transition histories.
    fn backfill_incidents(&mut self, now: Millis) {
        use crate::core::incident::{Entry, EntryKind};
        for (id, agent) in self.observe.take_opened() {
            let Some(opened_at) = self.observe.incident(id).map(|i| i.opened_at) else {
                continue;
            };
            let Some(a) = self
                .agents
                .iter()
                .find(|a| a.spec.name == agent && !a.removed)
            else {
                continue;
            };
            let since = now.saturating_sub(10 * 60_000);
            let mut before = Vec::new();
            for r in a.replicas.values() {
                for t in r.lc.history() {
                    let kind = match t.to {
                        // Restarts someone asked for are on the timeline as
                        // their request, by who asked.
                        State::Adaptation
                            if t.reason == OPERATOR_RESTART || t.reason == RELOAD_RESTART =>
                        {
                            continue;
                        }
                        State::Adaptation => EntryKind::Restart,
                        State::Failed | State::Stopped => EntryKind::State,
                        _ => continue,
                    };
                    if t.at >= since && t.at < opened_at {
                        before.push(Entry {
                            at: t.at,
                            kind,
                            by: "autonomos".into(),
                            text: format!(
                                "{agent}/{}: {} → {} ({})",
                                r.index, t.from, t.to, t.reason
                            ),
                        });
                    }
                }
            }
            if !before.is_empty() {
                self.observe.backfill(id, before);
            }
        }
    }

    /// One collector tick: the per-agent figures rules read, evaluation,
    /// and the /metrics scrape.
    fn observe_tick(&mut self) {
        let started = Instant::now();
        let now = self.clock.now();
        let facts: Vec<AgentFacts> = self
            .agents
            .iter()
            .filter(|a| !a.removed)
            .map(|a| {
                let mut f = AgentFacts {
                    name: a.spec.name.clone(),
                    desired: f64::from(if a.enabled { a.desired } else { 0 }),
                    log_dropped: a.output.stats.dropped.load(Ordering::Relaxed) as f64,
                    ..AgentFacts::default()
                };
                let mut youngest: Option<Millis> = None;
                for r in a.replicas.values() {
                    f.cpu += r.cpu_percent;
                    f.memory += r.rss_bytes as f64;
                    f.restarts += r.restarts as f64;
                    f.failures += r.failures as f64;
                    let st = r.lc.state();
                    if st.is_running() {
                        f.running += 1.0;
                        if let Some(run) = &r.run {
                            youngest =
                                Some(youngest.map_or(run.started_at, |y| y.max(run.started_at)));
                        }
                    }
                    f.failed += f64::from(u8::from(st == State::Failed));
                    f.backoff += f64::from(u8::from(st == State::Backoff));
                    if let Some(limit) = a.spec.resources.memory_limit.filter(|l| *l > 0) {
                        f.memory_pct = f.memory_pct.max(r.rss_bytes as f64 * 100.0 / limit as f64);
                    }
                }
                f.uptime = youngest.map_or(0.0, |y| now.saturating_sub(y) as f64 / 1000.0);
                f
            })
            .collect();
        self.observe
            .tick(now, &self.host, &facts, self.health.total_errors());
        self.backfill_incidents(now);
        self.publish_alerts();
        self.publish_audit();
        self.publish_storage();
        if let Some(slot) = &self.published {
            let (alerts, incidents_open) = self.observe.counts();
            let mut status = self.status_with(now, 0);
            status.tick_seconds = self.tick_seconds;
            let scrape = Scrape {
                status,
                alerts,
                incidents_open,
                storage_errors: [Part::State, Part::Audit]
                    .map(|p| (p.name(), self.health.errors(p)))
                    .to_vec(),
            };
            if let Ok(mut p) = slot.lock() {
                *p = Some(Arc::new(scrape));
            }
        }
        self.tick_seconds = started.elapsed().as_secs_f64();
    }

    fn fire_timers(&mut self) {
        let now = self.clock.now();
        while let Some(Reverse((at, t))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if let Timer::Backoff(ai, _, _) = t {
                self.touch(ai);
            }
            if let Timer::Backoff(ai, index, generation) = t
                && let Some(a) = self.agents.get_mut(ai)
                && let Some(r) = a.replicas.get_mut(&index)
                && r.timer_gen == generation
                && r.lc.state() == State::Backoff
            {
                r.waiting = None;
                transition(
                    &self.events,
                    &a.spec.name,
                    r,
                    State::Initialization,
                    now,
                    "backoff elapsed",
                );
            }
            // Timer::Healthy only needs the reconcile that follows.
        }
    }

    /// Is `agent` ready for its dependents: a replica running for at least min_uptime.
    fn ready(&self, name: &str, now: Millis) -> bool {
        self.agents
            .iter()
            .find(|a| a.spec.name == name)
            .is_some_and(|a| {
                let min = a.spec.min_uptime.as_millis() as u64;
                a.replicas.values().any(|r| {
                    r.lc.state().is_running()
                        && r.run
                            .as_ref()
                            .is_some_and(|run| now.saturating_sub(run.started_at) >= min)
                })
            })
    }

    /// Moves every replica as far as it can go now.
    fn reconcile(&mut self) {
        let now = self.clock.now();
        self.spawn_budget = SPAWNS_PER_PASS;
        self.more_to_spawn = false;
        let n = self.agents.len();
        self.dirty.resize(n, true);
        self.waiting_start.resize(n, true);
        for ai in 0..n {
            if !(self.dirty_all || self.dirty[ai] || self.waiting_start[ai]) {
                continue;
            }
            self.dirty[ai] = false;
            let desired = self.agents[ai].desired;
            for index in 0..desired {
                if !self.agents[ai].replicas.contains_key(&index) {
                    let r = self.new_replica(index, now);
                    self.agents[ai].replicas.insert(index, r);
                }
            }
            // Only replicas that can move are stepped: after every message
            // this runs over the whole fleet, so the common case (running
            // as wanted, waiting out a backoff) must cost no allocation.
            let mut todo = std::mem::take(&mut self.to_step);
            todo.clear();
            todo.extend(
                self.agents[ai]
                    .replicas
                    .values()
                    .filter(|r| self.can_move(ai, r))
                    .map(|r| r.index),
            );
            for &index in &todo {
                self.step(ai, index, now);
            }
            self.to_step = todo;
            // Forget replicas scaled away once they are fully stopped.
            let a = &mut self.agents[ai];
            a.replicas.retain(|&i, r| {
                i < desired
                    || !(r.lc.state() == State::Stopped && r.run.is_none() && r.tree_busy == 0)
            });
            self.waiting_start[ai] = a.replicas.values().any(|r| {
                matches!(
                    r.lc.state(),
                    State::Initialization | State::ResourceAllocation
                )
            });
        }
        self.dirty_all = false;
    }

    /// Whether `step` could do anything with the replica now (what its
    /// match arms act on; the rest wait for an event or a timer).
    fn can_move(&self, ai: usize, r: &Replica) -> bool {
        let want = self.wanted(ai, r.index);
        match r.lc.state() {
            State::Stopped => want && !r.parked && r.tree_busy == 0,
            State::Initialization | State::ResourceAllocation => true,
            State::Backoff
            | State::Failed
            | State::ActiveOperation
            | State::PerformanceMonitoring
            | State::Adaptation => !want,
            State::ContextPreparation | State::TaskCompletion | State::Decommissioning => false,
        }
    }

    fn wanted(&self, ai: usize, index: u32) -> bool {
        let a = &self.agents[ai];
        !self.shutting_down && !a.removed && a.enabled && index < a.desired
    }

    fn step(&mut self, ai: usize, index: u32, now: Millis) {
        let want = self.wanted(ai, index);
        let name = self.agents[ai].spec.name.clone();
        let key: ReplicaKey = (name.clone(), index);
        let Some(state) = self.agents[ai].replicas.get(&index).map(|r| r.lc.state()) else {
            return;
        };
        match state {
            State::Stopped => {
                let r = replica_mut!(self, ai, index);
                if want && !r.parked && r.tree_busy == 0 {
                    r.error = None;
                    transition(&self.events, &name, r, State::Initialization, now, "start");
                    self.step(ai, index, now);
                }
            }
            State::Initialization | State::ResourceAllocation | State::Backoff | State::Failed
                if !want =>
            {
                self.pool.release(&key);
                let reason = self.stop_reason(ai, index);
                let r = replica_mut!(self, ai, index);
                r.waiting = None;
                transition(&self.events, &name, r, State::Decommissioning, now, reason);
                transition(
                    &self.events,
                    &name,
                    r,
                    State::Stopped,
                    now,
                    "nothing to stop",
                );
            }
            State::Initialization => {
                let deps = self.agents[ai].spec.depends_on.clone();
                let pending: Vec<&String> = deps.iter().filter(|d| !self.ready(d, now)).collect();
                if pending.is_empty() {
                    let r = replica_mut!(self, ai, index);
                    r.waiting = None;
                    transition(
                        &self.events,
                        &name,
                        r,
                        State::ResourceAllocation,
                        now,
                        "dependencies ready",
                    );
                    self.step(ai, index, now);
                } else {
                    let list: Vec<String> = pending.iter().map(|d| format!("`{d}`")).collect();
                    replica_mut!(self, ai, index).waiting =
                        Some(format!("waiting for {} to be ready", list.join(", ")));
                }
            }
            // Enough spawned in this pass: the rest go in the next one,
            // right after whatever else waits (a status, say).
            State::ResourceAllocation if self.spawn_budget == 0 && !self.more_to_spawn => {
                self.more_to_spawn = true;
                self.timers.push(Reverse((now, Timer::Healthy)));
            }
            State::ResourceAllocation if self.spawn_budget == 0 => {}
            State::ResourceAllocation => {
                let res = self.agents[ai].spec.resources;
                let req = PoolRequest {
                    cpu: res.cpu,
                    memory: res.memory,
                };
                match self.pool.try_admit(&key, req) {
                    Ok(()) => {
                        let r = replica_mut!(self, ai, index);
                        r.waiting = None;
                        transition(
                            &self.events,
                            &name,
                            r,
                            State::ContextPreparation,
                            now,
                            "admitted by the pool",
                        );
                        self.spawn_budget = self.spawn_budget.saturating_sub(1);
                        self.prepare_and_spawn(ai, index, now);
                    }
                    Err(wait) => replica_mut!(self, ai, index).waiting = Some(wait.to_string()),
                }
            }
            State::ActiveOperation | State::PerformanceMonitoring | State::Adaptation if !want => {
                let reason = self.stop_reason(ai, index);
                let stop = self.stop_cmd(ai);
                let r = replica_mut!(self, ai, index);
                transition(&self.events, &name, r, State::Decommissioning, now, reason);
                if let Some(run) = &r.run {
                    let _ = run.cmds.try_send(stop);
                }
            }
            _ => {}
        }
    }

    fn stop_reason(&self, ai: usize, index: u32) -> String {
        let a = &self.agents[ai];
        if self.shutting_down {
            "daemon shutting down".into()
        } else if a.removed {
            "removed from the config by a reload".into()
        } else if !a.enabled {
            "agent stopped by operator".into()
        } else if index >= a.desired {
            format!("scaled down to {}", a.desired)
        } else {
            "stop".into()
        }
    }

    fn stop_cmd(&self, ai: usize) -> RunCmd {
        let s = &self.agents[ai].spec;
        RunCmd::Stop {
            signal: s.stop_signal,
            timeout: s.stop_timeout,
        }
    }

    fn prepare_and_spawn(&mut self, ai: usize, index: u32, now: Millis) {
        let a = &self.agents[ai];
        let name = a.spec.name.clone();
        let ctx = a.context_dir.clone();
        let ctx_str = ctx.to_string_lossy().into_owned();
        if let Err(e) = std::fs::create_dir_all(&ctx) {
            let msg = format!("cannot create context dir {}: {e}", ctx.display());
            self.spawn_failed(ai, index, now, msg);
            return;
        }
        let mut env: Vec<(String, String)> = Vec::new();
        for k in &a.spec.inherit_env {
            if let Some((_, v)) = self.daemon_env.iter().find(|(dk, _)| dk == k) {
                env.push((k.clone(), v.clone()));
            }
        }
        for (k, v) in &a.spec.env {
            env.retain(|(ek, _)| ek != k);
            env.push((k.clone(), v.clone()));
        }
        env.push(("AUTONOMOS_AGENT".into(), name.clone()));
        env.push(("AUTONOMOS_REPLICA".into(), index.to_string()));
        env.push(("AUTONOMOS_CONTEXT_DIR".into(), ctx_str.clone()));
        // Unique per spawn: tells this run's processes from the next run's.
        let run_id = self.next_run_id;
        self.next_run_id += 1;
        env.push(("AUTONOMOS_RUN".into(), run_id.to_string()));
        let spec = SpawnSpec {
            argv: a.spec.command.clone(),
            cwd: a.spec.cwd.clone().unwrap_or_else(|| ctx.clone()),
            env,
        };
        let stop_signal = a.spec.stop_signal;
        let stop_timeout = a.spec.stop_timeout;
        let min_uptime = a.spec.min_uptime;
        let output = a.output.clone();
        let limit = a.spec.start_limit;
        let spawned = match process::spawn(&spec, process::leaders()) {
            Ok(s) => s,
            Err(e) => {
                replica_mut!(self, ai, index)
                    .start_limit
                    .record(&limit, now);
                self.spawn_failed(ai, index, now, e);
                return;
            }
        };
        let (cmd_tx, cmd_rx) = mpsc::channel(RUN_QUEUE);
        let r = replica_mut!(self, ai, index);
        r.start_limit.record(&limit, now);
        r.error = None;
        r.cpu_percent = 0.0;
        r.rss_bytes = 0;
        r.processes = 1;
        let ring = r.ring.clone();
        r.run = Some(Run {
            pid: spawned.pid,
            id: run_id,
            started_at: now,
            cmds: cmd_tx,
        });
        let reason = format!("spawned pid {}", spawned.pid);
        transition(&self.events, &name, r, State::ActiveOperation, now, reason);
        tokio::spawn(output::drain(
            spawned.stdout,
            Stream::Stdout,
            index,
            output.clone(),
            ring.clone(),
        ));
        tokio::spawn(output::drain(
            spawned.stderr,
            Stream::Stderr,
            index,
            output,
            ring,
        ));
        let tx = self.tx.clone();
        let marker = Marker {
            context_dir: ctx_str,
            replica: index.to_string(),
            run: run_id.to_string(),
        };
        tokio::spawn(process::run(
            spawned.pid,
            spawned.pidfd,
            spawned.started,
            marker,
            stop_signal,
            stop_timeout,
            process::leaders(),
            cmd_rx,
            move |ev| {
                // Unbounded wait is impossible here (sync callback): the inbox
                // is large, and a full inbox must not lose an exit, so fall
                // back to a task that waits for room.
                let msg = Msg::Run {
                    agent: ai,
                    index,
                    run_id,
                    ev,
                };
                if let Err(mpsc::error::TrySendError::Full(msg)) = tx.try_send(msg) {
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let _ = tx.send(msg).await;
                    });
                }
            },
        ));
        let healthy_at = now + min_uptime.as_millis() as u64;
        self.timers.push(Reverse((healthy_at, Timer::Healthy)));
    }

    fn spawn_failed(&mut self, ai: usize, index: u32, now: Millis, error: String) {
        let name = self.agents[ai].spec.name.clone();
        self.pool.release(&(name.clone(), index));
        tracing::warn!(agent = %name, replica = index, %error, "spawn failed");
        let r = replica_mut!(self, ai, index);
        r.error = Some(error.clone());
        transition(
            &self.events,
            &name,
            r,
            State::TaskCompletion,
            now,
            format!("spawn failed: {error}"),
        );
        let info = ExitInfo {
            code: None,
            signal: None,
            at: now,
            ran_ms: 0,
        };
        self.after_exit(ai, index, now, info, Duration::ZERO, true, true);
    }

    fn on_run_event(&mut self, ai: usize, index: u32, run_id: u64, ev: RunEvent) {
        let now = self.clock.now();
        let Some(agent) = self.agents.get_mut(ai) else {
            return;
        };
        let name = agent.spec.name.clone();
        let res = agent.spec.resources;
        let Some(r) = agent.replicas.get_mut(&index) else {
            return;
        };
        match ev {
            RunEvent::TreeGone { killed_after } => {
                r.tree_busy = r.tree_busy.saturating_sub(1);
                if killed_after.is_some() {
                    r.sigkill = killed_after;
                }
                if r.lc.state() == State::Decommissioning && r.run.is_none() && r.tree_busy == 0 {
                    let reason = stopped_reason(&mut self.observe, &name, r, || {
                        "process tree gone".to_string()
                    });
                    transition(&self.events, &name, r, State::Stopped, now, reason);
                }
            }
            RunEvent::Exited {
                code,
                signal,
                ran,
                tree_gone,
                killed_after,
            } => {
                if r.run.as_ref().map(|run| run.id) != Some(run_id) {
                    return;
                }
                r.run = None;
                if !tree_gone {
                    r.tree_busy += 1;
                }
                r.sigkill = killed_after;
                r.cpu_percent = 0.0;
                r.rss_bytes = 0;
                r.processes = 0;
                let _ = res;
                self.pool.release(&(name.clone(), index));
                let info = ExitInfo {
                    code,
                    signal,
                    at: now,
                    ran_ms: ran.as_millis() as u64,
                };
                let r = replica_mut!(self, ai, index);
                if r.lc.state() == State::Decommissioning {
                    r.last_exit = Some(info);
                    if tree_gone {
                        let reason = stopped_reason(&mut self.observe, &name, r, || {
                            format!("{info} after {}", fmt_ms(info.ran_ms))
                        });
                        transition(&self.events, &name, r, State::Stopped, now, reason);
                    }
                    self.persist_replica(ai, index);
                    return;
                }
                let reason = format!("{info} after {}", fmt_ms(info.ran_ms));
                transition(&self.events, &name, r, State::TaskCompletion, now, reason);
                self.after_exit(ai, index, now, info, ran, false, tree_gone);
            }
        }
    }

    /// Decides what follows an exit (or a failed spawn).
    #[allow(clippy::too_many_arguments)]
    fn after_exit(
        &mut self,
        ai: usize,
        index: u32,
        now: Millis,
        info: ExitInfo,
        ran: Duration,
        spawn_error: bool,
        tree_gone: bool,
    ) {
        let want = self.wanted(ai, index);
        let reason_stop = self.stop_reason(ai, index);
        let spec = self.agents[ai].spec.clone();
        let name = spec.name.clone();
        let jitter_unit: f64 = rand::random();
        let r = replica_mut!(self, ai, index);
        r.last_exit = Some(info);
        let operator_restart = std::mem::take(&mut r.restart_requested);
        let limit_restart = std::mem::take(&mut r.limit_restart);
        let limit_stop = std::mem::take(&mut r.limit_stop);
        let events = &self.events;
        let finish_stop = |r: &mut Replica, reason: String| {
            transition(events, &name, r, State::Decommissioning, now, reason);
            if tree_gone {
                transition(events, &name, r, State::Stopped, now, "process tree gone");
            }
        };
        if !want {
            finish_stop(r, reason_stop);
        } else if limit_stop {
            // A limit kill is a failure, whatever follows it.
            r.failures += 1;
            r.parked = true;
            finish_stop(r, "memory limit exceeded (action: stop)".into());
        } else if let Some(why) = operator_restart {
            r.restarts += 1;
            r.backoff.reset();
            transition(&self.events, &name, r, State::Adaptation, now, why);
            transition(
                &self.events,
                &name,
                r,
                State::Initialization,
                now,
                "restarting",
            );
        } else {
            let failed_start = spawn_error || ran < spec.min_uptime;
            let failure = failed_start || limit_restart || !info.success();
            if failure {
                r.failures += 1;
            }
            let restart = match spec.restart {
                RestartPolicy::Always => true,
                RestartPolicy::OnFailure => failure,
                RestartPolicy::Never => false,
            };
            if !restart {
                r.parked = true;
                let why = format!("{info}; restart = {}", restart_name(spec.restart));
                finish_stop(r, why);
            } else if !r.start_limit.allows(&spec.start_limit, now) {
                let why = format!(
                    "start limit reached: {} starts within {}",
                    spec.start_limit.burst,
                    fmt_ms(spec.start_limit.interval.as_millis() as u64)
                );
                tracing::warn!(agent = %name, replica = index, "{why}");
                transition(&self.events, &name, r, State::Failed, now, why);
            } else {
                let mut delay = if failure {
                    r.backoff.on_exit(&spec.backoff, ran, jitter_unit)
                } else {
                    r.backoff.reset();
                    Duration::ZERO
                };
                if spawn_error {
                    delay = delay.max(SPAWN_ERROR_MIN_DELAY);
                }
                r.restarts += 1;
                let why = if failed_start && !spawn_error {
                    format!("failed start (ran {} < min_uptime)", fmt_ms(info.ran_ms))
                } else if limit_restart {
                    "memory limit exceeded (action: restart)".to_string()
                } else {
                    format!("{info}; restart = {}", restart_name(spec.restart))
                };
                transition(&self.events, &name, r, State::Adaptation, now, why);
                if delay.is_zero() {
                    transition(
                        &self.events,
                        &name,
                        r,
                        State::Initialization,
                        now,
                        "restart now",
                    );
                } else {
                    r.timer_gen += 1;
                    let generation = r.timer_gen;
                    let why = format!(
                        "retry in {} (failure {})",
                        fmt_ms(delay.as_millis() as u64),
                        r.backoff.failures()
                    );
                    r.waiting = Some(why.clone());
                    transition(&self.events, &name, r, State::Backoff, now, why);
                    let at = now + delay.as_millis() as u64;
                    self.timers
                        .push(Reverse((at, Timer::Backoff(ai, index, generation))));
                }
            }
        }
        self.persist_replica(ai, index);
    }

    fn persist_replica(&mut self, ai: usize, index: u32) {
        let name = self.agents[ai].spec.name.clone();
        let r = replica_mut!(self, ai, index);
        let row = ReplicaRow {
            restarts: r.restarts,
            failures: r.failures,
            last_exit_code: r.last_exit.and_then(|e| e.code),
            last_exit_signal: r.last_exit.and_then(|e| e.signal),
            last_exit_at: r.last_exit.map(|e| e.at),
        };
        if !self.store.write_soon(Change::Replica {
            agent: name,
            index,
            row,
        }) {
            tracing::warn!("state database queue full; a replica's exit was not recorded");
        }
    }

    fn on_sample(&mut self, s: Sample) {
        let now = self.clock.now();
        if self
            .agents
            .get(s.agent)
            .is_some_and(|a| a.spec.resources.memory_limit.is_some())
        {
            self.touch(s.agent);
        }
        let stop = self.stop_cmd_opt(s.agent);
        let Some(a) = self.agents.get_mut(s.agent) else {
            return;
        };
        let name = a.spec.name.clone();
        let limit = a.spec.resources.memory_limit;
        let action = a.spec.resources.memory_limit_action;
        let Some(r) = a.replicas.get_mut(&s.index) else {
            return;
        };
        if r.run.as_ref().map(|run| run.id) != Some(s.run_id) {
            return;
        }
        r.cpu_percent = s.cpu_percent;
        r.cpu_seconds += s.cpu_seconds;
        r.rss_bytes = s.rss_bytes;
        r.processes = s.processes;
        let Some(limit) = limit else { return };
        let state = r.lc.state();
        if !state.is_running() {
            return;
        }
        let mib = |b: u64| b / (1024 * 1024);
        if s.rss_bytes > limit {
            let what = format!(
                "memory {} MiB over limit {} MiB",
                mib(s.rss_bytes),
                mib(limit)
            );
            tracing::warn!(agent = %name, replica = s.index, rss = s.rss_bytes, limit, "{what}");
            match action {
                LimitAction::Restart | LimitAction::Stop => {
                    if action == LimitAction::Restart {
                        r.limit_restart = true;
                    } else {
                        r.limit_stop = true;
                    }
                    let why = format!(
                        "{what}: {}",
                        if action == LimitAction::Restart {
                            "restarting"
                        } else {
                            "stopping"
                        }
                    );
                    transition(&self.events, &name, r, State::Adaptation, now, why);
                    if let (Some(run), Some(stop)) = (&r.run, stop) {
                        let _ = run.cmds.try_send(stop);
                    }
                }
                LimitAction::Alert => {
                    if state == State::ActiveOperation {
                        transition(
                            &self.events,
                            &name,
                            r,
                            State::PerformanceMonitoring,
                            now,
                            format!("{what} (action: alert)"),
                        );
                    }
                }
            }
        } else if s.rss_bytes * 10 >= limit * 9 {
            if state == State::ActiveOperation {
                let why = format!("memory at {}% of its limit", s.rss_bytes * 100 / limit);
                transition(
                    &self.events,
                    &name,
                    r,
                    State::PerformanceMonitoring,
                    now,
                    why,
                );
            }
        } else if s.rss_bytes * 10 < limit * 8 && state == State::PerformanceMonitoring {
            let why = format!("memory back to {}% of its limit", s.rss_bytes * 100 / limit);
            transition(&self.events, &name, r, State::ActiveOperation, now, why);
        }
    }

    fn stop_cmd_opt(&self, ai: usize) -> Option<RunCmd> {
        (ai < self.agents.len()).then(|| self.stop_cmd(ai))
    }

    fn find(&self, name: &str) -> Result<usize, ErrorReply> {
        self.agents
            .iter()
            .position(|a| a.spec.name == name && !a.removed)
            .ok_or_else(|| {
                let live: Vec<&str> = self
                    .agents
                    .iter()
                    .filter(|a| !a.removed)
                    .map(|a| a.spec.name.as_str())
                    .collect();
                let hint = crate::core::suggest::did_you_mean(name, &live)
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                err(
                    ErrorKind::UnknownAgent,
                    format!("unknown agent `{name}`{hint}"),
                )
            })
    }

    fn persist_agent(
        &self,
        ai: usize,
    ) -> impl std::future::Future<Output = Result<(), String>> + use<> {
        let a = &self.agents[ai];
        let change = Change::Agent {
            name: a.spec.name.clone(),
            row: AgentRow {
                desired: a.desired,
                config_replicas: a.spec.replicas,
                enabled: a.enabled,
            },
        };
        let store = self.store.clone();
        async move { store.write(change).await }
    }

    /// Writes the agent's whole row as it is now (after a reload), unless a
    /// change is being written, which writes it again once applied. A
    /// failure is logged: the config file holds what a reload set.
    fn resave(&mut self, ai: usize) {
        if self.agents[ai].writing {
            self.agents[ai].resave = true;
            return;
        }
        let fut = self.persist_agent(ai);
        tokio::spawn(async move {
            if let Err(e) = fut.await {
                tracing::error!(error = %e, "cannot record a reloaded agent");
            }
        });
    }

    /// Writes an operator change to `state.db` first; it is applied (and
    /// answered) only once it is durable, so what runs always equals what
    /// a restarted daemon would run. Changes to one agent are written one
    /// at a time, in the order they arrived.
    fn change_agent(&mut self, ai: usize, change: AgentChange, answer: Answer, who: &str) {
        let who = who.to_string();
        let a = &mut self.agents[ai];
        let (desired, enabled) = match change {
            AgentChange::Scale(n) => (n, a.enabled),
            AgentChange::Start => (a.desired, true),
            AgentChange::Stop => (a.desired, false),
        };
        a.writing = true;
        let row = Change::Agent {
            name: a.spec.name.clone(),
            row: AgentRow {
                desired,
                config_replicas: a.spec.replicas,
                enabled,
            },
        };
        let (store, tx) = (self.store.clone(), self.tx.clone());
        tokio::spawn(async move {
            let result = store.write(row).await;
            let _ = tx
                .send(Msg::Persisted {
                    agent: ai,
                    change,
                    result,
                    answer,
                    who,
                })
                .await;
        });
    }

    /// The change is durable (apply it) or failed (refuse it, nothing
    /// changes); then the next queued change of the agent goes.
    fn on_persisted(
        &mut self,
        ai: usize,
        change: AgentChange,
        result: Result<(), String>,
        answer: Answer,
        who: &str,
    ) {
        let now = self.clock.now();
        let Some(a) = self.agents.get_mut(ai) else {
            return;
        };
        a.writing = false;
        let name = a.spec.name.clone();
        let reply = match result {
            Err(e) => {
                tracing::error!(agent = %name, ?change, error = %e, "change refused: state.db write failed");
                Err(err(
                    ErrorKind::Storage,
                    format!(
                        "could not record the change durably, so it was not applied: {e} \
                         (the data dir is failing; see `autonomos status`)"
                    ),
                ))
            }
            Ok(()) if a.removed => Err(err(
                ErrorKind::UnknownAgent,
                format!("`{name}` was removed by a reload meanwhile"),
            )),
            Ok(()) => Ok(match change {
                AgentChange::Scale(n) => {
                    let from = std::mem::replace(&mut a.desired, n);
                    tracing::info!(agent = %name, from, to = n, "scale");
                    Response::Done {
                        message: format!("scaled {name} from {from} to {n}"),
                    }
                }
                AgentChange::Start => {
                    a.enabled = true;
                    for r in a.replicas.values_mut() {
                        r.parked = false;
                        if r.lc.state() == State::Failed {
                            r.start_limit.reset();
                            r.backoff.reset();
                            transition(
                                &self.events,
                                &name,
                                r,
                                State::Initialization,
                                now,
                                "started by operator",
                            );
                        }
                    }
                    tracing::info!(agent = %name, "start");
                    Response::Done {
                        message: format!("started {name}"),
                    }
                }
                AgentChange::Stop => {
                    a.enabled = false;
                    let running = a
                        .replicas
                        .values()
                        .filter(|r| r.run.is_some() || r.tree_busy > 0)
                        .count();
                    tracing::info!(agent = %name, running, "stop");
                    Response::Stopped {
                        message: if running > 0 {
                            format!("stopping {name} ({running} replica(s) running)")
                        } else {
                            format!(
                                "{name} is not running (its replicas have all exited); \
                                 it stays stopped until `autonomos start {name}`"
                            )
                        },
                        was_running: running > 0,
                    }
                }
            }),
        };
        if reply.is_ok() && who != "autonomos" {
            let text = match change {
                AgentChange::Scale(n) => format!("scale {name} to {n}"),
                AgentChange::Start => format!("start {name}"),
                AgentChange::Stop => format!("stop {name}"),
            };
            self.observe.on_action(Some(&name), who, &text, now);
        }
        if reply.is_ok() {
            let a = &self.agents[ai];
            self.events.emit(ServerEvent::Agent {
                name: a.spec.name.clone(),
                desired: a.desired,
                enabled: a.enabled,
            });
        }
        let _ = answer.send(reply);
        if std::mem::take(&mut self.agents[ai].resave) {
            self.resave(ai);
        }
        while !self.agents[ai].writing
            && let Some((req, answer, who)) = self.agents[ai].queued.pop_front()
        {
            self.api(req, answer, &who);
        }
    }

    fn api(&mut self, req: Request, answer: Answer, who: &str) {
        if self.shutting_down
            && !matches!(
                req,
                Request::Status | Request::Logs { .. } | Request::Shutdown
            )
        {
            let _ = answer.send(Err(shutting_down()));
            return;
        }
        // A change to an agent whose previous change is still being
        // written waits for it, so changes apply in order.
        if let Request::Scale { agent, .. } | Request::Start { agent } | Request::Stop { agent } =
            &req
            && let Ok(ai) = self.find(agent)
            && self.agents[ai].writing
        {
            self.agents[ai]
                .queued
                .push_back((req, answer, who.to_string()));
            return;
        }
        let now = self.clock.now();
        // Operator actions join the timelines of the incidents they concern
        // (scale, start and stop once they are saved and applied).
        let action = match &req {
            Request::Restart { agent, replica } => Some((
                Some(agent.clone()),
                match replica {
                    Some(r) => format!("restart {agent}/{r}"),
                    None => format!("restart {agent}"),
                },
            )),
            Request::Ack { pattern } => Some((None, format!("acknowledge {pattern}"))),
            Request::Silence { pattern, for_ms } => {
                Some((None, format!("silence {pattern} for {}", fmt_ms(*for_ms))))
            }
            _ => None,
        };
        if let Some((agent, text)) = action
            && who != "autonomos"
            && (agent.is_none() || self.find(agent.as_deref().unwrap_or_default()).is_ok())
        {
            self.observe.on_action(agent.as_deref(), who, &text, now);
        }
        match req {
            Request::Alerts => {
                let _ = answer.send(Ok(Response::Alerts {
                    report: Box::new(self.observe.report()),
                }));
            }
            Request::Ack { pattern } => {
                let ids = self.observe.ack(&pattern, who);
                let _ = answer.send(if ids.is_empty() {
                    Err(err(
                        ErrorKind::Invalid,
                        format!("no firing alert matches `{pattern}` (see `autonomos alerts`)"),
                    ))
                } else {
                    Ok(Response::Done {
                        message: format!("acknowledged {}", ids.join(", ")),
                    })
                });
            }
            Request::Silence { pattern, for_ms } => {
                if for_ms == 0 || for_ms > 30 * 86_400_000 {
                    let _ = answer.send(Err(err(
                        ErrorKind::Invalid,
                        "a silence lasts from 1ms to 30 days",
                    )));
                } else {
                    let ids = self.observe.silence(&pattern, now + for_ms, who);
                    let covered = if ids.is_empty() {
                        "no live alert yet; it applies to future ones".to_string()
                    } else {
                        ids.join(", ")
                    };
                    let _ = answer.send(Ok(Response::Done {
                        message: format!("silenced `{pattern}` for {} ({covered})", fmt_ms(for_ms)),
                    }));
                }
            }
            Request::Incidents { all } => {
                let (incidents, omitted) = self.observe.incidents(all, INCIDENTS_REPORTED);
                let _ = answer.send(Ok(Response::Incidents { incidents, omitted }));
            }
            Request::History { agent, replica } => {
                let ai = match self.find(&agent) {
                    Ok(ai) => ai,
                    Err(e) => return drop(answer.send(Err(e))),
                };
                let _ = answer.send(match self.agents[ai].replicas.get(&replica) {
                    Some(r) => Ok(Response::History {
                        transitions: r.lc.history().iter().cloned().collect(),
                    }),
                    None => Err(err(
                        ErrorKind::Invalid,
                        format!("{agent} has no replica {replica}"),
                    )),
                });
            }
            Request::Incident { id } => {
                let _ = answer.send(match self.observe.incident(id) {
                    Some(i) => Ok(Response::Incident {
                        incident: Box::new(i.clone()),
                    }),
                    None => Err(err(
                        ErrorKind::Invalid,
                        format!("no incident #{id} (see `autonomos incidents --all`)"),
                    )),
                });
            }
            Request::IncidentOpen {
                title,
                level,
                agent,
            } => {
                let title = title.trim().to_string();
                let result = if title.is_empty() {
                    Err(err(ErrorKind::Invalid, "an incident needs a title"))
                } else if !(1..=3).contains(&level) {
                    Err(err(
                        ErrorKind::Invalid,
                        "the level is 1 (critical), 2 (major) or 3 (minor)",
                    ))
                } else if let Some(a) = agent.as_deref()
                    && let Err(e) = self.find(a)
                {
                    Err(e)
                } else {
                    let id = self
                        .observe
                        .open_incident(title, level, None, agent, who, now);
                    self.observe.flush();
                    Ok(Response::Done {
                        message: format!("opened incident #{id}"),
                    })
                };
                let _ = answer.send(result);
            }
            Request::IncidentNote { id, text } => {
                let text = text.trim().to_string();
                let r = if text.is_empty() {
                    Err("a note needs text".to_string())
                } else {
                    self.observe.with_incident(id, |i| {
                        i.record(now, crate::core::incident::EntryKind::Note, who, text);
                        Ok(format!("noted on incident #{id}"))
                    })
                };
                let _ = answer.send(
                    r.map(|message| Response::Done { message })
                        .map_err(|e| err(ErrorKind::Invalid, e)),
                );
            }
            Request::IncidentAdvance { id, phase } => {
                let to = match phase.as_deref().map(crate::daemon::observe::parse_phase) {
                    Some(Err(e)) => return drop(answer.send(Err(err(ErrorKind::Invalid, e)))),
                    Some(Ok(p)) => Some(p),
                    None => None,
                };
                let r = self.observe.with_incident(id, |i| {
                    let p = i.advance(to, who, now)?;
                    Ok(format!("incident #{id} is in {}", p.name()))
                });
                let _ = answer.send(
                    r.map(|message| Response::Done { message })
                        .map_err(|e| err(ErrorKind::Invalid, e)),
                );
            }
            Request::IncidentAssign { id, owner } => {
                let r = self.observe.with_incident(id, |i| {
                    let owner = owner.trim().to_string();
                    if owner.is_empty() {
                        return Err("name an owner".to_string());
                    }
                    i.record(
                        now,
                        crate::core::incident::EntryKind::Action,
                        who,
                        format!("owner: {owner}"),
                    );
                    i.owner = Some(owner.clone());
                    Ok(format!("incident #{id} is owned by {owner}"))
                });
                let _ = answer.send(
                    r.map(|message| Response::Done { message })
                        .map_err(|e| err(ErrorKind::Invalid, e)),
                );
            }
            Request::IncidentResolve { id, note } => {
                let r = self.observe.with_incident(id, |i| {
                    i.resolve(who, note.as_deref(), now)?;
                    Ok(format!("incident #{id} resolved"))
                });
                let _ = answer.send(
                    r.map(|message| Response::Done { message })
                        .map_err(|e| err(ErrorKind::Invalid, e)),
                );
            }
            Request::Status => {
                let _ = answer.send(Ok(Response::Status {
                    status: Box::new(self.status(now)),
                }));
            }
            Request::Scale { agent, replicas } => {
                let ai = match self.find(&agent) {
                    Ok(ai) => ai,
                    Err(e) => return drop(answer.send(Err(e))),
                };
                if replicas > crate::config::MAX_REPLICAS {
                    let _ = answer.send(Err(err(
                        ErrorKind::Invalid,
                        format!(
                            "invalid replica count {replicas}: the most is {}",
                            crate::config::MAX_REPLICAS
                        ),
                    )));
                    return;
                }
                self.change_agent(ai, AgentChange::Scale(replicas), answer, who);
            }
            Request::Start { agent } => {
                let ai = match self.find(&agent) {
                    Ok(ai) => ai,
                    Err(e) => return drop(answer.send(Err(e))),
                };
                self.change_agent(ai, AgentChange::Start, answer, who);
            }
            Request::Stop { agent } => {
                let ai = match self.find(&agent) {
                    Ok(ai) => ai,
                    Err(e) => return drop(answer.send(Err(e))),
                };
                self.change_agent(ai, AgentChange::Stop, answer, who);
            }
            Request::Restart { agent, replica } => {
                let ai = match self.find(&agent) {
                    Ok(ai) => ai,
                    Err(e) => return drop(answer.send(Err(e))),
                };
                let stop = self.stop_cmd(ai);
                let a = &mut self.agents[ai];
                if let Some(i) = replica
                    && !a.replicas.contains_key(&i)
                {
                    let _ = answer.send(Err(err(
                        ErrorKind::Invalid,
                        format!("{agent} has no replica {i} (it has {})", a.desired),
                    )));
                    return;
                }
                let name = agent.clone();
                let mut n = 0;
                for r in a.replicas.values_mut() {
                    if replica.is_some_and(|i| i != r.index) {
                        continue;
                    }
                    if restart_replica(&self.events, &name, r, now, OPERATOR_RESTART, stop) {
                        n += 1;
                    }
                }
                tracing::info!(agent = %agent, ?replica, "restart");
                let _ = answer.send(Ok(Response::Done {
                    message: format!("restarting {n} replica(s) of {agent}"),
                }));
            }
            Request::Logs {
                agent,
                lines,
                since,
            } => {
                let ai = match self.find(&agent) {
                    Ok(ai) => ai,
                    Err(e) => return drop(answer.send(Err(e))),
                };
                let since = since.unwrap_or(0);
                let mut all: Vec<LogLine> = Vec::new();
                for r in self.agents[ai].replicas.values() {
                    if let Ok(ring) = r.ring.lock() {
                        all.extend(ring.tail_since(since, lines));
                    }
                }
                all.sort_by_key(|l| l.seq);
                let skip = all.len().saturating_sub(lines);
                let mut lines = all.split_off(skip);
                // Keep the answer well inside one frame: newest lines first.
                let mut budget = LOGS_REPLY_BYTES;
                let keep = lines
                    .iter()
                    .rev()
                    .take_while(|l| {
                        let cost = l.text.len() * 2 + 96;
                        let fits = cost <= budget;
                        budget = budget.saturating_sub(cost);
                        fits
                    })
                    .count();
                let lines = lines.split_off(lines.len() - keep);
                let next = lines.last().map(|l| l.seq).unwrap_or(since).max(since);
                let _ = answer.send(Ok(Response::Logs { lines, next }));
            }
            Request::Reload
            | Request::Subscribe
            | Request::Backup
            | Request::BackupPrune
            | Request::Restore { .. }
            | Request::AlertHistory { .. }
            | Request::AuditCheckpoint
            | Request::AuditRotateKey => {
                // Handled by `Supervisor::request` before reaching the actor.
                let _ = answer.send(Err(err(ErrorKind::Protocol, "not an actor request")));
            }
            Request::Shutdown => {
                if !self.shutting_down {
                    tracing::info!("shutdown: decommissioning the fleet");
                    self.events.emit(ServerEvent::ShuttingDown);
                }
                self.shutting_down = true;
                self.shutdown_waiters.push(answer);
            }
        }
    }

    /// Applies a validated config: new agents start, removed ones are
    /// decommissioned, changed ones restart with the new spec.
    fn apply_config(&mut self, cfg: Config) -> Result<Response, ErrorReply> {
        let now = self.clock.now();
        let (mut added, mut removed, mut changed, mut same) = (vec![], vec![], vec![], 0);
        for ai in 0..self.agents.len() {
            let a = &self.agents[ai];
            if !a.removed && cfg.agent(&a.spec.name).is_none() {
                removed.push(a.spec.name.clone());
                self.agents[ai].removed = true;
            }
        }
        for spec in &cfg.agents {
            match self.find(&spec.name) {
                Ok(ai) if self.agents[ai].spec == *spec => same += 1,
                Ok(ai) => {
                    changed.push(spec.name.clone());
                    let stop = RunCmd::Stop {
                        // Stop the old process the way the old spec said.
                        signal: self.agents[ai].spec.stop_signal,
                        timeout: self.agents[ai].spec.stop_timeout,
                    };
                    let a = &mut self.agents[ai];
                    if a.spec.replicas != spec.replicas {
                        a.desired = spec.replicas;
                    }
                    a.spec = spec.clone();
                    let name = spec.name.clone();
                    for r in a.replicas.values_mut() {
                        restart_replica(&self.events, &name, r, now, RELOAD_RESTART, stop);
                    }
                    self.resave(ai);
                }
                Err(_)
                    if self
                        .agents
                        .iter()
                        .any(|a| a.removed && a.spec.name == spec.name) =>
                {
                    // Re-added while (or after) being removed: bring the old
                    // slot back, so one name never has two agents.
                    added.push(spec.name.clone());
                    let Some(ai) = self
                        .agents
                        .iter()
                        .rposition(|a| a.removed && a.spec.name == spec.name)
                    else {
                        continue;
                    };
                    let a = &mut self.agents[ai];
                    a.removed = false;
                    a.desired = spec.replicas;
                    a.enabled = true;
                    a.spec = spec.clone();
                    for r in a.replicas.values_mut() {
                        r.parked = false;
                    }
                    self.resave(ai);
                }
                Err(_) => {
                    added.push(spec.name.clone());
                    let agent = self
                        .new_agent(spec.clone(), &Loaded::default(), now)
                        .map_err(|e| {
                            err(
                                ErrorKind::Invalid,
                                format!("cannot add `{}`: {e}", spec.name),
                            )
                        })?;
                    self.agents.push(agent);
                }
            }
        }
        self.pool.set_spec(cfg.pool);
        self.observe.reconfigure(&cfg);
        let backup_changed = self
            .me
            .as_ref()
            .and_then(|m| m.recovery.as_ref())
            .is_some_and(|r| r.reconfigure(&cfg));
        self.cfg = cfg;
        self.events.emit(ServerEvent::FleetChanged);
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        let mut message = format!(
            "reloaded: added {}; removed {}; changed {}; {same} unchanged",
            list(&added),
            list(&removed),
            list(&changed)
        );
        if backup_changed {
            message.push_str("; [backup] changed");
        }
        tracing::info!(%message, "reload");
        Ok(Response::Done { message })
    }

    fn status(&self, now: Millis) -> FleetStatus {
        self.status_with(now, STATUS_HISTORY)
    }

    /// The status with up to `history` transitions per replica (fewer in
    /// large fleets: `STATUS_TRANSITIONS` over all replicas).
    fn status_with(&self, now: Millis, history: usize) -> FleetStatus {
        let rows: usize = self.agents.iter().map(|a| a.replicas.len()).sum();
        let history = history.min(crate::proto::STATUS_TRANSITIONS / rows.max(1));
        let agents = self
            .agents
            .iter()
            .filter(|a| !a.removed)
            .map(|a| AgentStatus {
                name: a.spec.name.clone(),
                desired: a.desired,
                running: a
                    .replicas
                    .values()
                    .filter(|r| r.lc.state().is_running())
                    .count() as u32,
                enabled: a.enabled,
                command: a.spec.command.clone(),
                context_dir: a.context_dir.display().to_string(),
                log_lines: a
                    .output
                    .stats
                    .lines
                    .load(std::sync::atomic::Ordering::Relaxed),
                env: a
                    .spec
                    .env
                    .iter()
                    .map(|(k, v)| (k.clone(), mask_secret(k, v)))
                    .collect(),
                restart: restart_name(a.spec.restart).to_string(),
                cpu_request: a.spec.resources.cpu,
                memory_request: a.spec.resources.memory,
                memory_limit: a.spec.resources.memory_limit,
                memory_limit_action: format!("{:?}", a.spec.resources.memory_limit_action)
                    .to_lowercase(),
                log_dropped: a
                    .output
                    .stats
                    .dropped
                    .load(std::sync::atomic::Ordering::Relaxed),
                replicas_omitted: 0,
                replicas: a
                    .replicas
                    .values()
                    .map(|r| ReplicaStatus {
                        index: r.index,
                        state: r.lc.state(),
                        since: r.lc.since(),
                        pid: r.run.as_ref().map(|x| x.pid),
                        started_at: r.run.as_ref().map(|x| x.started_at),
                        restarts: r.restarts,
                        failures: r.failures,
                        last_exit: r.last_exit,
                        waiting: r.waiting.clone(),
                        error: r.error.clone(),
                        cpu_percent: r.cpu_percent,
                        rss_bytes: r.rss_bytes,
                        processes: r.processes,
                        cpu_seconds: r.cpu_seconds,
                        history: {
                            let h = r.lc.history();
                            h.iter()
                                .skip(h.len().saturating_sub(history))
                                .cloned()
                                .collect()
                        },
                    })
                    .collect(),
            })
            .collect();
        let (cpu, mem, n) = self.pool.usage();
        let (alerts, alerts_omitted) = self.observe.alerts_listed(ALERTS_LISTED);
        let (incidents, incidents_omitted) = self.observe.incidents(false, INCIDENTS_LISTED);
        FleetStatus {
            daemon_pid: std::process::id(),
            started_at: self.started_at,
            now,
            data_dir: self.layout.data_dir.display().to_string(),
            config: self.cfg.source.as_ref().map(|p| p.display().to_string()),
            agents,
            agents_omitted: 0,
            host: self.host.clone(),
            pool_used: (cpu, mem, n as u32),
            alerts,
            alerts_omitted,
            incidents,
            incidents_omitted,
            notifiers: self.observe.notifier_status(),
            audit: self.observe.audit_recent(AUDIT_SHOWN),
            backup_running: self.backup_running(),
            backup_progress: self.backup_progress(),
            tick_seconds: self.tick_seconds,
            storage: self.health.faults(),
            history: None,
        }
    }
}

/// The replica `step` is working on; a field-level borrow so that
/// `self.events` and `self.pool` stay usable beside it.
macro_rules! replica_mut {
    ($self:ident, $ai:expr, $index:expr) => {
        // Invariant: callers only name replicas that `step` found in the map.
        $self.agents[$ai]
            .replicas
            .get_mut(&$index)
            .expect("replica exists while it is being stepped")
    };
}
use replica_mut;

/// Restarts one replica now: a running one is stopped gracefully and comes
/// back without counting a failure; one in backoff or failed starts again
/// with its limits re-armed. Returns whether anything was done.
fn restart_replica(
    events: &Events,
    agent: &str,
    r: &mut Replica,
    now: Millis,
    why: &'static str,
    stop: RunCmd,
) -> bool {
    r.parked = false;
    match r.lc.state() {
        State::ActiveOperation | State::PerformanceMonitoring => {
            r.restart_requested = Some(why);
            transition(events, agent, r, State::Adaptation, now, why);
            if let Some(run) = &r.run {
                let _ = run.cmds.try_send(stop);
            }
            true
        }
        State::Backoff | State::Failed => {
            r.start_limit.reset();
            r.backoff.reset();
            transition(events, agent, r, State::Initialization, now, why);
            true
        }
        _ => false,
    }
}

/// Applies a transition, logging it; an invalid one is a bug and is logged as such.
fn transition(
    events: &Events,
    agent: &str,
    r: &mut Replica,
    to: State,
    now: Millis,
    reason: impl Into<String>,
) {
    let reason = reason.into();
    match r.lc.go(to, now, reason) {
        Ok(t) => {
            events.emit(ServerEvent::Transition {
                agent: agent.to_string(),
                replica: r.index,
                transition: t.clone(),
            });
            tracing::info!(
            target: "autonomos::lifecycle",
            agent,
            replica = r.index,
            from = %t.from,
            to = %t.to,
            reason = %t.reason,
            "transition"
            )
        }
        Err(e) => {
            tracing::error!(agent, replica = r.index, error = %e, "bug: invalid lifecycle transition refused")
        }
    }
}

/// Hides the value of an environment variable whose name looks secret.
pub fn mask_secret(key: &str, value: &str) -> String {
    let k = key.to_ascii_uppercase();
    let secret = [
        "KEY",
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "AUTH",
        "CREDENTIAL",
    ]
    .iter()
    .any(|w| k.contains(w));
    if secret {
        "•••••".to_string()
    } else {
        value.to_string()
    }
}

fn restart_name(p: RestartPolicy) -> &'static str {
    match p {
        RestartPolicy::Always => "always",
        RestartPolicy::OnFailure => "on-failure",
        RestartPolicy::Never => "never",
    }
}

/// Why a replica is Stopped: a stop that escalated to SIGKILL says so (and
/// goes on the audit trail); otherwise `plain`.
fn stopped_reason(
    observe: &mut Observe,
    agent: &str,
    r: &mut Replica,
    plain: impl FnOnce() -> String,
) -> String {
    match r.sigkill.take() {
        Some(after) => {
            let reason = killed_reason(after);
            observe.audit(
                "replica-killed",
                serde_json::json!({ "agent": agent, "replica": r.index }),
                &reason,
            );
            reason
        }
        None => plain(),
    }
}

/// Why a replica ended up Stopped when its stop escalated.
fn killed_reason(after: Duration) -> String {
    format!(
        "killed with SIGKILL after {}: it did not stop within stop_timeout",
        fmt_ms(after.as_millis() as u64)
    )
}

/// "1.5s", "250ms", "3m0s".
pub fn fmt_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}
