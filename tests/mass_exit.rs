//! 200 replicas exiting at once: every exit recorded with its own code, no
//! zombie left. In its own test binary so no other test's children can
//! blur the zombie count.

mod common;

use std::time::Duration;

use autonomos::core::lifecycle::State;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_replicas_exiting_at_once_are_each_recorded_with_their_own_code_and_leave_no_zombie()
 {
    let mut d = TestDaemon::start(
        r#"
[agents.swarm]
command = ["sh", "-c", "sleep 1; exit $AUTONOMOS_REPLICA"]
replicas = 200
restart = "never"
"#,
    );
    let s = d
        .wait_for("all 200 exited", Duration::from_secs(30), |s| {
            s.agents[0].replicas.len() == 200
                && s.agents[0]
                    .replicas
                    .iter()
                    .all(|r| r.state == State::Stopped && r.last_exit.is_some())
        })
        .await;
    for r in &s.agents[0].replicas {
        assert_eq!(
            r.last_exit.and_then(|e| e.code),
            Some(r.index as i32),
            "replica {} recorded the wrong exit",
            r.index
        );
    }
    // Nothing of ours is left unreaped.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let me = std::process::id() as i32;
    let zombies: Vec<i32> = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
        .filter(|&p| stat_field(p, 1).as_deref() == Some(me.to_string().as_str()))
        .filter(|&p| stat_field(p, 0).as_deref() == Some("Z"))
        .collect();
    assert!(zombies.is_empty(), "zombies left: {zombies:?}");
    d.shutdown().await;
}
