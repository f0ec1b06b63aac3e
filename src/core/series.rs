//! Time series for alert evaluation and the console's graphs.
//!
//! A [`Series`] holds `(time, value)` points as a step function: a value
//! holds from its time until the next point. Consecutive equal values are
//! stored once, so a counter that rarely moves (restarts, running replicas)
//! costs a handful of points however long the window, while a gauge that
//! changes on every sample (CPU) costs one point per sample. Points older
//! than the retention are dropped, but the newest of them is kept so the
//! value at the start of any window inside the retention is known.
//!
//! [`Downsampled`] averages a series into fixed buckets (the 24 h view).

use std::collections::VecDeque;

use crate::core::lifecycle::Millis;

/// A bounded step-function series.
#[derive(Debug, Clone)]
pub struct Series {
    points: VecDeque<(Millis, f64)>,
    /// How far back points are kept, ms.
    retention: Millis,
    /// Hard cap on points, whatever the retention.
    cap: usize,
}

impl Series {
    pub fn new(retention: Millis, cap: usize) -> Series {
        Series {
            points: VecDeque::new(),
            retention,
            cap: cap.max(2),
        }
    }

    pub fn retention(&self) -> Millis {
        self.retention
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Records `v` at `at`. Times must not go backwards (an older point is
    /// ignored); an equal value is not stored again.
    pub fn push(&mut self, at: Millis, v: f64) {
        if let Some(&(t, last)) = self.points.back() {
            if at < t {
                return;
            }
            if last == v || (last.is_nan() && v.is_nan()) {
                return;
            }
            if at == t {
                self.points.pop_back();
            }
        }
        self.points.push_back((at, v));
        let horizon = at.saturating_sub(self.retention);
        // Keep one point at or before the horizon: it is the value there.
        while self.points.len() > 2 && self.points[1].0 <= horizon {
            self.points.pop_front();
        }
        while self.points.len() > self.cap {
            self.points.pop_front();
        }
    }

    /// The newest value.
    pub fn last(&self) -> Option<f64> {
        self.points.back().map(|p| p.1)
    }

    /// The value in force at `at` (the newest point at or before it).
    pub fn at(&self, at: Millis) -> Option<f64> {
        let i = self.points.partition_point(|p| p.0 <= at);
        if i == 0 {
            None
        } else {
            Some(self.points[i - 1].1)
        }
    }

    /// Points whose step overlaps `[from, to]`: the one in force at `from`
    /// (if any) and every point after it up to `to`.
    pub fn window(&self, from: Millis, to: Millis) -> impl Iterator<Item = (Millis, f64)> + '_ {
        let start = self
            .points
            .partition_point(|p| p.0 <= from)
            .saturating_sub(1);
        self.points
            .range(start..)
            .copied()
            .take_while(move |p| p.0 <= to)
    }

    /// All points, oldest first.
    pub fn points(&self) -> impl Iterator<Item = (Millis, f64)> + '_ {
        self.points.iter().copied()
    }

    /// Aggregates over `[now - width, now]`; `None` when the series has no
    /// value in the window.
    pub fn aggregate(&self, agg: Agg, now: Millis, width: Millis) -> Option<f64> {
        let from = now.saturating_sub(width);
        match agg {
            Agg::Last => self.at(now),
            Agg::Max => self.window(from, now).map(|p| p.1).reduce(f64::max),
            Agg::Min => self.window(from, now).map(|p| p.1).reduce(f64::min),
            Agg::Avg => {
                // Time-weighted over the part of the window the series covers.
                let mut sum = 0.0;
                let mut covered = 0u64;
                let mut prev: Option<(Millis, f64)> = None;
                for (t, v) in self.window(from, now) {
                    if let Some((pt, pv)) = prev {
                        let span = t.saturating_sub(pt.max(from));
                        sum += pv * span as f64;
                        covered += span;
                    }
                    prev = Some((t, v));
                }
                let (pt, pv) = prev?;
                let span = now.saturating_sub(pt.max(from));
                if covered + span == 0 {
                    return Some(pv);
                }
                Some((sum + pv * span as f64) / (covered + span) as f64)
            }
            Agg::Increase => {
                // A counter: the sum of rises (a drop is a reset, counted from 0).
                let mut total = 0.0;
                let mut prev: Option<f64> = None;
                for (_, v) in self.window(from, now) {
                    if let Some(p) = prev {
                        total += if v >= p { v - p } else { v };
                    }
                    prev = Some(v);
                }
                prev.map(|_| total)
            }
            Agg::Rate => {
                let inc = self.aggregate(Agg::Increase, now, width)?;
                Some(inc / (width.max(1) as f64 / 1000.0))
            }
        }
    }
}

