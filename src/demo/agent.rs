//! One demo agent's main loop, by role.

use super::*;

mod taskmode;

/// How many entries the notes file lists.
pub(super) const RECENT_CAP: usize = 8;

/// Least time between two notes writes.
pub(super) const NOTES_EVERY: Duration = Duration::from_secs(10);

pub(super) struct Agent {
    role: Role,
    id: Identity,
    model: String,
    rng: ThreadRng,
    ws: WorkingSet,
    started: Instant,
    tasks_done: u64,
    tokens: u64,
    recent: VecDeque<String>,
    last_notes: Option<Instant>,
    notes_failed: bool,
    /// As a task agent: the link to the daemon (stdout is JSON-RPC then).
    pub(super) wire: Option<super::wire::Wire>,
    /// The task being worked on, for its progress notifications.
    pub(super) current: Option<String>,
    /// Messages read while waiting for another, for later.
    stash: VecDeque<super::wire::Inbound>,
    /// Tasks canceled while they ran.
    canceled: std::collections::HashSet<String>,
}

impl Agent {
    pub(super) fn new(role: Role, id: Identity, model: String) -> Self {
        Self {
            role,
            id,
            model,
            rng: rand::rng(),
            ws: WorkingSet::new(),
            started: Instant::now(),
            tasks_done: 0,
            tokens: 0,
            recent: VecDeque::new(),
            last_notes: None,
            notes_failed: false,
            wire: None,
            current: None,
            stash: VecDeque::new(),
            canceled: Default::default(),
        }
    }

    pub(super) fn run(&mut self) -> io::Result<i32> {
        self.say(
            Level::Info,
            "agent",
            format!(
                "{}[{}] starting: role={} model={} pid={} context={}",
                self.id.agent,
                self.id.replica,
                self.role,
                self.model,
                process::id(),
                self.id.context_dir.display()
            ),
        )?;
        // So the context dir has content from the first second.
        self.maybe_write_notes()?;
        let tasks = std::env::var("AUTONOMOS_PROTOCOL").is_ok_and(|p| p == "jsonrpc");
        if tasks && matches!(self.role, Role::Planner | Role::Researcher | Role::Coder) {
            self.wire = Some(super::wire::Wire::start());
            return self.take_tasks();
        }
        match self.role {
            Role::Planner => loop {
                self.planner_round()?;
            },
            Role::Researcher => loop {
                self.researcher_round()?;
            },
            Role::Coder => loop {
                self.coder_round()?;
            },
            Role::Flaky => self.flaky(),
            Role::Leaky => self.leaky(),
            // Runs its own loop (`demo::echo`), never this one.
            Role::Echo => Ok(super::echo::run()),
        }
    }

    // -- helpers ------------------------------------------------------------

    /// Writes one whole line to stdout (`DEBUG`, `INFO`) or stderr (`WARN`,
    /// `ERROR`) and flushes it.
    fn say(&mut self, level: Level, target: &str, msg: impl AsRef<str>) -> io::Result<()> {
        let mut line = format_line(level, target, msg.as_ref());
        line.push('\n');
        // A task agent's stdout is for JSON-RPC only.
        if level.to_stderr() || self.wire.is_some() {
            let mut err = io::stderr().lock();
            err.write_all(line.as_bytes())?;
            err.flush()
        } else {
            let mut out = io::stdout().lock();
            out.write_all(line.as_bytes())?;
            out.flush()
        }
    }

    /// Tells the daemon how the current task is going (task agents only).
    pub(super) fn progress(&mut self, fraction: f64, message: &str) -> io::Result<()> {
        match (&self.wire, &self.current) {
            (Some(_), Some(id)) => super::wire::notify(
                "task.progress",
                serde_json::json!({ "id": id, "fraction": fraction.clamp(0.0, 1.0), "message": message }),
            ),
            _ => Ok(()),
        }
    }

