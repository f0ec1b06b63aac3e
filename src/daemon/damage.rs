//! Traces damage in a backup repository to what it hurts: which pack files
//! no longer match their id (bit rot, an edit, a truncation), and for each,
//! the snapshots and paths whose data or directory listings live in it.
//!
//! A restic pack's id is the SHA-256 of its content, so a pack is checked
//! by hashing it; no decryption is needed to find the damage. The walk
//! over snapshots reads only trees (directory listings), from the index's
//! pack of each blob, never file data.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use rustic_core::repofile::SnapshotFile;
use rustic_core::{Repository, TreeId};
use sha2::{Digest, Sha256};

use crate::core::audit::hex;
use crate::core::lifecycle::Millis;
use crate::daemon::backup::{open_repository, password};

/// Paths named per snapshot and pack (the rest are counted).
const PATHS_SHOWN: usize = 20;

/// One damaged pack and what it hurts.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Damage {
    /// The pack's id (hex).
    pub pack: String,
    /// What is wrong with it, in words.
    pub why: String,
    /// Per snapshot (newest first): its id, time, and the paths hurt.
    pub snapshots: Vec<Hurt>,
}

/// What one damaged pack hurts in one snapshot.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Hurt {
    pub snapshot: String,
    pub time: Millis,
    /// Files whose data, and directories whose listing, is in the pack.
    pub paths: Vec<String>,
    /// Paths beyond those listed.
    pub more: usize,
}

impl Damage {
    /// The damage in plain words, one line per snapshot.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!(
            "pack {} {}",
            &self.pack[..12.min(self.pack.len())],
            self.why
        )];
        if self.snapshots.is_empty() {
            out.push(
                "  no snapshot uses it (left over; `autonomos backup prune` removes it)".into(),
            );
        }
        for h in &self.snapshots {
            let more = if h.more > 0 {
                format!(" and {} more", h.more)
            } else {
                String::new()
            };
            out.push(format!(
                "  snapshot {} ({}): {}{more}",
                &h.snapshot[..8.min(h.snapshot.len())],
                jiff::Timestamp::from_millisecond(h.time as i64)
                    .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_default(),
                h.paths.join(", ")
            ));
        }
        out
    }
}

/// Packs whose content does not hash to their name: (id, why).
pub fn damaged_packs(repo_path: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let dirs = std::fs::read_dir(repo_path.join("data"))
        .into_iter()
        .flatten()
        .flatten();
    for d in dirs {
        for f in std::fs::read_dir(d.path()).into_iter().flatten().flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if name.len() != 64 {
                continue;
            }
            match hash_file(&f.path()) {
                Ok(got) => {
                    if got != name {
                        out.insert(
                            name,
                            "is damaged (its content no longer matches its id)".into(),
                        );
                    }
                }
                Err(e) => {
                    out.insert(name, format!("cannot be read ({e})"));
                }
            }
        }
    }
    out
}

/// SHA-256 of a file, hex, read in pieces (packs can be large).
fn hash_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// Whether a restore error can come from damaged repository data (only
/// then is the repository scanned for damage).
pub fn looks_like_damage(error: &str) -> bool {
    [
        "damaged",
        "could not read",
        "MAC",
        "decrypt",
        "cryptographic",
        "hash",
        "corrupt",
    ]
    .iter()
    .any(|w| error.contains(w))
}

/// Finds the damaged packs of a repository and what each hurts. Empty
/// when every pack is whole.
pub fn trace(repo_path: &Path, data_dir: &Path) -> Result<Vec<Damage>, String> {
    let damaged = damaged_packs(repo_path);
    if damaged.is_empty() {
        return Ok(Vec::new());
    }
    trace_packs(repo_path, data_dir, &damaged, None)
}

