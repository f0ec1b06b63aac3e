//! `task`: submit, list, show, cancel, retry.

use std::io::Read;

use super::*;
use crate::core::task::TaskState;
use crate::proto::{NewTask, Response, Submit, TaskStatus};

pub async fn task(g: &Global, cmd: TaskCommand, json: bool) -> ExitCode {
    match cmd {
        TaskCommand::Submit {
            agent,
            skill,
            input,
            input_file,
            batch,
            key,
            priority,
            context,
            timeout,
            wait,
        } => {
            if agent.is_none() && skill.is_none() {
                return refuse(json, ExitCode::from(2), "name an agent, or --skill");
            }
            if key.is_some() && batch.is_some() {
                let msg = "--key names one task; a batch's lines would all be that task";
                return refuse(json, ExitCode::from(2), msg);
            }
            let inputs = match inputs(input, input_file, batch.as_deref()) {
                Ok(v) => v,
                Err(e) => return refuse(json, ExitCode::from(2), e),
            };
            let one = inputs.len() == 1;
            let tasks = inputs
                .into_iter()
                .map(|input| NewTask {
                    input,
                    key: key.clone(),
                    context_id: context.clone(),
                })
                .collect();
            let s = Submit {
                agent,
                skill,
                tasks,
                priority,
                timeout_ms: timeout.map(|d| d.as_millis() as u64),
            };
            submit(g, s, json, wait && one).await
        }
        TaskCommand::List {
            agent,
            state,
            lines,
        } => {
            let state = match state.as_deref().map(|s| (s, TaskState::parse(s))) {
                Some((s, None)) => {
                    let msg = format!(
                        "`{s}` is not a task state: submitted, working, completed, failed, canceled, rejected"
                    );
                    return refuse(json, ExitCode::from(2), msg);
                }
                Some((_, st)) => st,
                None => None,
            };
            let req = Request::TaskList {
                agent,
                state,
                limit: lines,
            };
            match several(g, json) {
                Ok(Some(t)) => super::multi::task_list(g, &t, req, json).await,
                Ok(None) => show(g, req, json, true).await,
                Err(code) => code,
            }
        }
        TaskCommand::Show { id } => show(g, Request::TaskGet { id }, json, false).await,
        TaskCommand::Cancel { id } => show(g, Request::TaskCancel { id }, json, false).await,
        TaskCommand::Retry { id } => show(g, Request::TaskRetry { id }, json, false).await,
    }
}

/// The inputs: `--input`, `--input-file`, or a batch of JSON lines.
fn inputs(
    input: Option<String>,
    file: Option<PathBuf>,
    batch: Option<&Path>,
) -> Result<Vec<serde_json::Value>, String> {
    let read = |p: &Path| -> Result<String, String> {
        if p == Path::new("-") {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| format!("cannot read stdin: {e}"))?;
            Ok(s)
        } else {
            std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
        }
    };
    // Text that is not JSON is a JSON string: `--input "summarize this"`.
    let value = |s: &str| serde_json::from_str(s).unwrap_or_else(|_| serde_json::Value::from(s));
    if let Some(b) = batch {
        let text = read(b)?;
        let mut v = Vec::new();
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let j = serde_json::from_str(line)
                .map_err(|e| format!("line {} of the batch is not JSON: {e}", n + 1))?;
            v.push(j);
        }
        if v.is_empty() {
            return Err("the batch is empty".into());
        }
        return Ok(v);
    }
    Ok(vec![match (input, file) {
        (Some(i), _) => value(&i),
        (None, Some(f)) => value(read(&f)?.trim_end()),
        (None, None) => serde_json::Value::Null,
    }])
}

async fn submit(g: &Global, s: Submit, json: bool, wait: bool) -> ExitCode {
    let mut c = match connect(g).await {
        Ok(c) => c,
        Err(e) => return fail(&e, json),
    };
    let tasks = match c.request(Request::TaskSubmit(s)).await {
        Ok(Response::Tasks { tasks }) => tasks,
        Ok(r) => return unexpected(r),
        Err(e) => return fail(&e, json),
    };
    if !wait {
        if json {
            return json_out(&tasks);
        }
        for t in &tasks {
            println!("{}", t.id);
        }
        return ExitCode::SUCCESS;
    }
    let Some(id) = tasks.first().map(|t| t.id.clone()) else {
        return ExitCode::FAILURE;
    };
    loop {
        match c.request(Request::TaskGet { id: id.clone() }).await {
            Ok(Response::Tasks { tasks }) if tasks.first().is_some_and(|t| t.state.is_final()) => {
                let t = &tasks[0];
                if json {
                    let _ = json_out(t);
                } else {
                    print!("{}", task_text(t));
                }
                return if t.state == TaskState::Completed {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                };
            }
            Ok(Response::Tasks { .. }) => tokio::time::sleep(Duration::from_millis(50)).await,
            Ok(r) => return unexpected(r),
            Err(e) => return fail(&e, json),
        }
    }
}

