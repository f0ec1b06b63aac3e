//! Loader tests: one case per kind of error with its exact location, a file
//! full of errors, and files that load.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

const GIB: u64 = 1 << 30;
const HOST: HostFacts = HostFacts {
    cpus: 8.0,
    memory: 16 * GIB,
};
const FILE: &str = "/etc/fleet/autonomos.toml";

fn load(text: &str) -> Result<Config, ConfigErrors> {
    load_str(text, Some(Path::new(FILE)), &HOST)
}

fn errors(text: &str) -> Vec<Diagnostic> {
    match load(text) {
        Ok(cfg) => panic!("expected errors, loaded {cfg:#?}\n--- input ---\n{text}"),
        Err(e) => e.diagnostics,
    }
}

fn ok(text: &str) -> Config {
    match load(text) {
        Ok(cfg) => cfg,
        Err(e) => panic!("expected success:\n{e}\n--- input ---\n{text}"),
    }
}

/// One kind of error: the input, where the one diagnostic must point, and
/// text its message (and help) must contain.
struct Case {
    name: &'static str,
    text: &'static str,
    at: (usize, usize),
    message: &'static str,
    help: Option<&'static str>,
}

const fn case(
    name: &'static str,
    text: &'static str,
    at: (usize, usize),
    message: &'static str,
    help: Option<&'static str>,
) -> Case {
    Case {
        name,
        text,
        at,
        message,
        help,
    }
}

