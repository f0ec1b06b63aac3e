//! The gateway's routes: Agent Cards, send (blocking or not), stream,
//! get, list, cancel and subscribe, each under `/agents/NAME/`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::Stream;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{Shared, a2a, auth};
use crate::daemon::tasks::Msg;
use crate::proto::{ErrorKind, ErrorReply, Request as Req, Response as Resp, Submit, TaskStatus};

/// Per connection: the shared state and who is asking (for the audit trail).
#[derive(Clone)]
pub(super) struct Conn {
    shared: Shared,
    who: String,
}

pub(super) fn routes(shared: Shared, peer: SocketAddr) -> Router {
    let conn = Conn {
        who: format!("gateway {peer}"),
        shared,
    };
    Router::new()
        .route("/agents", get(index))
        .route("/agents/{name}/.well-known/agent-card.json", get(card))
        .route("/agents/{name}/{call}", post(message))
        .route("/agents/{name}/tasks", get(list))
        .route("/agents/{name}/tasks/{id}", get(task).post(task_call))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(conn.clone(), guard))
        .with_state(conn)
}

/// An A2A error answer.
fn fail(http: StatusCode, status: &str, reason: &str, message: impl AsRef<str>) -> Response {
    let body = a2a::error(http.as_u16(), status, reason, message.as_ref());
    (
        http,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn ok(v: Value) -> Response {
    ([(header::CONTENT_TYPE, a2a::MEDIA_TYPE)], v.to_string()).into_response()
}

/// A daemon refusal in A2A terms.
fn refused(e: ErrorReply) -> Response {
    let (http, status, reason) = match e.kind {
        ErrorKind::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND", "TASK_NOT_FOUND"),
        ErrorKind::UnknownAgent => (StatusCode::NOT_FOUND, "NOT_FOUND", "METHOD_NOT_FOUND"),
        ErrorKind::Limit => (
            StatusCode::TOO_MANY_REQUESTS,
            "RESOURCE_EXHAUSTED",
            "RESOURCE_EXHAUSTED",
        ),
        ErrorKind::Storage | ErrorKind::ShuttingDown | ErrorKind::NotAvailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "UNAVAILABLE",
        ),
        _ => (
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "INVALID_PARAMS",
        ),
    };
    fail(http, status, reason, e.message)
}

/// Every request: the bearer token (when one is set) and the protocol
/// version (a client that names one must name 1.x).
async fn guard(State(c): State<Conn>, req: Request, next: Next) -> Response {
    if let Some(expected) = &c.shared.token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !auth::allows(expected, given) {
            let mut r = fail(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "UNAUTHENTICATED",
                "this gateway needs `Authorization: Bearer TOKEN`",
            );
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("static"));
            return r;
        }
    }
    // A browser page may send a "simple" cross-origin POST: only JSON
    // bodies are taken (which a page cannot send without a preflight),
    // and without a token only loopback host names (no DNS rebinding).
    if req.method() == axum::http::Method::POST && !json_body(req.headers()) {
        return fail(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "INVALID_ARGUMENT",
            "CONTENT_TYPE_NOT_SUPPORTED",
            "send the body as application/json (or application/a2a+json)",
        );
    }
    if c.shared.token.is_none() && !loopback_host(req.headers()) {
        return fail(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            "without a token this gateway answers only to a loopback Host (localhost, 127.0.0.1, [::1])",
        );
    }
    if let Some(v) = req
        .headers()
        .get("a2a-version")
        .and_then(|v| v.to_str().ok())
        && !v.trim().is_empty()
        && v.trim().split('.').next() != Some("1")
    {
        return fail(
            StatusCode::BAD_REQUEST,
            "FAILED_PRECONDITION",
            "VERSION_NOT_SUPPORTED",
            format!(
                "A2A version {v} is not supported; this gateway speaks {}",
                a2a::VERSION
            ),
        );
    }
    // Handlers bound their own waits (a blocking send, a stream's quiet
    // time); this bounds the rest, with room above those.
    let limit = c.shared.request_timeout + Duration::from_secs(5);
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => fail(
            StatusCode::GATEWAY_TIMEOUT,
            "DEADLINE_EXCEEDED",
            "DEADLINE_EXCEEDED",
            "the request took longer than [gateway] request_timeout",
        ),
    }
}

