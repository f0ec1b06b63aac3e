//! Supervision decisions for one replica, as a pure function.
//!
//! The supervisor actor owns processes, timers, the pool and the event
//! stream; what a replica does next is decided here. [`decide`] takes the
//! replica's [`Slot`], its agent's [`Policy`], what is true of the world
//! right now ([`Ctx`]: the time, whether the replica is still wanted, the
//! dependencies it waits for, a jitter sample) and one [`Observation`]; it
//! updates the slot and lists the [`Effect`]s for the actor to carry out.
//! No IO, no clock, no randomness: every sequence replays exactly in tests.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::core::backoff::{Backoff, BackoffSpec, StartLimit, StartLimitSpec};
use crate::core::lifecycle::{Lifecycle, Millis, State, Transition};
use crate::core::units::fmt_ms;

mod probes;
#[cfg(test)]
mod tests;

/// Why a replica restarts when an operator asked for it, or a reload
/// changed its agent: such restarts are not failures, and incident
/// timelines record the request (by who asked) instead of each replica.
pub const OPERATOR_RESTART: &str = "restart requested by operator";
pub const RELOAD_RESTART: &str = "config changed by reload";
/// A spawn error is retried no sooner than this, whatever the backoff says.
pub const SPAWN_ERROR_MIN_DELAY: Duration = Duration::from_millis(250);

/// What to do after a replica's process exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    /// The name the config file uses.
    pub fn name(self) -> &'static str {
        match self {
            RestartPolicy::Always => "always",
            RestartPolicy::OnFailure => "on-failure",
            RestartPolicy::Never => "never",
        }
    }
}

/// What to do when a replica's process tree exceeds its memory limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LimitAction {
    /// Stop the replica and start it again (counts as a failure for backoff).
    Restart,
    /// Stop the replica and leave it stopped.
    Stop,
    /// Only record it (the replica enters PerformanceMonitoring; rules alert).
    Alert,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    /// Exit code, if it exited normally.
    pub code: Option<i32>,
    /// Signal number, if a signal ended it.
    pub signal: Option<i32>,
    /// When it was reaped (ms since the Unix epoch).
    pub at: Millis,
    /// How long it ran, in ms (0 for a spawn that failed).
    #[serde(default)]
    pub ran_ms: u64,
}

impl ExitInfo {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(c), _) => write!(f, "exit {c}"),
            (None, Some(s)) => write!(f, "signal {}", crate::core::signal::signal_name(s)),
            (None, None) => write!(f, "spawn failed"),
        }
    }
}

/// The parts of an agent's spec that decisions read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    pub restart: RestartPolicy,
    pub backoff: BackoffSpec,
    /// A run shorter than this is a failed start, whatever the exit code.
    pub min_uptime: Duration,
    pub start_limit: StartLimitSpec,
    /// RSS limit of the process tree, in bytes.
    pub memory_limit: Option<u64>,
    pub limit_action: LimitAction,
}

/// Why a replica that should not run is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    Shutdown,
    Removed,
    Disabled,
    /// Its index is at or past the agent's new replica count.
    ScaledDown(u32),
}

impl fmt::Display for StopCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopCause::Shutdown => f.write_str("daemon shutting down"),
            StopCause::Removed => f.write_str("removed from the config by a reload"),
            StopCause::Disabled => f.write_str("agent stopped by operator"),
            StopCause::ScaledDown(n) => write!(f, "scaled down to {n}"),
        }
    }
}

/// What holds for the replica at the moment of a decision.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ctx {
    pub now: Millis,
    /// Some: the replica must not run, and why.
    pub stop: Option<StopCause>,
    /// Dependencies not ready yet (read when the replica is about to start).
    pub deps_pending: Vec<String>,
    /// A uniform sample in [0, 1) for backoff jitter.
    pub jitter: f64,
}

impl Ctx {
    pub fn wanted(&self) -> bool {
        self.stop.is_none()
    }
}

/// The run a replica's process belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunRef {
    /// Unique per spawn in this daemon's life.
    pub id: u64,
    pub pid: i32,
    pub started_at: Millis,
}

