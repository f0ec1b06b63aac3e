//! Files that load: every value, the defaults, TOML spellings, the demo
//! fleet, alert rules, notifiers, backup and console sections.

use super::*;

pub(super) const FULL: &str = r#"
[pool]
cpu = 4
memory = "8GiB"
max_agents = 500

[paths]
data_dir = "state"

[logs]
max_size = "8MiB"
max_files = 3
ring_lines = 200

[agents.researcher]
command = ["python3", "-m", "worker"]
cwd = "work"
env = { MODEL = "llama3", TEMPERATURE = "0.2" }
inherit_env = ["PATH", "HOME", "PATH"]
replicas = 2
restart = "on-failure"
backoff = { initial = "250ms", max = "1m", multiplier = 3, jitter = 0.5, reset_after = "2m" }
min_uptime = "2s"
start_limit = { burst = 3, interval = "30s" }
stop_signal = "INT"
stop_timeout = "1m30s"
resources = { cpu = 0.5, memory = "256MiB", memory_limit = "1GiB", memory_limit_action = "stop" }
depends_on = ["planner", "planner"]

[agents.planner]
command = "python3 -m planner --name 'the planner'"
cwd = "/srv/planner"
"#;

#[test]
fn a_full_config_loads_with_every_value() {
    let cfg = ok(FULL);
    assert_eq!(cfg.source.as_deref(), Some(Path::new(FILE)));
    assert_eq!(
        cfg.pool,
        PoolSpec {
            cpu: 4.0,
            memory: 8 * GIB,
            max_agents: 500
        }
    );
    assert_eq!(
        cfg.paths.data_dir.as_deref(),
        Some(Path::new("/etc/fleet/state"))
    );
    assert_eq!(
        cfg.logs,
        LogSpec {
            max_size: 8 << 20,
            max_files: 3,
            ring_lines: 200
        }
    );
    let names: Vec<&str> = cfg.agents.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["researcher", "planner"]);
    let r = cfg.agent("researcher").expect("researcher");
    assert_eq!(r.command, ["python3", "-m", "worker"]);
    assert_eq!(r.cwd.as_deref(), Some(Path::new("/etc/fleet/work")));
    assert_eq!(r.env.get("MODEL").map(String::as_str), Some("llama3"));
    assert_eq!(r.env.get("TEMPERATURE").map(String::as_str), Some("0.2"));
    assert_eq!(r.inherit_env, ["PATH", "HOME"]);
    assert_eq!(r.replicas, 2);
    assert_eq!(r.restart, RestartPolicy::OnFailure);
    assert_eq!(
        r.backoff,
        BackoffSpec {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(60),
            multiplier: 3.0,
            jitter: 0.5,
            reset_after: Duration::from_secs(120),
        }
    );
    assert_eq!(r.min_uptime, Duration::from_secs(2));
    assert_eq!(
        r.start_limit,
        StartLimitSpec {
            burst: 3,
            interval: Duration::from_secs(30)
        }
    );
    assert_eq!(r.stop_signal, libc::SIGINT);
    assert_eq!(r.stop_timeout, Duration::from_secs(90));
    assert_eq!(
        r.resources,
        ResourceSpec {
            cpu: 0.5,
            memory: 256 << 20,
            memory_limit: Some(GIB),
            memory_limit_action: LimitAction::Stop,
        }
    );
    assert_eq!(r.depends_on, ["planner"]);
    let p = cfg.agent("planner").expect("planner");
    assert_eq!(
        p.command,
        ["python3", "-m", "planner", "--name", "the planner"]
    );
    assert_eq!(p.cwd.as_deref(), Some(Path::new("/srv/planner")));
    assert_eq!(topo_order(&cfg), ["planner", "researcher"]);
}

