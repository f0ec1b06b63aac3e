//! The A2A gateway end to end: the real daemon serving `[gateway]`, real
//! task agents (`examples/task_agent.py`), and as the client the official
//! A2A Python SDK (`a2a-sdk` on PyPI) or plain HTTP/1.1 for the refusals.
//! Needs python3 (Debian package python3); the SDK test also needs a
//! Python with `a2a-sdk` installed, named by `AUTONOMOS_A2A_PYTHON` (CI makes
//! a venv for it; see .ci/run).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const TOKEN: &str = "gateway-test-token-0123456789";

fn fleet(port: u16, extra: &str) -> String {
    let agent = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/task_agent.py");
    format!(
        r#"
[gateway]
listen = "127.0.0.1:{port}"
token_file = "token"
{extra}

[agents.echo]
command = ["python3", "{agent}"]
protocol = "jsonrpc"
replicas = 2
concurrency = 2
skills = ["echo", "summarize"]
description = "Echoes what it is given"

[agents.idle]
command = ["sleep", "1000"]
protocol = "jsonrpc"
ready = "announce"
max_queue = 2
"#
    )
}

/// A daemon with the gateway on `port`, its token file written first.
fn start(port: u16, extra: &str) -> BinDaemon {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).expect("token");
    std::fs::write(dir.path().join("autonomos.toml"), fleet(port, extra)).expect("config");
    let mut d = BinDaemon { child: None, dir };
    d.spawn();
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the gateway never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    d
}

/// One HTTP/1.1 request; (status, body).
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty()
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        req.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    // A refused body may be cut off by the server: write what it takes.
    let _ = s
        .write_all(req.as_bytes())
        .and_then(|_| s.write_all(body.as_bytes()));
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn auth() -> (&'static str, String) {
    ("Authorization", format!("Bearer {TOKEN}"))
}

fn send_body(message_id: &str, parts: &str, immediately: bool) -> String {
    format!(
        r#"{{"message":{{"messageId":"{message_id}","role":"ROLE_USER","parts":{parts}}},"configuration":{{"returnImmediately":{immediately}}}}}"#
    )
}

