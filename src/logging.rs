//! The daemon's own log: JSON lines in `DATA_DIR/logs/daemon.jsonl`, with
//! ECS field names (`@timestamp`, `log.level`, `log.logger`, `message`,
//! `process.pid`, `service.name`, then the event's own fields) so that
//! Elasticsearch/Filebeat or Loki ingest it as is; rotated by size
//! (`daemon.jsonl.1` … `.N`). A compact human form goes to stderr.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
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

/// A file that rotates when the next write would take it past `max_size`:
/// `NAME` → `NAME.1` → … → `NAME.keep` (the oldest is deleted). Writes are
/// whole log lines, so a line is never split across files.
pub struct RotatingFile {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    keep: u32,
}

impl RotatingFile {
    pub fn open(path: &Path, max_size: u64, keep: u32) -> io::Result<RotatingFile> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile {
            path: path.to_path_buf(),
            file,
            size,
            max_size: max_size.max(1),
            keep,
        })
    }

    fn numbered(&self, n: u32) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        if self.keep == 0 {
            // No history kept: start the file over.
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        let _ = std::fs::remove_file(self.numbered(self.keep));
        for n in (1..self.keep).rev() {
            let from = self.numbered(n);
            if from.exists() {
                std::fs::rename(&from, self.numbered(n + 1))?;
            }
        }
        std::fs::rename(&self.path, self.numbered(1))?;
        self.file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.size > 0 && self.size + buf.len() as u64 > self.max_size {
            // A failed rotation keeps writing to the current file.
            let _ = self.rotate();
        }
        let n = self.file.write(buf)?;
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
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
    let (writer, guard) = tracing_appender::non_blocking(file);
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
    fn rotates_by_size_and_keeps_n_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("daemon.jsonl");
        let mut f = RotatingFile::open(&path, 100, 2).expect("open");
        let line = format!("{}\n", "x".repeat(39));
        for _ in 0..20 {
            f.write_all(line.as_bytes()).expect("write");
        }
        f.flush().expect("flush");
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        assert!(size(&path) <= 100);
        assert_eq!(size(&dir.path().join("daemon.jsonl.1")), 80);
        assert_eq!(size(&dir.path().join("daemon.jsonl.2")), 80);
        assert!(!dir.path().join("daemon.jsonl.3").exists());
        // Whole lines only.
        let text = std::fs::read_to_string(dir.path().join("daemon.jsonl.1")).expect("read");
        assert!(text.lines().all(|l| l.len() == 39));
        // Reopening continues the current file's size.
        drop(f);
        let before = size(&path);
        let mut f = RotatingFile::open(&path, 100, 2).expect("open");
        f.write_all(b"y\n").expect("write");
        f.flush().expect("flush");
        assert!(size(&path) == before + 2 || size(&path) == 2);
    }

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
