//! The Grafana dashboard shipped in `assets/grafana/`: every PromQL
//! expression parses (`promtool check rules`, Debian `prometheus`) and names
//! only metrics the daemon's `/metrics` endpoint really exports.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{BinDaemon, free_port, have_tool, http_get};

const DASHBOARD: &str = include_str!("../assets/grafana/autonomos-fleet.json");

/// Every `expr` of every panel, with its panel's title.
fn expressions(v: &serde_json::Value, title: &str, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(m) => {
            let title = m.get("title").and_then(|t| t.as_str()).unwrap_or(title);
            if let Some(e) = m.get("expr").and_then(|e| e.as_str()) {
                out.push((title.to_string(), e.to_string()));
            }
            for x in m.values() {
                expressions(x, title, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| expressions(x, title, out)),
        _ => {}
    }
}

/// Grafana's variables replaced by what they stand for at query time.
fn as_promql(expr: &str) -> String {
    expr.replace("$__rate_interval", "5m")
        .replace("$__interval", "1m")
        .replace("$agent", ".*")
}

fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = expr.as_bytes();
    let mut i = 0;
    while let Some(at) = expr[i..].find("autonomos_") {
        let start = i + at;
        let mut end = start;
        while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
            end += 1;
        }
        out.push(expr[start..end].to_string());
        i = end;
    }
    out
}

#[test]
fn the_dashboard_is_well_formed_and_covers_the_fleet() {
    let d: serde_json::Value = serde_json::from_str(DASHBOARD).expect("dashboard JSON");
    assert_eq!(d["uid"], "autonomos-fleet");
    let panels = d["panels"].as_array().expect("panels");
    let ids: BTreeSet<u64> = panels.iter().filter_map(|p| p["id"].as_u64()).collect();
    assert_eq!(ids.len(), panels.len(), "panel ids are unique");
    let titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    for want in [
        "Fleet overview",
        "CPU per agent (cores)",
        "Memory per agent (RSS of the trees)",
        "Restarts",
        "Tasks per second",
        "Alerts by state and severity",
    ] {
        assert!(titles.contains(&want), "no `{want}` panel: {titles:?}");
    }
    for p in panels.iter().filter(|p| p["type"] != "row") {
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
    }
}

#[test]
fn every_dashboard_expression_parses_and_names_exported_metrics() {
    if !have_tool("promtool", "prometheus") {
        return;
    }
    let d: serde_json::Value = serde_json::from_str(DASHBOARD).expect("dashboard JSON");
    let mut exprs = Vec::new();
    expressions(&d["panels"], "", &mut exprs);
    assert!(exprs.len() >= 20, "{exprs:?}");

    // 1. promtool parses each one (as a recording rule).
    let rules: Vec<serde_json::Value> = exprs
        .iter()
        .enumerate()
        .map(|(i, (_, e))| serde_json::json!({ "record": format!("dashboard:expr_{i}"), "expr": as_promql(e) }))
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("dashboard-rules.yml");
    // JSON is YAML: promtool reads it as a rules file.
    std::fs::write(
        &file,
        serde_json::json!({ "groups": [{ "name": "dashboard", "rules": rules }] }).to_string(),
    )
    .expect("rules file");
    let out = std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool check rules:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // 2. The metrics they name are on a real daemon's endpoint.
    let port = free_port();
    let d = BinDaemon::start(&format!(
        "[metrics]\nlisten = \"127.0.0.1:{port}\"\n\n[agents.w]\ncommand = \"sleep 1000\"\n"
    ));
    d.wait_status("w running", Duration::from_secs(15), |s| {
        s.agents[0].running == 1
    });
    // 503 until the first sample is published.
    let t = std::time::Instant::now();
    let body = loop {
        let (code, body) = http_get(&format!("127.0.0.1:{port}"), "/metrics").expect("scrape");
        if code == 200 {
            break body;
        }
        assert!(t.elapsed() < Duration::from_secs(15), "{code}: {body}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut exported = BTreeSet::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            exported.insert(name.to_string());
            if kind == "histogram" {
                for s in ["_bucket", "_sum", "_count"] {
                    exported.insert(format!("{name}{s}"));
                }
            }
        }
    }
    let mut unknown = Vec::new();
    let mut used = BTreeSet::new();
    for (title, e) in &exprs {
        for m in metric_names(e) {
            if !exported.contains(&m) {
                unknown.push(format!("{title}: {m}"));
            }
            used.insert(m);
        }
    }
    assert!(
        unknown.is_empty(),
        "not exported by the daemon: {unknown:?}"
    );
    // The variable's query names a real metric too.
    let var = d_var(&d_json());
    for m in metric_names(&var) {
        assert!(exported.contains(&m), "{var}");
    }
    assert!(used.len() >= 20, "{used:?}");
    drop(d);
}

fn d_json() -> serde_json::Value {
    serde_json::from_str(DASHBOARD).expect("dashboard JSON")
}

fn d_var(d: &serde_json::Value) -> String {
    d["templating"]["list"]
        .as_array()
        .and_then(|l| l.iter().find(|v| v["name"] == "agent"))
        .and_then(|v| v["definition"].as_str())
        .expect("the agent variable")
        .to_string()
}
