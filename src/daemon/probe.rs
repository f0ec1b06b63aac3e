//! The probes of one replica's run (liveness and readiness each on its
//! own loop): after `start_period`, every `interval`, one probe bounded by
//! `timeout`. An exec probe runs in the replica's environment and context
//! dir, in its own process group, and is killed as a group when it
//! overruns; a heartbeat probe asks the task engine when the replica was
//! last heard from (and pings it if that is too long ago). Results go to
//! the supervisor when they change (the first, a new failure in a row, a
//! pass after failures); the supervisor restarts the replica when liveness
//! fails `failure_threshold` times, and gates its routing on readiness.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use crate::config::{HealthSpec, Probe};

/// What a probe needs of the replica.
pub struct Target {
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    /// For a task agent: the engine that hears from it.
    pub link: Option<Heard>,
}

/// Where a heartbeat probe asks: the task engine, for this run.
pub struct Heard {
    pub tasks: crate::daemon::tasks::Tasks,
    pub agent: String,
    pub index: u32,
    pub run: u64,
}

/// Which of the agent's probes a loop runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Ends at `failure_threshold` failures (the replica is restarted).
    Liveness,
    /// Goes on for the whole run.
    Readiness,
}

/// Probes until `alive` says the run is gone; `report(failing, reason)`
/// says whether the result reached the supervisor (a full inbox drops it,
/// and it is told again after the next probe).
pub async fn watch(
    spec: HealthSpec,
    kind: Kind,
    target: std::sync::Arc<Target>,
    alive: impl Fn() -> bool,
    report: impl Fn(u32, String) -> bool,
) {
    let probe = match kind {
        Kind::Liveness => spec.liveness.clone(),
        Kind::Readiness => spec.readiness.clone(),
    };
    let Some(probe) = probe else { return };
    // A random phase within the interval: many replicas started together
    // do not all probe in the same instant.
    let phase = spec.interval.mul_f64(rand::random::<f64>());
    tokio::time::sleep(spec.start_period + phase).await;
    let mut failing = 0u32;
    let mut first = true;
    // The last result did not reach the supervisor.
    let mut owed = false;
    while alive() {
        match check(&probe, spec.timeout, &target).await {
            Ok(()) => {
                if failing > 0 || first || owed {
                    failing = 0;
                    owed = !report(0, String::new());
                }
            }
            Err(why) => {
                failing += 1;
                let told = report(failing, why);
                owed = !told;
                if told && kind == Kind::Liveness && failing >= spec.failure_threshold {
                    // The supervisor restarts the replica: this run is over.
                    return;
                }
            }
        }
        first = false;
        tokio::time::sleep(spec.interval).await;
    }
}

/// One probe: Ok when healthy, else why not.
pub async fn check(probe: &Probe, timeout: Duration, t: &Target) -> Result<(), String> {
    match probe {
        Probe::Tcp(port) => {
            let connect = tokio::net::TcpStream::connect(("127.0.0.1", *port));
            match tokio::time::timeout(timeout, connect).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(format!("tcp {port}: {e}")),
                Err(_) => Err(format!("tcp {port}: no connection within {timeout:?}")),
            }
        }
        Probe::Http(url) => http(url, timeout).await,
        Probe::Exec(argv) => exec(argv, timeout, t).await,
        Probe::Heartbeat(within) => {
            let Some(l) = &t.link else {
                return Err("heartbeat: not a task agent".into());
            };
            let asked = l.tasks.heard(&l.agent, l.index, l.run, *within);
            match tokio::time::timeout(timeout, asked).await {
                Ok(r) => r,
                Err(_) => Err(format!(
                    "heartbeat: nothing heard for {} and no answer to ping within {timeout:?}",
                    crate::core::units::format_duration(*within)
                )),
            }
        }
    }
}

async fn http(url: &str, timeout: Duration) -> Result<(), String> {
    let tls = crate::daemon::notify::tls_config(None)?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .tls_backend_preconfigured(tls)
        .build()
        .map_err(|e| format!("http {url}: {e}"))?;
    match client.get(url).send().await {
        Ok(r) if r.status().is_success() || r.status().is_redirection() => Ok(()),
        Ok(r) => Err(format!("http {url}: status {}", r.status().as_u16())),
        Err(e) if e.is_timeout() => Err(format!("http {url}: no answer within {timeout:?}")),
        Err(e) => Err(format!("http {url}: {e}")),
    }
}

async fn exec(argv: &[String], timeout: Duration, t: &Target) -> Result<(), String> {
    let Some((program, args)) = argv.split_first() else {
        return Err("exec: empty command".into());
    };
    // Resolved here against the probe's PATH: with an absolute program
    // the standard library spawns with posix_spawn (vfork) instead of
    // fork, which for a daemon with a large address space is most of a
    // probe's cost.
    let path_var = t
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.into());
    let resolved = crate::daemon::launch::resolve_program(program, &t.cwd, path_var.as_ref())
        .map_err(|e| format!("exec: {e}"))?;
    let mut cmd = tokio::process::Command::new(&resolved);
    cmd.arg0(program)
        .args(args)
        .env_clear()
        .envs(t.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&t.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    let (mut child, _claim) = crate::daemon::process::spawn_claimed(&mut cmd)
        .map_err(|e| format!("exec {program}: {e}"))?;
    let pid = child.id();
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(st)) if st.success() => Ok(()),
        Ok(Ok(st)) => Err(format!("exec {program}: {st}")),
        Ok(Err(e)) => Err(format!("exec {program}: {e}")),
        Err(_) => {
            // It hangs: the probe and whatever it started go.
            if let Some(pgid) = pid.and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
                let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
            }
            let _ = child.wait().await;
            Err(format!(
                "exec {program}: no exit within {timeout:?} (killed)"
            ))
        }
    }
}
