//! Decisions one by one, then random observation sequences against a
//! model of the world (processes, timers, the pool).

use super::*;
use proptest::prelude::*;

fn policy() -> Policy {
    Policy {
        restart: RestartPolicy::Always,
        backoff: BackoffSpec {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
            multiplier: 2.0,
            jitter: 0.0,
            reset_after: Duration::from_secs(60),
        },
        min_uptime: Duration::from_millis(500),
        start_limit: StartLimitSpec {
            burst: 3,
            interval: Duration::from_secs(10),
        },
        memory_limit: None,
        limit_action: LimitAction::Restart,
    }
}

fn ctx(now: Millis) -> Ctx {
    Ctx {
        now,
        ..Ctx::default()
    }
}

fn run(s: &mut Slot, p: &Policy, c: &Ctx, obs: Observation) -> Vec<Effect> {
    let mut out = Vec::new();
    decide(s, p, c, obs, &mut out);
    assert!(
        !out.iter().any(|e| matches!(e, Effect::Bug(_))),
        "invalid transition: {out:?}"
    );
    out
}

fn reasons(out: &[Effect]) -> Vec<(State, String)> {
    out.iter()
        .filter_map(|e| match e {
            Effect::Transition(t) => Some((t.to, t.reason.clone())),
            _ => None,
        })
        .collect()
}

/// Steps a new slot up to a live run with id 1 started at `now`.
fn running(p: &Policy, now: Millis) -> Slot {
    let mut s = Slot::new(0, now);
    let c = ctx(now);
    assert_eq!(
        run(&mut s, p, &c, Observation::Step),
        vec![
            Effect::Transition(s.lc.history()[0].clone()),
            Effect::Transition(s.lc.history()[1].clone()),
            Effect::Admit
        ]
    );
    assert_eq!(
        run(&mut s, p, &c, Observation::Admitted).last(),
        Some(&Effect::Spawn)
    );
    let rr = RunRef {
        id: 1,
        pid: 100,
        started_at: now,
    };
    run(&mut s, p, &c, Observation::Spawned(rr));
    assert_eq!(s.state(), State::ActiveOperation);
    s
}

fn exit(run_id: u64, code: i32, ran_ms: u64) -> Observation {
    Observation::Run {
        run_id,
        event: RunEvent::Exited {
            code: Some(code),
            signal: None,
            ran: Duration::from_millis(ran_ms),
            tree_gone: true,
            killed_after: None,
        },
    }
}

/// Leftovers of an earlier run are gone (whichever run: they are counted).
fn tree_gone() -> Observation {
    Observation::Run {
        run_id: 0,
        event: RunEvent::TreeGone { killed_after: None },
    }
}

#[test]
fn waits_for_dependencies_then_asks_the_pool() {
    let p = policy();
    let mut s = Slot::new(0, 0);
    let mut c = ctx(0);
    c.deps_pending = vec!["db".into()];
    run(&mut s, &p, &c, Observation::Step);
    assert_eq!(s.state(), State::Initialization);
    assert_eq!(s.waiting.as_deref(), Some("waiting for `db` to be ready"));
    c.deps_pending.clear();
    let out = run(&mut s, &p, &c, Observation::Step);
    assert_eq!(out.last(), Some(&Effect::Admit));
    run(&mut s, &p, &c, Observation::PoolWait("no room".into()));
    assert_eq!(s.waiting.as_deref(), Some("no room"));
}

#[test]
fn a_crash_backs_off_with_a_timer_and_counts_a_failure() {
    let p = policy();
    let mut s = running(&p, 0);
    let out = run(&mut s, &p, &ctx(5_000), exit(1, 3, 5_000));
    assert_eq!(s.state(), State::Backoff);
    assert_eq!((s.restarts, s.failures), (1, 1));
    assert!(out.contains(&Effect::Backoff {
        at: 5_100,
        generation: 1
    }));
    assert!(out.contains(&Effect::Persist) && out.contains(&Effect::Release));
    let r = reasons(&out);
    assert_eq!(r[0], (State::TaskCompletion, "exit 3 after 5s".into()));
    assert_eq!(r[1], (State::Adaptation, "exit 3; restart = always".into()));
    // A stale timer does nothing; the current one starts it again.
    run(
        &mut s,
        &p,
        &ctx(5_100),
        Observation::BackoffElapsed { generation: 0 },
    );
    assert_eq!(s.state(), State::Backoff);
    run(
        &mut s,
        &p,
        &ctx(5_100),
        Observation::BackoffElapsed { generation: 1 },
    );
    assert_eq!(s.state(), State::Initialization);
}

