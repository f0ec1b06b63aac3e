//! Tasks: the work agents are handed. Pure logic, no IO and no clock:
//!
//! - [`TaskState`]: the A2A task states and which moves between them are
//!   allowed;
//! - [`Queue`]: one agent's waiting tasks, highest priority first and FIFO
//!   within a priority, with idempotency keys and a bound;
//! - [`route`]: which replica takes the next task (least outstanding work
//!   relative to concurrency, power-of-two choices on ties, rendezvous
//!   hashing for `context_id` affinity);
//! - [`outcome`]: what an agent's answer, a timeout or a dead replica
//!   means for the task (completed, rejected, retried after a delay, failed).

pub mod outcome;
pub mod route;

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::core::lifecycle::Millis;

/// The JSON-RPC error code with which an agent refuses a task: it ends
/// `rejected` and is not retried.
pub const REFUSED: i64 = -32010;

/// A task's state, named as the A2A protocol names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Waiting in its agent's queue (also after a failed attempt that will
    /// be retried).
    Submitted,
    /// Handed to a replica, not answered yet.
    Working,
    Completed,
    Failed,
    Canceled,
    /// The agent refused it (error `-32010`).
    Rejected,
}

impl TaskState {
    pub const ALL: [TaskState; 6] = [
        TaskState::Submitted,
        TaskState::Working,
        TaskState::Completed,
        TaskState::Failed,
        TaskState::Canceled,
        TaskState::Rejected,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TaskState::Submitted => "submitted",
            TaskState::Working => "working",
            TaskState::Completed => "completed",
            TaskState::Failed => "failed",
            TaskState::Canceled => "canceled",
            TaskState::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<TaskState> {
        TaskState::ALL.into_iter().find(|t| t.name() == s)
    }

    /// Nothing happens to it any more (kept for inspection until trimmed).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TaskState::Completed | TaskState::Failed | TaskState::Canceled | TaskState::Rejected
        )
    }

    /// The moves a task may make: submitted → working → a final state, or
    /// back to submitted for another attempt; a waiting or working task
    /// may be canceled; an operator's retry takes a final task back to
    /// submitted.
    pub fn may_become(self, to: TaskState) -> bool {
        use TaskState::*;
        matches!(
            (self, to),
            (Submitted, Working | Canceled | Failed)
                | (
                    Working,
                    Submitted | Completed | Failed | Canceled | Rejected
                )
                | (Failed | Canceled | Rejected, Submitted)
        )
    }
}

impl std::fmt::Display for TaskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What places a task in its agent's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rank {
    /// Higher first.
    pub priority: i32,
    /// Submission order (lower first within a priority).
    pub seq: u64,
    /// Not before this time (the backoff between attempts); 0 at once.
    pub not_before: Millis,
}

/// Why a submit is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `max_queue` waiting tasks already.
    QueueFull { max: usize },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::QueueFull { max } => write!(
                f,
                "the queue is full: {max} tasks already wait (max_queue = {max})"
            ),
        }
    }
}

/// One agent's waiting tasks by id: highest priority first, FIFO within a
/// priority; a task held back by a retry delay waits until its time without
/// blocking the tasks behind it. Idempotency keys map to task ids for as
/// long as the caller keeps the task (`forget_key`).
#[derive(Debug, Clone, Default)]
pub struct Queue {
    /// (Reverse priority, seq) → (id, not_before).
    order: BTreeMap<(std::cmp::Reverse<i32>, u64), (String, Millis)>,
    /// id → its key in `order`.
    index: HashMap<String, (std::cmp::Reverse<i32>, u64)>,
    keys: HashMap<String, String>,
    max: usize,
}

impl Queue {
    pub fn new(max: usize) -> Queue {
        Queue {
            max,
            ..Queue::default()
        }
    }

    pub fn set_max(&mut self, max: usize) {
        self.max = max;
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Whether `n` more tasks fit (a batch is taken whole or not at all).
    pub fn room_for(&self, n: usize) -> Result<(), Refusal> {
        if self.order.len() + n > self.max {
            Err(Refusal::QueueFull { max: self.max })
        } else {
            Ok(())
        }
    }

    /// The task already submitted with this idempotency key, if any.
    pub fn by_key(&self, key: &str) -> Option<&str> {
        self.keys.get(key).map(String::as_str)
    }

    pub fn remember_key(&mut self, key: String, id: String) {
        self.keys.insert(key, id);
    }

    pub fn forget_key(&mut self, key: &str) {
        self.keys.remove(key);
    }

    /// Queues a new task. Checks the bound; a retried or recovered task
    /// (`push_back`) does not.
    pub fn push(&mut self, id: String, rank: Rank) -> Result<(), Refusal> {
        self.room_for(1)?;
        self.push_back(id, rank);
        Ok(())
    }

    /// Queues a task whatever the bound: one that was already acknowledged
    /// (a retry, a task recovered after a restart) is never refused.
    pub fn push_back(&mut self, id: String, rank: Rank) {
        let k = (std::cmp::Reverse(rank.priority), rank.seq);
        if let Some(old) = self.index.insert(id.clone(), k) {
            self.order.remove(&old);
        }
        self.order.insert(k, (id, rank.not_before));
    }

    /// Takes the first task that may run at `now`.
    pub fn pop(&mut self, now: Millis) -> Option<String> {
        let k = *self
            .order
            .iter()
            .find(|(_, (_, nb))| *nb <= now)
            .map(|(k, _)| k)?;
        let (id, _) = self.order.remove(&k)?;
        self.index.remove(&id);
        Some(id)
    }

    /// Puts back a task taken by `pop` that could not be handed out, at its
    /// old place.
    pub fn unpop(&mut self, id: String, rank: Rank) {
        self.push_back(id, rank);
    }

    /// Removes a waiting task (canceled).
    pub fn remove(&mut self, id: &str) -> bool {
        match self.index.remove(id) {
            Some(k) => self.order.remove(&k).is_some(),
            None => false,
        }
    }

    /// The earliest time a held-back task may run, if every waiting task is
    /// held back.
    pub fn next_ready_at(&self, now: Millis) -> Option<Millis> {
        if self.order.values().any(|(_, nb)| *nb <= now) {
            return Some(now);
        }
        self.order.values().map(|(_, nb)| *nb).min()
    }

    /// Waiting task ids in the order they would run (ignoring delays).
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.order.values().map(|(id, _)| id.as_str())
    }
}

#[cfg(test)]
mod tests;
