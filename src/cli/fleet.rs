//! `status` and `logs`.

use super::*;

pub async fn status(g: &Global, replicas: bool, json: bool) -> ExitCode {
    match several(g, json) {
        Ok(Some(t)) => return super::multi::status(g, &t, replicas, json).await,
        Ok(None) => {}
        Err(code) => return code,
    }
    let result = async { connect(g).await?.status().await }.await;
    match result {
        Ok(s) => {
            if json {
                match serde_json::to_string_pretty(&s) {
                    Ok(text) => println!("{text}"),
                    Err(e) => eprintln!("error: {e}"),
                }
            } else {
                print!("{}", status_table(&s, replicas));
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e, json),
    }
}

/// How `autonomos logs` prints.
pub struct LogsHow {
    pub follow: bool,
    pub lines: usize,
    /// Each line starts with its time.
    pub time: bool,
    pub json: bool,
}

/// `autonomos logs`: sanitized, one line each as in the log file (`TIME
/// REPLICA out|err TEXT`); `-f` polls for more.
pub async fn logs(g: &Global, agent: String, how: LogsHow) -> ExitCode {
    let LogsHow {
        follow,
        lines,
        time,
        json,
    } = how;
    let mut c = match connect(g).await {
        Ok(c) => c,
        Err(e) => return fail(&e, json),
    };
    let mut since = None;
    let mut out = std::io::stdout().lock();
    loop {
        let req = Request::Logs {
            agent: agent.clone(),
            lines,
            since,
        };
        match c.request(req).await {
            Ok(Response::Logs { lines: got, next }) => {
                if let Some(prev) = since
                    && let Some(first) = got.first()
                    && first.seq > prev + 1
                {
                    let skipped = first.seq - prev - 1;
                    if !json {
                        let _ = writeln!(
                            out,
                            "… {skipped} lines not shown (output faster than the follow)"
                        );
                    }
                }
                for l in &got {
                    let r = if json {
                        serde_json::to_string(l)
                            .map(|s| writeln!(out, "{s}"))
                            .is_ok()
                    } else {
                        writeln!(out, "{}", log_line(l, time)).is_ok()
                    };
                    if !r {
                        return ExitCode::SUCCESS; // stdout closed (e.g. | head)
                    }
                }
                let _ = out.flush();
                since = Some(next);
            }
            Ok(other) => {
                eprintln!("error: unexpected answer {other:?}");
                return ExitCode::FAILURE;
            }
            Err(e) => return fail(&e, json),
        }
        if !follow {
            return ExitCode::SUCCESS;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A log line as the log file has it: `2026-12-06T19:40:01.123Z 0 out text`
/// (without the time when `time` is false).
pub fn log_line(l: &crate::proto::LogLine, time: bool) -> String {
    let stream = match l.stream {
        Stream::Stdout => "out",
        Stream::Stderr => "err",
    };
    let text = sanitize_line(l.text.as_bytes());
    if time {
        let at = jiff::Timestamp::from_millisecond(l.at as i64)
            .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
            .unwrap_or_else(|_| l.at.to_string());
        format!("{at} {} {stream} {text}", l.replica)
    } else {
        format!("{} {stream} {text}", l.replica)
    }
}
