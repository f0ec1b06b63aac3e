//! The control socket: accepts clients on a Unix socket, checks who they
//! are, runs the handshake, answers requests and streams events.
//!
//! Limits, each decided and tested: the socket is created 0600 under a
//! tight umask; the peer's uid (SO_PEERCRED) must be ours; a handshake must
//! finish within [`HANDSHAKE_TIMEOUT`]; at most [`MAX_PENDING`] connections
//! may be mid-handshake (the oldest is dropped to make room, so a flood of
//! idle connections cannot lock a real client out); at most
//! [`MAX_CLIENTS`] established clients; frames are capped at
//! [`proto::MAX_FRAME`]; a malformed frame closes that connection only;
//! each client has a bounded outgoing queue, a client that lags behind the
//! event stream gets a fresh snapshot, and one that stops reading is
//! dropped after [`WRITE_TIMEOUT`]. The answer to a mutating request
//! waits until its audit record is on disk (at most [`AUDIT_WAIT`], then it
//! says the record is not yet durable). None of this can slow the supervisor:
//! it only ever `send`s on a broadcast channel.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::UnixListener;
use tokio::sync::{broadcast, mpsc};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use crate::daemon::router::Router;
use crate::proto::{self, ClientMsg, Hello, Request, Response, ServerMsg};

pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
pub const MAX_PENDING: usize = 256;
pub const MAX_CLIENTS: usize = 512;
/// Responses waiting to be written to one client.
const OUT_QUEUE: usize = 64;
pub use crate::daemon::audit::DURABLE_WAIT as AUDIT_WAIT;

/// Who is on the other end of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub pid: Option<i32>,
    /// `SSH_CONNECTION` of the peer process (set for `dial-stdio` and for
    /// `autonomos attach` run inside an ssh session).
    pub ssh: Option<String>,
}

/// With the pid: for the audit trail and the daemon's log
/// (`uid 0 pid 15738 local`).
impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "uid {}", self.uid)?;
        if let Some(pid) = self.pid {
            write!(f, " pid {pid}")?;
        }
        match &self.ssh {
            Some(s) => write!(f, " via ssh from {}", s.split(' ').next().unwrap_or(s)),
            None => write!(f, " local"),
        }
    }
}

/// The user name of `uid`, looked up once per uid for the daemon's life
/// (an NSS lookup may go over the network; requests must not wait on it).
fn cached_user_name(uid: u32) -> Option<String> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<HashMap<u32, Option<String>>>> = OnceLock::new();
    let names = NAMES.get_or_init(Default::default);
    if let Some(n) = names.lock().ok().and_then(|m| m.get(&uid).cloned()) {
        return n;
    }
    let n = crate::daemon::sys::user_name(uid);
    if let Ok(mut m) = names.lock() {
        m.insert(uid, n.clone());
    }
    n
}

impl Peer {
    /// Who acted, as operators read it: the user name (the uid when it has
    /// none) and where from: `root (local)`, `alice (ssh 10.0.0.5)`.
    pub fn who(&self) -> String {
        let name = cached_user_name(self.uid).unwrap_or_else(|| format!("uid {}", self.uid));
        match &self.ssh {
            Some(s) => format!("{name} (ssh {})", s.split(' ').next().unwrap_or(s)),
            None => format!("{name} (local)"),
        }
    }
}

fn ssh_connection_of(pid: i32) -> Option<String> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    env.split(|&b| b == 0)
        .find_map(|kv| kv.strip_prefix(b"SSH_CONNECTION="))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Binds the socket with mode 0600 from the first instant: the umask is
