//! `backup` subcommands that read repositories, and `restore --at`.

use super::*;

/// A point in time for `restore --at`: RFC 3339, `YYYY-MM-DD HH:MM[:SS]`
/// (UTC), or an age (`30m`: that long ago).
pub fn parse_time(s: &str) -> Result<Millis, String> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(t.as_millisecond().max(0) as u64);
    }
    if let Ok(dt) = s.replace(' ', "T").parse::<jiff::civil::DateTime>()
        && let Ok(z) = dt.to_zoned(jiff::tz::TimeZone::UTC)
    {
        return Ok(z.timestamp().as_millisecond().max(0) as u64);
    }
    if let Ok(d) = crate::config::parse_duration(s) {
        return Ok(now_ms().saturating_sub(d.as_millis() as u64));
    }
    Err(format!(
        "`{s}` is not a time: write 2026-11-28T14:00:00Z, \"2026-11-28 14:00\" (UTC) or an age such as 30m"
    ))
}

/// The backup settings the daemon would use, from the config in force.
pub(super) fn backup_settings(g: &Global) -> Result<crate::daemon::recovery::Settings, String> {
    let source = crate::paths::find_config(g.config.as_deref());
    let cfg = crate::paths::load_config(&source).map_err(|e| e.to_string())?;
    let data_dir = crate::paths::data_dir(g.data_dir.as_deref(), &cfg);
    Ok(crate::daemon::recovery::Settings::new(data_dir, &cfg))
}

pub async fn backup(g: &Global, cmd: BackupCommand, json: bool) -> ExitCode {
    if !g.host.is_empty() {
        return refuse(
            json,
            ExitCode::from(2),
            "`backup list` and `backup verify` read the repositories: run them on the daemon's machine",
        );
    }
    let s = match backup_settings(g) {
        Ok(s) => s,
        Err(e) => {
            return refuse(json, ExitCode::from(2), e);
        }
    };
    let repositories = s.conf().repositories;
    let pick = |n: usize| {
        repositories.get(n).cloned().ok_or_else(|| {
            format!(
                "there are {} repositories (0 is the primary)",
                repositories.len()
            )
        })
    };
    match cmd {
        BackupCommand::Prune => simple(g, crate::proto::Request::BackupPrune, json).await,
        BackupCommand::List { repository } => match pick(repository) {
            Ok(repo) => list(repo, s.data_dir.clone(), json).await,
            Err(e) => refuse(json, ExitCode::from(2), e),
        },
        BackupCommand::Verify {
            read_data,
            repository,
            verbose,
        } => match pick(repository) {
            Ok(repo) => verify(repo, s.data_dir.clone(), read_data, verbose, json).await,
            Err(e) => refuse(json, ExitCode::from(2), e),
        },
    }
}

/// `backup list`: the repository's snapshots.
async fn list(repo: crate::daemon::backup::BackupRepo, data_dir: PathBuf, json: bool) -> ExitCode {
    let r =
        tokio::task::spawn_blocking(move || crate::daemon::backup::list(&repo, &data_dir)).await;
    match r {
        Ok(Ok(snaps)) if json => json_out(&snaps),
        Ok(Ok(snaps)) => {
            println!(
                "{:<10} {:<21} {:>8} {:>10} {:>10}  REASON",
                "ID", "TIME", "FILES", "SIZE", "ADDED"
            );
            for sn in snaps {
                println!(
                    "{:<10} {:<21} {:>8} {:>10} {:>10}  {}",
                    &sn.id[..8],
                    utc(sn.time),
                    sn.files,
                    format_size(sn.bytes),
                    format_size(sn.added),
                    sn.reason
                );
            }
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => refuse(json, ExitCode::FAILURE, e),
        Err(e) => refuse(json, ExitCode::FAILURE, e),
    }
}

/// `backup verify`: the repository's structure (and, with `--read-data`,
/// every pack), and what any damage hurts.
async fn verify(
    repo: crate::daemon::backup::BackupRepo,
    data_dir: PathBuf,
    read_data: bool,
    verbose: bool,
    json: bool,
) -> ExitCode {
    let shown = repo.to_string();
    let r = tokio::task::spawn_blocking(move || {
        let checked = crate::daemon::backup::verify(&repo, &data_dir, read_data)?;
        // Damage found: which snapshots and files it hurts.
        let damage = if read_data
            && !checked.0.is_empty()
            && let Some(local) = repo.local()
        {
            crate::daemon::damage::trace(local, &data_dir).unwrap_or_default()
        } else {
            Vec::new()
        };
        Ok::<_, String>((checked, damage))
    })
    .await;
    let plain = |v: &[String]| -> Vec<String> {
        v.iter()
            .map(|p| {
                if verbose {
                    p.clone()
                } else {
                    crate::daemon::backup::plain(p)
                }
            })
            .collect()
    };
    match r {
        Ok(Ok(((problems, warnings), damage))) => {
            let (problems, warnings) = (plain(&problems), plain(&warnings));
            if json {
                let _ = json_out(
                    &serde_json::json!({ "repository": shown, "read_data": read_data, "errors": problems, "warnings": warnings, "damage": damage }),
                );
            } else if problems.is_empty() {
                for w in &warnings {
                    println!("note: {w}");
                }
                println!(
                    "ok: {shown} is consistent{}",
                    if read_data {
                        "; every pack read and checked"
                    } else {
                        " (structure; add --read-data to read every pack)"
                    }
                );
            } else {
                println!("PROBLEMS in {shown}:");
                for p in &problems {
                    println!("  {p}");
                }
                if !damage.is_empty() {
                    println!("What the damage hurts:");
                    for d in &damage {
                        for line in d.lines() {
                            println!("  {line}");
                        }
                    }
                }
            }
            if problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Ok(Err(e)) => refuse(json, ExitCode::FAILURE, e),
        Err(e) => refuse(json, ExitCode::FAILURE, e),
    }
}
