//! `metrics`: current values, as text or JSON.

use super::*;

/// `metrics --json`: what a script wants of the current values.
#[derive(Debug, serde::Serialize)]
pub struct MetricsReport {
    pub at: Millis,
    pub host: crate::proto::HostStatus,
    pub agents: Vec<AgentMetrics>,
    pub alerts_firing: usize,
    pub alerts_pending: usize,
    pub incidents_open: usize,
}

#[derive(Debug, serde::Serialize)]
pub struct AgentMetrics {
    pub name: String,
    pub desired: u32,
    pub running: u32,
    pub cpu_percent: f64,
    pub rss_bytes: u64,
    pub restarts: u64,
    pub cpu_seconds: f64,
    pub log_lines: u64,
    pub log_dropped: u64,
}

pub fn metrics_report(s: &FleetStatus) -> MetricsReport {
    MetricsReport {
        at: s.now,
        host: s.host.clone(),
        agents: s
            .agents
            .iter()
            .map(|a| AgentMetrics {
                name: a.name.clone(),
                desired: a.desired,
                running: a.running,
                cpu_percent: a.replicas.iter().map(|r| r.cpu_percent).sum(),
                rss_bytes: a.replicas.iter().map(|r| r.rss_bytes).sum(),
                restarts: a.replicas.iter().map(|r| r.restarts).sum(),
                cpu_seconds: a.replicas.iter().map(|r| r.cpu_seconds).sum(),
                log_lines: a.log_lines,
                log_dropped: a.log_dropped,
            })
            .collect(),
        alerts_firing: s.alerts.iter().filter(|a| a.state == "firing").count(),
        alerts_pending: s.alerts.iter().filter(|a| a.state == "pending").count(),
        incidents_open: s.incidents.iter().filter(|i| i.status == "open").count(),
    }
}

pub async fn metrics(g: &Global, json: bool) -> ExitCode {
    let status = match ask(g, Request::Status).await {
        Ok(Response::Status { status }) => status,
        Ok(r) => return unexpected(r),
        Err(e) => return fail(&e, json),
    };
    let r = metrics_report(&status);
    if json {
        return json_out(&r);
    }
    let h = &r.host;
    println!(
        "host  cpu {:.1}%  memory {} / {}  swap {} / {}  load {:.2} {:.2} {:.2}  net rx {}/s tx {}/s",
        h.cpu_percent,
        format_size(h.memory_used),
        format_size(h.memory_total),
        format_size(h.swap_used),
        format_size(h.swap_total),
        h.load[0],
        h.load[1],
        h.load[2],
        format_size(h.net_rx_bps as u64),
        format_size(h.net_tx_bps as u64)
    );
    println!(
        "      collector tick {:.2} ms; alerts firing {}, pending {}; open incidents {}\n",
        h.collect_seconds * 1000.0,
        r.alerts_firing,
        r.alerts_pending,
        r.incidents_open
    );
    println!(
        "{:<24} {:>9} {:>7} {:>10} {:>9} {:>10} {:>10}",
        "AGENT", "REPLICAS", "CPU%", "MEMORY", "RESTARTS", "CPU-SEC", "LOG-LINES"
    );
    for a in &r.agents {
        println!(
            "{:<24} {:>9} {:>7.1} {:>10} {:>9} {:>10.1} {:>10}",
            a.name,
            format!("{}/{}", a.running, a.desired),
            a.cpu_percent,
            format_size(a.rss_bytes),
            a.restarts,
            a.cpu_seconds,
            a.log_lines
        );
    }
    ExitCode::SUCCESS
}