/// One replica as decisions see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    pub index: u32,
    pub lc: Lifecycle,
    /// The live run, if any.
    pub run: Option<RunRef>,
    /// Runs whose leftover processes are still being stopped.
    pub tree_busy: u32,
    pub backoff: Backoff,
    pub start_limit: StartLimit,
    /// Every restart (operator, reload, crash).
    pub restarts: u64,
    /// Crashes, failed starts and limit kills (what a crash loop counts).
    pub failures: u64,
    pub last_exit: Option<ExitInfo>,
    /// What the replica waits for, in words.
    pub waiting: Option<String>,
    /// The last spawn error.
    pub error: Option<String>,
    /// Do not start again until an operator starts it (restart = never, a
    /// clean exit under on-failure, or limit action stop).
    pub parked: bool,
    /// Set by an operator or reload restart: the coming exit is not a failure.
    pub restart_requested: Option<&'static str>,
    /// Set by the memory-limit restart action: the coming exit is a failure.
    pub limit_restart: bool,
    /// Set by the memory-limit stop action.
    pub limit_stop: bool,
    /// Invalidates old backoff timers.
    pub timer_gen: u64,
    /// The stop of the last run escalated to SIGKILL this long after the
    /// stop signal (said when the replica reaches Stopped).
    pub sigkill: Option<Duration>,
    /// In PerformanceMonitoring because its liveness probe fails.
    pub probe_failing: bool,
    /// Its readiness probe fails (PerformanceMonitoring while running).
    pub unready: bool,
}

impl Slot {
    /// A new replica, Stopped.
    pub fn new(index: u32, now: Millis) -> Self {
        Self {
            index,
            lc: Lifecycle::new(now),
            run: None,
            tree_busy: 0,
            backoff: Backoff::default(),
            start_limit: StartLimit::default(),
            restarts: 0,
            failures: 0,
            last_exit: None,
            waiting: None,
            error: None,
            parked: false,
            restart_requested: None,
            limit_restart: false,
            limit_stop: false,
            timer_gen: 0,
            sigkill: None,
            probe_failing: false,
            unready: false,
        }
    }

    pub fn state(&self) -> State {
        self.lc.state()
    }

    /// Nothing left of it: no process, no leftovers, in a resting state.
    pub fn at_rest(&self) -> bool {
        matches!(self.state(), State::Stopped | State::Failed)
            && self.run.is_none()
            && self.tree_busy == 0
    }

    /// Whether a [`Observation::Step`] could do anything now (the rest
    /// waits for an event or a timer).
    pub fn can_move(&self, wanted: bool) -> bool {
        match self.state() {
            State::Stopped => wanted && !self.parked && self.tree_busy == 0,
            State::Initialization | State::ResourceAllocation => true,
            State::Backoff
            | State::Failed
            | State::ActiveOperation
            | State::PerformanceMonitoring
            | State::Adaptation => !wanted,
            State::ContextPreparation | State::TaskCompletion | State::Decommissioning => false,
        }
    }

    /// Whether a step of this slot reads [`Ctx::deps_pending`].
    pub fn reads_deps(&self) -> bool {
        matches!(self.state(), State::Stopped | State::Initialization)
    }
}

/// What a run task reports about its run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEvent {
    /// The leader exited and was reaped. `tree_gone` is false while leftover
    /// descendants are still being stopped.
    Exited {
        code: Option<i32>,
        signal: Option<i32>,
        ran: Duration,
        tree_gone: bool,
        /// The stop escalated to SIGKILL: this long after the stop signal.
        killed_after: Option<Duration>,
    },
    /// Every leftover descendant is gone too; `killed_after` as above, for
    /// leftovers that outlived the stop timeout. Counted whichever run they
    /// were of.
    TreeGone { killed_after: Option<Duration> },
}

