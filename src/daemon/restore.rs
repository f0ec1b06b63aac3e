//! Restores from a backup repository: directories of one snapshot back
//! into place, checked file by file; a failure caused by damaged data
//! names what the damage takes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustic_core::repofile::SnapshotFile;
use rustic_core::{LocalDestination, LsOptions, Repository, RestoreOptions};

use crate::daemon::backup::{BackupRepo, Meter, Store, open, password, rerr};
use crate::daemon::damage;

/// Restores the directory `path` (absolute, as backed up) of snapshot `id`
/// into `dest` (created, must not exist), then checks that every file came
/// back with its size. Returns (files, bytes).
pub fn restore_dir(
    repo: &BackupRepo,
    data_dir: &Path,
    id: &str,
    path: &Path,
    dest: &Path,
) -> Result<(u64, u64), String> {
    restore_dirs(
        repo,
        data_dir,
        id,
        &[(path.to_path_buf(), dest.to_path_buf())],
        &Arc::new(Meter::default()),
    )
    .map(|v| v[0])
}

/// [`restore_dir`] for several directories of one snapshot, opening the
/// repository and its index once. Stops at the first failure, naming the
/// directory; what was restored before it is left for the caller to remove.
pub fn restore_dirs(
    repo_path: &BackupRepo,
    data_dir: &Path,
    id: &str,
    dirs: &[(PathBuf, PathBuf)],
    meter: &Arc<Meter>,
) -> Result<Vec<(u64, u64)>, String> {
    let _idle = meter.idle_on_drop();
    let (pass, _) = password(data_dir)?;
    meter.begin(format!("restore from {repo_path}"));
    let repo = open(&Store::connect(repo_path)?, &pass, false, Some(meter))?
        .to_indexed()
        .map_err(rerr("index"))?;
    let snap = repo
        .get_snapshot_from_str(id, |_| true)
        .map_err(rerr("snapshot"))?;
    let mut out = Vec::with_capacity(dirs.len());
    for (i, (path, dest)) in dirs.iter().enumerate() {
        if dirs.len() > 1 {
            meter.begin(format!(
                "restore of {} ({}/{})",
                path.display(),
                i + 1,
                dirs.len()
            ));
        }
        // The snapshot names paths canonically.
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
        let restored = restore_node(&repo, &snap, &path, dest)
            .map_err(|e| explain_damage(repo_path, data_dir, &snap.id.to_string(), &path, e));
        out.push(restored.map_err(|e| {
            if dirs.len() > 1 {
                format!("{}: {e}", path.display())
            } else {
                e
            }
        })?);
    }
    Ok(out)
}

/// A failed restore, with what a damaged pack hurts in this snapshot under
/// this path when the repository has damage (else the error as it was).
fn explain_damage(
    repo: &BackupRepo,
    data_dir: &Path,
    snap: &str,
    path: &Path,
    e: String,
) -> String {
    // Pack files are hashed where they lie: local repositories only.
    let Some(repo_path) = repo.local() else {
        return e;
    };
    if !damage::looks_like_damage(&e) {
        return e;
    }
    let damaged = damage::damaged_packs(repo_path);
    if damaged.is_empty() {
        return e;
    }
    let traced =
        damage::trace_packs(repo_path, data_dir, &damaged, Some((snap, path))).unwrap_or_default();
    let hurt: Vec<String> = traced
        .iter()
        .flat_map(|d| {
            d.snapshots.iter().map(move |h| {
                let more = if h.more > 0 {
                    format!(" and {} more", h.more)
                } else {
                    String::new()
                };
                format!(
                    "pack {} {}: it holds {}{more}",
                    &d.pack[..12.min(d.pack.len())],
                    d.why,
                    h.paths.join(", ")
                )
            })
        })
        .collect();
    if hurt.is_empty() {
        return format!(
            "{e}; the repository has {} damaged pack(s), none holding this snapshot's {} (run `autonomos backup verify --read-data`)",
            damaged.len(),
            path.display()
        );
    }
    format!(
        "restore failed, repository data is damaged: {}. Snapshot {} cannot give these back; an older snapshot may (`autonomos backup list`), and `autonomos backup verify --read-data` shows all the damage",
        hurt.join("; "),
        &snap[..8.min(snap.len())]
    )
}

fn restore_node(
    repo: &Repository<rustic_core::IndexedFullStatus>,
    snap: &SnapshotFile,
    path: &Path,
    dest: &Path,
) -> Result<(u64, u64), String> {
    let node = repo
        .node_from_snapshot_and_path(snap, &path.to_string_lossy())
        .map_err(|e| format!("{} is not in snapshot {}: {e}", path.display(), snap.id))?;
    let ls = LsOptions::default();
    let streamer = repo.ls(&node, &ls).map_err(rerr("list"))?;
    let dest_str = dest.to_string_lossy().to_string();
    let destination =
        LocalDestination::new(&dest_str, true, !node.is_dir()).map_err(rerr("destination"))?;
    // Blocks of zeros come back as holes: a sparse file stays sparse.
    // (rustic_core 0.13 does not export the option's type; its serde name
    // reaches it.)
    let mut opts = RestoreOptions::default();
    opts.sparse = serde_json::from_str("\"ByContent\"").ok();
    if opts.sparse.is_none() {
        tracing::warn!("sparse restore unavailable: files of zeros come back dense");
    }
    let plan = repo
        .prepare_restore(&opts, streamer.clone(), &destination, false)
        .map_err(rerr("restore plan"))?;
    // rustic_core 0.13 panics (in a worker thread) on a pack that fails its
    // MAC check instead of returning an error: contain it and report it.
    let restored = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        repo.restore(plan, &opts, streamer.clone(), &destination)
    }));
    match restored {
        Ok(r) => r.map_err(rerr("restore"))?,
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            // The panic's text is the library's, not the operator's: log
            // it, and say what happened in plain words.
            tracing::error!(panic = %why, "the backup library stopped during a restore");
            return Err(if why.contains("MAC check failed") {
                "repository data is damaged (a pack failed its integrity check)".to_string()
            } else {
                "the backup library stopped on repository data it could not read".to_string()
            });
        }
    }
    // Validate: everything listed is there, with the right type and size.
    let (mut files, mut bytes) = (0u64, 0u64);
    for item in streamer {
        let (rel, n) = item.map_err(rerr("list"))?;
        let p = dest.join(&rel);
        let meta = std::fs::symlink_metadata(&p)
            .map_err(|e| format!("validation: {} missing after restore: {e}", rel.display()))?;
        if n.is_file() {
            if !meta.is_file() || meta.len() != n.meta.size {
                return Err(format!(
                    "validation: {} has {} bytes, the snapshot says {}",
                    rel.display(),
                    meta.len(),
                    n.meta.size
                ));
            }
            files += 1;
            bytes += meta.len();
        } else if n.is_dir() && !meta.is_dir() {
            return Err(format!("validation: {} is not a directory", rel.display()));
        } else if n.is_symlink() && !meta.file_type().is_symlink() {
            return Err(format!("validation: {} is not a symlink", rel.display()));
        }
    }
    Ok((files, bytes))
}
