//! `autonomos doctor`: gathers the facts the System Health Check judges
//! (`core::doctor`): the config, the data dir, `state.db`, the audit chain,
//! the backups, and (with a running daemon's status) probes, the pool,
//! storage faults and alerts. Blocking: it reads files and repositories.

use std::path::Path;

use crate::core::doctor::{self, Check};
use crate::proto::FleetStatus;

/// Every check that the data dir and, if given, a running daemon's status
/// allow. `config`: the config file in force (None: the built-in fleet).
pub fn examine(data_dir: &Path, config: Option<&Path>, status: Option<&FleetStatus>) -> Vec<Check> {
    let now = crate::clock::now_ms();
    let mut out = Vec::new();
    let cfg = config_check(config, &mut out);
    out.push(data_dir_check(data_dir));
    if !data_dir.is_dir() {
        // Nothing more to read: the data dir check said why.
        return out;
    }
    out.push(match rustix::fs::statvfs(data_dir) {
        Ok(s) => doctor::disk(
            s.f_bavail.saturating_mul(s.f_frsize),
            s.f_blocks.saturating_mul(s.f_frsize),
        ),
        Err(e) => Check::problem(
            "disk space",
            format!("statvfs {}: {e}", data_dir.display()),
            "check the data dir exists and is readable",
        ),
    });
    out.push(state_db_check(&data_dir.join("state.db")));
    out.push(audit_check(data_dir));
    backup_checks(data_dir, cfg.as_ref(), now, &mut out);
    if let Some(s) = status {
        let mut fleet = fleet_checks(s, cfg.as_ref());
        // The daemon first.
        out.insert(0, fleet.remove(0));
        out.extend(fleet);
    }
    out
}

fn config_check(config: Option<&Path>, out: &mut Vec<Check>) -> Option<crate::config::Config> {
    const NAME: &str = "config";
    let source = match config {
        Some(p) => crate::paths::ConfigSource::File(p.to_path_buf()),
        None => crate::paths::ConfigSource::Demo,
    };
    let shown = config.map_or("the built-in demo fleet".into(), |p| {
        p.display().to_string()
    });
    match crate::paths::load_config(&source) {
        Ok(cfg) => {
            out.push(Check::ok(
                NAME,
                format!("{shown}: {} agents, valid", cfg.agents.len()),
            ));
            Some(cfg)
        }
        Err(e) => {
            let first = e.to_string().lines().next().unwrap_or_default().to_string();
            out.push(Check::problem(
                NAME,
                format!("{shown} does not load now: {first}"),
                "`autonomos config check` lists every error with its line; a reload would be refused until it is fixed",
            ));
            None
        }
    }
}

fn data_dir_check(dir: &Path) -> Check {
    use std::os::unix::fs::PermissionsExt;
    const NAME: &str = "data dir";
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) => {
            return Check::problem(
                NAME,
                format!("{}: {e}", dir.display()),
                "start the daemon once (`autonomos up`), or fix --data-dir",
            );
        }
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o022 != 0 {
        return Check::problem(
            NAME,
            format!("{} is writable by others (mode {mode:o})", dir.display()),
            format!("chmod 700 {}", dir.display()),
        );
    }
    // Writable by us: a file created and removed.
    let probe = dir.join(format!(".doctor-{}", std::process::id()));
    match std::fs::write(&probe, b"") {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe);
            Check::ok(NAME, format!("{} (mode {mode:o}), writable", dir.display()))
        }
        Err(e) => Check::problem(
            NAME,
            format!("cannot write in {}: {e}", dir.display()),
            "give the daemon's user write access to its data dir",
        ),
    }
}

