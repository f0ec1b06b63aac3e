use std::collections::HashMap;

use super::expr::{Operand, parse};
use super::*;
use crate::core::series::{Agg, Series};

/// Metric series keyed by (agent or "", metric).
#[derive(Default)]
struct Fake {
    series: HashMap<(String, Metric), Series>,
}

impl Fake {
    fn set(&mut self, agent: &str, m: Metric, at: Millis, v: f64) {
        self.series
            .entry((agent.to_string(), m))
            .or_insert_with(|| Series::new(3_600_000, 10_000))
            .push(at, v);
    }
}

impl Source for Fake {
    fn value(
        &self,
        agent: Option<&str>,
        m: Metric,
        agg: Agg,
        w: Millis,
        now: Millis,
    ) -> Option<f64> {
        self.series
            .get(&(agent.unwrap_or("").to_string(), m))?
            .aggregate(agg, now, w)
    }
}

fn rule(name: &str, expr: &str, for_ms: Millis, severity: Severity) -> Rule {
    Rule {
        name: name.into(),
        source: expr.into(),
        expr: parse(expr).expect("valid expression"),
        for_ms,
        severity,
        agents: vec![],
        summary: "{agent}: {rule} at {value}".into(),
    }
}

fn state(e: &Engine, id: &str) -> Option<AlertState> {
    e.alerts().find(|a| a.id == id).map(|a| a.state)
}

#[test]
fn parses_the_documented_forms() {
    for ok in [
        "increase(restarts, 10m) > 3",
        "avg(cpu, 1m) > 80",
        "host.cpu > 90",
        "failed > 0 or (running < desired and uptime >= 30)",
        "not (memory_pct < 90%)",
        "memory > 512MiB and rate(log_dropped, 30s) > 0.5",
        "max(host.memory, 2h) >= 95",
        "3 < increase(restarts, 500ms)",
    ] {
        parse(ok).unwrap_or_else(|e| panic!("{ok}: {e:?}"));
    }
    let e = parse("memory > 512MiB").expect("parses");
    assert_eq!(
        e,
        Expr::Cmp(
            Operand::Metric {
                metric: Metric::Memory,
                agg: Agg::Last,
                window: 0
            },
            expr::CmpOp::Gt,
            Operand::Num(512.0 * 1024.0 * 1024.0)
        )
    );
}

#[test]
fn parse_errors_point_at_the_problem() {
    let cases = [
        ("restrats > 3", 0, "did you mean `restarts`"),
        ("cpu => 3", 4, "`=` is not a comparison"),
        ("cpu > 3 && failed > 0", 8, "write `and`"),
        ("increase(restarts) > 3", 17, "expected `, WINDOW`"),
        ("increase(restarts, 10) > 3", 19, "expected a window"),
        ("median(cpu, 1m) > 3", 0, "unknown function"),
        ("cpu", 3, "expected a comparison"),
        ("cpu > 3 failed > 0", 8, "join conditions"),
        ("(cpu > 3", 8, "missing `)`"),
        ("3 > 4", 4, "constant"),
        ("", 0, "empty"),
        ("cpu > 12parsecs", 6, "not a number"),
    ];
    for (src, offset, want) in cases {
        let err = parse(src).expect_err(src);
        assert!(err.message.contains(want), "{src}: {}", err.message);
        assert_eq!(err.offset, offset, "{src}: {}", err.message);
    }
}

#[test]
fn scope_follows_the_metrics_read() {
    assert!(!parse("host.cpu > 90").expect("ok").per_agent());
    assert!(parse("host.cpu > 90 and cpu > 50").expect("ok").per_agent());
}

#[test]
fn pending_then_firing_after_for_then_resolved() {
    let mut src = Fake::default();
    let mut e = Engine::new(vec![rule(
        "hot",
        "host.cpu > 90",
        2 * 60_000,
        Severity::Major,
    )]);
    src.set("", Metric::HostCpu, 0, 95.0);
    assert!(e.evaluate(&src, &[], 0).is_empty());
    assert_eq!(state(&e, "hot"), Some(AlertState::Pending));
    // Still pending just before `for` elapses.
    assert!(e.evaluate(&src, &[], 119_999).is_empty());
    let ch = e.evaluate(&src, &[], 120_000);
    assert_eq!(ch.len(), 1);
    assert_eq!(ch[0].alert.state, AlertState::Firing);
    assert!(ch[0].notify);
    assert_eq!(ch[0].alert.summary, "host: hot at 95");
    src.set("", Metric::HostCpu, 130_000, 10.0);
    let ch = e.evaluate(&src, &[], 130_000);
    assert_eq!(ch.len(), 1);
    assert_eq!(ch[0].alert.state, AlertState::Resolved);
    // Listed for a while, then forgotten.
    e.evaluate(&src, &[], 130_000 + RESOLVED_KEEP);
    assert_eq!(state(&e, "hot"), Some(AlertState::Resolved));
    e.evaluate(&src, &[], 130_001 + RESOLVED_KEEP);
    assert_eq!(state(&e, "hot"), None);
}

