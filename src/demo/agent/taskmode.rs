//! The demo roles as task agents (`protocol = "jsonrpc"` in the built-in
//! fleet): researchers and coders take their steps from the queue, and the
//! planner turns goals (its own, or ones an operator submits) into steps it
//! hands to them through the daemon (`task.submit`), then waits for each
//! step's `task.finished`.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::*;
use crate::demo::wire::{self, Inbound};

/// How long the planner waits for its steps.
const STEPS_WAIT: Duration = Duration::from_secs(300);
/// How long it waits for the daemon to acknowledge a step.
const SUBMIT_WAIT: Duration = Duration::from_secs(15);

impl Agent {
    /// Takes tasks until told to shut down (or stdin ends).
    pub(in crate::demo) fn take_tasks(&mut self) -> io::Result<i32> {
        let skill = match self.role {
            Role::Planner => "plan",
            Role::Researcher => "research",
            _ => "code",
        };
        self.say(
            Level::Info,
            "agent",
            format!("taking `{skill}` tasks over JSON-RPC"),
        )?;
        wire::notify("agent.ready", json!({ "skills": [skill] }))?;
        let mut idle_since = Instant::now();
        let mut next_goal = Duration::from_secs(self.rng.random_range(4..=10));
        let mut idle_rounds = 0u32;
        loop {
            match self.next_message(Duration::from_millis(2500)) {
                Some(Inbound::Run { req, id, input, .. }) => {
                    self.work(&req, &id, &input)?;
                    idle_since = Instant::now();
                }
                Some(Inbound::Shutdown) => {
                    self.say(Level::Info, "agent", "shutdown asked: leaving")?;
                    return Ok(0);
                }
                Some(_) => {}
                None if self.role == Role::Planner && idle_since.elapsed() >= next_goal => {
                    let goal = pick(&mut self.rng, GOALS).to_string();
                    self.plan(None, &goal)?;
                    idle_since = Instant::now();
                    next_goal = Duration::from_secs(self.rng.random_range(8..=20));
                }
                None => {
                    idle_rounds += 1;
                    if idle_rounds.is_multiple_of(4) {
                        self.say(
                            Level::Debug,
                            "agent",
                            format!("idle: waiting for a `{skill}` task"),
                        )?;
                    }
                }
            }
        }
    }

    /// A message set aside earlier, else the next one (or None after `d`).
    fn next_message(&mut self, d: Duration) -> Option<Inbound> {
        if let Some(m) = self.stash.pop_front() {
            return Some(m);
        }
        self.wire.as_ref()?.recv(d)
    }

    /// Runs one task and answers it (unless it was canceled meanwhile).
    fn work(&mut self, req: &Value, id: &str, input: &Value) -> io::Result<()> {
        let text = match input {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        self.current = Some(id.to_string());
        let outcome = match self.role {
            Role::Researcher => self
                .research(id, &text)?
                .map(|s| json!({ "summary": s }))
                .ok_or_else(|| "no source reachable; try again later".to_string()),
            Role::Planner => Ok(self.plan(Some(id), &text)?),
            _ => Ok(json!({ "change": self.code(id, &text)? })),
        };
        self.current = None;
        self.set_aside(Duration::ZERO, |_| false);
        if self.canceled.remove(id) {
            return self.say(
                Level::Warn,
                "agent",
                format!("{id} was canceled; its answer is dropped"),
            );
        }
        match outcome {
            Ok(v) => wire::answer(req, v),
            Err(e) => {
                self.say(Level::Warn, "agent", format!("{id} failed: {e}"))?;
                wire::fail(req, &e, true)
            }
        }
    }

    /// Reads messages for up to `d` until `want` takes one; cancels are
    /// noted, the rest kept for later. Returns the one taken.
    fn set_aside(
        &mut self,
        d: Duration,
        mut want: impl FnMut(&Inbound) -> bool,
    ) -> Option<Inbound> {
        // One set aside earlier may be the one wanted.
        if let Some(i) = self.stash.iter().position(&mut want) {
            return self.stash.remove(i);
        }
        let until = Instant::now() + d;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let m = self.wire.as_ref()?.recv(left)?;
            match m {
                Inbound::Cancel(id) => {
                    self.canceled.insert(id);
                }
                m if want(&m) => return Some(m),
                Inbound::Shutdown => {
                    // Nothing more will come: stop waiting.
                    self.stash.push_back(Inbound::Shutdown);
                    return None;
                }
                m => self.stash.push_back(m),
            }
            if Instant::now() >= until && d > Duration::ZERO {
                return None;
            }
        }
    }

