//! The daemon's own log: JSON lines in `DATA_DIR/logs/daemon.jsonl`, with
//! ECS field names (`@timestamp`, `log.level`, `log.logger`, `message`,
//! `process.pid`, `service.name`, then the event's own fields) so that
//! Elasticsearch/Filebeat or Loki ingest it as is; rotated by size
//! (`daemon.jsonl.1` … `.N`). A compact human form goes to stderr.

use std::io::{self, Write};
use std::path::Path;

use super::rotate::RotatingFile;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_appender::non_blocking::{NonBlocking, WorkerGuard};
use tracing_subscriber::layer::Context;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, Layer, fmt};

/// Keep it alive for the daemon's life: dropping it flushes the file.
pub struct LogGuard {
    _file: WorkerGuard,
}

/// The ECS fields every line starts with; an event's own field of one of
/// these names is dropped (it never overwrites them).
const ECS_KEYS: [&str; 6] = [
    "@timestamp",
    "log.level",
    "log.logger",
    "message",
    "process.pid",
    "service.name",
];

/// Writes an event's fields as JSON members (`,"name":value`) straight
/// into a line, strings escaped by serde_json; the message goes apart.
/// The daemon logs every lifecycle transition (four per replica on a
/// start), so a line costs one buffer, not a map of owned keys and values.
struct Fields<'a> {
    rest: &'a mut Vec<u8>,
    message: &'a mut Vec<u8>,
}

