//! Splitting a command string into argv the way a POSIX shell splits words,
//! without running a shell and without expanding anything.

/// A command string split into words, plus what a shell would have done
/// differently with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Split {
    pub words: Vec<String>,
    /// The first unquoted character that means something to a shell but is
    /// passed through literally here (`|`, `&`, `;`, `<`, `>`, `(`, `)`, `` ` ``,
    /// `$`, or `~` starting a word), with the word it is in.
    pub shell_syntax: Option<(char, String)>,
}

/// Splits `s` into words like a POSIX shell's tokenizer:
///
/// - blanks (space, tab, newline) separate words;
/// - `'…'` keeps everything literally up to the next `'`;
/// - `"…"` keeps everything literally except that a backslash escapes
///   `\`, `"`, `$`, `` ` `` and newline (a backslash-newline disappears);
///   before any other character the backslash is kept;
/// - outside quotes a backslash makes the next character literal
///   (backslash-newline disappears);
/// - quotes glue onto the surrounding word (`--name="a b"` is one word) and
///   `''` or `""` alone is an empty word.
///
/// Nothing is expanded: `$HOME`, `~`, `*` and `#` are ordinary characters,
/// and `|`, `;`, `&&`, `>` are not operators. An unterminated quote or a
/// trailing backslash is an error.
pub fn split_words(s: &str) -> Result<Vec<String>, String> {
    split_command(s).map(|split| split.words)
}

/// [`split_words`], also reporting shell syntax that will not act as such.
pub(crate) fn split_command(s: &str) -> Result<Split, String> {
    let mut words = Vec::new();
    let mut shell_syntax: Option<(char, usize)> = None;
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = s.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some((_, '\'')) => break,
                        Some((_, c)) => word.push(c),
                        None => {
                            return Err(format!(
                                "unterminated single quote (the `'` at offset {at} is never closed)"
                            ));
                        }
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, '\n')) => {}
                            Some((_, c @ ('\\' | '"' | '$' | '`'))) => word.push(c),
                            Some((_, c)) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => {
                                return Err(format!(
                                    "unterminated double quote (the `\"` at offset {at} is never closed)"
                                ));
                            }
                        },
                        Some((_, c)) => word.push(c),
                        None => {
                            return Err(format!(
                                "unterminated double quote (the `\"` at offset {at} is never closed)"
                            ));
                        }
                    }
                }
            }
            '\\' => match chars.next() {
                Some((_, '\n')) => {}
                Some((_, c)) => {
                    in_word = true;
                    word.push(c);
                }
                None => return Err("trailing backslash: it escapes nothing".to_owned()),
            },
            _ => {
                let special = matches!(c, '|' | '&' | ';' | '<' | '>' | '(' | ')' | '`' | '$')
                    || (c == '~' && !in_word);
                if special && shell_syntax.is_none() {
                    shell_syntax = Some((c, words.len()));
                }
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    let shell_syntax = shell_syntax.map(|(c, index)| {
        let word = words.get(index).cloned().unwrap_or_default();
        (c, word)
    });
    Ok(Split {
        words,
        shell_syntax,
    })
}

/// Quotes `word` for a POSIX shell only when needed, so a rendered argv can
/// be read (and pasted) unambiguously. Control characters are shown escaped.
pub(crate) fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '_' | '-' | '.' | '/' | ':' | '=' | '@' | '%' | '+' | ',')
        });
    if plain {
        return word.to_owned();
    }
    if word.chars().any(char::is_control) {
        // $'…' is not POSIX but every common shell reads it.
        let mut out = String::from("$'");
        for c in word.chars() {
            match c {
                '\'' => out.push_str("\\'"),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
                c => out.push(c),
            }
        }
        out.push('\'');
        return out;
    }
    format!("'{}'", word.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        split_words(s).expect(s)
    }

    #[test]
    fn splits_like_a_shell() {
        assert_eq!(w("python3 -m worker"), ["python3", "-m", "worker"]);
        assert_eq!(w("  a \t b\nc  "), ["a", "b", "c"]);
        assert_eq!(w("echo 'a b'  \"c d\""), ["echo", "a b", "c d"]);
        assert_eq!(w("--name=\"a b\"x"), ["--name=a bx"]);
        assert_eq!(w("'it'\\''s'"), ["it's"]);
        assert_eq!(w(r#""a \"q\" \\ \$x \n""#), [r#"a "q" \ $x \n"#]);
        assert_eq!(w(r"a\ b c\\d \'"), ["a b", r"c\d", "'"]);
        assert_eq!(w("'a\\b'"), ["a\\b"]);
        assert_eq!(w("a \"\" ''"), ["a", "", ""]);
        assert_eq!(w("a\\\nb"), ["ab"]);
        assert_eq!(w("\"a\\\nb\""), ["ab"]);
        assert_eq!(w("$HOME ~ *.txt #x"), ["$HOME", "~", "*.txt", "#x"]);
        assert_eq!(w(""), Vec::<String>::new());
        assert_eq!(w("   "), Vec::<String>::new());
    }

    #[test]
    fn split_errors() {
        assert!(
            split_words("echo 'abc")
                .expect_err("'")
                .contains("single quote")
        );
        assert!(
            split_words("echo \"abc")
                .expect_err("\"")
                .contains("double quote")
        );
        assert!(
            split_words("echo \"abc\\")
                .expect_err("\"")
                .contains("double quote")
        );
        assert!(
            split_words("echo abc\\")
                .expect_err("\\")
                .contains("backslash")
        );
    }

    #[test]
    fn notices_shell_syntax() {
        let s = split_command("python w.py > out.log").expect("split");
        assert_eq!(s.shell_syntax, Some(('>', ">".to_owned())));
        let s = split_command("run $HOME/x").expect("split");
        assert_eq!(s.shell_syntax, Some(('$', "$HOME/x".to_owned())));
        let s = split_command("run ~/x").expect("split");
        assert_eq!(s.shell_syntax, Some(('~', "~/x".to_owned())));
        for quiet in ["run a~b", "run '|' \"$x\" \\;", "python3 -m worker"] {
            assert_eq!(
                split_command(quiet).expect(quiet).shell_syntax,
                None,
                "{quiet}"
            );
        }
    }

    #[test]
    fn quoting_round_trips() {
        for word in ["plain", "a b", "it's", "", "$HOME", "x\ty"] {
            let quoted = shell_quote(word);
            if !quoted.starts_with("$'") {
                assert_eq!(w(&quoted), [word], "{quoted}");
            }
        }
        assert_eq!(shell_quote("python3"), "python3");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("\u{1b}[31m"), "$'\\u001b[31m'");
    }
}
