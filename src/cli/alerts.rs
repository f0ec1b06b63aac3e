//! `alerts` and its subcommands.

use super::*;

async fn list(g: &Global, json: bool) -> ExitCode {
    match ask(g, Request::Alerts).await {
        Ok(Response::Alerts { report }) if json => json_out(&report),
        Ok(Response::Alerts { report }) => {
            print!("{}", alerts_table(&report, now_ms()));
            ExitCode::SUCCESS
        }
        Ok(r) => unexpected(r),
        Err(e) => fail(&e, json),
    }
}

pub async fn alerts(g: &Global, cmd: Option<AlertsCommand>, json: bool) -> ExitCode {
    match cmd.unwrap_or(AlertsCommand::List) {
        AlertsCommand::List => match several(g, json) {
            Ok(Some(t)) => super::multi::alerts(g, &t, json).await,
            Err(code) => code,
            Ok(None) => list(g, json).await,
        },
        AlertsCommand::Ack { pattern } => simple(g, Request::Ack { pattern }, json).await,
        AlertsCommand::Silence { pattern, duration } => {
            let for_ms = duration.as_millis() as u64;
            simple(g, Request::Silence { pattern, for_ms }, json).await
        }
        AlertsCommand::History { alert, lines } => {
            match ask(
                g,
                Request::AlertHistory {
                    alert,
                    limit: lines,
                },
            )
            .await
            {
                Ok(Response::AlertHistory { events }) if json => json_out(&events),
                Ok(Response::AlertHistory { events }) => {
                    if events.is_empty() {
                        println!("no alert history");
                    }
                    for e in &events {
                        println!(
                            "{}  {:<8} {:<8} {:<32} {}",
                            utc(e.at),
                            e.state,
                            e.severity,
                            crate::core::sanitize::sanitize_line(e.id.as_bytes()),
                            crate::core::sanitize::sanitize_line(e.summary.as_bytes())
                        );
                    }
                    ExitCode::SUCCESS
                }
                Ok(r) => unexpected(r),
                Err(e) => fail(&e, json),
            }
        }
    }
}
