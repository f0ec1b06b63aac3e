//! One description of every request, in the words an operator uses: the
//! console's "sent: …" line, incident timelines and the CLI's messages
//! all read it from here.

use super::Request;
use crate::core::units::fmt_ms;
use std::fmt;

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Status => f.write_str("status"),
            Request::History { agent, replica } => write!(f, "history of {agent}/{replica}"),
            Request::Scale { agent, replicas } => write!(f, "scale {agent} to {replicas}"),
            Request::Start { agent } => write!(f, "start {agent}"),
            Request::Stop { agent } => write!(f, "stop {agent}"),
            Request::Restart {
                agent,
                replica: Some(i),
            } => write!(f, "restart {agent}/{i}"),
            Request::Restart { agent, .. } => write!(f, "restart {agent}"),
            Request::Logs { agent, .. } => write!(f, "logs of {agent}"),
            Request::Reload => f.write_str("reload"),
            Request::Shutdown => f.write_str("shutdown"),
            Request::Subscribe => f.write_str("subscribe"),
            Request::Backup => f.write_str("backup"),
            Request::BackupPrune => f.write_str("backup prune"),
            Request::Alerts => f.write_str("alerts"),
            Request::Ack { pattern } => write!(f, "acknowledge {pattern}"),
            Request::Silence { pattern, for_ms } => {
                write!(f, "silence {pattern} for {}", fmt_ms(*for_ms))
            }
            Request::Incidents { .. } => f.write_str("incidents"),
            Request::Incident { id } => write!(f, "incident #{id}"),
            Request::AlertHistory { .. } => f.write_str("alert history"),
            Request::IncidentOpen { title, level, .. } => {
                write!(f, "open a level {level} incident: {title}")
            }
            Request::IncidentNote { id, .. } => write!(f, "note on incident #{id}"),
            Request::IncidentAdvance { id, .. } => write!(f, "advance incident #{id}"),
            Request::IncidentAssign { id, owner } => write!(f, "assign incident #{id} to {owner}"),
            Request::IncidentResolve { id, .. } => write!(f, "resolve incident #{id}"),
            Request::AuditCheckpoint => f.write_str("audit checkpoint"),
            Request::AuditRotateKey => f.write_str("audit rotate-key"),
            Request::Doctor => f.write_str("doctor"),
            Request::Worktree {
                agent,
                replica,
                remove,
            } => {
                let verb = if *remove { "remove" } else { "show" };
                write!(f, "worktree {verb} {agent}/{replica}")
            }
            Request::Screen { agent, replica, .. } => write!(f, "screen of {agent}/{replica}"),
            // What is typed is not repeated (it may be a secret).
            Request::Send {
                agent,
                replica,
                text,
                enter,
                ..
            } => write!(
                f,
                "send {} bytes{} to {agent}/{replica}",
                text.len(),
                if *enter { " and Enter" } else { "" }
            ),
            Request::Resize {
                agent,
                replica,
                rows,
                cols,
            } => write!(f, "resize {agent}/{replica} to {rows}x{cols}"),
            Request::TaskSubmit(s) => {
                let to = match (&s.agent, &s.skill) {
                    (Some(a), _) => a.clone(),
                    (None, Some(k)) => format!("skill {k}"),
                    (None, None) => "?".into(),
                };
                match s.tasks.len() {
                    1 => write!(f, "submit a task to {to}"),
                    n => write!(f, "submit {n} tasks to {to}"),
                }
            }
            Request::TaskList { .. } => f.write_str("task list"),
            Request::TaskGet { id } => write!(f, "task {id}"),
            Request::TaskCancel { id } => write!(f, "cancel task {id}"),
            Request::TaskRetry { id } => write!(f, "retry task {id}"),
            Request::AutoscaleStatus { .. } => f.write_str("autoscale status"),
            Request::AutoscaleSet { agent, on } => {
                write!(f, "autoscale {} {agent}", if *on { "on" } else { "off" })
            }
            Request::Restore { agent, .. } => match agent {
                Some(a) => write!(f, "restore {a}"),
                None => f.write_str("restore"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_read_as_an_operator_says_them() {
        let scale = Request::Scale {
            agent: "web".into(),
            replicas: 3,
        };
        assert_eq!(scale.to_string(), "scale web to 3");
        let restart = Request::Restart {
            agent: "web".into(),
            replica: Some(2),
        };
        assert_eq!(restart.to_string(), "restart web/2");
        let silence = Request::Silence {
            pattern: "crash-*".into(),
            for_ms: 90 * 60_000,
        };
        assert_eq!(silence.to_string(), "silence crash-* for 1h30m");
    }
}
