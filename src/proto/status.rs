//! What the daemon tells its clients: the fleet status types shared by the
//! daemon, the CLI and (later) the console.
//!
//! Plain serde data; no IO. New fields are `#[serde(default)]` so older
//! clients keep reading newer daemons.

use serde::{Deserialize, Serialize};

use crate::core::lifecycle::{Millis, State, Transition};

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    /// Exit code, if it exited normally.
    pub code: Option<i32>,
    /// Signal number, if a signal ended it.
    pub signal: Option<i32>,
    /// When it was reaped (ms since the Unix epoch).
    pub at: Millis,
    /// How long it ran, in ms (0 for a spawn that failed).
    #[serde(default)]
    pub ran_ms: u64,
}

impl ExitInfo {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl std::fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (Some(c), _) => write!(f, "exit {c}"),
            (None, Some(s)) => write!(f, "signal {}", crate::config::signal_name(s)),
            (None, None) => write!(f, "spawn failed"),
        }
    }
}

/// One replica as the daemon sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaStatus {
    pub index: u32,
    pub state: State,
    /// When `state` was entered.
    pub since: Millis,
    pub pid: Option<i32>,
    /// When the current process started.
    pub started_at: Option<Millis>,
    pub restarts: u64,
    pub last_exit: Option<ExitInfo>,
    /// Why the replica is not progressing (waiting for the pool, a dependency, backoff).
    pub waiting: Option<String>,
    /// Last spawn error, with the OS error.
    pub error: Option<String>,
    /// CPU use of the whole process tree, percent of one core.
    pub cpu_percent: f64,
    /// RSS of the whole process tree, bytes.
    pub rss_bytes: u64,
    /// Processes in the tree.
    pub processes: u32,
    /// Recent transitions, oldest first.
    #[serde(default)]
    pub history: Vec<Transition>,
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
}

/// An alert as clients see it (filled by the alerting engine).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertStatus {
    pub id: String,
    pub name: String,
    /// `critical`, `major` or `minor`.
    pub severity: String,
    /// `pending`, `firing` or `resolved`.
    pub state: String,
    pub summary: String,
    pub since: Millis,
    #[serde(default)]
    pub acknowledged: bool,
}

/// An incident as clients see it (filled by the incident log).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentStatus {
    pub id: u64,
    pub title: String,
    /// 1 critical, 2 major, 3 minor.
    pub level: u8,
    pub status: String,
    pub phase: String,
    pub opened_at: Millis,
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
    pub host: HostStatus,
    /// (cpu used, memory used, replicas admitted) of the resource pool.
    pub pool_used: (f64, u64, u32),
    #[serde(default)]
    pub alerts: Vec<AlertStatus>,
    #[serde(default)]
    pub incidents: Vec<IncidentStatus>,
}
