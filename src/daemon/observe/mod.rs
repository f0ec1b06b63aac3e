//! The supervisor's observability state: metric history, alert evaluation,
//! the incident log and the hand-off to notifiers.
//!
//! Owned by the supervisor actor and fed once per collector tick, so every
//! rule sees one consistent set of values. Evaluation itself is the pure
//! engine in `core::alert`; this module keeps the series it reads, turns
//! alert changes into incidents, notifications and stored history, and
//! builds what clients see.

mod facts;
mod report;
pub use facts::*;
pub use report::*;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::config::Config;
use crate::core::alert::{
    self, AlertState, Change as AlertChange, Engine, Metric, Severity, Source,
};
use crate::core::incident::{EntryKind, Incident, Phase};
use crate::core::lifecycle::{Millis, State, Transition};
use crate::core::series::{Agg, Downsampled, Series};
use crate::daemon::notify::{Job, Notifiers};
use crate::daemon::store::{Change, Loaded, Store};
use crate::proto::{
    AgentHistory, AlertStatus, AlertsReport, HostStatus, IncidentStatus, MetricHistory,
    NotifierStatus, RuleStatus, SilenceStatus,
};

/// Full-resolution history kept for graphs (and CPU/memory rules).
pub const HISTORY_MS: Millis = 15 * 60_000;
/// Points per series in an attach snapshot (the console keeps 600).
pub const SNAPSHOT_POINTS: usize = 600;
/// Snapshot points over all agents and both series: bounds the frame.
const SNAPSHOT_AGENT_BUDGET: usize = 60_000;
/// The downsampled day view: one point a minute.
pub const DAY_STEP_MS: Millis = 60_000;
const DAY_POINTS: usize = 24 * 60;
/// Resolved incidents listed in the fleet status.
const RESOLVED_LISTED: usize = 20;
/// Timeline entries carried per incident in lists (`incidents show` has them all).
const RECENT_ENTRIES: usize = 8;
/// Alerts in an `alerts` answer; incidents in an `incidents` answer (both
/// keep an answer well inside one frame whatever the fleet does).
pub const ALERTS_REPORTED: usize = 2000;
pub const INCIDENTS_REPORTED: usize = 1000;

const HOST_METRICS: [Metric; 7] = [
    Metric::HostCpu,
    Metric::HostMemory,
    Metric::HostSwap,
    Metric::HostLoad1,
    Metric::HostNetRx,
    Metric::HostNetTx,
    Metric::StorageErrors,
];

struct HostSeries {
    m: Vec<Series>,
    cores: Vec<Series>,
    day_cpu: Downsampled,
    day_mem: Downsampled,
}

fn pct(used: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        used as f64 * 100.0 / total as f64
    }
}

pub struct Observe {
    interval: Millis,
    /// Per metric: how far back its series must reach.
    retention: HashMap<Metric, Millis>,
    host: HostSeries,
    last_tick: Option<Millis>,
    agents: HashMap<String, Vec<Series>>,
    engine: Engine,
    incidents: BTreeMap<u64, Incident>,
    next_incident: u64,
    dirty: BTreeSet<u64>,
    store: Store,
    notifiers: Notifiers,
    host_name: String,
    /// Something clients list changed since the last `take_changed`.
    changed: bool,
    /// A digest of the live alerts' summaries: a summary that follows its
    /// value is a change clients see.
    summaries_seen: u64,
    /// Incidents opened for an agent since the last `take_opened`: the
    /// supervisor backfills what led to them.
    opened: Vec<(u64, String)>,
    audit: Option<crate::daemon::audit::Audit>,
}

