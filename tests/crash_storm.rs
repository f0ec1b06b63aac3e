//! A large fleet in trouble stays answerable: 1,000 agents crash-looping,
//! every alert firing, incidents opening, while `status`, `status --json`,
//! `alerts` and a fresh attach snapshot keep answering within the frame
//! limit. In its own test binary: it loads the machine.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn storm_config(agents: usize) -> String {
    let mut cfg = String::from("[metrics]\ninterval = \"500ms\"\n\n[pool]\nmax_agents = 10000\n");
    for i in 0..agents {
        cfg.push_str(&format!(
            "\n[agents.a{i:04}]\ncommand = [\"sh\", \"-c\", \"echo crashing; exit 3\"]\n\
             backoff = {{ initial = \"100ms\", max = \"2s\", multiplier = 2.0, jitter = 0.1 }}\n\
             start_limit = {{ burst = 1000, interval = \"10s\" }}\n\
             resources = {{ cpu = 0, memory = 0 }}\n"
        ));
    }
    cfg
}

#[test]
fn status_answers_for_a_thousand_agents_in_a_crash_storm() {
    let d = BinDaemon::start(&storm_config(1000));
    let t = Instant::now();
    let mut largest = 0usize;
    let mut answers = 0;
    while t.elapsed() < Duration::from_secs(30) {
        for args in [
            &["status"][..],
            &["status", "--json"],
            &["alerts", "--json"],
        ] {
            let (code, out, err) = d.cli(args);
            assert_eq!(
                code,
                0,
                "{args:?} failed after {:?} of the storm: {err}",
                t.elapsed()
            );
            largest = largest.max(out.len());
            answers += 1;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // A console attaching now gets its snapshot (status and metric history).
    let socket = d.socket();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (_, snapshot) = rt
        .block_on(async move {
            let mut c = autonomos::client::Client::connect_socket(&socket).await?;
            c.subscribe().await
        })
        .expect("the attach snapshot arrives");
    assert!(
        snapshot.history.is_some(),
        "the snapshot carries the history"
    );
    assert_eq!(snapshot.agents.len() + snapshot.agents_omitted, 1000);
    let s = d.status();
    let restarts: u64 = s
        .agents
        .iter()
        .flat_map(|a| &a.replicas)
        .map(|r| r.restarts)
        .sum();
    assert_eq!(s.agents.len(), 1000);
    assert!(restarts > 5000, "a real storm: {restarts} restarts");
    let firing = s.alerts.iter().filter(|a| a.state == "firing").count();
    eprintln!(
        "{answers} answers, largest {largest} bytes, {restarts} restarts, {firing} alerts firing listed"
    );
}
