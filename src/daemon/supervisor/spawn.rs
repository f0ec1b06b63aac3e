//! Spawning a replica: its context dir, environment, process and the
//! tasks that drain its output and watch its tree.

use std::sync::atomic::Ordering;

use tokio::sync::mpsc;

use super::RUN_QUEUE;
use super::actor::{Actor, Msg};
use super::contexts::{self, MADE, PENDING, UNKNOWN};
use super::spawner::{self, Job};
use crate::core::lifecycle::Millis;
use crate::core::supervise::{Observation, RunRef};
use crate::daemon::launch::{self, SpawnSpec};
use crate::daemon::output;
use crate::daemon::process::{self, Marker};
use crate::proto::Stream;

impl Actor {
    /// Where a `workspace` agent's replica works: its own git worktree,
    /// or the repository itself. A worktree not there yet is created by
    /// git on a blocking thread (Err: the spawn waits for
    /// [`Actor::prepared`]).
    fn workdir(&mut self, ai: usize, index: u32) -> Result<Option<std::path::PathBuf>, ()> {
        let a = &self.agents[ai];
        let Some(w) = &a.spec.workspace else {
            return Ok(None);
        };
        if !w.worktree {
            return Ok(Some(w.git.clone()));
        }
        let dir = crate::daemon::workspace::path(&a.context_dir, index);
        if dir.join(".git").exists() {
            return Ok(Some(dir));
        }
        if self.preparing.insert((ai, index)) {
            let (repo, ctx, name) = (w.git.clone(), a.context_dir.clone(), a.spec.name.clone());
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let made = tokio::task::spawn_blocking(move || {
                    crate::daemon::workspace::ensure(&repo, &ctx, &name, index).map(|_| ())
                })
                .await
                .unwrap_or_else(|e| Err(format!("worktree: {e}")));
                let _ = tx.send(Msg::Prepared(ai, index, made)).await;
            });
        }
        Err(())
    }

    /// A worktree was created for replica `index` (or failed): it spawns
    /// now if it still waits to.
    pub(super) fn prepared(&mut self, ai: usize, index: u32, result: Result<(), String>) {
        self.preparing.remove(&(ai, index));
        let waiting = self
            .agents
            .get(ai)
            .and_then(|a| a.replicas.get(&index))
            .is_some_and(|r| r.s.state() == crate::core::lifecycle::State::ContextPreparation);
        if !waiting {
            return;
        }
        match result {
            Ok(()) => {
                let now = self.clock.now();
                self.spawn(ai, index, now);
            }
            Err(error) => {
                let obs = Observation::SpawnFailed {
                    error,
                    counted: true,
                };
                self.decide(ai, index, obs);
            }
        }
    }

    /// Makes the context dirs of the agents that will start and have
    /// none made or being made (a reload adds some), on a blocking thread,
    /// in fleet order, while the actor spawns (see [`contexts`]).
    pub(super) fn prepare_contexts(&self) {
        let todo: Vec<_> = self
            .agents
            .iter()
            // Agents that will start, in their context dir, and run
            // nothing yet (running ones have theirs).
            .filter(|a| {
                !a.removed
                    && a.enabled
                    && a.desired > 0
                    && a.spec.cwd.is_none()
                    && a.spec.workspace.is_none()
                    && a.replicas.values().all(|r| r.s.run.is_none())
            })
            .filter(|a| {
                a.context_made
                    .compare_exchange(UNKNOWN, PENDING, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            })
            .map(|a| (a.context_dir.clone(), a.context_made.clone()))
            .collect();
        if !todo.is_empty() {
            tokio::task::spawn_blocking(move || contexts::make(todo));
        }
    }

    /// Prepares the context and spawns the replica's process (after the
    /// pool admitted it).
    pub(super) fn spawn(&mut self, ai: usize, index: u32, _now: Millis) {
        let a = &self.agents[ai];
        let ctx = a.context_dir.clone();
        let ctx_str = ctx.to_string_lossy().into_owned();
        let made = match context_dir(a) {
            Ok(made) => made,
            Err(e) => {
                let error = format!("cannot create context dir {}: {e}", ctx.display());
                self.decide(
                    ai,
                    index,
                    Observation::SpawnFailed {
                        error,
                        counted: false,
                    },
                );
                return;
            }
        };
        let Ok(workdir) = self.workdir(ai, index) else {
            return;
        };
        let a = &self.agents[ai];
        // Unique per spawn: tells this run's processes from the next run's.
        let run_id = self.next_run_id;
        self.next_run_id += 1;
        let spec = SpawnSpec {
            argv: a.spec.command.clone(),
            cwd: workdir
                .or_else(|| a.spec.cwd.clone())
                .unwrap_or_else(|| ctx.clone()),
            env: self.environment(ai, index, &ctx_str, run_id),
            // A task agent speaks JSON-RPC on stdin and stdout.
            stdin: self.tasks.is_some() && a.spec.tasks.is_some(),
            tty: a.spec.tty,
        };
        let Some(r) = self.agents[ai].replicas.get_mut(&index) else {
            return;
        };
        r.spawning = Some(run_id);
        let job = Job {
            ai,
            index,
            run_id,
            spec,
            ctx,
            made_ahead: made,
        };
        // The first spawn of a pass and a terminal's are done here; the
        // rest go to the spawner (see there).
        self.pass_spawns += 1;
        let job = match &self.spawner {
            Some(s) if self.pass_spawns > 1 && job.spec.tty.is_none() => match s.send(job) {
                Ok(()) => return,
                Err(job) => {
                    self.spawner = None;
                    *job
                }
            },
            _ => job,
        };
        // On the pipes made ahead (a terminal agent leaves them for the
        // next; a retry makes new ones).
        let spare = std::cell::Cell::new(match job.spec.tty {
            None => self.spare_pipes.take(),
            Some(_) => None,
        });
        let result = spawner::spawn(&job, |spec, leaders| {
            launch::spawn_on(spec, leaders, spare.take())
        });
        self.spawned(job, result);
    }

    /// A spawn is done (here or on the spawner): the replica runs, with
    /// the tasks that drain its output and watch its tree, or the spawn
    /// failed.
    pub(super) fn spawned(&mut self, job: Job, result: Result<launch::Spawned, String>) {
        let Job {
            ai,
            index,
            run_id,
            spec,
            ctx,
            ..
        } = job;
        let awaited = self
            .agents
            .get_mut(ai)
            .and_then(|a| a.replicas.get_mut(&index))
            .filter(|r| r.spawning == Some(run_id))
            .map(|r| {
                r.spawning = None;
                r.restart_after_spawn.take()
            });
        let Some(restart) = awaited else {
            // Nothing waits for this run (cannot happen: a replica leaves
            // ContextPreparation only with its spawn's result).
            tracing::error!(
                agent = ai,
                replica = index,
                run_id,
                "bug: a spawn nobody waited for"
            );
            if let Ok(s) = result {
                launch::abandon(s);
            }
            return;
        };
        let spawned = match result {
            Ok(s) => s,
            Err(error) => {
                self.decide(
                    ai,
                    index,
                    Observation::SpawnFailed {
                        error,
                        counted: true,
                    },
                );
                return;
            }
        };
        context_there(&self.agents[ai], &spec.cwd, &ctx);
        let now = self.clock.now();
        let a = &self.agents[ai];
        let tasks = self.tasks.clone().filter(|_| spec.stdin);
        let probed = a.spec.health.as_ref();
        let gated = probed.is_some_and(|h| h.readiness.is_some());
        let probe_env = probed.map(|_| (spec.env, spec.cwd));
        let (stop_signal, stop_timeout) = (a.spec.stop_signal, a.spec.stop_timeout);
        let output = a.output.clone();
        let (cmd_tx, cmd_rx) = mpsc::channel(RUN_QUEUE);
        let Some(r) = self.agents[ai].replicas.get_mut(&index) else {
            return;
        };
        r.cmds = Some(cmd_tx.clone());
        r.cpu_percent = 0.0;
        r.rss_bytes = 0;
        r.processes = 1;
        r.term = spawned.term.clone().map(|t| (run_id, t));
        let ring = r.ring.clone();
        let name = self.agents[ai].spec.name.clone();
        let pipes = (spawned.stdout, spawned.stderr, spawned.stdin);
        drain_output(pipes, tasks, (name, index, run_id, gated), output, ring);
        if let Some(env) = probe_env {
            // Probes while this run's command channel is open.
            self.start_probes(ai, index, run_id, env, &cmd_tx);
        }
        let tx = self.tx.clone();
        let marker = Marker {
            context_dir: ctx.to_string_lossy().into_owned(),
            replica: index.to_string(),
            run: run_id.to_string(),
        };
        tokio::spawn(process::run(
            spawned.pid,
            spawned.pidfd,
            (spawned.started, spawned.born),
            marker,
            stop_signal,
            stop_timeout,
            process::leaders(),
            cmd_rx,
            move |ev| {
                // Unbounded wait is impossible here (sync callback): the inbox
                // is large, and a full inbox must not lose an exit, so fall
                // back to a task that waits for room.
                let msg = Msg::Run {
                    agent: ai,
                    index,
                    run_id,
                    ev,
                };
                if let Err(mpsc::error::TrySendError::Full(msg)) = tx.try_send(msg) {
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let _ = tx.send(msg).await;
                    });
                }
            },
        ));
        let run = RunRef {
            id: run_id,
            pid: spawned.pid,
            started_at: now,
        };
        self.decide(ai, index, Observation::Spawned(run));
        if let Some(why) = restart {
            self.decide(ai, index, Observation::Restart { why });
        }
    }

    /// The replica's environment: inherited names, the agent's own, and
    /// what Autonomos tells every replica.
    fn environment(&self, ai: usize, index: u32, ctx: &str, run_id: u64) -> Vec<(String, String)> {
        let spec = &self.agents[ai].spec;
        let mut env: Vec<(String, String)> = Vec::new();
        for k in &spec.inherit_env {
            if let Some((_, v)) = self.daemon_env.iter().find(|(dk, _)| dk == k) {
                env.push((k.clone(), v.clone()));
            }
        }
        for (k, v) in &spec.env {
            env.retain(|(ek, _)| ek != k);
            env.push((k.clone(), v.clone()));
        }
        env.push(("AUTONOMOS_AGENT".into(), spec.name.clone()));
        env.push(("AUTONOMOS_REPLICA".into(), index.to_string()));
        env.push(("AUTONOMOS_CONTEXT_DIR".into(), ctx.to_string()));
        env.push(("AUTONOMOS_RUN".into(), run_id.to_string()));
        if spec.tasks.is_some() {
            // An agent that can run either way learns it takes tasks.
            env.push(("AUTONOMOS_PROTOCOL".into(), "jsonrpc".into()));
        }
        if spec.tty.is_some() && !env.iter().any(|(k, _)| k == "TERM") {
            // What the daemon's emulator understands.
            env.push(("TERM".into(), "xterm-256color".into()));
        }
        env
    }
}

