//! The daemon: the tokio runtime around the supervisor actor, with the
//! process runtime, output handling, collector and state database.

pub mod audit;
pub mod backup;
pub(crate) mod bounded;
pub mod collector;
pub mod damage;
pub mod doctor;
pub mod gateway;
pub mod health;
pub mod launch;
pub mod lock;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod observe;
pub mod output;
pub mod own_children;
pub mod probe;
pub mod process;
pub mod procfs;
pub mod recovery;
pub mod restore;
pub mod rotate;
pub mod router;
pub mod server;
pub mod store;
pub mod strays;
pub mod supervisor;
pub(crate) mod sys;
pub mod tasks;
pub mod tty;
pub mod workspace;

use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::Config;
use crate::proto::Request;
use router::Router;
use supervisor::Layout;

/// What `autonomos daemon` needs.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub config: Config,
    pub data_dir: PathBuf,
    pub sample_every: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    RuntimeDir(#[from] crate::paths::RuntimeDirError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DaemonError {
    let what = what.into();
    move |source| DaemonError::Io { what, source }
}

/// Creates the data dir (0700) and its `logs/` and `contexts/` subdirectories.
pub fn prepare_data_dir(dir: &std::path::Path) -> Result<(), DaemonError> {
    for d in [
        dir.to_path_buf(),
        dir.join("logs"),
        dir.join(supervisor::CONTEXTS),
    ] {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&d)
            .map_err(io(format!("cannot create {}", d.display())))?;
    }
    Ok(())
}

/// A running daemon: the lock, the request router, the supervisor task, the socket.
pub struct Daemon {
    pub router: Router,
    pub join: tokio::task::JoinHandle<()>,
    /// The control socket's path.
    pub socket: PathBuf,
    data_dir: PathBuf,
    tasks: tasks::Tasks,
    /// Where `/metrics` is served, when it is.
    pub metrics_addr: Option<std::net::SocketAddr>,
    audit: audit::Audit,
    stop_server: tokio_util::sync::CancellationToken,
    _lock: lock::DataDirLock,
}

/// The daemon process: a child subreaper whose descriptors do not leak
/// into agents, allowed as many descriptors as the hard limit.
fn prepare_process() -> Result<(), DaemonError> {
    process::prepare_daemon().map_err(io("cannot become a child subreaper"))?;
    raise_fd_limit();
    Ok(())
}

/// Sizes the descriptor table for `replicas` (each holds a pidfd, two
/// pipes, the collector's `/proc` handles and its agent's log file) before
/// the daemon starts its threads. Growing the table of a process whose
/// threads share it waits for an RCU grace period (`synchronize_rcu`):
/// 10-15 ms on a small VM, three times over on a start of 500 replicas,
/// with the actor stopped in the middle of a spawn. Grown here, with one
/// thread, it costs nothing; the table never shrinks.
pub fn reserve_fds(replicas: usize) {
    raise_fd_limit();
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    let want = (replicas.saturating_mul(8) + 256).min(65_536) as u64;
    let top = want.min(limit.saturating_sub(1)) as i32;
    if let Ok(f) = std::fs::File::open("/dev/null") {
        // A descriptor at `top` makes the table that large; closed at once.
        drop(rustix::io::fcntl_dupfd_cloexec(&f, top));
    }
}

/// Lifts the soft open-file limit to the hard one: each replica holds two
/// pipes and a pidfd, and every client a socket.
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current < lim.maximum {
        lim.current = lim.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, lim) {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
        }
    }
}

impl Daemon {
    /// Locks the data dir, opens the state, and starts supervising.
    pub fn start(opts: DaemonOptions) -> Result<Daemon, DaemonError> {
        let runtime = crate::paths::runtime_dir();
        Self::start_with_runtime_dir(opts, &runtime)
    }

