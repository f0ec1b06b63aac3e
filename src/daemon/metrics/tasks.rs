//! Task metrics: per agent totals, the queue, work in flight and the
//! latency histograms; per replica work in flight.

use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use super::{agent, family, replica};
use crate::daemon::tasks::stats::{AgentStats, Histogram, Stats};

/// A counter family: name, help, and how to read it from an agent's stats.
type Count = (&'static str, &'static str, fn(&AgentStats) -> u64);

pub(super) fn encode_tasks(e: &mut DescriptorEncoder, st: &Stats) -> Result<(), std::fmt::Error> {
    use MetricType::{Counter, Gauge};
    let counters: [Count; 8] = [
        (
            "autonomos_tasks_submitted",
            "Tasks accepted (durable) per agent.",
            |s| s.submitted,
        ),
        ("autonomos_tasks_completed", "Tasks that completed.", |s| {
            s.completed
        }),
        (
            "autonomos_tasks_failed",
            "Tasks that failed (attempts used up, or not retryable).",
            |s| s.failed,
        ),
        (
            "autonomos_tasks_retried",
            "Attempts that ended and were retried.",
            |s| s.retried,
        ),
        (
            "autonomos_tasks_canceled",
            "Tasks canceled by an operator.",
            |s| s.canceled,
        ),
        (
            "autonomos_tasks_rejected",
            "Tasks the agent refused (-32010).",
            |s| s.rejected,
        ),
        (
            "autonomos_task_answers_ignored",
            "Answers for tasks no longer running on that replica.",
            |s| s.ignored,
        ),
        (
            "autonomos_task_protocol_noise_lines",
            "stdout lines of task agents that were not JSON-RPC (logged).",
            |s| s.noise,
        ),
    ];
    for (name, help, get) in counters {
        family(
            e,
            name,
            help,
            Counter,
            st.iter().map(|(a, s)| (agent(a), get(s) as f64)),
        )?;
    }
    family(
        e,
        "autonomos_task_queue_length",
        "Tasks waiting per agent.",
        Gauge,
        st.iter().map(|(a, s)| (agent(a), s.queue as f64)),
    )?;
    family(
        e,
        "autonomos_task_in_flight",
        "Tasks running per agent.",
        Gauge,
        st.iter().map(|(a, s)| (agent(a), s.in_flight as f64)),
    )?;
    family(
        e,
        "autonomos_task_oldest_wait_seconds",
        "How long the oldest waiting task has waited.",
        Gauge,
        st.iter().map(|(a, s)| (agent(a), s.oldest_wait)),
    )?;
    family(
        e,
        "autonomos_replica_tasks_in_flight",
        "Tasks running per replica.",
        Gauge,
        st.iter().flat_map(|(a, s)| {
            s.replicas
                .iter()
                .map(move |(i, n)| (replica(a, *i), *n as f64))
        }),
    )?;
    histogram(
        e,
        "autonomos_task_wait_seconds",
        "From submit (or re-queue) to task.run.",
        st.iter().map(|(a, s)| (a.as_str(), &s.wait)),
    )?;
    histogram(
        e,
        "autonomos_task_run_seconds",
        "From task.run to the agent's answer (or the attempt's end).",
        st.iter().map(|(a, s)| (a.as_str(), &s.run)),
    )
}

fn histogram<'a>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl Iterator<Item = (&'a str, &'a Histogram)>,
) -> Result<(), std::fmt::Error> {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (a, h) in rows {
        let labels = agent(a);
        let mut row = m.encode_family(&labels)?;
        row.encode_histogram::<NoLabelSet>(h.sum, h.count, &h.buckets(), None)?;
    }
    Ok(())
}

/// The autoscaler: each autoscaled agent's decision and its changes.
pub(super) fn encode_autoscale(
    e: &mut DescriptorEncoder,
    status: &crate::proto::FleetStatus,
) -> Result<(), std::fmt::Error> {
    let autoscaled = || {
        status
            .agents
            .iter()
            .filter_map(|a| a.autoscale.as_ref().map(|x| (a.name.as_str(), x)))
    };
    family(
        e,
        "autonomos_autoscale_desired_replicas",
        "The autoscaler's current decision per agent.",
        MetricType::Gauge,
        autoscaled().map(|(a, x)| (agent(a), f64::from(x.desired))),
    )?;
    family(
        e,
        "autonomos_autoscale_enabled",
        "1 while the autoscaler sets the agent's replicas (0 after a manual scale).",
        MetricType::Gauge,
        autoscaled().map(|(a, x)| (agent(a), if x.enabled { 1.0 } else { 0.0 })),
    )?;
    family(
        e,
        "autonomos_autoscale_decisions",
        "Changes the autoscaler made, by direction.",
        MetricType::Counter,
        autoscaled().flat_map(|(a, x)| {
            [("up", x.ups), ("down", x.downs)].map(|(dir, n)| {
                let mut l = agent(a);
                l.push(("direction", dir.to_string()));
                (l, n as f64)
            })
        }),
    )
}
