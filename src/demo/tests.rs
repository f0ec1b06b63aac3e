//! The demo agents' behaviour, line formats and notes.

use super::*;
use rand::SeedableRng;
use rand::rngs::SmallRng;

fn assert_one_line(s: &str) {
    assert!(!s.trim().is_empty(), "empty line: {s:?}");
    assert!(
        !s.contains('\n') && !s.contains('\r'),
        "not one line: {s:?}"
    );
}

#[test]
fn generators_make_single_nonempty_lines() {
    let mut rng = SmallRng::seed_from_u64(7);
    let d = Duration::from_millis(1234);
    for i in 0..500u64 {
        assert_one_line(&plan_step_line(&mut rng, "T-1234", 2, 5));
        assert_one_line(&llm_line("demo-7b", 1000, 200, d));
        let source = pick(&mut rng, SOURCES);
        assert_one_line(&fetch_ok_line(&mut rng, source, d));
        assert_one_line(&summary_line(&mut rng, "T-1234.1", 3));
        let file = pick(&mut rng, FILES);
        assert_one_line(&edit_line(&mut rng, file));
        assert_one_line(&test_result_line("cargo test", 10, 1, d));
        assert_one_line(&test_result_line("cargo test", 10, 0, d));
        // Never shaped like a test runner's closing `N passed, N failed`.
        assert!(!test_result_line("cargo test", 10, 1, d).contains(" passed, "));
        assert!(!test_result_line("cargo test", 10, 0, d).contains(" passed, "));
        let tool = pick(&mut rng, TOOLS);
        assert_one_line(&tool_call_line(&mut rng, i, tool, d));
        assert_one_line(&index_batch_line(&mut rng, i, 10 * MIB));
        let id = task_id(&mut rng);
        assert!(id.starts_with("T-") && id.len() == 6, "{id}");
    }
}

#[test]
fn vocabularies_are_single_nonempty_lines() {
    for list in [
        GOALS,
        RESEARCH_TOPICS,
        CODE_CHANGES,
        SOURCES,
        SOURCE_FAILURES,
        FINDINGS,
        FILES,
        TEST_COMMANDS,
        TEST_NAMES,
        TOOLS,
    ] {
        assert!(!list.is_empty());
        for s in list {
            assert_one_line(s);
        }
    }
    for tool in TOOLS {
        assert!(!tool_args(tool).is_empty());
        assert_ne!(tool_args(tool), &["-"], "no arguments listed for {tool}");
        for a in tool_args(tool) {
            assert_one_line(a);
        }
    }
    for (_, why) in CRASHES {
        assert_one_line(why);
    }
}

#[test]
fn crashes_cover_every_exit_kind() {
    let kinds: Vec<Crash> = CRASHES.iter().map(|(c, _)| *c).collect();
    assert!(kinds.contains(&Crash::Exit(1)));
    assert!(kinds.contains(&Crash::Exit(2)));
    assert!(kinds.contains(&Crash::Abort));
}

#[test]
fn format_line_is_one_line_with_level_and_target() {
    let l = format_line(Level::Warn, "fetch", "a\nb\r\nc");
    assert_eq!(l, "WARN  fetch: a b  c");
    assert_eq!(format_line(Level::Info, "x", "y"), "INFO  x: y");
    assert!(Level::Error.to_stderr() && !Level::Debug.to_stderr());
}

#[test]
fn leak_schedule_grows_monotonically_and_is_capped() {
    for rate in [LEAK_RATE_MIN, LEAK_RATE_MAX] {
        let mut prev = 0usize;
        for tenth in 0..100_000u64 {
            let t = leak_target(Duration::from_millis(tenth * 100), rate);
            assert!(t >= prev, "shrank at {tenth}");
            prev = t;
        }
        assert_eq!(prev, LEAK_CAP);
    }
    assert_eq!(leak_target(Duration::ZERO, LEAK_RATE_MIN), LEAK_BASE);
}

#[test]
fn leak_reaches_demo_limit_in_30_to_60_seconds() {
    // The demo fleet's limit is 128 MiB; the process itself holds a few.
    let limit = 128 * MIB - 6 * MIB;
    let secs_to_limit = |rate| {
        (0..600u64)
            .find(|s| leak_target(Duration::from_secs(*s), rate) >= limit)
            .unwrap_or(u64::MAX)
    };
    assert!((30..=60).contains(&secs_to_limit(LEAK_RATE_MAX)));
    assert!((30..=60).contains(&secs_to_limit(LEAK_RATE_MIN)));
}

