//! The validated fleet configuration: plain data, every default filled in.
//!
//! Nothing here parses or checks input; `config::load` builds these types only
//! from input that passed validation, so the daemon can trust every value.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

pub use crate::core::backoff::{BackoffSpec, StartLimitSpec};
pub use crate::core::pool::PoolSpec;

pub use crate::core::pool::MAX_REPLICAS;
/// Upper bound on the pool's agent (replica) count.
pub const MAX_POOL_AGENTS: u32 = 10_000;

/// A whole validated config file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// Where it was read from (`None` for the built-in demo fleet).
    pub source: Option<PathBuf>,
    /// Agents in file order.
    pub agents: Vec<AgentSpec>,
    pub pool: PoolSpec,
    pub paths: PathsSpec,
    pub logs: LogSpec,
    pub console: ConsoleSpec,
    pub metrics: MetricsSpec,
    /// Alert rules in force: the built-in defaults (unless turned off)
    /// overridden by name, then the file's own.
    pub alerts: Vec<crate::core::alert::Rule>,
    pub notifiers: Vec<NotifierSpec>,
    pub backup: BackupSpec,
    pub tasks: TasksSpec,
    pub gateway: GatewaySpec,
    /// `[[hosts]]`: daemons on other machines a client reaches by name
    /// (`--host NAME`, `--host all`).
    pub hosts: Vec<HostSpec>,
}

/// One `[[hosts]]` entry: a daemon reached over ssh.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostSpec {
    pub name: String,
    /// `ssh://[user@]host[:port]`.
    pub url: String,
    /// The remote daemon's data dir (default: its own default).
    pub data_dir: Option<String>,
    /// The remote daemon's socket, when its data dir does not lead to it.
    pub socket: Option<String>,
    /// The autonomos executable there (default: `autonomos`).
    pub remote_bin: Option<String>,
}

/// `health = { ... }` of one agent.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthSpec {
    /// Between two probes of a replica.
    pub interval: Duration,
    /// A probe taking longer fails (an exec probe's tree is killed).
    pub timeout: Duration,
    /// Failures in a row that restart the replica.
    pub failure_threshold: u32,
    /// No probe this soon after the replica started.
    pub start_period: Duration,
    /// Restarts the replica when it fails `failure_threshold` times.
    pub liveness: Option<Probe>,
    /// Gates routing and `depends_on`: unready after `failure_threshold`
    /// failures, ready again after one pass (and not before the first).
    pub readiness: Option<Probe>,
}

/// How a replica is probed.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// Runs this argv in the replica's environment and context: exit 0 is
    /// healthy.
    Exec(Vec<String>),
    /// GET of a loopback URL: 2xx or 3xx is healthy.
    Http(String),
    /// A TCP connect to this loopback port.
    Tcp(u16),
    /// A task agent heard from (any message, a `heartbeat`) within this
    /// long, or answering a `ping` request within the timeout.
    Heartbeat(Duration),
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Probe::Exec(argv) => write!(f, "exec {}", argv.join(" ")),
            Probe::Http(url) => write!(f, "http {url}"),
            Probe::Tcp(port) => write!(f, "tcp {port}"),
            Probe::Heartbeat(d) => {
                write!(f, "heartbeat {}", crate::core::units::format_duration(*d))
            }
        }
    }
}

/// `[gateway]`: the A2A HTTP gateway to the task agents (off by default).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GatewaySpec {
    /// Where it listens; off when `None`.
    pub listen: Option<std::net::SocketAddr>,
    /// TLS certificate chain and private key (PEM); both or neither.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// A file holding the bearer token every request must carry.
    pub token_file: Option<PathBuf>,
    /// Connections served at once (more wait in the accept queue).
    pub max_connections: usize,
    /// The longest a request may take (a blocking send included); a
    /// stream ends after this much time without an event.
    pub request_timeout: Duration,
}

