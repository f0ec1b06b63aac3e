//! The JSON-RPC channel to one replica of a task agent: newline-delimited
//! JSON on its stdin (what the daemon sends) and its stdout (what it
//! answers); stderr stays the log. A stdout line that is not JSON-RPC is
//! logged like any output and counted, never fatal.

use std::sync::atomic::Ordering;

use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::{Msg, Tasks};

/// A replica the engine may send tasks to.
pub struct ReplicaLink {
    pub agent: String,
    pub index: u32,
    pub run: u64,
    /// Lines for its stdin (each a JSON-RPC message with its newline).
    pub stdin: mpsc::UnboundedSender<Vec<u8>>,
    /// It has a readiness probe: no tasks before the probe passes.
    pub gated: bool,
}

impl ReplicaLink {
    /// Starts the writer of the replica's stdin; the link carries lines to
    /// it. The writer ends when the pipe breaks or the link is dropped.
    pub fn open(
        agent: &str,
        index: u32,
        run: u64,
        gated: bool,
        mut pipe: tokio::net::unix::pipe::Sender,
    ) -> ReplicaLink {
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
        tokio::spawn(async move {
            while let Some(line) = rx.recv().await {
                if pipe.write_all(&line).await.is_err() {
                    break;
                }
            }
        });
        ReplicaLink {
            agent: agent.to_string(),
            index,
            run,
            stdin: tx,
            gated,
        }
    }
}

/// The stdout filter of a task agent's replica: JSON-RPC messages go to
/// the engine (and not to the log); other lines are logged and counted.
pub fn rpc_filter(
    tasks: &Tasks,
    agent: &str,
    index: u32,
    run: u64,
) -> crate::daemon::output::LineFilter {
    let tasks = tasks.clone();
    let agent = agent.to_string();
    let noise = tasks.counters().noise(&agent);
    Box::new(move |line: &[u8]| {
        let msg = line
            .first()
            .filter(|b| **b == b'{')
            .and_then(|_| serde_json::from_slice::<serde_json::Value>(line).ok())
            .filter(|v| v.get("jsonrpc").and_then(|j| j.as_str()) == Some("2.0"));
        match msg {
            Some(msg) => {
                tasks.send(Msg::FromAgent {
                    agent: agent.clone(),
                    index,
                    run,
                    msg,
                });
                true
            }
            None => {
                noise.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    })
}
