//! Autonomos tasks in the A2A protocol's terms (HTTP+JSON binding, 1.x):
//! Agent Cards, messages in, tasks, status and artifact events and errors
//! out. Field names are the protobuf JSON names (camelCase); enums are the
//! `TASK_STATE_*` / `ROLE_*` strings.

use serde_json::{Map, Value, json};

use crate::core::task::TaskState;
use crate::proto::{NewTask, TaskStatus};

use super::super::tasks::AgentInfo;

/// The protocol version the gateway speaks.
pub const VERSION: &str = "1.0";
/// The binding's media type.
pub const MEDIA_TYPE: &str = "application/a2a+json";
/// Idempotency keys made from message ids, apart from operators' keys.
const KEY_PREFIX: &str = "a2a:";

pub fn state_name(s: TaskState) -> &'static str {
    match s {
        TaskState::Submitted => "TASK_STATE_SUBMITTED",
        TaskState::Working => "TASK_STATE_WORKING",
        TaskState::Completed => "TASK_STATE_COMPLETED",
        TaskState::Failed => "TASK_STATE_FAILED",
        TaskState::Canceled => "TASK_STATE_CANCELED",
        TaskState::Rejected => "TASK_STATE_REJECTED",
    }
}

/// An agent's card; `base` is the agent's URL (`…/agents/NAME`).
pub fn card(a: &AgentInfo, base: &str, bearer: bool) -> Value {
    let skills: Vec<Value> = a
        .skills
        .iter()
        .map(|s| {
            json!({
                "id": s,
                "name": s,
                "description": format!("{} offers `{s}`", a.name),
                "tags": [s],
            })
        })
        .collect();
    let description = a
        .description
        .clone()
        .unwrap_or_else(|| format!("Autonomos task agent `{}`", a.name));
    let mut card = json!({
        "name": a.name,
        "description": description,
        "version": crate::proto::APP_VERSION,
        "provider": { "organization": "Autonomos", "url": base },
        "supportedInterfaces": [{
            "url": base,
            "protocolBinding": "HTTP+JSON",
            "protocolVersion": VERSION,
        }],
        "capabilities": { "streaming": true, "pushNotifications": false },
        "defaultInputModes": ["application/json", "text/plain"],
        "defaultOutputModes": ["application/json", "text/plain"],
        "skills": skills,
    });
    if bearer {
        card["securitySchemes"] = json!({
            "bearer": { "httpAuthSecurityScheme": { "scheme": "Bearer" } }
        });
        card["securityRequirements"] = json!([{ "schemes": { "bearer": { "list": [] } } }]);
    }
    card
}

/// What a `SendMessageRequest` asks for.
#[derive(Debug, PartialEq)]
pub struct Send {
    pub task: NewTask,
    pub priority: i32,
    /// `configuration.returnImmediately`: answer once queued.
    pub immediately: bool,
}

