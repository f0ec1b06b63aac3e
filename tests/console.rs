//! The real console in a real terminal: tmux runs `autonomos attach`, keys
//! are pressed with send-keys, the screen is read with capture-pane, and the
//! result is checked with `autonomos status --json`. Needs the Debian
//! package tmux (and openssh-server/-client for the ssh case).

mod common;

use std::time::{Duration, Instant};

use common::sshd::*;
use common::tmux::*;
use common::*;

const FLEET: &str = r#"
[agents.alpha]
command = ["sh", "-c", "echo alpha $AUTONOMOS_REPLICA up; sleep 1000"]

[agents.beta]
command = ["sleep", "1000"]
"#;

#[test]
fn keys_scale_and_restart_q_detaches_and_attach_comes_back() {
    if !have_tool("tmux", "tmux") {
        return;
    }
    let d = BinDaemon::start(FLEET);
    let tmux = Tmux::new("keys");
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
        s.contains("alpha") && s.contains("● attached")
    });
    assert_eq!(
        tmux.format("#{alternate_on}"),
        "1",
        "the console uses the alternate screen"
    );

    // alpha is selected first: + + scales it to 3.
    tmux.keys(&["+"]);
    std::thread::sleep(Duration::from_millis(300));
    tmux.keys(&["+"]);
    let s = d.wait_status("alpha at 3", Duration::from_secs(10), |s| {
        s.agents[0].desired == 3 && s.agents[0].running == 3
    });
    assert_eq!(s.agents[1].desired, 1, "beta untouched");
    tmux.wait("3/3 on screen", |s| s.contains("3/3"));

    // r asks first; y restarts every replica of alpha.
    tmux.keys(&["r"]);
    tmux.wait("the confirmation", |s| {
        s.contains("Restart every replica of alpha? (y/n)")
    });
    tmux.keys(&["y"]);
    d.wait_status("alpha restarted", Duration::from_secs(15), |s| {
        s.agents[0]
            .replicas
            .iter()
            .all(|r| r.restarts >= 1 && r.state.is_running())
    });
    tmux.wait("the answer as a notice", |s| {
        s.contains("restarting 3 replica(s) of alpha")
    });

    // ? shows the help generated from the keymap; Esc closes it.
    tmux.keys(&["?"]);
    tmux.wait("help", |s| s.contains("shut the fleet down (asks first)"));
    tmux.keys(&["Escape"]);
    tmux.wait("help closed", |s| !s.contains("shut the fleet down"));

    // q detaches: the terminal is restored, the fleet keeps running.
    tmux.keys(&["q"]);
    tmux.wait("detached", |s| {
        s.contains("detached; the fleet keeps running") && s.contains("console-exit-0")
    });
    assert_eq!(tmux.format("#{alternate_on}"), "0", "alternate screen left");
    assert_eq!(tmux.format("#{cursor_flag}"), "1", "cursor shown again");
    let s = d.status();
    assert_eq!(s.agents[0].running, 3);
    assert_eq!(s.daemon_pid as i32, d.pid());

    // Attach again.
    tmux.run(&[
        "new-window",
        "-t",
        "t",
        &format!("{} {bin} attach; sleep 600", env_prefix(&d)),
    ]);
    tmux.wait("attached again", |s| {
        s.contains("● attached") && s.contains("3/3")
    });
}

#[test]
fn hostile_agent_output_never_reaches_the_terminal() {
    if !have_tool("tmux", "tmux") {
        return;
    }
    let d = BinDaemon::start(
        r#"
[agents.evil]
command = ["sh", "-c", '''head -c 1048576 /dev/zero | tr '\0' x; echo; echo after-the-big-line; printf '\033[2J\033]0;pwned\007\033]52;c;ZXZpbGNsaXA=\007visible-marker\n'; printf 'bad\377\376utf8\n'; sleep 1000''']
"#,
    );
    let tmux = Tmux::new("hostile");
    let bin = env!("CARGO_BIN_EXE_autonomos");
    tmux.start(
        120,
        40,
        &format!("{} {bin} attach; sleep 600", env_prefix(&d)),
    );
    // The 1 MB line arrives as 64 KiB pieces, then the hostile lines.
    let s = tmux.wait("the hostile lines", |s| {
        s.contains("after-the-big-line") && s.contains("visible-marker") && s.contains("utf8")
    });
    assert!(
        s.contains("Autonomos") && s.contains("1 Fleet"),
        "the screen was not cleared:\n{s}"
    );
    assert!(
        s.contains("bad��utf8"),
        "invalid UTF-8 shown as replacement characters:\n{s}"
    );
    assert_terminal_untouched(&tmux);
    tmux.keys(&["q"]);
}

