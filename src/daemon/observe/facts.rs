//! What the actor measures of each agent on a tick: the per-agent series
//! the alert rules read, in one fixed order.

use crate::core::alert::Metric;

/// What the actor measures of one agent on a tick.
#[derive(Debug, Clone, Default)]
pub struct AgentFacts {
    pub name: String,
    pub cpu: f64,
    pub memory: f64,
    pub memory_pct: f64,
    pub restarts: f64,
    pub failures: f64,
    pub running: f64,
    pub desired: f64,
    pub failed: f64,
    pub backoff: f64,
    pub uptime: f64,
    pub log_dropped: f64,
    pub queue_length: f64,
    pub tasks_completed: f64,
    pub tasks_failed: f64,
    pub task_error_rate: f64,
    pub task_latency_p95: f64,
    pub waiting_input: f64,
}

pub(super) const AGENT_METRICS: [Metric; 17] = [
    Metric::Cpu,
    Metric::Memory,
    Metric::MemoryPct,
    Metric::Restarts,
    Metric::Failures,
    Metric::Running,
    Metric::Desired,
    Metric::Failed,
    Metric::Backoff,
    Metric::Uptime,
    Metric::LogDropped,
    Metric::QueueLength,
    Metric::TasksCompleted,
    Metric::TasksFailed,
    Metric::TaskErrorRate,
    Metric::TaskLatencyP95,
    Metric::WaitingInput,
];

pub(super) fn agent_slot(m: Metric) -> Option<usize> {
    AGENT_METRICS.iter().position(|x| *x == m)
}

impl AgentFacts {
    pub(super) fn values(&self) -> [f64; 17] {
        [
            self.cpu,
            self.memory,
            self.memory_pct,
            self.restarts,
            self.failures,
            self.running,
            self.desired,
            self.failed,
            self.backoff,
            self.uptime,
            self.log_dropped,
            self.queue_length,
            self.tasks_completed,
            self.tasks_failed,
            self.task_error_rate,
            self.task_latency_p95,
            self.waiting_input,
        ]
    }
}
