//! Alert rules and their states: pending → firing → resolved, with
//! acknowledgement, silences and flap detection.
//!
//! Pure: the daemon passes in the metric [`Source`] and the time. Each rule
//! yields one alert instance for the host, or one per matching agent; an
//! instance's id is `rule` or `rule/agent`.

pub mod expr;

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use crate::core::lifecycle::Millis;

pub use expr::{Expr, Metric, ParseError, Source};

/// How bad: the manual's three incident levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Level 1: critical system failure.
    Critical,
    /// Level 2: major degradation.
    Major,
    /// Level 3: minor issue.
    Minor,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Major => "major",
            Severity::Minor => "minor",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s {
            "critical" => Severity::Critical,
            "major" => Severity::Major,
            "minor" => Severity::Minor,
            _ => return None,
        })
    }

    /// The manual's incident level, 1 to 3.
    pub fn level(self) -> u8 {
        match self {
            Severity::Critical => 1,
            Severity::Major => 2,
            Severity::Minor => 3,
        }
    }

    pub fn from_level(level: u8) -> Option<Severity> {
        match level {
            1 => Some(Severity::Critical),
            2 => Some(Severity::Major),
            3 => Some(Severity::Minor),
            _ => None,
        }
    }
}

/// A validated rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    pub name: String,
    /// The expression as written (shown to operators).
    pub source: String,
    #[serde(skip)]
    pub expr: Expr,
    /// How long the condition must hold before the alert fires, ms.
    pub for_ms: Millis,
    pub severity: Severity,
    /// Glob patterns (`*`, `?`) over agent names; empty matches all agents.
    pub agents: Vec<String>,
    /// With `{agent}`, `{value}`, `{rule}`, `{severity}` placeholders.
    pub summary: String,
}

impl Rule {
    pub fn per_agent(&self) -> bool {
        self.expr.per_agent()
    }

    pub fn matches(&self, agent: &str) -> bool {
        self.agents.is_empty() || self.agents.iter().any(|p| glob(p, agent))
    }
}

/// `*` and `?` globbing.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    Pending,
    Firing,
    Resolved,
}

impl AlertState {
    pub fn name(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// One alert instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// `rule` or `rule/agent`.
    pub id: String,
    pub rule: String,
    pub agent: Option<String>,
    pub severity: Severity,
    pub state: AlertState,
    /// When `state` was entered.
    pub since: Millis,
    /// The rule's first metric value at the last evaluation.
    pub value: Option<f64>,
    /// The value when it last started firing.
    pub fired_value: Option<f64>,
    /// The rule's summary with the current value while pending or firing
    /// (the last firing value once resolved).
    pub summary: String,
    /// Set by an operator; cleared when the alert resolves.
    pub acknowledged: Option<String>,
    /// Notifications for it are muted until then.
    pub silenced_until: Option<Millis>,
    /// Changing state too often: notified once, then muted until it settles.
    pub flapping: bool,
    /// Recent times it started firing (for flap detection).
    fired: VecDeque<Millis>,
    /// The evaluation round that last saw it.
    round: u64,
}

/// A change the daemon acts on (notify, open an incident, record it).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub alert: Alert,
    /// Whether notifiers should hear about it (not silenced, not a repeat
    /// of a flapping alert).
    pub notify: bool,
}

/// A silence: notifications of alerts whose id or rule matches `pattern`
/// (a glob) are muted until `until`.
#[derive(Debug, Clone, PartialEq)]
pub struct Silence {
    pub pattern: String,
    pub until: Millis,
    pub by: String,
}

/// Firing this many times within [`FLAP_WINDOW`] marks an alert flapping.
pub const FLAP_COUNT: usize = 3;
pub const FLAP_WINDOW: Millis = 10 * 60_000;
/// Resolved alerts stay listed this long.
pub const RESOLVED_KEEP: Millis = 15 * 60_000;

/// All rules and their live alerts.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    rules: Vec<Rule>,
    alerts: BTreeMap<String, Alert>,
    silences: Vec<Silence>,
    round: u64,
}

