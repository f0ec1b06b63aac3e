//! Signal names ⇄ numbers, for `stop_signal` and for display.

/// The signals a config may name, with their numbers on this platform.
const SIGNALS: &[(&str, i32)] = &[
    ("SIGHUP", libc::SIGHUP),
    ("SIGINT", libc::SIGINT),
    ("SIGQUIT", libc::SIGQUIT),
    ("SIGILL", libc::SIGILL),
    ("SIGTRAP", libc::SIGTRAP),
    ("SIGABRT", libc::SIGABRT),
    ("SIGBUS", libc::SIGBUS),
    ("SIGFPE", libc::SIGFPE),
    ("SIGKILL", libc::SIGKILL),
    ("SIGUSR1", libc::SIGUSR1),
    ("SIGSEGV", libc::SIGSEGV),
    ("SIGUSR2", libc::SIGUSR2),
    ("SIGPIPE", libc::SIGPIPE),
    ("SIGALRM", libc::SIGALRM),
    ("SIGTERM", libc::SIGTERM),
    ("SIGCHLD", libc::SIGCHLD),
    ("SIGCONT", libc::SIGCONT),
    ("SIGSTOP", libc::SIGSTOP),
    ("SIGTSTP", libc::SIGTSTP),
    ("SIGTTIN", libc::SIGTTIN),
    ("SIGTTOU", libc::SIGTTOU),
    ("SIGURG", libc::SIGURG),
    ("SIGXCPU", libc::SIGXCPU),
    ("SIGXFSZ", libc::SIGXFSZ),
    ("SIGVTALRM", libc::SIGVTALRM),
    ("SIGPROF", libc::SIGPROF),
    ("SIGWINCH", libc::SIGWINCH),
    ("SIGIO", libc::SIGIO),
    ("SIGSYS", libc::SIGSYS),
];

/// The accepted signal names, `SIG` prefix included, in number order.
pub(crate) fn signal_names() -> impl Iterator<Item = &'static str> {
    SIGNALS.iter().map(|&(name, _)| name)
}

/// Parses a signal name: `"SIGTERM"` or `"TERM"`, any case, surrounding
/// blanks ignored (also `"SIGIOT"`/`"SIGPOLL"`/`"SIGCLD"` as aliases where
/// the platform has them). A decimal number is accepted when it is the number of one
/// of the named signals. Anything else is an error listing the names.
pub fn parse_signal(s: &str) -> Result<i32, String> {
    let text = s.trim();
    if let Ok(n) = text.parse::<i32>() {
        if SIGNALS.iter().any(|&(_, v)| v == n) {
            return Ok(n);
        }
        return Err(format!(
            "{n} is not the number of a known signal; use a name such as \"SIGTERM\""
        ));
    }
    let upper = text.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    let aliased = match bare {
        "IOT" => "ABRT",
        "POLL" => "IO",
        "CLD" => "CHLD",
        other => other,
    };
    SIGNALS
        .iter()
        .find(|&&(name, _)| name.get(3..) == Some(aliased))
        .map(|&(_, n)| n)
        .ok_or_else(|| {
            let names: Vec<&str> = signal_names().collect();
            format!("unknown signal `{s}`; known signals: {}", names.join(", "))
        })
}

/// The name of signal `n` (`"SIGTERM"`), or `"SIG?"` for a number that is
/// not one of the named signals.
pub fn signal_name(n: i32) -> &'static str {
    SIGNALS
        .iter()
        .find(|&&(_, v)| v == n)
        .map_or("SIG?", |&(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names() {
        assert_eq!(parse_signal("SIGTERM"), Ok(libc::SIGTERM));
        assert_eq!(parse_signal("TERM"), Ok(libc::SIGTERM));
        assert_eq!(parse_signal("sigterm"), Ok(libc::SIGTERM));
        assert_eq!(parse_signal(" int "), Ok(libc::SIGINT));
        assert_eq!(parse_signal("HUP"), Ok(libc::SIGHUP));
        assert_eq!(parse_signal("QUIT"), Ok(libc::SIGQUIT));
        assert_eq!(parse_signal("USR1"), Ok(libc::SIGUSR1));
        assert_eq!(parse_signal("SIGUSR2"), Ok(libc::SIGUSR2));
        assert_eq!(parse_signal("KILL"), Ok(libc::SIGKILL));
        assert_eq!(parse_signal("winch"), Ok(libc::SIGWINCH));
        assert_eq!(parse_signal("IOT"), Ok(libc::SIGABRT));
        assert_eq!(parse_signal("15"), Ok(libc::SIGTERM));
    }

    #[test]
    fn rejects_unknown() {
        let err = parse_signal("SIGTREM").expect_err("typo");
        assert!(err.contains("SIGTERM"), "{err}");
        assert!(parse_signal("").is_err());
        assert!(parse_signal("SIG").is_err());
        assert!(parse_signal("999").is_err());
        assert!(parse_signal("-15").is_err());
    }

    #[test]
    fn names_round_trip() {
        for name in signal_names() {
            assert_eq!(signal_name(parse_signal(name).expect(name)), name);
        }
        assert_eq!(signal_name(libc::SIGTERM), "SIGTERM");
        assert_eq!(signal_name(0), "SIG?");
    }
}
