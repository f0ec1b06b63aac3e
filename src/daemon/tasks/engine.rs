//! The task engine: one actor that owns the queues, the replicas it routes
//! to and every kept task. Requests from clients (`ops.rs`), and the flow
//! of work to and from replicas (`flow.rs`).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::stats::AgentStats;
use super::store::{QueueStore, Row, Write};
use super::{Counters, Msg};
use crate::config::{Config, TaskSpec};
use crate::core::lifecycle::Millis;
use crate::core::task::outcome::{Decision, Ending, RetryPolicy, decide};
use crate::core::task::route::Contexts;
use crate::core::task::{Queue, Rank, TaskState};
use crate::proto::TaskStatus;

/// Longest per-attempt timeout a client may ask for (a day).
pub(super) const MAX_TIMEOUT_MS: u64 = 86_400_000;
/// How often timeouts and retry delays are looked at.
const TICK: Duration = Duration::from_millis(100);
/// Ticks between refreshes of the shared figures (500 ms).
const PUBLISH_EVERY: u64 = 5;

/// One replica the engine routes to.
pub(super) struct Rep {
    pub run: u64,
    pub stdin: mpsc::UnboundedSender<Vec<u8>>,
    pub in_flight: HashSet<String>,
    /// Running (or announced ready, for `ready = "announce"`).
    pub ready: bool,
    /// Being stopped: never ready again.
    pub draining: bool,
    /// Told when a draining replica has no task in flight.
    pub drained: Vec<tokio::sync::oneshot::Sender<()>>,
    /// Tasks it may run at once (the config's, or what it announced).
    pub concurrency: u32,
    /// The concurrency its `agent.ready` announced.
    pub announced: Option<u32>,
    /// The skills its `agent.ready` announced.
    pub skills: Vec<String>,
    /// Its readiness probe does not pass (yet): no tasks.
    pub gated: bool,
    /// When it last sent anything (for the heartbeat probe).
    pub last_heard: Millis,
    /// Heartbeat probes waiting for it to say anything (it was pinged).
    pub pings: Vec<tokio::sync::oneshot::Sender<Result<(), String>>>,
}

impl Rep {
    /// Whether the router may give it a task now.
    pub fn routable(&self) -> bool {
        self.ready && !self.gated && !self.draining
    }
}

/// A replica's concurrency: the config's, unless the agent announced its
/// own; an explicit `concurrency` in the config is a ceiling.
pub(super) fn concurrency(spec: &TaskSpec, announced: Option<u32>) -> u32 {
    let max = crate::core::pool::MAX_REPLICAS;
    match announced {
        Some(n) if spec.concurrency_set => n.clamp(1, spec.concurrency),
        Some(n) => n.clamp(1, max),
        None => spec.concurrency,
    }
}

/// One task agent's side of the engine.
pub(super) struct AgentQ {
    pub spec: TaskSpec,
    pub queue: Queue,
    pub replicas: BTreeMap<u32, Rep>,
    pub contexts: Contexts,
    pub policy: RetryPolicy,
    /// Its figures (totals and histograms; gauges filled at publish).
    pub stats: AgentStats,
    /// For the windowed figures.
    pub window: super::stats::Window,
    /// Submitted tasks whose write is not yet durable (count toward
    /// `max_queue`).
    pub pending: usize,
    /// The agent's `description`.
    pub description: Option<String>,
    /// Still a task agent in the config (a removed one keeps its tasks).
    pub configured: bool,
}

impl AgentQ {
    /// Whether it offers `skill` (configured, or announced by a replica
    /// that is there now).
    pub fn offers(&self, skill: &str) -> bool {
        self.spec.skills.iter().any(|s| s == skill)
            || self
                .replicas
                .values()
                .any(|r| r.skills.iter().any(|s| s == skill))
    }

