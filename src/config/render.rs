//! The human summary of an effective config (`autonomos config check`).

use std::fmt::Write as _;
use std::path::Path;

use super::model::{Config, LimitAction, RestartPolicy};
use super::topo::topo_order;
use super::words::shell_quote;
use crate::core::signal::signal_name;
use crate::core::units::{format_duration, format_size};

/// Width of the label column.
const LABEL: usize = 14;

use crate::core::sanitize::is_secret;

/// A path for display, with control characters escaped.
fn show_path(p: &Path) -> String {
    crate::core::sanitize::escape_controls(&p.display().to_string())
}

fn restart_name(r: RestartPolicy) -> &'static str {
    match r {
        RestartPolicy::Always => "always",
        RestartPolicy::OnFailure => "on-failure",
        RestartPolicy::Never => "never",
    }
}

fn action_name(a: LimitAction) -> &'static str {
    match a {
        LimitAction::Restart => "restart",
        LimitAction::Stop => "stop",
        LimitAction::Alert => "alert",
    }
}

fn line(out: &mut String, indent: &str, label: &str, value: &str) {
    let _ = writeln!(out, "{indent}{label:<LABEL$}{value}");
}

impl Config {
    /// The effective fleet, every default filled in, as aligned text: the
    /// pool, paths and logs, then one block per agent (in file order) whose
    /// labels are the config keys. Values of environment variables whose
    /// names look secret (`KEY`, `TOKEN`, `SECRET`, `PASSWORD`, …) are shown
    /// as `***`.
    pub fn render_effective(&self) -> String {
        let mut out = String::new();
        let source = self
            .source
            .as_deref()
            .map_or_else(|| "(built-in)".to_owned(), show_path);
        line(&mut out, "", "config", &source);
        line(
            &mut out,
            "",
            "pool",
            &format!(
                "cpu {}, memory {}, max_agents {}",
                self.pool.cpu,
                format_size(self.pool.memory),
                self.pool.max_agents
            ),
        );
        let data_dir = self
            .paths
            .data_dir
            .as_deref()
            .map_or_else(|| "(default)".to_owned(), show_path);
        line(&mut out, "", "paths", &format!("data_dir {data_dir}"));
        line(
            &mut out,
            "",
            "tasks",
            &format!(
                "keep {}, max_input {}, max_result {}",
                self.tasks.keep,
                format_size(self.tasks.max_input),
                format_size(self.tasks.max_result)
            ),
        );
        if let Some(store) = &self.tasks.store {
            // Never a password: the URL without its credentials' secret.
            let shown = url::Url::parse(store)
                .map(|mut u| {
                    let _ = u.set_password(None);
                    u.to_string()
                })
                .unwrap_or_else(|_| "(unreadable)".into());
            let host = self.tasks.host.as_deref().unwrap_or("(this host's name)");
            line(
                &mut out,
                "",
                "tasks",
                &format!(
                    "shared queue {shown}, lease {}, as host {host}",
                    format_duration(self.tasks.lease)
                ),
            );
        }
        line(
            &mut out,
            "",
            "logs",
            &format!(
                "max_size {}, max_files {}, ring_lines {}",
                format_size(self.logs.max_size),
                self.logs.max_files,
                self.logs.ring_lines
            ),
        );
        let listen = self
            .metrics
            .listen
            .map_or_else(|| "off".to_owned(), |a| format!("http://{a}/metrics"));
        line(
            &mut out,
            "",
            "metrics",
            &format!(
                "interval {}, endpoint {listen}",
                format_duration(self.metrics.interval)
            ),
        );
        let g = &self.gateway;
        let gateway = match g.listen {
            None => "off".to_owned(),
            Some(a) => format!(
                "{}://{a}/agents/NAME/, {}, max_connections {}, request_timeout {}",
                if g.cert.is_some() { "https" } else { "http" },
                if g.token_file.is_some() {
                    "bearer token required"
                } else {
                    "no token"
                },
                g.max_connections,
                format_duration(g.request_timeout)
            ),
        };
        line(&mut out, "", "gateway", &gateway);
        self.render_alerting(&mut out);
        let agents = match self.agents.len() {
            0 => "none".to_owned(),
            n => {
                let replicas: u64 = self.agents.iter().map(|a| u64::from(a.replicas)).sum();
                format!(
                    "{n}, {replicas} replica{}; start order: {}",
                    if replicas == 1 { "" } else { "s" },
                    topo_order(self).join(" → ")
                )
            }
        };
        line(&mut out, "", "agents", &agents);

        for a in &self.agents {
            render_agent(&mut out, a);
        }
        out
    }

    /// Alert rules and notifiers, one line each.
    fn render_alerting(&self, out: &mut String) {
        let rules: Vec<String> = self
            .alerts
            .iter()
            .map(|r| format!("{} ({})", r.name, r.severity.name()))
            .collect();
        line(
            out,
            "",
            "alerts",
            &if rules.is_empty() {
                "none".to_owned()
            } else {
                rules.join(", ")
            },
        );
        let notifiers: Vec<String> = self
            .notifiers
            .iter()
            .map(|n| match &n.kind {
                crate::config::NotifierKind::Exec { command } => {
                    format!("{} (exec {})", n.name, command.join(" "))
                }
                crate::config::NotifierKind::Webhook { url, ca_file } => match ca_file {
                    Some(ca) => format!("{} (webhook {url}, ca {})", n.name, ca.display()),
                    None => format!("{} (webhook {url})", n.name),
                },
            })
            .collect();
        line(
            out,
            "",
            "notifiers",
            &if notifiers.is_empty() {
                "none".to_owned()
            } else {
                notifiers.join(", ")
            },
        );
    }
}