/// tightened around `bind`, so there is no window with a wider mode.
/// A leftover socket file (a dead daemon's) is replaced; the data-dir lock,
/// taken before this, guarantees no live daemon owns it.
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    match std::fs::symlink_metadata(path) {
        Ok(m) => {
            use std::os::unix::fs::FileTypeExt;
            if !m.file_type().is_socket() {
                return Err(io::Error::other(format!(
                    "{} exists and is not a socket; refusing to replace it",
                    path.display()
                )));
            }
            std::fs::remove_file(path)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
    let listener = UnixListener::bind(path);
    rustix::process::umask(old);
    listener
}

/// Shared connection bookkeeping.
#[derive(Default)]
struct Limits {
    pending: Mutex<VecDeque<(u64, CancellationToken)>>,
    clients: AtomicUsize,
    next_id: AtomicU64,
}

/// Serves the socket until `stop` is cancelled; removes the socket file then.
pub async fn serve(listener: UnixListener, path: PathBuf, sup: Router, stop: CancellationToken) {
    let limits = Arc::new(Limits::default());
    let me = rustix::process::geteuid().as_raw();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.cancelled() => break,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let cred = stream.peer_cred();
        let peer = match cred {
            Ok(c) => Peer {
                uid: c.uid(),
                pid: c.pid(),
                ssh: c.pid().and_then(ssh_connection_of),
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot read peer credentials; connection refused");
                continue;
            }
        };
        if peer.uid != me {
            tracing::warn!(peer = %peer, "connection refused: not the daemon's user");
            sup.audit(
                &peer.to_string(),
                "connection-refused",
                serde_json::json!({ "uid": peer.uid, "pid": peer.pid }),
                "refused: not the daemon's user",
            );
            let reason = format!(
                "permission denied: this daemon belongs to uid {me}, and you are uid {}",
                peer.uid
            );
            tokio::spawn(refuse(stream, reason));
            continue;
        }
        let id = limits.next_id.fetch_add(1, Ordering::Relaxed);
        let token = stop.child_token();
        {
            let Ok(mut pending) = limits.pending.lock() else {
                continue;
            };
            if pending.len() >= MAX_PENDING
                && let Some((_, oldest)) = pending.pop_front()
            {
                oldest.cancel();
            }
            pending.push_back((id, token.clone()));
        }
        let (sup, limits) = (sup.clone(), limits.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = connection(stream, peer, sup, id, limits.clone()) => {}
                _ = token.cancelled() => {}
            }
            if let Ok(mut p) = limits.pending.lock() {
                p.retain(|(i, _)| *i != id);
            }
        });
    }
    let _ = std::fs::remove_file(&path);
}

/// Serves one client over any byte stream (the Unix socket, or an
/// in-process pipe for tests), as `peer`.
pub async fn serve_stream<S>(stream: S, peer: Peer, sup: Router)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = Arc::new(Limits::default());
    connection(stream, peer, sup, 0, limits).await
}

async fn refuse(stream: tokio::net::UnixStream, reason: String) {
    let mut framed = Framed::new(stream, proto::codec());
    // Take the client's hello first, so it is reading when the refusal comes.
    let _ = tokio::time::timeout(Duration::from_secs(1), framed.next()).await;
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        send(&mut framed, &ServerMsg::Refused { reason }),
    )
    .await;
}

async fn send<S>(
    framed: &mut Framed<S, tokio_util::codec::LengthDelimitedCodec>,
    msg: &ServerMsg,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let bytes = serde_json::to_vec(msg).map_err(io::Error::other)?;
    framed.send(Bytes::from(bytes)).await
}

struct ClientSlot(Arc<Limits>);

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.0.clients.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn connection<S>(stream: S, peer: Peer, sup: Router, id: u64, limits: Arc<Limits>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut framed = Framed::new(stream, proto::codec());
    let Some(_slot) = handshake(&mut framed, &peer, id, &limits).await else {
        return;
    };
    let (sink, mut frames) = framed.split();
    let (out_tx, out_rx) = mpsc::channel::<ServerMsg>(OUT_QUEUE);
    let (sub_tx, sub_rx) = mpsc::channel::<()>(1);
    let mut writer = tokio::spawn(write_loop(sink, out_rx, sub_rx, sup.clone(), peer.clone()));
    loop {
        // A writer that gave up (the client stopped reading) ends the
        // connection, so the client sees EOF and can reconnect.
        let frame = tokio::select! {
            f = frames.next() => f,
            _ = &mut writer => return,
        };
        let Some(frame) = frame else { break };
        let frame = match frame {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "bad frame; closing the connection");
                break;
            }
        };
        let (id, request) = match serde_json::from_slice::<ClientMsg>(&frame) {
            Ok(ClientMsg::Request { id, request }) => (id, request),
            Ok(ClientMsg::Hello(_)) => {
                tracing::debug!(%peer, "second hello; closing the connection");
                break;
            }
            Err(e) => {
                tracing::debug!(%peer, error = %e, "malformed message; closing the connection");
                break;
            }
        };
        if request.mutates() {
            tracing::info!(target: "autonomos::audit", peer = %peer, uid = peer.uid, pid = peer.pid, ssh = peer.ssh.as_deref(), request = %request.describe(), "operator request");
        }
        if request == Request::Subscribe {
            let _ = sub_tx.try_send(());
        }
        let (sup, out, peer) = (sup.clone(), out_tx.clone(), peer.clone());
        tokio::spawn(async move {
            let result = answer(&sup, &peer, request).await;
            let _ = out.send(ServerMsg::Response { id, result }).await;
        });
    }
    drop(out_tx);
    writer.abort();
}