    /// Configured skills, then those its live replicas announced.
    pub fn skills(&self) -> Vec<String> {
        let mut out = self.spec.skills.clone();
        for r in self.replicas.values() {
            for s in &r.skills {
                if !out.contains(s) {
                    out.push(s.clone());
                }
            }
        }
        out
    }
}

impl AgentQ {
    fn new(spec: &TaskSpec) -> AgentQ {
        AgentQ {
            spec: spec.clone(),
            queue: Queue::new(spec.max_queue),
            replicas: BTreeMap::new(),
            contexts: Contexts::default(),
            policy: policy(spec),
            stats: AgentStats::default(),
            window: super::stats::Window::starting(now_ms()),
            pending: 0,
            description: None,
            configured: true,
        }
    }
}

fn policy(spec: &TaskSpec) -> RetryPolicy {
    RetryPolicy {
        max_attempts: spec.max_attempts,
        ..RetryPolicy::default()
    }
}

/// A kept task and what the engine needs besides its status.
pub(super) struct Entry {
    pub t: TaskStatus,
    pub seq: u64,
    /// Submitted, its write not yet durable: not routed, not listed.
    pub pending: bool,
    /// When the running attempt times out.
    pub deadline: Option<Millis>,
    /// Since when it waits in the queue (for the wait histogram).
    pub queued_at: Millis,
    /// `task.run` requests sent for it (never reset: each gets its own
    /// JSON-RPC id, so a late answer to an old one cannot end a new one).
    pub dispatches: u64,
    /// Submits that named it by its idempotency key while its own write
    /// was pending: told when that write is durable.
    pub waiters: Vec<tokio::sync::oneshot::Sender<Result<(), String>>>,
    /// The replicas that submitted it (`task.submit`), told when it ends.
    pub parents: Vec<super::delegate::Parent>,
    /// When it was claimed from the shared queue (local ms; 0 otherwise).
    pub claimed_at: Millis,
}

impl Entry {
    pub fn rank(&self, not_before: Millis) -> Rank {
        Rank {
            priority: self.t.priority,
            seq: self.seq,
            not_before,
        }
    }
}

pub(crate) struct Engine {
    pub(super) agents: HashMap<String, AgentQ>,
    pub(super) tasks: HashMap<String, Entry>,
    /// Final tasks, oldest first (trimmed past `[tasks] keep`).
    pub(super) finished: VecDeque<String>,
    pub(super) store: Arc<dyn QueueStore>,
    pub(super) tx: mpsc::UnboundedSender<Msg>,
    pub(super) counters: Arc<Counters>,
    /// `[tasks]`: kept tasks, input and result limits.
    pub(super) limits: crate::config::TasksSpec,
    pub(super) next_seq: u64,
    /// Told of failed and rejected tasks (the agent's incidents).
    pub(super) on_failure: Option<super::FailureHook>,
    /// Told of agents whose new tasks have no replica (the autoscaler).
    pub(super) on_starved: Option<super::StarvedHook>,
    /// Draining replicas waiting for their tasks (see `tell_drained`).
    pub(super) draining_waiters: usize,
    /// Who follows which task (`Msg::Watch`).
    pub(super) watchers: HashMap<String, Vec<mpsc::Sender<TaskStatus>>>,
    /// The shared queue, when `[tasks] store` names one.
    pub(super) shared: Option<super::shared::SharedQueue>,
    /// Agents with a claim on the shared queue in flight.
    pub(super) claiming: HashSet<String>,
    /// ... and asked for more while it was.
    pub(super) claim_again: HashSet<String>,
    /// This daemon's name on the tasks it runs (shared queue only).
    pub(super) host: Option<String>,
    /// Claims the last renewal found that the engine does not hold.
    pub(super) orphans: HashSet<String>,
}

pub(super) fn now_ms() -> Millis {
    crate::clock::now_ms()
}