#[test]
fn a_condition_that_clears_while_pending_never_fires() {
    let mut src = Fake::default();
    let mut e = Engine::new(vec![rule("hot", "host.cpu > 90", 60_000, Severity::Major)]);
    src.set("", Metric::HostCpu, 0, 95.0);
    e.evaluate(&src, &[], 0);
    src.set("", Metric::HostCpu, 30_000, 50.0);
    assert!(e.evaluate(&src, &[], 30_000).is_empty());
    assert_eq!(state(&e, "hot"), None);
    // And the `for` clock starts over.
    src.set("", Metric::HostCpu, 40_000, 95.0);
    e.evaluate(&src, &[], 40_000);
    assert!(e.evaluate(&src, &[], 90_000).is_empty());
    assert_eq!(e.evaluate(&src, &[], 100_000).len(), 1);
}

#[test]
fn per_agent_rules_fire_per_agent_and_honour_the_selector() {
    let mut src = Fake::default();
    let mut r = rule("loop", "increase(restarts, 10m) > 3", 0, Severity::Critical);
    r.agents = vec!["work*".into()];
    let mut e = Engine::new(vec![r]);
    for (i, t) in [0u64, 10_000, 20_000, 30_000, 40_000].iter().enumerate() {
        src.set("worker", Metric::Restarts, *t, i as f64);
        src.set("crawler", Metric::Restarts, *t, i as f64 * 10.0);
    }
    let ch = e.evaluate(&src, &["worker", "crawler"], 40_000);
    assert_eq!(ch.len(), 1, "{ch:?}");
    assert_eq!(ch[0].alert.id, "loop/worker");
    assert_eq!(ch[0].alert.agent.as_deref(), Some("worker"));
    assert_eq!(ch[0].alert.value, Some(4.0));
    // Ten minutes on without restarts the window empties and it resolves.
    let ch = e.evaluate(&src, &["worker", "crawler"], 40_000 + 600_001);
    assert_eq!(ch.len(), 1);
    assert_eq!(ch[0].alert.state, AlertState::Resolved);
}

#[test]
fn an_agent_that_goes_away_resolves_its_alert() {
    let mut src = Fake::default();
    let mut e = Engine::new(vec![rule("down", "failed > 0", 0, Severity::Critical)]);
    src.set("a", Metric::Failed, 0, 1.0);
    assert_eq!(e.evaluate(&src, &["a"], 0).len(), 1);
    let ch = e.evaluate(&src, &[], 1000);
    assert_eq!(ch.len(), 1);
    assert_eq!(ch[0].alert.state, AlertState::Resolved);
}

#[test]
fn ack_marks_firing_alerts_and_clears_on_resolve() {
    let mut src = Fake::default();
    let mut e = Engine::new(vec![rule("down", "failed > 0", 0, Severity::Critical)]);
    src.set("a", Metric::Failed, 0, 1.0);
    src.set("b", Metric::Failed, 0, 1.0);
    e.evaluate(&src, &["a", "b"], 0);
    assert_eq!(e.ack("down/a", "uid 0"), vec!["down/a".to_string()]);
    assert_eq!(e.ack("nothing", "uid 0"), Vec::<String>::new());
    let acked: Vec<_> = e.alerts().filter(|a| a.acknowledged.is_some()).collect();
    assert_eq!(acked.len(), 1);
    // By rule name: every instance.
    assert_eq!(e.ack("down", "uid 0").len(), 2);
    src.set("a", Metric::Failed, 1000, 0.0);
    e.evaluate(&src, &["a", "b"], 1000);
    let a = e.alerts().find(|a| a.id == "down/a").expect("listed");
    assert_eq!(a.state, AlertState::Resolved);
    assert_eq!(a.acknowledged, None);
}

#[test]
fn silence_mutes_notifications_until_it_expires() {
    let mut src = Fake::default();
    let mut e = Engine::new(vec![rule("down", "failed > 0", 0, Severity::Critical)]);
    e.silence("down", 60_000, "uid 0");
    src.set("a", Metric::Failed, 0, 1.0);
    let ch = e.evaluate(&src, &["a"], 0);
    assert_eq!(ch.len(), 1);
    assert!(!ch[0].notify, "silenced");
    assert_eq!(ch[0].alert.state, AlertState::Firing, "still evaluated");
    src.set("a", Metric::Failed, 1000, 0.0);
    assert!(!e.evaluate(&src, &["a"], 1000)[0].notify);
    // After the silence: heard again.
    src.set("a", Metric::Failed, 70_000, 1.0);
    let ch = e.evaluate(&src, &["a"], 70_000);
    assert!(ch[0].notify);
    assert!(e.silences().is_empty());
}

