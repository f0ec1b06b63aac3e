//! The task suite (`tasks/suite.rs`) on a shared PostgreSQL queue: every
//! test gets a fresh database on one throwaway server (Debian package
//! `postgresql`; skipped visibly without it, a failure under
//! `AUTONOMOS_REQUIRE_TOOLS=1`). The tests that need several daemons,
//! a killed daemon or a restarted database are in `shared_queue.rs`.

mod common;

mod store {
    use std::sync::OnceLock;

    use crate::common::postgres::Postgres;

    /// One server for the whole binary; it stops when the process exits.
    static SERVER: OnceLock<Option<Postgres>> = OnceLock::new();

    /// `store = "postgres://..."` naming a fresh database.
    pub fn line() -> String {
        match SERVER.get_or_init(Postgres::start) {
            Some(pg) => format!("store = \"{}\"\n", pg.database()),
            None => String::new(),
        }
    }

    /// Whether PostgreSQL is installed (else the test is skipped, visibly).
    pub fn usable() -> bool {
        SERVER.get_or_init(Postgres::start).is_some()
    }
}

#[path = "tasks/suite.rs"]
mod suite;