#[test]
fn defaults_fill_everything_in() {
    let cfg = ok("[agents.a]\ncommand = \"run\"\n");
    assert_eq!(
        cfg.pool,
        PoolSpec {
            cpu: 8.0,
            memory: 16 * GIB,
            max_agents: 512
        }
    );
    assert_eq!(cfg.paths, PathsSpec::default());
    assert_eq!(cfg.logs, LogSpec::default());
    let a = &cfg.agents[0];
    assert_eq!(a.cwd, None);
    assert!(a.env.is_empty());
    assert_eq!(
        a.inherit_env,
        ["PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ"]
    );
    assert_eq!(a.replicas, 1);
    assert_eq!(a.restart, RestartPolicy::Always);
    assert_eq!(
        a.backoff,
        BackoffSpec {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.1,
            reset_after: Duration::from_secs(60),
        }
    );
    assert_eq!(a.min_uptime, Duration::from_secs(1));
    assert_eq!(
        a.start_limit,
        StartLimitSpec {
            burst: 5,
            interval: Duration::from_secs(10)
        }
    );
    assert_eq!(a.stop_signal, libc::SIGTERM);
    assert_eq!(a.stop_timeout, Duration::from_secs(10));
    assert_eq!(
        a.resources,
        ResourceSpec {
            cpu: 0.0,
            memory: 0,
            memory_limit: None,
            memory_limit_action: LimitAction::Restart,
        }
    );
    assert!(a.depends_on.is_empty());
}

#[test]
fn empty_file_is_an_empty_fleet() {
    let cfg = ok("");
    assert!(cfg.agents.is_empty());
    assert!(cfg.render_effective().contains("none"));
}

#[test]
fn sub_tables_and_inline_tables_are_the_same() {
    let inline = ok(
        "[agents.a]\ncommand = \"x\"\nbackoff = { initial = \"1s\", max = \"2m\" }\nresources = { cpu = 1 }\n",
    );
    let sub = ok(
        "[agents.a]\ncommand = \"x\"\n[agents.a.backoff]\ninitial = \"1s\"\nmax = \"2m\"\n[agents.a.resources]\ncpu = 1\n",
    );
    let dotted = ok(
        "agents.a.command = \"x\"\nagents.a.backoff.initial = \"1s\"\nagents.a.backoff.max = \"2m\"\nagents.a.resources.cpu = 1\n",
    );
    let sub_first = ok(
        "[agents.a.backoff]\ninitial = \"1s\"\nmax = \"2m\"\n[agents.a]\ncommand = \"x\"\nresources = { cpu = 1 }\n",
    );
    assert_eq!(inline, sub);
    assert_eq!(inline, dotted);
    assert_eq!(inline, sub_first);
}

#[test]
fn agents_keep_file_order_even_when_reopened_by_sub_tables() {
    let cfg = ok(
        "[agents.b.backoff]\ninitial = \"1s\"\n[agents.a]\ncommand = \"a\"\n[agents.b]\ncommand = \"b\"\n[agents.c]\ncommand = \"c\"\n",
    );
    let names: Vec<&str> = cfg.agents.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["b", "a", "c"]);
}

#[test]
fn relative_paths_without_a_file_stay_relative() {
    let cfg = load_str(
        "[paths]\ndata_dir = \"d\"\n[agents.a]\ncommand = \"x\"\ncwd = \"w\"\n",
        None,
        &HOST,
    )
    .expect("loads");
    assert_eq!(cfg.source, None);
    assert_eq!(cfg.paths.data_dir, Some(PathBuf::from("d")));
    assert_eq!(cfg.agents[0].cwd, Some(PathBuf::from("w")));
    let err = load_str("bogus = 1\n", None, &HOST).expect_err("bogus");
    assert_eq!(err.diagnostics[0].file, "<config>");
}

