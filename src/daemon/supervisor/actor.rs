//! The actor: its state, its inbox and its loop.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::events::Events;
use super::{BackupWatch, Layout, RecoveryJob, SPAWNS_PER_PASS, Services};
use crate::config::{AgentSpec, Config};
use crate::core::lifecycle::Millis;
use crate::core::pool::Pool;
use crate::core::supervise::{Effect, ExitInfo, Observation, Slot};
use crate::daemon::collector::{Sample, Target};
use crate::daemon::health::Health;
use crate::daemon::metrics::Published;
use crate::daemon::notify::Notifiers;
use crate::daemon::observe::Observe;
use crate::daemon::output::{AgentOutput, LogFile, OutputStats, Ring};
use crate::daemon::process::{self, RunCmd, RunEvent};
use crate::daemon::store::{Loaded, Store};
use crate::proto::{ErrorReply, FleetStatus, HostStatus, Request, Response};

pub(super) type Answer = oneshot::Sender<Result<Response, ErrorReply>>;

/// What reaches the actor.
pub(super) enum Msg {
    Api(Request, Answer, String),
    /// A new config, who asked, and what else it reconfigures (true when
    /// that changed something: `[backup]`).
    Reload(Box<Config>, Answer, String, super::ReloadHook),
    Snapshot(oneshot::Sender<(u64, FleetStatus)>),
    Run {
        agent: usize,
        index: u32,
        run_id: u64,
        ev: RunEvent,
    },
    Targets(oneshot::Sender<Vec<Target>>),
    Samples(Vec<Sample>, HostStatus),
    /// A recovery workflow step for the agent's incident timelines.
    Recovery(String, String),
    /// A task of the agent failed: (agent, what), for its incidents.
    TaskFailed(String, String),
    /// Tasks wait for this agent and no replica runs: decide now.
    Wake(String),
    /// A replica's git worktree was created (or could not be): spawn it.
    Prepared(usize, u32, Result<(), String>),
    /// The spawner started a replica's process (or could not).
    Spawned(Box<super::spawner::Done>),
    /// A probe of a run: (agent, replica, run, which, failing, reason).
    Probe(usize, u32, u64, crate::daemon::probe::Kind, u32, String),
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

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

/// An operator change to an agent's durable intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AgentChange {
    Scale(u32),
    Start,
    Stop,
}

/// One replica: its decision state, and what only the actor holds.
pub(super) struct Replica {
    pub s: Slot,
    /// Commands to the live run's task.
    pub cmds: Option<mpsc::Sender<RunCmd>>,
    pub ring: Arc<Mutex<Ring>>,
    pub cpu_percent: f64,
    pub rss_bytes: u64,
    pub processes: u32,
    /// CPU time of this slot's trees since the daemon started.
    pub cpu_seconds: f64,
    /// The last liveness result: (run, failures in a row).
    pub probe: Option<(u64, u32)>,
    /// The last readiness: (run, ready).
    pub readiness: Option<(u64, bool)>,
    /// A `tty` agent's terminal of its current run: (run, terminal).
    pub term: Option<(u64, Arc<crate::daemon::tty::Term>)>,
    /// What it is doing, for a `tty` agent (updated every sample).
    pub attention: Option<crate::daemon::tty::Attention>,
    /// The run whose spawn is under way (on the spawner), and a restart
    /// asked for meanwhile (applied once it runs).
    pub spawning: Option<u64>,
    pub restart_after_spawn: Option<&'static str>,
}

pub(super) struct Agent {
    pub spec: AgentSpec,
    /// Removed by a reload: decommissioned, then kept as a tombstone so that
    /// agent indexes held by run tasks stay valid.
    pub removed: bool,
    pub desired: u32,
    pub enabled: bool,
    /// Boxed: a map node holds eleven values, and a replica is large; most
    /// agents have one replica, and unboxed, each paid for eleven.
    pub replicas: BTreeMap<u32, Box<Replica>>,
    pub output: Arc<AgentOutput>,
    pub context_dir: PathBuf,
    /// Whether the context dir was made ahead for the next spawn, by the
    /// daemon's start or [`Actor::prepare_contexts`] (see
    /// [`super::contexts`]).
    pub context_made: Arc<std::sync::atomic::AtomicU8>,
    /// A change to `desired`/`enabled` is being written to `state.db`; it
    /// applies once it is durable.
    pub writing: bool,
    /// Changes that arrived meanwhile, applied in order after it.
    pub queued: VecDeque<(Request, Answer, String)>,
    /// A reload changed the agent while a change was being written: write
    /// the whole row again once that change is applied.
    pub resave: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    /// Backoff elapsed: (agent, replica, timer generation).
    Backoff(usize, u32, u64),
    /// A run reached its min_uptime (or more spawns wait): reconcile.
    Healthy,
}

