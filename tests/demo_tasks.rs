//! The built-in demo fleet is a working task flow: the planner hands steps
//! to the researchers and coders through the queue, and takes goals from
//! operators. The real daemon, the real demo agents.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn tasks(d: &BinDaemon) -> Vec<Value> {
    let v = d.json(&["task", "list", "-n", "200"]);
    v.as_array().cloned().unwrap_or_default()
}

#[test]
fn the_demo_planner_delegates_steps_and_answers_an_operator_s_goal() {
    let demo = include_str!("../assets/demo.toml").replace(
        "[\"autonomos\", ",
        &format!("[\"{}\", ", env!("CARGO_BIN_EXE_autonomos")),
    );
    let d = BinDaemon::start(&demo);
    // An operator's goal, at once: the planner takes it when it is free.
    let goal = d.json(&[
        "task",
        "submit",
        "planner",
        "--input",
        "\"ship the v2 API\"",
    ]);
    let goal_id = goal[0]["id"].as_str().expect("an id").to_string();
    let t = Instant::now();
    let done = loop {
        let g = d.json(&["task", "show", &goal_id]);
        if g["state"] == "completed" {
            break g;
        }
        assert!(
            t.elapsed() < Duration::from_secs(150),
            "the goal did not finish: {g:#}\n{:#?}",
            tasks(&d)
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    // Its steps went to research and code, and each ended.
    let steps = done["result"]["steps"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(steps.len() >= 2, "{done:#}");
    assert!(steps.iter().any(|s| s["skill"] == "research"), "{done:#}");
    assert!(steps.iter().any(|s| s["skill"] == "code"), "{done:#}");
    for s in &steps {
        let id = s["task"].as_str().expect("step id");
        let step = d.json(&["task", "show", id]);
        assert!(
            ["researcher", "coder"].contains(&step["agent"].as_str().unwrap_or_default()),
            "{step:#}"
        );
        assert_eq!(
            s["state"], step["state"],
            "the planner heard how {id} ended"
        );
    }
    // The researchers and coders really worked steps: completed tasks with
    // results, from the planner's goals.
    let all = tasks(&d);
    for agent in ["researcher", "coder"] {
        assert!(
            all.iter()
                .any(|x| x["agent"] == agent && x["state"] == "completed"),
            "no completed {agent} task: {all:#?}"
        );
    }
    let (_, log, _) = d.cli(&["logs", "planner", "-n", "500", "--no-time"]);
    assert!(
        log.contains("goal ") && log.contains(" → research: task "),
        "{log}"
    );
}