impl Fields<'_> {
    fn member(&mut self, field: &Field, value: impl serde::Serialize) {
        let name = field.name();
        let into = if name == "message" {
            // One message per line (a second would make two values).
            self.message.clear();
            &mut *self.message
        } else if ECS_KEYS.contains(&name) {
            return;
        } else {
            self.rest.push(b',');
            let _ = serde_json::to_writer(&mut *self.rest, name);
            self.rest.push(b':');
            &mut *self.rest
        };
        if serde_json::to_writer(&mut *into, &value).is_err() {
            into.extend_from_slice(b"null");
        }
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.member(field, value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.member(field, value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.member(field, value);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.member(field, value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.member(field, value);
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.member(field, value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.member(field, format!("{value:?}"));
    }
}

/// One ECS-style JSON object per event: the ECS fields, then the event's.
pub fn ecs_line(event: &Event<'_>, now_ms: i64) -> String {
    let meta = event.metadata();
    let (mut rest, mut message) = (Vec::with_capacity(128), Vec::with_capacity(32));
    event.record(&mut Fields {
        rest: &mut rest,
        message: &mut message,
    });
    if message.is_empty() {
        message.extend_from_slice(b"\"\"");
    }
    let ts = jiff::Timestamp::from_millisecond(now_ms)
        .map(|t| format!("{t:.3}"))
        .unwrap_or_default();
    let mut line = Vec::with_capacity(160 + rest.len() + message.len());
    line.extend_from_slice(b"{\"@timestamp\":");
    let _ = serde_json::to_writer(&mut line, &ts);
    line.extend_from_slice(b",\"log.level\":");
    let _ = serde_json::to_writer(&mut line, meta.level().as_str());
    line.extend_from_slice(b",\"log.logger\":");
    let _ = serde_json::to_writer(&mut line, meta.target());
    line.extend_from_slice(b",\"message\":");
    line.extend_from_slice(&message);
    line.extend_from_slice(b",\"process.pid\":");
    line.extend_from_slice(std::process::id().to_string().as_bytes());
    line.extend_from_slice(b",\"service.name\":\"autonomos\"");
    line.extend_from_slice(&rest);
    line.extend_from_slice(b"}\n");
    // serde_json wrote every string escaped and whole: the line is UTF-8.
    String::from_utf8(line).unwrap_or_default()
}

struct EcsLayer {
    out: NonBlocking,
}

impl<S: Subscriber> Layer<S> for EcsLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let line = ecs_line(event, now);
        let mut out = self.out.clone();
        let _ = out.write_all(line.as_bytes());
    }
}

/// Installs the global subscriber. `AUTONOMOS_LOG` overrides the filter
/// (default `info`). The file rotates past `max_size`, keeping `keep` old
/// files (the `[logs]` settings).
pub fn init_daemon(
    logs_dir: &Path,
    max_size: u64,
    keep: u32,
    detached: bool,
) -> io::Result<LogGuard> {
    std::fs::create_dir_all(logs_dir)?;
    let file = RotatingFile::open(&logs_dir.join("daemon.jsonl"), max_size, keep)?;
    // 8,192 lines in flight (the default 128,000 reserves 4 MiB up front);
    // past that, lines are dropped rather than the daemon held up.
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(8192)
        .lossy(true)
        .finish(file);
    let filter =
        || EnvFilter::try_from_env("AUTONOMOS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = EcsLayer { out: writer }.with_filter(filter());
    let human = match human_stderr(detached) {
        Human::Off => None,
        Human::Terminal => Some(
            fmt::layer()
                .compact()
                .with_ansi(std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()))
                .with_writer(std::io::stderr)
                .with_filter(filter()),
        ),
        Human::Plain { level } => Some(
            fmt::layer()
                .compact()
                .with_ansi(false)
                .with_writer(std::io::stderr)
                .with_filter(level.map_or_else(filter, EnvFilter::new)),
        ),
    };
    tracing_subscriber::registry()
        .with(json)
        .with(human)
        .try_init()
        .map_err(io::Error::other)?;
    Ok(LogGuard { _file: guard })
}

/// What the human form on stderr is worth writing.
#[derive(Debug, PartialEq)]
enum Human {
    /// stderr is /dev/null or closed: every line would be formatted for
    /// nothing (a start of 500 logs 1,000 transitions).
    Off,
    /// An operator watches: colours unless NO_COLOR.
    Terminal,
    /// A file or pipe (journald, `up`'s `daemon.out`): no escape codes.
    /// Detached (unless AUTONOMOS_LOG says otherwise), only warnings and
    /// errors: the JSON log has every line and is rotated, `daemon.out`
    /// is not.
    Plain { level: Option<&'static str> },
}

fn human_stderr(detached: bool) -> Human {
    use std::io::IsTerminal;
    let err = std::io::stderr();
    let Ok(st) = rustix::fs::fstat(&err) else {
        return Human::Off;
    };
    let is_char =
        rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::CharacterDevice;
    if is_char && rustix::fs::stat("/dev/null").is_ok_and(|null| null.st_rdev == st.st_rdev) {
        return Human::Off;
    }
    let level = (detached && std::env::var_os("AUTONOMOS_LOG").is_none()).then_some("warn");
    if err.is_terminal() && level.is_none() {
        return Human::Terminal;
    }
    Human::Plain { level }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_become_ecs_json() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Sink(Arc<Mutex<Vec<String>>>);
        struct Capture(Sink);
        impl<S: Subscriber> Layer<S> for Capture {
            fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
                if let Ok(mut v) = (self.0).0.lock() {
                    v.push(ecs_line(event, 1_795_872_000_123));
                }
            }
        }
        let sink = Sink::default();
        let sub = tracing_subscriber::registry().with(Capture(sink.clone()));
        tracing::subscriber::with_default(sub, || {
            tracing::warn!(
                agent = "worker",
                replica = 2,
                alert.id = "crash-loop/worker",
                "alert firing"
            );
        });
        let lines = sink.0.lock().expect("lock").clone();
        assert_eq!(lines.len(), 1);
        let v: serde_json::Value = serde_json::from_str(&lines[0]).expect("JSON");
        assert_eq!(v["@timestamp"], "2026-11-28T13:20:00.123Z");
        assert_eq!(v["log.level"], "WARN");
        assert_eq!(v["message"], "alert firing");
        assert_eq!(v["agent"], "worker");
        assert_eq!(v["replica"], 2);
        assert_eq!(v["alert.id"], "crash-loop/worker");
        assert_eq!(v["service.name"], "autonomos");
        assert!(
            v["log.logger"]
                .as_str()
                .is_some_and(|l| l.starts_with("autonomos"))
        );
    }

    #[test]
    fn ecs_lines_escape_values_and_keep_their_own_fields() {
        use std::sync::{Arc, Mutex};
        let lines = Arc::new(Mutex::new(Vec::new()));
        struct Capture(Arc<Mutex<Vec<String>>>);
        impl<S: Subscriber> Layer<S> for Capture {
            fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
                if let Ok(mut v) = self.0.lock() {
                    v.push(ecs_line(event, 0));
                }
            }
        }
        let sub = tracing_subscriber::registry().with(Capture(lines.clone()));
        let error = std::io::Error::other("disk \"full\"");
        tracing::subscriber::with_default(sub, || {
            tracing::info!(
                reason = "exit 1\n\"quoted\" \\ tab\t é",
                log.level = "FORGED",
                ratio = f64::NAN,
                ok = true,
                delta = -3i64,
                error = &error as &(dyn std::error::Error + 'static),
                list = ?vec!["a", "b"],
                "multi\nline \"message\""
            );
            tracing::info!(field = 1);
        });
        let lines = lines.lock().expect("lock").clone();
        assert_eq!(lines.len(), 2);
        for l in &lines {
            assert!(l.ends_with('\n') && l.matches('\n').count() == 1, "{l:?}");
        }
        let v: serde_json::Value = serde_json::from_str(&lines[0]).expect("JSON");
        assert_eq!(v["reason"], "exit 1\n\"quoted\" \\ tab\t é");
        assert_eq!(v["message"], "multi\nline \"message\"");
        assert_eq!(
            v["log.level"], "INFO",
            "an event's field never overwrites ECS"
        );
        assert_eq!(v["@timestamp"], "1970-01-01T00:00:00.000Z");
        assert!(v["ratio"].is_null());
        assert_eq!(v["ok"], true);
        assert_eq!(v["delta"], -3);
        assert_eq!(v["error"], "disk \"full\"");
        assert_eq!(v["list"], "[\"a\", \"b\"]");
        assert_eq!(v["process.pid"], std::process::id());
        let w: serde_json::Value = serde_json::from_str(&lines[1]).expect("JSON");
        assert_eq!(
            w["message"], "",
            "an event without a message has an empty one"
        );
        assert_eq!(w["field"], 1);
    }
}
