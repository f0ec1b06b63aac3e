//! The module boundaries of DESIGN.md §3, checked on the source text.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("readable src dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Lines of code in `module` (under src/) that mention any of `needles`,
/// ignoring comments.
fn offending(module: &str, needles: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(module);
    let mut files = Vec::new();
    if root.is_dir() {
        rust_files(&root, &mut files);
    } else {
        let f = root.with_extension("rs");
        if f.exists() {
            files.push(f);
        }
    }
    let mut hits = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("readable source");
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for n in needles {
                if code.contains(n) {
                    hits.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
                }
            }
        }
    }
    hits
}

#[test]
fn headless_layers_never_use_the_console_crates() {
    for module in ["core", "proto", "daemon", "client", "config"] {
        let hits = offending(
            module,
            &["ratatui", "crossterm", "tui_logger", "crate::tui"],
        );
        assert!(
            hits.is_empty(),
            "{module} uses console crates:\n{}",
            hits.join("\n")
        );
    }
}

#[test]
fn core_is_pure_no_io_no_async_no_clock() {
    let hits = offending(
        "core",
        &[
            "tokio",
            "std::fs",
            "std::net",
            "std::process",
            "SystemTime",
            "Instant::now",
            "crate::daemon",
            "crate::proto",
            "crate::client",
            "crate::config",
            "std::thread",
        ],
    );
    assert!(hits.is_empty(), "core must stay pure:\n{}", hits.join("\n"));
}

#[test]
fn proto_depends_only_on_core_and_config() {
    let hits = offending("proto", &["crate::daemon", "crate::client", "tokio::"]);
    assert!(
        hits.is_empty(),
        "proto reaches too far:\n{}",
        hits.join("\n")
    );
}

#[test]
fn unsafe_code_lives_in_one_module() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let with_unsafe: Vec<String> = files
        .iter()
        .filter(|f| {
            std::fs::read_to_string(f)
                .expect("readable")
                .lines()
                .any(|l| l.split("//").next().unwrap_or("").contains("unsafe {"))
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        with_unsafe.iter().all(|f| f.ends_with("src/daemon/sys.rs")),
        "unsafe outside src/daemon/sys.rs: {with_unsafe:?}"
    );
}

type Graph = std::collections::BTreeMap<String, std::collections::BTreeSet<String>>;

/// The modules in `dir` (a file, or a folder with a mod.rs) and, for each,
/// the modules its code names after `prefix` (`crate::` for the top level,
/// `crate::daemon::` inside the daemon).
fn module_graph_in(dir: &Path, prefix: &str) -> Graph {
    let mut graph = Graph::new();
    for e in std::fs::read_dir(dir).expect("readable dir").flatten() {
        let p = e.path();
        let name = p
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        if ["lib", "main", "mod"].contains(&name.as_str())
            || (p.is_dir() && !p.join("mod.rs").exists())
        {
            // Not a module of its own (insta snapshots, say).
            continue;
        }
        let mut files = Vec::new();
        if p.is_dir() {
            rust_files(&p, &mut files);
        } else {
            files.push(p.clone());
        }
        let deps = graph.entry(name.clone()).or_default();
        for f in files {
            for (dep, _) in refs(&f, prefix) {
                if dep != name {
                    deps.insert(dep);
                }
            }
        }
    }
    graph
}

/// The top-level modules under src/ and the modules of ours each names.
fn module_graph() -> Graph {
    module_graph_in(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        "crate::",
    )
}

/// `crate::X` references in a file's code (not comments), with the line.
fn crate_refs(f: &Path) -> Vec<(String, String)> {
    refs(f, "crate::")
}

/// The names after `prefix` in a file's code (not comments), with the line.
fn refs(f: &Path, prefix: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(f).expect("readable source");
    let mut out = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find(prefix) {
            rest = &rest[i + prefix.len()..];
            let m: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !m.is_empty() {
                out.push((m, line.trim().to_string()));
            }
        }
    }
    out
}

/// DESIGN.md §3: who may depend on whom.
const ALLOWED: &[(&str, &[&str])] = &[
    ("core", &[]),
    ("clock", &[]),
    ("demo", &[]),
    ("proto", &["core"]),
    ("config", &["core"]),
    ("paths", &["core", "config"]),
    ("daemon", &["core", "proto", "config", "paths", "clock"]),
    ("client", &["core", "proto", "config", "paths", "clock"]),
    ("tui", &["client", "proto", "core", "clock"]),
    (
        "cli",
        &[
            "client", "proto", "config", "core", "paths", "clock", "demo", "tui", "daemon",
        ],
    ),
];

