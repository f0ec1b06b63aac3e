//! Backups: restic-format repositories written with rustic_core, so the
//! real `restic` reads, checks and restores them.
//!
//! Everything here blocks (rustic_core runs rayon inside): the supervisor
//! calls it through `spawn_blocking`. A backup snapshots, in one run:
//! a consistent copy of `state.db` (SQLite's `VACUUM INTO`, never a copy of
//! the live file), the config in force, the audit trail (complete lines
//! only), and every agent's context dir. The password lives in
//! `DATA_DIR/backup-password` (0600), outside every backed-up path.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rustic_backend::BackendOptions;
use rustic_core::repofile::SnapshotFile;
use rustic_core::{
    BackupOptions, CheckOptions, ConfigOptions, Credentials, KeyOptions, PathList, Progress,
    ProgressBars, ProgressType, Repository, RepositoryBackends, RepositoryOptions, RusticProgress,
    SnapshotOptions,
};

use crate::core::lifecycle::Millis;
pub use crate::core::repo::BackupRepo;

pub mod sftp;

/// The host name recorded in our snapshots (restic groups parents by host
/// and paths, so backups stay incremental whatever the machine is called).
pub const SNAPSHOT_HOST: &str = "autonomos";

/// Where the repository password is kept.
pub fn password_file(data_dir: &Path) -> PathBuf {
    data_dir.join("backup-password")
}

/// Reads the password, or makes one (0600) at first use. Returns it and
/// whether it was just made.
pub fn password(data_dir: &Path) -> Result<(String, bool), String> {
    let path = password_file(data_dir);
    if let Ok(p) = std::fs::read_to_string(&path) {
        let p = p.trim().to_string();
        if p.is_empty() {
            return Err(format!(
                "{} is empty: restore the saved copy of the backup password there",
                path.display()
            ));
        }
        return Ok((p, false));
    }
    let mut seed = [0u8; 32];
    rand::fill(&mut seed);
    let pass = crate::core::audit::hex(&seed);
    crate::daemon::audit::write_private(&path, &format!("{pass}\n"))
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    Ok((pass, true))
}

/// What a backup or restore is doing now: rustic_core reports its steps
/// and byte counts through [`ProgressBars`]; the supervisor reads the
/// newest step once per tick for the console and `status`.
#[derive(Debug, Default)]
pub struct Meter {
    /// The job (`backup to /srv/backups (1/2)`); empty when idle.
    what: Mutex<String>,
    current: Mutex<Option<Arc<Bar>>>,
}

#[derive(Debug)]
struct Bar {
    title: Mutex<String>,
    done: AtomicU64,
    total: AtomicU64,
    bytes: bool,
}

impl Meter {
    /// Starts a job (or the next part of one).
    pub fn begin(&self, what: String) {
        *self.what.lock().unwrap_or_else(|e| e.into_inner()) = what;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The job is over.
    pub fn end(&self) {
        self.begin(String::new());
    }

    /// Ends the job when dropped, whichever way the job returns.
    pub(crate) fn idle_on_drop(&self) -> impl Drop + '_ {
        struct Idle<'a>(&'a Meter);
        impl Drop for Idle<'_> {
            fn drop(&mut self) {
                self.0.end();
            }
        }
        Idle(self)
    }

    /// What runs now, if anything.
    pub fn read(&self) -> Option<crate::proto::BackupProgress> {
        let what = self.what.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if what.is_empty() {
            return None;
        }
        let bar = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Some(match bar {
            Some(b) => crate::proto::BackupProgress {
                what,
                step: b.title.lock().unwrap_or_else(|e| e.into_inner()).clone(),
                done: b.done.load(Ordering::Relaxed),
                total: b.total.load(Ordering::Relaxed),
                bytes: b.bytes,
            },
            None => crate::proto::BackupProgress {
                what,
                ..Default::default()
            },
        })
    }
}

/// The [`ProgressBars`] handed to rustic_core.
#[derive(Debug, Clone)]
struct MeterBars(Arc<Meter>);

