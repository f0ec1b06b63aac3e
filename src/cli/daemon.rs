//! The verbs that run here rather than ask a daemon: `config check`, and
//! `daemon` itself (the supervisor in the foreground).

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr};

use super::{EXIT_INVALID, Global};
use crate::paths::{self, ConfigSource};

/// `config check`: the effective config, or every error in it.
pub(super) fn config_check(g: &Global, file: Option<&Path>, json: bool) -> Result<ExitCode> {
    let source = paths::find_config(file.or(g.config.as_deref()));
    match paths::load_config(&source) {
        Ok(cfg) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&cfg)?);
            } else {
                if source == ConfigSource::Demo {
                    println!("# no config file found: the built-in demo fleet");
                }
                print!("{}", cfg.render_effective());
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            eprint!("{errors}");
            let n = errors.diagnostics.len();
            let summary = format!("{n} error{} found", if n == 1 { "" } else { "s" });
            if json {
                let list: Vec<serde_json::Value> = errors
                    .diagnostics
                    .iter()
                    .map(|d| {
                        serde_json::json!({
                            "file": d.file,
                            "line": d.line,
                            "column": d.column,
                            "message": d.message,
                            "help": d.help,
                        })
                    })
                    .collect();
                let v = serde_json::json!({
                    "ok": false,
                    "kind": "invalid",
                    "message": summary,
                    "errors": list,
                });
                println!("{v}");
            }
            eprintln!("\n{summary}; nothing was started");
            Ok(ExitCode::from(EXIT_INVALID))
        }
    }
}

/// `daemon`: supervise the fleet in the foreground until SIGTERM/SIGINT.
pub(super) fn run(
    g: &Global,
    sample_every: Option<Duration>,
    metrics_addr: Option<SocketAddr>,
    detached: bool,
) -> Result<ExitCode> {
    if detached {
        // Own session: no controlling terminal, no SIGHUP from one.
        let _ = rustix::process::setsid();
    }
    let source = paths::find_config(g.config.as_deref());
    let mut cfg = match paths::load_config(&source) {
        Ok(cfg) => cfg,
        Err(errors) => {
            eprint!("{errors}");
            eprintln!("\nthe daemon did not start: fix the config and try again");
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    };
    if let Some(every) = sample_every {
        cfg.metrics.interval = every;
    }
    if metrics_addr.is_some() {
        cfg.metrics.listen = metrics_addr;
    }
    let sample_every = cfg.metrics.interval;
    let data_dir = paths::data_dir(g.data_dir.as_deref(), &cfg);
    crate::daemon::prepare_data_dir(&data_dir)?;
    // While the daemon has one thread (the log writer is the first more).
    let batch = schedule_daemon();
    crate::daemon::reserve_fds(cfg.agents.iter().map(|a| a.replicas as usize).sum());
    let _log = crate::daemon::logging::init_daemon(
        &data_dir.join("logs"),
        cfg.logs.max_size,
        cfg.logs.max_files,
        detached,
    )?;
    if let Err(e) = batch {
        tracing::warn!(error = %e, "the daemon stays in SCHED_OTHER");
    }
    if source == ConfigSource::Demo {
        tracing::info!("no config file found: running the built-in demo fleet");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("autonomos")
        .build()
        .wrap_err("cannot start the async runtime")?;
    let opts = crate::daemon::DaemonOptions {
        config: cfg,
        data_dir,
        sample_every,
    };
    rt.block_on(crate::daemon::run(opts))?;
    Ok(ExitCode::SUCCESS)
}

/// Puts the daemon in `SCHED_BATCH` (see `daemon::sys::batch_scheduling`)
/// unless `AUTONOMOS_SCHEDULING=normal`; agents keep the class the
/// daemon was started in.
fn schedule_daemon() -> std::io::Result<bool> {
    match std::env::var("AUTONOMOS_SCHEDULING").as_deref() {
        Ok("normal") => Ok(false),
        _ => crate::daemon::sys::batch_scheduling(),
    }
}

/// `autonomos tty-exec`: a `tty` replica's first step (see
/// `daemon::tty::exec_on_terminal`); returns only when the exec failed.
pub fn tty_exec(normal_scheduling: bool, argv: &[String]) -> ExitCode {
    if normal_scheduling && let Err(e) = crate::daemon::sys::normal_scheduling() {
        eprintln!("autonomos tty-exec: cannot leave SCHED_BATCH: {e}");
    }
    let e = crate::daemon::tty::exec_on_terminal(argv);
    eprintln!("autonomos tty-exec: {e}");
    ExitCode::from(127)
}