/// How a window is reduced to one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Agg {
    Last,
    Avg,
    Min,
    Max,
    /// How much a counter rose.
    Increase,
    /// `Increase` per second.
    Rate,
}

impl Agg {
    pub fn name(self) -> &'static str {
        match self {
            Agg::Last => "last",
            Agg::Avg => "avg",
            Agg::Min => "min",
            Agg::Max => "max",
            Agg::Increase => "increase",
            Agg::Rate => "rate",
        }
    }

    pub fn parse(s: &str) -> Option<Agg> {
        Some(match s {
            "last" => Agg::Last,
            "avg" => Agg::Avg,
            "min" => Agg::Min,
            "max" => Agg::Max,
            "increase" => Agg::Increase,
            "rate" => Agg::Rate,
            _ => return None,
        })
    }
}

/// A fixed-capacity ring of bucket averages: one point per `bucket` ms.
#[derive(Debug, Clone)]
pub struct Downsampled {
    bucket: Millis,
    cap: usize,
    points: VecDeque<(Millis, f64)>,
    /// The open bucket: (start, sum, count).
    open: Option<(Millis, f64, u32)>,
}

impl Downsampled {
    pub fn new(bucket: Millis, cap: usize) -> Downsampled {
        Downsampled {
            bucket: bucket.max(1),
            cap: cap.max(1),
            points: VecDeque::new(),
            open: None,
        }
    }

    /// Adds a sample; returns the bucket it closed, if it closed one.
    pub fn push(&mut self, at: Millis, v: f64) -> Option<(Millis, f64)> {
        let start = at - at % self.bucket;
        match &mut self.open {
            Some((s, sum, n)) if *s == start => {
                *sum += v;
                *n += 1;
                None
            }
            Some((s, _, _)) if start < *s => None,
            _ => {
                let closed = self
                    .open
                    .take()
                    .map(|(s, sum, n)| (s, sum / f64::from(n.max(1))));
                if let Some(p) = closed {
                    self.push_closed(p);
                }
                self.open = Some((start, v, 1));
                closed
            }
        }
    }

    fn push_closed(&mut self, p: (Millis, f64)) {
        if self.points.back().is_some_and(|last| last.0 >= p.0) {
            return;
        }
        self.points.push_back(p);
        if self.points.len() > self.cap {
            self.points.pop_front();
        }
    }

    /// Starts from closed buckets kept elsewhere (oldest first), such as
    /// the day view stored by an earlier daemon. Only before any `push`.
    pub fn seed(&mut self, points: impl IntoIterator<Item = (Millis, f64)>) {
        for p in points {
            self.push_closed((p.0 - p.0 % self.bucket, p.1));
        }
    }