    /// Sleeps a random time between `lo_ms` and `hi_ms` milliseconds.
    fn pause(&mut self, lo_ms: u64, hi_ms: u64) {
        let ms = self.rng.random_range(lo_ms..=hi_ms.max(lo_ms));
        thread::sleep(Duration::from_millis(ms));
    }

    /// Burns CPU for a random time between `lo_ms` and `hi_ms` milliseconds.
    fn cpu(&mut self, lo_ms: u64, hi_ms: u64) -> Duration {
        let ms = self.rng.random_range(lo_ms..=hi_ms.max(lo_ms));
        let start = Instant::now();
        burn(Duration::from_millis(ms), &mut self.ws.buf);
        start.elapsed()
    }

    /// Resizes the working set to a random size between `lo` and `hi` MiB.
    fn memory_mib(&mut self, lo: usize, hi: usize) -> io::Result<()> {
        let mib = self.rng.random_range(lo..=hi.max(lo));
        self.memory_bytes(mib * MIB)
    }

    fn memory_bytes(&mut self, bytes: usize) -> io::Result<()> {
        if self.ws.resize_to(bytes).is_err() {
            let msg = format!("could not grow working set to {}", fmt_mib(bytes));
            self.say(Level::Warn, "mem", msg)?;
        }
        Ok(())
    }

    /// A simulated model call: waits on the "model server", then burns CPU
    /// parsing the answer, and logs tokens and the real latency.
    fn llm(
        &mut self,
        prompt: (u32, u32),
        wait_ms: (u64, u64),
        cpu_ms: (u64, u64),
    ) -> io::Result<()> {
        let start = Instant::now();
        self.pause(wait_ms.0, wait_ms.1);
        self.cpu(cpu_ms.0, cpu_ms.1);
        let elapsed = start.elapsed();
        let prompt = self.rng.random_range(prompt.0..=prompt.1);
        let rate = self.rng.random_range(35.0..95.0f64);
        let completion = (elapsed.as_secs_f64() * rate).max(8.0) as u32;
        self.tokens += u64::from(prompt) + u64::from(completion);
        let line = llm_line(&self.model, prompt, completion, elapsed);
        self.say(Level::Info, "llm", line)?;
        if self.rng.random_bool(0.08) {
            let used = self.rng.random_range(6800..8100u32);
            let pct = used * 100 / 8192;
            self.say(
                Level::Warn,
                "llm",
                format!("context window {pct}% full ({used}/8192 tokens); compacting history"),
            )?;
        }
        Ok(())
    }

    /// Remembers `entry` for the notes file and counts a finished task.
    fn finish_task(&mut self, entry: String) {
        self.tasks_done += 1;
        if self.recent.len() == RECENT_CAP {
            self.recent.pop_front();
        }
        self.recent.push_back(entry);
    }

    /// Writes the notes file if it is due. A failure is logged once as a
    /// warning and otherwise ignored.
    fn maybe_write_notes(&mut self) -> io::Result<()> {
        if self.last_notes.is_some_and(|t| t.elapsed() < NOTES_EVERY) {
            return Ok(());
        }
        self.last_notes = Some(Instant::now());
        let body = render_notes(&NotesInfo {
            agent: &self.id.agent,
            replica: self.id.replica,
            role: self.role,
            pid: process::id(),
            model: &self.model,
            uptime: self.started.elapsed(),
            tasks_done: self.tasks_done,
            tokens: self.tokens,
            working_set: self.ws.len(),
            recent: &self.recent,
        });
        let name = format!("notes-{}.md", self.id.replica);
        match write_atomic(&self.id.context_dir, &name, &body) {
            Ok(()) => {
                self.notes_failed = false;
                self.say(
                    Level::Debug,
                    "ctx",
                    format!("saved {name} ({} bytes)", body.len()),
                )
            }
            Err(e) if !self.notes_failed => {
                self.notes_failed = true;
                let dir = self.id.context_dir.display().to_string();
                self.say(
                    Level::Warn,
                    "ctx",
                    format!("cannot save {name} in {dir}: {e}"),
                )
            }
            Err(_) => Ok(()),
        }
    }

