//! Backup runs and the recovery workflow, driven from the supervisor's
//! handle (never on the actor: they take seconds).
//!
//! The manual's recovery workflow, as real steps, each recorded (daemon
//! log, audit trail, the timeline of the agent's open incidents):
//! detect → isolate (stop the agent's replicas) → back up what is there now
//! → load (restore into a temporary dir next to the context) → validate
//! (every file of the snapshot present with its size; rustic checks every
//! blob's hash while reading) → swap it in (two renames) → restart.
//! A failed load or validation leaves the current context untouched and
//! starts the agent again.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::daemon::backup::{self, Job, Written};
use crate::daemon::supervisor::Supervisor;
use crate::proto::{ErrorKind, ErrorReply, Request, Response};

/// What the daemon knows about backups.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub repositories: Vec<PathBuf>,
    pub config_file: Option<PathBuf>,
    pub keep: (Option<u32>, Option<u32>, Option<u32>),
    /// One backup or restore at a time.
    pub busy: Arc<AtomicBool>,
}

impl Settings {
    pub fn new(data_dir: PathBuf, cfg: &crate::config::Config) -> Settings {
        let repositories = if cfg.backup.repositories.is_empty() {
            vec![data_dir.join("backups")]
        } else {
            cfg.backup.repositories.clone()
        };
        Settings {
            data_dir,
            repositories,
            config_file: cfg.source.clone(),
            keep: (
                cfg.backup.keep_last,
                cfg.backup.keep_hourly,
                cfg.backup.keep_daily,
            ),
            busy: Arc::new(AtomicBool::new(false)),
        }
    }
}

fn err(kind: ErrorKind, message: impl Into<String>) -> ErrorReply {
    ErrorReply {
        kind,
        message: message.into(),
    }
}

/// Holds the one-at-a-time slot.
struct Slot(Arc<AtomicBool>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

fn take_slot(s: &Settings) -> Result<Slot, ErrorReply> {
    if s.busy
        .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        return Err(err(
            ErrorKind::Invalid,
            "a backup or restore is in progress; try again when it is done",
        ));
    }
    Ok(Slot(s.busy.clone()))
}

async fn contexts(sup: &Supervisor) -> Result<Vec<PathBuf>, ErrorReply> {
    let status = sup.actor_status().await?;
    Ok(status
        .agents
        .iter()
        .map(|a| PathBuf::from(&a.context_dir))
        .collect())
}

async fn run_backup(
    sup: &Supervisor,
    s: &Settings,
    reason: &str,
    retention: bool,
) -> Result<(Vec<Written>, bool), ErrorReply> {
    let job = Job {
        data_dir: s.data_dir.clone(),
        repositories: s.repositories.clone(),
        config_file: s.config_file.clone(),
        contexts: contexts(sup).await?,
        reason: reason.to_string(),
        // Not before a restore: retention could forget the very snapshot
        // about to be restored.
        keep: if retention {
            s.keep
        } else {
            (None, None, None)
        },
    };
    let (_, made) = backup::password(&s.data_dir).map_err(|e| err(ErrorKind::Storage, e))?;
    if made {
        tracing::warn!(
            file = %backup::password_file(&s.data_dir).display(),
            "created the backup repository password; keep a copy of this file somewhere safe: without it the backups cannot be read"
        );
    }
    let started = Instant::now();
    let written = tokio::task::spawn_blocking(move || backup::run(&job))
        .await
        .map_err(|e| err(ErrorKind::Storage, e.to_string()))?
        .map_err(|e| err(ErrorKind::Storage, e))?;
    tracing::info!(
        seconds = started.elapsed().as_secs_f64(),
        reason,
        "backup done"
    );
    Ok((written, made))
}

