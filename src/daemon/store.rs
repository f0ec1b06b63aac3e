//! `state.db`: the fleet's durable intent (desired replicas, started/stopped)
//! and each replica's restart count and last exit, in SQLite (WAL).
//!
//! One writer thread owns the connection. Writes queue on a bounded channel
//! and are committed in batches (one transaction, one fsync for many
//! changes). A change whose sender waits for the acknowledgement is durable
//! when the acknowledgement arrives: `synchronous = FULL`, and a failed
//! commit fails every change in the batch.

use std::collections::HashMap;
use std::path::Path;
use std::thread;

use rusqlite::{Connection, OptionalExtension, params};

use crate::core::incident::Incident;
use crate::daemon::health::{Health, Part};
use tokio::sync::oneshot;

/// How long changes nobody waits for are gathered before a commit.
const COALESCE: std::time::Duration = std::time::Duration::from_millis(100);

/// Queue bound: past it, senders wait (the supervisor sends exits with
/// `try_send` and counts what it could not queue).
pub const QUEUE: usize = 4096;

/// What `state.db` remembers of one agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRow {
    pub desired: u32,
    /// The `replicas` value of the config when `desired` was stored: a
    /// changed config value wins over an old runtime scale.
    pub config_replicas: u32,
    pub enabled: bool,
}

/// What `state.db` remembers of one replica.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplicaRow {
    pub restarts: u64,
    /// Crashes, failed starts and limit kills (operator restarts excluded).
    pub failures: u64,
    pub last_exit_code: Option<i32>,
    pub last_exit_signal: Option<i32>,
    pub last_exit_at: Option<u64>,
}

/// Everything loaded at start.
#[derive(Debug, Default)]
pub struct Loaded {
    pub agents: HashMap<String, AgentRow>,
    pub replicas: HashMap<(String, u32), ReplicaRow>,
    /// Open incidents and the most recent resolved ones, oldest first.
    pub incidents: Vec<Incident>,
    /// The highest incident id ever stored.
    pub last_incident: u64,
    /// The host's day view (minute, CPU %, memory %) of the last 24 hours,
    /// oldest first.
    pub host_day: Vec<(u64, f64, f64)>,
}

/// Alert state changes kept in `alert_events` (trimmed at each start).
pub const ALERT_EVENTS_KEPT: i64 = 100_000;

/// How far back the stored day view reaches.
const DAY_MS: u64 = 86_400_000;

/// Resolved incidents loaded at start (older ones stay in the database).
pub const RESOLVED_KEPT: usize = 200;

/// One queued change.
#[derive(Debug)]
pub enum Change {
    Agent {
        name: String,
        row: AgentRow,
    },
    Replica {
        agent: String,
        index: u32,
        row: ReplicaRow,
    },
    /// Insert or replace a whole incident (its timeline is bounded).
    Incident(Box<Incident>),
    /// One closed minute of the host's day view; older than a day is
    /// dropped as it is written.
    HostDay {
        at: u64,
        cpu: f64,
        mem: f64,
    },
    /// An alert changed state (the alert history).
    AlertEvent {
        at: u64,
        id: String,
        severity: String,
        state: String,
        summary: String,
    },
}

type Ack = Option<oneshot::Sender<Result<(), String>>>;

