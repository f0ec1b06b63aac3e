//! A private tmux server per test, to drive the real console: keys with
//! send-keys, the screen with capture-pane. Needs the Debian package tmux.

use std::process::Command;
use std::time::{Duration, Instant};

use super::BinDaemon;

/// A private tmux server for one test.
pub struct Tmux {
    pub socket: String,
}

impl Tmux {
    pub fn new(tag: &str) -> Tmux {
        Tmux {
            socket: format!("autonomos-test-{tag}-{}", std::process::id()),
        }
    }

    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn start(&self, w: u16, h: u16, cmd: &str) {
        self.run(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            &w.to_string(),
            "-y",
            &h.to_string(),
            cmd,
        ]);
        self.run(&["set", "-s", "set-clipboard", "on"]);
    }

    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "t"])
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut a = vec!["send-keys", "-t", "t"];
        a.extend_from_slice(keys);
        self.run(&a);
    }

    pub fn format(&self, f: &str) -> String {
        self.run(&["display-message", "-p", "-t", "t", f])
            .trim()
            .to_string()
    }

    pub fn wait(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let t = Instant::now();
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(
                t.elapsed() < Duration::from_secs(15),
                "timed out waiting for {what}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}

pub fn env_prefix(d: &BinDaemon) -> String {
    format!(
        "env XDG_RUNTIME_DIR={} AUTONOMOS_DATA_DIR={} AUTONOMOS_CONFIG={} TERM=xterm-256color",
        d.runtime_dir().display(),
        d.data_dir().display(),
        d.dir.path().join("autonomos.toml").display()
    )
}

/// The operator's terminal kept what an agent's hostile output tried to
/// change: its title is not `pwned`, the clipboard payload `evilclip`
/// (base64 `ZXZpbGNsaXA=`) is neither in tmux's buffers nor on screen, and
/// no OSC sequence is.
pub fn assert_terminal_untouched(tmux: &Tmux) {
    assert_ne!(
        tmux.format("#{pane_title}"),
        "pwned",
        "the title was changed"
    );
    let buffers = tmux.run(&["list-buffers"]);
    assert!(
        !buffers.contains("evilclip"),
        "OSC 52 reached the clipboard: {buffers}"
    );
    let raw = tmux.run(&["capture-pane", "-p", "-e", "-t", "t"]);
    assert!(!raw.contains("\u{1b}]"), "an OSC sequence is on screen");
    assert!(
        !raw.contains("ZXZpbGNsaXA"),
        "the clipboard payload is on screen"
    );
}

/// `autonomos attach` to `d` in a 120×40 tmux session tagged `tag`, once
/// the console shows `agent` attached; `console-exit-N` is printed when it
/// ends.
pub fn attach_console(d: &BinDaemon, tag: &str, agent: &str) -> Tmux {
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
        s.contains(agent) && s.contains("● attached")
    });
    tmux
}
