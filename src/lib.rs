//! Autonomos: supervise a fleet of local AI agents and watch it live.
//!
//! Layers (DESIGN.md §3): `core` is pure logic; `proto` the shared message
//! types; `daemon` the tokio runtime around the supervisor; `tui` the
//! console (feature `tui`). `core` depends on nothing of ours.

pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod core;
pub mod daemon;
pub mod demo;
pub mod paths;
pub mod proto;
#[cfg(feature = "tui")]
pub mod tui;
