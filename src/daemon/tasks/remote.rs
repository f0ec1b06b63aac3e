//! The engine's side of a shared queue (`[tasks] store = "postgres://..."`).
//! Submits go to the queue, not to a local one; the engine claims as many
//! of an agent's tasks as its replicas have room for, runs them like its
//! own, and writes their states back (fenced by the claim). A task that
//! waits for another attempt goes back to the queue for any daemon. Reads
//! (`list`, `get`) and changes to tasks this daemon does not hold (`cancel`,
//! `retry`) are answered by the queue.

use tokio::sync::{mpsc, oneshot};

use super::Msg;
use super::engine::{Engine, Entry, now_ms};
use super::shared::{ClaimedRow, Event, Held, NewRow, Op, mono_ms};
use crate::proto::{ErrorKind, ErrorReply, Response, Submit, TaskStatus};

type Answer = oneshot::Sender<Result<Response, ErrorReply>>;

/// How often a task held elsewhere is looked at for its followers.
const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

fn err(kind: ErrorKind, message: impl Into<String>) -> ErrorReply {
    ErrorReply {
        kind,
        message: message.into(),
    }
}

fn no_input(t: TaskStatus) -> TaskStatus {
    TaskStatus {
        input: serde_json::Value::Null,
        result: None,
        ..t
    }
}

