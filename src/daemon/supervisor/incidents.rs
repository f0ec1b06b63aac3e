//! Incident requests: list, show, open, note, advance, assign, resolve.

use super::actor::{Actor, Answer};
use super::err;
use crate::core::incident::EntryKind;
use crate::daemon::observe::INCIDENTS_REPORTED;
use crate::proto::{ErrorKind, Response};

impl Actor {
    pub(super) fn incidents(&mut self, all: bool, answer: Answer) {
        let (incidents, omitted) = self.observe.incidents(all, INCIDENTS_REPORTED);
        let _ = answer.send(Ok(Response::Incidents { incidents, omitted }));
    }

    pub(super) fn incident(&mut self, id: u64, answer: Answer) {
        let _ = answer.send(match self.observe.incident(id) {
            Some(i) => Ok(Response::Incident {
                incident: Box::new(i.clone()),
            }),
            None => Err(err(
                ErrorKind::Invalid,
                format!("no incident #{id} (see `autonomos incidents --all`)"),
            )),
        });
    }

    pub(super) fn incident_open(
        &mut self,
        title: String,
        level: u8,
        agent: Option<String>,
        answer: Answer,
        who: &str,
    ) {
        let title = title.trim().to_string();
        let result = if title.is_empty() {
            Err(err(ErrorKind::Invalid, "an incident needs a title"))
        } else if !(1..=3).contains(&level) {
            Err(err(
                ErrorKind::Invalid,
                "the level is 1 (critical), 2 (major) or 3 (minor)",
            ))
        } else if let Some(a) = agent.as_deref()
            && let Err(e) = self.find(a)
        {
            Err(e)
        } else {
            let now = self.clock.now();
            let id = self
                .observe
                .open_incident(title, level, None, agent, who, now);
            self.observe.flush();
            Ok(Response::Done {
                message: format!("opened incident #{id}"),
            })
        };
        let _ = answer.send(result);
    }

    pub(super) fn incident_note(&mut self, id: u64, text: String, answer: Answer, who: &str) {
        let now = self.clock.now();
        let text = text.trim().to_string();
        let r = if text.is_empty() {
            Err("a note needs text".to_string())
        } else {
            self.observe.with_incident(id, |i| {
                i.record(now, EntryKind::Note, who, text);
                Ok(format!("noted on incident #{id}"))
            })
        };
        reply(answer, r);
    }

    pub(super) fn incident_advance(
        &mut self,
        id: u64,
        phase: Option<&str>,
        answer: Answer,
        who: &str,
    ) {
        let to = match phase.map(crate::daemon::observe::parse_phase) {
            Some(Err(e)) => return drop(answer.send(Err(err(ErrorKind::Invalid, e)))),
            Some(Ok(p)) => Some(p),
            None => None,
        };
        let now = self.clock.now();
        let r = self.observe.with_incident(id, |i| {
            let p = i.advance(to, who, now)?;
            Ok(format!("incident #{id} is in {}", p.name()))
        });
        reply(answer, r);
    }

    pub(super) fn incident_assign(&mut self, id: u64, owner: &str, answer: Answer, who: &str) {
        let now = self.clock.now();
        let r = self.observe.with_incident(id, |i| {
            let owner = owner.trim().to_string();
            if owner.is_empty() {
                return Err("name an owner".to_string());
            }
            i.record(now, EntryKind::Action, who, format!("owner: {owner}"));
            i.owner = Some(owner.clone());
            Ok(format!("incident #{id} is owned by {owner}"))
        });
        reply(answer, r);
    }

    pub(super) fn incident_resolve(
        &mut self,
        id: u64,
        note: Option<&str>,
        answer: Answer,
        who: &str,
    ) {
        let now = self.clock.now();
        let r = self.observe.with_incident(id, |i| {
            i.resolve(who, note, now)?;
            Ok(format!("incident #{id} resolved"))
        });
        reply(answer, r);
    }
}

/// Answers with the message, or the refusal as an invalid request.
fn reply(answer: Answer, r: Result<String, String>) {
    let _ = answer.send(
        r.map(|message| Response::Done { message })
            .map_err(|e| err(ErrorKind::Invalid, e)),
    );
}