impl Engine {
    pub fn new(rules: Vec<Rule>) -> Engine {
        Engine {
            rules,
            alerts: BTreeMap::new(),
            silences: Vec::new(),
            round: 0,
        }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Replaces the rules (a reload). Alerts of rules that are gone are
    /// dropped; the others keep their state.
    pub fn set_rules(&mut self, rules: Vec<Rule>) {
        self.alerts
            .retain(|_, a| rules.iter().any(|r| r.name == a.rule));
        self.rules = rules;
    }

    /// Live alerts, by id.
    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.values()
    }

    pub fn silences(&self) -> &[Silence] {
        &self.silences
    }

    /// Evaluates every rule for the host or for each agent in `agents`.
    pub fn evaluate(&mut self, src: &dyn Source, agents: &[&str], now: Millis) -> Vec<Change> {
        self.silences.retain(|s| s.until > now);
        let mut changes = Vec::new();
        self.round += 1;
        let round = self.round;
        let Engine {
            rules,
            alerts,
            silences,
            ..
        } = self;
        // One buffer for the ids: an instance's id is allocated only when
        // the instance is created.
        let mut id = String::new();
        for rule in rules.iter() {
            let per_agent = rule.per_agent();
            let host = [None];
            let each = agents
                .iter()
                .filter(|a| per_agent && rule.matches(a))
                .map(|a| Some(*a));
            let scopes = host.into_iter().filter(|_| !per_agent).chain(each);
            for scope in scopes {
                let (hit, value) = rule.expr.eval(src, scope, now);
                id.clear();
                id.push_str(&rule.name);
                if let Some(a) = scope {
                    id.push('/');
                    id.push_str(a);
                }
                if !hit && !alerts.contains_key(id.as_str()) {
                    continue;
                }
                let silenced = !silences.is_empty() && is_silenced(silences, &id, now);
                step(
                    alerts,
                    rule,
                    &id,
                    scope,
                    hit,
                    value,
                    silenced,
                    now,
                    round,
                    &mut changes,
                );
            }
        }
        // Instances whose agent (or rule scope) went away resolve.
        let gone: Vec<String> = self
            .alerts
            .values()
            .filter(|a| a.round != round)
            .map(|a| a.id.clone())
            .collect();
        for id in gone {
            let silenced = self.silenced(&id, now);
            if let Some(a) = self.alerts.get_mut(&id) {
                match a.state {
                    AlertState::Firing => {
                        a.state = AlertState::Resolved;
                        a.since = now;
                        a.acknowledged = None;
                        changes.push(Change {
                            alert: a.clone(),
                            notify: !silenced && !a.flapping,
                        });
                    }
                    AlertState::Pending => {
                        self.alerts.remove(&id);
                    }
                    AlertState::Resolved => {}
                }
            }
        }
        self.alerts.retain(|_, a| {
            !(a.state == AlertState::Resolved && now.saturating_sub(a.since) > RESOLVED_KEEP)
        });
        for a in self.alerts.values_mut() {
            a.silenced_until = self
                .silences
                .iter()
                .filter(|s| glob(&s.pattern, &a.id) || glob(&s.pattern, &a.rule))
                .map(|s| s.until)
                .max();
        }
        changes
    }

    fn silenced(&self, id: &str, now: Millis) -> bool {
        is_silenced(&self.silences, id, now)
    }

    /// Acknowledges firing alerts whose id or rule matches `pattern`.
    /// Returns the ids acknowledged.
    pub fn ack(&mut self, pattern: &str, by: &str) -> Vec<String> {
        let mut out = Vec::new();
        for a in self.alerts.values_mut() {
            if a.state == AlertState::Firing && (glob(pattern, &a.id) || glob(pattern, &a.rule)) {
                a.acknowledged = Some(by.to_string());
                out.push(a.id.clone());
            }
        }
        out
    }

    /// Mutes notifications of matching alerts until `until`. Returns the ids
    /// of live alerts it covers (a silence may also cover future ones).
    pub fn silence(&mut self, pattern: &str, until: Millis, by: &str) -> Vec<String> {
        self.silences.retain(|s| s.pattern != pattern);
        self.silences.push(Silence {
            pattern: pattern.to_string(),
            until,
            by: by.to_string(),
        });
        let mut out = Vec::new();
        for a in self.alerts.values_mut() {
            if glob(pattern, &a.id) || glob(pattern, &a.rule) {
                a.silenced_until = Some(a.silenced_until.unwrap_or(0).max(until));
                out.push(a.id.clone());
            }
        }
        out
    }
}

