//! The protocol between the daemon and its clients (CLI, console, tests):
//! message types and the size-capped frame codec.
//!
//! Frames are a u32 big-endian length followed by JSON, at most
//! [`MAX_FRAME`] bytes. The first exchange is a [`Hello`] each way; a
//! version mismatch is refused naming both versions. New fields are
//! `#[serde(default)]` so that older peers keep reading newer messages.

mod describe;
pub mod scaling;
pub mod status;
pub mod task;
pub mod term;

pub use scaling::*;
pub use status::*;
pub use task::*;
pub use term::*;

use serde::{Deserialize, Serialize};

use crate::core::lifecycle::Transition;

/// Bumped on any incompatible change to the messages below.
/// 2: `stop` answers `Stopped`; `History`, `AuditRotateKey`, `BackupPrune`;
/// the `Storage` event; bounded lists in `FleetStatus`.
pub const PROTO_VERSION: u32 = 2;
/// Largest frame either side sends or accepts.
pub const MAX_FRAME: usize = 4 * 1024 * 1024;
/// The running binary's version.
pub const APP_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The length-delimited codec with our frame cap.
pub fn codec() -> tokio_util::codec::LengthDelimitedCodec {
    tokio_util::codec::LengthDelimitedCodec::builder()
        .length_field_length(4)
        .big_endian()
        .max_frame_length(MAX_FRAME)
        .new_codec()
}

/// Sent first by both sides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub proto_version: u32,
    pub app_version: String,
}

impl Hello {
    pub fn ours() -> Self {
        Hello {
            proto_version: PROTO_VERSION,
            app_version: APP_VERSION.to_string(),
        }
    }
}

/// Client → daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    Hello(Hello),
    Request { id: u64, request: Request },
}

/// What a client can ask.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// The fleet table, with each replica's newest transitions (fewer per
    /// replica in large fleets: see [`Request::History`]).
    Status,
    /// One replica's whole kept transition history (the console's detail).
    History {
        agent: String,
        replica: u32,
    },
    Scale {
        agent: String,
        replicas: u32,
    },
    Start {
        agent: String,
    },
    Stop {
        agent: String,
    },
    /// Restart every replica of `agent`, or just `replica`.
    Restart {
        agent: String,
        #[serde(default)]
        replica: Option<u32>,
    },
    /// Recent output: the newest `lines`, or only lines after cursor `since`.
    Logs {
        agent: String,
        lines: usize,
        #[serde(default)]
        since: Option<u64>,
    },
    /// Re-read the config file and apply the difference.
    Reload,
    /// Decommission the fleet and stop the daemon.
    Shutdown,
    /// A snapshot, then a stream of events on this connection.
    Subscribe,
    /// Take a backup now.
    Backup,
    /// Forget snapshots by the retention rules and prune unused data, in
    /// every repository, now.
    BackupPrune,
    /// Alerts, silences, rules and notifiers.
    Alerts,
    /// Acknowledge firing alerts whose id or rule matches `pattern` (a glob).
    Ack {
        pattern: String,
    },
    /// Mute notifications of matching alerts for `for_ms`.
    Silence {
        pattern: String,
        for_ms: u64,
    },
    /// Incident list (open ones; `all` adds recently resolved ones).
    Incidents {
        #[serde(default)]
        all: bool,
    },
    /// One incident with its whole timeline.
    Incident {
        id: u64,
    },
    /// The alert history kept in `state.db`: the newest `limit` state
    /// changes, optionally of alerts whose id starts with `alert`.
    AlertHistory {
        #[serde(default)]
        alert: Option<String>,
        limit: usize,
    },
    IncidentOpen {
        title: String,
        level: u8,
        #[serde(default)]
        agent: Option<String>,
    },
    IncidentNote {
        id: u64,
        text: String,
    },
    IncidentAdvance {
        id: u64,
        /// A later phase to jump to; the next one when absent.
        #[serde(default)]
        phase: Option<String>,
    },
    IncidentAssign {
        id: u64,
        owner: String,
    },
    IncidentResolve {
        id: u64,
        #[serde(default)]
        note: Option<String>,
    },
    /// Write a signed audit checkpoint now and return it.
    AuditCheckpoint,
    /// Replace the audit signing key (the old key's last checkpoint is
    /// signed by the new one; both sign the rotation).
    AuditRotateKey,
    /// Queue tasks (durable once answered).
    TaskSubmit(Submit),
    /// Tasks, newest first: of one agent and/or in one state.
    TaskList {
        #[serde(default)]
        agent: Option<String>,
        #[serde(default)]
        state: Option<crate::core::task::TaskState>,
        limit: usize,
    },
    TaskGet {
        id: String,
    },
    /// Cancel a waiting or running task (the agent is told).
    TaskCancel {
        id: String,
    },
    /// Queue a failed, rejected or canceled task again (attempts start over).
    TaskRetry {
        id: String,
    },
    /// The autoscaler's view of one agent (or every autoscaled agent).
    AutoscaleStatus {
        #[serde(default)]
        agent: Option<String>,
    },
    /// Turns autoscaling on or off for an agent (a manual `scale` turns it
    /// off).
    AutoscaleSet {
        agent: String,
        on: bool,
    },
    /// The System Health Check: the data dir, state.db, the audit chain,
    /// the backups, probes, the pool.
    Doctor,
    /// The screen of a `tty` agent's replica, as text (and, with `cells`,
    /// as the emulator's own rendition for the console to draw).
    Screen {
        agent: String,
        #[serde(default)]
        replica: u32,
        #[serde(default)]
        cells: bool,
    },
    /// Types `text` into a `tty` agent's replica (then Enter, with
    /// `enter`). `hold`: Some(true) takes (or keeps) the replica's input
    /// for this client (the console's focus mode), Some(false) gives it
    /// back; while one client holds it, others are refused.
    Send {
        agent: String,
        #[serde(default)]
        replica: u32,
        text: String,
        #[serde(default)]
        enter: bool,
        #[serde(default)]
        hold: Option<bool>,
    },
    /// A replica's git worktree (`workspace`): its path, branch and
    /// uncommitted changes; with `remove`, removes it (the replica must
    /// not be running).
    Worktree {
        agent: String,
        #[serde(default)]
        replica: u32,
        #[serde(default)]
        remove: bool,
    },
    /// Resizes a `tty` agent's replica's terminal.
    Resize {
        agent: String,
        #[serde(default)]
        replica: u32,
        rows: u16,
        cols: u16,
    },
    /// Run the recovery workflow for an agent (or, without one, every agent
    /// whose context the snapshot holds): the snapshot `snapshot` (an id
    /// prefix), or the newest at or before `at` (ms), or the newest.
    Restore {
        #[serde(default)]
        agent: Option<String>,
        #[serde(default)]
        snapshot: Option<String>,
        #[serde(default)]
        at: Option<u64>,
    },
}