pub(super) struct Actor {
    /// The config in force, but for its agents: those are `agents` (the
    /// specs moved there at the start). A reload keeps its config whole;
    /// nothing reads `cfg.agents` here.
    pub cfg: Config,
    pub layout: Layout,
    pub agents: Vec<Agent>,
    pub pool: Pool,
    pub store: Store,
    pub tx: mpsc::Sender<Msg>,
    pub timers: BinaryHeap<Reverse<(Millis, Timer)>>,
    pub clock: Clock,
    pub next_run_id: u64,
    pub host: HostStatus,
    pub shutdown_waiters: Vec<Answer>,
    pub shutting_down: bool,
    pub started_at: Millis,
    pub daemon_env: Vec<(String, String)>,
    pub events: Events,
    pub observe: Observe,
    /// The latest /metrics scrape, when the endpoint is on.
    pub published: Option<Published>,
    /// Duration of the last `observe_tick`.
    pub tick_seconds: f64,
    pub backups: Option<BackupWatch>,
    pub recoveries: Option<mpsc::UnboundedSender<RecoveryJob>>,
    pub tasks: Option<crate::daemon::tasks::Tasks>,
    /// The autoscaler's memory, per agent name.
    pub autos: super::autoscale::Autos,
    /// When each agent's automatic recovery ran in this daemon's life.
    pub recovered: HashMap<String, Vec<Millis>>,
    /// What clients last heard of the audit trail and backups: (newest
    /// record's seq, a backup running, its progress).
    pub audit_seen: (u64, bool, Option<crate::proto::BackupProgress>),
    /// Notifications handled, as clients last heard.
    pub notifiers_seen: u64,
    /// The storage faults clients last heard of.
    pub storage_seen: Vec<crate::proto::StorageFault>,
    /// Whether the data dir takes writes.
    pub health: Health,
    /// Restarts, failures or stops reached the incident log since alerts
    /// were last published.
    pub alerts_pending: bool,
    /// Restarts, failures and stops not yet on incident timelines.
    pub timeline: Vec<(String, u32, crate::core::lifecycle::Transition)>,
    /// Replicas whose git worktree is being created (off the actor).
    pub preparing: std::collections::HashSet<(usize, u32)>,
    /// The thread that spawns all but the first replica of a pass.
    pub spawner: Option<super::spawner::Spawner>,
    /// Spawns begun in this reconcile pass.
    pub pass_spawns: usize,
    /// Scratch lists (kept to avoid an allocation per agent per reconcile).
    pub to_step: Vec<u32>,
    /// The instant a reconcile pass judges dependencies by (set during it).
    pub pass_now: Option<Millis>,
    pub effects: Vec<Vec<Effect>>,
    /// Transitions of this pass not yet in the daemon log: written once
    /// the pass is done, so a restart's spawn does not wait for them.
    pub unlogged: Vec<(String, u32, crate::core::lifecycle::Transition)>,
    /// Replica rows of this pass not yet queued for the state database
    /// (queued once the pass is done: the queue's writer thread would
    /// otherwise wake, and run, before the pass's spawns).
    pub unwritten: Vec<crate::daemon::store::Change>,
    /// Agents something happened to since the last reconcile; `dirty_all`
    /// for changes that may touch any (requests, reloads, the 1 s tick).
    pub dirty: Vec<bool>,
    pub dirty_all: bool,
    /// Agents with replicas waiting to start (dependencies, the pool):
    /// stepped on every reconcile, since other agents unblock them.
    pub waiting_start: Vec<bool>,
    /// Spawns left in this reconcile pass, and whether some had to wait
    /// for the next pass.
    pub spawn_budget: usize,
    pub more_to_spawn: bool,
    /// Output pipes made ahead for the actor's next spawn (made at the
    /// end of a pass that used them: off a restart's path).
    pub spare_pipes: Option<crate::daemon::launch::OutputPipes>,
}

/// A monotonic clock in wall-clock milliseconds: immune to clock jumps.
#[derive(Clone, Copy)]
pub(super) struct Clock {
    base: Instant,
    base_ms: Millis,
}

impl Clock {
    fn new() -> Self {
        Self {
            base: Instant::now(),
            base_ms: crate::clock::now_ms(),
        }
    }
    pub fn now(&self) -> Millis {
        self.base_ms + self.base.elapsed().as_millis() as u64
    }
}