/// One agent's section: every value in force, secrets masked.
fn render_agent(out: &mut String, a: &crate::config::AgentSpec) {
    let _ = writeln!(out, "\n[agents.{}]", a.name);
    let ind = "  ";
    if let Some(d) = &a.description {
        line(out, ind, "description", d);
    }
    let command: Vec<String> = a.command.iter().map(|w| shell_quote(w)).collect();
    line(out, ind, "command", &command.join(" "));
    let cwd = a.cwd.as_deref().map_or_else(
        || format!("(default) <data_dir>/contexts/{}", a.name),
        show_path,
    );
    line(out, ind, "cwd", &cwd);
    let env: Vec<String> = a
        .env
        .iter()
        .map(|(k, v)| {
            if is_secret(k) {
                format!("{k}=***")
            } else {
                format!("{k}={}", shell_quote(v))
            }
        })
        .collect();
    line(
        out,
        ind,
        "env",
        &if env.is_empty() {
            "(none)".to_owned()
        } else {
            env.join(" ")
        },
    );
    let inherit = if a.inherit_env.is_empty() {
        "(none)".to_owned()
    } else {
        a.inherit_env.join(" ")
    };
    line(out, ind, "inherit_env", &inherit);
    line(out, ind, "replicas", &a.replicas.to_string());
    line(out, ind, "restart", restart_name(a.restart));
    let b = &a.backoff;
    line(
        out,
        ind,
        "backoff",
        &format!(
            "initial {}, max {}, multiplier {}, jitter {}, reset_after {}",
            format_duration(b.initial),
            format_duration(b.max),
            b.multiplier,
            b.jitter,
            format_duration(b.reset_after)
        ),
    );
    line(out, ind, "min_uptime", &format_duration(a.min_uptime));
    line(
        out,
        ind,
        "start_limit",
        &format!(
            "burst {}, interval {}",
            a.start_limit.burst,
            format_duration(a.start_limit.interval)
        ),
    );
    line(out, ind, "stop_signal", signal_name(a.stop_signal));
    line(
        out,
        ind,
        "stop_timeout",
        &format!("{} (then SIGKILL)", format_duration(a.stop_timeout)),
    );
    let r = &a.resources;
    let limit = match r.memory_limit {
        Some(n) => format!(
            "memory_limit {}, memory_limit_action {}",
            format_size(n),
            action_name(r.memory_limit_action)
        ),
        None => "memory_limit none".to_owned(),
    };
    line(
        out,
        ind,
        "resources",
        &format!("cpu {}, memory {}, {limit}", r.cpu, format_size(r.memory)),
    );
    let deps = if a.depends_on.is_empty() {
        "(none)".to_owned()
    } else {
        a.depends_on.join(", ")
    };
    line(out, ind, "depends_on", &deps);
    render_work(out, ind, a);
}

/// How the agent takes work: its protocol, autoscaler and health probe.
fn render_work(out: &mut String, ind: &str, a: &crate::config::AgentSpec) {
    let protocol = match &a.tasks {
        None => "none (a plain process)".to_owned(),
        Some(t) => format!(
            "jsonrpc: concurrency {}, ready {}, skills {}, max_attempts {}, task_timeout {}, max_queue {}",
            t.concurrency,
            if t.announce { "announce" } else { "running" },
            if t.skills.is_empty() {
                "(none)".to_owned()
            } else {
                t.skills.join(", ")
            },
            t.max_attempts,
            t.task_timeout
                .map(format_duration)
                .unwrap_or_else(|| "none".into()),
            t.max_queue
        ),
    };
    line(out, ind, "protocol", &protocol);
    if let Some(s) = &a.autoscale {
        line(out, ind, "autoscale", &autoscale_line(s));
    }
    if let Some(h) = &a.health {
        let probes: Vec<String> = [("liveness", &h.liveness), ("readiness", &h.readiness)]
            .into_iter()
            .filter_map(|(kind, p)| Some(format!("{kind} {}", p.as_ref()?)))
            .collect();
        line(
            out,
            ind,
            "health",
            &format!(
                "{}, every {}, timeout {}, {} failures in a row count, start_period {}",
                probes.join(", "),
                format_duration(h.interval),
                format_duration(h.timeout),
                h.failure_threshold,
                format_duration(h.start_period)
            ),
        );
    }
}

/// `min 1, max 8, queue_per_replica 5, …` in the config's own words.
fn autoscale_line(s: &crate::core::autoscale::Spec) -> String {
    use crate::core::autoscale::Target;
    let ms = |m: u64| format_duration(std::time::Duration::from_millis(m));
    let mut parts = vec![format!("min {}, max {}", s.min, s.max)];
    for t in &s.targets {
        parts.push(match t {
            Target::LatencyP95(v) => format!("latency_p95 {}", ms((v * 1000.0) as u64)),
            other => format!("{} {}", other.name(), other.value()),
        });
    }
    parts.push(format!("tolerance {}", s.tolerance));
    parts.push(format!("scale_down_window {}", ms(s.scale_down_window_ms)));
    parts.push(format!("cooldown {}", ms(s.cooldown_ms)));
    parts.push(format!("max_step_up {}", s.max_step_up));
    if let Some(h) = s.predict_horizon_ms {
        parts.push(format!("predict {} ahead", ms(h)));
    }
    if s.min == 0 {
        parts.push(format!("idle_window {}", ms(s.idle_window_ms)));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets() {
        assert!(is_secret("OPENAI_API_KEY"));
        assert!(is_secret("github_token"));
        assert!(!is_secret("MODEL"));
    }
}
