//! `autonomos export kubernetes`: each agent of the config as Kubernetes
//! manifests. Everything the agent spec says either maps to a field or is
//! listed in the file's header as not mapped; nothing is dropped silently.
//!
//! - A plain agent runs its command as the container's command.
//! - A task agent (`protocol = "jsonrpc"`) takes its tasks through an
//!   Autonomos daemon: each pod runs `autonomos daemon` over a one-agent
//!   config (the ConfigMap), claiming from the shared PostgreSQL queue, and
//!   KEDA scales the pods on that queue's length.
//! - An agent that keeps its memory in its context dir gets a StatefulSet
//!   with a PersistentVolumeClaim per replica; others a Deployment.

use serde_json::{Value, json};

use super::kube_parts::{self, Notes};
use crate::config::model::{AgentSpec, Config};

/// What `export kubernetes` was asked for.
#[derive(Debug, Clone, Default)]
pub struct KubeOptions {
    pub namespace: Option<String>,
    /// The container image; `{agent}` is replaced by the agent's name.
    /// None: a placeholder that the header says to replace.
    pub image: Option<String>,
    /// Deployments with an emptyDir context for every agent.
    pub stateless: bool,
    /// The size of each context volume.
    pub volume_size: String,
}

/// One agent's manifests.
#[derive(Debug, Clone)]
pub struct KubeExport {
    pub agent: String,
    /// Kubernetes name (DNS-1123).
    pub name: String,
    /// A multi-document YAML file, header comment first.
    pub yaml: String,
    /// What could not be mapped (also in the header).
    pub unmapped: Vec<String>,
    /// It holds a Secret (the shared queue's URL): write it 0600.
    pub secret: bool,
}

/// Where a context dir is mounted in the pod.
pub const CONTEXT_MOUNT: &str = "/var/lib/autonomos/context";
const CONFIG_MOUNT: &str = "/etc/autonomos/agent";
const DAEMON_MOUNT: &str = "/etc/autonomos/daemon";
const DATA_MOUNT: &str = "/var/lib/autonomos/data";

/// Exports `agents` (every agent when empty). `raw` is the config file's
/// text (a task agent's ConfigMap is cut from it).
pub fn kubernetes(
    cfg: &Config,
    raw: &str,
    agents: &[String],
    opts: &KubeOptions,
) -> Result<Vec<KubeExport>, String> {
    for a in agents {
        if !cfg.agents.iter().any(|s| &s.name == a) {
            let names: Vec<&str> = cfg.agents.iter().map(|s| s.name.as_str()).collect();
            return Err(format!(
                "no agent `{a}` in the config (agents: {})",
                names.join(", ")
            ));
        }
    }
    if let Some(ns) = &opts.namespace {
        kube_parts::check_dns_label(ns).map_err(|e| format!("--namespace: {e}"))?;
    }
    if !kube_parts::is_quantity(&opts.volume_size) {
        return Err(format!(
            "--volume-size `{}` is not a Kubernetes quantity (like 1Gi or 500Mi)",
            opts.volume_size
        ));
    }
    let raw: toml::Table = raw
        .parse()
        .map_err(|e| format!("cannot read the config again: {e}"))?;
    let chosen: Vec<&AgentSpec> = cfg
        .agents
        .iter()
        .filter(|s| agents.is_empty() || agents.contains(&s.name))
        .collect();
    let mut seen = std::collections::BTreeMap::new();
    for s in &chosen {
        let n = kube_parts::k8s_name(&s.name)?;
        if let Some(other) = seen.insert(n.clone(), s.name.clone()) {
            return Err(format!(
                "agents `{other}` and `{}` would both be named `{n}` in Kubernetes (`_` becomes `-`): rename one",
                s.name
            ));
        }
    }
    chosen
        .into_iter()
        .map(|s| one(cfg, &raw, s, opts))
        .collect()
}