impl Observe {
    pub fn new(
        cfg: &Config,
        loaded: &Loaded,
        store: Store,
        notifiers: Notifiers,
        audit: Option<crate::daemon::audit::Audit>,
    ) -> Observe {
        let interval = (cfg.metrics.interval.as_millis() as Millis).max(1);
        let mut o = Observe {
            interval,
            retention: HashMap::new(),
            host: HostSeries {
                m: Vec::new(),
                cores: Vec::new(),
                day_cpu: Downsampled::new(DAY_STEP_MS, DAY_POINTS),
                day_mem: Downsampled::new(DAY_STEP_MS, DAY_POINTS),
            },
            last_tick: None,
            agents: HashMap::new(),
            engine: Engine::new(cfg.alerts.clone()),
            incidents: loaded.incidents.iter().map(|i| (i.id, i.clone())).collect(),
            next_incident: loaded.last_incident + 1,
            dirty: BTreeSet::new(),
            store,
            notifiers,
            host_name: rustix::system::uname()
                .nodename()
                .to_string_lossy()
                .into_owned(),
            changed: true,
            summaries_seen: 0,
            opened: Vec::new(),
            audit,
        };
        // The day view goes on where the last daemon left it.
        o.host
            .day_cpu
            .seed(loaded.host_day.iter().map(|p| (p.0, p.1)));
        o.host
            .day_mem
            .seed(loaded.host_day.iter().map(|p| (p.0, p.2)));
        o.plan_retention();
        o.host.m = HOST_METRICS.iter().map(|m| o.new_series(*m)).collect();
        o
    }

    /// How long each metric's series must reach back: the longest window a
    /// rule reads it over, and at least the graph history for CPU/memory.
    fn plan_retention(&mut self) {
        let mut r: HashMap<Metric, Millis> = HashMap::new();
        for m in [
            Metric::HostCpu,
            Metric::HostMemory,
            Metric::HostNetRx,
            Metric::HostNetTx,
            Metric::Cpu,
            Metric::Memory,
        ] {
            r.insert(m, HISTORY_MS);
        }
        for rule in self.engine.rules() {
            let mut reads = Vec::new();
            rule.expr.reads(&mut reads);
            for (m, _, w) in reads {
                let e = r.entry(m).or_insert(0);
                *e = (*e).max(w);
            }
        }
        self.retention = r;
    }

    fn new_series(&self, m: Metric) -> Series {
        let keep = self.retention.get(&m).copied().unwrap_or(0) + 2 * self.interval;
        // Cap: one point per tick over the retention, plus slack.
        let cap = (keep / self.interval) as usize + 8;
        Series::new(keep, cap)
    }

    /// A reload: new rules (alerts of kept rules keep their state) and
    /// notifiers. The sampling interval stays what the collector was
    /// started with (it changes at the next daemon start).
    pub fn reconfigure(&mut self, cfg: &Config) {
        self.engine.set_rules(cfg.alerts.clone());
        let before = self.retention.clone();
        self.plan_retention();
        if before != self.retention {
            // Re-create series whose retention changed, keeping their points.
            let plan: Vec<(Metric, Series)> = HOST_METRICS
                .iter()
                .map(|m| (*m, self.new_series(*m)))
                .collect();
            for (i, (_, mut fresh)) in plan.into_iter().enumerate() {
                for (t, v) in self.host.m[i].points() {
                    fresh.push(t, v);
                }
                self.host.m[i] = fresh;
            }
            let names: Vec<String> = self.agents.keys().cloned().collect();
            for name in names {
                let fresh: Vec<Series> =
                    AGENT_METRICS.iter().map(|m| self.new_series(*m)).collect();
                if let Some(old) = self.agents.get_mut(&name) {
                    for (slot, mut f) in fresh.into_iter().enumerate() {
                        for (t, v) in old[slot].points() {
                            f.push(t, v);
                        }
                        old[slot] = f;
                    }
                }
            }
        }
        self.notifiers.reconfigure(&cfg.notifiers);
        self.changed = true;
    }

