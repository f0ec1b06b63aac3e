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
