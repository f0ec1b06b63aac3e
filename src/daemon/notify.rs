//! Notifiers: `exec` (argv, alert JSON on stdin, never a shell) and
//! `webhook` (HTTP POST of the alert JSON).
//!
//! The supervisor hands jobs over with `try_send` and never waits: delivery
//! runs on its own tasks with a timeout. Each notifier is rate limited
//! (`max_per_minute`) and deduplicated (the same alert in the same state is
//! sent once per [`DEDUP`]); what it drops and every failure are counted and
//! shown by `autonomos alerts`, the console and `/metrics`.

use crate::clock::now_ms;
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::config::{NotifierKind, NotifierSpec, WebhookUrl};
use crate::core::alert::Severity;
use crate::proto::NotifierStatus;

/// The same alert in the same state is not sent twice within this.
pub const DEDUP: Duration = Duration::from_secs(600);
const QUEUE: usize = 256;
/// Bytes of a failing command's stderr kept in its error.
const STDERR_KEPT: usize = 400;

/// One notification.
#[derive(Debug, Clone)]
pub struct Job {
    pub payload: String,
    pub id: String,
    pub state: &'static str,
    pub severity: Severity,
}

enum Cmd {
    Job(Job),
    Config(Vec<NotifierSpec>),
}

/// Handle to the dispatcher task.
#[derive(Clone)]
pub struct Notifiers {
    tx: mpsc::Sender<Cmd>,
    status: Arc<Mutex<Vec<NotifierStatus>>>,
}

fn kind_name(k: &NotifierKind) -> &'static str {
    match k {
        NotifierKind::Exec { .. } => "exec",
        NotifierKind::Webhook { .. } => "webhook",
    }
}

fn fresh_status(specs: &[NotifierSpec], old: &[NotifierStatus]) -> Vec<NotifierStatus> {
    specs
        .iter()
        .map(|s| {
            old.iter()
                .find(|o| o.name == s.name)
                .cloned()
                .unwrap_or_else(|| NotifierStatus {
                    name: s.name.clone(),
                    kind: kind_name(&s.kind).into(),
                    ..Default::default()
                })
        })
        .collect()
}

impl Notifiers {
    /// Starts the dispatcher (inside a tokio runtime).
    pub fn start(specs: &[NotifierSpec]) -> Notifiers {
        let (tx, rx) = mpsc::channel(QUEUE);
        let status = Arc::new(Mutex::new(fresh_status(specs, &[])));
        tokio::spawn(dispatch(rx, specs.to_vec(), status.clone()));
        Notifiers { tx, status }
    }

    /// Queues a notification; never waits. A full queue drops it (counted).
    pub fn send(&self, job: Job) {
        if self.tx.try_send(Cmd::Job(job)).is_err()
            && let Ok(mut st) = self.status.lock()
        {
            for s in st.iter_mut() {
                s.dropped += 1;
            }
        }
    }

    pub fn reconfigure(&self, specs: &[NotifierSpec]) {
        if let Ok(mut st) = self.status.lock() {
            *st = fresh_status(specs, &st);
        }
        let _ = self.tx.try_send(Cmd::Config(specs.to_vec()));
    }

