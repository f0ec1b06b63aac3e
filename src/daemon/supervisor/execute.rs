//! Decisions and their effects: the actor asks `core::supervise` what a
//! replica does next and carries it out.

use std::cmp::Reverse;

use super::actor::{Actor, Timer};
use crate::core::lifecycle::{Millis, State, Transition};

/// Transitions waiting for incident timelines, at most.
const TIMELINE_QUEUE: usize = 100_000;
use crate::core::pool::Request as PoolRequest;
use crate::core::supervise::{
    Ctx, Effect, OPERATOR_RESTART, Observation, RELOAD_RESTART, StopCause,
};
use crate::daemon::process::RunCmd;
use crate::daemon::store::{Change, ReplicaRow};
use crate::proto::ServerEvent;

impl Actor {
    /// Applies `obs` to replica `index` of agent `ai` and carries out what
    /// follows. Returns whether the replica changed state.
    pub(super) fn decide(&mut self, ai: usize, index: u32, obs: Observation) -> bool {
        if let Observation::Restart { why } = &obs
            && let Some(r) = self
                .agents
                .get_mut(ai)
                .and_then(|a| a.replicas.get_mut(&index))
            && r.spawning.is_some()
        {
            // Its spawn is under way (with the command, environment and
            // dir of before): it restarts as soon as it runs.
            r.restart_after_spawn = Some(why);
            return true;
        }
        let now = self.clock.now();
        let Some(a) = self.agents.get(ai) else {
            return false;
        };
        let Some(r) = a.replicas.get(&index) else {
            return false;
        };
        let stop = self.stop_cause(ai, index);
        let deps_pending = if stop.is_none() && r.s.reads_deps() && obs == Observation::Step {
            // One instant for the whole reconcile pass: replicas stepped a
            // millisecond apart must not see a dependency ready in a
            // different order than their own.
            self.pending_deps(ai, self.pass_now.unwrap_or(now))
        } else {
            Vec::new()
        };
        let ctx = Ctx {
            now,
            stop,
            deps_pending,
            jitter: rand::random(),
        };
        let policy = a.spec.policy();
        let name = a.spec.name.clone();
        // Effects can decide again (admitted, spawned): one list per level,
        // kept for the next time.
        let mut out = self.effects.pop().unwrap_or_default();
        if let Some(r) = self.agents[ai].replicas.get_mut(&index) {
            crate::core::supervise::decide(&mut r.s, &policy, &ctx, obs, &mut out);
        }
        let mut moved = false;
        for e in out.drain(..) {
            moved |= matches!(e, Effect::Transition(_));
            self.execute(ai, index, &name, e, now);
        }
        self.effects.push(out);
        moved
    }

    fn execute(&mut self, ai: usize, index: u32, name: &str, effect: Effect, now: Millis) {
        match effect {
            Effect::Transition(t) => self.publish_transition(name, index, t),
            Effect::Admit => self.admit(ai, index, now),
            Effect::Release => {
                self.pool.release(&(name.to_string(), index));
            }
            Effect::Spawn => self.spawn(ai, index, now),
            Effect::Stop => self.stop_replica(ai, index),
            Effect::RunEnded => {
                if let Some(r) = self.agents[ai].replicas.get_mut(&index) {
                    r.cmds = None;
                    r.cpu_percent = 0.0;
                    r.rss_bytes = 0;
                    r.processes = 0;
                }
            }
            Effect::Backoff { at, generation } => {
                self.timers
                    .push(Reverse((at, Timer::Backoff(ai, index, generation))));
            }
            Effect::Healthy { at } => self.timers.push(Reverse((at, Timer::Healthy))),
            Effect::Persist => self.persist_replica(ai, index),
            Effect::Killed(reason) => self.observe.audit(
                "replica-killed",
                serde_json::json!({ "agent": name, "replica": index }),
                &reason,
            ),
            Effect::Warn(what) => {
                self.log_transitions();
                tracing::warn!(agent = %name, replica = index, "{what}")
            }
            Effect::Bug(e) => {
                self.log_transitions();
                tracing::error!(
                    agent = %name,
                    replica = index,
                    error = %e,
                    "bug: invalid lifecycle transition refused"
                )
            }
        }
    }

