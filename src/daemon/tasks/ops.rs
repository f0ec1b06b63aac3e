//! Client requests to the engine: submit (acknowledged once durable),
//! list, get, cancel, retry.

use tokio::sync::oneshot;

use super::Msg;
use super::engine::{Engine, Entry, MAX_TIMEOUT_MS, now_ms};
use super::store::Write;
use crate::core::task::TaskState;
use crate::proto::{ErrorKind, ErrorReply, Response, Submit, TaskStatus};

type Answer = oneshot::Sender<Result<Response, ErrorReply>>;

fn err(kind: ErrorKind, message: impl Into<String>) -> ErrorReply {
    ErrorReply {
        kind,
        message: message.into(),
    }
}

impl Engine {
    /// The agent a submit goes to: the one named, or among those offering
    /// the skill the one with the shortest expected wait (the work ahead
    /// times its mean run time, over its room: `route::expected_wait`).
    fn target(&self, s: &Submit) -> Result<String, ErrorReply> {
        let offered = self.shared.as_ref().map(|sh| sh.cache().offered);
        if let Some(a) = &s.agent {
            let elsewhere = offered.as_ref().is_some_and(|o| o.contains_key(a));
            return if self.agents.get(a).is_some_and(|q| q.configured) || elsewhere {
                Ok(a.clone())
            } else {
                Err(err(
                    ErrorKind::UnknownAgent,
                    format!("`{a}` is not a task agent (give it protocol = \"jsonrpc\")"),
                ))
            };
        }
        let skill = s.skill.as_deref().unwrap_or_default();
        use crate::core::task::route::{Offer, expected_wait};
        let wait = |q: &super::engine::AgentQ| {
            let ready = q.replicas.values().filter(|r| r.routable());
            let offer = Offer {
                queue: (q.queue.len() + q.pending) as u64,
                in_flight: q.replicas.values().map(|r| r.in_flight.len() as u64).sum(),
                capacity: ready.map(|r| u64::from(r.concurrency)).sum(),
                mean_secs: (q.stats.run.count > 0)
                    .then(|| q.stats.run.sum / q.stats.run.count as f64),
            };
            expected_wait(&offer, 1.0)
        };
        self.agents
            .iter()
            .filter(|(_, q)| q.configured && q.offers(skill))
            .min_by(|(a, qa), (b, qb)| wait(qa).total_cmp(&wait(qb)).then_with(|| a.cmp(b)))
            .map(|(n, _)| n.clone())
            .or_else(|| {
                // Only another daemon on the shared queue offers it.
                let mut names: Vec<&String> = offered
                    .iter()
                    .flatten()
                    .filter(|(_, skills)| skills.iter().any(|k| k == skill))
                    .map(|(n, _)| n)
                    .collect();
                names.sort();
                names.first().map(|n| n.to_string())
            })
            .ok_or_else(|| {
                err(
                    ErrorKind::Invalid,
                    format!("no agent offers the skill `{skill}`"),
                )
            })
    }

