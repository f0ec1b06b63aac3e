//! The resource pool (the manual's Resource Allocator): admits replicas whose
//! CPU and memory requests fit, in arrival order, and says why others wait.
//!
//! Pure bookkeeping; the supervisor decides when to ask.

/// Upper bound on replicas of one agent: larger counts are refused (a
/// config error, or a scale request's error).
pub const MAX_REPLICAS: u32 = 1024;

use std::collections::BTreeMap;

use serde::Serialize;

/// The resource pool every replica is admitted from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PoolSpec {
    /// Cores (default: the host's).
    pub cpu: f64,
    /// Bytes (default: the host's total memory).
    pub memory: u64,
    /// Maximum number of replicas running at once.
    pub max_agents: u32,
}

/// Identifies a replica: agent name and replica index.
pub type ReplicaKey = (String, u32);

/// One replica's reservation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Request {
    pub cpu: f64,
    pub memory: u64,
}

/// Current reservations against a fixed capacity.
#[derive(Debug, Clone)]
pub struct Pool {
    spec: PoolSpec,
    held: BTreeMap<ReplicaKey, Request>,
    cpu_used: f64,
    memory_used: u64,
}

/// Why a request does not fit right now.
#[derive(Debug, Clone, PartialEq)]
pub enum Wait {
    Agents { max: u32 },
    Cpu { need: f64, free: f64 },
    Memory { need: u64, free: u64 },
}

impl std::fmt::Display for Wait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Wait::Agents { max } => write!(f, "pool full: {max} replicas already running"),
            Wait::Cpu { need, free } => {
                write!(f, "waiting for CPU: needs {need:.2} cores, {free:.2} free")
            }
            Wait::Memory { need, free } => write!(
                f,
                "waiting for memory: needs {} MiB, {} MiB free",
                need / (1024 * 1024),
                free / (1024 * 1024)
            ),
        }
    }
}

impl Pool {
    pub fn new(spec: PoolSpec) -> Self {
        Self {
            spec,
            held: BTreeMap::new(),
            cpu_used: 0.0,
            memory_used: 0,
        }
    }

    pub fn spec(&self) -> &PoolSpec {
        &self.spec
    }

    /// Replaces the capacity (config reload); existing reservations stay.
    pub fn set_spec(&mut self, spec: PoolSpec) {
        self.spec = spec;
    }

    /// Reserves `req` for `key` if it fits. Holding a reservation already is a success.
    pub fn try_admit(&mut self, key: &ReplicaKey, req: Request) -> Result<(), Wait> {
        if self.held.contains_key(key) {
            return Ok(());
        }
        if self.held.len() >= self.spec.max_agents as usize {
            return Err(Wait::Agents {
                max: self.spec.max_agents,
            });
        }
        let cpu_free = (self.spec.cpu - self.cpu_used).max(0.0);
        // A small epsilon so that 0.1 + 0.2 fits in 0.3.
        if req.cpu > cpu_free + 1e-9 {
            return Err(Wait::Cpu {
                need: req.cpu,
                free: cpu_free,
            });
        }
        let mem_free = self.spec.memory.saturating_sub(self.memory_used);
        if req.memory > mem_free {
            return Err(Wait::Memory {
                need: req.memory,
                free: mem_free,
            });
        }
        self.cpu_used += req.cpu;
        self.memory_used += req.memory;
        self.held.insert(key.clone(), req);
        Ok(())
    }

    /// How many of `n` more replicas asking `req` each would be admitted
    /// now, and why the first one that would not waits.
    pub fn room_for(&self, req: Request, n: u32) -> (u32, Option<Wait>) {
        let mut p = self.clone();
        for i in 0..n {
            let key = (String::from("\u{0}room"), i);
            if let Err(w) = p.try_admit(&key, req) {
                return (i, Some(w));
            }
        }
        (n, None)
    }

    /// Returns `key`'s reservation, if any.
    pub fn release(&mut self, key: &ReplicaKey) -> bool {
        match self.held.remove(key) {
            Some(req) => {
                self.cpu_used = (self.cpu_used - req.cpu).max(0.0);
                self.memory_used = self.memory_used.saturating_sub(req.memory);
                true
            }
            None => false,
        }
    }

    pub fn holds(&self, key: &ReplicaKey) -> bool {
        self.held.contains_key(key)
    }

    /// (cpu used, memory used, replicas admitted)
    pub fn usage(&self) -> (f64, u64, usize) {
        (self.cpu_used, self.memory_used, self.held.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> Pool {
        Pool::new(PoolSpec {
            cpu: 1.0,
            memory: 1000,
            max_agents: 3,
        })
    }
    fn key(i: u32) -> ReplicaKey {
        ("a".into(), i)
    }

    #[test]
    fn admits_until_cpu_runs_out_then_frees_on_release() {
        let mut p = pool();
        let r = Request {
            cpu: 0.4,
            memory: 10,
        };
        assert!(p.try_admit(&key(0), r).is_ok());
        assert!(p.try_admit(&key(1), r).is_ok());
        let wait = p.try_admit(&key(2), r).expect_err("no cpu left");
        assert!(matches!(wait, Wait::Cpu { .. }), "{wait}");
        assert!(wait.to_string().contains("needs 0.40 cores"));
        assert!(p.release(&key(0)));
        assert!(p.try_admit(&key(2), r).is_ok());
    }

    #[test]
    fn room_for_counts_what_fits_now_and_says_why_the_rest_waits() {
        let mut p = pool();
        let r = Request {
            cpu: 0.3,
            memory: 10,
        };
        assert!(p.try_admit(&key(0), r).is_ok());
        let (fit, wait) = p.room_for(r, 5);
        assert_eq!(fit, 2, "0.3 + 2 × 0.3 ≤ 1.0 cores, and 3 replicas at most");
        assert!(matches!(wait, Some(Wait::Agents { max: 3 })), "{wait:?}");
        assert_eq!(p.usage().2, 1, "nothing was reserved");
        assert_eq!(p.room_for(r, 1), (1, None));
    }

    #[test]
    fn memory_and_count_limits_are_reported() {
        let mut p = pool();
        assert!(matches!(
            p.try_admit(
                &key(0),
                Request {
                    cpu: 0.0,
                    memory: 2000
                }
            ),
            Err(Wait::Memory {
                need: 2000,
                free: 1000
            })
        ));
        for i in 0..3 {
            p.try_admit(
                &key(i),
                Request {
                    cpu: 0.0,
                    memory: 0,
                },
            )
            .expect("fits");
        }
        assert!(matches!(
            p.try_admit(
                &key(9),
                Request {
                    cpu: 0.0,
                    memory: 0
                }
            ),
            Err(Wait::Agents { max: 3 })
        ));
    }

    #[test]
    fn double_admit_and_double_release_are_harmless() {
        let mut p = pool();
        let r = Request {
            cpu: 0.5,
            memory: 100,
        };
        p.try_admit(&key(0), r).expect("fits");
        p.try_admit(&key(0), r).expect("already held");
        assert_eq!(p.usage(), (0.5, 100, 1));
        assert!(p.release(&key(0)));
        assert!(!p.release(&key(0)));
        assert_eq!(p.usage(), (0.0, 0, 0));
    }
}
