//! The text the CLI prints: tables and event lines (pure, tested).

use super::*;

/// The task agents' queues, under the fleet table (nothing without any).
fn task_table(s: &FleetStatus) -> String {
    let rows: Vec<(&str, &crate::proto::TaskSummary)> = s
        .agents
        .iter()
        .filter_map(|a| Some((a.name.as_str(), a.tasks.as_ref()?)))
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let w = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(5).max(10);
    let mut out = format!(
        "\n{:<w$}  {:>7}  {:>7}  {:>9}  {:>6}  {:>8}\n",
        "TASK AGENT", "QUEUE", "RUNNING", "COMPLETED", "FAILED", "RUN P95"
    );
    for (name, t) in rows {
        let p95 = t.run_p95_ms.map_or("-".into(), crate::core::units::fmt_ms);
        out.push_str(&format!(
            "{name:<w$}  {:>7}  {:>7}  {:>9}  {:>6}  {:>8}\n",
            t.queue, t.in_flight, t.completed, t.failed, p95
        ));
    }
    out
}

/// Why a replica waits or failed, for the line under its row.
fn replica_note(r: &crate::proto::ReplicaStatus) -> Option<String> {
    match (&r.waiting, &r.error, &r.health) {
        (Some(w), _, _) => Some(format!("waiting: {}", sanitize_line(w.as_bytes()))),
        (None, Some(e), _) => Some(format!("error: {}", sanitize_line(e.as_bytes()))),
        (None, None, Some(h)) if h != "healthy" => Some(format!("health: {h}")),
        _ => None,
    }
}

/// One replica's row of `status -r`.
fn replica_row(
    agent: &str,
    r: &crate::proto::ReplicaStatus,
    uptime: &dyn Fn(Option<Millis>) -> String,
) -> [String; 8] {
    [
        format!("  {agent}/{}", r.index),
        r.pid
            .map(|p| format!("pid {p}"))
            .unwrap_or_else(|| "-".into()),
        r.state.label().to_string(),
        format!("{:.1}%", r.cpu_percent),
        format_size(r.rss_bytes),
        r.restarts.to_string(),
        uptime(r.started_at),
        r.last_exit
            .map(|e| e.to_string())
            .unwrap_or_else(|| "-".into()),
    ]
}

/// The fleet table of `autonomos status`.
pub fn status_table(s: &FleetStatus, replicas: bool) -> String {
    let now = s.now;
    let mut out = agents_table(&[("", s)], replicas, false);
    out.push_str(&task_table(s));
    let rows_omitted: u32 = s.agents.iter().map(|a| a.replicas_omitted).sum();
    if replicas && rows_omitted > 0 {
        out.push_str(&format!(
            "({rows_omitted} replica rows not listed: the fleet is larger than one answer)\n"
        ));
    }
    if s.agents_omitted > 0 {
        out.push_str(&format!(
            "({} agents not listed: the fleet is larger than one answer)\n",
            s.agents_omitted
        ));
    }
    if let Some(p) = &s.backup_progress {
        out.push_str(&format!("\n{}\n", sanitize_line(p.line().as_bytes())));
    }
    for f in &s.storage {
        out.push_str(&format!(
            "\nDATA DIR FAILING: writes to the {} fail since {} ago ({} failed): {}\n",
            f.what,
            fmt_age(now.saturating_sub(f.since)),
            f.errors,
            sanitize_line(f.error.as_bytes())
        ));
        out.push_str(match f.part.as_str() {
            "state" => "  changes (scale, start, stop) are refused until it takes writes again\n",
            _ => "  audit records are kept in memory and written when it takes writes again\n",
        });
    }
    out
}