    /// Plans a goal: decomposes it into steps for the researchers and
    /// coders, hands each to the queue in the goal's context, and waits for
    /// them all. `task`: the goal's own task (None for a goal of its own).
    fn plan(&mut self, task: Option<&str>, goal: &str) -> io::Result<Value> {
        let gid = task.map_or_else(|| task_id(&mut self.rng), str::to_owned);
        self.say(Level::Info, "plan", format!("goal {gid}: \"{goal}\""))?;
        self.memory_mib(8, 16)?;
        self.llm((900, 3200), (600, 1800), (150, 500))?;
        let n = self.rng.random_range(2..=4usize);
        self.say(
            Level::Info,
            "plan",
            format!("{gid} decomposed into {n} steps"),
        )?;
        let mut steps: Vec<(String, &str)> = Vec::new();
        for i in 1..=n {
            let skill = if i <= n.div_ceil(2) {
                "research"
            } else {
                "code"
            };
            let what = if skill == "research" {
                pick(&mut self.rng, RESEARCH_TOPICS)
            } else {
                pick(&mut self.rng, CODE_CHANGES)
            };
            // Research spreads over the researchers; the goal's code steps
            // share a context, so they stay with one coder (its checkout).
            let context = (skill == "code").then_some(gid.as_str());
            match self.hand_over(context, skill, what)? {
                Ok(sub) => {
                    self.say(
                        Level::Info,
                        "plan",
                        format!("step {gid}.{i} → {skill}: task {sub}"),
                    )?;
                    steps.push((sub, skill));
                }
                Err(e) => self.say(
                    Level::Warn,
                    "plan",
                    format!("step {gid}.{i} not handed over: {e}"),
                )?,
            }
        }
        let ended = self.wait_steps(&gid, &steps)?;
        let failed = ended.values().filter(|v| v["state"] != "completed").count();
        let level = if failed > 0 { Level::Warn } else { Level::Info };
        let line = format!(
            "{gid} done: {} of {} steps completed",
            ended.len() - failed,
            steps.len()
        );
        self.say(level, "plan", &line)?;
        self.finish_task(format!("{gid}: \"{goal}\" in {n} steps"));
        self.memory_mib(4, 8)?;
        self.maybe_write_notes()?;
        let steps: Vec<Value> = steps
            .iter()
            .map(|(id, skill)| {
                let end = ended.get(id);
                json!({ "task": id, "skill": skill,
                        "agent": end.map(|e| e["agent"].clone()),
                        "state": end.map_or(json!("unfinished"), |e| e["state"].clone()) })
            })
            .collect();
        Ok(json!({ "goal": goal, "steps": steps, "summary": line }))
    }

    /// `task.submit` of one step; its task id once the daemon has it.
    fn hand_over(
        &mut self,
        context: Option<&str>,
        skill: &str,
        what: &str,
    ) -> io::Result<Result<String, String>> {
        let Some(rid) = self.wire.as_mut().map(|w| w.next_id()) else {
            return Ok(Err("not a task agent".into()));
        };
        wire::send(
            &json!({ "jsonrpc": "2.0", "id": rid, "method": "task.submit",
            "params": { "skill": skill, "input": what, "context_id": context } }),
        )?;
        let answer = self.set_aside(
            SUBMIT_WAIT,
            |m| matches!(m, Inbound::Answer { id, .. } if *id == rid),
        );
        Ok(match answer {
            Some(Inbound::Answer { msg, .. }) => match msg["result"]["id"].as_str() {
                Some(id) => Ok(id.to_string()),
                None => Err(msg["error"]["message"]
                    .as_str()
                    .unwrap_or("refused")
                    .to_string()),
            },
            _ => Err("no answer from the daemon".into()),
        })
    }

    /// Waits for each step's `task.finished` (up to `STEPS_WAIT`),
    /// reporting progress on the goal's task.
    fn wait_steps(
        &mut self,
        gid: &str,
        steps: &[(String, &str)],
    ) -> io::Result<HashMap<String, Value>> {
        let mut ended: HashMap<String, Value> = HashMap::new();
        let until = Instant::now() + STEPS_WAIT;
        while ended.len() < steps.len() && Instant::now() < until {
            let ids: Vec<&String> = steps.iter().map(|s| &s.0).collect();
            let left = until.saturating_duration_since(Instant::now());
            let got = self.set_aside(
                left,
                |m| matches!(m, Inbound::Finished(p) if ids.iter().any(|i| p["id"] == ***i)),
            );
            let Some(Inbound::Finished(p)) = got else {
                break;
            };
            let id = p["id"].as_str().unwrap_or_default().to_string();
            let line = format!(
                "{gid}: task {id} {} by {}",
                p["state"].as_str().unwrap_or("?"),
                p["agent"].as_str().unwrap_or("?")
            );
            let level = if p["state"] == "completed" {
                Level::Info
            } else {
                Level::Warn
            };
            self.say(level, "plan", line)?;
            ended.insert(id, p);
            let fraction = ended.len() as f64 / steps.len().max(1) as f64;
            self.progress(
                fraction,
                &format!("{} of {} steps done", ended.len(), steps.len()),
            )?;
        }
        Ok(ended)
    }
}