    /// One collector tick: record, evaluate, act.
    /// `storage_errors`: failed writes to the data dir since start.
    pub fn tick(
        &mut self,
        now: Millis,
        host: &HostStatus,
        agents: &[AgentFacts],
        storage_errors: u64,
    ) {
        self.last_tick = Some(now);
        let hv = [
            host.cpu_percent,
            pct(host.memory_used, host.memory_total),
            pct(host.swap_used, host.swap_total),
            host.load[0],
            host.net_rx_bps,
            host.net_tx_bps,
            storage_errors as f64,
        ];
        // The storage error counter starts at 0 with the daemon: errors
        // before the first tick are an increase too.
        if let Some(s) = self.host.m.get_mut(6)
            && s.last().is_none()
        {
            s.push(now.saturating_sub(1), 0.0);
        }
        for (s, v) in self.host.m.iter_mut().zip(hv) {
            s.push(now, v);
        }
        let closed = (
            self.host.day_cpu.push(now, hv[0]),
            self.host.day_mem.push(now, hv[1]),
        );
        if let (Some((at, cpu)), Some((_, mem))) = closed {
            // A minute closed: kept in state.db for the next daemon's day
            // view (dropped, not waited for, if the writer is behind).
            let _ = self.store.write_soon(Change::HostDay { at, cpu, mem });
        }
        if self.host.cores.len() != host.per_core.len() {
            self.host.cores = host
                .per_core
                .iter()
                .map(|_| Series::new(HISTORY_MS, (HISTORY_MS / self.interval) as usize + 8))
                .collect();
        }
        for (s, v) in self.host.cores.iter_mut().zip(&host.per_core) {
            s.push(now, *v);
        }
        let mut added = false;
        for f in agents {
            if !self.agents.contains_key(&f.name) {
                let fresh = AGENT_METRICS.iter().map(|m| self.new_series(*m)).collect();
                self.agents.insert(f.name.clone(), fresh);
                added = true;
            }
            if let Some(series) = self.agents.get_mut(&f.name) {
                for (s, v) in series.iter_mut().zip(f.values()) {
                    s.push(now, v);
                }
            }
        }
        // An agent removed (maybe while another was added): drop its series.
        if added || self.agents.len() != agents.len() {
            let live: BTreeSet<&str> = agents.iter().map(|f| f.name.as_str()).collect();
            self.agents.retain(|k, _| live.contains(k.as_str()));
        }
        let names: Vec<&str> = agents.iter().map(|f| f.name.as_str()).collect();
        let view = SeriesView {
            host: &self.host.m,
            agents: &self.agents,
        };
        let changes = self.engine.evaluate(&view, &names, now);
        for c in changes {
            self.on_alert_change(c, now);
        }
        let summaries = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            for a in self.engine.alerts() {
                (&a.id, &a.summary).hash(&mut h);
            }
            h.finish()
        };
        if summaries != self.summaries_seen {
            self.summaries_seen = summaries;
            self.changed = true;
        }
        self.flush();
    }

    fn on_alert_change(&mut self, c: AlertChange, now: Millis) {
        self.changed = true;
        let a = &c.alert;
        let summary = a.summary.as_str();
        tracing::warn!(
            alert.id = %a.id,
            alert.severity = a.severity.name(),
            alert.state = a.state.name(),
            agent = a.agent.as_deref(),
            summary,
            "alert {}",
            a.state.name()
        );
        let _ = self.store.write_soon(Change::AlertEvent {
            at: now,
            id: a.id.clone(),
            severity: a.severity.name().into(),
            state: a.state.name().into(),
            summary: a.summary.clone(),
        });
        let text = format!("{} {}: {}", a.id, a.state.name(), a.summary);
        // Every open incident about this alert or its agent hears about it:
        // one cause, one incident. A second rule firing for an agent with
        // an open incident joins that incident (raising its level when it
        // is worse) instead of opening another.
        let mut incident = None;
        let opens = a.state == AlertState::Firing && a.severity <= Severity::Major;
        for inc in self.incidents.values_mut().filter(|i| i.is_open()) {
            let same_alert = inc.alert.as_deref() == Some(a.id.as_str());
            let same_agent = a.agent.is_some() && inc.agent == a.agent;
            if same_alert || same_agent {
                inc.record(now, EntryKind::Alert, "autonomos", text.clone());
                if opens {
                    inc.raise(a.severity.level(), &text, "autonomos", now);
                }
                self.dirty.insert(inc.id);
                if incident.is_none() || same_alert {
                    incident = Some(inc.id);
                }
            }
        }
        if opens && incident.is_none() {
            let id = self.open_incident(
                a.summary.clone(),
                a.severity.level(),
                Some(a.id.clone()),
                a.agent.clone(),
                "autonomos",
                now,
            );
            if let Some(inc) = self.incidents.get_mut(&id) {
                inc.record(now, EntryKind::Alert, "autonomos", text);
            }
            incident = Some(id);
        }
        if c.notify {
            self.notifiers.send(Job {
                payload: alert_json(a, &self.host_name, incident),
                id: a.id.clone(),
                state: a.state.name(),
                severity: a.severity,
            });
        }
    }

    /// The newest audit records.
    pub fn audit_recent(&self, n: usize) -> Vec<crate::core::audit::Record> {
        self.audit.as_ref().map(|a| a.recent(n)).unwrap_or_default()
    }

    /// A system event for the audit trail.
    pub fn audit(&self, action: &str, args: serde_json::Value, result: &str) {
        self.audit_as("autonomos", action, args, result);
    }

    /// A system action by one of the daemon's own parts (the autoscaler).
    pub fn audit_as(&self, actor: &str, action: &str, args: serde_json::Value, result: &str) {
        if let Some(a) = &self.audit {
            a.record(actor, action, args, result);
        }
    }

    /// Opens an incident; returns its id.
    pub fn open_incident(
        &mut self,
        title: String,
        level: u8,
        alert: Option<String>,
        agent: Option<String>,
        by: &str,
        now: Millis,
    ) -> u64 {
        let id = self.next_incident;
        self.next_incident += 1;
        if let Some(a) = &agent {
            self.opened.push((id, a.clone()));
        }
        let inc = Incident::open(id, title, level, alert, agent, by, now);
        let level = inc.level;
        let title = inc.title.as_str();
        tracing::warn!(
            incident.id = id,
            incident.level = level,
            title,
            "incident opened"
        );
        self.audit(
            "incident-opened",
            serde_json::json!({ "id": id, "level": inc.level, "alert": inc.alert, "agent": inc.agent, "by": by }),
            &inc.title,
        );
        self.incidents.insert(id, inc);
        self.dirty.insert(id);
        self.changed = true;
        id
    }

    /// A lifecycle transition: restarts, failures and stops of an agent go
    /// on the timelines of its open incidents (and of open incidents not
    /// tied to an agent).
    pub fn on_transition(&mut self, agent: &str, replica: u32, t: &Transition) {
        let kind = match t.to {
            State::Adaptation => EntryKind::Restart,
            State::Failed | State::Stopped => EntryKind::State,
            _ => return,
        };
        if !self.incidents.values().any(|i| i.is_open()) {
            return;
        }
        let text = format!("{agent}/{replica}: {} → {} ({})", t.from, t.to, t.reason);
        for inc in self.incidents.values_mut().filter(|i| i.is_open()) {
            // Earlier transitions were backfilled when it opened.
            if inc.agent.as_deref().is_none_or(|a| a == agent) && t.at >= inc.opened_at {
                inc.record(t.at, kind, "autonomos", text.clone());
                self.dirty.insert(inc.id);
            }
        }
    }

    /// An operator action, for the timelines it concerns (`agent` None: all
    /// open incidents).
    pub fn on_action(&mut self, agent: Option<&str>, by: &str, text: &str, now: Millis) {
        for inc in self.incidents.values_mut().filter(|i| i.is_open()) {
            if agent.is_none() || inc.agent.is_none() || inc.agent.as_deref() == agent {
                inc.record(now, EntryKind::Action, by, text);
                self.dirty.insert(inc.id);
            }
        }
    }

    /// A failed task joins the timelines of its agent's open incidents
    /// (only those about that agent: a host incident is not flooded).
    pub fn note_on_open_incidents(&mut self, agent: &str, text: &str, now: Millis) {
        for inc in self.incidents.values_mut().filter(|i| i.is_open()) {
            if inc.agent.as_deref() == Some(agent) {
                inc.record(now, EntryKind::State, "autonomos", text);
                self.dirty.insert(inc.id);
                self.changed = true;
            }
        }
    }

    pub fn ack(&mut self, pattern: &str, by: &str) -> Vec<String> {
        let ids = self.engine.ack(pattern, by);
        if !ids.is_empty() {
            self.changed = true;
        }
        ids
    }

    pub fn silence(&mut self, pattern: &str, until: Millis, by: &str) -> Vec<String> {
        self.changed = true;
        self.engine.silence(pattern, until, by)
    }

    pub fn incident(&self, id: u64) -> Option<&Incident> {
        self.incidents.get(&id)
    }

    /// Applies `f` to an incident and stores it.
    pub fn with_incident<T>(
        &mut self,
        id: u64,
        f: impl FnOnce(&mut Incident) -> Result<T, String>,
    ) -> Result<T, String> {
        let inc = self.incidents.get_mut(&id).ok_or_else(|| {
            format!("no incident #{id} (open ones and the latest resolved ones are kept in memory)")
        })?;
        let out = f(inc)?;
        self.dirty.insert(id);
        self.changed = true;
        self.flush();
        Ok(out)
    }

    /// Writes changed incidents.
    pub fn flush(&mut self) {
        for id in std::mem::take(&mut self.dirty) {
            if let Some(inc) = self.incidents.get(&id)
                && !self
                    .store
                    .write_soon(Change::Incident(Box::new(inc.clone())))
            {
                // The store's queue is full: try again at the next flush.
                self.dirty.insert(id);
            }
        }
        // Keep memory bounded: drop the oldest resolved incidents from memory
        // (they stay in state.db).
        let resolved: Vec<u64> = self
            .incidents
            .values()
            .filter(|i| !i.is_open())
            .map(|i| i.id)
            .collect();
        if resolved.len() > crate::daemon::store::RESOLVED_KEPT {
            for id in &resolved[..resolved.len() - crate::daemon::store::RESOLVED_KEPT] {
                self.incidents.remove(id);
            }
        }
    }

    /// Incidents opened for an agent since the last call: (id, agent).
    pub fn take_opened(&mut self) -> Vec<(u64, String)> {
        std::mem::take(&mut self.opened)
    }

    /// Puts what happened before an incident at the start of its timeline.
    pub fn backfill(&mut self, id: u64, entries: Vec<crate::core::incident::Entry>) {
        if let Some(inc) = self.incidents.get_mut(&id) {
            inc.backfill(entries);
            self.dirty.insert(id);
            self.changed = true;
        }
    }

    /// True once after anything clients list changed.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    pub fn alerts(&self) -> Vec<AlertStatus> {
        let mut out: Vec<AlertStatus> = self.engine.alerts().map(alert_status).collect();
        // Firing first, then pending, then resolved; worst first; newest first.
        out.sort_by(|a, b| {
            let rank = |s: &str| match s {
                "firing" => 0,
                "pending" => 1,
                _ => 2,
            };
            (
                rank(&a.state),
                &a.severity_rank(),
                std::cmp::Reverse(a.since),
            )
                .cmp(&(
                    rank(&b.state),
                    &b.severity_rank(),
                    std::cmp::Reverse(b.since),
                ))
        });
        out
    }

    /// The most pressing `limit` alerts, and how many were left out.
    pub fn alerts_listed(&self, limit: usize) -> (Vec<AlertStatus>, usize) {
        let mut all = self.alerts();
        let omitted = all.len().saturating_sub(limit);
        all.truncate(limit);
        (all, omitted)
    }

    /// Open incidents, then the latest resolved ones (newest first): at
    /// most `limit`, and how many were left out.
    pub fn incidents(&self, all: bool, limit: usize) -> (Vec<IncidentStatus>, usize) {
        let resolved = if all { usize::MAX } else { RESOLVED_LISTED };
        let open = self.incidents.values().rev().filter(|i| i.is_open());
        let done = self
            .incidents
            .values()
            .rev()
            .filter(|i| !i.is_open())
            .take(resolved);
        let total = open.clone().count() + done.clone().count();
        let listed: Vec<IncidentStatus> =
            open.chain(done).take(limit).map(incident_status).collect();
        let omitted = total - listed.len();
        (listed, omitted)
    }

    pub fn notifier_status(&self) -> Vec<NotifierStatus> {
        self.notifiers.status()
    }

    pub fn report(&self) -> AlertsReport {
        let (alerts, omitted) = self.alerts_listed(ALERTS_REPORTED);
        AlertsReport {
            alerts,
            omitted,
            silences: self
                .engine
                .silences()
                .iter()
                .map(|s| SilenceStatus {
                    pattern: s.pattern.clone(),
                    until: s.until,
                    by: s.by.clone(),
                })
                .collect(),
            rules: self
                .engine
                .rules()
                .iter()
                .map(|r| RuleStatus {
                    name: r.name.clone(),
                    expr: r.source.clone(),
                    for_ms: r.for_ms,
                    severity: r.severity.name().into(),
                    agents: r.agents.clone(),
                })
                .collect(),
            notifiers: self.notifier_status(),
        }
    }

    /// The history an attaching client starts its graphs with.
    pub fn history(&self) -> MetricHistory {
        let day_cpu = self.host.day_cpu.points();
        let day_mem = self.host.day_mem.points();
        let day = MetricHistory {
            day_step_ms: DAY_STEP_MS,
            day_end: day_cpu.last().map(|p| p.0).unwrap_or(0),
            day_times: day_cpu.iter().map(|p| p.0).collect(),
            day_cpu: day_cpu.iter().map(|p| p.1 as f32).collect(),
            day_mem: day_mem.iter().map(|p| p.1 as f32).collect(),
            ..MetricHistory::default()
        };
        // Before the first tick there is only the stored day view.
        let Some(end) = self.last_tick else {
            return day;
        };
        let step = self.interval;
        let sample = |s: &Series, n: usize| -> Vec<f32> {
            let first = s.points().next().map(|p| p.0).unwrap_or(end);
            let avail = ((end.saturating_sub(first)) / step) as usize + 1;
            let n = n.min(avail);
            (0..n)
                .map(|i| {
                    let t = end - (n - 1 - i) as Millis * step;
                    s.at(t).unwrap_or(0.0) as f32
                })
                .collect()
        };
        let per_agent =
            (SNAPSHOT_AGENT_BUDGET / (2 * self.agents.len().max(1))).clamp(10, SNAPSHOT_POINTS);
        let mut agents: Vec<AgentHistory> = self
            .agents
            .iter()
            .map(|(name, s)| AgentHistory {
                name: name.clone(),
                cpu: sample(&s[0], per_agent),
                mem: sample(&s[1], per_agent),
            })
            .collect();
        agents.sort_by(|a, b| a.name.cmp(&b.name));
        MetricHistory {
            step_ms: step,
            end,
            host_cpu: sample(&self.host.m[0], SNAPSHOT_POINTS),
            host_mem: sample(&self.host.m[1], SNAPSHOT_POINTS),
            net_rx: sample(&self.host.m[4], SNAPSHOT_POINTS),
            net_tx: sample(&self.host.m[5], SNAPSHOT_POINTS),
            cores: self
                .host
                .cores
                .iter()
                .map(|s| sample(s, SNAPSHOT_POINTS))
                .collect(),
            agents,
            day_end: if day.day_times.is_empty() {
                end
            } else {
                day.day_end
            },
            ..day
        }
    }

    /// Points held in all series (for the cardinality/memory tests).
    pub fn points_held(&self) -> usize {
        self.host.m.iter().map(Series::len).sum::<usize>()
            + self
                .agents
                .values()
                .flat_map(|v| v.iter().map(Series::len))
                .sum::<usize>()
    }

    /// Alert counts by state, and open incidents by level (for /metrics).
    pub fn counts(&self) -> (BTreeMap<(String, String), u64>, [u64; 3]) {
        let mut by = BTreeMap::new();
        for st in ["pending", "firing", "resolved"] {
            for sev in ["critical", "major", "minor"] {
                by.insert((st.to_string(), sev.to_string()), 0);
            }
        }
        for a in self.engine.alerts() {
            *by.entry((a.state.name().into(), a.severity.name().into()))
                .or_insert(0) += 1;
        }
        let mut levels = [0u64; 3];
        for i in self.incidents.values().filter(|i| i.is_open()) {
            levels[(i.level.clamp(1, 3) - 1) as usize] += 1;
        }
        (by, levels)
    }
}

trait SeverityRank {
    fn severity_rank(&self) -> u8;
}

impl SeverityRank for AlertStatus {
    fn severity_rank(&self) -> u8 {
        Severity::parse(&self.severity).map_or(9, Severity::level)
    }
}

struct SeriesView<'a> {
    host: &'a [Series],
    agents: &'a HashMap<String, Vec<Series>>,
}

impl Source for SeriesView<'_> {
    fn value(
        &self,
        agent: Option<&str>,
        m: Metric,
        agg: Agg,
        window: Millis,
        now: Millis,
    ) -> Option<f64> {
        let s = match HOST_METRICS.iter().position(|x| *x == m) {
            Some(i) => self.host.get(i)?,
            None => self.agents.get(agent?)?.get(agent_slot(m)?)?,
        };
        if agg == Agg::Last {
            s.last()
        } else {
            s.aggregate(agg, now, window)
        }
    }
}