/// Reads a `SendMessageRequest`: its message's parts become the task's
/// input (one text part: a string; one data part: that value; else the
/// parts as given), its `messageId` the idempotency key, its `contextId`
/// the task's context. Errors are meant for the client.
pub fn read_send(body: &Value) -> Result<Send, String> {
    let Some(message) = body.get("message").filter(|m| m.is_object()) else {
        return Err("the request has no `message` object".into());
    };
    if message
        .get("taskId")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty())
    {
        return Err(
            "each message starts a new task here; continuing a task (`taskId`) is not supported"
                .into(),
        );
    }
    let parts = message
        .get("parts")
        .and_then(Value::as_array)
        .filter(|p| !p.is_empty())
        .ok_or("the message has no `parts`")?;
    let input = match parts.as_slice() {
        [one] => match (one.get("text"), one.get("data")) {
            (Some(Value::String(t)), _) => Value::String(t.clone()),
            (_, Some(d)) => d.clone(),
            _ => json!({ "parts": parts }),
        },
        _ => json!({ "parts": parts }),
    };
    let text = |k: &str| {
        message
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let priority = body
        .pointer("/metadata/priority")
        .or_else(|| message.pointer("/metadata/priority"))
        .and_then(Value::as_i64)
        .map_or(0, |p| p.clamp(-1000, 1000) as i32);
    Ok(Send {
        task: NewTask {
            input,
            key: text("messageId").map(|m| format!("{KEY_PREFIX}{m}")),
            context_id: text("contextId"),
        },
        priority,
        immediately: body
            .pointer("/configuration/returnImmediately")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// A value as one message or artifact part.
fn part(v: &Value) -> Value {
    match v {
        Value::String(s) => json!({ "text": s }),
        other => json!({ "data": other, "mediaType": "application/json" }),
    }
}

fn rfc3339(ms: u64) -> String {
    jiff::Timestamp::from_millisecond(ms as i64)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// The task's status: its state, when it last changed, and a message
/// from the agent (its error, or its last progress message).
pub fn status(t: &TaskStatus) -> Value {
    let when = t.finished_at.or(t.started_at).unwrap_or(t.submitted_at);
    let mut s = json!({ "state": state_name(t.state), "timestamp": rfc3339(when) });
    let text = match t.state {
        TaskState::Failed | TaskState::Rejected | TaskState::Canceled => t.error.clone(),
        TaskState::Working => t.progress.as_ref().and_then(|p| p.message.clone()),
        _ => None,
    };
    if let Some(text) = text {
        // One id per distinct status message (progress messages differ).
        let tag = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (t.attempts, state_name(t.state), &text).hash(&mut h);
            t.progress
                .as_ref()
                .and_then(|p| p.fraction)
                .map(f64::to_bits)
                .hash(&mut h);
            h.finish()
        };
        let mut m = json!({
            "messageId": format!("{}-status-{tag:016x}", t.id),
            "role": "ROLE_AGENT",
            "taskId": t.id,
            "parts": [{ "text": text }],
        });
        if let Some(c) = &t.context_id {
            m["contextId"] = c.clone().into();
        }
        s["message"] = m;
    }
    s
}

/// The result as the task's one artifact.
pub fn artifact(t: &TaskStatus) -> Option<Value> {
    let r = t
        .result
        .as_ref()
        .filter(|_| t.state == TaskState::Completed)?;
    Some(json!({ "artifactId": format!("{}-result", t.id), "name": "result", "parts": [part(r)] }))
}

fn metadata(t: &TaskStatus) -> Value {
    let mut m = Map::new();
    m.insert("agent".into(), t.agent.clone().into());
    m.insert("attempts".into(), t.attempts.into());
    if let Some(r) = t.replica {
        m.insert("replica".into(), r.into());
    }
    m.insert("priority".into(), t.priority.into());
    m.insert("submittedAt".into(), rfc3339(t.submitted_at).into());
    if let Some(s) = t.started_at {
        m.insert("startedAt".into(), rfc3339(s).into());
    }
    if let Some(f) = t.finished_at {
        m.insert("finishedAt".into(), rfc3339(f).into());
    }
    if let Some(f) = t.progress.as_ref().and_then(|p| p.fraction) {
        m.insert("progress".into(), f.into());
    }
    Value::Object(m)
}

/// A task object.
pub fn task(t: &TaskStatus) -> Value {
    // A2A requires a context: without one of its own, the task is its own.
    let context = t.context_id.as_deref().unwrap_or(&t.id);
    let mut v =
        json!({ "id": t.id, "contextId": context, "status": status(t), "metadata": metadata(t) });
    if let Some(a) = artifact(t) {
        v["artifacts"] = json!([a]);
    }
    v
}

/// The stream events for one change: a status update, preceded by the
/// result artifact when the task completed.
pub fn events(t: &TaskStatus) -> Vec<Value> {
    let ctx = |mut v: Value| {
        v["contextId"] = t.context_id.as_deref().unwrap_or(&t.id).into();
        v
    };
    let mut out = Vec::new();
    if let Some(a) = artifact(t) {
        out.push(json!({ "artifactUpdate": ctx(json!({
            "taskId": t.id, "artifact": a, "append": false, "lastChunk": true,
        })) }));
    }
    out.push(json!({ "statusUpdate": ctx(json!({
        "taskId": t.id, "status": status(t), "metadata": metadata(t),
    })) }));
    out
}

/// An error body (google.rpc.Status with an A2A `ErrorInfo` reason).
pub fn error(http: u16, status: &str, reason: &str, message: &str) -> Value {
    json!({ "error": {
        "code": http,
        "status": status,
        "message": message,
        "details": [{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": reason,
            "domain": "a2a-protocol.org",
            "metadata": {},
        }],
    } })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(state: TaskState) -> TaskStatus {
        TaskStatus {
            id: "t1".into(),
            agent: "coder".into(),
            state,
            attempts: 1,
            replica: Some(0),
            priority: 0,
            key: None,
            context_id: Some("c1".into()),
            input: json!("hi"),
            result: Some(json!({ "answer": 42 })),
            error: None,
            progress: None,
            submitted_at: 1_700_000_000_000,
            started_at: Some(1_700_000_000_100),
            finished_at: Some(1_700_000_000_200),
            timeout_ms: None,
            host: None,
        }
    }

    #[test]
    fn one_text_part_is_a_string_input_and_the_message_id_a_key() {
        let s = read_send(&json!({
            "message": { "messageId": "m1", "role": "ROLE_USER", "contextId": "c9",
                         "parts": [{ "text": "summarize this" }] },
            "configuration": { "returnImmediately": true },
            "metadata": { "priority": 5 },
        }))
        .expect("valid");
        assert_eq!(s.task.input, json!("summarize this"));
        assert_eq!(s.task.key.as_deref(), Some("a2a:m1"));
        assert_eq!(s.task.context_id.as_deref(), Some("c9"));
        assert!(s.immediately);
        assert_eq!(s.priority, 5);
    }

    #[test]
    fn a_data_part_is_its_value_and_several_parts_stay_parts() {
        let data = read_send(&json!({ "message": { "parts": [{ "data": { "n": 1 } }] } }));
        assert_eq!(data.expect("valid").task.input, json!({ "n": 1 }));
        let two = read_send(&json!({ "message": { "parts": [{ "text": "a" }, { "text": "b" }] } }));
        assert_eq!(
            two.expect("valid").task.input,
            json!({ "parts": [{ "text": "a" }, { "text": "b" }] })
        );
    }

    #[test]
    fn messages_without_parts_or_continuing_a_task_are_refused() {
        assert!(read_send(&json!({})).is_err());
        assert!(read_send(&json!({ "message": { "parts": [] } })).is_err());
        let cont = read_send(&json!({ "message": { "taskId": "t1", "parts": [{ "text": "x" }] } }));
        assert!(cont.expect_err("refused").contains("taskId"));
    }

    #[test]
    fn a_completed_task_carries_its_result_as_an_artifact() {
        let t = task(&sample(TaskState::Completed));
        assert_eq!(t["status"]["state"], "TASK_STATE_COMPLETED");
        assert_eq!(
            t["artifacts"][0]["parts"][0]["data"],
            json!({ "answer": 42 })
        );
        assert_eq!(t["contextId"], "c1");
        assert_eq!(t["status"]["timestamp"], "2023-11-14T22:13:20.2Z");
        let ev = events(&sample(TaskState::Completed));
        assert!(ev[0].get("artifactUpdate").is_some());
        assert_eq!(
            ev[1]["statusUpdate"]["status"]["state"],
            "TASK_STATE_COMPLETED"
        );
    }

    #[test]
    fn a_failed_task_says_why_in_its_status_message() {
        let mut s = sample(TaskState::Failed);
        s.error = Some("timeout".into());
        let t = task(&s);
        assert_eq!(t["status"]["message"]["parts"][0]["text"], "timeout");
        assert!(t.get("artifacts").is_none());
    }
}
