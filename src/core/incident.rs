//! Incidents: the manual's three levels and six-phase response procedure,
//! with a timeline of what happened around them.
//!
//! Pure data and rules; the daemon stores incidents in `state.db` and
//! decides what goes on which timeline.

use serde::{Deserialize, Serialize};

use crate::core::lifecycle::Millis;

/// The response procedure, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Phase {
    Detection,
    Assessment,
    Containment,
    Eradication,
    Recovery,
    PostIncidentAnalysis,
}

pub const PHASES: [Phase; 6] = [
    Phase::Detection,
    Phase::Assessment,
    Phase::Containment,
    Phase::Eradication,
    Phase::Recovery,
    Phase::PostIncidentAnalysis,
];

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Detection => "Detection",
            Phase::Assessment => "Assessment",
            Phase::Containment => "Containment",
            Phase::Eradication => "Eradication",
            Phase::Recovery => "Recovery",
            Phase::PostIncidentAnalysis => "Post-Incident Analysis",
        }
    }

    pub fn parse(s: &str) -> Option<Phase> {
        PHASES.iter().copied().find(|p| {
            p.name().eq_ignore_ascii_case(s)
                || p.name().replace(['-', ' '], "").eq_ignore_ascii_case(s)
        })
    }

    pub fn next(self) -> Option<Phase> {
        let i = PHASES.iter().position(|p| *p == self)?;
        PHASES.get(i + 1).copied()
    }
}

pub fn level_name(level: u8) -> &'static str {
    match level {
        1 => "Level 1 (critical system failure)",
        2 => "Level 2 (major degradation)",
        _ => "Level 3 (minor issue)",
    }
}

/// What a timeline entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Opened,
    Alert,
    Restart,
    State,
    Action,
    Note,
    Phase,
    Resolved,
}

impl EntryKind {
    pub fn name(self) -> &'static str {
        match self {
            EntryKind::Opened => "opened",
            EntryKind::Alert => "alert",
            EntryKind::Restart => "restart",
            EntryKind::State => "state",
            EntryKind::Action => "action",
            EntryKind::Note => "note",
            EntryKind::Phase => "phase",
            EntryKind::Resolved => "resolved",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub at: Millis,
    pub kind: EntryKind,
    /// Who: an operator (`uid 1000 (local)`) or `autonomos`.
    pub by: String,
    pub text: String,
}

/// Timeline entries kept per incident: the first [`TIMELINE_HEAD`] (how it
/// started) and the most recent rest; the middle is counted in `elided`.
pub const TIMELINE_CAP: usize = 500;
pub const TIMELINE_HEAD: usize = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: u64,
    pub title: String,
    /// 1 critical, 2 major, 3 minor.
    pub level: u8,
    pub phase: Phase,
    pub owner: Option<String>,
    pub opened_at: Millis,
    pub resolved_at: Option<Millis>,
    /// The alert that opened it, if any (deduplication key).
    pub alert: Option<String>,
    /// The agent it concerns, if any: its restarts and state changes join
    /// the timeline.
    pub agent: Option<String>,
    pub timeline: Vec<Entry>,
    /// Entries dropped from the middle of a long timeline.
    #[serde(default)]
    pub elided: u64,
}

