//! `screen AGENT[/N]` and `send AGENT[/N] TEXT [--enter]`: a `tty`
//! agent's terminal for scripts, without attaching.

use super::*;
use crate::proto::parse_target;

pub async fn screen(g: &Global, target: &str, json: bool) -> ExitCode {
    let (agent, replica) = match parse_target(target) {
        Ok((a, r)) => (a, r.unwrap_or(0)),
        Err(e) => return refuse(json, ExitCode::from(EXIT_INVALID), e),
    };
    let req = Request::Screen {
        agent,
        replica,
        cells: false,
    };
    match ask(g, req).await {
        Ok(Response::Screen { screen }) if json => json_out(&screen),
        Ok(Response::Screen { screen }) => {
            // Plain text only (the daemon's emulator drew it): trailing
            // blank lines left out.
            let last = screen.lines.iter().rposition(|l| !l.trim().is_empty());
            for l in &screen.lines[..last.map_or(0, |i| i + 1)] {
                println!("{}", sanitize_line(l.trim_end().as_bytes()));
            }
            ExitCode::SUCCESS
        }
        Ok(other) => unexpected(other),
        Err(e) => fail(&e, json),
    }
}

pub async fn send(g: &Global, target: &str, text: String, enter: bool, json: bool) -> ExitCode {
    let (agent, replica) = match parse_target(target) {
        Ok((a, r)) => (a, r.unwrap_or(0)),
        Err(e) => return refuse(json, ExitCode::from(EXIT_INVALID), e),
    };
    let req = Request::Send {
        agent,
        replica,
        text,
        enter,
        hold: None,
    };
    simple(g, req, json).await
}
