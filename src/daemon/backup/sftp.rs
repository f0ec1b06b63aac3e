//! A restic repository on another machine over SFTP: the system's `ssh -s
//! sftp` (so its keys, config and known_hosts apply), the SFTP protocol
//! from `openssh-sftp-client`, and rustic_core's backend traits on top.
//!
//! rustic_core calls backends from blocking threads, several at once; each
//! call here runs on the backend's own small runtime and is bounded by the
//! repository's time limit. After a timeout or a lost connection every
//! later call fails at once with the first cause, so a dead mirror costs
//! one time limit, not one per file.

use std::collections::VecDeque;
use std::io::{BufRead, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};

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

/// One SFTP connection to one repository.
pub struct SftpBackend {
    target: SftpRepo,
    root: PathBuf,
    rt: Option<tokio::runtime::Runtime>,
    sftp: Option<Sftp>,
    ssh: Mutex<Child>,
    /// ssh's last lines on stderr: the cause when the connection fails.
    stderr: Arc<Mutex<VecDeque<String>>>,
    /// Set by the first timeout or lost connection.
    broken: Mutex<Option<String>>,
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
        let mut child = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{target}: cannot run ssh: {e} (install openssh-client)"))?;
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(err) = child.stderr.take() {
            let lines = stderr.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                    let mut l = lines.lock().unwrap_or_else(|e| e.into_inner());
                    if l.len() == 4 {
                        l.pop_front();
                    }
                    l.push_back(line);
                }
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
            stderr,
            broken: Mutex::new(None),
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
                status = ssh.try_wait().ok().flatten();
                if status.is_some() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            status
        };
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

    /// Runs one request within the time limit; a timeout or a lost
    /// connection breaks the backend for every later call.
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
        // The timer is made inside the runtime (callers are plain threads).
        match rt.block_on(async move { tokio::time::timeout(limit, fut).await }) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(SftpError::SftpError(kind, msg))) => {
                Err(format!("{}: {what}: {kind:?}: {msg}", self.target))
            }
            Ok(Err(e)) => Err(self.break_with(what, &e.to_string())),
            Err(_) => Err(self.break_with(
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
        let mut fs = sftp.fs();
        let mut at = PathBuf::new();
        for part in dir.components() {
            at.push(part);
            if matches!(part, std::path::Component::RootDir) {
                continue;
            }
            if fs.metadata(&at).await.is_ok() {
                continue;
            }
            let made = fs
                .dir_builder()
                .permissions(openssh_sftp_client::metadata::Permissions::from(0o700u16))
                .create(&at)
                .await;
            // Someone else may have made it meanwhile.
            if let Err(e) = made
                && fs.metadata(&at).await.is_err()
            {
                return Err(e);
            }
        }
        Ok(())
    }

    async fn put(sftp: &Sftp, path: PathBuf, content: BytesList) -> Result<(), SftpError> {
        let mut tmp = path.clone().into_os_string();
        tmp.push("-tmp-");
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
        let mut bufs: Vec<Bytes> = content.into_vec();
        file.write_all_zero_copy(&mut bufs).await?;
        if sftp.support_fsync() {
            file.sync_all().await?;
        }
        file.close().await?;
        sftp.fs().rename(&tmp, &path).await
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
        self.call(&what, async move { sftp.fs().read(&path).await })
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
        self.call(&what, async move {
            let mut f = sftp.open(&path).await?;
            f.seek(SeekFrom::Start(offset.into())).await?;
            let buf = f
                .read_all(length as usize, BytesMut::with_capacity(length as usize))
                .await?;
            f.close().await?;
            Ok(buf.freeze())
        })
        .map_err(backend_err)
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
        self.call("create the repository", async move {
            Self::mkdir_all(sftp, &root).await?;
            for d in dirs {
                Self::mkdir_all(sftp, &d).await?;
            }
            Ok(())
        })
        .map_err(backend_err)
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
        self.call(&what, Self::put(sftp, path, content))
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
        let mut ssh = self.ssh.lock().unwrap_or_else(|e| e.into_inner());
        let _ = ssh.kill();
        let _ = ssh.wait();
    }
}
