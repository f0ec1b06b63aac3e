//! The command line: subcommands and their arguments (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Supervise a fleet of local AI agents and watch it live.
#[derive(Debug, Parser)]
#[command(name = "autonomos", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Config file (default: ./autonomos.toml, then the config dir's, then the built-in demo fleet).
    #[arg(long, short, global = true, env = "AUTONOMOS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data dir: state.db, agent contexts, logs (default: the config's, else the platform data dir).
    #[arg(long, global = true, env = "AUTONOMOS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Talk to the daemon on another machine: ssh://[user@]host[:port], or a
    /// [[hosts]] name from the config, or `all` of them. Repeatable: status,
    /// alerts, incidents and task list merge several hosts.
    #[arg(
        long,
        global = true,
        env = "AUTONOMOS_HOST",
        value_name = "URL|NAME",
        value_delimiter = ','
    )]
    pub host: Vec<String>,
    /// ssh config file for --host (passed as `ssh -F`).
    #[arg(long, global = true, env = "AUTONOMOS_SSH_CONFIG")]
    pub ssh_config: Option<PathBuf>,
    /// The autonomos executable on the remote host.
    #[arg(
        long,
        global = true,
        env = "AUTONOMOS_REMOTE_BIN",
        default_value = "autonomos"
    )]
    pub remote_bin: String,
    /// Console theme: dark, light, high-contrast, or a theme file (default: the config's, else dark).
    #[arg(long, global = true, env = "AUTONOMOS_THEME")]
    pub theme: Option<String>,
    /// --data-dir for the remote daemon (default: its own default).
    #[arg(long, global = true, env = "AUTONOMOS_REMOTE_DATA_DIR")]
    pub remote_data_dir: Option<String>,
    /// The daemon's socket on the remote host, when its data dir does not
    /// lead to it (last resort: the data dir's `daemon.socket` names it).
    #[arg(long, global = true, env = "AUTONOMOS_REMOTE_SOCKET")]
    pub remote_socket: Option<String>,
    /// Talk to the daemon on this socket (default: found from the data dir).
    #[arg(long, global = true, env = "AUTONOMOS_SOCKET")]
    pub socket: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the daemon in the background if none runs for this data dir, then attach.
    Up {
        /// How often the collector samples (default: `[metrics] interval`, 1s).
        #[arg(long, value_parser = parse_duration)]
        sample_every: Option<std::time::Duration>,
        /// Serve Prometheus metrics here (overrides `[metrics] listen`).
        #[arg(long)]
        metrics_addr: Option<std::net::SocketAddr>,
        /// Print the fleet and then one line per event instead of the console.
        #[arg(long)]
        plain: bool,
    },
    /// Attach to the running daemon (q detaches; the fleet keeps running).
    Attach {
        /// Print the fleet and then one line per event instead of the console.
        #[arg(long)]
        plain: bool,
    },
    /// Run the supervisor in the foreground (for systemd, containers, or a terminal).
    Daemon {
        /// How often the collector samples (default: `[metrics] interval`, 1s).
        #[arg(long, value_parser = parse_duration)]
        sample_every: Option<std::time::Duration>,
        /// Serve Prometheus metrics here (overrides `[metrics] listen`).
        #[arg(long)]
        metrics_addr: Option<std::net::SocketAddr>,
        /// Start a new session first (used by `up`; stdio should already point at a log).
        #[arg(long, hide = true)]
        detached: bool,
    },
    /// The fleet: agent, replicas running/desired, state, CPU, memory, restarts, uptime, last exit.
    Status {
        /// One row per replica as well.
        #[arg(long, short)]
        replicas: bool,
        #[arg(long)]
        json: bool,
    },
    #[command(flatten)]
    Fleet(crate::client::verbs::FleetVerb),
    /// Recent output of an agent's replicas.
    ///
    /// One line each, as in the agent's log file: the time (UTC), the
    /// replica, the stream (`out` for stdout, `err` for stderr) and the text,
    /// with control characters escaped. `--json` prints one object a line.
    Logs {
        agent: String,
        /// Keep printing new lines.
        #[arg(long, short)]
        follow: bool,
        /// Leave the time out of each line.
        #[arg(long)]
        no_time: bool,
        /// How many recent lines.
        #[arg(long, short = 'n', default_value_t = 50)]
        lines: usize,
        #[arg(long)]
        json: bool,
    },
    /// Take a backup now (primary repository and mirrors); or list / verify.
    Backup {
        #[command(subcommand)]
        command: Option<BackupCommand>,
        #[arg(long, global = true)]
        json: bool,
    },
    /// Restore agent contexts from a backup through the recovery workflow:
    /// stop the agent, back up what is there, restore into a temporary dir,
    /// validate, swap it in, start it again.
    Restore {
        /// The agent to restore; without it, every agent whose context the
        /// snapshot holds (agents added since are left as they are).
        #[arg(long)]
        agent: Option<String>,
        /// The newest snapshot at or before this time: RFC 3339
        /// (`2026-11-28T14:00:00Z`), `YYYY-MM-DD HH:MM[:SS]` in UTC, or an
        /// age such as `30m` or `2h` (that long ago).
        #[arg(long, conflicts_with = "snapshot")]
        at: Option<String>,
        /// A snapshot id (a unique prefix is enough).
        #[arg(long)]
        snapshot: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Alerts: list (default), acknowledge, silence.
    Alerts {
        #[command(subcommand)]
        command: Option<AlertsCommand>,
        #[arg(long, global = true)]
        json: bool,
    },
    /// The incident log: list (default), show, open, note, advance, assign, resolve, export.
    Incidents {
        #[command(subcommand)]
        command: Option<IncidentsCommand>,
        #[arg(long, global = true)]
        json: bool,
    },
    /// Tasks for task agents (protocol = "jsonrpc"): submit, list, show,
    /// cancel, retry.
    Task {
        #[command(subcommand)]
        command: TaskCommand,
        #[arg(long, global = true)]
        json: bool,
    },
    /// The System Health Check: config, data dir (space, permissions),
    /// state.db integrity, the audit chain, the last backup and its
    /// repository, probes, the pool. Exit 0 fine, 1 a problem, 2 could not run.
    Doctor {
        #[arg(long)]
        json: bool,
    },
    /// A `tty = true` agent's screen now, as plain text (AGENT/N: replica
    /// N; without /N, replica 0).
    Screen {
        target: String,
        #[arg(long)]
        json: bool,
    },
    /// A replica's git worktree (`workspace`): path, branch, uncommitted
    /// changes; `--remove` deletes it (the replica must not run).
    Worktree {
        target: String,
        #[arg(long)]
        remove: bool,
        #[arg(long)]
        json: bool,
    },
    /// Types TEXT into a `tty = true` agent's terminal, without attaching.
    Send {
        target: String,
        text: String,
        /// Then press Enter.
        #[arg(long)]
        enter: bool,
        #[arg(long)]
        json: bool,
    },
    /// The autoscaler: each agent's targets, decision and why (status,
    /// the default); `on`/`off` per agent.
    Autoscale {
        #[command(subcommand)]
        command: Option<AutoscaleCommand>,
        #[arg(long, global = true)]
        json: bool,
    },
    /// The tamper-evident audit trail: verify (default), checkpoint, log.
    Audit {
        #[command(subcommand)]
        command: Option<AuditCommand>,
        #[arg(long, global = true)]
        json: bool,
    },
    /// Current metric values: host, then one row per agent.
    Metrics {
        #[arg(long)]
        json: bool,
    },
    /// Relay stdin/stdout to the local daemon's socket (what `--host ssh://` runs remotely).
    DialStdio,
    /// Work with config files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// The fleet for other engines: Kubernetes manifests per agent, a systemd unit for the daemon.
    Export {
        #[command(subcommand)]
        command: ExportCommand,
    },
    /// Install the daemon as a systemd service that starts on boot (or, with --user, at login).
    Service {
        #[command(subcommand)]
        command: ServiceCommand,
    },
    /// Starts a `tty` replica: takes its terminal, then runs the agent.
    #[command(hide = true)]
    TtyExec {
        /// Switch to SCHED_OTHER first (the daemon runs in SCHED_BATCH).
        #[arg(long)]
        normal_scheduling: bool,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        argv: Vec<String>,
    },
    /// A simulated agent of the built-in demo fleet.
    #[command(hide = true)]
    DemoAgent {
        #[arg(long, value_enum)]
        role: crate::demo::Role,
    },
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Live alerts, silences, rules and notifiers.
    List,
    /// Acknowledge firing alerts by id (`crash-loop/worker`) or rule name; globs work.
    Ack { pattern: String },
    /// Mute notifications of matching alerts (current and future) for a while.
    Silence {
        pattern: String,
        /// How long, e.g. 30m, 2h.
        #[arg(long = "for", value_parser = parse_duration, default_value = "1h")]
        duration: std::time::Duration,
    },
    /// Past alert state changes (pending, firing, resolved), oldest first;
    /// kept in state.db across restarts (the newest 100,000).
    History {
        /// Only alerts whose id starts with this (`crash-loop`, `crash-loop/worker`).
        alert: Option<String>,
        /// How many of the newest changes.
        #[arg(short = 'n', long, default_value_t = 50)]
        lines: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Snapshots in the primary repository (or --repository N: 0 primary, 1.. mirrors).
    List {
        #[arg(long, default_value_t = 0)]
        repository: usize,
    },
    /// Check the repository; --read-data also reads and checks every pack.
    Verify {
        #[arg(long)]
        read_data: bool,
        #[arg(long, default_value_t = 0)]
        repository: usize,
        /// Show the backup library's whole error reports (context, causes,
        /// backtraces).
        #[arg(long, short = 'v')]
        verbose: bool,
    },
    /// Forget snapshots by the [backup] retention rules and prune the data
    /// nothing uses, in every repository, now (through the daemon: never
    /// beside one of its backups; refused while restic holds a lock).
    Prune,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the whole chain and the signed checkpoints (reads the data dir's
    /// files; no daemon needed). Exit 1 when a record was tampered with.
    Verify {
        /// Also require this exported checkpoint (kept elsewhere): its key is
        /// the one trusted, and the log must still contain its record.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
    },
    /// Ask the daemon for a signed checkpoint now; --export writes it to FILE.
    Checkpoint {
        #[arg(long)]
        export: Option<PathBuf>,
    },
    /// Replace the signing key: the old key's last checkpoint is signed by
    /// the new key, both keys sign the rotation (audit/rotations.jsonl),
    /// and `verify` follows it, with or without an older exported checkpoint.
    RotateKey,
    /// The newest records.
    Log {
        #[arg(long, short = 'n', default_value_t = 20)]
        lines: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum AutoscaleCommand {
    /// Targets, current values, the decision and why, recent changes.
    Status { agent: Option<String> },
    /// Let the autoscaler set the agent's replicas again (after a manual `scale`).
    On { agent: String },
    /// Leave the agent's replicas to operators.
    Off { agent: String },
}

#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Queue a task (or a batch); acknowledged once durable. Prints the
    /// task id(s); with --wait, the finished task (exit 0 only if it
    /// completed).
    Submit {
        /// The agent (or --skill).
        agent: Option<String>,
        /// Any agent offering this skill (the shortest expected wait).
        #[arg(long, conflicts_with = "agent")]
        skill: Option<String>,
        /// The input, JSON (a string that is not JSON is taken as a JSON string).
        #[arg(long, conflicts_with_all = ["input_file", "batch"])]
        input: Option<String>,
        /// Read the input from a file (`-`: stdin).
        #[arg(long, conflicts_with = "batch")]
        input_file: Option<PathBuf>,
        /// One JSON input per line, from a file (`-`: stdin); all or none
        /// are queued.
        #[arg(long)]
        batch: Option<PathBuf>,
        /// Idempotency key: a submit with a key that exists returns that task.
        #[arg(long, conflicts_with = "batch")]
        key: Option<String>,
        /// Higher runs first.
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        priority: i32,
        /// Tasks of one context go to one replica while it lives.
        #[arg(long)]
        context: Option<String>,
        /// Per-attempt time limit (else the agent's task_timeout).
        #[arg(long, value_parser = parse_duration)]
        timeout: Option<std::time::Duration>,
        /// Wait until it finishes and print it.
        #[arg(long)]
        wait: bool,
    },
    /// The newest tasks.
    List {
        #[arg(long)]
        agent: Option<String>,
        /// submitted, working, completed, failed, canceled, rejected.
        #[arg(long)]
        state: Option<String>,
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: usize,
    },
    /// One task, whole.
    Show { id: String },
    /// Cancel a waiting or running task.
    Cancel { id: String },
    /// Queue a failed, rejected or canceled task again.
    Retry { id: String },
}

#[derive(Debug, Subcommand)]
pub enum IncidentsCommand {
    /// Open incidents and the latest resolved ones.
    List {
        /// Every incident kept in memory, resolved ones included.
        #[arg(long)]
        all: bool,
    },
    /// One incident with its whole timeline.
    Show { id: u64 },
    /// Open an incident by hand.
    Open {
        title: String,
        /// 1 critical, 2 major, 3 minor.
        #[arg(long, default_value_t = 2)]
        level: u8,
        /// The agent it concerns (its restarts and failures join the timeline).
        #[arg(long)]
        agent: Option<String>,
    },
    /// Add a note to the timeline.
    Note { id: u64, text: String },
    /// Move to the next response phase (or jump forward with --to).
    Advance {
        id: u64,
        #[arg(long)]
        to: Option<String>,
    },
    /// Set the owner.
    Assign { id: u64, owner: String },
    /// Mark it resolved (phase: Post-Incident Analysis).
    Resolve {
        id: u64,
        #[arg(long)]
        note: Option<String>,
    },
    /// Write the post-incident report (Markdown) to FILE or stdout.
    Export {
        id: u64,
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Each agent as a multi-document YAML file: workload, ConfigMap, autoscaler; what cannot be mapped is listed in its header.
    Kubernetes {
        /// Agents to export (default: all).
        agents: Vec<String>,
        #[arg(long)]
        namespace: Option<String>,
        /// Write AGENT.yaml files into DIR (default: everything to stdout).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// The container image; `{agent}` stands for the agent's name.
        #[arg(long)]
        image: Option<String>,
        /// Deployments with a throwaway context for every agent (no volumes).
        #[arg(long)]
        stateless: bool,
        /// Size of each replica's context volume.
        #[arg(long, default_value = "1Gi")]
        volume_size: String,
    },
    /// The daemon's systemd unit (Type=notify), to DIR/autonomos.service or stdout.
    Systemd {
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// A user unit (`systemctl --user`) instead of a system one.
        #[arg(long)]
        user: bool,
        /// A system unit runs the daemon as this user (default: the one running this, or SUDO_USER).
        #[arg(long)]
        run_as: Option<String>,
        /// Add sandboxing that binds the agents too (no new privileges, private /tmp, read-only /usr and /etc).
        #[arg(long)]
        harden: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Write the unit, then `systemctl daemon-reload` and `enable --now` it.
    Install {
        /// Install for this user (~/.config/systemd/user) instead of the system.
        #[arg(long)]
        user: bool,
        /// A system unit runs the daemon as this user (default: the one running this, or SUDO_USER).
        #[arg(long)]
        run_as: Option<String>,
        /// Write the unit into DIR instead of systemd's directory.
        #[arg(long)]
        unit_dir: Option<PathBuf>,
        /// Add sandboxing that binds the agents too (see `export systemd --harden`).
        #[arg(long)]
        harden: bool,
        /// Only write the unit; do not run systemctl.
        #[arg(long)]
        no_enable: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config file and print the effective fleet (every default filled in).
    Check {
        /// The file to check (default: the config in force).
        file: Option<PathBuf>,
        /// Print the effective config as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    crate::config::parse_duration(s)
}