#[derive(Debug)]
struct BarHandle(Arc<Bar>);

impl ProgressBars for MeterBars {
    fn progress(&self, kind: ProgressType, prefix: &str) -> Progress {
        let bar = Arc::new(Bar {
            title: Mutex::new(prefix.trim_end_matches("...").trim().to_string()),
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            bytes: matches!(kind, ProgressType::Bytes),
        });
        // Unnamed counters (index reads) do not replace a named step.
        if !prefix.is_empty() {
            *self.0.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar.clone());
        }
        Progress::new(BarHandle(bar))
    }
}

impl RusticProgress for BarHandle {
    fn is_hidden(&self) -> bool {
        false
    }
    fn set_length(&self, len: u64) {
        self.0.total.store(len, Ordering::Relaxed);
    }
    fn set_title(&self, title: &str) {
        *self.0.title.lock().unwrap_or_else(|e| e.into_inner()) = title.to_string();
    }
    fn inc(&self, n: u64) {
        self.0.done.fetch_add(n, Ordering::Relaxed);
    }
    fn finish(&self) {}
}

pub(crate) fn rerr<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> String + '_ {
    move |e| format!("{what}: {}", plain(&e.to_string()))
}

/// A backup library error in the operator's words: its summary and
/// message, without the context, causes and backtrace it carries (shown
/// with `backup verify -v`).
pub fn plain(text: &str) -> String {
    let first = text
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .trim_end_matches('.');
    match text.find("Message:\n") {
        Some(i) => {
            let rest = &text[i + "Message:\n".len()..];
            let message = rest.split("\n\n").next().unwrap_or(rest).trim();
            format!("{first}: {message}")
        }
        None => first.to_string(),
    }
}

/// Opens an existing repository (for readers outside this module).
pub fn open_repository(
    repo: &BackupRepo,
    pass: &str,
) -> Result<Repository<rustic_core::OpenStatus>, String> {
    open(&Store::connect(repo)?, pass, false, None)
}

/// A repository's storage, connected: a local directory, or an SFTP
/// session kept for the whole job.
pub(crate) struct Store {
    pub repo: BackupRepo,
    sftp: Option<Arc<sftp::SftpBackend>>,
}

impl Store {
    pub(crate) fn connect(repo: &BackupRepo) -> Result<Store, String> {
        let sftp = match repo {
            BackupRepo::Local(_) => None,
            BackupRepo::Sftp(t) => Some(Arc::new(sftp::SftpBackend::connect(t)?)),
        };
        Ok(Store {
            repo: repo.clone(),
            sftp,
        })
    }

    /// Whether a repository is there (its `config` file exists).
    pub(crate) fn exists(&self) -> Result<bool, String> {
        match (&self.repo, &self.sftp) {
            (BackupRepo::Local(p), _) => Ok(p.join("config").exists()),
            (_, Some(s)) => s.exists(),
            _ => Ok(false),
        }
    }

    /// The names in `locks/`.
    fn lock_names(&self) -> Result<Vec<String>, String> {
        match (&self.repo, &self.sftp) {
            (BackupRepo::Local(p), _) => Ok(std::fs::read_dir(p.join("locks"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()),
            (_, Some(s)) => s.lock_names(),
            _ => Ok(Vec::new()),
        }
    }

    fn backends(&self) -> Result<RepositoryBackends, String> {
        match (&self.repo, &self.sftp) {
            (BackupRepo::Local(path), _) => BackendOptions::default()
                .repository(path.to_string_lossy().to_string())
                .to_backends()
                .map_err(rerr("backend")),
            (_, Some(s)) => Ok(RepositoryBackends::new(s.clone(), None)),
            _ => Err("not connected".into()),
        }
    }
}

/// Opens the repository, creating it (a local dir 0700) when `create`.
pub(crate) fn open(
    store: &Store,
    pass: &str,
    create: bool,
    meter: Option<&Arc<Meter>>,
) -> Result<Repository<rustic_core::OpenStatus>, String> {
    let exists = store.exists()?;
    if !exists && !create {
        return Err(format!("no backup repository at {}", store.repo));
    }
    if !exists && let BackupRepo::Local(path) = &store.repo {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700));
    }
    let backends = store.backends()?;
    let opts = RepositoryOptions::default().no_cache(true);
    let repo = match meter {
        Some(m) => Repository::new_with_progress(&opts, &backends, MeterBars(m.clone())),
        None => Repository::new(&opts, &backends),
    }
    .map_err(rerr("repository"))?;
    let creds = Credentials::password(pass);
    if exists {
        repo.open(&creds)
            .map_err(rerr("cannot open the repository"))
    } else {
        repo.init(&creds, &KeyOptions::default(), &ConfigOptions::default())
            .map_err(rerr("cannot create the repository"))
    }
}

