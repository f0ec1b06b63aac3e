//! The alert expression language.
//!
//! ```text
//! expr    := and ("or" and)*
//! and     := unary ("and" unary)*
//! unary   := "not" unary | "(" expr ")" | cmp
//! cmp     := operand op operand          op: > >= < <= == !=
//! operand := number | metric | func "(" metric "," duration ")"
//! func    := avg | min | max | last | increase | rate
//! number  := 80 | 0.5 | 90% | 512MiB | 2GB | 1k
//! ```
//!
//! Metrics are host-wide (`host.cpu`, `host.memory`, ...) or per agent
//! (`cpu`, `memory`, `restarts`, ...). A rule that names any agent metric is
//! evaluated once per agent; otherwise once for the host. A bare metric is
//! its latest value; a function reduces a window of it.

use crate::core::lifecycle::Millis;
use crate::core::series::Agg;

/// What an expression can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// Host CPU use, percent of all cores.
    HostCpu,
    /// Host memory in use, percent of total.
    HostMemory,
    /// Swap in use, percent of total (0 without swap).
    HostSwap,
    /// One-minute load average.
    HostLoad1,
    /// Bytes per second received / sent, all interfaces but loopback.
    HostNetRx,
    HostNetTx,
    /// Failed writes to the data dir (state database or audit trail) since
    /// the daemon started (a counter).
    StorageErrors,
    /// Agent CPU, percent of one core, summed over replicas and their trees.
    Cpu,
    /// Agent RSS in bytes, summed over replicas and their trees.
    Memory,
    /// The fullest replica's RSS as a percent of the agent's memory limit
    /// (0 when it has none).
    MemoryPct,
    /// Restarts, summed over replicas (a counter): every restart, the
    /// operator's and reloads' included.
    Restarts,
    /// Failures, summed over replicas (a counter): crashes, failed starts
    /// (shorter than min_uptime or not spawned) and memory-limit kills, not
    /// restarts an operator or a reload asked for.
    Failures,
    Running,
    Desired,
    /// Replicas in `Failed`.
    Failed,
    /// Replicas waiting in `Backoff`.
    Backoff,
    /// Seconds since the youngest running replica started (0 if none runs).
    Uptime,
    /// Output lines dropped (a counter).
    LogDropped,
    /// Task agents: tasks waiting.
    QueueLength,
    /// Task agents: tasks completed / failed (counters).
    TasksCompleted,
    TasksFailed,
    /// Task agents: failed ÷ (completed + failed) over the last 5 minutes.
    TaskErrorRate,
    /// Task agents: run time's 95th percentile over the last 5 minutes, s.
    TaskLatencyP95,
    /// `tty` agents: replicas waiting for a person's input.
    WaitingInput,
}

pub const METRICS: &[(&str, Metric, &str)] = &[
    ("host.cpu", Metric::HostCpu, "host CPU use, % of all cores"),
    ("host.memory", Metric::HostMemory, "host memory in use, %"),
    ("host.swap", Metric::HostSwap, "swap in use, %"),
    ("host.load1", Metric::HostLoad1, "one-minute load average"),
    ("host.net_rx", Metric::HostNetRx, "bytes/s received"),
    ("host.net_tx", Metric::HostNetTx, "bytes/s sent"),
    (
        "daemon.storage_errors",
        Metric::StorageErrors,
        "failed writes to the data dir (counter)",
    ),
    ("cpu", Metric::Cpu, "agent CPU, % of one core"),
    ("memory", Metric::Memory, "agent RSS, bytes"),
    (
        "memory_pct",
        Metric::MemoryPct,
        "fullest replica's RSS, % of memory_limit",
    ),
    (
        "restarts",
        Metric::Restarts,
        "restarts, any cause (counter)",
    ),
    (
        "failures",
        Metric::Failures,
        "crashes, failed starts, limit kills (counter)",
    ),
    ("running", Metric::Running, "running replicas"),
    ("desired", Metric::Desired, "desired replicas"),
    ("failed", Metric::Failed, "replicas in Failed"),
    ("backoff", Metric::Backoff, "replicas in Backoff"),
    (
        "uptime",
        Metric::Uptime,
        "seconds the youngest replica has run",
    ),
    (
        "log_dropped",
        Metric::LogDropped,
        "dropped output lines (counter)",
    ),
    (
        "queue_length",
        Metric::QueueLength,
        "task agents: tasks waiting",
    ),
    (
        "tasks_completed",
        Metric::TasksCompleted,
        "task agents: tasks completed (counter)",
    ),
    (
        "tasks_failed",
        Metric::TasksFailed,
        "task agents: tasks failed (counter)",
    ),
    (
        "task_error_rate",
        Metric::TaskErrorRate,
        "task agents: failed / finished over the last 5 minutes, 0-1",
    ),
    (
        "task_latency_p95",
        Metric::TaskLatencyP95,
        "task agents: run time's 95th percentile over the last 5 minutes, seconds",
    ),
    (
        "waiting_input",
        Metric::WaitingInput,
        "tty agents: replicas waiting for input",
    ),
];

