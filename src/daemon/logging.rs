//! The daemon's own log: JSON lines in `DATA_DIR/logs/daemon.jsonl`, with
//! ECS field names (`@timestamp`, `log.level`, `log.logger`, `message`,
//! `process.pid`, `service.name`, then the event's own fields) so that
//! Elasticsearch/Filebeat or Loki ingest it as is; rotated by size
//! (`daemon.jsonl.1` … `.N`). A compact human form goes to stderr.

use std::io::{self, Write};
use std::path::Path;

use serde_json::{Map, Value};

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

/// Collects an event's fields into a JSON object.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), value.to_string().into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

/// One ECS-style JSON object per event.
pub fn ecs_line(event: &Event<'_>, now_ms: i64) -> String {
    let meta = event.metadata();
    let mut fields = Map::new();
    event.record(&mut Fields(&mut fields));
    let mut obj = Map::new();
    let ts = jiff::Timestamp::from_millisecond(now_ms)
        .map(|t| format!("{t:.3}"))
        .unwrap_or_default();
    obj.insert("@timestamp".into(), ts.into());
    obj.insert("log.level".into(), meta.level().as_str().into());
    obj.insert("log.logger".into(), meta.target().into());
    obj.insert(
        "message".into(),
        fields
            .remove("message")
            .unwrap_or(Value::String(String::new())),
    );
    obj.insert("process.pid".into(), std::process::id().into());
    obj.insert("service.name".into(), "autonomos".into());
    for (k, v) in fields {
        // The event's own fields never overwrite the ECS ones.
        obj.entry(k).or_insert(v);
    }
    let mut s = Value::Object(obj).to_string();
    s.push('\n');
    s
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
pub fn init_daemon(logs_dir: &Path, max_size: u64, keep: u32) -> io::Result<LogGuard> {
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
    let human = fmt::layer()
        .compact()
        .with_writer(std::io::stderr)
        .with_filter(filter());
    tracing_subscriber::registry()
        .with(json)
        .with(human)
        .try_init()
        .map_err(io::Error::other)?;
    Ok(LogGuard { _file: guard })
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
        let v: Value = serde_json::from_str(&lines[0]).expect("JSON");
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
}