#[test]
fn working_set_grows_shrinks_and_keeps_a_minimum() {
    let mut ws = WorkingSet::new();
    assert_eq!(ws.len(), WorkingSet::MIN);
    assert!(ws.resize_to(10 * MIB).is_ok());
    assert_eq!(ws.len(), 10 * MIB);
    assert!(ws.buf.iter().step_by(4096).all(|b| *b != 0));
    assert!(ws.resize_to(6 * MIB).is_ok());
    assert_eq!(ws.len(), 6 * MIB);
    assert!(ws.resize_to(0).is_ok());
    assert_eq!(ws.len(), WorkingSet::MIN);
}

#[test]
fn burn_runs_for_about_the_requested_time() {
    let mut mem = vec![1u8; 4096];
    let start = Instant::now();
    burn(Duration::from_millis(30), &mut mem);
    assert!(start.elapsed() >= Duration::from_millis(30));
    burn(Duration::from_millis(1), &mut []);
}

#[test]
fn identity_defaults_and_overrides() {
    let id = Identity::new(Role::Flaky, None, None, None);
    assert_eq!(id.agent, "flaky-tool");
    assert_eq!(id.replica, 0);
    assert!(id.context_dir.ends_with("autonomos-demo-flaky-tool"));

    let id = Identity::new(
        Role::Coder,
        Some("my/coder".into()),
        Some(" 3 ".into()),
        Some("/tmp/ctx".into()),
    );
    assert_eq!(id.agent, "my/coder");
    assert_eq!(id.replica, 3);
    assert_eq!(id.context_dir, PathBuf::from("/tmp/ctx"));

    let id = Identity::new(
        Role::Coder,
        Some("a b/c".into()),
        Some("x".into()),
        Some("".into()),
    );
    assert_eq!(id.replica, 0);
    assert!(id.context_dir.ends_with("autonomos-demo-a_b_c"));
}

#[test]
fn roles_parse_from_their_names() {
    for role in [
        Role::Planner,
        Role::Researcher,
        Role::Coder,
        Role::Flaky,
        Role::Leaky,
        Role::Echo,
    ] {
        assert_eq!(Role::from_str(role.as_str(), false), Ok(role));
        assert_eq!(role.to_string(), role.as_str());
    }
}

#[test]
fn notes_render_and_write_atomically() {
    let mut recent = VecDeque::new();
    recent.push_back("first".to_owned());
    recent.push_back("second".to_owned());
    let body = render_notes(&NotesInfo {
        agent: "researcher",
        replica: 2,
        role: Role::Researcher,
        pid: 42,
        model: "demo-7b",
        uptime: Duration::from_secs(125),
        tasks_done: 3,
        tokens: 9000,
        working_set: 12 * MIB,
        recent: &recent,
    });
    assert!(body.starts_with("# researcher[2] notes\n"));
    assert!(body.contains("- uptime: 2m 5s\n"));
    assert!(body.contains("- working set: 12.0 MiB\n"));
    let second = body.find("- second").unwrap_or(usize::MAX);
    let first = body.find("- first").unwrap_or(0);
    assert!(second < first, "newest first:\n{body}");

    let dir = tempfile::tempdir().expect("temp dir");
    let ctx = dir.path().join("nested/ctx");
    write_atomic(&ctx, "notes-2.md", &body).expect("first write");
    write_atomic(&ctx, "notes-2.md", "v2\n").expect("second write");
    assert_eq!(
        fs::read_to_string(ctx.join("notes-2.md")).expect("read back"),
        "v2\n"
    );
    let names: Vec<_> = fs::read_dir(&ctx)
        .expect("list ctx")
        .map(|e| e.expect("dir entry").file_name())
        .collect();
    assert_eq!(
        names,
        vec![OsString::from("notes-2.md")],
        "no temp file left"
    );
}

#[test]
fn uptime_formats() {
    assert_eq!(fmt_uptime(Duration::from_secs(5)), "5s");
    assert_eq!(fmt_uptime(Duration::from_secs(65)), "1m 5s");
    assert_eq!(fmt_uptime(Duration::from_secs(3725)), "1h 2m 5s");
}
