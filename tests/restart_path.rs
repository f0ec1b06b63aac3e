//! What a restart spawns on: output pipes made ahead (at the end of the
//! actor's pass before) and the runtime thread the actor has to itself.
//! A restarted replica gets fresh pipes of its own, its output is logged
//! like the first run's, and nothing made ahead leaks into it.

mod common;

use std::time::{Duration, Instant};

use common::*;

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// The descriptors `pid` holds once it settled (a program may open a
/// file for a moment as it starts), with what each one is.
async fn settled_fds(pid: i32) -> Vec<(i32, String)> {
    let list = || {
        let mut fds: Vec<(i32, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
                    .map(|fd: i32| {
                        let link = std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                            .map(|p| p.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        (fd, link)
                    })
                    .collect()
            })
            .unwrap_or_default();
        fds.sort();
        fds
    };
    let t = Instant::now();
    let mut fds = list();
    while fds.len() != 3 && t.elapsed() < SECS(2) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        fds = list();
    }
    fds
}

async fn until_sleeping(pid: i32) {
    let t = Instant::now();
    while cmdline(pid) != "sleep 1000" {
        assert!(t.elapsed() < SECS(5), "never exec'd: {}", cmdline(pid));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_replicas_get_fresh_pipes_of_their_own_and_their_output_is_logged() {
    let mut d = TestDaemon::start(
        r#"
[agents.phoenix]
command = ["sh", "-c", "echo out-$AUTONOMOS_RUN; echo err-$AUTONOMOS_RUN >&2; exec sleep 1000"]
min_uptime = "0ms"
backoff = { initial = "0ms", max = "0ms", jitter = 0 }
start_limit = { burst = 100, interval = "1s" }
"#,
    );
    let mut pids = Vec::new();
    let mut pipes = Vec::new();
    for round in 0..4 {
        let s = d
            .wait_for("a new run", SECS(10), |s| {
                running_pid(s, "phoenix", 0).is_some_and(|p| !pids.contains(&p))
            })
            .await;
        let pid = running_pid(&s, "phoenix", 0).expect("pid");
        until_sleeping(pid).await;
        let fds = settled_fds(pid).await;
        let numbers: Vec<i32> = fds.iter().map(|(fd, _)| *fd).collect();
        assert_eq!(numbers, [0, 1, 2], "run {round}: {fds:?}");
        assert_eq!(fds[0].1, "/dev/null", "run {round}: {fds:?}");
        assert!(
            fds[1].1.starts_with("pipe:") && fds[2].1.starts_with("pipe:"),
            "run {round}: {fds:?}"
        );
        assert_ne!(fds[1].1, fds[2].1, "stdout and stderr share a pipe");
        for (_, p) in &fds[1..] {
            assert!(
                !pipes.contains(p),
                "run {round} got an earlier run's pipe {p}"
            );
            pipes.push(p.clone());
        }
        pids.push(pid);
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(pid).expect("pid"),
            rustix::process::Signal::KILL,
        )
        .expect("kill");
    }
    // Every run's two lines reach the log, tagged with their stream.
    let log = d.data_dir().join("logs/phoenix.log");
    let t = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let outs = text.lines().filter(|l| l.contains(" 0 out out-")).count();
        let errs = text.lines().filter(|l| l.contains(" 0 err err-")).count();
        if outs >= 4 && errs >= 4 {
            break;
        }
        assert!(t.elapsed() < SECS(5), "runs' output missing: {text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    d.shutdown().await;
}
