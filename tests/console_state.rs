//! The console keeps an honest picture of the daemon: agents a reload adds,
//! removes or changes show up live, and a deliberate shutdown reads as a
//! stopped daemon, never as a lost link to a fleet that keeps running.
//! Needs the Debian package tmux.

mod common;

use std::time::Duration;

use common::tmux::*;
use common::*;

const FLEET: &str = r#"
[agents.alpha]
command = ["sleep", "1000"]

[agents.beta]
command = ["sleep", "1000"]
"#;

const RELOADED: &str = r#"
[agents.alpha]
command = ["sleep", "1000"]
replicas = 2

[agents.gamma]
command = ["sleep", "1000"]
"#;

fn console(d: &BinDaemon, tag: &str) -> Tmux {
    attach_console(d, tag, "beta")
}

#[test]
fn a_reload_adds_removes_and_changes_agents_in_an_attached_console() {
    if !have_tool("tmux", "tmux") {
        return;
    }
    let d = BinDaemon::start(FLEET);
    let tmux = console(&d, "reload");
    assert!(tmux.screen().contains("2 agents"), "{}", tmux.screen());
    std::fs::write(d.dir.path().join("autonomos.toml"), RELOADED).expect("write");
    let (code, out, err) = d.cli(&["reload"]);
    assert_eq!(code, 0, "{out}{err}");
    tmux.wait("the reload said", |s| {
        s.contains("added gamma") && s.contains("removed beta")
    });
    let s = tmux.wait("gamma in, beta out, alpha at 2", |s| {
        s.contains("▸ gamma") && !s.contains("▸ beta") && s.contains("2/2")
    });
    assert!(s.contains("2 agents"), "{s}");
}

#[test]
fn a_shutdown_shows_the_daemon_stopped_and_q_does_not_claim_a_running_fleet() {
    if !have_tool("tmux", "tmux") {
        return;
    }
    let mut d = BinDaemon::start(FLEET);
    let tmux = console(&d, "shutdown");
    let (code, out, err) = d.cli(&["shutdown"]);
    assert_eq!(code, 0, "{out}{err}");
    d.stop();
    let s = tmux.wait("daemon stopped", |s| s.contains("daemon stopped"));
    assert!(!s.contains("reconnecting"), "{s}");
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        !tmux.screen().contains("reconnecting"),
        "it stays stopped: {}",
        tmux.screen()
    );
    tmux.keys(&["q"]);
    let s = tmux.wait("the console's last words", |s| s.contains("console-exit-0"));
    assert!(
        s.contains("the daemon is stopped: no agent is running"),
        "{s}"
    );
    assert!(!s.contains("the fleet keeps running"), "{s}");
}

#[test]
fn a_daemon_stopped_by_sigterm_shows_as_stopped_not_as_a_lost_link() {
    // SIGTERM decommissions the fleet as `shutdown` does: the console says
    // the daemon stopped (from its notice, or, when the link closed before
    // the notice arrived, from the daemon's socket being gone).
    if !have_tool("tmux", "tmux") {
        return;
    }
    let mut d = BinDaemon::start(FLEET);
    let tmux = console(&d, "sigterm");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(d.pid()).expect("pid"),
        rustix::process::Signal::TERM,
    )
    .expect("kill");
    d.stop();
    let s = tmux.wait("daemon stopped", |s| s.contains("daemon stopped"));
    assert!(
        !s.lines().next().unwrap_or("").contains("reconnecting"),
        "{s}"
    );
    tmux.keys(&["q"]);
    let s = tmux.wait("the console's last words", |s| s.contains("console-exit-0"));
    assert!(!s.contains("the fleet keeps running"), "{s}");
}

const CHATTY: &str = r#"
[agents.alpha]
command = ["sh", "-c", "i=0; while [ $i -lt 40 ]; do i=$((i+1)); echo line $i; if [ $((i % 5)) = 0 ]; then echo needle $i; fi; done; sleep 1000"]

[agents.beta]
command = ["sleep", "1000"]
"#;

#[test]
fn keys_that_need_focus_do_nothing_without_it_and_the_log_search_filters() {
    if !have_tool("tmux", "tmux") {
        return;
    }
    let d = BinDaemon::start(CHATTY);
    let tmux = console(&d, "focus");
    // The logs have focus: + and a do nothing but say where they work.
    tmux.keys(&["6"]);
    tmux.wait("alpha's output", |s| s.contains("needle 40"));
    tmux.keys(&["+"]);
    tmux.wait("the hint", |s| s.contains("focus the fleet (1) first"));
    tmux.keys(&["a"]);
    tmux.wait("the hint", |s| s.contains("focus the alert feed (4) first"));
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(d.status().agents[0].desired, 1, "nothing was scaled");

    // Search, then filter: only matching lines show; n steps to a match.
    tmux.keys(&["/"]);
    tmux.keys(&["-l", "needle"]);
    tmux.keys(&["Enter"]);
    tmux.keys(&["f"]);
    let s = tmux.wait("the filter", |s| s.contains("filter “needle” 8 lines"));
    assert!(!s.contains("line 39"), "non-matching lines are hidden: {s}");
    tmux.keys(&["n"]);
    tmux.wait("the first match", |s| s.contains("match 8 of 8"));
    tmux.keys(&["n"]);
    tmux.wait("the next match", |s| s.contains("match 7 of 8"));
    tmux.keys(&["N"]);
    tmux.wait("back", |s| s.contains("match 8 of 8"));
    // Esc clears the search: every line again.
    tmux.keys(&["Escape"]);
    tmux.wait("all lines", |s| {
        s.contains("line 40") && !s.contains("filter “")
    });

    // In the fleet, + shows the new count and Esc takes it back.
    tmux.keys(&["1"]);
    tmux.keys(&["+"]);
    tmux.wait("the pending scale", |s| s.contains("scale alpha 1 → 2"));
    tmux.keys(&["Escape"]);
    tmux.wait("cancelled", |s| s.contains("cancelled: alpha stays at 1"));
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(
        d.status().agents[0].desired,
        1,
        "the cancelled scale was never sent"
    );
}