    /// Asks the pool; at most `SPAWNS_PER_PASS` spawns per reconcile pass,
    /// the rest go in the next one, right after whatever else waits.
    fn admit(&mut self, ai: usize, index: u32, now: Millis) {
        if self.spawn_budget == 0 {
            if !self.more_to_spawn {
                self.more_to_spawn = true;
                self.timers.push(Reverse((now, Timer::Healthy)));
            }
            return;
        }
        let a = &self.agents[ai];
        let key = (a.spec.name.clone(), index);
        let req = PoolRequest {
            cpu: a.spec.resources.cpu,
            memory: a.spec.resources.memory,
        };
        match self.pool.try_admit(&key, req) {
            Ok(()) => {
                self.spawn_budget = self.spawn_budget.saturating_sub(1);
                self.decide(ai, index, Observation::Admitted);
            }
            Err(wait) => {
                self.decide(ai, index, Observation::PoolWait(wait.to_string()));
            }
        }
    }

    /// Every transition goes to subscribers and the daemon log; restarts,
    /// failures and stops are queued for incident timelines, the audit
    /// trail and the automatic recovery (`drain_timeline`).
    fn publish_transition(&mut self, agent: &str, replica: u32, t: Transition) {
        self.unlogged.push((agent.to_string(), replica, t.clone()));
        // Restarts, failures and stops reach incident timelines once the
        // messages at hand are handled (after a tick that may open the
        // incident they belong to).
        if matches!(t.to, State::Adaptation | State::Failed | State::Stopped)
            && self.timeline.len() < TIMELINE_QUEUE
        {
            self.timeline.push((agent.to_string(), replica, t.clone()));
        }
        self.events.emit(ServerEvent::Transition {
            agent: agent.to_string(),
            replica,
            transition: t,
        });
    }

    /// Writes the pass's transitions to the daemon log, one line per run
    /// of one replica's transitions (`via` names the states between; each
    /// line a few
    /// microseconds of formatting and a write: after the spawns, not
    /// before). Called at the end of the pass, before each message is
    /// handled and before the pass's own warnings, so lines keep their
    /// order; a line's timestamp may be up to one pass late.
    pub(super) fn log_transitions(&mut self) {
        if self.unlogged.is_empty() {
            return;
        }
        let items = self
            .unlogged
            .drain(..)
            .map(|(agent, replica, t)| ((agent, replica), t))
            .collect();
        for ((agent, replica), t, via) in crate::core::lifecycle::runs(items) {
            tracing::info!(
                target: "autonomos::lifecycle",
                agent,
                replica,
                from = %t.from,
                to = %t.to,
                reason = %t.reason,
                via = via.as_deref(),
                "transition"
            );
        }
    }

    /// Feeds the queued restarts, failures and stops to incident timelines,
    /// the audit trail (Failed) and the automatic recovery.
    pub(super) fn drain_timeline(&mut self) {
        self.log_transitions();
        if self.timeline.is_empty() {
            return;
        }
        for (agent, replica, t) in std::mem::take(&mut self.timeline) {
            if t.to == State::Failed {
                self.observe.audit(
                    "replica-failed",
                    serde_json::json!({ "agent": agent, "replica": replica }),
                    &t.reason,
                );
                self.auto_recover(&agent, &t.reason);
            }
            if !requested(&t) {
                self.observe.on_transition(&agent, replica, &t);
            }
        }
        self.alerts_pending = true;
    }

    /// `recovery = "restore-latest"`: when a replica of the agent reaches
    /// `Failed`, restore its newest backup; again for a later failure only
    /// after a growing quiet time (`core::backoff::recovery_allowed`).
    fn auto_recover(&mut self, agent: &str, reason: &str) {
        let wanted = self
            .agents
            .iter()
            .any(|a| a.spec.name == agent && !a.removed && a.spec.restore_latest);
        let now = self.clock.now();
        let past = self.recovered.entry(agent.to_string()).or_default();
        if !wanted || !crate::core::backoff::recovery_allowed(past, now) {
            if wanted && let Some(last) = past.last() {
                tracing::warn!(
                    agent,
                    seconds_since = now.saturating_sub(*last) / 1000,
                    "replica Failed soon after an automatic recovery; this one is left to the operator"
                );
            }
            return;
        }
        past.push(now);
        let why = format!("replica Failed ({reason}); recovery = restore-latest");
        if let Some(tx) = &self.recoveries {
            let _ = tx.send((agent.to_string(), why));
        }
    }