/// What to back up.
#[derive(Debug, Clone)]
pub struct Job {
    pub data_dir: PathBuf,
    /// Primary first, then mirrors.
    pub repositories: Vec<BackupRepo>,
    pub config_file: Option<PathBuf>,
    /// Context dirs of the agents.
    pub contexts: Vec<PathBuf>,
    /// Why (`operator`, `schedule`, `before restore`).
    pub reason: String,
    /// Retention: (last, hourly, daily); nothing is forgotten when all are None.
    pub keep: (Option<u32>, Option<u32>, Option<u32>),
}

/// One repository's result.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Written {
    pub repository: String,
    pub snapshot: Option<String>,
    pub error: Option<String>,
    pub files: u64,
    pub bytes: u64,
    pub added: u64,
    /// Snapshots removed by the retention rules.
    #[serde(default)]
    pub forgotten: usize,
}

/// Forgets the snapshots the retention rules do not keep, then prunes the
/// data only they used. Returns how many were forgotten.
fn retain(
    repo: &Repository<rustic_core::IndexedIdsStatus>,
    store: &Store,
    keep: (Option<u32>, Option<u32>, Option<u32>),
) -> Result<usize, String> {
    if keep == (None, None, None) {
        return Ok(0);
    }
    // A restic run by hand holds locks: leave retention to a later run.
    if let Err(e) = restic_locks(store) {
        tracing::warn!(error = %e, "retention skipped after the backup");
        return Ok(0);
    }
    let forgotten = forget(repo, keep)?;
    if forgotten == 0 {
        return Ok(0);
    }
    let popts = rustic_core::PruneOptions::default();
    let plan = repo.prune_plan(&popts).map_err(rerr("prune plan"))?;
    repo.prune(&popts, plan).map_err(rerr("prune"))?;
    Ok(forgotten)
}

/// What `backup prune` did to one repository.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Pruned {
    pub repository: String,
    /// Snapshots forgotten by the retention rules.
    pub forgotten: usize,
    /// Snapshots kept.
    pub kept: usize,
    /// Pack files removed, and their bytes.
    pub packs_removed: u64,
    pub bytes_removed: u64,
    /// Pack files no index referred to (left by an interrupted backup or
    /// prune), removed too.
    pub packs_unreferenced: u64,
}

/// Refuses to prune while a restic process holds a lock on the
/// repository: rustic writes no locks of its own, but restic writes one
/// for every operation, so its lock files say a `restic` run by hand is
/// working (or died; `restic unlock` clears a stale one).
pub(crate) fn restic_locks(store: &Store) -> Result<(), String> {
    let locks = store.lock_names()?;
    if locks.is_empty() {
        return Ok(());
    }
    Err(format!(
        "restic holds {} lock(s) on {} (locks/{}): a `restic` command is working on it; prune when it is done, or run `restic unlock` if the lock is stale",
        locks.len(),
        store.repo,
        &locks[0][..locks[0].len().min(12)]
    ))
}

