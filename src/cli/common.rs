//! What every verb that talks to a daemon shares: connecting, failing,
//! printing JSON.

use super::*;

/// Connects as the global options say: over ssh with `--host`, else to the
/// local daemon of the data dir in force. A verb that talks to one daemon
/// refuses several.
pub async fn connect(g: &Global) -> Result<Client, ClientError> {
    let targets = targets(g).map_err(ClientError::Ssh)?;
    match targets.as_slice() {
        [one] => connect_to(g, one).await,
        _ => Err(ClientError::Ssh(format!(
            "this verb talks to one daemon; {} hosts were given (status, alerts, incidents and task list take several)",
            targets.len()
        ))),
    }
}

/// The daemons `--host` names when there are several (None: one, the usual
/// path), or the refusal to print when a name is unknown.
pub(super) fn several(g: &Global, json: bool) -> Result<Option<Vec<Target>>, ExitCode> {
    match targets(g) {
        Ok(t) if t.len() > 1 => Ok(Some(t)),
        Ok(_) => Ok(None),
        Err(e) => Err(refuse(json, ExitCode::from(2), e)),
    }
}

/// Prints an error (and its JSON form with `--json`); exit code 1.
pub fn fail(e: &ClientError, json: bool) -> ExitCode {
    if json {
        let kind = match e {
            ClientError::Request(r) => serde_json::to_value(r.kind).unwrap_or_default(),
            ClientError::NoDaemon { .. } => "no_daemon".into(),
            _ => "connection".into(),
        };
        println!(
            "{}",
            serde_json::json!({ "ok": false, "kind": kind, "message": e.to_string() })
        );
    }
    eprintln!("error: {e}");
    ExitCode::FAILURE
}

/// A failure found here (not by the daemon): said on stderr, and with
/// `--json` also as `{"ok": false, "kind": ..., "message": ...}` on stdout,
/// so scripts always get an object. Usage errors (exit 2) are `invalid`.
pub fn refuse(json: bool, code: ExitCode, message: impl std::fmt::Display) -> ExitCode {
    let kind = if code == ExitCode::from(2) {
        "invalid"
    } else {
        "error"
    };
    if json {
        println!(
            "{}",
            serde_json::json!({ "ok": false, "kind": kind, "message": message.to_string() })
        );
    }
    eprintln!("error: {message}");
    code
}

/// Runs a request whose answer is a message (scale, start, stop, ...).
pub async fn simple(g: &Global, request: Request, json: bool) -> ExitCode {
    let result = async {
        let mut c = connect(g).await?;
        c.request(request).await
    }
    .await;
    match result {
        Ok(Response::Done { message }) => {
            if json {
                println!("{}", serde_json::json!({ "ok": true, "message": message }));
            } else {
                println!("{message}");
            }
            ExitCode::SUCCESS
        }
        Ok(Response::Stopped {
            message,
            was_running,
        }) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "ok": true, "message": message, "was_running": was_running })
                );
            } else {
                println!("{message}");
            }
            ExitCode::SUCCESS
        }
        Ok(other) => {
            eprintln!("error: unexpected answer {other:?}");
            ExitCode::FAILURE
        }
        Err(e) => fail(&e, json),
    }
}

pub(super) async fn ask(g: &Global, req: Request) -> Result<Response, crate::client::ClientError> {
    let mut c = connect(g).await?;
    c.request(req).await
}

pub(super) fn json_out<T: serde::Serialize>(v: &T) -> ExitCode {
    match serde_json::to_string_pretty(v) {
        Ok(s) => {
            println!("{s}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

pub(super) fn unexpected(r: Response) -> ExitCode {
    eprintln!("error: unexpected answer {r:?}");
    ExitCode::FAILURE
}
