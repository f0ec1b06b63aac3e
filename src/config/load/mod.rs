//! TOML text → validated [`Config`], walking the spanned parse tree by hand
//! so that every problem is collected and located, not just the first.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::HostFacts;
use super::diag::{ConfigErrors, SourceMap};
use super::hints::{
    agent_hint, backoff_hint, logs_hint, paths_hint, pool_hint, resources_hint, start_limit_hint,
    top_hint,
};
use super::model::{
    AgentSpec, BackoffSpec, BackupSpec, Config, ConsoleSpec, GatewaySpec, HostSpec, LimitAction,
    LogSpec, MAX_POOL_AGENTS, MAX_REPLICAS, MetricsSpec, NotifierSpec, PathsSpec, PoolSpec,
    ResourceSpec, RestartPolicy, StartLimitSpec, TaskSpec, TasksSpec,
};
use crate::core::alert::Rule;

mod agents;
mod autoscale;
mod gateway;
mod health;
mod hosts;
mod observe;
mod sections;
mod tasks;
mod tty;
mod values;
use super::topo::Graph;
use super::words::split_command;
use crate::core::signal::{parse_signal, signal_names};
use crate::core::suggest::did_you_mean;
use crate::core::units::{format_duration, format_size, parse_duration, parse_size};
pub(crate) use observe::default_rules;

type Span = Range<usize>;
type Key<'i> = Spanned<Cow<'i, str>>;
type Value<'i> = Spanned<DeValue<'i>>;
type Entry<'a, 'i> = (&'a Key<'i>, &'a Value<'i>);

/// Default `[pool] max_agents`.
pub(crate) const DEFAULT_MAX_AGENTS: u32 = 512;
/// Largest `[pool] cpu`.
const MAX_POOL_CPU: f64 = 65_536.0;
/// Largest per-replica `resources.cpu`.
const MAX_AGENT_CPU: f64 = 1024.0;
/// Default `inherit_env`.
pub(crate) const DEFAULT_INHERIT_ENV: [&str; 7] =
    ["PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ"];
/// Environment names autonomos sets itself.
const RESERVED_ENV_PREFIX: &str = "AUTONOMOS_";

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// The defaults of one agent, before its table is read.
fn default_agent(name: String) -> AgentSpec {
    AgentSpec {
        name,
        command: Vec::new(),
        cwd: None,
        env: BTreeMap::new(),
        inherit_env: DEFAULT_INHERIT_ENV
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        replicas: 1,
        restart: RestartPolicy::Always,
        backoff: BackoffSpec {
            initial: Duration::from_millis(500),
            max: 30 * SECOND,
            multiplier: 2.0,
            jitter: 0.1,
            reset_after: MINUTE,
        },
        min_uptime: SECOND,
        start_limit: StartLimitSpec {
            burst: 5,
            interval: 10 * SECOND,
        },
        stop_signal: libc::SIGTERM,
        stop_timeout: 10 * SECOND,
        restore_latest: false,
        resources: ResourceSpec {
            cpu: 0.0,
            memory: 0,
            memory_limit: None,
            memory_limit_action: LimitAction::Restart,
        },
        depends_on: Vec::new(),
        tasks: None,
        description: None,
        autoscale: None,
        health: None,
        tty: None,
        attention: Vec::new(),
        workspace: None,
    }
}

/// Where the text came from.
pub(crate) struct Origin {
    /// File name for messages.
    pub display: String,
    /// Directory relative paths are resolved against.
    pub base_dir: Option<PathBuf>,
    /// `Config::source`.
    pub source: Option<PathBuf>,
}

/// One problem, before it is located.
struct Problem {
    span: Span,
    message: String,
    help: Option<String>,
}

/// A key within a table, for messages: "`replicas` in [agents.web]".
#[derive(Clone, Copy)]
struct Field<'a> {
    key: &'a str,
    table: &'a str,
}

impl Field<'_> {
    fn what(&self) -> String {
        if self.table.is_empty() {
            format!("`{}`", self.key)
        } else {
            format!("`{}` in [{}]", self.key, self.table)
        }
    }
}

/// A parsed agent plus what cross-agent checks need.
struct Draft {
    spec: AgentSpec,
    /// `depends_on` entries with their spans, deduplicated.
    deps: Vec<(String, Span)>,
}

/// What the pool check of each agent needs to know about the pool.
struct PoolFacts {
    spec: PoolSpec,
    /// The value is usable (given and valid, or defaulted).
    cpu_ok: bool,
    memory_ok: bool,
    /// The value came from the host, not the file.
    cpu_default: bool,
    memory_default: bool,
}

