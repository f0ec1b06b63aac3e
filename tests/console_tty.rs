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