fn is_silenced(silences: &[Silence], id: &str, now: Millis) -> bool {
    let rule = id.split('/').next().unwrap_or(id);
    silences
        .iter()
        .any(|s| s.until > now && (glob(&s.pattern, id) || glob(&s.pattern, rule)))
}

/// An alert that has not started firing for a whole flap window is no
/// longer flapping, whatever its state (so a flapping alert that then fires
/// steadily is heard when it finally resolves).
fn settle(a: &mut Alert, now: Millis) {
    if a.flapping
        && a.fired
            .back()
            .is_none_or(|&t| now.saturating_sub(t) > FLAP_WINDOW)
    {
        a.flapping = false;
    }
}

/// One instance's state machine for one evaluation.
#[allow(clippy::too_many_arguments)]
fn step(
    alerts: &mut BTreeMap<String, Alert>,
    rule: &Rule,
    id: &str,
    agent: Option<&str>,
    hit: bool,
    value: Option<f64>,
    silenced: bool,
    now: Millis,
    round: u64,
    changes: &mut Vec<Change>,
) {
    if !hit {
        let Some(a) = alerts.get_mut(id) else {
            return;
        };
        a.round = round;
        settle(a, now);
        match a.state {
            AlertState::Pending => {
                // It never fired: forget it quietly.
                alerts.remove(id);
            }
            AlertState::Firing => {
                a.state = AlertState::Resolved;
                a.since = now;
                a.value = value;
                a.acknowledged = None;
                changes.push(Change {
                    alert: a.clone(),
                    notify: !silenced && !a.flapping,
                });
            }
            AlertState::Resolved => {
                a.value = value;
            }
        }
        return;
    }
    if !alerts.contains_key(id) {
        alerts.insert(
            id.to_string(),
            Alert {
                id: id.to_string(),
                rule: rule.name.clone(),
                agent: agent.map(str::to_string),
                severity: rule.severity,
                state: AlertState::Pending,
                since: now,
                value,
                fired_value: None,
                summary: render_summary(rule, agent, value),
                acknowledged: None,
                silenced_until: None,
                flapping: false,
                fired: VecDeque::new(),
                round,
            },
        );
    }
    let Some(a) = alerts.get_mut(id) else {
        return;
    };
    a.round = round;
    settle(a, now);
    if a.state == AlertState::Resolved {
        // A new episode of a recently resolved alert.
        a.state = AlertState::Pending;
        a.since = now;
        a.summary = render_summary(rule, agent, value);
    }
    a.value = value;
    a.severity = rule.severity;
    // The summary follows the value ("restarted 10 times", not the 4 it
    // fired at); the value at firing is kept beside it.
    a.summary = render_summary(rule, agent, value);
    if a.state == AlertState::Pending && now.saturating_sub(a.since) >= rule.for_ms {
        a.fired_value = value;
        a.state = AlertState::Firing;
        a.since = now;
        a.fired.push_back(now);
        while a.fired.front().is_some_and(|&t| now - t > FLAP_WINDOW) {
            a.fired.pop_front();
        }
        let was_flapping = a.flapping;
        a.flapping = a.fired.len() >= FLAP_COUNT;
        changes.push(Change {
            alert: a.clone(),
            // A flapping alert is announced once (as flapping), then muted.
            notify: !silenced && !was_flapping,
        });
    }
}

/// Fills `{agent}`, `{value}`, `{rule}`, `{severity}` in a rule's summary.
pub fn render_summary(rule: &Rule, agent: Option<&str>, value: Option<f64>) -> String {
    let value = match value {
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        Some(v) => format!("{v:.1}"),
        None => "n/a".into(),
    };
    let base = if rule.summary.is_empty() {
        format!("{} ({})", rule.name, rule.source)
    } else {
        rule.summary.clone()
    };
    base.replace("{agent}", agent.unwrap_or("host"))
        .replace("{value}", &value)
        .replace("{rule}", &rule.name)
        .replace("{severity}", rule.severity.name())
}

#[cfg(test)]
mod tests;