    /// Idles for a while, with a debug line now and then.
    fn idle(&mut self, rounds: (u32, u32), what: &str) -> io::Result<()> {
        let n = self.rng.random_range(rounds.0..=rounds.1);
        for _ in 0..n {
            self.pause(1500, 3500);
            self.say(Level::Debug, "agent", what)?;
        }
        Ok(())
    }

    // -- planner ------------------------------------------------------------

    fn planner_round(&mut self) -> io::Result<()> {
        let task = task_id(&mut self.rng);
        let goal = pick(&mut self.rng, GOALS);
        self.say(Level::Info, "plan", format!("goal for {task}: \"{goal}\""))?;
        self.memory_mib(8, 16)?;
        self.pause(200, 700);
        self.llm((900, 3200), (800, 2500), (200, 800))?;
        let n = self.rng.random_range(3..=6usize);
        self.say(
            Level::Info,
            "plan",
            format!("{task} decomposed into {n} steps"),
        )?;
        for i in 1..=n {
            self.pause(100, 450);
            let line = plan_step_line(&mut self.rng, &task, i, n);
            self.say(Level::Info, "plan", line)?;
        }
        self.finish_task(format!("{task}: planned \"{goal}\" in {n} steps"));
        self.maybe_write_notes()?;
        let mut pending = n;
        while pending > 0 {
            self.pause(1200, 3000);
            let done = self.rng.random_range(1..=pending.min(3));
            pending -= done;
            if self.rng.random_bool(0.1) {
                let step = self.rng.random_range(1..=n);
                self.say(
                    Level::Warn,
                    "plan",
                    format!("step {task}.{step} overdue (no heartbeat for 45s); reassigning"),
                )?;
            }
            self.say(
                Level::Debug,
                "plan",
                format!("{task}: {done} step(s) reported done, {pending} pending"),
            )?;
        }
        self.say(
            Level::Info,
            "plan",
            format!("{task} complete; all {n} steps merged"),
        )?;
        self.memory_mib(4, 8)?;
        self.idle((1, 2), "idle: waiting for the next goal")
    }

    // -- researcher ---------------------------------------------------------

    fn researcher_round(&mut self) -> io::Result<()> {
        let task = format!(
            "{}.{}",
            task_id(&mut self.rng),
            self.rng.random_range(1..=6u32)
        );
        let topic = pick(&mut self.rng, RESEARCH_TOPICS);
        if self.research(&task, topic)?.is_none() {
            return self.idle((1, 2), "idle: polling planner for open research steps");
        }
        self.idle((1, 3), "idle: polling planner for open research steps")
    }