#[test]
fn flapping_is_announced_once_then_muted_until_it_settles() {
    let mut src = Fake::default();
    let mut e = Engine::new(vec![rule("down", "failed > 0", 0, Severity::Critical)]);
    let mut notified = 0;
    let mut t = 0;
    for _ in 0..6 {
        src.set("a", Metric::Failed, t, 1.0);
        for c in e.evaluate(&src, &["a"], t) {
            notified += usize::from(c.notify);
        }
        t += 10_000;
        src.set("a", Metric::Failed, t, 0.0);
        for c in e.evaluate(&src, &["a"], t) {
            notified += usize::from(c.notify);
        }
        t += 10_000;
    }
    // Fired+resolved twice (4), then the third firing says "flapping" (1);
    // the rest are muted.
    assert_eq!(notified, 5);
    assert!(e.alerts().next().expect("listed").flapping);
    // Quiet for a flap window: no longer flapping, heard again.
    t += FLAP_WINDOW + 1;
    e.evaluate(&src, &["a"], t);
    assert!(!e.alerts().next().expect("listed").flapping);
    src.set("a", Metric::Failed, t, 1.0);
    assert!(e.evaluate(&src, &["a"], t)[0].notify);
}

#[test]
fn missing_data_never_fires() {
    let src = Fake::default();
    let mut e = Engine::new(vec![
        rule("hot", "host.cpu > 90", 0, Severity::Major),
        rule("cold", "not (cpu > 1)", 0, Severity::Minor),
    ]);
    let ch = e.evaluate(&src, &["a"], 0);
    // `cpu > 1` is false without data, so `not` of it is true: documented.
    assert_eq!(ch.len(), 1);
    assert_eq!(ch[0].alert.rule, "cold");
}

#[test]
fn reload_keeps_alerts_of_rules_that_stay() {
    let mut src = Fake::default();
    let mut e = Engine::new(vec![
        rule("down", "failed > 0", 0, Severity::Critical),
        rule("hot", "host.cpu > 1", 0, Severity::Minor),
    ]);
    src.set("a", Metric::Failed, 0, 1.0);
    src.set("", Metric::HostCpu, 0, 5.0);
    e.evaluate(&src, &["a"], 0);
    e.set_rules(vec![rule("down", "failed > 0", 0, Severity::Critical)]);
    let ids: Vec<_> = e.alerts().map(|a| a.id.clone()).collect();
    assert_eq!(ids, vec!["down/a".to_string()]);
    // No second firing for the kept alert.
    assert!(e.evaluate(&src, &["a"], 1000).is_empty());
}

#[test]
fn globbing() {
    assert!(glob("*", "anything"));
    assert!(glob("work*", "worker-1"));
    assert!(glob("w?rk", "work"));
    assert!(glob("*-1", "worker-1"));
    assert!(!glob("work", "worker"));
    assert!(glob("a*b*c", "aXXbYYc"));
    assert!(!glob("a*b*c", "aXXbYY"));
}

#[test]
fn a_flapping_alert_that_then_fires_steadily_is_heard_when_it_resolves() {
    let mut src = Fake::default();
    let mut e = Engine::new(vec![rule("down", "failed > 0", 0, Severity::Critical)]);
    let mut t = 0;
    for _ in 0..2 {
        src.set("a", Metric::Failed, t, 1.0);
        e.evaluate(&src, &["a"], t);
        t += 1000;
        src.set("a", Metric::Failed, t, 0.0);
        e.evaluate(&src, &["a"], t);
        t += 1000;
    }
    // Third firing: flapping. Now it stays firing for longer than the window.
    src.set("a", Metric::Failed, t, 1.0);
    e.evaluate(&src, &["a"], t);
    assert!(e.alerts().next().expect("listed").flapping);
    t += FLAP_WINDOW + 1000;
    e.evaluate(&src, &["a"], t);
    assert!(
        !e.alerts().next().expect("listed").flapping,
        "settled while firing"
    );
    src.set("a", Metric::Failed, t + 1000, 0.0);
    let ch = e.evaluate(&src, &["a"], t + 1000);
    assert_eq!(ch.len(), 1);
    assert_eq!(ch[0].alert.state, AlertState::Resolved);
    assert!(ch[0].notify, "the end of a long outage is announced");
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("{}failed > 0{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(parse(&deep).is_err_and(|e| e.message.contains("nested")));
    let nots = format!("{}failed > 0", "not ".repeat(10_000));
    assert!(parse(&nots).is_err());
    assert!(parse(&format!("{}failed > 0{}", "(".repeat(20), ")".repeat(20))).is_ok());
}

#[test]
fn a_firing_alert_s_summary_follows_its_value_and_keeps_the_value_it_fired_at() {
    let mut src = Fake::default();
    let mut e = Engine::new(vec![rule("hot", "host.cpu > 90", 0, Severity::Major)]);
    src.set("", Metric::HostCpu, 0, 95.0);
    let ch = e.evaluate(&src, &[], 0);
    assert_eq!(ch[0].alert.summary, "host: hot at 95", "notified as fired");
    src.set("", Metric::HostCpu, 10_000, 99.0);
    assert!(
        e.evaluate(&src, &[], 10_000).is_empty(),
        "no new notification"
    );
    let a = e.alerts().find(|a| a.id == "hot").expect("alert");
    assert_eq!(a.summary, "host: hot at 99");
    assert_eq!((a.value, a.fired_value), (Some(99.0), Some(95.0)));
}
