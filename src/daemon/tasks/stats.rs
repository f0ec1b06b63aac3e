//! What the task engine counts, per agent, for /metrics (and later the
//! alert rules and the console): totals, the queue, work in flight, and
//! latency histograms of queue wait and run time.

use std::collections::BTreeMap;

/// Histogram bucket bounds, seconds (the last bucket is +Inf).
pub const BUCKETS: [f64; 15] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// A fixed-bucket histogram: counts per bucket (not cumulative), the
/// overflow last.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    pub counts: [u64; BUCKETS.len() + 1],
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    pub fn observe(&mut self, secs: f64) {
        let secs = secs.max(0.0);
        let i = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.counts[i] += 1;
        self.sum += secs;
        self.count += 1;
    }

    /// The upper bound of the bucket holding quantile `q` (None without
    /// observations; the largest finite bound for the overflow bucket).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let want = (q * self.count as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                return Some(
                    BUCKETS
                        .get(i)
                        .copied()
                        .unwrap_or(BUCKETS[BUCKETS.len() - 1]),
                );
            }
        }
        BUCKETS.last().copied()
    }

    /// (upper bound, count in that bucket), +Inf last: what the text
    /// encoder takes.
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(self.counts.iter().copied())
            .collect()
    }
}

/// One task agent's figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentStats {
    pub submitted: u64,
    pub completed: u64,
    pub failed: u64,
    pub retried: u64,
    pub canceled: u64,
    pub rejected: u64,
    /// Answers for tasks no longer running on that replica.
    pub ignored: u64,
    /// stdout lines that were not JSON-RPC.
    pub noise: u64,
    /// Waiting now.
    pub queue: u64,
    pub in_flight: u64,
    /// How long the oldest waiting task has waited, seconds.
    pub oldest_wait: f64,
    /// Submit (or re-queue) to `task.run`.
    pub wait: Histogram,
    /// `task.run` to the answer.
    pub run: Histogram,
    /// In flight per replica.
    pub replicas: Vec<(u32, u64)>,
    /// Tasks the ready replicas may run at once.
    pub capacity: u64,
    /// Failed ÷ (completed + failed) over the last 5 minutes (0 without any).
    pub error_rate: f64,
    /// Run time's 95th percentile over the last 5 minutes, seconds (0
    /// without any).
    pub run_p95: f64,
}

/// How far back the windowed figures look, and how often a point is kept.
pub const WINDOW_MS: u64 = 300_000;
const POINT_MS: u64 = 5_000;

/// Snapshots of the totals, to take windowed figures from.
#[derive(Debug, Clone, Default)]
pub struct Window {
    points: std::collections::VecDeque<(u64, u64, u64, Histogram)>,
}

impl Window {
    /// A window whose figures count from `now` (an agent just configured:
    /// nothing finished yet), so tasks that end before the first refresh
    /// are in its rates.
    pub fn starting(now: u64) -> Window {
        let mut w = Window::default();
        w.points.push_back((now, 0, 0, Histogram::default()));
        w
    }

    /// Records the totals at `now` (at most a point every 5 s) and fills
    /// the windowed figures of `s` from the change since the window began.
    pub fn update(&mut self, now: u64, s: &mut AgentStats) {
        if self.points.back().is_none_or(|p| now >= p.0 + POINT_MS) {
            self.points
                .push_back((now, s.completed, s.failed, s.run.clone()));
        }
        while self
            .points
            .front()
            .is_some_and(|p| now.saturating_sub(p.0) > WINDOW_MS)
        {
            self.points.pop_front();
        }
        let Some((_, c0, f0, h0)) = self.points.front() else {
            return;
        };
        let (dc, df) = (s.completed - c0, s.failed - f0);
        s.error_rate = if dc + df == 0 {
            0.0
        } else {
            df as f64 / (dc + df) as f64
        };
        let mut d = s.run.clone();
        for (a, b) in d.counts.iter_mut().zip(h0.counts) {
            *a -= b;
        }
        d.count -= h0.count;
        s.run_p95 = d.quantile(0.95).unwrap_or(0.0);
    }
}

/// Every task agent's figures by name.
pub type Stats = BTreeMap<String, AgentStats>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_counts_only_its_last_five_minutes() {
        let mut w = Window::default();
        let mut s = AgentStats {
            completed: 100,
            failed: 100,
            ..AgentStats::default()
        };
        w.update(0, &mut s);
        // Later: 90 more completed, 10 more failed; old history drops out.
        s.completed = 190;
        s.failed = 110;
        for _ in 0..10 {
            s.run.observe(0.002);
        }
        w.update(WINDOW_MS + 10_000, &mut s);
        w.update(WINDOW_MS + 20_000, &mut s);
        assert_eq!(s.error_rate, 0.0, "nothing changed within the window");
        let mut s2 = s.clone();
        s2.failed += 5;
        s2.completed += 15;
        s2.run.observe(3.0);
        w.update(WINDOW_MS + 30_000, &mut s2);
        assert!((s2.error_rate - 0.25).abs() < 1e-9, "{}", s2.error_rate);
        assert_eq!(s2.run_p95, 5.0, "only the new observation counts");
    }

    #[test]
    fn observations_land_in_their_bucket_and_overflow_last() {
        let mut h = Histogram::default();
        h.observe(0.0004);
        h.observe(0.002);
        h.observe(1000.0);
        let b = h.buckets();
        assert_eq!(b[0], (0.0005, 1));
        assert_eq!(b[2], (0.0025, 1));
        assert_eq!(b[BUCKETS.len()], (f64::INFINITY, 1));
        assert_eq!(h.count, 3);
        assert_eq!(h.quantile(0.3), Some(0.0005));
        assert_eq!(h.quantile(0.5), Some(0.0025));
        assert_eq!(
            h.quantile(0.95),
            Some(300.0),
            "the overflow: the largest bound"
        );
        assert_eq!(Histogram::default().quantile(0.5), None);
        assert!((h.sum - 1000.0024).abs() < 1e-9);
    }
}
