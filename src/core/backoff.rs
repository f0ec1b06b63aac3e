//! Restart decisions: exponential backoff with cap, jitter and reset, and the start limit.
//!
//! Pure: the caller supplies `now` and the random jitter sample, so every
//! sequence is reproducible in tests.

use std::collections::VecDeque;
use std::time::Duration;

use serde::Serialize;

use crate::core::lifecycle::Millis;

/// Exponential backoff between restarts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BackoffSpec {
    pub initial: Duration,
    pub max: Duration,
    /// ≥ 1.0
    pub multiplier: f64,
    /// Fraction in [0, 1]: each delay is scaled by a random factor in [1 - jitter, 1 + jitter].
    pub jitter: f64,
    /// A run at least this long resets the backoff sequence.
    pub reset_after: Duration,
}

/// At most `burst` starts within `interval`, counting the first.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StartLimitSpec {
    pub burst: u32,
    pub interval: Duration,
}

/// Counts consecutive failed runs and turns them into delays.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Backoff {
    /// Consecutive failures since the last healthy run.
    failures: u32,
}

impl Backoff {
    /// Delay before restart number `failures` (1-based), before jitter.
    pub fn base_delay(spec: &BackoffSpec, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let exp = (failures - 1).min(64) as i32;
        let secs = spec.initial.as_secs_f64() * spec.multiplier.powi(exp);
        let capped = secs.min(spec.max.as_secs_f64());
        Duration::from_secs_f64(capped.max(0.0))
    }

    /// Applies jitter: `unit` is a uniform sample in [0, 1) from the caller.
    pub fn jittered(spec: &BackoffSpec, base: Duration, unit: f64) -> Duration {
        let factor = 1.0 + spec.jitter * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        Duration::from_secs_f64((base.as_secs_f64() * factor).max(0.0))
    }

    /// Records the end of a run and returns the delay before the next start.
    ///
    /// A run that lasted at least `reset_after` resets the sequence first, so
    /// a crash after a long healthy run restarts after `initial`.
    pub fn on_exit(&mut self, spec: &BackoffSpec, ran_for: Duration, unit: f64) -> Duration {
        if ran_for >= spec.reset_after {
            self.failures = 0;
        }
        self.failures = self.failures.saturating_add(1);
        Self::jittered(spec, Self::base_delay(spec, self.failures), unit)
    }

    /// Forgets past failures (a manual start, or a healthy uptime reached).
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// At most `burst` starts within a sliding `interval`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StartLimit {
    starts: VecDeque<Millis>,
}

impl StartLimit {
    fn prune(&mut self, spec: &StartLimitSpec, now: Millis) {
        let window = spec.interval.as_millis() as u64;
        while let Some(&first) = self.starts.front() {
            if now.saturating_sub(first) >= window {
                self.starts.pop_front();
            } else {
                break;
            }
        }
    }

    /// True if one more start at `now` stays within the limit.
    pub fn allows(&mut self, spec: &StartLimitSpec, now: Millis) -> bool {
        self.prune(spec, now);
        self.starts.len() < spec.burst as usize
    }

    /// Records a start at `now`.
    pub fn record(&mut self, spec: &StartLimitSpec, now: Millis) {
        self.prune(spec, now);
        self.starts.push_back(now);
        while self.starts.len() > spec.burst as usize {
            self.starts.pop_front();
        }
    }

    /// Forgets past starts (a manual start re-arms a failed replica).
    pub fn reset(&mut self) {
        self.starts.clear();
    }
}

/// Quiet time after the first automatic recovery (`restore-latest`)
/// before another may run.
pub const RECOVERY_QUIET: Millis = 10 * 60_000;

/// Whether `recovery = "restore-latest"` may run again, given when it ran
/// before (oldest first): the first time always; after that only once the
/// agent has gone `RECOVERY_QUIET` since the last one, doubled for each
/// earlier recovery (10 min, 20 min, 40 min, … capped at a day). A restored
/// context that fails again at once is left to the operator instead of
/// being restored in a loop.
pub fn recovery_allowed(past: &[Millis], now: Millis) -> bool {
    let Some(last) = past.last() else {
        return true;
    };
    let doublings = (past.len() - 1).min(16) as u32;
    let quiet = RECOVERY_QUIET
        .saturating_mul(1 << doublings)
        .min(86_400_000);
    now.saturating_sub(*last) >= quiet
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn automatic_recovery_runs_again_only_after_a_growing_quiet_time() {
        let m = 60_000;
        assert!(recovery_allowed(&[], 0));
        // Failed again 5 minutes after a recovery: not again.
        assert!(!recovery_allowed(&[0], 5 * m));
        assert!(recovery_allowed(&[0], 10 * m));
        // After two, 20 minutes; after three, 40.
        assert!(!recovery_allowed(&[0, 100 * m], 119 * m));
        assert!(recovery_allowed(&[0, 100 * m], 120 * m));
        assert!(!recovery_allowed(&[0, 1, 100 * m], 139 * m));
        assert!(recovery_allowed(&[0, 1, 100 * m], 140 * m));
        // Capped at a day, however many came before.
        let many: Vec<Millis> = (0..40).collect();
        assert!(!recovery_allowed(&many, 86_399_999));
        assert!(recovery_allowed(&many, 39 + 86_400_000));
    }

    fn spec() -> BackoffSpec {
        BackoffSpec {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(1000),
            multiplier: 2.0,
            jitter: 0.0,
            reset_after: Duration::from_secs(10),
        }
    }

    #[test]
    fn delays_grow_exponentially_up_to_the_cap() {
        let s = spec();
        let mut b = Backoff::default();
        let got: Vec<u128> = (0..7)
            .map(|_| b.on_exit(&s, Duration::from_millis(1), 0.5).as_millis())
            .collect();
        assert_eq!(got, vec![100, 200, 400, 800, 1000, 1000, 1000]);
    }

    #[test]
    fn a_long_healthy_run_resets_the_sequence() {
        let s = spec();
        let mut b = Backoff::default();
        b.on_exit(&s, Duration::ZERO, 0.5);
        b.on_exit(&s, Duration::ZERO, 0.5);
        assert_eq!(b.on_exit(&s, Duration::from_secs(10), 0.5).as_millis(), 100);
        assert_eq!(b.failures(), 1);
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let s = BackoffSpec {
            jitter: 0.2,
            ..spec()
        };
        let base = Duration::from_millis(1000);
        assert_eq!(Backoff::jittered(&s, base, 0.0).as_millis(), 800);
        assert_eq!(Backoff::jittered(&s, base, 0.5).as_millis(), 1000);
        assert!(Backoff::jittered(&s, base, 0.999_999).as_millis() <= 1200);
    }

    #[test]
    fn zero_initial_means_immediate_restart() {
        let s = BackoffSpec {
            initial: Duration::ZERO,
            ..spec()
        };
        let mut b = Backoff::default();
        for _ in 0..5 {
            assert_eq!(b.on_exit(&s, Duration::ZERO, 0.9), Duration::ZERO);
        }
    }

    #[test]
    fn start_limit_counts_the_first_start_and_slides() {
        let s = StartLimitSpec {
            burst: 3,
            interval: Duration::from_secs(10),
        };
        let mut l = StartLimit::default();
        for t in [0, 1000, 2000] {
            assert!(l.allows(&s, t));
            l.record(&s, t);
        }
        assert!(
            !l.allows(&s, 9_999),
            "fourth start inside the window is refused"
        );
        assert!(l.allows(&s, 10_000), "the first start left the window");
        l.reset();
        assert!(l.allows(&s, 10_001));
    }
}