/// Something that happened to a replica, or a question the actor answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// Reconcile: move as far as the replica can now.
    Step,
    /// The pool admitted the replica's requests (after [`Effect::Admit`]).
    Admitted,
    /// The pool cannot admit it yet, and why.
    PoolWait(String),
    /// The process was spawned (after [`Effect::Spawn`]).
    Spawned(RunRef),
    /// The spawn failed; `counted` when it counts against the start limit
    /// (the process could not be created, as opposed to its context dir).
    SpawnFailed { error: String, counted: bool },
    /// What the run task of run `run_id` reports.
    Run { run_id: u64, event: RunEvent },
    /// A backoff timer fired.
    BackoffElapsed { generation: u64 },
    /// A memory sample of the run's process tree.
    Memory { run_id: u64, rss: u64 },
    /// The run's liveness probe: `failing` failures in a row (0: it
    /// passed) of the `threshold` that restarts it; why the last failed.
    Liveness {
        run_id: u64,
        failing: u32,
        threshold: u32,
        reason: String,
    },
    /// The run's readiness probe passes (`ready`) or fails (why).
    Readiness {
        run_id: u64,
        ready: bool,
        reason: String,
    },
    /// An operator (or a reload) restarts the replica.
    Restart { why: &'static str },
    /// An operator started the agent: a parked or Failed replica may run again.
    Start,
    /// The agent came back in a reload: a parked replica may run again.
    Readded,
}

/// What the actor must do after a decision.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// The slot moved (already applied): publish it.
    Transition(Transition),
    /// Ask the pool to admit the replica; answer with `Admitted` or `PoolWait`.
    Admit,
    /// Give the replica's pool reservation back.
    Release,
    /// Prepare the context and spawn; answer with `Spawned` or `SpawnFailed`.
    Spawn,
    /// Send the agent's stop signal to the live run.
    Stop,
    /// The run ended: its samples no longer apply.
    RunEnded,
    /// Fire `BackoffElapsed { generation }` at `at`.
    Backoff { at: Millis, generation: u64 },
    /// Re-check dependents at `at` (the run reaches min_uptime).
    Healthy { at: Millis },
    /// Record the replica's counters and last exit.
    Persist,
    /// The stop escalated to SIGKILL (for the audit trail).
    Killed(String),
    /// Worth a warning in the daemon log.
    Warn(String),
    /// An invalid transition was refused: a bug.
    Bug(String),
}