/// `Request::Backup`.
pub async fn backup(sup: &Supervisor, s: &Settings, reason: &str) -> Result<Response, ErrorReply> {
    let _slot = take_slot(s)?;
    let written = run_backup(sup, s, reason, true).await;
    let result = match &written {
        Ok((w, made)) => {
            let parts: Vec<String> = w
                .iter()
                .map(|w| match (&w.snapshot, &w.error) {
                    (Some(id), _) => format!(
                        "{}: snapshot {} ({} files, {} added{})",
                        w.repository,
                        &id[..id.len().min(8)],
                        w.files,
                        crate::config::format_size(w.added),
                        if w.forgotten > 0 {
                            format!(", {} old snapshot(s) forgotten and pruned", w.forgotten)
                        } else {
                            String::new()
                        }
                    ),
                    (None, Some(e)) => format!("{}: MIRROR FAILED: {e}", w.repository),
                    (None, None) => format!("{}: nothing written", w.repository),
                })
                .collect();
            let mut text = format!("backup done; {}", parts.join("; "));
            if *made {
                text.push_str(&format!(
                    ". New repository password in {}: keep a copy elsewhere, without it the backups cannot be read",
                    backup::password_file(&s.data_dir).display()
                ));
            }
            text
        }
        Err(e) => format!("error: {e}"),
    };
    sup.audit(
        "autonomos",
        "backup",
        serde_json::json!({ "reason": reason, "written": written.as_ref().ok().map(|w| &w.0) }),
        &result,
    );
    written.map(|_| Response::Done { message: result })
}

/// `Request::Restore`: the recovery workflow for one agent.
pub async fn restore(
    sup: &Supervisor,
    s: &Settings,
    agent: &str,
    snapshot: Option<&str>,
    at: Option<u64>,
    why: &str,
) -> Result<Response, ErrorReply> {
    let _slot = take_slot(s)?;
    let status = sup.actor_status().await?;
    let Some(a) = status.agents.iter().find(|a| a.name == agent) else {
        return Err(err(
            ErrorKind::UnknownAgent,
            format!("unknown agent `{agent}`"),
        ));
    };
    let ctx = PathBuf::from(&a.context_dir);
    let was_enabled = a.enabled;
    let step = |text: String| {
        let sup = sup.clone();
        let agent = agent.to_string();
        async move {
            tracing::warn!(agent = %agent, step = %text, "recovery");
            sup.audit(
                "autonomos",
                "recovery",
                serde_json::json!({ "agent": agent }),
                &text,
            );
            let _ = sup.note_recovery(&agent, &text).await;
        }
    };
    step(format!("DetectFailure: {why}")).await;
    // Pick the snapshot first: no point stopping anything if there is none.
    let primary = s.repositories[0].clone();
    let data_dir = s.data_dir.clone();
    let snaps = tokio::task::spawn_blocking(move || backup::list(&primary, &data_dir))
        .await
        .map_err(|e| err(ErrorKind::Storage, e.to_string()))?
        .map_err(|e| err(ErrorKind::Storage, e))?;
    let chosen = backup::pick(&snaps, snapshot, at).map_err(|e| err(ErrorKind::Invalid, e))?;

    // Isolate. From here on, any failure starts the agent again and
    // leaves the current context as it was.
    step(format!("IsolateSystem: stopping {agent}")).await;
    sup.actor_request(
        Request::Stop {
            agent: agent.to_string(),
        },
        "autonomos (recovery)".into(),
    )
    .await?;
    let stamp = crate::daemon::audit::now_ms();
    let tmp = ctx.with_file_name(format!(".restore-{stamp}"));
    let outcome = swap_in(sup, s, agent, &chosen, &ctx, &tmp, stamp, &step).await;
    if outcome.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
        restart(sup, agent, was_enabled).await;
    }
    let (files, bytes) = outcome?;
    Ok(Response::Done {
        message: format!(
            "restored {agent} from snapshot {} ({}): {files} files, {}",
            &chosen.id[..8],
            crate::ops::time(chosen.time),
            crate::config::format_size(bytes)
        ),
    })
}