impl Incident {
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        id: u64,
        title: String,
        level: u8,
        alert: Option<String>,
        agent: Option<String>,
        by: &str,
        now: Millis,
    ) -> Incident {
        let mut i = Incident {
            id,
            title,
            level: level.clamp(1, 3),
            phase: Phase::Detection,
            owner: None,
            opened_at: now,
            resolved_at: None,
            alert,
            agent,
            timeline: Vec::new(),
            elided: 0,
        };
        let text = format!("opened at {} in Detection", level_name(i.level));
        i.record(now, EntryKind::Opened, by, text);
        i
    }

    pub fn is_open(&self) -> bool {
        self.resolved_at.is_none()
    }

    pub fn status(&self) -> &'static str {
        if self.is_open() { "open" } else { "resolved" }
    }

    /// Appends to the timeline, keeping it bounded.
    pub fn record(&mut self, at: Millis, kind: EntryKind, by: &str, text: impl Into<String>) {
        if self.timeline.len() >= TIMELINE_CAP {
            self.timeline.remove(TIMELINE_HEAD);
            self.elided += 1;
        }
        self.timeline.push(Entry {
            at,
            kind,
            by: by.to_string(),
            text: text.into(),
        });
    }

    /// Adds what happened before the incident was opened (the restarts that
    /// led to it), oldest first, ahead of the rest of the timeline; keeps at
    /// most [`TIMELINE_HEAD`] of them (the newest).
    pub fn backfill(&mut self, mut before: Vec<Entry>) {
        before.sort_by_key(|e| e.at);
        let skip = before.len().saturating_sub(TIMELINE_HEAD);
        self.elided += skip as u64;
        let mut timeline: Vec<Entry> = before.into_iter().skip(skip).collect();
        timeline.append(&mut self.timeline);
        if timeline.len() > TIMELINE_CAP {
            let extra = timeline.len() - TIMELINE_CAP;
            timeline.drain(TIMELINE_HEAD..TIMELINE_HEAD + extra);
            self.elided += extra as u64;
        }
        self.timeline = timeline;
    }

    /// Raises the level (1 is the highest) when `level` is more severe;
    /// says so on the timeline. True when it changed.
    pub fn raise(&mut self, level: u8, why: &str, by: &str, now: Millis) -> bool {
        let level = level.clamp(1, 3);
        if !self.is_open() || level >= self.level {
            return false;
        }
        let text = format!(
            "raised from Level {} to {}: {why}",
            self.level,
            level_name(level)
        );
        self.level = level;
        self.record(now, EntryKind::Alert, by, text);
        true
    }

    /// Moves to the next phase (or to `to`, which must be later).
    pub fn advance(&mut self, to: Option<Phase>, by: &str, now: Millis) -> Result<Phase, String> {
        if !self.is_open() {
            return Err(format!("incident #{} is resolved", self.id));
        }
        let next = match to {
            Some(p) if p <= self.phase => {
                return Err(format!(
                    "incident #{} is already in {}; phases only move forward",
                    self.id,
                    self.phase.name()
                ));
            }
            Some(p) => p,
            None => self.phase.next().ok_or_else(|| {
                format!(
                    "incident #{} is in its last phase ({}); resolve it instead",
                    self.id,
                    self.phase.name()
                )
            })?,
        };
        let text = format!("{} → {}", self.phase.name(), next.name());
        self.phase = next;
        self.record(now, EntryKind::Phase, by, text);
        Ok(next)
    }

    pub fn resolve(&mut self, by: &str, note: Option<&str>, now: Millis) -> Result<(), String> {
        if !self.is_open() {
            return Err(format!("incident #{} is already resolved", self.id));
        }
        self.resolved_at = Some(now);
        let mut text = String::from("resolved");
        if self.phase < Phase::PostIncidentAnalysis {
            text.push_str(&format!(
                "; {} → {}",
                self.phase.name(),
                Phase::PostIncidentAnalysis.name()
            ));
            self.phase = Phase::PostIncidentAnalysis;
        }
        if let Some(n) = note.filter(|n| !n.is_empty()) {
            text.push_str(": ");
            text.push_str(n);
        }
        self.record(now, EntryKind::Resolved, by, text);
        Ok(())
    }

    /// The post-incident report, in Markdown. `time` formats a timestamp.
    pub fn report(&self, time: &dyn Fn(Millis) -> String) -> String {
        let mut s = String::new();
        s.push_str(&format!(
            "# Incident #{}: {}\n\n",
            self.id,
            md_line(&self.title)
        ));
        s.push_str("| | |\n| --- | --- |\n");
        s.push_str(&format!("| Level | {} |\n", level_name(self.level)));
        s.push_str(&format!("| Status | {} |\n", self.status()));
        s.push_str(&format!("| Phase | {} |\n", self.phase.name()));
        s.push_str(&format!(
            "| Owner | {} |\n",
            self.owner
                .as_deref()
                .map(md_cell)
                .unwrap_or_else(|| "unassigned".into())
        ));
        s.push_str(&format!("| Opened | {} |\n", time(self.opened_at)));
        match self.resolved_at {
            Some(r) => {
                s.push_str(&format!("| Resolved | {} |\n", time(r)));
                s.push_str(&format!(
                    "| Duration | {} |\n",
                    human(r.saturating_sub(self.opened_at))
                ));
            }
            None => s.push_str("| Resolved | not yet |\n"),
        }
        if let Some(a) = &self.agent {
            s.push_str(&format!("| Agent | `{}` |\n", md_cell(a)));
        }
        if let Some(a) = &self.alert {
            s.push_str(&format!("| Alert | `{}` |\n", md_cell(a)));
        }
        s.push_str("\n## Response phases\n\n");
        for p in PHASES {
            let reached = self
                .timeline
                .iter()
                .find(|e| {
                    (e.kind == EntryKind::Phase || e.kind == EntryKind::Resolved)
                        && e.text.contains(&format!("→ {}", p.name()))
                })
                .map(|e| e.at)
                .or((p == Phase::Detection).then_some(self.opened_at));
            let mark = if p <= self.phase { "x" } else { " " };
            match reached {
                Some(at) if p <= self.phase => {
                    s.push_str(&format!("- [{mark}] {} ({})\n", p.name(), time(at)))
                }
                _ if p < self.phase => s.push_str(&format!("- [{mark}] {} (skipped)\n", p.name())),
                _ => s.push_str(&format!("- [{mark}] {}\n", p.name())),
            }
        }
        s.push_str("\n## Timeline\n\n| Time | Kind | By | What |\n| --- | --- | --- | --- |\n");
        for (i, e) in self.timeline.iter().enumerate() {
            if i == TIMELINE_HEAD && self.elided > 0 {
                s.push_str(&format!("| | | | … {} entries elided … |\n", self.elided));
            }
            s.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                time(e.at),
                e.kind.name(),
                md_cell(&e.by),
                md_cell(&e.text)
            ));
        }
        let notes: Vec<&Entry> = self
            .timeline
            .iter()
            .filter(|e| e.kind == EntryKind::Note)
            .collect();
        s.push_str("\n## Notes\n\n");
        if notes.is_empty() {
            s.push_str("None recorded.\n");
        }
        for n in notes {
            s.push_str(&format!(
                "- {} ({}, {})\n",
                md_line(&n.text),
                md_line(&n.by),
                time(n.at)
            ));
        }
        let restarts = self
            .timeline
            .iter()
            .filter(|e| e.kind == EntryKind::Restart)
            .count();
        let alerts = self
            .timeline
            .iter()
            .filter(|e| e.kind == EntryKind::Alert)
            .count();
        s.push_str(&format!(
            "\n## Summary\n\n{} timeline entries ({} elided), {} alert events, {} restarts.\n",
            self.timeline.len() as u64 + self.elided,
            self.elided,
            alerts,
            restarts
        ));
        s
    }
}