    pub fn status(&self) -> Vec<NotifierStatus> {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

struct Limiter {
    sent: VecDeque<Instant>,
    seen: HashMap<(String, &'static str), Instant>,
}

async fn dispatch(
    mut rx: mpsc::Receiver<Cmd>,
    mut specs: Vec<NotifierSpec>,
    status: Arc<Mutex<Vec<NotifierStatus>>>,
) {
    let mut limits: HashMap<String, Limiter> = HashMap::new();
    while let Some(cmd) = rx.recv().await {
        let job = match cmd {
            Cmd::Config(s) => {
                specs = s;
                limits.retain(|k, _| specs.iter().any(|s| &s.name == k));
                continue;
            }
            Cmd::Job(j) => j,
        };
        let now = Instant::now();
        for spec in &specs {
            if job.severity > spec.min_severity {
                continue;
            }
            let lim = limits.entry(spec.name.clone()).or_insert_with(|| Limiter {
                sent: VecDeque::new(),
                seen: HashMap::new(),
            });
            lim.seen.retain(|_, t| now.duration_since(*t) < DEDUP);
            let key = (job.id.clone(), job.state);
            if lim.seen.contains_key(&key) {
                continue;
            }
            while lim
                .sent
                .front()
                .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
            {
                lim.sent.pop_front();
            }
            if lim.sent.len() >= spec.max_per_minute as usize {
                tracing::warn!(notifier = %spec.name, alert.id = %job.id, "notification dropped by the rate limit");
                bump(&status, &spec.name, |s| s.dropped += 1);
                continue;
            }
            lim.sent.push_back(now);
            lim.seen.insert(key, now);
            let (spec, job, status) = (spec.clone(), job.clone(), status.clone());
            tokio::spawn(async move {
                let result = deliver(&spec, &job.payload, &job).await;
                match result {
                    Ok(()) => {
                        tracing::info!(notifier = %spec.name, alert.id = %job.id, state = job.state, "notification sent");
                        bump(&status, &spec.name, |s| s.sent += 1);
                    }
                    Err(e) => {
                        tracing::error!(notifier = %spec.name, alert.id = %job.id, error = %e, "notification failed");
                        bump(&status, &spec.name, |s| {
                            s.failed += 1;
                            s.last_error = Some(e.clone());
                            s.last_error_at = Some(now_ms());
                        });
                    }
                }
            });
        }
    }
}

fn bump(status: &Mutex<Vec<NotifierStatus>>, name: &str, f: impl FnOnce(&mut NotifierStatus)) {
    if let Ok(mut st) = status.lock()
        && let Some(s) = st.iter_mut().find(|s| s.name == name)
    {
        f(s);
    }
}

/// Sends one notification with the notifier's timeout.
pub async fn deliver(spec: &NotifierSpec, payload: &str, job: &Job) -> Result<(), String> {
    let work = async {
        match &spec.kind {
            NotifierKind::Exec { command } => exec(command, payload, job).await,
            NotifierKind::Webhook { url, ca_file } => post(url, ca_file.as_deref(), payload).await,
        }
    };
    match tokio::time::timeout(spec.timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "timed out after {}",
            crate::config::format_duration(spec.timeout)
        )),
    }
}

async fn exec(argv: &[String], payload: &str, job: &Job) -> Result<(), String> {
    let Some((program, args)) = argv.split_first() else {
        return Err("empty command".into());
    };
    let (mut child, _claim) = spawn_registered(program, args, job)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its stdin is fine.
        let _ = stdin.write_all(payload.as_bytes()).await;
        let _ = stdin.write_all(b"\n").await;
    }
    // stderr is read while waiting (a chatty command never blocks on a
    // full pipe); a background child that keeps it open cannot hold a
    // notification hostage: only 4 KiB are kept, and the read stops
    // shortly after the command exits.
    let mut stderr = child.stderr.take();
    let mut err_text = Vec::new();
    let read = async {
        if let Some(e) = stderr.as_mut() {
            let mut chunk = [0u8; 4096];
            loop {
                match e.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let room = 4096usize.saturating_sub(err_text.len());
                        err_text.extend_from_slice(&chunk[..n.min(room)]);
                    }
                }
            }
        }
    };
    tokio::pin!(read);
    // A finished future must not be polled again: remember which one ended.
    let (status, read_done) = tokio::select! {
        st = child.wait() => (st.map_err(|e| e.to_string())?, false),
        () = &mut read => (child.wait().await.map_err(|e| e.to_string())?, true),
    };
    if !read_done {
        let _ = tokio::time::timeout(std::time::Duration::from_millis(200), &mut read).await;
    }
    if status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&err_text);
    let text = text.trim();
    let tail: String = text
        .chars()
        .rev()
        .take(STDERR_KEPT)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    Err(if tail.is_empty() {
        format!("{program} failed: {status}")
    } else {
        format!("{program} failed: {status}: {tail}")
    })
}

/// Spawns the notifier command claimed from the daemon's orphan reaper
/// while it runs (see [`crate::daemon::process::spawn_claimed`]).
fn spawn_registered(
    program: &str,
    args: &[String],
    job: &Job,
) -> Result<(tokio::process::Child, crate::daemon::process::Claimed), String> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env("AUTONOMOS_ALERT_ID", &job.id)
        .env("AUTONOMOS_ALERT_STATE", job.state)
        .env("AUTONOMOS_ALERT_SEVERITY", job.severity.name())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // The timeout drops the future: the process is killed with it.
        .kill_on_drop(true);
    crate::daemon::process::spawn_claimed(&mut cmd)
        .map_err(|e| format!("cannot run {program}: {e}"))
}

/// POSTs the payload (no redirects): 2xx is success. https goes over
/// rustls, the server's certificate checked against the URL's host and the
/// public roots plus `ca_file`.
async fn post(url: &WebhookUrl, ca_file: Option<&Path>, payload: &str) -> Result<(), String> {
    // Our ClientConfig always: without one reqwest would look for a
    // process-wide crypto provider, and there is none (ring is ours).
    // Straight to the URL, as before reqwest: a proxy in the daemon's
    // environment is not used for webhooks.
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(format!("autonomos/{}", crate::proto::APP_VERSION))
        .tls_backend_preconfigured(tls_config(ca_file)?)
        .build()
        .map_err(|e| format!("{url}: {}", chain(&e)))?;
    let answer = client
        .post(url.to_string())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(payload.to_string())
        .send()
        .await
        .map_err(|e| {
            let why = chain(&e);
            let lower = why.to_ascii_lowercase();
            let tls = url.tls
                && ["certificate", "handshake", "tls", "alert"]
                    .iter()
                    .any(|w| lower.contains(w));
            if tls {
                format!("{url}: TLS: {why}")
            } else if e.is_connect() {
                format!("cannot connect to {url}: {why}")
            } else {
                format!("{url}: {why}")
            }
        })?;
    let code = answer.status();
    if code.is_success() {
        Ok(())
    } else {
        Err(format!("{url} answered HTTP {}", code.as_u16()))
    }
}

/// An error with its causes, innermost last.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// The client TLS settings: the public roots (webpki-roots) plus the
/// certificates of `ca_file`.
pub(crate) fn tls_config(
    ca_file: Option<&Path>,
) -> Result<tokio_rustls::rustls::ClientConfig, String> {
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        for cert in crate::config::pem_certificates(path)
            .map_err(|e| format!("ca_file {}: {e}", path.display()))?
        {
            roots
                .add(cert)
                .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(config)
}
