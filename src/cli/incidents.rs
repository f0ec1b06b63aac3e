//! `incidents` and its subcommands.

use super::*;

async fn list(g: &Global, all: bool, json: bool) -> ExitCode {
    match ask(g, Request::Incidents { all }).await {
        Ok(Response::Incidents { incidents, .. }) if json => json_out(&incidents),
        Ok(Response::Incidents { incidents, omitted }) => {
            print!("{}", incidents_table(&incidents, now_ms()));
            if omitted > 0 {
                println!("({omitted} older incidents not listed; `incidents show ID` reads any)");
            }
            ExitCode::SUCCESS
        }
        Ok(r) => unexpected(r),
        Err(e) => fail(&e, json),
    }
}

pub async fn incidents(g: &Global, cmd: Option<IncidentsCommand>, json: bool) -> ExitCode {
    use IncidentsCommand as C;
    let show = |i: Box<Incident>| {
        if json {
            json_out(&i)
        } else {
            print!("{}", i.report(&utc));
            ExitCode::SUCCESS
        }
    };
    match cmd.unwrap_or(C::List { all: false }) {
        C::List { all } => match several(g, json) {
            Ok(Some(t)) => super::multi::incidents(g, &t, all, json).await,
            Ok(None) => list(g, all, json).await,
            Err(code) => code,
        },
        C::Show { id } => match ask(g, Request::Incident { id }).await {
            Ok(Response::Incident { incident }) => show(incident),
            Ok(r) => unexpected(r),
            Err(e) => fail(&e, json),
        },
        C::Export { id, output } => match ask(g, Request::Incident { id }).await {
            Ok(Response::Incident { incident }) => {
                let text = incident.report(&utc);
                match output {
                    None => {
                        print!("{text}");
                        ExitCode::SUCCESS
                    }
                    Some(path) => match std::fs::write(&path, text) {
                        Ok(()) => {
                            eprintln!("wrote {}", path.display());
                            ExitCode::SUCCESS
                        }
                        Err(e) => refuse(
                            json,
                            ExitCode::FAILURE,
                            format!("cannot write {}: {e}", path.display()),
                        ),
                    },
                }
            }
            Ok(r) => unexpected(r),
            Err(e) => fail(&e, json),
        },
        C::Open {
            title,
            level,
            agent,
        } => {
            simple(
                g,
                Request::IncidentOpen {
                    title,
                    level,
                    agent,
                },
                json,
            )
            .await
        }
        C::Note { id, text } => simple(g, Request::IncidentNote { id, text }, json).await,
        C::Advance { id, to } => simple(g, Request::IncidentAdvance { id, phase: to }, json).await,
        C::Assign { id, owner } => simple(g, Request::IncidentAssign { id, owner }, json).await,
        C::Resolve { id, note } => simple(g, Request::IncidentResolve { id, note }, json).await,
    }
}