    pub(super) fn submit(&mut self, s: Submit, answer: Answer) {
        let agent = match self.target(&s) {
            Ok(a) => a,
            Err(e) => return drop(answer.send(Err(e))),
        };
        if s.tasks.is_empty() {
            return drop(answer.send(Err(err(ErrorKind::Invalid, "no tasks to submit"))));
        }
        let max = self.limits.max_input;
        for (i, t) in s.tasks.iter().enumerate() {
            let size = serde_json::to_string(&t.input).map_or(0, |j| j.len() as u64);
            if size > max {
                let msg = format!(
                    "task {} of the batch: its input is {size} bytes, more than max_input ({max} bytes); nothing was queued",
                    i + 1
                );
                return drop(answer.send(Err(err(ErrorKind::Limit, msg))));
            }
        }
        if self.shared.is_some() {
            return self.submit_shared(agent, s, answer);
        }
        let Some(q) = self.agents.get(&agent) else {
            return;
        };
        // Idempotency: a known key names its task; only the others are new.
        let fresh = s
            .tasks
            .iter()
            .filter(|t| t.key.as_deref().and_then(|k| q.queue.by_key(k)).is_none())
            .count();
        if let Err(r) = q.queue.room_for(fresh + q.pending) {
            let msg = format!("{agent}: {r}; nothing was queued");
            return drop(answer.send(Err(err(ErrorKind::Limit, msg))));
        }
        let now = now_ms();
        let timeout_ms = s
            .timeout_ms
            .or(q.spec.task_timeout.map(|d| d.as_millis() as u64))
            .map(|t| t.min(MAX_TIMEOUT_MS));
        let mut ids = Vec::with_capacity(s.tasks.len());
        let mut own = Vec::new();
        let mut rows = Vec::new();
        let mut waits = Vec::new();
        for t in s.tasks {
            let existing = t
                .key
                .as_deref()
                .and_then(|k| self.agents.get(&agent)?.queue.by_key(k))
                .map(str::to_string);
            if let Some(id) = existing {
                // Its write may still be pending: answer only once it is durable.
                if let Some(e) = self.tasks.get_mut(&id).filter(|e| e.pending) {
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    e.waiters.push(tx);
                    waits.push(rx);
                }
                ids.push(id);
                continue;
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            let status = new_task(seq, now, &agent, s.priority, timeout_ms, &t);
            let id = status.id.clone();
            if let (Some(k), Some(q)) = (&t.key, self.agents.get_mut(&agent)) {
                q.queue.remember_key(k.clone(), id.clone());
            }
            rows.push((seq, status.clone()));
            let entry = Entry {
                queued_at: now,
                t: status,
                seq,
                pending: true,
                deadline: None,
                dispatches: 0,
                waiters: Vec::new(),
                parents: Vec::new(),
                claimed_at: 0,
            };
            self.tasks.insert(id.clone(), entry);
            own.push(id.clone());
            ids.push(id);
        }
        if let Some(q) = self.agents.get_mut(&agent) {
            q.pending += own.len();
        }
        // One transaction for the whole submit.
        let ack = (!rows.is_empty()).then(|| self.store.write(Write::PutMany(rows)));
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let mut result = match ack {
                Some(a) => a
                    .await
                    .unwrap_or_else(|_| Err("the task writer stopped".into())),
                None => Ok(()),
            };
            for w in waits {
                let r = w
                    .await
                    .unwrap_or_else(|_| Err("the earlier submit was not stored".into()));
                if result.is_ok() {
                    result = r;
                }
            }
            let _ = tx.send(Msg::Committed {
                own,
                ids,
                result,
                answer,
            });
        });
    }

    /// The submit is durable: the tasks it wrote join the queue, earlier
    /// submits waiting on them hear, and the client gets the tasks it named
    /// (ids and states; inputs are not sent back).
    pub(super) fn committed(
        &mut self,
        own: Vec<String>,
        ids: Vec<String>,
        result: Result<(), String>,
        answer: Answer,
    ) {
        let mut agents = Vec::new();
        for id in &own {
            let Some(e) = self.tasks.get_mut(id) else {
                continue;
            };
            for w in e.waiters.drain(..) {
                let _ = w.send(result.clone());
            }
            if let Some(q) = self.agents.get_mut(&e.t.agent) {
                q.pending = q.pending.saturating_sub(1);
            }
        }
        if let Err(e) = result {
            for id in &own {
                if let Some(e) = self.tasks.remove(id)
                    && let (Some(k), Some(q)) = (&e.t.key, self.agents.get_mut(&e.t.agent))
                {
                    q.queue.forget_key(k);
                }
            }
            let msg = format!("the tasks could not be stored, so none was queued: {e}");
            return drop(answer.send(Err(err(ErrorKind::Storage, msg))));
        }
        for id in &own {
            let Some(e) = self.tasks.get_mut(id) else {
                continue;
            };
            e.pending = false;
            let rank = e.rank(0);
            if let Some(q) = self.agents.get_mut(&e.t.agent) {
                q.queue.push_back(id.clone(), rank);
                q.stats.submitted += 1;
            }
            if !agents.contains(&e.t.agent) {
                agents.push(e.t.agent.clone());
            }
        }
        let out: Vec<TaskStatus> = ids
            .iter()
            .filter_map(|id| self.tasks.get(id))
            .map(|e| TaskStatus {
                input: serde_json::Value::Null,
                result: None,
                ..e.t.clone()
            })
            .collect();
        let _ = answer.send(Ok(Response::Tasks { tasks: out }));
        for a in agents {
            self.dispatch(&a);
            let starved = self
                .agents
                .get(&a)
                .is_some_and(|q| q.replicas.is_empty() && !q.queue.is_empty());
            if let (true, Some(hook)) = (starved, &self.on_starved) {
                hook(&a);
            }
        }
    }

    pub(super) fn list(
        &self,
        agent: Option<&str>,
        state: Option<TaskState>,
        limit: usize,
    ) -> Response {
        let mut v: Vec<&Entry> = self
            .tasks
            .values()
            .filter(|e| !e.pending)
            .filter(|e| agent.is_none_or(|a| e.t.agent == a))
            .filter(|e| state.is_none_or(|s| e.t.state == s))
            .collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.seq));
        Response::Tasks {
            tasks: v
                .into_iter()
                .take(limit.max(1))
                .map(|e| e.t.clone())
                .collect(),
        }
    }

    pub(super) fn get(&self, id: &str) -> Result<Response, ErrorReply> {
        match self.tasks.get(id).filter(|e| !e.pending) {
            Some(e) => Ok(Response::Tasks {
                tasks: vec![e.t.clone()],
            }),
            None => Err(no_task(id)),
        }
    }

    /// Cancels a waiting or running task: it ends now, and a running one's
    /// agent is sent `task.cancel` (an answer it sends anyway is ignored).
    pub(super) fn cancel(&mut self, id: &str) -> Result<Response, ErrorReply> {
        let Some(e) = self.tasks.get(id).filter(|e| !e.pending) else {
            return Err(no_task(id));
        };
        let (agent, state, replica) = (e.t.agent.clone(), e.t.state, e.t.replica);
        if state.is_final() {
            let msg = format!("task {id} is already {state}");
            return Err(err(ErrorKind::Invalid, msg));
        }
        if let Some(q) = self.agents.get_mut(&agent) {
            q.queue.remove(id);
            q.stats.canceled += 1;
            if state == TaskState::Working
                && let Some(r) = replica.and_then(|i| q.replicas.get_mut(&i))
                && r.in_flight.remove(id)
            {
                let _ = r.stdin.send(super::flow::rpc_line(
                    "task.cancel",
                    serde_json::json!({ "id": id }),
                ));
            }
        }
        let now = now_ms();
        if let Some(e) = self.tasks.get_mut(id) {
            e.t.state = TaskState::Canceled;
            e.t.finished_at = Some(now);
            e.t.error = Some("canceled by an operator".into());
            e.deadline = None;
        }
        self.save(id);
        let out = self.get(id);
        self.finished(id.to_string());
        self.dispatch(&agent);
        out
    }

    /// An operator runs a failed, rejected or canceled task again.
    pub(super) fn retry(&mut self, id: &str) -> Result<Response, ErrorReply> {
        let Some(e) = self.tasks.get_mut(id).filter(|e| !e.pending) else {
            return Err(no_task(id));
        };
        if !e.t.state.may_become(TaskState::Submitted) || e.t.state == TaskState::Working {
            let msg = format!(
                "task {id} is {}: only a failed, rejected or canceled task is retried",
                e.t.state
            );
            return Err(err(ErrorKind::Invalid, msg));
        }
        e.t.state = TaskState::Submitted;
        e.t.attempts = 0;
        e.t.error = None;
        e.t.result = None;
        e.t.finished_at = None;
        e.queued_at = crate::clock::now_ms();
        let rank = e.rank(0);
        let agent = e.t.agent.clone();
        if let Some(q) = self.agents.get_mut(&agent) {
            q.queue.push_back(id.to_string(), rank);
        }
        self.finished.retain(|f| f != id);
        self.save(id);
        self.dispatch(&agent);
        self.get(id)
    }
}

/// A new task's status. The id is the time and the sequence: unique across
/// restarts, since the sequence only grows.
pub(super) fn new_task(
    seq: u64,
    now: u64,
    agent: &str,
    priority: i32,
    timeout_ms: Option<u64>,
    t: &crate::proto::NewTask,
) -> TaskStatus {
    TaskStatus {
        id: format!("{:011x}{:05x}", now, seq & 0xf_ffff),
        agent: agent.to_string(),
        state: TaskState::Submitted,
        attempts: 0,
        replica: None,
        priority,
        key: t.key.clone(),
        context_id: t.context_id.clone(),
        input: t.input.clone(),
        result: None,
        error: None,
        progress: None,
        submitted_at: now,
        started_at: None,
        finished_at: None,
        timeout_ms,
        host: None,
    }
}

pub(super) fn no_task(id: &str) -> ErrorReply {
    err(
        ErrorKind::NotFound,
        format!("no task `{id}` (finished tasks are kept up to `[tasks] keep`, the newest)"),
    )
}
