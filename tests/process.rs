//! The daemon's process layer on real processes: its own children, seen
//! from every thread through handles it keeps open, and spawn errors that
//! name a bad working directory, and what a spawn hands the runtime.

use std::process::{Child, Command};

use autonomos::daemon::{launch, process, procfs};

fn own() -> Vec<i32> {
    let mut v = Vec::new();
    procfs::own_children(&mut v);
    v
}

fn sleeper() -> Child {
    Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("spawn sleep")
}

#[test]
fn own_children_follow_threads_that_come_and_go() {
    // Handles opened now, for the threads there are now.
    let _ = own();
    let mut first = sleeper();
    assert!(
        own().contains(&(first.id() as i32)),
        "a child of this thread"
    );

    // A child of a thread that then ends is re-parented to a live thread
    // (the join can return just before the kernel moves it).
    let mut orphaned = std::thread::spawn(sleeper).join().expect("thread");
    let t = std::time::Instant::now();
    while !own().contains(&(orphaned.id() as i32)) {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "a child of an ended thread"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }

    // A thread born after the handles were opened, still running.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (kid_tx, kid_rx) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let kid = sleeper();
        kid_tx.send(kid.id() as i32).expect("send");
        let _ = rx.recv();
        kid
    });
    let late = kid_rx.recv().expect("pid");
    assert!(own().contains(&late), "a child of a thread born later");
    drop(tx);
    let mut late_kid = holder.join().expect("holder");

    for c in [&mut first, &mut orphaned, &mut late_kid] {
        let _ = c.kill();
        let _ = c.wait();
    }
    let gone = first.id() as i32;
    assert!(!own().contains(&gone), "a reaped child is not listed");
}

#[test]
fn a_thread_with_hundreds_of_children_is_read_whole() {
    // A `children` file longer than one page (about 585 pids of 6 or 7
    // digits fit in 4 KiB) comes in several reads.
    let mut kids: Vec<Child> = (0..800).map(|_| sleeper()).collect();
    let listed = own();
    let missing: Vec<u32> = kids
        .iter()
        .map(Child::id)
        .filter(|p| !listed.contains(&(*p as i32)))
        .collect();
    for c in &mut kids {
        let _ = c.kill();
        let _ = c.wait();
    }
    assert!(
        missing.is_empty(),
        "{} of 800 children missed",
        missing.len()
    );
}

fn spec(cwd: std::path::PathBuf) -> launch::SpawnSpec {
    launch::SpawnSpec {
        argv: vec!["/bin/true".into()],
        cwd,
        env: Vec::new(),
        stdin: false,
        tty: None,
    }
}

#[test]
fn a_missing_or_non_directory_working_dir_is_named_in_the_spawn_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nowhere");
    let err = launch::spawn(&spec(missing.clone()), process::leaders())
        .err()
        .expect("a missing working dir fails the spawn");
    assert!(
        err.contains("cannot use working directory")
            && err.contains(&missing.display().to_string()),
        "{err}"
    );
    assert!(err.contains("No such file"), "{err}");

    let file = dir.path().join("plain");
    std::fs::write(&file, "x").expect("file");
    let err = launch::spawn(&spec(file), process::leaders())
        .err()
        .expect("a file as working dir fails the spawn");
    assert!(err.contains("not a directory"), "{err}");

    let err = launch::spawn(
        &launch::SpawnSpec {
            argv: vec![dir.path().join("no-such-program").display().to_string()],
            ..spec(dir.path().to_path_buf())
        },
        process::leaders(),
    )
    .err()
    .expect("a missing program fails the spawn");
    assert!(
        err.contains("cannot start") && err.contains("no-such-program"),
        "{err}"
    );
}

/// A spawn's start bound (taken from the boot clock before the spawn, not
/// from `/proc` after it) never comes after the leader's start time, so no
/// process of the run is taken for an older stranger; and the output pipes
/// (made by the daemon, its read ends non-blocking) reach the child as
/// ordinary blocking pipes.
#[tokio::test]
async fn a_spawn_s_start_bound_and_output_pipes_hold() {
    use std::os::fd::AsFd;
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let s = launch::spawn(
        &launch::SpawnSpec {
            argv: vec![
                "/bin/sh".into(),
                "-c".into(),
                "cat /proc/self/fdinfo/1; echo to-stderr >&2".into(),
            ],
            ..spec(dir.path().to_path_buf())
        },
        process::leaders(),
    )
    .expect("spawn");
    let st = procfs::stat(s.pid).expect("the leader is unreaped");
    assert!(
        // (Within seconds: a wrong unit would be off by orders.)
        s.born <= st.start_ticks && st.start_ticks - s.born <= 5 * procfs::ticks_per_second(),
        "start bound {} vs start time {} (ticks)",
        s.born,
        st.start_ticks
    );
    let autonomos::daemon::tty::Output::Pipe(mut out) = s.stdout else {
        panic!("a pipe, not a terminal");
    };
    let mut err = s.stderr.expect("stderr pipe");
    let (mut o, mut e) = (String::new(), String::new());
    out.read_to_string(&mut o).await.expect("stdout to its end");
    err.read_to_string(&mut e).await.expect("stderr to its end");
    let flags = o
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
        .expect("the child's fd 1 flags");
    assert_eq!(flags & 0o4000, 0, "the child's stdout is non-blocking: {o}");
    assert_eq!(e, "to-stderr\n");
    rustix::process::waitid(
        rustix::process::WaitId::PidFd(s.pidfd.as_fd()),
        rustix::process::WaitIdOptions::EXITED,
    )
    .expect("reap");
}
