//! An agent's task keys: `protocol = "jsonrpc"` makes it a task agent, and
//! `concurrency`, `ready`, `skills`, `max_attempts`, `task_timeout` and
//! `max_queue` say how it takes work (only with that protocol).

use super::*;

/// The task keys, as `AGENT_KEYS` ends with them.
#[cfg(test)]
pub(super) const TASK_KEYS: [&str; 7] = [
    "protocol",
    "concurrency",
    "ready",
    "skills",
    "max_attempts",
    "task_timeout",
    "max_queue",
];

/// A shared store's address: a `postgres://` URL with a host and a
/// database (credentials may come from the URL or `PGPASSFILE`-style
/// files; they are never logged).
fn store_url(s: &str) -> Result<(), String> {
    let u = url::Url::parse(s).map_err(|e| format!("`{s}` is not a URL ({e})"))?;
    if !matches!(u.scheme(), "postgres" | "postgresql") {
        return Err(format!(
            "`{}:` is not a store this build knows: write postgres://user@host:port/db",
            u.scheme()
        ));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err("the URL names no host: postgres://user@host:port/db".into());
    }
    if u.path().trim_start_matches('/').is_empty() {
        return Err("the URL names no database: postgres://user@host:port/db".into());
    }
    Ok(())
}

/// Most tasks one agent may queue.
const MAX_QUEUE: i128 = 1_000_000;

impl Checker<'_> {
    /// `[tasks]`: finished tasks kept, input and result limits (at most
    /// 1 MiB each: an answer is one line of a task agent's stdout).
    pub(super) fn tasks(&mut self, t: &DeTable<'_>, spec: &mut TasksSpec) {
        let [keep, max_input, max_result, store, lease, host] = self.fields(
            t,
            "tasks",
            ["keep", "max_input", "max_result", "store", "lease", "host"],
            |_| None,
        );
        let field = |key| Field {
            key,
            table: "tasks",
        };
        if let Some((_, v)) = keep
            && let Some(n) = self.int_in(v, field("keep"), 100, 1_000_000)
        {
            spec.keep = n as usize;
        }
        if let Some((_, v)) = max_input
            && let Some(n) = self.size_in(v, field("max_input"), 1024, 1 << 20)
        {
            spec.max_input = n;
        }
        if let Some((_, v)) = max_result
            && let Some(n) = self.size_in(v, field("max_result"), 1024, 1 << 20)
        {
            spec.max_result = n;
        }
        if let Some((_, v)) = store
            && let Some(s) = self.string(v, field("store"))
        {
            match store_url(s) {
                Ok(()) => spec.store = Some(s.to_string()),
                Err(e) => self.problem(v.span(), format!("invalid [tasks] store: {e}"), None),
            }
        }
        if let Some((_, v)) = lease
            && let Some(d) = self.duration(v, field("lease"))
        {
            let (lo, hi) = (Duration::from_secs(2), Duration::from_secs(3600));
            if let Some(d) = self.within(v, field("lease"), d, Some(lo), hi, format_duration) {
                spec.lease = d;
            }
        }
        if let Some((_, v)) = host
            && let Some(s) = self.string(v, field("host"))
        {
            let ok = !s.is_empty()
                && s.len() <= 64
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if ok {
                spec.host = Some(s.to_string());
            } else {
                let msg = "invalid [tasks] host: 1 to 64 letters, digits, `-`, `_` or `.`";
                self.problem(v.span(), msg.into(), None);
            }
        }
    }

    pub(super) fn task_keys(
        &mut self,
        keys: [Option<Entry<'_, '_>>; 7],
        table_name: &str,
        spec: &mut AgentSpec,
    ) {
        let [
            protocol,
            concurrency,
            ready,
            skills,
            max_attempts,
            task_timeout,
            max_queue,
        ] = keys;
        let field = |key| Field {
            key,
            table: table_name,
        };
        let jsonrpc = match protocol {
            Some((_, v)) => {
                let options = [("none", false), ("jsonrpc", true)];
                self.choice(v, field("protocol"), &options).unwrap_or(false)
            }
            None => false,
        };
        if !jsonrpc {
            // Task keys on a plain process are a mistake worth naming.
            let given = [
                concurrency,
                ready,
                skills,
                max_attempts,
                task_timeout,
                max_queue,
            ];
            for (k, _) in given.into_iter().flatten() {
                let key: &str = k.get_ref();
                self.problem(
                    k.span(),
                    format!("`{key}` in [{table_name}] applies to task agents only"),
                    Some("add protocol = \"jsonrpc\" (see docs/agent-protocol.md)".into()),
                );
            }
            spec.tasks = None;
            return;
        }
        let mut t = TaskSpec::default();
        if let Some((_, v)) = concurrency {
            let max = i128::from(crate::core::pool::MAX_REPLICAS);
            if let Some(n) = self.int_in(v, field("concurrency"), 1, max) {
                t.concurrency = n as u32;
                t.concurrency_set = true;
            }
        }
        if let Some((_, v)) = ready {
            let options = [("running", false), ("announce", true)];
            t.announce = self.choice(v, field("ready"), &options).unwrap_or(false);
        }
        if let Some((_, v)) = skills {
            let help = Some("list skill names: skills = [\"summarize\"]".to_owned());
            if let Some(list) = self.strings(v, field("skills"), help) {
                for (s, span) in list {
                    if s.is_empty() || s.chars().any(char::is_whitespace) {
                        let message = format!("skill name `{s}` must be a word without spaces");
                        self.problem(span, message, None);
                    } else if !t.skills.iter().any(|x| x == s) {
                        t.skills.push(s.to_owned());
                    }
                }
            }
        }
        if let Some((_, v)) = max_attempts
            && let Some(n) = self.int_in(v, field("max_attempts"), 1, 100)
        {
            t.max_attempts = n as u32;
        }
        if let Some((_, v)) = task_timeout {
            t.task_timeout = self.duration_max(v, field("task_timeout"), 24 * HOUR);
        }
        if let Some((_, v)) = max_queue
            && let Some(n) = self.int_in(v, field("max_queue"), 1, MAX_QUEUE)
        {
            t.max_queue = n as usize;
        }
        spec.tasks = Some(t);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_agent_keys_end_with_the_task_keys_in_order() {
        let all = super::super::agents::AGENT_KEYS;
        assert_eq!(all[all.len() - 7..], super::TASK_KEYS);
    }
}
