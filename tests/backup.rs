//! Backups against real repositories on disk, read back by rustic_core and
//! by the real `restic` CLI (Debian package `restic`).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use autonomos::daemon::backup::{self, Job};
use autonomos::daemon::restore;
use common::have_tool;

fn local(p: &Path) -> backup::BackupRepo {
    backup::BackupRepo::Local(p.to_path_buf())
}

/// A context dir with the awkward cases: nested dirs, a symlink, modes, an
/// empty file, spaces and unicode in names.
fn fill(ctx: &Path) {
    std::fs::create_dir_all(ctx.join("memory/deep")).expect("dirs");
    std::fs::write(ctx.join("memory/notes.md"), "the first notes\n").expect("write");
    std::fs::write(
        ctx.join("memory/deep/vectors.bin"),
        (0..200_000u32)
            .flat_map(|i| i.to_le_bytes())
            .collect::<Vec<u8>>(),
    )
    .expect("write");
    std::fs::write(ctx.join("empty"), "").expect("write");
    std::fs::write(ctx.join("a name with spaces – ünïcødé ✓.txt"), "spaces\n").expect("write");
    std::fs::write(ctx.join("run.sh"), "#!/bin/sh\necho hi\n").expect("write");
    std::fs::set_permissions(ctx.join("run.sh"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    std::fs::write(ctx.join("secret"), "s\n").expect("write");
    std::fs::set_permissions(ctx.join("secret"), std::fs::Permissions::from_mode(0o600))
        .expect("chmod");
    std::os::unix::fs::symlink("memory/notes.md", ctx.join("latest")).expect("symlink");
}

/// Every entry under `dir`: relative path → (kind, mode, content or target).
fn tree(dir: &Path) -> Vec<(PathBuf, String, u32, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("readable").flatten() {
            let p = e.path();
            let meta = std::fs::symlink_metadata(&p).expect("meta");
            let rel = p.strip_prefix(dir).expect("under").to_path_buf();
            let mode = meta.permissions().mode() & 0o7777;
            if meta.file_type().is_symlink() {
                let t = std::fs::read_link(&p).expect("link");
                out.push((
                    rel,
                    "link".into(),
                    0,
                    t.into_os_string().into_encoded_bytes(),
                ));
            } else if meta.is_dir() {
                out.push((rel, "dir".into(), mode, vec![]));
                stack.push(p);
            } else {
                out.push((rel, "file".into(), mode, std::fs::read(&p).expect("read")));
            }
        }
    }
    out.sort();
    out
}

struct Setup {
    _dir: tempfile::TempDir,
    data: PathBuf,
    ctx: PathBuf,
    repo: PathBuf,
    mirror: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let ctx = data.join("contexts/worker");
    fill(&ctx);
    // A live state.db, as the daemon would have it.
    let conn = rusqlite::Connection::open(data.join("state.db")).expect("db");
    conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (x); INSERT INTO t VALUES (42);")
        .expect("sql");
    drop(conn);
    Setup {
        repo: dir.path().join("repo"),
        mirror: dir.path().join("mirror"),
        data,
        ctx,
        _dir: dir,
    }
}

fn job(s: &Setup) -> Job {
    Job {
        data_dir: s.data.clone(),
        repositories: vec![local(&s.repo.clone()), local(&s.mirror.clone())],
        config_file: None,
        contexts: vec![s.ctx.clone()],
        reason: "test".into(),
        keep: (None, None, None),
    }
}

#[test]
fn backup_change_backup_then_the_first_snapshot_restores_byte_identical() {
    let s = setup();
    let before = tree(&s.ctx);
    let first = backup::run(&job(&s)).expect("backup");
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|w| w.error.is_none()), "{first:?}");
    // The repository is private; the password is outside what is backed up.
    let mode = std::fs::metadata(&s.repo)
        .expect("repo")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700);
    let pmode = std::fs::metadata(backup::password_file(&s.data))
        .expect("password")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(pmode, 0o600);

    // Change things, back up again: incremental (far less added).
    std::fs::write(s.ctx.join("memory/notes.md"), "rewritten\n").expect("write");
    std::fs::remove_file(s.ctx.join("empty")).expect("rm");
    std::fs::write(s.ctx.join("new.txt"), "new\n").expect("write");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = backup::run(&job(&s)).expect("backup");
    assert!(
        second[0].added < first[0].added / 4,
        "second backup added {} vs {}",
        second[0].added,
        first[0].added
    );

    let snaps = backup::list(&local(&s.repo), &s.data).expect("list");
    assert_eq!(snaps.len(), 2);
    // The mirror got the same snapshots.
    assert_eq!(
        backup::list(&local(&s.mirror), &s.data)
            .expect("mirror list")
            .len(),
        2
    );
    // Point in time: the newest at or before a time.
    let t1 = snaps[0].time;
    assert_eq!(
        backup::pick(&snaps, None, Some(t1 + 500)).expect("pick").id,
        snaps[0].id
    );
    assert_eq!(
        backup::pick(&snaps, None, None).expect("pick").id,
        snaps[1].id
    );
    assert!(backup::pick(&snaps, None, Some(t1 - 1)).is_err());
    assert_eq!(
        backup::pick(&snaps, Some(&snaps[1].id[..8]), None)
            .expect("by id")
            .id,
        snaps[1].id
    );

    let dest = s.data.join("restored");
    let (files, _) = restore::restore_dir(&local(&s.repo), &s.data, &snaps[0].id, &s.ctx, &dest)
        .expect("restore");
    assert!(files >= 6);
    assert_eq!(tree(&dest), before, "restored tree differs");

    // state.db was copied consistently and is a working database.
    let stage_db = s.data.join("restored-db");
    restore::restore_dir(
        &local(&s.repo),
        &s.data,
        &snaps[1].id,
        &backup::staging(&s.data),
        &stage_db,
    )
    .expect("restore staging");
    let conn = rusqlite::Connection::open(stage_db.join("state.db")).expect("db");
    let x: i64 = conn
        .query_row("SELECT x FROM t", [], |r| r.get(0))
        .expect("row");
    assert_eq!(x, 42);

    let (errors, warnings) = backup::verify(&local(&s.repo), &s.data, true).expect("check");
    assert!(
        errors.is_empty() && warnings.is_empty(),
        "{errors:?} {warnings:?}"
    );
}

