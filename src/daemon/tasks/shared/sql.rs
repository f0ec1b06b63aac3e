//! The shared queue's statements. Every change of a claimed task is fenced
//! by the claim (`owner = $me`): a daemon whose lease ran out cannot undo
//! what the daemon that took over did.

use std::collections::{HashMap, HashSet};

use serde_json::Value;
use tokio_postgres::{Client, Error, Row};

use super::{ClaimedRow, NewRow};
use crate::core::task::TaskState;
use crate::core::task::outcome::{Decision, Ending, RetryPolicy, decide};
use crate::proto::TaskStatus;

/// The channel `NOTIFY` wakes daemons on; the payload is the agent.
pub const CHANNEL: &str = "autonomos_tasks";

/// A state write of a claimed task.
#[derive(Debug, Clone)]
pub struct Put {
    pub task: TaskStatus,
    pub release_after: Option<u64>,
    pub unclaimed: bool,
}

fn status(body: String, host: Option<String>) -> Option<TaskStatus> {
    let mut t: TaskStatus = serde_json::from_str(&body).ok()?;
    if host.is_some() {
        t.host = host;
    }
    Some(t)
}

fn row_status(r: &Row) -> Option<TaskStatus> {
    status(r.get("body"), r.get("host"))
}

/// A task as stored: JSON text (not `jsonb`, which refuses the NUL
/// character an input or result may hold: stored as given, read back the
/// same).
fn body(t: &TaskStatus) -> String {
    serde_json::to_string(t).unwrap_or_default()
}

fn now_ms() -> i64 {
    crate::clock::now_ms() as i64
}

/// Adds a submit's tasks in one transaction; a task whose idempotency key
/// exists names the existing task instead. Other daemons are woken.
pub async fn submit(c: &mut Client, rows: &[NewRow]) -> Result<Vec<TaskStatus>, Error> {
    let n = rows.len();
    let mut ids = Vec::with_capacity(n);
    let mut agents = Vec::with_capacity(n);
    let mut priorities = Vec::with_capacity(n);
    let mut keys = Vec::with_capacity(n);
    let mut maxes = Vec::with_capacity(n);
    let mut times = Vec::with_capacity(n);
    let mut bodies = Vec::with_capacity(n);
    for r in rows {
        let t = &r.task;
        ids.push(t.id.as_str());
        agents.push(t.agent.as_str());
        priorities.push(t.priority);
        keys.push(t.key.as_deref());
        maxes.push(r.max_attempts.min(i32::MAX as u32) as i32);
        times.push(t.submitted_at as i64);
        bodies.push(body(t));
    }
    let tx = c.transaction().await?;
    // One statement for the whole submit; a known key inserts nothing.
    let inserted = tx
        .query(
            "INSERT INTO autonomos_tasks
                 (id, agent, state, priority, key, max_attempts, submitted_at, body)
             SELECT id, agent, 'submitted', priority, key, max_attempts, submitted_at, body
             FROM unnest($1::text[], $2::text[], $3::int4[], $4::text[], $5::int4[],
                         $6::int8[], $7::text[])
                  AS u(id, agent, priority, key, max_attempts, submitted_at, body)
             ON CONFLICT (agent, key) WHERE key IS NOT NULL DO NOTHING
             RETURNING id",
            &[&ids, &agents, &priorities, &keys, &maxes, &times, &bodies],
        )
        .await?;
    let inserted: HashSet<String> = inserted.iter().map(|r| r.get(0)).collect();
    // The tasks the known keys name (all of one agent: a submit has one).
    let named: Vec<&str> = rows
        .iter()
        .filter(|r| !inserted.contains(&r.task.id))
        .filter_map(|r| r.task.key.as_deref())
        .collect();
    let mut by_key: HashMap<String, TaskStatus> = HashMap::new();
    if let (false, Some(agent)) = (named.is_empty(), agents.first()) {
        let known = tx
            .query(
                "SELECT key, body, host FROM autonomos_tasks WHERE agent = $1 AND key = ANY($2)",
                &[agent, &named],
            )
            .await?;
        for r in &known {
            if let Some(s) = row_status(r) {
                by_key.insert(r.get("key"), s);
            }
        }
    }
    let mut out = Vec::with_capacity(n);
    let mut woken = HashSet::new();
    for r in rows {
        if inserted.contains(&r.task.id) {
            woken.insert(r.task.agent.as_str());
            out.push(r.task.clone());
        } else if let Some(s) = r.task.key.as_ref().and_then(|k| by_key.get(k)) {
            out.push(s.clone());
        }
    }
    for a in woken {
        tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &a])
            .await?;
    }
    tx.commit().await?;
    Ok(out)
}