/// Handle to the writer thread.
#[derive(Debug, Clone)]
pub struct Store {
    tx: crate::daemon::bounded::Sender<(Change, Ack)>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open state database {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
}

fn open(path: &Path) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path).map_err(|source| StoreError::Open {
        path: path.display().to_string(),
        source,
    })?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // The schema in one transaction: a new database is made with one sync
    // (it was one per table), and an old one is brought up to date whole
    // or not at all.
    let tx = conn.transaction()?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS agents (
             name TEXT PRIMARY KEY,
             desired INTEGER NOT NULL,
             config_replicas INTEGER NOT NULL,
             enabled INTEGER NOT NULL
         );
         CREATE TABLE IF NOT EXISTS replicas (
             agent TEXT NOT NULL,
             idx INTEGER NOT NULL,
             restarts INTEGER NOT NULL,
             last_exit_code INTEGER,
             last_exit_signal INTEGER,
             last_exit_at INTEGER,
             PRIMARY KEY (agent, idx)
         );
         CREATE TABLE IF NOT EXISTS incidents (
             id INTEGER PRIMARY KEY,
             opened_at INTEGER NOT NULL,
             resolved_at INTEGER,
             level INTEGER NOT NULL,
             body TEXT NOT NULL
         );
         CREATE TABLE IF NOT EXISTS host_day (
             at INTEGER PRIMARY KEY,
             cpu REAL NOT NULL,
             mem REAL NOT NULL
         );
         CREATE TABLE IF NOT EXISTS alert_events (
             at INTEGER NOT NULL,
             id TEXT NOT NULL,
             severity TEXT NOT NULL,
             state TEXT NOT NULL,
             summary TEXT NOT NULL
         );",
    )?;
    // Added after the first release: databases made before it lack it.
    let has_failures = tx
        .prepare("PRAGMA table_info(replicas)")?
        .query_map([], |r| r.get::<_, String>(1))?
        .collect::<Result<Vec<_>, _>>()?
        .iter()
        .any(|c| c == "failures");
    if !has_failures {
        tx.execute_batch("ALTER TABLE replicas ADD COLUMN failures INTEGER NOT NULL DEFAULT 0")?;
    }
    tx.commit()?;
    Ok(conn)
}

/// Reads the database without starting a writer (also used by tests and the CLI).
pub fn load(path: &Path) -> Result<Loaded, StoreError> {
    let conn = open(path)?;
    load_from(&conn)
}

fn load_from(conn: &Connection) -> Result<Loaded, StoreError> {
    let mut loaded = Loaded::default();
    let mut q = conn.prepare("SELECT name, desired, config_replicas, enabled FROM agents")?;
    let rows = q.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            AgentRow {
                desired: r.get(1)?,
                config_replicas: r.get(2)?,
                enabled: r.get::<_, i64>(3)? != 0,
            },
        ))
    })?;
    for row in rows {
        let (name, row) = row?;
        loaded.agents.insert(name, row);
    }
    let mut q = conn.prepare(
        "SELECT agent, idx, restarts, last_exit_code, last_exit_signal, last_exit_at, failures FROM replicas",
    )?;
    let rows = q.query_map([], |r| {
        Ok((
            (r.get::<_, String>(0)?, r.get::<_, u32>(1)?),
            ReplicaRow {
                restarts: r.get::<_, i64>(2)? as u64,
                last_exit_code: r.get(3)?,
                last_exit_signal: r.get(4)?,
                last_exit_at: r.get::<_, Option<i64>>(5)?.map(|v| v as u64),
                failures: r.get::<_, i64>(6)?.max(0) as u64,
            },
        ))
    })?;
    for row in rows {
        let (key, row) = row?;
        loaded.replicas.insert(key, row);
    }
    let mut q = conn.prepare(
        "SELECT body FROM (
             SELECT id, body FROM incidents WHERE resolved_at IS NULL
             UNION
             SELECT id, body FROM (SELECT id, body FROM incidents WHERE resolved_at IS NOT NULL
                                   ORDER BY id DESC LIMIT ?1)
         ) ORDER BY id",
    )?;
    let rows = q.query_map([RESOLVED_KEPT as i64], |r| r.get::<_, String>(0))?;
    for body in rows {
        let body = body?;
        match serde_json::from_str::<Incident>(&body) {
            Ok(i) => loaded.incidents.push(i),
            Err(e) => tracing::error!(error = %e, "unreadable incident in state.db; skipped"),
        }
    }
    let mut q = conn.prepare(
        "SELECT at, cpu, mem FROM host_day WHERE at >= (SELECT MAX(at) FROM host_day) - ?1 ORDER BY at",
    )?;
    let rows = q.query_map([DAY_MS as i64], |r| {
        Ok((r.get::<_, i64>(0)?.max(0) as u64, r.get(1)?, r.get(2)?))
    })?;
    for row in rows {
        loaded.host_day.push(row?);
    }
    loaded.last_incident = conn
        .query_row("SELECT MAX(id) FROM incidents", [], |r| {
            r.get::<_, Option<i64>>(0)
        })
        .optional()?
        .flatten()
        .unwrap_or(0) as u64;
    Ok(loaded)
}

