//! The pure heart of Autonomos: lifecycle state machine, restart policy,
//! resource pool.
//!
//! Nothing in here does IO, spawns tasks or reads a clock: time is passed in,
//! so every rule is unit-tested with exact timestamps.

pub mod backoff;
pub mod lifecycle;
pub mod pool;
pub mod sanitize;
