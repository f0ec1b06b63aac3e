//! The Prometheus endpoint: `GET /metrics` in the text exposition format
//! (0.0.4), encoded with the prometheus-client crate.
//!
//! The supervisor publishes an immutable [`Scrape`] after every collector
//! tick; a scrape encodes the latest one and never talks to the supervisor,
//! so a slow or hammering scraper cannot stall supervision. Labels are
//! bounded: agent name, replica index, lifecycle state, severity, level,
//! notifier name — never a pid or error text.

mod http;
mod tasks;

pub use http::{routes, serve};

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::core::lifecycle::State;
use crate::proto::FleetStatus;

/// What one scrape shows.
#[derive(Debug, Clone)]
pub struct Scrape {
    pub status: FleetStatus,
    /// (state, severity) → live alerts.
    pub alerts: BTreeMap<(String, String), u64>,
    /// Open incidents by level 1..3.
    pub incidents_open: [u64; 3],
    /// Failed writes to the data dir since start: (part, count).
    pub storage_errors: Vec<(&'static str, u64)>,
    /// Task agents' figures.
    pub tasks: crate::daemon::tasks::stats::Stats,
}

/// The latest scrape, shared between the supervisor and the server.
pub type Published = Arc<Mutex<Option<Arc<Scrape>>>>;

#[derive(Debug)]
struct ScrapeCollector(Arc<Scrape>);

type Labels = Vec<(&'static str, String)>;

fn family<L: EncodeLabelSet>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    rows: impl IntoIterator<Item = (L, f64)>,
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, kind)?;
    for (labels, v) in rows {
        let mut row = m.encode_family(&labels)?;
        match kind {
            MetricType::Counter => row.encode_counter::<NoLabelSet, f64, f64>(&v, None)?,
            _ => row.encode_gauge(&v)?,
        }
    }
    Ok(())
}

fn single(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    v: f64,
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, kind)?;
    match kind {
        MetricType::Counter => m.encode_counter::<NoLabelSet, f64, f64>(&v, None),
        _ => m.encode_gauge(&v),
    }
}

fn agent(name: &str) -> Labels {
    vec![("agent", name.to_string())]
}

fn replica(name: &str, index: u32) -> Labels {
    vec![("agent", name.to_string()), ("replica", index.to_string())]
}

impl Collector for ScrapeCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.0;
        encode_daemon(&mut enc, s)?;
        encode_host(&mut enc, &s.status)?;
        encode_agents(&mut enc, &s.status)?;
        encode_replicas(&mut enc, &s.status)?;
        tasks::encode_tasks(&mut enc, &s.tasks)?;
        tasks::encode_autoscale(&mut enc, &s.status)?;
        encode_alerts(&mut enc, s)
    }
}

/// The daemon itself: build, start time, tick durations, storage health.
fn encode_daemon(e: &mut DescriptorEncoder, s: &Scrape) -> Result<(), std::fmt::Error> {
    use MetricType::{Counter, Gauge};
    let st = &s.status;
    let h = &st.host;
    family(
        e,
        "autonomos_build_info",
        "Autonomos version (always 1).",
        Gauge,
        [(
            vec![("version", crate::proto::APP_VERSION.to_string())],
            1.0,
        )],
    )?;
    single(
        e,
        "autonomos_daemon_start_time_seconds",
        "When the daemon started, seconds since the Unix epoch.",
        Gauge,
        st.started_at as f64 / 1000.0,
    )?;
    single(
        e,
        "autonomos_collector_duration_seconds",
        "How long the collector's last tick took.",
        Gauge,
        h.collect_seconds,
    )?;
    single(
        e,
        "autonomos_evaluation_duration_seconds",
        "How long the supervisor's last tick of series, alert rules and this snapshot took.",
        Gauge,
        st.tick_seconds,
    )?;
    family(
        e,
        "autonomos_storage_errors",
        "Failed writes to the data dir since the daemon started, by part (state: state.db; audit: the audit trail).",
        Counter,
        s.storage_errors
            .iter()
            .map(|(part, n)| (vec![("part", part.to_string())], *n as f64)),
    )?;
    if let Some(q) = &st.shared_queue {
        single(
            e,
            "autonomos_shared_queue_up",
            "1 while the shared task queue's database answers ([tasks] store).",
            Gauge,
            f64::from(u8::from(q.connected)),
        )?;
    }
    family(
        e,
        "autonomos_storage_failing",
        "1 while writes to this part of the data dir fail.",
        Gauge,
        ["state", "audit"].iter().map(|part| {
            let failing = st.storage.iter().any(|f| f.part == *part);
            (
                vec![("part", part.to_string())],
                f64::from(u8::from(failing)),
            )
        }),
    )?;
    Ok(())
}

