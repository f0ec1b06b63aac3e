//! The autoscaler on the real daemon with real task agents
//! (`examples/task_agent.py`): a step load up and back down, scale to zero
//! and wake-up, and an operator's hand on the wheel.
//! Needs python3 (Debian package python3).

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn agent(autoscale: &str) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/task_agent.py");
    format!(
        "[agents.w]\ncommand = [\"python3\", \"{script}\"]\nprotocol = \"jsonrpc\"\nstop_timeout = \"3s\"\nautoscale = {autoscale}\n"
    )
}

fn auto(d: &BinDaemon) -> Value {
    let v = d.json(&["autoscale", "status", "w"]);
    v[0][1].clone()
}

#[test]
fn a_step_load_scales_up_then_back_down_without_flapping() {
    if !have_tool("python3", "python3") {
        return;
    }
    let d = BinDaemon::start(&agent(
        "{ min = 1, max = 4, queue_per_replica = 1, scale_down_window = \"3s\", cooldown = \"2s\", max_step_up = 4 }",
    ));
    d.wait_status("one replica", Duration::from_secs(15), |s| {
        s.agents[0].running == 1
    });
    let ids: Vec<String> = (0..12)
        .map(|_| {
            let t = d.json(&["task", "submit", "w", "--input", r#"{"sleep": 2}"#]);
            t[0]["id"].as_str().expect("id").to_string()
        })
        .collect();
    // Up: 11 waiting for one replica asks for 11; max 4 caps it.
    d.wait_status("scaled up to max", Duration::from_secs(20), |s| {
        s.agents[0].desired == 4 && s.agents[0].running == 4
    });
    let a = auto(&d);
    assert!(
        a["reason"].as_str().unwrap_or_default().contains("max 4") || a["desired"] == 4,
        "{a:#}"
    );
    for id in &ids {
        let t = Instant::now();
        while d.json(&["task", "show", id])["state"] != "completed" {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "task {id} never completed"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // Down once the queue is empty, after the window and the cool-down.
    d.wait_status("back to min", Duration::from_secs(30), |s| {
        s.agents[0].desired == 1
    });
    let a = auto(&d);
    let recent: Vec<(u64, u64)> = a["recent"]
        .as_array()
        .expect("recent")
        .iter()
        .map(|x| {
            (
                x["from"].as_u64().unwrap_or(0),
                x["to"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let turns = recent
        .windows(2)
        .filter(|w| (w[0].1 > w[0].0) != (w[1].1 > w[1].0))
        .count();
    assert!(turns <= 1, "it flapped: {recent:?}");
    assert!(
        recent.iter().all(|(_, to)| *to <= 4),
        "above max: {recent:?}"
    );
    assert!(
        a["ups"].as_u64() >= Some(1) && a["downs"].as_u64() >= Some(1),
        "{a:#}"
    );
    // Each change is on the audit trail, by the autoscaler.
    let trail = std::fs::read_to_string(d.data_dir().join("audit/audit.jsonl")).expect("audit");
    assert!(
        trail
            .lines()
            .filter(|l| l.contains("\"actor\":\"autoscaler\"") && l.contains("\"autoscale\""))
            .count()
            >= 2,
        "{trail}"
    );
}

#[test]
fn min_zero_sleeps_when_idle_and_a_task_wakes_it() {
    if !have_tool("python3", "python3") {
        return;
    }
    let d = BinDaemon::start(&agent(
        "{ min = 0, max = 2, queue_per_replica = 1, idle_window = \"2s\", scale_down_window = \"1s\", cooldown = \"1s\" }",
    ));
    d.wait_status("asleep", Duration::from_secs(20), |s| {
        s.agents[0].desired == 0 && s.agents[0].running == 0
    });
    let a = auto(&d);
    assert!(a["recent"].to_string().contains("idle"), "{a:#}");
    // A task wakes it: one replica starts, the task waits meanwhile.
    let t = Instant::now();
    let done = d.json(&["task", "submit", "w", "--input", "7", "--wait"]);
    let wake = t.elapsed();
    assert_eq!(done["state"], "completed", "{done:#}");
    assert!(wake < Duration::from_secs(10), "woke in {wake:?}");
    eprintln!("wake-up: submit → completed in {} ms", wake.as_millis());
    let a = auto(&d);
    assert!(a["recent"].to_string().contains("waking"), "{a:#}");
}

#[test]
fn a_manual_scale_turns_the_autoscaler_off_until_autoscale_on() {
    if !have_tool("python3", "python3") {
        return;
    }
    let port = free_port();
    let d = BinDaemon::start(&format!(
        "[metrics]\nlisten = \"127.0.0.1:{port}\"\n\n{}",
        agent(
            "{ min = 1, max = 3, queue_per_replica = 5, cooldown = \"1s\", scale_down_window = \"1s\" }"
        )
    ));
    d.wait_status("up", Duration::from_secs(15), |s| s.agents[0].running == 1);
    let (code, _, err) = d.cli(&["scale", "w", "3"]);
    assert_eq!(code, 0, "{err}");
    std::thread::sleep(Duration::from_secs(4));
    let a = auto(&d);
    assert_eq!(a["enabled"], false, "{a:#}");
    assert_eq!(
        d.status().agents[0].desired,
        3,
        "the operator's count stands"
    );
    assert!(
        a["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("autoscale on"),
        "{a:#}"
    );
    let (code, out, err) = d.cli(&["autoscale", "on", "w"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("autoscaling on for w"), "{out}");
    // Idle with 3: back to min after the window.
    d.wait_status("back to 1", Duration::from_secs(20), |s| {
        s.agents[0].desired == 1
    });
    // The decisions on /metrics, in a form promtool takes.
    let addr = format!("127.0.0.1:{port}");
    let value = |body: &str, series: &str| -> Option<f64> {
        body.lines()
            .find_map(|l| l.strip_prefix(series))
            .and_then(|v| v.trim().parse().ok())
    };
    let t = Instant::now();
    let body = loop {
        let (_, body) = http_get(&addr, "/metrics").expect("scrape");
        if value(&body, "autonomos_autoscale_desired_replicas{agent=\"w\"}") == Some(1.0) {
            break body;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "{body}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let downs = value(
        &body,
        "autonomos_autoscale_decisions_total{agent=\"w\",direction=\"down\"}",
    );
    assert!(downs >= Some(1.0), "{body}");
    assert_eq!(
        value(&body, "autonomos_autoscale_enabled{agent=\"w\"}"),
        Some(1.0)
    );
    if have_tool("promtool", "prometheus") {
        promtool_check(&body);
    }
    let (code, _, err) = d.cli(&["autoscale", "off", "nobody"]);
    assert_ne!(code, 0);
    assert!(err.contains("nobody"), "{err}");
}
