//! `[agents.NAME]` tables: command, environment, replicas, restart
//! policy, resources and dependencies.

use super::*;

/// The keys of an `[agents.NAME]` table.
pub(super) const AGENT_KEYS: [&str; 27] = [
    "command",
    "cwd",
    "env",
    "inherit_env",
    "replicas",
    "restart",
    "backoff",
    "min_uptime",
    "start_limit",
    "stop_signal",
    "stop_timeout",
    "resources",
    "depends_on",
    "recovery",
    "description",
    "autoscale",
    "health",
    "tty",
    "attention",
    "workspace",
    // Task agents (`tasks.rs`), in `TASK_KEYS` order.
    "protocol",
    "concurrency",
    "ready",
    "skills",
    "max_attempts",
    "task_timeout",
    "max_queue",
];

impl Checker<'_> {
    /// `description`: one sentence or so (at most 500 characters).
    fn description(&mut self, v: &Value<'_>, field: Field<'_>) -> Option<String> {
        let s = self.string(v, field)?;
        if s.chars().count() > 500 {
            let message = format!("{} is longer than 500 characters", field.what());
            self.problem(v.span(), message, None);
            return None;
        }
        Some(s.trim().to_owned()).filter(|s| !s.is_empty())
    }

    /// `[agents]`: every agent, then the checks across agents.
    pub(super) fn agents(&mut self, t: &DeTable<'_>, pool: &PoolFacts) -> Vec<Draft> {
        let mut entries: Vec<(usize, Entry<'_, '_>)> = t
            .iter()
            .map(|(k, v)| (first_position(k, v), (k, v)))
            .collect();
        entries.sort_by_key(|(position, _)| *position);

        let mut drafts = Vec::new();
        for (_, (k, v)) in entries {
            let name: &str = k.get_ref();
            let table_name = table_path("agents", name);
            if !valid_agent_name(name) {
                let mut help = "agent names must match [a-z0-9][a-z0-9_-]{0,62}: they become file names and metric labels".to_owned();
                if let Some(s) = agent_name_suggestion(name) {
                    help.push_str(&format!("; try `{s}`"));
                }
                self.problem(k.span(), format!("invalid agent name `{name}`"), Some(help));
            }
            let field = Field {
                key: name,
                table: "agents",
            };
            let help = format!(
                "write the agent as a table: [agents.{name}] with command = [\"program\", \"arg\"]"
            );
            let Some(body) = self.table(v, field, Some(help)) else {
                continue;
            };
            let spec = default_agent(name.to_owned());
            let mut draft = Draft {
                spec,
                deps: Vec::new(),
            };
            self.agent(body, v.span(), &table_name, &mut draft, pool);
            drafts.push(draft);
        }
        self.dependencies(&drafts);
        drafts
    }

    pub(super) fn agent(
        &mut self,
        t: &DeTable<'_>,
        span: Span,
        table_name: &str,
        draft: &mut Draft,
        pool: &PoolFacts,
    ) {
        let [
            command,
            cwd,
            env,
            inherit_env,
            replicas,
            restart,
            backoff,
            min_uptime,
            start_limit,
            stop_signal,
            stop_timeout,
            resources,
            depends_on,
            recovery,
            description,
            autoscale,
            health,
            tty,
            attention,
            workspace,
            task @ ..,
        ] = self.fields(t, table_name, AGENT_KEYS, agent_hint);
        let field = |key| Field {
            key,
            table: table_name,
        };
        let spec = &mut draft.spec;

        match command {
            Some((_, v)) => {
                if let Some(argv) = self.command(v, field("command")) {
                    spec.command = argv;
                }
            }
            None => {
                let help =
                    "add the program to run, e.g. command = [\"python3\", \"-m\", \"worker\"]";
                let message = format!("agent `{}` has no `command`", spec.name);
                self.problem(span, message, Some(help.to_owned()));
            }
        }
        if let Some((_, v)) = cwd {
            spec.cwd = self.path(v, field("cwd"));
        }
        if let Some((_, v)) = env {
            spec.env = self.env(v, field("env"));
        }
        if let Some((_, v)) = inherit_env
            && let Some(names) = self.inherit_env(v, field("inherit_env"))
        {
            spec.inherit_env = names;
        }
        if let Some((_, v)) = replicas {
            spec.replicas = self.replicas(v, field("replicas")).unwrap_or(spec.replicas);
        }
        spec.description = description.and_then(|(_, v)| self.description(v, field("description")));
        if let Some((_, v)) = recovery {
            let options = [("none", false), ("restore-latest", true)];
            spec.restore_latest = self.choice(v, field("recovery"), &options).unwrap_or(false);
        }
        if let Some((_, v)) = restart {
            let options = [
                RestartPolicy::Always,
                RestartPolicy::OnFailure,
                RestartPolicy::Never,
            ]
            .map(|p| (p.name(), p));
            spec.restart = self
                .choice(v, field("restart"), &options)
                .unwrap_or(spec.restart);
        }
        if let Some((_, v)) = backoff
            && let Some(t) = self.table(v, field("backoff"), None)
        {
            self.backoff(t, &format!("{table_name}.backoff"), &mut spec.backoff);
        }
        if let Some((_, v)) = min_uptime {
            spec.min_uptime = self
                .duration_max(v, field("min_uptime"), HOUR)
                .unwrap_or(spec.min_uptime);
        }
        if let Some((_, v)) = start_limit
            && let Some(t) = self.table(v, field("start_limit"), None)
        {
            self.start_limit(
                t,
                &format!("{table_name}.start_limit"),
                &mut spec.start_limit,
            );
        }
        self.stop_keys([stop_signal, stop_timeout], table_name, spec);
        if let Some((_, v)) = resources
            && let Some(t) = self.table(v, field("resources"), None)
        {
            let (name, agent) = (format!("{table_name}.resources"), spec.name.clone());
            self.resources(t, &name, &agent, &mut spec.resources, pool);
        }
        self.task_keys(task, table_name, &mut draft.spec);
        self.scaling_and_health(
            [autoscale, health, tty, attention, workspace],
            table_name,
            &mut draft.spec,
        );
        if let Some((_, v)) = depends_on {
            self.depends_on(v, field("depends_on"), draft);
        }
    }

    /// `stop_signal` and `stop_timeout`.
    fn stop_keys(
        &mut self,
        [stop_signal, stop_timeout]: [Option<Entry<'_, '_>>; 2],
        table_name: &str,
        spec: &mut AgentSpec,
    ) {
        let field = |key| Field {
            key,
            table: table_name,
        };
        if let Some((_, v)) = stop_signal
            && let Some(n) = self.signal(v, field("stop_signal"))
        {
            spec.stop_signal = n;
        }
        if let Some((_, v)) = stop_timeout {
            spec.stop_timeout = self
                .duration_max(v, field("stop_timeout"), HOUR)
                .unwrap_or(spec.stop_timeout);
        }
    }

    /// `autoscale` (after the task keys: its targets depend on them),
    /// `health`, `tty` and `attention`.
    fn scaling_and_health(
        &mut self,
        [autoscale, health, tty, attention, workspace]: [Option<Entry<'_, '_>>; 5],
        table_name: &str,
        spec: &mut AgentSpec,
    ) {
        self.tty_keys(tty, attention, table_name, spec);
        if let Some((_, v)) = workspace {
            spec.workspace = self.workspace(v, table_name);
        }
        if let Some((_, v)) = autoscale {
            self.autoscale(v, table_name, spec);
        }
        let Some((_, v)) = health else { return };
        spec.health = self.health(v, table_name);
        let heartbeat = spec.health.as_ref().is_some_and(|h| {
            [&h.liveness, &h.readiness]
                .iter()
                .any(|p| matches!(p, Some(crate::config::Probe::Heartbeat(_))))
        });
        if heartbeat && spec.tasks.is_none() {
            self.problem(
                v.span(),
                format!("a `heartbeat` probe in [{table_name}.health] needs a task agent"),
                Some("set protocol = \"jsonrpc\", or probe with exec, http or tcp".into()),
            );
        }
    }

    /// `inherit_env`: valid variable names, each once.
    fn inherit_env(&mut self, v: &Value<'_>, field: Field<'_>) -> Option<Vec<String>> {
        let help = Some("list variable names: inherit_env = [\"PATH\", \"HOME\"]".to_owned());
        let names = self.strings(v, field, help)?;
        let mut out: Vec<String> = Vec::new();
        for (name, name_span) in names {
            if self.env_name(name, name_span, "inherit_env") && !out.iter().any(|n| n == name) {
                out.push(name.to_owned());
            }
        }
        Some(out)
    }

    /// `depends_on`: agent names, each once (checked against the fleet
    /// once every agent is read).
    fn depends_on(&mut self, v: &Value<'_>, field: Field<'_>, draft: &mut Draft) {
        let help = Some(format!(
            "list agent names: depends_on = [\"{}\"]",
            match v.get_ref() {
                DeValue::String(s) => s.as_ref(),
                _ => "other-agent",
            }
        ));
        if let Some(names) = self.strings(v, field, help) {
            for (name, name_span) in names {
                if !draft.deps.iter().any(|(n, _)| n == name) {
                    draft.deps.push((name.to_owned(), name_span));
                }
            }
            draft.spec.depends_on = draft.deps.iter().map(|(n, _)| n.clone()).collect();
        }
    }

    pub(super) fn command(&mut self, v: &Value<'_>, field: Field<'_>) -> Option<Vec<String>> {
        let argv: Vec<String> = match v.get_ref() {
            DeValue::String(s) => match split_command(s) {
                Err(e) => {
                    self.problem(
                        v.span(),
                        format!("{} cannot be split into words", field.what()),
                        Some(e),
                    );
                    return None;
                }
                Ok(split) => {
                    if let Some((c, word)) = split.shell_syntax {
                        let what = match c {
                            '$' => format!("`{word}` is not expanded"),
                            '~' => format!("`{word}`: `~` is not expanded"),
                            _ => format!("`{c}` would be passed to the program as an argument"),
                        };
                        self.problem(
                            v.span(),
                            format!("{} is not run by a shell: {what}", field.what()),
                            Some("for shell features write command = [\"sh\", \"-c\", \"…\"]; to pass the text literally, quote it".to_owned()),
                        );
                        return None;
                    }
                    split.words
                }
            },
            DeValue::Array(_) => {
                let items = self.strings(v, field, None)?;
                items.into_iter().map(|(s, _)| s.to_owned()).collect()
            }
            _ => {
                let help = Some(
                    "write command = [\"program\", \"arg\"] or command = \"program arg\""
                        .to_owned(),
                );
                self.type_error(v, field, "an array of strings or a command string", help);
                return None;
            }
        };
        let Some(program) = argv.first() else {
            self.problem(
                v.span(),
                format!("{} is empty", field.what()),
                Some(
                    "name the program to run, e.g. command = [\"python3\", \"-m\", \"worker\"]"
                        .to_owned(),
                ),
            );
            return None;
        };
        if program.is_empty() {
            self.problem(
                v.span(),
                format!("the program name in {} is empty", field.what()),
                None,
            );
            return None;
        }
        if argv.iter().any(|a| a.contains('\0')) {
            self.problem(
                v.span(),
                format!("{} contains a NUL character", field.what()),
                None,
            );
            return None;
        }
        Some(argv)
    }

    /// Checks one environment variable name; reports and returns false if bad.
    pub(super) fn env_name(&mut self, name: &str, span: Span, key: &str) -> bool {
        if !valid_env_name(name) {
            self.problem(
                span,
                format!("invalid environment variable name `{name}` in `{key}`"),
                Some("names are letters, digits and `_`, and do not start with a digit".to_owned()),
            );
            return false;
        }
        if name.starts_with(RESERVED_ENV_PREFIX) {
            self.problem(
                span,
                format!("`{name}` in `{key}` is reserved"),
                Some(format!("autonomos sets the {RESERVED_ENV_PREFIX}* variables of each replica itself; use another name")),
            );
            return false;
        }
        true
    }

    pub(super) fn env(&mut self, v: &Value<'_>, field: Field<'_>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let help = Some("write env = { NAME = \"value\" }".to_owned());
        let Some(t) = self.table(v, field, help) else {
            return out;
        };
        for (k, value) in t.iter() {
            let name: &str = k.get_ref();
            let name_ok = self.env_name(name, k.span(), "env");
            match value.get_ref() {
                DeValue::String(s) if s.contains('\0') => {
                    self.problem(
                        value.span(),
                        format!("`env.{name}` in [{}] contains a NUL character", field.table),
                        None,
                    );
                }
                DeValue::String(s) => {
                    if name_ok {
                        out.insert(name.to_owned(), s.to_string());
                    }
                }
                other @ (DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_)) => {
                    let raw = self.map.slice(&value.span());
                    self.problem(
                        value.span(),
                        format!(
                            "`env.{name}` in [{}] must be a string, found {}",
                            field.table,
                            found(other)
                        ),
                        Some(format!(
                            "environment values are strings: write {name} = \"{raw}\""
                        )),
                    );
                }
                other => {
                    if !is_placeholder(value) {
                        self.problem(
                            value.span(),
                            format!(
                                "`env.{name}` in [{}] must be a string, found {}",
                                field.table,
                                found(other)
                            ),
                            None,
                        );
                    }
                }
            }
        }
        out
    }

    pub(super) fn replicas(&mut self, v: &Value<'_>, field: Field<'_>) -> Option<u32> {
        let max = i128::from(MAX_REPLICAS);
        let absurd = |this: &mut Self, shown: &str| {
            this.problem(
                v.span(),
                format!("`replicas = {shown}` in [{}] is absurd: at most {MAX_REPLICAS} replicas per agent", field.table),
                None,
            );
        };
        // Too large even for i128: surely absurd.
        if let DeValue::Integer(i) = v.get_ref()
            && !i.as_str().starts_with('-')
            && i128::from_str_radix(i.as_str(), i.radix()).is_err()
        {
            let shown = self.map.slice(&v.span()).to_owned();
            absurd(self, &shown);
            return None;
        }
        let n = self.integer(v, field)?;
        if n < 0 {
            self.problem(
                v.span(),
                format!("{} cannot be negative, found {n}", field.what()),
                None,
            );
            return None;
        }
        if n > max * 100 {
            absurd(self, &n.to_string());
            return None;
        }
        if n > max {
            self.problem(
                v.span(),
                format!("{} must be at most {MAX_REPLICAS}, found {n}", field.what()),
                None,
            );
            return None;
        }
        u32::try_from(n).ok()
    }

    pub(super) fn backoff(&mut self, t: &DeTable<'_>, table_name: &str, spec: &mut BackoffSpec) {
        let [initial, max, multiplier, jitter, reset_after] = self.fields(
            t,
            table_name,
            ["initial", "max", "multiplier", "jitter", "reset_after"],
            backoff_hint,
        );
        let field = |key| Field {
            key,
            table: table_name,
        };
        let initial_ok = match initial {
            Some((_, v)) => self
                .duration_max(v, field("initial"), HOUR)
                .map(|d| spec.initial = d)
                .is_some(),
            None => true,
        };
        let max_ok = match max {
            Some((_, v)) => self
                .duration_max(v, field("max"), DAY)
                .map(|d| spec.max = d)
                .is_some(),
            None => true,
        };
        if initial_ok && max_ok && spec.max < spec.initial {
            // Point at whichever of the two the file sets (max if both).
            let (v, message) = match (max, initial) {
                (Some((_, v)), _) => (
                    v,
                    format!(
                        "`max` in [{table_name}] ({}) is less than `initial` ({})",
                        format_duration(spec.max),
                        format_duration(spec.initial)
                    ),
                ),
                (None, Some((_, v))) => (
                    v,
                    format!(
                        "`initial` in [{table_name}] ({}) is more than `max` ({}, the default)",
                        format_duration(spec.initial),
                        format_duration(spec.max)
                    ),
                ),
                (None, None) => return,
            };
            self.problem(
                v.span(),
                message,
                Some("`max` must be at least `initial`".to_owned()),
            );
        }
        if let Some((_, v)) = multiplier
            && let Some(x) = self.number_in(v, field("multiplier"), 1.0, 100.0)
        {
            spec.multiplier = x;
        }
        if let Some((_, v)) = jitter
            && let Some(x) = self.number_in(v, field("jitter"), 0.0, 1.0)
        {
            spec.jitter = x;
        }
        if let Some((_, v)) = reset_after
            && let Some(d) = self.duration_max(v, field("reset_after"), 7 * DAY)
        {
            spec.reset_after = d;
        }
    }

    pub(super) fn start_limit(
        &mut self,
        t: &DeTable<'_>,
        table_name: &str,
        spec: &mut StartLimitSpec,
    ) {
        let [burst, interval] = self.fields(t, table_name, ["burst", "interval"], start_limit_hint);
        let field = |key| Field {
            key,
            table: table_name,
        };
        if let Some((_, v)) = burst
            && let Some(n) = self.int_in(v, field("burst"), 1, 10_000)
            && let Ok(n) = u32::try_from(n)
        {
            spec.burst = n;
        }
        if let Some((_, v)) = interval
            && let Some(d) = self.duration_max(v, field("interval"), DAY)
        {
            if d.is_zero() {
                self.problem(
                    v.span(),
                    format!("{} must be more than 0", field("interval").what()),
                    None,
                );
            } else {
                spec.interval = d;
            }
        }
    }

    pub(super) fn signal(&mut self, v: &Value<'_>, field: Field<'_>) -> Option<i32> {
        let text = match v.get_ref() {
            DeValue::String(s) => s.to_string(),
            DeValue::Integer(i) => i.to_string(),
            _ => {
                self.type_error(
                    v,
                    field,
                    "a signal name",
                    Some("e.g. stop_signal = \"SIGTERM\"".to_owned()),
                );
                return None;
            }
        };
        match parse_signal(&text) {
            Ok(n) => Some(n),
            Err(e) => {
                let names: Vec<&str> = signal_names().collect();
                let upper = text.trim().to_ascii_uppercase();
                let full = if upper.starts_with("SIG") {
                    upper
                } else {
                    format!("SIG{upper}")
                };
                let help = match did_you_mean(&full, &names) {
                    Some(s) => format!("did you mean \"{s}\"?"),
                    None => e,
                };
                self.problem(
                    v.span(),
                    format!("unknown signal `{text}` for {}", field.what()),
                    Some(help),
                );
                None
            }
        }
    }

    pub(super) fn resources(
        &mut self,
        t: &DeTable<'_>,
        table_name: &str,
        agent: &str,
        spec: &mut ResourceSpec,
        pool: &PoolFacts,
    ) {
        let [cpu, memory, memory_limit, memory_limit_action] = self.fields(
            t,
            table_name,
            ["cpu", "memory", "memory_limit", "memory_limit_action"],
            resources_hint,
        );
        let field = |key| Field {
            key,
            table: table_name,
        };
        if let Some((_, v)) = cpu
            && let Some(x) = self.number_in(v, field("cpu"), 0.0, MAX_AGENT_CPU)
        {
            if pool.cpu_ok && x > pool.spec.cpu {
                let whose = if pool.cpu_default {
                    "this host's, the [pool] default"
                } else {
                    "[pool] cpu"
                };
                self.problem(
                    v.span(),
                    format!(
                        "agent `{agent}` requests {x} CPUs per replica but the whole pool has {} ({whose})",
                        pool.spec.cpu
                    ),
                    Some("lower `cpu` here or raise `cpu` in [pool]".to_owned()),
                );
            } else {
                spec.cpu = x;
            }
        }
        let mut memory_ok = true;
        if let Some((_, v)) = memory {
            match self.size(v, field("memory")) {
                Some(n) if pool.memory_ok && n > pool.spec.memory => {
                    memory_ok = false;
                    let whose = if pool.memory_default {
                        "this host's, the [pool] default"
                    } else {
                        "[pool] memory"
                    };
                    self.problem(
                        v.span(),
                        format!(
                            "agent `{agent}` requests {} of memory per replica but the whole pool has {} ({whose})",
                            format_size(n),
                            format_size(pool.spec.memory)
                        ),
                        Some("lower `memory` here or raise `memory` in [pool]".to_owned()),
                    );
                }
                Some(n) => spec.memory = n,
                None => memory_ok = false,
            }
        }
        if let Some((_, v)) = memory_limit
            && let Some(n) = self.size(v, field("memory_limit"))
        {
            if n < MIB {
                self.problem(
                    v.span(),
                    format!(
                        "{} must be at least 1MiB, found {}",
                        field("memory_limit").what(),
                        format_size(n)
                    ),
                    None,
                );
            } else if memory_ok && n < spec.memory {
                self.problem(
                    v.span(),
                    format!(
                        "{} ({}) is below the memory request ({})",
                        field("memory_limit").what(),
                        format_size(n),
                        format_size(spec.memory)
                    ),
                    Some(
                        "a replica would be over its limit as soon as it uses what it requested"
                            .to_owned(),
                    ),
                );
            } else {
                spec.memory_limit = Some(n);
            }
        }
        if let Some((_, v)) = memory_limit_action {
            let options = [
                ("restart", LimitAction::Restart),
                ("stop", LimitAction::Stop),
                ("alert", LimitAction::Alert),
            ];
            if let Some(a) = self.choice(v, field("memory_limit_action"), &options) {
                spec.memory_limit_action = a;
            }
        }
    }

    /// `depends_on` across agents: unknown names, self, cycles.
    pub(super) fn dependencies(&mut self, drafts: &[Draft]) {
        let names: Vec<&str> = drafts.iter().map(|d| d.spec.name.as_str()).collect();
        let known: HashSet<&str> = names.iter().copied().collect();
        for d in drafts {
            for (dep, span) in &d.deps {
                if *dep == d.spec.name {
                    self.problem(
                        span.clone(),
                        format!("agent `{dep}` depends on itself"),
                        Some("remove it from its own `depends_on`".to_owned()),
                    );
                } else if !known.contains(dep.as_str()) {
                    let help = match did_you_mean(dep, &names) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None if names.is_empty() => "no agents are defined".to_owned(),
                        None => {
                            let mut shown: Vec<&str> = names.iter().copied().take(10).collect();
                            if names.len() > 10 {
                                shown.push("…");
                            }
                            format!("defined agents: {}", shown.join(", "))
                        }
                    };
                    self.problem(
                        span.clone(),
                        format!("agent `{}` depends on unknown agent `{dep}`", d.spec.name),
                        Some(help),
                    );
                }
            }
        }
        let deps: Vec<Vec<&str>> = drafts
            .iter()
            .map(|d| d.deps.iter().map(|(n, _)| n.as_str()).collect())
            .collect();
        let graph = Graph::new(&names, &deps);
        for cycle in graph.cycles() {
            let (Some(&first), Some(&second)) = (cycle.first(), cycle.get(1).or(cycle.first()))
            else {
                continue;
            };
            let Some((_, span)) = drafts[first].deps.iter().find(|(n, _)| *n == names[second])
            else {
                continue;
            };
            let mut path: Vec<&str> = cycle.iter().map(|&i| names[i]).collect();
            path.push(names[first]);
            self.problem(
                span.clone(),
                format!("dependency cycle: {}", path.join(" → ")),
                Some(
                    "agents in a cycle could never start: remove one of these dependencies"
                        .to_owned(),
                ),
            );
        }
    }
}