impl Engine {
    /// Adds a validated submit to the shared queue; the client hears once
    /// it is stored (or why nothing was).
    pub(super) fn submit_shared(&mut self, agent: String, s: Submit, answer: Answer) {
        let Some(sh) = self.shared.clone() else {
            return;
        };
        let (max_queue, max_attempts, timeout) = match self.agents.get(&agent) {
            Some(q) => (
                q.spec.max_queue,
                q.spec.max_attempts,
                q.spec.task_timeout.map(|d| d.as_millis() as u64),
            ),
            None => {
                let d = crate::config::TaskSpec::default();
                (d.max_queue, d.max_attempts, None)
            }
        };
        let waiting = sh.cache().waiting.get(&agent).map_or(0, |w| w.0);
        if waiting as usize + s.tasks.len() > max_queue {
            let msg = format!(
                "{agent}: {waiting} tasks wait in the shared queue and max_queue = {max_queue}; nothing was queued"
            );
            return drop(answer.send(Err(err(ErrorKind::Limit, msg))));
        }
        let now = now_ms();
        let timeout_ms = s
            .timeout_ms
            .or(timeout)
            .map(|t| t.min(super::engine::MAX_TIMEOUT_MS));
        let rows: Vec<NewRow> = s
            .tasks
            .iter()
            .map(|t| {
                let mut task = super::ops::new_task(0, now, &agent, s.priority, timeout_ms, t);
                // Unique across daemons without asking: 48 random bits.
                task.id = format!(
                    "{now:011x}{:012x}",
                    rand::random::<u64>() & 0xffff_ffff_ffff
                );
                NewRow { task, max_attempts }
            })
            .collect();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let n = rows.len() as u64;
            match sh.ask(|a| Op::Submit(rows, a)).await {
                Ok(tasks) => {
                    let tasks = tasks.into_iter().map(no_input).collect();
                    let _ = answer.send(Ok(Response::Tasks { tasks }));
                    let _ = tx.send(Msg::Submitted { agent, n });
                }
                Err(e) => {
                    let msg = match e.strip_prefix(super::shared::UNCERTAIN) {
                        Some(why) => format!(
                            "the shared task queue failed during the submit ({why}): the tasks may or may not be stored; submit again with the same --key to be sure"
                        ),
                        None => format!("the tasks could not be stored, so none was queued: {e}"),
                    };
                    let _ = answer.send(Err(err(ErrorKind::Storage, msg)));
                }
            }
        });
    }

    /// Claims more of an agent's tasks if its replicas have room (one claim
    /// in flight per agent; asked again when it returns).
    pub(super) fn claim_more(&mut self, agent: &str) {
        let Some(sh) = self.shared.clone() else {
            return;
        };
        let Some(q) = self.agents.get(agent) else {
            return;
        };
        let room: u64 = q
            .replicas
            .values()
            .filter(|r| r.routable())
            .map(|r| u64::from(r.concurrency).saturating_sub(r.in_flight.len() as u64))
            .sum();
        // Tasks here waiting for their context's busy replica do not take
        // the room of the others; but all claimed and not started stay
        // within twice the agent's capacity (the rest is for other daemons).
        let waiting = q
            .queue
            .ids()
            .filter(|id| self.tasks.get(*id).is_none_or(|e| e.t.context_id.is_none()))
            .count();
        let capacity: u64 = q
            .replicas
            .values()
            .filter(|r| r.routable())
            .map(|r| u64::from(r.concurrency))
            .sum();
        let free = room
            .saturating_sub(waiting as u64)
            .min((2 * capacity).saturating_sub(q.queue.len() as u64));
        if free == 0 || !q.configured {
            return;
        }
        if !self.claiming.insert(agent.to_string()) {
            self.claim_again.insert(agent.to_string());
            return;
        }
        let n = free.min(1024) as u32;
        let tx = self.tx.clone();
        let agent = agent.to_string();
        tokio::spawn(async move {
            let rows = sh
                .ask(|answer| Op::Claim {
                    agent: agent.clone(),
                    n,
                    answer,
                })
                .await;
            let _ = tx.send(Msg::Claimed { agent, n, rows });
        });
    }

    /// Claimed tasks join the local queue and are dispatched.
    pub(super) fn claimed(&mut self, agent: &str, n: u32, rows: Result<Vec<ClaimedRow>, String>) {
        self.claiming.remove(agent);
        let again = self.claim_again.remove(agent);
        let rows = match rows {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(agent, error = %e, "claiming tasks failed");
                return;
            }
        };
        let got = rows.len() as u32;
        let now = now_ms();
        let claimed_at = mono_ms();
        let mut unknown = Vec::new();
        for ClaimedRow { seq, task, .. } in rows {
            let id = task.id.clone();
            if let Some(e) = self.tasks.get_mut(&id) {
                // Taken back after a lost lease: held again from now.
                e.claimed_at = claimed_at;
                continue;
            }
            if !self.agents.get(agent).is_some_and(|q| q.configured) {
                unknown.push(id);
                continue;
            }
            let e = Entry {
                queued_at: if task.attempts == 0 {
                    task.submitted_at.min(now)
                } else {
                    now
                },
                dispatches: u64::from(task.attempts),
                t: task,
                seq,
                pending: false,
                deadline: None,
                waiters: Vec::new(),
                parents: Vec::new(),
                claimed_at,
            };
            let rank = e.rank(0);
            self.tasks.insert(id.clone(), e);
            if let Some(q) = self.agents.get_mut(agent) {
                q.queue.push_back(id, rank);
            }
        }
        if !unknown.is_empty()
            && let Some(sh) = &self.shared
        {
            sh.send(Op::Unclaim(unknown));
        }
        if got > 0 || again {
            // dispatch asks for more while there is room.
            self.dispatch(agent);
        }
        let _ = n;
    }

    /// What the actor says: wake-ups and lease renewals.
    pub(super) fn on_shared(&mut self, e: Event) {
        match e {
            Event::Wake(agent) if agent.is_empty() => self.dispatch_all(),
            Event::Wake(agent) => {
                if self.agents.contains_key(&agent) {
                    self.dispatch(&agent);
                }
            }
            Event::Held(h) => self.held(h),
        }
    }

    /// A renewal: tasks claimed before it that it no longer holds were taken
    /// over (this daemon's lease ran out): they stop here. Cancels asked on
    /// other daemons apply.
    fn held(&mut self, h: Held) {
        let held: std::collections::HashSet<&str> = h.ids.iter().map(String::as_str).collect();
        let lost: Vec<String> = self
            .tasks
            .iter()
            .filter(|(id, e)| e.claimed_at < h.since && !held.contains(id.as_str()))
            .map(|(id, _)| id.clone())
            .collect();
        for id in lost {
            tracing::warn!(task = %id, "this daemon's claim on a task ran out; it stops here (another daemon runs it)");
            self.drop_local(&id);
        }
        // Claims the database holds for this daemon that the engine does not
        // know (a claim whose answer was lost): given up once seen in two
        // renewals in a row (a claim's answer may still be on its way).
        let orphans: std::collections::HashSet<String> = h
            .ids
            .iter()
            .filter(|id| !self.tasks.contains_key(*id))
            .cloned()
            .collect();
        let give_up: Vec<String> = orphans.intersection(&self.orphans).cloned().collect();
        self.orphans = orphans;
        if !give_up.is_empty()
            && let Some(sh) = &self.shared
        {
            tracing::warn!(
                tasks = give_up.len(),
                "claims this daemon does not run given back to the shared queue"
            );
            sh.send(Op::Unclaim(give_up));
        }
        for id in h.cancel {
            if self.tasks.contains_key(&id) {
                let _ = self.cancel(&id);
            }
        }
    }

    /// Forgets a task here: out of the queue; a running attempt is sent
    /// `task.cancel`. Its followers move to the queue's view.
    fn drop_local(&mut self, id: &str) {
        let Some(e) = self.tasks.remove(id) else {
            return;
        };
        if let Some(sh) = &self.shared {
            // Fenced: gives up nothing if another daemon holds it now.
            sh.send(Op::Unclaim(vec![id.to_string()]));
        }
        if let Some(q) = self.agents.get_mut(&e.t.agent) {
            q.queue.remove(id);
            if let Some(r) = e.t.replica.and_then(|i| q.replicas.get_mut(&i))
                && r.in_flight.remove(id)
            {
                let line = super::flow::rpc_line("task.cancel", serde_json::json!({ "id": id }));
                let _ = r.stdin.send(line);
            }
        }
        self.hand_over(id, e.parents);
    }

    /// A task that waits for another attempt goes back to the shared queue
    /// (after its retry delay), for any daemon.
    pub(super) fn release(&mut self, id: &str, after: u64, unclaimed: bool) {
        let Some(sh) = self.shared.clone() else {
            return;
        };
        let Some(e) = self.tasks.remove(id) else {
            return;
        };
        if let Some(q) = self.agents.get_mut(&e.t.agent) {
            q.queue.remove(id);
        }
        sh.send(Op::Put {
            task: Box::new(e.t),
            release_after: Some(after),
            unclaimed,
        });
        self.hand_over(id, e.parents);
    }

    /// Followers and submitters of a task that left this daemon follow it
    /// in the shared queue.
    fn hand_over(&mut self, id: &str, parents: Vec<super::delegate::Parent>) {
        let watchers = self.watchers.remove(id).unwrap_or_default();
        if !watchers.is_empty() || !parents.is_empty() {
            self.follow_remote(id.to_string(), watchers, parents);
        }
    }

    /// Follows a task held elsewhere: its followers hear each change; once
    /// final, the replicas that submitted it are told.
    pub(super) fn follow_remote(
        &self,
        id: String,
        mut watchers: Vec<mpsc::Sender<TaskStatus>>,
        parents: Vec<super::delegate::Parent>,
    ) {
        let Some(sh) = self.shared.clone() else {
            return;
        };
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let mut last: Option<TaskStatus> = None;
            loop {
                let id2 = id.clone();
                match sh.ask(|a| Op::Get(id2, a)).await {
                    Ok(Some(t)) => {
                        let t = TaskStatus {
                            input: serde_json::Value::Null,
                            ..t
                        };
                        if last.as_ref() != Some(&t) {
                            watchers.retain(|w| !w.is_closed());
                            for w in &watchers {
                                let _ = w.send(t.clone()).await;
                            }
                            last = Some(t.clone());
                        }
                        if t.state.is_final() {
                            if !parents.is_empty() {
                                let _ = tx.send(Msg::RemoteFinished {
                                    task: Box::new(t),
                                    parents,
                                });
                            }
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(_) => {} // the database is away: look again
                }
                if watchers.iter().all(|w| w.is_closed()) && parents.is_empty() {
                    return;
                }
                tokio::time::sleep(FOLLOW_EVERY).await;
            }
        });
    }

    /// Tells the submitting replicas how a task held elsewhere ended.
    pub(super) fn remote_finished(&mut self, t: TaskStatus, parents: Vec<super::delegate::Parent>) {
        let id = t.id.clone();
        let e = Entry {
            claimed_at: u64::MAX,
            ..super::engine::entry(t, 0)
        };
        self.tasks.insert(id.clone(), e);
        if let Some(e) = self.tasks.get_mut(&id) {
            e.parents = parents;
        }
        self.tell_parent(&id);
        self.tasks.remove(&id);
    }

    /// Reads and changes answered by the shared queue.
    pub(super) fn ask_shared(&mut self, m: Msg) {
        let Some(sh) = self.shared.clone() else {
            return;
        };
        match m {
            Msg::List {
                agent,
                state,
                limit,
                answer,
            } => {
                tokio::spawn(async move {
                    let r = sh
                        .ask(|a| Op::List {
                            agent,
                            state,
                            limit,
                            answer: a,
                        })
                        .await;
                    let _ = answer.send(to_reply(r));
                });
            }
            Msg::Get(id, answer) => {
                tokio::spawn(async move {
                    let r = sh.ask(|a| Op::Get(id.clone(), a)).await;
                    let _ = answer.send(match r {
                        Ok(Some(t)) => Ok(Response::Tasks { tasks: vec![t] }),
                        Ok(None) => Err(super::ops::no_task(&id)),
                        Err(e) => Err(err(ErrorKind::Storage, e)),
                    });
                });
            }
            Msg::Cancel(id, answer) if self.tasks.contains_key(&id) => {
                let _ = answer.send(self.cancel(&id));
            }
            Msg::Cancel(id, answer) => {
                tokio::spawn(async move {
                    let r = sh.ask(|a| Op::Cancel(id, a)).await.map(|(mut t, held)| {
                        if let Some(h) = held {
                            t.error = Some(format!(
                                "cancel requested: the daemon on {h} running it stops it within a third of the lease"
                            ));
                        }
                        vec![t]
                    });
                    let _ = answer.send(to_reply(r));
                });
            }
            Msg::Retry(id, answer) => {
                tokio::spawn(async move {
                    let r = sh.ask(|a| Op::Retry(id, a)).await.map(|t| vec![t]);
                    let _ = answer.send(to_reply(r));
                });
            }
            Msg::Watch(id, to) if !self.tasks.contains_key(&id) => {
                self.follow_remote(id, vec![to], Vec::new());
            }
            other => self.handle_local(other),
        }
    }

    /// Upkeep each second: claims for agents with room (a lost wake-up, a
    /// retry delay that ended), tasks claimed for an agent that has no
    /// replica to run them go back, and this daemon's agents are announced.
    pub(super) fn shared_tick(&mut self) {
        let Some(sh) = self.shared.clone() else {
            return;
        };
        let idle: Vec<String> = self
            .agents
            .values()
            .filter(|q| !q.replicas.values().any(|r| r.routable()))
            .flat_map(|q| q.queue.ids().map(str::to_string).collect::<Vec<_>>())
            .collect();
        for id in idle {
            self.release(&id, 0, true);
        }
        self.dispatch_all();
        let offer = self
            .agents
            .iter()
            .filter(|(_, q)| q.configured)
            .map(|(n, q)| (n.clone(), q.skills()))
            .collect();
        sh.send(Op::Offer(offer));
    }

    /// At shutdown: tasks claimed but not started go back at once.
    pub(super) fn release_unstarted(&mut self) {
        let ids: Vec<String> = self
            .agents
            .values()
            .flat_map(|q| q.queue.ids().map(str::to_string).collect::<Vec<_>>())
            .collect();
        for id in ids {
            self.release(&id, 0, true);
        }
    }
}

fn to_reply(r: Result<Vec<TaskStatus>, String>) -> Result<Response, ErrorReply> {
    match r {
        Ok(tasks) => Ok(Response::Tasks { tasks }),
        Err(e) if e.starts_with("no task") => Err(err(ErrorKind::NotFound, e)),
        Err(e) if e.starts_with("task ") => Err(err(ErrorKind::Invalid, e)),
        Err(e) => Err(err(ErrorKind::Storage, e)),
    }
}
