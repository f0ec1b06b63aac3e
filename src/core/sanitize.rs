//! Agent output is hostile: make a line safe to put on an operator's terminal.
//!
//! Removes every escape sequence (CSI, OSC such as clipboard writes and title
//! changes, DCS/APC/PM/SOS strings, two-byte ESC sequences) and every other
//! control character except tab, and decodes invalid UTF-8 lossily.

/// Returns `bytes` as text with all terminal control sequences removed.
pub fn sanitize_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates up to a final byte 0x40..=0x7e.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&c) {
                            break;
                        }
                    }
                }
                // String sequences end with BEL or ST (ESC \).
                Some(']' | 'P' | '_' | '^' | 'X') => skip_string(&mut chars),
                // Two-byte sequences (ESC c, ESC 7, ...) and charset selection (ESC ( B).
                Some('(' | ')' | '*' | '+' | '#' | '%') => {
                    chars.next();
                }
                Some(_) | None => {}
            },
            // C1 forms of CSI and the string introducers.
            '\u{9b}' => {
                for c in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&c) {
                        break;
                    }
                }
            }
            '\u{9d}' | '\u{90}' | '\u{9f}' | '\u{9e}' | '\u{98}' => skip_string(&mut chars),
            '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => return,
            '\u{1b}' => {
                if chars.peek() == Some(&'\\') {
                    chars.next();
                }
                return;
            }
            _ => {}
        }
    }
}

/// Text as shown to an operator: control characters escaped (`\n`,
/// `\u{1b}`), so a config value or path cannot act on the terminal.
pub fn escape_controls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Environment names whose values are never shown (`KEY`, `TOKEN`,
/// `SECRET`, `PASSWORD`, … anywhere in the name, any case).
pub fn is_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    [
        "KEY",
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "CREDENTIAL",
        "AUTH",
    ]
    .iter()
    .any(|w| upper.contains(w))
}

/// The value of an environment variable as shown: masked when its name
/// looks secret.
pub fn mask_secret(name: &str, value: &str) -> String {
    if is_secret(name) {
        "•••••".to_string()
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_for_display() {
        assert_eq!(escape_controls("a\nb\u{1b}[2Jc"), "a\\nb\\u{1b}[2Jc");
        assert_eq!(escape_controls("plain /path"), "plain /path");
    }

    #[test]
    fn strips_screen_clears_colors_titles_and_clipboard_writes() {
        let hostile = b"a\x1b[2J\x1b[31mred\x1b[0m\x1b]0;owned\x07b\x1b]52;c;ZXZpbA==\x1b\\c\x1bcd";
        assert_eq!(sanitize_line(hostile), "aredbcd");
    }

    #[test]
    fn keeps_tabs_and_unicode_drops_other_controls() {
        assert_eq!(sanitize_line("x\ty\r\u{8}é✓".as_bytes()), "x\tyé✓");
    }

    #[test]
    fn invalid_utf8_is_replaced_not_rejected() {
        assert_eq!(sanitize_line(b"ok\xff\xfe!"), "ok\u{fffd}\u{fffd}!");
    }

    #[test]
    fn unterminated_sequences_swallow_only_the_rest_of_the_line() {
        assert_eq!(sanitize_line(b"ok\x1b]0;title never ends"), "ok");
        assert_eq!(sanitize_line(b"ok\x1b[12"), "ok");
    }

    #[test]
    fn a_megabyte_line_is_handled() {
        let big = vec![b'x'; 1 << 20];
        assert_eq!(sanitize_line(&big).len(), 1 << 20);
    }
}
