//! A restic repository on another machine over SFTP: the system's `ssh -s
//! sftp` (so its keys, config and known_hosts apply), the SFTP protocol
//! from `openssh-sftp-client`, and rustic_core's backend traits on top.
//!
//! rustic_core calls backends from blocking threads, several at once; each
//! call here runs on the backend's own small runtime. The repository's time
//! limit bounds the silence, not the work: a 32 MiB pack on a slow link
//! may take minutes as long as data keeps moving, while a host that stops
//! answering fails the call one limit after the last byte. After such a
//! timeout or a lost connection every later call fails at once with the
//! first cause, so a dead mirror costs one time limit, not one per file.

use std::collections::VecDeque;
use std::io::{BufRead, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use openssh_sftp_client::error::SftpErrorKind;
use openssh_sftp_client::{Error as SftpError, Sftp, SftpOptions};
use rustic_core::{
    ALL_FILE_TYPES, BytesList, ErrorKind, FileType, Id, ReadBackend, RusticError, RusticResult,
    WriteBackend,
};
use tokio::io::AsyncSeekExt;

use crate::core::repo::SftpRepo;
use crate::daemon::process::{Claimed, spawn_std_claimed};

/// Bytes per write or read request the progress clock sees.
const CHUNK: usize = 256 * 1024;

/// When data last moved, for the silence limit: ms since `start`.
#[derive(Debug)]
struct Progress {
    start: Instant,
    last_ms: AtomicU64,
}

impl Progress {
    fn tick(&self) {
        self.last_ms
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// One SFTP connection to one repository.
pub struct SftpBackend {
    target: SftpRepo,
    root: PathBuf,
    rt: Option<tokio::runtime::Runtime>,
    sftp: Option<Sftp>,
    ssh: Mutex<Child>,
    /// Keeps ssh from the daemon's orphan reaper until we have waited.
    _claim: Claimed,
    /// ssh's last lines on stderr: the cause when the connection fails.
    stderr: Arc<Mutex<VecDeque<String>>>,
    /// ssh's stderr reached its end (all it said is in `stderr`).
    stderr_done: Arc<std::sync::atomic::AtomicBool>,
    /// Set by the first timeout or lost connection.
    broken: Mutex<Option<String>>,
    progress: Arc<Progress>,
}

impl std::fmt::Debug for SftpBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SftpBackend({})", self.target)
    }
}

impl SftpBackend {
    /// Starts ssh and the SFTP session, within the time limit.
    pub fn connect(target: &SftpRepo) -> Result<SftpBackend, String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sftp")
            .enable_all()
            .build()
            .map_err(|e| format!("{target}: cannot start the SFTP runtime: {e}"))?;
        let argv = target.ssh_argv();
        // Claimed: the daemon's orphan reaper must leave it to us, or its
        // exit status (and why it ended) would be lost.
        let (mut child, claim) = spawn_std_claimed(
            std::process::Command::new(&argv[0])
                .args(&argv[1..])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        )
        .map_err(|e| format!("{target}: cannot run ssh: {e} (install openssh-client)"))?;
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let stderr_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        if let Some(err) = child.stderr.take() {
            let lines = stderr.clone();
            let done = stderr_done.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                    let mut l = lines.lock().unwrap_or_else(|e| e.into_inner());
                    if l.len() == 4 {
                        l.pop_front();
                    }
                    l.push_back(line);
                }
                done.store(true, std::sync::atomic::Ordering::Release);
            });
        }
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(format!("{target}: ssh has no pipes"));
        };
        let session = rt.block_on(async {
            let stdin = tokio::process::ChildStdin::from_std(stdin)?;
            let stdout = tokio::process::ChildStdout::from_std(stdout)?;
            let opened = Sftp::new(stdin, stdout, SftpOptions::default());
            tokio::time::timeout(target.timeout, opened)
                .await
                .map_err(|_| std::io::Error::other("timed out"))?
                .map_err(std::io::Error::other)
        });
        let mut me = SftpBackend {
            root: PathBuf::from(&target.path),
            target: target.clone(),
            rt: Some(rt),
            sftp: None,
            ssh: Mutex::new(child),
            _claim: claim,
            stderr,
            stderr_done,
            broken: Mutex::new(None),
            progress: Arc::new(Progress {
                start: Instant::now(),
                last_ms: AtomicU64::new(0),
            }),
        };
        match session {
            Ok(s) => {
                me.sftp = Some(s);
                Ok(me)
            }
            Err(e) => {
                let why = if e.to_string() == "timed out" {
                    format!(
                        "no answer within {}",
                        crate::core::units::format_duration(target.timeout)
                    )
                } else {
                    e.to_string()
                };
                Err(me.cause("cannot open SFTP", &why))
            }
        }
    }

    /// `what` failed: with the repository and, if ssh has ended, what ssh
    /// said (the real cause), else `detail`.
    fn cause(&self, what: &str, detail: &str) -> String {
        let ended = {
            let mut ssh = self.ssh.lock().unwrap_or_else(|e| e.into_inner());
            // ssh needs a moment to print why it gave up.
            let mut status = None;
            for _ in 0..50 {
                match ssh.try_wait() {
                    Ok(Some(st)) => {
                        status = Some(st.to_string());
                        break;
                    }
                    Ok(None) => {}
                    // Reaped elsewhere: it has ended all the same.
                    Err(_) => {
                        status = Some("ended".to_string());
                        break;
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            status
        };
        // ssh has ended, but its last words may still be on their way
        // through the reader thread: wait for its end of file, briefly.
        if ended.is_some() {
            let t = std::time::Instant::now();
            while !self.stderr_done.load(std::sync::atomic::Ordering::Acquire)
                && t.elapsed() < Duration::from_secs(1)
            {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let said: Vec<String> = self
            .stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|l| !l.trim().is_empty())
            .cloned()
            .collect();
        match (ended, said.last()) {
            (Some(_), Some(last)) => format!(
                "{}: {what}: {}",
                self.target,
                last.trim().trim_start_matches("ssh: ")
            ),
            (Some(st), None) => format!("{}: {what}: {detail}; ssh ended ({st})", self.target),
            (None, _) => format!("{}: {what}: {detail}", self.target),
        }
    }

    fn sftp(&self) -> &Sftp {
        self.sftp.as_ref().expect("connected")
    }

    /// Runs one request. It fails after the time limit passes with no
    /// data moving (see [`Progress`]); a timeout or a lost connection
    /// breaks the backend for every later call. Errors the server answers
    /// with (no such file, permission) leave the connection usable.
    fn call<T>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = Result<T, SftpError>>,
    ) -> Result<T, String> {
        if let Some(why) = self
            .broken
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Err(why);
        }
        let rt = self.rt.as_ref().expect("runtime");
        let limit = self.target.timeout;
        let progress = self.progress.clone();
        progress.tick();
        // The timer is made inside the runtime (callers are plain threads).
        let outcome = rt.block_on(async move {
            let mut fut = std::pin::pin!(fut);
            loop {
                let deadline = tokio::time::Instant::from_std(progress.last() + limit);
                tokio::select! {
                    r = &mut fut => return Some(r),
                    _ = tokio::time::sleep_until(deadline) => {
                        if progress.last() + limit <= Instant::now() {
                            return None;
                        }
                    }
                }
            }
        });
        match outcome {
            Some(Ok(v)) => Ok(v),
            Some(Err(SftpError::SftpError(kind, msg))) => {
                Err(format!("{}: {what}: {kind:?}: {msg}", self.target))
            }
            Some(Err(e)) => Err(self.break_with(what, &e.to_string())),
            None => Err(self.break_with(
                what,
                &format!(
                    "no answer within {}",
                    crate::core::units::format_duration(self.target.timeout)
                ),
            )),
        }
    }

    fn break_with(&self, what: &str, detail: &str) -> String {
        let why = self.cause(what, detail);
        *self.broken.lock().unwrap_or_else(|e| e.into_inner()) = Some(why.clone());
        why
    }

    fn dir(&self, tpe: FileType) -> PathBuf {
        self.root.join(tpe.dirname())
    }

    fn path(&self, tpe: FileType, id: &Id) -> PathBuf {
        let hex = id.to_hex();
        match tpe {
            FileType::Config => self.root.join("config"),
            FileType::Pack => self.dir(tpe).join(&hex[0..2]).join(&*hex),
            _ => self.dir(tpe).join(&*hex),
        }
    }

    /// Names (and sizes) of the files in one remote directory; none when
    /// it does not exist.
    async fn entries(sftp: &Sftp, dir: PathBuf) -> Result<Vec<(String, u64)>, SftpError> {
        let mut fs = sftp.fs();
        let d = match fs.open_dir(&dir).await {
            Ok(d) => d,
            Err(SftpError::SftpError(SftpErrorKind::NoSuchFile, _)) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        let mut stream = std::pin::pin!(d.read_dir());
        while let Some(e) = stream.next().await {
            let e = e?;
            let name = e.filename().to_string_lossy().into_owned();
            if name == "." || name == ".." {
                continue;
            }
            out.push((name, e.metadata().len().unwrap_or(0)));
        }
        Ok(out)
    }

    /// The names in `locks/` (restic writes one per running command).
    pub fn lock_names(&self) -> Result<Vec<String>, String> {
        let sftp = self.sftp();
        let names = self.call("list locks", Self::entries(sftp, self.root.join("locks")))?;
        Ok(names.into_iter().map(|(n, _)| n).collect())
    }

    /// Whether the repository exists (its `config` file does).
    pub fn exists(&self) -> Result<bool, String> {
        let sftp = self.sftp();
        let path = self.root.join("config");
        self.call("look for the repository", async move {
            match sftp.fs().metadata(&path).await {
                Ok(_) => Ok(true),
                Err(SftpError::SftpError(SftpErrorKind::NoSuchFile, _)) => Ok(false),
                Err(e) => Err(e),
            }
        })
    }

    /// Makes `dir` and its missing parents (mode 0700).
    async fn mkdir_all(sftp: &Sftp, dir: &Path) -> Result<(), SftpError> {
        if sftp.fs().metadata(dir).await.is_ok() {
            return Ok(());
        }
        let mut at = PathBuf::new();
        for part in dir.components() {
            at.push(part);
            if matches!(part, std::path::Component::RootDir) {
                continue;
            }
            Self::mkdir(sftp, &at).await?;
        }
        Ok(())
    }

    /// Makes one dir (0700); one that exists already is fine.
    async fn mkdir(sftp: &Sftp, dir: &Path) -> Result<(), SftpError> {
        let mut fs = sftp.fs();
        let made = fs
            .dir_builder()
            .permissions(openssh_sftp_client::metadata::Permissions::from(0o700u16))
            .create(dir)
            .await;
        match made {
            Ok(()) => Ok(()),
            Err(_) if fs.metadata(dir).await.is_ok() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Writes `content` under a temporary name (0600), syncs it and renames
    /// it into place, ticking the progress clock per chunk.
    async fn put(
        sftp: &Sftp,
        progress: &Progress,
        path: PathBuf,
        content: BytesList,
    ) -> Result<(), SftpError> {
        let mut tmp = path.clone().into_os_string();
        tmp.push(format!("-tmp-{:08x}", rand::random::<u32>()));
        let tmp = PathBuf::from(tmp);
        let mut opts = sftp.options();
        opts.write(true).create(true).truncate(true);
        let mut file = match opts.open(&tmp).await {
            Ok(f) => f,
            Err(SftpError::SftpError(SftpErrorKind::NoSuchFile, _)) => {
                if let Some(parent) = path.parent() {
                    Self::mkdir_all(sftp, parent).await?;
                }
                opts.open(&tmp).await?
            }
            Err(e) => return Err(e),
        };
        let written = async {
            file.set_permissions(openssh_sftp_client::metadata::Permissions::from(0o600u16))
                .await?;
            for part in content.into_vec() {
                for chunk in part.chunks(CHUNK) {
                    file.write_all(chunk).await?;
                    progress.tick();
                }
            }
            if sftp.support_fsync() {
                file.sync_all().await?;
            }
            Ok::<_, SftpError>(())
        }
        .await;
        let closed = file.close().await;
        if let Err(e) = written.and(closed) {
            let _ = sftp.fs().remove_file(&tmp).await;
            return Err(e);
        }
        sftp.fs().rename(&tmp, &path).await
    }

    /// Reads `len` bytes from `offset` (all of the file when `len` is
    /// None), ticking the progress clock per chunk. A short file gives a
    /// short buffer: the caller names it, the connection is fine.
    async fn get(
        sftp: &Sftp,
        progress: &Progress,
        path: PathBuf,
        offset: u64,
        len: Option<usize>,
    ) -> Result<BytesMut, SftpError> {
        let mut f = sftp.open(&path).await?;
        if offset > 0 {
            f.seek(SeekFrom::Start(offset)).await?;
        }
        let max = CHUNK;
        let mut buf = BytesMut::with_capacity(len.unwrap_or(CHUNK));
        loop {
            let want = match len {
                Some(n) if buf.len() >= n => break,
                Some(n) => (n - buf.len()).min(max),
                None => max,
            };
            let at = buf.len();
            match f.read(want as u32, buf.split_off(at)).await? {
                Some(got) => buf.unsplit(got),
                None => break,
            }
            progress.tick();
        }
        f.close().await?;
        Ok(buf)
    }
}

fn backend_err(text: String) -> Box<RusticError> {
    // Braces would be read as placeholders in the guidance text.
    RusticError::new(ErrorKind::Backend, text.replace(['{', '}'], ""))
}

impl ReadBackend for SftpBackend {
    fn location(&self) -> String {
        self.target.to_string()
    }

    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        let sftp = self.sftp();
        if tpe == FileType::Config {
            let path = self.root.join("config");
            let found = self.call("list config", async move {
                match sftp.fs().metadata(&path).await {
                    Ok(m) => Ok(Some(m.len().unwrap_or(0))),
                    Err(SftpError::SftpError(SftpErrorKind::NoSuchFile, _)) => Ok(None),
                    Err(e) => Err(e),
                }
            });
            return match found.map_err(backend_err)? {
                Some(n) => Ok(vec![(Id::default(), n as u32)]),
                None => Ok(Vec::new()),
            };
        }
        let dirs: Vec<PathBuf> = if tpe == FileType::Pack {
            (0u8..=255)
                .map(|i| self.dir(tpe).join(format!("{i:02x}")))
                .collect()
        } else {
            vec![self.dir(tpe)]
        };
        // All directories at once: the requests share the connection.
        let listed = self
            .call(&format!("list {}", tpe.dirname()), async {
                let all = futures_util::future::join_all(
                    dirs.into_iter().map(|d| Self::entries(sftp, d)),
                )
                .await;
                all.into_iter().collect::<Result<Vec<_>, _>>()
            })
            .map_err(backend_err)?;
        Ok(listed
            .into_iter()
            .flatten()
            .filter_map(|(name, len)| Some((Id::parse_some(&name, tpe)?, u32::try_from(len).ok()?)))
            .collect())
    }

    fn read_full(&self, tpe: FileType, id: &Id) -> RusticResult<Bytes> {
        let sftp = self.sftp();
        let path = self.path(tpe, id);
        let what = format!("read {}", path.display());
        let progress = self.progress.clone();
        self.call(&what, async move {
            Self::get(sftp, &progress, path, 0, None).await
        })
        .map(BytesMut::freeze)
        .map_err(backend_err)
    }

    fn read_partial(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        offset: u32,
        length: u32,
    ) -> RusticResult<Bytes> {
        let sftp = self.sftp();
        let path = self.path(tpe, id);
        let what = format!("read {} at {offset}", path.display());
        let progress = self.progress.clone();
        let buf = self
            .call(&what, async move {
                Self::get(sftp, &progress, path, offset.into(), Some(length as usize)).await
            })
            .map_err(backend_err)?;
        if buf.len() < length as usize {
            return Err(backend_err(format!(
                "{}: {what}: the file ends after {} of {length} bytes",
                self.target,
                buf.len()
            )));
        }
        Ok(buf.freeze())
    }

    fn warmup_path(&self, tpe: FileType, id: &Id) -> String {
        self.path(tpe, id).display().to_string()
    }
}

impl WriteBackend for SftpBackend {
    fn create(&self) -> RusticResult<()> {
        let sftp = self.sftp();
        let mut dirs: Vec<PathBuf> = ALL_FILE_TYPES
            .iter()
            .filter(|t| **t != FileType::Config)
            .map(|t| self.dir(*t))
            .collect();
        dirs.push(self.root.join("locks"));
        dirs.extend((0u8..=255).map(|i| self.dir(FileType::Pack).join(format!("{i:02x}"))));
        let root = self.root.clone();
        self.call("create the repository", Self::mkdir_all(sftp, &root))
            .map_err(backend_err)?;
        // The first level, then the 256 pack dirs, each level at once: the
        // requests share the connection, so this costs a few round trips.
        let (top, packs): (Vec<PathBuf>, Vec<PathBuf>) = dirs
            .into_iter()
            .partition(|d| d.parent() == Some(root.as_path()));
        for level in [top, packs] {
            self.call("create the repository's dirs", async {
                let made =
                    futures_util::future::join_all(level.iter().map(|d| Self::mkdir(sftp, d)))
                        .await;
                made.into_iter().collect::<Result<Vec<()>, _>>().map(|_| ())
            })
            .map_err(backend_err)?;
        }
        Ok(())
    }

    fn write_bytes(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        content: BytesList,
    ) -> RusticResult<()> {
        let sftp = self.sftp();
        let path = self.path(tpe, id);
        let what = format!("write {}", path.display());
        let progress = self.progress.clone();
        self.call(&what, async move {
            Self::put(sftp, &progress, path, content).await
        })
        .map_err(backend_err)
    }

    fn remove(&self, tpe: FileType, id: &Id, _cacheable: bool) -> RusticResult<()> {
        let sftp = self.sftp();
        let path = self.path(tpe, id);
        let what = format!("remove {}", path.display());
        self.call(&what, async move { sftp.fs().remove_file(&path).await })
            .map_err(backend_err)
    }
}

impl Drop for SftpBackend {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            {
                let _in = rt.enter();
                self.sftp.take();
            }
            rt.shutdown_background();
        }
        // The session is gone, so ssh's stdin is closed: it ends on its own
        // (and so do ProxyCommand helpers); a hung one is killed.
        let mut ssh = self.ssh.lock().unwrap_or_else(|e| e.into_inner());
        for _ in 0..100 {
            if !matches!(ssh.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = ssh.kill();
        let _ = ssh.wait();
    }
}