    /// Like [`Daemon::start`] with an explicit runtime dir (for the socket).
    pub fn start_with_runtime_dir(
        opts: DaemonOptions,
        runtime: &std::path::Path,
    ) -> Result<Daemon, DaemonError> {
        prepare_data_dir(&opts.data_dir)?;
        let lock = lock::acquire(&opts.data_dir)?;
        let layout = Layout::new(opts.data_dir.clone());
        // Made on the other core while the state, audit trail and
        // supervisor are opened here.
        let contexts = supervisor::EarlyContexts::begin(&layout, &opts.config);
        crate::paths::ensure_runtime_dir(runtime)?;
        prepare_process()?;
        let strays = strays::Search::begin(
            [supervisor::CONTEXTS, supervisor::LEGACY_CONTEXTS].map(|d| opts.data_dir.join(d)),
        );
        let socket = crate::paths::socket_path(runtime, &opts.data_dir);
        let listener =
            server::bind(&socket).map_err(io(format!("cannot listen on {}", socket.display())))?;
        crate::paths::write_socket_pointer(&opts.data_dir, &socket).map_err(io(format!(
            "cannot write {}",
            crate::paths::socket_pointer(&opts.data_dir).display()
        )))?;
        let health = health::Health::default();
        let (store, loaded) = store::Store::start(&layout.state_db(), health.clone())?;
        let (audit, _torn) =
            audit::Audit::open(&opts.data_dir, health.clone()).map_err(io(format!(
                "cannot open the audit trail in {}",
                opts.data_dir.join("audit").display()
            )))?;
        audit.record(
            "autonomos",
            "daemon-start",
            serde_json::json!({ "pid": std::process::id(), "version": crate::proto::APP_VERSION }),
            "ok",
        );
        let (published, metrics_addr) = serve_metrics(opts.config.metrics.listen)?;
        let settings =
            std::sync::Arc::new(recovery::Settings::new(opts.data_dir.clone(), &opts.config));
        let (recoveries, jobs) = tokio::sync::mpsc::unbounded_channel();
        let state_db = layout.state_db();
        let gateway = gateway::bind(&opts.config.gateway, opts.config.tasks.max_input)
            .map_err(|e| io("cannot start the A2A gateway")(std::io::Error::other(e)))?;
        let tasks = tasks::Tasks::start(&state_db, &opts.config)
            .map_err(|e| io("cannot start the task engine")(std::io::Error::other(e)))?;
        strays.finish();
        let (supervisor, join) = supervisor::start(
            opts.config,
            layout,
            store,
            loaded,
            opts.sample_every,
            supervisor::Services {
                published,
                audit: Some(audit.clone()),
                backups: Some(supervisor::BackupWatch {
                    busy: settings.busy.clone(),
                    meter: settings.meter.clone(),
                }),
                recoveries: Some(recoveries),
                health,
                tasks: Some(tasks.clone()),
                contexts,
            },
        )
        .map_err(io("cannot open agent log files"))?;
        {
            // Failed tasks join their agent's incident timelines.
            let sup = supervisor.clone();
            let waker = supervisor.clone();
            tasks.send(tasks::Msg::OnStarved(Box::new(move |agent| {
                waker.wake(agent)
            })));
            tasks.send(tasks::Msg::OnFailure(Box::new(move |agent, text| {
                sup.note_task_failed(agent, text)
            })));
        }
        tokio::spawn(recovery::schedule(supervisor.clone(), settings.clone()));
        tokio::spawn(recovery::automatic(
            supervisor.clone(),
            settings.clone(),
            jobs,
        ));
        let router = Router::new(supervisor, Some(settings), Some(audit.clone()), state_db)
            .with_tasks(tasks.clone());
        if let Some(g) = gateway {
            let g = g.serve(tasks.clone(), router.clone());
            let scheme = if g.tls { "https" } else { "http" };
            tracing::info!(url = %format!("{scheme}://{}/agents/", g.addr), "A2A gateway listening");
        }
        let stop_server = tokio_util::sync::CancellationToken::new();
        tokio::spawn(server::serve(
            listener,
            socket.clone(),
            router.clone(),
            stop_server.clone(),
        ));
        Ok(Daemon {
            tasks,
            data_dir: opts.data_dir.clone(),
            router,
            join,
            socket,
            metrics_addr,
            audit,
            stop_server,
            _lock: lock,
        })
    }

