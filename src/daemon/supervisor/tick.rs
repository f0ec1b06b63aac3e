//! Once a collector tick: samples, the figures rules read, evaluation,
//! the /metrics scrape, and what subscribers hear about it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::AUDIT_SHOWN;
use super::actor::Actor;
use super::execute::requested;
use crate::core::lifecycle::{Millis, State};
use crate::core::supervise::Observation;
use crate::daemon::collector::Sample;
use crate::daemon::health::Part;
use crate::daemon::metrics::Scrape;
use crate::daemon::observe::AgentFacts;
use crate::proto::{
    ALERTS_LISTED, BackupProgress, HostStatus, INCIDENTS_LISTED, ReplicaSample, ServerEvent,
};

impl Actor {
    pub(super) fn on_samples(&mut self, samples: Vec<Sample>, host: HostStatus) {
        self.host = host.clone();
        // Nobody subscribed: skip building the event (500 names a second).
        let publish = self.events.has_subscribers();
        let mut replicas = Vec::with_capacity(if publish { samples.len() } else { 0 });
        for s in samples {
            if publish && let Some(a) = self.agents.get(s.agent) {
                replicas.push(ReplicaSample {
                    agent: a.spec.name.clone(),
                    replica: s.index,
                    cpu_percent: s.cpu_percent,
                    rss_bytes: s.rss_bytes,
                    processes: s.processes,
                    attention: None,
                });
            }
            self.on_sample(s);
        }
        self.update_attention();
        for rs in &mut replicas {
            rs.attention = self
                .agents
                .iter()
                .find(|a| a.spec.name == rs.agent && a.spec.tty.is_some())
                .and_then(|a| a.replicas.get(&rs.replica))
                .and_then(|r| r.attention);
        }
        if publish {
            let tasks = self
                .tasks
                .as_ref()
                .map(|t| t.summaries())
                .unwrap_or_default();
            self.events.emit(ServerEvent::Samples {
                host,
                replicas,
                tasks,
            });
        }
        self.observe_tick();
    }

    fn on_sample(&mut self, s: Sample) {
        let Some(a) = self.agents.get_mut(s.agent) else {
            return;
        };
        let limited = a.spec.resources.memory_limit.is_some();
        let Some(r) = a.replicas.get_mut(&s.index) else {
            return;
        };
        if r.s.run.map(|run| run.id) != Some(s.run_id) {
            return;
        }
        r.cpu_percent = s.cpu_percent;
        r.cpu_seconds += s.cpu_seconds;
        r.rss_bytes = s.rss_bytes;
        r.processes = s.processes;
        if limited {
            self.touch(s.agent);
            let obs = Observation::Memory {
                run_id: s.run_id,
                rss: s.rss_bytes,
            };
            self.decide(s.agent, s.index, obs);
        }
    }

    pub(super) fn backup_running(&self) -> bool {
        self.backups
            .as_ref()
            .is_some_and(|b| b.busy.load(Ordering::SeqCst))
    }

    pub(super) fn backup_progress(&self) -> Option<BackupProgress> {
        self.backups.as_ref().and_then(|b| b.meter.read())
    }

    /// Tells subscribers about new audit records and backups starting or
    /// ending (checked once per tick).
    fn publish_audit(&mut self) {
        let recent = self.observe.audit_recent(AUDIT_SHOWN);
        let seen = (
            recent.last().map_or(0, |r| r.seq),
            self.backup_running(),
            self.backup_progress(),
        );
        if seen != self.audit_seen && self.events.has_subscribers() {
            self.events.emit(ServerEvent::Audit {
                records: recent,
                backup_running: seen.1,
                progress: seen.2.clone(),
            });
        }
        self.audit_seen = seen;
    }

    /// Tells subscribers when writes to the data dir start or stop failing
    /// (checked once per tick; the error counts alone do not wake them).
    fn publish_storage(&mut self) {
        let faults = self.health.faults();
        let parts = |v: &[crate::proto::StorageFault]| -> Vec<String> {
            v.iter()
                .map(|f| format!("{}: {}", f.part, f.error))
                .collect()
        };
        if parts(&faults) != parts(&self.storage_seen) {
            if self.events.has_subscribers() {
                self.events.emit(ServerEvent::Storage {
                    faults: faults.clone(),
                });
            }
            self.storage_seen = faults;
        }
    }

    /// Tells subscribers when alerts, incidents or notifiers changed.
    pub(super) fn publish_alerts(&mut self) {
        let notifiers: u64 = self
            .observe
            .notifier_status()
            .iter()
            .map(|n| n.sent + n.failed + n.dropped)
            .sum();
        let notifiers_changed = notifiers != self.notifiers_seen;
        self.notifiers_seen = notifiers;
        if (self.observe.take_changed() | notifiers_changed) && self.events.has_subscribers() {
            let (alerts, alerts_omitted) = self.observe.alerts_listed(ALERTS_LISTED);
            let (incidents, incidents_omitted) = self.observe.incidents(false, INCIDENTS_LISTED);
            self.events.emit(ServerEvent::Alerts {
                alerts,
                incidents,
                notifiers: self.observe.notifier_status(),
                alerts_omitted,
                incidents_omitted,
            });
        }
    }

