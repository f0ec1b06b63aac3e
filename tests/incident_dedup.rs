//! One cause, one incident: a second rule firing for an agent that already
//! has an open incident joins that incident's timeline and raises its level
//! when worse, instead of opening another.

mod common;

use std::time::Duration;

use common::BinDaemon;
use serde_json::Value;

const TWO_RULES: &str = r#"
[metrics]
interval = "200ms"

[alerting]
defaults = false

[[alerts]]
name = "restarting"
expr = "increase(restarts, 10s) >= 1"
severity = "major"
summary = "{agent} restarted {value} times in 10s"

[[alerts]]
name = "crash-loop"
expr = "increase(restarts, 10s) >= 4"
for = "200ms"
severity = "critical"
summary = "{agent} crash-looping: {value} restarts in 10s"

[agents.worker]
command = ["sh", "-c", "sleep 0.3; exit 3"]
min_uptime = "0ms"
backoff = { initial = "100ms", max = "200ms" }
start_limit = { burst = 1000, interval = "10s" }
"#;

fn open_incidents(d: &BinDaemon) -> Vec<Value> {
    d.json(&["incidents"])
        .as_array()
        .expect("a list")
        .iter()
        .filter(|i| i["status"] == "open")
        .cloned()
        .collect()
}

#[test]
fn a_second_rule_on_the_same_agent_joins_the_open_incident_and_raises_its_level() {
    let d = BinDaemon::start(TWO_RULES);
    d.wait_json(
        &["alerts"],
        "both rules firing",
        Duration::from_secs(30),
        |r| {
            r["alerts"].as_array().is_some_and(|a| {
                ["restarting/worker", "crash-loop/worker"]
                    .iter()
                    .all(|id| a.iter().any(|x| x["id"] == *id && x["state"] == "firing"))
            })
        },
    );
    let open = open_incidents(&d);
    assert_eq!(open.len(), 1, "one cause, one incident: {open:#?}");
    assert_eq!(open[0]["level"], 1, "raised by the critical rule");
    assert_eq!(open[0]["alert"], "restarting/worker", "opened by the first");
    let id = open[0]["id"].as_u64().expect("id").to_string();
    let inc = d.json(&["incidents", "show", &id]);
    let texts: Vec<&str> = inc["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|e| e["text"].as_str())
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("crash-loop/worker firing")),
        "{texts:#?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("raised from Level 2 to Level 1")),
        "{texts:#?}"
    );
}
