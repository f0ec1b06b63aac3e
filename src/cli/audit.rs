//! `audit`: show, verify, checkpoints, key rotation.

use std::path::Path;

use super::*;
use crate::core::audit::{Checkpoint, Record, key_spans, verify_spans, verifying_key};

pub async fn audit(g: &Global, cmd: Option<AuditCommand>, json: bool) -> ExitCode {
    let data_dir = crate::paths::client_data_dir(g.data_dir.as_deref(), g.config.as_deref());
    let remote = |what: &str| {
        (!g.host.is_empty()).then(|| {
            let msg = format!(
                "`audit {what}` reads the data dir's files: run it on the daemon's machine"
            );
            refuse(json, ExitCode::from(2), msg)
        })
    };
    match cmd.unwrap_or(AuditCommand::Verify { checkpoint: None }) {
        AuditCommand::Verify { checkpoint } => {
            if let Some(code) = remote("verify") {
                return code;
            }
            verify(&data_dir, checkpoint.as_deref(), json)
        }
        AuditCommand::Checkpoint { export } => checkpoint(g, export.as_deref(), json).await,
        AuditCommand::RotateKey => simple(g, Request::AuditRotateKey, json).await,
        AuditCommand::Log { lines } => {
            if let Some(code) = remote("log") {
                return code;
            }
            log(&data_dir, lines, json)
        }
    }
}

/// `audit verify`: the chain, the signed checkpoints and key rotations,
/// against the trusted key (or an exported checkpoint).
fn verify(data_dir: &Path, checkpoint: Option<&Path>, json: bool) -> ExitCode {
    let (log, mut cps, key) = match crate::daemon::audit::read(data_dir) {
        Ok(x) => x,
        Err(e) => {
            return refuse(
                json,
                ExitCode::FAILURE,
                format!(
                    "cannot read the audit trail in {}: {e}",
                    data_dir.join("audit").display()
                ),
            );
        }
    };
    let mut trusted_hex = key;
    let mut pinned = None;
    if let Some(path) = checkpoint {
        let cp = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<Checkpoint>(t.trim()).map_err(|e| e.to_string()));
        match cp {
            Ok(cp) => {
                trusted_hex = cp.key.clone();
                pinned = Some(cp.clone());
                cps.push(cp);
            }
            Err(e) => {
                return refuse(
                    json,
                    ExitCode::from(2),
                    format!("{} is not an exported checkpoint: {e}", path.display()),
                );
            }
        }
    }
    if verifying_key(&trusted_hex).is_none() {
        return refuse(json, ExitCode::FAILURE, "the audit public key is not valid");
    }
    // Key rotations: trust follows them from the trusted key.
    let rotations = crate::daemon::audit::read_rotations(&data_dir.join("audit"));
    cps.extend(rotations.iter().map(|r| r.checkpoint.clone()));
    let (spans, bad_rotations) = key_spans(&trusted_hex, &rotations);
    let v = verify_spans(&log, &cps, &spans);
    if let Some(cp) = &pinned
        && verifying_key(&cp.key).is_none_or(|k| !cp.valid(&k))
    {
        return refuse(
            json,
            ExitCode::FAILURE,
            "the exported checkpoint's signature does not verify",
        );
    }
    // With a checkpoint kept elsewhere, a checkpoint in the data dir
    // that its key does not lead to (rotations removed or forged)
    // is a failure, not a note: it is how a rewrite would look.
    let untrusted = pinned.is_some() && !v.bad_checkpoints.is_empty();
    if json {
        let _ = json_out(&v);
    } else {
        print!("{}", verdict_text(&v));
        if spans.len() > 1 {
            println!(
                "signing key rotated {} time(s); each rotation is signed by both keys",
                spans.len() - 1
            );
        }
    }
    if !bad_rotations.is_empty() {
        eprintln!(
            "warning: key rotations that do not verify or do not chain were ignored (at seq {bad_rotations:?}): checkpoints of the keys they name are not trusted"
        );
    }
    if untrusted {
        eprintln!(
            "error: checkpoints at seq {:?} are signed by keys the exported checkpoint's key does not lead to through a verified key rotation: the rotations were removed or forged, or the trail was rewritten",
            v.bad_checkpoints
        );
    }
    if v.ok() && !untrusted {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `audit checkpoint`: a signed checkpoint now, printed or exported.
async fn checkpoint(g: &Global, export: Option<&Path>, json: bool) -> ExitCode {
    match ask(g, Request::AuditCheckpoint).await {
        Ok(Response::Checkpoint { checkpoint }) => {
            let text = serde_json::to_string(&checkpoint).unwrap_or_default();
            match export {
                Some(path) => {
                    if let Err(e) = std::fs::write(path, format!("{text}\n")) {
                        return refuse(
                            json,
                            ExitCode::FAILURE,
                            format!("cannot write {}: {e}", path.display()),
                        );
                    }
                    eprintln!(
                        "checkpoint at seq {} written to {}; keep it somewhere the daemon's machine cannot change",
                        checkpoint.seq,
                        path.display()
                    );
                }
                None => println!("{text}"),
            }
            ExitCode::SUCCESS
        }
        Ok(r) => unexpected(r),
        Err(e) => fail(&e, json),
    }
}

/// `audit log`: the newest records.
fn log(data_dir: &Path, lines: usize, json: bool) -> ExitCode {
    let text = match std::fs::read_to_string(data_dir.join("audit/audit.jsonl")) {
        Ok(t) => t,
        Err(e) => {
            return refuse(
                json,
                ExitCode::FAILURE,
                format!("cannot read the audit log: {e}"),
            );
        }
    };
    let recs: Vec<Record> = text
        .lines()
        .rev()
        .take(lines)
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    if json {
        return json_out(&recs);
    }
    for r in recs {
        println!(
            "{:>7}  {}  {:<28} {:<20} {}  {}",
            r.seq,
            utc(r.ts),
            r.actor,
            r.action,
            r.result,
            if r.args.is_null() {
                String::new()
            } else {
                r.args.to_string()
            }
        );
    }
    ExitCode::SUCCESS
}