/// Applies `obs` to `slot`, appending what the actor must do to `out`.
pub fn decide(
    slot: &mut Slot,
    policy: &Policy,
    ctx: &Ctx,
    obs: Observation,
    out: &mut Vec<Effect>,
) {
    match obs {
        Observation::Step => step(slot, ctx, out),
        Observation::Admitted => {
            if slot.state() == State::ResourceAllocation {
                slot.waiting = None;
                go(
                    slot,
                    out,
                    State::ContextPreparation,
                    ctx.now,
                    "admitted by the pool",
                );
                out.push(Effect::Spawn);
            }
        }
        Observation::PoolWait(why) => slot.waiting = Some(why),
        Observation::Spawned(run) => {
            slot.start_limit.record(&policy.start_limit, ctx.now);
            slot.error = None;
            slot.run = Some(run);
            (slot.probe_failing, slot.unready) = (false, false);
            let reason = format!("spawned pid {}", run.pid);
            go(slot, out, State::ActiveOperation, ctx.now, reason);
            out.push(Effect::Healthy {
                at: ctx.now + policy.min_uptime.as_millis() as u64,
            });
        }
        Observation::SpawnFailed { error, counted } => {
            if counted {
                slot.start_limit.record(&policy.start_limit, ctx.now);
            }
            out.push(Effect::Release);
            out.push(Effect::Warn(format!("spawn failed: {error}")));
            let reason = format!("spawn failed: {error}");
            slot.error = Some(error);
            go(slot, out, State::TaskCompletion, ctx.now, reason);
            let info = ExitInfo {
                code: None,
                signal: None,
                at: ctx.now,
                ran_ms: 0,
            };
            after_exit(slot, policy, ctx, info, Duration::ZERO, true, true, out);
        }
        Observation::Run {
            run_id,
            event:
                RunEvent::Exited {
                    code,
                    signal,
                    ran,
                    tree_gone,
                    killed_after,
                },
        } => {
            let info = ExitInfo {
                code,
                signal,
                at: ctx.now,
                ran_ms: ran.as_millis() as u64,
            };
            exited(
                slot,
                policy,
                ctx,
                run_id,
                info,
                ran,
                tree_gone,
                killed_after,
                out,
            );
        }
        Observation::Run {
            event: RunEvent::TreeGone { killed_after },
            ..
        } => {
            slot.tree_busy = slot.tree_busy.saturating_sub(1);
            if killed_after.is_some() {
                slot.sigkill = killed_after;
            }
            if slot.state() == State::Decommissioning && slot.run.is_none() && slot.tree_busy == 0 {
                let reason = stopped_reason(slot, out, || "process tree gone".to_string());
                go(slot, out, State::Stopped, ctx.now, reason);
            }
        }
        Observation::BackoffElapsed { generation } => {
            if slot.timer_gen == generation && slot.state() == State::Backoff {
                slot.waiting = None;
                go(slot, out, State::Initialization, ctx.now, "backoff elapsed");
            }
        }
        Observation::Memory { run_id, rss } => memory(slot, policy, ctx, run_id, rss, out),
        obs @ Observation::Liveness { .. } => probes::liveness(slot, ctx, obs, out),
        obs @ Observation::Readiness { .. } => probes::readiness(slot, ctx, obs, out),
        Observation::Restart { why } => restart(slot, ctx, why, out),
        Observation::Start => {
            slot.parked = false;
            if slot.state() == State::Failed {
                slot.start_limit.reset();
                slot.backoff.reset();
                go(
                    slot,
                    out,
                    State::Initialization,
                    ctx.now,
                    "started by operator",
                );
            }
        }
        Observation::Readded => slot.parked = false,
    }
}

/// The run's main process exited: finish a stop, or decide what follows.
#[allow(clippy::too_many_arguments)]
fn exited(
    slot: &mut Slot,
    policy: &Policy,
    ctx: &Ctx,
    run_id: u64,
    info: ExitInfo,
    ran: Duration,
    tree_gone: bool,
    killed_after: Option<Duration>,
    out: &mut Vec<Effect>,
) {
    if slot.run.map(|r| r.id) != Some(run_id) {
        return;
    }
    slot.run = None;
    if !tree_gone {
        slot.tree_busy += 1;
    }
    slot.sigkill = killed_after;
    out.push(Effect::RunEnded);
    out.push(Effect::Release);
    if slot.state() == State::Decommissioning {
        // A restart or limit action overtaken by the stop is void:
        // left set, it would pass a later crash off as asked for
        // (no failure counted, no backoff, no start limit).
        slot.restart_requested = None;
        slot.limit_restart = false;
        slot.limit_stop = false;
        slot.last_exit = Some(info);
        if tree_gone {
            let reason = stopped_reason(slot, out, || {
                format!("{info} after {}", fmt_ms(info.ran_ms))
            });
            go(slot, out, State::Stopped, ctx.now, reason);
        }
        out.push(Effect::Persist);
        return;
    }
    let reason = format!("{info} after {}", fmt_ms(info.ran_ms));
    go(slot, out, State::TaskCompletion, ctx.now, reason);
    after_exit(slot, policy, ctx, info, ran, false, tree_gone, out);
}

/// An operator (or a reload) restarts the replica: a running one stops
/// and comes back without counting a failure; one in backoff or failed
/// starts again with its limits re-armed.
fn restart(slot: &mut Slot, ctx: &Ctx, why: &'static str, out: &mut Vec<Effect>) {
    slot.parked = false;
    match slot.state() {
        State::ActiveOperation | State::PerformanceMonitoring => {
            slot.restart_requested = Some(why);
            go(slot, out, State::Adaptation, ctx.now, why);
            if slot.run.is_some() {
                out.push(Effect::Stop);
            }
        }
        State::Backoff | State::Failed => {
            slot.start_limit.reset();
            slot.backoff.reset();
            go(slot, out, State::Initialization, ctx.now, why);
        }
        _ => {}
    }
}

