//! The observability verbs: `alerts`, `incidents`, `metrics`.

use std::process::ExitCode;

use crate::cli::{AlertsCommand, AuditCommand, BackupCommand, Global, IncidentsCommand};
use crate::commands::{connect, fail, fmt_age, fmt_bytes, simple};
use crate::core::incident::Incident;
use crate::core::lifecycle::Millis;
use crate::proto::{AlertsReport, FleetStatus, IncidentStatus, Request, Response};

async fn ask(g: &Global, req: Request) -> Result<Response, crate::client::ClientError> {
    let mut c = connect(g).await?;
    c.request(req).await
}

fn json_out<T: serde::Serialize>(v: &T) -> ExitCode {
    match serde_json::to_string_pretty(v) {
        Ok(s) => {
            println!("{s}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn unexpected(r: Response) -> ExitCode {
    eprintln!("error: unexpected answer {r:?}");
    ExitCode::FAILURE
}

/// UTC time for reports: `2026-11-28 13:04:05Z`.
pub fn time(ms: Millis) -> String {
    jiff::Timestamp::from_millisecond(ms as i64)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|_| ms.to_string())
}

fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub async fn alerts(g: &Global, cmd: Option<AlertsCommand>, json: bool) -> ExitCode {
    match cmd.unwrap_or(AlertsCommand::List) {
        AlertsCommand::List => match ask(g, Request::Alerts).await {
            Ok(Response::Alerts { report }) if json => json_out(&report),
            Ok(Response::Alerts { report }) => {
                print!("{}", alerts_table(&report, now_ms()));
                ExitCode::SUCCESS
            }
            Ok(r) => unexpected(r),
            Err(e) => fail(&e, json),
        },
        AlertsCommand::Ack { pattern } => simple(g, Request::Ack { pattern }, json).await,
        AlertsCommand::Silence { pattern, duration } => {
            let for_ms = duration.as_millis() as u64;
            simple(g, Request::Silence { pattern, for_ms }, json).await
        }
        AlertsCommand::History { alert, lines } => {
            match ask(
                g,
                Request::AlertHistory {
                    alert,
                    limit: lines,
                },
            )
            .await
            {
                Ok(Response::AlertHistory { events }) if json => json_out(&events),
                Ok(Response::AlertHistory { events }) => {
                    if events.is_empty() {
                        println!("no alert history");
                    }
                    for e in &events {
                        println!(
                            "{}  {:<8} {:<8} {:<32} {}",
                            time(e.at),
                            e.state,
                            e.severity,
                            crate::core::sanitize::sanitize_line(e.id.as_bytes()),
                            crate::core::sanitize::sanitize_line(e.summary.as_bytes())
                        );
                    }
                    ExitCode::SUCCESS
                }
                Ok(r) => unexpected(r),
                Err(e) => fail(&e, json),
            }
        }
    }
}

/// `alerts list` as text.
pub fn alerts_table(r: &AlertsReport, now: Millis) -> String {
    let mut out = String::new();
    if r.alerts.is_empty() {
        out.push_str("no alerts\n");
    } else {
        out.push_str(&format!(
            "{:<9} {:<9} {:<32} {:>8}  {}\n",
            "STATE", "SEVERITY", "ALERT", "FOR", "SUMMARY"
        ));
        for a in &r.alerts {
            let mut flags = Vec::new();
            if let Some(by) = &a.acknowledged_by {
                flags.push(format!("acked by {by}"));
            }
            if a.silenced_until.is_some_and(|u| u > now) {
                flags.push("silenced".into());
            }
            if a.flapping {
                flags.push("flapping".into());
            }
            let flags = if flags.is_empty() {
                String::new()
            } else {
                format!(" [{}]", flags.join(", "))
            };
            out.push_str(&format!(
                "{:<9} {:<9} {:<32} {:>8}  {}{flags}\n",
                a.state,
                a.severity,
                a.id,
                fmt_age(now.saturating_sub(a.since)),
                a.summary
            ));
        }
    }
    if !r.silences.is_empty() {
        out.push_str("\nsilences:\n");
        for s in &r.silences {
            out.push_str(&format!(
                "  {} for {} more (by {})\n",
                s.pattern,
                fmt_age(s.until.saturating_sub(now)),
                s.by
            ));
        }
    }
    out.push_str(&format!("\n{} rules:\n", r.rules.len()));
    for rule in &r.rules {
        let scope = if rule.agents.is_empty() {
            String::new()
        } else {
            format!(" agents {}", rule.agents.join(","))
        };
        let hold = if rule.for_ms > 0 {
            format!(" for {}", fmt_age(rule.for_ms))
        } else {
            String::new()
        };
        out.push_str(&format!(
            "  {:<20} {:<8} {}{hold}{scope}\n",
            rule.name, rule.severity, rule.expr
        ));
    }
    if !r.notifiers.is_empty() {
        out.push_str("\nnotifiers:\n");
        for n in &r.notifiers {
            let err = match (&n.last_error, n.last_error_at) {
                (Some(e), Some(at)) => {
                    format!("; last error {} ago: {e}", fmt_age(now.saturating_sub(at)))
                }
                _ => String::new(),
            };
            out.push_str(&format!(
                "  {:<16} {:<8} sent {}, failed {}, dropped {}{err}\n",
                n.name, n.kind, n.sent, n.failed, n.dropped
            ));
        }
    }
    out
}

pub async fn incidents(g: &Global, cmd: Option<IncidentsCommand>, json: bool) -> ExitCode {
    use IncidentsCommand as C;
    let show = |i: Box<Incident>| {
        if json {
            json_out(&i)
        } else {
            print!("{}", i.report(&time));
            ExitCode::SUCCESS
        }
    };
    match cmd.unwrap_or(C::List { all: false }) {
        C::List { all } => match ask(g, Request::Incidents { all }).await {
            Ok(Response::Incidents { incidents, .. }) if json => json_out(&incidents),
            Ok(Response::Incidents { incidents, omitted }) => {
                print!("{}", incidents_table(&incidents, now_ms()));
                if omitted > 0 {
                    println!(
                        "({omitted} older incidents not listed; `incidents show ID` reads any)"
                    );
                }
                ExitCode::SUCCESS
            }
            Ok(r) => unexpected(r),
            Err(e) => fail(&e, json),
        },
        C::Show { id } => match ask(g, Request::Incident { id }).await {
            Ok(Response::Incident { incident }) => show(incident),
            Ok(r) => unexpected(r),
            Err(e) => fail(&e, json),
        },
        C::Export { id, output } => match ask(g, Request::Incident { id }).await {
            Ok(Response::Incident { incident }) => {
                let text = incident.report(&time);
                match output {
                    None => {
                        print!("{text}");
                        ExitCode::SUCCESS
                    }
                    Some(path) => match std::fs::write(&path, text) {
                        Ok(()) => {
                            eprintln!("wrote {}", path.display());
                            ExitCode::SUCCESS
                        }
                        Err(e) => {
                            eprintln!("error: cannot write {}: {e}", path.display());
                            ExitCode::FAILURE
                        }
                    },
                }
            }
            Ok(r) => unexpected(r),
            Err(e) => fail(&e, json),
        },
        C::Open {
            title,
            level,
            agent,
        } => {
            simple(
                g,
                Request::IncidentOpen {
                    title,
                    level,
                    agent,
                },
                json,
            )
            .await
        }
        C::Note { id, text } => simple(g, Request::IncidentNote { id, text }, json).await,
        C::Advance { id, to } => simple(g, Request::IncidentAdvance { id, phase: to }, json).await,
        C::Assign { id, owner } => simple(g, Request::IncidentAssign { id, owner }, json).await,
        C::Resolve { id, note } => simple(g, Request::IncidentResolve { id, note }, json).await,
    }
}

pub fn incidents_table(list: &[IncidentStatus], now: Millis) -> String {
    if list.is_empty() {
        return "no incidents\n".into();
    }
    let mut out = format!(
        "{:>4}  {:<5} {:<8} {:<22} {:>8}  {:<12} {}\n",
        "ID", "LEVEL", "STATUS", "PHASE", "AGE", "OWNER", "TITLE"
    );
    for i in list {
        out.push_str(&format!(
            "{:>4}  {:<5} {:<8} {:<22} {:>8}  {:<12} {}\n",
            i.id,
            i.level,
            i.status,
            i.phase,
            fmt_age(now.saturating_sub(i.opened_at)),
            i.owner.as_deref().unwrap_or("-"),
            i.title
        ));
    }
    out
}

pub async fn audit(g: &Global, cmd: Option<AuditCommand>, json: bool) -> ExitCode {
    use crate::core::audit::{Checkpoint, Record, key_spans, verify_spans, verifying_key};
    let data_dir = crate::paths::client_data_dir(g.data_dir.as_deref(), g.config.as_deref());
    let local = |what: &str| {
        if g.host.is_some() {
            eprintln!(
                "error: `audit {what}` reads the data dir's files: run it on the daemon's machine"
            );
            return false;
        }
        true
    };
    match cmd.unwrap_or(AuditCommand::Verify { checkpoint: None }) {
        AuditCommand::Verify { checkpoint } => {
            if !local("verify") {
                return ExitCode::from(2);
            }
            let (log, mut cps, key) = match crate::daemon::audit::read(&data_dir) {
                Ok(x) => x,
                Err(e) => {
                    eprintln!(
                        "error: cannot read the audit trail in {}: {e}",
                        data_dir.join("audit").display()
                    );
                    return ExitCode::FAILURE;
                }
            };
            let mut trusted_hex = key;
            let mut pinned = None;
            if let Some(path) = checkpoint {
                let cp = std::fs::read_to_string(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|t| {
                        serde_json::from_str::<Checkpoint>(t.trim()).map_err(|e| e.to_string())
                    });
                match cp {
                    Ok(cp) => {
                        trusted_hex = cp.key.clone();
                        pinned = Some(cp.clone());
                        cps.push(cp);
                    }
                    Err(e) => {
                        eprintln!(
                            "error: {} is not an exported checkpoint: {e}",
                            path.display()
                        );
                        return ExitCode::from(2);
                    }
                }
            }
            if verifying_key(&trusted_hex).is_none() {
                eprintln!("error: the audit public key is not valid");
                return ExitCode::FAILURE;
            }
            // Key rotations: trust follows them from the trusted key.
            let rotations = crate::daemon::audit::read_rotations(&data_dir.join("audit"));
            cps.extend(rotations.iter().map(|r| r.checkpoint.clone()));
            let (spans, bad_rotations) = key_spans(&trusted_hex, &rotations);
            let v = verify_spans(&log, &cps, &spans);
            if let Some(cp) = &pinned
                && verifying_key(&cp.key).is_none_or(|k| !cp.valid(&k))
            {
                eprintln!("error: the exported checkpoint's signature does not verify");
                return ExitCode::FAILURE;
            }
            // With a checkpoint kept elsewhere, a checkpoint in the data dir
            // that its key does not lead to (rotations removed or forged)
            // is a failure, not a note: it is how a rewrite would look.
            let untrusted = pinned.is_some() && !v.bad_checkpoints.is_empty();
            if json {
                let _ = json_out(&v);
            } else {
                print!("{}", verdict_text(&v));
                if spans.len() > 1 {
                    println!(
                        "signing key rotated {} time(s); each rotation is signed by both keys",
                        spans.len() - 1
                    );
                }
            }
            if !bad_rotations.is_empty() {
                eprintln!(
                    "warning: key rotations that do not verify or do not chain were ignored (at seq {bad_rotations:?}): checkpoints of the keys they name are not trusted"
                );
            }
            if untrusted {
                eprintln!(
                    "error: checkpoints at seq {:?} are signed by keys the exported checkpoint's key does not lead to through a verified key rotation: the rotations were removed or forged, or the trail was rewritten",
                    v.bad_checkpoints
                );
            }
            if v.ok() && !untrusted {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        AuditCommand::Checkpoint { export } => match ask(g, Request::AuditCheckpoint).await {
            Ok(Response::Checkpoint { checkpoint }) => {
                let text = serde_json::to_string(&checkpoint).unwrap_or_default();
                match export {
                    Some(path) => {
                        if let Err(e) = std::fs::write(&path, format!("{text}\n")) {
                            eprintln!("error: cannot write {}: {e}", path.display());
                            return ExitCode::FAILURE;
                        }
                        eprintln!(
                            "checkpoint at seq {} written to {}; keep it somewhere the daemon's machine cannot change",
                            checkpoint.seq,
                            path.display()
                        );
                    }
                    None => println!("{text}"),
                }
                ExitCode::SUCCESS
            }
            Ok(r) => unexpected(r),
            Err(e) => fail(&e, json),
        },
        AuditCommand::RotateKey => crate::commands::simple(g, Request::AuditRotateKey, json).await,
        AuditCommand::Log { lines } => {
            if !local("log") {
                return ExitCode::from(2);
            }
            let text = match std::fs::read_to_string(data_dir.join("audit/audit.jsonl")) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: cannot read the audit log: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let recs: Vec<Record> = text
                .lines()
                .rev()
                .take(lines)
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            if json {
                return json_out(&recs);
            }
            for r in recs {
                println!(
                    "{:>7}  {}  {:<28} {:<20} {}  {}",
                    r.seq,
                    time(r.ts),
                    r.actor,
                    r.action,
                    r.result,
                    if r.args.is_null() {
                        String::new()
                    } else {
                        r.args.to_string()
                    }
                );
            }
            ExitCode::SUCCESS
        }
    }
}

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
fn backup_settings(g: &Global) -> Result<crate::daemon::recovery::Settings, String> {
    let source = crate::paths::find_config(g.config.as_deref());
    let cfg = crate::paths::load_config(&source).map_err(|e| e.to_string())?;
    let data_dir = crate::paths::data_dir(g.data_dir.as_deref(), &cfg);
    Ok(crate::daemon::recovery::Settings::new(data_dir, &cfg))
}

pub async fn backup(g: &Global, cmd: BackupCommand, json: bool) -> ExitCode {
    if g.host.is_some() {
        eprintln!(
            "error: `backup list` and `backup verify` read the repositories: run them on the daemon's machine"
        );
        return ExitCode::from(2);
    }
    let s = match backup_settings(g) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
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
        BackupCommand::Prune => {
            crate::commands::simple(g, crate::proto::Request::BackupPrune, json).await
        }
        BackupCommand::List { repository } => {
            let repo = match pick(repository) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let data_dir = s.data_dir.clone();
            let r =
                tokio::task::spawn_blocking(move || crate::daemon::backup::list(&repo, &data_dir))
                    .await;
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
                            time(sn.time),
                            sn.files,
                            fmt_bytes(sn.bytes),
                            fmt_bytes(sn.added),
                            sn.reason
                        );
                    }
                    ExitCode::SUCCESS
                }
                Ok(Err(e)) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        BackupCommand::Verify {
            read_data,
            repository,
            verbose,
        } => {
            let repo = match pick(repository) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let data_dir = s.data_dir.clone();
            let shown = repo.display().to_string();
            let r = tokio::task::spawn_blocking(move || {
                let checked = crate::daemon::backup::verify(&repo, &data_dir, read_data)?;
                // Damage found: which snapshots and files it hurts.
                let damage = if read_data && !checked.0.is_empty() {
                    crate::daemon::damage::trace(&repo, &data_dir).unwrap_or_default()
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
                Ok(Err(e)) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// `audit verify` as text.
pub fn verdict_text(v: &crate::core::audit::Verdict) -> String {
    let mut s = String::new();
    match &v.first_bad {
        Some((seq, why)) => s.push_str(&format!(
            "TAMPERED: record {seq}: {why}\n{} records before it verify.\n",
            seq.saturating_sub(1)
        )),
        None => s.push_str(&format!("ok: {} records, chain intact\n", v.records)),
    }
    match v.checkpoint {
        Some(c) => s.push_str(&format!("signed checkpoint matched up to seq {c}\n")),
        None => s.push_str("no signed checkpoint matched\n"),
    }
    if v.unprotected > 0 && v.first_bad.is_none() {
        s.push_str(&format!(
            "{} record(s) after seq {} are chained but not yet covered by a checkpoint: not protected against truncation\n",
            v.unprotected,
            v.checkpoint.unwrap_or(0)
        ));
    }
    if let Some(b) = v.torn_tail {
        s.push_str(&format!(
            "the last line is incomplete ({b} bytes): a write cut short by a crash, not tampering; the daemon cuts it at its next start\n"
        ));
    }
    if !v.bad_checkpoints.is_empty() {
        s.push_str(&format!(
            "ignored checkpoints with a bad signature or another key: {:?}\n",
            v.bad_checkpoints
        ));
    }
    s
}

/// `metrics --json`: what a script wants of the current values.
#[derive(Debug, serde::Serialize)]
pub struct MetricsReport {
    pub at: Millis,
    pub host: crate::proto::HostStatus,
    pub agents: Vec<AgentMetrics>,
    pub alerts_firing: usize,
    pub alerts_pending: usize,
    pub incidents_open: usize,
}

#[derive(Debug, serde::Serialize)]
pub struct AgentMetrics {
    pub name: String,
    pub desired: u32,
    pub running: u32,
    pub cpu_percent: f64,
    pub rss_bytes: u64,
    pub restarts: u64,
    pub cpu_seconds: f64,
    pub log_lines: u64,
    pub log_dropped: u64,
}

pub fn metrics_report(s: &FleetStatus) -> MetricsReport {
    MetricsReport {
        at: s.now,
        host: s.host.clone(),
        agents: s
            .agents
            .iter()
            .map(|a| AgentMetrics {
                name: a.name.clone(),
                desired: a.desired,
                running: a.running,
                cpu_percent: a.replicas.iter().map(|r| r.cpu_percent).sum(),
                rss_bytes: a.replicas.iter().map(|r| r.rss_bytes).sum(),
                restarts: a.replicas.iter().map(|r| r.restarts).sum(),
                cpu_seconds: a.replicas.iter().map(|r| r.cpu_seconds).sum(),
                log_lines: a.log_lines,
                log_dropped: a.log_dropped,
            })
            .collect(),
        alerts_firing: s.alerts.iter().filter(|a| a.state == "firing").count(),
        alerts_pending: s.alerts.iter().filter(|a| a.state == "pending").count(),
        incidents_open: s.incidents.iter().filter(|i| i.status == "open").count(),
    }
}

pub async fn metrics(g: &Global, json: bool) -> ExitCode {
    let status = match ask(g, Request::Status).await {
        Ok(Response::Status { status }) => status,
        Ok(r) => return unexpected(r),
        Err(e) => return fail(&e, json),
    };
    let r = metrics_report(&status);
    if json {
        return json_out(&r);
    }
    let h = &r.host;
    println!(
        "host  cpu {:.1}%  memory {} / {}  swap {} / {}  load {:.2} {:.2} {:.2}  net rx {}/s tx {}/s",
        h.cpu_percent,
        fmt_bytes(h.memory_used),
        fmt_bytes(h.memory_total),
        fmt_bytes(h.swap_used),
        fmt_bytes(h.swap_total),
        h.load[0],
        h.load[1],
        h.load[2],
        fmt_bytes(h.net_rx_bps as u64),
        fmt_bytes(h.net_tx_bps as u64)
    );
    println!(
        "      collector tick {:.2} ms; alerts firing {}, pending {}; open incidents {}\n",
        h.collect_seconds * 1000.0,
        r.alerts_firing,
        r.alerts_pending,
        r.incidents_open
    );
    println!(
        "{:<24} {:>9} {:>7} {:>10} {:>9} {:>10} {:>10}",
        "AGENT", "REPLICAS", "CPU%", "MEMORY", "RESTARTS", "CPU-SEC", "LOG-LINES"
    );
    for a in &r.agents {
        println!(
            "{:<24} {:>9} {:>7.1} {:>10} {:>9} {:>10.1} {:>10}",
            a.name,
            format!("{}/{}", a.running, a.desired),
            a.cpu_percent,
            fmt_bytes(a.rss_bytes),
            a.restarts,
            a.cpu_seconds,
            a.log_lines
        );
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::incident::{EntryKind, Incident, Phase};

    /// A fixture incident: a crash loop from detection to resolution.
    fn fixture() -> Incident {
        let t0: Millis = 1_795_872_000_000;
        let s = |n: u64| t0 + n * 1000;
        let mut i = Incident::open(
            7,
            "worker restarted 4 times in 10 minutes".into(),
            1,
            Some("crash-loop/worker".into()),
            Some("worker".into()),
            "autonomos",
            t0,
        );
        i.record(
            s(0),
            EntryKind::Alert,
            "autonomos",
            "crash-loop/worker firing: worker restarted 4 times in 10 minutes",
        );
        for n in 1..=3 {
            i.record(
                s(n * 5),
                EntryKind::Restart,
                "autonomos",
                format!("worker/0: ActiveOperation → Adaptation (exit 3; restart = always) #{n}"),
            );
        }
        i.advance(None, "uid 1000 (local)", s(30)).expect("advance");
        i.owner = Some("alice".into());
        i.record(s(31), EntryKind::Action, "uid 1000 (local)", "owner: alice");
        i.record(
            s(40),
            EntryKind::Note,
            "uid 1000 (local)",
            "model path | typo in the config",
        );
        i.record(
            s(45),
            EntryKind::Action,
            "uid 1000 (ssh 10.0.0.5)",
            "stop worker",
        );
        i.advance(Some(Phase::Recovery), "uid 1000 (local)", s(60))
            .expect("advance");
        i.record(
            s(90),
            EntryKind::Alert,
            "autonomos",
            "crash-loop/worker resolved: worker restarted 0 times in 10 minutes",
        );
        i.resolve(
            "uid 1000 (local)",
            Some("config fixed and reloaded"),
            s(125),
        )
        .expect("resolve");
        i
    }

    #[test]
    fn the_post_incident_report() {
        insta::assert_snapshot!(fixture().report(&time));
    }

    #[test]
    fn incident_list_and_alert_table_format() {
        let i = fixture();
        let st = crate::daemon::observe::incident_status(&i);
        let text = incidents_table(&[st], i.opened_at + 3_600_000);
        assert!(
            text.contains("   7  1     resolved Post-Incident Analysis    1h00m  alice"),
            "{text}"
        );
    }
}