    /// One research step: fetch sources, embed, summarize. The summary, or
    /// None when no source could be reached.
    pub(super) fn research(&mut self, task: &str, topic: &str) -> io::Result<Option<String>> {
        self.say(Level::Info, "research", format!("claimed {task}: {topic}"))?;
        self.memory_mib(6, 10)?;
        let n = self.rng.random_range(2..=4usize);
        let mut fetched = 0usize;
        for _ in 0..n {
            let source = pick(&mut self.rng, SOURCES);
            self.say(Level::Info, "fetch", format!("GET {source}"))?;
            let start = Instant::now();
            self.pause(250, 1400);
            if self.rng.random_bool(0.12) {
                let why = pick(&mut self.rng, SOURCE_FAILURES);
                self.say(Level::Warn, "fetch", format!("{source}: {why}; skipping"))?;
                continue;
            }
            let line = fetch_ok_line(&mut self.rng, source, start.elapsed());
            self.say(Level::Info, "fetch", line)?;
            fetched += 1;
            self.progress(
                fetched as f64 / (n + 1) as f64,
                &format!("fetched {source}"),
            )?;
            let grow = self.rng.random_range(2..=6usize) * MIB;
            self.memory_bytes(self.ws.len() + grow)?;
        }
        if fetched == 0 {
            self.say(
                Level::Warn,
                "research",
                format!("no source reachable for {task}; handing it back to the planner"),
            )?;
            self.memory_mib(4, 8)?;
            return Ok(None);
        }
        let chunks = fetched * self.rng.random_range(20..=90usize);
        self.say(
            Level::Info,
            "embed",
            format!("embedding {chunks} chunks (dim 768)"),
        )?;
        let slices = self.rng.random_range(2..=3usize);
        let mut took = Duration::ZERO;
        for k in 1..=slices {
            took += self.cpu(120, 350);
            if k < slices {
                let done = chunks * k / slices;
                self.say(Level::Debug, "embed", format!("{done}/{chunks} chunks"))?;
            }
        }
        self.say(
            Level::Info,
            "embed",
            format!("embedded {chunks} chunks in {:.2}s", took.as_secs_f64()),
        )?;
        self.pause(100, 400);
        self.llm((1500, 6000), (800, 2200), (150, 600))?;
        let line = summary_line(&mut self.rng, task, fetched);
        self.say(Level::Info, "research", line.clone())?;
        self.finish_task(line.clone());
        self.memory_mib(4, 8)?;
        self.maybe_write_notes()?;
        Ok(Some(line))
    }

    // -- coder --------------------------------------------------------------

    fn coder_round(&mut self) -> io::Result<()> {
        let task = format!(
            "{}.{}",
            task_id(&mut self.rng),
            self.rng.random_range(1..=6u32)
        );
        let change = pick(&mut self.rng, CODE_CHANGES);
        self.code(&task, change)?;
        self.idle((1, 3), "idle: waiting for a coding step")
    }

    /// One coding step: read, edit, test until green. What was done.
    pub(super) fn code(&mut self, task: &str, change: &str) -> io::Result<String> {
        self.say(Level::Info, "code", format!("picked up {task}: {change}"))?;
        self.say(Level::Info, "code", "loading repo index")?;
        self.memory_mib(14, 28)?;
        self.pause(300, 900);
        let nfiles = self.rng.random_range(1..=3usize);
        let mut files = Vec::with_capacity(nfiles);
        for _ in 0..nfiles {
            let file = pick(&mut self.rng, FILES);
            let lines = self.rng.random_range(40..900u32);
            self.say(
                Level::Info,
                "code",
                format!("reading {file} ({lines} lines)"),
            )?;
            files.push(file);
            self.pause(150, 500);
        }
        self.llm((2500, 7500), (1000, 3000), (300, 900))?;
        for file in &files {
            self.pause(100, 400);
            let line = edit_line(&mut self.rng, file);
            self.say(Level::Info, "edit", line)?;
        }
        let cmd = pick(&mut self.rng, TEST_COMMANDS);
        let total = self.rng.random_range(20..260u32);
        let mut attempt = 1;
        loop {
            self.progress(0.5, &format!("tests, attempt {attempt}"))?;
            self.say(Level::Info, "tests", format!("running `{cmd}`"))?;
            let grow = self.rng.random_range(6..=14usize) * MIB;
            self.memory_bytes(self.ws.len() + grow)?;
            let slices = self.rng.random_range(2..=4u32);
            let mut took = Duration::ZERO;
            for k in 1..=slices {
                took += self.cpu(150, 450);
                if k < slices {
                    let run = total * k / slices;
                    self.say(Level::Debug, "tests", format!("{run}/{total} tests run"))?;
                }
            }
            let failed = if attempt < 3 && self.rng.random_bool(0.2) {
                self.rng.random_range(1..=3u32)
            } else {
                0
            };
            let line = test_result_line(cmd, total, failed, took);
            if failed == 0 {
                self.say(Level::Info, "tests", line)?;
                break;
            }
            self.say(Level::Warn, "tests", line)?;
            let name = pick(&mut self.rng, TEST_NAMES);
            self.say(Level::Warn, "tests", format!("failing: {name}"))?;
            self.say(Level::Info, "code", "feeding failures back to the model")?;
            self.llm((3000, 8000), (800, 2000), (200, 600))?;
            attempt += 1;
        }
        let files_n = files.len();
        self.say(
            Level::Info,
            "code",
            format!("{task} ready for review: {files_n} file(s), {total} tests green"),
        )?;
        let done = format!("{task}: {change} ({files_n} files, {attempt} attempt(s))");
        self.finish_task(done.clone());
        self.memory_mib(4, 10)?;
        self.maybe_write_notes()?;
        Ok(done)
    }

