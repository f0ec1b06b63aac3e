//! The autoscaler's and the task queue's figures per agent, as clients
//! see them in the fleet status.

use serde::{Deserialize, Serialize};

use crate::core::lifecycle::Millis;

/// The autoscaler and one agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AutoscaleStatus {
    /// Off after a manual `scale` until `autoscale on`.
    pub enabled: bool,
    pub min: u32,
    pub max: u32,
    /// Its current decision (the agent's desired replicas).
    pub desired: u32,
    /// Before stabilization: the largest recommendation (forecast included).
    pub recommended: u32,
    pub targets: Vec<TargetStatus>,
    /// Why the last decision is what it is.
    pub reason: String,
    /// The latest changes it made, newest last.
    pub recent: Vec<ScaleDecision>,
    pub ups: u64,
    pub downs: u64,
}

/// One target: what it aims for, what it measures now, what it asks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetStatus {
    pub name: String,
    pub target: f64,
    pub current: Option<f64>,
    pub recommends: u32,
    pub note: String,
}

/// A change the autoscaler made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleDecision {
    pub at: Millis,
    pub from: u32,
    pub to: u32,
    pub reason: String,
}

/// A task agent's queue at a glance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskSummary {
    pub queue: u64,
    pub in_flight: u64,
    pub completed: u64,
    pub failed: u64,
    /// Run time's 95th percentile, ms (a histogram bucket's upper bound):
    /// over the last 5 minutes, else since the daemon started.
    pub run_p95_ms: Option<u64>,
    /// Queue wait's 95th percentile since the daemon started, ms.
    #[serde(default)]
    pub wait_p95_ms: Option<u64>,
    /// How long the oldest waiting task has waited, ms.
    #[serde(default)]
    pub oldest_wait_ms: u64,
    /// Tasks the ready replicas may run at once (replicas × concurrency).
    #[serde(default)]
    pub capacity: u64,
    /// Failed ÷ finished over the last 5 minutes.
    #[serde(default)]
    pub error_rate: f64,
}
