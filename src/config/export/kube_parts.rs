//! The pieces of a Kubernetes export: names, resources, probes, the stop
//! signal, the autoscaler, and the YAML with its header of notes.

use serde_json::{Value, json};

use super::kubernetes::KubeOptions;
use crate::config::model::{AgentSpec, Probe};
use crate::core::autoscale::{Spec as Autoscale, Target};
use crate::core::supervise::{LimitAction, RestartPolicy};

/// What the export could not map, and what the operator must fill in.
#[derive(Debug, Default)]
pub struct Notes {
    unmapped: Vec<String>,
    fill: Vec<String>,
}

impl Notes {
    /// `what` of the spec has no Kubernetes equivalent here: `why`.
    pub fn not(&mut self, what: &str, why: &str) {
        self.unmapped.push(format!("{what}: {why}"));
    }

    /// Something the operator must fill in.
    pub fn fill(&mut self, what: String) {
        self.fill.push(what);
    }

    /// Every note, unmapped first.
    pub fn lines(&self) -> Vec<String> {
        self.unmapped.iter().chain(&self.fill).cloned().collect()
    }
}

/// An agent's Kubernetes name: `_` becomes `-`, no `-` at either end, a
/// letter first (a Service name must start with one: `agent-` is put
/// before a digit), at most 52 characters (a StatefulSet's pods need 11
/// more for their revision label).
pub fn k8s_name(agent: &str) -> Result<String, String> {
    let s: String = agent
        .chars()
        .map(|c| if c == '_' { '-' } else { c })
        .collect();
    let s = s.trim_matches('-');
    let s = match s.chars().next() {
        Some(c) if c.is_ascii_lowercase() => s.to_string(),
        Some(_) => format!("agent-{s}"),
        None => return Err(format!("agent `{agent}` has no usable Kubernetes name")),
    };
    if s.len() > 52 {
        return Err(format!(
            "agent `{agent}` would be named `{s}` ({} characters): Kubernetes takes at most 52 here; rename the agent",
            s.len()
        ));
    }
    Ok(s)
}

/// A namespace must be a DNS-1123 label.
pub fn check_dns_label(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a DNS label (lowercase letters, digits and `-`, at most 63)"
        ))
    }
}

/// The agent keeps memory in its context dir: it runs there (no `cwd`),
/// restores it from backups, or works in a git workspace.
pub fn keeps_context(spec: &AgentSpec) -> bool {
    spec.cwd.is_none() || spec.restore_latest || spec.workspace.is_some()
}

pub fn placeholder_image(agent: &str) -> String {
    format!(
        "registry.example.invalid/autonomos/{}:latest",
        k8s_name(agent).unwrap_or_else(|_| "agent".into())
    )
}

/// A copy of `[agents.NAME]` as written in the file.
fn raw_agent(raw: &toml::Table, agent: &str) -> Result<toml::Table, String> {
    raw.get("agents")
        .and_then(|v| v.get(agent))
        .and_then(|v| v.as_table())
        .cloned()
        .ok_or_else(|| format!("agent `{agent}` not found in the file"))
}

/// `[agents.NAME]` as written in the file, its `env` left out (named as
/// being in the Secret `env_secret`).
pub fn agent_table(raw: &toml::Table, agent: &str, env_secret: &str) -> Result<String, String> {
    let mut a = raw_agent(raw, agent)?;
    let had_env = a.remove("env").is_some();
    let mut agents = toml::Table::new();
    agents.insert(agent.into(), toml::Value::Table(a));
    let mut out = toml::Table::new();
    out.insert("agents".into(), toml::Value::Table(agents));
    let text = toml::to_string(&out).map_err(|e| e.to_string())?;
    Ok(if had_env {
        format!("# env: in the Secret {env_secret}\n{text}")
    } else {
        text
    })
}

/// The config a task agent's pod runs: the file's `[tasks]` (without
/// `host`: each pod is a host of its own) and the agent's table, one
/// replica per pod and no autoscaler (Kubernetes scales the pods).
pub fn one_agent_config(raw: &toml::Table, agent: &str) -> Result<String, String> {
    let mut out = toml::Table::new();
    if let Some(toml::Value::Table(t)) = raw.get("tasks") {
        let mut t = t.clone();
        t.remove("host");
        out.insert("tasks".into(), toml::Value::Table(t));
    }
    let mut a = raw_agent(raw, agent)?;
    a.insert("replicas".into(), toml::Value::Integer(1));
    a.remove("autoscale");
    a.remove("depends_on");
    let mut agents = toml::Table::new();
    agents.insert(agent.into(), toml::Value::Table(a));
    out.insert("agents".into(), toml::Value::Table(agents));
    toml::to_string(&out).map_err(|e| e.to_string())
}

/// `1Gi`, `500Mi`, `10G`, `1024`: a storage quantity.
pub fn is_quantity(s: &str) -> bool {
    let num = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[num.len()..];
    const UNITS: [&str; 13] = [
        "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "k", "M", "G", "T", "P", "E",
    ];
    !num.is_empty()
        && num.parse::<f64>().is_ok_and(|n| n > 0.0)
        && num.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && UNITS.contains(&unit)
}

