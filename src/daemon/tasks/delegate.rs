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
pub(super) fn reply(id: &Value, outcome: Result<Value, (i64, String)>) -> Vec<u8> {
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
            match rx.await {
                Ok(Ok(Response::Tasks { tasks })) if !tasks.is_empty() => {
                    // The engine answers, then registers the parent: the
                    // answer always comes before `task.finished`.
                    let _ = tx.send(Msg::Delegated {
                        id: tasks[0].id.clone(),
                        parent: from,
                        req,
                    });
                }
                other => {
                    let why = match other {
                        Ok(Err(e)) => e.message,
                        Err(_) => "the task engine stopped".to_string(),
                        _ => "the submit named no task".to_string(),
                    };
                    let _ = stdin.send(reply(&req, Err((REFUSED, why))));
                }
            }
        });
    }

    /// A replica's submit is durable: its answer, then who to tell when
    /// the task ends (a task already final is told at once).
    pub(super) fn delegated(&mut self, id: String, parent: Parent, req: Value) {
        if self.shared.is_some() && !self.tasks.contains_key(&id) {
            // In the shared queue, for any daemon: followed there.
            if let Some(r) = self
                .agents
                .get(&parent.agent)
                .and_then(|q| q.replicas.get(&parent.index))
                .filter(|r| r.run == parent.run)
            {
                let state = crate::core::task::TaskState::Submitted;
                let _ = r
                    .stdin
                    .send(reply(&req, Ok(json!({ "id": id, "state": state }))));
            }
            return self.follow_remote(id, Vec::new(), vec![parent]);
        }
        let state = self.tasks.get(&id).map(|e| e.t.state);
        if let Some(r) = self
            .agents
            .get(&parent.agent)
            .and_then(|q| q.replicas.get(&parent.index))
            .filter(|r| r.run == parent.run)
        {
            let _ = r
                .stdin
                .send(reply(&req, Ok(json!({ "id": id, "state": state }))));
        }
        if let Some(e) = self.tasks.get_mut(&id) {
            // Two replicas submitting with one key share the task: both hear.
            if !e.parents.contains(&parent) {
                e.parents.push(parent);
            }
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
        if e.parents.is_empty() {
            return;
        }
        let parents = std::mem::take(&mut e.parents);
        let params = json!({
            "id": e.t.id, "agent": e.t.agent, "state": e.t.state,
            "result": e.t.result, "error": e.t.error,
        });
        let line = rpc_line("task.finished", params);
        for p in parents {
            if let Some(r) = self
                .agents
                .get(&p.agent)
                .and_then(|q| q.replicas.get(&p.index))
                .filter(|r| r.run == p.run)
            {
                let _ = r.stdin.send(line.clone());
            }
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
