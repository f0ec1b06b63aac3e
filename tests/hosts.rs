//! One client over several daemons (`--host a --host b`, `[[hosts]]`,
//! `--host all`): three daemons, each behind its own real sshd on
//! 127.0.0.1 (as three machines would be), reached through one ssh config.
//! A daemon stopped and a link cut during the session: the others still
//! answer at once, and what is missing is named. Needs openssh-server.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::sshd::{Sshd, sshd_available, start_sshd};
use common::*;
use serde_json::Value;

/// One ssh config naming the three servers h0, h1, h2.
fn ssh_config(dir: &std::path::Path, servers: &[&Sshd]) -> std::path::PathBuf {
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let mut text = String::new();
    for (i, s) in servers.iter().enumerate() {
        let p = s.dir.path().display();
        text.push_str(&format!(
            "Host h{i}\n  HostName 127.0.0.1\n  Port {}\n  User {user}\n  IdentityFile {p}/id\n  IdentitiesOnly yes\n  \
             UserKnownHostsFile {p}/known_hosts\n  StrictHostKeyChecking yes\n  BatchMode yes\n  LogLevel ERROR\n  ConnectTimeout 5\n",
            s.port
        ));
    }
    let path = dir.join("ssh_config");
    std::fs::write(&path, text).expect("ssh config");
    path
}

fn client(
    dir: &std::path::Path,
    ssh: &std::path::Path,
    args: &[&str],
) -> (i32, String, String, Duration) {
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_autonomos"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("XDG_RUNTIME_DIR", dir.join("elsewhere"))
        .arg("--config")
        .arg(dir.join("client.toml"))
        .arg("--ssh-config")
        .arg(ssh)
        .arg("--remote-bin")
        .arg(env!("CARGO_BIN_EXE_autonomos"))
        .args(args)
        .output()
        .expect("client runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        t.elapsed(),
    )
}

/// Three daemons (alpha, beta, gamma, each with one agent NAME-web), each
/// behind its own sshd, one ssh config naming them h0..h2, and a client
/// config whose [[hosts]] name them.
struct Hosts {
    daemons: Vec<BinDaemon>,
    servers: Vec<Sshd>,
    dir: tempfile::TempDir,
    ssh: std::path::PathBuf,
}

fn three_hosts() -> Hosts {
    let daemons: Vec<BinDaemon> = ["alpha", "beta", "gamma"]
        .iter()
        .map(|n| {
            BinDaemon::start(&format!(
                "[agents.{n}-web]\ncommand = [\"sleep\", \"1000\"]\n\n\
                 [[alerts]]\nname = \"down\"\nexpr = \"running == 0\"\nseverity = \"critical\"\nsummary = \"{{agent}} is down\"\n"
            ))
        })
        .collect();
    for d in &daemons {
        d.wait_status("up", Duration::from_secs(15), |s| s.agents[0].running == 1);
    }
    let servers: Vec<Sshd> = daemons.iter().map(start_sshd).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let ssh = ssh_config(dir.path(), &servers.iter().collect::<Vec<_>>());
    std::fs::write(
        dir.path().join("client.toml"),
        "[[hosts]]\nname = \"alpha\"\nurl = \"ssh://h0\"\n\n\
         [[hosts]]\nname = \"beta\"\nurl = \"ssh://h1\"\n\n\
         [[hosts]]\nname = \"gamma\"\nurl = \"ssh://h2\"\n",
    )
    .expect("client config");
    Hosts {
        daemons,
        servers,
        dir,
        ssh,
    }
}

#[test]
fn one_client_merges_three_hosts_and_names_the_ones_that_are_gone() {
    if !sshd_available() {
        return;
    }
    let Hosts {
        mut daemons,
        mut servers,
        dir,
        ssh,
    } = three_hosts();

    // All three in one table, each row led by its host.
    let (code, out, err, _) = client(dir.path(), &ssh, &["--host", "all", "status"]);
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("HOST") && lines[0].contains("AGENT"),
        "{out}"
    );
    for (host, agent) in [
        ("alpha", "alpha-web"),
        ("beta", "beta-web"),
        ("gamma", "gamma-web"),
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(host) && l.contains(agent)),
            "{host} row: {out}"
        );
    }
    // JSON: one entry per host; names and URLs mix.
    let (code, out, err, _) = client(
        dir.path(),
        &ssh,
        &["--host", "alpha", "--host", "ssh://h1", "status", "--json"],
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    let hosts: Vec<&str> = v["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .filter_map(|h| h["host"].as_str())
        .collect();
    assert_eq!(hosts, ["alpha", "h1"]);
    assert_eq!(v["hosts"][1]["status"]["agents"][0]["name"], "beta-web");

    // A daemon stops and a link is cut: the rest answer, promptly; the
    // missing are named, and the exit code says something is missing.
    let mut gamma = daemons.remove(2);
    gamma.cli(&["shutdown"]);
    gamma.stop();
    let beta_sshd = servers.remove(1);
    drop(beta_sshd);
    let (code, out, err, took) = client(dir.path(), &ssh, &["--host", "all", "status"]);
    assert_eq!(code, 1, "exit {code}: {out}{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("alpha") && l.contains("alpha-web")),
        "{out}"
    );
    assert!(
        !out.contains("beta-web") && !out.contains("gamma-web"),
        "{out}"
    );
    assert!(
        err.contains("host beta") && err.contains("host gamma"),
        "{err}"
    );
    assert!(
        took < Duration::from_secs(14),
        "the dead hosts held the others up: {took:?}"
    );
    let (code, out, _, _) = client(dir.path(), &ssh, &["--host", "all", "alerts", "--json"]);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).expect("json");
    let gone: Vec<&str> = v["unreachable"]
        .as_array()
        .expect("unreachable")
        .iter()
        .filter_map(|h| h["host"].as_str())
        .collect();
    assert_eq!(gone, ["beta", "gamma"]);

    // A name that is not in [[hosts]] is refused with the known ones.
    let (code, _, err, _) = client(dir.path(), &ssh, &["--host", "delta", "status"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("known: alpha, beta, gamma"), "{err}");
    // A verb for one daemon refuses several.
    let (code, _, err, _) = client(
        dir.path(),
        &ssh,
        &["--host", "all", "scale", "alpha-web", "2"],
    );
    assert_ne!(code, 0);
    assert!(err.contains("talks to one daemon"), "{err}");
}

/// The pids of processes whose command line has all of `words`.
fn pids_with(words: &[&str]) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if words.iter().all(|w| cmd.contains(w)) {
            out.push(pid);
        }
    }
    out
}

