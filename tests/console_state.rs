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
    let tmux = Tmux::new(tag);
    let bin = env!("CARGO_BIN_EXE_autonomos");
    tmux.start(
        120,
        40,
        &format!(
            "{} {bin} attach; echo console-exit-$?; sleep 600",
            env_prefix(d)
        ),
    );
    tmux.wait("the console", |s| {
        s.contains("beta") && s.contains("● attached")
    });
    tmux
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