#[test]
fn a_short_run_is_a_failed_start_and_the_start_limit_fails_the_replica() {
    let p = policy();
    let mut s = running(&p, 0);
    let out = run(&mut s, &p, &ctx(100), exit(1, 0, 100));
    assert_eq!(
        reasons(&out)[1].1,
        "failed start (ran 100ms < min_uptime)".to_string()
    );
    for id in 2..=3 {
        let generation = s.timer_gen;
        run(
            &mut s,
            &p,
            &ctx(1_000),
            Observation::BackoffElapsed { generation },
        );
        run(&mut s, &p, &ctx(1_000), Observation::Step);
        run(&mut s, &p, &ctx(1_000), Observation::Admitted);
        let rr = RunRef {
            id,
            pid: 100 + id as i32,
            started_at: 1_000,
        };
        run(&mut s, &p, &ctx(1_000), Observation::Spawned(rr));
        run(&mut s, &p, &ctx(1_010), exit(id, 1, 10));
    }
    assert_eq!(s.state(), State::Failed);
    assert!(
        s.lc.history()
            .back()
            .is_some_and(|t| t.reason.starts_with("start limit reached: 3 starts"))
    );
    // An operator start re-arms it.
    run(&mut s, &p, &ctx(2_000), Observation::Start);
    assert_eq!(s.state(), State::Initialization);
}

#[test]
fn an_operator_restart_is_not_a_failure_and_skips_backoff() {
    let p = policy();
    let mut s = running(&p, 0);
    let out = run(
        &mut s,
        &p,
        &ctx(9_000),
        Observation::Restart {
            why: OPERATOR_RESTART,
        },
    );
    assert!(out.contains(&Effect::Stop));
    run(&mut s, &p, &ctx(9_100), exit(1, 143, 9_100));
    assert_eq!(s.state(), State::Initialization);
    assert_eq!((s.restarts, s.failures), (1, 0));
}

/// Found by the random sequences: a restart asked for, then overtaken by
/// a stop, made the next crash after a start look like an operator
/// restart (no failure, no backoff, no start limit).
#[test]
fn a_restart_overtaken_by_a_stop_does_not_outlive_it() {
    let p = policy();
    let mut s = running(&p, 0);
    run(
        &mut s,
        &p,
        &ctx(10),
        Observation::Restart {
            why: OPERATOR_RESTART,
        },
    );
    let mut stopping = ctx(20);
    stopping.stop = Some(StopCause::Disabled);
    run(&mut s, &p, &stopping, Observation::Step);
    run(&mut s, &p, &stopping, exit(1, 143, 20));
    assert_eq!(s.state(), State::Stopped);
    assert_eq!(s.restart_requested, None);
    run(&mut s, &p, &ctx(30), Observation::Step);
    run(&mut s, &p, &ctx(30), Observation::Admitted);
    let rr = RunRef {
        id: 2,
        pid: 101,
        started_at: 30,
    };
    run(&mut s, &p, &ctx(30), Observation::Spawned(rr));
    run(&mut s, &p, &ctx(5_000), exit(2, 1, 4_970));
    assert_eq!(
        s.state(),
        State::Backoff,
        "a crash, not a requested restart"
    );
    assert_eq!(s.failures, 1);
}

#[test]
fn restart_on_failure_parks_after_a_clean_exit() {
    let mut p = policy();
    p.restart = RestartPolicy::OnFailure;
    let mut s = running(&p, 0);
    run(&mut s, &p, &ctx(5_000), exit(1, 0, 5_000));
    assert_eq!(s.state(), State::Stopped);
    assert!(s.parked && !s.can_move(true));
    run(&mut s, &p, &ctx(6_000), Observation::Start);
    assert!(s.can_move(true));
}

