//! Where a request goes: most to the supervisor actor; backups, restores
//! and pruning to the recovery workflow; the audit trail's commands to its
//! writer; reads of old incidents and the alert history to `state.db`.
//!
//! The router sits above both the supervisor and the recovery workflow,
//! which talks to the supervisor through its handle only: no module calls
//! back into the one that called it.

use std::path::PathBuf;
use std::sync::Arc;

use crate::daemon::audit::{Audit, Durable};
use crate::daemon::recovery::{self, Settings};
use crate::daemon::supervisor::{Events, Supervisor};
use crate::proto::{ErrorKind, ErrorReply, FleetStatus, Request, Response};

fn err(kind: ErrorKind, message: impl Into<String>) -> ErrorReply {
    ErrorReply {
        kind,
        message: message.into(),
    }
}

/// A cheap, cloneable handle that answers every request.
#[derive(Clone, Debug)]
pub struct Router {
    sup: Supervisor,
    recovery: Option<Arc<Settings>>,
    audit: Option<Audit>,
    /// Read (never written) here for what the actor does not keep in
    /// memory: old incidents, the alert history.
    state_db: PathBuf,
    tasks: Option<crate::daemon::tasks::Tasks>,
}

impl Router {
    /// With the task engine (task requests are refused without one).
    pub fn with_tasks(mut self, tasks: crate::daemon::tasks::Tasks) -> Self {
        self.tasks = Some(tasks);
        self
    }

    pub fn new(
        sup: Supervisor,
        recovery: Option<Arc<Settings>>,
        audit: Option<Audit>,
        state_db: PathBuf,
    ) -> Self {
        Self {
            sup,
            recovery,
            audit,
            state_db,
            tasks: None,
        }
    }

    pub fn supervisor(&self) -> &Supervisor {
        &self.sup
    }

    pub fn events(&self) -> &Events {
        self.sup.events()
    }

    /// Appends to the audit trail (never waits).
    pub fn audit(&self, actor: &str, action: &str, args: serde_json::Value, result: &str) {
        self.sup.audit(actor, action, args, result);
    }

    /// Appends to the audit trail and returns what learns when the record
    /// is on disk (None when this daemon keeps no audit trail).
    pub fn audit_durable(
        &self,
        actor: &str,
        action: &str,
        args: serde_json::Value,
        result: &str,
    ) -> Option<Durable> {
        self.audit
            .as_ref()
            .map(|a| a.record_durable(actor, action, args, result))
    }

    fn audit_trail(&self) -> Result<&Audit, ErrorReply> {
        self.audit
            .as_ref()
            .ok_or_else(|| err(ErrorKind::NotAvailable, "this daemon keeps no audit trail"))
    }

    fn backups(&self) -> Result<&Arc<Settings>, ErrorReply> {
        self.recovery.as_ref().ok_or_else(|| {
            err(
                ErrorKind::NotAvailable,
                "this daemon has no backup settings",
            )
        })
    }

    /// Sends a request on behalf of the daemon itself.
    pub async fn request(&self, req: Request) -> Result<Response, ErrorReply> {
        self.request_as(req, "autonomos".into()).await
    }

    /// The fleet's status.
    pub async fn status(&self) -> Result<FleetStatus, ErrorReply> {
        self.status_as("autonomos".into()).await
    }

    /// The fleet's status, asked on behalf of `who`.
    async fn status_as(&self, who: String) -> Result<FleetStatus, ErrorReply> {
        match self.sup.request_as(Request::Status, who).await? {
            Response::Status { status } => Ok(*status),
            other => Err(err(
                ErrorKind::Protocol,
                format!("unexpected reply {other:?}"),
            )),
        }
    }

    pub async fn snapshot(&self) -> Result<(u64, FleetStatus), ErrorReply> {
        self.sup.snapshot().await
    }