/// Moves the replica as far as it can go now.
fn step(slot: &mut Slot, ctx: &Ctx, out: &mut Vec<Effect>) {
    let now = ctx.now;
    match (slot.state(), ctx.stop) {
        (State::Stopped, None) if !slot.parked && slot.tree_busy == 0 => {
            slot.error = None;
            go(slot, out, State::Initialization, now, "start");
            step(slot, ctx, out);
        }
        (
            State::Initialization | State::ResourceAllocation | State::Backoff | State::Failed,
            Some(cause),
        ) => {
            out.push(Effect::Release);
            slot.waiting = None;
            go(slot, out, State::Decommissioning, now, cause.to_string());
            go(slot, out, State::Stopped, now, "nothing to stop");
        }
        (State::Initialization, None) => {
            if ctx.deps_pending.is_empty() {
                slot.waiting = None;
                go(
                    slot,
                    out,
                    State::ResourceAllocation,
                    now,
                    "dependencies ready",
                );
                step(slot, ctx, out);
            } else {
                let list: Vec<String> = ctx.deps_pending.iter().map(|d| format!("`{d}`")).collect();
                slot.waiting = Some(format!("waiting for {} to be ready", list.join(", ")));
            }
        }
        (State::ResourceAllocation, None) => out.push(Effect::Admit),
        (
            State::ActiveOperation | State::PerformanceMonitoring | State::Adaptation,
            Some(cause),
        ) => {
            go(slot, out, State::Decommissioning, now, cause.to_string());
            if slot.run.is_some() {
                out.push(Effect::Stop);
            }
        }
        _ => {}
    }
}

/// What follows an exit (or a failed spawn): stop, restart now, back off,
/// or give up.
#[allow(clippy::too_many_arguments)]
fn after_exit(
    slot: &mut Slot,
    policy: &Policy,
    ctx: &Ctx,
    info: ExitInfo,
    ran: Duration,
    spawn_error: bool,
    tree_gone: bool,
    out: &mut Vec<Effect>,
) {
    let now = ctx.now;
    slot.last_exit = Some(info);
    let requested = slot.restart_requested.take();
    let limit_restart = std::mem::take(&mut slot.limit_restart);
    let limit_stop = std::mem::take(&mut slot.limit_stop);
    let finish_stop = |slot: &mut Slot, out: &mut Vec<Effect>, reason: String| {
        go(slot, out, State::Decommissioning, now, reason);
        if tree_gone {
            go(slot, out, State::Stopped, now, "process tree gone");
        }
    };
    if let Some(cause) = ctx.stop {
        finish_stop(slot, out, cause.to_string());
    } else if limit_stop {
        // A limit kill is a failure, whatever follows it.
        slot.failures += 1;
        slot.parked = true;
        finish_stop(slot, out, "memory limit exceeded (action: stop)".into());
    } else if let Some(why) = requested {
        slot.restarts += 1;
        slot.backoff.reset();
        go(slot, out, State::Adaptation, now, why);
        go(slot, out, State::Initialization, now, "restarting");
    } else {
        let failed_start = spawn_error || ran < policy.min_uptime;
        let failure = failed_start || limit_restart || !info.success();
        if failure {
            slot.failures += 1;
        }
        let restart = match policy.restart {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => failure,
            RestartPolicy::Never => false,
        };
        if !restart {
            slot.parked = true;
            finish_stop(
                slot,
                out,
                format!("{info}; restart = {}", policy.restart.name()),
            );
        } else if !slot.start_limit.allows(&policy.start_limit, now) {
            let why = format!(
                "start limit reached: {} starts within {}",
                policy.start_limit.burst,
                fmt_ms(policy.start_limit.interval.as_millis() as u64)
            );
            out.push(Effect::Warn(why.clone()));
            go(slot, out, State::Failed, now, why);
        } else {
            let mut delay = if failure {
                slot.backoff.on_exit(&policy.backoff, ran, ctx.jitter)
            } else {
                slot.backoff.reset();
                Duration::ZERO
            };
            if spawn_error {
                delay = delay.max(SPAWN_ERROR_MIN_DELAY);
            }
            slot.restarts += 1;
            let why = if failed_start && !spawn_error {
                format!("failed start (ran {} < min_uptime)", fmt_ms(info.ran_ms))
            } else if limit_restart {
                "memory limit exceeded (action: restart)".to_string()
            } else {
                format!("{info}; restart = {}", policy.restart.name())
            };
            go(slot, out, State::Adaptation, now, why);
            if delay.is_zero() {
                go(slot, out, State::Initialization, now, "restart now");
            } else {
                slot.timer_gen += 1;
                let why = format!(
                    "retry in {} (failure {})",
                    fmt_ms(delay.as_millis() as u64),
                    slot.backoff.failures()
                );
                slot.waiting = Some(why.clone());
                go(slot, out, State::Backoff, now, why);
                out.push(Effect::Backoff {
                    at: now + delay.as_millis() as u64,
                    generation: slot.timer_gen,
                });
            }
        }
    }
    out.push(Effect::Persist);
}

