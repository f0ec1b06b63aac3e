//! `export kubernetes` validated against the Kubernetes schemas offline
//! (`kubernetes-validate` from PyPI), `export systemd` / `service install`
//! checked by `systemd-analyze verify` (Debian `systemd`), and the daemon's
//! `Type=notify` messages read from a real notify socket.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{BinDaemon, have_tool};

const FLEET: &str = r#"
[tasks]
store = "postgres://autonomos:s3cret@db.internal:5432/fleet"
lease = "30s"
host = "this-box"

[agents.web_tool]
command = ["python3", "-m", "http.server", "8080"]
cwd = "/srv/tool"
replicas = 2
stop_signal = "SIGINT"
stop_timeout = "20s"
env = { MODE = "on", OCTAL = "0755", EMPTY = "" }
resources = { cpu = 0.5, memory = "256MiB", memory_limit = "512MiB" }
health = { interval = "10s", timeout = "2s", failure_threshold = 3, start_period = "5s", liveness = { http = "http://127.0.0.1:8080/healthz" }, readiness = { tcp = 8080 } }
autoscale = { min = 1, max = 6, cpu = 0.4 }

[agents.memory_keeper]
command = ["sh", "-c", "echo started >> \"$AUTONOMOS_CONTEXT_DIR/log\"; exec sleep 1000"]
restart = "on-failure"
depends_on = ["web_tool"]
health = { liveness = { exec = ["test", "-f", "/tmp/ok"] } }

[agents.researcher]
command = ["python3", "researcher.py"]
stop_signal = "SIGINT"
protocol = "jsonrpc"
concurrency = 2
autoscale = { min = 0, max = 10, queue_per_replica = 5, cpu = 1.5, latency_p95 = "30s" }
health = { liveness = { heartbeat = "15s" } }
"#;

fn validator() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("AUTONOMOS_KUBE_VALIDATE") {
        return Some(PathBuf::from(p));
    }
    if have_tool(
        "kubernetes-validate",
        "python3-venv, then: pip install kubernetes-validate",
    ) {
        return Some(PathBuf::from("kubernetes-validate"));
    }
    None
}

fn write_config(dir: &Path) -> PathBuf {
    let cfg = dir.join("autonomos.toml");
    std::fs::write(&cfg, FLEET).expect("config");
    cfg
}