const CASES: &[Case] = &[
    // --- unknown keys, everywhere ---
    case(
        "unknown top-level key",
        "[agent.a]\ncommand = \"x\"\n",
        (1, 2),
        "unknown key `agent` at the top level",
        Some("did you mean `agents`?"),
    ),
    case(
        "reserved top-level key",
        "[audit]\nkeep = 1\n",
        (1, 2),
        "unknown key `audit` at the top level",
        Some("pool, paths, logs, agents"),
    ),
    case(
        "agent key at top level",
        "replicas = 2\n",
        (1, 1),
        "unknown key `replicas` at the top level",
        Some("[agents.NAME]"),
    ),
    case(
        "unknown agent key",
        "[agents.researcher]\ncommand = \"x\"\nstop_timout = \"5s\"\n",
        (3, 1),
        "unknown key `stop_timout` in [agents.researcher]",
        Some("did you mean `stop_timeout`?"),
    ),
    case(
        "agent key alias",
        "[agents.a]\ncommand = \"x\"\nworkdir = \"w\"\n",
        (3, 1),
        "unknown key `workdir` in [agents.a]",
        Some("did you mean `cwd`?"),
    ),
    case(
        "misplaced resources key",
        "[agents.a]\ncommand = \"x\"\ncpu = 1\n",
        (3, 1),
        "unknown key `cpu` in [agents.a]",
        Some("resources = { cpu = … }"),
    ),
    case(
        "unknown key in inline backoff",
        "[agents.a]\ncommand = \"x\"\nbackoff = { inital = \"1s\" }\n",
        (3, 13),
        "unknown key `inital` in [agents.a.backoff]",
        Some("did you mean `initial`?"),
    ),
    case(
        "unknown key in start_limit sub-table",
        "[agents.a]\ncommand = \"x\"\n[agents.a.start_limit]\nbursts = 3\n",
        (4, 1),
        "unknown key `bursts` in [agents.a.start_limit]",
        Some("did you mean `burst`?"),
    ),
    case(
        "unknown key in resources",
        "[agents.a]\ncommand = \"x\"\nresources = { memroy = \"1GiB\" }\n",
        (3, 15),
        "unknown key `memroy` in [agents.a.resources]",
        Some("did you mean `memory`?"),
    ),
    case(
        "unknown key in pool",
        "[pool]\nmax_agent = 5\n",
        (2, 1),
        "unknown key `max_agent` in [pool]",
        Some("did you mean `max_agents`?"),
    ),
    case(
        "unknown key in paths",
        "[paths]\ndatadir = \"/x\"\n",
        (2, 1),
        "unknown key `datadir` in [paths]",
        Some("did you mean `data_dir`?"),
    ),
    case(
        "unknown key in logs",
        "[logs]\nmax_file = 3\n",
        (2, 1),
        "unknown key `max_file` in [logs]",
        Some("did you mean `max_files`?"),
    ),
    // --- names ---
    case(
        "invalid agent name",
        "[agents.Web_Server]\ncommand = \"x\"\n",
        (1, 9),
        "invalid agent name `Web_Server`",
        Some("[a-z0-9][a-z0-9_-]{0,62}"),
    ),
    case(
        "quoted agent name",
        "[agents.\"my agent\"]\ncommand = \"x\"\n",
        (1, 9),
        "invalid agent name `my agent`",
        Some("try `my-agent`"),
    ),
    case(
        "agent not a table",
        "[agents]\na = 5\n",
        (2, 5),
        "`a` in [agents] must be a table, found an integer",
        Some("[agents.a]"),
    ),
    case(
        "array of agent tables",
        "[[agents]]\ncommand = \"x\"\n",
        (1, 1),
        "`agents` must be a table, found an array",
        Some("not [[agents]]"),
    ),
    // --- command ---
    case(
        "missing command",
        "[agents.a]\nreplicas = 1\n",
        (1, 1),
        "agent `a` has no `command`",
        Some("command = ["),
    ),
    case(
        "empty command array",
        "[agents.a]\ncommand = []\n",
        (2, 11),
        "`command` in [agents.a] is empty",
        None,
    ),
    case(
        "blank command string",
        "[agents.a]\ncommand = \"   \"\n",
        (2, 11),
        "`command` in [agents.a] is empty",
        None,
    ),
    case(
        "empty program name",
        "[agents.a]\ncommand = [\"\", \"x\"]\n",
        (2, 11),
        "the program name in `command` in [agents.a] is empty",
        None,
    ),
    case(
        "command wrong type",
        "[agents.a]\ncommand = 5\n",
        (2, 11),
        "`command` in [agents.a] must be an array of strings or a command string, found an integer",
        None,
    ),
    case(
        "command array with a number",
        "[agents.a]\ncommand = [\"sleep\", 5]\n",
        (2, 21),
        "`command` in [agents.a] must contain only strings, found an integer",
        None,
    ),
    case(
        "unterminated quote in command",
        "[agents.a]\ncommand = \"echo 'hi\"\n",
        (2, 11),
        "`command` in [agents.a] cannot be split into words",
        Some("unterminated single quote"),
    ),
    case(
        "shell syntax in command",
        "[agents.a]\ncommand = \"python3 w.py > out.log\"\n",
        (2, 11),
        "is not run by a shell: `>` would be passed to the program",
        Some("[\"sh\", \"-c\""),
    ),
    // --- cwd, env, inherit_env ---
    case(
        "empty cwd",
        "[agents.a]\ncommand = \"x\"\ncwd = \"\"\n",
        (3, 7),
        "`cwd` in [agents.a] is empty",
        None,
    ),
    case(
        "tilde cwd",
        "[agents.a]\ncommand = \"x\"\ncwd = \"~/work\"\n",
        (3, 7),
        "starts with `~`, which is not expanded",
        None,
    ),
    case(
        "env value not a string",
        "[agents.a]\ncommand = \"x\"\nenv = { MODEL = \"m\", TEMPERATURE = 0.2 }\n",
        (3, 36),
        "`env.TEMPERATURE` in [agents.a] must be a string, found a float",
        Some("TEMPERATURE = \"0.2\""),
    ),
    case(
        "env bool",
        "[agents.a]\ncommand = \"x\"\n[agents.a.env]\nDEBUG = true\n",
        (4, 9),
        "must be a string, found a boolean",
        Some("DEBUG = \"true\""),
    ),
    case(
        "env bad name",
        "[agents.a]\ncommand = \"x\"\nenv = { \"1X\" = \"a\" }\n",
        (3, 9),
        "invalid environment variable name `1X` in `env`",
        None,
    ),
    case(
        "env reserved name",
        "[agents.a]\ncommand = \"x\"\nenv = { AUTONOMOS_AGENT = \"a\" }\n",
        (3, 9),
        "`AUTONOMOS_AGENT` in `env` is reserved",
        None,
    ),
    case(
        "env not a table",
        "[agents.a]\ncommand = \"x\"\nenv = [\"A=1\"]\n",
        (3, 7),
        "`env` in [agents.a] must be a table, found an array",
        Some("env = { NAME = \"value\" }"),
    ),
    case(
        "inherit_env bad entry",
        "[agents.a]\ncommand = \"x\"\ninherit_env = [\"PATH\", \"MY-VAR\"]\n",
        (3, 24),
        "invalid environment variable name `MY-VAR` in `inherit_env`",
        None,
    ),
    // --- replicas, restart ---
    case(
        "absurd replicas",
        "[agents.a]\ncommand = \"x\"\nreplicas = 1000000000\n",
        (3, 12),
        "is absurd",
        None,
    ),
    case(
        "replicas beyond i128",
        "[agents.a]\ncommand = \"x\"\nreplicas = 99999999999999999999999999999999999999999\n",
        (3, 12),
        "is absurd",
        None,
    ),
    case(
        "too many replicas",
        "[agents.a]\ncommand = \"x\"\nreplicas = 1025\n",
        (3, 12),
        "`replicas` in [agents.a] must be at most 1024, found 1025",
        None,
    ),
    case(
        "negative replicas",
        "[agents.a]\ncommand = \"x\"\nreplicas = -1\n",
        (3, 12),
        "`replicas` in [agents.a] cannot be negative, found -1",
        None,
    ),
    case(
        "quoted replicas",
        "[agents.a]\ncommand = \"x\"\nreplicas = \"2\"\n",
        (3, 12),
        "`replicas` in [agents.a] must be an integer, found a string",
        Some("remove the quotes: replicas = 2"),
    ),
    case(
        "fractional replicas",
        "[agents.a]\ncommand = \"x\"\nreplicas = 2.0\n",
        (3, 12),
        "must be an integer, found a float",
        Some("replicas = 2"),
    ),
    case(
        "bad restart policy",
        "[agents.a]\ncommand = \"x\"\nrestart = \"on_failure\"\n",
        (3, 11),
        "invalid value `on_failure` for `restart` in [agents.a]",
        Some("did you mean \"on-failure\"?"),
    ),
    // --- durations ---
    case(
        "duration without unit",
        "[agents.a]\ncommand = \"x\"\nstop_timeout = 10\n",
        (3, 16),
        "`stop_timeout` in [agents.a] must be a duration string, found an integer",
        Some("stop_timeout = \"10s\""),
    ),
    case(
        "duration with unknown unit",
        "[agents.a]\ncommand = \"x\"\nstop_timeout = \"10 parsecs\"\n",
        (3, 16),
        "invalid duration for `stop_timeout` in [agents.a]",
        Some("unknown unit `parsecs`"),
    ),
    case(
        "stop_timeout too long",
        "[agents.a]\ncommand = \"x\"\nstop_timeout = \"2h\"\n",
        (3, 16),
        "`stop_timeout` in [agents.a] must be at most 1h, found 2h",
        None,
    ),
    case(
        "min_uptime too long",
        "[agents.a]\ncommand = \"x\"\nmin_uptime = \"61m\"\n",
        (3, 14),
        "`min_uptime` in [agents.a] must be at most 1h, found 1h1m",
        None,
    ),
    // --- backoff ---
    case(
        "backoff max below initial",
        "[agents.a]\ncommand = \"x\"\nbackoff = { initial = \"10s\", max = \"5s\" }\n",
        (3, 36),
        "`max` in [agents.a.backoff] (5s) is less than `initial` (10s)",
        None,
    ),
    case(
        "backoff initial above default max",
        "[agents.a]\ncommand = \"x\"\n[agents.a.backoff]\ninitial = \"1m\"\n",
        (4, 11),
        "`initial` in [agents.a.backoff] (1m) is more than `max` (30s, the default)",
        None,
    ),
    case(
        "backoff max too long",
        "[agents.a]\ncommand = \"x\"\nbackoff.max = \"2d\"\n",
        (3, 15),
        "`max` in [agents.a.backoff] must be at most 1d, found 2d",
        None,
    ),
    case(
        "backoff multiplier below 1",
        "[agents.a]\ncommand = \"x\"\nbackoff.multiplier = 0.5\n",
        (3, 22),
        "`multiplier` in [agents.a.backoff] must be between 1 and 100, found 0.5",
        None,
    ),
    case(
        "backoff jitter above 1",
        "[agents.a]\ncommand = \"x\"\nbackoff = { jitter = 2 }\n",
        (3, 22),
        "`jitter` in [agents.a.backoff] must be between 0 and 1, found 2",
        None,
    ),
    case(
        "backoff reset_after too long",
        "[agents.a]\ncommand = \"x\"\nbackoff = { reset_after = \"8d\" }\n",
        (3, 27),
        "must be at most 7d, found 8d",
        None,
    ),
    case(
        "backoff not a table",
        "[agents.a]\ncommand = \"x\"\nbackoff = \"1s\"\n",
        (3, 11),
        "`backoff` in [agents.a] must be a table, found a string",
        None,
    ),
    // --- start_limit ---
    case(
        "start_limit burst zero",
        "[agents.a]\ncommand = \"x\"\nstart_limit = { burst = 0 }\n",
        (3, 25),
        "`burst` in [agents.a.start_limit] must be between 1 and 10000, found 0",
        None,
    ),
    case(
        "start_limit interval zero",
        "[agents.a]\ncommand = \"x\"\nstart_limit = { interval = \"0s\" }\n",
        (3, 28),
        "`interval` in [agents.a.start_limit] must be more than 0",
        None,
    ),
    // --- stop_signal ---
    case(
        "unknown stop signal",
        "[agents.a]\ncommand = \"x\"\nstop_signal = \"SIGTREM\"\n",
        (3, 15),
        "unknown signal `SIGTREM` for `stop_signal` in [agents.a]",
        Some("did you mean \"SIGTERM\"?"),
    ),
    case(
        "stop signal wrong type",
        "[agents.a]\ncommand = \"x\"\nstop_signal = true\n",
        (3, 15),
        "`stop_signal` in [agents.a] must be a signal name, found a boolean",
        None,
    ),
    // --- resources ---
    case(
        "cpu request above the pool",
        "[pool]\ncpu = 2\n\n[agents.a]\ncommand = \"x\"\nresources = { cpu = 4 }\n",
        (6, 21),
        "agent `a` requests 4 CPUs per replica but the whole pool has 2",
        None,
    ),
    case(
        "memory request above the host",
        "[agents.a]\ncommand = \"x\"\nresources = { memory = \"32GiB\" }\n",
        (3, 24),
        "agent `a` requests 32GiB of memory per replica but the whole pool has 16GiB (this host's",
        None,
    ),
    case(
        "cpu request out of range",
        "[pool]\ncpu = 4096\n[agents.a]\ncommand = \"x\"\nresources = { cpu = -1 }\n",
        (5, 21),
        "`cpu` in [agents.a.resources] must be between 0 and 1024, found -1",
        None,
    ),
    case(
        "memory limit too small",
        "[agents.a]\ncommand = \"x\"\nresources = { memory_limit = \"512KiB\" }\n",
        (3, 30),
        "`memory_limit` in [agents.a.resources] must be at least 1MiB, found 512KiB",
        None,
    ),
    case(
        "memory limit below request",
        "[agents.a]\ncommand = \"x\"\nresources = { memory = \"2GiB\", memory_limit = \"1GiB\" }\n",
        (3, 47),
        "(1GiB) is below the memory request (2GiB)",
        None,
    ),
    case(
        "bad memory size",
        "[agents.a]\ncommand = \"x\"\nresources = { memory = \"lots\" }\n",
        (3, 24),
        "invalid size for `memory` in [agents.a.resources]",
        Some("MiB"),
    ),
    case(
        "bad limit action",
        "[agents.a]\ncommand = \"x\"\nresources = { memory_limit = \"1GiB\", memory_limit_action = \"kill\" }\n",
        (3, 60),
        "invalid value `kill` for `memory_limit_action` in [agents.a.resources]",
        Some("restart, stop, alert"),
    ),
    // --- depends_on ---
    case(
        "unknown dependency",
        "[agents.planner]\ncommand = \"p\"\n[agents.worker]\ncommand = \"w\"\ndepends_on = [\"plannr\"]\n",
        (5, 15),
        "agent `worker` depends on unknown agent `plannr`",
        Some("did you mean `planner`?"),
    ),
    case(
        "self dependency",
        "[agents.a]\ncommand = \"x\"\ndepends_on = [\"a\"]\n",
        (3, 15),
        "agent `a` depends on itself",
        None,
    ),
    case(
        "dependency cycle",
        "[agents.a]\ncommand = \"x\"\ndepends_on = [\"b\"]\n[agents.b]\ncommand = \"x\"\ndepends_on = [\"a\"]\n",
        (3, 15),
        "dependency cycle: a → b → a",
        None,
    ),
    case(
        "depends_on as a string",
        "[agents.a]\ncommand = \"x\"\ndepends_on = \"b\"\n",
        (3, 14),
        "`depends_on` in [agents.a] must be an array of strings, found a string",
        Some("depends_on = [\"b\"]"),
    ),
    // --- duplicates (from the parser) ---
    case(
        "duplicate agent table",
        "[agents.a]\ncommand = \"x\"\n\n[agents.a]\nreplicas = 2\n",
        (4, 1),
        "duplicate table `[agents.a]`",
        Some("first defined at line 1"),
    ),
    case(
        "duplicate key",
        "[agents.a]\ncommand = \"x\"\nreplicas = 1\nreplicas = 2\n",
        (4, 1),
        "duplicate key `replicas`",
        Some("already set at line 3"),
    ),
    // --- pool, paths, logs ---
    case(
        "pool not a table",
        "pool = 5\n",
        (1, 8),
        "`pool` must be a table, found an integer",
        Some("[pool]"),
    ),
    case(
        "pool cpu zero",
        "[pool]\ncpu = 0\n",
        (2, 7),
        "`cpu` in [pool] must be more than 0",
        None,
    ),
    case(
        "pool max_agents too large",
        "[pool]\nmax_agents = 10001\n",
        (2, 14),
        "`max_agents` in [pool] must be between 1 and 10000, found 10001",
        None,
    ),
    case(
        "pool memory bad size",
        "[pool]\nmemory = \"8 parsecs\"\n",
        (2, 10),
        "invalid size for `memory` in [pool]",
        Some("unknown unit `parsecs`"),
    ),
    case(
        "pool memory negative",
        "[pool]\nmemory = -1\n",
        (2, 10),
        "`memory` in [pool] cannot be negative, found -1",
        None,
    ),
    case(
        "data_dir wrong type",
        "[paths]\ndata_dir = 5\n",
        (2, 12),
        "`data_dir` in [paths] must be a string, found an integer",
        None,
    ),
    case(
        "log max_size too small",
        "[logs]\nmax_size = \"1KiB\"\n",
        (2, 12),
        "`max_size` in [logs] must be between 4KiB and 64GiB, found 1KiB",
        None,
    ),
    case(
        "log max_files too many",
        "[logs]\nmax_files = 101\n",
        (2, 13),
        "`max_files` in [logs] must be between 0 and 100, found 101",
        None,
    ),
    case(
        "log ring_lines too many",
        "[logs]\nring_lines = 100001\n",
        (2, 14),
        "`ring_lines` in [logs] must be between 0 and 100000, found 100001",
        None,
    ),
    // --- syntax ---
    case(
        "invalid escape is reported once",
        "[agents.a]\ncommand = \"x\"\nstop_timeout = \"bad \\q\"\n",
        (3, 22),
        "invalid TOML",
        None,
    ),
    case(
        "date-time where a duration goes",
        "[agents.a]\ncommand = \"x\"\nstop_timeout = 1979-05-27\n",
        (3, 16),
        "must be a duration string, found a date-time",
        None,
    ),
    case(
        "missing value",
        "[agents.a]\ncommand = \"x\"\nreplicas =\n",
        (3, 11),
        "invalid TOML",
        None,
    ),
    case(
        "alert expression names an unknown metric",
        "[[alerts]]\nname = \"x\"\nexpr = \"restrats > 3\"\nseverity = \"major\"\n",
        (3, 9),
        "unknown metric `restrats`; did you mean `restarts`?",
        Some("metrics: host.cpu"),
    ),
    case(
        "alert expression error deep inside",
        "[[alerts]]\nname = \"x\"\nexpr = \"cpu > 3 && failed > 0\"\nseverity = \"major\"\n",
        (3, 17),
        "write `and` instead of `&`",
        Some("functions: avg"),
    ),
    case(
        "alert severity",
        "[[alerts]]\nname = \"x\"\nexpr = \"failed > 0\"\nseverity = \"urgent\"\n",
        (4, 12),
        "invalid value `urgent` for `severity` in [alerts]",
        Some("critical, major, minor"),
    ),
    case(
        "alert without severity",
        "[[alerts]]\nname = \"x\"\nexpr = \"failed > 0\"\n",
        (2, 8),
        "alert `x` has no `severity`",
        Some("Level 1"),
    ),
    case(
        "agent selector on a host rule",
        "[[alerts]]\nname = \"x\"\nexpr = \"host.cpu > 9\"\nseverity = \"minor\"\nagents = [\"a\"]\n",
        (5, 10),
        "reads only host metrics",
        Some("remove `agents`"),
    ),
    case(
        "alert key misspelt",
        "[[alerts]]\nname = \"x\"\nexpression = \"failed > 0\"\nseverity = \"minor\"\n",
        (3, 1),
        "unknown key `expression` in [alerts]",
        Some("did you mean `expr`?"),
    ),
    case(
        "webhook with an unknown scheme",
        "[[notifiers]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"ftp://x/\"\n",
        (4, 7),
        "is not an http:// or https:// URL",
        Some("https://host/path"),
    ),
    case(
        "ca_file with a plain http webhook",
        "[[notifiers]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://x/\"\nca_file = \"ca.pem\"\n",
        (5, 1),
        "`ca_file` applies to https:// URLs only",
        Some("remove it"),
    ),
    case(
        "ca_file that cannot be read",
        "[[notifiers]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"https://x/\"\nca_file = \"/nonexistent/ca.pem\"\n",
        (5, 11),
        "cannot use /nonexistent/ca.pem",
        Some("PEM file"),
    ),
    case(
        "ca_file on an exec notifier",
        "[[notifiers]]\nname = \"page\"\nkind = \"exec\"\ncommand = [\"page\"]\nca_file = \"/x\"\n",
        (5, 1),
        "`ca_file` is for webhook notifiers",
        Some("`command`"),
    ),
    case(
        "exec notifier without command",
        "[[notifiers]]\nname = \"page\"\nkind = \"exec\"\n",
        (3, 8),
        "exec notifier `page` has no `command`",
        Some("stdin"),
    ),
    case(
        "metrics listen address",
        "[metrics]\nlisten = \"localhost:9464\"\n",
        (2, 10),
        "is not an address",
        Some("127.0.0.1:9464"),
    ),
];

