//! What the daemon tells its clients: the fleet status types shared by the
//! daemon, the CLI and (later) the console.
//!
//! Plain serde data; no IO. New fields are `#[serde(default)]` so older
//! clients keep reading newer daemons.

use serde::{Deserialize, Serialize};

use super::scaling::{AutoscaleStatus, TaskSummary};

use crate::core::lifecycle::{Millis, State, Transition};

pub use crate::core::supervise::ExitInfo;

/// One replica as the daemon sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaStatus {
    pub index: u32,
    pub state: State,
    /// When `state` was entered.
    pub since: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// When the current process started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Millis>,
    /// Every restart: crashes, operator restarts, reloads.
    pub restarts: u64,
    /// Crashes, failed starts and limit kills (what a crash loop counts).
    #[serde(default)]
    pub failures: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit: Option<ExitInfo>,
    /// Why the replica is not progressing (waiting for the pool, a dependency, backoff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    /// Last spawn error, with the OS error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// CPU use of the whole process tree, percent of one core.
    pub cpu_percent: f64,
    /// RSS of the whole process tree, bytes.
    pub rss_bytes: u64,
    /// Processes in the tree.
    pub processes: u32,
    /// CPU time of the slot's process trees since the daemon started, seconds.
    #[serde(default)]
    pub cpu_seconds: f64,
    /// Recent transitions, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<Transition>,
    /// With probes: `starting`, `healthy`, `unready` or `failing N/M`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// With a readiness probe: whether it passes for this run (an unready
    /// replica runs but gets no tasks and does not make dependents ready).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    /// For a `tty` agent: `working`, `waiting-input`, `idle` or `exited`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<super::term::Attention>,
}

/// One agent and its replicas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub name: String,
    pub desired: u32,
    pub running: u32,
    /// False when an operator stopped the agent.
    pub enabled: bool,
    pub command: Vec<String>,
    pub context_dir: String,
    pub replicas: Vec<ReplicaStatus>,
    /// Replica rows left out of this status to keep it within one frame
    /// (the agent's counts above still cover them).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub replicas_omitted: u32,
    pub log_lines: u64,
    pub log_dropped: u64,
    /// Configured environment, values of secret-looking names masked.
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// `always`, `on-failure` or `never`.
    #[serde(default)]
    pub restart: String,
    /// Requests per replica: cores and bytes.
    #[serde(default)]
    pub cpu_request: f64,
    #[serde(default)]
    pub memory_request: u64,
    /// Memory limit of each replica's tree, bytes, and what happens past it.
    #[serde(default)]
    pub memory_limit: Option<u64>,
    #[serde(default)]
    pub memory_limit_action: String,
    /// For task agents (`protocol = "jsonrpc"`): the queue and how it goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<TaskSummary>,
    /// The git repository its replicas work in (`workspace`), and whether
    /// each has its own worktree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<(String, bool)>,
    /// Its terminal's (rows, cols), for `tty = true` agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tty: Option<(u16, u16)>,
    /// The autoscaler's view, for agents with `autoscale`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscale: Option<AutoscaleStatus>,
}

/// An alert as clients see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertStatus {
    /// `rule` or `rule/agent`.
    pub id: String,
    /// The rule's name.
    pub name: String,
    /// `critical`, `major` or `minor`.
    pub severity: String,
    /// `pending`, `firing` or `resolved`.
    pub state: String,
    pub summary: String,
    /// When `state` was entered.
    pub since: Millis,
    #[serde(default)]
    pub acknowledged: bool,
    #[serde(default)]
    pub acknowledged_by: Option<String>,
    #[serde(default)]
    pub agent: Option<String>,
    /// The current value (at the last evaluation).
    #[serde(default)]
    pub value: Option<f64>,
    /// The value when it started firing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fired_value: Option<f64>,
    /// Notifications muted until then.
    #[serde(default)]
    pub silenced_until: Option<Millis>,
    #[serde(default)]
    pub flapping: bool,
}

/// An active silence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SilenceStatus {
    pub pattern: String,
    pub until: Millis,
    pub by: String,
}

/// A configured alert rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleStatus {
    pub name: String,
    pub expr: String,
    pub for_ms: u64,
    pub severity: String,
    pub agents: Vec<String>,
}

/// A notifier and how it has fared.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NotifierStatus {
    pub name: String,
    /// `exec` or `webhook`.
    pub kind: String,
    pub sent: u64,
    pub failed: u64,
    /// Dropped by the rate limit or a full queue.
    pub dropped: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<Millis>,
}

/// One alert state change from the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    pub at: Millis,
    pub id: String,
    pub severity: String,
    pub state: String,
    pub summary: String,
}