impl Engine {
    pub fn new(
        cfg: &Config,
        store: Arc<dyn QueueStore>,
        rows: Vec<Row>,
        tx: mpsc::UnboundedSender<Msg>,
        counters: Arc<Counters>,
    ) -> Engine {
        let mut e = Engine {
            agents: HashMap::new(),
            tasks: HashMap::new(),
            finished: VecDeque::new(),
            store,
            tx,
            counters,
            limits: cfg.tasks.clone(),
            next_seq: 1,
            on_failure: None,
            on_starved: None,
            watchers: HashMap::new(),
            draining_waiters: 0,
            shared: None,
            claiming: HashSet::new(),
            claim_again: HashSet::new(),
            host: None,
            orphans: HashSet::new(),
        };
        e.reconfigure(cfg);
        e.recover(rows);
        e
    }

    /// New agents get a queue; changed ones their new settings.
    pub(super) fn reconfigure(&mut self, cfg: &Config) {
        self.limits = cfg.tasks.clone();
        for q in self.agents.values_mut() {
            q.configured = false;
        }
        for a in &cfg.agents {
            let Some(spec) = &a.tasks else { continue };
            let q = match self.agents.get_mut(&a.name) {
                Some(q) => {
                    q.spec = spec.clone();
                    q.queue.set_max(spec.max_queue);
                    q.policy = policy(spec);
                    for r in q.replicas.values_mut() {
                        r.concurrency = concurrency(spec, r.announced);
                    }
                    q
                }
                None => self
                    .agents
                    .entry(a.name.clone())
                    .or_insert_with(|| AgentQ::new(spec)),
            };
            q.description = a.description.clone();
            q.configured = true;
        }
    }

    /// Tasks found in the table at start: waiting ones queue again; one
    /// that was running when the daemon stopped ended with it (an attempt
    /// counted) and is retried or failed by its agent's policy.
    fn recover(&mut self, rows: Vec<Row>) {
        let now = now_ms();
        for Row { seq, mut task } in rows {
            self.next_seq = self.next_seq.max(seq + 1);
            let id = task.id.clone();
            let Some(q) = self.agents.get_mut(&task.agent) else {
                if !task.state.is_final() {
                    task.state = TaskState::Failed;
                    task.error = Some("its agent is no longer a task agent in the config".into());
                    task.finished_at = Some(now);
                    self.store.write_soon(Write::Put {
                        seq,
                        task: Box::new(task.clone()),
                    });
                }
                self.finished.push_back(id.clone());
                self.tasks.insert(id, entry(task, seq));
                continue;
            };
            if let Some(k) = &task.key {
                q.queue.remember_key(k.clone(), id.clone());
            }
            let mut not_before = 0;
            if task.state == TaskState::Working {
                let why = Ending::Lost("the daemon stopped while it ran".into());
                match decide(why, task.attempts, &q.policy) {
                    Decision::Retry { after, reason } => {
                        task.state = TaskState::Submitted;
                        task.error = Some(reason);
                        not_before = now + after;
                    }
                    Decision::Fail(reason) => {
                        task.state = TaskState::Failed;
                        task.error = Some(reason);
                        task.finished_at = Some(now);
                    }
                    _ => {}
                }
                self.store.write_soon(Write::Put {
                    seq,
                    task: Box::new(task.clone()),
                });
            }
            if task.state == TaskState::Submitted {
                let e = entry(task, seq);
                q.queue.push_back(id.clone(), e.rank(not_before));
                self.tasks.insert(id, e);
            } else {
                self.finished.push_back(id.clone());
                self.tasks.insert(id, entry(task, seq));
            }
        }
    }

