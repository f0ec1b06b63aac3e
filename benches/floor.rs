//! Autonomos beside the floor, in one run: a ~60-line C supervisor (poll +
//! signalfd + posix_spawn, compiled here with `cc`) for restarts and
//! starts, supervisord (if installed) for idle cost, and the release
//! binary's size. Run: `cargo bench --bench floor -- [respawn|start|idle|size|all]`.
//!
//! Every figure comes from the real `autonomos daemon` binary, as an
//! operator runs it. Each prints Markdown rows for docs/benchmarks.md.

mod common;

use common::{proc_ticks, rss_kib};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const FLOOR_C: &str = r#"
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>
extern char **environ;
static pid_t kids[100000];
static int nkids;
static void start(char **argv) {
  posix_spawnattr_t a;
  posix_spawnattr_init(&a);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&a, &none);
  posix_spawnattr_setpgroup(&a, 0);
  posix_spawnattr_setflags(&a, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);
  pid_t pid;
  if (posix_spawn(&pid, argv[0], NULL, &a, argv, environ) != 0) { perror("posix_spawn"); exit(1); }
  posix_spawnattr_destroy(&a);
  kids[nkids++ % 100000] = pid;
}
/* floor respawn|start N PROGRAM ARGS... */
int main(int argc, char **argv) {
  if (argc < 4) return 2;
  int respawn = argv[1][0] == 'r', n = atoi(argv[2]);
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGCHLD);
  sigaddset(&s, SIGTERM);
  sigaddset(&s, SIGINT);
  sigprocmask(SIG_BLOCK, &s, NULL);
  int sfd = signalfd(-1, &s, SFD_CLOEXEC);
  for (int i = 0; i < n; i++) start(argv + 3);
  struct pollfd p = {sfd, POLLIN, 0};
  for (;;) {
    poll(&p, 1, -1);
    struct signalfd_siginfo si;
    if (read(sfd, &si, sizeof si) != sizeof si) continue;
    if (si.ssi_signo != SIGCHLD) {
      for (int i = 0; i < nkids && i < 100000; i++) kill(kids[i], SIGKILL);
      while (wait(NULL) > 0) {}
      return 0;
    }
    int st;
    while (waitpid(-1, &st, WNOHANG) > 0)
      if (respawn) start(argv + 3);
  }
}
"#;

/// A C child that stamps CLOCK_MONOTONIC as its first act, then waits.
const STAMP_C: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  char buf[64];
  int n = snprintf(buf, sizeof buf, "%lld %d\n", (long long)t.tv_sec * 1000000000LL + t.tv_nsec, getpid());
  int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0600);
  write(fd, buf, n);
  close(fd);
  for (;;) pause();
}
"#;

fn cc(dir: &Path, name: &str, src: &str) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, src).expect("write C source");
    let bin = dir.join(name);
    let ok = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&bin)
        .arg(&c)
        .status();
    assert!(
        ok.is_ok_and(|s| s.success()),
        "a C compiler (cc) is needed for this benchmark"
    );
    bin
}

fn mono_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

fn stamps(file: &Path) -> Vec<(u64, i32)> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.split(' ');
            Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
        })
        .collect()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn term(child: &mut Child) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(30) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The real daemon on `dir` with `toml`.