/// What a running backup or restore is doing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BackupProgress {
    /// The job: `backup to /srv/backups (1/2)`, `restore from ...`.
    pub what: String,
    /// The current step as the backup engine names it (`backing up`,
    /// `restoring file contents`, `reading index`); empty between steps.
    pub step: String,
    /// Progress of the step: bytes when `bytes`, else items.
    pub done: u64,
    /// 0 while unknown.
    pub total: u64,
    pub bytes: bool,
}

impl BackupProgress {
    /// `backup to /srv/b · backing up 42% (21.0 MiB of 50.0 MiB)`.
    pub fn line(&self) -> String {
        let mut out = self.what.clone();
        if !self.step.is_empty() {
            out.push_str(" · ");
            out.push_str(&self.step);
        }
        let n = |v: u64| {
            if self.bytes {
                crate::core::units::format_size(v)
            } else {
                v.to_string()
            }
        };
        if self.total > 0 {
            let pct = (self.done.min(self.total) as f64 / self.total as f64 * 100.0).floor();
            out.push_str(&format!(
                " {pct:.0}% ({} of {})",
                n(self.done),
                n(self.total)
            ));
        } else if self.done > 0 {
            out.push_str(&format!(" ({})", n(self.done)));
        }
        out
    }
}

/// `alerts list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertsReport {
    pub alerts: Vec<AlertStatus>,
    /// Live alerts beyond the listed ones (the most pressing are listed).
    #[serde(default)]
    pub omitted: usize,
    pub silences: Vec<SilenceStatus>,
    pub rules: Vec<RuleStatus>,
    pub notifiers: Vec<NotifierStatus>,
}

/// An incident as lists show it (`incidents show` returns the whole
/// [`crate::core::incident::Incident`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentStatus {
    pub id: u64,
    pub title: String,
    /// 1 critical, 2 major, 3 minor.
    pub level: u8,
    pub status: String,
    pub phase: String,
    pub opened_at: Millis,
    #[serde(default)]
    pub resolved_at: Option<Millis>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default)]
    pub alert: Option<String>,
    /// The newest timeline entries, oldest first (for the console's detail).
    #[serde(default)]
    pub recent: Vec<crate::core::incident::Entry>,
    #[serde(default)]
    pub entries: u64,
}

/// Metric history carried in the attach snapshot so graphs show the past
/// at once. Series are regular: value `i` is at `end - (len - 1 - i) * step_ms`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricHistory {
    pub step_ms: u64,
    pub end: Millis,
    pub host_cpu: Vec<f32>,
    /// Percent of memory in use.
    pub host_mem: Vec<f32>,
    pub net_rx: Vec<f32>,
    pub net_tx: Vec<f32>,
    pub cores: Vec<Vec<f32>>,
    pub agents: Vec<AgentHistory>,
    /// 24 hours of host CPU and memory %, one point per `day_step_ms`.
    pub day_step_ms: u64,
    pub day_end: Millis,
    pub day_cpu: Vec<f32>,
    pub day_mem: Vec<f32>,
    /// When each day point was taken (the view may have gaps: the daemon
    /// was down); empty from older daemons, whose points are contiguous.
    #[serde(default)]
    pub day_times: Vec<Millis>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentHistory {
    pub name: String,
    /// CPU %, summed over replicas.
    pub cpu: Vec<f32>,
    /// RSS bytes, summed over replicas.
    pub mem: Vec<f32>,
}

/// Host-wide figures from the collector.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostStatus {
    pub cpu_percent: f64,
    pub per_core: Vec<f64>,
    pub memory_used: u64,
    pub memory_total: u64,
    /// Bytes per second received and sent, all interfaces but loopback.
    #[serde(default)]
    pub net_rx_bps: f64,
    #[serde(default)]
    pub net_tx_bps: f64,
    #[serde(default)]
    pub swap_used: u64,
    #[serde(default)]
    pub swap_total: u64,
    /// 1, 5 and 15 minute load averages.
    #[serde(default)]
    pub load: [f64; 3],
    /// Bytes received and sent since the collector started.
    #[serde(default)]
    pub net_rx_total: u64,
    #[serde(default)]
    pub net_tx_total: u64,
    /// How long the collector's last tick took, seconds.
    #[serde(default)]
    pub collect_seconds: f64,
}

