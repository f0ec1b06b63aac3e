//! The auto scaling manager's decisions, pure: from an agent's figures to
//! the replicas it should have and why.
//!
//! - Each target recommends by the Kubernetes HPA rule,
//!   `desired = ceil(current × metric / target)`, doing nothing while the
//!   ratio stays within the tolerance band; the largest recommendation
//!   wins.
//! - Up at once, but at most `max_step_up` times the fewest replicas of
//!   the last minute (and at least one more).
//! - Down only to the highest recommendation of the last
//!   `scale_down_window`, and not within `cooldown` of the last change.
//! - Never below `min` nor above `max`, nor past what the resource pool
//!   admits. With `min = 0`, an agent idle for `idle_window` goes to zero,
//!   and a waiting task wakes it (one replica) at once.
//! - `predict`: a Holt linear-trend forecast of arrivals `horizon` ahead
//!   recommends for the forecast when it exceeds the load now.

mod forecast;
#[cfg(test)]
mod tests;

pub use forecast::Holt;

use std::collections::VecDeque;

use crate::core::lifecycle::Millis;

/// One target and its value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// Tasks waiting per replica.
    QueuePerReplica(f64),
    /// Tasks in flight ÷ room (replicas × concurrency), 0-1.
    Utilization(f64),
    /// Run time's 95th percentile, seconds.
    LatencyP95(f64),
    /// Cores per replica.
    Cpu(f64),
}

impl Target {
    pub fn name(&self) -> &'static str {
        match self {
            Target::QueuePerReplica(_) => "queue_per_replica",
            Target::Utilization(_) => "utilization",
            Target::LatencyP95(_) => "latency_p95",
            Target::Cpu(_) => "cpu",
        }
    }

    pub fn value(&self) -> f64 {
        match *self {
            Target::QueuePerReplica(v)
            | Target::Utilization(v)
            | Target::LatencyP95(v)
            | Target::Cpu(v) => v,
        }
    }
}

/// `autoscale = { ... }` of one agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub min: u32,
    pub max: u32,
    pub targets: Vec<Target>,
    /// The band around 1.0 of metric ÷ target within which nothing changes.
    pub tolerance: f64,
    pub scale_down_window_ms: Millis,
    /// No scale-down within this of the last change.
    pub cooldown_ms: Millis,
    /// At most this many times the fewest replicas of the last minute.
    pub max_step_up: f64,
    /// Forecast arrivals this far ahead (None: reactive only).
    pub predict_horizon_ms: Option<Millis>,
    /// With `min = 0`: idle (nothing waiting or running) this long → zero.
    pub idle_window_ms: Millis,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            min: 1,
            max: 8,
            targets: Vec::new(),
            tolerance: 0.1,
            scale_down_window_ms: 300_000,
            cooldown_ms: 30_000,
            max_step_up: 2.0,
            predict_horizon_ms: None,
            idle_window_ms: 300_000,
        }
    }
}

/// An agent's figures at one decision.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Metrics {
    /// Replicas it has now (desired; the count the targets divide by).
    pub current: u32,
    pub queue: f64,
    pub in_flight: f64,
    /// Tasks one replica runs at once.
    pub concurrency: f64,
    /// Run time's p95, seconds (None before any task).
    pub latency_p95: Option<f64>,
    /// Mean run time, seconds (for the forecast; None before any task).
    pub mean_run: Option<f64>,
    /// Cores used by all its replicas together.
    pub cpu: f64,
    /// Tasks submitted per second, recently.
    pub arrivals: f64,
    /// Replicas the pool could still admit.
    pub pool_room: u32,
}

/// What one target recommends.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    pub target: Target,
    /// The metric as the target measures it (per replica where it is).
    pub metric: Option<f64>,
    pub desired: u32,
    /// Why: within tolerance, no data yet, …
    pub note: String,
}

/// The outcome of one decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub from: u32,
    pub to: u32,
    /// The largest recommendation before stabilization.
    pub recommended: u32,
    pub recommendations: Vec<Recommendation>,
    /// Why `to` is what it is, in words.
    pub reason: String,
}

/// What the autoscaler remembers of one agent between decisions.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// (when, largest recommendation), the last `scale_down_window`.
    recent: VecDeque<(Millis, u32)>,
    /// (when, replicas), the last minute (for the step bound).
    counts: VecDeque<(Millis, u32)>,
    pub last_change: Option<Millis>,
    /// Since when nothing waits or runs.
    idle_since: Option<Millis>,
    pub forecast: Holt,
}

/// One target's recommendation by the HPA rule.
fn recommend(t: Target, m: &Metrics, tolerance: f64) -> Recommendation {
    let cur = m.current.max(1) as f64;
    let metric = match t {
        Target::QueuePerReplica(_) => Some(m.queue / cur),
        Target::Utilization(_) => Some(m.in_flight / (cur * m.concurrency.max(1.0))),
        Target::LatencyP95(_) => m.latency_p95,
        Target::Cpu(_) => Some(m.cpu / cur),
    };
    let Some(metric) = metric else {
        return Recommendation {
            target: t,
            metric: None,
            desired: m.current,
            note: "no data yet".into(),
        };
    };
    if m.current == 0 {
        // Nothing runs: a queue needs replicas; anything else has no load.
        let desired = match t {
            Target::QueuePerReplica(q) if m.queue > 0.0 => (m.queue / q).ceil().max(1.0) as u32,
            _ if m.queue > 0.0 => 1,
            _ => 0,
        };
        return Recommendation {
            target: t,
            metric: Some(metric),
            desired,
            note: "no replica runs".into(),
        };
    }
    let ratio = metric / t.value();
    if (ratio - 1.0).abs() <= tolerance {
        return Recommendation {
            target: t,
            metric: Some(metric),
            desired: m.current,
            note: format!("within tolerance ({:.0}% of target)", ratio * 100.0),
        };
    }
    let desired = (m.current as f64 * ratio).ceil().max(0.0);
    Recommendation {
        target: t,
        metric: Some(metric),
        desired: desired.min(f64::from(u32::MAX)) as u32,
        note: format!("{:.0}% of target", ratio * 100.0),
    }
}

