//! The System Health Check (`autonomos doctor`): what the facts gathered
//! about a daemon and its data dir mean. Each check ends `ok`, `warn` (worth
//! a look, not failing) or `problem` (the command exits 1), with what to do.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::core::lifecycle::Millis;
use crate::core::units::{fmt_ms, format_size};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Problem,
}

/// One check's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub level: Level,
    pub detail: String,
    /// What to do about it (warn and problem).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(name: &str, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            level: Level::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn warn(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            level: Level::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn problem(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            level: Level::Problem,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// The exit code of a report: 0 all fine (warnings included), 1 a problem.
pub fn exit_code(checks: &[Check]) -> u8 {
    u8::from(checks.iter().any(|c| c.level == Level::Problem))
}

/// The data dir's file system: a problem under 5 % or 1 GiB free, a
/// warning under 15 %.
pub fn disk(free: u64, total: u64) -> Check {
    const NAME: &str = "disk space";
    let pct = if total == 0 {
        100.0
    } else {
        free as f64 * 100.0 / total as f64
    };
    let detail = format!(
        "{} free of {} ({pct:.0} %)",
        format_size(free),
        format_size(total)
    );
    let fix = "free space on the data dir's file system (old logs, backups: `backup prune`), or move the data dir";
    if pct < 5.0 || free < 1 << 30 {
        Check::problem(NAME, detail, fix)
    } else if pct < 15.0 {
        Check::warn(NAME, detail, fix)
    } else {
        Check::ok(NAME, detail)
    }
}

/// The age of the newest snapshot against the schedule: a problem past
/// twice `every` (or none at all with a schedule); without a schedule a
/// snapshot older than a week is worth a warning.
pub fn backup_age(newest: Option<Millis>, every: Option<Duration>, now: Millis) -> Check {
    const NAME: &str = "last backup";
    let Some(at) = newest else {
        return match every {
            Some(_) => Check::problem(
                NAME,
                "no snapshot yet, though backups are scheduled",
                "run `autonomos backup` and read the daemon log for why the schedule has not taken one",
            ),
            None => Check::warn(
                NAME,
                "no snapshot, and no schedule (`[backup] every`)",
                "take one with `autonomos backup`, and set `every` in [backup]",
            ),
        };
    };
    let age = now.saturating_sub(at);
    let detail = format!("newest snapshot {} old", fmt_ms(age));
    let week = 7 * 24 * 3600 * 1000;
    match every {
        Some(e) if age > 2 * e.as_millis() as u64 => Check::problem(
            NAME,
            format!(
                "{detail}; the schedule says every {}",
                fmt_ms(e.as_millis() as u64)
            ),
            "run `autonomos backup` and read the daemon log for failed backups",
        ),
        None if age > week => Check::warn(
            NAME,
            format!("{detail}, and no schedule"),
            "set `every` in [backup]",
        ),
        _ => Check::ok(NAME, detail),
    }
}

/// The pool's headroom: a warning past 90 % of cores, memory or replica
/// slots; a problem when replicas wait for it.
pub fn pool(used: (f64, u64, u32), size: (f64, u64, u32), waiting: &[String]) -> Check {
    const NAME: &str = "resource pool";
    let share = |u: f64, s: f64| if s > 0.0 { u / s } else { 0.0 };
    let shares = [
        share(used.0, size.0),
        share(used.1 as f64, size.1 as f64),
        share(f64::from(used.2), f64::from(size.2)),
    ];
    let detail = format!(
        "{:.1}/{:.1} cores, {}/{} memory, {}/{} replicas requested",
        used.0,
        size.0,
        format_size(used.1),
        format_size(size.1),
        used.2,
        size.2
    );
    if !waiting.is_empty() {
        let who = waiting.join(", ");
        return Check::problem(
            NAME,
            format!("{detail}; waiting for room: {who}"),
            "raise [pool] cpu/memory/max_agents, lower the agents' requests, or scale something down",
        );
    }
    if shares.iter().any(|s| *s > 0.9) {
        return Check::warn(
            NAME,
            format!("{detail}: under 10 % left"),
            "the next scale-up may wait: raise [pool] or lower requests",
        );
    }
    Check::ok(NAME, detail)
}

/// Replicas whose probes fail now (`agent/N: health`).
pub fn probes(probed: usize, failing: &[String]) -> Check {
    const NAME: &str = "probes";
    if probed == 0 {
        return Check::ok(NAME, "no agent has health checks");
    }
    if failing.is_empty() {
        return Check::ok(NAME, format!("{probed} probed replicas pass"));
    }
    Check::problem(
        NAME,
        format!(
            "{} of {probed} probed replicas: {}",
            failing.len(),
            failing.join(", ")
        ),
        "`autonomos status -r` shows each reason; `autonomos logs AGENT` what the agent said",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    #[test]
    fn disk_space_thresholds() {
        assert_eq!(disk(50 * GIB, 100 * GIB).level, Level::Ok);
        assert_eq!(disk(10 * GIB, 100 * GIB).level, Level::Warn);
        assert_eq!(disk(4 * GIB, 100 * GIB).level, Level::Problem);
        // A small disk mostly free but under 1 GiB left.
        assert_eq!(disk(GIB / 2, GIB).level, Level::Problem);
    }

    #[test]
    fn backup_age_against_the_schedule() {
        let h = 3_600_000;
        let every = Some(Duration::from_secs(3600));
        assert_eq!(backup_age(Some(0), every, h).level, Level::Ok);
        let late = backup_age(Some(0), every, 3 * h);
        assert_eq!(late.level, Level::Problem);
        assert!(late.detail.contains("3h"), "{}", late.detail);
        assert_eq!(backup_age(None, every, h).level, Level::Problem);
        assert_eq!(backup_age(None, None, h).level, Level::Warn);
        assert_eq!(backup_age(Some(0), None, 8 * 24 * h).level, Level::Warn);
    }

    #[test]
    fn pool_headroom_and_waiting_replicas() {
        let size = (4.0, 8 * GIB, 10);
        assert_eq!(pool((1.0, GIB, 2), size, &[]).level, Level::Ok);
        assert_eq!(pool((3.8, GIB, 2), size, &[]).level, Level::Warn);
        let w = pool((1.0, GIB, 10), size, &["big/3".into()]);
        assert_eq!(w.level, Level::Problem);
        assert!(w.detail.contains("big/3"));
    }

    #[test]
    fn the_exit_code_counts_problems_only() {
        let checks = [Check::ok("a", ""), Check::warn("b", "", "")];
        assert_eq!(exit_code(&checks), 0);
        let checks = [Check::ok("a", ""), Check::problem("b", "", "")];
        assert_eq!(exit_code(&checks), 1);
        assert_eq!(probes(2, &["x/0: unready".into()]).level, Level::Problem);
        assert_eq!(probes(0, &[]).level, Level::Ok);
    }
}
