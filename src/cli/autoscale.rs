//! `autonomos autoscale [status] [AGENT]` and `autoscale on|off AGENT`.

use super::*;
use crate::proto::{AutoscaleStatus, Request, Response};

pub async fn autoscale(g: &Global, command: Option<AutoscaleCommand>, json: bool) -> ExitCode {
    match command.unwrap_or(AutoscaleCommand::Status { agent: None }) {
        AutoscaleCommand::On { agent } => {
            simple(g, Request::AutoscaleSet { agent, on: true }, json).await
        }
        AutoscaleCommand::Off { agent } => {
            simple(g, Request::AutoscaleSet { agent, on: false }, json).await
        }
        AutoscaleCommand::Status { agent } => {
            match ask(g, Request::AutoscaleStatus { agent }).await {
                Ok(Response::Autoscale { agents }) if json => json_out(&agents),
                Ok(Response::Autoscale { agents }) => {
                    if agents.is_empty() {
                        println!("no agent has `autoscale` in the config");
                    }
                    for (name, a) in &agents {
                        print!("{}", render_autoscale(name, a));
                    }
                    ExitCode::SUCCESS
                }
                Ok(other) => {
                    eprintln!("error: unexpected answer {other:?}");
                    ExitCode::FAILURE
                }
                Err(e) => fail(&e, json),
            }
        }
    }
}

fn value(name: &str, v: f64) -> String {
    match name {
        "latency_p95" => crate::core::units::fmt_ms((v * 1000.0).round() as u64),
        "utilization" => format!("{:.0}%", v * 100.0),
        _ => format!("{v:.2}"),
    }
}

/// One agent: bounds, the decision and why, each target, recent changes.
pub fn render_autoscale(name: &str, a: &AutoscaleStatus) -> String {
    let mut out = format!(
        "{name}: {} · {} replicas (min {}, max {}) · recommended {} · {}\n",
        if a.enabled { "on" } else { "OFF" },
        a.desired,
        a.min,
        a.max,
        a.recommended,
        a.reason
    );
    for t in &a.targets {
        let cur = t.current.map_or("-".to_string(), |c| value(&t.name, c));
        out.push_str(&format!(
            "  {:<18} target {:>8}  now {:>8}  → {:>3}  {}\n",
            t.name,
            value(&t.name, t.target),
            cur,
            t.recommends,
            t.note
        ));
    }
    for d in &a.recent {
        out.push_str(&format!(
            "  {}  {} → {}  {}\n",
            crate::core::units::utc(d.at),
            d.from,
            d.to,
            d.reason
        ));
    }
    out.push_str(&format!("  changes: {} up, {} down\n", a.ups, a.downs));
    out
}
