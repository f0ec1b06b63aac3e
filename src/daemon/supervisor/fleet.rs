//! Requests that change the fleet: scale, start, stop, restart, and a
//! replica's history.

use super::actor::{Actor, AgentChange, Answer, Msg};
use super::err;
use crate::core::supervise::{OPERATOR_RESTART, Observation};
use crate::daemon::store::{AgentRow, Change};
use crate::proto::{ErrorKind, Request, Response, ServerEvent};

impl Actor {
    pub(super) fn scale(&mut self, agent: &str, replicas: u32, answer: Answer, who: &str) {
        self.manual_scale(agent, who);
        let ai = match self.find(agent) {
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

    pub(super) fn start_or_stop(
        &mut self,
        agent: &str,
        change: AgentChange,
        answer: Answer,
        who: &str,
    ) {
        match self.find(agent) {
            Ok(ai) => self.change_agent(ai, change, answer, who),
            Err(e) => drop(answer.send(Err(e))),
        }
    }

    /// A change to an agent whose previous change is still being written
    /// waits for it, so changes apply in order. Hands the request back when
    /// it need not wait.
    pub(super) fn queue_behind_write(
        &mut self,
        req: Request,
        answer: Answer,
        who: &str,
    ) -> Option<(Request, Answer)> {
        if let Request::Scale { agent, .. } | Request::Start { agent } | Request::Stop { agent } =
            &req
            && let Ok(ai) = self.find(agent)
            && self.agents[ai].writing
        {
            self.agents[ai]
                .queued
                .push_back((req, answer, who.to_string()));
            return None;
        }
        Some((req, answer))
    }

    /// Restarts the agent's replicas (or one): a running one is stopped
    /// gracefully and comes back without counting a failure; one in
    /// backoff or failed starts again with its limits re-armed.
    pub(super) fn restart(&mut self, agent: &str, replica: Option<u32>, answer: Answer) {
        let ai = match self.find(agent) {
            Ok(ai) => ai,
            Err(e) => return drop(answer.send(Err(e))),
        };
        let a = &self.agents[ai];
        if let Some(i) = replica
            && !a.replicas.contains_key(&i)
        {
            let _ = answer.send(Err(err(
                ErrorKind::Invalid,
                format!("{agent} has no replica {i} (it has {})", a.desired),
            )));
            return;
        }
        let indexes: Vec<u32> = a
            .replicas
            .keys()
            .copied()
            .filter(|i| replica.is_none_or(|r| r == *i))
            .collect();
        let mut n = 0;
        for index in indexes {
            let why = OPERATOR_RESTART;
            if self.decide(ai, index, Observation::Restart { why }) {
                n += 1;
            }
        }
        tracing::info!(agent = %agent, ?replica, "restart");
        let _ = answer.send(Ok(Response::Done {
            message: format!("restarting {n} replica(s) of {agent}"),
        }));
    }

    /// A replica's full transition history.
    pub(super) fn history(&mut self, agent: &str, replica: u32, answer: Answer) {
        let ai = match self.find(agent) {
            Ok(ai) => ai,
            Err(e) => return drop(answer.send(Err(e))),
        };
        let _ = answer.send(match self.agents[ai].replicas.get(&replica) {
            Some(r) => Ok(Response::History {
                transitions: r.s.lc.history().iter().cloned().collect(),
            }),
            None => Err(err(
                ErrorKind::Invalid,
                format!("{agent} has no replica {replica}"),
            )),
        });
    }

    fn agent_row(&self, ai: usize, desired: u32, enabled: bool) -> Change {
        let a = &self.agents[ai];
        Change::Agent {
            name: a.spec.name.clone(),
            row: AgentRow {
                desired,
                config_replicas: a.spec.replicas,
                enabled,
            },
        }
    }

    /// Writes the agent's whole row as it is now (after a reload), unless a
    /// change is being written, which writes it again once applied. A
    /// failure is logged: the config file holds what a reload set.
    pub(super) fn resave(&mut self, ai: usize) {
        if self.agents[ai].writing {
            self.agents[ai].resave = true;
            return;
        }
        let a = &self.agents[ai];
        let change = self.agent_row(ai, a.desired, a.enabled);
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.write(change).await {
                tracing::error!(error = %e, "cannot record a reloaded agent");
            }
        });
    }

    /// Writes an operator change to `state.db` first; it is applied (and
    /// answered) only once it is durable, so what runs always equals what
    /// a restarted daemon would run. Changes to one agent are written one
    /// at a time, in the order they arrived.
    pub(super) fn change_agent(
        &mut self,
        ai: usize,
        change: AgentChange,
        answer: Answer,
        who: &str,
    ) {
        let who = who.to_string();
        let a = &self.agents[ai];
        let (desired, enabled) = match change {
            AgentChange::Scale(n) => (n, a.enabled),
            AgentChange::Start => (a.desired, true),
            AgentChange::Stop => (a.desired, false),
        };
        let row = self.agent_row(ai, desired, enabled);
        self.agents[ai].writing = true;
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
    pub(super) fn on_persisted(
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
            Ok(()) => Ok(self.apply_change(ai, change)),
        };
        if reply.is_ok() {
            if who != "autonomos" {
                let agent = name.clone();
                let text = match change {
                    AgentChange::Scale(replicas) => Request::Scale { agent, replicas },
                    AgentChange::Start => Request::Start { agent },
                    AgentChange::Stop => Request::Stop { agent },
                }
                .to_string();
                self.observe.on_action(Some(&name), who, &text, now);
            }
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

    /// Applies a durable change to the running fleet.
    fn apply_change(&mut self, ai: usize, change: AgentChange) -> Response {
        let name = self.agents[ai].spec.name.clone();
        match change {
            AgentChange::Scale(n) => {
                let from = std::mem::replace(&mut self.agents[ai].desired, n);
                tracing::info!(agent = %name, from, to = n, "scale");
                let mut message = format!("scaled {name} from {from} to {n}");
                if let Some(waits) = self.scale_waits(ai, n) {
                    message.push_str(&waits);
                }
                Response::Done { message }
            }
            AgentChange::Start => {
                self.agents[ai].enabled = true;
                let indexes: Vec<u32> = self.agents[ai].replicas.keys().copied().collect();
                for index in indexes {
                    self.decide(ai, index, Observation::Start);
                }
                tracing::info!(agent = %name, "start");
                Response::Done {
                    message: format!("started {name}"),
                }
            }
            AgentChange::Stop => {
                let a = &mut self.agents[ai];
                a.enabled = false;
                let running = a
                    .replicas
                    .values()
                    .filter(|r| r.s.run.is_some() || r.s.tree_busy > 0)
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
        }
    }
}

impl Actor {
    /// After a scale to `n`: how many of the replicas still to start the
    /// pool cannot admit now, and why (`; 22 will wait: waiting for CPU:
    /// ...`), or None when they all fit.
    fn scale_waits(&self, ai: usize, n: u32) -> Option<String> {
        let a = &self.agents[ai];
        if !a.enabled {
            return None;
        }
        let need = (0..n)
            .filter(|i| !self.pool.holds(&(a.spec.name.clone(), *i)))
            .count() as u32;
        if need == 0 {
            return None;
        }
        let req = crate::core::pool::Request {
            cpu: a.spec.resources.cpu,
            memory: a.spec.resources.memory,
        };
        let (fit, wait) = self.pool.room_for(req, need);
        let wait = wait?;
        Some(format!(
            "; {fit} can start now, {} will wait: {wait}",
            need - fit
        ))
    }
}
