//! `screen AGENT[/N]` and `send AGENT[/N] TEXT [--enter]`: a `tty`
//! agent's terminal for scripts, without attaching; `worktree AGENT[/N]`:
//! a replica's git worktree.

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

pub async fn worktree(g: &Global, target: &str, remove: bool, json: bool) -> ExitCode {
    let (agent, replica) = match parse_target(target) {
        Ok((a, r)) => (a, r.unwrap_or(0)),
        Err(e) => return refuse(json, ExitCode::from(EXIT_INVALID), e),
    };
    let req = Request::Worktree {
        agent,
        replica,
        remove,
    };
    match ask(g, req).await {
        Ok(Response::Worktree {
            path,
            branch,
            changes,
        }) => {
            if json {
                return json_out(&serde_json::json!({
                    "path": path, "branch": branch, "changes": changes,
                }));
            }
            println!("{path}\nbranch {branch}\n{changes}");
            ExitCode::SUCCESS
        }
        Ok(Response::Done { message }) => {
            if json {
                return json_out(&serde_json::json!({ "ok": true, "message": message }));
            }
            println!("{message}");
            ExitCode::SUCCESS
        }
        Ok(other) => unexpected(other),
        Err(e) => fail(&e, json),
    }
}
