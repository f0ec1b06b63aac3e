//! Probe results in a replica's lifecycle: liveness failures show it in
//! PerformanceMonitoring and, at the threshold, restart it; a failing
//! readiness probe shows it in PerformanceMonitoring until it passes.

use super::{Ctx, Effect, Observation, Slot, go};
use crate::core::lifecycle::State;

/// A liveness probe result: failing `threshold` times in a row restarts
/// the replica (a failure, for backoff and the crash-loop rules); failing
/// fewer times shows it in PerformanceMonitoring with the reason.
pub(super) fn liveness(slot: &mut Slot, ctx: &Ctx, obs: Observation, out: &mut Vec<Effect>) {
    let Observation::Liveness {
        run_id,
        failing,
        threshold,
        reason,
    } = obs
    else {
        return;
    };
    let state = slot.state();
    if slot.run.map(|r| r.id) != Some(run_id) || !state.is_running() {
        return;
    }
    if failing >= threshold.max(1) {
        slot.limit_restart = true;
        slot.probe_failing = false;
        let why = format!("liveness probe failed {failing}/{threshold} ({reason}): restarting");
        out.push(Effect::Warn(why.clone()));
        go(slot, out, State::Adaptation, ctx.now, why);
        out.push(Effect::Stop);
    } else if failing > 0 && state == State::ActiveOperation {
        slot.probe_failing = true;
        let why = format!("liveness probe failing {failing}/{threshold}: {reason}");
        go(slot, out, State::PerformanceMonitoring, ctx.now, why);
    } else if failing == 0 && slot.probe_failing && state == State::PerformanceMonitoring {
        slot.probe_failing = false;
        if slot.unready {
            return;
        }
        go(
            slot,
            out,
            State::ActiveOperation,
            ctx.now,
            "liveness probe passes again",
        );
    }
}

/// A readiness probe result: unready shows the replica in
/// PerformanceMonitoring with the reason (the daemon keeps tasks and
/// dependents away); ready again returns it to ActiveOperation.
pub(super) fn readiness(slot: &mut Slot, ctx: &Ctx, obs: Observation, out: &mut Vec<Effect>) {
    let Observation::Readiness {
        run_id,
        ready,
        reason,
    } = obs
    else {
        return;
    };
    let state = slot.state();
    if slot.run.map(|r| r.id) != Some(run_id) || !state.is_running() {
        return;
    }
    if !ready && !slot.unready {
        slot.unready = true;
        if state == State::ActiveOperation {
            let why = format!("readiness probe failing: {reason} (no tasks, dependents wait)");
            go(slot, out, State::PerformanceMonitoring, ctx.now, why);
        }
    } else if ready && slot.unready {
        slot.unready = false;
        if state == State::PerformanceMonitoring && !slot.probe_failing {
            go(
                slot,
                out,
                State::ActiveOperation,
                ctx.now,
                "readiness probe passes again",
            );
        }
    }
}
