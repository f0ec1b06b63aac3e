//! `export kubernetes`, `export systemd` and `service install`: read the
//! config in force, render with `config::export`, write the files.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{ExportCommand, Global, ServiceCommand, refuse};
use crate::config::export::kubernetes::{KubeOptions, kubernetes};
use crate::config::export::systemd::{UNIT_NAME, UnitOptions, unit};
use crate::paths::{self, ConfigSource};

const EXIT_INVALID: u8 = 2;

/// The config in force and its text.
fn config_and_text(g: &Global) -> Result<(crate::config::Config, String, ConfigSource), String> {
    let source = paths::find_config(g.config.as_deref());
    let cfg = paths::load_config(&source).map_err(|e| {
        let text = e.to_string();
        text.strip_prefix("error: ").unwrap_or(&text).to_string()
    })?;
    let text = match &source {
        ConfigSource::File(p) => {
            std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?
        }
        ConfigSource::Demo => paths::DEMO_TOML.to_string(),
    };
    Ok((cfg, text, source))
}

/// Writes `text` to `path` (0600 when it holds a secret), atomically.
fn write_file(path: &Path, text: &str, private: bool) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    // A leftover keeps its old mode: start afresh.
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(&tmp)
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn make_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

pub(super) fn export(g: &Global, cmd: ExportCommand) -> ExitCode {
    let r = match cmd {
        ExportCommand::Kubernetes {
            agents,
            namespace,
            output,
            image,
            stateless,
            volume_size,
        } => export_kubernetes(
            g,
            &agents,
            output.as_deref(),
            &KubeOptions {
                namespace,
                image,
                stateless,
                volume_size,
            },
        ),
        ExportCommand::Systemd {
            output,
            user,
            run_as,
            harden,
        } => unit_text(g, user, run_as, harden).and_then(|text| match output {
            Some(dir) => {
                make_dir(&dir)?;
                let path = dir.join(UNIT_NAME);
                write_file(&path, &text, false)?;
                eprintln!("wrote {}", path.display());
                Ok(())
            }
            None => {
                print!("{text}");
                Ok(())
            }
        }),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => refuse(false, ExitCode::from(EXIT_INVALID), e),
    }
}

fn export_kubernetes(
    g: &Global,
    agents: &[String],
    output: Option<&Path>,
    opts: &KubeOptions,
) -> Result<(), String> {
    let (cfg, text, _) = config_and_text(g)?;
    let out = kubernetes(&cfg, &text, agents, opts)?;
    match output {
        None => {
            for e in &out {
                print!("{}", e.yaml);
            }
        }
        Some(dir) => {
            make_dir(dir)?;
            for e in &out {
                let path = dir.join(format!("{}.yaml", e.name));
                write_file(&path, &e.yaml, e.secret)?;
                eprintln!(
                    "wrote {}{}",
                    path.display(),
                    if e.unmapped.is_empty() {
                        String::new()
                    } else {
                        format!(" ({} notes in its header)", e.unmapped.len())
                    }
                );
            }
        }
    }
    Ok(())
}

/// The user a system unit runs the daemon as: `--run-as`, else whoever ran
/// `sudo`, else the current user.
fn run_as_user(run_as: Option<String>) -> Option<String> {
    run_as
        .or_else(|| std::env::var("SUDO_USER").ok().filter(|u| !u.is_empty()))
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        // systemd takes a numeric uid as well.
        .or_else(|| Some(rustix::process::getuid().as_raw().to_string()))
}

fn unit_text(
    g: &Global,
    user_unit: bool,
    run_as: Option<String>,
    harden: bool,
) -> Result<String, String> {
    let (cfg, _, source) = config_and_text(g)?;
    let bin = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .map_err(|e| format!("cannot find this executable: {e}"))?;
    let config = match source {
        ConfigSource::File(p) => Some(std::fs::canonicalize(&p).unwrap_or(p)),
        ConfigSource::Demo => None,
    };
    let data_dir = paths::data_dir(g.data_dir.as_deref(), &cfg);
    let run_as = if user_unit { None } else { run_as_user(run_as) };
    // The default data dir is under this user's home: wrong for a daemon
    // that runs as someone else (as under `sudo ... service install`).
    let me = std::env::var("USER").unwrap_or_default();
    let uid = rustix::process::getuid().as_raw();
    let is_me = |u: &str| u == me || u == uid.to_string() || (uid == 0 && u == "root");
    if let Some(other) = run_as.as_deref()
        && !is_me(other)
        && g.data_dir.is_none()
        && cfg.paths.data_dir.is_none()
    {
        return Err(format!(
            "the daemon would run as `{other}`, but the default data dir here is {}'s ({}): give --data-dir (or [paths] data_dir) with a directory `{other}` owns",
            if me.is_empty() { "this user" } else { &me },
            data_dir.display()
        ));
    }
    let data_dir = if data_dir.is_absolute() {
        data_dir
    } else {
        std::env::current_dir()
            .map_err(|e| e.to_string())?
            .join(data_dir)
    };
    unit(&UnitOptions {
        bin,
        config,
        data_dir,
        user_unit,
        run_as,
        harden,
        longest_stop: cfg
            .agents
            .iter()
            .map(|a| a.stop_timeout)
            .max()
            .unwrap_or_default(),
    })
}

/// Where systemd reads units from.
fn unit_dir(user_unit: bool) -> Result<PathBuf, String> {
    if !user_unit {
        return Ok(PathBuf::from("/etc/systemd/system"));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .ok_or("neither XDG_CONFIG_HOME nor HOME is set")?;
    Ok(base.join("systemd/user"))
}

pub(super) fn service(g: &Global, cmd: ServiceCommand) -> ExitCode {
    let ServiceCommand::Install {
        user,
        run_as,
        unit_dir: dir,
        no_enable,
        harden,
    } = cmd;
    let r = (|| -> Result<(), String> {
        let text = unit_text(g, user, run_as, harden)?;
        let custom_dir = dir.is_some();
        let dir = match dir {
            Some(d) => d,
            None => unit_dir(user)?,
        };
        make_dir(&dir)?;
        let path = dir.join(UNIT_NAME);
        write_file(&path, &text, false)?;
        println!("wrote {}", path.display());
        let scope: &[&str] = if user { &["--user"] } else { &[] };
        let manual = format!(
            "systemctl {}daemon-reload && systemctl {}enable --now autonomos",
            if user { "--user " } else { "" },
            if user { "--user " } else { "" }
        );
        if no_enable || custom_dir {
            println!("to start it now and on every boot: {manual}");
        } else if !Path::new("/run/systemd/system").is_dir() {
            println!("systemd is not running here; when it is: {manual}");
        } else {
            for args in [
                &["daemon-reload"][..],
                &["enable", "--now", "autonomos"][..],
            ] {
                let ok = std::process::Command::new("systemctl")
                    .args(scope)
                    .args(args)
                    .status()
                    .map_err(|e| format!("cannot run systemctl: {e}"))?;
                if !ok.success() {
                    return Err(format!("`systemctl {}` failed ({ok})", args.join(" ")));
                }
            }
            println!("enabled and started: autonomos.service");
        }
        if user {
            println!(
                "a user service starts at login; to start it at boot without a login: loginctl enable-linger {}",
                run_as_user(None).unwrap_or_else(|| "$USER".into())
            );
        }
        Ok(())
    })();
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => refuse(false, ExitCode::FAILURE, e),
    }
}
