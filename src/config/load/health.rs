//! An agent's `health = { ... }`: the liveness and readiness probes of
//! each replica.

use super::*;
use crate::config::model::{HealthSpec, Probe};

const KEYS: [&str; 6] = [
    "interval",
    "timeout",
    "failure_threshold",
    "start_period",
    "liveness",
    "readiness",
];

impl Checker<'_> {
    pub(super) fn health(&mut self, v: &Value<'_>, table_name: &str) -> Option<HealthSpec> {
        let name = format!("{table_name}.health");
        let help =
            Some("write health = { interval = \"5s\", liveness = { tcp = 8080 } }".to_owned());
        let t = self.table(
            v,
            Field {
                key: "health",
                table: table_name,
            },
            help,
        )?;
        let [interval, timeout, threshold, start, liveness, readiness] =
            self.fields(t, &name, KEYS, |_| None);
        let field = |key| Field { key, table: &name };
        let mut spec = HealthSpec {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            failure_threshold: 3,
            start_period: Duration::from_secs(10),
            liveness: None,
            readiness: None,
        };
        if let Some((_, v)) = interval
            && let Some(d) = self.duration_max(v, field("interval"), HOUR)
        {
            spec.interval = d.max(Duration::from_millis(100));
        }
        if let Some((_, v)) = timeout
            && let Some(d) = self.duration_max(v, field("timeout"), 10 * MINUTE)
        {
            spec.timeout = d.max(Duration::from_millis(10));
        }
        if let Some((_, v)) = threshold
            && let Some(n) = self.int_in(v, field("failure_threshold"), 1, 100)
        {
            spec.failure_threshold = n as u32;
        }
        if let Some((_, v)) = start
            && let Some(d) = self.duration_max(v, field("start_period"), HOUR)
        {
            spec.start_period = d;
        }
        if liveness.is_none() && readiness.is_none() {
            self.problem(v.span(), format!("[{name}] has neither a `liveness` nor a `readiness` probe"), Some(
                "liveness = { exec = [\"cmd\"] }, { http = \"http://127.0.0.1:8080/healthz\" }, { tcp = 8080 } or { heartbeat = \"15s\" }".into(),
            ));
            return None;
        }
        if let Some((_, v)) = liveness {
            spec.liveness = Some(self.probe(v, &name, "liveness")?);
        }
        if let Some((_, v)) = readiness {
            spec.readiness = Some(self.probe(v, &name, "readiness")?);
        }
        Some(spec)
    }

    /// One probe: `{ exec = [...] }`, `{ http = "http://127.0.0.1:…" }`,
    /// `{ tcp = PORT }` or `{ heartbeat = "15s" }`.
    fn probe(&mut self, v: &Value<'_>, health: &str, key: &str) -> Option<Probe> {
        let help = Some("one of { exec = [\"cmd\"] }, { http = \"http://127.0.0.1:8080/healthz\" }, { tcp = 8080 }, { heartbeat = \"15s\" }".to_owned());
        let t = self.table(v, Field { key, table: health }, help.clone())?;
        let name = &format!("{health}.{key}");
        let [exec, http, tcp, heartbeat] =
            self.fields(t, name, ["exec", "http", "tcp", "heartbeat"], |_| None);
        let field = |key| Field { key, table: name };
        let given = [exec, http, tcp, heartbeat].iter().flatten().count();
        if given != 1 {
            self.problem(
                v.span(),
                format!("[{name}] needs exactly one probe kind"),
                help,
            );
            return None;
        }
        if let Some((_, v)) = heartbeat {
            return self
                .duration_max(v, field("heartbeat"), HOUR)
                .map(|d| Probe::Heartbeat(d.max(Duration::from_millis(100))));
        }
        if let Some((_, v)) = exec {
            return self.command(v, field("exec")).map(Probe::Exec);
        }
        if let Some((_, v)) = tcp {
            return self
                .int_in(v, field("tcp"), 1, 65535)
                .map(|p| Probe::Tcp(p as u16));
        }
        let (_, v) = http?;
        let url = self.string(v, field("http"))?;
        let loopback = url::Url::parse(url)
            .ok()
            .filter(|u| u.scheme() == "http")
            .and_then(|u| {
                let host = u
                    .host_str()?
                    .trim_matches(|c| c == '[' || c == ']')
                    .to_string();
                Some(
                    host == "localhost"
                        || host
                            .parse::<std::net::IpAddr>()
                            .is_ok_and(|ip| ip.is_loopback()),
                )
            });
        if loopback != Some(true) {
            self.problem(
                v.span(),
                format!("`http` in [{name}] must be an http:// URL on this machine's loopback"),
                Some("e.g. http = \"http://127.0.0.1:8080/healthz\"".into()),
            );
            return None;
        }
        Some(Probe::Http(url.to_owned()))
    }
}