impl Request {
    /// The request for a log line: a task submit by its size, not its
    /// inputs (a batch may carry megabytes).
    pub fn describe(&self) -> String {
        match self {
            Request::TaskSubmit(s) => format!(
                "TaskSubmit {{ agent: {:?}, skill: {:?}, tasks: {}, priority: {} }}",
                s.agent,
                s.skill,
                s.tasks.len(),
                s.priority
            ),
            // What is typed is not logged (it may be a secret).
            Request::Send { .. } => self.to_string(),
            other => format!("{other:?}"),
        }
    }

    /// Task submits, cancels and retries: the task layer records them on
    /// the audit trail itself (by size, with the ids), whatever door they
    /// came through.
    pub fn audited_by_tasks(&self) -> bool {
        matches!(
            self,
            Request::TaskSubmit(_) | Request::TaskCancel { .. } | Request::TaskRetry { .. }
        )
    }

    /// True for requests that change something (recorded with the peer).
    pub fn mutates(&self) -> bool {
        !matches!(
            self,
            Request::Status
                | Request::History { .. }
                | Request::Logs { .. }
                | Request::Subscribe
                | Request::Alerts
                | Request::Incidents { .. }
                | Request::Incident { .. }
                | Request::AlertHistory { .. }
                | Request::TaskList { .. }
                | Request::TaskGet { .. }
                | Request::AutoscaleStatus { .. }
                | Request::Doctor
                | Request::Screen { .. }
                | Request::Resize { .. }
                | Request::Worktree { remove: false, .. }
                // Typing in focus mode: the hold is recorded, not each key.
                | Request::Send { hold: Some(_), .. }
        )
    }
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    UnknownAgent,
    Invalid,
    Storage,
    ShuttingDown,
    ConfigRejected,
    NotAvailable,
    Protocol,
    /// No such thing (a task that is not kept).
    NotFound,
    /// A limit refused it (a full queue, an input too large); the message
    /// names the limit.
    Limit,
}

