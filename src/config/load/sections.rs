//! The small top-level tables: `[backup]`, `[console]`, `[pool]`, `[logs]`.

use super::*;

impl Checker<'_> {
    /// `[backup]`: `repositories`, `every`.
    pub(super) fn backup(&mut self, t: &DeTable<'_>, spec: &mut BackupSpec) {
        let [
            repositories,
            every,
            keep_last,
            keep_hourly,
            keep_daily,
            ssh_config,
            remote_timeout,
        ] = self.fields(
            t,
            "backup",
            [
                "repositories",
                "every",
                "keep_last",
                "keep_hourly",
                "keep_daily",
                "ssh_config",
                "remote_timeout",
            ],
            |k| {
                matches!(k, "repository" | "repo" | "repos" | "path").then(|| {
                    "did you mean `repositories`? (a list: the first is primary, the rest mirrors)"
                        .to_owned()
                })
            },
        );
        let field = |key| Field {
            key,
            table: "backup",
        };
        for (slot, key, out) in [
            (keep_last, "keep_last", &mut spec.keep_last),
            (keep_hourly, "keep_hourly", &mut spec.keep_hourly),
            (keep_daily, "keep_daily", &mut spec.keep_daily),
        ] {
            if let Some((_, v)) = slot
                && let Some(n) = self.int_in(v, field(key), 1, 100_000)
            {
                *out = Some(n as u32);
            }
        }
        if let Some((_, v)) = repositories {
            let help = Some(
                "write repositories = [\"/backups/autonomos\", \"/mnt/offsite/autonomos\"]"
                    .to_owned(),
            );
            if let Some(items) = self.strings(v, field("repositories"), help) {
                if items.is_empty() {
                    self.problem(
                        v.span(),
                        "`repositories` in [backup] is empty".into(),
                        Some("name at least one directory, or leave `repositories` out for DATA_DIR/backups".into()),
                    );
                }
                for (item, span) in items {
                    match crate::core::repo::BackupRepo::parse(item, self.base_dir.as_deref()) {
                        Ok(r) => spec.repositories.push(r),
                        Err(e) => self.problem(
                            span,
                            format!("repository `{item}` in [backup]: {e}"),
                            None,
                        ),
                    }
                }
            }
        }
        if let Some((_, v)) = ssh_config {
            spec.ssh_config = self.path(v, field("ssh_config"));
        }
        if let Some((_, v)) = remote_timeout
            && let Some(d) = self.duration_max(v, field("remote_timeout"), HOUR)
        {
            if d < Duration::from_secs(1) {
                self.problem(
                    v.span(),
                    "`remote_timeout` in [backup] must be at least 1s".into(),
                    None,
                );
            } else {
                spec.remote_timeout = Some(d);
            }
        }
        for r in &mut spec.repositories {
            if let crate::core::repo::BackupRepo::Sftp(t) = r {
                t.ssh_config = spec.ssh_config.clone();
                t.timeout = spec
                    .remote_timeout
                    .unwrap_or(crate::core::repo::DEFAULT_TIMEOUT);
            }
        }
        if let Some((_, v)) = every
            && let Some(d) = self.duration_max(v, field("every"), 30 * DAY)
        {
            if d < MINUTE {
                self.problem(
                    v.span(),
                    "`every` in [backup] must be at least 1m".into(),
                    Some("backups are incremental but not free; try \"1h\"".into()),
                );
            } else {
                spec.every = Some(d);
            }
        }
    }

    /// `[console]`: `theme = "light"`, `keys = { detach = "x", up = ["k", "up"] }`.
    pub(super) fn console(&mut self, t: &DeTable<'_>, spec: &mut ConsoleSpec) {
        let [theme, keys] = self.fields(t, "console", ["theme", "keys"], |_| None);
        if let Some((_, v)) = theme
            && let Some(s) = self.string(
                v,
                Field {
                    key: "theme",
                    table: "console",
                },
            )
        {
            spec.theme = Some(s.to_owned());
        }
        let Some((_, v)) = keys else { return };
        let Some(keys) = self.table(
            v,
            Field {
                key: "keys",
                table: "console",
            },
            Some("write it as keys = { detach = \"x\", up = [\"k\", \"up\"] }".to_owned()),
        ) else {
            return;
        };
        for (k, v) in keys.iter() {
            let action: &str = k.get_ref();
            if !crate::core::keys::ACTIONS.contains(&action) {
                let help = did_you_mean(action, &crate::core::keys::ACTIONS)
                    .map(|s| format!("did you mean `{s}`?"))
                    .unwrap_or_else(|| {
                        format!("actions: {}", crate::core::keys::ACTIONS.join(", "))
                    });
                self.problem(
                    k.span(),
                    format!("unknown console action `{action}` in [console] keys"),
                    Some(help),
                );
                continue;
            }
            let mut specs = Vec::new();
            let mut check =
                |this: &mut Self, s: &str, span: Span| match crate::core::keys::parse_key(s) {
                    Ok(k) => specs.push(k),
                    Err(e) => this.problem(span, e, None),
                };
            match v.get_ref() {
                DeValue::String(s) => check(self, s, v.span()),
                DeValue::Array(items) => {
                    for item in items.iter() {
                        match item.get_ref() {
                            DeValue::String(s) => check(self, s, item.span()),
                            _ => self.type_error(
                                item,
                                Field {
                                    key: "keys",
                                    table: "console",
                                },
                                "a key name",
                                None,
                            ),
                        }
                    }
                }
                _ => self.type_error(
                    v,
                    Field {
                        key: "keys",
                        table: "console",
                    },
                    "a key name or a list of them",
                    None,
                ),
            }
            spec.keys.push((action.to_owned(), specs));
        }
    }

    pub(super) fn pool(&mut self, t: &DeTable<'_>, facts: &mut PoolFacts) {
        let [cpu, memory, max_agents] =
            self.fields(t, "pool", ["cpu", "memory", "max_agents"], pool_hint);
        let field = |key| Field { key, table: "pool" };
        if let Some((_, v)) = cpu {
            facts.cpu_default = false;
            match self.number(v, field("cpu")) {
                Some(x) if x > 0.0 && x <= MAX_POOL_CPU => facts.spec.cpu = x,
                Some(x) => {
                    facts.cpu_ok = false;
                    self.problem(
                        v.span(),
                        format!("`cpu` in [pool] must be more than 0 and at most {MAX_POOL_CPU}, found {x}"),
                        None,
                    );
                }
                None => facts.cpu_ok = false,
            }
        }
        if let Some((_, v)) = memory {
            facts.memory_default = false;
            match self.size(v, field("memory")) {
                Some(0) => {
                    facts.memory_ok = false;
                    self.problem(
                        v.span(),
                        "`memory` in [pool] must be more than 0".to_owned(),
                        None,
                    );
                }
                Some(n) => facts.spec.memory = n,
                None => facts.memory_ok = false,
            }
        }
        if let Some((_, v)) = max_agents
            && let Some(n) = self.int_in(v, field("max_agents"), 1, i128::from(MAX_POOL_AGENTS))
            && let Ok(n) = u32::try_from(n)
        {
            facts.spec.max_agents = n;
        }
    }

    pub(super) fn logs(&mut self, t: &DeTable<'_>, spec: &mut LogSpec) {
        let [max_size, max_files, ring_lines] = self.fields(
            t,
            "logs",
            ["max_size", "max_files", "ring_lines"],
            logs_hint,
        );
        let field = |key| Field { key, table: "logs" };
        if let Some((_, v)) = max_size
            && let Some(n) = self.size_in(v, field("max_size"), 4 * KIB, 64 * GIB)
        {
            spec.max_size = n;
        }
        if let Some((_, v)) = max_files
            && let Some(n) = self.int_in(v, field("max_files"), 0, 100)
            && let Ok(n) = u32::try_from(n)
        {
            spec.max_files = n;
        }
        if let Some((_, v)) = ring_lines
            && let Some(n) = self.int_in(v, field("ring_lines"), 0, 100_000)
            && let Ok(n) = usize::try_from(n)
        {
            spec.ring_lines = n;
        }
    }
}