/// The whole fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetStatus {
    pub daemon_pid: u32,
    pub started_at: Millis,
    pub now: Millis,
    pub data_dir: String,
    pub config: Option<String>,
    pub agents: Vec<AgentStatus>,
    /// Agents left out of this status to keep it within one frame (the
    /// largest configs only; `status` of fewer agents shows them).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub agents_omitted: usize,
    pub host: HostStatus,
    /// (cpu used, memory used, replicas admitted) of the resource pool.
    pub pool_used: (f64, u64, u32),
    /// The most pressing alerts (firing first, worst, newest), at most
    /// [`ALERTS_LISTED`].
    #[serde(default)]
    pub alerts: Vec<AlertStatus>,
    /// Live alerts not listed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub alerts_omitted: usize,
    /// Open incidents (newest first), then the latest resolved ones, at
    /// most [`INCIDENTS_LISTED`].
    #[serde(default)]
    pub incidents: Vec<IncidentStatus>,
    /// Incidents not listed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub incidents_omitted: usize,
    #[serde(default)]
    pub notifiers: Vec<NotifierStatus>,
    /// The newest audit records (oldest first).
    #[serde(default)]
    pub audit: Vec<crate::core::audit::Record>,
    /// A backup or restore is running.
    #[serde(default)]
    pub backup_running: bool,
    /// What it is doing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_progress: Option<BackupProgress>,
    /// How long the supervisor's last observability tick took (series,
    /// rule evaluation, the /metrics snapshot), seconds.
    #[serde(default)]
    pub tick_seconds: f64,
    /// Parts of the data dir whose writes fail now (empty when healthy).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub storage: Vec<StorageFault>,
    /// The shared task queue (`[tasks] store`), when one is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_queue: Option<SharedQueueStatus>,
    /// Only in attach snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Box<MetricHistory>>,
}

/// The shared task queue as this daemon sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedQueueStatus {
    /// host:port/database (never credentials).
    pub store: String,
    /// This daemon's name on the tasks it runs.
    pub host: String,
    pub connected: bool,
    /// Why not, when not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A part of the data dir whose writes fail: what is not yet on disk waits
/// (audit records are kept and retried; state changes were refused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageFault {
    /// `state` or `audit`.
    pub part: String,
    /// What it is, in words ("state database (state.db)").
    pub what: String,
    /// The last error.
    pub error: String,
    /// Failing since (ms since the epoch).
    pub since: Millis,
    /// Failed writes since the daemon started.
    pub errors: u64,
}

fn is_zero<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// Alerts listed in a status and in alert events.
pub const ALERTS_LISTED: usize = 200;
/// Incidents listed in a status and in alert events.
pub const INCIDENTS_LISTED: usize = 200;
/// Transitions carried over all replicas of a status: each replica gets
/// `min(16, STATUS_TRANSITIONS / replicas)` of its newest.
pub const STATUS_TRANSITIONS: usize = 4096;

