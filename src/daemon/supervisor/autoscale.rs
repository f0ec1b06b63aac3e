//! The auto scaling manager in the supervisor: each collector tick, every
//! agent with `autoscale` gets a decision from `core::autoscale` on its
//! figures (the task queue, latency, CPU, arrivals); a change goes through
//! the same durable path as an operator's `scale`, recorded by
//! "autoscaler" on the audit trail, the daemon log and the agent's open
//! incidents. An operator's own `scale` turns it off for that agent until
//! `autoscale on`.

use std::collections::{HashMap, VecDeque};

use super::actor::{Actor, AgentChange};
use crate::core::autoscale::{self, Decision, Metrics};
use crate::core::lifecycle::Millis;
use crate::proto::{AutoscaleStatus, ScaleDecision, TargetStatus};

/// Who the autoscaler's changes are by.
pub(super) const WHO: &str = "autoscaler";
/// Changes kept per agent for `autoscale status`.
const RECENT: usize = 10;

/// What the autoscaler keeps per agent.
#[derive(Debug, Default)]
pub(super) struct Auto {
    pub off: bool,
    pub state: autoscale::State,
    pub last: Option<Decision>,
    pub recent: VecDeque<ScaleDecision>,
    pub ups: u64,
    pub downs: u64,
    /// (when, tasks submitted so far), for the arrival rate.
    submitted: Option<(Millis, u64)>,
}

pub(super) type Autos = HashMap<String, Auto>;

impl Actor {
    /// One round of decisions.
    pub(super) fn autoscale_tick(&mut self, now: Millis) {
        self.autoscale_agents(now, None);
    }

    /// A decision for one agent now (a task waits for a sleeping agent).
    pub(super) fn autoscale_one(&mut self, agent: &str, now: Millis) {
        self.autoscale_agents(now, Some(agent));
    }

    fn autoscale_agents(&mut self, now: Millis, only: Option<&str>) {
        // The shared figures may predate the submit that woke us: a wake
        // means at least one task waits.
        let stats = self.tasks.as_ref().map(|t| t.stats()).unwrap_or_default();
        for ai in 0..self.agents.len() {
            if only.is_some_and(|n| n != self.agents[ai].spec.name) {
                continue;
            }
            let a = &self.agents[ai];
            let Some(spec) = a.spec.autoscale.clone() else {
                continue;
            };
            if a.removed || !a.enabled || a.writing || self.shutting_down {
                continue;
            }
            let name = a.spec.name.clone();
            let s = stats.get(&name);
            let cpu: f64 = a.replicas.values().map(|r| r.cpu_percent).sum::<f64>() / 100.0;
            let req = crate::core::pool::Request {
                cpu: a.spec.resources.cpu,
                memory: a.spec.resources.memory,
            };
            let room = self
                .pool
                .room_for(req, spec.max.saturating_sub(a.desired))
                .0;
            let desired = a.desired;
            let concurrency = a.spec.tasks.as_ref().map_or(1, |t| t.concurrency);
            let auto = self.autos.entry(name.clone()).or_default();
            if auto.off {
                continue;
            }
            let submitted = s.map_or(0, |s| s.submitted);
            let arrivals = match auto.submitted {
                Some((at, before)) if now > at => {
                    submitted.saturating_sub(before) as f64 * 1000.0 / (now - at) as f64
                }
                _ => 0.0,
            };
            auto.submitted = Some((now, submitted));
            let m = Metrics {
                current: desired,
                queue: s.map_or(0.0, |s| s.queue as f64).max(if only.is_some() {
                    1.0
                } else {
                    0.0
                }),
                in_flight: s.map_or(0.0, |s| s.in_flight as f64),
                concurrency: f64::from(concurrency),
                latency_p95: s.and_then(|s| (s.run_p95 > 0.0).then_some(s.run_p95)),
                mean_run: s.and_then(|s| (s.run.count > 0).then(|| s.run.sum / s.run.count as f64)),
                cpu,
                arrivals,
                pool_room: room,
            };
            let d = autoscale::decide(&spec, &mut auto.state, now, &m);
            let change = (d.to != desired).then(|| (d.to, d.reason.clone()));
            auto.last = Some(d);
            if let Some((to, reason)) = change {
                if to > desired {
                    auto.ups += 1;
                } else {
                    auto.downs += 1;
                }
                if auto.recent.len() == RECENT {
                    auto.recent.pop_front();
                }
                auto.recent.push_back(ScaleDecision {
                    at: now,
                    from: desired,
                    to,
                    reason: reason.clone(),
                });
                tracing::info!(agent = %name, from = desired, to, reason = %reason, "autoscale");
                let text = format!("autoscaler: {desired} → {to} replicas ({reason})");
                self.observe.note_on_open_incidents(&name, &text, now);
                let args = serde_json::json!({ "agent": name, "from": desired, "to": to });
                self.observe.audit_as(WHO, "autoscale", args, &reason);
                let (answer, _) = tokio::sync::oneshot::channel();
                self.change_agent(ai, AgentChange::Scale(to), answer, WHO);
            }
        }
    }