#[test]
fn over_ssh_a_dropped_link_shows_reconnecting_and_q_still_restores_the_terminal() {
    if !have_tool("tmux", "tmux") || !sshd_available() {
        return;
    }
    let d = BinDaemon::start(FLEET);
    let sshd = start_sshd(&d);
    let before = d.wait_status("up", Duration::from_secs(10), |s| {
        s.agents.iter().all(|a| a.running == 1)
    });
    let tmux = Tmux::new("ssh");
    let bin = env!("CARGO_BIN_EXE_autonomos");
    tmux.start(
        120,
        40,
        &format!(
            "env -u AUTONOMOS_DATA_DIR XDG_RUNTIME_DIR={}/elsewhere TERM=xterm-256color {bin} --host ssh://testhost:{} --ssh-config {} --remote-bin {bin} attach; echo console-exit-$?; sleep 600",
            d.dir.path().display(),
            sshd.port,
            sshd.config().display()
        ),
    );
    tmux.wait("the console over ssh", |s| {
        s.contains("alpha") && s.contains("attached via ssh to testhost")
    });
    // Scale from the remote console.
    tmux.keys(&["j", "+"]);
    d.wait_status("beta at 2", Duration::from_secs(10), |s| {
        s.agents[1].desired == 2 && s.agents[1].running == 2
    });
    // Drop the link: kill the ssh client under the console.
    let ssh_pids: Vec<i32> = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
        .filter(|&p| {
            cmdline(p).starts_with("ssh ")
                && cmdline(p).contains(&sshd.config().display().to_string())
        })
        .collect();
    assert!(!ssh_pids.is_empty(), "no ssh client found");
    for p in ssh_pids {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(p).expect("pid"),
            rustix::process::Signal::KILL,
        );
    }
    tmux.wait("reconnecting", |s| s.contains("reconnecting"));
    let after = d.status();
    assert_eq!(
        after.daemon_pid, before.daemon_pid,
        "the daemon is untouched"
    );
    assert_eq!(after.agents[1].running, 2, "the fleet is untouched");
    // The console reconnects through a new ssh, then q restores the terminal.
    tmux.wait("reconnected", |s| s.contains("attached via ssh"));
    tmux.keys(&["q"]);
    tmux.wait("detached", |s| s.contains("console-exit-0"));
    assert_eq!(tmux.format("#{alternate_on}"), "0");
    assert_eq!(tmux.format("#{cursor_flag}"), "1");
}