    /// A new incident about an agent starts with what led to it: that
    /// agent's restarts, failures and stops of the last ten minutes, from
    /// the replicas' transition histories.
    fn backfill_incidents(&mut self, now: Millis) {
        use crate::core::incident::{Entry, EntryKind};
        for (id, agent) in self.observe.take_opened() {
            let Some(opened_at) = self.observe.incident(id).map(|i| i.opened_at) else {
                continue;
            };
            let Some(a) = self
                .agents
                .iter()
                .find(|a| a.spec.name == agent && !a.removed)
            else {
                continue;
            };
            let since = now.saturating_sub(10 * 60_000);
            let mut before = Vec::new();
            for r in a.replicas.values() {
                for t in r.s.lc.history() {
                    let kind = match t.to {
                        // Restarts someone asked for are on the timeline as
                        // their request, by who asked.
                        State::Adaptation if requested(t) => continue,
                        State::Adaptation => EntryKind::Restart,
                        State::Failed | State::Stopped => EntryKind::State,
                        _ => continue,
                    };
                    if t.at >= since && t.at < opened_at {
                        before.push(Entry {
                            at: t.at,
                            kind,
                            by: "autonomos".into(),
                            text: format!(
                                "{agent}/{}: {} → {} ({})",
                                r.s.index, t.from, t.to, t.reason
                            ),
                        });
                    }
                }
            }
            if !before.is_empty() {
                self.observe.backfill(id, before);
            }
        }
    }

    /// The per-agent figures rules read.
    fn facts(&self, now: Millis) -> Vec<AgentFacts> {
        let tasks = self.tasks.as_ref().map(|t| t.stats()).unwrap_or_default();
        self.agents
            .iter()
            .filter(|a| !a.removed)
            .map(|a| {
                let mut f = AgentFacts {
                    name: a.spec.name.clone(),
                    desired: f64::from(if a.enabled { a.desired } else { 0 }),
                    log_dropped: a.output.stats.dropped.load(Ordering::Relaxed) as f64,
                    ..AgentFacts::default()
                };
                if let Some(t) = tasks.get(&a.spec.name) {
                    f.queue_length = t.queue as f64;
                    f.tasks_completed = t.completed as f64;
                    f.tasks_failed = t.failed as f64;
                    f.task_error_rate = t.error_rate;
                    f.task_latency_p95 = t.run_p95;
                }
                let mut youngest: Option<Millis> = None;
                for r in a.replicas.values() {
                    f.cpu += r.cpu_percent;
                    f.memory += r.rss_bytes as f64;
                    f.restarts += r.s.restarts as f64;
                    f.failures += r.s.failures as f64;
                    if r.attention == Some(crate::daemon::tty::Attention::WaitingInput) {
                        f.waiting_input += 1.0;
                    }
                    let st = r.s.state();
                    if st.is_running() {
                        f.running += 1.0;
                        if let Some(run) = &r.s.run {
                            youngest =
                                Some(youngest.map_or(run.started_at, |y| y.max(run.started_at)));
                        }
                    }
                    f.failed += f64::from(u8::from(st == State::Failed));
                    f.backoff += f64::from(u8::from(st == State::Backoff));
                    if let Some(limit) = a.spec.resources.memory_limit.filter(|l| *l > 0) {
                        f.memory_pct = f.memory_pct.max(r.rss_bytes as f64 * 100.0 / limit as f64);
                    }
                }
                f.uptime = youngest.map_or(0.0, |y| now.saturating_sub(y) as f64 / 1000.0);
                f
            })
            .collect()
    }

    /// One collector tick: the per-agent figures rules read, evaluation,
    /// and the /metrics scrape.
    fn observe_tick(&mut self) {
        let started = Instant::now();
        let now = self.clock.now();
        self.autoscale_tick(now);
        let facts = self.facts(now);
        self.observe
            .tick(now, &self.host, &facts, self.health.total_errors());
        self.backfill_incidents(now);
        self.publish_alerts();
        self.publish_audit();
        self.publish_storage();
        if let Some(slot) = &self.published {
            let (alerts, incidents_open) = self.observe.counts();
            let mut status = self.status_with(now, 0);
            status.tick_seconds = self.tick_seconds;
            let scrape = Scrape {
                status,
                alerts,
                incidents_open,
                storage_errors: [Part::State, Part::Audit]
                    .map(|p| (p.name(), self.health.errors(p)))
                    .to_vec(),
                tasks: self.tasks.as_ref().map(|t| t.stats()).unwrap_or_default(),
            };
            if let Ok(mut p) = slot.lock() {
                *p = Some(Arc::new(scrape));
            }
        }
        self.tick_seconds = started.elapsed().as_secs_f64();
    }
}