/// Opens the database read-only (beside the daemon's writer, WAL lets
/// both proceed).
fn open_read(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StoreError::Open {
        path: path.display().to_string(),
        source,
    })?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

/// One incident by id, whether or not the daemon keeps it in memory.
pub fn incident(path: &Path, id: u64) -> Result<Option<Incident>, StoreError> {
    let conn = open_read(path)?;
    let body = conn
        .query_row(
            "SELECT body FROM incidents WHERE id = ?1",
            [id as i64],
            |r| r.get::<_, String>(0),
        )
        .optional()?;
    Ok(body.and_then(|b| serde_json::from_str(&b).ok()))
}

/// The newest `limit` alert state changes (of ids starting with `prefix`),
/// oldest first.
pub fn alert_events(
    path: &Path,
    prefix: Option<&str>,
    limit: usize,
) -> Result<Vec<crate::proto::AlertEvent>, StoreError> {
    let conn = open_read(path)?;
    // A prefix match without LIKE's wildcards: `substr(id, 1, n) = prefix`.
    let prefix = prefix.unwrap_or("");
    let mut q = conn.prepare(
        "SELECT at, id, severity, state, summary FROM alert_events
         WHERE substr(id, 1, ?1) = ?2 ORDER BY rowid DESC LIMIT ?3",
    )?;
    let rows = q.query_map(
        params![prefix.chars().count() as i64, prefix, limit as i64],
        |r| {
            Ok(crate::proto::AlertEvent {
                at: r.get::<_, i64>(0)?.max(0) as u64,
                id: r.get(1)?,
                severity: r.get(2)?,
                state: r.get(3)?,
                summary: r.get(4)?,
            })
        },
    )?;
    let mut out = rows.collect::<Result<Vec<_>, _>>()?;
    out.reverse();
    Ok(out)
}

impl Store {
    /// Opens (creating if needed) the database, loads it, and starts the
    /// writer thread, which reports each commit to `health`.
    pub fn start(path: &Path, health: Health) -> Result<(Store, Loaded), StoreError> {
        let mut conn = open(path)?;
        // The alert history keeps its newest ALERT_EVENTS_KEPT rows.
        conn.execute(
            "DELETE FROM alert_events WHERE rowid <= (SELECT MAX(rowid) FROM alert_events) - ?1",
            [ALERT_EVENTS_KEPT],
        )?;
        let loaded = load_from(&conn)?;
        let (tx, rx) = crate::daemon::bounded::channel::<(Change, Ack)>(QUEUE);
        thread::Builder::new()
            .name("autonomos-store".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    // Changes nobody waits for (restart counts, incidents,
                    // alert history) are gathered for up to COALESCE, so a
                    // crash storm commits (and syncs) a few times a second,
                    // not once per exit; a change someone waits for goes at once.
                    let deadline = std::time::Instant::now() + COALESCE;
                    loop {
                        while batch.len() < 1024
                            && let Ok(more) = rx.try_recv()
                        {
                            batch.push(more);
                        }
                        let waited_for = batch.iter().any(|(_, ack)| ack.is_some());
                        let left = deadline.saturating_duration_since(std::time::Instant::now());
                        if waited_for || batch.len() >= 1024 || left.is_zero() {
                            break;
                        }
                        match rx.recv_timeout(left) {
                            Ok(more) => batch.push(more),
                            Err(_) => break,
                        }
                    }
                    let result = write_batch(&mut conn, &batch).map_err(|e| e.to_string());
                    match &result {
                        Ok(()) => health.succeeded(Part::State),
                        Err(e) => {
                            health.failed(Part::State, e);
                            tracing::error!(error = %e, changes = batch.len(), "state database write failed");
                        }
                    }
                    for (_, ack) in batch {
                        if let Some(ack) = ack {
                            let _ = ack.send(result.clone());
                        }
                    }
                }
            })
            .map_err(|e| StoreError::Sql(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))?;
        Ok((Store { tx }, loaded))
    }

    /// Queues a change and waits until it is durable.
    pub async fn write(&self, change: Change) -> Result<(), String> {
        let (ack, done) = oneshot::channel();
        let tx = self.tx.clone();
        // The queue is bounded; wait for room off the async executor.
        tokio::task::spawn_blocking(move || tx.send((change, Some(ack))))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|_| "state database writer stopped".to_string())?;
        done.await
            .map_err(|_| "state database writer stopped".to_string())?
    }

    /// Queues a change without waiting. Returns false if the queue is full.
    pub fn write_soon(&self, change: Change) -> bool {
        self.tx.try_send((change, None)).is_ok()
    }
}

