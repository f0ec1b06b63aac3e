//! Themes: TOML files in `themes/` (dark, light, high-contrast are built in),
//! or a file of the user's. `NO_COLOR` turns every color off (emphasis stays).

use std::path::Path;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

use crate::core::lifecycle::State;

const BUILT_IN: [(&str, &str); 3] = [
    ("dark", include_str!("../../themes/dark.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    name: String,
    #[serde(default)]
    bold_states: bool,
    colors: Colors,
    states: States,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Colors {
    text: String,
    muted: String,
    accent: String,
    border: String,
    border_focus: String,
    selection_fg: String,
    selection_bg: String,
    ok: String,
    warn: String,
    bad: String,
    graph_cpu: String,
    graph_mem: String,
    graph_net: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct States {
    initialization: String,
    resource_allocation: String,
    context_preparation: String,
    active: String,
    monitoring: String,
    adaptation: String,
    task_completion: String,
    decommissioning: String,
    backoff: String,
    failed: String,
    stopped: String,
}

/// Resolved styles for the views.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    pub text: Style,
    pub muted: Style,
    pub accent: Style,
    pub border: Style,
    pub border_focus: Style,
    pub selection: Style,
    pub ok: Style,
    pub warn: Style,
    pub bad: Style,
    pub graph_cpu: Style,
    pub graph_mem: Style,
    pub graph_net: Style,
    states: [Style; 11],
}

/// A theme that could not be loaded, with its location.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ThemeError(pub String);

fn color(s: &str) -> Result<Color, String> {
    let lower = s.to_ascii_lowercase();
    if let Some(hex) = lower.strip_prefix('#')
        && hex.len() == 6
        && let Ok(v) = u32::from_str_radix(hex, 16)
    {
        return Ok(Color::Rgb((v >> 16) as u8, (v >> 8) as u8, v as u8));
    }
    Ok(match lower.as_str() {
        "reset" | "default" => Color::Reset,
        "black" => Color::Black,
        "red" => Color::Red,
        "green" => Color::Green,
        "yellow" => Color::Yellow,
        "blue" => Color::Blue,
        "magenta" => Color::Magenta,
        "cyan" => Color::Cyan,
        "gray" | "grey" => Color::Gray,
        "darkgray" | "darkgrey" => Color::DarkGray,
        "lightred" => Color::LightRed,
        "lightgreen" => Color::LightGreen,
        "lightyellow" => Color::LightYellow,
        "lightblue" => Color::LightBlue,
        "lightmagenta" => Color::LightMagenta,
        "lightcyan" => Color::LightCyan,
        "white" => Color::White,
        _ => {
            return Err(format!(
                "unknown color `{s}` (use a color name or \"#rrggbb\")"
            ));
        }
    })
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

impl Theme {
    /// Parses theme text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str, no_color: bool) -> Result<Theme, ThemeError> {
        let file: ThemeFile = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    let (l, c) = line_col(text, s.start);
                    format!("{origin}:{l}:{c}")
                })
                .unwrap_or_else(|| origin.to_string());
            ThemeError(format!("invalid theme {at}: {}", e.message()))
        })?;
        let mut errors = Vec::new();
        let mut style = |key: &str, s: &str| -> Style {
            if no_color {
                return Style::default();
            }
            match color(s) {
                Ok(c) => Style::default().fg(c),
                Err(e) => {
                    let at = text
                        .find(&format!("\"{s}\""))
                        .map(|o| {
                            let (l, c) = line_col(text, o);
                            format!("{origin}:{l}:{c}")
                        })
                        .unwrap_or_else(|| origin.to_string());
                    errors.push(format!("invalid theme {at}: `{key}`: {e}"));
                    Style::default()
                }
            }
        };
        let c = &file.colors;
        let selection = if no_color {
            Style::default().add_modifier(Modifier::REVERSED)
        } else {
            let fg = style("selection_fg", &c.selection_fg)
                .fg
                .unwrap_or(Color::Reset);
            let bg = style("selection_bg", &c.selection_bg)
                .fg
                .unwrap_or(Color::Reset);
            Style::default().fg(fg).bg(bg)
        };
        let s = &file.states;
        let bold = |st: Style| {
            if file.bold_states {
                st.add_modifier(Modifier::BOLD)
            } else {
                st
            }
        };
        let states = [
            bold(style("initialization", &s.initialization)),
            bold(style("resource_allocation", &s.resource_allocation)),
            bold(style("context_preparation", &s.context_preparation)),
            bold(style("active", &s.active)),
            bold(style("monitoring", &s.monitoring)),
            bold(style("adaptation", &s.adaptation)),
            bold(style("task_completion", &s.task_completion)),
            bold(style("decommissioning", &s.decommissioning)),
            bold(style("backoff", &s.backoff)),
            bold(style("failed", &s.failed)),
            bold(style("stopped", &s.stopped)),
        ];
        let theme = Theme {
            name: file.name.clone(),
            text: style("text", &c.text),
            muted: style("muted", &c.muted),
            accent: style("accent", &c.accent).add_modifier(Modifier::BOLD),
            border: style("border", &c.border),
            border_focus: style("border_focus", &c.border_focus).add_modifier(Modifier::BOLD),
            selection,
            ok: style("ok", &c.ok),
            warn: style("warn", &c.warn),
            bad: style("bad", &c.bad).add_modifier(Modifier::BOLD),
            graph_cpu: style("graph_cpu", &c.graph_cpu),
            graph_mem: style("graph_mem", &c.graph_mem),
            graph_net: style("graph_net", &c.graph_net),
            states,
        };
        if errors.is_empty() {
            Ok(theme)
        } else {
            Err(ThemeError(errors.join("\n")))
        }
    }

    /// A built-in theme by name, or a theme file by path.
    pub fn load(name_or_path: &str, no_color: bool) -> Result<Theme, ThemeError> {
        if let Some((_, text)) = BUILT_IN.iter().find(|(n, _)| *n == name_or_path) {
            return Theme::parse(text, &format!("themes/{name_or_path}.toml"), no_color);
        }
        let path = Path::new(name_or_path);
        let text = std::fs::read_to_string(path).map_err(|e| {
            ThemeError(format!(
                "cannot read theme {}: {e} (built-in themes: {})",
                path.display(),
                BUILT_IN.map(|(n, _)| n).join(", ")
            ))
        })?;
        Theme::parse(&text, &path.display().to_string(), no_color)
    }

    /// The theme to use when none is configured: `light` when the terminal
    /// says its background is light (`COLORFGBG`, set by rxvt, Konsole and
    /// others: `15;0` is light on dark, `0;15` dark on light), else `dark`.
    pub fn default_name() -> &'static str {
        name_for_colorfgbg(std::env::var("COLORFGBG").ok().as_deref())
    }

    /// The default dark theme (built in; cannot fail).
    pub fn default_dark(no_color: bool) -> Theme {
        // Invariant: the built-in file is checked by a unit test.
        Theme::load("dark", no_color).expect("the built-in dark theme parses")
    }

    pub fn state(&self, s: State) -> Style {
        let i = State::ALL.iter().position(|x| *x == s).unwrap_or(0);
        self.states[i]
    }
}

