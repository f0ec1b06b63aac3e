//! The typed client used by the CLI and the console: connect (Unix socket,
//! ssh + `dial-stdio`, or an in-process pipe), handshake, send requests,
//! receive snapshots and events.

pub mod verbs;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use crate::proto::{
    self, ClientMsg, ErrorReply, FleetStatus, Hello, Request, Response, ServerEvent, ServerMsg,
};

/// Events kept while a request waits for its answer; older ones are dropped
/// (a subscriber that falls this far behind should resync anyway).
const MAX_BUFFERED: usize = 10_000;

/// Any byte stream a client can talk over.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "no Autonomos daemon is running for data dir {data_dir} (nothing listens on {socket})\n  start one with `autonomos up` (background) or `autonomos daemon` (foreground)"
    )]
    NoDaemon { data_dir: String, socket: String },
    #[error("the daemon refused the connection: {0}")]
    Refused(String),
    #[error("{0}")]
    Request(#[from] ErrorReply),
    #[error("connection to the daemon lost: {0}")]
    Io(#[from] std::io::Error),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("ssh: {0}")]
    Ssh(String),
}

/// `ssh://[user@]host[:port]` plus how to run Autonomos over there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// The remote `autonomos` executable (default: `autonomos` on its PATH).
    pub remote_bin: String,
    /// `--data-dir` for the remote side, if not its default.
    pub remote_data_dir: Option<String>,
    /// `--socket` for the remote side: the daemon's socket path, when the
    /// data dir cannot lead to it.
    pub remote_socket: Option<String>,
    /// An ssh config file (`ssh -F`).
    pub ssh_config: Option<PathBuf>,
}

impl SshTarget {
    /// Parses `ssh://[user@]host[:port]`.
    pub fn parse(url: &str) -> Result<SshTarget, String> {
        let rest = url
            .strip_prefix("ssh://")
            .ok_or_else(|| format!("`{url}`: a remote host is written ssh://[user@]host[:port]"))?;
        let rest = rest.trim_end_matches('/');
        let (user, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) if !u.is_empty() => (Some(u.to_string()), h),
            Some(_) => return Err(format!("`{url}`: empty user name")),
            None => (None, rest),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') || h.starts_with('[') => {
                let port = p
                    .parse::<u16>()
                    .map_err(|_| format!("`{url}`: `{p}` is not a port number"))?;
                (h.trim_matches(['[', ']']).to_string(), Some(port))
            }
            _ => (hostport.to_string(), None),
        };
        if host.is_empty() || host.starts_with('-') {
            return Err(format!("`{url}`: missing or invalid host name"));
        }
        Ok(SshTarget {
            user,
            host,
            port,
            remote_bin: "autonomos".into(),
            remote_data_dir: None,
            remote_socket: None,
            ssh_config: None,
        })
    }

    /// The ssh argv (never through a local shell).
    pub fn ssh_argv(&self, remote: &[&str]) -> Vec<String> {
        let mut argv = vec!["ssh".to_string()];
        if let Some(f) = &self.ssh_config {
            argv.push("-F".into());
            argv.push(f.display().to_string());
        }
        if let Some(p) = self.port {
            argv.push("-p".into());
            argv.push(p.to_string());
        }
        argv.push("-e".into());
        argv.push("none".into());
        argv.push(match &self.user {
            Some(u) => format!("{u}@{}", self.host),
            None => self.host.clone(),
        });
        argv.push("--".into());
        // The remote side does run a shell on this command line: quote it.
        let mut cmd = vec![shell_quote(&self.remote_bin)];
        if let Some(d) = &self.remote_data_dir {
            cmd.push("--data-dir".into());
            cmd.push(shell_quote(d));
        }
        if let Some(sock) = &self.remote_socket {
            cmd.push("--socket".into());
            cmd.push(shell_quote(sock));
        }
        cmd.extend(remote.iter().map(|s| shell_quote(s)));
        argv.push(cmd.join(" "));
        argv
    }
}

type Said = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// Collects the last lines a child writes to stderr; the task ends at EOF.
fn keep_stderr(stderr: tokio::process::ChildStderr) -> (Said, tokio::task::JoinHandle<()>) {
    use tokio::io::AsyncBufReadExt;
    let said: Said = Default::default();
    let out = said.clone();
    let reader = tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            if let Ok(mut v) = out.lock() {
                if v.len() == 20 {
                    v.remove(0);
                }
                v.push(crate::core::sanitize::sanitize_line(l.as_bytes()));
            }
        }
    });
    (said, reader)
}