/// The host: CPU, memory, swap, load, network.
fn encode_host(e: &mut DescriptorEncoder, st: &FleetStatus) -> Result<(), std::fmt::Error> {
    use MetricType::{Counter, Gauge};
    let h = &st.host;
    single(
        e,
        "autonomos_host_cpu_usage_ratio",
        "Host CPU use over all cores, 0 to 1.",
        Gauge,
        h.cpu_percent / 100.0,
    )?;
    family(
        e,
        "autonomos_host_cpu_core_usage_ratio",
        "CPU use of each core, 0 to 1.",
        Gauge,
        h.per_core
            .iter()
            .enumerate()
            .map(|(i, v)| (vec![("core", i.to_string())], v / 100.0)),
    )?;
    for (name, help, v) in [
        (
            "autonomos_host_memory_used_bytes",
            "Host memory in use.",
            h.memory_used,
        ),
        (
            "autonomos_host_memory_total_bytes",
            "Host memory.",
            h.memory_total,
        ),
        (
            "autonomos_host_swap_used_bytes",
            "Swap in use.",
            h.swap_used,
        ),
        (
            "autonomos_host_swap_total_bytes",
            "Swap size.",
            h.swap_total,
        ),
    ] {
        single(e, name, help, Gauge, v as f64)?;
    }
    family(
        e,
        "autonomos_host_load_average",
        "Host load average over the period.",
        Gauge,
        ["1m", "5m", "15m"]
            .iter()
            .zip(h.load)
            .map(|(p, v)| (vec![("period", p.to_string())], v)),
    )?;
    single(
        e,
        "autonomos_host_network_receive_bytes",
        "Bytes received on all interfaces but loopback since the daemon started.",
        Counter,
        h.net_rx_total as f64,
    )?;
    single(
        e,
        "autonomos_host_network_transmit_bytes",
        "Bytes sent on all interfaces but loopback since the daemon started.",
        Counter,
        h.net_tx_total as f64,
    )?;

    Ok(())
}

/// Per agent: intent, limits, log lines.
fn encode_agents(e: &mut DescriptorEncoder, st: &FleetStatus) -> Result<(), std::fmt::Error> {
    use MetricType::{Counter, Gauge};
    let agents = || st.agents.iter();
    family(
        e,
        "autonomos_agent_replicas_desired",
        "Replicas the agent should run.",
        Gauge,
        agents().map(|a| (agent(&a.name), f64::from(a.desired))),
    )?;
    family(
        e,
        "autonomos_agent_replicas_running",
        "Replicas whose process is running (agent concurrency).",
        Gauge,
        agents().map(|a| (agent(&a.name), f64::from(a.running))),
    )?;
    family(
        e,
        "autonomos_agent_waiting_input",
        "Replicas of a tty agent waiting for a person: blocked reading their terminal with quiet output, or showing an `attention` pattern (tty agents only).",
        Gauge,
        agents()
            .filter(|a| a.replicas.iter().any(|r| r.attention.is_some()))
            .map(|a| {
                let n = a
                    .replicas
                    .iter()
                    .filter(|r| r.attention == Some(crate::proto::Attention::WaitingInput))
                    .count();
                (agent(&a.name), n as f64)
            }),
    )?;
    family(
        e,
        "autonomos_agent_enabled",
        "1 unless an operator stopped the agent.",
        Gauge,
        agents().map(|a| (agent(&a.name), f64::from(u8::from(a.enabled)))),
    )?;
    family(
        e,
        "autonomos_agent_memory_limit_bytes",
        "Memory limit of each replica's process tree.",
        Gauge,
        agents().filter_map(|a| a.memory_limit.map(|l| (agent(&a.name), l as f64))),
    )?;
    family(
        e,
        "autonomos_agent_log_lines",
        "Output lines the agent wrote.",
        Counter,
        agents().map(|a| (agent(&a.name), a.log_lines as f64)),
    )?;
    family(
        e,
        "autonomos_agent_log_dropped_lines",
        "Output lines dropped (log write failures).",
        Counter,
        agents().map(|a| (agent(&a.name), a.log_dropped as f64)),
    )?;

    Ok(())
}