    /// Answers a request on behalf of `who` (an operator, as the server
    /// identified the peer; recorded on incident timelines). `Subscribe`
    /// is the connection's business (see `daemon::server`).
    pub async fn request_as(&self, req: Request, who: String) -> Result<Response, ErrorReply> {
        match req {
            Request::Reload => self.reload(who).await,
            Request::Backup => recovery::backup(&self.sup, self.backups()?, "operator").await,
            Request::BackupPrune => recovery::prune(&self.sup, self.backups()?).await,
            Request::Restore {
                agent,
                snapshot,
                at,
            } => {
                let s = self.backups()?;
                let (agent, snapshot) = (agent.as_deref(), snapshot.as_deref());
                recovery::restore(&self.sup, s, agent, snapshot, at, "operator request").await
            }
            Request::Subscribe => Ok(Response::Subscribed),
            Request::Incident { id } => self.incident(id, who).await,
            Request::AlertHistory { alert, limit } => {
                let path = self.state_db.clone();
                let limit = limit.clamp(1, 100_000);
                tokio::task::spawn_blocking(move || {
                    crate::daemon::store::alert_events(&path, alert.as_deref(), limit)
                })
                .await
                .map_err(|e| err(ErrorKind::Storage, e.to_string()))?
                .map(|events| Response::AlertHistory { events })
                .map_err(|e| err(ErrorKind::Storage, e.to_string()))
            }
            Request::AuditCheckpoint => self
                .audit_trail()?
                .checkpoint()
                .await
                .map(|checkpoint| Response::Checkpoint {
                    checkpoint: Box::new(checkpoint),
                })
                .map_err(|e| err(ErrorKind::Storage, e)),
            Request::AuditRotateKey => self.rotate_key().await,
            Request::Worktree {
                agent,
                replica,
                remove,
            } => self.worktree(agent, replica, remove, who).await,
            Request::Doctor => {
                let status = self.status_as(who).await?;
                let checks = tokio::task::spawn_blocking(move || {
                    let data_dir = PathBuf::from(&status.data_dir);
                    let config = status.config.as_ref().map(PathBuf::from);
                    crate::daemon::doctor::examine(&data_dir, config.as_deref(), Some(&status))
                })
                .await
                .map_err(|e| err(ErrorKind::Storage, e.to_string()))?;
                Ok(Response::Doctor { checks })
            }
            Request::TaskSubmit(_)
            | Request::TaskList { .. }
            | Request::TaskGet { .. }
            | Request::TaskCancel { .. }
            | Request::TaskRetry { .. } => self.task(req, who).await,
            req => self.sup.request_as(req, who).await,
        }
    }

    /// `worktree AGENT/N [--remove]`: git runs off the runtime's threads.
    async fn worktree(
        &self,
        agent: String,
        replica: u32,
        remove: bool,
        who: String,
    ) -> Result<Response, ErrorReply> {
        let status = self.status_as(who).await?;
        let Some(a) = status.agents.iter().find(|a| a.name == agent) else {
            return Err(err(ErrorKind::UnknownAgent, format!("no agent `{agent}`")));
        };
        let Some((repo, true)) = a.workspace.clone() else {
            return Err(err(
                ErrorKind::Invalid,
                format!(
                    "`{agent}` has no worktrees: set workspace = {{ git = \"PATH\", worktree = true }}"
                ),
            ));
        };
        let running = a
            .replicas
            .iter()
            .any(|r| r.index == replica && r.state.is_running());
        if remove && running {
            return Err(err(
                ErrorKind::Invalid,
                format!(
                    "{agent}/{replica} is running: stop it (or scale it away) before removing its worktree"
                ),
            ));
        }
        let ctx = PathBuf::from(&a.context_dir);
        let done = tokio::task::spawn_blocking(move || {
            use crate::daemon::workspace;
            if remove {
                workspace::remove(std::path::Path::new(&repo), &ctx, replica).map(|dir| {
                    Response::Done {
                        message: format!(
                            "removed the worktree {} (its branch stays in {repo})",
                            dir.display()
                        ),
                    }
                })
            } else {
                let dir = workspace::path(&ctx, replica);
                workspace::show(&dir).map(|(branch, changes)| Response::Worktree {
                    path: dir.display().to_string(),
                    branch,
                    changes,
                })
            }
        })
        .await
        .map_err(|e| err(ErrorKind::Storage, e.to_string()))?;
        done.map_err(|e| err(ErrorKind::Invalid, e))
    }

    /// A task request, answered by the task engine; submits, cancels and
    /// retries go on the audit trail with their outcome.
    async fn task(&self, req: Request, who: String) -> Result<Response, ErrorReply> {
        let audited = match &req {
            Request::TaskSubmit(s) => Some((
                "task-submit",
                serde_json::json!({
                    "agent": s.agent, "skill": s.skill, "tasks": s.tasks.len(),
                    "priority": s.priority,
                }),
            )),
            Request::TaskCancel { id } => Some(("task-cancel", serde_json::json!({ "id": id }))),
            Request::TaskRetry { id } => Some(("task-retry", serde_json::json!({ "id": id }))),
            _ => None,
        };
        // The request and its record run to the end even if the caller
        // goes away meanwhile (a gateway client that disconnects): what
        // the engine took is on the trail.
        let this = self.clone();
        let work = tokio::spawn(async move { this.task_done(req, who, audited).await });
        work.await
            .unwrap_or_else(|_| Err(err(ErrorKind::Storage, "the task request was interrupted")))
    }