fn daemon(dir: &Path, toml: &str) -> Child {
    std::fs::create_dir_all(dir.join("rt")).expect("dirs");
    let cfg = dir.join("autonomos.toml");
    std::fs::write(&cfg, toml).expect("config");
    Command::new(env!("CARGO_BIN_EXE_autonomos"))
        .args(["daemon", "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env("XDG_RUNTIME_DIR", dir.join("rt"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("daemon")
}

fn floor(bin: &Path, mode: &str, n: usize, child: &[&Path]) -> Child {
    Command::new(bin)
        .arg(mode)
        .arg(n.to_string())
        .args(child)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("floor")
}

fn wait_stamps(file: &Path, n: usize, limit: Duration) -> Vec<(u64, i32)> {
    let t = Instant::now();
    loop {
        let s = stamps(file);
        if s.len() >= n {
            return s;
        }
        assert!(t.elapsed() < limit, "{} of {n} stamps", s.len());
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// kill -9 → the next child's first instruction, `kills` times for each
/// supervisor in turn (the floor's child, then ours, then the floor's…),
/// with a 0.6–1 s pause before each kill, so that each supervisor is left
/// alone 1.2–2 s between its own kills (cold). Both supervisors run for
/// the whole measurement, so a change in the host's speed reaches both
/// alike (one after the other, the floor's p50 moved 2.8–6.8 ms between
/// the two halves of one run). Latencies in ms, per supervisor.
fn respawns(files: [&Path; 2], kills: usize) -> [Vec<f64>; 2] {
    let mut seen = files.map(|f| wait_stamps(f, 1, Duration::from_secs(20)).len());
    let mut lat = [Vec::new(), Vec::new()];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..kills {
        for (i, file) in files.iter().enumerate() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            std::thread::sleep(Duration::from_millis(600 + seed % 400));
            let (_, pid) = stamps(file)[seen[i] - 1];
            let t_kill = mono_ns();
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(pid).expect("pid"),
                rustix::process::Signal::KILL,
            );
            let s = wait_stamps(file, seen[i] + 1, Duration::from_secs(5));
            lat[i].push(s[seen[i]].0.saturating_sub(t_kill) as f64 / 1e6);
            seen[i] += 1;
        }
    }
    lat
}

fn respawn(dir: &Path, floor_bin: &Path, stamp: &Path) {
    let kills = 30;
    let f_file = dir.join("floor-stamps");
    let mut f = floor(floor_bin, "respawn", 1, &[stamp, &f_file]);
    let d_dir = dir.join("respawn");
    let o_file = dir.join("ours-stamps");
    let mut d = daemon(
        &d_dir,
        &format!(
            "[agents.victim]\ncommand = [{:?}, {:?}]\nmin_uptime = \"0ms\"\nbackoff = {{ initial = \"0ms\", max = \"0ms\", jitter = 0 }}\nstart_limit = {{ burst = 10000, interval = \"1s\" }}\n",
            stamp.display().to_string(),
            o_file.display().to_string()
        ),
    );
    let [mut theirs, mut ours] = respawns([&f_file, &o_file], kills);
    term(&mut f);
    term(&mut d);
    let (t50, o50) = (median(&mut theirs), median(&mut ours));
    println!(
        "| crash → respawn, cold (1.2–2 s between kills), {kills} kills each, alternating, p50 | C floor {t50:.2} ms; Autonomos {o50:.2} ms: **{:.2}×** (max {:.2} ms) | ≤ 1.2× |",
        o50 / t50,
        ours.iter().cloned().fold(0.0, f64::max)
    );
}

fn start(dir: &Path, floor_bin: &Path, stamp: &Path) {
    let n = 500;
    let mut ratios = Vec::new();
    let mut rows = Vec::new();
    for run in 0..5 {
        let f_file = dir.join(format!("start-floor-{run}"));
        let t0 = mono_ns();
        let mut f = floor(floor_bin, "start", n, &[stamp, &f_file]);
        let s = wait_stamps(&f_file, n, Duration::from_secs(30));
        let theirs = (s.iter().map(|x| x.0).max().unwrap_or(t0) - t0) as f64 / 1e9;
        term(&mut f);
        let o_file = dir.join(format!("start-ours-{run}"));
        let mut toml = String::new();
        for i in 0..n {
            toml.push_str(&format!(
                "[agents.a{i}]\ncommand = [{:?}, {:?}]\n",
                stamp.display().to_string(),
                o_file.display().to_string()
            ));
        }
        let d_dir = dir.join(format!("start-{run}"));
        std::fs::create_dir_all(&d_dir).expect("dir");
        let t0 = mono_ns();
        let mut d = daemon(&d_dir, &toml);
        let s = wait_stamps(&o_file, n, Duration::from_secs(60));
        let ours = (s.iter().map(|x| x.0).max().unwrap_or(t0) - t0) as f64 / 1e9;
        term(&mut d);
        ratios.push(ours / theirs);
        rows.push(format!("{ours:.3}/{theirs:.3}"));
    }
    let worst = ratios.iter().cloned().fold(0.0, f64::max);
    println!(
        "| start {n} agents until each ran its first instruction, 5 runs (Autonomos/C floor, s) | {}: worst **{worst:.2}×**, median {:.2}× | ≤ 1.3× in every run |",
        rows.join(", "),
        median(&mut ratios)
    );
}

fn idle_of(pid: u32, secs: u64) -> (f64, f64) {
    std::thread::sleep(Duration::from_secs(8));
    let t0 = proc_ticks(pid);
    let i0 = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let t1 = proc_ticks(pid);
    let hz = rustix::param::clock_ticks_per_second() as f64;
    let cpu = (t1 - t0) as f64 / hz / i0.elapsed().as_secs_f64() * 100.0;
    (cpu, rss_kib(pid) as f64 / 1024.0)
}

fn idle(dir: &Path) {
    let n = 500;
    let secs = 60;
    let mut toml = String::new();
    for i in 0..n {
        toml.push_str(&format!(
            "[agents.a{i}]\ncommand = [\"sleep\", \"100000\"]\n"
        ));
    }
    let d_dir = dir.join("idle");
    std::fs::create_dir_all(&d_dir).expect("dir");
    let mut d = daemon(&d_dir, &toml);
    let (cpu, rss) = idle_of(d.id(), secs);
    term(&mut d);
    let sv = std::env::var("AUTONOMOS_SUPERVISORD").unwrap_or_else(|_| "supervisord".into());
    let sv_dir = dir.join("supervisord");
    std::fs::create_dir_all(sv_dir.join("logs")).expect("dir");
    let mut conf = format!(
        "[supervisord]\nnodaemon=true\nlogfile={0}/supervisord.log\npidfile={0}/supervisord.pid\nchildlogdir={0}/logs\n",
        sv_dir.display()
    );
    for i in 0..n {
        conf.push_str(&format!("[program:a{i}]\ncommand=sleep 100000\n"));
    }
    std::fs::write(sv_dir.join("supervisord.conf"), conf).expect("conf");
    let theirs = Command::new(&sv)
        .arg("-c")
        .arg(sv_dir.join("supervisord.conf"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let peer = match theirs {
        Ok(mut c) => {
            let (pcpu, prss) = idle_of(c.id(), secs);
            term(&mut c);
            format!("supervisord {pcpu:.2} % / {prss:.1} MiB")
        }
        Err(e) => format!("supervisord not run ({sv}: {e}; set AUTONOMOS_SUPERVISORD)"),
    };
    println!(
        "| daemon idle CPU / RSS, {n} sleeping agents sampled every 1 s, over {secs} s | Autonomos **{cpu:.2} %** / **{rss:.1} MiB**; {peer} | CPU ≤ supervisord + 0.1 point; RSS ≤ 30 MiB |"
    );
}

fn size() {
    let bin = Path::new(env!("CARGO_BIN_EXE_autonomos"));
    let len = std::fs::metadata(bin).map(|m| m.len()).unwrap_or(0);
    println!(
        "| the `autonomos` binary this benchmark ran ({}) | {:.1} MB | ≤ 25 MB |",
        bin.file_name().and_then(|n| n.to_str()).unwrap_or("?"),
        len as f64 / 1e6
    );
}

fn main() {
    let what = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_else(|| "all".into());
    let dir = tempfile::tempdir().expect("tempdir");
    let floor_bin = cc(dir.path(), "floor", FLOOR_C);
    let stamp = cc(dir.path(), "stamp", STAMP_C);
    println!("| what | measured | bar |\n| --- | --- | --- |");
    if what == "size" || what == "all" {
        size();
    }
    if what == "respawn" || what == "all" {
        respawn(dir.path(), &floor_bin, &stamp);
    }
    if what == "start" || what == "all" {
        start(dir.path(), &floor_bin, &stamp);
    }
    if what == "idle" || what == "all" {
        idle(dir.path());
    }
}