#[test]
fn memory_limit_actions() {
    let mut p = policy();
    p.memory_limit = Some(100 << 20);
    p.limit_action = LimitAction::Alert;
    let mut s = running(&p, 0);
    run(
        &mut s,
        &p,
        &ctx(1),
        Observation::Memory {
            run_id: 1,
            rss: 95 << 20,
        },
    );
    assert_eq!(s.state(), State::PerformanceMonitoring);
    run(
        &mut s,
        &p,
        &ctx(2),
        Observation::Memory {
            run_id: 1,
            rss: 50 << 20,
        },
    );
    assert_eq!(s.state(), State::ActiveOperation);
    // A sample of an older run changes nothing.
    run(
        &mut s,
        &p,
        &ctx(3),
        Observation::Memory {
            run_id: 9,
            rss: 500 << 20,
        },
    );
    assert_eq!(s.state(), State::ActiveOperation);

    p.limit_action = LimitAction::Stop;
    let out = run(
        &mut s,
        &p,
        &ctx(4),
        Observation::Memory {
            run_id: 1,
            rss: 200 << 20,
        },
    );
    assert!(out.contains(&Effect::Stop));
    run(&mut s, &p, &ctx(5_000), exit(1, 137, 5_000));
    assert_eq!(s.state(), State::Stopped);
    assert!(s.parked);
    assert_eq!(s.failures, 1);
}

#[test]
fn a_stop_that_escalated_names_sigkill_once_the_tree_is_gone() {
    let p = policy();
    let mut s = running(&p, 0);
    let mut c = ctx(1_000);
    c.stop = Some(StopCause::Disabled);
    let out = run(&mut s, &p, &c, Observation::Step);
    assert_eq!(
        reasons(&out),
        vec![(State::Decommissioning, "agent stopped by operator".into())]
    );
    assert!(out.contains(&Effect::Stop));
    let out = run(
        &mut s,
        &p,
        &c,
        Observation::Run {
            run_id: 1,
            event: RunEvent::Exited {
                code: None,
                signal: Some(9),
                ran: Duration::from_secs(1),
                tree_gone: false,
                killed_after: Some(Duration::from_secs(5)),
            },
        },
    );
    assert_eq!(s.state(), State::Decommissioning);
    assert!(out.contains(&Effect::Persist));
    let out = run(&mut s, &p, &c, tree_gone());
    assert_eq!(s.state(), State::Stopped);
    assert!(matches!(&out[0], Effect::Killed(r) if r.contains("SIGKILL after 5s")));
    assert!(s.at_rest());
}

#[test]
fn a_spawn_error_retries_no_sooner_than_the_minimum() {
    let mut p = policy();
    p.backoff.initial = Duration::from_millis(10);
    let mut s = Slot::new(0, 0);
    run(&mut s, &p, &ctx(0), Observation::Step);
    run(&mut s, &p, &ctx(0), Observation::Admitted);
    let out = run(
        &mut s,
        &p,
        &ctx(0),
        Observation::SpawnFailed {
            error: "ENOENT".into(),
            counted: true,
        },
    );
    assert!(out.contains(&Effect::Backoff {
        at: 250,
        generation: 1
    }));
    assert_eq!(s.error.as_deref(), Some("ENOENT"));
}

// ---- random sequences against a model of the world ----

#[derive(Debug, Clone)]
enum Act {
    Step,
    Advance(u64),
    Want(Option<StopCause>),
    Exit { code: i32, tree_gone: bool },
    TreeGone,
    Memory(u64),
    Restart,
    Start,
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        4 => Just(Act::Step),
        3 => (1u64..3_000).prop_map(Act::Advance),
        1 => prop_oneof![
            Just(None),
            Just(Some(StopCause::Disabled)),
            Just(Some(StopCause::ScaledDown(0))),
        ].prop_map(Act::Want),
        3 => (0i32..3, any::<bool>()).prop_map(|(code, tree_gone)| Act::Exit { code, tree_gone }),
        1 => Just(Act::TreeGone),
        1 => (0u64..300).prop_map(|m| Act::Memory(m << 20)),
        1 => Just(Act::Restart),
        1 => Just(Act::Start),
    ]
}

