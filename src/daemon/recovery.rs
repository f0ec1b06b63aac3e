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

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::daemon::backup::{self, Job, Written};
use crate::daemon::supervisor::Supervisor;
use crate::proto::{ErrorKind, ErrorReply, Request, Response};

/// What the daemon knows about backups.
#[derive(Debug)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub config_file: Option<PathBuf>,
    /// `[backup]` as the config in force says; a reload replaces it.
    conf: std::sync::RwLock<Conf>,
    /// Woken when a reload changed `conf` (the schedule looks again).
    changed: tokio::sync::Notify,
    /// One backup or restore at a time.
    pub busy: Arc<AtomicBool>,
    /// What it is doing.
    pub meter: Arc<backup::Meter>,
}

/// The reloadable part of [`Settings`].
#[derive(Debug, Clone, PartialEq)]
pub struct Conf {
    /// Primary first, then mirrors.
    pub repositories: Vec<backup::BackupRepo>,
    pub keep: (Option<u32>, Option<u32>, Option<u32>),
    pub every: Option<Duration>,
}

impl Conf {
    fn of(data_dir: &std::path::Path, cfg: &crate::config::Config) -> Conf {
        Conf {
            repositories: if cfg.backup.repositories.is_empty() {
                vec![backup::BackupRepo::Local(data_dir.join("backups"))]
            } else {
                cfg.backup.repositories.clone()
            },
            keep: (
                cfg.backup.keep_last,
                cfg.backup.keep_hourly,
                cfg.backup.keep_daily,
            ),
            every: cfg.backup.every,
        }
    }
}

impl Settings {
    pub fn new(data_dir: PathBuf, cfg: &crate::config::Config) -> Settings {
        Settings {
            conf: std::sync::RwLock::new(Conf::of(&data_dir, cfg)),
            data_dir,
            config_file: cfg.source.clone(),
            changed: tokio::sync::Notify::new(),
            busy: Arc::new(AtomicBool::new(false)),
            meter: Arc::default(),
        }
    }

