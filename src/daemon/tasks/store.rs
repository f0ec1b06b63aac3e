//! Tasks in `state.db`, their own table, written by their own thread with
//! group commit: every write waiting when a transaction starts goes into
//! it, so one fsync (`synchronous = FULL`) makes many submits and state
//! changes durable. A write whose sender waits for the acknowledgement is
//! on disk when it arrives.

use std::path::Path;

use rusqlite::{Connection, params};
use tokio::sync::oneshot;

use crate::proto::TaskStatus;

/// Writes per transaction at most (a `PutMany` counts as one).
const BATCH: usize = 8192;

/// One change to the table.
#[derive(Debug)]
pub enum Write {
    /// Insert or replace (`seq` orders the queue across restarts).
    Put { seq: u64, task: Box<TaskStatus> },
    /// A whole submit, in one transaction.
    PutMany(Vec<(u64, TaskStatus)>),
    /// Forget trimmed tasks.
    Delete(Vec<String>),
}

type Ack = Option<oneshot::Sender<Result<(), String>>>;

/// Where the engine's task writes go: the embedded table in `state.db`
/// (`TaskStore`), or the queue several daemons share
/// (`shared::SharedQueue`). Writes are ordered; `write` answers once the
/// write (and every earlier one) is durable or has failed.
pub trait QueueStore: Send + Sync {
    fn write(&self, w: Write) -> oneshot::Receiver<Result<(), String>>;
    /// A write nobody waits for (still ordered after earlier writes).
    fn write_soon(&self, w: Write);
}

/// Handle to the writer thread. The channel is unbounded so the engine
/// never blocks on it (it runs on the async runtime); what waits there is
/// bounded by the work the engine has taken.
#[derive(Debug, Clone)]
pub struct TaskStore {
    tx: tokio::sync::mpsc::UnboundedSender<(Write, Ack)>,
}

/// A stored task with its queue position.
pub struct Row {
    pub seq: u64,
    pub task: TaskStatus,
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // One transaction: a new database is made with one sync, not two.
    conn.execute_batch(
        "BEGIN;
         CREATE TABLE IF NOT EXISTS tasks (
             id TEXT PRIMARY KEY,
             seq INTEGER NOT NULL,
             agent TEXT NOT NULL,
             state TEXT NOT NULL,
             body TEXT NOT NULL
         );
         CREATE INDEX IF NOT EXISTS tasks_seq ON tasks(seq);
         COMMIT;",
    )?;
    Ok(conn)
}

impl TaskStore {
    /// Opens the table, loads every kept task (oldest first) and starts the
    /// writer.
    pub fn start(path: &Path) -> Result<(TaskStore, Vec<Row>), String> {
        let what = |e: rusqlite::Error| format!("task table in {}: {e}", path.display());
        let conn = open(path).map_err(what)?;
        let rows = load(&conn).map_err(what)?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<(Write, Ack)>();
        std::thread::Builder::new()
            .name("autonomos-tasks-db".into())
            .spawn(move || writer(conn, rx))
            .map_err(|e| format!("cannot start the task writer: {e}"))?;
        Ok((TaskStore { tx }, rows))
    }
}

impl QueueStore for TaskStore {
    /// Queues a write; the answer says when it is durable (or why not).
    fn write(&self, w: Write) -> oneshot::Receiver<Result<(), String>> {
        let (ack, rx) = oneshot::channel();
        if let Err(tokio::sync::mpsc::error::SendError((_, Some(ack)))) =
            self.tx.send((w, Some(ack)))
        {
            let _ = ack.send(Err("the task writer stopped".into()));
        }
        rx
    }

    /// Queues a write nobody waits for (it is still ordered after earlier
    /// writes and committed with the next batch).
    fn write_soon(&self, w: Write) {
        let _ = self.tx.send((w, None));
    }
}

fn load(conn: &Connection) -> rusqlite::Result<Vec<Row>> {
    let mut stmt = conn.prepare("SELECT seq, body FROM tasks ORDER BY seq")?;
    let rows = stmt.query_map([], |r| {
        let seq: i64 = r.get(0)?;
        let body: String = r.get(1)?;
        Ok((seq, body))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, body) = row?;
        // A row this build cannot read is skipped, not fatal.
        if let Ok(task) = serde_json::from_str::<TaskStatus>(&body) {
            out.push(Row {
                seq: seq as u64,
                task,
            });
        }
    }
    Ok(out)
}

fn writer(mut conn: Connection, mut rx: tokio::sync::mpsc::UnboundedReceiver<(Write, Ack)>) {
    let mut batch: Vec<(Write, Ack)> = Vec::with_capacity(BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        let result = commit(&mut conn, &batch).map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::error!(error = %e, writes = batch.len(), "task writes failed");
        }
        for (_, ack) in batch.drain(..) {
            if let Some(ack) = ack {
                let _ = ack.send(result.clone());
            }
        }
    }
}

