//! The notes file each demo agent keeps in its context dir.

use super::*;

/// What the notes file says.
pub(super) struct NotesInfo<'a> {
    pub(super) agent: &'a str,
    pub(super) replica: u32,
    pub(super) role: Role,
    pub(super) pid: u32,
    pub(super) model: &'a str,
    pub(super) uptime: Duration,
    pub(super) tasks_done: u64,
    pub(super) tokens: u64,
    pub(super) working_set: usize,
    pub(super) recent: &'a VecDeque<String>,
}

/// The markdown body of `notes-<replica>.md`.
pub(super) fn render_notes(n: &NotesInfo<'_>) -> String {
    let mut s = format!(
        "# {}[{}] notes\n\n\
         - role: {}\n\
         - pid: {}\n\
         - model: {}\n\
         - uptime: {}\n\
         - tasks done: {}\n\
         - tokens used: {}\n\
         - working set: {}\n\n\
         ## Recent\n\n",
        n.agent,
        n.replica,
        n.role,
        n.pid,
        n.model,
        fmt_uptime(n.uptime),
        n.tasks_done,
        n.tokens,
        fmt_mib(n.working_set),
    );
    if n.recent.is_empty() {
        s.push_str("- (nothing yet)\n");
    }
    for r in n.recent.iter().rev() {
        s.push_str("- ");
        s.push_str(r);
        s.push('\n');
    }
    s
}

/// Writes `contents` to `dir/name` atomically: a temp file in the same dir,
/// then a rename over the target. Creates `dir` if needed.
pub(super) fn write_atomic(dir: &Path, name: &str, contents: &str) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.{}.tmp", process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(contents.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, dir.join(name))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

// ---------------------------------------------------------------------------
// The agent loop