/// `1.5` cores → `1500m`.
fn millicores(cores: f64) -> String {
    format!("{}m", (cores * 1000.0).round().max(1.0) as u64)
}

/// Bytes → `Mi` when whole, else bytes.
fn quantity(bytes: u64) -> String {
    if bytes.is_multiple_of(1 << 20) {
        format!("{}Mi", bytes >> 20)
    } else {
        bytes.to_string()
    }
}

pub fn resources(spec: &AgentSpec, notes: &mut Notes) -> Value {
    let r = &spec.resources;
    let mut requests = serde_json::Map::new();
    if r.cpu > 0.0 {
        requests.insert("cpu".into(), json!(millicores(r.cpu)));
    }
    if r.memory > 0 {
        requests.insert("memory".into(), json!(quantity(r.memory)));
    }
    let mut out = json!({ "requests": requests });
    if let Some(limit) = r.memory_limit {
        match r.memory_limit_action {
            LimitAction::Restart => out["limits"] = json!({ "memory": quantity(limit) }),
            LimitAction::Stop => {
                out["limits"] = json!({ "memory": quantity(limit) });
                notes.not("memory_limit_action = \"stop\"", "Kubernetes restarts an OOM-killed container; the limit is exported, the stop is not");
            }
            LimitAction::Alert => notes.not(
                "memory_limit with memory_limit_action = \"alert\"",
                "a Kubernetes memory limit kills; no limit is exported (alert on container_memory_working_set_bytes instead)",
            ),
        }
    }
    out
}

fn seconds(d: std::time::Duration) -> u64 {
    d.as_secs_f64().ceil().max(1.0) as u64
}

/// `health` → liveness and readiness probes.
pub fn probes(spec: &AgentSpec, c: &mut Value, notes: &mut Notes) {
    let Some(h) = &spec.health else { return };
    for (field, probe) in [
        ("livenessProbe", &h.liveness),
        ("readinessProbe", &h.readiness),
    ] {
        let Some(p) = probe else { continue };
        let mut body = match p {
            Probe::Exec(argv) => json!({ "exec": { "command": argv } }),
            Probe::Tcp(port) => json!({ "tcpSocket": { "port": port } }),
            Probe::Http(url) => match http_parts(url) {
                Some((port, path)) => json!({ "httpGet": { "port": port, "path": path } }),
                None => {
                    notes.not(field, &format!("cannot read a port and path from {url}"));
                    continue;
                }
            },
            Probe::Heartbeat(_) => {
                notes.not(
                    &format!("health {field}: heartbeat"),
                    "heard through the Autonomos task protocol only",
                );
                continue;
            }
        };
        if matches!(p, Probe::Http(_) | Probe::Tcp(_)) {
            notes.fill(format!(
                "{field}: the kubelet connects to the pod's IP, not 127.0.0.1: the agent must listen on all addresses"
            ));
        }
        body["periodSeconds"] = json!(seconds(h.interval));
        body["timeoutSeconds"] = json!(seconds(h.timeout));
        body["failureThreshold"] = json!(h.failure_threshold.max(1));
        if !h.start_period.is_zero() {
            body["initialDelaySeconds"] = json!(seconds(h.start_period));
        }
        c[field] = body;
    }
}

/// `http://127.0.0.1:8080/healthz` → (8080, "/healthz").
fn http_parts(url: &str) -> Option<(u16, String)> {
    let rest = url.strip_prefix("http://")?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let port = match hostport.rsplit_once(':') {
        Some((_, p)) => p.parse().ok()?,
        None => 80,
    };
    Some((port, path))
}

/// A stop signal other than SIGTERM: sent by a preStop hook before the
/// kubelet's SIGTERM (the image needs `kill`, as any POSIX shell has).
pub fn stop_signal(spec: &AgentSpec, c: &mut Value) {
    const SIGTERM: i32 = 15;
    if spec.stop_signal == SIGTERM {
        return;
    }
    let name = crate::core::signal::signal_name(spec.stop_signal);
    let sig = name.trim_start_matches("SIG");
    c["lifecycle"] = json!({ "preStop": { "exec": { "command": [
        "/bin/sh", "-c", format!("kill -{sig} 1; sleep {}", seconds(spec.stop_timeout))
    ] } } });
}

