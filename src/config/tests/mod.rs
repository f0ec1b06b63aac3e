//! Loader tests: one case per kind of error with its exact location, a file
//! full of errors, and files that load.

mod cases;
mod files;
mod tasks;
use cases::*;
use files::*;

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

const GIB: u64 = 1 << 30;
const HOST: HostFacts = HostFacts {
    cpus: 8.0,
    memory: 16 * GIB,
};
const FILE: &str = "/etc/fleet/autonomos.toml";

fn load(text: &str) -> Result<Config, ConfigErrors> {
    load_str(text, Some(Path::new(FILE)), &HOST)
}

fn errors(text: &str) -> Vec<Diagnostic> {
    match load(text) {
        Ok(cfg) => panic!("expected errors, loaded {cfg:#?}\n--- input ---\n{text}"),
        Err(e) => e.diagnostics,
    }
}

fn ok(text: &str) -> Config {
    match load(text) {
        Ok(cfg) => cfg,
        Err(e) => panic!("expected success:\n{e}\n--- input ---\n{text}"),
    }
}

/// One kind of error: the input, where the one diagnostic must point, and
/// text its message (and help) must contain.
struct Case {
    name: &'static str,
    text: &'static str,
    at: (usize, usize),
    message: &'static str,
    help: Option<&'static str>,
}

#[test]
fn every_error_kind_is_located() {
    let mut failures = Vec::new();
    for c in CASES {
        let found = errors(c.text);
        let rendered: Vec<String> = found.iter().map(ToString::to_string).collect();
        let report = || format!("case `{}`:\n{}\n", c.name, rendered.join("\n\n"));
        if found.len() != 1 {
            failures.push(format!("expected exactly one diagnostic; {}", report()));
            continue;
        }
        let d = &found[0];
        if (d.line, d.column) != c.at {
            failures.push(format!("expected {}:{}; {}", c.at.0, c.at.1, report()));
        }
        if !d.message.contains(c.message) {
            failures.push(format!(
                "expected message with {:?}; {}",
                c.message,
                report()
            ));
        }
        if let Some(help) = c.help
            && !d.help.as_deref().is_some_and(|h| h.contains(help))
        {
            failures.push(format!("expected help with {help:?}; {}", report()));
        }
        if d.file != FILE {
            failures.push(format!("expected file {FILE}; {}", report()));
        }
        if d.line_text.is_empty() && !c.text.is_empty() {
            failures.push(format!("no source line; {}", report()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn snippet_is_the_offending_text() {
    let d = &errors("[agents.a]\ncommand = \"x\"\nreplicas = 1000000000 # oops\n")[0];
    assert_eq!(d.snippet, "1000000000");
    assert_eq!(d.line_text, "replicas = 1000000000 # oops");
    let d = &errors("[agents.a]\ncommand = \"x\"\nstop_timout = \"5s\"\n")[0];
    assert_eq!(d.snippet, "stop_timout");
    let d = &errors("[agents.a]\nreplicas = 1\n")[0];
    assert_eq!(d.snippet, "[agents.a]");
    let d = &errors("[agents.a]\ncommand = \"x\"\n[agents.a]\n")[0];
    assert_eq!(d.snippet, "[agents.a]");
}

const MANY: &str = r#"# A config with one mistake of each sort, spread over the file.
[pool]
cpu = 4
memory = "8GiB"
max_agent = 10

[logs]
max_files = 1000

[agents.planner]
command = ["python3", "-m", "planner"]
replicas = -2

[agents.Researcher]
command = "python3 -m researcher"
stop_timout = "5s"
env = { TEMPERATURE = 0.2 }
depends_on = ["plannr", "critic"]

[agents.critic]
depends_on = ["critic"]
restart = "sometimes"

[agents.planner]
cwd = "x"

[alerts]
email = "ops@example.com"
"#;

#[test]
fn all_errors_in_one_run_in_source_order() {
    let found = errors(MANY);
    let got: Vec<(usize, usize, &str)> = found
        .iter()
        .map(|d| (d.line, d.column, d.message.as_str()))
        .collect();
    let expected: &[(usize, usize, &str)] = &[
        (5, 1, "unknown key `max_agent` in [pool]"),
        (
            8,
            13,
            "`max_files` in [logs] must be between 0 and 100, found 1000",
        ),
        (
            12,
            12,
            "`replicas` in [agents.planner] cannot be negative, found -2",
        ),
        (14, 9, "invalid agent name `Researcher`"),
        (16, 1, "unknown key `stop_timout` in [agents.Researcher]"),
        (
            17,
            23,
            "`env.TEMPERATURE` in [agents.Researcher] must be a string",
        ),
        (
            18,
            15,
            "agent `Researcher` depends on unknown agent `plannr`",
        ),
        (20, 1, "agent `critic` has no `command`"),
        (21, 15, "agent `critic` depends on itself"),
        (
            22,
            11,
            "invalid value `sometimes` for `restart` in [agents.critic]",
        ),
        (24, 1, "duplicate table `[agents.planner]`"),
        (27, 1, "`alerts` must be an array of tables ([[alerts]])"),
    ];
    let shown = found
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n\n");
    assert_eq!(got.len(), expected.len(), "{shown}");
    for (g, e) in got.iter().zip(expected) {
        assert_eq!((g.0, g.1), (e.0, e.1), "{shown}");
        assert!(
            g.2.contains(e.2),
            "{:?} does not contain {:?}\n{shown}",
            g.2,
            e.2
        );
    }
    let mut sorted = got.clone();
    sorted.sort_by_key(|&(l, c, _)| (l, c));
    assert_eq!(got, sorted);
    let text = ConfigErrors {
        diagnostics: found.clone(),
    }
    .to_string();
    assert!(text.contains(&format!("--> {FILE}:16:1")), "{text}");
    assert!(text.contains("did you mean `stop_timeout`?"), "{text}");
    assert_eq!(text.matches("\n\nerror: ").count(), 11, "{text}");
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    /// Every diagnostic points inside the text.
    fn located_inside(text: &str, found: &[Diagnostic]) -> Result<(), TestCaseError> {
        let lines = text.split('\n').count();
        for d in found {
            prop_assert!(
                d.line >= 1 && d.line <= lines,
                "line {} of {lines}: {d}",
                d.line
            );
            prop_assert!(d.column >= 1, "{d}");
            prop_assert!(d.column <= d.line_text.chars().count() + 1, "{d}");
            prop_assert!(!d.message.is_empty());
            let _ = d.to_string();
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
            if let Err(e) = load(&text) {
                located_inside(&text, &e.diagnostics)?;
            }
        }

        #[test]
        fn mangled_config_never_panics(
            at in 0..FULL.len(),
            cut in 0usize..12,
            insert in "[\\[\\]={}\",.'a-z0-9_ \n-]{0,10}",
        ) {
            let end = (at + cut).min(FULL.len());
            let text = format!("{}{insert}{}", &FULL[..at], &FULL[end..]);
            if let Err(e) = load(&text) {
                located_inside(&text, &e.diagnostics)?;
            }
        }
    }
}