fn any_policy() -> impl Strategy<Value = Policy> {
    (
        0usize..3,
        1u32..5,
        0u64..2_000,
        0u64..1_000,
        proptest::option::of(50u64..250),
        0usize..3,
    )
        .prop_map(|(restart, burst, initial, min_uptime, limit, action)| {
            let mut p = policy();
            p.restart = [
                RestartPolicy::Always,
                RestartPolicy::OnFailure,
                RestartPolicy::Never,
            ][restart];
            p.start_limit.burst = burst;
            p.backoff.initial = Duration::from_millis(initial);
            p.min_uptime = Duration::from_millis(min_uptime);
            p.memory_limit = limit.map(|m| m << 20);
            p.limit_action = [LimitAction::Restart, LimitAction::Stop, LimitAction::Alert][action];
            p
        })
}

/// The world around one slot: its processes, the pool, timers.
struct World {
    slot: Slot,
    policy: Policy,
    ctx: Ctx,
    /// The live main process: (run id, pid).
    live: Option<u64>,
    /// Leftover trees still being stopped.
    leftovers: u32,
    next_run: u64,
    timers: Vec<(Millis, u64)>,
    /// Spawn times since the start limit was last re-armed.
    spawns: Vec<Millis>,
    /// Whether the stop signal went to the live process.
    stop_sent: bool,
    admit: bool,
}

impl World {
    fn new(policy: Policy) -> Self {
        Self {
            slot: Slot::new(0, 0),
            policy,
            ctx: ctx(1),
            live: None,
            leftovers: 0,
            next_run: 1,
            timers: Vec::new(),
            spawns: Vec::new(),
            stop_sent: false,
            admit: true,
        }
    }

    fn feed(&mut self, obs: Observation) {
        let mut out = Vec::new();
        self.ctx.jitter = 0.5;
        decide(&mut self.slot, &self.policy, &self.ctx, obs, &mut out);
        for e in out {
            match e {
                Effect::Bug(b) => panic!("invalid transition: {b}"),
                Effect::Admit => {
                    self.admit = !self.admit;
                    let obs = if self.admit {
                        Observation::Admitted
                    } else {
                        Observation::PoolWait("full".into())
                    };
                    self.feed(obs);
                }
                Effect::Spawn => {
                    assert!(self.live.is_none(), "a second live process for one replica");
                    let id = self.next_run;
                    self.next_run += 1;
                    if id.is_multiple_of(5) {
                        self.feed(Observation::SpawnFailed {
                            error: "boom".into(),
                            counted: true,
                        });
                    } else {
                        self.live = Some(id);
                        self.stop_sent = false;
                        self.spawns.push(self.ctx.now);
                        self.feed(Observation::Spawned(RunRef {
                            id,
                            pid: id as i32,
                            started_at: self.ctx.now,
                        }));
                    }
                }
                Effect::Stop => {
                    assert!(self.live.is_some(), "stop sent with no live process");
                    self.stop_sent = true;
                }
                Effect::Backoff { at, generation } => self.timers.push((at, generation)),
                _ => {}
            }
        }
    }