/// Why an ssh connection ended before the handshake, with what to do.
fn ssh_failure(target: &SshTarget, said: &str) -> String {
    let host = &target.host;
    let said = said.trim();
    // bash and zsh say "command not found", dash and busybox "X: not found".
    let hint = if said.contains("command not found")
        || said.contains(&format!("{}: not found", target.remote_bin))
        || (said.contains("No such file") && said.contains(&target.remote_bin))
    {
        format!(
            "`{}` is not on {host}'s PATH for a non-interactive ssh command: \
             pass --remote-bin /path/to/autonomos (or AUTONOMOS_REMOTE_BIN), or install it there",
            target.remote_bin
        )
    } else if said.contains("no Autonomos daemon") || said.contains("no daemon") {
        "no daemon answers for that data dir on the remote host: start one there \
         (`autonomos up`), or name its data dir with --remote-data-dir, or its socket \
         with --remote-socket"
            .to_string()
    } else {
        "is Autonomos installed there and a daemon running?".to_string()
    };
    if said.is_empty() {
        format!("the connection to {host} closed before the handshake: {hint}")
    } else {
        format!(
            "the connection to {host} closed before the handshake:\n  {}\n{hint}",
            said.replace('\n', "\n  ")
        )
    }
}

/// The daemon's socket for `data_dir`, found as [`Client::connect_local`]
/// says (also what `dial-stdio` relays to).
pub async fn open_local(
    runtime: &Path,
    data_dir: &Path,
) -> Result<tokio::net::UnixStream, ClientError> {
    let candidates = crate::paths::socket_candidates(runtime, data_dir);
    let me = rustix::process::geteuid().as_raw();
    for socket in &candidates {
        match tokio::net::UnixStream::connect(socket).await {
            // Only a daemon of our own user (or root) is spoken to.
            Ok(s) if s.peer_cred().is_ok_and(|c| c.uid() == me || c.uid() == 0) => return Ok(s),
            Ok(_) => {
                return Err(ClientError::Refused(format!(
                    "{} belongs to another user; not talking to it",
                    socket.display()
                )));
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) => {}
            Err(e) => return Err(ClientError::Io(e)),
        }
    }
    let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    Err(ClientError::NoDaemon {
        data_dir: data_dir.display().to_string(),
        socket: tried.join(" or "),
    })
}

/// Quotes a word for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// What the daemon said about itself in the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonInfo {
    pub pid: u32,
    pub host: String,
    pub version: String,
}

/// A connected, handshaken client.
pub struct Client {
    framed: Framed<Box<dyn Io>, LengthDelimitedCodec>,
    next_id: u64,
    buffered: VecDeque<ServerMsg>,
    pub daemon: DaemonInfo,
    /// The ssh process, for remote connections (killed on drop).
    _ssh: Option<tokio::process::Child>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("daemon", &self.daemon)
            .finish()
    }
}

impl Client {
    /// Connects to the daemon of `data_dir`: through its socket in
    /// `runtime`, else the one the data dir's pointer names (a daemon
    /// started with another runtime dir).
    pub async fn connect_local(runtime: &Path, data_dir: &Path) -> Result<Client, ClientError> {
        let stream = open_local(runtime, data_dir).await?;
        Self::handshake(Box::new(stream), None).await
    }

    /// Connects to a socket path directly.
    pub async fn connect_socket(socket: &Path) -> Result<Client, ClientError> {
        let stream = tokio::net::UnixStream::connect(socket).await?;
        Self::handshake(Box::new(stream), None).await
    }

