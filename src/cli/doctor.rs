//! `autonomos doctor [--json]`: the System Health Check. With a running
//! daemon it asks the daemon (which also knows probes, the pool and
//! storage faults); without one it checks the data dir's files itself and
//! names the missing daemon as a problem. Exit 0: fine (warnings
//! included); 1: a problem; 2: it could not run.

use super::*;
use crate::core::doctor::{Check, Level, exit_code};

pub async fn doctor(g: &Global, json: bool) -> ExitCode {
    let checks = match connect(g).await {
        Ok(mut c) => match c.request(Request::Doctor).await {
            Ok(Response::Doctor { checks }) => checks,
            Ok(other) => return unexpected(other),
            Err(e) => return refuse(json, ExitCode::from(2), format!("doctor: {e}")),
        },
        Err(e @ ClientError::NoDaemon { .. }) if g.host.is_empty() => {
            let data_dir =
                crate::paths::client_data_dir(g.data_dir.as_deref(), g.config.as_deref());
            let config = match crate::paths::find_config(g.config.as_deref()) {
                crate::paths::ConfigSource::File(p) => Some(p),
                crate::paths::ConfigSource::Demo => None,
            };
            let mut checks = tokio::task::spawn_blocking(move || {
                crate::daemon::doctor::examine(&data_dir, config.as_deref(), None)
            })
            .await
            .unwrap_or_default();
            let first = e.to_string().lines().next().unwrap_or_default().to_string();
            checks.insert(
                0,
                Check::problem(
                    "daemon",
                    first,
                    "start it with `autonomos up` (background) or `autonomos daemon`",
                ),
            );
            checks
        }
        Err(e) => return refuse(json, ExitCode::from(2), format!("doctor: {e}")),
    };
    if json {
        let _ = json_out(&checks);
    } else {
        print!("{}", render(&checks));
    }
    ExitCode::from(exit_code(&checks))
}

/// One line per check, then the fixes of what is not fine.
pub fn render(checks: &[Check]) -> String {
    let mut out = String::new();
    for c in checks {
        let mark = match c.level {
            Level::Ok => "ok     ",
            Level::Warn => "WARN   ",
            Level::Problem => "PROBLEM",
        };
        out.push_str(&format!("{mark} {:<18} {}\n", c.name, c.detail));
        if let Some(fix) = c.fix.as_ref().filter(|_| c.level != Level::Ok) {
            out.push_str(&format!("        {:<18} → {fix}\n", ""));
        }
    }
    let problems = checks.iter().filter(|c| c.level == Level::Problem).count();
    let warnings = checks.iter().filter(|c| c.level == Level::Warn).count();
    out.push_str(&match (problems, warnings) {
        (0, 0) => "all checks pass\n".to_string(),
        (0, w) => format!("no problem, {w} warning(s)\n"),
        (p, w) => format!("{p} problem(s), {w} warning(s)\n"),
    });
    out
}
