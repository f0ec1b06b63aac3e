//! `autonomos config check FILE`, driven through the real binary: a good
//! file prints the effective fleet and exits 0; a bad one lists every error
//! with `FILE:LINE:COL`, the offending text and suggestions, and exits 2.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::cargo::cargo_bin_cmd;
use tempfile::TempDir;

const GOOD: &str = r#"
[pool]
cpu = 4
memory = "8GiB"

[agents.planner]
command = ["python3", "-m", "planner"]
stop_timeout = "5s"

[agents.researcher]
command = "python3 -m worker --topic 'deep sea'"
replicas = 2
restart = "on-failure"
depends_on = ["planner"]
resources = { cpu = 0.5, memory = "256MiB", memory_limit = "1GiB" }
"#;

const BAD: &str = r#"[pool]
cpu = 4

[agents.researcher]
command = ["python3", "-m", "worker"]
stop_timout = "5s"
replicas = 1000000000
depends_on = ["planer"]

[agents.planner]
command = "python3 -m planner"
restart = "sometimes"
"#;

fn write(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write config");
    path
}

fn check(args: &[&str], path: &Path) -> Output {
    cargo_bin_cmd!("autonomos")
        .arg("config")
        .arg("check")
        .args(args)
        .arg(path)
        .output()
        .expect("run autonomos")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn good_file_prints_the_effective_fleet() {
    let dir = TempDir::new().expect("tempdir");
    let path = write(&dir, "autonomos.toml", GOOD);
    let out = check(&[], &path);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for needle in [
        "[agents.planner]",
        "[agents.researcher]",
        "python3 -m worker --topic 'deep sea'",
        "on-failure",
        "start order: planner → researcher",
        "SIGTERM",
        "memory_limit 1GiB",
        "cpu 4, memory 8GiB",
    ] {
        assert!(
            stdout.contains(needle),
            "missing {needle:?} in stdout:\n{stdout}"
        );
    }
}

#[test]
fn good_file_as_json() {
    let dir = TempDir::new().expect("tempdir");
    let path = write(&dir, "autonomos.toml", GOOD);
    let out = check(&["--json"], &path);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is JSON");
    assert_eq!(json["agents"][0]["name"], "planner");
    assert_eq!(json["agents"][1]["replicas"], 2);
    assert_eq!(json["agents"][1]["restart"], "on-failure");
    assert_eq!(json["pool"]["memory"], 8u64 << 30);
}

#[test]
fn bad_file_lists_every_error_and_exits_2() {
    let dir = TempDir::new().expect("tempdir");
    let path = write(&dir, "autonomos.toml", BAD);
    let out = check(&[], &path);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    let file = path.display().to_string();
    for needle in [
        format!("{file}:6:1"),
        "stop_timout = \"5s\"".to_owned(),
        "did you mean `stop_timeout`?".to_owned(),
        format!("{file}:7:12"),
        "1000000000".to_owned(),
        "absurd".to_owned(),
        format!("{file}:8:15"),
        "did you mean `planner`?".to_owned(),
        format!("{file}:12:11"),
        "use one of: always, on-failure, never".to_owned(),
    ] {
        assert!(
            stderr.contains(&needle),
            "missing {needle:?} in stderr:\n{stderr}"
        );
    }
    // In source order.
    let at = |needle: &str| stderr.find(needle).unwrap_or(usize::MAX);
    assert!(at(&format!("{file}:6:1")) < at(&format!("{file}:7:12")));
    assert!(at(&format!("{file}:8:15")) < at(&format!("{file}:12:11")));
}

#[test]
fn unreadable_file_exits_2_naming_it() {
    let dir = TempDir::new().expect("tempdir");
    let path = dir.path().join("missing.toml");
    let out = check(&[], &path);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
}

#[test]
fn demo_config_checks() {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo.toml");
    let host = autonomos::config::HostFacts {
        cpus: 2.0,
        memory: 4 << 30,
    };
    if let Err(e) = autonomos::config::load_file(&demo, &host) {
        panic!("assets/demo.toml does not load on a 2-core, 4GiB host:\n{e}");
    }
    let out = check(&[], &demo);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", text(&out.stderr));
}