/// Forgets the snapshots the retention rules do not keep (none without
/// rules) and prunes the data no snapshot uses, including what an
/// interrupted backup or prune left behind. The daemon runs it in the
/// backup slot, so no backup or restore of ours runs meanwhile.
pub fn prune(
    repo: &BackupRepo,
    data_dir: &Path,
    keep: (Option<u32>, Option<u32>, Option<u32>),
) -> Result<Pruned, String> {
    let store = Store::connect(repo)?;
    restic_locks(&store)?;
    let (pass, _) = password(data_dir)?;
    let repo = open(&store, &pass, false, None)?
        .to_indexed_ids()
        .map_err(rerr("index"))?;
    let before = repo.get_all_snapshots().map_err(rerr("snapshots"))?.len();
    let forgotten = if keep == (None, None, None) {
        0
    } else {
        forget(&repo, keep)?
    };
    let popts = rustic_core::PruneOptions::default();
    let plan = repo.prune_plan(&popts).map_err(rerr("prune plan"))?;
    let stats = &plan.stats;
    let out = Pruned {
        repository: store.repo.to_string(),
        forgotten,
        kept: before - forgotten,
        packs_removed: stats.packs_to_delete.remove,
        bytes_removed: stats.size_to_delete.remove,
        packs_unreferenced: stats.packs_unref,
    };
    repo.prune(&popts, plan).map_err(rerr("prune"))?;
    Ok(out)
}

/// Forgets the snapshots the retention rules do not keep.
fn forget(
    repo: &Repository<rustic_core::IndexedIdsStatus>,
    keep: (Option<u32>, Option<u32>, Option<u32>),
) -> Result<usize, String> {
    let to_i = |v: Option<u32>| v.map(|n| n as i32);
    let opts = rustic_core::KeepOptions::default()
        .keep_last(to_i(keep.0))
        .keep_hourly(to_i(keep.1))
        .keep_daily(to_i(keep.2));
    let snaps = repo.get_all_snapshots().map_err(rerr("snapshots"))?;
    let now = jiff::Zoned::now();
    let ids: Vec<_> = opts
        .apply(snaps, &now)
        .map_err(rerr("retention"))?
        .into_iter()
        .filter(|s| !s.keep)
        .map(|s| s.snapshot.id)
        .collect();
    if !ids.is_empty() {
        repo.delete_snapshots(&ids).map_err(rerr("forget"))?;
    }
    Ok(ids.len())
}

/// The staging dir: consistent copies of what cannot be read live.
pub fn staging(data_dir: &Path) -> PathBuf {
    data_dir.join("backup-staging")
}