/// A refused request, with a message meant for the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ErrorReply {
    pub kind: ErrorKind,
    pub message: String,
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Response {
    Status {
        status: Box<FleetStatus>,
    },
    Done {
        message: String,
    },
    /// The answer to `stop`: whether any replica was still running (a
    /// stop of an agent whose replicas had all exited only keeps it from
    /// starting again).
    Stopped {
        message: String,
        was_running: bool,
    },
    /// `next` is the cursor to pass as `since` to get only newer lines.
    Logs {
        lines: Vec<LogLine>,
        next: u64,
    },
    Subscribed,
    Alerts {
        report: Box<AlertsReport>,
    },
    Incidents {
        incidents: Vec<IncidentStatus>,
        /// Incidents beyond the listed ones (`incidents show ID` reads any).
        #[serde(default)]
        omitted: usize,
    },
    History {
        transitions: Vec<crate::core::lifecycle::Transition>,
    },
    Incident {
        incident: Box<crate::core::incident::Incident>,
    },
    /// Oldest first.
    AlertHistory {
        events: Vec<AlertEvent>,
    },
    Checkpoint {
        checkpoint: Box<crate::core::audit::Checkpoint>,
    },
    /// Submitted (ids in input order; an idempotent resubmit names the
    /// existing task), listed, or one task.
    Tasks {
        tasks: Vec<TaskStatus>,
    },
    Autoscale {
        agents: Vec<(String, AutoscaleStatus)>,
    },
    Doctor {
        checks: Vec<crate::core::doctor::Check>,
    },
    Screen {
        screen: Screen,
    },
    Worktree {
        path: String,
        branch: String,
        changes: String,
    },
}

/// One line of agent output (raw text: sanitize before drawing it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Per-agent line number, counting every line ever read.
    pub seq: u64,
    /// Milliseconds since the Unix epoch when the line was read.
    pub at: u64,
    pub replica: u32,
    pub stream: Stream,
    pub text: String,
}

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One replica's latest measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaSample {
    pub agent: String,
    pub replica: u32,
    pub cpu_percent: f64,
    pub rss_bytes: u64,
    pub processes: u32,
    /// For a `tty` agent: what the replica is doing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<Attention>,
}

/// A push from the daemon to subscribed clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ServerEvent {
    /// A replica changed lifecycle state.
    Transition {
        agent: String,
        replica: u32,
        transition: Transition,
    },
    /// A collector tick: the host, every live replica, and each task
    /// agent's queue.
    Samples {
        host: HostStatus,
        replicas: Vec<ReplicaSample>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tasks: Vec<(String, TaskSummary)>,
    },
    /// Desired replicas or started/stopped intent changed.
    Agent {
        name: String,
        desired: u32,
        enabled: bool,
    },
    /// The set of agents changed (reload): take a fresh snapshot.
    FleetChanged,
    /// The daemon is going away.
    ShuttingDown,
    /// New audit records, or a backup started, moved on or ended.
    Audit {
        records: Vec<crate::core::audit::Record>,
        backup_running: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        progress: Option<BackupProgress>,
    },
    /// Writes to the data dir started or stopped failing: the parts
    /// failing now (empty: healthy again).
    Storage { faults: Vec<StorageFault> },
    /// The alert list, an incident or a notifier changed: the current lists.
    Alerts {
        alerts: Vec<AlertStatus>,
        incidents: Vec<IncidentStatus>,
        #[serde(default)]
        notifiers: Vec<NotifierStatus>,
        /// Alerts and incidents beyond the listed ones (see `autonomos
        /// alerts` / `incidents`).
        #[serde(default)]
        alerts_omitted: usize,
        #[serde(default)]
        incidents_omitted: usize,
    },
}

/// Daemon → client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    Hello {
        hello: Hello,
        daemon_pid: u32,
        host: String,
    },
    /// The connection is refused (version, uid, capacity); it closes next.
    Refused {
        reason: String,
    },
    Response {
        id: u64,
        result: Result<Response, ErrorReply>,
    },
    /// The full state; events that follow have `seq` greater than this one's.
    Snapshot {
        seq: u64,
        status: Box<FleetStatus>,
    },
    Event {
        seq: u64,
        event: ServerEvent,
    },
}
