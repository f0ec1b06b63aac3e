//! A demo agent's JSON-RPC link when it runs as a task agent
//! (`AUTONOMOS_PROTOCOL=jsonrpc`): a thread reads stdin into a channel so
//! the agent's loop can wait for work with a timeout, and stdout carries
//! only JSON-RPC (its log lines go to stderr then).

use std::io::{self, BufRead, Write};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

/// What the daemon sent.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Inbound {
    /// `task.run`: the request id to answer, the task's id and input, its
    /// context.
    Run {
        req: Value,
        id: String,
        input: Value,
        context: Option<String>,
    },
    /// `task.cancel`.
    Cancel(String),
    /// `task.finished` for a task this agent submitted: its params.
    Finished(Value),
    /// The answer to one of this agent's requests.
    Answer { id: Value, msg: Value },
    /// `shutdown`, or stdin ended.
    Shutdown,
    /// A method this agent does not know.
    Other,
}

/// Reads what the daemon sends; writes what the agent says.
pub(super) struct Wire {
    rx: mpsc::Receiver<Inbound>,
    next: u64,
    /// The end of stdin was reported.
    closed: std::cell::Cell<bool>,
}

impl Wire {
    /// Starts reading stdin on its own thread.
    pub(super) fn start() -> Wire {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                let Ok(msg) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                // The daemon's heartbeat probe: this reader is alive.
                if msg.get("method").and_then(Value::as_str) == Some("ping") {
                    let id = msg.get("id").cloned().unwrap_or(Value::Null);
                    let _ = answer(&id, json!({}));
                    continue;
                }
                if tx.send(classify(msg)).is_err() {
                    return;
                }
            }
            let _ = tx.send(Inbound::Shutdown);
        });
        Wire {
            rx,
            next: 1,
            closed: std::cell::Cell::new(false),
        }
    }

    /// The next message, waiting at most `d`.
    /// After the end of stdin: one `Shutdown`, then nothing (after `d`).
    pub(super) fn recv(&self, d: Duration) -> Option<Inbound> {
        if self.closed.get() {
            std::thread::sleep(d);
            return None;
        }
        let m = match self.rx.recv_timeout(d) {
            Ok(m) => Some(m),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => Some(Inbound::Shutdown),
        };
        if m == Some(Inbound::Shutdown) {
            self.closed.set(true);
        }
        m
    }

    /// A new request id of this agent's own.
    pub(super) fn next_id(&mut self) -> Value {
        self.next += 1;
        json!(format!("demo-{}", self.next))
    }
}

fn classify(msg: Value) -> Inbound {
    let params = msg.get("params").cloned().unwrap_or(Value::Null);
    match msg.get("method").and_then(Value::as_str) {
        Some("task.run") => {
            let task = params.get("task").cloned().unwrap_or(Value::Null);
            Inbound::Run {
                req: msg.get("id").cloned().unwrap_or(Value::Null),
                id: task
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                input: task.get("input").cloned().unwrap_or(Value::Null),
                context: task
                    .get("context_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            }
        }
        Some("task.cancel") => Inbound::Cancel(
            params
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        ),
        Some("task.finished") => Inbound::Finished(params),
        Some("shutdown") => Inbound::Shutdown,
        Some(_) => Inbound::Other,
        None => Inbound::Answer {
            id: msg.get("id").cloned().unwrap_or(Value::Null),
            msg,
        },
    }
}

/// One JSON-RPC message on stdout, whole, flushed.
pub(super) fn send(v: &Value) -> io::Result<()> {
    let mut line = serde_json::to_vec(v).map_err(io::Error::other)?;
    line.push(b'\n');
    let mut out = io::stdout().lock();
    out.write_all(&line)?;
    out.flush()
}

pub(super) fn notify(method: &str, params: Value) -> io::Result<()> {
    send(&json!({ "jsonrpc": "2.0", "method": method, "params": params }))
}

pub(super) fn answer(req: &Value, result: Value) -> io::Result<()> {
    send(&json!({ "jsonrpc": "2.0", "id": req, "result": result }))
}

/// An error answer; `retryable: false` when retrying cannot help.
pub(super) fn fail(req: &Value, message: &str, retryable: bool) -> io::Result<()> {
    send(&json!({ "jsonrpc": "2.0", "id": req, "error": {
        "code": 1, "message": message, "data": { "retryable": retryable },
    } }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_told_apart() {
        let run = classify(json!({ "jsonrpc": "2.0", "id": "t#1", "method": "task.run",
            "params": { "task": { "id": "t", "input": "x", "context_id": "g" } } }));
        assert_eq!(
            run,
            Inbound::Run {
                req: json!("t#1"),
                id: "t".into(),
                input: json!("x"),
                context: Some("g".into())
            }
        );
        let ans = classify(json!({ "jsonrpc": "2.0", "id": "demo-2", "result": { "id": "s" } }));
        assert!(matches!(ans, Inbound::Answer { id, .. } if id == json!("demo-2")));
        assert_eq!(
            classify(json!({ "method": "task.cancel", "params": { "id": "t" } })),
            Inbound::Cancel("t".into())
        );
        assert_eq!(classify(json!({ "method": "shutdown" })), Inbound::Shutdown);
    }
}