fn write_batch(conn: &mut Connection, batch: &[(Change, Ack)]) -> Result<(), rusqlite::Error> {
    let tx = conn.transaction()?;
    for (change, _) in batch {
        match change {
            Change::Agent { name, row } => {
                tx.prepare_cached("INSERT INTO agents (name, desired, config_replicas, enabled) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(name) DO UPDATE SET desired = ?2, config_replicas = ?3, enabled = ?4")?.execute(params![name, row.desired, row.config_replicas, row.enabled as i64],
                )?;
            }
            Change::Incident(i) => {
                let body = serde_json::to_string(i)
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
                tx.prepare_cached("INSERT INTO incidents (id, opened_at, resolved_at, level, body) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(id) DO UPDATE SET resolved_at = ?3, level = ?4, body = ?5")?.execute(params![
                        i.id as i64,
                        i.opened_at as i64,
                        i.resolved_at.map(|v| v as i64),
                        i.level,
                        body
                    ],
                )?;
            }
            Change::HostDay { at, cpu, mem } => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO host_day (at, cpu, mem) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![*at as i64, cpu, mem])?;
                tx.prepare_cached("DELETE FROM host_day WHERE at < ?1")?
                    .execute([(*at as i64) - DAY_MS as i64])?;
            }
            Change::AlertEvent {
                at,
                id,
                severity,
                state,
                summary,
            } => {
                tx.prepare_cached("INSERT INTO alert_events (at, id, severity, state, summary) VALUES (?1, ?2, ?3, ?4, ?5)")?.execute(params![*at as i64, id, severity, state, summary],
                )?;
            }
            Change::Replica { agent, index, row } => {
                tx.prepare_cached("INSERT INTO replicas (agent, idx, restarts, last_exit_code, last_exit_signal, last_exit_at, failures)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT(agent, idx) DO UPDATE SET restarts = ?3, last_exit_code = ?4,
                         last_exit_signal = ?5, last_exit_at = ?6, failures = ?7")?.execute(params![
                        agent,
                        index,
                        row.restarts as i64,
                        row.last_exit_code,
                        row.last_exit_signal,
                        row.last_exit_at.map(|v| v as i64),
                        row.failures as i64
                    ],
                )?;
            }
        }
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn acknowledged_changes_are_there_after_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("state.db");
        {
            let (store, loaded) = Store::start(&db, Health::default()).expect("start");
            assert!(loaded.agents.is_empty());
            store
                .write(Change::Agent {
                    name: "a".into(),
                    row: AgentRow {
                        desired: 3,
                        config_replicas: 1,
                        enabled: false,
                    },
                })
                .await
                .expect("write");
            store
                .write(Change::Replica {
                    agent: "a".into(),
                    index: 2,
                    row: ReplicaRow {
                        restarts: 7,
                        last_exit_code: Some(1),
                        ..Default::default()
                    },
                })
                .await
                .expect("write");
        }
        let loaded = load(&db).expect("load");
        assert_eq!(
            loaded.agents.get("a"),
            Some(&AgentRow {
                desired: 3,
                config_replicas: 1,
                enabled: false
            })
        );
        assert_eq!(
            loaded
                .replicas
                .get(&("a".to_string(), 2))
                .map(|r| r.restarts),
            Some(7)
        );
    }
}
