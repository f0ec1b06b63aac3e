//! Work to and from replicas: routing queued tasks, the agents' answers
//! and notifications, timeouts, replicas that come and go.

use serde_json::{Value, json};

use super::ReplicaLink;
use super::engine::{Engine, Rep, now_ms};
use crate::core::task::TaskState;
use crate::core::task::outcome::{Decision, Ending, decide};
use crate::core::task::route::{Slot, pick};
use crate::proto::Progress;

/// The id prefix of the daemon's `ping` requests.
const PING: &str = "ping#";

/// One JSON-RPC notification or request line (with its newline).
pub(super) fn rpc_line(method: &str, params: Value) -> Vec<u8> {
    let mut v =
        serde_json::to_vec(&json!({ "jsonrpc": "2.0", "method": method, "params": params }))
            .unwrap_or_default();
    v.push(b'\n');
    v
}

/// RFC 3339 for a deadline.
fn rfc3339(ms: u64) -> Option<String> {
    jiff::Timestamp::from_millisecond(ms as i64)
        .ok()
        .map(|t| t.to_string())
}

impl Engine {
    /// Hands queued tasks to replicas with room, as the router picks. A task
    /// whose context's replica is busy keeps its place while the tasks
    /// behind it go on (a bounded number skipped per round).
    pub(super) fn dispatch(&mut self, agent: &str) {
        const SKIP: usize = 256;
        let now = now_ms();
        let mut skipped: Vec<(String, crate::core::task::Rank)> = Vec::new();
        while let Some(q) = self.agents.get_mut(agent) {
            let slots: Vec<Slot> = q
                .replicas
                .iter()
                .map(|(i, r)| Slot {
                    index: *i,
                    concurrency: r.concurrency,
                    in_flight: r.in_flight.len() as u32,
                    routable: r.routable(),
                })
                .collect();
            if skipped.len() >= SKIP
                || !slots
                    .iter()
                    .any(|s| s.routable && s.in_flight < s.concurrency)
            {
                break;
            }
            let Some(id) = q.queue.pop(now) else { break };
            let Some(e) = self.tasks.get_mut(&id) else {
                continue;
            };
            let Some(index) = pick(&slots, e.t.context_id.as_deref(), rand::random()) else {
                // Its context's replica is busy: it keeps its place.
                skipped.push((id, e.rank(0)));
                continue;
            };
            let Some(r) = q.replicas.get_mut(&index) else {
                break;
            };
            let context_new =
                e.t.context_id
                    .as_deref()
                    .map(|c| q.contexts.serve(c, index, r.run))
                    .unwrap_or(false);
            q.stats
                .wait
                .observe(now.saturating_sub(e.queued_at) as f64 / 1000.0);
            e.t.attempts += 1;
            e.dispatches += 1;
            e.t.state = TaskState::Working;
            e.t.replica = Some(index);
            e.t.started_at = Some(now);
            e.t.progress = None;
            if let Some(h) = &self.host {
                e.t.host = Some(h.clone());
            }
            e.deadline = e.t.timeout_ms.map(|t| now.saturating_add(t));
            let task = json!({
                "id": e.t.id,
                "input": e.t.input,
                "context_id": e.t.context_id,
                "context_new": context_new,
                "attempt": e.t.attempts,
                "deadline": e.deadline.and_then(rfc3339),
            });
            let mut line = serde_json::to_vec(&json!({
                "jsonrpc": "2.0",
                "id": format!("{}#{}", e.t.id, e.dispatches),
                "method": "task.run",
                "params": { "task": task },
            }))
            .unwrap_or_default();
            line.push(b'\n');
            r.in_flight.insert(id.clone());
            if r.stdin.send(line).is_err() {
                // The writer is gone: the replica's end is on its way.
                r.ready = false;
            }
            self.save(&id);
        }
        if let Some(q) = self.agents.get_mut(agent) {
            for (id, rank) in skipped {
                q.queue.unpop(id, rank);
            }
        }
        if self.shared.is_some() {
            self.claim_more(agent);
        }
    }

