//! One daemon per data dir: an exclusive `flock` on `DATA_DIR/daemon.lock`,
//! held for the daemon's life, with the holder's pid written inside.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;

/// Held while the daemon runs; the lock goes with the process.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    pub path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another Autonomos daemon{} is already running for data dir {dir}", .pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Held { dir: String, pid: Option<u32> },
    #[error("cannot lock {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Takes the lock or says who holds it.
pub fn acquire(data_dir: &Path) -> Result<DataDirLock, LockError> {
    let path = data_dir.join("daemon.lock");
    let io = |source| LockError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    if rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
        let mut s = String::new();
        let _ = file.read_to_string(&mut s);
        return Err(LockError::Held {
            dir: data_dir.display().to_string(),
            pid: s.trim().parse().ok(),
        });
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    writeln!(file, "{}", std::process::id()).map_err(io)?;
    Ok(DataDirLock { _file: file, path })
}

/// The pid of a running daemon for `data_dir`, if one holds the lock.
pub fn holder(data_dir: &Path) -> Option<u32> {
    match acquire(data_dir) {
        Err(LockError::Held { pid, .. }) => pid.or(Some(0)),
        _ => None,
    }
}
