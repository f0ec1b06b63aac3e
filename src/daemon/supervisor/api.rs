//! Requests the actor answers: one line each, to the handler of its
//! family (`fleet.rs`, `logs.rs`, `alerts.rs`, `incidents.rs`).

use super::actor::{Actor, AgentChange, Answer};
use super::{err, shutting_down};
use crate::proto::{ErrorKind, Request, Response, ServerEvent};

impl Actor {
    pub(super) fn api(&mut self, req: Request, answer: Answer, who: &str) {
        if self.shutting_down
            && !matches!(
                req,
                Request::Status | Request::Logs { .. } | Request::Shutdown
            )
        {
            let _ = answer.send(Err(shutting_down()));
            return;
        }
        let Some((req, answer)) = self.queue_behind_write(req, answer, who) else {
            return;
        };
        self.record_action(&req, who);
        let now = self.clock.now();
        match req {
            Request::Status => {
                let _ = answer.send(Ok(Response::Status {
                    status: Box::new(self.status(now)),
                }));
            }
            Request::Scale { agent, replicas } => self.scale(&agent, replicas, answer, who),
            req @ (Request::Screen { .. } | Request::Send { .. } | Request::Resize { .. }) => {
                let _ = answer.send(self.term_request(req, who));
            }
            Request::AutoscaleStatus { agent } => {
                let agents = (0..self.agents.len())
                    .filter(|&ai| !self.agents[ai].removed)
                    .filter(|&ai| {
                        agent
                            .as_ref()
                            .is_none_or(|n| *n == self.agents[ai].spec.name)
                    })
                    .filter_map(|ai| {
                        let a = &self.agents[ai];
                        Some((a.spec.name.clone(), self.autoscale_status(a)?))
                    })
                    .collect::<Vec<_>>();
                let reply = match (&agent, agents.is_empty()) {
                    (Some(a), true) => Err(err(
                        ErrorKind::Invalid,
                        format!("`{a}` is not an agent with `autoscale`"),
                    )),
                    _ => Ok(Response::Autoscale { agents }),
                };
                let _ = answer.send(reply);
            }
            Request::AutoscaleSet { agent, on } => {
                let reply = self
                    .autoscale_set(&agent, on)
                    .map(|message| Response::Done { message })
                    .map_err(|m| err(ErrorKind::Invalid, m));
                let _ = answer.send(reply);
            }
            Request::Start { agent } => self.start_or_stop(&agent, AgentChange::Start, answer, who),
            Request::Stop { agent } => self.start_or_stop(&agent, AgentChange::Stop, answer, who),
            Request::Restart { agent, replica } => self.restart(&agent, replica, answer),
            Request::History { agent, replica } => self.history(&agent, replica, answer),
            Request::Logs {
                agent,
                lines,
                since,
            } => self.logs(&agent, lines, since, answer),
            Request::Alerts => self.alerts(answer),
            Request::Ack { pattern } => self.ack(&pattern, answer, who),
            Request::Silence { pattern, for_ms } => self.silence(&pattern, for_ms, answer, who),
            Request::Incidents { all } => self.incidents(all, answer),
            Request::Incident { id } => self.incident(id, answer),
            Request::IncidentOpen {
                title,
                level,
                agent,
            } => self.incident_open(title, level, agent, answer, who),
            Request::IncidentNote { id, text } => self.incident_note(id, text, answer, who),
            Request::IncidentAdvance { id, phase } => {
                self.incident_advance(id, phase.as_deref(), answer, who)
            }
            Request::IncidentAssign { id, owner } => self.incident_assign(id, &owner, answer, who),
            Request::IncidentResolve { id, note } => {
                self.incident_resolve(id, note.as_deref(), answer, who)
            }
            Request::Shutdown => {
                if !self.shutting_down {
                    tracing::info!("shutdown: decommissioning the fleet");
                    self.events.emit(ServerEvent::ShuttingDown);
                }
                self.shutting_down = true;
                self.shutdown_waiters.push(answer);
            }
            Request::Reload
            | Request::Subscribe
            | Request::Backup
            | Request::BackupPrune
            | Request::Restore { .. }
            | Request::AlertHistory { .. }
            | Request::AuditCheckpoint
            | Request::AuditRotateKey
            | Request::Doctor
            | Request::Worktree { .. }
            | Request::TaskSubmit(_)
            | Request::TaskList { .. }
            | Request::TaskGet { .. }
            | Request::TaskCancel { .. }
            | Request::TaskRetry { .. } => {
                // Answered by `daemon::router` before reaching the actor.
                let _ = answer.send(Err(err(ErrorKind::Protocol, "not an actor request")));
            }
        }
    }

    /// Operator actions join the timelines of the incidents they concern
    /// (scale, start and stop once they are saved and applied, in
    /// `fleet.rs`).
    fn record_action(&mut self, req: &Request, who: &str) {
        let (agent, text) = match req {
            Request::Restart { agent, .. } => (Some(agent.as_str()), req.to_string()),
            Request::Ack { .. } | Request::Silence { .. } => (None, req.to_string()),
            _ => return,
        };
        if who != "autonomos" && agent.is_none_or(|a| self.find(a).is_ok()) {
            let now = self.clock.now();
            self.observe.on_action(agent, who, &text, now);
        }
    }
}
