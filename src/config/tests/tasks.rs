//! Task agents' keys: `protocol = "jsonrpc"` and what goes with it.

use super::*;

#[test]
fn a_task_agent_loads_with_its_keys_and_defaults() {
    let cfg = ok(r#"
[agents.coder]
command = ["python3", "coder.py"]
protocol = "jsonrpc"
concurrency = 4
ready = "announce"
skills = ["code-review", "refactor", "code-review"]
max_attempts = 5
task_timeout = "2m"
max_queue = 500

[agents.plain]
command = ["sleep", "1000"]
"#);
    let t = cfg.agents[0].tasks.as_ref().expect("a task agent");
    assert_eq!(t.concurrency, 4);
    assert!(t.announce);
    assert_eq!(t.skills, ["code-review", "refactor"], "each skill once");
    assert_eq!(t.max_attempts, 5);
    assert_eq!(t.task_timeout, Some(Duration::from_secs(120)));
    assert_eq!(t.max_queue, 500);
    assert!(cfg.agents[1].tasks.is_none());
    let d = ok("[agents.a]\ncommand = [\"x\"]\nprotocol = \"jsonrpc\"\n");
    assert_eq!(d.agents[0].tasks, Some(TaskSpec::default()));
    assert!(
        cfg.render_effective()
            .contains("jsonrpc: concurrency 4, ready announce")
    );
}

#[test]
fn task_keys_on_a_plain_process_and_bad_values_are_located() {
    let e = errors("[agents.a]\ncommand = [\"x\"]\nconcurrency = 2\n");
    assert_eq!((e[0].line, e[0].column), (3, 1));
    assert!(
        e[0].message.contains("applies to task agents only"),
        "{}",
        e[0]
    );
    assert!(
        e[0].help
            .as_deref()
            .is_some_and(|h| h.contains("protocol = \"jsonrpc\""))
    );
    let e = errors("[agents.a]\ncommand = [\"x\"]\nprotocol = \"json-rpc\"\n");
    assert!(
        e[0].help.as_deref().is_some_and(|h| h.contains("jsonrpc")),
        "{}",
        e[0]
    );
    let e = errors("[agents.a]\ncommand = [\"x\"]\nprotocol = \"jsonrpc\"\nconcurrency = 0\n");
    assert!(e[0].message.contains("between 1 and 1024"), "{}", e[0]);
    let e = errors("[agents.a]\ncommand = [\"x\"]\nprotocol = \"jsonrpc\"\nmax_queue = 0\n");
    assert!(e[0].message.contains("between 1 and 1000000"), "{}", e[0]);
    let e =
        errors("[agents.a]\ncommand = [\"x\"]\nprotocol = \"jsonrpc\"\nskills = [\"two words\"]\n");
    assert!(e[0].message.contains("without spaces"), "{}", e[0]);
}

#[test]
fn the_tasks_section_sets_what_is_kept_and_the_size_limits() {
    let cfg = ok("[tasks]\nkeep = 500\nmax_input = \"64KiB\"\nmax_result = \"512KiB\"\n");
    assert_eq!(cfg.tasks.keep, 500);
    assert_eq!(cfg.tasks.max_input, 64 << 10);
    assert_eq!(cfg.tasks.max_result, 512 << 10);
    assert_eq!(ok("").tasks, TasksSpec::default());
    assert!(
        cfg.render_effective()
            .contains("tasks: keep 500, max_input 64KiB, max_result 512KiB")
            || cfg
                .render_effective()
                .contains("keep 500, max_input 64KiB, max_result 512KiB")
    );
    let e = errors("[tasks]\nmax_result = \"2MiB\"\n");
    assert!(e[0].message.contains("between 1KiB and 1MiB"), "{}", e[0]);
    let e = errors("[tasks]\nkept = 5\n");
    assert!(e[0].message.contains("unknown key `kept`"), "{}", e[0]);
}

#[test]
fn a_shared_store_is_a_postgres_url_with_a_lease_and_a_host_name() {
    let cfg = ok(
        "[tasks]\nstore = \"postgres://fleet:s3cret@db.lan:5433/autonomos\"\nlease = \"10s\"\nhost = \"gpu-1\"\n",
    );
    assert_eq!(
        cfg.tasks.store.as_deref(),
        Some("postgres://fleet:s3cret@db.lan:5433/autonomos")
    );
    assert_eq!(cfg.tasks.lease, Duration::from_secs(10));
    assert_eq!(cfg.tasks.host.as_deref(), Some("gpu-1"));
    let shown = cfg.render_effective();
    assert!(
        shown.contains(
            "shared queue postgres://fleet@db.lan:5433/autonomos, lease 10s, as host gpu-1"
        ),
        "{shown}"
    );
    assert!(
        !shown.contains("s3cret"),
        "the password is never shown: {shown}"
    );
    assert_eq!(ok("").tasks.lease, Duration::from_secs(30));
    let e = errors("[tasks]\nstore = \"mysql://db/x\"\n");
    assert!(
        e[0].message.contains("write postgres://user@host:port/db"),
        "{}",
        e[0]
    );
    let e = errors("[tasks]\nstore = \"postgres://db.lan\"\n");
    assert!(e[0].message.contains("names no database"), "{}", e[0]);
    let e = errors("[tasks]\nlease = \"1s\"\n");
    assert!(e[0].message.contains("lease"), "{}", e[0]);
    let e = errors("[tasks]\nhost = \"two words\"\n");
    assert!(e[0].message.contains("1 to 64 letters"), "{}", e[0]);
    let e = errors("[tasks]\nkept = 5\n");
    assert!(e[0].message.contains("unknown key `kept`"), "{}", e[0]);
}

#[test]
fn the_gateway_loads_and_refuses_to_listen_beyond_loopback_unguarded() {
    let cfg = ok(r#"
[gateway]
listen = "127.0.0.1:8080"
token_file = "/etc/autonomos/token"
max_connections = 8
request_timeout = "10s"

[agents.coder]
command = ["x"]
protocol = "jsonrpc"
description = "Writes code"
"#);
    assert_eq!(
        cfg.gateway.listen,
        Some("127.0.0.1:8080".parse().expect("addr"))
    );
    assert_eq!(cfg.gateway.max_connections, 8);
    assert_eq!(cfg.gateway.request_timeout, Duration::from_secs(10));
    assert_eq!(cfg.agents[0].description.as_deref(), Some("Writes code"));
    let shown = cfg.render_effective();
    assert!(
        shown.contains("http://127.0.0.1:8080/agents/NAME/, bearer token required"),
        "{shown}"
    );
    assert_eq!(ok("").gateway.listen, None, "off by default");

    let e = errors("[gateway]\nlisten = \"0.0.0.0:8080\"\n");
    assert!(e[0].message.contains("beyond this machine"), "{}", e[0]);
    assert!(e[0].message.contains("token_file"), "{}", e[0]);
    let e = errors("[gateway]\nlisten = \"0.0.0.0:8080\"\ncert = \"/c.pem\"\nkey = \"/k.pem\"\n");
    assert!(e[0].message.contains("beyond this machine"), "{}", e[0]);
    ok(
        "[gateway]\nlisten = \"0.0.0.0:8080\"\ncert = \"/c.pem\"\nkey = \"/k.pem\"\ntoken_file = \"/t\"\n",
    );
    let e = errors("[gateway]\nlisten = \"127.0.0.1:8080\"\ncert = \"/c.pem\"\n");
    assert!(e[0].message.contains("both `cert` and `key`"), "{}", e[0]);
    let e = errors("[gateway]\ntoken = \"abc\"\n");
    assert!(
        e[0].help
            .as_deref()
            .is_some_and(|h| h.contains("token_file")),
        "{}",
        e[0]
    );
}

#[test]
fn autoscale_loads_with_its_targets_and_refuses_what_cannot_work() {
    let cfg = ok(r#"
[agents.coder]
command = ["x"]
protocol = "jsonrpc"
autoscale = { min = 0, max = 6, queue_per_replica = 5, latency_p95 = "2s", predict = true, idle_window = "2m", cooldown = "10s" }

[agents.web]
command = ["x"]
replicas = 1
autoscale = { min = 2, max = 4, cpu = 0.5 }
"#);
    let s = cfg.agents[0].autoscale.as_ref().expect("autoscale");
    assert_eq!((s.min, s.max), (0, 6));
    assert_eq!(s.targets.len(), 2);
    assert_eq!(s.predict_horizon_ms, Some(60_000));
    assert_eq!(s.idle_window_ms, 120_000);
    assert_eq!(s.cooldown_ms, 10_000);
    assert_eq!(cfg.agents[1].replicas, 2, "starts at min");
    let shown = cfg.render_effective();
    assert!(
        shown.contains("min 0, max 6, queue_per_replica 5, latency_p95 2s"),
        "{shown}"
    );

    let e =
        errors("[agents.a]\ncommand = [\"x\"]\nautoscale = { max = 4, queue_per_replica = 5 }\n");
    assert!(e[0].message.contains("needs a task agent"), "{}", e[0]);
    assert_eq!(e[0].line, 3);
    let e = errors("[agents.a]\ncommand = [\"x\"]\nautoscale = { min = 1, max = 4 }\n");
    assert!(e[0].message.contains("has no target"), "{}", e[0]);
    let e = errors("[agents.a]\ncommand = [\"x\"]\nautoscale = { min = 5, max = 4, cpu = 1 }\n");
    assert!(e[0].message.contains("more than `max`"), "{}", e[0]);
    let e = errors(
        "[agents.a]\ncommand = [\"x\"]\nautoscale = { max = 4, cpu = 1, idle_window = \"1m\" }\n",
    );
    assert!(e[0].message.contains("only with min = 0"), "{}", e[0]);
    let e =
        errors("[agents.a]\ncommand = [\"x\"]\nreplicas = 9\nautoscale = { max = 4, cpu = 1 }\n");
    assert!(
        e[0].message.contains("more than autoscale's max"),
        "{}",
        e[0]
    );
    let e = errors(
        "[agents.a]\ncommand = [\"x\"]\nprotocol = \"jsonrpc\"\nautoscale = { max = 4, utilization = 2 }\n",
    );
    assert!(e[0].message.contains("utilization"), "{}", e[0]);
    let e =
        errors("[agents.a]\ncommand = [\"x\"]\nautoscale = { max = 4, cpu = 1, targets = 3 }\n");
    assert!(
        e[0].help
            .as_deref()
            .is_some_and(|h| h.contains("queue_per_replica")),
        "{}",
        e[0]
    );
}

#[test]
fn health_loads_a_liveness_probe_and_refuses_what_is_not_built_or_unsafe() {
    let cfg = ok(r#"
[agents.web]
command = ["x"]
health = { interval = "2s", timeout = "1s", failure_threshold = 4, start_period = "5s", liveness = { http = "http://127.0.0.1:8080/healthz" } }
"#);
    let h = cfg.agents[0].health.as_ref().expect("health");
    assert_eq!(h.failure_threshold, 4);
    assert_eq!(
        h.liveness,
        Some(crate::config::Probe::Http(
            "http://127.0.0.1:8080/healthz".into()
        ))
    );
    assert!(
        cfg.render_effective()
            .contains("liveness http http://127.0.0.1:8080/healthz, every 2s")
    );
    let e = errors(
        "[agents.a]\ncommand = [\"x\"]\nhealth = { liveness = { http = \"http://example.com/\" } }\n",
    );
    assert!(e[0].message.contains("loopback"), "{}", e[0]);
    let e = errors(
        "[agents.a]\ncommand = [\"x\"]\nhealth = { liveness = { tcp = 1, exec = [\"x\"] } }\n",
    );
    assert!(e[0].message.contains("exactly one probe kind"), "{}", e[0]);
    let e = errors("[agents.a]\ncommand = [\"x\"]\nhealth = { interval = \"1s\" }\n");
    assert!(
        e[0].message.contains("neither a `liveness` nor"),
        "{}",
        e[0]
    );
    let e =
        errors("[agents.a]\ncommand = [\"x\"]\nhealth = { readiness = { heartbeat = \"5s\" } }\n");
    assert!(e[0].message.contains("needs a task agent"), "{}", e[0]);
    assert_eq!(e[0].line, 3);
    let e = errors(
        "[agents.a]\ncommand = [\"x\"]\nprotocol = \"jsonrpc\"\nhealth = { readiness = { heartbeat = \"soon\" } }\n",
    );
    assert!(e[0].message.contains("heartbeat"), "{}", e[0]);
    let cfg = ok(r#"
[agents.t]
command = ["x"]
protocol = "jsonrpc"
health = { liveness = { heartbeat = "15s" }, readiness = { tcp = 8080 } }
"#);
    let h = cfg.agents[0].health.as_ref().expect("health");
    assert_eq!(
        h.liveness,
        Some(crate::config::Probe::Heartbeat(
            std::time::Duration::from_secs(15)
        ))
    );
    assert_eq!(h.readiness, Some(crate::config::Probe::Tcp(8080)));
    assert!(
        cfg.render_effective()
            .contains("liveness heartbeat 15s, readiness tcp 8080"),
        "{}",
        cfg.render_effective()
    );
    let e = errors("[agents.a]\ncommand = [\"x\"]\nhealth = { liveness = { tcp = 70000 } }\n");
    assert_eq!(e[0].line, 3);
}

#[test]
fn tty_and_attention_load_and_their_mistakes_are_located() {
    let cfg = ok(r#"
[agents.a]
command = ["x"]
tty = true

[agents.b]
command = ["x"]
tty = { rows = 24, cols = 80 }
attention = ["\\(y/n\\)", "Press Enter"]
"#);
    assert_eq!(cfg.agents[0].tty, Some((40, 120)));
    assert_eq!(cfg.agents[1].tty, Some((24, 80)));
    assert_eq!(cfg.agents[1].attention.len(), 2);
    let e = errors("[agents.a]\ncommand = [\"x\"]\ntty = true\nprotocol = \"jsonrpc\"\n");
    assert!(
        e[0].message.contains("both `tty` and `protocol`"),
        "{}",
        e[0]
    );
    let e = errors("[agents.a]\ncommand = [\"x\"]\nattention = [\"y/n\"]\n");
    assert!(e[0].message.contains("needs `tty = true`"), "{}", e[0]);
    assert_eq!(e[0].line, 3);
    let e = errors("[agents.a]\ncommand = [\"x\"]\ntty = true\nattention = [\"(unclosed\"]\n");
    assert!(
        e[0].message.contains("not a regular expression"),
        "{}",
        e[0]
    );
    assert_eq!(e[0].line, 4);
    let e = errors("[agents.a]\ncommand = [\"x\"]\ntty = { rows = 1 }\n");
    assert!(e[0].message.contains("rows"), "{}", e[0]);
    let e = errors("[agents.a]\ncommand = [\"x\"]\ntty = \"yes\"\n");
    assert!(e[0].message.contains("tty"), "{}", e[0]);
}

#[test]
fn hosts_name_daemons_reached_over_ssh() {
    let cfg = ok(r#"
[[hosts]]
name = "gpu-1"
url = "ssh://ops@gpu-1.lan:2222"
data_dir = "/var/lib/autonomos"

[[hosts]]
name = "edge"
url = "ssh://edge"
remote_bin = "/opt/autonomos/bin/autonomos"
"#);
    assert_eq!(cfg.hosts.len(), 2);
    assert_eq!(cfg.hosts[0].url, "ssh://ops@gpu-1.lan:2222");
    assert_eq!(cfg.hosts[0].data_dir.as_deref(), Some("/var/lib/autonomos"));
    assert_eq!(
        cfg.hosts[1].remote_bin.as_deref(),
        Some("/opt/autonomos/bin/autonomos")
    );
    let e = errors("[[hosts]]\nname = \"a\"\nurl = \"a.lan\"\n");
    assert!(e[0].message.contains("not an ssh:// URL"), "{}", e[0]);
    let e = errors("[[hosts]]\nname = \"all\"\nurl = \"ssh://a\"\n");
    assert!(e[0].message.contains("invalid host name `all`"), "{}", e[0]);
    let e = errors(
        "[[hosts]]\nname = \"a\"\nurl = \"ssh://a\"\n[[hosts]]\nname = \"a\"\nurl = \"ssh://b\"\n",
    );
    assert!(e[0].message.contains("defined twice"), "{}", e[0]);
    let e = errors("[[hosts]]\nname = \"a\"\nhost = \"ssh://a\"\n");
    assert!(
        e.iter().any(|e| e.message.contains("unknown key `host`")),
        "{e:?}"
    );
}