/// `1h 2m 3s` style.
pub fn human(ms: Millis) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        _ => format!("{}h {}m", s / 3600, (s % 3600) / 60),
    }
}

fn md_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

fn md_cell(s: &str) -> String {
    md_line(s).replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: Millis) -> String {
        format!("T+{}", ms / 1000)
    }

    #[test]
    fn phases_only_move_forward_and_resolve_ends_it() {
        let mut i = Incident::open(1, "x".into(), 1, None, None, "autonomos", 0);
        assert_eq!(i.advance(None, "op", 1000), Ok(Phase::Assessment));
        assert!(i.advance(Some(Phase::Detection), "op", 2000).is_err());
        assert_eq!(
            i.advance(Some(Phase::Recovery), "op", 3000),
            Ok(Phase::Recovery)
        );
        assert_eq!(i.advance(None, "op", 4000), Ok(Phase::PostIncidentAnalysis));
        assert!(
            i.advance(None, "op", 5000)
                .is_err_and(|e| e.contains("resolve it"))
        );
        i.resolve("op", Some("fixed"), 6000).expect("resolves");
        assert!(!i.is_open());
        assert!(i.resolve("op", None, 7000).is_err());
        assert!(i.advance(None, "op", 7000).is_err());
    }

    #[test]
    fn the_timeline_stays_bounded_and_keeps_its_start() {
        let mut i = Incident::open(1, "x".into(), 2, None, None, "autonomos", 0);
        for n in 0..10_000u64 {
            i.record(n, EntryKind::Restart, "autonomos", format!("restart {n}"));
        }
        assert_eq!(i.timeline.len(), TIMELINE_CAP);
        assert_eq!(i.timeline[0].kind, EntryKind::Opened);
        assert_eq!(i.timeline[1].text, "restart 0");
        assert_eq!(
            i.timeline.last().map(|e| e.text.as_str()),
            Some("restart 9999")
        );
        assert_eq!(i.elided, 10_001 - TIMELINE_CAP as u64);
        assert!(i.report(&t).contains("entries elided"));
    }

    #[test]
    fn backfilled_history_goes_first_in_time_order() {
        let mut i = Incident::open(
            1,
            "x".into(),
            2,
            None,
            Some("w".into()),
            "autonomos",
            10_000,
        );
        let e = |at, text: &str| Entry {
            at,
            kind: EntryKind::Restart,
            by: "autonomos".into(),
            text: text.into(),
        };
        i.backfill(vec![e(9_000, "second"), e(5_000, "first")]);
        let texts: Vec<&str> = i.timeline.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(texts[..2], ["first", "second"]);
        assert_eq!(i.timeline[2].kind, EntryKind::Opened);
        let many: Vec<Entry> = (0..1000).map(|n| e(n, "old")).collect();
        i.backfill(many);
        assert!(i.timeline.len() <= TIMELINE_CAP);
        assert!(i.elided >= 900);
    }

    #[test]
    fn phase_names_parse_loosely() {
        assert_eq!(
            Phase::parse("post-incident analysis"),
            Some(Phase::PostIncidentAnalysis)
        );
        assert_eq!(
            Phase::parse("PostIncidentAnalysis"),
            Some(Phase::PostIncidentAnalysis)
        );
        assert_eq!(Phase::parse("containment"), Some(Phase::Containment));
        assert_eq!(Phase::parse("nope"), None);
    }
}
