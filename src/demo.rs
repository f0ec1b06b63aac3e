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

const GOALS: &[&str] = &[
    "profile the slow /search endpoint",
    "add retry with jitter to the webhook sender",
    "migrate billing to the v2 events API",
    "triage last night's flaky CI failures",
    "draft release notes for v0.14",
    "summarise open security advisories for our deps",
    "design a cache layer for embedding lookups",
    "upgrade the ORM and fix breaking changes",
    "reduce cold-start time of the worker image",
    "write an onboarding guide for the ingestion pipeline",
    "find why p99 latency doubled after the last deploy",
    "add pagination to the audit log export",
];

const RESEARCH_TOPICS: &[&str] = &[
    "collect latency traces for the hot path",
    "compare retry strategies (exponential, decorrelated jitter)",
    "read the v2 events API migration notes",
    "survey failure patterns in recent CI logs",
    "check changelogs of upgraded dependencies",
    "look up prior incidents touching this service",
    "find benchmarks for candidate cache designs",
    "review how other teams paginate large exports",
];

const CODE_CHANGES: &[&str] = &[
    "wrap webhook delivery in a retry loop",
    "add an LRU cache in front of embedding lookups",
    "port event handlers to the v2 schema",
    "fix race in the job queue shutdown path",
    "add cursor-based pagination to audit export",
    "bump ORM and update query builders",
    "lazy-load plugin registry at startup",
    "add regression test for the timeout bug",
];

const SOURCES: &[&str] = &[
    "kb://runbooks/search-latency",
    "kb://adr/0042-event-bus",
    "repo://billing/docs/MIGRATION.md",
    "repo://infra/ci/flaky-tests.csv",
    "paper:decorrelated-jitter-backoff",
    "paper:tinylfu-cache-admission",
    "issue://platform/1289",
    "issue://platform/1312",
    "wiki://oncall/incident-2024-11-07",
    "changelog://orm/5.0.0",
    "forum://eng/pagination-at-scale",
    "trace://search-api/p99-last-24h",
];

const SOURCE_FAILURES: &[&str] = &[
    "timeout after 5s",
    "HTTP 503 from cache proxy",
    "connection reset by peer",
    "HTTP 429 rate limited",
];

const FINDINGS: &[&str] = &[
    "most time is spent serialising results",
    "decorrelated jitter avoids retry storms",
    "v2 events carry the tenant id in the envelope",
    "three tests share a global temp dir",
    "the ORM now returns lazy iterators",
    "a similar outage was fixed by raising pool size",
    "TinyLFU admission beats plain LRU on skewed keys",
    "keyset pagination keeps exports O(page)",
];

const FILES: &[&str] = &[
    "src/webhook/sender.rs",
    "src/webhook/retry.rs",
    "src/billing/events.rs",
    "src/search/handler.rs",
    "src/cache/lru.rs",
    "src/jobs/queue.rs",
    "src/audit/export.rs",
    "tests/webhook_retry.rs",
    "tests/audit_export.rs",
    "migrations/0031_events_v2.sql",
];

const TEST_COMMANDS: &[&str] = &[
    "cargo test -p webhook",
    "cargo test -p billing",
    "cargo nextest run -E 'package(search)'",
    "cargo test --test audit_export",
    "cargo test -p jobs -- queue::",
];

const TEST_NAMES: &[&str] = &[
    "webhook::retry::gives_up_after_max_attempts",
    "billing::events::v2_roundtrip_keeps_tenant",
    "search::handler::empty_query_is_400",
    "audit_export::cursor_survives_concurrent_inserts",
    "jobs::queue::shutdown_drains_inflight",
    "cache::lru::evicts_least_recent_first",
];

const TOOLS: &[&str] = &[
    "web.search",
    "fs.read",
    "fs.write",
    "git.diff",
    "code.exec",
    "http.get",
];

/// Plausible arguments for each of [`TOOLS`].
fn tool_args(tool: &str) -> &'static [&'static str] {
    match tool {
        "web.search" => &[
            "q=\"tokio graceful shutdown\"",
            "q=\"keyset pagination postgres\"",
            "q=\"decorrelated jitter backoff\"",
        ],
        "fs.read" => &["path=\"src/jobs/queue.rs\"", "path=\"Cargo.toml\""],
        "fs.write" => &[
            "path=\"notes/plan.md\" bytes=1840",
            "path=\"src/cache/lru.rs\" bytes=5211",
        ],
        "git.diff" => &["rev=\"HEAD~1\"", "rev=\"main...feature/retry\""],
        "code.exec" => &[
            "lang=\"python\" lines=42",
            "lang=\"sh\" lines=3",
            "lang=\"sql\" lines=12",
        ],
        "http.get" => &[
            "url=\"kb://runbooks/search-latency\"",
            "url=\"kb://adr/0042-event-bus\"",
        ],
        _ => &["-"],
    }
}