fn prepare_staging(job: &Job) -> Result<PathBuf, String> {
    let dir = staging(&job.data_dir);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // SQLite's own consistent copy of the live database.
    let db = job.data_dir.join("state.db");
    if db.exists() {
        let conn = rusqlite::Connection::open_with_flags(
            &db,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| format!("cannot read state.db: {e}"))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        let out = dir.join("state.db");
        conn.execute("VACUUM INTO ?1", [out.to_string_lossy().as_ref()])
            .map_err(|e| format!("cannot copy state.db: {e}"))?;
    }
    if let Some(cfg) = &job.config_file
        && let Ok(text) = std::fs::read(cfg)
    {
        std::fs::write(dir.join("autonomos.toml"), text).map_err(|e| e.to_string())?;
    }
    // The audit trail: complete lines only (a record being written is left
    // for the next backup).
    let audit = job.data_dir.join("audit");
    if audit.is_dir() {
        let out = dir.join("audit");
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&out)
            .map_err(|e| e.to_string())?;
        for name in ["audit.jsonl", "checkpoints.jsonl", "key.pub"] {
            if let Ok(mut bytes) = std::fs::read(audit.join(name)) {
                let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                bytes.truncate(keep);
                std::fs::write(out.join(name), bytes).map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(dir)
}

/// Runs a backup to every repository. The primary's failure is an error;
/// a mirror's is reported in its `Written`.
pub fn run(job: &Job) -> Result<Vec<Written>, String> {
    run_with(job, &Arc::new(Meter::default()))
}

/// [`run`], reporting its steps to `meter`. The primary comes first and
/// alone: its snapshot is written whatever the mirrors do. The mirrors then
/// run side by side, each within its own time limit, so a slow or dead one
/// holds up neither the primary nor the others.
pub fn run_with(job: &Job, meter: &Arc<Meter>) -> Result<Vec<Written>, String> {
    let _idle = meter.idle_on_drop();
    let (pass, _) = password(&job.data_dir)?;
    meter.begin("backup: copying state.db, config, audit trail".into());
    let stage = prepare_staging(job)?;
    let mut paths = vec![stage.clone()];
    paths.extend(job.contexts.iter().filter(|p| p.is_dir()).cloned());
    let n = job.repositories.len();
    let Some((primary, mirrors)) = job.repositories.split_first() else {
        return Err("no backup repository configured".into());
    };
    meter.begin(format!(
        "backup to {primary}{}",
        if n > 1 {
            format!(" (1/{n})")
        } else {
            String::new()
        }
    ));
    let mut out = match backup_one(primary, &pass, &paths, job, Some(meter)) {
        Ok(w) => vec![w],
        Err(e) => {
            let _ = std::fs::remove_dir_all(&stage);
            return Err(format!("backup to {primary} failed: {e}"));
        }
    };
    if !mirrors.is_empty() {
        meter.begin(match mirrors {
            [one] => format!("backup to {one} (2/2)"),
            _ => format!(
                "backup to {} mirrors side by side (2-{n}/{n})",
                mirrors.len()
            ),
        });
        let results: Vec<Written> = std::thread::scope(|scope| {
            let running: Vec<_> = mirrors
                .iter()
                .map(|m| {
                    let paths = &paths;
                    let pass = &pass;
                    scope.spawn(move || backup_one(m, pass, paths, job, Some(meter)))
                })
                .collect();
            running
                .into_iter()
                .zip(mirrors)
                .map(|(h, m)| {
                    let r = h.join().unwrap_or_else(|_| {
                        Err(format!("{m}: the backup stopped on an internal error"))
                    });
                    r.unwrap_or_else(|e| {
                        tracing::warn!(mirror = %m, error = %e, "backup mirror failed");
                        Written {
                            repository: m.to_string(),
                            snapshot: None,
                            error: Some(e),
                            files: 0,
                            bytes: 0,
                            added: 0,
                            forgotten: 0,
                        }
                    })
                })
                .collect()
        });
        out.extend(results);
    }
    let _ = std::fs::remove_dir_all(&stage);
    Ok(out)
}

/// One repository's backup (and retention).
fn backup_one(
    repo: &BackupRepo,
    pass: &str,
    paths: &[PathBuf],
    job: &Job,
    meter: Option<&Arc<Meter>>,
) -> Result<Written, String> {
    let store = Store::connect(repo)?;
    let repo = open(&store, pass, true, meter)?
        .to_indexed_ids()
        .map_err(rerr("index"))?;
    let source = PathList::from_iter(paths.iter().cloned())
        .sanitize()
        .map_err(rerr("paths"))?;
    let snap = SnapshotOptions::default()
        .host(Some(SNAPSHOT_HOST.to_string()))
        .add_tags("autonomos")
        .map_err(rerr("tags"))?
        .description(Some(job.reason.clone()))
        .to_snapshot()
        .map_err(rerr("snapshot"))?;
    let snap = repo
        .backup(&BackupOptions::default(), &source, snap)
        .map_err(rerr("backup"))?;
    let s = snap.summary.clone().unwrap_or_default();
    let forgotten = retain(&repo, &store, job.keep)?;
    Ok(Written {
        repository: store.repo.to_string(),
        snapshot: Some(snap.id.to_string()),
        error: None,
        files: s.total_files_processed,
        bytes: s.total_bytes_processed,
        added: s.data_added,
        forgotten,
    })
}

/// A snapshot as `backup list` shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct SnapshotInfo {
    pub id: String,
    /// ms since the Unix epoch.
    pub time: Millis,
    pub files: u64,
    pub bytes: u64,
    pub added: u64,
    pub reason: String,
    /// The paths backed up (canonical, absolute).
    #[serde(default)]
    pub paths: Vec<String>,
}

impl SnapshotInfo {
    /// Whether `dir` (as the daemon names it) was backed up in this
    /// snapshot, itself or inside a backed-up path.
    pub fn holds(&self, dir: &Path) -> bool {
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        self.paths.iter().any(|p| dir.starts_with(p))
    }
}

fn info(s: &SnapshotFile) -> SnapshotInfo {
    let sum = s.summary.clone().unwrap_or_default();
    SnapshotInfo {
        id: s.id.to_string(),
        time: s.time.timestamp().as_millisecond().max(0) as u64,
        files: sum.total_files_processed,
        bytes: sum.total_bytes_processed,
        added: sum.data_added,
        reason: s.description.clone().unwrap_or_default(),
        paths: s.paths.iter().map(|p| p.to_string()).collect(),
    }
}

/// Snapshots of a repository, oldest first.
pub fn list(repo: &BackupRepo, data_dir: &Path) -> Result<Vec<SnapshotInfo>, String> {
    list_in(&Store::connect(repo)?, data_dir)
}

/// [`list`] over a connected store.
pub(crate) fn list_in(store: &Store, data_dir: &Path) -> Result<Vec<SnapshotInfo>, String> {
    let (pass, _) = password(data_dir)?;
    let repo = open(store, &pass, false, None)?;
    let mut snaps: Vec<SnapshotInfo> = repo
        .get_all_snapshots()
        .map_err(rerr("snapshots"))?
        .iter()
        .map(info)
        .collect();
    snaps.sort_by_key(|s| s.time);
    Ok(snaps)
}

/// The snapshot to restore: by id (a unique prefix), or the newest at or
/// before `at`.
pub fn pick(
    snaps: &[SnapshotInfo],
    id: Option<&str>,
    at: Option<Millis>,
) -> Result<SnapshotInfo, String> {
    if let Some(id) = id {
        let found: Vec<&SnapshotInfo> = snaps.iter().filter(|s| s.id.starts_with(id)).collect();
        return match found.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(format!("no snapshot `{id}` (see `autonomos backup list`)")),
            _ => Err(format!(
                "`{id}` matches {} snapshots; give more of the id",
                found.len()
            )),
        };
    }
    let at = at.unwrap_or(u64::MAX);
    snaps
        .iter()
        .filter(|s| s.time <= at)
        .max_by_key(|s| s.time)
        .cloned()
        .ok_or_else(|| "no snapshot at or before that time".to_string())
}

/// `backup verify`: the repository's structure, and with `read_data` every
/// pack's content. Returns (errors, warnings): errors mean data is damaged
/// or missing; warnings are harmless leftovers such as packs no snapshot
/// uses (what an interrupted backup leaves behind).
pub fn verify(
    repo: &BackupRepo,
    data_dir: &Path,
    read_data: bool,
) -> Result<(Vec<String>, Vec<String>), String> {
    verify_in(&Store::connect(repo)?, data_dir, read_data)
}

/// [`verify`] over a connected store.
pub(crate) fn verify_in(
    store: &Store,
    data_dir: &Path,
    read_data: bool,
) -> Result<(Vec<String>, Vec<String>), String> {
    let (pass, _) = password(data_dir)?;
    let repo = open(store, &pass, false, None)?;
    let results = repo
        .check(CheckOptions::default().read_data(read_data))
        .map_err(rerr("check"))?;
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    for (level, e) in &results.0 {
        // The level's type is not exported by rustic_core 0.13.
        if format!("{level:?}") == "Error" {
            errors.push(e.to_string());
        } else {
            warnings.push(e.to_string());
        }
    }
    Ok((errors, warnings))
}
