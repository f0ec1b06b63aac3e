//! The command line: clap definitions (`args.rs`), one file per verb
//! group, and the text they print (`render.rs`). Every verb that talks to
//! a daemon connects, sends one request and prints the answer as text or,
//! with `--json`, as JSON.

mod alerts;
mod args;
mod audit;
mod autoscale;
mod backup;
mod common;
mod daemon;
mod doctor;
mod export;
mod fleet;
mod hosts;
mod incidents;
mod metrics;
mod multi;
mod render;
mod session;
mod task;
mod term;

pub use args::*;

use alerts::*;
use audit::*;
use autoscale::*;
use backup::*;
use common::*;
use doctor::*;
use fleet::*;
use hosts::*;
use incidents::*;
use metrics::*;
use render::*;
use session::*;
use task::*;
use term::*;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr};

use crate::client::{Client, ClientError, SshTarget, Update};
use crate::clock::now_ms;
use crate::core::incident::Incident;
use crate::core::lifecycle::Millis;
use crate::core::sanitize::sanitize_line;
use crate::core::units::{fmt_age, format_size, utc};
use crate::proto::{
    AlertsReport, FleetStatus, IncidentStatus, Request, Response, ServerEvent, Stream, agent_state,
};

/// Exit code for invalid input (config errors).
const EXIT_INVALID: u8 = 2;

/// A small runtime for client verbs.
fn client_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .wrap_err("cannot start the async runtime")
}

/// Runs one command line.
pub fn dispatch(cli: Cli) -> Result<ExitCode> {
    let g = cli.global;
    let simple = |req: Request, json: bool| -> Result<ExitCode> {
        Ok(client_runtime()?.block_on(simple(&g, req, json)))
    };
    match cli.command {
        Command::TtyExec {
            normal_scheduling,
            argv,
        } => Ok(daemon::tty_exec(normal_scheduling, &argv)),
        Command::DemoAgent { role } => {
            Ok(ExitCode::from(crate::demo::run(role).clamp(0, 255) as u8))
        }
        Command::Config {
            command: ConfigCommand::Check { file, json },
        } => daemon::config_check(&g, file.as_deref(), json),
        Command::Export { command } => Ok(export::export(&g, command)),
        Command::Service { command } => Ok(export::service(&g, command)),
        Command::Daemon {
            sample_every,
            metrics_addr,
            detached,
        } => daemon::run(&g, sample_every, metrics_addr, detached),
        Command::Up {
            sample_every,
            metrics_addr,
            plain,
        } => Ok(client_runtime()?.block_on(async {
            match up(&g, sample_every, metrics_addr).await {
                Ok(g) => attach_any(&g, plain).await,
                Err(code) => code,
            }
        })),
        Command::Attach { plain } => Ok(client_runtime()?.block_on(attach_any(&g, plain))),
        Command::DialStdio => Ok(client_runtime()?.block_on(dial_stdio(&g))),
        Command::Status { replicas, json } => {
            Ok(client_runtime()?.block_on(status(&g, replicas, json)))
        }
        Command::Fleet(verb) => match verb.request() {
            Ok(req) => simple(req, verb.json()),
            Err(e) => Ok(refuse(verb.json(), ExitCode::from(EXIT_INVALID), e)),
        },
        Command::Backup {
            command: None,
            json,
        } => simple(Request::Backup, json),
        Command::Backup {
            command: Some(BackupCommand::Prune),
            json,
        } => simple(Request::BackupPrune, json),
        Command::Backup {
            command: Some(command),
            json,
        } => Ok(client_runtime()?.block_on(backup(&g, command, json))),
        Command::Restore {
            agent,
            at,
            snapshot,
            json,
        } => {
            let at = match at.as_deref().map(parse_time) {
                Some(Err(e)) => return Ok(refuse(json, ExitCode::from(EXIT_INVALID), e)),
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
            Ok(client_runtime()?.block_on(alerts(&g, command, json)))
        }
        Command::Incidents { command, json } => {
            Ok(client_runtime()?.block_on(incidents(&g, command, json)))
        }
        Command::Task { command, json } => Ok(client_runtime()?.block_on(task(&g, command, json))),
        Command::Doctor { json } => Ok(client_runtime()?.block_on(doctor(&g, json))),
        Command::Worktree {
            target,
            remove,
            json,
        } => Ok(client_runtime()?.block_on(worktree(&g, &target, remove, json))),
        Command::Screen { target, json } => {
            Ok(client_runtime()?.block_on(screen(&g, &target, json)))
        }
        Command::Send {
            target,
            text,
            enter,
            json,
        } => Ok(client_runtime()?.block_on(send(&g, &target, text, enter, json))),
        Command::Autoscale { command, json } => {
            Ok(client_runtime()?.block_on(autoscale(&g, command, json)))
        }
        Command::Audit { command, json } => {
            Ok(client_runtime()?.block_on(audit(&g, command, json)))
        }
        Command::Metrics { json } => Ok(client_runtime()?.block_on(metrics(&g, json))),
        Command::Logs {
            agent,
            follow,
            no_time,
            lines,
            json,
        } => {
            let how = LogsHow {
                follow,
                lines,
                time: !no_time,
                json,
            };
            Ok(client_runtime()?.block_on(logs(&g, agent, how)))
        }
    }
}
