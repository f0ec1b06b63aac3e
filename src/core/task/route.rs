//! The load balancer: which ready replica takes the next task.
//!
//! - Without a context: the replica with the least outstanding work
//!   relative to its concurrency (`in_flight / concurrency`); ties are
//!   broken at random (the caller's sample), which spreads a burst over
//!   equal replicas the way power-of-two choices does.
//! - With a `context_id`: rendezvous (highest random weight) hashing over
//!   the routable replicas, so a context stays on one replica while that
//!   replica lives, and when it goes only its contexts move. A context
//!   whose replica is at capacity waits for it rather than moving.
//! - Never a replica that is not routable (starting, stopping, draining,
//!   unhealthy) or at capacity.

/// What the router knows of one replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub index: u32,
    /// Tasks it may run at once (≥ 1).
    pub concurrency: u32,
    pub in_flight: u32,
    /// Running (or announced ready) and not stopping.
    pub routable: bool,
}

impl Slot {
    fn has_room(&self) -> bool {
        self.routable && self.in_flight < self.concurrency.max(1)
    }
}

/// A well-mixed 64-bit hash of (context, replica) for rendezvous hashing:
/// FNV-1a over the bytes, then splitmix64's finalizer.
pub fn weight(context: &str, index: u32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in context.as_bytes().iter().chain(&index.to_le_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The replica a context belongs to now: the routable one with the
/// highest weight.
pub fn owner(slots: &[Slot], context: &str) -> Option<u32> {
    slots
        .iter()
        .filter(|s| s.routable)
        .max_by_key(|s| (weight(context, s.index), s.index))
        .map(|s| s.index)
}

/// The replica for the next task, or None when it must wait.
pub fn pick(slots: &[Slot], context: Option<&str>, sample: u64) -> Option<u32> {
    if let Some(ctx) = context {
        let i = owner(slots, ctx)?;
        return slots
            .iter()
            .find(|s| s.index == i)
            .filter(|s| s.has_room())
            .map(|s| s.index);
    }
    // Least outstanding relative to concurrency: compare a/b < c/d as a·d < c·b.
    let mut best: Vec<&Slot> = Vec::new();
    for s in slots.iter().filter(|s| s.has_room()) {
        match best.first() {
            None => best.push(s),
            Some(b) => {
                let lhs = u64::from(s.in_flight) * u64::from(b.concurrency.max(1));
                let rhs = u64::from(b.in_flight) * u64::from(s.concurrency.max(1));
                if lhs < rhs {
                    best.clear();
                    best.push(s);
                } else if lhs == rhs {
                    best.push(s);
                }
            }
        }
    }
    if best.is_empty() {
        return None;
    }
    Some(best[(sample % best.len() as u64) as usize].index)
}

/// Where each context was last served: (replica, run). A task's
/// `context_new` is true when its replica's current run has not served
/// that context (the first time, or the context moved, or the replica
/// restarted and lost what it kept in memory).
#[derive(Debug, Clone, Default)]
pub struct Contexts {
    served: std::collections::HashMap<String, (u32, u64)>,
}

impl Contexts {
    /// Records that `(index, run)` takes a task of `context`; returns
    /// whether the context is new to it.
    pub fn serve(&mut self, context: &str, index: u32, run: u64) -> bool {
        let new = self.served.get(context) != Some(&(index, run));
        if new {
            self.served.insert(context.to_string(), (index, run));
        }
        new
    }

    /// Forgets contexts nobody serves any more (bounded memory): those of
    /// replicas not in `live` (index, run).
    pub fn retain_live(&mut self, live: &[(u32, u64)]) {
        self.served.retain(|_, v| live.contains(v));
    }

    pub fn len(&self) -> usize {
        self.served.len()
    }

    pub fn is_empty(&self) -> bool {
        self.served.is_empty()
    }
}
