//! The task layer's daemon side: one actor (`engine.rs`) owns every
//! agent's queue, the replicas it may route to and the tasks in flight;
//! `store.rs` makes submits and state changes durable (group commit);
//! `channel.rs` speaks JSON-RPC with each replica over its stdin and
//! stdout. Routing, queue order and retry decisions are `core::task`.

mod channel;
pub mod delegate;
mod engine;
mod flow;
mod ops;
mod remote;
pub mod shared;
pub mod stats;
pub mod store;

pub use channel::{ReplicaLink, rpc_filter};

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use crate::config::Config;
use crate::proto::{ErrorReply, Response, Submit};

/// What the engine is asked or told.
pub enum Msg {
    Submit(Submit, oneshot::Sender<Result<Response, ErrorReply>>),
    /// The submit's write is durable (or failed). `own`: the tasks it
    /// wrote; `ids`: every task it names (an idempotent resubmit names
    /// tasks written by an earlier submit).
    Committed {
        own: Vec<String>,
        ids: Vec<String>,
        result: Result<(), String>,
        answer: oneshot::Sender<Result<Response, ErrorReply>>,
    },
    List {
        agent: Option<String>,
        state: Option<crate::core::task::TaskState>,
        limit: usize,
        answer: oneshot::Sender<Result<Response, ErrorReply>>,
    },
    Get(String, oneshot::Sender<Result<Response, ErrorReply>>),
    Cancel(String, oneshot::Sender<Result<Response, ErrorReply>>),
    Retry(String, oneshot::Sender<Result<Response, ErrorReply>>),
    /// A replica of a task agent started: its stdin, where to send lines.
    Up(ReplicaLink),
    /// Its readiness probe passes (`open`) or fails.
    Gate {
        agent: String,
        index: u32,
        run: u64,
        open: bool,
    },
    /// A heartbeat probe: was it heard from within `within` (else it is
    /// pinged, and the answer waits for what it says next)?
    Heard {
        agent: String,
        index: u32,
        run: u64,
        within: std::time::Duration,
        answer: oneshot::Sender<Result<(), String>>,
    },
    /// It is being stopped: no new tasks; it is sent `shutdown`. `done`
    /// hears once it has no task in flight (at once if it has none).
    Draining {
        agent: String,
        index: u32,
        run: u64,
        done: Option<oneshot::Sender<()>>,
    },
    /// Its stdout ended: it is gone.
    Down {
        agent: String,
        index: u32,
        run: u64,
    },
    /// A JSON-RPC message from a replica.
    FromAgent {
        agent: String,
        index: u32,
        run: u64,
        msg: serde_json::Value,
    },
    /// A reload: new agents, changed task settings.
    Reconfigure(Box<Config>),
    /// Who hears of failed tasks: (agent, what happened), for the agent's
    /// incident timelines.
    OnFailure(FailureHook),
    /// Who hears that tasks wait for an agent with no replica to run them
    /// (the autoscaler wakes an agent scaled to zero at once).
    OnStarved(StarvedHook),
    /// Answered once every write sent so far is durable (at shutdown).
    Flush(oneshot::Sender<()>),
    /// Follows one task: its status now, then at every change (state,
    /// progress); the channel closes once the task is final, or at once
    /// for an unknown id.
    Watch(String, mpsc::Sender<crate::proto::TaskStatus>),
    /// A replica's `task.submit` was answered: tell it when `id` ends.
    Delegated {
        id: String,
        parent: delegate::Parent,
        /// The replica's request id, answered with the task's id.
        req: serde_json::Value,
    },
    /// The task agents, for the gateway's Agent Cards.
    Agents(oneshot::Sender<Vec<AgentInfo>>),
    /// From the shared queue: a wake-up or a lease renewal.
    Shared(shared::Event),
    /// A claim on the shared queue returned (`n` asked).
    Claimed {
        agent: String,
        n: u32,
        rows: Result<Vec<shared::ClaimedRow>, String>,
    },
    /// A submit to the shared queue was stored.
    Submitted {
        agent: String,
        n: u64,
    },
    /// A task held elsewhere that replicas here submitted ended.
    RemoteFinished {
        task: Box<crate::proto::TaskStatus>,
        parents: Vec<delegate::Parent>,
    },
}

/// A task agent as the outside sees it.
#[derive(Debug, Clone)]
pub struct AgentInfo {
    pub name: String,
    pub description: Option<String>,
    pub skills: Vec<String>,
    pub concurrency: u32,
    /// Replicas it routes to now.
    pub ready: usize,
}

/// Told of every task that ends failed or rejected: (agent, text).
pub type FailureHook = Box<dyn Fn(&str, &str) + Send>;

/// Told of an agent whose new tasks have no replica to run them.
pub type StarvedHook = Box<dyn Fn(&str) + Send>;

/// Counts per agent that the stdout readers bump without a message.
#[derive(Default)]
pub struct Counters {
    /// stdout lines of task agents that were not JSON-RPC.
    pub noise: Mutex<HashMap<String, Arc<AtomicU64>>>,
    /// The engine's figures, refreshed at its tick (for /metrics).
    pub stats: Mutex<stats::Stats>,
}

impl Counters {
    pub fn noise(&self, agent: &str) -> Arc<AtomicU64> {
        let mut m = self.noise.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(agent.to_string()).or_default().clone()
    }
}