    pub async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut ticks: u64 = 0;
        loop {
            tokio::select! {
                m = rx.recv() => match m {
                    Some(m) => self.handle(m),
                    None => return,
                },
                // Nothing to time out, retry, publish or follow without task
                // agents: an idle daemon is not woken ten times a second.
                _ = tick.tick(), if self.ticks_needed() => {
                    self.tick();
                    if ticks.is_multiple_of(10) && self.shared.is_some() {
                        self.shared_tick();
                    }
                    if self.draining_waiters > 0 {
                        self.tell_drained();
                    }
                    // The figures are read once a second (the collector,
                    // /metrics); refreshing them every tick costs an idle
                    // daemon for nothing.
                    ticks += 1;
                    if ticks.is_multiple_of(PUBLISH_EVERY) {
                        self.publish();
                    }
                    // Followers that went away (a client that disconnected).
                    self.watchers.retain(|_, l| {
                        l.retain(|w| !w.is_closed());
                        !l.is_empty()
                    });
                }
            }
        }
    }

    /// Whether the 100 ms tick has work: task agents (timeouts, retry
    /// delays, figures), a shared queue, a drain or followers.
    fn ticks_needed(&self) -> bool {
        !self.agents.is_empty()
            || self.shared.is_some()
            || self.draining_waiters > 0
            || !self.watchers.is_empty()
    }

    fn handle(&mut self, m: Msg) {
        let had_agents = !self.agents.is_empty();
        self.handle_one(m);
        // The last task agent went (a reload): no tick will publish again,
        // so the empty figures go out now.
        if had_agents && self.agents.is_empty() {
            self.publish();
        }
        if self.draining_waiters > 0 {
            self.tell_drained();
        }
    }

    /// Draining replicas with nothing in flight any more: their stop goes on.
    fn tell_drained(&mut self) {
        let mut left = 0;
        for q in self.agents.values_mut() {
            for r in q.replicas.values_mut() {
                if r.in_flight.is_empty() {
                    for done in r.drained.drain(..) {
                        let _ = done.send(());
                    }
                }
                left += r.drained.len();
            }
        }
        self.draining_waiters = left;
    }

    fn handle_one(&mut self, m: Msg) {
        let remote = matches!(
            m,
            Msg::List { .. } | Msg::Get(..) | Msg::Cancel(..) | Msg::Retry(..) | Msg::Watch(..)
        );
        if remote && self.shared.is_some() {
            return self.ask_shared(m);
        }
        self.handle_local(m)
    }

    pub(super) fn handle_local(&mut self, m: Msg) {
        match m {
            Msg::Shared(e) => self.on_shared(e),
            Msg::Claimed { agent, n, rows } => self.claimed(&agent, n, rows),
            Msg::Submitted { agent, n } => {
                if let Some(q) = self.agents.get_mut(&agent) {
                    q.stats.submitted += n;
                }
                let starved = self
                    .agents
                    .get(&agent)
                    .is_some_and(|q| q.replicas.is_empty());
                if let (true, Some(hook)) = (starved, &self.on_starved) {
                    hook(&agent);
                }
                // Its own submit: claimed here at once if there is room
                // (not after its own NOTIFY comes back).
                if self.agents.contains_key(&agent) {
                    self.dispatch(&agent);
                }
            }
            Msg::RemoteFinished { task, parents } => self.remote_finished(*task, parents),
            Msg::Submit(s, answer) => self.submit(s, answer),
            Msg::Committed {
                own,
                ids,
                result,
                answer,
            } => self.committed(own, ids, result, answer),
            Msg::List {
                agent,
                state,
                limit,
                answer,
            } => {
                let _ = answer.send(Ok(self.list(agent.as_deref(), state, limit)));
            }
            Msg::Get(id, answer) => {
                let _ = answer.send(self.get(&id));
            }
            Msg::Cancel(id, answer) => {
                let _ = answer.send(self.cancel(&id));
            }
            Msg::Retry(id, answer) => {
                let _ = answer.send(self.retry(&id));
            }
            Msg::Up(link) => self.up(link),
            Msg::Gate {
                agent,
                index,
                run,
                open,
            } => self.gate(&agent, index, run, open),
            Msg::Heard {
                agent,
                index,
                run,
                within,
                answer,
            } => self.heard(&agent, index, run, within, answer),
            Msg::Down { agent, index, run } => self.down(&agent, index, run),
            Msg::Draining {
                agent,
                index,
                run,
                done,
            } => self.draining(&agent, index, run, done),
            Msg::FromAgent {
                agent,
                index,
                run,
                msg,
            } => self.on_agent_message(&agent, index, run, &msg),
            Msg::OnFailure(hook) => self.on_failure = Some(hook),
            Msg::OnStarved(hook) => self.on_starved = Some(hook),
            Msg::Flush(done) => {
                self.release_unstarted();
                // The writes are ordered: when this empty one is durable,
                // so is everything sent before it.
                let ack = self.store.write(Write::Delete(Vec::new()));
                tokio::spawn(async move {
                    let _ = ack.await;
                    let _ = done.send(());
                });
            }
            Msg::Watch(id, to) => self.watch(id, to),
            Msg::Delegated { id, parent, req } => self.delegated(id, parent, req),
            Msg::Agents(answer) => {
                let mut out: Vec<super::AgentInfo> = self
                    .agents
                    .iter()
                    .filter(|(_, q)| q.configured)
                    .map(|(name, q)| super::AgentInfo {
                        name: name.clone(),
                        description: q.description.clone(),
                        skills: q.skills(),
                        concurrency: q.spec.concurrency,
                        ready: q.replicas.values().filter(|r| r.routable()).count(),
                    })
                    .collect();
                out.sort_by(|a, b| a.name.cmp(&b.name));
                let _ = answer.send(out);
            }
            Msg::Reconfigure(cfg) => {
                self.reconfigure(&cfg);
                self.dispatch_all();
            }
        }
    }

    /// Hands out work (and, with a shared queue, claims more) for every
    /// agent.
    pub(super) fn dispatch_all(&mut self) {
        let names: Vec<String> = self.agents.keys().cloned().collect();
        for a in names {
            self.dispatch(&a);
        }
    }

    /// A task reached a final state: kept for inspection, the oldest
    /// finished ones trimmed (with their idempotency keys).
    pub(super) fn finished(&mut self, id: String) {
        if self.shared.is_some() {
            // The shared queue keeps it (and trims by `keep` itself).
            self.tasks.remove(&id);
            return;
        }
        self.finished.push_back(id);
        let mut gone = Vec::new();
        while self.finished.len() > self.limits.keep {
            let Some(old) = self.finished.pop_front() else {
                break;
            };
            if let Some(e) = self.tasks.get(&old)
                && e.t.state.is_final()
                && let Some(e) = self.tasks.remove(&old)
            {
                if let (Some(k), Some(q)) = (&e.t.key, self.agents.get_mut(&e.t.agent)) {
                    q.queue.forget_key(k);
                }
                gone.push(old);
            }
        }
        if !gone.is_empty() {
            self.store.write_soon(Write::Delete(gone));
        }
    }

    /// Refreshes the shared figures: totals, and the gauges now.
    fn publish(&mut self) {
        let now = now_ms();
        let mut out = super::stats::Stats::new();
        for (name, q) in self.agents.iter_mut() {
            let mut s = q.stats.clone();
            q.window.update(now, &mut s);
            s.queue = q.queue.len() as u64;
            let shared = self.shared.as_ref().map(|sh| sh.cache());
            if let Some(c) = &shared {
                // Claimed tasks still count as waiting in the queue.
                let (n, oldest) = c.waiting.get(name).copied().unwrap_or((0, None));
                s.queue = n;
                s.oldest_wait = oldest.map_or(0.0, |o| now.saturating_sub(o) as f64 / 1000.0);
            }
            s.replicas = q
                .replicas
                .iter()
                .map(|(i, r)| (*i, r.in_flight.len() as u64))
                .collect();
            s.in_flight = s.replicas.iter().map(|(_, n)| n).sum();
            s.capacity = q
                .replicas
                .values()
                .filter(|r| r.routable())
                .map(|r| u64::from(r.concurrency))
                .sum();
            if shared.is_none() {
                s.oldest_wait = q
                    .queue
                    .ids()
                    .filter_map(|id| self.tasks.get(id))
                    .map(|e| now.saturating_sub(e.t.submitted_at))
                    .max()
                    .unwrap_or(0) as f64
                    / 1000.0;
            }
            s.noise = self
                .counters
                .noise(name)
                .load(std::sync::atomic::Ordering::Relaxed);
            out.insert(name.clone(), s);
        }
        if let Ok(mut shared) = self.counters.stats.lock() {
            *shared = out;
        }
    }

    /// Writes a task's current state (ordered; durable with the next batch)
    /// and tells those who follow it.
    pub(super) fn save(&mut self, id: &str) {
        if let Some(e) = self.tasks.get(id) {
            self.store.write_soon(Write::Put {
                seq: e.seq,
                task: Box::new(e.t.clone()),
            });
        }
        self.notify(id);
        self.tell_parent(id);
    }

    /// Starts following a task: its status now, then its changes.
    fn watch(&mut self, id: String, to: mpsc::Sender<TaskStatus>) {
        let Some(e) = self.tasks.get(&id).filter(|e| !e.pending) else {
            return; // the sender drops: the channel closes
        };
        if to.try_send(without_input(&e.t)).is_err() || e.t.state.is_final() {
            return;
        }
        let list = self.watchers.entry(id).or_default();
        list.retain(|w| !w.is_closed());
        list.push(to);
    }

    /// Sends a followed task's status; a final one ends the following.
    pub(super) fn notify(&mut self, id: &str) {
        let Some(list) = self.watchers.get_mut(id) else {
            return;
        };
        let Some(e) = self.tasks.get(id) else {
            self.watchers.remove(id);
            return;
        };
        let t = without_input(&e.t);
        let last = t.state.is_final();
        list.retain(|w| match w.try_send(t.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(t)) if last => {
                // The end is never dropped: it waits for room.
                let w = w.clone();
                tokio::spawn(async move { w.send(t).await });
                true
            }
            // A slow follower misses a progress step, not the end.
            Err(mpsc::error::TrySendError::Full(_)) => true,
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
        if list.is_empty() || last {
            self.watchers.remove(id);
        }
    }
}

