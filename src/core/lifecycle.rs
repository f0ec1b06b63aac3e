//! The per-replica lifecycle state machine from the operations manual.
//!
//! Pure: no IO, no clock. Time comes in as [`Millis`] (milliseconds since the
//! Unix epoch, supplied by the caller). Every transition is checked against
//! [`State::can_go_to`]; an invalid one is refused and leaves the machine as it
//! was, so the caller can log it as the bug it is.

use std::collections::VecDeque;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch. The core never reads a clock.
pub type Millis = u64;

/// How many transitions each replica remembers.
pub const HISTORY_CAP: usize = 64;
/// Longest reason kept with a transition (in bytes; cut at a char boundary).
pub const MAX_REASON: usize = 240;

/// A replica's lifecycle state.
///
/// The manual's eight states, `Backoff` and `Failed`, and `Stopped`: the
/// manual's "end", made an explicit resting state so a stopped replica keeps
/// its record and can be started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum State {
    /// Config validated; waiting for dependencies to be ready.
    Initialization,
    /// Waiting for the resource pool to admit the replica's requests.
    ResourceAllocation,
    /// Creating the context dir and building the environment.
    ContextPreparation,
    /// The process is running.
    ActiveOperation,
    /// Running, under closer watch (a health or limit check found something).
    PerformanceMonitoring,
    /// Acting on a decision: restart, limit action, scale.
    Adaptation,
    /// The process exited; its exit is being recorded.
    TaskCompletion,
    /// Graceful stop in progress; resources are released at the end.
    Decommissioning,
    /// Waiting out a restart delay.
    Backoff,
    /// Gave up after the start limit; only a manual start re-arms it.
    Failed,
    /// Decommissioned: no process, nothing reserved.
    Stopped,
}

impl State {
    /// Every state, in display order.
    pub const ALL: [State; 11] = [
        State::Initialization,
        State::ResourceAllocation,
        State::ContextPreparation,
        State::ActiveOperation,
        State::PerformanceMonitoring,
        State::Adaptation,
        State::TaskCompletion,
        State::Decommissioning,
        State::Backoff,
        State::Failed,
        State::Stopped,
    ];

    /// The transition table: may a replica move from `self` to `to`?
    pub fn can_go_to(self, to: State) -> bool {
        use State::*;
        matches!(
            (self, to),
            (Initialization, ResourceAllocation | Decommissioning)
                | (ResourceAllocation, ContextPreparation | Decommissioning)
                // A spawn that fails goes straight to TaskCompletion: a failed start.
                | (ContextPreparation, ActiveOperation | TaskCompletion | Decommissioning)
                | (
                    ActiveOperation,
                    PerformanceMonitoring | Adaptation | TaskCompletion | Decommissioning
                )
                | (
                    PerformanceMonitoring,
                    ActiveOperation | Adaptation | TaskCompletion | Decommissioning
                )
                // With a live process (restart or limit action) Adaptation waits for
                // the exit; without one it decides what comes next.
                | (
                    Adaptation,
                    TaskCompletion | Backoff | Initialization | Failed | Decommissioning
                )
                | (TaskCompletion, Adaptation | Failed | Decommissioning)
                | (Backoff, Initialization | Decommissioning)
                | (Failed, Initialization | Decommissioning)
                | (Decommissioning, Stopped)
                | (Stopped, Initialization)
        )
    }

    /// True while a process may exist for the replica.
    pub fn may_have_process(self) -> bool {
        matches!(
            self,
            State::ActiveOperation
                | State::PerformanceMonitoring
                | State::Adaptation
                | State::Decommissioning
        )
    }

    /// True for the states in which the replica counts as running.
    pub fn is_running(self) -> bool {
        matches!(self, State::ActiveOperation | State::PerformanceMonitoring)
    }