fn summary(s: &stats::AgentStats) -> crate::proto::TaskSummary {
    let ms = |q: f64| (q * 1000.0).round() as u64;
    crate::proto::TaskSummary {
        queue: s.queue,
        in_flight: s.in_flight,
        completed: s.completed,
        failed: s.failed,
        run_p95_ms: if s.run_p95 > 0.0 {
            Some(ms(s.run_p95))
        } else {
            s.run.quantile(0.95).map(ms)
        },
        wait_p95_ms: s.wait.quantile(0.95).map(ms),
        oldest_wait_ms: ms(s.oldest_wait),
        capacity: s.capacity,
        error_rate: s.error_rate,
    }
}

impl std::fmt::Debug for Tasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tasks")
    }
}

/// A cheap handle to the engine.
#[derive(Clone)]
pub struct Tasks {
    tx: mpsc::UnboundedSender<Msg>,
    counters: Arc<Counters>,
    shared: Option<shared::SharedQueue>,
}

impl Tasks {
    /// Opens the task table in `state_db`, recovers what was in flight when
    /// the daemon stopped (back to the queue, the attempt counted), and
    /// starts the engine.
    ///
    /// With `[tasks] store`, the queue is the shared one instead: nothing is
    /// recovered here (the queue returns a dead daemon's claims itself).
    pub fn start(state_db: &std::path::Path, cfg: &Config) -> Result<Tasks, String> {
        let (tx, rx) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
        let mut handle = None;
        let engine = match &cfg.tasks.store {
            Some(url) => {
                let dir = state_db.parent().unwrap_or(state_db);
                let me = shared::Identity::new(cfg.tasks.host.as_deref(), dir);
                let (etx, mut erx) = mpsc::unbounded_channel();
                let sh = shared::SharedQueue::start(url, me, &cfg.tasks, etx)?;
                let fwd = tx.clone();
                tokio::spawn(async move {
                    while let Some(e) = erx.recv().await {
                        if fwd.send(Msg::Shared(e)).is_err() {
                            return;
                        }
                    }
                });
                let mut e = engine::Engine::new(
                    cfg,
                    Arc::new(sh.clone()),
                    Vec::new(),
                    tx.clone(),
                    counters.clone(),
                );
                e.host = Some(sh.me.host.clone());
                handle = Some(sh.clone());
                e.shared = Some(sh);
                e
            }
            None => {
                let (store, rows) = store::TaskStore::start(state_db)?;
                engine::Engine::new(cfg, Arc::new(store), rows, tx.clone(), counters.clone())
            }
        };
        tokio::spawn(engine.run(rx));
        Ok(Tasks {
            tx,
            counters,
            shared: handle,
        })
    }

    /// The shared queue's connection, when `[tasks] store` names one.
    pub fn shared_status(&self) -> Option<crate::proto::SharedQueueStatus> {
        let sh = self.shared.as_ref()?;
        let c = sh.cache();
        Some(crate::proto::SharedQueueStatus {
            store: sh.place.clone(),
            host: sh.me.host.clone(),
            connected: c.connected,
            error: c.error,
        })
    }

    pub(crate) fn send(&self, m: Msg) {
        let _ = self.tx.send(m);
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    /// One task agent's queue at a glance (None for other agents).
    pub fn summary(&self, agent: &str) -> Option<crate::proto::TaskSummary> {
        let stats = self.counters.stats.lock().ok()?;
        stats.get(agent).map(summary)
    }

    /// Every task agent's queue at a glance, by name.
    pub fn summaries(&self) -> Vec<(String, crate::proto::TaskSummary)> {
        let Ok(stats) = self.counters.stats.lock() else {
            return Vec::new();
        };
        stats.iter().map(|(n, s)| (n.clone(), summary(s))).collect()
    }

    /// Every task agent's figures as of the engine's last tick.
    pub fn stats(&self) -> stats::Stats {
        self.counters
            .stats
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Waits until every task write so far is durable (at most `within`):
    /// a daemon that stops cleanly re-runs nothing it saw finish.
    pub async fn flush(&self, within: std::time::Duration) {
        let (tx, rx) = oneshot::channel();
        self.send(Msg::Flush(tx));
        let _ = tokio::time::timeout(within, rx).await;
    }

    /// The task agents of the current config, by name.
    pub async fn agents(&self) -> Vec<AgentInfo> {
        let (tx, rx) = oneshot::channel();
        self.send(Msg::Agents(tx));
        rx.await.unwrap_or_default()
    }

    /// Follows one task (see `Msg::Watch`).
    /// The statuses carry no input. A follower that does not keep up
    /// misses intermediate changes (progress), never the final state.
    pub fn watch(&self, id: &str) -> mpsc::Receiver<crate::proto::TaskStatus> {
        let (tx, rx) = mpsc::channel(32);
        self.send(Msg::Watch(id.to_string(), tx));
        rx
    }

    /// A heartbeat probe of one run (see [`Msg::Heard`]).
    pub async fn heard(
        &self,
        agent: &str,
        index: u32,
        run: u64,
        within: std::time::Duration,
    ) -> Result<(), String> {
        let (answer, rx) = oneshot::channel();
        self.send(Msg::Heard {
            agent: agent.to_string(),
            index,
            run,
            within,
            answer,
        });
        rx.await
            .unwrap_or_else(|_| Err("heartbeat: the task engine stopped".into()))
    }

    /// Asks and waits for the answer.
    pub async fn ask(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<Response, ErrorReply>>) -> Msg,
    ) -> Result<Response, ErrorReply> {
        let (answer, rx) = oneshot::channel();
        self.send(make(answer));
        rx.await.unwrap_or_else(|_| {
            Err(ErrorReply {
                kind: crate::proto::ErrorKind::ShuttingDown,
                message: "the task engine stopped".into(),
            })
        })
    }
}