#[test]
fn one_console_over_three_hosts_switches_routes_and_shows_the_dead() {
    if !sshd_available() || !have_tool("tmux", "tmux") {
        return;
    }
    let Hosts {
        mut daemons,
        mut servers,
        dir,
        ssh,
    } = three_hosts();
    let client = dir.path().join("client.toml");
    let bin = env!("CARGO_BIN_EXE_autonomos");
    let tmux = common::tmux::Tmux::new("hosts");
    tmux.start(
        120,
        40,
        &format!(
            "env XDG_RUNTIME_DIR={} TERM=xterm-256color {bin} --config {} --ssh-config {} --remote-bin {bin} --host all attach; echo console-exit-$?; sleep 600",
            dir.path().join("elsewhere").display(),
            client.display(),
            ssh.display()
        ),
    );
    // The host bar: every host at a glance; the first one in view.
    // A capture can land between two writes of one frame (the fleet
    // already drawn, the detail not yet): wait for the whole of it.
    let s = tmux.wait("three hosts attached", |s| {
        s.contains("alpha ● 1/1")
            && s.contains("beta ● 1/1")
            && s.contains("gamma ● 1/1")
            && s.contains("Agent · alpha-web/0")
    });
    // One fleet table: the other hosts' agents under a heading each.
    assert!(
        s.contains("── beta") && s.contains("── gamma") && s.contains("gamma-web"),
        "{s}"
    );
    // `}`: the next host; an action goes to the host in view.
    tmux.keys(&["}"]);
    let s = tmux.wait("beta in view", |s| {
        s.contains("Agent · beta-web/0") && s.contains("── alpha") && s.contains("── gamma")
    });
    assert!(s.contains("── alpha") && s.contains("── gamma"), "{s}");
    tmux.keys(&[":"]);
    tmux.keys(&["-l", "scale beta-web 2"]);
    tmux.keys(&["Enter"]);
    daemons[1].wait_status("beta scaled", Duration::from_secs(10), |s| {
        s.agents[0].desired == 2
    });
    tmux.wait("beta's bar", |s| s.contains("beta ● 2/2"));
    assert_eq!(
        daemons[0].json(&["status"])["agents"][0]["desired"],
        1,
        "alpha untouched"
    );
    // One feed: alpha in view lists gamma's alert and beta's incident,
    // each tagged with its host.
    daemons[2].cli(&["stop", "gamma-web"]);
    daemons[1].cli(&["incidents", "open", "disk full on beta", "--level", "2"]);
    tmux.keys(&["{"]);
    let s = tmux.wait("the other hosts' alerts and incidents", |s| {
        s.contains("[gamma] down/gamma-web") && s.contains("disk full on beta")
    });
    assert!(
        s.contains("Agent · alpha-web/0") && s.contains("[beta]"),
        "{s}"
    );
    tmux.keys(&["}"]);
    tmux.wait("beta in view again", |s| s.contains("Agent · beta-web/0"));

    // gamma's daemon stops; beta's link is cut (its sshd gone, the ssh
    // client killed): both shown as such, alpha still live.
    let mut gamma = daemons.remove(2);
    gamma.cli(&["shutdown"]);
    gamma.stop();
    drop(servers.remove(1));
    for pid in pids_with(&["ssh", " h1 ", "dial-stdio"]) {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(pid).expect("pid"),
            rustix::process::Signal::KILL,
        );
    }
    tmux.wait("the dead shown", |s| {
        s.contains("beta ✕") && s.contains("gamma ✕")
    });
    tmux.keys(&["{"]);
    tmux.wait("alpha in view", |s| s.contains("Agent · alpha-web/0"));
    daemons[0].cli(&["scale", "alpha-web", "3"]);
    tmux.wait("alpha live", |s| s.contains("alpha ● 3/3"));
    tmux.keys(&["q"]);
    tmux.wait("detached", |s| s.contains("console-exit-0"));
}
