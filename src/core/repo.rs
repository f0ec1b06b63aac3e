//! Where a backup repository lives: a local directory, or a directory on
//! another machine reached over SFTP through the system's `ssh`. Parsing
//! follows restic's spelling, so the same string opens the repository
//! with the `restic` CLI.

use std::path::PathBuf;
use std::time::Duration;

/// A backup repository's location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupRepo {
    Local(PathBuf),
    Sftp(SftpRepo),
}

/// `sftp:user@host:/path` or `sftp://user@host:port//path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftpRepo {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// As given: absolute, or relative to the remote login's home.
    pub path: String,
    /// `ssh -F FILE` (`[backup] ssh_config`); the user's own config else.
    pub ssh_config: Option<PathBuf>,
    /// How long one request (and the connection) may take.
    pub timeout: Duration,
}

/// The time limit of a remote request when the config sets none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// restic's other backends: named so the error can say they are not
/// supported rather than treating `s3:...` as a relative directory.
const OTHER_SCHEMES: [&str; 9] = [
    "s3", "rest", "rclone", "b2", "azure", "gs", "swift", "opendal", "http",
];

impl BackupRepo {
    /// Parses a repository string; relative local paths are joined to
    /// `base` (the config file's dir) when given.
    pub fn parse(text: &str, base: Option<&std::path::Path>) -> Result<BackupRepo, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("an empty repository".into());
        }
        if let Some(rest) = text.strip_prefix("sftp://") {
            return parse_url(rest).map(BackupRepo::Sftp);
        }
        if let Some(rest) = text.strip_prefix("sftp:") {
            return parse_short(rest).map(BackupRepo::Sftp);
        }
        if let Some((scheme, _)) = text.split_once(':')
            && OTHER_SCHEMES.contains(&scheme)
        {
            return Err(format!(
                "`{scheme}:` repositories are not supported: use a local directory or `sftp:user@host:/path`"
            ));
        }
        let p = PathBuf::from(text);
        Ok(BackupRepo::Local(match (base, p.is_relative()) {
            (Some(b), true) => b.join(p),
            _ => p,
        }))
    }

    /// The local directory, if it is one.
    pub fn local(&self) -> Option<&std::path::Path> {
        match self {
            BackupRepo::Local(p) => Some(p),
            BackupRepo::Sftp(_) => None,
        }
    }

    /// The machine it lives on, for messages (`local` for a directory).
    pub fn host(&self) -> &str {
        match self {
            BackupRepo::Local(_) => "local",
            BackupRepo::Sftp(s) => &s.host,
        }
    }
}

impl std::fmt::Display for BackupRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackupRepo::Local(p) => write!(f, "{}", p.display()),
            BackupRepo::Sftp(s) => write!(f, "{s}"),
        }
    }
}

impl std::fmt::Display for SftpRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let user = self
            .user
            .as_deref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            None => write!(f, "sftp:{user}{host}:{}", self.path),
            Some(port) => write!(f, "sftp://{user}{host}:{port}/{}", self.path),
        }
    }
}