/// How the flaky tool server dies, with its last words on stderr.
const CRASHES: &[(Crash, &str)] = &[
    (
        Crash::Exit(1),
        "unhandled exception in handler for code.exec: worker pool poisoned",
    ),
    (
        Crash::Exit(1),
        "panicked at src/server.rs:214: called on a closed session",
    ),
    (
        Crash::Exit(2),
        "fatal: sandbox runtime vanished (socket /run/sandbox.sock refused)",
    ),
    (
        Crash::Exit(2),
        "fatal: tool manifest reload failed: duplicate tool name \"fs.read\"",
    ),
    (
        Crash::Abort,
        "assertion failed: session refcount underflow; aborting",
    ),
];

/// How [`Role::Flaky`] ends a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Crash {
    Exit(i32),
    Abort,
}

/// A random element of a non-empty constant list.
fn pick<'a, R: Rng + ?Sized>(rng: &mut R, items: &[&'a str]) -> &'a str {
    items.choose(rng).copied().unwrap_or("unknown")
}

/// A fresh task id like `T-4821`.
fn task_id<R: Rng + ?Sized>(rng: &mut R) -> String {
    format!("T-{}", rng.random_range(1000..10_000u32))
}

/// One line of a plan: step `i` of `n` of `task`, handed to a worker role.
fn plan_step_line<R: Rng + ?Sized>(rng: &mut R, task: &str, i: usize, n: usize) -> String {
    let (who, what) = if rng.random_bool(0.5) {
        ("researcher", pick(rng, RESEARCH_TOPICS))
    } else {
        ("coder", pick(rng, CODE_CHANGES))
    };
    format!("  step {i}/{n} -> {who}: {what} ({task}.{i})")
}

/// A model call summary: tokens, latency and throughput.
fn llm_line(model: &str, prompt: u32, completion: u32, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(0.001);
    format!(
        "{model} prompt={prompt} completion={completion} tokens in {secs:.2}s ({:.0} tok/s)",
        f64::from(completion) / secs
    )
}

/// A successful fetch of `source`.
fn fetch_ok_line<R: Rng + ?Sized>(rng: &mut R, source: &str, elapsed: Duration) -> String {
    let kib = rng.random_range(3.0..180.0f64);
    format!(
        "fetched {source}: 200 OK, {kib:.1} KiB in {}ms",
        elapsed.as_millis()
    )
}

/// A research summary for `task`.
fn summary_line<R: Rng + ?Sized>(rng: &mut R, task: &str, sources: usize) -> String {
    let findings = rng.random_range(2..7u32);
    let conf = rng.random_range(0.55..0.97f64);
    let key = pick(rng, FINDINGS);
    format!(
        "summary for {task}: {sources} sources, {findings} findings, confidence {conf:.2}; key: {key}"
    )
}

/// An edit to `file`.
fn edit_line<R: Rng + ?Sized>(rng: &mut R, file: &str) -> String {
    let add = rng.random_range(1..80u32);
    let del = rng.random_range(0..40u32);
    format!("edited {file}: +{add} -{del}")
}

/// Test results; `failed` may be 0. Deliberately not worded like a test
/// runner's own summary (`N passed, N failed`), so logs that quote it are
/// never mistaken for one.
fn test_result_line(cmd: &str, total: u32, failed: u32, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    if failed == 0 {
        format!("`{cmd}` ok after {secs:.2}s: all {total} tests green")
    } else {
        format!("`{cmd}` done after {secs:.2}s: {failed} of {total} tests failing")
    }
}

/// One handled tool call of the flaky tool server.
fn tool_call_line<R: Rng + ?Sized>(
    rng: &mut R,
    call: u64,
    tool: &str,
    elapsed: Duration,
) -> String {
    let args = pick(rng, tool_args(tool));
    let status = if rng.random_bool(0.06) { 500 } else { 200 };
    format!(
        "call #{call} {tool}({args}) -> {status} in {}ms",
        elapsed.as_millis()
    )
}

/// One indexed batch of the leaky indexer.
fn index_batch_line<R: Rng + ?Sized>(rng: &mut R, batch: u64, cache: usize) -> String {
    let docs = rng.random_range(32..=64u32);
    let chunks = docs * rng.random_range(8..20u32);
    format!(
        "batch #{batch}: {docs} docs, {chunks} chunks embedded; cache {}",
        fmt_mib(cache)
    )
}