fn autonomos(cfg: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_autonomos"))
        .arg("--config")
        .arg(cfg)
        .args(args)
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn kubernetes_manifests_validate_against_the_schemas_and_list_what_is_not_mapped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path());
    let out = dir.path().join("k8s");
    let (code, _, err) = autonomos(
        &cfg,
        &[
            "export",
            "kubernetes",
            "--namespace",
            "agents",
            "--image",
            "ghcr.io/me/{agent}:1",
            "-o",
            out.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let read = |f: &str| std::fs::read_to_string(out.join(f)).expect(f);
    let web = read("web-tool.yaml");
    let keeper = read("memory-keeper.yaml");
    // Long strings may be folded over lines: compare with spaces collapsed.
    let researcher = read("researcher.yaml")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");

    // web_tool: has a cwd, so no context to keep: a Deployment, an HPA on
    // CPU, probes, limits, the stop signal through preStop, grace.
    for want in [
        "kind: Deployment",
        "kind: HorizontalPodAutoscaler",
        "namespace: agents",
        "image: ghcr.io/me/web_tool:1",
        "replicas: 1",
        "averageValue: 400m",
        "cpu: 500m",
        "memory: 256Mi",
        "memory: 512Mi",
        "path: /healthz",
        "periodSeconds: 10",
        "initialDelaySeconds: 5",
        "tcpSocket:",
        "kill -INT 1",
        "terminationGracePeriodSeconds: 25",
        "workingDir: /srv/tool",
    ] {
        assert!(web.contains(want), "web_tool lacks `{want}`:\n{web}");
    }
    // env goes to a Secret (it often holds keys), read with envFrom; strings
    // a YAML 1.1 reader would take for a bool or a number stay strings.
    assert!(
        web.contains("kind: Secret") && web.contains("name: web-tool-env"),
        "{web}"
    );
    assert!(
        web.contains("MODE: \"on\"") || web.contains("MODE: 'on'"),
        "{web}"
    );
    assert!(web.contains("\"0755\"") || web.contains("'0755'"), "{web}");
    assert!(web.contains("# env: in the Secret web-tool-env"), "{web}");
    assert!(
        !web.contains("[agents.web_tool.env]"),
        "env kept out of the ConfigMap: {web}"
    );
    assert!(
        web.contains("autonomos.dev/agent: web_tool"),
        "the agent's name annotated: {web}"
    );

    // memory_keeper: runs in its context: a StatefulSet with a claim per
    // replica and its headless Service; what has no equivalent is listed.
    for want in [
        "kind: StatefulSet",
        "volumeClaimTemplates:",
        "storage: 1Gi",
        "clusterIP: None",
        "mountPath: /var/lib/autonomos/context",
        "exec:",
        "#   - restart:",
        "#   - depends_on: web_tool",
        "#   - backoff, start_limit, min_uptime",
    ] {
        assert!(
            keeper.contains(want),
            "memory_keeper lacks `{want}`:\n{keeper}"
        );
    }

    // researcher: a task agent: each pod runs a daemon on the shared
    // queue, its config in a Secret, KEDA scales it on the queue.
    for want in [
        "kind: Secret",
        "kind: ScaledObject",
        "type: postgresql",
        "agent = 'researcher' AND state NOT IN ('completed', 'failed', 'canceled', 'rejected') AND (owner IS NOT NULL OR not_before <= now())",
        "targetQueryValue: '5'",
        "minReplicaCount: 0",
        "connectionFromEnv: AUTONOMOS_TASKS_STORE",
        "- daemon",
        "# - autoscale target latency_p95",
        "# - health: the daemon inside the pod runs the agent's probes",
    ] {
        assert!(
            researcher.contains(want) || researcher.contains(&want.replace('\'', "\"")),
            "researcher lacks `{want}`:\n{researcher}"
        );
    }
    assert!(
        !researcher.contains("host = \"this-box\""),
        "each pod is its own host"
    );
    // The daemon in the pod gives the agent its stop signal itself.
    assert!(!researcher.contains("preStop"), "{researcher}");
    let mode = std::fs::metadata(out.join("researcher.yaml"))
        .expect("file")
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o077,
        0,
        "the file with the store's password is private: {mode:o}"
    );

    // Every manifest against the Kubernetes schemas; KEDA's ScaledObject is
    // a custom resource the validator has no schema for.
    let Some(validate) = validator() else { return };
    let files: Vec<PathBuf> = ["web-tool.yaml", "memory-keeper.yaml", "researcher.yaml"]
        .iter()
        .map(|f| out.join(f))
        .collect();
    let r = Command::new(&validate)
        .arg("--strict")
        .args(&files)
        .output()
        .expect("kubernetes-validate runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr)
    );
    let failures: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("ERROR") && !l.contains("scaledobject/"))
        .collect();
    assert!(failures.is_empty(), "{text}");
    let passed = text
        .lines()
        .filter(|l| l.contains(" passed for resource "))
        .count();
    // 3 ConfigMaps, 2 Deployments, 1 StatefulSet, 1 Service, 1 HPA, 1 Secret.
    assert!(passed >= 9, "{text}");
}