fn one(
    cfg: &Config,
    raw: &toml::Table,
    spec: &AgentSpec,
    opts: &KubeOptions,
) -> Result<KubeExport, String> {
    let name = kube_parts::k8s_name(&spec.name)?;
    let mut notes = Notes::default();
    let task_agent = spec.tasks.is_some();
    let stateful = !opts.stateless && !task_agent && kube_parts::keeps_context(spec);
    let labels = json!({
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/part-of": "autonomos",
        "app.kubernetes.io/managed-by": "autonomos-export",
    });
    // The agent's own name may not be a label value (a trailing `_`).
    let meta = |n: &str| {
        let mut m = json!({ "name": n, "labels": labels,
            "annotations": { "autonomos.dev/agent": spec.name } });
        if let Some(ns) = &opts.namespace {
            m["namespace"] = json!(ns);
        }
        m
    };
    let mut docs = Vec::new();
    let config_map = format!("{name}-config");
    let mut data = serde_json::Map::new();
    // The agent's table as the operator wrote it, but for `env`, which
    // often holds keys: that goes to a Secret.
    data.insert(
        "agent.toml".into(),
        json!(kube_parts::agent_table(
            raw,
            &spec.name,
            &format!("{name}-env")
        )?),
    );
    let store = cfg.tasks.store.clone();
    let mut daemon_config = None;
    if task_agent {
        match &store {
            Some(_) => daemon_config = Some(kube_parts::one_agent_config(raw, &spec.name)?),
            None => notes.not(
                "protocol = \"jsonrpc\"",
                "tasks reach pods only through a shared queue: set [tasks] store = \"postgres://...\" and export again (each pod then runs an Autonomos daemon claiming from it)",
            ),
        }
    }
    docs.push(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": meta(&config_map),
        "data": data,
    }));
    // The daemon's config names the queue's URL (maybe with a password):
    // a Secret, which KEDA reads the URL from as well.
    let wrapped = daemon_config.is_some();
    let env_secret = !wrapped && !spec.env.is_empty();
    let secret = wrapped || env_secret;
    docs.extend(secrets(
        spec,
        &name,
        env_secret,
        &daemon_config,
        &store,
        &meta,
    ));
    let container = container(spec, &name, wrapped, stateful, opts, &mut notes);
    let pod = pod_spec(spec, container, &name, wrapped, stateful, &mut notes);
    let replicas = match &spec.autoscale {
        Some(a) => a.min.max(1),
        None => spec.replicas,
    };
    let selector = json!({ "matchLabels": { "app.kubernetes.io/name": name } });
    let template = json!({ "metadata": { "labels": labels }, "spec": pod });
    let workload = workload(
        stateful,
        meta(&name),
        &name,
        replicas,
        selector,
        template,
        opts,
    );
    let kind = workload["kind"]
        .as_str()
        .unwrap_or("Deployment")
        .to_string();
    docs.push(workload);
    if stateful {
        // A StatefulSet names a governing Service; headless, no ports.
        docs.push(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": meta(&name),
            "spec": { "clusterIP": "None", "selector": { "app.kubernetes.io/name": name } },
        }));
    }
    if let Some(a) = &spec.autoscale {
        let target = json!({ "apiVersion": "apps/v1", "kind": kind, "name": name });
        if let Some(doc) =
            kube_parts::scaler(spec, a, target, meta(&name), store.as_deref(), &mut notes)
        {
            docs.push(doc);
        }
    }
    kube_parts::unmapped_policy(spec, &mut notes);
    let yaml = kube_parts::render(spec, &kind, opts, &notes, &docs)?;
    Ok(KubeExport {
        agent: spec.name.clone(),
        name,
        yaml,
        unmapped: notes.lines(),
        secret,
    })
}