#[test]
fn numbers_in_every_toml_spelling() {
    let cfg = ok(
        "[pool]\ncpu = 2.5\nmemory = 1_073_741_824\nmax_agents = 0x10\n[agents.a]\ncommand = [\"x\"]\nreplicas = +3\nbackoff = { multiplier = 1, jitter = 0 }\n",
    );
    assert_eq!(cfg.pool.cpu, 2.5);
    assert_eq!(cfg.pool.memory, GIB);
    assert_eq!(cfg.pool.max_agents, 16);
    assert_eq!(cfg.agents[0].replicas, 3);
    assert_eq!(cfg.agents[0].backoff.multiplier, 1.0);
    assert_eq!(cfg.agents[0].backoff.jitter, 0.0);
    let found = errors("[pool]\ncpu = nan\n");
    assert!(found[0].message.contains("finite"), "{}", found[0]);
}

#[test]
fn unreadable_file_is_one_diagnostic() {
    let missing = Path::new("/nonexistent/dir/autonomos.toml");
    let err = load_file(missing, &HOST).expect_err("missing");
    assert_eq!(err.diagnostics.len(), 1);
    let text = err.to_string();
    assert!(text.contains("/nonexistent/dir/autonomos.toml"), "{text}");
    assert!(text.contains("No such file"), "{text}");
}

#[test]
fn load_file_resolves_against_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("fleet.toml");
    std::fs::write(&path, "[agents.a]\ncommand = \"x\"\ncwd = \"work\"\n").expect("write");
    let cfg = load_file(&path, &HOST).expect("loads");
    assert_eq!(cfg.source.as_deref(), Some(path.as_path()));
    assert_eq!(cfg.agents[0].cwd, Some(dir.path().join("work")));
}