/// Makes sure the agent's context dir is there, unless it was made ahead
/// for this spawn (then true: no need to look again; any later spawn
/// looks).
fn context_dir(a: &super::actor::Agent) -> std::io::Result<bool> {
    if a.context_made.swap(UNKNOWN, Ordering::AcqRel) == MADE {
        return Ok(true);
    }
    std::fs::create_dir_all(&a.context_dir).map(|()| false)
}

/// After a spawn that runs in the agent's context dir (`cwd`): the dir is
/// there for the next spawn too, which skips the `mkdir` (see `contexts`).
fn context_there(a: &super::actor::Agent, cwd: &std::path::Path, ctx: &std::path::Path) {
    if cwd == ctx {
        let _ = a
            .context_made
            .compare_exchange(UNKNOWN, MADE, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// Reads a replica's stdout and stderr into its log; a task agent's stdout
/// carries JSON-RPC to the task engine, which is told the replica is up
/// (with its stdin) and, when its stdout ends, down.
fn drain_output(
    (stdout, stderr, stdin): (
        crate::daemon::tty::Output,
        Option<tokio::net::unix::pipe::Receiver>,
        Option<tokio::net::unix::pipe::Sender>,
    ),
    tasks: Option<crate::daemon::tasks::Tasks>,
    (name, index, run_id, gated): (String, u32, u64, bool),
    output: std::sync::Arc<output::AgentOutput>,
    ring: std::sync::Arc<std::sync::Mutex<output::Ring>>,
) {
    use crate::daemon::tasks::{Msg, ReplicaLink, rpc_filter};
    let filter = tasks.as_ref().map(|t| rpc_filter(t, &name, index, run_id));
    let out = output::drain(
        stdout,
        Stream::Stdout,
        index,
        output.clone(),
        ring.clone(),
        filter,
    );
    match (tasks, stdin) {
        (Some(t), Some(stdin)) => {
            // The engine routes to it from now; its stdout's end is its end.
            t.send(Msg::Up(ReplicaLink::open(
                &name, index, run_id, gated, stdin,
            )));
            tokio::spawn(async move {
                out.await;
                let (agent, run) = (name, run_id);
                t.send(Msg::Down { agent, index, run });
            });
        }
        _ => drop(tokio::spawn(out)),
    }
    if let Some(stderr) = stderr {
        tokio::spawn(output::drain(
            stderr,
            Stream::Stderr,
            index,
            output,
            ring,
            None,
        ));
    }
}