    /// Short lowercase name for tables and metric labels.
    pub fn label(self) -> &'static str {
        match self {
            State::Initialization => "initialization",
            State::ResourceAllocation => "resource-allocation",
            State::ContextPreparation => "context-preparation",
            State::ActiveOperation => "active",
            State::PerformanceMonitoring => "monitoring",
            State::Adaptation => "adaptation",
            State::TaskCompletion => "task-completion",
            State::Decommissioning => "decommissioning",
            State::Backoff => "backoff",
            State::Failed => "failed",
            State::Stopped => "stopped",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// One recorded transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub at: Millis,
    pub from: State,
    pub to: State,
    pub reason: String,
}

/// A refused transition: the machine is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid lifecycle transition {from} -> {to} ({reason})")]
pub struct InvalidTransition {
    pub from: State,
    pub to: State,
    pub reason: String,
}

/// A replica's state with its bounded, timestamped history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifecycle {
    state: State,
    since: Millis,
    history: VecDeque<Transition>,
}

impl Lifecycle {
    /// A new replica, in `Stopped` until it is started.
    pub fn new(now: Millis) -> Self {
        Self {
            state: State::Stopped,
            since: now,
            history: VecDeque::with_capacity(8),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// When the current state was entered.
    pub fn since(&self) -> Millis {
        self.since
    }

    /// Oldest first; at most [`HISTORY_CAP`] entries.
    pub fn history(&self) -> &VecDeque<Transition> {
        &self.history
    }

    /// Moves to `to` if the table allows it, recording when and why.
    pub fn go(
        &mut self,
        to: State,
        now: Millis,
        reason: impl Into<String>,
    ) -> Result<&Transition, InvalidTransition> {
        let mut reason = reason.into();
        if reason.len() > MAX_REASON {
            let mut cut = MAX_REASON;
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            reason.truncate(cut);
            reason.push('…');
        }
        if !self.state.can_go_to(to) {
            return Err(InvalidTransition {
                from: self.state,
                to,
                reason,
            });
        }
        if self.history.len() == HISTORY_CAP {
            self.history.pop_front();
        }
        self.history.push_back(Transition {
            at: now,
            from: self.state,
            to,
            reason,
        });
        self.state = to;
        self.since = now;
        // Invariant: pushed just above.
        Ok(self
            .history
            .back()
            .expect("history holds the transition just pushed"))
    }
}

/// Transitions for the log: consecutive transitions of the same key (a
/// replica) through the start's passing states (Initialization,
/// ResourceAllocation, ContextPreparation) are one line, with the run's
/// first `from`, last `to` and last reason, and the states passed through,
/// each with its reason (`None` for a run of one). A start takes a replica
/// through four states in one pass; the log says so in one line, not
/// four. Every other state ends a line, so an exit, a failure or an
/// adaptation keeps its own line, `to` and reason.
pub fn runs<K: PartialEq>(items: Vec<(K, Transition)>) -> Vec<(K, Transition, Option<String>)> {
    let mut out: Vec<(K, Transition, Option<String>)> = Vec::new();
    for (key, t) in items {
        if let Some((k, run, via)) = out.last_mut()
            && *k == key
            && run.to == t.from
            && matches!(
                t.from,
                State::Initialization | State::ResourceAllocation | State::ContextPreparation
            )
        {
            let step = format!("{} ({})", run.to, run.reason);
            match via {
                Some(v) => {
                    v.push_str(" → ");
                    v.push_str(&step);
                }
                None => *via = Some(step),
            }
            run.to = t.to;
            run.reason = t.reason;
            run.at = t.at;
            continue;
        }
        out.push((key, t, None));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use State::*;
    use proptest::prelude::*;

    fn t(from: State, to: State, reason: &str) -> Transition {
        Transition {
            at: 0,
            from,
            to,
            reason: reason.into(),
        }
    }

    #[test]
    fn a_run_of_one_replica_is_one_line_and_keeps_every_step() {
        let lines = runs(vec![
            (("a", 0), t(Stopped, Initialization, "start")),
            (
                ("a", 0),
                t(Initialization, ResourceAllocation, "dependencies ready"),
            ),
            (
                ("a", 0),
                t(ResourceAllocation, ContextPreparation, "admitted"),
            ),
            (("b", 0), t(Stopped, Initialization, "start")),
            (
                ("a", 0),
                t(ContextPreparation, ActiveOperation, "spawned pid 7"),
            ),
            (("a", 1), t(Stopped, Initialization, "start")),
        ]);
        assert_eq!(lines.len(), 4, "{lines:?}");
        let (key, first, via) = &lines[0];
        assert_eq!(*key, ("a", 0));
        assert_eq!((first.from, first.to), (Stopped, ContextPreparation));
        assert_eq!(first.reason, "admitted");
        assert_eq!(
            via.as_deref(),
            Some("Initialization (start) → ResourceAllocation (dependencies ready)")
        );
        // Another replica in between ends the run; a run of one has no via.
        assert_eq!(lines[1].0, ("b", 0));
        assert_eq!(lines[1].2, None);
        assert_eq!(
            (lines[2].1.from, lines[2].1.to),
            (ContextPreparation, ActiveOperation)
        );
        assert_eq!(lines[3].0, ("a", 1));
    }

    #[test]
    fn an_exit_and_an_adaptation_keep_their_own_lines() {
        let lines = runs(vec![
            (1, t(ActiveOperation, TaskCompletion, "exited 1")),
            (1, t(TaskCompletion, Adaptation, "restart = on-failure")),
            (1, t(Adaptation, Initialization, "restarting")),
            (
                1,
                t(Initialization, ResourceAllocation, "dependencies ready"),
            ),
            (1, t(ResourceAllocation, Failed, "start limit")),
        ]);
        let shown: Vec<_> = lines.iter().map(|(_, t, _)| (t.from, t.to)).collect();
        assert_eq!(
            shown,
            [
                (ActiveOperation, TaskCompletion),
                (TaskCompletion, Adaptation),
                (Adaptation, Failed),
            ]
        );
        assert_eq!(lines[0].1.reason, "exited 1");
        assert_eq!(lines[2].1.reason, "start limit");
        assert_eq!(
            lines[2].2.as_deref(),
            Some("Initialization (restarting) → ResourceAllocation (dependencies ready)")
        );
    }

    #[test]
    fn transitions_that_do_not_chain_stay_apart() {
        // Same replica, but the second does not start where the first ended.
        let lines = runs(vec![
            (1, t(Stopped, Initialization, "start")),
            (1, t(Backoff, Initialization, "retry")),
        ]);
        assert_eq!(lines.len(), 2);
    }

    const VALID: &[(State, State)] = &[
        (Initialization, ResourceAllocation),
        (Initialization, Decommissioning),
        (ResourceAllocation, ContextPreparation),
        (ResourceAllocation, Decommissioning),
        (ContextPreparation, ActiveOperation),
        (ContextPreparation, TaskCompletion),
        (ContextPreparation, Decommissioning),
        (ActiveOperation, PerformanceMonitoring),
        (ActiveOperation, Adaptation),
        (ActiveOperation, TaskCompletion),
        (ActiveOperation, Decommissioning),
        (PerformanceMonitoring, ActiveOperation),
        (PerformanceMonitoring, Adaptation),
        (PerformanceMonitoring, TaskCompletion),
        (PerformanceMonitoring, Decommissioning),
        (Adaptation, TaskCompletion),
        (Adaptation, Backoff),
        (Adaptation, Initialization),
        (Adaptation, Failed),
        (Adaptation, Decommissioning),
        (TaskCompletion, Adaptation),
        (TaskCompletion, Failed),
        (TaskCompletion, Decommissioning),
        (Backoff, Initialization),
        (Backoff, Decommissioning),
        (Failed, Initialization),
        (Failed, Decommissioning),
        (Decommissioning, Stopped),
        (Stopped, Initialization),
    ];

    #[test]
    fn every_pair_is_valid_exactly_when_listed() {
        for from in State::ALL {
            for to in State::ALL {
                let listed = VALID.contains(&(from, to));
                assert_eq!(from.can_go_to(to), listed, "{from} -> {to}");
                let mut lc = Lifecycle {
                    state: from,
                    since: 0,
                    history: VecDeque::new(),
                };
                let result = lc.go(to, 5, "test").cloned();
                if listed {
                    let t = result.expect("listed transition accepted");
                    assert_eq!((t.from, t.to, t.at), (from, to, 5));
                    assert_eq!(lc.state(), to);
                    assert_eq!(lc.since(), 5);
                } else {
                    let err = result.expect_err("unlisted transition refused");
                    assert_eq!((err.from, err.to), (from, to));
                    assert_eq!(lc.state(), from, "refusal leaves the state alone");
                    assert!(lc.history().is_empty(), "refusal records nothing");
                }
            }
        }
    }

    #[test]
    fn no_state_goes_to_itself() {
        for s in State::ALL {
            assert!(!s.can_go_to(s), "{s}");
        }
    }

    #[test]
    fn every_state_is_reachable_from_stopped_and_can_get_back() {
        // Breadth-first over the table.
        let reach = |start: State| {
            let mut seen = vec![start];
            let mut i = 0;
            while i < seen.len() {
                for to in State::ALL {
                    if seen[i].can_go_to(to) && !seen.contains(&to) {
                        seen.push(to);
                    }
                }
                i += 1;
            }
            seen
        };
        let from_stopped = reach(Stopped);
        for s in State::ALL {
            assert!(from_stopped.contains(&s), "{s} unreachable");
            assert!(reach(s).contains(&Stopped), "{s} cannot reach Stopped");
        }
    }

    #[test]
    fn history_is_bounded_and_keeps_the_newest() {
        let mut lc = Lifecycle::new(0);
        let mut now = 0;
        for _ in 0..100 {
            for to in [Initialization, Decommissioning, Stopped] {
                now += 1;
                lc.go(to, now, "cycle").expect("valid cycle");
            }
        }
        assert_eq!(lc.history().len(), HISTORY_CAP);
        assert_eq!(lc.history().back().map(|t| t.at), Some(now));
        let ats: Vec<_> = lc.history().iter().map(|t| t.at).collect();
        assert!(ats.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn long_reasons_are_cut_at_a_char_boundary() {
        let mut lc = Lifecycle::new(0);
        let long = "é".repeat(500);
        let t = lc.go(Initialization, 1, long).expect("valid").clone();
        assert!(t.reason.len() <= MAX_REASON + '…'.len_utf8());
        assert!(t.reason.ends_with('…'));
    }

    proptest! {
        #[test]
        fn no_input_sequence_reaches_an_invalid_state(
            steps in proptest::collection::vec((0usize..11, 0u64..1000), 0..400)
        ) {
            let mut lc = Lifecycle::new(0);
            let mut now = 0;
            for (target, dt) in steps {
                now += dt;
                let before = lc.state();
                let to = State::ALL[target];
                match lc.go(to, now, "prop") {
                    Ok(_) => prop_assert!(before.can_go_to(to)),
                    Err(_) => prop_assert_eq!(lc.state(), before),
                }
                // The recorded history is a valid chain ending in the current state.
                let h = lc.history();
                for w in h.iter().collect::<Vec<_>>().windows(2) {
                    prop_assert_eq!(w[0].to, w[1].from);
                }
                for t in h {
                    prop_assert!(t.from.can_go_to(t.to));
                }
                if let Some(last) = h.back() {
                    prop_assert_eq!(last.to, lc.state());
                }
                prop_assert!(h.len() <= HISTORY_CAP);
            }
        }
    }
}