/// Claims up to `n` of an agent's waiting tasks, highest priority first,
/// skipping rows other daemons are claiming.
pub async fn claim(
    c: &Client,
    agent: &str,
    n: u32,
    owner: &str,
    host: &str,
    lease_secs: f64,
) -> Result<Vec<ClaimedRow>, Error> {
    let rows = c
        .query(
            "WITH picked AS (
                 SELECT id FROM autonomos_tasks
                 WHERE agent = $1 AND state = 'submitted' AND owner IS NULL
                   AND not_before <= now()
                 ORDER BY priority DESC, seq
                 LIMIT $2
                 FOR UPDATE SKIP LOCKED)
             UPDATE autonomos_tasks t
             SET owner = $3, host = $4, lease_until = now() + make_interval(secs => $5)
             FROM picked WHERE t.id = picked.id
             RETURNING t.seq, t.max_attempts, t.body, t.host",
            &[&agent, &i64::from(n), &owner, &host, &lease_secs],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some(ClaimedRow {
                seq: r.get::<_, i64>("seq") as u64,
                max_attempts: r.get::<_, i32>("max_attempts").max(1) as u32,
                task: row_status(r)?,
            })
        })
        .collect())
}

/// Writes a batch of state changes in one statement (the last write of
/// each task: a task started and finished within the batch is written
/// once, finished). Returns the ids whose claim this daemon no longer holds
/// (their write was not applied).
pub async fn puts(c: &mut Client, batch: &[Put], owner: &str) -> Result<Vec<String>, Error> {
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (i, p) in batch.iter().enumerate() {
        last.insert(p.task.id.as_str(), i);
    }
    let mut keep: Vec<usize> = last.into_values().collect();
    keep.sort_unstable();
    let n = keep.len();
    let (mut ids, mut states, mut attempts) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut bodies, mut hosts, mut release, mut after) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let mut canceled: Vec<Option<String>> = Vec::with_capacity(n);
    let mut woken = HashSet::new();
    for &i in &keep {
        let p = &batch[i];
        let t = &p.task;
        ids.push(t.id.as_str());
        states.push(t.state.name());
        attempts.push(t.attempts.min(i32::MAX as u32) as i32);
        bodies.push(body(t));
        // What it becomes if an operator's cancel waits on the row.
        canceled.push(p.release_after.map(|_| {
            body(&TaskStatus {
                state: TaskState::Canceled,
                error: Some("canceled by an operator".into()),
                finished_at: Some(now_ms() as u64),
                ..t.clone()
            })
        }));
        hosts.push(t.host.as_deref());
        release.push(t.state.is_final() || p.release_after.is_some());
        after.push(p.release_after.unwrap_or(0) as f64 / 1000.0);
        if p.release_after.is_some() || p.unclaimed {
            woken.insert(t.agent.as_str());
        }
    }
    let tx = c.transaction().await?;
    let rows = tx
        .query(
            "UPDATE autonomos_tasks t
             SET state = CASE WHEN t.cancel AND u.release AND u.state = 'submitted'
                              THEN 'canceled' ELSE u.state END,
                 attempts = u.attempts,
                 body = CASE WHEN t.cancel AND u.release AND u.state = 'submitted'
                             THEN u.canceled ELSE u.body END,
                 done_at = CASE WHEN u.release AND (u.state <> 'submitted' OR t.cancel)
                                THEN now() ELSE t.done_at END,
                 host = COALESCE(u.host, t.host),
                 owner = CASE WHEN u.release THEN NULL ELSE t.owner END,
                 lease_until = CASE WHEN u.release THEN NULL ELSE t.lease_until END,
                 cancel = CASE WHEN u.release THEN false ELSE t.cancel END,
                 not_before = CASE WHEN u.release THEN now() + make_interval(secs => u.after)
                                   ELSE t.not_before END
             FROM unnest($1::text[], $2::text[], $3::int4[], $4::text[], $5::text[],
                         $6::bool[], $7::float8[], $9::text[])
                  AS u(id, state, attempts, body, host, release, after, canceled)
             WHERE t.id = u.id AND t.owner = $8
             RETURNING t.id",
            &[
                &ids, &states, &attempts, &bodies, &hosts, &release, &after, &owner, &canceled,
            ],
        )
        .await?;
    let applied: HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
    let lost = ids
        .iter()
        .filter(|id| !applied.contains(**id))
        .map(|id| id.to_string())
        .collect();
    for a in woken {
        tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &a])
            .await?;
    }
    tx.commit().await?;
    Ok(lost)
}

/// The newest tasks, optionally of one agent and/or in one state.
pub async fn list(
    c: &Client,
    agent: Option<&str>,
    state: Option<TaskState>,
    limit: usize,
) -> Result<Vec<TaskStatus>, Error> {
    let state = state.map(|s| s.name());
    let rows = c
        .query(
            "SELECT body, host FROM autonomos_tasks
             WHERE ($1::text IS NULL OR agent = $1) AND ($2::text IS NULL OR state = $2)
             ORDER BY seq DESC LIMIT $3",
            &[&agent, &state, &(limit.max(1) as i64)],
        )
        .await?;
    Ok(rows.iter().filter_map(row_status).collect())
}

