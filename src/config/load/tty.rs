//! An agent's `tty = true` (or `{ rows, cols }`), `attention = [...]` and
//! `workspace = { git, worktree }`: each replica on its own
//! pseudo-terminal, the screen patterns that mean it waits for a person,
//! and its own git worktree.

use super::*;

/// The terminal size without `{ rows, cols }`.
pub const DEFAULT_TTY: (u16, u16) = (40, 120);

impl Checker<'_> {
    pub(super) fn tty_keys(
        &mut self,
        tty: Option<Entry<'_, '_>>,
        attention: Option<Entry<'_, '_>>,
        table_name: &str,
        spec: &mut AgentSpec,
    ) {
        let field = |key| Field {
            key,
            table: table_name,
        };
        if let Some((k, v)) = tty {
            spec.tty = self.tty(v, table_name);
            if spec.tty.is_some() && spec.tasks.is_some() {
                self.problem(
                    k.span(),
                    format!("[{table_name}] cannot have both `tty` and `protocol`"),
                    Some("a task agent speaks JSON-RPC over pipes; an interactive agent runs on a terminal".into()),
                );
            }
        }
        let Some((k, v)) = attention else { return };
        let help = Some("attention = [\"\\\\(y/n\\\\)\\\\s*$\", \"Press Enter\"]".to_owned());
        let Some(items) = self.strings(v, field("attention"), help) else {
            return;
        };
        for (p, span) in items {
            match regex::Regex::new(p) {
                Ok(_) => spec.attention.push(p.to_owned()),
                Err(e) => {
                    let first = e.to_string().lines().last().unwrap_or_default().to_owned();
                    self.problem(
                        span,
                        format!("`{p}` in `attention` is not a regular expression: {first}"),
                        None,
                    );
                }
            }
        }
        if spec.tty.is_none() {
            self.problem(
                k.span(),
                format!("`attention` in [{table_name}] needs `tty = true`"),
                Some("patterns are matched against the replica's terminal screen".into()),
            );
        }
    }

    /// `workspace = { git = "PATH", worktree = true }`.
    pub(super) fn workspace(
        &mut self,
        v: &Value<'_>,
        table_name: &str,
    ) -> Option<crate::config::model::WorkspaceSpec> {
        let name = format!("{table_name}.workspace");
        let help = Some("workspace = { git = \"/path/to/repo\", worktree = true }".to_owned());
        let t = self.table(
            v,
            Field {
                key: "workspace",
                table: table_name,
            },
            help,
        )?;
        let [git, worktree] = self.fields(t, &name, ["git", "worktree"], |_| None);
        let field = |key| Field { key, table: &name };
        let Some((_, gv)) = git else {
            self.problem(
                v.span(),
                format!("[{name}] has no `git` repository"),
                Some("git = \"/path/to/repo\"".into()),
            );
            return None;
        };
        let repo = self.path(gv, field("git"))?;
        if !repo.join(".git").exists() && !repo.join("HEAD").is_file() {
            self.problem(
                gv.span(),
                format!("{} is not a git repository", repo.display()),
                Some("run `git init` there, or point `git` at a repository".into()),
            );
            return None;
        }
        let mut spec = crate::config::model::WorkspaceSpec {
            git: repo,
            worktree: true,
        };
        if let Some((_, wv)) = worktree {
            match wv.get_ref() {
                DeValue::Boolean(b) => spec.worktree = *b,
                _ => {
                    self.type_error(wv, field("worktree"), "true or false", None);
                    return None;
                }
            }
        }
        Some(spec)
    }

    /// `tty = true`, `false`, or `{ rows = 40, cols = 120 }`.
    fn tty(&mut self, v: &Value<'_>, table_name: &str) -> Option<(u16, u16)> {
        let field = Field {
            key: "tty",
            table: table_name,
        };
        match v.get_ref() {
            DeValue::Boolean(true) => Some(DEFAULT_TTY),
            DeValue::Boolean(false) => None,
            DeValue::Table(_) => {
                let name = format!("{table_name}.tty");
                let t = self.table(v, field, None)?;
                let [rows, cols] = self.fields(t, &name, ["rows", "cols"], |_| None);
                let inner = |key| Field { key, table: &name };
                let mut size = DEFAULT_TTY;
                if let Some((_, v)) = rows {
                    size.0 = self.int_in(v, inner("rows"), 2, 500)? as u16;
                }
                if let Some((_, v)) = cols {
                    size.1 = self.int_in(v, inner("cols"), 10, 1000)? as u16;
                }
                Some(size)
            }
            _ => {
                self.type_error(v, field, "true, false or { rows = 40, cols = 120 }", None);
                None
            }
        }
    }
}