/// A status for followers: everything but the input (which may be large
/// and which they have).
fn without_input(t: &TaskStatus) -> TaskStatus {
    TaskStatus {
        id: t.id.clone(),
        agent: t.agent.clone(),
        state: t.state,
        attempts: t.attempts,
        replica: t.replica,
        priority: t.priority,
        key: t.key.clone(),
        context_id: t.context_id.clone(),
        input: serde_json::Value::Null,
        result: t.result.clone(),
        error: t.error.clone(),
        progress: t.progress.clone(),
        submitted_at: t.submitted_at,
        started_at: t.started_at,
        finished_at: t.finished_at,
        timeout_ms: t.timeout_ms,
        host: t.host.clone(),
    }
}

pub(super) fn entry(t: TaskStatus, seq: u64) -> Entry {
    Entry {
        claimed_at: 0,
        dispatches: u64::from(t.attempts),
        waiters: Vec::new(),
        parents: Vec::new(),
        queued_at: t.submitted_at,
        t,
        seq,
        pending: false,
        deadline: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_announced_concurrency_applies_under_the_config_s_ceiling() {
        let open = TaskSpec::default();
        assert_eq!(concurrency(&open, None), 1);
        assert_eq!(
            concurrency(&open, Some(8)),
            8,
            "no ceiling set: the agent's own"
        );
        assert_eq!(concurrency(&open, Some(0)), 1);
        let capped = TaskSpec {
            concurrency: 4,
            concurrency_set: true,
            ..TaskSpec::default()
        };
        assert_eq!(concurrency(&capped, Some(8)), 4);
        assert_eq!(concurrency(&capped, Some(2)), 2);
        assert_eq!(concurrency(&capped, None), 4);
    }
}
