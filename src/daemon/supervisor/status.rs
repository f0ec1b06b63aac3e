//! The fleet's status as clients see it.

use std::sync::atomic::Ordering;

use super::actor::Actor;
use super::{AUDIT_SHOWN, STATUS_HISTORY, err};
use crate::core::lifecycle::Millis;
use crate::core::sanitize::mask_secret;
use crate::proto::{
    ALERTS_LISTED, AgentStatus, ErrorKind, ErrorReply, FleetStatus, INCIDENTS_LISTED, ReplicaStatus,
};

impl Actor {
    /// The live agent named `name`, or an error that suggests one.
    pub(super) fn find(&self, name: &str) -> Result<usize, ErrorReply> {
        self.agents
            .iter()
            .position(|a| a.spec.name == name && !a.removed)
            .ok_or_else(|| {
                let live: Vec<&str> = self
                    .agents
                    .iter()
                    .filter(|a| !a.removed)
                    .map(|a| a.spec.name.as_str())
                    .collect();
                let hint = crate::core::suggest::did_you_mean(name, &live)
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                err(
                    ErrorKind::UnknownAgent,
                    format!("unknown agent `{name}`{hint}"),
                )
            })
    }

    pub(super) fn status(&self, now: Millis) -> FleetStatus {
        self.status_with(now, STATUS_HISTORY)
    }

    /// The status with up to `history` transitions per replica (fewer in
    /// large fleets: `STATUS_TRANSITIONS` over all replicas).
    pub(super) fn status_with(&self, now: Millis, history: usize) -> FleetStatus {
        let rows: usize = self.agents.iter().map(|a| a.replicas.len()).sum();
        let history = history.min(crate::proto::STATUS_TRANSITIONS / rows.max(1));
        let agents = self
            .agents
            .iter()
            .filter(|a| !a.removed)
            .map(|a| self.agent_status(a, history))
            .collect();
        let (cpu, mem, n) = self.pool.usage();
        let (alerts, alerts_omitted) = self.observe.alerts_listed(ALERTS_LISTED);
        let (incidents, incidents_omitted) = self.observe.incidents(false, INCIDENTS_LISTED);
        FleetStatus {
            daemon_pid: std::process::id(),
            started_at: self.started_at,
            now,
            data_dir: self.layout.data_dir.display().to_string(),
            config: self.cfg.source.as_ref().map(|p| p.display().to_string()),
            agents,
            agents_omitted: 0,
            host: self.host.clone(),
            pool_used: (cpu, mem, n as u32),
            alerts,
            alerts_omitted,
            incidents,
            incidents_omitted,
            notifiers: self.observe.notifier_status(),
            audit: self.observe.audit_recent(AUDIT_SHOWN),
            backup_running: self.backup_running(),
            backup_progress: self.backup_progress(),
            tick_seconds: self.tick_seconds,
            storage: self.health.faults(),
            shared_queue: self.tasks.as_ref().and_then(|t| t.shared_status()),
            history: None,
        }
    }

    fn agent_status(&self, a: &super::actor::Agent, history: usize) -> AgentStatus {
        let res = a.spec.resources;
        AgentStatus {
            name: a.spec.name.clone(),
            desired: a.desired,
            running: a
                .replicas
                .values()
                .filter(|r| r.s.state().is_running())
                .count() as u32,
            enabled: a.enabled,
            command: a.spec.command.clone(),
            context_dir: a.context_dir.display().to_string(),
            log_lines: a.output.stats.lines.load(Ordering::Relaxed),
            env: a
                .spec
                .env
                .iter()
                .map(|(k, v)| (k.clone(), mask_secret(k, v)))
                .collect(),
            restart: a.spec.restart.name().to_string(),
            cpu_request: res.cpu,
            memory_request: res.memory,
            memory_limit: res.memory_limit,
            memory_limit_action: format!("{:?}", res.memory_limit_action).to_lowercase(),
            log_dropped: a.output.stats.dropped.load(Ordering::Relaxed),
            tasks: self.tasks.as_ref().and_then(|t| t.summary(&a.spec.name)),
            autoscale: self.autoscale_status(a),
            tty: a.spec.tty,
            workspace: a
                .spec
                .workspace
                .as_ref()
                .map(|w| (w.git.display().to_string(), w.worktree)),
            replicas_omitted: 0,
            replicas: a
                .replicas
                .values()
                .map(|r| ReplicaStatus {
                    index: r.s.index,
                    state: r.s.state(),
                    since: r.s.lc.since(),
                    pid: r.s.run.as_ref().map(|x| x.pid),
                    started_at: r.s.run.as_ref().map(|x| x.started_at),
                    restarts: r.s.restarts,
                    failures: r.s.failures,
                    last_exit: r.s.last_exit,
                    waiting: r.s.waiting.clone(),
                    error: r.s.error.clone(),
                    cpu_percent: r.cpu_percent,
                    rss_bytes: r.rss_bytes,
                    processes: r.processes,
                    cpu_seconds: r.cpu_seconds,
                    history: {
                        let h = r.s.lc.history();
                        h.iter()
                            .skip(h.len().saturating_sub(history))
                            .cloned()
                            .collect()
                    },
                    health: health_of(a, r),
                    ready: a
                        .spec
                        .health
                        .as_ref()
                        .filter(|h| h.readiness.is_some() && r.s.run.is_some())
                        .map(|_| super::probes::ready(a, r)),
                    attention: a.spec.tty.map(|_| match r.attention {
                        Some(at) if r.s.state().is_running() => at,
                        _ if r.s.state().is_running() => crate::proto::Attention::Working,
                        _ => crate::proto::Attention::Exited,
                    }),
                })
                .collect(),
        }
    }
}

/// A probed replica's health: `failing N/M` (liveness), `unready`,
/// `starting` before each of its probes has a result, else `healthy`
/// (None without a probe or a run).
fn health_of(a: &super::actor::Agent, r: &super::actor::Replica) -> Option<String> {
    let spec = a.spec.health.as_ref()?;
    let run = r.s.run.as_ref()?.id;
    let live = r.probe.filter(|(id, _)| *id == run).map(|(_, n)| n);
    let ready = r.readiness.filter(|(id, _)| *id == run).map(|(_, ok)| ok);
    Some(match (live, ready) {
        (Some(n), _) if n > 0 => format!("failing {n}/{}", spec.failure_threshold),
        (_, Some(false)) => "unready".into(),
        (None, _) if spec.liveness.is_some() => "starting".into(),
        (_, None) if spec.readiness.is_some() => "starting".into(),
        _ => "healthy".into(),
    })
}
