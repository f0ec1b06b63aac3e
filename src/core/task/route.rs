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

/// What skill routing knows of one agent offering the skill.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Offer {
    /// Tasks waiting in its queue.
    pub queue: u64,
    /// Tasks in flight now.
    pub in_flight: u64,
    /// Tasks its ready replicas may run at once.
    pub capacity: u64,
    /// Its mean run time so far, seconds (None before any task finished).
    pub mean_secs: Option<f64>,
}

/// How long a new task would wait at this agent: the work ahead of it
/// (waiting plus in flight beyond its room) times its mean run time,
/// spread over its room. An agent with no ready replica waits as if it had
/// one; one without history is taken to run tasks in `default_secs`.
pub fn expected_wait(o: &Offer, default_secs: f64) -> f64 {
    let room = o.capacity.max(1) as f64;
    let ahead = o.queue as f64 + (o.in_flight as f64 - room).max(0.0) + 1.0;
    let free_now = o.capacity > o.in_flight && o.queue == 0;
    if free_now {
        return 0.0;
    }
    ahead * o.mean_secs.unwrap_or(default_secs) / room
}

#[cfg(test)]
mod wait_tests {
    use super::*;

    fn offer(queue: u64, in_flight: u64, capacity: u64, mean: f64) -> Offer {
        Offer {
            queue,
            in_flight,
            capacity,
            mean_secs: Some(mean),
        }
    }

    #[test]
    fn the_shortest_expected_wait_weighs_queue_speed_and_room() {
        // Free room and nothing waiting: no wait at all.
        assert_eq!(expected_wait(&offer(0, 1, 4, 10.0), 1.0), 0.0);
        // Same queue: the faster agent waits less.
        let slow = expected_wait(&offer(10, 4, 4, 2.0), 1.0);
        let fast = expected_wait(&offer(10, 4, 4, 0.5), 1.0);
        assert!(fast < slow);
        // A longer queue on a fast agent can still beat a short one on a
        // slow agent, and more room shortens the wait.
        assert!(
            expected_wait(&offer(40, 8, 8, 0.1), 1.0) < expected_wait(&offer(2, 1, 1, 5.0), 1.0)
        );
        assert!(
            expected_wait(&offer(10, 8, 8, 1.0), 1.0) < expected_wait(&offer(10, 2, 2, 1.0), 1.0)
        );
        // No ready replica: as if it had one.
        assert_eq!(expected_wait(&offer(3, 0, 0, 1.0), 1.0), 4.0);
    }
}
