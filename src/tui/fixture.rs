//! A fixed model for unit tests and snapshots: a small fleet in every
//! interesting state, with fixed times and graph data.

use crate::core::incident::{Entry, EntryKind};
use crate::core::lifecycle::{State, Transition};
use crate::proto::{
    AgentStatus, AlertStatus, ExitInfo, FleetStatus, HostStatus, IncidentStatus, LogLine,
    ReplicaStatus, Stream,
};
use crate::tui::model::{Conn, Model, push};

pub const NOW: u64 = 1_795_000_000_000;

fn replica(index: u32, state: State, restarts: u64, cpu: f64, rss_mib: u64) -> ReplicaStatus {
    let running = state.is_running();
    ReplicaStatus {
        index,
        state,
        since: NOW - 60_000,
        pid: running.then_some(4000 + index as i32),
        started_at: running.then_some(NOW - 3_720_000),
        restarts,
        failures: restarts,
        last_exit: (restarts > 0).then_some(ExitInfo {
            code: Some(1),
            signal: None,
            at: NOW - 30_000,
            ran_ms: 2_000,
        }),
        waiting: (state == State::Backoff).then(|| "retry in 4.0s (failure 3)".to_string()),
        error: None,
        cpu_percent: cpu,
        cpu_seconds: cpu * 3.0,
        rss_bytes: rss_mib << 20,
        processes: 1,
        history: vec![
            Transition {
                at: NOW - 62_000,
                from: State::ContextPreparation,
                to: State::ActiveOperation,
                reason: "spawned pid 4000".into(),
            },
            Transition {
                at: NOW - 60_000,
                from: State::ActiveOperation,
                to: state,
                reason: "test".into(),
            },
        ]
        .into_iter()
        .filter(|t| t.from != t.to)
        .collect(),
        health: None,
        ready: None,
        attention: None,
    }
}

fn agent(name: &str, replicas: Vec<ReplicaStatus>, desired: u32, enabled: bool) -> AgentStatus {
    AgentStatus {
        name: name.into(),
        desired,
        running: replicas.iter().filter(|r| r.state.is_running()).count() as u32,
        enabled,
        command: vec!["python3".into(), "-m".into(), name.into()],
        context_dir: format!("/var/lib/autonomos/contexts/{name}"),
        replicas,
        replicas_omitted: 0,
        log_lines: 1234,
        log_dropped: 0,
        env: vec![
            ("MODEL".into(), "llama3".into()),
            ("API_KEY".into(), "•••••".into()),
        ],
        restart: "always".into(),
        cpu_request: 0.5,
        memory_request: 256 << 20,
        memory_limit: Some(1 << 30),
        memory_limit_action: "restart".into(),
        tasks: None,
        autoscale: None,
        tty: None,
        workspace: None,
    }
}

/// The fixed fleet.
pub fn status() -> FleetStatus {
    FleetStatus {
        daemon_pid: 4242,
        started_at: NOW - 7_200_000,
        now: NOW,
        data_dir: "/var/lib/autonomos".into(),
        config: Some("/etc/autonomos.toml".into()),
        agents_omitted: 0,
        agents: vec![
            agent(
                "planner",
                vec![replica(0, State::ActiveOperation, 0, 3.5, 40)],
                1,
                true,
            ),
            agent(
                "researcher",
                vec![
                    replica(0, State::ActiveOperation, 0, 45.0, 120),
                    replica(1, State::PerformanceMonitoring, 2, 80.0, 900),
                    replica(2, State::Backoff, 3, 0.0, 0),
                ],
                3,
                true,
            ),
            agent(
                "flaky-tool",
                vec![replica(0, State::Failed, 5, 0.0, 0)],
                1,
                true,
            ),
            agent(
                "indexer",
                vec![replica(0, State::Stopped, 0, 0.0, 0)],
                1,
                false,
            ),
        ],
        host: HostStatus {
            cpu_percent: 42.0,
            per_core: vec![40.0, 44.0],
            memory_used: 6 << 30,
            memory_total: 16 << 30,
            net_rx_bps: 200_000.0,
            net_tx_bps: 50_000.0,
            ..HostStatus::default()
        },
        pool_used: (2.0, 1 << 30, 5),
        alerts_omitted: 0,
        incidents_omitted: 0,
        alerts: vec![
            AlertStatus {
                id: "replica-failed/flaky-tool".into(),
                name: "replica-failed".into(),
                severity: "critical".into(),
                state: "firing".into(),
                summary: "flaky-tool: 1 replica(s) Failed (gave up restarting)".into(),
                since: NOW - 300_000,
                acknowledged: false,
                acknowledged_by: None,
                agent: Some("flaky-tool".into()),
                value: Some(1.0),
                fired_value: Some(1.0),
                silenced_until: None,
                flapping: false,
            },
            AlertStatus {
                id: "memory-near-limit/researcher".into(),
                name: "memory-near-limit".into(),
                severity: "major".into(),
                state: "pending".into(),
                summary: "researcher is at 88% of its memory limit".into(),
                since: NOW - 20_000,
                acknowledged: false,
                acknowledged_by: None,
                agent: Some("researcher".into()),
                value: Some(88.0),
                fired_value: None,
                silenced_until: None,
                flapping: false,
            },
        ],
        incidents: vec![IncidentStatus {
            id: 3,
            title: "flaky-tool: 1 replica(s) Failed (gave up restarting)".into(),
            level: 1,
            status: "open".into(),
            phase: "Assessment".into(),
            opened_at: NOW - 290_000,
            resolved_at: None,
            owner: Some("alice".into()),
            agent: Some("flaky-tool".into()),
            alert: Some("replica-failed/flaky-tool".into()),
            recent: vec![Entry {
                at: NOW - 290_000,
                kind: EntryKind::Opened,
                by: "autonomos".into(),
                text: "opened at Level 1 (critical system failure) in Detection".into(),
            }],
            entries: 6,
        }],
        notifiers: vec![],
        audit: vec![crate::core::audit::Record::seal(
            41,
            NOW - 60_000,
            "alice (local)",
            "scale",
            serde_json::json!({ "agent": "researcher", "replicas": 3 }),
            "ok: scaled researcher from 2 to 3",
            crate::core::audit::GENESIS,
        )],
        backup_running: true,
        backup_progress: Some(crate::proto::BackupProgress {
            what: "backup to /srv/autonomos/backups".into(),
            step: "backing up".into(),
            done: 22 << 20,
            total: 50 << 20,
            bytes: true,
        }),
        storage: Vec::new(),
        shared_queue: None,
        tick_seconds: 0.0,
        history: None,
    }
}