fn state_db_check(path: &Path) -> Check {
    const NAME: &str = "state.db";
    if !path.exists() {
        return Check::warn(
            NAME,
            format!("{} does not exist yet", path.display()),
            "start the daemon once",
        );
    }
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let checked = rusqlite::Connection::open_with_flags(path, flags).and_then(|c| {
        c.busy_timeout(std::time::Duration::from_secs(5))?;
        c.query_row("PRAGMA quick_check", [], |r| r.get::<_, String>(0))
    });
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    match checked {
        Ok(s) if s == "ok" => Check::ok(
            NAME,
            format!("integrity ok, {}", crate::core::units::format_size(size)),
        ),
        Ok(s) => Check::problem(
            NAME,
            format!("integrity check: {s}"),
            "stop the daemon and restore the data dir from a backup (`autonomos restore`)",
        ),
        Err(e) => Check::problem(
            NAME,
            format!("cannot read {}: {e}", path.display()),
            "check its permissions and the disk",
        ),
    }
}

fn audit_check(data_dir: &Path) -> Check {
    use crate::core::audit::{key_spans, verify_spans};
    const NAME: &str = "audit trail";
    if !data_dir.join("audit").exists() {
        return Check::warn(
            NAME,
            "no audit trail in this data dir",
            "start the daemon once",
        );
    }
    let (log, mut cps, key) = match crate::daemon::audit::read(data_dir) {
        Ok(x) => x,
        Err(e) => {
            return Check::problem(
                NAME,
                format!("cannot read it: {e}"),
                "check the permissions of DATA_DIR/audit",
            );
        }
    };
    let rotations = crate::daemon::audit::read_rotations(&data_dir.join("audit"));
    cps.extend(rotations.iter().map(|r| r.checkpoint.clone()));
    let (spans, _) = key_spans(&key, &rotations);
    let v = verify_spans(&log, &cps, &spans);
    match &v.first_bad {
        None if v.ok() => Check::ok(
            NAME,
            format!(
                "{} records chained and signed up to seq {}",
                v.records, v.last_seq
            ),
        ),
        Some((seq, why)) => Check::problem(
            NAME,
            format!("record {seq} is wrong: {why}"),
            "`autonomos audit verify` for the details; keep a copy of the trail before anything else",
        ),
        None => Check::problem(
            NAME,
            "checkpoints do not verify",
            "`autonomos audit verify` for the details",
        ),
    }
}

fn backup_checks(
    data_dir: &Path,
    cfg: Option<&crate::config::Config>,
    now: u64,
    out: &mut Vec<Check>,
) {
    use crate::daemon::backup::{BackupRepo, Store};
    let repos: Vec<BackupRepo> = match cfg {
        Some(c) if !c.backup.repositories.is_empty() => c.backup.repositories.clone(),
        _ => vec![BackupRepo::Local(data_dir.join("backups"))],
    };
    let every = cfg.and_then(|c| c.backup.every);
    for (i, repo) in repos.iter().enumerate() {
        let name = if i == 0 {
            "backup repository".to_string()
        } else {
            format!("backup mirror {i}")
        };
        // One connection per repository for all three checks.
        let store = Store::connect(repo);
        let found = store
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|s| s.exists());
        if i == 0 {
            out.push(match &found {
                Ok(false) => doctor::backup_age(None, every, now),
                Ok(true) => match store
                    .as_ref()
                    .map_err(Clone::clone)
                    .and_then(|st| crate::daemon::backup::list_in(st, data_dir))
                {
                    Ok(snaps) => doctor::backup_age(snaps.iter().map(|s| s.time).max(), every, now),
                    Err(e) => Check::problem(
                        "last backup",
                        format!("cannot list {repo}: {e}"),
                        "`autonomos backup verify` for the details",
                    ),
                },
                Err(e) => Check::problem(
                    "last backup",
                    e.clone(),
                    "check the host, its ssh keys and known_hosts (`ssh HOST` as the daemon's user)",
                ),
            });
        }
        match found {
            Ok(false) => continue,
            Err(e) => {
                out.push(Check::problem(
                    &name,
                    e,
                    "check the host, its ssh keys and known_hosts (`ssh HOST` as the daemon's user)",
                ));
                continue;
            }
            Ok(true) => {}
        }
        let verified = store
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|st| crate::daemon::backup::verify_in(st, data_dir, false));
        out.push(match verified {
            Ok((errors, _)) if errors.is_empty() => Check::ok(&name, format!("{repo}: metadata verified")),
            Ok((errors, _)) => Check::problem(&name, format!("{repo}: {} errors, first: {}", errors.len(), gist(&errors[0])), format!("`autonomos backup verify --repository {i} --read-data` to see what is hurt; take a fresh backup")),
            Err(e) => Check::problem(&name, format!("{repo}: {e}"), "check the path and the repository password file in the data dir"),
        });
    }
}