    fn apply(&mut self, a: Act) {
        match a {
            Act::Step => self.feed(Observation::Step),
            Act::Advance(ms) => {
                self.ctx.now += ms;
                let now = self.ctx.now;
                let due: Vec<u64> = self
                    .timers
                    .iter()
                    .filter(|t| t.0 <= now)
                    .map(|t| t.1)
                    .collect();
                self.timers.retain(|t| t.0 > now);
                for generation in due {
                    self.feed(Observation::BackoffElapsed { generation });
                }
            }
            Act::Want(w) => {
                // Starting again is an operator's intent, not a restart:
                // the start limit counts from here.
                if self.ctx.stop.is_some() && w.is_none() {
                    self.spawns.clear();
                }
                self.ctx.stop = w;
            }
            Act::Exit { code, tree_gone } => {
                if let Some(id) = self.live.take() {
                    let started = self.slot.run.map_or(self.ctx.now, |r| r.started_at);
                    if !tree_gone {
                        self.leftovers += 1;
                    }
                    self.feed(Observation::Run {
                        run_id: id,
                        event: RunEvent::Exited {
                            code: Some(code),
                            signal: None,
                            ran: Duration::from_millis(self.ctx.now - started),
                            tree_gone,
                            killed_after: None,
                        },
                    });
                }
            }
            Act::TreeGone => {
                if self.leftovers > 0 {
                    self.leftovers -= 1;
                    self.feed(tree_gone());
                }
            }
            Act::Memory(rss) => {
                if let Some(run_id) = self.live {
                    self.feed(Observation::Memory { run_id, rss });
                }
            }
            Act::Restart => {
                self.spawns.clear();
                self.feed(Observation::Restart {
                    why: OPERATOR_RESTART,
                });
            }
            Act::Start => {
                self.spawns.clear();
                self.feed(Observation::Start);
            }
        }
        self.check();
    }

    fn check(&self) {
        let s = &self.slot;
        assert_eq!(
            s.run.map(|r| r.id),
            self.live,
            "the slot's run is the live process"
        );
        assert_eq!(s.tree_busy, self.leftovers, "leftover trees are counted");
        if s.run.is_some() {
            assert!(
                s.state().may_have_process(),
                "{:?} with a live process",
                s.state()
            );
        }
        let window = self.policy.start_limit.interval.as_millis() as u64;
        let recent = self
            .spawns
            .iter()
            .filter(|t| self.ctx.now.saturating_sub(**t) < window)
            .count();
        assert!(
            recent <= self.policy.start_limit.burst as usize,
            "{recent} starts within the start limit's interval (burst {})",
            self.policy.start_limit.burst
        );
    }

    /// Stops the replica as the actor would: step, let processes exit,
    /// let timers fire. Must end at rest.
    fn stop_all(&mut self) {
        self.ctx.stop = Some(StopCause::Shutdown);
        for _ in 0..20 {
            self.apply(Act::Step);
            if self.stop_sent || self.live.is_some() {
                self.apply(Act::Exit {
                    code: 0,
                    tree_gone: false,
                });
            }
            self.apply(Act::TreeGone);
            self.apply(Act::Advance(1_000));
            if self.slot.at_rest() && self.slot.state() == State::Stopped {
                return;
            }
        }
        panic!("never reached Stopped: {:?}", self.slot);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn random_sequences_keep_the_invariants(p in any_policy(), acts in prop::collection::vec(act(), 1..80)) {
        let mut w = World::new(p);
        for a in acts {
            w.apply(a);
        }
        w.stop_all();
    }
}

#[test]
fn probes_move_a_running_replica_and_both_must_pass_to_return() {
    let p = policy();
    let mut s = running(&p, 0);
    let c = ctx(1000);
    let live = |failing| Observation::Liveness {
        run_id: 1,
        failing,
        threshold: 3,
        reason: "no answer".into(),
    };
    let ready = |ok| Observation::Readiness {
        run_id: 1,
        ready: ok,
        reason: "not yet".into(),
    };
    let out = run(&mut s, &p, &c, ready(false));
    assert_eq!(s.state(), State::PerformanceMonitoring);
    assert!(
        reasons(&out)[0]
            .1
            .contains("readiness probe failing: not yet")
    );
    run(&mut s, &p, &c, live(1));
    // Liveness passes again, readiness still fails: it stays.
    assert!(run(&mut s, &p, &c, live(0)).is_empty());
    assert_eq!(s.state(), State::PerformanceMonitoring);
    let out = run(&mut s, &p, &c, ready(true));
    assert_eq!(reasons(&out)[0].0, State::ActiveOperation);
    // A stale run's result changes nothing.
    let stale = Observation::Readiness {
        run_id: 0,
        ready: false,
        reason: String::new(),
    };
    assert!(run(&mut s, &p, &c, stale).is_empty());
    // The threshold restarts, as a failure.
    let out = run(&mut s, &p, &c, live(3));
    assert!(out.contains(&Effect::Stop), "{out:?}");
    assert!(s.limit_restart);
}