#[test]
fn every_module_depends_only_on_the_layers_below_it() {
    let graph = module_graph();
    let mut wrong = Vec::new();
    for (module, deps) in &graph {
        let Some((_, allowed)) = ALLOWED.iter().find(|(m, _)| m == module) else {
            wrong.push(format!(
                "src/{module} has no place in the dependency rule (add it to ALLOWED and DESIGN.md §3)"
            ));
            continue;
        };
        for d in deps {
            if !allowed.contains(&d.as_str()) {
                wrong.push(format!("{module} -> {d}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "dependency rule broken:\n{}",
        wrong.join("\n")
    );
}

/// The CLI reaches into the daemon only to run it (`daemon`, `up`) and for
/// the offline readers of the data dir that have no other home yet (the
/// audit files, backup repositories, the backup settings).
#[test]
fn the_cli_uses_the_daemon_only_at_its_entry_points() {
    let cli = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cli");
    let mut files = Vec::new();
    rust_files(&cli, &mut files);
    let entry = ["daemon.rs", "session.rs"];
    let offline = [
        "crate::daemon::audit::read",
        "crate::daemon::backup::",
        "crate::daemon::damage::",
        "crate::daemon::recovery::Settings",
        "crate::daemon::observe::incident_status",
        "crate::daemon::doctor::examine",
    ];
    let mut wrong = Vec::new();
    for f in files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if entry.contains(&name) {
            continue;
        }
        for (m, line) in crate_refs(&f) {
            if m == "daemon" && !offline.iter().any(|o| line.contains(o)) {
                wrong.push(format!("{}: {line}", f.display()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the CLI reaches into the daemon:\n{}",
        wrong.join("\n")
    );
}

/// Depth-first search for a cycle; returns it if there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut cycle = path[i..].to_vec();
            cycle.push(n.to_string());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for d in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(d, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = std::collections::BTreeSet::new();
    for n in graph.keys() {
        if let Some(c) = visit(n, graph, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn no_cycle_between_top_level_modules() {
    let graph = module_graph();
    assert!(graph.contains_key("daemon") && graph.contains_key("cli"));
    if let Some(c) = find_cycle(&graph) {
        panic!("module cycle: {}", c.join(" -> "));
    }
}

/// Inside the daemon too: the router calls the supervisor and the
/// recovery workflow, the workflow calls the supervisor, never back.
#[test]
fn no_cycle_between_daemon_modules() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/daemon");
    let graph = module_graph_in(&dir, "crate::daemon::");
    assert!(graph.contains_key("supervisor") && graph.contains_key("router"));
    if let Some(c) = find_cycle(&graph) {
        panic!("daemon module cycle: {}", c.join(" -> "));
    }
}

/// Functions allowed over the limit, and why; nothing may join this list,
/// and one that gets short must leave it.
const LONG_FUNCTIONS: &[&str] = &[
    // The default key bindings: a table.
    "src/tui/action.rs:keymap",
    // Test data: a fleet status with every state.
    "src/tui/fixture.rs:status",
];

/// No source file over 800 lines, no function over 120 (but the listed).
#[test]
fn files_and_functions_stay_small() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut wrong = Vec::new();
    let mut long = Vec::new();
    for f in files {
        let rel = f.strip_prefix(root).unwrap_or(&f).display().to_string();
        let text = std::fs::read_to_string(&f).expect("readable source");
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() > 800 {
            wrong.push(format!("{rel}: {} lines", lines.len()));
        }
        for (i, l) in lines.iter().enumerate() {
            let t = l.trim_start();
            let indent = &l[..l.len() - t.len()];
            let t = t
                .trim_start_matches("pub(super) ")
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub ")
                .trim_start_matches("async ")
                .trim_start_matches("const ");
            let Some(rest) = t.strip_prefix("fn ") else {
                continue;
            };
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let close = format!("{indent}}}");
            let Some(len) = lines[i + 1..].iter().position(|x| *x == close) else {
                continue;
            };
            let id = format!("{rel}:{name}");
            if len + 2 > 120 {
                if !LONG_FUNCTIONS.contains(&id.as_str()) {
                    wrong.push(format!("{id}: {} lines", len + 2));
                }
                long.push(id);
            }
        }
    }
    for listed in LONG_FUNCTIONS {
        if !long.iter().any(|l| l == listed) {
            wrong.push(format!("{listed} is short now: take it off LONG_FUNCTIONS"));
        }
    }
    assert!(wrong.is_empty(), "too long:\n{}", wrong.join("\n"));
}
