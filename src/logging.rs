//! The daemon's own log: JSON lines in `DATA_DIR/logs/daemon.jsonl` (for
//! ELK/Loki) and a compact human form on stderr.

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, fmt};

/// Keep it alive for the daemon's life: dropping it flushes the file.
pub struct LogGuard {
    _file: WorkerGuard,
}

/// Installs the global subscriber. `AUTONOMOS_LOG` overrides the filter
/// (default `info`).
pub fn init_daemon(logs_dir: &Path) -> std::io::Result<LogGuard> {
    std::fs::create_dir_all(logs_dir)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(logs_dir.join("daemon.jsonl"))?;
    let (writer, guard) = tracing_appender::non_blocking(file);
    let filter =
        || EnvFilter::try_from_env("AUTONOMOS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_writer(writer)
        .with_filter(filter());
    let human = fmt::layer()
        .compact()
        .with_writer(std::io::stderr)
        .with_filter(filter());
    tracing_subscriber::registry()
        .with(json)
        .with(human)
        .try_init()
        .map_err(std::io::Error::other)?;
    Ok(LogGuard { _file: guard })
}