/// What only a running daemon knows: storage faults, probes, the pool,
/// alerts.
fn fleet_checks(s: &FleetStatus, cfg: Option<&crate::config::Config>) -> Vec<Check> {
    let mut out = vec![Check::ok(
        "daemon",
        format!(
            "pid {}, up {}, answers on its socket",
            s.daemon_pid,
            crate::core::units::fmt_ms(s.now.saturating_sub(s.started_at))
        ),
    )];
    out.push(if s.storage.is_empty() {
        Check::ok(
            "storage writes",
            "state.db and the audit trail accept writes",
        )
    } else {
        let what: Vec<String> = s
            .storage
            .iter()
            .map(|f| format!("{}: {}", f.what, f.error))
            .collect();
        Check::problem(
            "storage writes",
            what.join("; "),
            "free disk space or fix permissions; the daemon retries on its own",
        )
    });
    let mut probed = 0;
    let mut failing = Vec::new();
    let mut waiting = Vec::new();
    for a in &s.agents {
        for r in &a.replicas {
            if let Some(h) = &r.health {
                probed += 1;
                if h != "healthy" && h != "starting" {
                    failing.push(format!("{}/{}: {h}", a.name, r.index));
                }
            }
            if r.waiting.as_deref().is_some_and(|w| {
                w.starts_with("waiting for CPU")
                    || w.starts_with("waiting for memory")
                    || w.starts_with("pool full")
            }) {
                waiting.push(format!("{}/{}", a.name, r.index));
            }
        }
    }
    out.push(doctor::probes(probed, &failing));
    if let Some(c) = cfg {
        let size = (c.pool.cpu, c.pool.memory, c.pool.max_agents);
        out.push(doctor::pool(s.pool_used, size, &waiting));
    }
    if let Some(q) = &s.shared_queue {
        out.push(if q.connected {
            Check::ok(
                "shared queue",
                format!("connected to {} as host {}", q.store, q.host),
            )
        } else {
            Check::problem(
                "shared queue",
                format!(
                    "{} is unreachable: {}",
                    q.store,
                    q.error.as_deref().unwrap_or("not connected yet")
                ),
                "start PostgreSQL or fix [tasks] store; the daemon reconnects on its own and refuses submits meanwhile",
            )
        });
    }
    let firing: Vec<String> = s
        .alerts
        .iter()
        .filter(|a| a.state == "firing")
        .map(|a| format!("{} ({})", a.id, a.severity))
        .collect();
    out.push(if firing.is_empty() {
        Check::ok("alerts", "none firing")
    } else {
        Check::warn(
            "alerts",
            format!("firing: {}", firing.join(", ")),
            "`autonomos alerts` and `autonomos incidents`",
        )
    });
    out
}

/// A library error's message without its backtrace and boilerplate: its
/// first lines up to the details, on one line.
fn gist(e: &str) -> String {
    let lines: Vec<&str> = e
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Some additional details") && !l.starts_with("Backtrace"))
        .filter(|l| !l.is_empty() && *l != "Message:")
        .collect();
    let mut out = lines.join(" ");
    if out.len() > 300 {
        out.truncate(out.floor_char_boundary(300));
        out.push('…');
    }
    out
}
