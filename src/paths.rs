//! Where things live: the config file, the data dir, the built-in demo fleet.

use std::path::{Path, PathBuf};

use crate::config::{self, Config, ConfigErrors, HostFacts};

/// The built-in demo fleet, used when no config file is found.
pub const DEMO_TOML: &str = include_str!("../assets/demo.toml");

/// Which config is in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    File(PathBuf),
    Demo,
}

/// `--config FILE`, else `./autonomos.toml`, else the config dir's
/// `autonomos.toml`, else the demo fleet.
pub fn find_config(cli: Option<&Path>) -> ConfigSource {
    if let Some(p) = cli {
        return ConfigSource::File(p.to_path_buf());
    }
    let local = PathBuf::from("autonomos.toml");
    if local.is_file() {
        return ConfigSource::File(local);
    }
    if let Some(dirs) = project_dirs() {
        let p = dirs.config_dir().join("autonomos.toml");
        if p.is_file() {
            return ConfigSource::File(p);
        }
    }
    ConfigSource::Demo
}

fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("", "", "autonomos")
}

/// Measures the host for the pool's defaults.
pub fn host_facts() -> HostFacts {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get() as f64)
        .unwrap_or(1.0);
    let memory = sysinfo::System::new()
        .map(|mut sys| {
            sys.refresh_memory();
            sys.total_memory()
        })
        .unwrap_or(0);
    HostFacts {
        cpus,
        // Unknown memory: 4 GiB, a conservative default for the pool.
        memory: if memory == 0 { 4 << 30 } else { memory },
    }
}

/// Loads the config in force. For the demo fleet, a leading `autonomos` in
/// a command becomes this very executable, so the demo runs from any build.
pub fn load_config(source: &ConfigSource) -> Result<Config, ConfigErrors> {
    let host = host_facts();
    match source {
        ConfigSource::File(p) => config::load_file(p, &host),
        ConfigSource::Demo => {
            let mut cfg =
                config::load_str(DEMO_TOML, Some(Path::new("<built-in demo fleet>")), &host)?;
            cfg.source = None;
            if let Ok(exe) = std::env::current_exe() {
                for a in &mut cfg.agents {
                    if a.command.first().is_some_and(|c| c == "autonomos") {
                        a.command[0] = exe.display().to_string();
                    }
                }
            }
            Ok(cfg)
        }
    }
}

/// `--data-dir`, else `AUTONOMOS_DATA_DIR` (handled by clap), else the
/// config's `[paths] data_dir`, else the platform data dir.
pub fn data_dir(cli: Option<&Path>, cfg: &Config) -> PathBuf {
    if let Some(p) = cli {
        return absolute(p);
    }
    if let Some(p) = &cfg.paths.data_dir {
        return absolute(p);
    }
    project_dirs()
        .map(|d| d.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from("/tmp/autonomos-data"))
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Why a runtime dir cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeDirError {
    #[error(
        "runtime dir {path} is a symlink; refusing to use it (remove it, or set XDG_RUNTIME_DIR to a private directory)"
    )]
    Symlink { path: String },
    #[error("runtime dir {path} is not a directory")]
    NotADir { path: String },
    #[error(
        "runtime dir {path} is owned by uid {owner}, not by you (uid {me}); refusing to use it"
    )]
    Foreign { path: String, owner: u32, me: u32 },
    #[error(
        "runtime dir {path} has mode {mode:04o}; it must not be accessible to others (chmod 700 {path})"
    )]
    Unsafe { path: String, mode: u32 },
    #[error("cannot create runtime dir {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// `$XDG_RUNTIME_DIR/autonomos`, else `/tmp/autonomos-UID`.
pub fn runtime_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("autonomos"),
        _ => PathBuf::from(format!(
            "/tmp/autonomos-{}",
            rustix::process::geteuid().as_raw()
        )),
    }
}

