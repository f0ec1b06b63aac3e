//! The command palette: a typed line to a request, and completion.

use super::*;
use crate::client::verbs::{FleetVerb, parse_line};

/// Runs a palette line such as `scale researcher 3`.
pub(super) fn palette_command(m: &mut Model, line: &str) -> Vec<Request> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let known = |m: &Model, a: &str| m.agents().iter().any(|x| x.name == a);
    let req = match words.as_slice() {
        [] => return vec![],
        [verb, ..] if FleetVerb::NAMES.contains(verb) => match parse_line(&words) {
            Ok(FleetVerb::Shutdown { .. }) => {
                return confirm(
                    m,
                    "Shut the whole fleet down and stop the daemon? (y/n)".into(),
                    Request::Shutdown,
                );
            }
            Ok(v) => match v.request() {
                Ok(req) => req,
                Err(e) => {
                    m.notify(e, true);
                    return vec![];
                }
            },
            Err(e) => {
                m.notify(e, true);
                return vec![];
            }
        },
        ["logs", a] if known(m, a) => {
            let rows = m.rows();
            if let Some(pos) = rows.iter().position(|r| match r {
                Row::Agent(i) => m.agents()[*i].name == *a,
                _ => false,
            }) {
                m.selected = pos;
            }
            m.focus = Panel::Logs;
            return vec![];
        }
        ["backup"] => Request::Backup,
        ["task", a, _, ..] if known(m, a) => {
            // The rest of the line is the input: JSON, else a JSON string.
            let text = rest_after(line, 2);
            let input = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
            Request::TaskSubmit(crate::proto::Submit {
                agent: Some(a.to_string()),
                skill: None,
                tasks: vec![crate::proto::NewTask {
                    input,
                    key: None,
                    context_id: None,
                }],
                priority: 0,
                timeout_ms: None,
            })
        }
        ["send", target, _, ..] => return send_line(m, target, rest_after(line, 2)),
        ["ack", pattern] => Request::Ack {
            pattern: pattern.to_string(),
        },
        ["silence", pattern, d] => match crate::core::units::parse_duration(d) {
            Ok(d) => Request::Silence {
                pattern: pattern.to_string(),
                for_ms: d.as_millis() as u64,
            },
            Err(e) => {
                m.notify(e, true);
                return vec![];
            }
        },
        ["incident", level, _, ..] => match level.parse::<u8>() {
            Ok(level @ 1..=3) => Request::IncidentOpen {
                title: rest_after(line, 2),
                level,
                agent: None,
            },
            _ => {
                m.notify("the level is 1 (critical), 2 (major) or 3 (minor)", true);
                return vec![];
            }
        },
        ["note", id, _, ..] | ["advance", id] | ["resolve", id] => {
            let Ok(id) = id.trim_start_matches('#').parse::<u64>() else {
                m.notify(format!("`{id}` is not an incident number"), true);
                return vec![];
            };
            match words[0] {
                "note" => Request::IncidentNote {
                    id,
                    text: rest_after(line, 2),
                },
                "advance" => Request::IncidentAdvance { id, phase: None },
                _ => Request::IncidentResolve { id, note: None },
            }
        }
        ["detach"] | ["quit"] | ["q"] => {
            m.quit = true;
            return vec![];
        }
        [verb, ..] => {
            let usage = VERBS
                .iter()
                .find(|(v, _)| v == verb)
                .map(|(v, args)| format!("usage: {v} {args}"))
                .unwrap_or_else(|| {
                    format!(
                        "unknown command `{verb}`; commands: {}",
                        VERBS.iter().map(|(v, _)| *v).collect::<Vec<_>>().join(", ")
                    )
                });
            m.notify(usage, true);
            return vec![];
        }
    };
    m.notify(format!("sent: {}", req), false);
    vec![req]
}

/// The text of `line` after its first `n` words.
pub(super) fn rest_after(line: &str, n: usize) -> String {
    let mut rest = line.trim_start();
    for _ in 0..n {
        rest = rest
            .split_once(char::is_whitespace)
            .map_or("", |(_, r)| r)
            .trim_start();
    }
    rest.trim_end().to_string()
}

/// Tab completion: the verb, then an agent name.
pub fn complete(m: &Model, input: &str) -> String {
    let ends_with_space = input.ends_with(' ');
    let words: Vec<&str> = input.split_whitespace().collect();
    let common = |cands: Vec<&str>, prefix: &str| -> Option<String> {
        let first = cands.first()?;
        let mut p = first.to_string();
        for c in &cands[1..] {
            while !c.starts_with(&p) {
                p.pop();
            }
        }
        (p.len() >= prefix.len()).then_some(p)
    };
    match (words.as_slice(), ends_with_space) {
        ([], _) => input.to_string(),
        ([verb], false) => {
            let cands: Vec<&str> = VERBS
                .iter()
                .map(|(v, _)| *v)
                .filter(|v| v.starts_with(verb))
                .collect();
            match (cands.len(), common(cands.clone(), verb)) {
                (1, _) => format!("{} ", cands[0]),
                (_, Some(p)) => p,
                _ => input.to_string(),
            }
        }
        ([verb], true) | ([verb, _], false) => {
            let prefix = if ends_with_space { "" } else { words[1] };
            let names: Vec<&str> = m
                .agents()
                .iter()
                .map(|a| a.name.as_str())
                .filter(|n| n.starts_with(prefix))
                .collect();
            match (names.len(), common(names.clone(), prefix)) {
                (1, _) => format!("{verb} {} ", names[0]),
                (_, Some(p)) => format!("{verb} {p}"),
                _ => input.to_string(),
            }
        }
        _ => input.to_string(),
    }
}

/// `send AGENT[/N] LINE…`: the line typed into a tty replica, then Enter.
fn send_line(m: &mut Model, target: &str, text: String) -> Vec<Request> {
    match crate::proto::parse_target(target) {
        Ok((a, r)) if m.agents().iter().any(|x| x.name == a) => vec![Request::Send {
            agent: a,
            replica: r.unwrap_or(0),
            text,
            enter: true,
            hold: None,
        }],
        _ => {
            m.notify(format!("`{target}` is not an agent"), true);
            vec![]
        }
    }
}
