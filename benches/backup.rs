//! Backup and audit benchmarks. Run: `cargo bench --bench backup`.
//!
//! - backup: 100 MiB of agent context (100 files of 1 MiB of incompressible
//!   data, plus a small SQLite state.db), first backup, then after changing
//!   one file by 4 KiB; time and bytes added each time.
//! - restore: the first snapshot's context into an empty dir, validated.
//! - audit: records appended through the audit writer (batched, one
//!   `fdatasync` per batch), 100,000 records, then the whole log verified.

use std::time::Instant;

use autonomos::daemon::audit::{Audit, read};
use autonomos::daemon::backup::{self, Job};
use autonomos::daemon::restore;

fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn main() {
    println!("| what | measured |\n| --- | --- |");
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let ctx = data.join("contexts/w");
    std::fs::create_dir_all(&ctx).expect("ctx");
    for i in 0..100u64 {
        std::fs::write(ctx.join(format!("f{i:03}.bin")), noise(i + 1, 1 << 20)).expect("write");
    }
    let conn = rusqlite::Connection::open(data.join("state.db")).expect("db");
    conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .expect("sql");
    drop(conn);
    let repo = autonomos::core::repo::BackupRepo::Local(dir.path().join("repo"));
    let job = Job {
        data_dir: data.clone(),
        repositories: vec![repo.clone()],
        config_file: None,
        contexts: vec![ctx.clone()],
        reason: "bench".into(),
        keep: (None, None, None),
    };
    let t = Instant::now();
    let w = backup::run(&job).expect("first backup");
    let first = t.elapsed();
    println!(
        "| first backup, 100 MiB in 100 files | {:.2} s, {:.1} MiB added ({:.0} MiB/s) |",
        first.as_secs_f64(),
        w[0].added as f64 / (1 << 20) as f64,
        100.0 / first.as_secs_f64()
    );
    // A small change: 4 KiB in the middle of one file.
    let mut f = std::fs::read(ctx.join("f050.bin")).expect("read");
    f[500_000..504_096].copy_from_slice(&noise(999, 4096));
    std::fs::write(ctx.join("f050.bin"), f).expect("write");
    let t = Instant::now();
    let w = backup::run(&job).expect("second backup");
    let second = t.elapsed();
    println!(
        "| second backup after changing 4 KiB of one file | {:.2} s, {:.1} KiB added |",
        second.as_secs_f64(),
        w[0].added as f64 / 1024.0
    );
    let snaps = backup::list(&repo, &data).expect("list");
    let dest = dir.path().join("restored");
    let t = Instant::now();
    let (files, bytes) =
        restore::restore_dir(&repo, &data, &snaps[0].id, &ctx, &dest).expect("restore");
    let restore = t.elapsed();
    println!(
        "| restore of the first snapshot's context ({files} files, {:.0} MiB), validated | {:.2} s ({:.0} MiB/s) |",
        bytes as f64 / (1 << 20) as f64,
        restore.as_secs_f64(),
        bytes as f64 / (1 << 20) as f64 / restore.as_secs_f64()
    );

    let adir = tempfile::tempdir().expect("tempdir");
    let (audit, _) = Audit::open(adir.path(), Default::default()).expect("audit");
    let n = 100_000u64;
    let t = Instant::now();
    for i in 0..n {
        audit.record(
            "uid 1000 pid 4242 local",
            "scale",
            serde_json::json!({ "agent": format!("a{}", i % 500), "replicas": i % 7 }),
            "ok: scaled",
        );
    }
    audit.close_blocking();
    let appended = t.elapsed();
    let (log, cps, key) = read(adir.path()).expect("read");
    let t = Instant::now();
    let v = autonomos::core::audit::verify(
        &log,
        &cps,
        &autonomos::core::audit::verifying_key(&key).expect("key"),
    );
    let verified = t.elapsed();
    assert!(v.ok() && v.records == n, "{v:?}");
    println!(
        "| audit append, {n} records, batched fdatasync, incl. the final checkpoint | {:.0} records/s ({:.2} s) |",
        n as f64 / appended.as_secs_f64(),
        appended.as_secs_f64()
    );
    println!(
        "| audit verify of those {n} records ({} checkpoints, {:.1} MiB) | {:.2} s |",
        cps.len(),
        log.len() as f64 / (1 << 20) as f64,
        verified.as_secs_f64()
    );
}
