//! Tasks on the wire: what clients submit and what they read back.

use serde::{Deserialize, Serialize};

use crate::core::lifecycle::Millis;
use crate::core::task::TaskState;

/// A task as clients see it. Times are ms since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskStatus {
    pub id: String,
    pub agent: String,
    pub state: TaskState,
    /// Attempts started so far.
    pub attempts: u32,
    /// The replica running it (or that last ran it).
    pub replica: Option<u32>,
    pub priority: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_id: Option<String>,
    pub input: serde_json::Value,
    pub result: Option<serde_json::Value>,
    /// Why it failed, was rejected or canceled, or why the last attempt
    /// ended (a task back in the queue for another attempt).
    pub error: Option<String>,
    /// The agent's last `task.progress`: fraction 0-1 and/or a message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    pub submitted_at: Millis,
    pub started_at: Option<Millis>,
    pub finished_at: Option<Millis>,
    /// How long one attempt may run, ms (None: no limit).
    pub timeout_ms: Option<u64>,
    /// With a shared queue: the daemon (host) that ran it last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// What an agent said about a running task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub fraction: Option<f64>,
    pub message: Option<String>,
}

/// One task to submit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTask {
    pub input: serde_json::Value,
    /// Idempotency key (per agent): a submit with a key that exists returns
    /// the existing task.
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub context_id: Option<String>,
}

/// `task submit`: one or more tasks for an agent (or an agent offering a
/// skill), acknowledged once all are committed; all or none are queued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submit {
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default)]
    pub skill: Option<String>,
    pub tasks: Vec<NewTask>,
    #[serde(default)]
    pub priority: i32,
    /// Per-attempt timeout, ms (else the agent's `task_timeout`).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}
