//! The fleet verbs, defined once: the command line takes them as
//! subcommands (`autonomos scale web 3`) and the console's palette parses
//! its line with the same definitions (`scale web 3`), so a verb, its
//! arguments and the request it sends exist in one place.

use clap::{Parser, Subcommand};

use crate::proto::{Request, parse_target};

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum FleetVerb {
    /// Set an agent's desired replica count (0 to 1024).
    Scale {
        agent: String,
        #[arg(allow_negative_numbers = true, value_parser = replica_count)]
        replicas: u32,
        #[arg(long)]
        json: bool,
    },
    /// Restart an agent's replicas (AGENT) or one replica (AGENT/N).
    Restart {
        target: String,
        #[arg(long)]
        json: bool,
    },
    /// Stop an agent (it stays stopped, also across daemon restarts).
    Stop {
        agent: String,
        #[arg(long)]
        json: bool,
    },
    /// Start a stopped or failed agent.
    Start {
        agent: String,
        #[arg(long)]
        json: bool,
    },
    /// Re-read the config file and apply the difference; a bad config changes nothing.
    Reload {
        #[arg(long)]
        json: bool,
    },
    /// Decommission the fleet and stop the daemon.
    Shutdown {
        #[arg(long)]
        json: bool,
    },
}

/// A replica count: one clear error with the real range for anything else.
fn replica_count(s: &str) -> Result<u32, String> {
    let max = crate::core::pool::MAX_REPLICAS;
    match s.trim().parse::<i64>() {
        Ok(n) if (0..=i64::from(max)).contains(&n) => Ok(n as u32),
        Ok(n) => Err(format!(
            "{n} replicas is out of range: 0 to {max} (the most one agent may have)"
        )),
        Err(_) => Err(format!(
            "`{s}` is not a replica count: a number from 0 to {max}"
        )),
    }
}

impl FleetVerb {
    /// The request the verb sends, or why its arguments are wrong.
    pub fn request(&self) -> Result<Request, String> {
        Ok(match self {
            FleetVerb::Scale {
                agent, replicas, ..
            } => Request::Scale {
                agent: agent.clone(),
                replicas: *replicas,
            },
            FleetVerb::Restart { target, .. } => {
                let (agent, replica) = parse_target(target)?;
                Request::Restart { agent, replica }
            }
            FleetVerb::Stop { agent, .. } => Request::Stop {
                agent: agent.clone(),
            },
            FleetVerb::Start { agent, .. } => Request::Start {
                agent: agent.clone(),
            },
            FleetVerb::Reload { .. } => Request::Reload,
            FleetVerb::Shutdown { .. } => Request::Shutdown,
        })
    }

    /// Whether the answer is wanted as JSON.
    pub fn json(&self) -> bool {
        match self {
            FleetVerb::Scale { json, .. }
            | FleetVerb::Restart { json, .. }
            | FleetVerb::Stop { json, .. }
            | FleetVerb::Start { json, .. }
            | FleetVerb::Reload { json }
            | FleetVerb::Shutdown { json } => *json,
        }
    }

    /// The verbs' names, as typed.
    pub const NAMES: [&'static str; 6] =
        ["scale", "restart", "stop", "start", "reload", "shutdown"];
}

/// A palette line that names a fleet verb.
#[derive(Debug, Parser)]
#[command(
    no_binary_name = true,
    disable_help_flag = true,
    disable_version_flag = true,
    disable_help_subcommand = true
)]
struct Line {
    #[command(subcommand)]
    verb: FleetVerb,
}

/// Parses `words` (`["scale", "web", "3"]`) as a fleet verb; the error is
/// clap's first line, without its `error: ` prefix.
pub fn parse_line(words: &[&str]) -> Result<FleetVerb, String> {
    Line::try_parse_from(words).map(|l| l.verb).map_err(|e| {
        let text = e.to_string();
        let first = text.lines().next().unwrap_or("").trim();
        first.strip_prefix("error: ").unwrap_or(first).to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_parses_to_the_same_request_as_the_command() {
        let v = parse_line(&["restart", "researcher/2"]).expect("parses");
        assert_eq!(
            v.request(),
            Ok(Request::Restart {
                agent: "researcher".into(),
                replica: Some(2)
            })
        );
        let v = parse_line(&["scale", "web", "3", "--json"]).expect("parses");
        assert!(v.json());
        let e = parse_line(&["scale", "web", "lots"]).expect_err("not a count");
        assert!(e.contains("lots"), "{e}");
        assert!(
            parse_line(&["restart", "a/x"])
                .expect("parses")
                .request()
                .is_err()
        );
    }
}