impl Default for GatewaySpec {
    fn default() -> Self {
        GatewaySpec {
            listen: None,
            cert: None,
            key: None,
            token_file: None,
            max_connections: 64,
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// `[tasks]`: what the task engine keeps and accepts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TasksSpec {
    /// `store = "postgres://..."`: a queue shared with other daemons (None:
    /// the embedded SQLite table in `state.db`).
    pub store: Option<String>,
    /// How long a claimed task of the shared queue may go without its
    /// daemon renewing the claim before another daemon takes it.
    pub lease: Duration,
    /// This daemon's name in the shared queue (default: the host name).
    pub host: Option<String>,
    /// Finished tasks kept for inspection (the newest).
    pub keep: usize,
    /// Largest task input, bytes of JSON (a larger one is refused at submit).
    pub max_input: u64,
    /// Largest result, bytes of JSON (a larger one fails the task).
    pub max_result: u64,
}

impl Default for TasksSpec {
    fn default() -> Self {
        TasksSpec {
            store: None,
            lease: Duration::from_secs(30),
            host: None,
            keep: 10_000,
            max_input: 1 << 20,
            max_result: 1 << 20,
        }
    }
}

/// `[backup]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct BackupSpec {
    /// The first is primary, the rest mirrors; empty: `DATA_DIR/backups`.
    /// Local directories or `sftp:` repositories (the SFTP ones carry
    /// `ssh_config` and `remote_timeout`).
    pub repositories: Vec<crate::core::repo::BackupRepo>,
    /// `ssh -F` for SFTP repositories.
    pub ssh_config: Option<PathBuf>,
    /// How long a remote repository may take to answer one request.
    pub remote_timeout: Option<Duration>,
    /// A backup this often (off when `None`).
    pub every: Option<Duration>,
    /// Retention, applied with a prune after each backup (nothing is
    /// forgotten unless one is set).
    pub keep_last: Option<u32>,
    pub keep_hourly: Option<u32>,
    pub keep_daily: Option<u32>,
}

/// `[metrics]`: the collector and the Prometheus endpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricsSpec {
    /// Where `/metrics` is served; off when `None`.
    pub listen: Option<std::net::SocketAddr>,
    /// How often the collector samples.
    pub interval: Duration,
}

impl Default for MetricsSpec {
    fn default() -> Self {
        Self {
            listen: None,
            interval: Duration::from_secs(1),
        }
    }
}

/// One `[[notifiers]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotifierSpec {
    pub name: String,
    pub kind: NotifierKind,
    /// A notification that takes longer is abandoned (the process killed).
    pub timeout: Duration,
    /// Alerts below this severity are not sent.
    pub min_severity: crate::core::alert::Severity,
    /// At most this many notifications a minute; the rest are dropped and counted.
    pub max_per_minute: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifierKind {
    /// argv; the alert JSON on stdin; never through a shell.
    Exec { command: Vec<String> },
    /// HTTP(S) POST of the alert JSON.
    Webhook {
        url: WebhookUrl,
        /// PEM certificates trusted for an https `url` besides the public
        /// roots (a private CA or a self-signed server).
        ca_file: Option<PathBuf>,
    },
}

/// A parsed `http(s)://host:port/path` URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookUrl {
    /// https: TLS, the server's certificate checked against the host name.
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl std::fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}{}", self.host, self.port, self.path)
        } else {
            write!(f, "{scheme}://{}:{}{}", self.host, self.port, self.path)
        }
    }
}

/// `[console]`: the console's theme and key bindings.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ConsoleSpec {
    /// A built-in theme name or a theme file (relative: to the config file).
    pub theme: Option<String>,
    /// Action name → the keys that replace its defaults.
    pub keys: Vec<(String, Vec<crate::core::keys::KeySpec>)>,
}

impl Config {
    /// Looks an agent up by name.
    pub fn agent(&self, name: &str) -> Option<&AgentSpec> {
        self.agents.iter().find(|a| a.name == name)
    }
}

pub use crate::core::supervise::{LimitAction, RestartPolicy};

