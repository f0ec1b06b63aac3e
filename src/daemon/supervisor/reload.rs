//! Applying a reloaded config: new agents start, removed ones are
//! decommissioned, changed ones restart with the new spec.

use std::sync::atomic::Ordering;

use super::actor::Actor;
use super::contexts;
use super::err;
use crate::config::{AgentSpec, Config};
use crate::core::supervise::{Observation, RELOAD_RESTART};
use crate::daemon::store::Loaded;
use crate::proto::{ErrorKind, ErrorReply, Response, ServerEvent};

/// What a reload did, by agent name.
#[derive(Default)]
struct Diff {
    added: Vec<String>,
    removed: Vec<String>,
    changed: Vec<String>,
    same: usize,
}

impl Actor {
    pub(super) fn apply_config(
        &mut self,
        cfg: Config,
        hook: super::ReloadHook,
    ) -> Result<Response, ErrorReply> {
        let mut diff = Diff::default();
        for a in self.agents.iter_mut() {
            if !a.removed && cfg.agent(&a.spec.name).is_none() {
                diff.removed.push(a.spec.name.clone());
                a.removed = true;
            }
        }
        for spec in &cfg.agents {
            match self.find(&spec.name) {
                Ok(ai) if self.agents[ai].spec == *spec => diff.same += 1,
                Ok(ai) => {
                    diff.changed.push(spec.name.clone());
                    self.change_spec(ai, spec);
                }
                Err(_) => {
                    diff.added.push(spec.name.clone());
                    self.add_agent(spec)?;
                }
            }
        }
        self.pool.set_spec(cfg.pool);
        self.observe.reconfigure(&cfg);
        let backup_changed = hook(&cfg);
        if let Some(t) = &self.tasks {
            t.send(crate::daemon::tasks::Msg::Reconfigure(Box::new(
                cfg.clone(),
            )));
        }
        let old_tasks = std::mem::replace(&mut self.cfg, cfg).tasks;
        self.events.emit(ServerEvent::FleetChanged);
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        let mut message = format!(
            "reloaded: added {}; removed {}; changed {}; {} unchanged",
            list(&diff.added),
            list(&diff.removed),
            list(&diff.changed),
            diff.same
        );
        if backup_changed {
            message.push_str("; [backup] changed");
        }
        let t = (&old_tasks.store, &old_tasks.host);
        if t != (&self.cfg.tasks.store, &self.cfg.tasks.host) {
            // The queue's connection is made at start.
            message.push_str(
                "; [tasks] store and host take effect when the daemon restarts (the running queue is unchanged)",
            );
        }
        tracing::info!(%message, "reload");
        Ok(Response::Done { message })
    }

    /// A changed agent: its running replicas are stopped the way the old
    /// spec says, and come back with the new one. A change of `replicas`
    /// alone is a scale: nothing restarts.
    fn change_spec(&mut self, ai: usize, spec: &AgentSpec) {
        let only_count = AgentSpec {
            replicas: spec.replicas,
            ..self.agents[ai].spec.clone()
        } == *spec;
        if !only_count {
            let indexes: Vec<u32> = self.agents[ai].replicas.keys().copied().collect();
            for index in indexes {
                let why = RELOAD_RESTART;
                self.decide(ai, index, Observation::Restart { why });
            }
        }
        let a = &mut self.agents[ai];
        if a.spec.replicas != spec.replicas {
            a.desired = spec.replicas;
        }
        a.spec = spec.clone();
        // A dir made ahead for the old spec is looked at again.
        a.context_made.store(contexts::UNKNOWN, Ordering::Release);
        self.resave(ai);
    }

    /// A new agent, or one re-added while (or after) being removed: the old
    /// slot comes back, so one name never has two agents.
    fn add_agent(&mut self, spec: &AgentSpec) -> Result<(), ErrorReply> {
        if let Some(ai) = self
            .agents
            .iter()
            .rposition(|a| a.removed && a.spec.name == spec.name)
        {
            let a = &mut self.agents[ai];
            a.removed = false;
            a.desired = spec.replicas;
            a.enabled = true;
            a.spec = spec.clone();
            a.context_made.store(contexts::UNKNOWN, Ordering::Release);
            let indexes: Vec<u32> = a.replicas.keys().copied().collect();
            for index in indexes {
                self.decide(ai, index, Observation::Readded);
            }
            self.resave(ai);
            return Ok(());
        }
        let now = self.clock.now();
        let agent = self
            .new_agent(spec.clone(), &Loaded::default(), now, None)
            .map_err(|e| {
                err(
                    ErrorKind::Invalid,
                    format!("cannot add `{}`: {e}", spec.name),
                )
            })?;
        self.agents.push(agent);
        Ok(())
    }
}
