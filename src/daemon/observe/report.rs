//! Alerts and incidents as clients and notifiers see them.

use super::*;

pub fn alert_status(a: &alert::Alert) -> AlertStatus {
    AlertStatus {
        id: a.id.clone(),
        name: a.rule.clone(),
        severity: a.severity.name().into(),
        state: a.state.name().into(),
        summary: a.summary.clone(),
        since: a.since,
        acknowledged: a.acknowledged.is_some(),
        acknowledged_by: a.acknowledged.clone(),
        agent: a.agent.clone(),
        value: a.value,
        fired_value: a.fired_value,
        silenced_until: a.silenced_until,
        flapping: a.flapping,
    }
}

pub fn incident_status(i: &Incident) -> IncidentStatus {
    let skip = i.timeline.len().saturating_sub(RECENT_ENTRIES);
    IncidentStatus {
        id: i.id,
        title: i.title.clone(),
        level: i.level,
        status: i.status().into(),
        phase: i.phase.name().into(),
        opened_at: i.opened_at,
        resolved_at: i.resolved_at,
        owner: i.owner.clone(),
        agent: i.agent.clone(),
        alert: i.alert.clone(),
        recent: i.timeline[skip..].to_vec(),
        entries: i.timeline.len() as u64 + i.elided,
    }
}

/// The JSON notifiers receive.
pub fn alert_json(a: &alert::Alert, host: &str, incident: Option<u64>) -> String {
    let v = serde_json::json!({
        "version": 1,
        "source": "autonomos",
        "host": host,
        "id": a.id,
        "rule": a.rule,
        "agent": a.agent,
        "severity": a.severity.name(),
        "level": a.severity.level(),
        "state": a.state.name(),
        "summary": a.summary,
        "value": a.value,
        "since_ms": a.since,
        "since": rfc3339(a.since),
        "flapping": a.flapping,
        "incident": incident,
    });
    v.to_string()
}

pub fn rfc3339(ms: Millis) -> String {
    jiff::Timestamp::from_millisecond(ms as i64)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// Parses a phase name for `incidents advance --to`.
pub fn parse_phase(s: &str) -> Result<Phase, String> {
    Phase::parse(s).ok_or_else(|| {
        format!(
            "unknown phase `{s}`; phases: {}",
            crate::core::incident::PHASES
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}