#[test]
fn restic_lists_checks_and_restores_our_repository() {
    if !have_tool("restic", "restic") {
        return;
    }
    let s = setup();
    let before = tree(&s.ctx);
    backup::run(&job(&s)).expect("backup");
    let pf = backup::password_file(&s.data);
    let restic = |args: &[&str]| {
        let out = std::process::Command::new("restic")
            .arg("-r")
            .arg(&s.repo)
            .arg("--password-file")
            .arg(&pf)
            .arg("--no-cache")
            .args(args)
            .output()
            .expect("restic runs");
        assert!(
            out.status.success(),
            "restic {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let snaps: serde_json::Value =
        serde_json::from_str(&restic(&["snapshots", "--json"])).expect("json");
    let id = snaps[0]["short_id"].as_str().expect("id").to_string();
    assert_eq!(snaps[0]["hostname"], "autonomos");
    restic(&["check", "--read-data"]);
    let target = s.data.join("by-restic");
    restic(&["restore", &id, "--target", target.to_str().expect("utf-8")]);
    // Snapshot paths are absolute: restic restores under target/<path>.
    let inner = target.join(s.ctx.strip_prefix("/").expect("absolute"));
    assert_eq!(tree(&inner), before);
}

#[test]
fn a_flipped_byte_is_reported_and_never_restored_silently() {
    let s = setup();
    backup::run(&Job {
        repositories: vec![local(&s.repo.clone())],
        ..job(&s)
    })
    .expect("backup");
    let snaps = backup::list(&local(&s.repo), &s.data).expect("list");
    // Flip one byte in the middle of the biggest pack.
    common::damage_biggest_pack(&s.repo);
    let (problems, _) = backup::verify(&local(&s.repo), &s.data, true).expect("check runs");
    assert!(
        !problems.is_empty(),
        "verify --read-data missed a flipped byte"
    );
    let dest = s.data.join("restored");
    let r = restore::restore_dir(&local(&s.repo), &s.data, &snaps[0].id, &s.ctx, &dest);
    assert!(
        r.is_err(),
        "a corrupted repository restored without an error"
    );
}

#[test]
fn retention_keeps_the_newest_and_prunes_the_rest() {
    let s = setup();
    let j = Job {
        repositories: vec![local(&s.repo.clone())],
        keep: (Some(2), None, None),
        ..job(&s)
    };
    for n in 0..4 {
        std::fs::write(
            s.ctx.join("gen.txt"),
            format!("generation {n}\n").repeat(10_000 + n),
        )
        .expect("write");
        let w = backup::run(&j).expect("backup");
        assert_eq!(w[0].forgotten, usize::from(n >= 2));
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let snaps = backup::list(&local(&s.repo), &s.data).expect("list");
    assert_eq!(snaps.len(), 2);
    let (errors, _) = backup::verify(&local(&s.repo), &s.data, true).expect("check");
    assert!(errors.is_empty(), "{errors:?}");
    let dest = s.data.join("r");
    restore::restore_dir(&local(&s.repo), &s.data, &snaps[0].id, &s.ctx, &dest).expect("restore");
    assert!(
        std::fs::read_to_string(dest.join("gen.txt"))
            .expect("read")
            .starts_with("generation 2")
    );
}

#[test]
fn a_failing_mirror_is_reported_and_does_not_fail_the_primary() {
    let s = setup();
    // A mirror that cannot be created: a path under a regular file.
    let blocker = s.data.join("not-a-dir");
    std::fs::write(&blocker, "x").expect("write");
    let written = backup::run(&Job {
        repositories: vec![local(&s.repo.clone()), local(&blocker.join("mirror"))],
        ..job(&s)
    })
    .expect("the primary succeeds");
    assert_eq!(written.len(), 2);
    assert!(written[0].snapshot.is_some() && written[0].error.is_none());
    assert!(written[1].snapshot.is_none());
    assert!(
        written[1]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("cannot create")),
        "{written:?}"
    );
    // A failing primary is the error.
    let r = backup::run(&Job {
        repositories: vec![local(&blocker.join("primary"))],
        ..job(&s)
    });
    assert!(r.is_err());
}

#[test]
fn a_running_backup_reports_its_steps_and_bytes_and_ends_idle() {
    let s = setup();
    // 48 MiB that does not compress or deduplicate, so the backup takes a
    // while even in a release build.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let big: Vec<u8> = (0..48 << 17)
        .flat_map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed.to_le_bytes()
        })
        .collect();
    std::fs::write(s.ctx.join("big.bin"), &big).expect("write");
    let meter = std::sync::Arc::new(backup::Meter::default());
    assert_eq!(meter.read(), None, "idle before");
    let j = job(&s);
    let m = meter.clone();
    let worker = std::thread::spawn(move || backup::run_with(&j, &m));
    let mut seen = Vec::new();
    while !worker.is_finished() {
        if let Some(p) = meter.read() {
            seen.push(p);
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    worker.join().expect("joins").expect("backup");
    assert_eq!(meter.read(), None, "idle after");
    let backing_up: Vec<_> = seen
        .iter()
        .filter(|p| p.step == "backing up" && p.bytes)
        .collect();
    assert!(
        !backing_up.is_empty(),
        "no byte progress seen: {:?}",
        seen.iter().map(|p| p.line()).collect::<Vec<_>>()
    );
    // Both repositories were named, with their place in the run.
    assert!(seen.iter().any(|p| p.what.ends_with("(1/2)")), "{seen:?}");
    assert!(seen.iter().any(|p| p.what.ends_with("(2/2)")), "{seen:?}");
    // Byte counts are sane: never past the total once it is known, and the
    // total covers the big file.
    for p in &backing_up {
        if p.total > 0 {
            assert!(p.total >= big.len() as u64, "{p:?}");
            assert!(p.done <= p.total, "{p:?}");
        }
    }
    assert!(backing_up.iter().any(|p| p.total > 0), "total never known");
}

#[test]
fn damage_is_traced_to_the_snapshots_and_files_it_hurts_in_plain_words() {
    let s = setup();
    // A file big enough that the biggest pack holds its data.
    let mut big = vec![0u8; 6 << 20];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for b in big.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(s.ctx.join("model.bin"), &big).expect("write");
    let one = Job {
        repositories: vec![local(&s.repo.clone())],
        ..job(&s)
    };
    backup::run(&one).expect("backup");
    std::fs::write(s.ctx.join("later.txt"), "later\n").expect("write");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    backup::run(&one).expect("backup");
    let snaps = backup::list(&local(&s.repo), &s.data).expect("list");
    assert_eq!(snaps.len(), 2);
    common::damage_biggest_pack(&s.repo);

    let damage = autonomos::daemon::damage::trace(&s.repo, &s.data).expect("trace");
    assert_eq!(damage.len(), 1, "{damage:?}");
    let d = &damage[0];
    assert_eq!(d.snapshots.len(), 2, "both snapshots use the pack: {d:?}");
    let model = s.ctx.join("model.bin");
    let model = std::fs::canonicalize(&model).unwrap_or(model);
    for h in &d.snapshots {
        assert!(
            h.paths.iter().any(|p| *p == model.display().to_string()),
            "{h:?}"
        );
    }
    let text = d.lines().join("\n");
    assert!(text.contains("is damaged"), "{text}");

    // verify's problems, in plain words.
    let (problems, _) = backup::verify(&local(&s.repo), &s.data, true).expect("check runs");
    assert!(!problems.is_empty());
    for p in &problems {
        let shown = backup::plain(p);
        assert!(
            !shown.contains("Backtrace") && !shown.contains('\n'),
            "{shown}"
        );
    }

    // A restore names the damaged file, never a panic or a backtrace.
    let dest = s.data.join("restored");
    let e = restore::restore_dir(&local(&s.repo), &s.data, &snaps[0].id, &s.ctx, &dest)
        .expect_err("damaged data is not restored silently");
    assert!(e.contains("damaged") && e.contains("model.bin"), "{e}");
    for bad in ["panicked", "unwrap", "Backtrace", "rustic_core::"] {
        assert!(!e.contains(bad), "{bad} in: {e}");
    }
}

#[test]
fn a_sparse_file_comes_back_sparse() {
    use std::os::unix::fs::MetadataExt;
    let s = setup();
    let path = s.ctx.join("sparse.img");
    {
        let f = std::fs::File::create(&path).expect("create");
        f.set_len(64 << 20).expect("a 64 MiB hole");
        use std::os::unix::fs::FileExt;
        f.write_at(b"head", 0).expect("write");
        f.write_at(b"tail", (64 << 20) - 4).expect("write");
    }
    backup::run(&Job {
        repositories: vec![local(&s.repo)],
        ..job(&s)
    })
    .expect("backup");
    let snaps = backup::list(&local(&s.repo), &s.data).expect("list");
    let dest = s.data.join("restored");
    restore::restore_dir(&local(&s.repo), &s.data, &snaps[0].id, &s.ctx, &dest).expect("restore");
    let meta = std::fs::metadata(dest.join("sparse.img")).expect("restored");
    assert_eq!(meta.len(), 64 << 20);
    let allocated = meta.blocks() * 512;
    assert!(
        allocated < 16 << 20,
        "64 MiB of holes came back as {allocated} allocated bytes"
    );
    let bytes = std::fs::read(dest.join("sparse.img")).expect("read");
    assert_eq!(&bytes[..4], b"head");
    assert_eq!(&bytes[bytes.len() - 4..], b"tail");
    assert!(bytes[4..bytes.len() - 4].iter().all(|&b| b == 0));
}