impl Actor {
    pub fn new(
        mut cfg: Config,
        layout: Layout,
        store: Store,
        loaded: &Loaded,
        tx: mpsc::Sender<Msg>,
        services: Services,
    ) -> std::io::Result<Actor> {
        let clock = Clock::new();
        let now = clock.now();
        let spawner = super::spawner::Spawner::start(tx.clone());
        // The specs move into the agents; `cfg` keeps the rest (a clone of
        // the whole config was a third of this function on 500 agents).
        let specs = std::mem::take(&mut cfg.agents);
        let mut actor = Actor {
            layout,
            agents: Vec::new(),
            pool: Pool::new(cfg.pool),
            store: store.clone(),
            tx,
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
                loaded,
                store,
                Notifiers::start(&cfg.notifiers),
                services.audit,
            ),
            published: services.published,
            tick_seconds: 0.0,
            backups: services.backups,
            recoveries: services.recoveries,
            tasks: services.tasks,
            autos: Default::default(),
            recovered: Default::default(),
            audit_seen: (0, false, None),
            notifiers_seen: 0,
            storage_seen: Vec::new(),
            health: services.health,
            alerts_pending: false,
            timeline: Vec::new(),
            preparing: Default::default(),
            spawner,
            pass_spawns: 0,
            to_step: Vec::new(),
            effects: Vec::new(),
            unlogged: Vec::new(),
            unwritten: Vec::new(),
            pass_now: None,
            dirty: Vec::new(),
            dirty_all: true,
            waiting_start: Vec::new(),
            spawn_budget: SPAWNS_PER_PASS,
            more_to_spawn: false,
            spare_pipes: None,
            events: Events::new(),
            cfg,
        };
        let listing = crate::daemon::output::list_dir(&actor.layout.logs_dir());
        actor.agents.reserve_exact(specs.len());
        let mut early = services.contexts;
        for spec in specs {
            let mut agent = actor.new_agent(spec, loaded, now, listing.as_ref())?;
            // Only for an agent about to start: a mark left for one the
            // state keeps stopped could outlive its dir.
            if let Some(flag) = early.take(&agent.spec.name)
                && agent.enabled
                && agent.desired > 0
            {
                agent.context_made = flag;
            }
            actor.agents.push(agent);
        }
        Ok(actor)
    }

    pub fn new_agent(
        &self,
        spec: AgentSpec,
        loaded: &Loaded,
        now: Millis,
        logs: Option<&std::collections::HashSet<std::ffi::OsString>>,
    ) -> std::io::Result<Agent> {
        let (desired, enabled) = match loaded.agents.get(&spec.name) {
            // A changed config value wins over an old runtime scale.
            Some(row) if row.config_replicas == spec.replicas => (row.desired, row.enabled),
            Some(row) => (spec.replicas, row.enabled),
            None => (spec.replicas, true),
        };
        // Opened at the agent's first line: starting 500 agents created
        // 500 files before the first spawn.
        let file = LogFile::lazy(&self.layout.logs_dir(), &spec.name, self.cfg.logs, logs)?;
        let mut replicas = BTreeMap::new();
        // Looked up by key: a loop over every stored replica for each agent
        // was O(agents × replicas) on a restart of a large fleet.
        let mut key = (spec.name.clone(), 0);
        for index in 0..desired {
            key.1 = index;
            if let Some(row) = loaded.replicas.get(&key) {
                let mut r = self.new_replica(index, now);
                r.s.restarts = row.restarts;
                r.s.failures = row.failures;
                r.s.last_exit = row.last_exit_at.map(|at| ExitInfo {
                    code: row.last_exit_code,
                    signal: row.last_exit_signal,
                    at,
                    ran_ms: 0,
                });
                replicas.insert(index, Box::new(r));
            }
        }
        Ok(Agent {
            context_dir: self.layout.context_dir(&spec.name),
            context_made: Default::default(),
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

    pub fn new_replica(&self, index: u32, now: Millis) -> Replica {
        Replica {
            s: Slot::new(index, now),
            cmds: None,
            ring: Arc::new(Mutex::new(Ring::new(self.cfg.logs.ring_lines))),
            cpu_percent: 0.0,
            rss_bytes: 0,
            processes: 0,
            cpu_seconds: 0.0,
            probe: None,
            readiness: None,
            term: None,
            attention: None,
            spawning: None,
            restart_after_spawn: None,
        }
    }

    pub async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut reap_tick = tokio::time::interval(Duration::from_secs(1));
        reap_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.prepare_contexts();
        self.reconcile();
        loop {
            let next = self.timers.peek().map(|Reverse((at, _))| *at);

            let sleep = async {
                match next {
                    Some(at) => {
                        let now = self.clock.now();
                        if at > now {
                            tokio::time::sleep(Duration::from_millis(at - now)).await
                        } else {
                            // Due already (a zero backoff: restart now). A
                            // tokio sleep rounds its deadline up to the next
                            // millisecond, which cost every crash → respawn
                            // about half a millisecond; a yield lets the rest
                            // run and comes straight back.
                            tokio::task::yield_now().await
                        }
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
                        // What fell due meanwhile (a zero backoff: restart
                        // now) goes in this pass, not after a yield. What
                        // the messages queued for timelines, alerts and the
                        // log follows the reconcile: a respawn waits for
                        // none of it.
                        self.fire_timers();
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
            self.publish_if_pending();
            self.log_transitions();
            self.write_replicas();
            if self.spare_pipes.is_none() && !self.shutting_down {
                self.spare_pipes = crate::daemon::launch::OutputPipes::new().ok();
            }
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
        // An inbox closed mid-pass leaves nothing unsaid.
        self.log_transitions();
        self.write_replicas();
    }

    /// Alerts and incidents changed by what just happened reach clients.
    fn publish_if_pending(&mut self) {
        self.drain_timeline();
        if std::mem::take(&mut self.alerts_pending) {
            self.publish_alerts();
        }
    }

    fn all_stopped(&self) -> bool {
        self.agents.iter().all(|a| {
            // A change being written is answered before the actor ends.
            !a.writing && a.replicas.values().all(|r| r.s.at_rest())
        })
    }

    /// Something happened to agent `ai`: step it at the next reconcile.
    pub fn touch(&mut self, ai: usize) {
        match self.dirty.get_mut(ai) {
            Some(d) => *d = true,
            None => self.dirty_all = true,
        }
    }

    fn handle(&mut self, msg: Msg) {
        // What the message does may log: the transitions before it first.
        self.log_transitions();
        match &msg {
            Msg::Run { agent, .. } => self.touch(*agent),
            Msg::Spawned(done) => self.touch(done.job.ai),
            Msg::Samples(..) | Msg::Snapshot(_) | Msg::Targets(_) => {}
            Msg::Api(..)
            | Msg::Reload(..)
            | Msg::Recovery(..)
            | Msg::TaskFailed(..)
            | Msg::Probe(..)
            | Msg::Prepared(..)
            | Msg::Wake(..)
            | Msg::Persisted { .. } => self.dirty_all = true,
        }
        match msg {
            Msg::Api(req, answer, who) => self.api(req, answer, &who),
            Msg::Reload(cfg, answer, who, hook) => {
                let result = self.apply_config(*cfg, hook);
                self.prepare_contexts();
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
                        if let Some(run) = &r.s.run {
                            targets.push(Target {
                                agent: ai,
                                index: r.s.index,
                                run_id: run.id,
                                pid: run.pid,
                                eager: a.spec.resources.memory_limit.is_some(),
                            });
                        }
                    }
                }
                let _ = reply.send(targets);
            }
            Msg::Samples(samples, host) => self.on_samples(samples, host),
            Msg::Recovery(agent, text) => {
                let now = self.clock.now();
                self.observe
                    .on_action(Some(&agent), "autonomos (recovery)", &text, now);
                self.observe.flush();
            }
            Msg::Wake(agent) => {
                let now = self.clock.now();
                self.autoscale_one(&agent, now);
            }
            Msg::Prepared(ai, index, result) => self.prepared(ai, index, result),
            Msg::Spawned(done) => {
                let (job, result) = super::spawner::finish(*done);
                self.spawned(job, result);
            }
            Msg::Probe(ai, index, run_id, kind, failing, reason) => {
                self.on_probe(ai, index, run_id, kind, failing, reason)
            }
            Msg::TaskFailed(agent, text) => {
                let now = self.clock.now();
                self.observe.note_on_open_incidents(&agent, &text, now);
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

    /// A run task reports an exit, or leftovers gone.
    fn on_run_event(&mut self, ai: usize, index: u32, run_id: u64, event: RunEvent) {
        if matches!(event, RunEvent::Exited { .. })
            && let Some(r) = self
                .agents
                .get_mut(ai)
                .and_then(|a| a.replicas.get_mut(&index))
            && r.term.as_ref().is_some_and(|(id, _)| *id == run_id)
        {
            // Its terminal, scrollback and descriptors go with it.
            r.term = None;
        }
        self.decide(ai, index, Observation::Run { run_id, event });
    }

    fn fire_timers(&mut self) {
        let now = self.clock.now();
        while let Some(Reverse((at, t))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if let Timer::Backoff(ai, index, generation) = t {
                self.touch(ai);
                self.decide(ai, index, Observation::BackoffElapsed { generation });
            }
            // Timer::Healthy only needs the reconcile that follows.
        }
    }
}
