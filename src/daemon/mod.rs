//! The daemon: the tokio runtime around the supervisor actor, with the
//! process runtime, output handling, collector and state database.

pub mod collector;
pub mod lock;
pub mod output;
pub mod process;
pub mod procfs;
pub mod store;
pub mod supervisor;
mod sys;

use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::Config;
use supervisor::{Layout, Request, Supervisor};

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

/// Creates the data dir (0700) and its `logs/` and `agents/` subdirectories.
pub fn prepare_data_dir(dir: &std::path::Path) -> Result<(), DaemonError> {
    for d in [dir.to_path_buf(), dir.join("logs"), dir.join("agents")] {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&d)
            .map_err(io(format!("cannot create {}", d.display())))?;
    }
    Ok(())
}

/// A running daemon: the lock, the supervisor handle and its task.
pub struct Daemon {
    pub supervisor: Supervisor,
    pub join: tokio::task::JoinHandle<()>,
    _lock: lock::DataDirLock,
}

impl Daemon {
    /// Locks the data dir, opens the state, and starts supervising.
    pub fn start(opts: DaemonOptions) -> Result<Daemon, DaemonError> {
        prepare_data_dir(&opts.data_dir)?;
        let lock = lock::acquire(&opts.data_dir)?;
        process::prepare_daemon().map_err(io("cannot become a child subreaper"))?;
        let layout = Layout {
            data_dir: opts.data_dir.clone(),
        };
        let (store, loaded) = store::Store::start(&layout.state_db())?;
        let (supervisor, join) =
            supervisor::start(opts.config, layout, store, loaded, opts.sample_every)
                .map_err(io("cannot open agent log files"))?;
        Ok(Daemon {
            supervisor,
            join,
            _lock: lock,
        })
    }

    /// Decommissions the fleet and waits for the supervisor to finish.
    pub async fn shutdown(self) {
        let _ = self.supervisor.request(Request::Shutdown).await;
        let _ = self.join.await;
    }
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
    let daemon = Daemon::start(opts)?;
    tracing::info!(pid = std::process::id(), data_dir = %data_dir.display(), "daemon started");
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM received"); break; }
            _ = int.recv() => { tracing::info!("SIGINT received"); break; }
            _ = hup.recv() => { tracing::info!("SIGHUP ignored"); }
        }
    }
    daemon.shutdown().await;
    tracing::info!("daemon stopped");
    Ok(())
}