/// Everything `document` builds.
struct Built {
    agents: Vec<AgentSpec>,
    pool: PoolSpec,
    paths: PathsSpec,
    logs: LogSpec,
    console: ConsoleSpec,
    metrics: MetricsSpec,
    alerts: Vec<Rule>,
    notifiers: Vec<NotifierSpec>,
    backup: BackupSpec,
    tasks: TasksSpec,
    gateway: GatewaySpec,
    hosts: Vec<HostSpec>,
}

struct Checker<'t> {
    map: SourceMap<'t>,
    base_dir: Option<PathBuf>,
    problems: Vec<Problem>,
}

/// Checks `text` and builds the config, or returns every problem found.
pub(crate) fn load(text: &str, origin: Origin, host: &HostFacts) -> Result<Config, ConfigErrors> {
    let (doc, parse_errors) = DeTable::parse_recoverable(text);
    let mut checker = Checker {
        map: SourceMap::new(text),
        base_dir: origin.base_dir,
        problems: Vec::new(),
    };
    let mut syntax: Vec<Problem> = Vec::new();
    let mut syntax_spans: Vec<Span> = Vec::new();
    for error in &parse_errors {
        let span = error.span().unwrap_or(text.len()..text.len());
        let problem = checker.explain_parse_error(error.message(), span.clone());
        if error.message() != "duplicate key" {
            syntax_spans.push(span);
        }
        syntax.push(problem);
    }

    let built = checker.document(doc.get_ref(), host);

    // A value the parser already complained about tends to draw a second,
    // confusing complaint from validation: keep only the parser's.
    let map = &checker.map;
    let shadowed = |p: &Problem| {
        syntax_spans.iter().any(|s| {
            let overlaps = if s.is_empty() {
                p.span.start <= s.start && s.start <= p.span.end
            } else {
                p.span.start < s.end && s.start < p.span.end.max(p.span.start + 1)
            };
            overlaps && map.line_index(s.start) == map.line_index(p.span.start)
        })
    };
    let mut problems: Vec<Problem> = syntax;
    problems.extend(checker.problems.drain(..).filter(|p| !shadowed(p)));
    if problems.is_empty() {
        let Built {
            agents,
            pool,
            paths,
            logs,
            console,
            metrics,
            alerts,
            notifiers,
            backup,
            tasks,
            gateway,
            hosts,
        } = built;
        return Ok(Config {
            source: origin.source,
            agents,
            pool,
            paths,
            logs,
            console,
            metrics,
            alerts,
            notifiers,
            backup,
            tasks,
            gateway,
            hosts,
        });
    }
    problems.sort_by_key(|p| p.span.start);
    let mut seen = HashSet::new();
    problems.retain(|p| seen.insert((p.span.clone(), p.message.clone())));
    Err(ConfigErrors {
        diagnostics: problems
            .into_iter()
            .map(|p| map.diagnostic(&origin.display, &p.span, p.message, p.help))
            .collect(),
    })
}

/// Type name with an article, for "found …".
fn found(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// The parser's stand-in for a value it could not read has an empty span;
/// the parser has reported it already.
fn is_placeholder(v: &Value<'_>) -> bool {
    v.span().is_empty()
}

/// `[agents.NAME]` as written in TOML (quoted when not a bare key).
fn table_path(parent: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        format!("{parent}.{key}")
    } else {
        format!("{parent}.{key:?}")
    }
}

/// The first byte of `key`/`value` or anything nested in it.
fn first_position(key: &Key<'_>, value: &Value<'_>) -> usize {
    let mut first = key.span().start;
    if !value.span().is_empty() {
        first = first.min(value.span().start);
    }
    if let DeValue::Table(t) = value.get_ref() {
        for (k, v) in t.iter() {
            first = first.min(first_position(k, v));
        }
    }
    first
}