fn container(
    spec: &AgentSpec,
    name: &str,
    wrapped: bool,
    stateful: bool,
    opts: &KubeOptions,
    notes: &mut Notes,
) -> Value {
    let image = match &opts.image {
        Some(i) => i.replace("{agent}", &spec.name),
        None => {
            notes.fill(format!(
                "image: replace `{}` with an image that holds the agent's command{} (or pass --image)",
                kube_parts::placeholder_image(&spec.name),
                if wrapped { " and the autonomos binary" } else { "" }
            ));
            kube_parts::placeholder_image(&spec.name)
        }
    };
    let mut env: Vec<Value> = Vec::new();
    let mut mounts = vec![json!({ "name": "config", "mountPath": CONFIG_MOUNT, "readOnly": true })];
    let command: Vec<String> = if wrapped {
        env.push(json!({ "name": "AUTONOMOS_CONFIG", "value": format!("{DAEMON_MOUNT}/autonomos.toml") }));
        env.push(json!({ "name": "AUTONOMOS_DATA_DIR", "value": DATA_MOUNT }));
        env.push(json!({ "name": "XDG_RUNTIME_DIR", "value": format!("{DATA_MOUNT}/run") }));
        env.push(json!({ "name": "AUTONOMOS_TASKS_STORE", "valueFrom": {
            "secretKeyRef": { "name": format!("{name}-daemon"), "key": "url" } } }));
        mounts.push(json!({ "name": "daemon", "mountPath": DAEMON_MOUNT, "readOnly": true }));
        mounts.push(json!({ "name": "context", "mountPath": DATA_MOUNT }));
        vec!["autonomos".into(), "daemon".into()]
    } else {
        env.push(json!({ "name": "AUTONOMOS_AGENT", "value": spec.name }));
        env.push(json!({ "name": "AUTONOMOS_CONTEXT_DIR", "value": CONTEXT_MOUNT }));
        // A StatefulSet's pods are numbered; a Deployment's are named.
        let replica = if stateful {
            "metadata.labels['apps.kubernetes.io/pod-index']"
        } else {
            "metadata.name"
        };
        env.push(
            json!({ "name": "AUTONOMOS_REPLICA", "valueFrom": { "fieldRef": {
            "fieldPath": replica } } }),
        );
        // The image sets the usual ones; others must be given to the pod.
        const IMAGE_SETS: [&str; 7] = ["PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ"];
        let own: Vec<&str> = spec
            .inherit_env
            .iter()
            .map(String::as_str)
            .filter(|v| !IMAGE_SETS.contains(v))
            .collect();
        if !own.is_empty() {
            notes.not(
                "inherit_env",
                &format!(
                    "{} come from the daemon's environment; set them in the pod (env or a Secret)",
                    own.join(", ")
                ),
            );
        }
        mounts.push(json!({ "name": "context", "mountPath": CONTEXT_MOUNT }));
        spec.command.clone()
    };
    let mut c = json!({
        "name": name,
        "image": image,
        "command": command,
        "env": env,
        "envFrom": if !wrapped && !spec.env.is_empty() {
            json!([{ "secretRef": { "name": format!("{name}-env") } }])
        } else {
            json!([])
        },
        "volumeMounts": mounts,
        "resources": kube_parts::resources(spec, notes),
    });
    if !wrapped {
        c["workingDir"] = json!(match &spec.cwd {
            Some(p) if p.is_absolute() => p.display().to_string(),
            _ => CONTEXT_MOUNT.to_string(),
        });
        if spec.tty.is_some() {
            c["tty"] = json!(true);
            c["stdin"] = json!(true);
            notes.not("tty", "a terminal is allocated (tty: true), but the console's screen and attention patterns are Autonomos's own");
        }
        kube_parts::probes(spec, &mut c, notes);
    } else if spec.health.is_some() {
        notes.not("health", "the daemon inside the pod runs the agent's probes (restarts and readiness as in Autonomos); Kubernetes sees the daemon only");
    }
    // Inside a wrapped pod the daemon gives the agent its own stop signal.
    if !wrapped {
        kube_parts::stop_signal(spec, &mut c);
    }
    c
}

fn pod_spec(
    spec: &AgentSpec,
    container: Value,
    name: &str,
    wrapped: bool,
    stateful: bool,
    notes: &mut Notes,
) -> Value {
    let grace = spec.stop_timeout.as_secs_f64().ceil().max(1.0) as u64;
    let mut volumes =
        vec![json!({ "name": "config", "configMap": { "name": format!("{name}-config") } })];
    if wrapped {
        volumes.push(json!({ "name": "daemon", "secret": {
            "secretName": format!("{name}-daemon"), "defaultMode": 0o400 } }));
    }
    if !stateful {
        volumes.push(json!({ "name": "context", "emptyDir": {} }));
        if kube_parts::keeps_context(spec) && spec.tasks.is_none() {
            notes.not(
                "context dir",
                "exported stateless (--stateless): the context is an emptyDir, lost with the pod",
            );
        }
    }
    json!({
        // Autonomos gives stop_timeout plus a margin before SIGKILL.
        "terminationGracePeriodSeconds": grace + 5,
        "restartPolicy": "Always",
        "containers": [container],
        "volumes": volumes,
    })
}

/// A StatefulSet with a claim per replica, or a Deployment.
fn workload(
    stateful: bool,
    meta: Value,
    name: &str,
    replicas: u32,
    selector: Value,
    template: Value,
    opts: &KubeOptions,
) -> Value {
    if stateful {
        json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": meta,
            "spec": {
                "serviceName": name,
                "replicas": replicas,
                "podManagementPolicy": "Parallel",
                "selector": selector,
                "template": template,
                "volumeClaimTemplates": [{
                    "metadata": { "name": "context" },
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": { "requests": { "storage": opts.volume_size } },
                    },
                }],
            },
        })
    } else {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": meta,
            "spec": { "replicas": replicas, "selector": selector, "template": template },
        })
    }
}

/// The Secrets: the agent's env (a plain agent), or the daemon's config
/// with the queue's URL (maybe with a password), which KEDA reads too.
fn secrets(
    spec: &AgentSpec,
    name: &str,
    env_secret: bool,
    daemon_config: &Option<String>,
    store: &Option<String>,
    meta: &dyn Fn(&str) -> Value,
) -> Vec<Value> {
    let mut docs = Vec::new();
    if env_secret {
        docs.push(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": meta(&format!("{name}-env")),
            "type": "Opaque",
            "stringData": spec.env,
        }));
    }
    if let (Some(toml), Some(url)) = (daemon_config, store) {
        docs.push(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": meta(&format!("{name}-daemon")),
            "type": "Opaque",
            "stringData": { "url": url, "autonomos.toml": toml },
        }));
    }
    docs
}