#[test]
fn effective_config_is_rendered() {
    let cfg = ok(FULL);
    let text = cfg.render_effective();
    for needle in [
        "config        /etc/fleet/autonomos.toml",
        "pool          cpu 4, memory 8GiB, max_agents 500",
        "paths         data_dir /etc/fleet/state",
        "logs          max_size 8MiB, max_files 3, ring_lines 200",
        "start order: planner → researcher",
        "[agents.researcher]",
        "  command       python3 -m worker\n",
        "  cwd           /etc/fleet/work\n",
        "  env           MODEL=llama3 TEMPERATURE=0.2\n",
        "  replicas      2\n",
        "  restart       on-failure\n",
        "  backoff       initial 250ms, max 1m, multiplier 3, jitter 0.5, reset_after 2m\n",
        "  min_uptime    2s\n",
        "  start_limit   burst 3, interval 30s\n",
        "  stop_signal   SIGINT\n",
        "  stop_timeout  1m30s (then SIGKILL)\n",
        "  resources     cpu 0.5, memory 256MiB, memory_limit 1GiB, memory_limit_action stop\n",
        "  depends_on    planner\n",
        "  command       python3 -m planner --name 'the planner'\n",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

#[test]
fn demo_config_loads() {
    let text = include_str!("../../../assets/demo.toml");
    if let Err(e) = load_str(text, Some(Path::new("assets/demo.toml")), &HOST) {
        panic!("assets/demo.toml does not load:\n{e}");
    }
}

/// Twenty minutes of the demo fleet's designed failures, at their fastest
/// (the tool crashes every 15 s, the indexer is killed at its memory limit
/// every 30 s and nears it for the last 5 s of each run), through the demo's
/// alert rules: the only rule that opens an incident (critical or major) is
/// the tool's, at Level 2, as the demo's comments promise.
#[test]
fn the_demo_fleet_opens_one_level_2_incident_for_the_tool_and_none_for_the_indexer() {
    use crate::core::alert::{Engine, Metric, Severity, Source};
    use crate::core::series::{Agg, Series};
    use std::collections::HashMap;
    struct Sim(HashMap<(String, Metric), Series>);
    impl Source for Sim {
        fn value(&self, a: Option<&str>, m: Metric, agg: Agg, w: u64, now: u64) -> Option<f64> {
            self.0
                .get(&(a.unwrap_or("").to_string(), m))?
                .aggregate(agg, now, w)
        }
    }
    let cfg = load_str(
        include_str!("../../../assets/demo.toml"),
        Some(Path::new("assets/demo.toml")),
        &HOST,
    )
    .expect("the demo loads");
    let mut engine = Engine::new(cfg.alerts.clone());
    let mut sim = Sim(HashMap::new());
    let agents = [
        "planner",
        "researcher",
        "coder",
        "flaky-tool",
        "leaky-indexer",
    ];
    let mut opened: Vec<(String, Severity)> = Vec::new();
    for sec in 0..1200u64 {
        let now = sec * 1000;
        for a in agents {
            let (failures, pct) = match a {
                "flaky-tool" => (sec / 15, 10.0),
                "leaky-indexer" => (sec / 30, if sec % 30 >= 25 { 95.0 } else { 40.0 }),
                _ => (0, 30.0),
            };
            for (m, v) in [
                (Metric::Failures, failures as f64),
                (Metric::Restarts, failures as f64),
                (Metric::MemoryPct, pct),
                (Metric::Failed, 0.0),
                (Metric::Running, 1.0),
                (Metric::Desired, 1.0),
            ] {
                sim.0
                    .entry((a.to_string(), m))
                    .or_insert_with(|| Series::new(3_600_000, 4000))
                    .push(now, v);
            }
        }
        for c in engine.evaluate(&sim, &agents, now) {
            let a = &c.alert;
            if a.state == crate::core::alert::AlertState::Firing && a.severity <= Severity::Major {
                opened.push((a.id.clone(), a.severity));
            }
        }
    }
    let ids: std::collections::BTreeSet<&str> = opened.iter().map(|(i, _)| i.as_str()).collect();
    assert_eq!(
        ids.into_iter().collect::<Vec<_>>(),
        ["flaky-restarts/flaky-tool"],
        "{opened:?}"
    );
    assert!(opened.iter().all(|(_, s)| *s == Severity::Major));
}

#[test]
fn alert_rules_default_override_and_turn_off() {
    let cfg = ok("");
    let names: Vec<&str> = cfg.alerts.iter().map(|r| r.name.as_str()).collect();
    assert!(
        names.contains(&"crash-loop") && names.contains(&"host-cpu"),
        "{names:?}"
    );
    let cfg = ok(r#"
[[alerts]]
name = "crash-loop"
expr = "increase(restarts, 1m) > 1"
for = "5s"
severity = "major"
agents = ["work*"]
summary = "{agent} loops"
"#);
    let mine: Vec<_> = cfg
        .alerts
        .iter()
        .filter(|r| r.name == "crash-loop")
        .collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].source, "increase(restarts, 1m) > 1");
    assert_eq!(mine[0].for_ms, 5000);
    assert_eq!(mine[0].severity, crate::core::alert::Severity::Major);
    assert_eq!(mine[0].agents, vec!["work*".to_string()]);
    let cfg = ok("[alerting]\ndefaults = false\n");
    assert!(cfg.alerts.is_empty());
}

#[test]
fn notifiers_and_metrics_load() {
    let cfg = ok(r#"
[metrics]
listen = "127.0.0.1:9464"
interval = "500ms"

[[notifiers]]
name = "page"
kind = "exec"
command = ["/usr/local/bin/page", "--team", "ops"]
timeout = "2s"
min_severity = "major"

[[notifiers]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:9000/alerts"
max_per_minute = 3
"#);
    assert_eq!(
        cfg.metrics.listen,
        Some("127.0.0.1:9464".parse().expect("addr"))
    );
    assert_eq!(cfg.metrics.interval, Duration::from_millis(500));
    assert_eq!(cfg.notifiers.len(), 2);
    assert_eq!(cfg.notifiers[0].timeout, Duration::from_secs(2));
    assert_eq!(cfg.notifiers[1].max_per_minute, 3);
    match &cfg.notifiers[1].kind {
        NotifierKind::Webhook { url, .. } => {
            assert_eq!(url.to_string(), "http://127.0.0.1:9000/alerts")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn two_rules_with_one_name_are_an_error() {
    let d = errors(
        "[[alerts]]\nname = \"x\"\nexpr = \"failed > 0\"\nseverity = \"minor\"\n[[alerts]]\nname = \"x\"\nexpr = \"failed > 1\"\nseverity = \"minor\"\n",
    );
    assert_eq!(d.len(), 1);
    assert!(d[0].to_string().contains("defined twice"), "{}", d[0]);
}

#[test]
fn backup_section_and_agent_recovery_load() {
    let cfg = ok(r#"
[backup]
repositories = ["/backups/a", "mirror"]
every = "1h"

[agents.w]
command = "sleep 1"
recovery = "restore-latest"
"#);
    use crate::core::repo::BackupRepo;
    assert_eq!(
        cfg.backup.repositories[0],
        BackupRepo::Local(PathBuf::from("/backups/a"))
    );
    assert_eq!(
        cfg.backup.repositories[1],
        BackupRepo::Local(PathBuf::from("/etc/fleet/mirror"))
    );
    assert_eq!(cfg.backup.every, Some(Duration::from_secs(3600)));
    assert!(cfg.agents[0].restore_latest);
    let d = errors(
        "[backup]\nevery = \"10s\"\n\n[agents.w]\ncommand = \"x\"\nrecovery = \"restore\"\n",
    );
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(d[0].to_string().contains("at least 1m"));
    assert!(d[1].to_string().contains("restore-latest"));
}

#[test]
fn sftp_repositories_take_the_ssh_settings() {
    use crate::core::repo::BackupRepo;
    let cfg = ok(r#"
[backup]
repositories = ["/backups/a", "sftp://bk@vault:2222//srv/autonomos"]
ssh_config = "ssh_config"
remote_timeout = "20s"
"#);
    let BackupRepo::Sftp(t) = &cfg.backup.repositories[1] else {
        panic!("{:?}", cfg.backup.repositories)
    };
    assert_eq!(
        (t.host.as_str(), t.port, t.path.as_str()),
        ("vault", Some(2222), "/srv/autonomos")
    );
    assert_eq!(t.ssh_config, Some(PathBuf::from("/etc/fleet/ssh_config")));
    assert_eq!(t.timeout, Duration::from_secs(20));
    let d = errors(
        "[backup]\nrepositories = [\"sftp:-oProxyCommand=x:/p\", \"s3:b/x\"]\nremote_timeout = \"0s\"\n",
    );
    assert_eq!(d.len(), 3, "{d:?}");
    assert!(d[0].to_string().contains("not a valid host"), "{}", d[0]);
    assert!(d[1].to_string().contains("not supported"), "{}", d[1]);
}

#[test]
fn console_section_loads_and_bad_keys_are_located() {
    let host = crate::config::HostFacts {
        cpus: 2.0,
        memory: 1 << 32,
    };
    let ok = "[console]\ntheme = \"light\"\nkeys = { detach = \"x\", up = [\"k\", \"ctrl-p\"] }\n";
    let cfg = crate::config::load_str(ok, None, &host).expect("valid");
    assert_eq!(cfg.console.theme.as_deref(), Some("light"));
    assert_eq!(cfg.console.keys.len(), 2);
    assert_eq!(cfg.console.keys[1].1[1].key, "p");
    let bad = "[console]\nkeys = { detahc = \"x\", up = \"hyper-q\" }\ntheme = 3\n";
    let errs = crate::config::load_str(bad, None, &host).expect_err("invalid");
    let d = &errs.diagnostics;
    assert_eq!(d.len(), 3, "{errs}");
    assert_eq!((d[0].line, d[0].column), (2, 10));
    assert!(
        d[0].help.as_deref().unwrap_or("").contains("detach"),
        "{errs}"
    );
    assert_eq!((d[1].line, d[1].column), (2, 29));
    assert!(d[1].message.contains("hyper-q"));
    assert_eq!(d[2].line, 3);
}