pub async fn get(c: &Client, id: &str) -> Result<Option<TaskStatus>, Error> {
    let row = c
        .query_opt(
            "SELECT body, host FROM autonomos_tasks WHERE id = $1",
            &[&id],
        )
        .await?;
    Ok(row.as_ref().and_then(row_status))
}

/// Why a cancel or retry was refused.
pub enum Refused {
    NotFound,
    Not(String),
    Db(Error),
    Timeout,
}

impl From<Error> for Refused {
    fn from(e: Error) -> Refused {
        Refused::Db(e)
    }
}

/// Cancels a task nobody runs now; a task a daemon holds is marked for
/// cancellation, which that daemon applies at its next renewal. Returns
/// the status and the holding daemon's host.
pub async fn cancel(c: &mut Client, id: &str) -> Result<(TaskStatus, Option<String>), Refused> {
    let tx = c.transaction().await?;
    let row = tx
        .query_opt(
            "SELECT body, host, owner, state FROM autonomos_tasks WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await?
        .ok_or(Refused::NotFound)?;
    let mut t = row_status(&row).ok_or(Refused::NotFound)?;
    if t.state.is_final() {
        return Err(Refused::Not(format!("task {id} is already {}", t.state)));
    }
    let owner: Option<String> = row.get("owner");
    if owner.is_some() {
        tx.execute(
            "UPDATE autonomos_tasks SET cancel = true WHERE id = $1",
            &[&id],
        )
        .await?;
        tx.commit().await?;
        let host = t.host.clone();
        return Ok((t, host));
    }
    t.state = TaskState::Canceled;
    t.finished_at = Some(now_ms() as u64);
    t.error = Some("canceled by an operator".into());
    tx.execute(
        "UPDATE autonomos_tasks SET state = 'canceled', body = $2, done_at = now() WHERE id = $1",
        &[&id, &body(&t)],
    )
    .await?;
    tx.commit().await?;
    Ok((t, None))
}

/// Runs a failed, rejected or canceled task again (any daemon takes it).
pub async fn retry(c: &mut Client, id: &str) -> Result<TaskStatus, Refused> {
    let tx = c.transaction().await?;
    let row = tx
        .query_opt(
            "SELECT body, host FROM autonomos_tasks WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await?
        .ok_or(Refused::NotFound)?;
    let mut t = row_status(&row).ok_or(Refused::NotFound)?;
    if !t.state.may_become(TaskState::Submitted) || t.state == TaskState::Working {
        return Err(Refused::Not(format!(
            "task {id} is {}: only a failed, rejected or canceled task is retried",
            t.state
        )));
    }
    t.state = TaskState::Submitted;
    t.attempts = 0;
    t.error = None;
    t.result = None;
    t.finished_at = None;
    tx.execute(
        "UPDATE autonomos_tasks SET state = 'submitted', attempts = 0, body = $2,
             owner = NULL, lease_until = NULL, cancel = false, not_before = now(),
             done_at = NULL
         WHERE id = $1",
        &[&id, &body(&t)],
    )
    .await?;
    tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &t.agent])
        .await?;
    tx.commit().await?;
    Ok(t)
}

/// Gives up claims: their lease ends now and the owner becomes one no
/// daemon renews, so the next expiry returns them to the queue.
pub async fn unclaim(c: &Client, ids: &[String], owner: &str) -> Result<u64, Error> {
    c.execute(
        "UPDATE autonomos_tasks SET owner = owner || '!', lease_until = now() - interval '1 second'
         WHERE id = ANY($1) AND owner = $2",
        &[&ids, &owner],
    )
    .await
}

/// Extends this daemon's claims; returns what it holds and which of those
/// an operator asked to cancel.
pub async fn renew(
    c: &Client,
    owner: &str,
    lease_secs: f64,
) -> Result<(Vec<String>, Vec<String>), Error> {
    let rows = c
        .query(
            "UPDATE autonomos_tasks SET lease_until = now() + make_interval(secs => $2)
             WHERE owner = $1 RETURNING id, cancel",
            &[&owner, &lease_secs],
        )
        .await?;
    let mut held = Vec::with_capacity(rows.len());
    let mut cancel = Vec::new();
    for r in &rows {
        let id: String = r.get("id");
        if r.get::<_, bool>("cancel") {
            cancel.push(id.clone());
        }
        held.push(id);
    }
    Ok((held, cancel))
}

