//! The shared queue's tables. Daemons starting together create them once:
//! the DDL runs under a transaction-scoped advisory lock.

/// Arbitrary, fixed: the advisory lock the schema is created under.
const SCHEMA_LOCK: i64 = 0x6175_746f_6e6f_6d6f;

const DDL: &str = "
CREATE TABLE IF NOT EXISTS autonomos_tasks (
    id           text PRIMARY KEY,
    seq          bigserial NOT NULL,
    agent        text NOT NULL,
    state        text NOT NULL,
    priority     integer NOT NULL,
    key          text,
    attempts     integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL,
    not_before   timestamptz NOT NULL DEFAULT now(),
    owner        text,
    host         text,
    lease_until  timestamptz,
    cancel       boolean NOT NULL DEFAULT false,
    submitted_at bigint NOT NULL,
    done_at      timestamptz,
    body         text NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS autonomos_tasks_key
    ON autonomos_tasks (agent, key) WHERE key IS NOT NULL;
CREATE INDEX IF NOT EXISTS autonomos_tasks_ready
    ON autonomos_tasks (agent, priority DESC, seq)
    WHERE state = 'submitted' AND owner IS NULL;
CREATE INDEX IF NOT EXISTS autonomos_tasks_owner
    ON autonomos_tasks (owner) WHERE owner IS NOT NULL;
CREATE INDEX IF NOT EXISTS autonomos_tasks_seq ON autonomos_tasks (seq);
CREATE TABLE IF NOT EXISTS autonomos_agents (
    agent  text NOT NULL,
    host   text NOT NULL,
    skills jsonb NOT NULL,
    seen   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent, host)
);
";

/// Creates what is missing.
pub async fn ensure(client: &mut tokio_postgres::Client) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .await?;
    tx.batch_execute(DDL).await?;
    tx.commit().await
}
