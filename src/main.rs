//! The `autonomos` binary: parse the command line and dispatch.

use std::process::ExitCode;

use clap::Parser;
use color_eyre::eyre::{Result, WrapErr};

use autonomos::cli::{Cli, Command, ConfigCommand};
use autonomos::commands;
use autonomos::paths::{self, ConfigSource};
use autonomos::proto::Request;

/// Exit code for invalid input (config errors).
const EXIT_INVALID: u8 = 2;

fn main() -> ExitCode {
    if let Err(e) = color_eyre::install() {
        eprintln!("warning: {e}");
    }
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:?}");
            ExitCode::FAILURE
        }
    }
}

/// A small runtime for client verbs.
fn client_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .wrap_err("cannot start the async runtime")
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    let g = cli.global;
    let simple = |req: Request, json: bool| -> Result<ExitCode> {
        Ok(client_runtime()?.block_on(commands::simple(&g, req, json)))
    };
    match cli.command {
        Command::DemoAgent { role } => Ok(ExitCode::from(
            autonomos::demo::run(role).clamp(0, 255) as u8
        )),
        Command::Config {
            command: ConfigCommand::Check { file, json },
        } => {
            let source = paths::find_config(file.as_deref().or(g.config.as_deref()));
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
                    eprintln!(
                        "\n{n} error{} found; nothing was started",
                        if n == 1 { "" } else { "s" }
                    );
                    Ok(ExitCode::from(EXIT_INVALID))
                }
            }
        }
        Command::Daemon {
            sample_every,
            metrics_addr,
            detached,
        } => {
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
            autonomos::daemon::prepare_data_dir(&data_dir)?;
            let _log = autonomos::logging::init_daemon(
                &data_dir.join("logs"),
                cfg.logs.max_size,
                cfg.logs.max_files,
            )?;
            if source == ConfigSource::Demo {
                tracing::info!("no config file found: running the built-in demo fleet");
            }
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("autonomos")
                .build()
                .wrap_err("cannot start the async runtime")?;
            let opts = autonomos::daemon::DaemonOptions {
                config: cfg,
                data_dir,
                sample_every,
            };
            rt.block_on(autonomos::daemon::run(opts))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Up {
            sample_every,
            metrics_addr,
            plain,
        } => Ok(client_runtime()?.block_on(async {
            match commands::up(&g, sample_every, metrics_addr).await {
                Ok(g) => commands::attach_any(&g, plain).await,
                Err(code) => code,
            }
        })),
        Command::Attach { plain } => {
            Ok(client_runtime()?.block_on(commands::attach_any(&g, plain)))
        }
        Command::DialStdio => Ok(client_runtime()?.block_on(commands::dial_stdio(&g))),
        Command::Status { replicas, json } => {
            Ok(client_runtime()?.block_on(commands::status(&g, replicas, json)))
        }
        Command::Scale {
            agent,
            replicas,
            json,
        } => simple(Request::Scale { agent, replicas }, json),
        Command::Restart { target, json } => match commands::parse_target(&target) {
            Ok((agent, replica)) => simple(Request::Restart { agent, replica }, json),
            Err(e) => {
                eprintln!("error: {e}");
                Ok(ExitCode::from(EXIT_INVALID))
            }
        },
        Command::Stop { agent, json } => simple(Request::Stop { agent }, json),
        Command::Start { agent, json } => simple(Request::Start { agent }, json),
        Command::Reload { json } => simple(Request::Reload, json),
        Command::Backup {
            command: None,
            json,
        } => simple(Request::Backup, json),
        Command::Backup {
            command: Some(autonomos::cli::BackupCommand::Prune),
            json,
        } => simple(Request::BackupPrune, json),
        Command::Backup {
            command: Some(command),
            json,
        } => Ok(client_runtime()?.block_on(autonomos::ops::backup(&g, command, json))),
        Command::Restore {
            agent,
            at,
            snapshot,
            json,
        } => {
            let at = match at.as_deref().map(autonomos::ops::parse_time) {
                Some(Err(e)) => {
                    eprintln!("error: {e}");
                    return Ok(ExitCode::from(EXIT_INVALID));
                }
                Some(Ok(t)) => Some(t),
                None => None,
            };
            simple(
                Request::Restore {
                    agent,
                    snapshot,
                    at,
                },
                json,
            )
        }
        Command::Alerts { command, json } => {
            Ok(client_runtime()?.block_on(autonomos::ops::alerts(&g, command, json)))
        }
        Command::Incidents { command, json } => {
            Ok(client_runtime()?.block_on(autonomos::ops::incidents(&g, command, json)))
        }
        Command::Audit { command, json } => {
            Ok(client_runtime()?.block_on(autonomos::ops::audit(&g, command, json)))
        }
        Command::Metrics { json } => {
            Ok(client_runtime()?.block_on(autonomos::ops::metrics(&g, json)))
        }
        Command::Shutdown { json } => simple(Request::Shutdown, json),
        Command::Logs {
            agent,
            follow,
            lines,
            json,
        } => Ok(client_runtime()?.block_on(commands::logs(&g, agent, follow, lines, json))),
    }
}
