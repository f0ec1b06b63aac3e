//! The task suite (`tasks/suite.rs`) on the embedded SQLite queue.

mod common;

mod store {
    /// No `store` key: the default queue in `state.db`.
    pub fn line() -> String {
        String::new()
    }

    pub fn usable() -> bool {
        true
    }
}

#[path = "tasks/suite.rs"]
mod suite;
