//! The pure heart of Autonomos: lifecycle state machine, restart policy,
//! resource pool, time series, alert rules, incidents, the audit chain.
//!
//! Nothing in here does IO, spawns tasks or reads a clock: time is passed in,
//! so every rule is unit-tested with exact timestamps.

pub mod alert;
pub mod audit;
pub mod autoscale;
pub mod backoff;
pub mod doctor;
pub mod incident;
pub mod keys;
pub mod lifecycle;
pub mod pool;
pub mod repo;
pub mod sanitize;
pub mod series;
pub mod signal;
pub mod suggest;
pub mod supervise;
pub mod task;
pub mod units;
