//! `[metrics]`, `[alerting]`, `[[alerts]]` and `[[notifiers]]`.

use std::net::SocketAddr;
use std::time::Duration;

use toml::de::{DeTable, DeValue};

use super::{Checker, Entry, Field, Span, Value};
use crate::config::model::{MetricsSpec, NotifierKind, NotifierSpec, WebhookUrl};
use crate::core::alert::{Rule, Severity, expr};

/// The alert rules that ship with Autonomos (see `assets/alerts.toml`).
pub(crate) const DEFAULT_ALERTS: &str = include_str!("../../../assets/alerts.toml");

const SEVERITIES: [(&str, Severity); 3] = [
    ("critical", Severity::Critical),
    ("major", Severity::Major),
    ("minor", Severity::Minor),
];

pub(super) fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

impl Checker<'_> {
    pub(super) fn metrics(&mut self, t: &DeTable<'_>, spec: &mut MetricsSpec) {
        let [listen, interval] = self.fields(t, "metrics", ["listen", "interval"], |k| {
            matches!(k, "addr" | "address" | "bind" | "port")
                .then(|| "write listen = \"127.0.0.1:9464\"".to_owned())
        });
        let field = |key| Field {
            key,
            table: "metrics",
        };
        if let Some((_, v)) = listen {
            spec.listen = self.listen_addr(v, "metrics", "127.0.0.1:9464");
        }
        if let Some((_, v)) = interval
            && let Some(d) = self.duration_max(v, field("interval"), Duration::from_secs(60))
        {
            if d < Duration::from_millis(100) {
                self.problem(
                    v.span(),
                    "`interval` in [metrics] must be at least 100ms".into(),
                    Some("sampling faster costs CPU without showing more; try \"1s\"".into()),
                );
            } else {
                spec.interval = d;
            }
        }
    }

    /// `listen` of a server section: IP:PORT (a host name is not resolved).
    pub(super) fn listen_addr(
        &mut self,
        v: &Value<'_>,
        table: &str,
        example: &str,
    ) -> Option<SocketAddr> {
        let s = self.string(
            v,
            Field {
                key: "listen",
                table,
            },
        )?;
        match s.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.problem(
                    v.span(),
                    format!("`{s}` is not an address for `listen` in [{table}]"),
                    Some(format!(
                        "write IP:PORT, e.g. listen = \"{example}\" (a host name is not resolved)"
                    )),
                );
                None
            }
        }
    }

    /// `[alerting] defaults = false` turns the built-in rules off.
    pub(super) fn alerting(&mut self, t: &DeTable<'_>) -> bool {
        let [defaults] = self.fields(t, "alerting", ["defaults"], |_| None);
        match defaults {
            Some((_, v)) => match v.get_ref() {
                DeValue::Boolean(b) => *b,
                _ => {
                    self.type_error(
                        v,
                        Field {
                            key: "defaults",
                            table: "alerting",
                        },
                        "true or false",
                        None,
                    );
                    true
                }
            },
            None => true,
        }
    }

    /// `[[alerts]]`: an array of rule tables.
    pub(super) fn alerts(&mut self, v: &Value<'_>) -> Vec<Rule> {
        let help = "write each rule as an [[alerts]] table with name, expr, severity";
        let DeValue::Array(items) = v.get_ref() else {
            self.type_error(
                v,
                Field {
                    key: "alerts",
                    table: "",
                },
                "an array of tables ([[alerts]])",
                Some(help.into()),
            );
            return Vec::new();
        };
        let mut rules: Vec<Rule> = Vec::new();
        let mut names: Vec<(String, Span)> = Vec::new();
        for item in items.iter() {
            let DeValue::Table(t) = item.get_ref() else {
                self.problem(
                    item.span(),
                    "each entry of `alerts` must be a table".into(),
                    Some(help.into()),
                );
                continue;
            };
            if let Some((rule, span)) = self.alert(t, item.span()) {
                if let Some((_, first)) = names.iter().find(|(n, _)| *n == rule.name) {
                    let line = self.map.line_index(first.start) + 1;
                    self.problem(
                        span,
                        format!("alert rule `{}` is defined twice", rule.name),
                        Some(format!(
                            "the first is at line {line}; give each rule its own name"
                        )),
                    );
                    continue;
                }
                names.push((rule.name.clone(), span));
                rules.push(rule);
            }
        }
        rules
    }

    fn alert(&mut self, t: &DeTable<'_>, whole: Span) -> Option<(Rule, Span)> {
        let [name, expr_v, for_v, severity, agents, summary] = self.fields(
            t,
            "alerts",
            ["name", "expr", "for", "severity", "agents", "summary"],
            |k| match k {
                "expression" | "condition" | "when" | "rule" => Some("did you mean `expr`?".into()),
                "level" | "priority" => Some(
                    "write severity = \"critical\" (Level 1), \"major\" (Level 2) or \"minor\" (Level 3)"
                        .into(),
                ),
                "agent" | "selector" => Some("did you mean `agents`? (a list of name patterns)".into()),
                "duration" | "for_" | "pending" => Some("did you mean `for`?".into()),
                "description" | "message" | "text" => Some("did you mean `summary`?".into()),
                _ => None,
            },
        );
        let field = |key| Field {
            key,
            table: "alerts",
        };
        let mut ok = true;
        let mut rule_name = String::new();
        let mut name_span = whole.clone();
        match name {
            Some((_, v)) => {
                if let Some(s) = self.string(v, field("name")) {
                    if valid_name(s) {
                        rule_name = s.to_owned();
                        name_span = v.span();
                    } else {
                        ok = false;
                        self.problem(
                            v.span(),
                            format!("invalid alert name `{s}`"),
                            Some("use lowercase letters, digits, `-` and `_`, starting with a letter or digit".into()),
                        );
                    }
                } else {
                    ok = false;
                }
            }
            None => {
                ok = false;
                self.problem(
                    whole.clone(),
                    "this [[alerts]] rule has no `name`".into(),
                    Some("add name = \"crash-loop\" (it identifies the alert in the console and CLI)".into()),
                );
            }
        }
        let parsed = self.alert_expr(t, expr_v, &rule_name, &name_span);
        let mut for_ms = 0;
        if let Some((_, v)) = for_v
            && let Some(d) = self.duration_max(v, field("for"), Duration::from_secs(86_400))
        {
            for_ms = d.as_millis() as u64;
        }
        let mut sev = None;
        match severity {
            Some((_, v)) => sev = self.choice(v, field("severity"), &SEVERITIES),
            None => self.problem(
                name_span.clone(),
                format!("alert `{rule_name}` has no `severity`"),
                Some("add severity = \"critical\" (Level 1), \"major\" (Level 2) or \"minor\" (Level 3)".into()),
            ),
        }
        let mut patterns = Vec::new();
        let mut agents_span = None;
        if let Some((_, v)) = agents {
            agents_span = Some(v.span());
            match v.get_ref() {
                DeValue::String(s) => patterns.push(s.to_string()),
                _ => {
                    if let Some(items) = self.strings(
                        v,
                        field("agents"),
                        Some("write agents = [\"worker-*\", \"crawler\"]".into()),
                    ) {
                        patterns = items.into_iter().map(|(s, _)| s.to_owned()).collect();
                    }
                }
            }
        }
        let mut text = String::new();
        if let Some((_, v)) = summary
            && let Some(s) = self.string(v, field("summary"))
        {
            text = s.to_owned();
        }
        let (e, source) = parsed?;
        if let Some(span) = agents_span
            && !e.per_agent()
        {
            self.problem(
                span,
                format!("alert `{rule_name}` reads only host metrics, so `agents` has no effect"),
                Some("remove `agents`, or use a per-agent metric such as cpu or restarts".into()),
            );
            return None;
        }
        if !ok {
            return None;
        }
        Some((
            Rule {
                name: rule_name,
                source,
                expr: e,
                for_ms,
                severity: sev?,
                agents: patterns,
                summary: text,
            },
            name_span,
        ))
    }

    /// An alert's `expr`, parsed; when it does not parse, the problem is
    /// located inside the string.
    fn alert_expr(
        &mut self,
        t: &DeTable<'_>,
        expr_v: Option<Entry<'_, '_>>,
        rule_name: &str,
        name_span: &Span,
    ) -> Option<(expr::Expr, String)> {
        let field = Field {
            key: "expr",
            table: "alerts",
        };
        match expr_v {
            Some((_, v)) => {
                if let Some(s) = self.string(v, field) {
                    match expr::parse(s) {
                        Ok(e) => return Some((e, s.to_owned())),
                        Err(e) => {
                            let span = self.inside_string(v, e.offset);
                            self.problem(
                                span,
                                format!("invalid `expr` in alert `{rule_name}`: {}", e.message),
                                Some(format!(
                                    "metrics: {}; functions: avg, min, max, last, increase, rate (METRIC, WINDOW)",
                                    expr::METRICS
                                        .iter()
                                        .map(|m| m.0)
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                )),
                            );
                        }
                    }
                }
            }
            // A misspelt `expr` key was already reported with a suggestion.
            None if t.iter().any(|(k, _)| {
                matches!(
                    k.get_ref().as_ref(),
                    "expression" | "condition" | "when" | "rule"
                )
            }) => {}
            None => self.problem(
                name_span.clone(),
                format!("alert `{rule_name}` has no `expr`"),
                Some("add the condition, e.g. expr = \"increase(restarts, 10m) > 3\"".into()),
            ),
        }
        None
    }

    /// The span of byte `offset` inside a string value, when the string has
    /// no escapes (otherwise the whole value).
    fn inside_string(&self, v: &Value<'_>, offset: usize) -> Span {
        let span = v.span();
        let raw = self.map.slice(&span);
        let quote = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
            3
        } else {
            1
        };
        if raw.starts_with('"') && raw.contains('\\') || quote == 3 {
            return span;
        }
        let at = (span.start + quote + offset).min(span.end.saturating_sub(1));
        at..at + 1
    }

    /// `[[notifiers]]`.
    pub(super) fn notifiers(&mut self, v: &Value<'_>) -> Vec<NotifierSpec> {
        let help =
            "write each notifier as a [[notifiers]] table with name, kind and command or url";
        let DeValue::Array(items) = v.get_ref() else {
            self.type_error(
                v,
                Field {
                    key: "notifiers",
                    table: "",
                },
                "an array of tables ([[notifiers]])",
                Some(help.into()),
            );
            return Vec::new();
        };
        let mut out: Vec<NotifierSpec> = Vec::new();
        for item in items.iter() {
            let DeValue::Table(t) = item.get_ref() else {
                self.problem(
                    item.span(),
                    "each entry of `notifiers` must be a table".into(),
                    Some(help.into()),
                );
                continue;
            };
            if let Some(n) = self.notifier(t, item.span()) {
                if out.iter().any(|o| o.name == n.name) {
                    self.problem(
                        item.span(),
                        format!("notifier `{}` is defined twice", n.name),
                        Some("give each notifier its own name".into()),
                    );
                    continue;
                }
                out.push(n);
            }
        }
        out
    }

    fn notifier(&mut self, t: &DeTable<'_>, whole: Span) -> Option<NotifierSpec> {
        let [
            name,
            kind,
            command,
            url,
            ca_file,
            timeout,
            min_severity,
            max_per_minute,
        ] = self.fields(
            t,
            "notifiers",
            [
                "name",
                "kind",
                "command",
                "url",
                "ca_file",
                "timeout",
                "min_severity",
                "max_per_minute",
            ],
            |k| match k {
                "type" => Some("did you mean `kind`? (\"exec\" or \"webhook\")".into()),
                "argv" | "exec" | "cmd" => Some("did you mean `command`?".into()),
                "severity" => Some("did you mean `min_severity`?".into()),
                "ca" | "cacert" | "ca_cert" | "cafile" => Some("did you mean `ca_file`?".into()),
                _ => None,
            },
        );
        let field = |key| Field {
            key,
            table: "notifiers",
        };
        let n_name = match name {
            Some((_, v)) => {
                let s = self.string(v, field("name"))?;
                if !valid_name(s) {
                    self.problem(
                        v.span(),
                        format!("invalid notifier name `{s}`"),
                        Some("use lowercase letters, digits, `-` and `_`".into()),
                    );
                    return None;
                }
                s.to_owned()
            }
            None => {
                self.problem(
                    whole,
                    "this [[notifiers]] entry has no `name`".into(),
                    Some("add name = \"pager\"".into()),
                );
                return None;
            }
        };
        let mut spec_timeout = Duration::from_secs(5);
        if let Some((_, v)) = timeout
            && let Some(d) = self.duration_max(v, field("timeout"), Duration::from_secs(60))
        {
            spec_timeout = d.max(Duration::from_millis(100));
        }
        let mut min = Severity::Minor;
        if let Some((_, v)) = min_severity
            && let Some(s) = self.choice(v, field("min_severity"), &SEVERITIES)
        {
            min = s;
        }
        let mut per_minute = 10;
        if let Some((_, v)) = max_per_minute
            && let Some(n) = self.int_in(v, field("max_per_minute"), 1, 10_000)
        {
            per_minute = n as u32;
        }
        let kinds = [("exec", 0u8), ("webhook", 1u8)];
        let Some((_, kv)) = kind else {
            self.problem(
                whole,
                format!("notifier `{n_name}` has no `kind`"),
                Some("add kind = \"exec\" (with command) or kind = \"webhook\" (with url)".into()),
            );
            return None;
        };
        let k = self.choice(kv, field("kind"), &kinds)?;
        let keys = KindKeys {
            name: &n_name,
            kind: kv,
            command,
            url,
            ca_file,
        };
        let kind = if k == 0 {
            self.exec_notifier(keys)?
        } else {
            self.webhook(keys)?
        };
        Some(NotifierSpec {
            name: n_name,
            kind,
            timeout: spec_timeout,
            min_severity: min,
            max_per_minute: per_minute,
        })
    }

    /// An exec notifier: a command, and no webhook keys.
    fn exec_notifier(&mut self, k: KindKeys<'_, '_>) -> Option<NotifierKind> {
        let KindKeys {
            name: n_name,
            kind: kv,
            command,
            url,
            ca_file,
        } = k;
        for (key, what) in [(url, "url"), (ca_file, "ca_file")] {
            if let Some((key, _)) = key {
                self.problem(
                    key.span(),
                    format!("`{what}` is for webhook notifiers"),
                    Some("an exec notifier runs `command`".into()),
                );
            }
        }
        let Some((_, cv)) = command else {
            self.problem(
                kv.span(),
                format!("exec notifier `{n_name}` has no `command`"),
                Some("add command = [\"/usr/local/bin/page\", \"--team\", \"ops\"]; the alert JSON arrives on stdin".into()),
            );
            return None;
        };
        Some(NotifierKind::Exec {
            command: self.command(cv, notifier_field("command"))?,
        })
    }

    /// A webhook notifier: an http(s) URL (a CA file for https only), and
    /// no command.
    fn webhook(&mut self, k: KindKeys<'_, '_>) -> Option<NotifierKind> {
        let KindKeys {
            name: n_name,
            kind: kv,
            command,
            url,
            ca_file,
        } = k;
        if let Some((key, _)) = command {
            self.problem(
                key.span(),
                "`command` is for exec notifiers".into(),
                Some("a webhook notifier posts to `url`".into()),
            );
        }
        let Some((_, uv)) = url else {
            self.problem(
                kv.span(),
                format!("webhook notifier `{n_name}` has no `url`"),
                Some("add url = \"http://127.0.0.1:9000/alerts\"".into()),
            );
            return None;
        };
        let s = self.string(uv, notifier_field("url"))?;
        let url = match parse_http_url(s) {
            Ok(u) => u,
            Err((msg, help)) => {
                self.problem(uv.span(), msg, Some(help));
                return None;
            }
        };
        let ca = match ca_file {
            Some((key, _)) if !url.tls => {
                self.problem(
                    key.span(),
                    "`ca_file` applies to https:// URLs only".into(),
                    Some("remove it, or post to an https:// URL".into()),
                );
                return None;
            }
            Some((_, cv)) => {
                let path = self.path(cv, notifier_field("ca_file"))?;
                if let Err(e) = crate::config::pem_certificates(&path) {
                    self.problem(
                        cv.span(),
                        format!("cannot use {}: {e}", path.display()),
                        Some("give a PEM file with one or more certificates (-----BEGIN CERTIFICATE-----)".into()),
                    );
                    return None;
                }
                Some(path)
            }
            None => None,
        };
        Some(NotifierKind::Webhook { url, ca_file: ca })
    }
}

