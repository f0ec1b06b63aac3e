//! A cheap, cloneable handle to the actor.

use std::path::PathBuf;

use tokio::sync::{mpsc, oneshot};

use super::actor::Msg;
use super::events::Events;
use super::{STATUS_BUDGET, err, shutting_down};
use crate::daemon::collector;

use crate::proto::{ErrorKind, ErrorReply, FleetStatus, Request, Response};

/// Sends requests to the actor and waits for their answers.
#[derive(Clone, Debug)]
pub struct Supervisor {
    tx: mpsc::Sender<Msg>,
    events: Events,
    config_source: Option<PathBuf>,
    audit: Option<crate::daemon::audit::Audit>,
}

impl Supervisor {
    pub(super) fn new(
        tx: mpsc::Sender<Msg>,
        events: Events,
        config_source: Option<PathBuf>,
        audit: Option<crate::daemon::audit::Audit>,
    ) -> Self {
        Self {
            tx,
            events,
            config_source,
            audit,
        }
    }

    /// Records a recovery step on the agent's open incidents.
    pub async fn note_recovery(&self, agent: &str, text: &str) -> Result<(), ErrorReply> {
        self.tx
            .send(Msg::Recovery(agent.to_string(), text.to_string()))
            .await
            .map_err(|_| shutting_down())
    }

    /// A failed task, for the timelines of the agent's open incidents
    /// (never waits; dropped if the actor's inbox is full).
    /// Tasks wait for an agent with no replica: the autoscaler decides
    /// now rather than at the next tick (never waits).
    pub fn wake(&self, agent: &str) {
        let _ = self.tx.try_send(Msg::Wake(agent.to_string()));
    }

    pub fn note_task_failed(&self, agent: &str, text: &str) {
        let _ = self
            .tx
            .try_send(Msg::TaskFailed(agent.to_string(), text.to_string()));
    }

    /// Appends to the audit trail (never waits).
    pub fn audit(&self, actor: &str, action: &str, args: serde_json::Value, result: &str) {
        if let Some(a) = &self.audit {
            a.record(actor, action, args, result);
        }
    }

    /// A request the actor answers (status, scale, start, stop, …), sent
    /// straight to it, on behalf of `who` (an operator, as the server
    /// identified the peer; recorded on incident timelines).
    pub async fn actor_request(&self, req: Request, who: String) -> Result<Response, ErrorReply> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Api(req, tx, who))
            .await
            .map_err(|_| shutting_down())?;
        rx.await.map_err(|_| shutting_down())?
    }

    /// Like [`Supervisor::actor_request`], with a status trimmed (off the
    /// actor) so that it fits one frame however large the fleet.
    pub async fn request_as(&self, req: Request, who: String) -> Result<Response, ErrorReply> {
        let mut answer = self.actor_request(req, who).await;
        if let Ok(Response::Status { status }) = &mut answer
            && status.fit(STATUS_BUDGET)
        {
            tracing::debug!("status trimmed to fit one frame");
        }
        answer
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

    /// Re-reads the config file and applies it, with `hook` for what lives
    /// beside the fleet; a rejected config changes nothing.
    pub async fn reload(
        &self,
        who: String,
        hook: super::ReloadHook,
    ) -> Result<Response, ErrorReply> {
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
            .send(Msg::Reload(Box::new(cfg), tx, who, hook))
            .await
            .map_err(|_| shutting_down())?;
        rx.await.map_err(|_| shutting_down())?
    }

    /// How the collector thread asks for targets and delivers samples.
    pub(super) fn collector_link(&self) -> collector::Link {
        let tx = self.tx.clone();
        let tx2 = self.tx.clone();
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
}
