//! A subscriber that stops reading for 30 s while the fleet floods logs and
//! events: it is dropped (or resynced), the daemon's memory stays bounded,
//! and other clients are served all along. In its own test binary: it keeps
//! both cores busy for half a minute.

mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::*;

fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

#[test]
fn a_client_that_stops_reading_is_dropped_and_daemon_memory_stays_bounded() {
    let mut toml = String::from(
        "[agents.flood]\ncommand = [\"sh\", \"-c\", \"yes 'a line of agent output that goes on and on and on'\"]\n",
    );
    for i in 0..4 {
        toml.push_str(&format!(
            "[agents.loop{i}]\ncommand = [\"sh\", \"-c\", \"exit 1\"]\nmin_uptime = \"0ms\"\n\
             backoff = {{ initial = \"20ms\", max = \"20ms\", jitter = 0 }}\n\
             start_limit = {{ burst = 10000, interval = \"1s\" }}\n"
        ));
    }
    let d = BinDaemon::start(&toml);
    let pid = d.pid();
    let mut s = UnixStream::connect(d.socket()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let hello = format!(
        r#"{{"type":"hello","proto_version":{},"app_version":"{}"}}"#,
        autonomos::proto::PROTO_VERSION,
        autonomos::proto::APP_VERSION
    );
    s.write_all(&frame(&hello)).expect("hello");
    assert_eq!(read_frame(&mut s).expect("welcome")["type"], "hello");
    s.write_all(&frame(
        r#"{"type":"request","id":1,"request":{"op":"subscribe"}}"#,
    ))
    .expect("subscribe");
    std::thread::sleep(Duration::from_secs(2));
    let base = rss_kib(pid);
    // Stop reading for 30 s; meanwhile other clients must be served.
    let t = Instant::now();
    let mut peak = base;
    let mut worst = Duration::ZERO;
    while t.elapsed() < Duration::from_secs(30) {
        let q = Instant::now();
        let st = d.status();
        worst = worst.max(q.elapsed());
        assert!(st.agents[0].running == 1);
        peak = peak.max(rss_kib(pid));
        std::thread::sleep(Duration::from_millis(500));
    }
    let grew = peak.saturating_sub(base) / 1024;
    assert!(
        grew < 64,
        "daemon RSS grew by {grew} MiB while a client stalled (base {base} KiB)"
    );
    assert!(
        worst < Duration::from_secs(5),
        "a status took {worst:?} during the stall"
    );
    // Now read: the stalled client was dropped (EOF after what the kernel
    // buffered) or resynced with a fresh snapshot.
    let mut snapshots = 0;
    let mut frames = 0;
    let outcome = loop {
        match read_frame(&mut s) {
            Some(v) => {
                frames += 1;
                if v["type"] == "snapshot" {
                    snapshots += 1;
                    if snapshots >= 2 {
                        break "resynced";
                    }
                }
                if frames > 1_000_000 {
                    break "still streaming";
                }
            }
            None => break "dropped",
        }
    };
    assert!(
        outcome == "dropped" || outcome == "resynced",
        "{outcome} after {frames} frames"
    );
    wait_log(&d.data_dir(), "a word about the stalled client", |l| {
        l.contains("dropping client") || l.contains("client lagged")
    });
    eprintln!(
        "stalled client: {outcome} after {frames} frames; daemon RSS {base} → peak {peak} KiB"
    );
}