/// Returns to the queue the claims whose lease ran out (their daemon is
/// gone or cut off) and those of this daemon's previous run: a task that
/// was running counts the attempt (and may fail by its `max_attempts`),
/// one that was only claimed does not. Returns the agents to wake.
pub async fn expire(c: &mut Client, previous: Option<&str>) -> Result<Vec<String>, Error> {
    let tx = c.transaction().await?;
    let rows = tx
        .query(
            "SELECT id, attempts, max_attempts, owner, cancel, body, host FROM autonomos_tasks
             WHERE owner IS NOT NULL
               AND (lease_until < now() OR owner = $1)
             ORDER BY seq LIMIT 500 FOR UPDATE SKIP LOCKED",
            &[&previous],
        )
        .await?;
    let mut woken = HashSet::new();
    let now = now_ms() as u64;
    for r in &rows {
        let Some(mut t) = row_status(r) else { continue };
        let attempts = r.get::<_, i32>("attempts").max(0) as u32;
        let policy = RetryPolicy {
            max_attempts: r.get::<_, i32>("max_attempts").max(1) as u32,
            ..RetryPolicy::default()
        };
        let gone: String = r.get("owner");
        let gone = gone.split(':').next().unwrap_or_default().to_string();
        let mut after = 0u64;
        if r.get::<_, bool>("cancel") {
            t.state = TaskState::Canceled;
            t.error = Some("canceled by an operator".into());
            t.finished_at = Some(now);
        } else if t.state == TaskState::Working {
            let why = format!("its daemon on {gone} stopped renewing its claim");
            match decide(Ending::Lost(why), attempts, &policy) {
                Decision::Retry { after: a, reason } => {
                    t.state = TaskState::Submitted;
                    t.error = Some(reason);
                    after = a;
                }
                Decision::Fail(reason) => {
                    t.state = TaskState::Failed;
                    t.error = Some(reason);
                    t.finished_at = Some(now);
                }
                _ => {}
            }
        }
        if t.state == TaskState::Submitted {
            woken.insert(t.agent.clone());
        }
        tx.execute(
            "UPDATE autonomos_tasks SET state = $2, body = $3, owner = NULL,
                 lease_until = NULL, cancel = false,
                 done_at = CASE WHEN $2 = 'submitted' THEN NULL ELSE now() END,
                 not_before = now() + make_interval(secs => $4)
             WHERE id = $1",
            &[&t.id, &t.state.name(), &body(&t), &(after as f64 / 1000.0)],
        )
        .await?;
        tracing::warn!(task = %t.id, from = %gone, state = %t.state, "a claim ended without its daemon; the task is back in the shared queue or final");
    }
    for a in &woken {
        tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, a])
            .await?;
    }
    tx.commit().await?;
    Ok(woken.into_iter().collect())
}

/// Each agent's waiting tasks and the oldest submit time.
pub async fn waiting(c: &Client) -> Result<HashMap<String, (u64, Option<u64>)>, Error> {
    let rows = c
        .query(
            "SELECT agent, count(*) AS n, min(submitted_at) AS oldest FROM autonomos_tasks
             WHERE state = 'submitted' AND owner IS NULL GROUP BY agent",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let n: i64 = r.get("n");
            let oldest: Option<i64> = r.get("oldest");
            (r.get("agent"), (n as u64, oldest.map(|o| o as u64)))
        })
        .collect())
}

/// Records the task agents this host offers and reads what all hosts
/// offered in the last five minutes.
pub async fn offers(
    c: &Client,
    host: &str,
    mine: &[(String, Vec<String>)],
) -> Result<HashMap<String, Vec<String>>, Error> {
    for (agent, skills) in mine {
        c.execute(
            "INSERT INTO autonomos_agents (agent, host, skills, seen) VALUES ($1, $2, $3, now())
             ON CONFLICT (agent, host) DO UPDATE SET skills = $3, seen = now()",
            &[agent, &host, &serde_json::json!(skills)],
        )
        .await?;
    }
    let rows = c
        .query(
            "SELECT agent, skills FROM autonomos_agents WHERE seen > now() - interval '5 minutes'",
            &[],
        )
        .await?;
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for r in &rows {
        let skills: Value = r.get("skills");
        let list = out.entry(r.get("agent")).or_default();
        for s in skills
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !list.iter().any(|x| x == s) {
                list.push(s.to_string());
            }
        }
    }
    Ok(out)
}

/// Forgets the oldest finished tasks past `keep` (over the whole queue).
pub async fn trim(c: &Client, keep: usize) -> Result<u64, Error> {
    c.execute(
        "DELETE FROM autonomos_tasks WHERE id IN (
             SELECT id FROM autonomos_tasks
             WHERE state IN ('completed', 'failed', 'canceled', 'rejected')
             ORDER BY done_at DESC NULLS LAST, seq DESC OFFSET $1)",
        &[&(keep as i64)],
    )
    .await
}