impl serde::Serialize for BackupRepo {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `user@host:path` (restic's short form; no port). The host ends at the
/// first `:` outside `[...]`, so the path may hold `@` and `:`.
fn parse_short(rest: &str) -> Result<SftpRepo, String> {
    let mut depth = 0;
    let cut = rest.char_indices().find_map(|(i, c)| {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ':' if depth == 0 => return Some(i),
            _ => {}
        }
        None
    });
    let Some(cut) = cut else {
        if rest.contains('[') && !rest.contains(']') {
            return Err(format!("`sftp:{rest}`: `[` without `]` around the host"));
        }
        return Err(format!(
            "`sftp:{rest}` has no path: write sftp:user@host:/srv/backups (or sftp://user@host:2222//srv/backups for a port)"
        ));
    };
    let (authority, path) = (&rest[..cut], &rest[cut + 1..]);
    let (user, host) = split_user(authority)?;
    let host = match host.strip_prefix('[') {
        Some(h) => h
            .strip_suffix(']')
            .ok_or_else(|| format!("`sftp:{rest}`: `[` without `]` around the host"))?,
        None => host,
    };
    target(user, host, None, path)
}

/// `user@host:port/path` (restic's URL form: `//srv` is absolute).
fn parse_url(rest: &str) -> Result<SftpRepo, String> {
    let (authority, path) = rest.split_once('/').ok_or_else(|| {
        format!("`sftp://{rest}` has no path: write sftp://user@host:2222//srv/backups")
    })?;
    let (user, hostport) = split_user(authority)?;
    let (host, port) = if let Some(r) = hostport.strip_prefix('[') {
        let (h, tail) = r
            .split_once(']')
            .ok_or_else(|| format!("`{hostport}`: `[` without `]` around the host"))?;
        (h, tail.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let port = match port {
        None | Some("") => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("`{p}` is not a port (1-65535)"))?,
        ),
    };
    target(user, host, port, path)
}

fn split_user(s: &str) -> Result<(Option<&str>, &str), String> {
    match s.rsplit_once('@') {
        Some((u, rest)) if !u.is_empty() => Ok((Some(u), rest)),
        Some(_) => Err("an empty user before `@`".into()),
        None => Ok((None, s)),
    }
}

fn target(
    user: Option<&str>,
    host: &str,
    port: Option<u16>,
    path: &str,
) -> Result<SftpRepo, String> {
    if host.is_empty() {
        return Err("no host: write sftp:user@host:/srv/backups".into());
    }
    // Neither may pass as an option to ssh.
    for (what, v) in [("host", Some(host)), ("user", user)] {
        if let Some(v) = v
            && (v.starts_with('-') || v.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(format!(
                "`{v}` is not a valid {what} (no leading `-`, spaces or control characters)"
            ));
        }
    }
    if path.is_empty() || path.chars().any(|c| c.is_control()) {
        return Err(format!(
            "no usable path on {host}: write sftp:user@{host}:/srv/backups"
        ));
    }
    Ok(SftpRepo {
        user: user.map(str::to_owned),
        host: host.to_owned(),
        port,
        path: path.to_owned(),
        ssh_config: None,
        timeout: DEFAULT_TIMEOUT,
    })
}

impl SftpRepo {
    /// The command that opens the SFTP channel: the system's ssh, never
    /// prompting (the daemon has no terminal), giving up on a dead host
    /// within the time limit.
    pub fn ssh_argv(&self) -> Vec<String> {
        let secs = self.timeout.as_secs().max(1);
        let mut argv = vec!["ssh".to_string()];
        if let Some(cfg) = &self.ssh_config {
            argv.push("-F".into());
            argv.push(cfg.display().to_string());
        }
        for opt in [
            "BatchMode=yes".to_string(),
            format!("ConnectTimeout={secs}"),
            "ServerAliveInterval=15".to_string(),
            format!("ServerAliveCountMax={}", (secs / 15).max(2)),
        ] {
            argv.push("-o".into());
            argv.push(opt);
        }
        if let Some(p) = self.port {
            argv.push("-p".into());
            argv.push(p.to_string());
        }
        if let Some(u) = &self.user {
            argv.push("-l".into());
            argv.push(u.clone());
        }
        argv.push("-s".into());
        argv.push("--".into());
        argv.push(self.host.clone());
        argv.push("sftp".into());
        argv
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sftp(s: &str) -> SftpRepo {
        match BackupRepo::parse(s, None).expect(s) {
            BackupRepo::Sftp(t) => t,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn restic_spellings() {
        let t = sftp("sftp:backup@vault.example:/srv/autonomos");
        assert_eq!(t.user.as_deref(), Some("backup"));
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("vault.example", None, "/srv/autonomos")
        );
        let t = sftp("sftp:vault:repos/a");
        assert_eq!((t.user, t.path.as_str()), (None, "repos/a"));
        let t = sftp("sftp://me@127.0.0.1:2222//srv/x");
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("127.0.0.1", Some(2222), "/srv/x")
        );
        let t = sftp("sftp://me@[::1]:2222/rel");
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("::1", Some(2222), "rel")
        );
        let t = sftp("sftp:[::1]:/srv");
        assert_eq!((t.host.as_str(), t.path.as_str()), ("::1", "/srv"));
        let t = sftp("sftp:bk@h:/srv/a@b:c");
        assert_eq!(
            (t.user.as_deref(), t.host.as_str(), t.path.as_str()),
            (Some("bk"), "h", "/srv/a@b:c")
        );
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "sftp:backup@vault:/srv/a",
            "sftp:vault:rel",
            "sftp://me@127.0.0.1:2222//srv/x",
            "sftp://[::1]:22/rel",
        ] {
            let r = BackupRepo::parse(s, None).expect("parses");
            assert_eq!(r.to_string(), s);
            assert_eq!(BackupRepo::parse(&r.to_string(), None).expect("parses"), r);
        }
    }

    #[test]
    fn local_paths_join_the_base() {
        let base = std::path::Path::new("/etc/fleet");
        assert_eq!(
            BackupRepo::parse("mirror", Some(base)).expect("parses"),
            BackupRepo::Local(PathBuf::from("/etc/fleet/mirror"))
        );
        assert_eq!(
            BackupRepo::parse("/b", Some(base)).expect("parses").local(),
            Some(std::path::Path::new("/b"))
        );
    }

    #[test]
    fn refuses_what_ssh_would_misread() {
        for (s, want) in [
            ("sftp:-oProxyCommand=x:/p", "not a valid host"),
            ("sftp:-u@h:/p", "not a valid user"),
            ("sftp:h", "has no path"),
            ("sftp:h:", "no usable path"),
            ("sftp://h:99999//p", "not a port"),
            ("sftp://h", "has no path"),
            ("sftp:@h:/p", "empty user"),
            ("s3:bucket/x", "not supported"),
            ("sftp:[::1/p", "without `]`"),
        ] {
            let e = BackupRepo::parse(s, None).expect_err(s);
            assert!(e.contains(want), "{s}: {e}");
        }
    }

    #[test]
    fn ssh_never_prompts_and_ends_options_before_the_host() {
        let mut t = sftp("sftp://bk@h:2200//x");
        t.ssh_config = Some(PathBuf::from("/etc/autonomos/ssh_config"));
        t.timeout = Duration::from_secs(30);
        let argv = t.ssh_argv();
        let s = argv.join(" ");
        assert!(
            s.starts_with("ssh -F /etc/autonomos/ssh_config -o BatchMode=yes -o ConnectTimeout=30"),
            "{s}"
        );
        assert!(s.ends_with("-p 2200 -l bk -s -- h sftp"), "{s}");
    }
}
