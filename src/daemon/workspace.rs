//! `workspace = { git = "PATH", worktree = true }`: each replica of a
//! coding agent works in its own git worktree of the repository, on its own
//! branch (`autonomos/AGENT/N`), under the agent's context dir
//! (`worktrees/N`). Created at the replica's first start, kept across
//! restarts (and backed up with the context), removed only on request.
//! Uses the system's `git`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The branch of replica `index` of `agent`.
pub fn branch(agent: &str, index: u32) -> String {
    format!("autonomos/{agent}/{index}")
}

/// Where replica `index` works.
pub fn path(context_dir: &Path, index: u32) -> PathBuf {
    context_dir.join("worktrees").join(index.to_string())
}

fn git(args: &[&std::ffi::OsStr]) -> Result<String, String> {
    let mut cmd = Command::new("git");
    cmd.args(args).env("GIT_TERMINAL_PROMPT", "0");
    let out = crate::daemon::process::output_claimed(&mut cmd)
        .map_err(|e| format!("cannot run git: {e} (install the `git` package)"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(format!("git {}: {}", out.status, err.trim()))
    }
}

/// The worktree of replica `index`, created (with its branch, from the
/// repository's HEAD) if it is not there yet.
pub fn ensure(repo: &Path, context_dir: &Path, agent: &str, index: u32) -> Result<PathBuf, String> {
    let dir = path(context_dir, index);
    if dir.join(".git").exists() {
        return Ok(dir);
    }
    std::fs::create_dir_all(dir.parent().unwrap_or(context_dir))
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let b = branch(agent, index);
    // A stale registration (the directory was deleted by hand) is pruned.
    let _ = git(&[
        "-C".as_ref(),
        repo.as_os_str(),
        "worktree".as_ref(),
        "prune".as_ref(),
    ]);
    let exists = git(&[
        "-C".as_ref(),
        repo.as_os_str(),
        "rev-parse".as_ref(),
        "--verify".as_ref(),
        "--quiet".as_ref(),
        format!("refs/heads/{b}").as_ref(),
    ])
    .is_ok();
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "-C".as_ref(),
        repo.as_os_str(),
        "worktree".as_ref(),
        "add".as_ref(),
    ];
    if !exists {
        args.push("-b".as_ref());
        args.push(b.as_ref());
    }
    args.push(dir.as_os_str());
    if exists {
        args.push(b.as_ref());
    }
    git(&args).map_err(|e| format!("worktree for {agent}/{index} in {}: {e}", repo.display()))?;
    Ok(dir)
}

/// Removes replica `index`'s worktree (its uncommitted work goes; the
/// branch and its commits stay in the repository).
pub fn remove(repo: &Path, context_dir: &Path, index: u32) -> Result<PathBuf, String> {
    let dir = path(context_dir, index);
    if !dir.exists() {
        return Err(format!("there is no worktree at {}", dir.display()));
    }
    git(&[
        "-C".as_ref(),
        repo.as_os_str(),
        "worktree".as_ref(),
        "remove".as_ref(),
        "--force".as_ref(),
        dir.as_os_str(),
    ])?;
    Ok(dir)
}

/// The worktree's branch and `git diff --stat` of its uncommitted work
/// (tracked files; new files are counted by `status`).
pub fn show(dir: &Path) -> Result<(String, String), String> {
    if !dir.join(".git").exists() {
        return Err(format!("there is no worktree at {} (yet)", dir.display()));
    }
    let d = dir.as_os_str();
    let branch = git(&[
        "-C".as_ref(),
        d,
        "branch".as_ref(),
        "--show-current".as_ref(),
    ])?;
    let stat = git(&[
        "-C".as_ref(),
        d,
        "diff".as_ref(),
        "--stat".as_ref(),
        "HEAD".as_ref(),
    ])?;
    let untracked = git(&[
        "-C".as_ref(),
        d,
        "ls-files".as_ref(),
        "--others".as_ref(),
        "--exclude-standard".as_ref(),
    ])?
    .lines()
    .count();
    let mut summary = stat.lines().last().unwrap_or("").trim().to_string();
    if summary.is_empty() {
        summary = "no changes".into();
    }
    if untracked > 0 {
        summary.push_str(&format!(", {untracked} new files"));
    }
    Ok((branch.trim().to_string(), summary))
}
