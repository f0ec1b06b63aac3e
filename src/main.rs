//! The `autonomos` binary: parse the command line and dispatch.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    if let Err(e) = color_eyre::install() {
        eprintln!("warning: {e}");
    }
    let json = std::env::args_os().any(|a| a == "--json");
    let cli = match autonomos::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // A usage error is still an object for scripts that asked for one.
            if json && e.use_stderr() {
                let text = e.to_string();
                let message = text.lines().next().unwrap_or_default();
                let message = message.trim_start_matches("error: ");
                println!(
                    "{}",
                    serde_json::json!({ "ok": false, "kind": "invalid", "message": message })
                );
            }
            e.exit();
        }
    };
    match autonomos::cli::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "ok": false, "kind": "error", "message": format!("{e:#}") })
                );
            }
            eprintln!("Error: {e:?}");
            ExitCode::FAILURE
        }
    }
}
