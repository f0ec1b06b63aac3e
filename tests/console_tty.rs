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
    let tmux = attach_console(&d, "tty", "py");
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
    let tmux = attach_console(&d, "full", "full");
    tmux.keys(&["Enter"]);
    // At its configured size (120x40), larger than the view: the view
    // shows its bottom rows (the middle line among them).
    tmux.wait("its screen", |s| s.contains("size 120x40"));
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

#[test]
fn a_hostile_tty_agent_never_reaches_the_operator_s_terminal() {
    if !have_tool("tmux", "tmux") {
        return;
    }
    // Title (OSC 0), clipboard (OSC 52), DECRQSS, mouse and bracketed
    // paste modes, a screen clear, an OSC never closed, and a 1 MB line.
    let d = BinDaemon::start(
        r#"
[agents.evil]
command = ["sh", "-c", '''head -c 1048576 /dev/zero | tr '\0' x; echo; printf '\033]0;pwned\007\033]52;c;ZXZpbGNsaXA=\007\033P$qm\033\\\033[?1000h\033[?2004h\033[2Jvisible-marker\n'; printf '\033]2;'; head -c 100000 /dev/zero | tr '\0' y; printf '\nafter-the-open-osc\n'; exec sleep 1000''']
tty = true
"#,
    );
    let tmux = attach_console(&d, "ttyevil", "evil");
    tmux.keys(&["Enter"]);
    // The OSC left open was cut at its bound: what followed it shows (the
    // rest of its 100 KB body too, as text).
    let s = tmux.wait("its terminal", |s| {
        s.contains("after-the-open-osc") && s.contains("evil/0")
    });
    assert!(
        s.contains("Autonomos"),
        "the console's screen was cleared:\n{s}"
    );
    let (_, logs, _) = d.cli(&["logs", "evil", "-n", "2000"]);
    assert!(logs.contains("visible-marker"), "the marker is logged");
    tmux.keys(&["i"]);
    tmux.wait("focus", |s| s.contains("TYPING"));
    tmux.keys(&["C-]"]);
    assert_eq!(
        tmux.format("#{mouse_any_flag}"),
        "0",
        "mouse reporting was turned on"
    );
    assert_ne!(
        tmux.format("#{bracketpaste_flag}"),
        "1",
        "bracketed paste was turned on"
    );
    assert_terminal_untouched(&tmux);
    tmux.keys(&["q"]);
}