/// A key of a `[[notifiers]]` entry, for locating problems.
fn notifier_field(key: &'static str) -> Field<'static> {
    Field {
        key,
        table: "notifiers",
    }
}

/// The keys of a `[[notifiers]]` entry that depend on its kind.
#[derive(Clone, Copy)]
struct KindKeys<'a, 'i> {
    name: &'a str,
    kind: &'a Value<'i>,
    command: Option<Entry<'a, 'i>>,
    url: Option<Entry<'a, 'i>>,
    ca_file: Option<Entry<'a, 'i>>,
}

/// `http(s)://host[:port][/path]`, parsed by the `url` crate; credentials
/// in the URL are refused (they would end up in logs and status).
pub(crate) fn parse_http_url(s: &str) -> Result<WebhookUrl, (String, String)> {
    let invalid = |why: String| {
        (
            format!("`{s}` is not a valid URL: {why}"),
            "write url = \"http://host:port/path\"".to_string(),
        )
    };
    let tls = if s.starts_with("https://") {
        true
    } else if s.starts_with("http://") {
        false
    } else {
        return Err((
            format!("`{s}` is not an http:// or https:// URL"),
            "write url = \"https://host/path\" or \"http://host:port/path\"".into(),
        ));
    };
    let u = url::Url::parse(s).map_err(|e| invalid(e.to_string()))?;
    if !u.username().is_empty() || u.password().is_some() {
        return Err((
            format!("`{s}`: credentials in the URL are not supported"),
            "put a token in the path or use an exec notifier".into(),
        ));
    }
    let host = match u.host() {
        Some(url::Host::Ipv6(a)) => a.to_string(),
        Some(h) => h.to_string(),
        None => return Err(invalid("no host".into())),
    };
    let port = match u.port_or_known_default() {
        Some(0) | None => {
            return Err((
                format!("`{s}`: `0` is not a port"),
                "ports are 1 to 65535".to_string(),
            ));
        }
        Some(p) => p,
    };
    let path = match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    };
    Ok(WebhookUrl {
        tls,
        host,
        port,
        path,
    })
}