#[test]
fn every_error_kind_is_located() {
    let mut failures = Vec::new();
    for c in CASES {
        let found = errors(c.text);
        let rendered: Vec<String> = found.iter().map(ToString::to_string).collect();
        let report = || format!("case `{}`:\n{}\n", c.name, rendered.join("\n\n"));
        if found.len() != 1 {
            failures.push(format!("expected exactly one diagnostic; {}", report()));
            continue;
        }
        let d = &found[0];
        if (d.line, d.column) != c.at {
            failures.push(format!("expected {}:{}; {}", c.at.0, c.at.1, report()));
        }
        if !d.message.contains(c.message) {
            failures.push(format!(
                "expected message with {:?}; {}",
                c.message,
                report()
            ));
        }
        if let Some(help) = c.help
            && !d.help.as_deref().is_some_and(|h| h.contains(help))
        {
            failures.push(format!("expected help with {help:?}; {}", report()));
        }
        if d.file != FILE {
            failures.push(format!("expected file {FILE}; {}", report()));
        }
        if d.line_text.is_empty() && !c.text.is_empty() {
            failures.push(format!("no source line; {}", report()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn snippet_is_the_offending_text() {
    let d = &errors("[agents.a]\ncommand = \"x\"\nreplicas = 1000000000 # oops\n")[0];
    assert_eq!(d.snippet, "1000000000");
    assert_eq!(d.line_text, "replicas = 1000000000 # oops");
    let d = &errors("[agents.a]\ncommand = \"x\"\nstop_timout = \"5s\"\n")[0];
    assert_eq!(d.snippet, "stop_timout");
    let d = &errors("[agents.a]\nreplicas = 1\n")[0];
    assert_eq!(d.snippet, "[agents.a]");
    let d = &errors("[agents.a]\ncommand = \"x\"\n[agents.a]\n")[0];
    assert_eq!(d.snippet, "[agents.a]");
}

const MANY: &str = r#"# A config with one mistake of each sort, spread over the file.
[pool]
cpu = 4
memory = "8GiB"
max_agent = 10

[logs]
max_files = 1000

[agents.planner]
command = ["python3", "-m", "planner"]
replicas = -2

[agents.Researcher]
command = "python3 -m researcher"
stop_timout = "5s"
env = { TEMPERATURE = 0.2 }
depends_on = ["plannr", "critic"]

[agents.critic]
depends_on = ["critic"]
restart = "sometimes"

[agents.planner]
cwd = "x"

[alerts]
email = "ops@example.com"
"#;

#[test]
fn all_errors_in_one_run_in_source_order() {
    let found = errors(MANY);
    let got: Vec<(usize, usize, &str)> = found
        .iter()
        .map(|d| (d.line, d.column, d.message.as_str()))
        .collect();
    let expected: &[(usize, usize, &str)] = &[
        (5, 1, "unknown key `max_agent` in [pool]"),
        (
            8,
            13,
            "`max_files` in [logs] must be between 0 and 100, found 1000",
        ),
        (
            12,
            12,
            "`replicas` in [agents.planner] cannot be negative, found -2",
        ),
        (14, 9, "invalid agent name `Researcher`"),
        (16, 1, "unknown key `stop_timout` in [agents.Researcher]"),
        (
            17,
            23,
            "`env.TEMPERATURE` in [agents.Researcher] must be a string",
        ),
        (
            18,
            15,
            "agent `Researcher` depends on unknown agent `plannr`",
        ),
        (20, 1, "agent `critic` has no `command`"),
        (21, 15, "agent `critic` depends on itself"),
        (
            22,
            11,
            "invalid value `sometimes` for `restart` in [agents.critic]",
        ),
        (24, 1, "duplicate table `[agents.planner]`"),
        (27, 1, "`alerts` must be an array of tables ([[alerts]])"),
    ];
    let shown = found
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n\n");
    assert_eq!(got.len(), expected.len(), "{shown}");
    for (g, e) in got.iter().zip(expected) {
        assert_eq!((g.0, g.1), (e.0, e.1), "{shown}");
        assert!(
            g.2.contains(e.2),
            "{:?} does not contain {:?}\n{shown}",
            g.2,
            e.2
        );
    }
    let mut sorted = got.clone();
    sorted.sort_by_key(|&(l, c, _)| (l, c));
    assert_eq!(got, sorted);
    let text = ConfigErrors {
        diagnostics: found.clone(),
    }
    .to_string();
    assert!(text.contains(&format!("--> {FILE}:16:1")), "{text}");
    assert!(text.contains("did you mean `stop_timeout`?"), "{text}");
    assert_eq!(text.matches("\n\nerror: ").count(), 11, "{text}");
}

const FULL: &str = r#"
[pool]
cpu = 4
memory = "8GiB"
max_agents = 500

[paths]
data_dir = "state"

[logs]
max_size = "8MiB"
max_files = 3
ring_lines = 200

[agents.researcher]
command = ["python3", "-m", "worker"]
cwd = "work"
env = { MODEL = "llama3", TEMPERATURE = "0.2" }
inherit_env = ["PATH", "HOME", "PATH"]
replicas = 2
restart = "on-failure"
backoff = { initial = "250ms", max = "1m", multiplier = 3, jitter = 0.5, reset_after = "2m" }
min_uptime = "2s"
start_limit = { burst = 3, interval = "30s" }
stop_signal = "INT"
stop_timeout = "1m30s"
resources = { cpu = 0.5, memory = "256MiB", memory_limit = "1GiB", memory_limit_action = "stop" }
depends_on = ["planner", "planner"]

[agents.planner]
command = "python3 -m planner --name 'the planner'"
cwd = "/srv/planner"
"#;

#[test]
fn a_full_config_loads_with_every_value() {
    let cfg = ok(FULL);
    assert_eq!(cfg.source.as_deref(), Some(Path::new(FILE)));
    assert_eq!(
        cfg.pool,
        PoolSpec {
            cpu: 4.0,
            memory: 8 * GIB,
            max_agents: 500
        }
    );
    assert_eq!(
        cfg.paths.data_dir.as_deref(),
        Some(Path::new("/etc/fleet/state"))
    );
    assert_eq!(
        cfg.logs,
        LogSpec {
            max_size: 8 << 20,
            max_files: 3,
            ring_lines: 200
        }
    );
    let names: Vec<&str> = cfg.agents.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["researcher", "planner"]);
    let r = cfg.agent("researcher").expect("researcher");
    assert_eq!(r.command, ["python3", "-m", "worker"]);
    assert_eq!(r.cwd.as_deref(), Some(Path::new("/etc/fleet/work")));
    assert_eq!(r.env.get("MODEL").map(String::as_str), Some("llama3"));
    assert_eq!(r.env.get("TEMPERATURE").map(String::as_str), Some("0.2"));
    assert_eq!(r.inherit_env, ["PATH", "HOME"]);
    assert_eq!(r.replicas, 2);
    assert_eq!(r.restart, RestartPolicy::OnFailure);
    assert_eq!(
        r.backoff,
        BackoffSpec {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(60),
            multiplier: 3.0,
            jitter: 0.5,
            reset_after: Duration::from_secs(120),
        }
    );
    assert_eq!(r.min_uptime, Duration::from_secs(2));
    assert_eq!(
        r.start_limit,
        StartLimitSpec {
            burst: 3,
            interval: Duration::from_secs(30)
        }
    );
    assert_eq!(r.stop_signal, libc::SIGINT);
    assert_eq!(r.stop_timeout, Duration::from_secs(90));
    assert_eq!(
        r.resources,
        ResourceSpec {
            cpu: 0.5,
            memory: 256 << 20,
            memory_limit: Some(GIB),
            memory_limit_action: LimitAction::Stop,
        }
    );
    assert_eq!(r.depends_on, ["planner"]);
    let p = cfg.agent("planner").expect("planner");
    assert_eq!(
        p.command,
        ["python3", "-m", "planner", "--name", "the planner"]
    );
    assert_eq!(p.cwd.as_deref(), Some(Path::new("/srv/planner")));
    assert_eq!(topo_order(&cfg), ["planner", "researcher"]);
}

#[test]
fn defaults_fill_everything_in() {
    let cfg = ok("[agents.a]\ncommand = \"run\"\n");
    assert_eq!(
        cfg.pool,
        PoolSpec {
            cpu: 8.0,
            memory: 16 * GIB,
            max_agents: 512
        }
    );
    assert_eq!(cfg.paths, PathsSpec::default());
    assert_eq!(cfg.logs, LogSpec::default());
    let a = &cfg.agents[0];
    assert_eq!(a.cwd, None);
    assert!(a.env.is_empty());
    assert_eq!(
        a.inherit_env,
        ["PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ"]
    );
    assert_eq!(a.replicas, 1);
    assert_eq!(a.restart, RestartPolicy::Always);
    assert_eq!(
        a.backoff,
        BackoffSpec {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.1,
            reset_after: Duration::from_secs(60),
        }
    );
    assert_eq!(a.min_uptime, Duration::from_secs(1));
    assert_eq!(
        a.start_limit,
        StartLimitSpec {
            burst: 5,
            interval: Duration::from_secs(10)
        }
    );
    assert_eq!(a.stop_signal, libc::SIGTERM);
    assert_eq!(a.stop_timeout, Duration::from_secs(10));
    assert_eq!(
        a.resources,
        ResourceSpec {
            cpu: 0.0,
            memory: 0,
            memory_limit: None,
            memory_limit_action: LimitAction::Restart,
        }
    );
    assert!(a.depends_on.is_empty());
}

#[test]
fn empty_file_is_an_empty_fleet() {
    let cfg = ok("");
    assert!(cfg.agents.is_empty());
    assert!(cfg.render_effective().contains("none"));
}

#[test]
fn sub_tables_and_inline_tables_are_the_same() {
    let inline = ok(
        "[agents.a]\ncommand = \"x\"\nbackoff = { initial = \"1s\", max = \"2m\" }\nresources = { cpu = 1 }\n",
    );
    let sub = ok(
        "[agents.a]\ncommand = \"x\"\n[agents.a.backoff]\ninitial = \"1s\"\nmax = \"2m\"\n[agents.a.resources]\ncpu = 1\n",
    );
    let dotted = ok(
        "agents.a.command = \"x\"\nagents.a.backoff.initial = \"1s\"\nagents.a.backoff.max = \"2m\"\nagents.a.resources.cpu = 1\n",
    );
    let sub_first = ok(
        "[agents.a.backoff]\ninitial = \"1s\"\nmax = \"2m\"\n[agents.a]\ncommand = \"x\"\nresources = { cpu = 1 }\n",
    );
    assert_eq!(inline, sub);
    assert_eq!(inline, dotted);
    assert_eq!(inline, sub_first);
}

#[test]
fn agents_keep_file_order_even_when_reopened_by_sub_tables() {
    let cfg = ok(
        "[agents.b.backoff]\ninitial = \"1s\"\n[agents.a]\ncommand = \"a\"\n[agents.b]\ncommand = \"b\"\n[agents.c]\ncommand = \"c\"\n",
    );
    let names: Vec<&str> = cfg.agents.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["b", "a", "c"]);
}

#[test]
fn relative_paths_without_a_file_stay_relative() {
    let cfg = load_str(
        "[paths]\ndata_dir = \"d\"\n[agents.a]\ncommand = \"x\"\ncwd = \"w\"\n",
        None,
        &HOST,
    )
    .expect("loads");
    assert_eq!(cfg.source, None);
    assert_eq!(cfg.paths.data_dir, Some(PathBuf::from("d")));
    assert_eq!(cfg.agents[0].cwd, Some(PathBuf::from("w")));
    let err = load_str("bogus = 1\n", None, &HOST).expect_err("bogus");
    assert_eq!(err.diagnostics[0].file, "<config>");
}

#[test]
fn numbers_in_every_toml_spelling() {
    let cfg = ok(
        "[pool]\ncpu = 2.5\nmemory = 1_073_741_824\nmax_agents = 0x10\n[agents.a]\ncommand = [\"x\"]\nreplicas = +3\nbackoff = { multiplier = 1, jitter = 0 }\n",
    );
    assert_eq!(cfg.pool.cpu, 2.5);
    assert_eq!(cfg.pool.memory, GIB);
    assert_eq!(cfg.pool.max_agents, 16);
    assert_eq!(cfg.agents[0].replicas, 3);
    assert_eq!(cfg.agents[0].backoff.multiplier, 1.0);
    assert_eq!(cfg.agents[0].backoff.jitter, 0.0);
    let found = errors("[pool]\ncpu = nan\n");
    assert!(found[0].message.contains("finite"), "{}", found[0]);
}

#[test]
fn unreadable_file_is_one_diagnostic() {
    let missing = Path::new("/nonexistent/dir/autonomos.toml");
    let err = load_file(missing, &HOST).expect_err("missing");
    assert_eq!(err.diagnostics.len(), 1);
    let text = err.to_string();
    assert!(text.contains("/nonexistent/dir/autonomos.toml"), "{text}");
    assert!(text.contains("No such file"), "{text}");
}

#[test]
fn load_file_resolves_against_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("fleet.toml");
    std::fs::write(&path, "[agents.a]\ncommand = \"x\"\ncwd = \"work\"\n").expect("write");
    let cfg = load_file(&path, &HOST).expect("loads");
    assert_eq!(cfg.source.as_deref(), Some(path.as_path()));
    assert_eq!(cfg.agents[0].cwd, Some(dir.path().join("work")));
}

#[test]
fn effective_config_is_rendered() {
    let cfg = ok(FULL);
    let text = cfg.render_effective();
    for needle in [
        "config        /etc/fleet/autonomos.toml",
        "pool          cpu 4, memory 8GiB, max_agents 500",
        "paths         data_dir /etc/fleet/state",
        "logs          max_size 8MiB, max_files 3, ring_lines 200",
        "start order: planner → researcher",
        "[agents.researcher]",
        "  command       python3 -m worker\n",
        "  cwd           /etc/fleet/work\n",
        "  env           MODEL=llama3 TEMPERATURE=0.2\n",
        "  replicas      2\n",
        "  restart       on-failure\n",
        "  backoff       initial 250ms, max 1m, multiplier 3, jitter 0.5, reset_after 2m\n",
        "  min_uptime    2s\n",
        "  start_limit   burst 3, interval 30s\n",
        "  stop_signal   SIGINT\n",
        "  stop_timeout  1m30s (then SIGKILL)\n",
        "  resources     cpu 0.5, memory 256MiB, memory_limit 1GiB, memory_limit_action stop\n",
        "  depends_on    planner\n",
        "  command       python3 -m planner --name 'the planner'\n",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

#[test]
fn demo_config_loads() {
    let text = include_str!("../../assets/demo.toml");
    if let Err(e) = load_str(text, Some(Path::new("assets/demo.toml")), &HOST) {
        panic!("assets/demo.toml does not load:\n{e}");
    }
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    /// Every diagnostic points inside the text.
    fn located_inside(text: &str, found: &[Diagnostic]) -> Result<(), TestCaseError> {
        let lines = text.split('\n').count();
        for d in found {
            prop_assert!(
                d.line >= 1 && d.line <= lines,
                "line {} of {lines}: {d}",
                d.line
            );
            prop_assert!(d.column >= 1, "{d}");
            prop_assert!(d.column <= d.line_text.chars().count() + 1, "{d}");
            prop_assert!(!d.message.is_empty());
            let _ = d.to_string();
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
            if let Err(e) = load(&text) {
                located_inside(&text, &e.diagnostics)?;
            }
        }

        #[test]
        fn mangled_config_never_panics(
            at in 0..FULL.len(),
            cut in 0usize..12,
            insert in "[\\[\\]={}\",.'a-z0-9_ \n-]{0,10}",
        ) {
            let end = (at + cut).min(FULL.len());
            let text = format!("{}{insert}{}", &FULL[..at], &FULL[end..]);
            if let Err(e) = load(&text) {
                located_inside(&text, &e.diagnostics)?;
            }
        }
    }
}

#[test]
fn alert_rules_default_override_and_turn_off() {
    let cfg = ok("");
    let names: Vec<&str> = cfg.alerts.iter().map(|r| r.name.as_str()).collect();
    assert!(
        names.contains(&"crash-loop") && names.contains(&"host-cpu"),
        "{names:?}"
    );
    let cfg = ok(r#"
[[alerts]]
name = "crash-loop"
expr = "increase(restarts, 1m) > 1"
for = "5s"
severity = "major"
agents = ["work*"]
summary = "{agent} loops"
"#);
    let mine: Vec<_> = cfg
        .alerts
        .iter()
        .filter(|r| r.name == "crash-loop")
        .collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].source, "increase(restarts, 1m) > 1");
    assert_eq!(mine[0].for_ms, 5000);
    assert_eq!(mine[0].severity, crate::core::alert::Severity::Major);
    assert_eq!(mine[0].agents, vec!["work*".to_string()]);
    let cfg = ok("[alerting]\ndefaults = false\n");
    assert!(cfg.alerts.is_empty());
}

#[test]
fn notifiers_and_metrics_load() {
    let cfg = ok(r#"
[metrics]
listen = "127.0.0.1:9464"
interval = "500ms"

[[notifiers]]
name = "page"
kind = "exec"
command = ["/usr/local/bin/page", "--team", "ops"]
timeout = "2s"
min_severity = "major"

[[notifiers]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:9000/alerts"
max_per_minute = 3
"#);
    assert_eq!(
        cfg.metrics.listen,
        Some("127.0.0.1:9464".parse().expect("addr"))
    );
    assert_eq!(cfg.metrics.interval, Duration::from_millis(500));
    assert_eq!(cfg.notifiers.len(), 2);
    assert_eq!(cfg.notifiers[0].timeout, Duration::from_secs(2));
    assert_eq!(cfg.notifiers[1].max_per_minute, 3);
    match &cfg.notifiers[1].kind {
        NotifierKind::Webhook { url, .. } => {
            assert_eq!(url.to_string(), "http://127.0.0.1:9000/alerts")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn two_rules_with_one_name_are_an_error() {
    let d = errors(
        "[[alerts]]\nname = \"x\"\nexpr = \"failed > 0\"\nseverity = \"minor\"\n[[alerts]]\nname = \"x\"\nexpr = \"failed > 1\"\nseverity = \"minor\"\n",
    );
    assert_eq!(d.len(), 1);
    assert!(d[0].to_string().contains("defined twice"), "{}", d[0]);
}

#[test]
fn backup_section_and_agent_recovery_load() {
    let cfg = ok(r#"
[backup]
repositories = ["/backups/a", "mirror"]
every = "1h"

[agents.w]
command = "sleep 1"
recovery = "restore-latest"
"#);
    assert_eq!(cfg.backup.repositories[0], PathBuf::from("/backups/a"));
    assert_eq!(
        cfg.backup.repositories[1],
        PathBuf::from("/etc/fleet/mirror")
    );
    assert_eq!(cfg.backup.every, Some(Duration::from_secs(3600)));
    assert!(cfg.agents[0].restore_latest);
    let d = errors(
        "[backup]\nevery = \"10s\"\n\n[agents.w]\ncommand = \"x\"\nrecovery = \"restore\"\n",
    );
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(d[0].to_string().contains("at least 1m"));
    assert!(d[1].to_string().contains("restore-latest"));
}

#[test]
fn console_section_loads_and_bad_keys_are_located() {
    let host = crate::config::HostFacts {
        cpus: 2.0,
        memory: 1 << 32,
    };
    let ok = "[console]\ntheme = \"light\"\nkeys = { detach = \"x\", up = [\"k\", \"ctrl-p\"] }\n";
    let cfg = crate::config::load_str(ok, None, &host).expect("valid");
    assert_eq!(cfg.console.theme.as_deref(), Some("light"));
    assert_eq!(cfg.console.keys.len(), 2);
    assert_eq!(cfg.console.keys[1].1[1].key, "p");
    let bad = "[console]\nkeys = { detahc = \"x\", up = \"hyper-q\" }\ntheme = 3\n";
    let errs = crate::config::load_str(bad, None, &host).expect_err("invalid");
    let d = &errs.diagnostics;
    assert_eq!(d.len(), 3, "{errs}");
    assert_eq!((d[0].line, d[0].column), (2, 10));
    assert!(
        d[0].help.as_deref().unwrap_or("").contains("detach"),
        "{errs}"
    );
    assert_eq!((d[1].line, d[1].column), (2, 29));
    assert!(d[1].message.contains("hyper-q"));
    assert_eq!(d[2].line, 3);
}
