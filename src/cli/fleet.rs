//! `status` and `logs`.

use super::*;

pub async fn status(g: &Global, replicas: bool, json: bool) -> ExitCode {
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

/// `autonomos logs`: sanitized, one `[replica] line` each; `-f` polls for more.
pub async fn logs(g: &Global, agent: String, follow: bool, lines: usize, json: bool) -> ExitCode {
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
                        let tag = match l.stream {
                            Stream::Stdout => "",
                            Stream::Stderr => "!",
                        };
                        writeln!(
                            out,
                            "[{}{tag}] {}",
                            l.replica,
                            sanitize_line(l.text.as_bytes())
                        )
                        .is_ok()
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