/// Reads the client's hello and answers it: refused (wrong first message,
/// protocol version, too many clients) or welcomed, holding a client slot.
async fn handshake<S>(
    framed: &mut Framed<S, tokio_util::codec::LengthDelimitedCodec>,
    peer: &Peer,
    id: u64,
    limits: &Arc<Limits>,
) -> Option<ClientSlot>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // Handshake.
    let first = tokio::time::timeout(HANDSHAKE_TIMEOUT, framed.next()).await;
    let hello = match first {
        Ok(Some(Ok(frame))) => match serde_json::from_slice::<ClientMsg>(&frame) {
            Ok(ClientMsg::Hello(h)) => h,
            Ok(_) => {
                let reason = "protocol error: the first message must be a hello".to_string();
                let _ = send(framed, &ServerMsg::Refused { reason }).await;
                return None;
            }
            Err(e) => {
                tracing::debug!(%peer, error = %e, "malformed hello; closing");
                return None;
            }
        },
        Ok(Some(Err(e))) => {
            tracing::debug!(%peer, error = %e, "bad frame during handshake; closing");
            return None;
        }
        Ok(None) => return None,
        Err(_) => {
            tracing::debug!(%peer, "handshake timed out; closing");
            return None;
        }
    };
    if let Ok(mut p) = limits.pending.lock() {
        p.retain(|(i, _)| *i != id);
    }
    if hello.proto_version != proto::PROTO_VERSION {
        let reason = format!(
            "protocol version mismatch: this daemon (Autonomos {}) speaks protocol {}, the client (Autonomos {}) speaks protocol {}; use the same version on both ends",
            proto::APP_VERSION,
            proto::PROTO_VERSION,
            hello.app_version,
            hello.proto_version
        );
        tracing::warn!(%peer, %reason, "client refused");
        let _ = send(framed, &ServerMsg::Refused { reason }).await;
        return None;
    }
    if limits.clients.fetch_add(1, Ordering::Relaxed) >= MAX_CLIENTS {
        limits.clients.fetch_sub(1, Ordering::Relaxed);
        let reason = format!("too many clients (the most is {MAX_CLIENTS}); try again later");
        let _ = send(framed, &ServerMsg::Refused { reason }).await;
        return None;
    }
    let slot = ClientSlot(limits.clone());
    let welcome = ServerMsg::Hello {
        hello: Hello::ours(),
        daemon_pid: std::process::id(),
        host: rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned(),
    };
    if send(framed, &welcome).await.is_err() {
        return None;
    }
    Some(slot)
}

/// Answers one request; one that changes something is recorded on the
/// audit trail, and the answer waits until that record is on disk.
async fn answer(
    sup: &Router,
    peer: &Peer,
    request: Request,
) -> Result<Response, proto::ErrorReply> {
    if request.audited_by_tasks() {
        // The task layer keeps its own (compact) audit record.
        return sup.request_as(request, peer.who()).await;
    }
    let mutates = request.mutates();
    let desc = request.describe();
    let args = if mutates {
        let mut v = serde_json::to_value(&request).unwrap_or_default();
        // What is typed into an agent is recorded by size (it may be a
        // secret), not by content.
        if let Some(text) = v.get_mut("text") {
            let n = text.as_str().map_or(0, str::len);
            *text = serde_json::json!(format!("({n} bytes)"));
        }
        v
    } else {
        serde_json::Value::Null
    };
    // Typing into a terminal: the hold belongs to this client process (one
    // console, or one `dial-stdio` per SSH console), not to the user.
    let who = match (&request, peer.pid) {
        (Request::Send { .. }, Some(pid)) => format!("{} pid {pid}", peer.who()),
        _ => peer.who(),
    };
    let mut result = sup.request_as(request, who).await;
    if mutates {
        let action = args["op"].as_str().unwrap_or("request").replace('_', "-");
        let outcome = match &result {
            Ok(Response::Done { message } | Response::Stopped { message, .. }) => {
                format!("ok: {message}")
            }
            Ok(_) => "ok".to_string(),
            Err(e) => format!("error: {e}"),
        };
        // The answer goes out only once its audit record is on disk
        // (it shares one sync with whatever else is queued): an
        // acknowledged action is on the trail even after a crash.
        if let Some(durable) = sup.audit_durable(&peer.to_string(), &action, args, &outcome) {
            let problem = match tokio::time::timeout(AUDIT_WAIT, durable).await {
                Ok(Ok(Ok(_seq))) => None,
                Ok(Ok(Err(e))) => Some(e),
                Ok(Err(_)) => Some("the audit writer stopped".to_string()),
                Err(_) => Some(format!(
                    "the audit record is not on disk after {} s; it is kept and retried",
                    AUDIT_WAIT.as_secs()
                )),
            };
            if let Some(p) = problem {
                tracing::error!(target: "autonomos::audit", peer = %peer, request = %desc, problem = %p, "audit record not durable");
                warn_not_durable(&mut result, &p);
            }
        }
        match &result {
            Ok(r) => {
                tracing::info!(target: "autonomos::audit", peer = %peer, request = %desc, result = ?r, "request done")
            }
            Err(e) => {
                tracing::info!(target: "autonomos::audit", peer = %peer, request = %desc, error = %e, "request refused")
            }
        }
    }
    result
}