/// Isolation done: wait for the trees to go, back up, load, validate, swap.
#[allow(clippy::too_many_arguments)]
async fn swap_in<F, Fut>(
    sup: &Supervisor,
    s: &Settings,
    agent: &str,
    chosen: &backup::SnapshotInfo,
    ctx: &std::path::Path,
    tmp: &std::path::Path,
    stamp: u64,
    step: &F,
) -> Result<(u64, u64), ErrorReply>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let t = Instant::now();
    loop {
        let st = sup.actor_status().await?;
        let quiet = st
            .agents
            .iter()
            .find(|x| x.name == agent)
            .is_none_or(|x| x.replicas.iter().all(|r| r.pid.is_none()));
        if quiet {
            break;
        }
        if t.elapsed() > Duration::from_secs(60) {
            return Err(err(
                ErrorKind::Invalid,
                format!("{agent} did not stop within 60s; nothing restored"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // What is there now is kept first.
    step("backing up the current state before restoring".into()).await;
    run_backup(sup, s, &format!("before restoring {agent}"), false)
        .await
        .map_err(|e| {
            err(
                ErrorKind::Storage,
                format!("the backup before the restore failed, nothing restored: {e}"),
            )
        })?;
    step(format!(
        "LoadBackup: snapshot {} of {}",
        &chosen.id[..8.min(chosen.id.len())],
        crate::ops::time(chosen.time)
    ))
    .await;
    let (repo, data_dir, id, path, dest) = (
        s.repositories[0].clone(),
        s.data_dir.clone(),
        chosen.id.clone(),
        ctx.to_path_buf(),
        tmp.to_path_buf(),
    );
    let loaded = tokio::task::spawn_blocking(move || {
        backup::restore_dir(&repo, &data_dir, &id, &path, &dest)
    })
    .await
    .map_err(|e| err(ErrorKind::Storage, e.to_string()))?;
    let (files, bytes) = match loaded {
        Ok(x) => x,
        Err(e) => {
            step(format!(
                "ValidateIntegrity FAILED: {e}; the current context is untouched"
            ))
            .await;
            return Err(err(
                ErrorKind::Storage,
                format!("restore of {agent} failed, current context untouched: {e}"),
            ));
        }
    };
    step(format!(
        "ValidateIntegrity: {files} files, {} verified",
        crate::config::format_size(bytes)
    ))
    .await;
    // Swap: two renames in the same directory.
    let old = ctx.with_file_name(format!(".replaced-{stamp}"));
    if ctx.exists() {
        std::fs::rename(ctx, &old).map_err(|e| {
            err(
                ErrorKind::Storage,
                format!("cannot swap the restored context in: {e}"),
            )
        })?;
    }
    if let Err(e) = std::fs::rename(tmp, ctx) {
        let _ = std::fs::rename(&old, ctx);
        return Err(err(
            ErrorKind::Storage,
            format!("cannot swap the restored context in: {e}"),
        ));
    }
    let _ = std::fs::remove_dir_all(&old);
    step("SystemRecovery: restarting".into()).await;
    restart(sup, agent, true).await;
    Ok((files, bytes))
}

async fn restart(sup: &Supervisor, agent: &str, enabled: bool) {
    if enabled {
        let _ = sup
            .actor_request(
                Request::Start {
                    agent: agent.to_string(),
                },
                "autonomos (recovery)".into(),
            )
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_backup_or_restore_at_a_time() {
        let s = Settings {
            data_dir: PathBuf::from("/nonexistent"),
            repositories: vec![],
            config_file: None,
            keep: (None, None, None),
            busy: Arc::new(AtomicBool::new(false)),
        };
        let first = take_slot(&s).expect("free");
        let second = take_slot(&s).err().expect("taken");
        assert!(second.message.contains("in progress"), "{}", second.message);
        drop(first);
        assert!(take_slot(&s).is_ok(), "released when the first ends");
    }
}