#[test]
fn kubernetes_export_to_stdout_refuses_unknown_agents_and_bad_namespaces() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path());
    let (code, out, err) = autonomos(&cfg, &["export", "kubernetes", "web_tool"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("name: web-tool") && !out.contains("researcher"),
        "{out}"
    );
    assert!(
        out.contains("registry.example.invalid"),
        "placeholder image named: {out}"
    );
    assert!(out.contains("#   - image: replace"), "{out}");
    let (code, _, err) = autonomos(&cfg, &["export", "kubernetes", "nobody"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no agent `nobody`") && err.contains("web_tool"),
        "{err}"
    );
    let (code, _, err) = autonomos(&cfg, &["export", "kubernetes", "--namespace", "Bad_NS"]);
    assert_eq!(code, 2);
    assert!(err.contains("not a DNS label"), "{err}");
    // Names Kubernetes would refuse or mix up.
    let clash = dir.path().join("clash.toml");
    std::fs::write(
        &clash,
        "[agents.a_b]\ncommand = \"sleep 1\"\n[agents.a-b]\ncommand = \"sleep 1\"\n[agents.9lives]\ncommand = \"sleep 1\"\n",
    )
    .expect("config");
    let (code, _, err) = autonomos(&clash, &["export", "kubernetes"]);
    assert_eq!(code, 2);
    assert!(err.contains("would both be named `a-b`"), "{err}");
    let (code, out, err) = autonomos(&clash, &["export", "kubernetes", "9lives"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("name: agent-9lives"), "{out}");
    let (code, _, err) = autonomos(&cfg, &["export", "kubernetes", "--volume-size", "lots"]);
    assert_eq!(code, 2);
    assert!(err.contains("not a Kubernetes quantity"), "{err}");
}

fn analyze(args: &[&str], unit: &Path) -> String {
    // `--user` looks for the user's runtime dir, as a login would have.
    let runtime = tempfile::tempdir().expect("tempdir");
    let r = Command::new("systemd-analyze")
        .env("XDG_RUNTIME_DIR", runtime.path())
        .args(args)
        .arg("verify")
        .arg(unit)
        .output()
        .expect("systemd-analyze runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(r.status.success(), "{text}");
    text
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    if !have_tool("systemd-analyze", "systemd") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path());
    let out = dir.path().join("units");
    let (code, _, err) = autonomos(
        &cfg,
        &[
            "export",
            "systemd",
            "-o",
            out.to_str().expect("utf-8"),
            "--run-as",
            "root",
            "--data-dir",
            dir.path().join("data").to_str().expect("utf-8"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let unit = out.join("autonomos.service");
    let text = std::fs::read_to_string(&unit).expect("unit");
    assert!(text.contains("Type=notify"), "{text}");
    assert!(
        text.contains(&format!(
            "AUTONOMOS_CONFIG={}",
            cfg.canonicalize().expect("abs").display()
        )),
        "{text}"
    );
    // Any complaint (an unknown key, a bad value) is printed: none allowed.
    let said = analyze(&[], &unit);
    let complaints: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("autonomos.service"))
        .collect();
    assert!(complaints.is_empty(), "{said}");
    // Another user with this user's default data dir is refused.
    let (code, _, err) = autonomos(&cfg, &["export", "systemd", "--run-as", "nobody-else"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("give --data-dir"), "{err}");
    // --harden passes systemd-analyze too.
    let hard = dir.path().join("hard");
    let (code, _, err) = autonomos(
        &cfg,
        &[
            "export",
            "systemd",
            "--harden",
            "--run-as",
            "root",
            "--data-dir",
            "/var/lib/autonomos",
            "-o",
            hard.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let said = analyze(&[], &hard.join("autonomos.service"));
    assert!(!said.contains("autonomos.service"), "{said}");

    // The user unit, written by `service install --user` into a given dir.
    let udir = dir.path().join("user-units");
    let (code, said, err) = autonomos(
        &cfg,
        &[
            "service",
            "install",
            "--user",
            "--unit-dir",
            udir.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(said.contains("systemctl --user daemon-reload"), "{said}");
    assert!(said.contains("loginctl enable-linger"), "{said}");
    let unit = udir.join("autonomos.service");
    let text = std::fs::read_to_string(&unit).expect("user unit");
    assert!(text.contains("WantedBy=default.target") && !text.contains("User="));
    let said = analyze(&["--user"], &unit);
    let complaints: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("autonomos.service"))
        .collect();
    assert!(complaints.is_empty(), "{said}");
}

#[test]
fn the_daemon_tells_systemd_it_is_ready_and_when_it_stops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("notify.sock");
    let listener = std::os::unix::net::UnixDatagram::bind(&sock).expect("bind");
    listener
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut d = BinDaemon::start_with_env(
        "[agents.w]\ncommand = \"sleep 1000\"\n",
        &[("NOTIFY_SOCKET", sock.to_str().expect("utf-8"))],
    );
    let mut buf = [0u8; 4096];
    let n = listener.recv(&mut buf).expect("READY=1 arrives");
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(msg.lines().any(|l| l == "READY=1"), "{msg}");
    // Ready means the socket answers.
    let (code, _, err) = d.cli(&["status"]);
    assert_eq!(code, 0, "{err}");
    // The agents never see the daemon's notify socket.
    d.wait_status("w running", Duration::from_secs(15), |s| {
        s.agents[0].running == 1
    });
    let pid = d.status().agents[0].replicas[0].pid.expect("pid");
    let env = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
    assert!(
        !String::from_utf8_lossy(&env).contains("NOTIFY_SOCKET"),
        "an agent inherited NOTIFY_SOCKET"
    );
    d.stop();
    let n = listener.recv(&mut buf).expect("STOPPING=1 arrives");
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(msg.lines().any(|l| l == "STOPPING=1"), "{msg}");
}