impl Metric {
    pub fn name(self) -> &'static str {
        METRICS
            .iter()
            .find(|m| m.1 == self)
            .map(|m| m.0)
            .unwrap_or("?")
    }

    pub fn is_host(self) -> bool {
        matches!(
            self,
            Metric::HostCpu
                | Metric::HostMemory
                | Metric::HostSwap
                | Metric::HostLoad1
                | Metric::HostNetRx
                | Metric::HostNetTx
                | Metric::StorageErrors
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl CmpOp {
    fn apply(self, a: f64, b: f64) -> bool {
        match self {
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Num(f64),
    Metric {
        metric: Metric,
        agg: Agg,
        /// Window width, ms (0 for a bare metric).
        window: Millis,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp(Operand, CmpOp, Operand),
}

/// A parse error: byte offset into the expression and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub offset: usize,
    pub message: String,
}

/// Where the engine reads metric values.
pub trait Source {
    /// `agent` is `None` for host scope.
    fn value(
        &self,
        agent: Option<&str>,
        metric: Metric,
        agg: Agg,
        window: Millis,
        now: Millis,
    ) -> Option<f64>;
}

impl Expr {
    /// Evaluates; a comparison with a missing value is false. Also returns
    /// the first metric value read (for `{value}` in summaries).
    pub fn eval(&self, src: &dyn Source, agent: Option<&str>, now: Millis) -> (bool, Option<f64>) {
        let mut first = None;
        let r = self.eval_inner(src, agent, now, &mut first);
        (r, first)
    }

    fn eval_inner(
        &self,
        src: &dyn Source,
        agent: Option<&str>,
        now: Millis,
        first: &mut Option<f64>,
    ) -> bool {
        match self {
            Expr::Or(a, b) => {
                a.eval_inner(src, agent, now, first) | b.eval_inner(src, agent, now, first)
            }
            Expr::And(a, b) => {
                a.eval_inner(src, agent, now, first) & b.eval_inner(src, agent, now, first)
            }
            Expr::Not(a) => !a.eval_inner(src, agent, now, first),
            Expr::Cmp(l, op, r) => {
                let mut read = |o: &Operand| match o {
                    Operand::Num(n) => Some(*n),
                    Operand::Metric {
                        metric,
                        agg,
                        window,
                    } => {
                        let v = src.value(
                            if metric.is_host() { None } else { agent },
                            *metric,
                            *agg,
                            *window,
                            now,
                        );
                        if first.is_none() {
                            *first = v;
                        }
                        v
                    }
                };
                match (read(l), read(r)) {
                    (Some(a), Some(b)) => op.apply(a, b),
                    _ => false,
                }
            }
        }
    }

    /// Every (metric, aggregation, window) the expression reads.
    pub fn reads(&self, out: &mut Vec<(Metric, Agg, Millis)>) {
        match self {
            Expr::Or(a, b) | Expr::And(a, b) => {
                a.reads(out);
                b.reads(out);
            }
            Expr::Not(a) => a.reads(out),
            Expr::Cmp(l, _, r) => {
                for o in [l, r] {
                    if let Operand::Metric {
                        metric,
                        agg,
                        window,
                    } = o
                    {
                        out.push((*metric, *agg, *window));
                    }
                }
            }
        }
    }

    /// True when the expression reads any per-agent metric.
    pub fn per_agent(&self) -> bool {
        let mut r = Vec::new();
        self.reads(&mut r);
        r.iter().any(|(m, _, _)| !m.is_host())
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A number or a window, validated by the parser.
    Num(String),
    Ident(String),
    Op(CmpOp),
    LParen,
    RParen,
    Comma,
}

fn lex(src: &str) -> Result<Vec<(usize, Tok)>, ParseError> {
    let b = src.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let err = |offset, message: String| ParseError { offset, message };
    while i < b.len() {
        let c = b[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                out.push((i, Tok::LParen));
                i += 1;
            }
            b')' => {
                out.push((i, Tok::RParen));
                i += 1;
            }
            b',' => {
                out.push((i, Tok::Comma));
                i += 1;
            }
            b'>' | b'<' | b'=' | b'!' => {
                let two = b.get(i + 1) == Some(&b'=');
                let op = match (c, two) {
                    (b'>', false) => CmpOp::Gt,
                    (b'>', true) => CmpOp::Ge,
                    (b'<', false) => CmpOp::Lt,
                    (b'<', true) => CmpOp::Le,
                    (b'=', true) => CmpOp::Eq,
                    (b'!', true) => CmpOp::Ne,
                    (b'=', false) => {
                        return Err(err(i, "`=` is not a comparison; write `==`".into()));
                    }
                    _ => {
                        return Err(err(
                            i,
                            "`!` must be followed by `=`; for negation write `not`".into(),
                        ));
                    }
                };
                out.push((i, Tok::Op(op)));
                i += if two { 2 } else { 1 };
            }
            b'&' | b'|' => {
                return Err(err(
                    i,
                    format!(
                        "write `{}` instead of `{}`",
                        if c == b'&' { "and" } else { "or" },
                        c as char
                    ),
                ));
            }
            b'0'..=b'9' | b'.' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'%')
                {
                    i += 1;
                }
                out.push((start, Tok::Num(src[start..i].to_string())));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.')
                {
                    i += 1;
                }
                out.push((start, Tok::Ident(src[start..i].to_string())));
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(err(i, format!("unexpected `{ch}`")));
            }
        }
    }
    Ok(out)
}

/// A number with an optional unit: `%` (ignored), a size (`KiB`, `MB`, ...,
/// in bytes) or a duration (`ms`, `s`, `m`, `h`, `d`, in ms).
pub fn number(text: &str) -> Option<f64> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let v: f64 = num.parse().ok()?;
    let k = 1024f64;
    let mul = match unit {
        "" | "%" => 1.0,
        "k" | "K" | "KB" | "kB" => 1e3,
        "M" | "MB" => 1e6,
        "G" | "GB" => 1e9,
        "KiB" => k,
        "MiB" => k * k,
        "GiB" => k * k * k,
        "B" => 1.0,
        _ => return None,
    };
    Some(v * mul)
}

/// A window width such as `30s`, `10m`, `2h`, `500ms`, `1d`, in ms.
pub fn duration(text: &str) -> Option<Millis> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = text.split_at(split);
    let v: u64 = num.parse().ok()?;
    let mul = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    v.checked_mul(mul).filter(|&ms| ms > 0)
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<(usize, Tok)>,
    pos: usize,
    depth: usize,
}