    async fn task_done(
        &self,
        req: Request,
        who: String,
        audited: Option<(&'static str, serde_json::Value)>,
    ) -> Result<Response, ErrorReply> {
        let answer = self.task_answer(req).await;
        if let Some((action, mut args)) = audited {
            let result = match &answer {
                Ok(Response::Tasks { tasks }) => {
                    // A batch names its first and last task, not each.
                    if let (Some(first), Some(last)) = (tasks.first(), tasks.last()) {
                        args["first"] = first.id.clone().into();
                        args["last"] = last.id.clone().into();
                    }
                    "ok".to_owned()
                }
                Ok(_) => "ok".to_owned(),
                Err(e) => format!("refused: {}", e.message),
            };
            tracing::info!(target: "autonomos::audit", who = %who, action, args = %args, result = %result, "task request");
            // The answer goes out once its record is on disk, as for every
            // operator action.
            if let Some(durable) = self.audit_durable(&who, action, args, &result) {
                let wait = crate::daemon::audit::DURABLE_WAIT;
                if !matches!(tokio::time::timeout(wait, durable).await, Ok(Ok(Ok(_)))) {
                    tracing::error!(target: "autonomos::audit", who = %who, action, "audit record not durable");
                }
            }
        }
        answer
    }

    async fn task_answer(&self, req: Request) -> Result<Response, ErrorReply> {
        use crate::daemon::tasks::Msg;
        let Some(t) = &self.tasks else {
            return Err(err(
                ErrorKind::NotAvailable,
                "this daemon runs no task engine",
            ));
        };
        match req {
            Request::TaskSubmit(s) => t.ask(|a| Msg::Submit(s, a)).await,
            Request::TaskList {
                agent,
                state,
                limit,
            } => {
                let limit = limit.clamp(1, 10_000);
                t.ask(|answer| Msg::List {
                    agent,
                    state,
                    limit,
                    answer,
                })
                .await
            }
            Request::TaskGet { id } => t.ask(|a| Msg::Get(id, a)).await,
            Request::TaskCancel { id } => t.ask(|a| Msg::Cancel(id, a)).await,
            Request::TaskRetry { id } => t.ask(|a| Msg::Retry(id, a)).await,
            _ => Err(err(ErrorKind::Protocol, "not a task request")),
        }
    }

    /// A reload; a changed `[backup]` applies with the fleet's change.
    async fn reload(&self, who: String) -> Result<Response, ErrorReply> {
        let settings = self.recovery.clone();
        let hook = Box::new(move |cfg: &crate::config::Config| {
            settings.is_some_and(|s| s.reconfigure(cfg))
        });
        self.sup.reload(who, hook).await
    }

    /// Open and recent incidents from the actor; older resolved ones from
    /// `state.db`.
    async fn incident(&self, id: u64, who: String) -> Result<Response, ErrorReply> {
        let answer = self.sup.request_as(Request::Incident { id }, who).await;
        if answer.is_ok() {
            return answer;
        }
        let path = self.state_db.clone();
        let stored =
            tokio::task::spawn_blocking(move || crate::daemon::store::incident(&path, id)).await;
        match stored {
            Ok(Ok(Some(i))) => Ok(Response::Incident {
                incident: Box::new(i),
            }),
            _ => answer,
        }
    }

    async fn rotate_key(&self) -> Result<Response, ErrorReply> {
        let r = self
            .audit_trail()?
            .rotate_key()
            .await
            .map_err(|e| err(ErrorKind::Storage, format!("key rotation failed: {e}")))?;
        Ok(Response::Done {
            message: format!(
                "audit signing key rotated at seq {}: old key {}…, new key {}… \
                 (the old key's last checkpoint is signed by the new one; \
                 checkpoints exported before keep verifying)",
                r.checkpoint.seq,
                &r.checkpoint.key[..16.min(r.checkpoint.key.len())],
                &r.new_key[..16.min(r.new_key.len())]
            ),
        })
    }
}