    /// The autoscaler's view of an agent, for `status` and the console.
    pub(super) fn autoscale_status(&self, a: &super::actor::Agent) -> Option<AutoscaleStatus> {
        let spec = a.spec.autoscale.as_ref()?;
        let auto = self.autos.get(&a.spec.name);
        let last = auto.and_then(|x| x.last.as_ref());
        let targets = match last {
            Some(d) => d
                .recommendations
                .iter()
                .map(|r| TargetStatus {
                    name: r.target.name().into(),
                    target: r.target.value(),
                    current: r.metric,
                    recommends: r.desired,
                    note: r.note.clone(),
                })
                .collect(),
            None => spec
                .targets
                .iter()
                .map(|t| TargetStatus {
                    name: t.name().into(),
                    target: t.value(),
                    current: None,
                    recommends: a.desired,
                    note: "no decision yet".into(),
                })
                .collect(),
        };
        Some(AutoscaleStatus {
            enabled: !auto.is_some_and(|x| x.off),
            min: spec.min,
            max: spec.max,
            desired: a.desired,
            recommended: last.map_or(a.desired, |d| d.recommended),
            targets,
            reason: match (auto, last) {
                (Some(x), _) if x.off => {
                    "off: an operator scaled it by hand (autoscale on AGENT turns it back on)"
                        .into()
                }
                (_, Some(d)) => d.reason.clone(),
                _ => "no decision yet".into(),
            },
            recent: auto
                .map(|x| x.recent.iter().cloned().collect())
                .unwrap_or_default(),
            ups: auto.map_or(0, |x| x.ups),
            downs: auto.map_or(0, |x| x.downs),
        })
    }

    /// An operator scaled an autoscaled agent by hand: the autoscaler
    /// leaves it alone until `autoscale on`.
    pub(super) fn manual_scale(&mut self, agent: &str, who: &str) {
        if who == WHO {
            return;
        }
        if let Ok(ai) = self.find(agent)
            && self.agents[ai].spec.autoscale.is_some()
        {
            self.autos.entry(agent.to_string()).or_default().off = true;
        }
    }

    /// `autoscale on|off AGENT`.
    pub(super) fn autoscale_set(&mut self, agent: &str, on: bool) -> Result<String, String> {
        let ai = self.find(agent).map_err(|e| e.message)?;
        if self.agents[ai].spec.autoscale.is_none() {
            return Err(format!("`{agent}` has no `autoscale` in the config"));
        }
        let auto = self.autos.entry(agent.to_string()).or_default();
        auto.off = !on;
        if on {
            // A fresh start: no stale window from before it was off.
            auto.state = autoscale::State::default();
        }
        Ok(format!(
            "autoscaling {} for {agent}",
            if on { "on" } else { "off" }
        ))
    }
}
