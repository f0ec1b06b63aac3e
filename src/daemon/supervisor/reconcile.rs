//! Reconcile: move every replica that can move toward what is wanted.

use super::SPAWNS_PER_PASS;
use super::actor::Actor;
use crate::core::lifecycle::{Millis, State};
use crate::core::supervise::Observation;

impl Actor {
    /// Moves every replica as far as it can go now.
    pub(super) fn reconcile(&mut self) {
        let now = self.clock.now();
        self.pass_now = Some(now);
        self.spawn_budget = SPAWNS_PER_PASS;
        self.more_to_spawn = false;
        self.pass_spawns = 0;
        let n = self.agents.len();
        self.dirty.resize(n, true);
        self.waiting_start.resize(n, true);
        for ai in 0..n {
            if !(self.dirty_all || self.dirty[ai] || self.waiting_start[ai]) {
                continue;
            }
            self.dirty[ai] = false;
            let desired = self.agents[ai].desired;
            for index in 0..desired {
                if !self.agents[ai].replicas.contains_key(&index) {
                    let r = self.new_replica(index, now);
                    self.agents[ai].replicas.insert(index, Box::new(r));
                }
            }
            // Only replicas that can move are stepped: after every message
            // this runs over the whole fleet, so the common case (running
            // as wanted, waiting out a backoff) must cost no allocation.
            let mut todo = std::mem::take(&mut self.to_step);
            todo.clear();
            todo.extend(
                self.agents[ai]
                    .replicas
                    .values()
                    .filter(|r| r.s.can_move(self.stop_cause(ai, r.s.index).is_none()))
                    .map(|r| r.s.index),
            );
            for &index in &todo {
                self.decide(ai, index, Observation::Step);
            }
            self.to_step = todo;
            // Forget replicas scaled away once they are fully stopped.
            let a = &mut self.agents[ai];
            a.replicas
                .retain(|&i, r| i < desired || !(r.s.state() == State::Stopped && r.s.at_rest()));
            self.waiting_start[ai] = a.replicas.values().any(|r| {
                matches!(
                    r.s.state(),
                    State::Initialization | State::ResourceAllocation
                )
            });
        }
        self.dirty_all = false;
        self.pass_now = None;
    }

    /// The agent's dependencies that are not ready yet.
    pub(super) fn pending_deps(&self, ai: usize, now: Millis) -> Vec<String> {
        self.agents[ai]
            .spec
            .depends_on
            .iter()
            .filter(|d| !self.ready(d, now))
            .cloned()
            .collect()
    }

    /// Is `agent` ready for its dependents: a replica running for at least
    /// min_uptime, whose readiness probe (if any) passes.
    fn ready(&self, name: &str, now: Millis) -> bool {
        self.agents
            .iter()
            .find(|a| a.spec.name == name)
            .is_some_and(|a| {
                let min = a.spec.min_uptime.as_millis() as u64;
                a.replicas.values().any(|r| {
                    r.s.state().is_running()
                        && super::probes::ready(a, r)
                        && r.s
                            .run
                            .as_ref()
                            .is_some_and(|run| now.saturating_sub(run.started_at) >= min)
                })
            })
    }
}