/// Adds to an answer that its audit record is not yet on disk.
fn warn_not_durable(result: &mut Result<Response, proto::ErrorReply>, problem: &str) {
    let note = format!("\nwarning: {problem}");
    match result {
        Ok(Response::Done { message } | Response::Stopped { message, .. }) => {
            message.push_str(&note)
        }
        Err(e) => e.message.push_str(&note),
        Ok(_) => {}
    }
}

type Sink<S> =
    futures_util::stream::SplitSink<Framed<S, tokio_util::codec::LengthDelimitedCodec>, Bytes>;

async fn write_one<S>(sink: &mut Sink<S>, msg: &ServerMsg) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut bytes = serde_json::to_vec(msg).map_err(io::Error::other)?;
    if bytes.len() > proto::MAX_FRAME
        && let ServerMsg::Response { id, .. } = msg
    {
        // Too big for one frame: answer with an error instead of dropping the client.
        let refusal = ServerMsg::Response {
            id: *id,
            result: Err(proto::ErrorReply {
                kind: proto::ErrorKind::Invalid,
                message: format!(
                    "the answer is {} bytes, more than the {} byte frame limit; ask for less",
                    bytes.len(),
                    proto::MAX_FRAME
                ),
            }),
        };
        bytes = serde_json::to_vec(&refusal).map_err(io::Error::other)?;
    }
    match tokio::time::timeout(WRITE_TIMEOUT, sink.send(Bytes::from(bytes))).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "client stopped reading",
        )),
    }
}

async fn write_loop<S>(
    mut sink: Sink<S>,
    mut out: mpsc::Receiver<ServerMsg>,
    mut subscribe: mpsc::Receiver<()>,
    sup: Router,
    peer: Peer,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut events: Option<broadcast::Receiver<Arc<(u64, proto::ServerEvent)>>> = None;
    let mut last_seq = 0u64;
    loop {
        let msg = tokio::select! {
            biased;
            m = out.recv() => match m {
                Some(m) => m,
                None => break,
            },
            Some(()) = subscribe.recv() => {
                // Subscribe first, then snapshot: nothing falls in between.
                events = Some(sup.events().subscribe());
                match snapshot(&sup).await {
                    Some((seq, msg)) => { last_seq = seq; msg }
                    None => break,
                }
            }
            ev = recv_event(&mut events) => match ev {
                Ok(e) => {
                    let (seq, event) = &*e;
                    if *seq <= last_seq { continue; }
                    last_seq = *seq;
                    ServerMsg::Event { seq: *seq, event: event.clone() }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::info!(peer = %peer, skipped = n, "client lagged; sending a fresh snapshot");
                    events = Some(sup.events().subscribe());
                    match snapshot(&sup).await {
                        Some((seq, msg)) => { last_seq = seq; msg }
                        None => break,
                    }
                }
                Err(broadcast::error::RecvError::Closed) => { events = None; continue; }
            },
        };
        if let Err(e) = write_one(&mut sink, &msg).await {
            tracing::info!(peer = %peer, error = %e, "dropping client");
            break;
        }
    }
}

async fn recv_event(
    rx: &mut Option<broadcast::Receiver<Arc<(u64, proto::ServerEvent)>>>,
) -> Result<Arc<(u64, proto::ServerEvent)>, broadcast::error::RecvError> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn snapshot(sup: &Router) -> Option<(u64, ServerMsg)> {
    let (seq, status) = sup.snapshot().await.ok()?;
    Some((
        seq,
        ServerMsg::Snapshot {
            seq,
            status: Box::new(status),
        },
    ))
}