    /// Closed buckets plus the open one, oldest first.
    pub fn points(&self) -> Vec<(Millis, f64)> {
        let mut out: Vec<_> = self.points.iter().copied().collect();
        if let Some((s, sum, n)) = self.open {
            out.push((s, sum / f64::from(n.max(1))));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_downsampled_ring_reports_closed_buckets_and_can_be_seeded() {
        let mut d = Downsampled::new(60_000, 3);
        d.seed([(0, 1.0), (60_000, 2.0), (60_000, 9.0), (120_500, 3.0)]);
        assert_eq!(d.points(), vec![(0, 1.0), (60_000, 2.0), (120_000, 3.0)]);
        assert_eq!(d.push(600_000, 10.0), None, "opens a bucket");
        assert_eq!(d.push(630_000, 20.0), None);
        assert_eq!(d.push(660_000, 5.0), Some((600_000, 15.0)));
        // Capacity 3: the oldest seeded point went.
        assert_eq!(
            d.points(),
            vec![
                (60_000, 2.0),
                (120_000, 3.0),
                (600_000, 15.0),
                (660_000, 5.0)
            ]
        );
    }

    #[test]
    fn equal_values_are_stored_once_and_steps_hold() {
        let mut s = Series::new(60_000, 1000);
        for t in 0..100 {
            s.push(t * 1000, 5.0);
        }
        assert_eq!(s.len(), 1);
        s.push(100_000, 6.0);
        assert_eq!(s.at(50_000), Some(5.0));
        assert_eq!(s.at(100_000), Some(6.0));
        assert_eq!(s.at(0), Some(5.0));
    }

    #[test]
    fn retention_keeps_the_value_at_the_horizon() {
        let mut s = Series::new(10_000, 1000);
        for t in 0..100u64 {
            s.push(t * 1000, t as f64);
        }
        // Horizon is 89 s: the point at 89 s is kept, older ones are gone.
        assert_eq!(s.points().next(), Some((89_000, 89.0)));
        assert_eq!(s.aggregate(Agg::Increase, 99_000, 10_000), Some(10.0));
    }

    #[test]
    fn cap_bounds_memory_whatever_the_retention() {
        let mut s = Series::new(u64::MAX / 2, 50);
        for t in 0..10_000u64 {
            s.push(t, t as f64);
        }
        assert_eq!(s.len(), 50);
    }

    #[test]
    fn avg_is_time_weighted() {
        let mut s = Series::new(600_000, 1000);
        s.push(0, 0.0);
        s.push(30_000, 100.0);
        // 30 s at 0 and 30 s at 100 over the last minute.
        let v = s.aggregate(Agg::Avg, 60_000, 60_000).expect("value");
        assert!((v - 50.0).abs() < 1e-9, "{v}");
        assert_eq!(s.aggregate(Agg::Max, 60_000, 60_000), Some(100.0));
        assert_eq!(s.aggregate(Agg::Min, 60_000, 60_000), Some(0.0));
        // Only the last 10 s: all 100.
        assert_eq!(s.aggregate(Agg::Avg, 60_000, 10_000), Some(100.0));
    }

    #[test]
    fn increase_counts_rises_and_survives_a_reset() {
        let mut s = Series::new(600_000, 1000);
        s.push(0, 10.0);
        s.push(1000, 12.0);
        s.push(2000, 1.0); // reset
        s.push(3000, 4.0);
        assert_eq!(
            s.aggregate(Agg::Increase, 3000, 10_000),
            Some(2.0 + 1.0 + 3.0)
        );
        // A window that starts after the first rise.
        assert_eq!(s.aggregate(Agg::Increase, 3000, 1500), Some(1.0 + 3.0));
        let r = s.aggregate(Agg::Rate, 3000, 10_000).expect("rate");
        assert!((r - 0.6).abs() < 1e-9);
    }

    #[test]
    fn an_empty_series_has_no_value() {
        let s = Series::new(1000, 10);
        assert_eq!(s.aggregate(Agg::Avg, 5000, 1000), None);
        assert_eq!(s.aggregate(Agg::Increase, 5000, 1000), None);
        assert_eq!(s.at(0), None);
    }

    #[test]
    fn downsampled_averages_buckets() {
        let mut d = Downsampled::new(60_000, 3);
        for t in 0..300u64 {
            d.push(t * 1000, (t / 60) as f64);
        }
        let p = d.points();
        // Capacity 3 closed buckets plus the open one.
        assert_eq!(p.len(), 4);
        assert_eq!(p.last(), Some(&(240_000, 4.0)));
        assert_eq!(p[0], (60_000, 1.0));
    }
}
