//! Requests from agents: a replica may hand work to other agents through
//! the queue (`task.submit`), read a task (`task.get`), and hears when a
//! task it submitted ends (`task.finished`). So a planner delegates to
//! coders and researchers over its own stdin/stdout, in any language.

use serde_json::{Value, json};

use super::Msg;
use super::engine::Engine;
use super::flow::rpc_line;
use crate::proto::{NewTask, Response, Submit};

/// Who submitted a task, to be told when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parent {
    pub agent: String,
    pub index: u32,
    pub run: u64,
}

/// One JSON-RPC answer line.
fn reply(id: &Value, outcome: Result<Value, (i64, String)>) -> Vec<u8> {
    let msg = match outcome {
        Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
        Err((code, message)) => {
            json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } })
        }
    };
    let mut line = serde_json::to_vec(&msg).unwrap_or_default();
    line.push(b'\n');
    line
}

const INVALID_PARAMS: i64 = -32602;
const METHOD_NOT_FOUND: i64 = -32601;
/// The daemon refused (a full queue, an unknown agent): the message says why.
const REFUSED: i64 = -32000;

impl Engine {
    /// A request from a replica (a message with a method and an id).
    pub(super) fn agent_request(&mut self, from: Parent, method: &str, id: &Value, params: &Value) {
        let Some(stdin) = self
            .agents
            .get(&from.agent)
            .and_then(|q| q.replicas.get(&from.index))
            .filter(|r| r.run == from.run)
            .map(|r| r.stdin.clone())
        else {
            return;
        };
        match method {
            "task.submit" => match submit_params(params) {
                Ok(s) => self.delegate(from, s, id.clone(), stdin),
                Err(e) => drop(stdin.send(reply(id, Err((INVALID_PARAMS, e))))),
            },
            "task.get" => {
                let task = params.get("id").and_then(Value::as_str).unwrap_or_default();
                let out = match self.get(task) {
                    Ok(Response::Tasks { tasks }) if !tasks.is_empty() => {
                        Ok(serde_json::to_value(&tasks[0]).unwrap_or(Value::Null))
                    }
                    Ok(_) => Err((REFUSED, format!("no task `{task}`"))),
                    Err(e) => Err((REFUSED, e.message)),
                };
                let _ = stdin.send(reply(id, out));
            }
            other => {
                let msg = format!("the daemon has no method `{other}`");
                let _ = stdin.send(reply(id, Err((METHOD_NOT_FOUND, msg))));
            }
        }
    }

    /// Submits for a replica: answered with the task's id once it is
    /// durable; the replica is told when the task ends.
    fn delegate(
        &mut self,
        from: Parent,
        s: Submit,
        req: Value,
        stdin: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
    ) {
        let (answer, rx) = tokio::sync::oneshot::channel();
        self.submit(s, answer);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let out = match rx.await {
                Ok(Ok(Response::Tasks { tasks })) if !tasks.is_empty() => {
                    let id = tasks[0].id.clone();
                    // Registered before the agent learns the id, so the
                    // end is told even if it comes at once.
                    let _ = tx.send(Msg::Delegated {
                        id: id.clone(),
                        parent: from,
                    });
                    Ok(json!({ "id": id, "state": tasks[0].state }))
                }
                Ok(Ok(_)) => Err((REFUSED, "the submit named no task".to_string())),
                Ok(Err(e)) => Err((REFUSED, e.message)),
                Err(_) => Err((REFUSED, "the task engine stopped".to_string())),
            };
            let _ = stdin.send(reply(&req, out));
        });
    }

    /// Remembers who submitted `id`; a task already final is told at once.
    pub(super) fn delegated(&mut self, id: String, parent: Parent) {
        if let Some(e) = self.tasks.get_mut(&id) {
            e.parent = Some(parent);
            if e.t.state.is_final() {
                self.tell_parent(&id);
            }
        }
    }

    /// Tells a final task's submitter (if it is still the same run) how it
    /// ended: `task.finished` with the id, state, result and error.
    pub(super) fn tell_parent(&mut self, id: &str) {
        let Some(e) = self.tasks.get_mut(id) else {
            return;
        };
        if !e.t.state.is_final() {
            return;
        }
        let Some(p) = e.parent.take() else { return };
        let params = json!({
            "id": e.t.id, "agent": e.t.agent, "state": e.t.state,
            "result": e.t.result, "error": e.t.error,
        });
        if let Some(r) = self
            .agents
            .get(&p.agent)
            .and_then(|q| q.replicas.get(&p.index))
            .filter(|r| r.run == p.run)
        {
            let _ = r.stdin.send(rpc_line("task.finished", params));
        }
    }
}

/// `task.submit` params: `agent` or `skill`, `input`, and optionally
/// `context_id`, `key`, `priority`, `timeout_ms`.
fn submit_params(p: &Value) -> Result<Submit, String> {
    let text = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_owned);
    let (agent, skill) = (text("agent"), text("skill"));
    if agent.is_some() == skill.is_some() {
        return Err("task.submit needs `agent` or `skill` (one of them)".into());
    }
    let Some(input) = p.get("input").cloned() else {
        return Err("task.submit needs an `input`".into());
    };
    Ok(Submit {
        agent,
        skill,
        tasks: vec![NewTask {
            input,
            key: text("key"),
            context_id: text("context_id"),
        }],
        priority: p
            .get("priority")
            .and_then(Value::as_i64)
            .map_or(0, |n| n.clamp(-1000, 1000) as i32),
        timeout_ms: p.get("timeout_ms").and_then(Value::as_u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submit_params_need_one_target_and_an_input() {
        let ok = submit_params(&json!({ "skill": "code", "input": "x", "context_id": "g1" }));
        let s = ok.expect("valid");
        assert_eq!(s.skill.as_deref(), Some("code"));
        assert_eq!(s.tasks[0].context_id.as_deref(), Some("g1"));
        assert!(submit_params(&json!({ "input": 1 })).is_err());
        assert!(submit_params(&json!({ "agent": "a", "skill": "b", "input": 1 })).is_err());
        assert!(submit_params(&json!({ "agent": "a" })).is_err());
    }
}