fn valid_agent_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    name.len() <= 63
        && (first.is_ascii_lowercase() || first.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// A valid agent name close to `name`, if there is an obvious one.
fn agent_name_suggestion(name: &str) -> Option<String> {
    let mut out: String = name
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    out = out
        .trim_start_matches(['-', '_'])
        .chars()
        .take(63)
        .collect();
    (valid_agent_name(&out) && out != name).then_some(out)
}

fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A header line's `[a.b]` / `[[a.b]]`, its byte range within the line, and
/// a normalized form for comparing headers.
fn header_of(line: &str) -> Option<(usize, usize, String)> {
    let start = line.len() - line.trim_start().len();
    let rest = &line[start..];
    if !rest.starts_with('[') {
        return None;
    }
    let close = if rest.starts_with("[[") { "]]" } else { "]" };
    let end = start + rest.find(close)? + close.len();
    let normalized: String = line[start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    Some((start, end, normalized))
}

impl Checker<'_> {
    fn problem(&mut self, span: Span, message: String, help: Option<String>) {
        self.problems.push(Problem {
            span,
            message,
            help,
        });
    }

    fn type_error(
        &mut self,
        v: &Value<'_>,
        field: Field<'_>,
        expected: &str,
        help: Option<String>,
    ) {
        if is_placeholder(v) {
            return;
        }
        let message = format!(
            "{} must be {expected}, found {}",
            field.what(),
            found(v.get_ref())
        );
        self.problem(v.span(), message, help);
    }

    /// Turns one parser error into a problem with a plain-words message.
    fn explain_parse_error(&self, message: &str, span: Span) -> Problem {
        if message != "duplicate key" {
            return Problem {
                span,
                message: format!("invalid TOML: {message}"),
                help: None,
            };
        }
        let line_index = self.map.line_index(span.start);
        let line = self.map.line(line_index);
        if let Some((start, end, normalized)) = header_of(line) {
            let header = &line[start..end];
            let earlier = (0..line_index).find(|&i| {
                header_of(self.map.line(i)).is_some_and(|(_, _, other)| {
                    other == normalized
                        || other.trim_matches(['[', ']']) == normalized.trim_matches(['[', ']'])
                })
            });
            let line_start = self.map.line_start(line_index);
            let message = if header.starts_with("[[") {
                format!("`{header}` conflicts with a table defined earlier")
            } else {
                format!("duplicate table `{header}`")
            };
            let help = match earlier {
                Some(i) => {
                    let first = self.map.line(i);
                    let shown = header_of(first).map_or(first, |(s, e, _)| &first[s..e]);
                    format!(
                        "`{shown}` is first defined at line {}; a table can be defined only once, so merge the two",
                        i + 1
                    )
                }
                None => "this table is already defined earlier (by a header, dotted keys or an inline table); a table can be defined only once".to_owned(),
            };
            return Problem {
                span: line_start + start..line_start + end,
                message,
                help: Some(help),
            };
        }
        let key = self.map.slice(&span);
        let earlier = (0..line_index)
            .rev()
            .take_while(|&i| header_of(self.map.line(i)).is_none())
            .find(|&i| {
                let other = self.map.line(i).trim_start();
                other
                    .strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with(['=', '.']))
            });
        let help = match earlier {
            Some(i) => format!(
                "`{key}` is already set at line {}; a key can appear only once in a table",
                i + 1
            ),
            None => "a key can appear only once in a table".to_owned(),
        };
        Problem {
            span,
            message: format!("duplicate key `{key}`"),
            help: Some(help),
        }
    }

    /// Sorts a table's entries into the slots of `names`, reporting every
    /// other key.
    fn fields<'a, 'i, const N: usize>(
        &mut self,
        table: &'a DeTable<'i>,
        table_name: &str,
        names: [&'static str; N],
        hint: fn(&str) -> Option<String>,
    ) -> [Option<Entry<'a, 'i>>; N] {
        let mut out: [Option<Entry<'a, 'i>>; N] = [None; N];
        for (k, v) in table.iter() {
            let key: &str = k.get_ref();
            match names.iter().position(|n| *n == key) {
                Some(i) => out[i] = Some((k, v)),
                None => {
                    let place = if table_name.is_empty() {
                        "at the top level".to_owned()
                    } else {
                        format!("in [{table_name}]")
                    };
                    let help = hint(key)
                        .or_else(|| {
                            did_you_mean(key, &names).map(|s| format!("did you mean `{s}`?"))
                        })
                        .unwrap_or_else(|| format!("valid keys {place}: {}", names.join(", ")));
                    self.problem(k.span(), format!("unknown key `{key}` {place}"), Some(help));
                }
            }
        }
        out
    }

    fn table<'a, 'i>(
        &mut self,
        v: &'a Value<'i>,
        field: Field<'_>,
        help: Option<String>,
    ) -> Option<&'a DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.type_error(v, field, "a table", help);
                None
            }
        }
    }

    /// The whole file.
    /// A top-level `[name]` table, read by `read` into its spec; the
    /// default when it is absent (or not a table, which is reported).
    fn section<T: Default>(
        &mut self,
        entry: Option<Entry<'_, '_>>,
        name: &'static str,
        read: impl FnOnce(&mut Self, &DeTable<'_>, &mut T),
    ) -> T {
        let mut spec = T::default();
        let field = Field {
            key: name,
            table: "",
        };
        let help = Some(format!("write it as a [{name}] section"));
        if let Some((_, v)) = entry
            && let Some(t) = self.table(v, field, help)
        {
            read(self, t, &mut spec);
        }
        spec
    }

    /// The alert rules in force: the defaults (unless `[alerting]` turns
    /// them off) overridden by name, then the file's own.
    fn rules(
        &mut self,
        alerting: Option<Entry<'_, '_>>,
        alerts: Option<Entry<'_, '_>>,
    ) -> Vec<Rule> {
        let mut defaults = true;
        let field = Field {
            key: "alerting",
            table: "",
        };
        if let Some((_, v)) = alerting
            && let Some(t) = self.table(
                v,
                field,
                Some("write it as a [alerting] section".to_string()),
            )
        {
            defaults = self.alerting(t);
        }
        let own = alerts.map(|(_, v)| self.alerts(v)).unwrap_or_default();
        let mut rules: Vec<Rule> = if defaults {
            default_rules()
                .into_iter()
                .filter(|d| !own.iter().any(|r| r.name == d.name))
                .collect()
        } else {
            Vec::new()
        };
        rules.extend(own);
        rules
    }

    fn document(&mut self, root: &DeTable<'_>, host: &HostFacts) -> Built {
        let [
            pool,
            paths,
            logs,
            agents,
            console,
            metrics,
            alerting,
            alerts,
            notifiers,
            backup,
            tasks,
            gateway,
            hosts,
        ] = self.fields(
            root,
            "",
            [
                "pool",
                "paths",
                "logs",
                "agents",
                "console",
                "metrics",
                "alerting",
                "alerts",
                "notifiers",
                "backup",
                "tasks",
                "gateway",
                "hosts",
            ],
            top_hint,
        );
        let section = |key: &'static str| Field { key, table: "" };
        let section_help = |name: &str| Some(format!("write it as a [{name}] section"));

        let mut pool_facts = PoolFacts {
            spec: PoolSpec {
                cpu: host.cpus,
                memory: host.memory,
                max_agents: DEFAULT_MAX_AGENTS,
            },
            cpu_ok: true,
            memory_ok: true,
            cpu_default: true,
            memory_default: true,
        };
        if let Some((_, v)) = pool
            && let Some(t) = self.table(v, section("pool"), section_help("pool"))
        {
            self.pool(t, &mut pool_facts);
        }

        let paths_spec = self.section(paths, "paths", |this, t, spec: &mut PathsSpec| {
            let [data_dir] = this.fields(t, "paths", ["data_dir"], paths_hint);
            if let Some((_, v)) = data_dir {
                let field = Field {
                    key: "data_dir",
                    table: "paths",
                };
                spec.data_dir = this.path(v, field);
            }
        });
        let log_spec: LogSpec = self.section(logs, "logs", |this, t, spec| this.logs(t, spec));

        let mut drafts = Vec::new();
        if let Some((_, v)) = agents {
            let help = match v.get_ref() {
                DeValue::Array(_) => {
                    "write each agent as its own [agents.NAME] table, not [[agents]]"
                }
                _ => "write each agent as its own [agents.NAME] table",
            };
            if let Some(t) = self.table(v, section("agents"), Some(help.to_owned())) {
                drafts = self.agents(t, &pool_facts);
            }
        }
        let agents = drafts.into_iter().map(|d| d.spec).collect();
        let console_spec: ConsoleSpec =
            self.section(console, "console", |this, t, spec| this.console(t, spec));
        let metrics_spec: MetricsSpec =
            self.section(metrics, "metrics", |this, t, spec| this.metrics(t, spec));
        let rules = self.rules(alerting, alerts);
        let notifier_specs = notifiers
            .map(|(_, v)| self.notifiers(v))
            .unwrap_or_default();
        let backup_spec: BackupSpec =
            self.section(backup, "backup", |this, t, spec| this.backup(t, spec));
        let tasks_spec: TasksSpec = self.section(tasks, "tasks", |this, t, s| this.tasks(t, s));
        let gateway_spec: GatewaySpec =
            self.section(gateway, "gateway", |this, t, s| this.gateway(t, s));
        let hosts = hosts.map(|(_, v)| self.hosts(v)).unwrap_or_default();
        Built {
            hosts,
            agents,
            pool: pool_facts.spec,
            paths: paths_spec,
            logs: log_spec,
            console: console_spec,
            metrics: metrics_spec,
            alerts: rules,
            notifiers: notifier_specs,
            backup: backup_spec,
            tasks: tasks_spec,
            gateway: gateway_spec,
        }
    }
}