    pub(super) fn up(&mut self, link: ReplicaLink) {
        // A new run whose predecessor's end has not been seen yet: that
        // run is gone, and so is its work.
        let old = self
            .agents
            .get(&link.agent)
            .and_then(|q| q.replicas.get(&link.index))
            .filter(|r| r.run != link.run)
            .map(|r| r.run);
        if let Some(run) = old {
            self.down(&link.agent, link.index, run);
        }
        let Some(q) = self.agents.get_mut(&link.agent) else {
            return;
        };
        q.replicas.insert(
            link.index,
            Rep {
                run: link.run,
                stdin: link.stdin,
                in_flight: Default::default(),
                ready: !q.spec.announce,
                draining: false,
                drained: Vec::new(),
                concurrency: q.spec.concurrency,
                announced: None,
                skills: Vec::new(),
                gated: link.gated,
                last_heard: now_ms(),
                pings: Vec::new(),
            },
        );
        self.dispatch(&link.agent);
    }

    /// A replica is being stopped: it gets no new tasks, and is told
    /// `shutdown` (its tasks in flight count until it answers or goes).
    pub(super) fn draining(
        &mut self,
        agent: &str,
        index: u32,
        run: u64,
        done: Option<tokio::sync::oneshot::Sender<()>>,
    ) {
        let Some(r) = self.rep(agent, index, run) else {
            // Gone already: nothing to wait for (the sender drops).
            return;
        };
        r.ready = false;
        if !r.draining {
            r.draining = true;
            let _ = r.stdin.send(rpc_line("shutdown", json!({})));
        }
        if let Some(done) = done {
            r.drained.push(done);
            self.draining_waiters += 1;
        }
    }

    /// A replica's stdout ended: its tasks in flight are lost and go back
    /// to the queue (or fail past `max_attempts`).
    pub(super) fn down(&mut self, agent: &str, index: u32, run: u64) {
        let Some(q) = self.agents.get_mut(agent) else {
            return;
        };
        if q.replicas.get(&index).is_none_or(|r| r.run != run) {
            return;
        }
        let Some(r) = q.replicas.remove(&index) else {
            return;
        };
        let live: Vec<(u32, u64)> = q.replicas.iter().map(|(i, r)| (*i, r.run)).collect();
        q.contexts.retain_live(&live);
        for id in r.in_flight {
            let why = format!("replica {index} went away while running it");
            self.end_attempt(agent, &id, Ending::Lost(why));
        }
        self.dispatch(agent);
    }

    /// A message from a replica: an answer to `task.run`, or a
    /// notification (`agent.ready`, `task.progress`, `heartbeat`).
    pub(super) fn on_agent_message(&mut self, agent: &str, index: u32, run: u64, msg: &Value) {
        if let Some(r) = self.rep(agent, index, run) {
            // Anything it says shows it alive.
            r.last_heard = now_ms();
            for p in r.pings.drain(..) {
                let _ = p.send(Ok(()));
            }
        }
        if let Some(method) = msg.get("method").and_then(Value::as_str) {
            let params = msg.get("params").cloned().unwrap_or(Value::Null);
            let id = msg.get("id").filter(|i| !i.is_null());
            let notification = matches!(method, "agent.ready" | "task.progress" | "heartbeat");
            if let (Some(id), false) = (id, notification) {
                let from = super::delegate::Parent {
                    agent: agent.to_string(),
                    index,
                    run,
                };
                return self.agent_request(from, method, id, &params);
            }
            // A library that sends these as requests gets an empty answer.
            if let (Some(id), Some(r)) = (id, self.rep(agent, index, run)) {
                let _ = r.stdin.send(super::delegate::reply(id, Ok(Value::Null)));
            }
            match method {
                "agent.ready" => {
                    self.ready(agent, index, run, &params);
                    self.dispatch(agent);
                }
                "task.progress" => self.progress(agent, index, &params),
                _ => {} // heartbeat, and what later versions add
            }
            return;
        }
        let id = msg.get("id").and_then(Value::as_str).unwrap_or_default();
        if id.starts_with(PING) {
            return; // the answer to a ping (an error answer shows life too)
        }
        let (task, attempt) = id.rsplit_once('#').unwrap_or((id, ""));
        let running_here = self.tasks.get(task).is_some_and(|e| {
            e.t.state == TaskState::Working
                && e.t.replica == Some(index)
                && e.dispatches.to_string() == attempt
        }) && self
            .rep(agent, index, run)
            .is_some_and(|r| r.in_flight.contains(task));
        if !running_here {
            if let Some(q) = self.agents.get_mut(agent) {
                q.stats.ignored += 1;
            }
            return;
        }
        let error = msg.get("error").filter(|e| !e.is_null());
        let ending = match (msg.get("result"), error) {
            (Some(r), None) => Ending::Result(r.clone()),
            (_, Some(e)) => Ending::Error {
                code: e.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: e
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("error")
                    .to_string(),
                retryable: e.pointer("/data/retryable").and_then(Value::as_bool),
            },
            (None, None) => Ending::Error {
                code: -32600,
                message: "an answer with neither result nor error".into(),
                retryable: None,
            },
        };
        if let Some(r) = self.rep(agent, index, run) {
            r.in_flight.remove(task);
        }
        self.end_attempt(agent, task, ending);
        self.dispatch(agent);
    }