async fn show(g: &Global, req: Request, json: bool, table: bool) -> ExitCode {
    match ask(g, req).await {
        Ok(Response::Tasks { tasks }) => {
            if json {
                if table {
                    json_out(&tasks)
                } else {
                    tasks.first().map_or(ExitCode::FAILURE, json_out)
                }
            } else {
                if table {
                    print!("{}", task_table(&tasks));
                } else {
                    for t in &tasks {
                        print!("{}", task_text(t));
                    }
                }
                ExitCode::SUCCESS
            }
        }
        Ok(r) => unexpected(r),
        Err(e) => fail(&e, json),
    }
}

pub(super) fn task_table(tasks: &[TaskStatus]) -> String {
    if tasks.is_empty() {
        return "no tasks\n".into();
    }
    // A shared queue names the host that ran each task.
    let hosts = tasks.iter().any(|t| t.host.is_some());
    let width = tasks
        .iter()
        .filter_map(|t| t.host.as_deref())
        .map(str::len)
        .max()
        .unwrap_or(0)
        .max(4);
    let host = |h: Option<&str>| {
        if hosts {
            format!("{:<width$} ", h.unwrap_or("-"))
        } else {
            String::new()
        }
    };
    let idw = tasks.iter().map(|t| t.id.len()).max().unwrap_or(16).max(16);
    let mut out = format!(
        "{:<idw$} {:<16} {}{:<10} {:>3} {:>4}  {:<10} RESULT / ERROR\n",
        "ID",
        "AGENT",
        host(Some("HOST")),
        "STATE",
        "TRY",
        "REPL",
        "AGE"
    );
    let now = now_ms();
    for t in tasks {
        let what = match (&t.result, &t.error) {
            (Some(r), _) => r.to_string(),
            (None, Some(e)) => e.clone(),
            _ => String::new(),
        };
        let what: String = crate::core::sanitize::sanitize_line(what.as_bytes())
            .chars()
            .take(60)
            .collect();
        out.push_str(&format!(
            "{:<idw$} {:<16} {}{:<10} {:>3} {:>4}  {:<10} {what}\n",
            t.id,
            t.agent,
            host(t.host.as_deref()),
            t.state.name(),
            t.attempts,
            t.replica.map_or("-".into(), |r| r.to_string()),
            crate::core::units::fmt_age(now.saturating_sub(t.submitted_at)),
        ));
    }
    out
}

fn task_text(t: &TaskStatus) -> String {
    let mut out = format!(
        "task {}\n  agent     {}\n  state     {}\n  attempts  {}\n",
        t.id, t.agent, t.state, t.attempts
    );
    let at = |ms: Option<u64>| ms.map_or("-".into(), crate::core::units::utc);
    if let Some(r) = t.replica {
        out.push_str(&format!("  replica   {}/{r}\n", t.agent));
    }
    if let Some(h) = &t.host {
        out.push_str(&format!("  host      {h}\n"));
    }
    out.push_str(&format!("  submitted {}\n", at(Some(t.submitted_at))));
    out.push_str(&format!("  started   {}\n", at(t.started_at)));
    out.push_str(&format!("  finished  {}\n", at(t.finished_at)));
    let clip = |v: &serde_json::Value| {
        let s = crate::core::sanitize::sanitize_line(v.to_string().as_bytes());
        if s.chars().count() > 400 {
            format!(
                "{}… (--json shows it whole)",
                s.chars().take(400).collect::<String>()
            )
        } else {
            s
        }
    };
    out.push_str(&format!("  input     {}\n", clip(&t.input)));
    if let Some(r) = &t.result {
        out.push_str(&format!("  result    {}\n", clip(r)));
    }
    if let Some(e) = &t.error {
        out.push_str(&format!("  error     {e}\n"));
    }
    out
}