/// A memory sample against the limit: act past it, watch closely near it.
fn memory(
    slot: &mut Slot,
    policy: &Policy,
    ctx: &Ctx,
    run_id: u64,
    rss: u64,
    out: &mut Vec<Effect>,
) {
    let Some(limit) = policy.memory_limit else {
        return;
    };
    let state = slot.state();
    if slot.run.map(|r| r.id) != Some(run_id) || !state.is_running() {
        return;
    }
    let mib = |b: u64| b / (1024 * 1024);
    if rss > limit {
        let what = format!("memory {} MiB over limit {} MiB", mib(rss), mib(limit));
        out.push(Effect::Warn(what.clone()));
        match policy.limit_action {
            LimitAction::Restart | LimitAction::Stop => {
                let restart = policy.limit_action == LimitAction::Restart;
                slot.limit_restart |= restart;
                slot.limit_stop |= !restart;
                let doing = if restart { "restarting" } else { "stopping" };
                go(
                    slot,
                    out,
                    State::Adaptation,
                    ctx.now,
                    format!("{what}: {doing}"),
                );
                out.push(Effect::Stop);
            }
            LimitAction::Alert if state == State::ActiveOperation => {
                let why = format!("{what} (action: alert)");
                go(slot, out, State::PerformanceMonitoring, ctx.now, why);
            }
            LimitAction::Alert => {}
        }
    } else if rss * 10 >= limit * 9 {
        if state == State::ActiveOperation {
            let why = format!("memory at {}% of its limit", rss * 100 / limit);
            go(slot, out, State::PerformanceMonitoring, ctx.now, why);
        }
    } else if rss * 10 < limit * 8
        && state == State::PerformanceMonitoring
        && !slot.probe_failing
        && !slot.unready
    {
        let why = format!("memory back to {}% of its limit", rss * 100 / limit);
        go(slot, out, State::ActiveOperation, ctx.now, why);
    }
}

/// Why a replica is Stopped: a stop that escalated to SIGKILL says so
/// (and is reported for the audit trail); otherwise `plain`.
fn stopped_reason(
    slot: &mut Slot,
    out: &mut Vec<Effect>,
    plain: impl FnOnce() -> String,
) -> String {
    match slot.sigkill.take() {
        Some(after) => {
            let reason = format!(
                "killed with SIGKILL after {}: it did not stop within stop_timeout",
                fmt_ms(after.as_millis() as u64)
            );
            out.push(Effect::Killed(reason.clone()));
            reason
        }
        None => plain(),
    }
}

/// Applies a transition and reports it; an invalid one is a bug, refused.
fn go(slot: &mut Slot, out: &mut Vec<Effect>, to: State, now: Millis, reason: impl Into<String>) {
    match slot.lc.go(to, now, reason) {
        Ok(t) => out.push(Effect::Transition(t.clone())),
        Err(e) => out.push(Effect::Bug(e.to_string())),
    }
}