/// Counts the bytes of a value's JSON without building it.
pub fn json_len<T: Serialize>(v: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

impl FleetStatus {
    /// An upper bound of the status's JSON size that encodes only its short,
    /// capped lists: every string counted six times (the widest JSON
    /// escape), every number and field name at its widest.
    pub fn size_bound(&self) -> usize {
        const AGENT: usize = 700;
        const ROW: usize = 700;
        const TRANSITION: usize = 160;
        let s6 = |t: &str| t.len() * 6 + 2;
        let mut n = 4096
            + json_len(&self.alerts)
            + json_len(&self.incidents)
            + json_len(&self.notifiers)
            + json_len(&self.audit)
            + json_len(&self.host)
            + json_len(&self.storage)
            + json_len(&self.backup_progress)
            + json_len(&self.history)
            + s6(&self.data_dir)
            + self.config.as_deref().map_or(0, s6);
        for a in &self.agents {
            n += AGENT
                + s6(&a.name)
                + s6(&a.context_dir)
                + s6(&a.restart)
                + s6(&a.memory_limit_action)
                + a.command.iter().map(|c| s6(c) + 1).sum::<usize>()
                + a.env.iter().map(|(k, v)| s6(k) + s6(v) + 4).sum::<usize>();
            for r in &a.replicas {
                n += ROW
                    + r.waiting.as_deref().map_or(0, s6)
                    + r.error.as_deref().map_or(0, s6)
                    + r.history
                        .iter()
                        .map(|t| TRANSITION + s6(&t.reason))
                        .sum::<usize>();
            }
        }
        n
    }

    /// Keeps the status within `budget` bytes of JSON, whatever the fleet:
    /// first without transition histories, then with fewer replica rows
    /// per agent (the highest indexes go first; each agent says how many
    /// it left out), then (thousands of agents) without the agents'
    /// commands and environments, and last with fewer agents (counted).
    /// Returns whether anything was cut.
    pub fn fit(&mut self, budget: usize) -> bool {
        // Most statuses are far below the budget: prove it without encoding.
        if self.size_bound() <= budget {
            return false;
        }
        let mut size = json_len(self);
        if size <= budget {
            return false;
        }
        for a in &mut self.agents {
            for r in &mut a.replicas {
                r.history.clear();
            }
        }
        size = json_len(self);
        // Each round keeps a share of all rows: one per agent first (while
        // that fits), the rest spread in proportion to each agent's rows.
        for _ in 0..8 {
            if size <= budget {
                break;
            }
            let rows: usize = self.agents.iter().map(|a| a.replicas.len()).sum();
            if rows == 0 {
                break;
            }
            let target = (rows as f64 * budget as f64 / size as f64 * 0.9) as usize;
            let with_rows = self
                .agents
                .iter()
                .filter(|a| !a.replicas.is_empty())
                .count();
            let mut firsts = target.min(with_rows);
            let extra = target.saturating_sub(with_rows);
            let share = extra as f64 / (rows - with_rows).max(1) as f64;
            for a in &mut self.agents {
                let len = a.replicas.len();
                if len == 0 {
                    continue;
                }
                let first = usize::from(firsts > 0);
                firsts = firsts.saturating_sub(1);
                let keep = (first + ((len - 1) as f64 * share) as usize).min(len);
                if keep < len {
                    a.replicas_omitted += (len - keep) as u32;
                    a.replicas.truncate(keep);
                }
            }
            size = json_len(self);
        }
        // Thousands of agents: their detail (command, env), then agents.
        if size > budget {
            for a in &mut self.agents {
                a.command.clear();
                a.env.clear();
            }
            size = json_len(self);
        }
        if size > budget && !self.agents.is_empty() {
            let keep = (self.agents.len() as f64 * budget as f64 / size as f64 * 0.9) as usize;
            self.agents_omitted += self.agents.len() - keep;
            self.agents.truncate(keep);
        }
        true
    }
}

/// The state that best describes an agent: the most pressing of its replicas'.
pub fn agent_state(a: &AgentStatus) -> String {
    if !a.enabled {
        return "stopped".into();
    }
    let rank = |s: State| match s {
        State::Failed => 0,
        State::Backoff => 1,
        State::Adaptation => 2,
        State::Decommissioning => 3,
        State::TaskCompletion => 4,
        State::ResourceAllocation => 5,
        State::Initialization => 6,
        State::ContextPreparation => 7,
        State::PerformanceMonitoring => 8,
        State::ActiveOperation => 9,
        State::Stopped => 10,
    };
    match a.replicas.iter().map(|r| r.state).min_by_key(|s| rank(*s)) {
        Some(s) => s.label().to_string(),
        None => "scaled to 0".into(),
    }
}

/// Parses `AGENT` or `AGENT/N`.
pub fn parse_target(s: &str) -> Result<(String, Option<u32>), String> {
    match s.split_once('/') {
        None => Ok((s.to_string(), None)),
        Some((a, n)) => n
            .parse::<u32>()
            .map(|n| (a.to_string(), Some(n)))
            .map_err(|_| format!("`{s}`: a replica is written AGENT/N, e.g. researcher/2")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(parse_target("a"), Ok(("a".into(), None)));
        assert_eq!(parse_target("a/2"), Ok(("a".into(), Some(2))));
        assert!(parse_target("a/x").is_err());
    }

    fn replica(index: u32, history: usize) -> ReplicaStatus {
        let t = Transition {
            from: State::Backoff,
            to: State::Initialization,
            at: 1_765_000_000_000,
            reason: "backoff elapsed after a long wait, with a long reason".into(),
        };
        ReplicaStatus {
            index,
            state: State::Backoff,
            since: 1_765_000_000_000,
            pid: Some(123_456),
            started_at: Some(1_765_000_000_000),
            restarts: 123_456,
            failures: 123_456,
            last_exit: Some(ExitInfo {
                code: Some(3),
                signal: None,
                at: 1_765_000_000_000,
                ran_ms: 12,
            }),
            waiting: Some("retry in 1.6s (failure 12345)".into()),
            error: Some("spawn failed: command not found: `x` (searched PATH=/usr/bin)".into()),
            cpu_percent: 12.5,
            rss_bytes: 123_456_789,
            processes: 3,
            cpu_seconds: 1234.5,
            history: vec![t; history],
            health: None,
            ready: None,
            attention: None,
        }
    }

    fn fleet(agents: usize, replicas: u32, history: usize) -> FleetStatus {
        FleetStatus {
            daemon_pid: 1,
            started_at: 0,
            now: 0,
            data_dir: "/var/lib/autonomos".into(),
            config: None,
            agents_omitted: 0,
            agents: (0..agents)
                .map(|i| AgentStatus {
                    name: format!("agent-{i:05}"),
                    desired: replicas,
                    running: 0,
                    enabled: true,
                    command: vec!["sh".into(), "-c".into(), "exit 3".into()],
                    context_dir: format!("/var/lib/autonomos/contexts/agent-{i:05}"),
                    replicas: (0..replicas).map(|r| replica(r, history)).collect(),
                    replicas_omitted: 0,
                    log_lines: 1,
                    log_dropped: 0,
                    env: vec![("MODEL".into(), "llama3".into())],
                    restart: "always".into(),
                    cpu_request: 0.0,
                    memory_request: 0,
                    memory_limit: None,
                    memory_limit_action: "restart".into(),
                    tasks: None,
                    autoscale: None,
                    tty: None,
                    workspace: None,
                })
                .collect(),
            host: HostStatus::default(),
            pool_used: (0.0, 0, 0),
            alerts: vec![],
            alerts_omitted: 0,
            incidents: vec![],
            incidents_omitted: 0,
            notifiers: vec![],
            audit: vec![],
            backup_running: false,
            backup_progress: None,
            tick_seconds: 0.0,
            storage: vec![],
            shared_queue: None,
            history: None,
        }
    }

    #[test]
    fn the_size_bound_is_never_below_the_encoded_size() {
        for (agents, replicas, history) in [(1, 1, 0), (10, 3, 16), (50, 20, 2), (3, 1024, 1)] {
            let mut s = fleet(agents, replicas, history);
            // Strings that JSON escapes: the bound must still hold.
            s.agents[0]
                .env
                .push(("K".into(), "\u{1}\"\\\n".repeat(100)));
            s.agents[0].replicas[0].error = Some("\u{7}".repeat(500));
            assert!(s.size_bound() >= json_len(&s), "{agents}×{replicas}");
        }
    }

    #[test]
    fn a_small_fleet_is_left_whole() {
        let mut s = fleet(10, 3, 16);
        let before = s.clone();
        assert!(!s.fit(3 << 20));
        assert_eq!(s, before);
    }

    #[test]
    fn the_largest_fleets_fit_one_frame_and_say_what_they_left_out() {
        // Ten agents at the most replicas each, and ten thousand agents of
        // one replica: histories go first, then replica rows, counted.
        for (agents, replicas) in [(10, 1024), (10_000, 1)] {
            let mut s = fleet(agents, replicas, 16);
            let budget = 3 << 20;
            assert!(json_len(&s) > budget);
            assert!(s.fit(budget));
            let size = json_len(&s);
            assert!(size <= budget, "{agents}×{replicas}: {size} bytes");
            assert!(
                size > budget / 2,
                "{agents}×{replicas}: cut far too much ({size} bytes)"
            );
            let kept: usize = s.agents.iter().map(|a| a.replicas.len()).sum();
            assert!(
                kept * 4 > (agents * replicas as usize) / 10,
                "{agents}×{replicas}: only {kept} rows kept"
            );
            let omitted: u32 = s.agents.iter().map(|a| a.replicas_omitted).sum();
            let in_omitted_agents = s.agents_omitted * replicas as usize;
            assert_eq!(
                kept + omitted as usize + in_omitted_agents,
                agents * replicas as usize
            );
            let agents_listed = s.agents.len() + s.agents_omitted;
            assert_eq!(agents_listed, agents);
            assert_eq!(json_len(&s), serde_json::to_vec(&s).map_or(0, |v| v.len()));
        }
    }

    #[test]
    fn backup_progress_reads_as_one_line() {
        let mut p = BackupProgress {
            what: "backup to /b (1/2)".into(),
            step: "backing up".into(),
            done: 3 << 20,
            total: 12 << 20,
            bytes: true,
        };
        assert_eq!(
            p.line(),
            "backup to /b (1/2) · backing up 25% (3MiB of 12MiB)"
        );
        // Counts beyond the total (a total estimated low) stay at 100 %.
        p.done = 13 << 20;
        assert!(p.line().contains(" 100% "), "{}", p.line());
        // Items, unknown total, no step yet.
        let q = BackupProgress {
            what: "restore from /b".into(),
            step: "reading index".into(),
            done: 7,
            total: 0,
            bytes: false,
        };
        assert_eq!(q.line(), "restore from /b · reading index (7)");
        let idle_step = BackupProgress {
            what: "backup: copying state.db".into(),
            ..Default::default()
        };
        assert_eq!(idle_step.line(), "backup: copying state.db");
    }
}
