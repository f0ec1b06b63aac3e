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
