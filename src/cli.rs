//! The command line: subcommands and their arguments (clap derive).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Supervise a fleet of local AI agents and watch it live.
#[derive(Debug, Parser)]
#[command(name = "autonomos", version, about, propagate_version = true)]
pub struct Cli {
    /// Config file (default: ./autonomos.toml, then the config dir's, then the built-in demo fleet).
    #[arg(long, short, global = true, env = "AUTONOMOS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data dir: state.db, agent contexts, logs (default: the platform data dir).
    #[arg(long, global = true, env = "AUTONOMOS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the supervisor in the foreground (for systemd, containers, or a terminal).
    Daemon {
        /// How often each replica's CPU and memory are sampled.
        #[arg(long, default_value = "1s", value_parser = parse_duration)]
        sample_every: std::time::Duration,
    },
    /// Work with config files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// A simulated agent of the built-in demo fleet.
    #[command(hide = true)]
    DemoAgent {
        #[arg(long, value_enum)]
        role: crate::demo::Role,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config file and print the effective fleet (every default filled in).
    Check {
        /// The file to check (default: the config in force).
        file: Option<PathBuf>,
        /// Print the effective config as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    crate::config::parse_duration(s)
}