/// `bytes` as `12.3 MiB`.
fn fmt_mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}

/// `d` as `1h 2m 3s`, `2m 3s` or `3s`.
fn fmt_uptime(d: Duration) -> String {
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, (s / 60) % 60, s % 60);
    if h > 0 {
        format!("{h}h {m}m {s}s")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

/// What the notes file says.
struct NotesInfo<'a> {
    agent: &'a str,
    replica: u32,
    role: Role,
    pid: u32,
    model: &'a str,
    uptime: Duration,
    tasks_done: u64,
    tokens: u64,
    working_set: usize,
    recent: &'a VecDeque<String>,
}

/// The markdown body of `notes-<replica>.md`.
fn render_notes(n: &NotesInfo<'_>) -> String {
    let mut s = format!(
        "# {}[{}] notes\n\n\
         - role: {}\n\
         - pid: {}\n\
         - model: {}\n\
         - uptime: {}\n\
         - tasks done: {}\n\
         - tokens used: {}\n\
         - working set: {}\n\n\
         ## Recent\n\n",
        n.agent,
        n.replica,
        n.role,
        n.pid,
        n.model,
        fmt_uptime(n.uptime),
        n.tasks_done,
        n.tokens,
        fmt_mib(n.working_set),
    );
    if n.recent.is_empty() {
        s.push_str("- (nothing yet)\n");
    }
    for r in n.recent.iter().rev() {
        s.push_str("- ");
        s.push_str(r);
        s.push('\n');
    }
    s
}

/// Writes `contents` to `dir/name` atomically: a temp file in the same dir,
/// then a rename over the target. Creates `dir` if needed.
fn write_atomic(dir: &Path, name: &str, contents: &str) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.{}.tmp", process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(contents.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, dir.join(name))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

// ---------------------------------------------------------------------------
// The agent loop

/// How many entries the notes file lists.
const RECENT_CAP: usize = 8;
/// Least time between two notes writes.
const NOTES_EVERY: Duration = Duration::from_secs(10);

struct Agent {
    role: Role,
    id: Identity,
    model: String,
    rng: ThreadRng,
    ws: WorkingSet,
    started: Instant,
    tasks_done: u64,
    tokens: u64,
    recent: VecDeque<String>,
    last_notes: Option<Instant>,
    notes_failed: bool,
}

impl Agent {
    fn new(role: Role, id: Identity, model: String) -> Self {
        Self {
            role,
            id,
            model,
            rng: rand::rng(),
            ws: WorkingSet::new(),
            started: Instant::now(),
            tasks_done: 0,
            tokens: 0,
            recent: VecDeque::new(),
            last_notes: None,
            notes_failed: false,
        }
    }

    fn run(&mut self) -> io::Result<i32> {
        self.say(
            Level::Info,
            "agent",
            format!(
                "{}[{}] starting: role={} model={} pid={} context={}",
                self.id.agent,
                self.id.replica,
                self.role,
                self.model,
                process::id(),
                self.id.context_dir.display()
            ),
        )?;
        // So the context dir has content from the first second.
        self.maybe_write_notes()?;
        match self.role {
            Role::Planner => loop {
                self.planner_round()?;
            },
            Role::Researcher => loop {
                self.researcher_round()?;
            },
            Role::Coder => loop {
                self.coder_round()?;
            },
            Role::Flaky => self.flaky(),
            Role::Leaky => self.leaky(),
        }
    }

    // -- helpers ------------------------------------------------------------

    /// Writes one whole line to stdout (`DEBUG`, `INFO`) or stderr (`WARN`,
    /// `ERROR`) and flushes it.
    fn say(&mut self, level: Level, target: &str, msg: impl AsRef<str>) -> io::Result<()> {
        let mut line = format_line(level, target, msg.as_ref());
        line.push('\n');
        if level.to_stderr() {
            let mut err = io::stderr().lock();
            err.write_all(line.as_bytes())?;
            err.flush()
        } else {
            let mut out = io::stdout().lock();
            out.write_all(line.as_bytes())?;
            out.flush()
        }
    }

    /// Sleeps a random time between `lo_ms` and `hi_ms` milliseconds.
    fn pause(&mut self, lo_ms: u64, hi_ms: u64) {
        let ms = self.rng.random_range(lo_ms..=hi_ms.max(lo_ms));
        thread::sleep(Duration::from_millis(ms));
    }

