//! Simulated AI agents for the built-in demo fleet.
//!
//! `autonomos demo-agent --role ROLE` (a hidden subcommand) runs one of these.
//! The built-in fleet in `assets/demo.toml` starts them so a newcomer sees a
//! live console at once: log lines, CPU that moves, memory that grows and
//! shrinks, a tool server that crashes now and then and an indexer that leaks
//! until its memory limit restarts it.
//!
//! Every role is a plain single-threaded loop (no async runtime: the supervisor
//! runs it as a separate process) that alternates bursts of activity with idle
//! pauses:
//!
//! - **log lines**: plausible agent output with made-up task ids, token counts
//!   and latencies, about one or two lines a second. `DEBUG`/`INFO` lines go to
//!   stdout, `WARN`/`ERROR` lines to stderr. Each line is written whole with a
//!   single `write` and flushed, so the supervisor sees it at once;
//! - **CPU**: bursts of real arithmetic (a hashing loop over the working set)
//!   lasting 60 ms to about 2 s, standing in for tokenising, embedding or tests;
//! - **memory**: a working set of tens of MiB that grows and shrinks, every
//!   page written so the resident set really changes;
//! - **context**: now and then a small `notes-<replica>.md` is written to the
//!   context dir, through a temp file and a rename.
//!
//! The process reads `AUTONOMOS_AGENT`, `AUTONOMOS_REPLICA`,
//! `AUTONOMOS_CONTEXT_DIR` and `MODEL` from its environment; each may be absent
//! (defaults: the role's name, replica 0, `$TMPDIR/autonomos-demo-<agent>`,
//! `demo-7b`).
//!
//! No signal handler is installed: SIGTERM's default action ends the process at
//! once, which is all a stop needs.

mod agent;
mod echo;
mod lines;
mod notes;
mod wire;
use agent::*;
use lines::*;
use notes::*;

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process;
use std::thread;
use std::time::{Duration, Instant};

use clap::ValueEnum;
use rand::rngs::ThreadRng;
use rand::seq::IndexedRandom;
use rand::{Rng, RngExt};

const MIB: usize = 1024 * 1024;

/// Which simulated agent to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum Role {
    /// Decomposes goals into steps for researchers and coders.
    Planner,
    /// "Fetches" sources, embeds and summarises them.
    Researcher,
    /// "Edits files" and "runs tests".
    Coder,
    /// A tool server that crashes after a random 15–60 s (exit code 1 or 2, or
    /// an abort).
    Flaky,
    /// An indexer whose memory grows a few MiB a second and never shrinks.
    Leaky,
    /// A task agent (`protocol = "jsonrpc"`) that answers every `task.run`
    /// at once with its input: for benchmarks and tests of the task layer.
    Echo,
}

impl Role {
    /// The role's name as given to `--role`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Planner => "planner",
            Role::Researcher => "researcher",
            Role::Coder => "coder",
            Role::Flaky => "flaky",
            Role::Leaky => "leaky",
            Role::Echo => "echo",
        }
    }

    /// The agent name used when `AUTONOMOS_AGENT` is not set (the name the
    /// built-in fleet gives it).
    fn default_agent(self) -> &'static str {
        match self {
            Role::Planner => "planner",
            Role::Researcher => "researcher",
            Role::Coder => "coder",
            Role::Flaky => "flaky-tool",
            Role::Leaky => "leaky-indexer",
            Role::Echo => "echo",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Runs the simulated agent `role` until the process is killed, and returns
/// the exit code the caller should pass to [`std::process::exit`].
///
/// It normally never returns: the supervisor ends it with a signal. It returns
/// - `1` or `2` when the [`Role::Flaky`] tool server "crashes" (the third way
///   it crashes, [`std::process::abort`], does not return at all);
/// - `0` when stdout or stderr is closed (nobody is listening any more);
/// - `1` on any other I/O error writing output.
///
/// Failing to write the notes file is not an error: it is logged as a warning.
pub fn run(role: Role) -> i32 {
    if role == Role::Echo {
        return echo::run();
    }
    let identity = Identity::new(
        role,
        std::env::var("AUTONOMOS_AGENT").ok(),
        std::env::var("AUTONOMOS_REPLICA").ok(),
        std::env::var_os("AUTONOMOS_CONTEXT_DIR"),
    );
    let model = std::env::var("MODEL")
        .ok()
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| "demo-7b".to_owned());
    let mut agent = Agent::new(role, identity, model);
    match agent.run() {
        Ok(code) => code,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            // stderr may be the broken stream; nothing more can be done then.
            let _ = writeln!(io::stderr(), "ERROR demo-agent: {e}");
            1
        }
    }
}

// ---------------------------------------------------------------------------
// Identity and environment

/// Who this process is, from the environment the supervisor gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    agent: String,
    replica: u32,
    context_dir: PathBuf,
}

