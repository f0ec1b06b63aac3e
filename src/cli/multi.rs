//! Verbs over several daemons (`--host a --host b ...`): each is asked at
//! once, with its own time limit, so a host that is down or slow delays
//! nobody; the answers merge into one table with a HOST column (one JSON
//! document with a `host` on each item). A host that did not answer is
//! named on stderr and in the JSON; the exit code is then 1.

use serde_json::Value;

use super::*;

/// How long one host may take to connect and answer.
const PER_HOST: Duration = Duration::from_secs(15);

/// Each target's answer to `req`, in the targets' order.
pub async fn gather(g: &Global, targets: &[Target], req: Request) -> Vec<Result<Response, String>> {
    let asks = targets.iter().map(|t| {
        let req = req.clone();
        async move {
            let one = async {
                let mut c = connect_to(g, t).await.map_err(|e| e.to_string())?;
                c.request(req).await.map_err(|e| e.to_string())
            };
            match tokio::time::timeout(PER_HOST, one).await {
                Ok(r) => r,
                Err(_) => Err(format!("no answer within {}s", PER_HOST.as_secs())),
            }
        }
    });
    futures_util::future::join_all(asks).await
}

/// Prints what did not answer; the exit code for the whole verb.
fn report_missing(targets: &[Target], answers: &[Result<Response, String>]) -> ExitCode {
    let mut failed = false;
    for (t, a) in targets.iter().zip(answers) {
        if let Err(e) = a {
            eprintln!("error: host {}: {e}", t.name);
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// One merged table from per-host tables of fixed column widths: the first
/// header, then every host's rows, each led by the host's name. Only each
/// table's first section counts (what follows a blank line, such as the
/// rules under the alerts, is per host). A host whose table is a single
/// "no ..." line adds nothing.
fn merge_tables(parts: &[(String, String)]) -> String {
    let width = parts.iter().map(|(h, _)| h.len()).max().unwrap_or(4).max(4);
    let mut header = None;
    let mut rows = String::new();
    for (host, text) in parts {
        let mut lines = text.lines().take_while(|l| !l.trim().is_empty());
        let Some(first) = lines.next() else { continue };
        if first.starts_with("no ") {
            continue;
        }
        header.get_or_insert_with(|| format!("{:<width$}  {first}\n", "HOST"));
        for l in lines {
            rows.push_str(&format!("{host:<width$}  {l}\n"));
        }
    }
    match header {
        Some(h) => h + &rows,
        // Nothing anywhere: the first host's words for it ("no alerts").
        None => parts
            .first()
            .and_then(|(_, t)| t.lines().next())
            .map(|l| format!("{l}\n"))
            .unwrap_or_default(),
    }
}

/// An item as JSON with the host it came from.
fn with_host<T: serde::Serialize>(host: &str, item: &T) -> Value {
    let mut v = serde_json::to_value(item).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("host".into(), Value::String(host.into()));
    }
    v
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// The hosts that did not answer, for JSON output.
fn missing_json(targets: &[Target], answers: &[Result<Response, String>]) -> Value {
    Value::Array(
        targets
            .iter()
            .zip(answers)
            .filter_map(|(t, a)| {
                a.as_ref()
                    .err()
                    .map(|e| serde_json::json!({ "host": t.name, "error": e }))
            })
            .collect(),
    )
}

pub async fn status(g: &Global, targets: &[Target], replicas: bool, json: bool) -> ExitCode {
    let answers = gather(g, targets, Request::Status).await;
    let mut parts = Vec::new();
    let mut hosts = Vec::new();
    for (t, a) in targets.iter().zip(&answers) {
        if let Ok(Response::Status { status }) = a {
            parts.push((t.name.as_str(), status.as_ref()));
            hosts.push(serde_json::json!({ "host": t.name, "status": status }));
        }
    }
    if json {
        print_json(
            &serde_json::json!({ "hosts": hosts, "unreachable": missing_json(targets, &answers) }),
        );
    } else if !parts.is_empty() {
        print!("{}", agents_table(&parts, replicas, true));
    }
    report_missing(targets, &answers)
}

pub async fn alerts(g: &Global, targets: &[Target], json: bool) -> ExitCode {
    let answers = gather(g, targets, Request::Alerts).await;
    let now = now_ms();
    let mut parts = Vec::new();
    let mut items = Vec::new();
    for (t, a) in targets.iter().zip(&answers) {
        if let Ok(Response::Alerts { report }) = a {
            parts.push((t.name.clone(), alerts_table(report, now)));
            items.extend(report.alerts.iter().map(|x| with_host(&t.name, x)));
        }
    }
    if json {
        print_json(
            &serde_json::json!({ "alerts": items, "unreachable": missing_json(targets, &answers) }),
        );
    } else {
        print!("{}", merge_tables(&parts));
    }
    report_missing(targets, &answers)
}

pub async fn incidents(g: &Global, targets: &[Target], all: bool, json: bool) -> ExitCode {
    let answers = gather(g, targets, Request::Incidents { all }).await;
    let now = now_ms();
    let mut parts = Vec::new();
    let mut items = Vec::new();
    for (t, a) in targets.iter().zip(&answers) {
        if let Ok(Response::Incidents { incidents, .. }) = a {
            parts.push((t.name.clone(), incidents_table(incidents, now)));
            items.extend(incidents.iter().map(|x| with_host(&t.name, x)));
        }
    }
    if json {
        print_json(
            &serde_json::json!({ "incidents": items, "unreachable": missing_json(targets, &answers) }),
        );
    } else {
        print!("{}", merge_tables(&parts));
    }
    report_missing(targets, &answers)
}

/// `task list` over several daemons: one list, newest first. Daemons that
/// share a queue list the same tasks: each is shown once (a task of a
/// shared queue has a host; ids of separate daemons' own queues may
/// coincide and are kept apart). A task's host is the daemon that ran it (a
/// shared queue says which), else the one that holds it.
pub async fn task_list(g: &Global, targets: &[Target], req: Request, json: bool) -> ExitCode {
    let limit = match &req {
        Request::TaskList { limit, .. } => *limit,
        _ => usize::MAX,
    };
    let answers = gather(g, targets, req).await;
    let mut all: Vec<crate::proto::TaskStatus> = Vec::new();
    for (t, a) in targets.iter().zip(&answers) {
        if let Ok(Response::Tasks { tasks }) = a {
            for task in tasks {
                let shared = task.host.is_some();
                if shared && all.iter().any(|x| x.id == task.id && x.host.is_some()) {
                    continue;
                }
                let mut task = task.clone();
                task.host.get_or_insert_with(|| t.name.clone());
                all.push(task);
            }
        }
    }
    all.sort_by(|a, b| b.submitted_at.cmp(&a.submitted_at).then(b.id.cmp(&a.id)));
    all.truncate(limit.max(1));
    if json {
        print_json(&serde_json::to_value(&all).unwrap_or(Value::Null));
    } else {
        print!("{}", task_table(&all));
    }
    report_missing(targets, &answers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_tables_keep_one_header_and_lead_each_row_with_its_host() {
        let parts = vec![
            (
                "a".to_string(),
                "AGENT  STATE\necho   running\n".to_string(),
            ),
            ("gpu-2".to_string(), "no alerts\n".to_string()),
            ("b".to_string(), "AGENT  STATE\nweb    failed\n".to_string()),
        ];
        assert_eq!(
            merge_tables(&parts),
            "HOST   AGENT  STATE\na      echo   running\nb      web    failed\n"
        );
        let empty = vec![("a".to_string(), "no alerts\n\n2 rules:\n  x\n".to_string())];
        assert_eq!(merge_tables(&empty), "no alerts\n");
        // What follows the first section stays out of the merged table.
        let rules = vec![
            (
                "a".to_string(),
                "STATE  ALERT\nfiring x\n\n2 rules:\n  r\n".to_string(),
            ),
            ("b".to_string(), "no alerts\n\n1 rules:\n  r\n".to_string()),
        ];
        assert_eq!(merge_tables(&rules), "HOST  STATE  ALERT\na     firing x\n");
    }
}