/// A model attached to the fixed fleet, with graph history and logs.
pub fn model() -> Model {
    let mut m = Model::new(NOW);
    m.status = Some(status());
    m.conn = Conn::Attached {
        host: "gpu-box".into(),
        pid: 4242,
        version: "0.1.0".into(),
    };
    for i in 0..300u64 {
        let at = NOW - (300 - i) * 1000;
        let wave = ((i as f64) / 20.0).sin();
        push(&mut m.host_cpu, at, 40.0 + 20.0 * wave);
        push(&mut m.host_mem, at, 37.5 + 2.0 * wave);
        push(&mut m.net_rx, at, 200_000.0 + 100_000.0 * wave);
        push(&mut m.net_tx, at, 50_000.0);
        push(
            m.agent_cpu.entry("planner".into()).or_default(),
            at,
            3.5 + 2.0 * wave,
        );
        push(
            m.agent_mem.entry("planner".into()).or_default(),
            at,
            (40u64 << 20) as f64,
        );
    }
    m.cores = vec![
        m.host_cpu.clone(),
        m.host_cpu.iter().map(|(t, v)| (*t, v / 2.0)).collect(),
    ];
    m.logs_agent = Some("planner".into());
    for i in 0..30u64 {
        m.logs.push_back(LogLine {
            seq: i + 1,
            at: NOW - 30_000 + i * 1000,
            replica: 0,
            stream: if i % 7 == 6 {
                Stream::Stderr
            } else {
                Stream::Stdout
            },
            text: format!("INFO plan: step {i} of task T-{} decomposed", 4000 + i),
        });
    }
    m.log_cursor = Some(30);
    // The planner takes tasks: figures, graphs, and its newest tasks.
    if let Some(a) = m.status.as_mut().and_then(|s| s.agents.first_mut()) {
        a.tasks = Some(crate::proto::TaskSummary {
            queue: 4,
            in_flight: 1,
            completed: 1520,
            failed: 3,
            run_p95_ms: Some(500),
            wait_p95_ms: Some(10),
            oldest_wait_ms: 2_300,
            capacity: 2,
            error_rate: 0.002,
        });
    }
    for i in 0..300u64 {
        let at = NOW - (300 - i) * 1000;
        let q = m.tasks.queue.entry("planner".into()).or_default();
        push(q, at, ((i as f64) / 15.0).sin().abs() * 8.0);
        let r = m.tasks.rate.entry("planner".into()).or_default();
        push(r, at, 5.0 + 3.0 * ((i as f64) / 25.0).cos());
    }
    m.tasks.agent = Some("planner".into());
    m.tasks.list = vec![
        task(
            "1a2b3c4d5e600003",
            crate::core::task::TaskState::Working,
            None,
        ),
        task(
            "1a2b3c4d5e600002",
            crate::core::task::TaskState::Completed,
            Some(serde_json::json!({"steps": ["research", "code"]})),
        ),
        task(
            "1a2b3c4d5e600001",
            crate::core::task::TaskState::Failed,
            None,
        ),
    ];
    m.dirty = false;
    m
}

fn task(
    id: &str,
    state: crate::core::task::TaskState,
    result: Option<serde_json::Value>,
) -> crate::proto::TaskStatus {
    use crate::core::task::TaskState;
    crate::proto::TaskStatus {
        id: id.into(),
        agent: "planner".into(),
        state,
        attempts: if state == TaskState::Failed { 3 } else { 1 },
        replica: Some(0),
        priority: 0,
        key: None,
        context_id: Some("ticket-42".into()),
        input: serde_json::json!("plan: add retries to the crawler"),
        result,
        error: (state == TaskState::Failed).then(|| "attempt 3 of 3: timeout".into()),
        progress: (state == TaskState::Working).then(|| crate::proto::Progress {
            fraction: Some(0.4),
            message: Some("asked researcher".into()),
        }),
        submitted_at: NOW - 9_000,
        started_at: Some(NOW - 8_000),
        finished_at: (state != TaskState::Working).then_some(NOW - 7_500),
        timeout_ms: None,
        host: None,
    }
}