/// A JSON body (the A2A media type included); an empty POST (cancel,
/// subscribe) may have none.
fn json_body(h: &HeaderMap) -> bool {
    let Some(ct) = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return h
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|n| n.trim() == "0");
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || mime == a2a::MEDIA_TYPE
}

/// The Host header names this machine's loopback.
fn loopback_host(h: &HeaderMap) -> bool {
    let Some(host) = h.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(n, _)| n),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

async fn not_found() -> Response {
    fail(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "METHOD_NOT_FOUND",
        "no such route; agents are served under /agents/NAME/",
    )
}

/// The base URL of an agent, from the request's Host header.
fn base(c: &Conn, headers: &HeaderMap, name: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = if c.shared.tls { "https" } else { "http" };
    format!("{scheme}://{host}/agents/{name}")
}

async fn index(State(c): State<Conn>, headers: HeaderMap) -> Response {
    let agents: Vec<Value> = c
        .shared
        .tasks
        .agents()
        .await
        .iter()
        .map(|a| {
            let url = base(&c, &headers, &a.name);
            json!({ "name": a.name, "card": format!("{url}/.well-known/agent-card.json") })
        })
        .collect();
    ok(json!({ "agents": agents }))
}

async fn agent(c: &Conn, name: &str) -> Result<crate::daemon::tasks::AgentInfo, Response> {
    c.shared
        .tasks
        .agents()
        .await
        .into_iter()
        .find(|a| a.name == name)
        .ok_or_else(|| {
            fail(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "METHOD_NOT_FOUND",
                format!("no task agent `{name}` here"),
            )
        })
}

async fn card(State(c): State<Conn>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    match agent(&c, &name).await {
        Ok(a) => ok(a2a::card(
            &a,
            &base(&c, &headers, &name),
            c.shared.token.is_some(),
        )),
        Err(r) => r,
    }
}

/// `message:send` and `message:stream`.
async fn message(
    State(c): State<Conn>,
    Path((name, call)): Path<(String, String)>,
    body: Body,
) -> Response {
    let started = tokio::time::Instant::now();
    let stream = match call.as_str() {
        "message:send" => false,
        "message:stream" => true,
        _ => return not_found().await,
    };
    if let Err(r) = agent(&c, &name).await {
        return r;
    }
    let bytes = match axum::body::to_bytes(body, c.shared.max_body).await {
        Ok(b) => b,
        Err(_) => {
            return fail(
                StatusCode::PAYLOAD_TOO_LARGE,
                "INVALID_ARGUMENT",
                "INVALID_REQUEST",
                format!(
                    "the request is larger than {} bytes ([tasks] max_input plus the envelope)",
                    c.shared.max_body
                ),
            );
        }
    };
    let parsed: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            let msg = format!("the body is not JSON: {e}");
            return fail(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                "INVALID_REQUEST",
                msg,
            );
        }
    };
    let send = match a2a::read_send(&parsed) {
        Ok(s) => s,
        Err(e) => {
            return fail(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                "INVALID_PARAMS",
                e,
            );
        }
    };
    let submit = Submit {
        agent: Some(name),
        skill: None,
        tasks: vec![send.task],
        priority: send.priority,
        timeout_ms: None,
    };
    let id = match c
        .shared
        .router
        .request_as(Req::TaskSubmit(submit), c.who.clone())
        .await
    {
        Ok(Resp::Tasks { tasks }) if !tasks.is_empty() => tasks[0].id.clone(),
        Ok(_) => return refused(internal("the submit named no task")),
        Err(e) => return refused(e),
    };
    if stream {
        return sse(c.shared.tasks.watch(&id), c.shared.request_timeout);
    }
    // One deadline for the whole request, the submit included.
    let limit = if send.immediately {
        Duration::ZERO
    } else {
        c.shared.request_timeout.saturating_sub(started.elapsed())
    };
    match settle(&c, &id, limit).await {
        Some(t) => ok(json!({ "task": a2a::task(&t) })),
        None => refused(internal("the task vanished")),
    }
}

fn internal(m: &str) -> ErrorReply {
    ErrorReply {
        kind: ErrorKind::Storage,
        message: m.into(),
    }
}

/// The task once final, or as it is when `limit` passed.
async fn settle(c: &Conn, id: &str, limit: Duration) -> Option<TaskStatus> {
    let mut rx = c.shared.tasks.watch(id);
    let mut last = rx.recv().await?;
    let deadline = tokio::time::Instant::now() + limit;
    while !last.state.is_final() {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(t)) => last = t,
            Ok(None) | Err(_) => break,
        }
    }
    Some(last)
}