/// Replicas needed for a forecast arrival rate: the work arriving each
/// second (rate × mean run time) over what one replica does at the
/// utilization aimed for.
fn for_forecast(rate: f64, m: &Metrics, spec: &Spec) -> Option<u32> {
    let mean = m.mean_run?;
    let aim = spec
        .targets
        .iter()
        .find_map(|t| match t {
            Target::Utilization(u) => Some(*u),
            _ => None,
        })
        .unwrap_or(0.8);
    let per_replica = m.concurrency.max(1.0) * aim.max(0.05);
    Some((rate.max(0.0) * mean / per_replica).ceil() as u32)
}

/// Decides the agent's replicas now. `state` is updated.
pub fn decide(spec: &Spec, state: &mut State, now: Millis, m: &Metrics) -> Decision {
    let recs: Vec<Recommendation> = spec
        .targets
        .iter()
        .map(|t| recommend(*t, m, spec.tolerance))
        .collect();
    let mut recommended = recs.iter().map(|r| r.desired).max().unwrap_or(m.current);
    let mut why = Vec::new();
    // The forecast, when it asks for more than the load now does.
    state.forecast.observe(now, m.arrivals);
    if let Some(h) = spec.predict_horizon_ms
        && let Some(rate) = state.forecast.forecast(h)
        && let Some(n) = for_forecast(rate, m, spec)
        && n > recommended
    {
        why.push(format!(
            "forecast {rate:.1} tasks/s in {}s needs {n}",
            h / 1000
        ));
        recommended = n;
    }
    // Idle → zero (min = 0 only); a waiting task wakes at once.
    let idle = m.queue <= 0.0 && m.in_flight <= 0.0;
    if idle {
        state.idle_since.get_or_insert(now);
    } else {
        state.idle_since = None;
    }
    state.recent.push_back((now, recommended));
    while state
        .recent
        .front()
        .is_some_and(|(t, _)| now.saturating_sub(*t) > spec.scale_down_window_ms)
    {
        state.recent.pop_front();
    }
    state.counts.push_back((now, m.current));
    while state
        .counts
        .front()
        .is_some_and(|(t, _)| now.saturating_sub(*t) > 60_000)
    {
        state.counts.pop_front();
    }
    let cur = m.current;
    let mut to = recommended;
    if to > cur {
        let base = state.counts.iter().map(|c| c.1).min().unwrap_or(cur);
        let bound = ((base as f64 * spec.max_step_up).ceil() as u32).max(base + 1);
        if to > bound {
            why.push(format!("at most ×{} a minute: {bound}", spec.max_step_up));
            to = bound.max(cur);
        }
    } else if to < cur {
        let highest = state.recent.iter().map(|r| r.1).max().unwrap_or(to);
        if highest > to {
            to = highest.min(cur);
            if to == cur {
                why.push(format!(
                    "down waits: {highest} recommended within the last {}s",
                    spec.scale_down_window_ms / 1000
                ));
            }
        }
        if to < cur
            && let Some(last) = state.last_change
            && now.saturating_sub(last) < spec.cooldown_ms
        {
            why.push(format!(
                "cool-down: {}s since the last change",
                now.saturating_sub(last) / 1000
            ));
            to = cur;
        }
    }
    if spec.min == 0 {
        to = sleep_or_wake(spec, state, now, m, to, &mut why);
    }
    if to < spec.min {
        why.push(format!("min {}", spec.min));
        to = spec.min;
    }
    if to > spec.max {
        why.push(format!("max {}", spec.max));
        to = spec.max;
    }
    if to > cur && to - cur > m.pool_room {
        why.push(format!("the pool admits {} more", m.pool_room));
        to = cur + m.pool_room;
    }
    if to != cur {
        state.last_change = Some(now);
    }
    let reason = if why.is_empty() {
        match to.cmp(&cur) {
            std::cmp::Ordering::Greater => "scale up to the recommendation".to_string(),
            std::cmp::Ordering::Less => "scale down to the recommendation".to_string(),
            std::cmp::Ordering::Equal => "steady".to_string(),
        }
    } else {
        why.join("; ")
    };
    Decision {
        from: cur,
        to,
        recommended,
        recommendations: recs,
        reason,
    }
}

/// With `min = 0`: to zero once idle for the idle window; a waiting task
/// wakes a sleeping agent; until the window ends one replica stays.
fn sleep_or_wake(
    spec: &Spec,
    state: &State,
    now: Millis,
    m: &Metrics,
    mut to: u32,
    why: &mut Vec<String>,
) -> u32 {
    let cur = m.current;
    let idle_long = state
        .idle_since
        .is_some_and(|s| now.saturating_sub(s) >= spec.idle_window_ms);
    if idle_long {
        if cur > 0 {
            why.push(format!("idle for {}s: to zero", spec.idle_window_ms / 1000));
        }
        to = 0;
    } else if cur == 0 && m.queue > 0.0 {
        why.push("a task waits: waking".into());
        to = to.max(1);
    } else if to == 0 && cur > 0 {
        // Not idle long enough: one stays.
        to = 1;
    }
    to
}