/// One `[agents.NAME]` table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentSpec {
    /// `[a-z0-9][a-z0-9_-]{0,62}`; used in paths and metric labels.
    pub name: String,
    /// argv; never empty; never run through a shell.
    pub command: Vec<String>,
    /// Working directory (None: the daemon's data dir's `contexts/NAME`).
    pub cwd: Option<PathBuf>,
    /// Configured environment, in file order.
    pub env: BTreeMap<String, String>,
    /// Names of daemon environment variables passed through when set.
    pub inherit_env: Vec<String>,
    pub replicas: u32,
    pub restart: RestartPolicy,
    pub backoff: BackoffSpec,
    /// A run shorter than this is a failed start, whatever the exit code.
    pub min_uptime: Duration,
    pub start_limit: StartLimitSpec,
    /// Signal number sent first on stop (default SIGTERM).
    pub stop_signal: i32,
    pub stop_timeout: Duration,
    pub resources: ResourceSpec,
    /// `recovery = "restore-latest"`: reaching `Failed` restores the newest
    /// backup of the context dir through the recovery workflow (again only
    /// after a quiet time; see `core::backoff::recovery_allowed`).
    pub restore_latest: bool,
    /// Agents that must be ready before this one starts.
    pub depends_on: Vec<String>,
    /// `protocol = "jsonrpc"`: the agent takes tasks (None: a plain process).
    pub tasks: Option<TaskSpec>,
    /// What it is for, in a sentence (the console, the A2A Agent Card).
    pub description: Option<String>,
    /// `health = { ... }`: probes of each replica.
    #[serde(skip)]
    pub health: Option<HealthSpec>,
    /// `autoscale = { ... }`: the autoscaler sets its replicas.
    #[serde(skip)]
    pub autoscale: Option<crate::core::autoscale::Spec>,
    /// `tty`: each replica on its own pseudo-terminal of (rows, cols).
    pub tty: Option<(u16, u16)>,
    /// `attention`: screen patterns that mean a replica waits for a person.
    pub attention: Vec<String>,
    /// `workspace`: the git repository its replicas work in.
    pub workspace: Option<WorkspaceSpec>,
}

/// `workspace = { git = "PATH", worktree = true }` of an agent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkspaceSpec {
    /// The repository.
    pub git: PathBuf,
    /// Each replica in its own worktree on its own branch (false: every
    /// replica works in the repository itself).
    pub worktree: bool,
}

/// How a task agent (`protocol = "jsonrpc"`) takes work.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskSpec {
    /// Tasks one replica runs at once.
    pub concurrency: u32,
    /// `concurrency` was set in the file: an agent's `agent.ready` may
    /// lower it, not raise it (else the agent's own figure is taken).
    pub concurrency_set: bool,
    /// `ready = "announce"`: routable only after the replica sent
    /// `agent.ready` (else once it runs).
    pub announce: bool,
    /// What it offers, for `task submit --skill`.
    pub skills: Vec<String>,
    /// Attempts per task in all.
    pub max_attempts: u32,
    /// A task running longer is canceled and counts as a failed attempt.
    pub task_timeout: Option<Duration>,
    /// Tasks that may wait in its queue (in-flight ones not counted).
    pub max_queue: usize,
}

impl Default for TaskSpec {
    fn default() -> Self {
        TaskSpec {
            concurrency: 1,
            concurrency_set: false,
            announce: false,
            skills: Vec::new(),
            max_attempts: 3,
            task_timeout: None,
            max_queue: 10_000,
        }
    }
}

impl AgentSpec {
    /// What supervision decisions read of this spec.
    pub fn policy(&self) -> crate::core::supervise::Policy {
        crate::core::supervise::Policy {
            restart: self.restart,
            backoff: self.backoff,
            min_uptime: self.min_uptime,
            start_limit: self.start_limit,
            memory_limit: self.resources.memory_limit,
            limit_action: self.resources.memory_limit_action,
        }
    }
}

/// Resource requests and limits for one replica.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ResourceSpec {
    /// CPU request in cores (may be fractional).
    pub cpu: f64,
    /// Memory request in bytes.
    pub memory: u64,
    /// RSS limit of the replica's whole process tree, in bytes.
    pub memory_limit: Option<u64>,
    pub memory_limit_action: LimitAction,
}

/// `[paths]`: overrides of the runtime layout.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct PathsSpec {
    pub data_dir: Option<PathBuf>,
}

/// `[logs]`: agent log files.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LogSpec {
    /// Rotate an agent's log file when it grows past this many bytes.
    pub max_size: u64,
    /// Rotated files kept per agent (`NAME.log.1` .. `NAME.log.N`).
    pub max_files: u32,
    /// Lines of recent output kept in memory per replica.
    pub ring_lines: usize,
}

impl Default for LogSpec {
    fn default() -> Self {
        Self {
            max_size: 16 * 1024 * 1024,
            max_files: 5,
            ring_lines: 1000,
        }
    }
}