/// Creates the runtime dir (0700) if missing, then checks it is a real
/// directory, ours, and closed to everyone else.
pub fn ensure_runtime_dir(dir: &Path) -> Result<(), RuntimeDirError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let path = dir.display().to_string();
    if let Err(source) = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        && source.kind() != std::io::ErrorKind::AlreadyExists
    {
        return Err(RuntimeDirError::Io { path, source });
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|source| RuntimeDirError::Io {
        path: path.clone(),
        source,
    })?;
    if meta.file_type().is_symlink() {
        return Err(RuntimeDirError::Symlink { path });
    }
    if !meta.is_dir() {
        return Err(RuntimeDirError::NotADir { path });
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(RuntimeDirError::Foreign {
            path,
            owner: meta.uid(),
            me,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(RuntimeDirError::Unsafe { path, mode });
    }
    Ok(())
}

/// The control socket of the daemon for `data_dir`: one per data dir, named
/// by a hash of its path.
pub fn socket_path(runtime: &Path, data_dir: &Path) -> PathBuf {
    // FNV-1a: stable across builds and platforms, no dependency needed.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data_dir.as_os_str().as_encoded_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    runtime.join(format!("daemon-{h:016x}.sock"))
}

/// The pointer file in the data dir that names the running daemon's socket:
/// a client whose runtime dir differs from the daemon's (an ssh login
/// versus a systemd service, say) finds the daemon through it.
pub fn socket_pointer(data_dir: &Path) -> PathBuf {
    data_dir.join("daemon.socket")
}

/// Writes the pointer (0600, atomically; a file, never through a symlink).
pub fn write_socket_pointer(data_dir: &Path, socket: &Path) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = data_dir.join("daemon.socket.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)?;
    f.write_all(socket.as_os_str().as_encoded_bytes())?;
    f.write_all(b"\n")?;
    drop(f);
    std::fs::rename(&tmp, socket_pointer(data_dir))
}

/// Removes the pointer if it still names `socket` (a newer daemon's stays).
pub fn remove_socket_pointer(data_dir: &Path, socket: &Path) {
    let p = socket_pointer(data_dir);
    if read_socket_pointer(data_dir).as_deref() == Some(socket) {
        let _ = std::fs::remove_file(p);
    }
}

/// The socket the pointer names, if the pointer can be trusted: the
/// pointer file and the data dir are ours and writable by no one else, and
/// the socket it names is ours too, in a directory only we can change (a
/// config in a cloned repository cannot send clients to someone's socket).
/// The client also checks who answers ([`crate::client`]).
pub fn read_socket_pointer(data_dir: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let me = rustix::process::geteuid().as_raw();
    let private = |p: &Path| {
        std::fs::symlink_metadata(p)
            .is_ok_and(|m| m.uid() == me && m.mode() & 0o022 == 0 && !m.file_type().is_symlink())
    };
    let pointer = socket_pointer(data_dir);
    if !private(data_dir) || !private(&pointer) {
        return None;
    }
    let text = std::fs::read_to_string(&pointer).ok()?;
    let path = PathBuf::from(text.trim_end_matches('\n'));
    let parent_ok = path
        .parent()
        .is_some_and(|d| private(d) && std::fs::symlink_metadata(d).is_ok_and(|m| m.is_dir()));
    (path.is_absolute() && parent_ok && private(&path)).then_some(path)
}

/// Where a client looks for the daemon of `data_dir`, in order: the socket
/// its own runtime dir gives, then the one the data dir's pointer names.
pub fn socket_candidates(runtime: &Path, data_dir: &Path) -> Vec<PathBuf> {
    let mut v = vec![socket_path(runtime, data_dir)];
    if let Some(p) = read_socket_pointer(data_dir)
        && !v.contains(&p)
    {
        v.push(p);
    }
    v
}

/// Data dir for clients: `--data-dir`, else the config's, else the default.
/// Clients must find the same socket as the daemon they talk to.
pub fn client_data_dir(cli: Option<&Path>, config: Option<&Path>) -> PathBuf {
    if let Some(p) = cli {
        return absolute(p);
    }
    let source = find_config(config);
    if let ConfigSource::File(_) = source
        && let Ok(cfg) = load_config(&source)
    {
        return data_dir(None, &cfg);
    }
    project_dirs()
        .map(|d| d.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from("/tmp/autonomos-data"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_pointer_is_trusted_only_when_private() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().expect("tempdir");
        let data = t.path().join("data");
        let run = t.path().join("run");
        for d in [&data, &run] {
            std::fs::create_dir(d).expect("mkdir");
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        }
        let sock = run.join("daemon-x.sock");
        std::fs::write(&sock, "").expect("stand-in socket");
        write_socket_pointer(&data, &sock).expect("write");
        assert_eq!(read_socket_pointer(&data), Some(sock.clone()));
        // Anyone may write the pointer: not trusted.
        let ptr = socket_pointer(&data);
        std::fs::set_permissions(&ptr, std::fs::Permissions::from_mode(0o666)).expect("chmod");
        assert_eq!(read_socket_pointer(&data), None);
        std::fs::set_permissions(&ptr, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        // The socket's directory is open to others: not trusted.
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        assert_eq!(read_socket_pointer(&data), None);
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        // A relative path or a missing socket: not used.
        std::fs::write(&ptr, "relative.sock\n").expect("write");
        assert_eq!(read_socket_pointer(&data), None);
        remove_socket_pointer(&data, &sock);
        assert!(ptr.exists(), "a pointer naming another socket stays");
        write_socket_pointer(&data, &sock).expect("write");
        remove_socket_pointer(&data, &sock);
        assert!(!ptr.exists());
    }

    #[test]
    fn socket_names_differ_per_data_dir_and_are_stable() {
        let rt = Path::new("/run/x");
        let a = socket_path(rt, Path::new("/data/a"));
        assert_eq!(a, socket_path(rt, Path::new("/data/a")));
        assert_ne!(a, socket_path(rt, Path::new("/data/b")));
        assert!(a.to_string_lossy().len() < 100, "fits sun_path");
    }

    #[test]
    fn unsafe_runtime_dirs_are_refused_with_the_path_and_problem() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().expect("tempdir");
        let ok = t.path().join("ok");
        ensure_runtime_dir(&ok).expect("fresh dir is fine");
        let open = t.path().join("open");
        std::fs::create_dir(&open).expect("mkdir");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let e = ensure_runtime_dir(&open)
            .expect_err("0755 refused")
            .to_string();
        assert!(
            e.contains("mode 0755") && e.contains(&open.display().to_string()),
            "{e}"
        );
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&ok, &link).expect("symlink");
        let e = ensure_runtime_dir(&link)
            .expect_err("symlink refused")
            .to_string();
        assert!(e.contains("symlink"), "{e}");
        let file = t.path().join("file");
        std::fs::write(&file, "").expect("file");
        assert!(ensure_runtime_dir(&file).is_err());
    }
}