    /// `agent.ready`: routable now; the skills it offers and how many
    /// tasks it runs at once, if it says.
    fn ready(&mut self, agent: &str, index: u32, run: u64, params: &Value) {
        let Some(q) = self.agents.get_mut(agent) else {
            return;
        };
        let Some(r) = q.replicas.get_mut(&index).filter(|r| r.run == run) else {
            return;
        };
        r.ready = !r.draining;
        if let Some(n) = params.get("concurrency").and_then(Value::as_u64) {
            r.announced = Some(n.min(u64::from(u32::MAX)) as u32);
            r.concurrency = super::engine::concurrency(&q.spec, r.announced);
        }
        if let Some(list) = params.get("skills").and_then(Value::as_array) {
            r.skills = list
                .iter()
                .filter_map(Value::as_str)
                .filter(|s| !s.is_empty() && s.len() <= 64 && !s.contains(char::is_whitespace))
                .take(64)
                .map(str::to_owned)
                .collect();
        }
    }

    /// Its readiness probe passes (`open`) or fails: it gets tasks again,
    /// or no new ones (those in flight go on).
    pub(super) fn gate(&mut self, agent: &str, index: u32, run: u64, open: bool) {
        if let Some(r) = self.rep(agent, index, run) {
            r.gated = !open;
            if open {
                self.dispatch(agent);
            }
        }
    }

    /// A heartbeat probe: Ok if the replica said anything within `within`;
    /// else it is sent a `ping` request and the answer waits for whatever
    /// it says next (the probe's timeout bounds the wait).
    pub(super) fn heard(
        &mut self,
        agent: &str,
        index: u32,
        run: u64,
        within: std::time::Duration,
        answer: tokio::sync::oneshot::Sender<Result<(), String>>,
    ) {
        let Some(r) = self.rep(agent, index, run) else {
            let _ = answer.send(Err("heartbeat: the replica's channel is closed".into()));
            return;
        };
        if now_ms().saturating_sub(r.last_heard) <= within.as_millis() as u64 {
            let _ = answer.send(Ok(()));
            return;
        }
        r.pings.retain(|p| !p.is_closed());
        if r.pings.is_empty() {
            let line = serde_json::to_vec(&json!({
                "jsonrpc": "2.0",
                "id": format!("{PING}{}", r.last_heard),
                "method": "ping",
                "params": {},
            }));
            let mut line = line.unwrap_or_default();
            line.push(b'\n');
            let _ = r.stdin.send(line);
        }
        r.pings.push(answer);
    }

    fn rep(&mut self, agent: &str, index: u32, run: u64) -> Option<&mut Rep> {
        self.agents
            .get_mut(agent)?
            .replicas
            .get_mut(&index)
            .filter(|r| r.run == run)
    }

    fn progress(&mut self, agent: &str, index: u32, params: &Value) {
        let id = params.get("id").and_then(Value::as_str).unwrap_or_default();
        if let Some(e) = self.tasks.get_mut(id)
            && e.t.agent == agent
            && e.t.state == TaskState::Working
            && e.t.replica == Some(index)
        {
            e.t.progress = Some(Progress {
                fraction: params
                    .get("fraction")
                    .and_then(Value::as_f64)
                    .map(|f| f.clamp(0.0, 1.0)),
                message: params
                    .get("message")
                    .and_then(Value::as_str)
                    .map(|m| m.chars().take(500).collect()),
            });
            self.notify(id);
        }
    }