    /// Decommissions the fleet and waits for the supervisor to finish.
    pub async fn shutdown(self) {
        let _ = self.router.request(Request::Shutdown).await;
        let _ = self.join.await;
        self.stop_server.cancel();
        self.tasks.flush(Duration::from_secs(5)).await;
        unpublish(&self.socket, &self.data_dir);
        close_audit(self.audit).await;
    }

    /// Waits until the fleet was shut down (by a `shutdown` request), then
    /// closes the socket.
    pub async fn finished(self) {
        let _ = self.join.await;
        self.stop_server.cancel();
        self.tasks.flush(Duration::from_secs(5)).await;
        unpublish(&self.socket, &self.data_dir);
        close_audit(self.audit).await;
    }
}

/// Serves `/metrics` on `listen`, when set: the snapshot to publish to,
/// and the address bound.
fn serve_metrics(
    listen: Option<std::net::SocketAddr>,
) -> Result<(Option<metrics::Published>, Option<std::net::SocketAddr>), DaemonError> {
    let Some(addr) = listen else {
        return Ok((None, None));
    };
    let what = || format!("cannot serve metrics on {addr}");
    let std_listener = std::net::TcpListener::bind(addr).map_err(io(what()))?;
    std_listener.set_nonblocking(true).map_err(io(what()))?;
    let listener = tokio::net::TcpListener::from_std(std_listener).map_err(io(what()))?;
    let bound = listener.local_addr().map_err(io(what()))?;
    tracing::info!(url = %format!("http://{bound}/metrics"), "metrics endpoint listening");
    let published: metrics::Published = Default::default();
    tokio::spawn(metrics::serve(listener, published.clone()));
    Ok((Some(published), Some(bound)))
}

/// Removes the socket and the data dir's pointer to it.
fn unpublish(socket: &std::path::Path, data_dir: &std::path::Path) {
    let _ = std::fs::remove_file(socket);
    crate::paths::remove_socket_pointer(data_dir, socket);
}

/// Records the stop, writes the shutdown checkpoint and stops the writer.
async fn close_audit(audit: audit::Audit) {
    audit.record("autonomos", "daemon-stop", serde_json::json!({}), "ok");
    let _ = tokio::task::spawn_blocking(move || audit.close_blocking()).await;
}

/// Runs in the foreground until SIGTERM or SIGINT, then decommissions every
/// agent in parallel and returns.
pub async fn run(opts: DaemonOptions) -> Result<(), DaemonError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(io("cannot watch SIGTERM"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(io("cannot watch SIGINT"))?;
    // A lost terminal must not take the fleet down.
    let mut hup = signal(SignalKind::hangup()).map_err(io("cannot watch SIGHUP"))?;
    let data_dir = opts.data_dir.clone();
    let mut daemon = Daemon::start(opts)?;
    tracing::info!(pid = std::process::id(), data_dir = %data_dir.display(), socket = %daemon.socket.display(), "daemon started");
    // Under systemd (`Type=notify`): the socket answers and the fleet is
    // starting. Outside systemd there is no NOTIFY_SOCKET and nothing is sent.
    systemd_says(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(&format!("supervising; socket {}", daemon.socket.display())),
    ]);
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM received"); break; }
            _ = int.recv() => { tracing::info!("SIGINT received"); break; }
            _ = hup.recv() => { tracing::info!("SIGHUP ignored"); }
            _ = &mut daemon.join => {
                systemd_says(&[sd_notify::NotifyState::Stopping]);
                // A `shutdown` request decommissioned the fleet. Give the
                // connection that asked a moment to write its answer.
                tokio::time::sleep(Duration::from_millis(200)).await;
                daemon.stop_server.cancel();
                daemon.tasks.flush(Duration::from_secs(5)).await;
                unpublish(&daemon.socket, &daemon.data_dir);
                close_audit(daemon.audit).await;
                tracing::info!("daemon stopped");
                return Ok(());
            }
        }
    }
    systemd_says(&[
        sd_notify::NotifyState::Stopping,
        sd_notify::NotifyState::Status("stopping the agents"),
    ]);
    daemon.shutdown().await;
    tracing::info!("daemon stopped");
    Ok(())
}

/// Tells systemd (`$NOTIFY_SOCKET`), if it is listening.
fn systemd_says(states: &[sd_notify::NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}