/// What the `damaged` packs hurt, in every snapshot or only in `only`
/// (a snapshot id prefix) under `under` (a path in it).
pub fn trace_packs(
    repo_path: &Path,
    data_dir: &Path,
    damaged: &BTreeMap<String, String>,
    only: Option<(&str, &Path)>,
) -> Result<Vec<Damage>, String> {
    let (pass, _) = password(data_dir)?;
    let repo = open_repository(
        &crate::core::repo::BackupRepo::Local(repo_path.to_path_buf()),
        &pass,
    )?
    .to_indexed()
    .map_err(|e| format!("index: {}", crate::daemon::backup::plain(&e.to_string())))?;
    let mut snaps: Vec<SnapshotFile> = repo.get_all_snapshots().map_err(|e| {
        format!(
            "snapshots: {}",
            crate::daemon::backup::plain(&e.to_string())
        )
    })?;
    snaps.sort_by_key(|s| std::cmp::Reverse(s.time.timestamp()));
    // pack → snapshot → paths
    let mut hurt: BTreeMap<String, Vec<Hurt>> = BTreeMap::new();
    // Trees are shared between snapshots: walk each once.
    let mut seen: HashMap<TreeId, Vec<(String, PathBuf)>> = HashMap::new();
    for snap in &snaps {
        let id = snap.id.to_string();
        if let Some((prefix, _)) = only
            && !id.starts_with(prefix)
        {
            continue;
        }
        let mut hits = Vec::new();
        walk(
            &repo,
            snap.tree,
            Path::new("/"),
            damaged,
            &mut seen,
            &mut hits,
        );
        let mut by_pack: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (pack, path) in hits {
            if let Some((_, under)) = only
                && !path.starts_with(under)
                && !under.starts_with(&path)
            {
                continue;
            }
            by_pack
                .entry(pack)
                .or_default()
                .push(path.display().to_string());
        }
        for (pack, mut paths) in by_pack {
            paths.sort();
            paths.dedup();
            let more = paths.len().saturating_sub(PATHS_SHOWN);
            paths.truncate(PATHS_SHOWN);
            hurt.entry(pack).or_default().push(Hurt {
                snapshot: id.clone(),
                time: snap.time.timestamp().as_millisecond().max(0) as u64,
                paths,
                more,
            });
        }
    }
    Ok(damaged
        .iter()
        .map(|(pack, why)| Damage {
            pack: pack.clone(),
            why: why.clone(),
            snapshots: hurt.remove(pack).unwrap_or_default(),
        })
        .collect())
}

/// Collects (pack, path) for every file whose data and every directory
/// whose listing is in a damaged pack, below `tree` at `at`.
fn walk(
    repo: &Repository<rustic_core::IndexedFullStatus>,
    tree: TreeId,
    at: &Path,
    damaged: &BTreeMap<String, String>,
    seen: &mut HashMap<TreeId, Vec<(String, PathBuf)>>,
    out: &mut Vec<(String, PathBuf)>,
) {
    if let Some(rel) = seen.get(&tree) {
        out.extend(rel.iter().map(|(p, r)| (p.clone(), at.join(r))));
        return;
    }
    let mut mine: Vec<(String, PathBuf)> = Vec::new();
    let listing = repo
        .get_index_entry(&tree)
        .ok()
        .map(|ie| ie.pack.to_hex().as_str().to_string());
    match listing {
        Some(pack) if damaged.contains_key(&pack) => mine.push((pack, PathBuf::new())),
        _ => match repo.get_tree(&tree) {
            Err(_) => mine.push(("?".into(), PathBuf::new())),
            Ok(t) => {
                for node in t.nodes {
                    let name = PathBuf::from(node.name().into_owned());
                    if let Some(sub) = node.subtree {
                        let mut below = Vec::new();
                        walk(repo, sub, &name, damaged, seen, &mut below);
                        mine.extend(below);
                    } else if let Some(content) = &node.content {
                        let hit = content.iter().find_map(|id| {
                            let pack = repo.get_index_entry(id).ok()?.pack.to_hex();
                            damaged
                                .contains_key(pack.as_str())
                                .then(|| pack.as_str().to_string())
                        });
                        if let Some(pack) = hit {
                            mine.push((pack, name));
                        }
                    }
                }
            }
        },
    }
    out.extend(mine.iter().map(|(p, r)| (p.clone(), at.join(r))));
    seen.insert(tree, mine);
}