/// Per replica: state, restarts, failures, CPU, memory, processes, uptime.
fn encode_replicas(e: &mut DescriptorEncoder, st: &FleetStatus) -> Result<(), std::fmt::Error> {
    use MetricType::{Counter, Gauge};
    let replicas = || {
        st.agents
            .iter()
            .flat_map(|a| a.replicas.iter().map(move |r| (a.name.as_str(), r)))
    };
    let mut m = e.encode_descriptor(
        "autonomos_replica_state",
        "1 for the lifecycle state the replica is in, 0 for the others.",
        None,
        Gauge,
    )?;
    for (name, r) in replicas() {
        for state in State::ALL {
            let labels = vec![
                ("agent", name.to_string()),
                ("replica", r.index.to_string()),
                ("state", state.to_string()),
            ];
            m.encode_family(&labels)?
                .encode_gauge(&f64::from(u8::from(r.state == state)))?;
        }
    }
    family(
        e,
        "autonomos_replica_healthy",
        "1 while every probe of the replica passes, 0 while one fails or has not run (probed replicas only).",
        Gauge,
        replicas().filter_map(|(n, r)| {
            let h = r.health.as_deref()?;
            Some((replica(n, r.index), if h == "healthy" { 1.0 } else { 0.0 }))
        }),
    )?;
    family(
        e,
        "autonomos_replica_ready",
        "1 while the replica's readiness probe passes; 0 while it fails or has not passed yet: it gets no tasks and its dependents wait (replicas with a readiness probe only).",
        Gauge,
        replicas()
            .filter_map(|(n, r)| Some((replica(n, r.index), if r.ready? { 1.0 } else { 0.0 }))),
    )?;
    family(
        e,
        "autonomos_replica_restarts",
        "Restarts of the replica slot, any cause (crash, operator, reload).",
        Counter,
        replicas().map(|(n, r)| (replica(n, r.index), r.restarts as f64)),
    )?;
    family(
        e,
        "autonomos_replica_failures",
        "Crashes, failed starts and memory-limit kills of the replica slot (not operator restarts).",
        Counter,
        replicas().map(|(n, r)| (replica(n, r.index), r.failures as f64)),
    )?;
    family(
        e,
        "autonomos_replica_cpu_seconds",
        "CPU time of the replica's process trees since the daemon started.",
        Counter,
        replicas().map(|(n, r)| (replica(n, r.index), r.cpu_seconds)),
    )?;
    family(
        e,
        "autonomos_replica_cpu_usage_ratio",
        "CPU use of the replica's whole process tree, in cores.",
        Gauge,
        replicas().map(|(n, r)| (replica(n, r.index), r.cpu_percent / 100.0)),
    )?;
    family(
        e,
        "autonomos_replica_resident_memory_bytes",
        "RSS summed over the replica's whole process tree.",
        Gauge,
        replicas().map(|(n, r)| (replica(n, r.index), r.rss_bytes as f64)),
    )?;
    family(
        e,
        "autonomos_replica_processes",
        "Processes in the replica's tree.",
        Gauge,
        replicas().map(|(n, r)| (replica(n, r.index), f64::from(r.processes))),
    )?;
    family(
        e,
        "autonomos_replica_uptime_seconds",
        "How long the replica's current process has run (0 when none runs).",
        Gauge,
        replicas().map(|(n, r)| {
            let up = r
                .started_at
                .filter(|_| r.pid.is_some())
                .map_or(0.0, |s| st.now.saturating_sub(s) as f64 / 1000.0);
            (replica(n, r.index), up)
        }),
    )?;

    Ok(())
}

/// Alerts, incidents and notifications.
fn encode_alerts(e: &mut DescriptorEncoder, s: &Scrape) -> Result<(), std::fmt::Error> {
    use MetricType::{Counter, Gauge};
    let st = &s.status;
    family(
        e,
        "autonomos_alerts",
        "Live alerts by state and severity.",
        Gauge,
        s.alerts.iter().map(|((state, sev), n)| {
            (
                vec![("state", state.clone()), ("severity", sev.clone())],
                *n as f64,
            )
        }),
    )?;
    family(
        e,
        "autonomos_incidents_open",
        "Open incidents by level (1 critical, 2 major, 3 minor).",
        Gauge,
        s.incidents_open
            .iter()
            .enumerate()
            .map(|(i, n)| (vec![("level", (i + 1).to_string())], *n as f64)),
    )?;
    for (name, help, f) in [
        (
            "autonomos_notifications_sent",
            "Notifications delivered.",
            (|n: &crate::proto::NotifierStatus| n.sent) as fn(&_) -> u64,
        ),
        (
            "autonomos_notifications_failed",
            "Notifications that failed (error, non-2xx answer, timeout).",
            |n| n.failed,
        ),
        (
            "autonomos_notifications_dropped",
            "Notifications dropped by the rate limit or a full queue.",
            |n| n.dropped,
        ),
    ] {
        family(
            e,
            name,
            help,
            Counter,
            st.notifiers
                .iter()
                .map(|n| (vec![("notifier", n.name.clone())], f(n) as f64)),
        )?;
    }
    Ok(())
}

/// The exposition text of one scrape.
pub fn encode(scrape: Arc<Scrape>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(ScrapeCollector(scrape)));
    let mut out = String::with_capacity(64 * 1024);
    if prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).is_err() {
        out.clear();
    }
    out
}