    // -- flaky --------------------------------------------------------------

    fn flaky(&mut self) -> io::Result<i32> {
        let lifetime = Duration::from_secs(self.rng.random_range(15..=60u64));
        self.say(
            Level::Info,
            "tool",
            format!("tool server ready: {} tools registered", TOOLS.len()),
        )?;
        self.memory_mib(6, 12)?;
        let mut call: u64 = 0;
        while self.started.elapsed() < lifetime {
            let burst = self.rng.random_range(1..=4u32);
            for _ in 0..burst {
                call += 1;
                let tool = pick(&mut self.rng, TOOLS);
                let start = Instant::now();
                if tool == "code.exec" {
                    self.cpu(100, 500);
                } else {
                    self.pause(20, 250);
                }
                let line = tool_call_line(&mut self.rng, call, tool, start.elapsed());
                self.say(Level::Info, "tool", line)?;
            }
            if self.rng.random_bool(0.1) {
                let used = self.rng.random_range(16..=20u32);
                self.say(
                    Level::Warn,
                    "tool",
                    format!("connection pool {used}/20 in use; requests may queue"),
                )?;
            }
            self.finish_task(format!("served {call} calls"));
            self.maybe_write_notes()?;
            self.pause(800, 3000);
        }
        let (crash, why) = CRASHES
            .choose(&mut self.rng)
            .copied()
            .unwrap_or((Crash::Exit(1), "unknown failure"));
        self.say(Level::Error, "tool", format!("tool server crashed: {why}"))?;
        match crash {
            Crash::Exit(code) => Ok(code),
            Crash::Abort => process::abort(),
        }
    }

    // -- leaky --------------------------------------------------------------

    fn leaky(&mut self) -> io::Result<i32> {
        let rate = self.rng.random_range(LEAK_RATE_MIN..=LEAK_RATE_MAX);
        self.say(
            Level::Info,
            "index",
            format!(
                "indexer starting: embed model {}-embed, batch 64, cache eviction off",
                self.model
            ),
        )?;
        let mut batch: u64 = 0;
        let mut warned_at = 0usize;
        loop {
            batch += 1;
            let target = leak_target(self.started.elapsed(), rate);
            // Never shrink, whatever the schedule says.
            self.memory_bytes(target.max(self.ws.len()))?;
            self.cpu(60, 200);
            let line = index_batch_line(&mut self.rng, batch, self.ws.len());
            self.say(Level::Info, "index", line)?;
            let cache_mib = self.ws.len() / MIB;
            if cache_mib >= warned_at + 32 {
                warned_at = cache_mib;
                self.say(
                    Level::Warn,
                    "index",
                    format!("embedding cache at {cache_mib} MiB and growing; eviction disabled (see issue #1289)"),
                )?;
            }
            if batch.is_multiple_of(5) {
                self.finish_task(format!(
                    "indexed {batch} batches, cache {}",
                    fmt_mib(self.ws.len())
                ));
                self.maybe_write_notes()?;
            }
            self.pause(700, 1400);
        }
    }
}