/// A task's events as server-sent events: the task first, then each
/// change; the stream ends with the task (final) or after `quiet` without
/// a change (the client may subscribe again).
fn sse(rx: mpsc::Receiver<TaskStatus>, quiet: Duration) -> Response {
    Sse::new(events(rx, quiet))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn events(
    rx: mpsc::Receiver<TaskStatus>,
    quiet: Duration,
) -> impl Stream<Item = Result<Event, Infallible>> {
    use futures_util::StreamExt;
    let state = (rx, true, Vec::<Value>::new());
    futures_util::stream::unfold(state, move |(mut rx, first, mut pending)| async move {
        if let Some(v) = pending.pop() {
            return Some((
                Ok(Event::default().data(v.to_string())),
                (rx, first, pending),
            ));
        }
        let t = match tokio::time::timeout(quiet, rx.recv()).await {
            Ok(Some(t)) => t,
            _ => return None,
        };
        let mut out = if first {
            vec![json!({ "task": a2a::task(&t) })]
        } else {
            a2a::events(&t)
        };
        out.reverse();
        let v = out.pop()?;
        Some((Ok(Event::default().data(v.to_string())), (rx, false, out)))
    })
    .boxed()
}

async fn list(State(c): State<Conn>, Path(name): Path<String>) -> Response {
    if let Err(r) = agent(&c, &name).await {
        return r;
    }
    let asked = c
        .shared
        .tasks
        .ask(|answer| Msg::List {
            agent: Some(name),
            state: None,
            limit: 100,
            answer,
        })
        .await;
    match asked {
        Ok(Resp::Tasks { tasks }) => {
            let list: Vec<Value> = tasks.iter().map(a2a::task).collect();
            let n = list.len();
            ok(json!({ "tasks": list, "nextPageToken": "", "pageSize": n, "totalSize": n }))
        }
        Ok(_) => refused(internal("unexpected answer")),
        Err(e) => refused(e),
    }
}

/// One of this agent's tasks (another agent's task is not found here).
async fn own_task(c: &Conn, name: &str, id: &str) -> Result<TaskStatus, Response> {
    let asked = c.shared.tasks.ask(|a| Msg::Get(id.to_string(), a)).await;
    match asked {
        Ok(Resp::Tasks { tasks }) => tasks
            .into_iter()
            .find(|t| t.id == id && t.agent == name)
            .ok_or_else(|| refused(no_task(id))),
        Ok(_) => Err(refused(internal("unexpected answer"))),
        Err(e) => Err(refused(e)),
    }
}

fn no_task(id: &str) -> ErrorReply {
    ErrorReply {
        kind: ErrorKind::NotFound,
        message: format!("no task `{id}` for this agent"),
    }
}

async fn task(State(c): State<Conn>, Path((name, id)): Path<(String, String)>) -> Response {
    match own_task(&c, &name, &id).await {
        Ok(t) => ok(a2a::task(&t)),
        Err(r) => r,
    }
}

/// `tasks/ID:cancel` and `tasks/ID:subscribe`.
async fn task_call(State(c): State<Conn>, Path((name, call)): Path<(String, String)>) -> Response {
    let Some((id, verb)) = call.rsplit_once(':') else {
        return not_found().await;
    };
    let t = match own_task(&c, &name, id).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    match verb {
        "cancel" => {
            if t.state.is_final() {
                return fail(
                    StatusCode::BAD_REQUEST,
                    "FAILED_PRECONDITION",
                    "TASK_NOT_CANCELABLE",
                    format!("task {id} is already {}", t.state),
                );
            }
            let req = Req::TaskCancel { id: id.to_string() };
            match c.shared.router.request_as(req, c.who.clone()).await {
                Ok(Resp::Tasks { tasks }) if !tasks.is_empty() => ok(a2a::task(&tasks[0])),
                Ok(_) => refused(internal("unexpected answer")),
                Err(e) => refused(e),
            }
        }
        "subscribe" => {
            if t.state.is_final() {
                return fail(
                    StatusCode::BAD_REQUEST,
                    "FAILED_PRECONDITION",
                    "UNSUPPORTED_OPERATION",
                    format!("task {id} is already {}; get it instead", t.state),
                );
            }
            sse(c.shared.tasks.watch(id), c.shared.request_timeout)
        }
        _ => not_found().await,
    }
}
