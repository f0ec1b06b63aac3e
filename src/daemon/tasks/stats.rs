//! What the task engine counts, per agent, for /metrics (and later the
//! alert rules and the console): totals, the queue, work in flight, and
//! latency histograms of queue wait and run time.

use std::collections::BTreeMap;

/// Histogram bucket bounds, seconds (the last bucket is +Inf).
pub const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 300.0,
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
}

/// Every task agent's figures by name.
pub type Stats = BTreeMap<String, AgentStats>;

#[cfg(test)]
mod tests {
    use super::*;

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