    /// Burns CPU for a random time between `lo_ms` and `hi_ms` milliseconds.
    fn cpu(&mut self, lo_ms: u64, hi_ms: u64) -> Duration {
        let ms = self.rng.random_range(lo_ms..=hi_ms.max(lo_ms));
        let start = Instant::now();
        burn(Duration::from_millis(ms), &mut self.ws.buf);
        start.elapsed()
    }

    /// Resizes the working set to a random size between `lo` and `hi` MiB.
    fn memory_mib(&mut self, lo: usize, hi: usize) -> io::Result<()> {
        let mib = self.rng.random_range(lo..=hi.max(lo));
        self.memory_bytes(mib * MIB)
    }

    fn memory_bytes(&mut self, bytes: usize) -> io::Result<()> {
        if self.ws.resize_to(bytes).is_err() {
            let msg = format!("could not grow working set to {}", fmt_mib(bytes));
            self.say(Level::Warn, "mem", msg)?;
        }
        Ok(())
    }

    /// A simulated model call: waits on the "model server", then burns CPU
    /// parsing the answer, and logs tokens and the real latency.
    fn llm(
        &mut self,
        prompt: (u32, u32),
        wait_ms: (u64, u64),
        cpu_ms: (u64, u64),
    ) -> io::Result<()> {
        let start = Instant::now();
        self.pause(wait_ms.0, wait_ms.1);
        self.cpu(cpu_ms.0, cpu_ms.1);
        let elapsed = start.elapsed();
        let prompt = self.rng.random_range(prompt.0..=prompt.1);
        let rate = self.rng.random_range(35.0..95.0f64);
        let completion = (elapsed.as_secs_f64() * rate).max(8.0) as u32;
        self.tokens += u64::from(prompt) + u64::from(completion);
        let line = llm_line(&self.model, prompt, completion, elapsed);
        self.say(Level::Info, "llm", line)?;
        if self.rng.random_bool(0.08) {
            let used = self.rng.random_range(6800..8100u32);
            let pct = used * 100 / 8192;
            self.say(
                Level::Warn,
                "llm",
                format!("context window {pct}% full ({used}/8192 tokens); compacting history"),
            )?;
        }
        Ok(())
    }

    /// Remembers `entry` for the notes file and counts a finished task.
    fn finish_task(&mut self, entry: String) {
        self.tasks_done += 1;
        if self.recent.len() == RECENT_CAP {
            self.recent.pop_front();
        }
        self.recent.push_back(entry);
    }

    /// Writes the notes file if it is due. A failure is logged once as a
    /// warning and otherwise ignored.
    fn maybe_write_notes(&mut self) -> io::Result<()> {
        if self.last_notes.is_some_and(|t| t.elapsed() < NOTES_EVERY) {
            return Ok(());
        }
        self.last_notes = Some(Instant::now());
        let body = render_notes(&NotesInfo {
            agent: &self.id.agent,
            replica: self.id.replica,
            role: self.role,
            pid: process::id(),
            model: &self.model,
            uptime: self.started.elapsed(),
            tasks_done: self.tasks_done,
            tokens: self.tokens,
            working_set: self.ws.len(),
            recent: &self.recent,
        });
        let name = format!("notes-{}.md", self.id.replica);
        match write_atomic(&self.id.context_dir, &name, &body) {
            Ok(()) => {
                self.notes_failed = false;
                self.say(
                    Level::Debug,
                    "ctx",
                    format!("saved {name} ({} bytes)", body.len()),
                )
            }
            Err(e) if !self.notes_failed => {
                self.notes_failed = true;
                let dir = self.id.context_dir.display().to_string();
                self.say(
                    Level::Warn,
                    "ctx",
                    format!("cannot save {name} in {dir}: {e}"),
                )
            }
            Err(_) => Ok(()),
        }
    }

    /// Idles for a while, with a debug line now and then.
    fn idle(&mut self, rounds: (u32, u32), what: &str) -> io::Result<()> {
        let n = self.rng.random_range(rounds.0..=rounds.1);
        for _ in 0..n {
            self.pause(1500, 3500);
            self.say(Level::Debug, "agent", what)?;
        }
        Ok(())
    }

    // -- planner ------------------------------------------------------------

