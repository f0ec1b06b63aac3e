//! The collector: once per interval, on its own thread (never on the async
//! executor), measures each live replica's whole process tree (CPU % and RSS
//! summed over every descendant) from /proc, and the host's CPU and memory
//! with sysinfo.
//!
//! Only supervised pids are read: the trees of the leaders the supervisor
//! hands over, never a scan of every process on the host.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::daemon::procfs;
use crate::proto::HostStatus;

/// A live replica to measure.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub agent: usize,
    pub index: u32,
    pub run_id: u64,
    pub pid: i32,
    /// Look at its quiet processes every tick (a memory limit to enforce).
    pub eager: bool,
}

/// One replica's measurement.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub agent: usize,
    pub index: u32,
    pub run_id: u64,
    pub cpu_percent: f64,
    pub rss_bytes: u64,
    pub processes: u32,
    /// CPU time the tree used since the previous sample.
    pub cpu_seconds: f64,
}

/// How the collector talks to the supervisor (blocking calls, from its thread).
pub struct Link {
    /// Asks for the current targets; `None` when the supervisor is gone.
    pub targets: Box<dyn Fn() -> Option<Vec<Target>> + Send>,
    /// Hands over the results; false when the supervisor is gone.
    pub deliver: Box<dyn Fn(Vec<Sample>, HostStatus) -> bool + Send>,
}

/// Starts the collector thread. It ends when the supervisor goes away.
pub fn start(link: Link, every: Duration) {
    let spawned = std::thread::Builder::new()
        .name("autonomos-collector".into())
        .spawn(move || run(link, every));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the collector thread; no metrics or memory limits");
    }
}

fn run(link: Link, every: Duration) {
    let tick = procfs::ticks_per_second().max(1) as f64;
    let page = procfs::page_size();
    // (pid, start time) -> cpu ticks at the previous sample.
    let mut prev: HashMap<(i32, u64), u64> = HashMap::new();
    let mut last = Instant::now();
    let mut cache = procfs::Cache::default();
    let mut sys = match sysinfo::System::new() {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "host metrics unavailable");
            None
        }
    };
    let mut nets = sysinfo::Networks::new_with_refreshed_list().ok();
    // Bytes since the collector started, all interfaces but loopback.
    let (mut net_rx_total, mut net_tx_total) = (0u64, 0u64);
    loop {
        std::thread::sleep(every.saturating_sub(last.elapsed().min(every)));
        let Some(targets) = (link.targets)() else {
            return;
        };
        let now = Instant::now();
        let work = Instant::now();
        let elapsed = now.duration_since(last).as_secs_f64().max(1e-3);
        last = now;
        let mut next: HashMap<(i32, u64), u64> = HashMap::with_capacity(prev.len());
        let mut samples = Vec::with_capacity(targets.len());
        for t in targets {
            let mut ticks = 0u64;
            let mut rss = 0u64;
            let mut n = 0u32;
            cache.walk_with(t.pid, t.eager, |st| {
                if st.state == b'Z' {
                    return;
                }
                n += 1;
                rss += st.rss_pages * page;
                let key = (st.pid, st.start_ticks);
                // A process seen for the first time contributes from now on.
                let before = prev.get(&key).copied().unwrap_or(st.cpu_ticks);
                ticks += st.cpu_ticks.saturating_sub(before);
                next.insert(key, st.cpu_ticks);
            });
            samples.push(Sample {
                agent: t.agent,
                index: t.index,
                run_id: t.run_id,
                cpu_percent: ticks as f64 / tick / elapsed * 100.0,
                cpu_seconds: ticks as f64 / tick,
                rss_bytes: rss,
                processes: n,
            });
        }
        prev = next;
        cache.sweep();
        let (mut rx, mut tx) = (0u64, 0u64);
        if let Some(n) = nets.as_mut() {
            n.refresh(true);
            for (name, data) in n.iter() {
                if name.to_str() != Some("lo") {
                    rx += data.received();
                    tx += data.transmitted();
                }
            }
        }
        net_rx_total += rx;
        net_tx_total += tx;
        let mut host = match sys.as_mut() {
            Some(sys) => {
                sys.refresh_cpu_usage();
                sys.refresh_memory();
                let load = sysinfo::System::load_average().unwrap_or_default();
                HostStatus {
                    cpu_percent: sys.global_cpu_usage() as f64,
                    per_core: sys.cpus().iter().map(|c| c.usage() as f64).collect(),
                    memory_used: sys.used_memory(),
                    memory_total: sys.total_memory(),
                    net_rx_bps: rx as f64 / elapsed,
                    net_tx_bps: tx as f64 / elapsed,
                    swap_used: sys.used_swap(),
                    swap_total: sys.total_swap(),
                    load: [load.one, load.five, load.fifteen],
                    ..HostStatus::default()
                }
            }
            None => HostStatus::default(),
        };
        host.net_rx_total = net_rx_total;
        host.net_tx_total = net_tx_total;
        host.collect_seconds = work.elapsed().as_secs_f64();
        if !(link.deliver)(samples, host) {
            return;
        }
    }
}
