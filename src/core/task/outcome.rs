//! What the end of an attempt means for a task: the agent's answer, a
//! timeout, a replica that went away, a cancellation.

use serde_json::Value;

use super::REFUSED;
use crate::core::lifecycle::Millis;

/// The retry rules of an agent's tasks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all (≥ 1).
    pub max_attempts: u32,
    /// The delay before the second attempt; doubling, capped at `max_delay`.
    pub delay: Millis,
    pub max_delay: Millis,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            delay: 1000,
            max_delay: 30_000,
        }
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// The agent's `result`.
    Result(Value),
    /// The agent's JSON-RPC error.
    Error {
        code: i64,
        message: String,
        /// `data.retryable` when the agent said.
        retryable: Option<bool>,
    },
    /// Past its timeout (the agent was sent `task.cancel`).
    Timeout,
    /// The replica exited, was stopped past its drain, or the daemon
    /// restarted while it ran.
    Lost(String),
}

/// What becomes of the task.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Complete(Value),
    /// The agent refused it: `rejected`, never retried.
    Reject(String),
    /// `failed`, with the reason.
    Fail(String),
    /// Back to the queue, to run again no sooner than `after` ms from now.
    Retry {
        after: Millis,
        reason: String,
    },
}

/// The delay before attempt `next` (2, 3, ...).
pub fn retry_delay(policy: &RetryPolicy, next: u32) -> Millis {
    let doublings = next.saturating_sub(2).min(32);
    policy
        .delay
        .saturating_mul(1u64 << doublings)
        .min(policy.max_delay)
}

/// Decides what an attempt's ending means; `attempt` is the attempt that
/// just ended (1 for the first).
pub fn decide(ending: Ending, attempt: u32, policy: &RetryPolicy) -> Decision {
    let retry_or_fail = |reason: String| {
        if attempt < policy.max_attempts.max(1) {
            Decision::Retry {
                after: retry_delay(policy, attempt + 1),
                reason,
            }
        } else {
            Decision::Fail(format!(
                "{reason} (attempt {attempt} of {})",
                policy.max_attempts.max(1)
            ))
        }
    };
    match ending {
        Ending::Result(v) => Decision::Complete(v),
        Ending::Error { code, message, .. } if code == REFUSED => {
            Decision::Reject(format!("refused by the agent: {message}"))
        }
        Ending::Error {
            code,
            message,
            retryable: Some(false),
        } => Decision::Fail(format!("error {code}: {message} (not retryable)")),
        Ending::Error { code, message, .. } => retry_or_fail(format!("error {code}: {message}")),
        Ending::Timeout => retry_or_fail("timeout".into()),
        Ending::Lost(why) => retry_or_fail(why),
    }
}