impl Identity {
    /// Builds the identity from the raw environment values, with defaults for
    /// missing or unusable ones.
    fn new(
        role: Role,
        agent: Option<String>,
        replica: Option<String>,
        context_dir: Option<OsString>,
    ) -> Self {
        let agent = agent
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| role.default_agent().to_owned());
        let replica = replica
            .and_then(|r| r.trim().parse::<u32>().ok())
            .unwrap_or(0);
        let context_dir = context_dir
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                std::env::temp_dir().join(format!("autonomos-demo-{}", file_safe(&agent)))
            });
        Self {
            agent,
            replica,
            context_dir,
        }
    }
}

/// `name` with anything but ASCII letters, digits, `-` and `_` replaced by `_`.
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Output

/// Severity of a log line; `Warn` and `Error` go to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn label(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }

    fn to_stderr(self) -> bool {
        matches!(self, Level::Warn | Level::Error)
    }
}

/// One output line, without its newline: `LEVEL target: message`. Any line
/// break inside `msg` becomes a space so the result is always a single line.
fn format_line(level: Level, target: &str, msg: &str) -> String {
    let msg: String = msg
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    format!("{:<5} {target}: {msg}", level.label())
}

// ---------------------------------------------------------------------------
// Memory

/// A block of memory whose every page is written, so its size shows in RSS.
///
/// It is one `Vec<u8>` that never drops below [`WorkingSet::MIN`]: large
/// enough that the allocator maps it on its own, so growing and shrinking it
/// (`realloc`) maps and unmaps pages rather than leaving freed memory cached
/// in the heap. The resident set therefore really shrinks when it does.
struct WorkingSet {
    buf: Vec<u8>,
    fill: u8,
}

impl WorkingSet {
    /// Smallest size kept allocated.
    const MIN: usize = 4 * MIB;

    fn new() -> Self {
        let mut ws = Self {
            buf: Vec::new(),
            fill: 0x5a,
        };
        // If even this fails the process has bigger problems; run without.
        let _ = ws.resize_to(Self::MIN);
        ws
    }

    fn len(&self) -> usize {
        self.buf.len()
    }

    /// Grows (writing every new byte) or shrinks (returning pages) to `bytes`,
    /// at least [`WorkingSet::MIN`]. Fails only when growing cannot allocate.
    fn resize_to(&mut self, bytes: usize) -> Result<(), std::collections::TryReserveError> {
        let target = bytes.max(Self::MIN);
        let len = self.buf.len();
        if target > len {
            self.buf.try_reserve_exact(target - len)?;
            // A non-zero fill: zero pages could stay shared with the zero page.
            self.fill = self.fill.wrapping_add(0x3b) | 1;
            self.buf.resize(target, self.fill);
        } else if target < len {
            self.buf.truncate(target);
            self.buf.shrink_to_fit();
        }
        Ok(())
    }
}

/// Burns CPU for about `dur` with hashing-like arithmetic, writing into one
/// random page of `mem` per round so the working set stays hot. Returns the
/// hash so the work cannot be optimised away.
fn burn(dur: Duration, mem: &mut [u8]) -> u64 {
    let start = Instant::now();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i: u64 = 0;
    while start.elapsed() < dur {
        for _ in 0..20_000 {
            h ^= i;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
            h = h.rotate_left(23) ^ (h >> 29);
            i = i.wrapping_add(0x9e37_79b9);
        }
        if !mem.is_empty() {
            let idx = (h % mem.len() as u64) as usize;
            if let Some(b) = mem.get_mut(idx) {
                *b = b.wrapping_add(h as u8);
                h ^= u64::from(*b);
            }
        }
    }
    std::hint::black_box(h)
}

/// Fastest and slowest leak rates of [`Role::Leaky`], in bytes per second.
const LEAK_RATE_MIN: u64 = 5 * MIB as u64 / 2;
const LEAK_RATE_MAX: u64 = 7 * MIB as u64 / 2;
/// The leaky indexer's cache when it starts.
const LEAK_BASE: usize = WorkingSet::MIN;
/// Where the leak stops growing (but still never shrinks), so a fleet that
/// sets no memory limit, or only an alert, does not take the whole machine.
const LEAK_CAP: usize = 1024 * MIB;

/// The leaky indexer's working-set size `elapsed` after it started, leaking
/// `rate` bytes per second: grows linearly from [`LEAK_BASE`], never shrinks,
/// and stops at [`LEAK_CAP`]. With the demo fleet's 128 MiB limit and the
/// process's own few MiB this trips the limit after 30–50 s.
fn leak_target(elapsed: Duration, rate: u64) -> usize {
    let grown = elapsed.as_secs_f64() * rate as f64;
    let total = LEAK_BASE as f64 + grown;
    if total >= LEAK_CAP as f64 {
        LEAK_CAP
    } else {
        total as usize
    }
}

// ---------------------------------------------------------------------------
// Vocabulary and line generators (pure: they only draw from the RNG)

#[cfg(test)]
mod tests;
