//! Help for unknown keys that are not typos: other common names of a key,
//! and keys put in the wrong table.

use crate::core::suggest::normalize;

/// "did you mean" for an unknown key that is a common other name of a
/// known one.
fn alias(key: &str, table: &[(&[&str], &str)]) -> Option<String> {
    let k = normalize(key);
    table
        .iter()
        .find(|(aliases, _)| aliases.contains(&k.as_str()))
        .map(|(_, target)| format!("did you mean `{target}`?"))
}

/// Help for an unknown top-level key: a key of some section, or a section that does not exist yet.
pub(crate) fn top_hint(key: &str) -> Option<String> {
    let k = normalize(key);
    let section = match k.as_str() {
        "cpu" | "memory" | "max_agents" => "[pool]",
        "data_dir" => "[paths]",
        "max_size" | "max_files" | "ring_lines" => "[logs]",
        "theme" | "keys" | "tui" | "keymap" => "[console]",
        "command" | "cwd" | "env" | "replicas" | "restart" | "depends_on" | "backoff"
        | "resources" | "stop_signal" | "stop_timeout" => {
            return Some(format!(
                "`{key}` is an agent setting: put it in an [agents.NAME] table"
            ));
        }
        "alert" | "alert_rules" | "rules" => {
            return Some("alert rules are [[alerts]] tables".to_owned());
        }
        "notifications" | "webhooks" | "notifier" | "webhook" => {
            return Some("notification targets are [[notifiers]] tables".to_owned());
        }
        "listen" | "interval" | "prometheus" => "[metrics]",
        "repositories" | "every" | "ssh_config" | "remote_timeout" => "[backup]",
        "incidents" | "backups" | "tasks" | "queue" | "audit" | "daemon" | "server" => {
            return Some(format!(
                "`{key}` is not a config section in this version; the sections are pool, paths, logs, agents, console, metrics, alerting, backup, [[alerts]], [[notifiers]]"
            ));
        }
        _ => return None,
    };
    Some(format!("`{key}` belongs in the {section} section"))
}

/// Help for an unknown key in `[agents.NAME]`: aliases, and keys of its sub-tables.
pub(crate) fn agent_hint(key: &str) -> Option<String> {
    let k = normalize(key);
    let table = match k.as_str() {
        "cpu" | "cpus" | "memory" | "mem" | "memory_limit" | "memory_limit_action" => "resources",
        "initial" | "max" | "multiplier" | "jitter" | "reset_after" => "backoff",
        "burst" | "interval" => "start_limit",
        "name" => return Some("an agent's name is its table name: [agents.NAME]".to_owned()),
        _ => {
            return alias(
                key,
                &[
                    (
                        &["cmd", "args", "argv", "exec", "program", "run"],
                        "command",
                    ),
                    (
                        &[
                            "dir",
                            "workdir",
                            "working_dir",
                            "working_directory",
                            "directory",
                            "chdir",
                        ],
                        "cwd",
                    ),
                    (&["environment", "environ", "vars", "variables"], "env"),
                    (&["count", "instances", "scale", "num_replicas"], "replicas"),
                    (&["restart_policy", "policy"], "restart"),
                    (
                        &["dependencies", "requires", "after", "needs", "depends"],
                        "depends_on",
                    ),
                    (&["kill_signal", "signal"], "stop_signal"),
                    (
                        &[
                            "timeout",
                            "kill_timeout",
                            "grace_period",
                            "stop_grace_period",
                        ],
                        "stop_timeout",
                    ),
                    (&["limits", "resource"], "resources"),
                ],
            );
        }
    };
    Some(format!(
        "`{key}` belongs in the agent's `{table}` table: {table} = {{ {key} = … }}"
    ))
}

/// Help for an unknown key in `[pool]`.
pub(crate) fn pool_hint(key: &str) -> Option<String> {
    alias(
        key,
        &[
            (&["mem", "ram"], "memory"),
            (&["cores"], "cpu"),
            (
                &["max_replicas", "max_processes", "agents", "replicas"],
                "max_agents",
            ),
        ],
    )
}

/// Help for an unknown key in `[paths]`.
pub(crate) fn paths_hint(key: &str) -> Option<String> {
    alias(
        key,
        &[(&["data", "dir", "state_dir", "data_directory"], "data_dir")],
    )
}

/// Help for an unknown key in `[logs]`.
pub(crate) fn logs_hint(key: &str) -> Option<String> {
    alias(
        key,
        &[
            (&["size", "max_bytes", "rotate_size"], "max_size"),
            (&["keep", "files", "rotate", "backups"], "max_files"),
            (&["lines", "ring", "buffer_lines"], "ring_lines"),
        ],
    )
}

/// Help for an unknown key in an agent's `backoff`.
pub(crate) fn backoff_hint(key: &str) -> Option<String> {
    alias(
        key,
        &[
            (
                &["min", "start", "base", "delay", "initial_delay"],
                "initial",
            ),
            (&["cap", "max_delay", "maximum"], "max"),
            (&["factor", "mult"], "multiplier"),
            (&["reset", "reset_time"], "reset_after"),
        ],
    )
}

/// Help for an unknown key in an agent's `start_limit`.
pub(crate) fn start_limit_hint(key: &str) -> Option<String> {
    alias(
        key,
        &[
            (&["max_starts", "starts", "count", "limit"], "burst"),
            (&["window", "period", "within"], "interval"),
        ],
    )
}

/// Help for an unknown key in an agent's `resources`.
pub(crate) fn resources_hint(key: &str) -> Option<String> {
    alias(
        key,
        &[
            (&["mem", "ram"], "memory"),
            (&["cores", "cpus"], "cpu"),
            (
                &["limit", "max_memory", "memory_max", "mem_limit"],
                "memory_limit",
            ),
            (
                &["action", "on_limit", "limit_action"],
                "memory_limit_action",
            ),
        ],
    )
}
