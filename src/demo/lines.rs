//! What the demo agents say: the word tables and the log lines built from
//! them (fixed tables, not logic).

use super::*;

pub(super) const GOALS: &[&str] = &[
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

pub(super) const RESEARCH_TOPICS: &[&str] = &[
    "collect latency traces for the hot path",
    "compare retry strategies (exponential, decorrelated jitter)",
    "read the v2 events API migration notes",
    "survey failure patterns in recent CI logs",
    "check changelogs of upgraded dependencies",
    "look up prior incidents touching this service",
    "find benchmarks for candidate cache designs",
    "review how other teams paginate large exports",
];

pub(super) const CODE_CHANGES: &[&str] = &[
    "wrap webhook delivery in a retry loop",
    "add an LRU cache in front of embedding lookups",
    "port event handlers to the v2 schema",
    "fix race in the job queue shutdown path",
    "add cursor-based pagination to audit export",
    "bump ORM and update query builders",
    "lazy-load plugin registry at startup",
    "add regression test for the timeout bug",
];

pub(super) const SOURCES: &[&str] = &[
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

pub(super) const SOURCE_FAILURES: &[&str] = &[
    "timeout after 5s",
    "HTTP 503 from cache proxy",
    "connection reset by peer",
    "HTTP 429 rate limited",
];

pub(super) const FINDINGS: &[&str] = &[
    "most time is spent serialising results",
    "decorrelated jitter avoids retry storms",
    "v2 events carry the tenant id in the envelope",
    "three tests share a global temp dir",
    "the ORM now returns lazy iterators",
    "a similar outage was fixed by raising pool size",
    "TinyLFU admission beats plain LRU on skewed keys",
    "keyset pagination keeps exports O(page)",
];

pub(super) const FILES: &[&str] = &[
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

pub(super) const TEST_COMMANDS: &[&str] = &[
    "cargo test -p webhook",
    "cargo test -p billing",
    "cargo nextest run -E 'package(search)'",
    "cargo test --test audit_export",
    "cargo test -p jobs -- queue::",
];

pub(super) const TEST_NAMES: &[&str] = &[
    "webhook::retry::gives_up_after_max_attempts",
    "billing::events::v2_roundtrip_keeps_tenant",
    "search::handler::empty_query_is_400",
    "audit_export::cursor_survives_concurrent_inserts",
    "jobs::queue::shutdown_drains_inflight",
    "cache::lru::evicts_least_recent_first",
];

pub(super) const TOOLS: &[&str] = &[
    "web.search",
    "fs.read",
    "fs.write",
    "git.diff",
    "code.exec",
    "http.get",
];

/// Plausible arguments for each of [`TOOLS`].
pub(super) fn tool_args(tool: &str) -> &'static [&'static str] {
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
pub(super) const CRASHES: &[(Crash, &str)] = &[
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
pub(super) enum Crash {
    Exit(i32),
    Abort,
}

/// A random element of a non-empty constant list.
pub(super) fn pick<'a, R: Rng + ?Sized>(rng: &mut R, items: &[&'a str]) -> &'a str {
    items.choose(rng).copied().unwrap_or("unknown")
}

/// A fresh task id like `T-4821`.
pub(super) fn task_id<R: Rng + ?Sized>(rng: &mut R) -> String {
    format!("T-{}", rng.random_range(1000..10_000u32))
}

/// One line of a plan: step `i` of `n` of `task`, handed to a worker role.
pub(super) fn plan_step_line<R: Rng + ?Sized>(
    rng: &mut R,
    task: &str,
    i: usize,
    n: usize,
) -> String {
    let (who, what) = if rng.random_bool(0.5) {
        ("researcher", pick(rng, RESEARCH_TOPICS))
    } else {
        ("coder", pick(rng, CODE_CHANGES))
    };
    format!("  step {i}/{n} -> {who}: {what} ({task}.{i})")
}

/// A model call summary: tokens, latency and throughput.
pub(super) fn llm_line(model: &str, prompt: u32, completion: u32, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(0.001);
    format!(
        "{model} prompt={prompt} completion={completion} tokens in {secs:.2}s ({:.0} tok/s)",
        f64::from(completion) / secs
    )
}

/// A successful fetch of `source`.
pub(super) fn fetch_ok_line<R: Rng + ?Sized>(
    rng: &mut R,
    source: &str,
    elapsed: Duration,
) -> String {
    let kib = rng.random_range(3.0..180.0f64);
    format!(
        "fetched {source}: 200 OK, {kib:.1} KiB in {}ms",
        elapsed.as_millis()
    )
}

/// A research summary for `task`.
pub(super) fn summary_line<R: Rng + ?Sized>(rng: &mut R, task: &str, sources: usize) -> String {
    let findings = rng.random_range(2..7u32);
    let conf = rng.random_range(0.55..0.97f64);
    let key = pick(rng, FINDINGS);
    format!(
        "summary for {task}: {sources} sources, {findings} findings, confidence {conf:.2}; key: {key}"
    )
}

/// An edit to `file`.
pub(super) fn edit_line<R: Rng + ?Sized>(rng: &mut R, file: &str) -> String {
    let add = rng.random_range(1..80u32);
    let del = rng.random_range(0..40u32);
    format!("edited {file}: +{add} -{del}")
}

/// Test results; `failed` may be 0. Deliberately not worded like a test
/// runner's own summary (`N passed, N failed`), so logs that quote it are
/// never mistaken for one.
pub(super) fn test_result_line(cmd: &str, total: u32, failed: u32, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    if failed == 0 {
        format!("`{cmd}` ok after {secs:.2}s: all {total} tests green")
    } else {
        format!("`{cmd}` done after {secs:.2}s: {failed} of {total} tests failing")
    }
}

/// One handled tool call of the flaky tool server.
pub(super) fn tool_call_line<R: Rng + ?Sized>(
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
pub(super) fn index_batch_line<R: Rng + ?Sized>(rng: &mut R, batch: u64, cache: usize) -> String {
    let docs = rng.random_range(32..=64u32);
    let chunks = docs * rng.random_range(8..20u32);
    format!(
        "batch #{batch}: {docs} docs, {chunks} chunks embedded; cache {}",
        fmt_mib(cache)
    )
}

/// `bytes` as `12.3 MiB`.
pub(super) fn fmt_mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}

/// `d` as `1h 2m 3s`, `2m 3s` or `3s`.
pub(super) fn fmt_uptime(d: Duration) -> String {
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