    fn planner_round(&mut self) -> io::Result<()> {
        let task = task_id(&mut self.rng);
        let goal = pick(&mut self.rng, GOALS);
        self.say(Level::Info, "plan", format!("goal for {task}: \"{goal}\""))?;
        self.memory_mib(8, 16)?;
        self.pause(200, 700);
        self.llm((900, 3200), (800, 2500), (200, 800))?;
        let n = self.rng.random_range(3..=6usize);
        self.say(
            Level::Info,
            "plan",
            format!("{task} decomposed into {n} steps"),
        )?;
        for i in 1..=n {
            self.pause(100, 450);
            let line = plan_step_line(&mut self.rng, &task, i, n);
            self.say(Level::Info, "plan", line)?;
        }
        self.finish_task(format!("{task}: planned \"{goal}\" in {n} steps"));
        self.maybe_write_notes()?;
        let mut pending = n;
        while pending > 0 {
            self.pause(1200, 3000);
            let done = self.rng.random_range(1..=pending.min(3));
            pending -= done;
            if self.rng.random_bool(0.1) {
                let step = self.rng.random_range(1..=n);
                self.say(
                    Level::Warn,
                    "plan",
                    format!("step {task}.{step} overdue (no heartbeat for 45s); reassigning"),
                )?;
            }
            self.say(
                Level::Debug,
                "plan",
                format!("{task}: {done} step(s) reported done, {pending} pending"),
            )?;
        }
        self.say(
            Level::Info,
            "plan",
            format!("{task} complete; all {n} steps merged"),
        )?;
        self.memory_mib(4, 8)?;
        self.idle((1, 2), "idle: waiting for the next goal")
    }

    // -- researcher ---------------------------------------------------------

    fn researcher_round(&mut self) -> io::Result<()> {
        let task = format!(
            "{}.{}",
            task_id(&mut self.rng),
            self.rng.random_range(1..=6u32)
        );
        let topic = pick(&mut self.rng, RESEARCH_TOPICS);
        self.say(Level::Info, "research", format!("claimed {task}: {topic}"))?;
        self.memory_mib(6, 10)?;
        let n = self.rng.random_range(2..=4usize);
        let mut fetched = 0usize;
        for _ in 0..n {
            let source = pick(&mut self.rng, SOURCES);
            self.say(Level::Info, "fetch", format!("GET {source}"))?;
            let start = Instant::now();
            self.pause(250, 1400);
            if self.rng.random_bool(0.12) {
                let why = pick(&mut self.rng, SOURCE_FAILURES);
                self.say(Level::Warn, "fetch", format!("{source}: {why}; skipping"))?;
                continue;
            }
            let line = fetch_ok_line(&mut self.rng, source, start.elapsed());
            self.say(Level::Info, "fetch", line)?;
            fetched += 1;
            let grow = self.rng.random_range(2..=6usize) * MIB;
            self.memory_bytes(self.ws.len() + grow)?;
        }
        if fetched == 0 {
            self.say(
                Level::Warn,
                "research",
                format!("no source reachable for {task}; handing it back to the planner"),
            )?;
            self.memory_mib(4, 8)?;
            return self.idle((1, 2), "idle: polling planner for open research steps");
        }
        let chunks = fetched * self.rng.random_range(20..=90usize);
        self.say(
            Level::Info,
            "embed",
            format!("embedding {chunks} chunks (dim 768)"),
        )?;
        let slices = self.rng.random_range(2..=3usize);
        let mut took = Duration::ZERO;
        for k in 1..=slices {
            took += self.cpu(120, 350);
            if k < slices {
                let done = chunks * k / slices;
                self.say(Level::Debug, "embed", format!("{done}/{chunks} chunks"))?;
            }
        }
        self.say(
            Level::Info,
            "embed",
            format!("embedded {chunks} chunks in {:.2}s", took.as_secs_f64()),
        )?;
        self.pause(100, 400);
        self.llm((1500, 6000), (800, 2200), (150, 600))?;
        let line = summary_line(&mut self.rng, &task, fetched);
        self.say(Level::Info, "research", line.clone())?;
        self.finish_task(line);
        self.memory_mib(4, 8)?;
        self.maybe_write_notes()?;
        self.idle((1, 3), "idle: polling planner for open research steps")
    }

    // -- coder --------------------------------------------------------------