/// Nesting (parentheses, `not`) deeper than this is refused rather than
/// risking the stack.
const MAX_DEPTH: usize = 64;

/// Parses an expression.
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    let toks = lex(src)?;
    let mut p = Parser {
        src,
        toks,
        pos: 0,
        depth: 0,
    };
    if p.toks.is_empty() {
        return Err(ParseError {
            offset: 0,
            message: "empty expression (example: `increase(restarts, 10m) > 3`)".into(),
        });
    }
    let e = p.or()?;
    if let Some((at, t)) = p.toks.get(p.pos) {
        return Err(ParseError {
            offset: *at,
            message: format!(
                "unexpected {} after a complete condition; join conditions with `and` / `or`",
                describe(t)
            ),
        });
    }
    Ok(e)
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Num(n) => format!("`{n}`"),
        Tok::Ident(s) => format!("`{s}`"),
        Tok::Op(_) => "comparison".into(),
        Tok::LParen => "`(`".into(),
        Tok::RParen => "`)`".into(),
        Tok::Comma => "`,`".into(),
    }
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.1)
    }

    fn here(&self) -> usize {
        self.toks
            .get(self.pos)
            .map(|t| t.0)
            .unwrap_or(self.src.len())
    }

    fn fail<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            offset: self.here(),
            message: message.into(),
        })
    }

    fn keyword(&mut self, k: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Ident(s)) if s == k) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.and()?;
        while self.keyword("or") {
            let r = self.and()?;
            e = Expr::Or(Box::new(e), Box::new(r));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.unary()?;
        while self.keyword("and") {
            let r = self.unary()?;
            e = Expr::And(Box::new(e), Box::new(r));
        }
        Ok(e)
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        self.depth += 1;
        let r = self.unary_inner();
        self.depth -= 1;
        r
    }

    fn unary_inner(&mut self) -> Result<Expr, ParseError> {
        if self.depth > MAX_DEPTH {
            return self.fail(format!("nested more than {MAX_DEPTH} levels deep"));
        }
        if self.keyword("not") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let e = self.or()?;
            if self.peek() != Some(&Tok::RParen) {
                return self.fail("missing `)`");
            }
            self.pos += 1;
            return Ok(e);
        }
        let l = self.operand()?;
        let op = match self.peek() {
            Some(Tok::Op(op)) => *op,
            _ => {
                return self.fail(
                    "expected a comparison (`>`, `>=`, `<`, `<=`, `==`, `!=`), as in `failed > 0`",
                );
            }
        };
        self.pos += 1;
        let r = self.operand()?;
        if matches!((&l, &r), (Operand::Num(_), Operand::Num(_))) {
            return Err(ParseError {
                offset: self.toks[self.pos - 1].0,
                message: "a comparison of two numbers is constant; compare a metric".into(),
            });
        }
        Ok(Expr::Cmp(l, op, r))
    }

    fn metric(&self, name: &str, at: usize) -> Result<Metric, ParseError> {
        METRICS
            .iter()
            .find(|m| m.0 == name)
            .map(|m| m.1)
            .ok_or_else(|| {
                let names: Vec<&str> = METRICS.iter().map(|m| m.0).collect();
                let close = crate::core::suggest::did_you_mean(name, &names);
                ParseError {
                    offset: at,
                    message: match close {
                        Some(c) => format!("unknown metric `{name}`; did you mean `{c}`?"),
                        None => format!("unknown metric `{name}`; known: {}", names.join(", ")),
                    },
                }
            })
    }

    fn operand(&mut self) -> Result<Operand, ParseError> {
        let at = self.here();
        match self.peek().cloned() {
            Some(Tok::Num(text)) => {
                let Some(v) = number(&text) else {
                    return self.fail(format!(
                        "`{text}` is not a number (examples: 80, 0.5, 90%, 512MiB, 2GB)"
                    ));
                };
                self.pos += 1;
                Ok(Operand::Num(v))
            }
            Some(Tok::Ident(name)) => {
                self.pos += 1;
                if self.peek() == Some(&Tok::LParen) {
                    let Some(agg) = Agg::parse(&name) else {
                        return Err(ParseError {
                            offset: at,
                            message: format!(
                                "unknown function `{name}`; use avg, min, max, last, increase or rate"
                            ),
                        });
                    };
                    self.pos += 1;
                    let m_at = self.here();
                    let Some(Tok::Ident(m)) = self.peek().cloned() else {
                        return self.fail(format!("`{name}(` takes a metric first"));
                    };
                    let metric = self.metric(&m, m_at)?;
                    self.pos += 1;
                    if self.peek() != Some(&Tok::Comma) {
                        return self.fail(format!("expected `, WINDOW` as in `{name}({m}, 5m)`"));
                    }
                    self.pos += 1;
                    let window = match self.peek() {
                        Some(Tok::Num(text)) => duration(text),
                        _ => None,
                    };
                    let Some(window) = window else {
                        return self.fail("expected a window such as 30s, 10m or 2h");
                    };
                    self.pos += 1;
                    if self.peek() != Some(&Tok::RParen) {
                        return self.fail("missing `)`");
                    }
                    self.pos += 1;
                    Ok(Operand::Metric {
                        metric,
                        agg,
                        window,
                    })
                } else {
                    let metric = self.metric(&name, at)?;
                    Ok(Operand::Metric {
                        metric,
                        agg: Agg::Last,
                        window: 0,
                    })
                }
            }
            Some(t) => self.fail(format!(
                "expected a metric or a number, found {}",
                describe(&t)
            )),
            None => self.fail("expression ends too early; expected a metric or a number"),
        }
    }
}