/// `autoscale` → a HorizontalPodAutoscaler on CPU, or a KEDA
/// ScaledObject when a queue target needs the shared queue's length.
pub fn scaler(
    spec: &AgentSpec,
    a: &Autoscale,
    target: Value,
    meta: Value,
    store: Option<&str>,
    notes: &mut Notes,
) -> Option<Value> {
    let mut cpu = None;
    let mut queue = None;
    for t in &a.targets {
        match t {
            Target::Cpu(v) => cpu = Some(*v),
            Target::QueuePerReplica(v) => queue = Some(*v),
            other => notes.not(
                &format!("autoscale target {}", other.name()),
                "KEDA and the HPA have no such metric from Autonomos; scale on queue_per_replica or cpu",
            ),
        }
    }
    if a.predict_horizon_ms.is_some() {
        notes.not("autoscale predict", "Kubernetes scalers are reactive");
    }
    if queue.is_some() && store.is_none() {
        notes.not(
            "autoscale queue_per_replica",
            "the queue lives in the daemon; with [tasks] store = \"postgres://...\" KEDA reads it",
        );
        queue = None;
    }
    // Kubernetes takes at most an hour here.
    let down = (a.scale_down_window_ms / 1000).clamp(1, 3600);
    if a.scale_down_window_ms > 3_600_000 {
        notes.not(
            "autoscale scale_down_window over 1h",
            "Kubernetes' stabilization window is at most 3600 s; exported as 3600",
        );
    }
    if let Some(per) = queue {
        let mut triggers = vec![json!({
            "type": "postgresql",
            "metadata": {
                "connectionFromEnv": "AUTONOMOS_TASKS_STORE",
                "query": format!(
                    // Waiting and in flight: pods are never scaled away
                    // from tasks they still run.
                    "SELECT count(*) FROM autonomos_tasks WHERE agent = '{}' AND state NOT IN ('completed', 'failed', 'canceled', 'rejected') AND (owner IS NOT NULL OR not_before <= now())",
                    spec.name
                ),
                "targetQueryValue": format!("{per}"),
                "activationTargetQueryValue": "0",
            },
        })];
        if let Some(c) = cpu {
            triggers.push(json!({ "type": "cpu", "metricType": "AverageValue",
                "metadata": { "value": millicores(c) } }));
        }
        return Some(json!({
            "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": meta,
            "spec": {
                "scaleTargetRef": { "apiVersion": target["apiVersion"], "kind": target["kind"], "name": target["name"] },
                "minReplicaCount": a.min,
                "maxReplicaCount": a.max,
                "pollingInterval": 5,
                "cooldownPeriod": (a.idle_window_ms / 1000).max(1),
                "triggers": triggers,
                "advanced": { "horizontalPodAutoscalerConfig": { "behavior": {
                    "scaleDown": { "stabilizationWindowSeconds": down } } } },
            },
        }));
    }
    let c = cpu?;
    if a.min == 0 {
        notes.not("autoscale min = 0", "an HPA keeps at least one replica; KEDA (a queue target with a shared store) scales to zero");
    }
    Some(json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": meta,
        "spec": {
            "scaleTargetRef": target,
            "minReplicas": a.min.max(1),
            "maxReplicas": a.max.max(1),
            "metrics": [{ "type": "Resource", "resource": { "name": "cpu",
                "target": { "type": "AverageValue", "averageValue": millicores(c) } } }],
            "behavior": { "scaleDown": { "stabilizationWindowSeconds": down } },
        },
    }))
}

/// What supervision says that a pod's restart policy cannot.
pub fn unmapped_policy(spec: &AgentSpec, notes: &mut Notes) {
    if spec.restart != RestartPolicy::Always {
        notes.not(
            "restart",
            "a Deployment or StatefulSet always restarts its containers (restartPolicy: Always); use a Job for run-once work",
        );
    }
    notes.not(
        "backoff, start_limit, min_uptime",
        "the kubelet's CrashLoopBackOff (10 s doubling to 5 min) applies instead",
    );
    if !spec.depends_on.is_empty() {
        notes.not(
            "depends_on",
            &format!(
                "{}: no start order between workloads; add an init container that waits for them",
                spec.depends_on.join(", ")
            ),
        );
    }
    if spec.workspace.is_some() {
        notes.not(
            "workspace",
            "git worktrees are made by the daemon on its host",
        );
    }
    if !spec.attention.is_empty() {
        notes.not(
            "attention",
            "screen patterns are watched by the Autonomos console only",
        );
    }
}

/// The file: a header of notes, then the documents.
pub fn render(
    spec: &AgentSpec,
    kind: &str,
    opts: &KubeOptions,
    notes: &Notes,
    docs: &[Value],
) -> Result<String, String> {
    let mut out = format!(
        "# Autonomos agent `{}` as Kubernetes manifests ({kind}{}).\n# Generated by `autonomos export kubernetes`; apply with `kubectl apply -f`.\n",
        spec.name,
        opts.namespace
            .as_deref()
            .map(|n| format!(", namespace {n}"))
            .unwrap_or_default()
    );
    let lines = notes.lines();
    if lines.is_empty() {
        out.push_str("# Everything in the agent's spec is mapped.\n");
    } else {
        out.push_str("# Not mapped, or to fill in:\n");
        for l in lines {
            out.push_str(&format!("#   - {}\n", l.replace('\n', " ")));
        }
    }
    for d in docs {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(d).map_err(|e| e.to_string())?);
    }
    Ok(out)
}