/// The built-in rules, parsed with the same checks as a config file's.
pub(crate) fn default_rules() -> Vec<Rule> {
    let (doc, errors) = DeTable::parse_recoverable(DEFAULT_ALERTS);
    if !errors.is_empty() {
        return Vec::new();
    }
    let mut checker = Checker {
        map: super::SourceMap::new(DEFAULT_ALERTS),
        base_dir: None,
        problems: Vec::new(),
    };
    let rules = doc
        .get_ref()
        .get("alerts")
        .map(|v| checker.alerts(v))
        .unwrap_or_default();
    if checker.problems.is_empty() {
        rules
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_rules_parse() {
        let names: Vec<String> = default_rules().into_iter().map(|r| r.name).collect();
        for want in [
            "crash-loop",
            "replica-failed",
            "memory-near-limit",
            "host-cpu",
            "host-memory",
            "task-queue-backlog",
            "task-errors",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "{want} missing from {names:?}"
            );
        }
    }

    #[test]
    fn webhook_urls() {
        let u = parse_http_url("http://127.0.0.1:9000/hook?x=1").expect("ok");
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 9000, "/hook?x=1")
        );
        let u = parse_http_url("http://example").expect("ok");
        assert_eq!((u.port, u.path.as_str()), (80, "/"));
        let u = parse_http_url("http://[::1]:81/").expect("ok");
        assert_eq!((u.host.as_str(), u.port), ("::1", 81));
        let u = parse_http_url("https://hooks.example.com/services/T0/B0").expect("ok");
        assert!(u.tls);
        assert_eq!((u.port, u.path.as_str()), (443, "/services/T0/B0"));
        assert_eq!(
            u.to_string(),
            "https://hooks.example.com:443/services/T0/B0"
        );
        assert_eq!(
            parse_http_url("http://[::1]:81/").expect("ok").to_string(),
            "http://[::1]:81/"
        );
        assert!(parse_http_url("ftp://x/").is_err());
        assert!(parse_http_url("http://x:0/").is_err());
        assert!(parse_http_url("http://u:p@x/").is_err());
    }
}