/// The built-in theme for a `COLORFGBG` value (its last field is the
/// background's ANSI color).
fn name_for_colorfgbg(v: Option<&str>) -> &'static str {
    let bg = v.and_then(|v| v.rsplit(';').next()?.trim().parse::<u8>().ok());
    match bg {
        Some(7) | Some(15) => "light",
        _ => "dark",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_themes_parse_with_and_without_color() {
        for (name, _) in BUILT_IN {
            let t = Theme::load(name, false).expect("parses");
            assert_eq!(t.name, name);
            let plain = Theme::load(name, true).expect("parses");
            assert_eq!(plain.ok, Style::default(), "NO_COLOR drops colors");
        }
    }

    /// Light backgrounds wash out light colors: the light theme uses none
    /// of the ANSI colors meant for dark backgrounds, and every theme's
    /// text is either the terminal's own foreground or not a light color.
    #[test]
    fn the_light_theme_avoids_colors_that_vanish_on_white() {
        let faint = [
            "gray",
            "white",
            "yellow",
            "lightyellow",
            "lightcyan",
            "lightgreen",
        ];
        let (_, text) = BUILT_IN.iter().find(|(n, _)| *n == "light").expect("light");
        // (White text on the blue selection is fine: it has its own background.)
        for line in text
            .lines()
            .filter(|l| l.contains('=') && !l.starts_with("name") && !l.starts_with("selection_fg"))
        {
            let value = line
                .split('=')
                .nth(1)
                .unwrap_or("")
                .trim()
                .trim_matches('"');
            let value = value.split('"').next().unwrap_or(value);
            assert!(!faint.contains(&value), "light theme: {line}");
        }
        for (name, text) in BUILT_IN {
            let t = text
                .lines()
                .find(|l| l.starts_with("text ="))
                .unwrap_or_default();
            assert!(
                !faint.iter().any(|f| t.contains(&format!("\"{f}\""))),
                "{name}: {t}"
            );
        }
    }

    #[test]
    fn colorfgbg_picks_the_light_theme_on_a_light_background() {
        assert_eq!(name_for_colorfgbg(Some("0;15")), "light");
        assert_eq!(name_for_colorfgbg(Some("0;default;7")), "light");
        assert_eq!(name_for_colorfgbg(Some("15;0")), "dark");
        assert_eq!(name_for_colorfgbg(None), "dark");
    }

    #[test]
    fn a_bad_theme_names_its_location() {
        let text = "name = \"x\"\n[colors]\ntext = \"gray\"\nbogus = 1\n";
        let e = Theme::parse(text, "my.toml", false)
            .expect_err("bad")
            .to_string();
        assert!(e.contains("my.toml:"), "{e}");
        let dark = BUILT_IN[0].1.replace("\"lightcyan\"", "\"ultraviolet\"");
        let e = Theme::parse(&dark, "t.toml", false)
            .expect_err("bad color")
            .to_string();
        assert!(e.contains("t.toml:") && e.contains("ultraviolet"), "{e}");
        let e = Theme::load("/nonexistent/theme.toml", false)
            .expect_err("missing")
            .to_string();
        assert!(
            e.contains("/nonexistent/theme.toml") && e.contains("built-in themes"),
            "{e}"
        );
    }
}
