//! Holt's linear trend (double exponential smoothing) over arrival rates,
//! sampled as they come: a level and a trend per second, so a steady ramp
//! is forecast ahead instead of followed.

use crate::core::lifecycle::Millis;

/// Smoothing of the level and of the trend.
const ALPHA: f64 = 0.5;
const BETA: f64 = 0.3;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Holt {
    /// (level, trend per second, when)
    state: Option<(f64, f64, Millis)>,
}

impl Holt {
    /// Takes an observation of the rate at `now`.
    pub fn observe(&mut self, now: Millis, rate: f64) {
        let rate = if rate.is_finite() { rate.max(0.0) } else { 0.0 };
        self.state = Some(match self.state {
            None => (rate, 0.0, now),
            Some((level, trend, at)) => {
                let dt = (now.saturating_sub(at) as f64 / 1000.0).max(0.001);
                let predicted = level + trend * dt;
                let new_level = ALPHA * rate + (1.0 - ALPHA) * predicted;
                let new_trend = BETA * (new_level - level) / dt + (1.0 - BETA) * trend;
                (new_level, new_trend, now)
            }
        });
    }

    /// The rate `ahead` ms from the last observation (never below zero).
    pub fn forecast(&self, ahead: Millis) -> Option<f64> {
        let (level, trend, _) = self.state?;
        Some((level + trend * ahead as f64 / 1000.0).max(0.0))
    }
}