    /// Why replica `index` of agent `ai` must not run (None: it should).
    pub(super) fn stop_cause(&self, ai: usize, index: u32) -> Option<StopCause> {
        let a = &self.agents[ai];
        if self.shutting_down {
            Some(StopCause::Shutdown)
        } else if a.removed {
            Some(StopCause::Removed)
        } else if !a.enabled {
            Some(StopCause::Disabled)
        } else if index >= a.desired {
            Some(StopCause::ScaledDown(a.desired))
        } else {
            None
        }
    }

    /// Stops a replica. A task agent's replica drains first: it gets no
    /// new tasks and is sent `shutdown`, and the stop signal waits until
    /// its tasks in flight are answered (at most `stop_timeout`; what is
    /// still running then goes back to the queue when the replica ends),
    /// unless the stop is a probe's or a limit's restart.
    fn stop_replica(&mut self, ai: usize, index: u32) {
        let stop = self.stop_cmd(ai);
        let Some(r) = self.agents[ai].replicas.get(&index) else {
            return;
        };
        let Some(cmds) = &r.cmds else { return };
        let (Some(t), Some(run), true) = (
            &self.tasks,
            r.s.run.as_ref(),
            self.agents[ai].spec.tasks.is_some(),
        ) else {
            let _ = cmds.try_send(stop);
            return;
        };
        // A replica restarted for a failing probe or its memory limit is
        // not waited for: it is hung or over its limit.
        let forced = r.s.limit_restart;
        let (done, drained) = tokio::sync::oneshot::channel();
        t.send(crate::daemon::tasks::Msg::Draining {
            agent: self.agents[ai].spec.name.clone(),
            index,
            run: run.id,
            done: (!forced).then_some(done),
        });
        if forced {
            let _ = cmds.try_send(stop);
            return;
        }
        let (cmds, grace) = (cmds.clone(), self.agents[ai].spec.stop_timeout);
        tokio::spawn(async move {
            let _ = tokio::time::timeout(grace, drained).await;
            let _ = cmds.send(stop).await;
        });
    }

    pub(super) fn stop_cmd(&self, ai: usize) -> RunCmd {
        let s = &self.agents[ai].spec;
        RunCmd::Stop {
            signal: s.stop_signal,
            timeout: s.stop_timeout,
            hangup: s.tty.is_some(),
        }
    }

    /// Records the replica's counters and last exit (best effort).
    fn persist_replica(&mut self, ai: usize, index: u32) {
        let a = &self.agents[ai];
        let Some(r) = a.replicas.get(&index) else {
            return;
        };
        let row = ReplicaRow {
            restarts: r.s.restarts,
            failures: r.s.failures,
            last_exit_code: r.s.last_exit.and_then(|e| e.code),
            last_exit_signal: r.s.last_exit.and_then(|e| e.signal),
            last_exit_at: r.s.last_exit.map(|e| e.at),
        };
        self.unwritten.push(Change::Replica {
            agent: a.spec.name.clone(),
            index,
            row,
        });
    }

    /// Queues the pass's replica rows for the state database (after its
    /// spawns: see `unwritten`).
    pub(super) fn write_replicas(&mut self) {
        let mut full = 0;
        for change in std::mem::take(&mut self.unwritten) {
            if !self.store.write_soon(change) {
                full += 1;
            }
        }
        if full > 0 {
            self.log_transitions();
            tracing::warn!(
                exits = full,
                "state database queue full; replicas' exits were not recorded"
            );
        }
    }
}

/// A restart someone asked for: on incident timelines as the request, by
/// who asked, not once per replica.
pub(super) fn requested(t: &Transition) -> bool {
    t.to == State::Adaptation && (t.reason == OPERATOR_RESTART || t.reason == RELOAD_RESTART)
}
