//! The supervisor's side of health checks: starting a run's probe loops,
//! and what their results do (liveness through the lifecycle to a
//! restart; readiness to the lifecycle, the task router and dependents).

use tokio::sync::mpsc;

use super::actor::{Actor, Msg};
use crate::core::supervise::Observation;
use crate::daemon::probe::{Heard, Kind, Target};
use crate::daemon::process::RunCmd;

impl Actor {
    /// Starts the probe loops of a new run of replica `index` (they end
    /// when the run's command channel closes).
    pub(super) fn start_probes(
        &self,
        ai: usize,
        index: u32,
        run_id: u64,
        (env, cwd): (Vec<(String, String)>, std::path::PathBuf),
        alive: &mpsc::Sender<RunCmd>,
    ) {
        let a = &self.agents[ai];
        let Some(health) = a.spec.health.clone() else {
            return;
        };
        let link = self
            .tasks
            .clone()
            .filter(|_| a.spec.tasks.is_some())
            .map(|tasks| Heard {
                tasks,
                agent: a.spec.name.clone(),
                index,
                run: run_id,
            });
        let target = std::sync::Arc::new(Target { env, cwd, link });
        for kind in [Kind::Liveness, Kind::Readiness] {
            let (alive, tx) = (alive.clone(), self.tx.clone());
            tokio::spawn(crate::daemon::probe::watch(
                health.clone(),
                kind,
                target.clone(),
                move || !alive.is_closed(),
                move |failing, reason| {
                    tx.try_send(Msg::Probe(ai, index, run_id, kind, failing, reason))
                        .is_ok()
                },
            ));
        }
    }

    /// A probe result of a run.
    pub(super) fn on_probe(
        &mut self,
        ai: usize,
        index: u32,
        run_id: u64,
        kind: Kind,
        failing: u32,
        reason: String,
    ) {
        let Some(a) = self.agents.get_mut(ai) else {
            return;
        };
        let threshold = a.spec.health.as_ref().map_or(1, |h| h.failure_threshold);
        let task_agent = a.spec.tasks.is_some();
        let name = a.spec.name.clone();
        let Some(r) = a.replicas.get_mut(&index) else {
            return;
        };
        if kind == Kind::Liveness {
            r.probe = Some((run_id, failing));
            let obs = Observation::Liveness {
                run_id,
                failing,
                threshold,
                reason,
            };
            self.decide(ai, index, obs);
            return;
        }
        // Ready after a pass; unready after `threshold` failures in a row,
        // or at the first failure before it was ever ready.
        let was = r
            .readiness
            .filter(|(run, _)| *run == run_id)
            .map(|(_, ok)| ok);
        let ready = failing == 0 || (was == Some(true) && failing < threshold);
        if was == Some(ready) {
            return;
        }
        r.readiness = Some((run_id, ready));
        if task_agent && let Some(t) = &self.tasks {
            t.send(crate::daemon::tasks::Msg::Gate {
                agent: name,
                index,
                run: run_id,
                open: ready,
            });
        }
        let obs = Observation::Readiness {
            run_id,
            ready,
            reason,
        };
        self.decide(ai, index, obs);
        // Dependents may start, or must keep waiting.
        self.dirty_all = true;
    }
}

/// Whether a running replica counts as ready: no readiness probe, or its
/// probe passes for this run.
pub(super) fn ready(a: &super::actor::Agent, r: &super::actor::Replica) -> bool {
    let probed = a
        .spec
        .health
        .as_ref()
        .is_some_and(|h| h.readiness.is_some());
    !probed
        || r.s
            .run
            .as_ref()
            .is_some_and(|run| r.readiness == Some((run.id, true)))
}
