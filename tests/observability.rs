//! Observability end to end: alert rules on a crash-looping agent, the
//! incident they open, notifiers, the Prometheus endpoint checked by
//! promtool and scraped by a real Prometheus server, bounded cardinality.

mod common;

use std::time::{Duration, Instant};

use common::{BinDaemon, free_port, have_tool, http_get, me_local};
use serde_json::Value;

fn wait_json(
    d: &BinDaemon,
    args: &[&str],
    what: &str,
    timeout: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    d.wait_json(args, what, timeout, pred)
}

fn alert<'a>(report: &'a Value, id: &str) -> Option<&'a Value> {
    report["alerts"].as_array()?.iter().find(|a| a["id"] == id)
}

const LOOPING: &str = r#"
[metrics]
interval = "200ms"

[alerting]
defaults = false

[[alerts]]
name = "crash-loop"
expr = "increase(restarts, 4s) >= 3"
for = "600ms"
severity = "critical"
summary = "{agent} restarted {value} times in 4s"

[agents.worker]
command = ["sh", "-c", "exit 3"]
min_uptime = "0ms"
backoff = { initial = "100ms", max = "200ms" }
start_limit = { burst = 1000, interval = "10s" }

[agents.steady]
command = ["sleep", "1000"]
"#;

#[test]
fn a_crash_loop_fires_opens_a_level_1_incident_and_resolves_after_a_fixing_reload() {
    let mut d = BinDaemon::start(LOOPING);
    let started = Instant::now();
    let report = wait_json(
        &d,
        &["alerts"],
        "the crash-loop alert to fire",
        Duration::from_secs(20),
        |r| alert(r, "crash-loop/worker").is_some_and(|a| a["state"] == "firing"),
    );
    // It went through pending first and honoured `for`: at least 3 restarts
    // (≥ 200 ms apart) plus 600 ms pending.
    assert!(started.elapsed() >= Duration::from_millis(600));
    let a = alert(&report, "crash-loop/worker").expect("listed");
    assert_eq!(a["severity"], "critical");
    assert!(
        a["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with("worker restarted")),
        "{a}"
    );
    assert!(
        alert(&report, "crash-loop/steady").is_none(),
        "the steady agent is fine"
    );

    // A Level 1 incident, deduplicated: exactly one for this alert.
    let list = d.json(&["incidents"]);
    let open: Vec<&Value> = list
        .as_array()
        .expect("a list")
        .iter()
        .filter(|i| i["alert"] == "crash-loop/worker" && i["status"] == "open")
        .collect();
    assert_eq!(open.len(), 1, "{list:#}");
    assert_eq!(open[0]["level"], 1);
    assert_eq!(open[0]["phase"], "Detection");
    let id = open[0]["id"].as_u64().expect("an id").to_string();

    // Its timeline collects the restarts that keep coming.
    let inc = wait_json(
        &d,
        &["incidents", "show", &id],
        "restarts on the timeline",
        Duration::from_secs(10),
        |i| {
            i["timeline"]
                .as_array()
                .is_some_and(|t| t.iter().filter(|e| e["kind"] == "restart").count() >= 2)
        },
    );
    let restarts: Vec<&Value> = inc["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter(|e| e["kind"] == "restart")
        .collect();
    assert!(
        restarts[0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("worker/0") && t.contains("exit 3")),
        "{:#}",
        restarts[0]
    );

    // An operator action on the agent joins the timeline with who did it.
    let (code, _, err) = d.cli(&["restart", "worker"]);
    assert_eq!(code, 0, "{err}");
    let inc = d.json(&["incidents", "show", &id]);
    let action = inc["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .find(|e| e["kind"] == "action")
        .unwrap_or_else(|| panic!("no action entry: {inc:#}"));
    assert_eq!(action["text"], "restart worker");
    assert!(action["by"] == me_local().as_str(), "{action}");

    // Fix the agent with a reload: the window drains and the alert resolves.
    let fixed = LOOPING.replace(
        r#"command = ["sh", "-c", "exit 3"]"#,
        r#"command = ["sleep", "1000"]"#,
    );
    std::fs::write(d.dir.path().join("autonomos.toml"), fixed).expect("config");
    let (code, out, err) = d.cli(&["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    wait_json(
        &d,
        &["alerts"],
        "the alert to resolve",
        Duration::from_secs(20),
        |r| alert(r, "crash-loop/worker").is_some_and(|a| a["state"] == "resolved"),
    );
    let inc = d.json(&["incidents", "show", &id]);
    assert!(
        inc["timeline"]
            .as_array()
            .expect("timeline")
            .iter()
            .any(|e| e["kind"] == "alert"
                && e["text"].as_str().is_some_and(|t| t.contains("resolved"))),
        "{inc:#}"
    );
    // The incident stays open for the operator: it is theirs to close.
    assert!(inc["resolved_at"].is_null());
    // The reload that fixed it is on the timeline, with who did it.
    assert!(
        inc["timeline"]
            .as_array()
            .expect("timeline")
            .iter()
            .any(|e| e["kind"] == "action"
                && e["text"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("reloaded"))
                && e["by"] == me_local().as_str()),
        "{inc:#}"
    );

    // The response procedure from the CLI, and the report.
    for args in [
        vec!["incidents", "advance", &id],
        vec!["incidents", "assign", &id, "alice"],
        vec![
            "incidents",
            "note",
            &id,
            "worker's model path was wrong; fixed in the config",
        ],
        vec!["incidents", "advance", &id, "--to", "recovery"],
        vec!["incidents", "resolve", &id, "--note", "config fixed"],
    ] {
        let (code, out, err) = d.cli(&args);
        assert_eq!(code, 0, "{args:?}: {out}{err}");
    }
    let (code, _, err) = d.cli(&["incidents", "advance", &id]);
    assert_ne!(code, 0);
    assert!(err.contains("resolved"), "{err}");
    let report = d.dir.path().join("report.md");
    let (code, _, err) = d.cli(&[
        "incidents",
        "export",
        &id,
        "-o",
        report.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{err}");
    let md = std::fs::read_to_string(&report).expect("report written");
    for want in [
        "# Incident #",
        "Level 1 (critical system failure)",
        "| Owner | alice |",
        "- [x] Recovery",
        "- [x] Post-Incident Analysis",
        "worker's model path was wrong",
        "| restart |",
    ] {
        assert!(md.contains(want), "report lacks {want:?}:\n{md}");
    }

    // Incidents live in state.db: they survive a daemon restart.
    d.stop();
    d.spawn();
    let inc = d.json(&["incidents", "show", &id]);
    assert_eq!(inc["owner"], "alice");
    assert_eq!(inc["phase"], "PostIncidentAnalysis");
    assert!(!inc["resolved_at"].is_null());
    d.stop();
}

#[test]
fn ack_and_silence_from_the_cli() {
    let mut d = BinDaemon::start(
        r#"
[metrics]
interval = "200ms"

[alerting]
defaults = false

[[alerts]]
name = "down"
expr = "running < desired"
severity = "minor"

[agents.gone]
command = ["sh", "-c", "exit 0"]
restart = "never"
"#,
    );
    wait_json(
        &d,
        &["alerts"],
        "the alert to fire",
        Duration::from_secs(10),
        |r| alert(r, "down/gone").is_some_and(|a| a["state"] == "firing"),
    );
    let (code, out, err) = d.cli(&["alerts", "ack", "down/*"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("acknowledged down/gone"), "{out}");
    let (code, out, _) = d.cli(&["alerts", "silence", "down", "--for", "30m"]);
    assert_eq!(code, 0);
    assert!(out.contains("silenced `down` for 30m"), "{out}");
    let r = d.json(&["alerts"]);
    let a = alert(&r, "down/gone").expect("listed");
    assert_eq!(a["acknowledged"], true);
    assert!(a["silenced_until"].as_u64().is_some(), "{a}");
    assert_eq!(r["silences"][0]["pattern"], "down");
    let (_, out, _) = d.cli(&["alerts"]);
    assert!(
        out.contains(&format!("acked by {}", common::me_local())),
        "{out}"
    );
    // Nothing to acknowledge is an error, not silence.
    let (code, _, err) = d.cli(&["alerts", "ack", "nothing-like-this"]);
    assert_ne!(code, 0);
    assert!(err.contains("no firing alert matches"), "{err}");

    // A reload brings new rules in; the kept rule keeps its alert's state.
    let path = d.dir.path().join("autonomos.toml");
    let mut cfg = std::fs::read_to_string(&path).expect("config");
    cfg.push_str(
        "\n[[alerts]]\nname = \"hot-host\"\nexpr = \"host.cpu > 1000\"\nseverity = \"minor\"\n",
    );
    std::fs::write(&path, cfg).expect("config");
    let (code, out, err) = d.cli(&["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    let r = d.json(&["alerts"]);
    let rules: Vec<&str> = r["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(rules, vec!["down", "hot-host"]);
    let a = alert(&r, "down/gone").expect("kept");
    assert_eq!(a["acknowledged"], true, "{a}");
    d.stop();
}

/// A one-shot HTTP server: answers `code` to each request and returns the bodies.
fn webhook_sink(
    code: u16,
    requests: usize,
) -> (u16, std::thread::JoinHandle<Vec<(String, String)>>) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let h = std::thread::spawn(move || {
        let mut got = Vec::new();
        for _ in 0..requests {
            let Ok((mut s, _)) = l.accept() else { break };
            s.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        break;
                    }
                }
            }
            let text = String::from_utf8_lossy(&buf).into_owned();
            let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
            got.push((head.to_string(), body.to_string()));
            let _ = write!(
                s,
                "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
        got
    });
    (port, h)
}

#[test]
fn exec_and_webhook_notifiers_deliver_the_alert_json_and_failures_are_visible() {
    let (ok_port, ok_sink) = webhook_sink(200, 2);
    let (bad_port, bad_sink) = webhook_sink(500, 2);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("exec.jsonl");
    let config = format!(
        r#"
[metrics]
interval = "200ms"

[alerting]
defaults = false

[[alerts]]
name = "stopped"
expr = "running == 0"
severity = "major"
summary = "{{agent}} is not running"

[[notifiers]]
name = "log"
kind = "exec"
command = ["sh", "-c", "cat >> '{out}'; echo \"$AUTONOMOS_ALERT_STATE\" >> '{out}.state'"]

[[notifiers]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:{ok_port}/alerts?team=ops"

[[notifiers]]
name = "broken-hook"
kind = "webhook"
url = "http://127.0.0.1:{bad_port}/"

[[notifiers]]
name = "broken-exec"
kind = "exec"
command = ["sh", "-c", "echo no pager here >&2; exit 7"]

[[notifiers]]
name = "minor-only"
kind = "exec"
command = ["sh", "-c", "touch '{out}.minor'"]
min_severity = "critical"

[agents.job]
command = ["sleep", "1000"]
"#,
        out = out.display()
    );
    let mut d = BinDaemon::start(&config);
    d.wait_status("job running", Duration::from_secs(10), |s| {
        s.agents.iter().any(|a| a.running == 1)
    });
    // Stopping the agent fires the alert; starting it resolves it.
    assert_eq!(d.cli(&["stop", "job"]).0, 0);
    wait_json(&d, &["alerts"], "firing", Duration::from_secs(10), |r| {
        alert(r, "stopped/job").is_some_and(|a| a["state"] == "firing")
    });
    assert_eq!(d.cli(&["start", "job"]).0, 0);
    wait_json(&d, &["alerts"], "resolved", Duration::from_secs(10), |r| {
        alert(r, "stopped/job").is_some_and(|a| a["state"] == "resolved")
    });
    let report = wait_json(
        &d,
        &["alerts"],
        "deliveries",
        Duration::from_secs(10),
        |r| {
            let n = |name: &str| {
                r["notifiers"]
                    .as_array()
                    .and_then(|v| v.iter().find(|n| n["name"] == name))
                    .cloned()
                    .unwrap_or_default()
            };
            n("log")["sent"] == 2
                && n("hook")["sent"] == 2
                && n("broken-hook")["failed"] == 2
                && n("broken-exec")["failed"] == 2
        },
    );
    let notifier = |name: &str| {
        report["notifiers"]
            .as_array()
            .and_then(|v| v.iter().find(|n| n["name"] == name))
            .cloned()
            .expect("listed")
    };
    // Failures are visible with their reason.
    assert!(
        notifier("broken-hook")["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("HTTP 500")),
        "{report:#}"
    );
    assert!(
        notifier("broken-exec")["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("no pager here")),
        "{report:#}"
    );
    // Below its minimum severity: never run.
    assert!(!std::path::Path::new(&format!("{}.minor", out.display())).exists());

    let lines = std::fs::read_to_string(&out).expect("exec output");
    let events: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(events.len(), 2, "{lines}");
    assert_eq!(events[0]["state"], "firing");
    assert_eq!(events[1]["state"], "resolved");
    for e in &events {
        assert_eq!(e["id"], "stopped/job");
        assert_eq!(e["agent"], "job");
        assert_eq!(e["severity"], "major");
        assert_eq!(e["level"], 2);
        assert_eq!(e["summary"], "job is not running");
        assert!(
            e["incident"].as_u64().is_some(),
            "a Level 2 alert opens an incident: {e}"
        );
    }
    let states = std::fs::read_to_string(format!("{}.state", out.display())).expect("env");
    assert_eq!(states, "firing\nresolved\n");

    let got = ok_sink.join().expect("sink");
    assert_eq!(got.len(), 2);
    assert!(
        got[0].0.starts_with("POST /alerts?team=ops HTTP/1.1"),
        "{}",
        got[0].0
    );
    assert!(
        got[0]
            .0
            .to_ascii_lowercase()
            .contains("content-type: application/json")
    );
    let body: Value = serde_json::from_str(&got[0].1).expect("JSON body");
    assert_eq!(body["id"], "stopped/job");
    assert_eq!(body["state"], "firing");
    let _ = bad_sink.join();
    d.stop();
}

/// A TLS server with a fresh self-signed certificate for 127.0.0.1: answers
/// 200 to each request it can read; returns (port, the certificate's PEM,
/// the requests' heads and bodies). Handshakes the client refuses are
/// counted as empty entries.
fn tls_sink(requests: usize) -> (u16, String, std::thread::JoinHandle<Vec<(String, String)>>) {
    use std::io::{Read, Write};
    use tokio_rustls::rustls;
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("cert");
    let pem = cert.cert.pem();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
    let config = std::sync::Arc::new(
        rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .expect("server config"),
    );
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let h = std::thread::spawn(move || {
        let mut got = Vec::new();
        for _ in 0..requests {
            let Ok((tcp, _)) = l.accept() else { break };
            tcp.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let conn = rustls::ServerConnection::new(config.clone()).expect("conn");
            let mut s = rustls::StreamOwned::new(conn, tcp);
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        break;
                    }
                }
            }
            let text = String::from_utf8_lossy(&buf).into_owned();
            let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
            got.push((head.to_string(), body.to_string()));
            if !buf.is_empty() {
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                s.conn.send_close_notify();
                let _ = s.flush();
            }
        }
        got
    });
    (port, pem, h)
}

#[test]
fn an_https_webhook_is_delivered_to_a_trusted_server_and_refused_by_an_unknown_one() {
    let (port, pem, sink) = tls_sink(2);
    let (other_port, _, other_sink) = tls_sink(2);
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pem).expect("ca file");
    let config = format!(
        r#"
[metrics]
interval = "200ms"

[alerting]
defaults = false

[[alerts]]
name = "stopped"
expr = "running == 0"
severity = "major"

[[notifiers]]
name = "tls-hook"
kind = "webhook"
url = "https://127.0.0.1:{port}/alerts"
ca_file = "{ca}"

[[notifiers]]
name = "untrusted"
kind = "webhook"
url = "https://127.0.0.1:{other_port}/alerts"

[agents.job]
command = ["sleep", "1000"]
"#,
        ca = ca.display()
    );
    let mut d = BinDaemon::start(&config);
    d.wait_status("job running", Duration::from_secs(10), |s| {
        s.agents.iter().any(|a| a.running == 1)
    });
    assert_eq!(d.cli(&["stop", "job"]).0, 0);
    wait_json(&d, &["alerts"], "firing", Duration::from_secs(10), |r| {
        alert(r, "stopped/job").is_some_and(|a| a["state"] == "firing")
    });
    assert_eq!(d.cli(&["start", "job"]).0, 0);
    let report = wait_json(
        &d,
        &["alerts"],
        "deliveries",
        Duration::from_secs(15),
        |r| {
            let n = |name: &str| {
                r["notifiers"]
                    .as_array()
                    .and_then(|v| v.iter().find(|n| n["name"] == name))
                    .cloned()
                    .unwrap_or_default()
            };
            n("tls-hook")["sent"] == 2 && n("untrusted")["failed"] == 2
        },
    );
    let untrusted = report["notifiers"]
        .as_array()
        .and_then(|v| v.iter().find(|n| n["name"] == "untrusted"))
        .cloned()
        .expect("listed");
    let why = untrusted["last_error"].as_str().unwrap_or("");
    assert!(
        why.contains("TLS") && why.to_ascii_lowercase().contains("certificate"),
        "{why}"
    );
    let got = sink.join().expect("sink");
    assert_eq!(got.len(), 2);
    assert!(
        got[0].0.starts_with("POST /alerts HTTP/1.1"),
        "{}",
        got[0].0
    );
    let body: Value = serde_json::from_str(&got[0].1).expect("JSON body");
    assert_eq!(body["id"], "stopped/job");
    assert_eq!(body["state"], "firing");
    // The unknown server never saw a request.
    let other = other_sink.join().expect("sink");
    assert!(other.iter().all(|(h, _)| h.is_empty()), "{other:?}");
    d.stop();
}

fn metrics_config(port: u16, extra: &str) -> String {
    format!(
        r#"
[metrics]
listen = "127.0.0.1:{port}"
interval = "200ms"

[agents.worker]
command = ["sleep", "1000"]
replicas = 2
{extra}
"#
    )
}

fn scrape(addr: &str) -> String {
    let t = Instant::now();
    loop {
        if let Ok((200, body)) = http_get(addr, "/metrics")
            && body.contains("autonomos_replica_state{")
            && body.contains("state=\"ActiveOperation\"} 1")
        {
            return body;
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "no complete scrape from {addr}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_metrics_endpoint_is_clean_for_promtool() {
    if !have_tool("promtool", "prometheus") {
        return;
    }
    let port = free_port();
    let mut d = BinDaemon::start(&metrics_config(port, ""));
    let addr = format!("127.0.0.1:{port}");
    let body = scrape(&addr);
    for want in [
        "autonomos_agent_replicas_running{agent=\"worker\"} 2",
        "autonomos_agent_replicas_desired{agent=\"worker\"} 2",
        "autonomos_replica_restarts_total{agent=\"worker\",replica=\"1\"} 0",
        "# TYPE autonomos_replica_cpu_seconds_total counter",
        "autonomos_host_memory_total_bytes ",
        "autonomos_collector_duration_seconds ",
        "autonomos_incidents_open{level=\"1\"} 0",
        "autonomos_alerts{state=\"firing\",severity=\"critical\"} 0",
    ] {
        assert!(body.contains(want), "scrape lacks {want:?}:\n{body}");
    }
    common::promtool_check(&body);
    // Other paths and methods get proper answers.
    assert_eq!(http_get(&addr, "/nope").expect("answer").0, 404);
    d.stop();
}

#[test]
fn a_real_prometheus_server_scrapes_the_agent_series() {
    if !have_tool("prometheus", "prometheus") {
        return;
    }
    let port = free_port();
    let mut d = BinDaemon::start(&metrics_config(port, ""));
    scrape(&format!("127.0.0.1:{port}"));
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: autonomos\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ),
    )
    .expect("prometheus config");
    let web = free_port();
    let mut prom = std::process::Command::new("prometheus")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{web}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("prometheus starts");
    let web_addr = format!("127.0.0.1:{web}");
    let t = Instant::now();
    let result = loop {
        let q = "/api/v1/query?query=autonomos_agent_replicas_running%7Bagent%3D%22worker%22%7D";
        if let Ok((200, body)) = http_get(&web_addr, q)
            && let Ok(v) = serde_json::from_str::<Value>(&body)
            && v["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
        {
            break v;
        }
        if t.elapsed() > Duration::from_secs(60) {
            let _ = prom.kill();
            panic!("Prometheus never returned the agent series");
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let _ = prom.kill();
    let _ = prom.wait();
    let series = &result["data"]["result"][0];
    assert_eq!(series["metric"]["agent"], "worker");
    assert_eq!(series["metric"]["job"], "autonomos");
    assert_eq!(series["value"][1], "2");
    d.stop();
}

fn series(body: &str) -> Vec<String> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.rsplit_once(' ').map_or(l, |(k, _)| k).to_string())
        .collect()
}

#[test]
fn cardinality_stays_bounded_after_10000_restarts() {
    let port = free_port();
    let mut d = BinDaemon::start(&metrics_config(
        port,
        r#"
[agents.churn]
command = ["true"]
replicas = 20
min_uptime = "0ms"
backoff = { initial = "0ms", max = "0ms", jitter = 0 }
start_limit = { burst = 10000, interval = "1s" }
"#,
    ));
    let addr = format!("127.0.0.1:{port}");
    let before = series(&scrape(&addr));
    let t = Instant::now();
    let restarts = |s: &autonomos::proto::FleetStatus| -> u64 {
        s.agents
            .iter()
            .filter(|a| a.name == "churn")
            .flat_map(|a| &a.replicas)
            .map(|r| r.restarts)
            .sum()
    };
    loop {
        let s = d.status();
        if restarts(&s) >= 10_000 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(180),
            "only {} restarts so far",
            restarts(&s)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_millis(500));
    let after = series(&scrape(&addr));
    assert_eq!(
        before.len(),
        after.len(),
        "series count changed after 10,000 restarts"
    );
    let mut b = before.clone();
    let mut a = after.clone();
    b.sort();
    a.sort();
    assert_eq!(a, b, "the label sets changed");
    // No label carries a pid or free text: replica indexes stay below 20.
    for s in &after {
        if let Some(i) = s.find("replica=\"") {
            let n: u32 = s[i + 9..]
                .split('"')
                .next()
                .and_then(|v| v.parse().ok())
                .expect("index");
            assert!(n < 20, "{s}");
        }
    }
    // The incident the crash loop opened keeps a bounded timeline.
    let incidents = d.json(&["incidents"]);
    for i in incidents.as_array().expect("list") {
        assert!(i["entries"].as_u64().is_some());
        let id = i["id"].as_u64().expect("id").to_string();
        let full = d.json(&["incidents", "show", &id]);
        assert!(full["timeline"].as_array().expect("timeline").len() <= 500);
    }
    d.stop();
}

/// Attaches like the console and returns the snapshot frame.
fn attach_snapshot(d: &BinDaemon) -> Value {
    use std::io::Write;
    let mut s = std::os::unix::net::UnixStream::connect(d.socket()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let hello = format!(
        r#"{{"type":"hello","proto_version":{},"app_version":"test"}}"#,
        autonomos::proto::PROTO_VERSION
    );
    s.write_all(&common::frame(&hello)).expect("hello");
    assert_eq!(
        common::read_frame(&mut s).expect("hello back")["type"],
        "hello"
    );
    s.write_all(&common::frame(
        r#"{"type":"request","id":1,"request":{"op":"subscribe"}}"#,
    ))
    .expect("subscribe");
    loop {
        let f = common::read_frame(&mut s).expect("a frame");
        if f["type"] == "snapshot" {
            return f;
        }
    }
}

#[test]
fn the_day_view_is_kept_in_state_db_and_survives_a_restart() {
    let mut d = BinDaemon::start(
        "[metrics]\ninterval = \"200ms\"\n\n[agents.idle]\ncommand = [\"sleep\", \"1000\"]\n",
    );
    let db = d.data_dir().join("state.db");
    // Wait for a minute to close (at most about a minute).
    // Empty until the daemon has created the table and stored a minute.
    let stored = |db: &std::path::Path| -> Vec<(i64, f64, f64)> {
        let Ok(c) =
            rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        else {
            return Vec::new();
        };
        let Ok(mut q) = c.prepare("SELECT at, cpu, mem FROM host_day ORDER BY at") else {
            return Vec::new();
        };
        q.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(|rows| rows.collect::<Result<_, _>>())
            .unwrap_or_default()
    };
    let t = Instant::now();
    let rows = loop {
        let rows = stored(&db);
        if !rows.is_empty() {
            break rows;
        }
        assert!(t.elapsed() < Duration::from_secs(75), "no minute stored");
        std::thread::sleep(Duration::from_millis(500));
    };
    let (at, cpu, mem) = rows[0];
    assert_eq!(at % 60_000, 0, "minutes are stored at their start");
    assert!(
        (0.0..=100.0).contains(&cpu) && mem > 0.0 && mem <= 100.0,
        "{rows:?}"
    );
    // Plus an older minute, as if from an earlier daemon an hour ago.
    let c = rusqlite::Connection::open(&db).expect("db");
    c.execute(
        "INSERT INTO host_day (at, cpu, mem) VALUES (?1, 42.5, 61.0)",
        [at - 3_600_000],
    )
    .expect("insert");
    drop(c);
    d.stop();
    d.spawn();
    let snap = attach_snapshot(&d);
    let h = &snap["status"]["history"];
    let times: Vec<i64> = h["day_times"]
        .as_array()
        .expect("day_times")
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    let cpus: Vec<f64> = h["day_cpu"]
        .as_array()
        .expect("day_cpu")
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    assert_eq!(times.len(), cpus.len());
    assert_eq!(times.first(), Some(&(at - 3_600_000)), "{h}");
    assert_eq!(cpus[0], 42.5);
    assert!(times.contains(&at), "{times:?}");
    d.stop();
}

#[test]
fn an_attaching_client_gets_the_metric_history_in_its_snapshot() {
    let d = BinDaemon::start(
        "[metrics]\ninterval = \"100ms\"\n\n[agents.busy]\ncommand = [\"sh\", \"-c\", \"while :; do :; done\"]\n",
    );
    std::thread::sleep(Duration::from_secs(3));
    let snap = attach_snapshot(&d);
    let h = &snap["status"]["history"];
    let n = h["host_cpu"].as_array().map_or(0, Vec::len);
    // About 3 s at 100 ms: well past a handful of points.
    assert!(n >= 15, "only {n} host points in the snapshot: {h}");
    assert_eq!(h["step_ms"], 100);
    assert_eq!(h["host_mem"].as_array().map(Vec::len), Some(n));
    let busy = h["agents"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["name"] == "busy"))
        .expect("the agent's history");
    let cpu: Vec<f64> = busy["cpu"]
        .as_array()
        .expect("cpu")
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    assert!(cpu.len() >= 15);
    assert!(
        cpu.iter().rev().take(5).all(|v| *v > 50.0),
        "a busy loop shows: {cpu:?}"
    );
    // A plain status does not carry it.
    assert!(d.json(&["status"]).get("history").is_none());
}

#[test]
fn old_incidents_and_the_alert_history_are_read_from_state_db() {
    use autonomos::core::incident::Incident;
    use autonomos::daemon::store::{Change, Store};
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    // 205 resolved incidents, written by the daemon's own store: more than
    // the 200 resolved ones a daemon keeps in memory.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            let (store, _) =
                Store::start(&data.join("state.db"), Default::default()).expect("store");
            for id in 1..=205u64 {
                let mut i = Incident::open(
                    id,
                    format!("old incident {id}"),
                    3,
                    None,
                    None,
                    "test",
                    1_000_000 + id,
                );
                i.resolve("test", Some("fixed"), 2_000_000 + id)
                    .expect("resolve");
                store
                    .write(Change::Incident(Box::new(i)))
                    .await
                    .expect("written");
            }
        });
    std::fs::write(
        dir.path().join("autonomos.toml"),
        r#"
[metrics]
interval = "200ms"

[alerting]
defaults = false

[[alerts]]
name = "stopped"
expr = "running == 0"
severity = "minor"
summary = "{agent} is not running"

[agents.job]
command = ["sleep", "1000"]
"#,
    )
    .expect("config");
    let mut d = BinDaemon { child: None, dir };
    d.spawn();
    // #1 is not kept in memory...
    let list = d.json(&["incidents", "list", "--all"]);
    let ids: Vec<u64> = list
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|i| i["id"].as_u64())
        .collect();
    assert!(!ids.contains(&1) && ids.contains(&205), "{ids:?}");
    // ...but show and export read it from state.db.
    let (code, out, err) = d.cli(&["incidents", "show", "1"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("old incident 1"), "{out}");
    let (code, out, _) = d.cli(&["incidents", "export", "1"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("old incident 1") && out.contains("fixed"),
        "{out}"
    );
    let (code, _, err) = d.cli(&["incidents", "show", "9999"]);
    assert_ne!(code, 0);
    assert!(err.contains("no incident #9999"), "{err}");

    // The alert history: a stop and a start, then a restart of the daemon.
    d.wait_status("job running", Duration::from_secs(10), |s| {
        s.agents.iter().any(|a| a.running == 1)
    });
    assert_eq!(d.cli(&["stop", "job"]).0, 0);
    wait_json(&d, &["alerts"], "firing", Duration::from_secs(10), |r| {
        alert(r, "stopped/job").is_some_and(|a| a["state"] == "firing")
    });
    assert_eq!(d.cli(&["start", "job"]).0, 0);
    wait_json(&d, &["alerts"], "resolved", Duration::from_secs(10), |r| {
        alert(r, "stopped/job").is_some_and(|a| a["state"] == "resolved")
    });
    d.stop();
    d.spawn();
    let history = d.json(&["alerts", "history", "stopped"]);
    let states: Vec<&str> = history
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["id"] == "stopped/job")
        .filter_map(|e| e["state"].as_str())
        .collect();
    let firing = states.iter().position(|s| *s == "firing");
    let resolved = states.iter().rposition(|s| *s == "resolved");
    assert!(
        firing.is_some() && resolved.is_some() && firing < resolved,
        "{states:?}"
    );
    // A prefix that matches nothing, and the text form.
    let none = d.json(&["alerts", "history", "nothing-like-this"]);
    assert_eq!(none.as_array().map(|a| a.len()), Some(0), "{none}");
    let (code, text, _) = d.cli(&["alerts", "history", "-n", "1"]);
    assert_eq!(code, 0);
    assert_eq!(text.lines().count(), 1, "{text}");
    d.stop();
}

#[test]
fn operator_restarts_are_not_a_crash_loop_and_join_a_timeline_once_by_who_asked() {
    // The shipped rules (crash-loop counts failures over 10 minutes).
    let d = BinDaemon::start(
        r#"
[metrics]
interval = "200ms"

[agents.researcher]
command = ["sleep", "1000"]
replicas = 3
min_uptime = "100ms"
"#,
    );
    let running = |v: &Value| {
        v["agents"][0]["replicas"]
            .as_array()
            .is_some_and(|r| r.len() == 3 && r.iter().all(|r| r["pid"].is_number()))
    };
    wait_json(
        &d,
        &["status"],
        "3 replicas running",
        Duration::from_secs(10),
        running,
    );
    let (code, out, err) = d.cli(&[
        "incidents",
        "open",
        "researcher is slow",
        "--level",
        "2",
        "--agent",
        "researcher",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    for round in 1..=3u64 {
        let (code, out, err) = d.cli(&["restart", "researcher"]);
        assert_eq!(code, 0, "{out}{err}");
        wait_json(
            &d,
            &["status"],
            "the restart done",
            Duration::from_secs(10),
            |v| {
                running(v)
                    && v["agents"][0]["replicas"]
                        .as_array()
                        .is_some_and(|r| r.iter().all(|r| r["restarts"] == round))
            },
        );
    }
    let s = d.json(&["status"]);
    for r in s["agents"][0]["replicas"].as_array().expect("replicas") {
        assert_eq!(r["failures"], 0, "an operator restart is no failure: {r}");
        assert_eq!(r["restarts"], 3, "{r}");
    }
    // Several evaluations later: 9 restarts, and still no crash loop.
    std::thread::sleep(Duration::from_millis(1500));
    let report = d.json(&["alerts"]);
    assert!(
        alert(&report, "crash-loop/researcher").is_none(),
        "operator restarts fired a crash loop: {report:#}"
    );
    let incidents = d.json(&["incidents"]);
    let id = incidents[0]["id"].as_u64().expect("incident id");
    let inc = d.json(&["incidents", "show", &id.to_string()]);
    let timeline = inc["timeline"].as_array().expect("timeline");
    let restarts: Vec<&Value> = timeline
        .iter()
        .filter(|e| e["text"].as_str().is_some_and(|t| t.contains("restart")))
        .collect();
    assert_eq!(
        restarts.len(),
        3,
        "one entry per request, not per replica: {timeline:#?}"
    );
    for e in restarts {
        assert_eq!(e["text"], "restart researcher", "{e}");
        assert!(
            e["by"] == me_local().as_str(),
            "named after the operator, not autonomos: {e}"
        );
    }
}