/// What a batch leaves of one task: its last state, or nothing.
pub(super) enum Last<'a> {
    Put(u64, &'a TaskStatus),
    Delete,
}

/// The batch's net effect per task: a task submitted, started and
/// finished within one batch is written once, in its final state (the
/// table ends the same as if each write were applied in order).
pub(super) fn net<'a>(batch: impl Iterator<Item = &'a Write>) -> Vec<(&'a str, Last<'a>)> {
    let mut n = Net::default();
    for w in batch {
        match w {
            Write::Put { seq, task } => n.record(&task.id, Last::Put(*seq, task)),
            Write::PutMany(tasks) => {
                for (seq, task) in tasks {
                    n.record(&task.id, Last::Put(*seq, task));
                }
            }
            Write::Delete(ids) => {
                for id in ids {
                    n.record(id, Last::Delete);
                }
            }
        }
    }
    n.out
}

/// Each task's last write, in order of first appearance.
#[derive(Default)]
struct Net<'a> {
    at: std::collections::HashMap<&'a str, usize>,
    out: Vec<(&'a str, Last<'a>)>,
}

impl<'a> Net<'a> {
    fn record(&mut self, id: &'a str, last: Last<'a>) {
        match self.at.get(id) {
            Some(&i) => self.out[i].1 = last,
            None => {
                self.at.insert(id, self.out.len());
                self.out.push((id, last));
            }
        }
    }
}

fn commit(conn: &mut Connection, batch: &[(Write, Ack)]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut put = tx.prepare_cached(
            "INSERT OR REPLACE INTO tasks (id, seq, agent, state, body) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut del = tx.prepare_cached("DELETE FROM tasks WHERE id = ?1")?;
        for (id, last) in net(batch.iter().map(|(w, _)| w)) {
            match last {
                Last::Put(seq, task) => {
                    let body = serde_json::to_string(task).unwrap_or_default();
                    let state = task.state.name();
                    put.execute(params![task.id, seq as i64, task.agent, state, body])?;
                }
                Last::Delete => {
                    del.execute(params![id])?;
                }
            }
        }
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::task::TaskState;

    fn task(id: &str, state: TaskState) -> TaskStatus {
        TaskStatus {
            id: id.into(),
            agent: "a".into(),
            state,
            attempts: 0,
            replica: None,
            priority: 0,
            key: None,
            context_id: None,
            input: serde_json::Value::Null,
            result: None,
            error: None,
            progress: None,
            submitted_at: 0,
            started_at: None,
            finished_at: None,
            timeout_ms: None,
            host: None,
        }
    }

    #[test]
    fn a_batch_writes_each_task_once_in_its_last_state() {
        let batch: Vec<(Write, Ack)> = vec![
            (
                Write::PutMany(vec![
                    (1, task("x", TaskState::Submitted)),
                    (2, task("y", TaskState::Submitted)),
                ]),
                None,
            ),
            (
                Write::Put {
                    seq: 1,
                    task: Box::new(task("x", TaskState::Working)),
                },
                None,
            ),
            (
                Write::Put {
                    seq: 1,
                    task: Box::new(task("x", TaskState::Completed)),
                },
                None,
            ),
            (Write::Delete(vec!["y".into(), "z".into()]), None),
        ];
        let n = net(batch.iter().map(|(w, _)| w));
        let shown: Vec<String> = n
            .iter()
            .map(|(id, l)| match l {
                Last::Put(seq, t) => format!("{id} put {seq} {}", t.state.name()),
                Last::Delete => format!("{id} delete"),
            })
            .collect();
        assert_eq!(shown, ["x put 1 completed", "y delete", "z delete"]);
    }

    #[test]
    fn the_table_ends_as_if_every_write_were_applied() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn = open(&dir.path().join("state.db")).expect("open");
        let first: Vec<(Write, Ack)> = vec![(
            Write::PutMany(vec![(1, task("old", TaskState::Completed))]),
            None,
        )];
        commit(&mut conn, &first).expect("commit");
        let second: Vec<(Write, Ack)> = vec![
            (
                Write::PutMany(vec![(2, task("new", TaskState::Submitted))]),
                None,
            ),
            (
                Write::Put {
                    seq: 2,
                    task: Box::new(task("new", TaskState::Working)),
                },
                None,
            ),
            (Write::Delete(vec!["old".into()]), None),
        ];
        commit(&mut conn, &second).expect("commit");
        let rows = load(&conn).expect("load");
        let got: Vec<(u64, String, &str)> = rows
            .iter()
            .map(|r| (r.seq, r.task.id.clone(), r.task.state.name()))
            .collect();
        assert_eq!(got, [(2, "new".to_string(), "working")]);
    }
}
