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
    AgentSpec, BackoffSpec, BackupSpec, Config, ConsoleSpec, LimitAction, LogSpec, MAX_POOL_AGENTS,
    MAX_REPLICAS, MetricsSpec, NotifierSpec, PathsSpec, PoolSpec, ResourceSpec, RestartPolicy,
    StartLimitSpec,
};
use crate::core::alert::Rule;

#[path = "observe.rs"]
mod observe;
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

    fn string<'a>(&mut self, v: &'a Value<'_>, field: Field<'_>) -> Option<&'a str> {
        match v.get_ref() {
            DeValue::String(s) => Some(s),
            _ => {
                self.type_error(v, field, "a string", None);
                None
            }
        }
    }

    /// "remove the quotes" help for a string that holds a number.
    fn unquote_help(v: &Value<'_>, field: Field<'_>) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) if s.trim().parse::<f64>().is_ok() => {
                Some(format!("remove the quotes: {} = {}", field.key, s.trim()))
            }
            _ => None,
        }
    }

    /// An integer of any size TOML allows; `None` after reporting.
    fn integer(&mut self, v: &Value<'_>, field: Field<'_>) -> Option<i128> {
        match v.get_ref() {
            DeValue::Integer(i) => match i128::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some(n),
                Err(_) => {
                    self.problem(v.span(), format!("{} is out of range", field.what()), None);
                    None
                }
            },
            DeValue::Float(f) => {
                let help = f
                    .as_str()
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.fract() == 0.0 && x.is_finite())
                    .map(|x| format!("write it without a fraction: {} = {x}", field.key));
                self.type_error(v, field, "an integer", help);
                None
            }
            _ => {
                self.type_error(v, field, "an integer", Self::unquote_help(v, field));
                None
            }
        }
    }

    /// An integer within `range`.
    fn int_in(&mut self, v: &Value<'_>, field: Field<'_>, lo: i128, hi: i128) -> Option<i128> {
        let n = self.integer(v, field)?;
        if n < lo || n > hi {
            self.problem(
                v.span(),
                format!("{} must be between {lo} and {hi}, found {n}", field.what()),
                None,
            );
            return None;
        }
        Some(n)
    }

    /// An integer or float, finite.
    fn number(&mut self, v: &Value<'_>, field: Field<'_>) -> Option<f64> {
        match v.get_ref() {
            DeValue::Integer(_) => {
                // Precision loss past 2^53 does not matter at these ranges.
                self.integer(v, field).map(|n| n as f64)
            }
            DeValue::Float(f) => match f.as_str().parse::<f64>() {
                Ok(x) if x.is_finite() => Some(x),
                _ => {
                    self.problem(
                        v.span(),
                        format!("{} must be a finite number", field.what()),
                        None,
                    );
                    None
                }
            },
            _ => {
                self.type_error(v, field, "a number", Self::unquote_help(v, field));
                None
            }
        }
    }

    /// A number within `lo..=hi`.
    fn number_in(&mut self, v: &Value<'_>, field: Field<'_>, lo: f64, hi: f64) -> Option<f64> {
        let x = self.number(v, field)?;
        if !(lo..=hi).contains(&x) {
            self.problem(
                v.span(),
                format!("{} must be between {lo} and {hi}, found {x}", field.what()),
                None,
            );
            return None;
        }
        Some(x)
    }

    fn duration(&mut self, v: &Value<'_>, field: Field<'_>) -> Option<Duration> {
        match v.get_ref() {
            DeValue::String(s) => match parse_duration(s) {
                Ok(d) => Some(d),
                Err(e) => {
                    self.problem(
                        v.span(),
                        format!("invalid duration for {}", field.what()),
                        Some(e),
                    );
                    None
                }
            },
            DeValue::Integer(i) => {
                let help = format!("durations need a unit: {} = \"{}s\"", field.key, i.as_str());
                self.type_error(v, field, "a duration string", Some(help));
                None
            }
            _ => {
                let help = format!("write it as a string with a unit: {} = \"10s\"", field.key);
                self.type_error(v, field, "a duration string", Some(help));
                None
            }
        }
    }

    /// A duration no longer than `max`.
    fn duration_max(&mut self, v: &Value<'_>, field: Field<'_>, max: Duration) -> Option<Duration> {
        let d = self.duration(v, field)?;
        if d > max {
            self.problem(
                v.span(),
                format!(
                    "{} must be at most {}, found {}",
                    field.what(),
                    format_duration(max),
                    format_duration(d)
                ),
                None,
            );
            return None;
        }
        Some(d)
    }

    fn size(&mut self, v: &Value<'_>, field: Field<'_>) -> Option<u64> {
        match v.get_ref() {
            DeValue::String(s) => match parse_size(s) {
                Ok(n) => Some(n),
                Err(e) => {
                    self.problem(
                        v.span(),
                        format!("invalid size for {}", field.what()),
                        Some(e),
                    );
                    None
                }
            },
            DeValue::Integer(_) => {
                let n = self.integer(v, field)?;
                match u64::try_from(n) {
                    Ok(n) => Some(n),
                    Err(_) => {
                        self.problem(
                            v.span(),
                            format!("{} cannot be negative, found {n}", field.what()),
                            None,
                        );
                        None
                    }
                }
            }
            _ => {
                let help = format!(
                    "write bytes as an integer or a string with a unit: {} = \"512MiB\"",
                    field.key
                );
                self.type_error(v, field, "a size", Some(help));
                None
            }
        }
    }

    fn size_in(&mut self, v: &Value<'_>, field: Field<'_>, lo: u64, hi: u64) -> Option<u64> {
        let n = self.size(v, field)?;
        if n < lo || n > hi {
            self.problem(
                v.span(),
                format!(
                    "{} must be between {} and {}, found {}",
                    field.what(),
                    format_size(lo),
                    format_size(hi),
                    format_size(n)
                ),
                None,
            );
            return None;
        }
        Some(n)
    }

    /// A path string: not empty, no NUL, no `~`; relative → config dir.
    fn path(&mut self, v: &Value<'_>, field: Field<'_>) -> Option<PathBuf> {
        let s = self.string(v, field)?;
        if s.is_empty() {
            self.problem(v.span(), format!("{} is empty", field.what()), None);
            return None;
        }
        if s.contains('\0') {
            self.problem(
                v.span(),
                format!("{} contains a NUL character", field.what()),
                None,
            );
            return None;
        }
        if s == "~" || s.starts_with("~/") {
            self.problem(
                v.span(),
                format!("{} starts with `~`, which is not expanded", field.what()),
                Some(
                    "write the absolute path, or a path relative to the config file's directory"
                        .to_owned(),
                ),
            );
            return None;
        }
        let p = PathBuf::from(s);
        Some(match &self.base_dir {
            Some(base) if p.is_relative() => base.join(p),
            _ => p,
        })
    }

    /// A choice among `options`.
    fn choice<T: Copy>(
        &mut self,
        v: &Value<'_>,
        field: Field<'_>,
        options: &[(&'static str, T)],
    ) -> Option<T> {
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let s = match v.get_ref() {
            DeValue::String(s) => s,
            _ => {
                let help = format!("use one of: {}", names.join(", "));
                self.type_error(v, field, "a string", Some(help));
                return None;
            }
        };
        if let Some((_, t)) = options.iter().find(|(n, _)| *n == s.as_ref()) {
            return Some(*t);
        }
        let help = match did_you_mean(s, &names) {
            Some(m) => format!("did you mean \"{m}\"? (one of: {})", names.join(", ")),
            None => format!("use one of: {}", names.join(", ")),
        };
        self.problem(
            v.span(),
            format!("invalid value `{s}` for {}", field.what()),
            Some(help),
        );
        None
    }

    /// An array of strings, each with its span.
    fn strings<'a>(
        &mut self,
        v: &'a Value<'_>,
        field: Field<'_>,
        help: Option<String>,
    ) -> Option<Vec<(&'a str, Span)>> {
        let DeValue::Array(items) = v.get_ref() else {
            self.type_error(v, field, "an array of strings", help);
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => out.push((s.as_ref(), item.span())),
                other => {
                    ok = false;
                    if !is_placeholder(item) {
                        self.problem(
                            item.span(),
                            format!(
                                "{} must contain only strings, found {}",
                                field.what(),
                                found(other)
                            ),
                            None,
                        );
                    }
                }
            }
        }
        ok.then_some(out)
    }

    /// The whole file.
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

        let mut paths_spec = PathsSpec::default();
        if let Some((_, v)) = paths
            && let Some(t) = self.table(v, section("paths"), section_help("paths"))
        {
            let [data_dir] = self.fields(t, "paths", ["data_dir"], paths_hint);
            if let Some((_, v)) = data_dir {
                paths_spec.data_dir = self.path(
                    v,
                    Field {
                        key: "data_dir",
                        table: "paths",
                    },
                );
            }
        }

        let mut log_spec = LogSpec::default();
        if let Some((_, v)) = logs
            && let Some(t) = self.table(v, section("logs"), section_help("logs"))
        {
            self.logs(t, &mut log_spec);
        }

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
        let mut console_spec = ConsoleSpec::default();
        if let Some((_, v)) = console
            && let Some(t) = self.table(v, section("console"), section_help("console"))
        {
            self.console(t, &mut console_spec);
        }
        let mut metrics_spec = MetricsSpec::default();
        if let Some((_, v)) = metrics
            && let Some(t) = self.table(v, section("metrics"), section_help("metrics"))
        {
            self.metrics(t, &mut metrics_spec);
        }
        let mut defaults = true;
        if let Some((_, v)) = alerting
            && let Some(t) = self.table(v, section("alerting"), section_help("alerting"))
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
        let notifier_specs = notifiers
            .map(|(_, v)| self.notifiers(v))
            .unwrap_or_default();
        let mut backup_spec = BackupSpec::default();
        if let Some((_, v)) = backup
            && let Some(t) = self.table(v, section("backup"), section_help("backup"))
        {
            self.backup(t, &mut backup_spec);
        }
        Built {
            agents,
            pool: pool_facts.spec,
            paths: paths_spec,
            logs: log_spec,
            console: console_spec,
            metrics: metrics_spec,
            alerts: rules,
            notifiers: notifier_specs,
            backup: backup_spec,
        }
    }

    /// `[backup]`: `repositories`, `every`.
    fn backup(&mut self, t: &DeTable<'_>, spec: &mut BackupSpec) {
        let [repositories, every, keep_last, keep_hourly, keep_daily] = self.fields(
            t,
            "backup",
            [
                "repositories",
                "every",
                "keep_last",
                "keep_hourly",
                "keep_daily",
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
                for (item, _) in items {
                    let p = PathBuf::from(item);
                    let p = match (&self.base_dir, p.is_relative()) {
                        (Some(base), true) => base.join(p),
                        _ => p,
                    };
                    spec.repositories.push(p);
                }
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
    fn console(&mut self, t: &DeTable<'_>, spec: &mut ConsoleSpec) {
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

    fn pool(&mut self, t: &DeTable<'_>, facts: &mut PoolFacts) {
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

    fn logs(&mut self, t: &DeTable<'_>, spec: &mut LogSpec) {
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

    /// `[agents]`: every agent, then the checks across agents.
    fn agents(&mut self, t: &DeTable<'_>, pool: &PoolFacts) -> Vec<Draft> {
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

    fn agent(
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
        ] = self.fields(
            t,
            table_name,
            [
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
            ],
            agent_hint,
        );
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
            None => self.problem(
                span,
                format!("agent `{}` has no `command`", spec.name),
                Some(
                    "add the program to run, e.g. command = [\"python3\", \"-m\", \"worker\"]"
                        .to_owned(),
                ),
            ),
        }
        if let Some((_, v)) = cwd {
            spec.cwd = self.path(v, field("cwd"));
        }
        if let Some((_, v)) = env {
            spec.env = self.env(v, field("env"));
        }
        if let Some((_, v)) = inherit_env {
            let help = Some("list variable names: inherit_env = [\"PATH\", \"HOME\"]".to_owned());
            if let Some(names) = self.strings(v, field("inherit_env"), help) {
                let mut out: Vec<String> = Vec::new();
                for (name, name_span) in names {
                    if self.env_name(name, name_span, "inherit_env")
                        && !out.iter().any(|n| n == name)
                    {
                        out.push(name.to_owned());
                    }
                }
                spec.inherit_env = out;
            }
        }
        if let Some((_, v)) = replicas {
            spec.replicas = self.replicas(v, field("replicas")).unwrap_or(spec.replicas);
        }
        if let Some((_, v)) = recovery {
            let options = [("none", false), ("restore-latest", true)];
            spec.restore_latest = self.choice(v, field("recovery"), &options).unwrap_or(false);
        }
        if let Some((_, v)) = restart {
            let options = [
                ("always", RestartPolicy::Always),
                ("on-failure", RestartPolicy::OnFailure),
                ("never", RestartPolicy::Never),
            ];
            spec.restart = self
                .choice(v, field("restart"), &options)
                .unwrap_or(spec.restart);
        }
        if let Some((_, v)) = backoff {
            let name = format!("{table_name}.backoff");
            if let Some(t) = self.table(v, field("backoff"), None) {
                self.backoff(t, &name, &mut spec.backoff);
            }
        }
        if let Some((_, v)) = min_uptime {
            spec.min_uptime = self
                .duration_max(v, field("min_uptime"), HOUR)
                .unwrap_or(spec.min_uptime);
        }
        if let Some((_, v)) = start_limit {
            let name = format!("{table_name}.start_limit");
            if let Some(t) = self.table(v, field("start_limit"), None) {
                self.start_limit(t, &name, &mut spec.start_limit);
            }
        }
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
        if let Some((_, v)) = resources {
            let name = format!("{table_name}.resources");
            if let Some(t) = self.table(v, field("resources"), None) {
                let agent = spec.name.clone();
                self.resources(t, &name, &agent, &mut spec.resources, pool);
            }
        }
        if let Some((_, v)) = depends_on {
            let help = Some(format!(
                "list agent names: depends_on = [\"{}\"]",
                match v.get_ref() {
                    DeValue::String(s) => s.as_ref(),
                    _ => "other-agent",
                }
            ));
            if let Some(names) = self.strings(v, field("depends_on"), help) {
                for (name, name_span) in names {
                    if !draft.deps.iter().any(|(n, _)| n == name) {
                        draft.deps.push((name.to_owned(), name_span));
                    }
                }
                draft.spec.depends_on = draft.deps.iter().map(|(n, _)| n.clone()).collect();
            }
        }
    }

    fn command(&mut self, v: &Value<'_>, field: Field<'_>) -> Option<Vec<String>> {
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
    fn env_name(&mut self, name: &str, span: Span, key: &str) -> bool {
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

    fn env(&mut self, v: &Value<'_>, field: Field<'_>) -> BTreeMap<String, String> {
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

    fn replicas(&mut self, v: &Value<'_>, field: Field<'_>) -> Option<u32> {
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

    fn backoff(&mut self, t: &DeTable<'_>, table_name: &str, spec: &mut BackoffSpec) {
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

    fn start_limit(&mut self, t: &DeTable<'_>, table_name: &str, spec: &mut StartLimitSpec) {
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

    fn signal(&mut self, v: &Value<'_>, field: Field<'_>) -> Option<i32> {
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

    fn resources(
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
    fn dependencies(&mut self, drafts: &[Draft]) {
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
