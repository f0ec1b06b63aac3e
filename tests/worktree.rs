//! `workspace = { git, worktree = true }`: each replica of a coding agent in
//! its own git worktree on its own branch, kept across restarts, removed
//! only on request. Needs git (Debian package git).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn two_replicas_get_two_worktrees_kept_across_restarts_and_removed_on_request() {
    if !have_tool("git", "git") {
        return;
    }
    let repo = tempfile::tempdir().expect("repo");
    git(repo.path(), &["init", "-q", "-b", "main"]);
    std::fs::write(repo.path().join("file.txt"), "one\n").expect("file");
    git(repo.path(), &["add", "file.txt"]);
    git(repo.path(), &["commit", "-q", "-m", "first"]);
    // Each run appends a line to the tracked file and writes a new one.
    let d = BinDaemon::start(&format!(
        r#"
[agents.coder]
command = ["sh", "-c", "echo run >> file.txt; echo x > new-$AUTONOMOS_REPLICA.txt; exec sleep 1000"]
replicas = 2
workspace = {{ git = "{}", worktree = true }}
"#,
        repo.path().display()
    ));
    d.wait_status("both run", Duration::from_secs(15), |s| {
        s.agents[0].running == 2
    });
    let w0 = d.json(&["worktree", "coder/0"]);
    let w1 = d.json(&["worktree", "coder/1"]);
    assert_eq!(w0["branch"], "autonomos/coder/0", "{w0:#}");
    assert_eq!(w1["branch"], "autonomos/coder/1", "{w1:#}");
    assert_ne!(w0["path"], w1["path"]);
    let p0 = std::path::PathBuf::from(w0["path"].as_str().expect("path"));
    // Its process works there.
    let t = std::time::Instant::now();
    while !p0.join("new-0.txt").exists() {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "replica 0 did not work in {p0:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let changes = w0["changes"].as_str().expect("changes");
    assert!(
        changes.contains("1 file changed") && changes.contains("1 new files"),
        "{changes}"
    );
    let listed = git(repo.path(), &["worktree", "list"]);
    assert!(
        listed.contains("autonomos/coder/0") && listed.contains("autonomos/coder/1"),
        "{listed}"
    );
    // A restart keeps the worktree and what was done in it.
    assert_eq!(d.cli(&["restart", "coder/0"]).0, 0);
    d.wait_status("restarted", Duration::from_secs(15), |s| {
        s.agents[0].replicas[0].restarts >= 1 && s.agents[0].running == 2
    });
    std::thread::sleep(Duration::from_millis(300));
    let text = std::fs::read_to_string(p0.join("file.txt")).expect("file");
    assert_eq!(
        text, "one\nrun\nrun\n",
        "the work of the first run is still there"
    );
    // Removing: refused while it runs, done once it does not.
    let (code, _, err) = d.cli(&["worktree", "coder/1", "--remove"]);
    assert_eq!(code, 1);
    assert!(err.contains("is running"), "{err}");
    assert_eq!(d.cli(&["scale", "coder", "1"]).0, 0);
    d.wait_status("scaled", Duration::from_secs(15), |s| {
        s.agents[0].running == 1
    });
    let p1 = std::path::PathBuf::from(w1["path"].as_str().expect("path"));
    assert!(p1.exists(), "scaling down does not remove a worktree");
    let (code, out, err) = d.cli(&["worktree", "coder/1", "--remove"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!p1.exists());
    let listed = git(repo.path(), &["worktree", "list"]);
    assert!(!listed.contains("autonomos/coder/1"), "{listed}");
    // The branch stays.
    assert!(git(repo.path(), &["branch", "--list"]).contains("autonomos/coder/1"));
}

#[test]
fn a_workspace_that_is_not_a_repository_is_a_config_error() {
    let dir = tempfile::tempdir().expect("dir");
    let cfg = dir.path().join("a.toml");
    std::fs::write(
        &cfg,
        format!(
            "[agents.c]\ncommand = [\"true\"]\nworkspace = {{ git = \"{}\" }}\n",
            dir.path().display()
        ),
    )
    .expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_autonomos"))
        .args(["config", "check"])
        .arg(&cfg)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not a git repository") && err.contains(":3:"),
        "{err}"
    );
}