    /// Runs `ssh … autonomos dial-stdio` and speaks the protocol over its pipes.
    /// What ssh or the remote side says on stderr is kept (never written
    /// over a console) and explains a connection that fails.
    pub async fn connect_ssh(target: &SshTarget) -> Result<Client, ClientError> {
        let argv = target.ssh_argv(&["dial-stdio"]);
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| ClientError::Ssh(format!("cannot run ssh: {e}")))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(ClientError::Ssh("ssh pipes missing".into()));
        };
        let (said, reader) = keep_stderr(stderr);
        let io = tokio::io::join(stdout, stdin);
        match Self::handshake(Box::new(io), Some(child)).await {
            Err(ClientError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                // ssh is gone or going: its stderr ends; read it all.
                let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
                let said = said.lock().map(|v| v.join("\n")).unwrap_or_default();
                Err(ClientError::Ssh(ssh_failure(target, &said)))
            }
            other => other,
        }
    }

    /// Handshakes over any stream (the in-process transport of tests).
    pub async fn over(io: Box<dyn Io>) -> Result<Client, ClientError> {
        Self::handshake(io, None).await
    }

    async fn handshake(
        io: Box<dyn Io>,
        ssh: Option<tokio::process::Child>,
    ) -> Result<Client, ClientError> {
        let mut framed = Framed::new(io, proto::codec());
        let hello = serde_json::to_vec(&ClientMsg::Hello(Hello::ours()))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        // A refusing daemon may close before taking our hello: its refusal
        // is still there to read.
        let sent = framed.send(Bytes::from(hello)).await;
        let first = tokio::time::timeout(Duration::from_secs(30), framed.next())
            .await
            .map_err(|_| ClientError::Protocol("no answer to the handshake within 30 s".into()))?;
        let frame = match first {
            Some(Ok(f)) => f,
            Some(Err(e)) => return Err(ClientError::Io(sent.err().unwrap_or(e))),
            None => {
                sent?;
                return Err(ClientError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the daemon closed the connection",
                )));
            }
        };
        match serde_json::from_slice::<ServerMsg>(&frame) {
            Ok(ServerMsg::Hello {
                hello,
                daemon_pid,
                host,
            }) => Ok(Client {
                framed,
                next_id: 1,
                buffered: VecDeque::new(),
                daemon: DaemonInfo {
                    pid: daemon_pid,
                    host,
                    version: hello.app_version,
                },
                _ssh: ssh,
            }),
            Ok(ServerMsg::Refused { reason }) => Err(ClientError::Refused(reason)),
            Ok(other) => Err(ClientError::Protocol(format!(
                "unexpected first message {other:?}"
            ))),
            Err(e) => Err(ClientError::Protocol(format!("unreadable handshake: {e}"))),
        }
    }

    async fn read(&mut self) -> Result<ServerMsg, ClientError> {
        match self.framed.next().await {
            Some(frame) => {
                let frame = frame?;
                serde_json::from_slice(&frame).map_err(|e| ClientError::Protocol(e.to_string()))
            }
            None => Err(ClientError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the daemon closed the connection",
            ))),
        }
    }

    /// Sends a request and waits for its answer; events that arrive
    /// meanwhile are kept for [`Client::next_message`].
    pub async fn request(&mut self, request: Request) -> Result<Response, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let msg = serde_json::to_vec(&ClientMsg::Request { id, request })
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.framed.send(Bytes::from(msg)).await?;
        loop {
            match self.read().await? {
                ServerMsg::Response { id: rid, result } if rid == id => return Ok(result?),
                ServerMsg::Refused { reason } => return Err(ClientError::Refused(reason)),
                other => {
                    if self.buffered.len() == MAX_BUFFERED {
                        self.buffered.pop_front();
                    }
                    self.buffered.push_back(other);
                }
            }
        }
    }

    /// The next snapshot, event or stray response.
    pub async fn next_message(&mut self) -> Result<ServerMsg, ClientError> {
        match self.buffered.pop_front() {
            Some(m) => Ok(m),
            None => self.read().await,
        }
    }

    pub async fn status(&mut self) -> Result<FleetStatus, ClientError> {
        match self.request(Request::Status).await? {
            Response::Status { status } => Ok(*status),
            other => Err(ClientError::Protocol(format!(
                "unexpected answer {other:?}"
            ))),
        }
    }

    /// Subscribes; returns the snapshot. Events follow via [`Client::next_event`].
    pub async fn subscribe(&mut self) -> Result<(u64, FleetStatus), ClientError> {
        self.request(Request::Subscribe).await?;
        loop {
            if let ServerMsg::Snapshot { seq, status } = self.next_message().await? {
                return Ok((seq, *status));
            }
        }
    }

    /// The next event or fresh snapshot of a subscription.
    pub async fn next_event(&mut self) -> Result<Update, ClientError> {
        loop {
            match self.next_message().await? {
                ServerMsg::Event { seq, event } => return Ok(Update::Event(seq, event)),
                ServerMsg::Snapshot { seq, status } => return Ok(Update::Snapshot(seq, status)),
                _ => continue,
            }
        }
    }
}

