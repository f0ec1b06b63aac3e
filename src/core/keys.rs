//! Key names for `[console] keys`: parsed and checked here (pure, no
//! terminal crate), turned into terminal key codes by the console.

/// Console actions whose keys can be rebound, with the config name.
pub const ACTIONS: [&str; 30] = [
    "detach",
    "shutdown",
    "focus_next",
    "focus_prev",
    "up",
    "down",
    "page_up",
    "page_down",
    "top",
    "bottom",
    "enter",
    "back",
    "expand",
    "scale_up",
    "scale_down",
    "restart",
    "start_stop",
    "backup",
    "ack",
    "note",
    "advance",
    "filter",
    "palette",
    "help",
    "sort",
    "span",
    "prev_match",
    "log_filter",
    "wrap",
    "submit_task",
];

/// A key: a printable character or a named key, with modifiers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeySpec {
    /// A single character, or one of [`NAMED`].
    pub key: String,
    pub ctrl: bool,
    pub alt: bool,
}

/// Named keys.
pub const NAMED: [&str; 15] = [
    "enter",
    "esc",
    "tab",
    "backtab",
    "backspace",
    "space",
    "up",
    "down",
    "left",
    "right",
    "pageup",
    "pagedown",
    "home",
    "end",
    "delete",
];

/// Parses `q`, `Q`, `+`, `ctrl-x`, `alt-j`, `enter`, `pgup`, `f5`…
pub fn parse_key(s: &str) -> Result<KeySpec, String> {
    let mut ctrl = false;
    let mut alt = false;
    let mut rest = s;
    loop {
        let lower = rest.to_ascii_lowercase();
        if let Some(r) = lower
            .strip_prefix("ctrl-")
            .or_else(|| lower.strip_prefix("c-"))
        {
            ctrl = true;
            rest = &rest[rest.len() - r.len()..];
        } else if let Some(r) = lower
            .strip_prefix("alt-")
            .or_else(|| lower.strip_prefix("m-"))
        {
            alt = true;
            rest = &rest[rest.len() - r.len()..];
        } else {
            break;
        }
    }
    let mut chars = rest.chars();
    let key = match (chars.next(), chars.next()) {
        (Some(c), None) if !c.is_control() => c.to_string(),
        _ => {
            let lower = rest.to_ascii_lowercase();
            let canon = match lower.as_str() {
                "return" => "enter",
                "escape" => "esc",
                "pgup" => "pageup",
                "pgdn" => "pagedown",
                "del" => "delete",
                "shift-tab" => "backtab",
                other => other,
            };
            if NAMED.contains(&canon) {
                canon.to_string()
            } else if let Some(n) = canon.strip_prefix('f')
                && n.parse::<u8>().is_ok_and(|n| (1..=12).contains(&n))
            {
                canon.to_string()
            } else {
                return Err(format!(
                    "`{s}` is not a key: use a character (`q`, `+`), a name ({}, f1-f12), optionally after ctrl- or alt-",
                    NAMED.join(", ")
                ));
            }
        }
    };
    Ok(KeySpec { key, ctrl, alt })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse() {
        assert_eq!(
            parse_key("q"),
            Ok(KeySpec {
                key: "q".into(),
                ctrl: false,
                alt: false
            })
        );
        assert_eq!(
            parse_key("Ctrl-X").map(|k| (k.key, k.ctrl)),
            Ok(("X".into(), true))
        );
        assert_eq!(parse_key("PgUp").map(|k| k.key), Ok("pageup".into()));
        assert_eq!(parse_key("f5").map(|k| k.key), Ok("f5".into()));
        assert_eq!(parse_key("shift-tab").map(|k| k.key), Ok("backtab".into()));
        assert!(parse_key("hyper-q").is_err());
        assert!(parse_key("f13").is_err());
        assert!(parse_key("").is_err());
    }
}