/// The fleet table of one daemon, or of several with a HOST column first.
pub fn agents_table(parts: &[(&str, &FleetStatus)], replicas: bool, hosts: bool) -> String {
    let head = [
        "AGENT",
        "REPLICAS",
        "STATE",
        "CPU",
        "MEMORY",
        "RESTARTS",
        "UPTIME",
        "LAST EXIT",
    ];
    let mut rows: Vec<Vec<String>> = vec![
        hosts
            .then(|| "HOST".to_string())
            .into_iter()
            .chain(head.iter().map(|h| h.to_string()))
            .collect(),
    ];
    // The reason a replica waits or failed, printed on its own line below
    // its row (by row index), so the table stays narrow.
    let mut notes: Vec<(usize, String)> = Vec::new();
    for (host, s) in parts {
        let now = s.now;
        let uptime = |started: Option<Millis>| {
            started
                .map(|t| fmt_age(now.saturating_sub(t)))
                .unwrap_or_else(|| "-".into())
        };
        let lead = || hosts.then(|| host.to_string()).into_iter();
        for a in &s.agents {
            let cpu: f64 = a.replicas.iter().map(|r| r.cpu_percent).sum();
            let mem: u64 = a.replicas.iter().map(|r| r.rss_bytes).sum();
            let restarts: u64 = a.replicas.iter().map(|r| r.restarts).sum();
            let oldest = a.replicas.iter().filter_map(|r| r.started_at).min();
            let last = a
                .replicas
                .iter()
                .filter_map(|r| r.last_exit)
                .max_by_key(|e| e.at)
                .map(|e| format!("{e}, {} ago", fmt_age(now.saturating_sub(e.at))))
                .unwrap_or_else(|| "-".into());
            let row = [
                a.name.clone(),
                format!("{}/{}", a.running, a.desired),
                agent_state(a),
                format!("{cpu:.1}%"),
                format_size(mem),
                restarts.to_string(),
                uptime(oldest),
                last,
            ];
            rows.push(lead().chain(row).collect());
            if replicas {
                for r in &a.replicas {
                    if let Some(note) = replica_note(r) {
                        notes.push((rows.len(), note));
                    }
                    rows.push(lead().chain(replica_row(&a.name, r, &uptime)).collect());
                }
            }
        }
    }
    let cols = rows[0].len();
    let shift = usize::from(hosts);
    let mut widths = vec![0usize; cols];
    for row in &rows {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for (n, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (i, c) in row.iter().enumerate() {
            let pad = widths[i] - c.chars().count();
            let last = i + 1 == cols;
            if (3 + shift..=5 + shift).contains(&i) {
                line.push_str(&" ".repeat(pad));
                line.push_str(c);
            } else {
                line.push_str(c);
                if !last {
                    line.push_str(&" ".repeat(pad));
                }
            }
            if !last {
                line.push_str("  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
        for (_, note) in notes.iter().filter(|(i, _)| *i == n) {
            out.push_str(&format!("      └ {note}\n"));
        }
    }
    out
}

/// One line per event, for `attach` until the console is there.
pub fn event_line(now: Millis, event: &ServerEvent) -> Option<String> {
    let t = jiff::Timestamp::from_millisecond(now as i64)
        .map(|t| t.strftime("%H:%M:%S").to_string())
        .unwrap_or_default();
    match event {
        ServerEvent::Transition {
            agent,
            replica,
            transition,
        } => Some(format!(
            "{t} {agent}/{replica} {} → {}: {}",
            transition.from,
            transition.to,
            sanitize_line(transition.reason.as_bytes())
        )),
        ServerEvent::Agent {
            name,
            desired,
            enabled,
        } => Some(format!(
            "{t} {name}: desired {desired}, {}",
            if *enabled { "started" } else { "stopped" }
        )),
        ServerEvent::FleetChanged => Some(format!("{t} fleet changed (reload)")),
        ServerEvent::ShuttingDown => Some(format!("{t} daemon shutting down")),
        ServerEvent::Samples { .. } => None,
        ServerEvent::Storage { faults } if faults.is_empty() => {
            Some(format!("{t} data dir takes writes again"))
        }
        ServerEvent::Storage { faults } => Some(format!(
            "{t} DATA DIR FAILING: {}",
            faults
                .iter()
                .map(|f| format!("{}: {}", f.what, sanitize_line(f.error.as_bytes())))
                .collect::<Vec<_>>()
                .join("; ")
        )),
        ServerEvent::Audit {
            records,
            backup_running,
            progress,
        } => {
            let last = records
                .last()
                .map(|r| format!("audit #{} {} {}: {}", r.seq, r.actor, r.action, r.result))
                .unwrap_or_default();
            Some(format!(
                "{t} {last}{}",
                match progress {
                    Some(p) => format!(" ({})", p.line()),
                    None if *backup_running => " (backup running)".to_string(),
                    None => String::new(),
                }
            ))
        }
        ServerEvent::Alerts { alerts, .. } => {
            let firing: Vec<&str> = alerts
                .iter()
                .filter(|a| a.state == "firing")
                .map(|a| a.id.as_str())
                .collect();
            Some(format!(
                "{t} alerts: {} firing{}{}",
                firing.len(),
                if firing.is_empty() { "" } else { ": " },
                firing.join(", ")
            ))
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
            format!(" for {}", crate::core::units::fmt_ms(rule.for_ms))
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
        insta::assert_snapshot!(fixture().report(&utc));
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
