//! Located config errors, rendered like rustc's.

use std::fmt;
use std::ops::Range;

/// One problem in a config file, pointing at the offending text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The config file as the user named it (`<config>` for text without a path).
    pub file: String,
    /// 1-based line; 0 when the problem is the file as a whole (unreadable).
    pub line: usize,
    /// 1-based column, counted in chars; 0 together with `line`.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// The offending source text (the key or value); may span lines.
    pub snippet: String,
    /// How to fix it, when there is something better to say than the message.
    pub help: Option<String>,
    /// The whole source line `line` (without its line break), for rendering.
    pub line_text: String,
}

/// Every problem found in one config file, in source order. `Display`
/// shows them all, rustc-style, separated by blank lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    pub diagnostics: Vec<Diagnostic>,
}

impl ConfigErrors {
    /// One diagnostic about the file as a whole (no line or column).
    pub(crate) fn whole_file(file: String, message: String) -> Self {
        Self {
            diagnostics: vec![Diagnostic {
                file,
                line: 0,
                column: 0,
                message,
                snippet: String::new(),
                help: None,
                line_text: String::new(),
            }],
        }
    }
}

use crate::core::sanitize::escape_controls as clean;

/// Like [`clean`] but one char for one char, so carets stay aligned.
fn clean_aligned(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' => ' ',
            c if c.is_control() => '?',
            c => c,
        })
        .collect()
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", clean(&self.message))?;
        if self.line == 0 {
            write!(f, " --> {}", clean(&self.file))?;
            if let Some(help) = &self.help {
                write!(f, "\n  = help: {}", clean(help))?;
            }
            return Ok(());
        }
        let number = self.line.to_string();
        let pad = " ".repeat(number.len());
        writeln!(
            f,
            "{pad}--> {}:{}:{}",
            clean(&self.file),
            self.line,
            self.column
        )?;
        writeln!(f, "{pad} |")?;
        let text = clean_aligned(&self.line_text);
        writeln!(f, "{number} | {}", text.trim_end())?;
        let before = self.column.saturating_sub(1);
        let room = text.chars().count().saturating_sub(before);
        let wanted = self.snippet.lines().next().map_or(0, |l| l.chars().count());
        let carets = wanted.min(room).max(1);
        write!(f, "{pad} | {}{}", " ".repeat(before), "^".repeat(carets))?;
        if let Some(help) = &self.help {
            write!(f, "\n{pad} = help: {}", clean(help))?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                f.write_str("\n\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Byte offsets → line, column and line text.
pub(crate) struct SourceMap<'t> {
    text: &'t str,
    line_starts: Vec<usize>,
}

impl<'t> SourceMap<'t> {
    pub(crate) fn new(text: &'t str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { text, line_starts }
    }

    /// The largest char boundary at or before `offset`.
    fn floor(&self, offset: usize) -> usize {
        let mut at = offset.min(self.text.len());
        while !self.text.is_char_boundary(at) {
            at -= 1;
        }
        at
    }

    /// 0-based line index of `offset`.
    pub(crate) fn line_index(&self, offset: usize) -> usize {
        let offset = self.floor(offset);
        self.line_starts
            .partition_point(|&start| start <= offset)
            .saturating_sub(1)
    }

    /// The text of 0-based line `index`, without its line break.
    pub(crate) fn line(&self, index: usize) -> &'t str {
        let start = self
            .line_starts
            .get(index)
            .copied()
            .unwrap_or(self.text.len());
        let end = self
            .line_starts
            .get(index + 1)
            .map_or(self.text.len(), |&next| next - 1);
        let line = self.text.get(start..end).unwrap_or("");
        line.strip_suffix('\r').unwrap_or(line)
    }

    /// The source text of `span`.
    pub(crate) fn slice(&self, span: &Range<usize>) -> &'t str {
        let start = self.floor(span.start);
        let end = self.floor(span.end.max(span.start));
        self.text.get(start..end).unwrap_or("")
    }

    /// Start byte of 0-based line `index`.
    pub(crate) fn line_start(&self, index: usize) -> usize {
        self.line_starts
            .get(index)
            .copied()
            .unwrap_or(self.text.len())
    }

    /// A diagnostic for `span`.
    pub(crate) fn diagnostic(
        &self,
        file: &str,
        span: &Range<usize>,
        message: String,
        help: Option<String>,
    ) -> Diagnostic {
        let start = self.floor(span.start);
        let index = self.line_index(start);
        let line_start = self.line_start(index);
        let column = self
            .text
            .get(line_start..start)
            .map_or(0, |s| s.chars().count())
            + 1;
        Diagnostic {
            file: file.to_owned(),
            line: index + 1,
            column,
            message,
            snippet: self.slice(span).to_owned(),
            help,
            line_text: self.line(index).to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_in_chars() {
        let text = "a = 1\r\nπé = \"x\"\n\nlast";
        let map = SourceMap::new(text);
        let at = text.find("\"x\"").expect("x");
        let d = map.diagnostic("f.toml", &(at..at + 3), "m".into(), None);
        assert_eq!((d.line, d.column), (2, 6));
        assert_eq!(d.snippet, "\"x\"");
        assert_eq!(d.line_text, "πé = \"x\"");
        let d = map.diagnostic("f.toml", &(0..1), "m".into(), None);
        assert_eq!((d.line, d.column, d.line_text.as_str()), (1, 1, "a = 1"));
        let end = text.len();
        let d = map.diagnostic("f.toml", &(end..end), "m".into(), None);
        assert_eq!((d.line, d.column, d.line_text.as_str()), (4, 5, "last"));
    }

    #[test]
    fn renders_like_rustc() {
        let mut text = String::new();
        for _ in 0..11 {
            text.push('\n');
        }
        text.push_str("stop_timout = \"5s\"\n");
        let map = SourceMap::new(&text);
        let d = map.diagnostic(
            "autonomos.toml",
            &(11..22),
            "unknown key `stop_timout` in [agents.researcher]".into(),
            Some("did you mean `stop_timeout`?".into()),
        );
        let expected = "\
error: unknown key `stop_timout` in [agents.researcher]
  --> autonomos.toml:12:1
   |
12 | stop_timout = \"5s\"
   | ^^^^^^^^^^^
   = help: did you mean `stop_timeout`?";
        assert_eq!(d.to_string(), expected);
        let errors = ConfigErrors {
            diagnostics: vec![d.clone(), d],
        };
        let shown = errors.to_string();
        assert!(
            shown.contains("`stop_timeout`?\n\nerror: unknown key"),
            "{shown}"
        );
        assert!(
            shown.ends_with("= help: did you mean `stop_timeout`?"),
            "{shown}"
        );
    }

    #[test]
    fn escapes_control_characters() {
        let text = "\"\u{1b}[31m\" = 1";
        let map = SourceMap::new(text);
        let d = map.diagnostic("f", &(0..8), "unknown key `\u{1b}[31m`".into(), None);
        let shown = d.to_string();
        assert!(!shown.contains('\u{1b}'), "{shown}");
        let whole = ConfigErrors::whole_file("missing.toml".into(), "cannot read".into());
        assert_eq!(whole.to_string(), "error: cannot read\n --> missing.toml");
    }
}