    /// An attempt ended: the task completes, is rejected, fails, or waits
    /// for another attempt, as `core::task::outcome` decides.
    pub(super) fn end_attempt(&mut self, agent: &str, id: &str, ending: Ending) {
        let now = now_ms();
        let Some(q) = self.agents.get_mut(agent) else {
            return;
        };
        let Some(e) = self.tasks.get_mut(id) else {
            return;
        };
        let max = self.limits.max_result;
        let ending = match ending {
            Ending::Result(v) if serde_json::to_string(&v).map_or(0, |s| s.len() as u64) > max => {
                Ending::Error {
                    code: 0,
                    message: format!("its result is larger than max_result ({max} bytes)"),
                    retryable: Some(false),
                }
            }
            other => other,
        };
        e.deadline = None;
        if let Some(started) = e.t.started_at {
            q.stats
                .run
                .observe(now.saturating_sub(started) as f64 / 1000.0);
        }
        let mut final_state = true;
        let mut release = None;
        let shared = self.shared.is_some();
        match decide(ending, e.t.attempts, &q.policy) {
            Decision::Complete(v) => {
                e.t.state = TaskState::Completed;
                e.t.result = Some(v);
                e.t.error = None;
                q.stats.completed += 1;
            }
            Decision::Reject(why) => {
                e.t.state = TaskState::Rejected;
                e.t.error = Some(why);
                q.stats.rejected += 1;
            }
            Decision::Fail(why) => {
                e.t.state = TaskState::Failed;
                e.t.error = Some(why);
                q.stats.failed += 1;
            }
            Decision::Retry { after, reason } => {
                e.t.state = TaskState::Submitted;
                e.t.error = Some(reason);
                e.queued_at = now + after;
                if shared {
                    // Back to the shared queue: any daemon may take it.
                    release = Some(after);
                } else {
                    q.queue.push_back(id.to_string(), e.rank(now + after));
                }
                q.stats.retried += 1;
                final_state = false;
            }
        }
        if final_state {
            e.t.finished_at = Some(now);
            if let (TaskState::Failed | TaskState::Rejected, Some(hook)) =
                (e.t.state, &self.on_failure)
            {
                let why = e.t.error.as_deref().unwrap_or("no reason given");
                let text = format!("task {} {}: {why}", e.t.id, e.t.state);
                hook(agent, &text);
            }
        }
        if let Some(after) = release {
            self.notify(id);
            return self.release(id, after, false);
        }
        self.save(id);
        if final_state {
            self.finished(id.to_string());
        }
    }

    /// Timeouts (the agent is sent `task.cancel`) and tasks whose retry
    /// delay is over.
    pub(super) fn tick(&mut self) {
        let now = now_ms();
        // Only tasks in flight can time out: look at those, not at every
        // kept task.
        let late: Vec<(String, String, Option<u32>)> = self
            .agents
            .values()
            .flat_map(|q| q.replicas.values())
            .flat_map(|r| r.in_flight.iter())
            .filter_map(|id| self.tasks.get(id))
            .filter(|e| e.t.state == TaskState::Working && e.deadline.is_some_and(|d| d <= now))
            .map(|e| (e.t.agent.clone(), e.t.id.clone(), e.t.replica))
            .collect();
        for (agent, id, replica) in late {
            if let Some(r) = replica.and_then(|i| self.agents.get_mut(&agent)?.replicas.get_mut(&i))
            {
                r.in_flight.remove(&id);
                let _ = r.stdin.send(rpc_line("task.cancel", json!({ "id": id })));
            }
            self.end_attempt(&agent, &id, Ending::Timeout);
        }
        let waiting: Vec<String> = self
            .agents
            .iter()
            .filter(|(_, q)| q.queue.next_ready_at(now).is_some_and(|t| t <= now))
            .map(|(a, _)| a.clone())
            .collect();
        for a in waiting {
            self.dispatch(&a);
        }
    }
}
