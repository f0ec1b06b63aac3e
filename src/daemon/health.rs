//! Whether the data dir is taking writes: the state database and the audit
//! trail report each failed and each successful write here; `status`, the
//! console header, `/metrics` and the `storage-failing` alert read it.
//!
//! Cheap to clone (one `Arc`); never blocks for long (one short mutex).

use std::sync::{Arc, Mutex};

use crate::clock::now_ms;
use crate::proto::StorageFault;

/// A part of the data dir that writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// `state.db`.
    State,
    /// `audit/audit.jsonl` and its checkpoints.
    Audit,
}

impl Part {
    pub fn name(self) -> &'static str {
        match self {
            Part::State => "state",
            Part::Audit => "audit",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Part::State => "state database (state.db)",
            Part::Audit => "audit trail (audit/)",
        }
    }
}

#[derive(Debug, Default)]
struct Slot {
    errors: u64,
    /// The failure in force: (since when, the last error).
    failing: Option<(u64, String)>,
}

#[derive(Debug, Default)]
struct Inner {
    state: Slot,
    audit: Slot,
}

/// Shared storage health.
#[derive(Debug, Clone, Default)]
pub struct Health {
    inner: Arc<Mutex<Inner>>,
}

impl Health {
    fn with<T>(&self, part: Part, f: impl FnOnce(&mut Slot) -> T) -> Option<T> {
        let mut g = self.inner.lock().ok()?;
        Some(f(match part {
            Part::State => &mut g.state,
            Part::Audit => &mut g.audit,
        }))
    }

    /// A write failed: counted, and the part is failing until a write succeeds.
    pub fn failed(&self, part: Part, error: &str) {
        self.with(part, |s| {
            s.errors += 1;
            let since = s.failing.as_ref().map_or_else(now_ms, |(t, _)| *t);
            s.failing = Some((since, error.to_string()));
        });
    }

    /// A write succeeded: the part is healthy again.
    pub fn succeeded(&self, part: Part) {
        self.with(part, |s| {
            if s.failing.take().is_some() {
                tracing::info!(part = part.name(), "writes to the data dir succeed again");
            }
        });
    }

    /// Failed writes since the daemon started.
    pub fn errors(&self, part: Part) -> u64 {
        self.with(part, |s| s.errors).unwrap_or(0)
    }

    /// All failed writes since the daemon started.
    pub fn total_errors(&self) -> u64 {
        self.errors(Part::State) + self.errors(Part::Audit)
    }

    /// The parts failing now.
    pub fn faults(&self) -> Vec<StorageFault> {
        [Part::State, Part::Audit]
            .into_iter()
            .filter_map(|p| {
                self.with(p, |s| {
                    s.failing.as_ref().map(|(since, error)| StorageFault {
                        part: p.name().to_string(),
                        what: p.what().to_string(),
                        error: error.clone(),
                        since: *since,
                        errors: s.errors,
                    })
                })
                .flatten()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_fails_until_a_write_succeeds_and_errors_keep_counting() {
        let h = Health::default();
        assert!(h.faults().is_empty());
        h.failed(Part::State, "disk full");
        h.failed(Part::State, "disk still full");
        let f = h.faults();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].part, "state");
        assert_eq!(f[0].error, "disk still full");
        assert_eq!(f[0].errors, 2);
        h.failed(Part::Audit, "EIO");
        assert_eq!(h.faults().len(), 2);
        h.succeeded(Part::State);
        let f = h.faults();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].part, "audit");
        assert_eq!(h.errors(Part::State), 2);
        assert_eq!(h.total_errors(), 3);
    }
}