/// What a subscription delivers.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    Event(u64, ServerEvent),
    /// A fresh snapshot (after lagging behind, or a reload).
    Snapshot(u64, Box<FleetStatus>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ssh_urls() {
        let t = SshTarget::parse("ssh://ops@box.example:2222").expect("parses");
        assert_eq!(
            (t.user.as_deref(), t.host.as_str(), t.port),
            (Some("ops"), "box.example", Some(2222))
        );
        let t = SshTarget::parse("ssh://box").expect("parses");
        assert_eq!((t.user, t.port), (None, None));
        assert!(SshTarget::parse("box").is_err());
        assert!(SshTarget::parse("ssh://-oProxyCommand=x").is_err());
        assert!(SshTarget::parse("ssh://a@b:notaport").is_err());
    }

    #[test]
    fn the_remote_command_is_quoted_for_the_remote_shell() {
        let mut t = SshTarget::parse("ssh://u@h:22").expect("parses");
        t.remote_bin = "/opt/my apps/autonomos".into();
        let argv = t.ssh_argv(&["dial-stdio"]);
        assert_eq!(
            argv.last().map(String::as_str),
            Some("'/opt/my apps/autonomos' dial-stdio")
        );
        assert!(argv.contains(&"u@h".to_string()));
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}

/// What a [`Session`] delivers to its owner.
#[derive(Debug)]
pub enum Incoming {
    /// The answer to a request sent with [`Session::send`], with the request.
    Answer(Request, Result<Response, ErrorReply>),
    /// A snapshot or event of the subscription.
    Update(Update),
    /// The connection ended; the session is over.
    Closed(String),
}

/// A subscribed connection driven by its own task, for interactive clients
/// (the console): requests go in through a channel, answers and events come
/// out of another, so nothing waits on anything else.
#[derive(Debug)]
pub struct Session {
    tx: tokio::sync::mpsc::Sender<Request>,
    pub rx: tokio::sync::mpsc::Receiver<Incoming>,
    pub daemon: DaemonInfo,
}

/// Requests queued by an interactive client before it must wait.
const SESSION_QUEUE: usize = 64;
/// Answers and events queued for the client; a full queue ends the session
/// (the console reconnects and starts from a fresh snapshot).
const SESSION_OUT: usize = 4096;

impl Session {
    /// Subscribes and hands the connection to a task.
    pub async fn start(mut client: Client) -> Result<Session, ClientError> {
        let (seq, status) = client.subscribe().await?;
        let daemon = client.daemon.clone();
        let (req_tx, mut req_rx) = tokio::sync::mpsc::channel::<Request>(SESSION_QUEUE);
        let (out_tx, out_rx) = tokio::sync::mpsc::channel::<Incoming>(SESSION_OUT);
        let _ = out_tx.try_send(Incoming::Update(Update::Snapshot(seq, Box::new(status))));
        tokio::spawn(async move {
            let mut pending: std::collections::HashMap<u64, Request> = Default::default();
            let mut buffered: Vec<ServerMsg> = client.buffered.drain(..).collect();
            let deliver =
                |msg: ServerMsg, pending: &mut std::collections::HashMap<u64, Request>| match msg {
                    ServerMsg::Response { id, result } => {
                        pending.remove(&id).map(|req| Incoming::Answer(req, result))
                    }
                    ServerMsg::Event { seq, event } => {
                        Some(Incoming::Update(Update::Event(seq, event)))
                    }
                    ServerMsg::Snapshot { seq, status } => {
                        Some(Incoming::Update(Update::Snapshot(seq, status)))
                    }
                    ServerMsg::Refused { reason } => Some(Incoming::Closed(reason)),
                    ServerMsg::Hello { .. } => None,
                };
            for m in buffered.drain(..) {
                if let Some(i) = deliver(m, &mut pending)
                    && out_tx.try_send(i).is_err()
                {
                    return;
                }
            }
            loop {
                tokio::select! {
                    req = req_rx.recv() => {
                        let Some(req) = req else { return };
                        let id = client.next_id;
                        client.next_id += 1;
                        let Ok(bytes) = serde_json::to_vec(&ClientMsg::Request { id, request: req.clone() }) else { continue };
                        pending.insert(id, req);
                        if let Err(e) = client.framed.send(Bytes::from(bytes)).await {
                            let _ = out_tx.send(Incoming::Closed(e.to_string())).await;
                            return;
                        }
                    }
                    msg = client.read() => match msg {
                        Ok(m) => {
                            if let Some(i) = deliver(m, &mut pending)
                                && out_tx.try_send(i).is_err()
                            {
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = out_tx.send(Incoming::Closed(e.to_string())).await;
                            return;
                        }
                    }
                }
            }
        });
        Ok(Session {
            tx: req_tx,
            rx: out_rx,
            daemon,
        })
    }

    /// Queues a request; false if the session is over or its queue is full.
    pub fn send(&self, req: Request) -> bool {
        self.tx.try_send(req).is_ok()
    }
}
