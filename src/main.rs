//! The `autonomos` binary: parse the command line and dispatch.

use std::process::ExitCode;

use clap::Parser;
use color_eyre::eyre::{Result, WrapErr};

use autonomos::cli::{Cli, Command, ConfigCommand};
use autonomos::paths::{self, ConfigSource};

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

fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::DemoAgent { role } => Ok(ExitCode::from(
            autonomos::demo::run(role).clamp(0, 255) as u8
        )),
        Command::Config {
            command: ConfigCommand::Check { file, json },
        } => {
            let source = paths::find_config(file.as_deref().or(cli.config.as_deref()));
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
        Command::Daemon { sample_every } => {
            let source = paths::find_config(cli.config.as_deref());
            let cfg = match paths::load_config(&source) {
                Ok(cfg) => cfg,
                Err(errors) => {
                    eprint!("{errors}");
                    eprintln!("\nthe daemon did not start: fix the config and try again");
                    return Ok(ExitCode::from(EXIT_INVALID));
                }
            };
            let data_dir = paths::data_dir(cli.data_dir.as_deref(), &cfg);
            autonomos::daemon::prepare_data_dir(&data_dir)?;
            let _log = autonomos::logging::init_daemon(&data_dir.join("logs"))?;
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
    }
}