/// The Python that has the A2A SDK, or None (skipped visibly; a failure
/// under AUTONOMOS_REQUIRE_TOOLS=1).
fn a2a_python() -> Option<String> {
    let py = std::env::var("AUTONOMOS_A2A_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = std::process::Command::new(&py)
        .args(["-c", "import a2a.client, httpx"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(py);
    }
    let why = format!(
        "`{py}` cannot import the A2A SDK: pip install a2a-sdk in a venv and set AUTONOMOS_A2A_PYTHON to its python (as .ci/run does)"
    );
    if std::env::var("AUTONOMOS_REQUIRE_TOOLS").as_deref() == Ok("1") {
        panic!("{why}");
    }
    eprintln!("SKIPPED: {why}");
    None
}

#[test]
fn the_official_a2a_sdk_sends_streams_gets_and_cancels() {
    if !have_tool("python3", "python3") {
        return;
    }
    let Some(py) = a2a_python() else { return };
    let port = free_port();
    let mut d = start(port, "");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/a2a_client.py");
    let base = format!("http://127.0.0.1:{port}/agents/echo");
    let out = std::process::Command::new(&py)
        .args([script, &base, TOKEN])
        .output()
        .expect("the SDK client runs");
    assert!(
        out.status.success(),
        "the SDK client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("the client prints JSON");

    // The card: name, description, skills, the HTTP+JSON interface, bearer.
    let card = &v["card"];
    assert_eq!(card["name"], "echo");
    assert_eq!(card["description"], "Echoes what it is given");
    let skills: Vec<&str> = card["skills"]
        .as_array()
        .expect("skills")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(skills, ["echo", "summarize"]);
    assert_eq!(
        card["supportedInterfaces"][0]["protocolBinding"],
        "HTTP+JSON"
    );
    assert_eq!(card["supportedInterfaces"][0]["url"], base);
    assert!(card["securitySchemes"]["bearer"].is_object());

    // The stream: the task first, progress as status updates, the result
    // as an artifact, then the final status.
    let stream = v["stream"].as_array().expect("stream events");
    assert!(stream[0]["task"]["id"].is_string(), "{:#}", stream[0]);
    assert_eq!(stream[0]["task"]["contextId"], "ctx-1");
    let progress: Vec<&str> = stream
        .iter()
        .filter_map(|e| e["statusUpdate"]["status"]["message"]["parts"][0]["text"].as_str())
        .collect();
    assert!(
        progress.len() >= 3 && progress.contains(&"step 5"),
        "progress seen: {progress:?}"
    );
    let artifact = stream
        .iter()
        .find_map(|e| e.get("artifactUpdate"))
        .expect("an artifact event");
    assert_eq!(
        artifact["artifact"]["parts"][0]["data"]["echo"]["sleep"],
        0.5
    );
    let last = stream.last().expect("events");
    assert_eq!(
        last["statusUpdate"]["status"]["state"],
        "TASK_STATE_COMPLETED"
    );
    assert_eq!(v["got"]["status"]["state"], "TASK_STATE_COMPLETED");
    assert_eq!(v["got"]["id"], stream[0]["task"]["id"]);

    // A blocking send answers with the finished task and its result.
    let done = &v["blocking"][0]["task"];
    assert_eq!(done["status"]["state"], "TASK_STATE_COMPLETED", "{done:#}");
    assert_eq!(done["artifacts"][0]["parts"][0]["data"]["echo"], "hello");

    // A long task canceled through the SDK; a second cancel is refused
    // with the A2A error the SDK maps; an unknown task is not found.
    assert_eq!(v["canceled"]["status"]["state"], "TASK_STATE_CANCELED");
    let second = v["second_cancel"].as_str().unwrap_or_default();
    assert!(second.starts_with("TaskNotCancelableError"), "{second}");
    let missing = v["missing"].as_str().unwrap_or_default();
    assert!(missing.starts_with("TaskNotFoundError"), "{missing}");
    let id = v["canceled"]["id"].as_str().expect("id");
    let shown = d.json(&["task", "show", id]);
    assert_eq!(shown["state"], "canceled");

    // Submissions and the cancel through the gateway are on the audit trail.
    let trail = std::fs::read_to_string(d.data_dir().join("audit/audit.jsonl")).expect("audit");
    let gateway_lines: Vec<&str> = trail
        .lines()
        .filter(|l| l.contains("gateway 127.0.0.1:"))
        .collect();
    assert!(
        gateway_lines
            .iter()
            .filter(|l| l.contains("task-submit"))
            .count()
            >= 3,
        "{trail}"
    );
    assert!(
        gateway_lines.iter().any(|l| l.contains("task-cancel")),
        "{trail}"
    );
    d.stop();
}

#[test]
fn the_gateway_guards_itself_and_refuses_with_a2a_errors() {
    if !have_tool("python3", "python3") {
        return;
    }
    let port = free_port();
    let mut d = start(port, "\n[tasks]\nmax_input = \"1KiB\"");
    let card = "/agents/echo/.well-known/agent-card.json";

    // No token, a wrong one, another scheme: 401 with the A2A error body.
    for h in [
        vec![],
        vec![("Authorization", "Bearer wrong-token-0123456789".to_string())],
        vec![("Authorization", format!("Basic {TOKEN}"))],
    ] {
        let headers: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (code, body) = http(port, "GET", card, &headers, "");
        assert_eq!(code, 401, "{body}");
        assert!(body.contains("UNAUTHENTICATED"), "{body}");
    }
    let (k, v) = auth();
    let a = [(k, v.as_str())];
    let (code, body) = http(port, "GET", card, &a, "");
    assert_eq!(code, 200, "{body}");

    // A client on another protocol version; an unknown agent; bad JSON.
    let (code, body) = http(port, "GET", card, &[a[0], ("A2A-Version", "0.3")], "");
    assert_eq!(code, 400);
    assert!(body.contains("VERSION_NOT_SUPPORTED"), "{body}");
    let (code, body) = http(
        port,
        "POST",
        "/agents/nobody/message:send",
        &a,
        &send_body("m0", r#"[{"text":"x"}]"#, true),
    );
    assert_eq!(code, 404, "{body}");
    // A body a browser page could send cross-origin without a preflight.
    let plain = [a[0], ("Content-Type", "text/plain")];
    let (code, body) = http(
        port,
        "POST",
        "/agents/echo/message:send",
        &plain,
        &send_body("m-x", r#"[{"text":"x"}]"#, true),
    );
    assert_eq!(code, 415, "{body}");
    let (code, body) = http(port, "POST", "/agents/echo/message:send", &a, "{not json");
    assert_eq!(code, 400);
    assert!(body.contains("not JSON"), "{body}");
    let (code, body) = http(
        port,
        "POST",
        "/agents/echo/message:send",
        &a,
        r#"{"message":{"parts":[]}}"#,
    );
    assert_eq!(code, 400);
    assert!(body.contains("no `parts`"), "{body}");

    // A body beyond max_input (1 KiB here) plus the envelope.
    let big = format!(r#"[{{"text":"{}"}}]"#, "x".repeat(200_000));
    let (code, body) = http(
        port,
        "POST",
        "/agents/echo/message:send",
        &a,
        &send_body("m-big", &big, true),
    );
    assert_eq!(code, 413, "{body}");
    assert!(body.contains("max_input"), "{body}");
    // Within the envelope but past max_input: the engine refuses, naming it.
    let mid = format!(r#"[{{"text":"{}"}}]"#, "x".repeat(2000));
    let (code, body) = http(
        port,
        "POST",
        "/agents/echo/message:send",
        &a,
        &send_body("m-mid", &mid, true),
    );
    assert_eq!(code, 429, "{body}");
    assert!(body.contains("max_input"), "{body}");

    // The same messageId twice is one task (an idempotent retry).
    let (c1, b1) = http(
        port,
        "POST",
        "/agents/echo/message:send",
        &a,
        &send_body("m-same", r#"[{"text":"once"}]"#, false),
    );
    let (c2, b2) = http(
        port,
        "POST",
        "/agents/echo/message:send",
        &a,
        &send_body("m-same", r#"[{"text":"once"}]"#, false),
    );
    assert_eq!((c1, c2), (200, 200), "{b1} {b2}");
    let id = |b: &str| serde_json::from_str::<Value>(b).expect("json")["task"]["id"].clone();
    assert_eq!(id(&b1), id(&b2));
    let t1: Value = serde_json::from_str(&b1).expect("json");
    assert_eq!(t1["task"]["status"]["state"], "TASK_STATE_COMPLETED");

    // A full queue (max_queue = 2, no replica ready): refused, naming it.
    for n in 0..2 {
        let (code, body) = http(
            port,
            "POST",
            "/agents/idle/message:send",
            &a,
            &send_body(&format!("q{n}"), r#"[{"text":"wait"}]"#, true),
        );
        assert_eq!(code, 200, "{body}");
        assert!(body.contains("TASK_STATE_SUBMITTED"), "{body}");
    }
    let (code, body) = http(
        port,
        "POST",
        "/agents/idle/message:send",
        &a,
        &send_body("q3", r#"[{"text":"wait"}]"#, true),
    );
    assert_eq!(code, 429, "{body}");
    assert!(body.contains("max_queue"), "{body}");

    // Another agent's task is not found under this agent.
    let echo_id = id(&b1);
    let path = format!("/agents/idle/tasks/{}", echo_id.as_str().expect("id"));
    let (code, body) = http(port, "GET", &path, &a, "");
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("TASK_NOT_FOUND"), "{body}");
    d.stop();
}

#[test]
fn over_tls_the_gateway_serves_its_certificate_and_nothing_in_clear() {
    if !have_tool("python3", "python3") {
        return;
    }
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("cert");
    let port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let (c, k) = (dir.path().join("gw.crt"), dir.path().join("gw.key"));
    std::fs::write(&c, cert.cert.pem()).expect("cert");
    std::fs::write(&k, cert.key_pair.serialize_pem()).expect("key");
    let extra = format!("cert = \"{}\"\nkey = \"{}\"", c.display(), k.display());
    let mut d = start(port, &extra);
    // Python's ssl module checks the chain and the address against the CA.
    let check = format!(
        r#"
import http.client, json, ssl
ctx = ssl.create_default_context(cafile="{ca}")
conn = http.client.HTTPSConnection("127.0.0.1", {port}, context=ctx, timeout=10)
conn.request("GET", "/agents/echo/.well-known/agent-card.json", headers={{"Authorization": "Bearer {TOKEN}"}})
r = conn.getresponse()
print(r.status, json.loads(r.read())["supportedInterfaces"][0]["url"])
"#,
        ca = c.display()
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &check])
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text.trim(),
        format!("200 https://127.0.0.1:{port}/agents/echo")
    );
    // Plain HTTP to the TLS port gets no answer.
    let (code, _) = http(port, "GET", "/agents", &[], "");
    assert_eq!(code, 0, "a cleartext request must not be answered");
    d.stop();
}
