//! A `tty = true` agent in the real console, driven through tmux: its
//! terminal view shows the agent's screen, focus mode types into it,
//! Ctrl-] returns, and the agent's terminal takes the view's size.
//! Needs tmux and python3 (Debian packages tmux, python3).

mod common;

use common::tmux::*;
use common::*;

#[test]
fn the_terminal_view_types_into_a_repl_and_follows_the_view_s_size() {
    if !have_tool("tmux", "tmux") || !have_tool("python3", "python3") {
        return;
    }
    let d = BinDaemon::start(
        r#"
[agents.py]
command = ["python3", "-q", "-i"]
tty = true
inherit_env = ["PATH"]

[agents.sh]
command = ["sh"]
tty = { rows = 24, cols = 80 }
inherit_env = ["PATH"]
"#,
    );
    let tmux = Tmux::new("tty");
    let bin = env!("CARGO_BIN_EXE_autonomos");
    tmux.start(
        120,
        40,
        &format!(
            "{} {bin} attach; echo console-exit-$?; sleep 600",
            env_prefix(&d)
        ),
    );
    tmux.wait("the console", |s| {
        s.contains("py") && s.contains("● attached")
    });
    // The header counts the replicas waiting for a person.
    tmux.wait("waiting count", |s| {
        s.lines().next().is_some_and(|l| l.contains("2 waiting"))
    });
    // Enter: py's terminal over the body, with its prompt.
    tmux.keys(&["Enter"]);
    tmux.wait("py's terminal", |s| s.contains(">>>") && s.contains("py/0"));
    // Focus mode: keys go to python.
    tmux.keys(&["i"]);
    tmux.wait("focus", |s| s.contains("TYPING"));
    tmux.keys(&["-l", "print(6*7)"]);
    tmux.keys(&["Enter"]);
    tmux.wait("the answer", |s| {
        s.lines().any(|l| l.trim_matches('│').trim() == "42")
    });
    // Ctrl-C goes to python too (a KeyboardInterrupt), not to the console.
    tmux.keys(&["C-c"]);
    tmux.wait("python's interrupt", |s| s.contains("KeyboardInterrupt"));
    // Ctrl-] returns: keys are the console's again (q would detach).
    tmux.keys(&["C-]"]);
    tmux.wait("back", |s| !s.contains("TYPING") && s.contains("i type"));
    let (_, text, _) = d.cli(&["screen", "py"]);
    assert!(text.contains("42"), "{text}");

    // The shell: its terminal takes the view's size once focused.
    tmux.keys(&["Escape"]);
    tmux.wait("the fleet", |s| s.contains("AGENT"));
    tmux.keys(&["j", "Enter"]);
    tmux.wait("sh's terminal", |s| s.contains("sh/0"));
    tmux.keys(&["i"]);
    tmux.wait("focus", |s| s.contains("TYPING"));
    tmux.keys(&["-l", "stty size"]);
    tmux.keys(&["Enter"]);
    // The body at 120x40 less the header, the footer and the border.
    let s = tmux.wait("the size", |s| s.contains("36 118") || s.contains("35 118"));
    assert!(!s.contains("24 80\n"), "{s}");
    tmux.keys(&["C-]"]);
    tmux.keys(&["q"]);
    tmux.wait("detached", |s| s.contains("console-exit-0"));
}

/// A full-screen program (curses: the alternate screen, cursor moves) that
/// marks its corners and redraws on SIGWINCH.
const CORNERS: &str = r#"
import curses
def main(w):
    curses.curs_set(0)
    while True:
        w.erase()
        h, c = w.getmaxyx()
        w.addstr(0, 0, "TL")
        w.addstr(h // 2, max(0, c // 2 - 6), f"size {c}x{h}")
        w.insstr(h - 1, c - 2, "BR")
        w.refresh()
        w.getch()
curses.wrapper(main)
"#;

#[test]
fn a_full_screen_program_renders_at_two_sizes_and_follows_the_view() {
    if !have_tool("tmux", "tmux") || !have_tool("python3", "python3") {
        return;
    }
    let d = BinDaemon::start(&format!(
        "[agents.full]\ncommand = [\"python3\", \"-c\", {CORNERS:?}]\ntty = true\nenv = {{ TERM = \"xterm-256color\" }}\n"
    ));
    let tmux = Tmux::new("full");
    let bin = env!("CARGO_BIN_EXE_autonomos");
    tmux.start(
        120,
        40,
        &format!(
            "{} {bin} attach; echo console-exit-$?; sleep 600",
            env_prefix(&d)
        ),
    );
    tmux.wait("the console", |s| {
        s.contains("full") && s.contains("● attached")
    });
    tmux.keys(&["Enter"]);
    // At its configured size (120x40) the view shows the top-left part.
    tmux.wait("its screen", |s| {
        s.contains("│TL") && s.contains("size 120x40")
    });
    // Focused: it takes the view's size and redraws; both corners show.
    tmux.keys(&["i"]);
    let s = tmux.wait("redrawn at the view's size", |s| s.contains("size 118x36"));
    let lines: Vec<&str> = s.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("┌") || l.contains("│TL")),
        "{s}"
    );
    assert!(lines.iter().any(|l| l.ends_with("BR│")), "{s}");
    // The operator's terminal shrinks: so does the agent's.
    tmux.run(&["resize-window", "-t", "t", "-x", "100", "-y", "30"]);
    let s = tmux.wait("redrawn smaller", |s| s.contains("size 98x26"));
    assert!(s.lines().any(|l| l.ends_with("BR│")), "{s}");
    let v = d.json(&["screen", "full"]);
    assert_eq!(
        (v["rows"].as_u64(), v["cols"].as_u64()),
        (Some(26), Some(98))
    );
    assert!(
        v["lines"][0].as_str().is_some_and(|l| l.starts_with("TL")),
        "{v:#}"
    );
    tmux.keys(&["C-]"]);
    tmux.keys(&["q"]);
    tmux.wait("detached", |s| s.contains("console-exit-0"));
}
