//! A file rotated by size, for the daemon's own log and the agents' logs:
//! `NAME` → `NAME.1` → … → `NAME.keep` (the oldest deleted; with `keep =
//! 0` the file starts over). Writes are whole buffers (whole log lines), so
//! a line is never split across files. A file moved or removed by hand (or
//! by logrotate) is not an error: a new one is started. A rotation that
//! fails keeps writing to the current path rather than lose the line.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    max_size: u64,
    keep: u32,
    /// Not opened yet ([`RotatingFile::lazy`]): its size is unknown.
    unopened: bool,
}

impl RotatingFile {
    /// Opens `path` for appending; its current size counts.
    pub fn open(path: &Path, max_size: u64, keep: u32) -> io::Result<RotatingFile> {
        let file = append_to(path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile {
            path: path.to_path_buf(),
            file: Some(file),
            size,
            max_size: max_size.max(1),
            keep,
            unopened: false,
        })
    }

    /// Like [`RotatingFile::open`], but the file (and its directory) is
    /// opened or created at the first write: a fleet of 500 agents starts
    /// without creating 500 files, and an agent that never writes has none.
    pub fn lazy(path: &Path, max_size: u64, keep: u32) -> RotatingFile {
        RotatingFile {
            path: path.to_path_buf(),
            file: None,
            size: 0,
            max_size: max_size.max(1),
            keep,
            unopened: true,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `buf` whole, rotating first when it would pass the size.
    pub fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.unopened {
            let f = match append_to(&self.path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if let Some(dir) = self.path.parent() {
                        fs::create_dir_all(dir)?;
                    }
                    append_to(&self.path)?
                }
                other => other?,
            };
            self.size = f.metadata()?.len();
            self.file = Some(f);
            self.unopened = false;
        }
        if self.size > 0 && self.size + buf.len() as u64 > self.max_size {
            // Not logged: this writes the daemon's own log, and a failure
            // reported through it would come back here.
            let _ = self.rotate();
        }
        let file = match &mut self.file {
            Some(f) => f,
            none => {
                // After a failed rotation this is the same big file: its
                // size counts, so the next line tries again.
                let f = append_to(&self.path)?;
                self.size = f.metadata()?.len();
                none.insert(f)
            }
        };
        file.write_all(buf)?;
        self.size += buf.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        if let Some(f) = &mut self.file {
            f.flush()?;
        }
        self.file = None;
        let gone = |r: io::Result<()>| match r {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        };
        if self.keep == 0 {
            gone(fs::remove_file(&self.path))?;
            self.size = 0;
            return Ok(());
        }
        gone(fs::remove_file(numbered(&self.path, self.keep)))?;
        for n in (1..self.keep).rev() {
            gone(fs::rename(
                numbered(&self.path, n),
                numbered(&self.path, n + 1),
            ))?;
        }
        gone(fs::rename(&self.path, numbered(&self.path, 1)))?;
        self.size = 0;
        Ok(())
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.append(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

fn append_to(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// `PATH.n`.
pub fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(p: &Path) -> u64 {
        fs::metadata(p).map(|m| m.len()).unwrap_or(0)
    }

    #[test]
    fn rotates_by_size_and_keeps_n_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("daemon.jsonl");
        let mut f = RotatingFile::open(&path, 100, 2).expect("open");
        let line = format!("{}\n", "x".repeat(39));
        for _ in 0..20 {
            f.write_all(line.as_bytes()).expect("write");
        }
        f.flush().expect("flush");
        assert!(size(&path) <= 100);
        assert_eq!(size(&numbered(&path, 1)), 80);
        assert_eq!(size(&numbered(&path, 2)), 80);
        assert!(!numbered(&path, 3).exists());
        // Whole lines only.
        let text = fs::read_to_string(numbered(&path, 1)).expect("read");
        assert!(text.lines().all(|l| l.len() == 39));
        // Reopening continues the current file's size.
        drop(f);
        let before = size(&path);
        let mut f = RotatingFile::open(&path, 100, 2).expect("open");
        f.write_all(b"y\n").expect("write");
        f.flush().expect("flush");
        assert!(size(&path) == before + 2 || size(&path) == 2);
    }

    #[test]
    fn keep_zero_starts_over_and_a_removed_file_is_started_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.log");
        let mut f = RotatingFile::open(&path, 10, 0).expect("open");
        f.append(b"0123456\n").expect("write");
        f.append(b"abcdefg\n").expect("write");
        assert_eq!(fs::read_to_string(&path).expect("read"), "abcdefg\n");
        assert!(!numbered(&path, 1).exists());
        // Moved away by hand, then a rotation: nothing is lost or refused.
        let mut f = RotatingFile::open(&path, 10, 3).expect("open");
        fs::rename(&path, dir.path().join("elsewhere")).expect("mv");
        f.append(b"hijklmn\n").expect("write");
        f.append(b"opqrstu\n").expect("write");
        assert_eq!(fs::read_to_string(&path).expect("read"), "opqrstu\n");
    }

    #[test]
    fn a_failed_rotation_is_tried_again_at_the_next_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.log");
        // `a.log.1` cannot be replaced while it is a non-empty directory.
        let blocker = numbered(&path, 1);
        fs::create_dir_all(blocker.join("x")).expect("blocker");
        let mut f = RotatingFile::open(&path, 20, 1).expect("open");
        f.append(b"0123456\n").expect("write");
        f.append(b"abcdefg\n").expect("write");
        f.append(b"ABCDEFG\n")
            .expect("the line is kept though rotation failed");
        assert_eq!(size(&path), 24);
        fs::remove_dir_all(&blocker).expect("unblock");
        f.append(b"hijklmn\n").expect("write");
        assert_eq!(fs::read_to_string(&path).expect("read"), "hijklmn\n");
        assert_eq!(size(&blocker), 24, "the big file rotated at the next line");
    }

    #[test]
    fn a_lazy_file_is_created_at_its_first_line_with_its_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("logs").join("a.log");
        let mut f = RotatingFile::lazy(&path, 20, 1);
        f.flush().expect("flush");
        assert!(!path.exists(), "nothing is created before a line");
        assert!(!dir.path().join("logs").exists());
        f.append(b"0123456\n").expect("write");
        assert_eq!(fs::read_to_string(&path).expect("read"), "0123456\n");
        // An existing file's size counts once it is opened.
        drop(f);
        let mut f = RotatingFile::lazy(&path, 20, 1);
        f.append(b"abcdefg\n").expect("write");
        f.append(b"ABCDEFG\n").expect("write");
        assert_eq!(fs::read_to_string(&path).expect("read"), "ABCDEFG\n");
        assert_eq!(size(&numbered(&path, 1)), 16);
    }
}