    /// `[backup]` now.
    pub fn conf(&self) -> Conf {
        self.conf.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Applies a reloaded config's `[backup]`; true when it changed. A
    /// backup already running finishes with what it started with.
    pub fn reconfigure(&self, cfg: &crate::config::Config) -> bool {
        let next = Conf::of(&self.data_dir, cfg);
        let mut conf = self.conf.write().unwrap_or_else(|e| e.into_inner());
        if *conf == next {
            return false;
        }
        *conf = next;
        drop(conf);
        self.changed.notify_one();
        true
    }
}

fn err(kind: ErrorKind, message: impl Into<String>) -> ErrorReply {
    ErrorReply {
        kind,
        message: message.into(),
    }
}

/// Holds the one-at-a-time slot.
struct Slot(Arc<AtomicBool>, Arc<backup::Meter>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.1.end();
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
    Ok(Slot(s.busy.clone(), s.meter.clone()))
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
    let conf = s.conf();
    // `retention` is off only for the backup before a restore: the agents
    // are stopped meanwhile, so it goes to the primary alone and a slow or
    // dead mirror adds nothing to their downtime.
    let mut repositories = conf.repositories;
    if !retention {
        repositories.truncate(1);
    }
    let job = Job {
        data_dir: s.data_dir.clone(),
        repositories,
        config_file: s.config_file.clone(),
        contexts: contexts(sup).await?,
        reason: reason.to_string(),
        // Not before a restore: retention could forget the very snapshot
        // about to be restored.
        keep: if retention {
            conf.keep
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
    let meter = s.meter.clone();
    let written = tokio::task::spawn_blocking(move || backup::run_with(&job, &meter))
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

/// `backup prune`: retention and prune in every repository, in the backup
/// slot (never beside a backup or restore of ours). A repository that a
/// `restic` run by hand holds a lock on is left alone and named.
pub async fn prune(sup: &Supervisor, s: &Settings) -> Result<Response, ErrorReply> {
    let _slot = take_slot(s)?;
    let conf = s.conf();
    s.meter.begin("prune: forgetting and pruning".into());
    let data_dir = s.data_dir.clone();
    let results = tokio::task::spawn_blocking(move || {
        conf.repositories
            .iter()
            .map(|r| (r.clone(), backup::prune(r, &data_dir, conf.keep)))
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| err(ErrorKind::Storage, format!("prune stopped: {e}")))?;
    s.meter.end();
    let mut parts = Vec::new();
    let mut failed = false;
    for (repo, r) in &results {
        parts.push(match r {
            Ok(p) => format!(
                "{}: {} snapshot(s) forgotten, {} kept; {} pack(s) removed ({}), {} of them unreferenced",
                repo,
                p.forgotten,
                p.kept,
                p.packs_removed + p.packs_unreferenced,
                crate::config::format_size(p.bytes_removed),
                p.packs_unreferenced
            ),
            Err(e) => {
                failed = true;
                format!("{}: NOT PRUNED: {e}", repo)
            }
        });
    }
    let text = format!("prune: {}", parts.join("; "));
    sup.audit(
        "autonomos",
        "backup-prune",
        serde_json::json!({
            "pruned": results.iter().filter_map(|(_, r)| r.as_ref().ok()).collect::<Vec<_>>(),
        }),
        &text,
    );
    if failed {
        Err(err(ErrorKind::Storage, text))
    } else {
        Ok(Response::Done { message: text })
    }
}

/// One agent being restored.
struct Target {
    name: String,
    ctx: PathBuf,
    /// Where the snapshot holds the context: `ctx`, or the older layout's
    /// `agents/NAME/context` for a snapshot taken before `contexts/`.
    src: PathBuf,
    tmp: PathBuf,
    was_enabled: bool,
}

/// The `every` schedule, kept from the newest snapshot in the primary
/// repository (whatever made it: the schedule, an operator, a restore), so
/// a daemon restarted more often than `every` still backs up, and one that
/// was down past a due time catches up soon after it starts.
/// Runs for the daemon's life: a reload may turn the schedule on, off, or
/// change it.
pub async fn schedule(sup: Supervisor, s: Arc<Settings>) {
    // Let the fleet start before a catch-up backup reads its contexts.
    let grace = Duration::from_secs(5);
    let mut not_before = crate::clock::now_ms() + grace.as_millis() as u64;
    loop {
        let conf = s.conf();
        let Some(every) = conf.every else {
            s.changed.notified().await;
            not_before = crate::clock::now_ms();
            continue;
        };
        let (repo, data_dir) = (conf.repositories[0].clone(), s.data_dir.clone());
        // No repository yet (or none readable) counts as never backed up;
        // the backup itself then says what is wrong.
        let newest = tokio::task::spawn_blocking(move || backup::list(&repo, &data_dir))
            .await
            .ok()
            .and_then(|r| r.ok())
            .and_then(|snaps| snaps.last().map(|x| x.time));
        let due = next_due(newest, every.as_millis() as u64, not_before);
        let now = crate::clock::now_ms();
        if due > now {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(due - now)) => {}
                // A reload changed the schedule or the repositories: due
                // times follow the new settings from the newest snapshot.
                _ = s.changed.notified() => {
                    not_before = crate::clock::now_ms();
                    continue;
                }
            }
            // Someone may have backed up meanwhile: look again.
            if newest.is_some() {
                continue;
            }
        }
        if s.busy.load(Ordering::SeqCst) {
            // A backup or restore is running; its snapshot moves the clock.
            tokio::time::sleep(Duration::from_secs(5)).await;
            continue;
        }
        match backup(&sup, &s, "schedule").await {
            Ok(_) => {
                not_before = crate::clock::now_ms() + every.as_millis() as u64;
            }
            Err(e) if e.kind == ErrorKind::ShuttingDown => return,
            Err(e) => {
                // Failing backups are retried, but not in a tight loop.
                let wait = every.min(Duration::from_secs(600));
                tracing::error!(error = %e, retry_in_s = wait.as_secs(), "scheduled backup failed");
                not_before = crate::clock::now_ms() + wait.as_millis() as u64;
            }
        }
    }
}

/// When the next scheduled backup is due: `every` after the newest
/// snapshot, never before `not_before` (start grace, retry after failure).
pub fn next_due(newest: Option<u64>, every: u64, not_before: u64) -> u64 {
    newest
        .map_or(0, |t| t.saturating_add(every))
        .max(not_before)
}

/// Runs the restores the supervisor asks for (`recovery =
/// "restore-latest"` after a replica reached Failed), one at a time, for
/// the daemon's life.
pub async fn automatic(
    sup: Supervisor,
    s: Arc<Settings>,
    mut jobs: tokio::sync::mpsc::UnboundedReceiver<crate::daemon::supervisor::RecoveryJob>,
) {
    while let Some((agent, why)) = jobs.recv().await {
        // A backup in progress (say, the schedule's) holds the slot: wait
        // for it rather than give the one automatic attempt up.
        let t = std::time::Instant::now();
        while s.busy.load(std::sync::atomic::Ordering::SeqCst)
            && t.elapsed() < Duration::from_secs(1800)
        {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        match restore(&sup, &s, Some(&agent), None, None, &why).await {
            Ok(Response::Done { message }) => tracing::warn!(agent = %agent, "{message}"),
            Ok(_) => {}
            Err(e) => tracing::error!(agent = %agent, error = %e, "automatic recovery failed"),
        }
    }
}

/// `Request::Restore`: the recovery workflow for one agent, or (`agent`
/// None) for every agent whose context the snapshot holds.
pub async fn restore(
    sup: &Supervisor,
    s: &Settings,
    agent: Option<&str>,
    snapshot: Option<&str>,
    at: Option<u64>,
    why: &str,
) -> Result<Response, ErrorReply> {
    let _slot = take_slot(s)?;
    let status = sup.actor_status().await?;
    if let Some(name) = agent
        && !status.agents.iter().any(|a| a.name == name)
    {
        return Err(err(
            ErrorKind::UnknownAgent,
            format!("unknown agent `{name}`"),
        ));
    }
    // Pick the snapshot first: no point stopping anything if there is none.
    let primary = s.conf().repositories[0].clone();
    let data_dir = s.data_dir.clone();
    let snaps = tokio::task::spawn_blocking(move || backup::list(&primary, &data_dir))
        .await
        .map_err(|e| err(ErrorKind::Storage, e.to_string()))?
        .map_err(|e| err(ErrorKind::Storage, e))?;
    let chosen = backup::pick(&snaps, snapshot, at).map_err(|e| err(ErrorKind::Invalid, e))?;
    let short = &chosen.id[..8.min(chosen.id.len())];
    let stamp = crate::clock::now_ms();
    let (targets, skipped) = targets_in(&status, agent, &chosen, stamp)?;
    let names: Vec<String> = targets.iter().map(|t| t.name.clone()).collect();
    let step = |text: String| {
        let sup = sup.clone();
        let names = names.clone();
        async move {
            let who = names.join(", ");
            tracing::warn!(agent = %who, step = %text, "recovery");
            sup.audit(
                "autonomos",
                "recovery",
                serde_json::json!({ "agent": who }),
                &text,
            );
            for name in &names {
                let _ = sup.note_recovery(name, &text).await;
            }
        }
    };
    step(format!("DetectFailure: {why}")).await;

    // Isolate. From here on, any failure starts the agents again and
    // leaves the current contexts as they were.
    step(format!("IsolateSystem: stopping {}", names.join(", "))).await;
    let mut stopped = 0;
    let mut outcome = Ok(Vec::new());
    for t in &targets {
        if let Err(e) = sup
            .actor_request(
                Request::Stop {
                    agent: t.name.clone(),
                },
                "autonomos (recovery)".into(),
            )
            .await
        {
            outcome = Err(e);
            break;
        }
        stopped += 1;
    }
    if outcome.is_ok() {
        outcome = swap_in(sup, s, &targets, &chosen, stamp, &step).await;
    }
    let restored = match outcome {
        Ok(r) => r,
        Err(e) => {
            for t in &targets[..stopped] {
                let _ = std::fs::remove_dir_all(&t.tmp);
                restart(sup, &t.name, t.was_enabled).await;
            }
            return Err(e);
        }
    };
    let (files, bytes) = restored
        .iter()
        .fold((0, 0), |(f, b), (x, y)| (f + x, b + y));
    let mut message = format!(
        "restored {} from snapshot {short} ({}): {files} files, {}",
        names.join(", "),
        crate::core::units::utc(chosen.time),
        crate::config::format_size(bytes)
    );
    if !skipped.is_empty() {
        message.push_str(&format!(
            "; not in the snapshot, left as they are: {}",
            skipped.join(", ")
        ));
    }
    Ok(Response::Done { message })
}

/// The agents to restore (those whose context the snapshot holds) and the
/// ones it does not hold; an error when it holds none of them.
fn targets_in(
    status: &crate::proto::FleetStatus,
    agent: Option<&str>,
    chosen: &backup::SnapshotInfo,
    stamp: u64,
) -> Result<(Vec<Target>, Vec<String>), ErrorReply> {
    let short = &chosen.id[..8.min(chosen.id.len())];
    let (mut targets, mut skipped) = (Vec::new(), Vec::new());
    for a in &status.agents {
        if agent.is_some_and(|n| n != a.name) {
            continue;
        }
        let ctx = PathBuf::from(&a.context_dir);
        let Some(src) = held_at(chosen, &ctx, &a.name) else {
            skipped.push(a.name.clone());
            continue;
        };
        targets.push(Target {
            name: a.name.clone(),
            src,
            tmp: ctx.with_file_name(format!(".restore-{stamp}-{}", a.name)),
            ctx,
            was_enabled: a.enabled,
        });
    }
    if targets.is_empty() {
        return Err(err(
            ErrorKind::Invalid,
            match agent {
                Some(name) => format!(
                    "snapshot {short} ({}) holds no context of `{name}`: it was backed up before the agent existed or under another context dir",
                    crate::core::units::utc(chosen.time)
                ),
                None => format!("snapshot {short} holds no context of any current agent"),
            },
        ));
    }
    Ok((targets, skipped))
}

/// Where `chosen` holds the context now at `ctx`: there, or, for a context
/// in `DATA_DIR/contexts/NAME`, where a snapshot taken before that layout
/// holds it (`DATA_DIR/agents/NAME/context`): a disaster recovery into a
/// fresh data dir restores old snapshots too.
fn held_at(chosen: &backup::SnapshotInfo, ctx: &Path, name: &str) -> Option<PathBuf> {
    use crate::daemon::supervisor::{CONTEXTS, LEGACY_CONTEXTS};
    if chosen.holds(ctx) {
        return Some(ctx.to_path_buf());
    }
    let parent = ctx.parent()?;
    if parent.file_name()? != CONTEXTS {
        return None;
    }
    let data = parent.parent()?;
    // Snapshots name paths canonically.
    let data = std::fs::canonicalize(data).unwrap_or_else(|_| data.to_path_buf());
    let old = data.join(LEGACY_CONTEXTS).join(name).join("context");
    chosen.holds(&old).then_some(old)
}

/// Isolation done: wait for the trees to go, back up, load, validate, swap.
/// Returns (files, bytes) per target. On error every target's context is
/// as it was (the caller removes the temporary dirs and restarts).
async fn swap_in<F, Fut>(
    sup: &Supervisor,
    s: &Settings,
    targets: &[Target],
    chosen: &backup::SnapshotInfo,
    stamp: u64,
    step: &F,
) -> Result<Vec<(u64, u64)>, ErrorReply>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    wait_stopped(sup, targets).await?;
    // What is there now is kept first.
    step("backing up the current state before restoring".into()).await;
    let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
    run_backup(
        sup,
        s,
        &format!("before restoring {}", names.join(", ")),
        false,
    )
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
        crate::core::units::utc(chosen.time)
    ))
    .await;
    let (repo, data_dir, id, meter) = (
        s.conf().repositories[0].clone(),
        s.data_dir.clone(),
        chosen.id.clone(),
        s.meter.clone(),
    );
    let dirs: Vec<(PathBuf, PathBuf)> = targets
        .iter()
        .map(|t| (t.src.clone(), t.tmp.clone()))
        .collect();
    let loaded = tokio::task::spawn_blocking(move || {
        crate::daemon::restore::restore_dirs(&repo, &data_dir, &id, &dirs, &meter)
    })
    .await
    .map_err(|e| err(ErrorKind::Storage, e.to_string()))?;
    let restored = match loaded {
        Ok(x) => x,
        Err(e) => {
            step(format!(
                "ValidateIntegrity FAILED: {e}; the current context is untouched"
            ))
            .await;
            return Err(err(
                ErrorKind::Storage,
                format!(
                    "restore of {} failed, current context untouched: {e}",
                    names.join(", ")
                ),
            ));
        }
    };
    let (files, bytes) = restored
        .iter()
        .fold((0, 0), |(f, b), (x, y)| (f + x, b + y));
    step(format!(
        "ValidateIntegrity: {files} files, {} verified",
        crate::config::format_size(bytes)
    ))
    .await;
    swap_dirs(targets, stamp)?;
    step("SystemRecovery: restarting".into()).await;
    for t in targets {
        restart(sup, &t.name, t.was_enabled).await;
    }
    Ok(restored)
}

/// Waits (up to 60 s) until no replica of the targets has a process.
async fn wait_stopped(sup: &Supervisor, targets: &[Target]) -> Result<(), ErrorReply> {
    let t = Instant::now();
    loop {
        let st = sup.actor_status().await?;
        let quiet = st
            .agents
            .iter()
            .filter(|x| targets.iter().any(|t| t.name == x.name))
            .all(|x| x.replicas.iter().all(|r| r.pid.is_none()));
        if quiet {
            break;
        }
        if t.elapsed() > Duration::from_secs(60) {
            return Err(err(
                ErrorKind::Invalid,
                "the agents did not stop within 60s; nothing restored",
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Swaps each restored dir in: two renames per agent in the same
/// directory; a failure puts back what was already swapped.
fn swap_dirs(targets: &[Target], stamp: u64) -> Result<(), ErrorReply> {
    let old = |t: &Target| {
        t.ctx
            .with_file_name(format!(".replaced-{stamp}-{}", t.name))
    };
    let mut done: Vec<&Target> = Vec::new();
    let mut failed = None;
    for t in targets {
        let had = t.ctx.exists();
        if had && let Err(e) = std::fs::rename(&t.ctx, old(t)) {
            failed = Some(e);
            break;
        }
        if let Err(e) = std::fs::rename(&t.tmp, &t.ctx) {
            if had {
                let _ = std::fs::rename(old(t), &t.ctx);
            }
            failed = Some(e);
            break;
        }
        done.push(t);
    }
    if let Some(e) = failed {
        for t in done.iter().rev() {
            // Back to how it was: the restored dir goes, the old comes back.
            let _ = std::fs::remove_dir_all(&t.ctx);
            let _ = std::fs::rename(old(t), &t.ctx);
        }
        return Err(err(
            ErrorKind::Storage,
            format!("cannot swap the restored context in: {e}; nothing restored"),
        ));
    }
    for t in targets {
        let _ = std::fs::remove_dir_all(old(t));
    }
    Ok(())
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
    fn the_schedule_runs_from_the_newest_snapshot() {
        let h = 3_600_000;
        // Never backed up: as soon as allowed.
        assert_eq!(next_due(None, h, 5_000), 5_000);
        // Backed up 10 minutes ago: 50 minutes from now.
        assert_eq!(next_due(Some(1_000_000), h, 1_600_000), 1_000_000 + h);
        // Overdue (the daemon was down): at once, after the grace.
        assert_eq!(next_due(Some(0), h, 10 * h), 10 * h);
        // No overflow at the far end.
        assert_eq!(next_due(Some(u64::MAX - 1), h, 0), u64::MAX);
    }

    fn config(text: &str) -> crate::config::Config {
        let host = crate::config::HostFacts {
            cpus: 2.0,
            memory: 1 << 30,
        };
        crate::config::load_str(text, None, &host).expect("valid")
    }

    #[test]
    fn a_reload_replaces_the_backup_settings_and_says_whether_they_changed() {
        let s = Settings::new(PathBuf::from("/data"), &config(""));
        let c = s.conf();
        assert_eq!(
            c.repositories,
            vec![backup::BackupRepo::Local(PathBuf::from("/data/backups"))]
        );
        assert_eq!((c.every, c.keep), (None, (None, None, None)));
        let next =
            config("[backup]\nrepositories = [\"/a\", \"/b\"]\nevery = \"2h\"\nkeep_last = 3\n");
        assert!(s.reconfigure(&next));
        let c = s.conf();
        assert_eq!(
            c.repositories,
            vec![
                backup::BackupRepo::Local(PathBuf::from("/a")),
                backup::BackupRepo::Local(PathBuf::from("/b"))
            ]
        );
        assert_eq!(c.every, Some(Duration::from_secs(7200)));
        assert_eq!(c.keep, (Some(3), None, None));
        assert!(!s.reconfigure(&next), "the same again is no change");
    }

    #[test]
    fn one_backup_or_restore_at_a_time() {
        let s = Settings::new(PathBuf::from("/nonexistent"), &config(""));
        let first = take_slot(&s).expect("free");
        let second = take_slot(&s).err().expect("taken");
        assert!(second.message.contains("in progress"), "{}", second.message);
        drop(first);
        assert!(take_slot(&s).is_ok(), "released when the first ends");
    }
}