fn console_pid(tmux: &Tmux) -> i32 {
    let shell: i32 = tmux.format("#{pane_pid}").parse().expect("pane pid");
    let t = Instant::now();
    loop {
        let found = std::fs::read_dir("/proc")
            .expect("/proc")
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
            .find(|&p| {
                stat_field(p, 1) == Some(shell.to_string()) && cmdline(p).ends_with(" attach")
            });
        if let Some(p) = found {
            return p;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "console process not found"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_and_sighup_restore_the_terminal() {
    if !have_tool("tmux", "tmux") {
        return;
    }
    let d = BinDaemon::start(FLEET);
    let bin = env!("CARGO_BIN_EXE_autonomos");
    for (tag, sig) in [
        ("term", rustix::process::Signal::TERM),
        ("hup", rustix::process::Signal::HUP),
    ] {
        let tmux = Tmux::new(tag);
        tmux.start(
            100,
            30,
            &format!(
                "{} {bin} attach; echo console-exit-$?; sleep 600",
                env_prefix(&d)
            ),
        );
        tmux.wait("the console", |s| s.contains("● attached"));
        let pid = console_pid(&tmux);
        rustix::process::kill_process(rustix::process::Pid::from_raw(pid).expect("pid"), sig)
            .expect("signal");
        tmux.wait("the console gone", |s| s.contains("console-exit-"));
        assert_eq!(
            tmux.format("#{alternate_on}"),
            "0",
            "{tag}: alternate screen left"
        );
        assert_eq!(tmux.format("#{cursor_flag}"), "1", "{tag}: cursor shown");
    }
    assert_eq!(d.status().agents[0].running, 1, "the fleet is untouched");
}

#[test]
fn ctrl_z_suspends_and_fg_resumes() {
    if !have_tool("tmux", "tmux") || !have_tool("bash", "bash") {
        return;
    }
    let d = BinDaemon::start(FLEET);
    let bin = env!("CARGO_BIN_EXE_autonomos");
    let tmux = Tmux::new("tstp");
    tmux.start(100, 30, "bash --norc --noprofile");
    tmux.keys(&[&format!("{} {bin} attach", env_prefix(&d)), "Enter"]);
    tmux.wait("the console", |s| s.contains("● attached"));
    tmux.keys(&["C-z"]);
    tmux.wait("suspended", |s| s.contains("Stopped"));
    assert_eq!(
        tmux.format("#{alternate_on}"),
        "0",
        "the terminal is given back while suspended"
    );
    tmux.keys(&["fg", "Enter"]);
    tmux.wait("resumed", |s| {
        s.contains("● attached") && s.contains("1 Fleet")
    });
    assert_eq!(tmux.format("#{alternate_on}"), "1");
    tmux.keys(&["q"]);
    tmux.wait("detached", |s| {
        s.contains("detached; the fleet keeps running")
    });
}

const ALERTING: &str = r#"
[metrics]
interval = "200ms"

[alerting]
defaults = false

[[alerts]]
name = "down"
expr = "running == 0"
severity = "critical"
summary = "{agent} is down"

[agents.gone]
command = ["sh", "-c", "exit 0"]
restart = "never"

[agents.up]
command = ["sleep", "1000"]
"#;

#[test]
fn the_alert_feed_and_incident_log_ack_note_and_advance_from_the_keyboard() {
    if !have_tool("tmux", "tmux") {
        return;
    }
    let d = BinDaemon::start(ALERTING);
    // Let history build up: the graphs must show it on attach.
    std::thread::sleep(Duration::from_secs(3));
    let tmux = Tmux::new("alerts");
    let bin = env!("CARGO_BIN_EXE_autonomos");
    tmux.start(
        120,
        40,
        &format!("{} {bin} attach; sleep 600", env_prefix(&d)),
    );
    let s = tmux.wait("the firing alert and its incident", |s| {
        s.contains("firing") && s.contains("down/gone") && s.contains("L1 #1   Detection")
    });
    assert!(s.contains("1 firing"), "{s}");

    // 4 focuses the alert feed and shows the alert's detail; a acknowledges.
    tmux.keys(&["4"]);
    tmux.wait("the alert detail", |s| {
        s.contains("critical (Level 1)") && s.contains("gone is down")
    });
    tmux.keys(&["a"]);
    d_wait_json(&d, &["alerts"], |r| r["alerts"][0]["acknowledged"] == true);
    tmux.wait("acked on screen", |s| {
        s.contains("acked by") || s.contains(" ack")
    });

    // 5 focuses the incident log; n opens the note prompt, > advances.
    tmux.keys(&["5"]);
    tmux.wait("the incident detail", |s| {
        s.contains("Detection (1 of 6) · next: Assessment")
    });
    tmux.keys(&["n"]);
    tmux.wait("the note prompt", |s| s.contains(":note 1"));
    tmux.keys(&["-l", "looked at it"]);
    tmux.keys(&["Enter"]);
    tmux.keys(&[">"]);
    tmux.wait("the confirmation", |s| {
        s.contains("Advance incident #1 from Detection to Assessment? (y/n)")
    });
    tmux.keys(&["y"]);
    let inc = d_wait_json(&d, &["incidents", "show", "1"], |i| {
        i["phase"] == "Assessment"
    });
    let note = inc["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .find(|e| e["kind"] == "note")
        .unwrap_or_else(|| panic!("no note: {inc:#}"));
    assert_eq!(note["text"], "looked at it");
    assert_eq!(note["by"], me_local().as_str());
    tmux.wait("the new phase on screen", |s| {
        s.contains("Assessment (2 of 6)")
    });
}

fn d_wait_json(
    d: &BinDaemon,
    args: &[&str],
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    d.wait_json(args, "the daemon's answer", Duration::from_secs(10), pred)
}