    fn coder_round(&mut self) -> io::Result<()> {
        let task = format!(
            "{}.{}",
            task_id(&mut self.rng),
            self.rng.random_range(1..=6u32)
        );
        let change = pick(&mut self.rng, CODE_CHANGES);
        self.say(Level::Info, "code", format!("picked up {task}: {change}"))?;
        self.say(Level::Info, "code", "loading repo index")?;
        self.memory_mib(14, 28)?;
        self.pause(300, 900);
        let nfiles = self.rng.random_range(1..=3usize);
        let mut files = Vec::with_capacity(nfiles);
        for _ in 0..nfiles {
            let file = pick(&mut self.rng, FILES);
            let lines = self.rng.random_range(40..900u32);
            self.say(
                Level::Info,
                "code",
                format!("reading {file} ({lines} lines)"),
            )?;
            files.push(file);
            self.pause(150, 500);
        }
        self.llm((2500, 7500), (1000, 3000), (300, 900))?;
        for file in &files {
            self.pause(100, 400);
            let line = edit_line(&mut self.rng, file);
            self.say(Level::Info, "edit", line)?;
        }
        let cmd = pick(&mut self.rng, TEST_COMMANDS);
        let total = self.rng.random_range(20..260u32);
        let mut attempt = 1;
        loop {
            self.say(Level::Info, "tests", format!("running `{cmd}`"))?;
            let grow = self.rng.random_range(6..=14usize) * MIB;
            self.memory_bytes(self.ws.len() + grow)?;
            let slices = self.rng.random_range(2..=4u32);
            let mut took = Duration::ZERO;
            for k in 1..=slices {
                took += self.cpu(150, 450);
                if k < slices {
                    let run = total * k / slices;
                    self.say(Level::Debug, "tests", format!("{run}/{total} tests run"))?;
                }
            }
            let failed = if attempt < 3 && self.rng.random_bool(0.2) {
                self.rng.random_range(1..=3u32)
            } else {
                0
            };
            let line = test_result_line(cmd, total, failed, took);
            if failed == 0 {
                self.say(Level::Info, "tests", line)?;
                break;
            }
            self.say(Level::Warn, "tests", line)?;
            let name = pick(&mut self.rng, TEST_NAMES);
            self.say(Level::Warn, "tests", format!("failing: {name}"))?;
            self.say(Level::Info, "code", "feeding failures back to the model")?;
            self.llm((3000, 8000), (800, 2000), (200, 600))?;
            attempt += 1;
        }
        let files_n = files.len();
        self.say(
            Level::Info,
            "code",
            format!("{task} ready for review: {files_n} file(s), {total} tests green"),
        )?;
        self.finish_task(format!(
            "{task}: {change} ({files_n} files, {attempt} attempt(s))"
        ));
        self.memory_mib(4, 10)?;
        self.maybe_write_notes()?;
        self.idle((1, 3), "idle: waiting for a coding step")
    }

    // -- flaky --------------------------------------------------------------

    fn flaky(&mut self) -> io::Result<i32> {
        let lifetime = Duration::from_secs(self.rng.random_range(15..=60u64));
        self.say(
            Level::Info,
            "tool",
            format!("tool server ready: {} tools registered", TOOLS.len()),
        )?;
        self.memory_mib(6, 12)?;
        let mut call: u64 = 0;
        while self.started.elapsed() < lifetime {
            let burst = self.rng.random_range(1..=4u32);
            for _ in 0..burst {
                call += 1;
                let tool = pick(&mut self.rng, TOOLS);
                let start = Instant::now();
                if tool == "code.exec" {
                    self.cpu(100, 500);
                } else {
                    self.pause(20, 250);
                }
                let line = tool_call_line(&mut self.rng, call, tool, start.elapsed());
                self.say(Level::Info, "tool", line)?;
            }
            if self.rng.random_bool(0.1) {
                let used = self.rng.random_range(16..=20u32);
                self.say(
                    Level::Warn,
                    "tool",
                    format!("connection pool {used}/20 in use; requests may queue"),
                )?;
            }
            self.finish_task(format!("served {call} calls"));
            self.maybe_write_notes()?;
            self.pause(800, 3000);
        }
        let (crash, why) = CRASHES
            .choose(&mut self.rng)
            .copied()
            .unwrap_or((Crash::Exit(1), "unknown failure"));
        self.say(Level::Error, "tool", format!("tool server crashed: {why}"))?;
        match crash {
            Crash::Exit(code) => Ok(code),
            Crash::Abort => process::abort(),
        }
    }

    // -- leaky --------------------------------------------------------------

