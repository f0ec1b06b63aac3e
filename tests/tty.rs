//! Interactive agents (`tty = true`) on the real daemon: each replica on
//! its own pseudo-terminal, its screen read back through the daemon's
//! emulator (`screen`), typed into without attaching (`send`), and marked
//! waiting for input when it blocks reading its terminal.
//! The REPL test needs python3 (Debian package python3).

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn screen(d: &BinDaemon, target: &str) -> Value {
    d.json(&["screen", target])
}

fn wait_screen(d: &BinDaemon, target: &str, what: &str) -> Value {
    let t = Instant::now();
    loop {
        let (code, out, _) = d.cli(&["screen", target, "--json"]);
        if code == 0 {
            let v: Value = serde_json::from_str(&out).expect("json");
            if v["lines"].to_string().contains(what) {
                return v;
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "`{what}` never on the screen of {target}: {out}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn attention(d: &BinDaemon, agent: usize) -> String {
    let (_, out, _) = d.cli(&["status", "-r", "--json"]);
    let v: Value = serde_json::from_str(&out).expect("json");
    v["agents"][agent]["replicas"][0]["attention"]
        .as_str()
        .unwrap_or("none")
        .to_string()
}

fn wait_attention(d: &BinDaemon, agent: usize, want: &str, within: Duration) -> Duration {
    let t = Instant::now();
    loop {
        let now = attention(d, agent);
        if now == want {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < within,
            "attention {now}, not {want}, after {within:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_python_repl_is_typed_into_and_read_back() {
    if !have_tool("python3", "python3") {
        return;
    }
    let d = BinDaemon::start(
        "[agents.py]\ncommand = [\"python3\", \"-q\", \"-i\"]\ntty = true\ninherit_env = [\"PATH\"]\n",
    );
    let v = wait_screen(&d, "py", ">>>");
    assert_eq!(
        (v["rows"].as_u64(), v["cols"].as_u64()),
        (Some(40), Some(120))
    );
    assert_eq!(v["lines"].as_array().map(Vec::len), Some(40));
    assert_eq!(v["agent"], "py");
    // At its prompt: it waits for a person.
    let took = wait_attention(&d, 0, "waiting-input", Duration::from_secs(3));
    eprintln!("waiting-input after {took:?}");
    let (code, out, err) = d.cli(&["send", "py", "print(6*7)", "--enter"]);
    assert_eq!(code, 0, "{out}{err}");
    let v = wait_screen(&d, "py", "42");
    let lines: Vec<String> = serde_json::from_value(v["lines"].clone()).expect("lines");
    assert!(lines.iter().any(|l| l.trim_end() == "42"), "{lines:#?}");
    // Busy sleeping: not waiting for anyone.
    d.cli(&["send", "py", "import time; time.sleep(4)", "--enter"]);
    wait_attention(&d, 0, "idle", Duration::from_secs(3));
    wait_attention(&d, 0, "waiting-input", Duration::from_secs(8));
    // The text screen for people, too.
    let (_, text, _) = d.cli(&["screen", "py/0"]);
    assert!(text.contains(">>> print(6*7)\n42\n"), "{text}");
    // The log has the plain text.
    let (_, logs, _) = d.cli(&["logs", "py", "-n", "50"]);
    assert!(logs.contains("42"), "{logs}");
}

#[test]
fn a_question_is_waiting_input_until_answered_and_a_sleeper_never_is() {
    let d = BinDaemon::start(
        r#"
[metrics]
interval = "200ms"

[alerting]
defaults = false

[[alerts]]
name = "needs-a-person"
expr = "waiting_input > 0"
for = "1s"
severity = "minor"
summary = "{agent}: {value} waiting for input"

[agents.ask]
command = ["sh", "-c", "printf 'proceed? (y/n) '; read a; echo \"got $a\"; exec sleep 1000"]
tty = true

[agents.sleeper]
command = ["sleep", "1000"]
tty = true

[agents.banner]
command = ["sh", "-c", "echo 'Press Enter to continue'; exec sleep 1000"]
tty = { rows = 24, cols = 80 }
attention = ["Press Enter"]
"#,
    );
    let took = wait_attention(&d, 0, "waiting-input", Duration::from_secs(3));
    assert!(
        took < Duration::from_secs(2) + Duration::from_millis(500),
        "{took:?}"
    );
    wait_attention(&d, 2, "waiting-input", Duration::from_secs(3));
    // The optional rule: a person is needed for a while.
    d.wait_json(
        &["alerts"],
        "the waiting alert",
        Duration::from_secs(10),
        |r| {
            r["alerts"].as_array().is_some_and(|a| {
                a.iter().any(|x| {
                    x["id"] == "needs-a-person/ask"
                        && x["state"] == "firing"
                        && x["summary"] == "ask: 1 waiting for input"
                })
            })
        },
    );
    let (code, out, err) = d.cli(&["send", "ask", "y", "--enter"]);
    assert_eq!(code, 0, "{out}{err}");
    wait_screen(&d, "ask", "got y");
    wait_attention(&d, 0, "idle", Duration::from_secs(3));
    // The sleeper: quiet, but not reading its terminal.
    for _ in 0..15 {
        assert_eq!(attention(&d, 1), "idle");
        std::thread::sleep(Duration::from_millis(150));
    }
    let v = screen(&d, "banner");
    assert_eq!(
        (v["rows"].as_u64(), v["cols"].as_u64()),
        (Some(24), Some(80))
    );
}

#[test]
fn send_and_screen_refuse_what_has_no_terminal() {
    let d = BinDaemon::start(
        "[agents.plain]\ncommand = [\"sleep\", \"1000\"]\n\n[agents.t]\ncommand = [\"sleep\", \"1000\"]\ntty = true\n",
    );
    d.wait_status("running", Duration::from_secs(10), |s| {
        s.agents.iter().all(|a| a.running == 1)
    });
    let (code, _, err) = d.cli(&["send", "plain", "hi"]);
    assert_eq!(code, 1);
    assert!(err.contains("has no terminal"), "{err}");
    let (code, _, err) = d.cli(&["screen", "t/3"]);
    assert_eq!(code, 1);
    assert!(err.contains("no replica 3"), "{err}");
    assert_eq!(d.cli(&["stop", "t"]).0, 0);
    d.wait_status("stopped", Duration::from_secs(10), |s| {
        s.agents[1].running == 0
    });
    let (code, _, err) = d.cli(&["send", "t", "hi", "--enter"]);
    assert_eq!(code, 1);
    assert!(err.contains("not running"), "{err}");
    assert_eq!(attention(&d, 1), "exited");
}

#[test]
fn hostile_output_never_reaches_the_log_raw() {
    // OSC 52 (clipboard), OSC 0 (title), DECRQSS, mouse and paste modes,
    // the alternate screen, and a 1 MB line.
    let d = BinDaemon::start(
        r#"
[agents.evil]
command = ["sh", "-c", '''printf 'a\033]52;c;aGFjaw==\007b\033]0;owned\007c\033P$qm\033\\d\033[?1000h\033[?2004h\033[?1049he\n'; head -c 1000000 /dev/zero | tr '\0' x; echo; echo end; exec sleep 1000''']
tty = true
"#,
    );
    wait_screen(&d, "evil", "end");
    let dir = d.data_dir().join("logs");
    let t = Instant::now();
    let log = loop {
        let mut all = Vec::new();
        for e in std::fs::read_dir(&dir).expect("log dir").flatten() {
            if e.file_name().to_string_lossy().starts_with("evil.log") {
                all.extend(std::fs::read(e.path()).expect("log"));
            }
        }
        if all.windows(3).any(|w| w == b"end") || t.elapsed() > Duration::from_secs(10) {
            break all;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!log.contains(&0x1b), "an escape byte reached the log");
    assert!(!log.contains(&0x07), "a BEL reached the log");
    let text = String::from_utf8_lossy(&log);
    assert!(text.contains("abcde"), "{}", &text[..text.len().min(300)]);
    assert!(text.contains("xxxxxxxx"), "the long line is logged");
    // Still answering.
    assert_eq!(d.cli(&["status"]).0, 0);
}

#[test]
fn a_tty_agent_crashes_restarts_and_stops_with_its_whole_tree() {
    let d = BinDaemon::start(
        r#"
[agents.crashy]
command = ["sh", "-c", "echo up; sleep 0.3; exit 3"]
tty = true
backoff = { initial = "100ms", max = "200ms" }

[agents.tree]
command = ["sh", "-c", "sleep 4242 & echo started; exec sleep 1000"]
tty = true
"#,
    );
    d.wait_status("restarted", Duration::from_secs(15), |s| {
        s.agents[0]
            .replicas
            .first()
            .is_some_and(|r| r.restarts >= 2)
    });
    let s = d.status();
    let r = &s.agents[0].replicas[0];
    assert!(r.failures >= 2, "{r:#?}");
    wait_screen(&d, "tree", "started");
    let count = || {
        let out = std::process::Command::new("pgrep")
            .args(["-f", "^sleep 4242"])
            .output()
            .expect("pgrep");
        String::from_utf8_lossy(&out.stdout).lines().count()
    };
    assert_eq!(count(), 1);
    assert_eq!(d.cli(&["stop", "tree"]).0, 0);
    d.wait_status("tree stopped", Duration::from_secs(10), |s| {
        s.agents[1].running == 0
    });
    let t = Instant::now();
    while count() > 0 {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the tree's child outlived the stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_shell_that_ignores_sigterm_stops_at_once_on_its_terminal_s_hangup() {
    let d = BinDaemon::start(
        r#"
[agents.shell]
command = ["sh", "-c", "trap '' TERM; echo up; while :; do sleep 0.2; done"]
tty = true
stop_timeout = "10s"
"#,
    );
    wait_screen(&d, "shell", "up");
    let t = Instant::now();
    assert_eq!(d.cli(&["stop", "shell"]).0, 0);
    d.wait_status("stopped", Duration::from_secs(12), |s| {
        s.agents[0].running == 0
    });
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "stopped after {took:?}: SIGHUP was not sent"
    );
    let (_, out, _) = d.cli(&["status", "-r", "--json"]);
    assert!(!out.contains("SIGKILL"), "{out}");
}