    fn leaky(&mut self) -> io::Result<i32> {
        let rate = self.rng.random_range(LEAK_RATE_MIN..=LEAK_RATE_MAX);
        self.say(
            Level::Info,
            "index",
            format!(
                "indexer starting: embed model {}-embed, batch 64, cache eviction off",
                self.model
            ),
        )?;
        let mut batch: u64 = 0;
        let mut warned_at = 0usize;
        loop {
            batch += 1;
            let target = leak_target(self.started.elapsed(), rate);
            // Never shrink, whatever the schedule says.
            self.memory_bytes(target.max(self.ws.len()))?;
            self.cpu(60, 200);
            let line = index_batch_line(&mut self.rng, batch, self.ws.len());
            self.say(Level::Info, "index", line)?;
            let cache_mib = self.ws.len() / MIB;
            if cache_mib >= warned_at + 32 {
                warned_at = cache_mib;
                self.say(
                    Level::Warn,
                    "index",
                    format!("embedding cache at {cache_mib} MiB and growing; eviction disabled (see issue #1289)"),
                )?;
            }
            if batch.is_multiple_of(5) {
                self.finish_task(format!(
                    "indexed {batch} batches, cache {}",
                    fmt_mib(self.ws.len())
                ));
                self.maybe_write_notes()?;
            }
            self.pause(700, 1400);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    fn assert_one_line(s: &str) {
        assert!(!s.trim().is_empty(), "empty line: {s:?}");
        assert!(
            !s.contains('\n') && !s.contains('\r'),
            "not one line: {s:?}"
        );
    }

    #[test]
    fn generators_make_single_nonempty_lines() {
        let mut rng = SmallRng::seed_from_u64(7);
        let d = Duration::from_millis(1234);
        for i in 0..500u64 {
            assert_one_line(&plan_step_line(&mut rng, "T-1234", 2, 5));
            assert_one_line(&llm_line("demo-7b", 1000, 200, d));
            let source = pick(&mut rng, SOURCES);
            assert_one_line(&fetch_ok_line(&mut rng, source, d));
            assert_one_line(&summary_line(&mut rng, "T-1234.1", 3));
            let file = pick(&mut rng, FILES);
            assert_one_line(&edit_line(&mut rng, file));
            assert_one_line(&test_result_line("cargo test", 10, 1, d));
            assert_one_line(&test_result_line("cargo test", 10, 0, d));
            // Never shaped like a test runner's closing `N passed, N failed`.
            assert!(!test_result_line("cargo test", 10, 1, d).contains(" passed, "));
            assert!(!test_result_line("cargo test", 10, 0, d).contains(" passed, "));
            let tool = pick(&mut rng, TOOLS);
            assert_one_line(&tool_call_line(&mut rng, i, tool, d));
            assert_one_line(&index_batch_line(&mut rng, i, 10 * MIB));
            let id = task_id(&mut rng);
            assert!(id.starts_with("T-") && id.len() == 6, "{id}");
        }
    }

    #[test]
    fn vocabularies_are_single_nonempty_lines() {
        for list in [
            GOALS,
            RESEARCH_TOPICS,
            CODE_CHANGES,
            SOURCES,
            SOURCE_FAILURES,
            FINDINGS,
            FILES,
            TEST_COMMANDS,
            TEST_NAMES,
            TOOLS,
        ] {
            assert!(!list.is_empty());
            for s in list {
                assert_one_line(s);
            }
        }
        for tool in TOOLS {
            assert!(!tool_args(tool).is_empty());
            assert_ne!(tool_args(tool), &["-"], "no arguments listed for {tool}");
            for a in tool_args(tool) {
                assert_one_line(a);
            }
        }
        for (_, why) in CRASHES {
            assert_one_line(why);
        }
    }

    #[test]
    fn crashes_cover_every_exit_kind() {
        let kinds: Vec<Crash> = CRASHES.iter().map(|(c, _)| *c).collect();
        assert!(kinds.contains(&Crash::Exit(1)));
        assert!(kinds.contains(&Crash::Exit(2)));
        assert!(kinds.contains(&Crash::Abort));
    }

    #[test]
    fn format_line_is_one_line_with_level_and_target() {
        let l = format_line(Level::Warn, "fetch", "a\nb\r\nc");
        assert_eq!(l, "WARN  fetch: a b  c");
        assert_eq!(format_line(Level::Info, "x", "y"), "INFO  x: y");
        assert!(Level::Error.to_stderr() && !Level::Debug.to_stderr());
    }

    #[test]
    fn leak_schedule_grows_monotonically_and_is_capped() {
        for rate in [LEAK_RATE_MIN, LEAK_RATE_MAX] {
            let mut prev = 0usize;
            for tenth in 0..100_000u64 {
                let t = leak_target(Duration::from_millis(tenth * 100), rate);
                assert!(t >= prev, "shrank at {tenth}");
                prev = t;
            }
            assert_eq!(prev, LEAK_CAP);
        }
        assert_eq!(leak_target(Duration::ZERO, LEAK_RATE_MIN), LEAK_BASE);
    }

    #[test]
    fn leak_reaches_demo_limit_in_30_to_60_seconds() {
        // The demo fleet's limit is 128 MiB; the process itself holds a few.
        let limit = 128 * MIB - 6 * MIB;
        let secs_to_limit = |rate| {
            (0..600u64)
                .find(|s| leak_target(Duration::from_secs(*s), rate) >= limit)
                .unwrap_or(u64::MAX)
        };
        assert!((30..=60).contains(&secs_to_limit(LEAK_RATE_MAX)));
        assert!((30..=60).contains(&secs_to_limit(LEAK_RATE_MIN)));
    }

    #[test]
    fn working_set_grows_shrinks_and_keeps_a_minimum() {
        let mut ws = WorkingSet::new();
        assert_eq!(ws.len(), WorkingSet::MIN);
        assert!(ws.resize_to(10 * MIB).is_ok());
        assert_eq!(ws.len(), 10 * MIB);
        assert!(ws.buf.iter().step_by(4096).all(|b| *b != 0));
        assert!(ws.resize_to(6 * MIB).is_ok());
        assert_eq!(ws.len(), 6 * MIB);
        assert!(ws.resize_to(0).is_ok());
        assert_eq!(ws.len(), WorkingSet::MIN);
    }

    #[test]
    fn burn_runs_for_about_the_requested_time() {
        let mut mem = vec![1u8; 4096];
        let start = Instant::now();
        burn(Duration::from_millis(30), &mut mem);
        assert!(start.elapsed() >= Duration::from_millis(30));
        burn(Duration::from_millis(1), &mut []);
    }

    #[test]
    fn identity_defaults_and_overrides() {
        let id = Identity::new(Role::Flaky, None, None, None);
        assert_eq!(id.agent, "flaky-tool");
        assert_eq!(id.replica, 0);
        assert!(id.context_dir.ends_with("autonomos-demo-flaky-tool"));

        let id = Identity::new(
            Role::Coder,
            Some("my/coder".into()),
            Some(" 3 ".into()),
            Some("/tmp/ctx".into()),
        );
        assert_eq!(id.agent, "my/coder");
        assert_eq!(id.replica, 3);
        assert_eq!(id.context_dir, PathBuf::from("/tmp/ctx"));

        let id = Identity::new(
            Role::Coder,
            Some("a b/c".into()),
            Some("x".into()),
            Some("".into()),
        );
        assert_eq!(id.replica, 0);
        assert!(id.context_dir.ends_with("autonomos-demo-a_b_c"));
    }

    #[test]
    fn roles_parse_from_their_names() {
        for role in [
            Role::Planner,
            Role::Researcher,
            Role::Coder,
            Role::Flaky,
            Role::Leaky,
        ] {
            assert_eq!(Role::from_str(role.as_str(), false), Ok(role));
            assert_eq!(role.to_string(), role.as_str());
        }
    }

    #[test]
    fn notes_render_and_write_atomically() {
        let mut recent = VecDeque::new();
        recent.push_back("first".to_owned());
        recent.push_back("second".to_owned());
        let body = render_notes(&NotesInfo {
            agent: "researcher",
            replica: 2,
            role: Role::Researcher,
            pid: 42,
            model: "demo-7b",
            uptime: Duration::from_secs(125),
            tasks_done: 3,
            tokens: 9000,
            working_set: 12 * MIB,
            recent: &recent,
        });
        assert!(body.starts_with("# researcher[2] notes\n"));
        assert!(body.contains("- uptime: 2m 5s\n"));
        assert!(body.contains("- working set: 12.0 MiB\n"));
        let second = body.find("- second").unwrap_or(usize::MAX);
        let first = body.find("- first").unwrap_or(0);
        assert!(second < first, "newest first:\n{body}");

        let dir = tempfile::tempdir().expect("temp dir");
        let ctx = dir.path().join("nested/ctx");
        write_atomic(&ctx, "notes-2.md", &body).expect("first write");
        write_atomic(&ctx, "notes-2.md", "v2\n").expect("second write");
        assert_eq!(
            fs::read_to_string(ctx.join("notes-2.md")).expect("read back"),
            "v2\n"
        );
        let names: Vec<_> = fs::read_dir(&ctx)
            .expect("list ctx")
            .map(|e| e.expect("dir entry").file_name())
            .collect();
        assert_eq!(
            names,
            vec![OsString::from("notes-2.md")],
            "no temp file left"
        );
    }

    #[test]
    fn uptime_formats() {
        assert_eq!(fmt_uptime(Duration::from_secs(5)), "5s");
        assert_eq!(fmt_uptime(Duration::from_secs(65)), "1m 5s");
        assert_eq!(fmt_uptime(Duration::from_secs(3725)), "1h 2m 5s");
    }
}
