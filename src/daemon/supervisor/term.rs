//! `tty = true` agents in the actor: their screens, what is typed into
//! them, their size, and what each replica is doing (working, waiting for
//! input, idle, exited), refreshed at every sample.

use std::sync::Arc;

use super::actor::Actor;
use super::err;
use crate::daemon::tty::{Attention, Term};
use crate::proto::{ErrorKind, ErrorReply, Request, Response};

impl Actor {
    /// The terminal of a live replica of a `tty` agent, or why there is
    /// none.
    fn term_of(&self, agent: &str, replica: u32) -> Result<Arc<Term>, ErrorReply> {
        let ai = self.find(agent)?;
        let a = &self.agents[ai];
        if a.spec.tty.is_none() {
            return Err(err(
                ErrorKind::Invalid,
                format!("`{agent}` has no terminal: set `tty = true` in its config"),
            ));
        }
        let Some(r) = a.replicas.get(&replica) else {
            return Err(err(
                ErrorKind::Invalid,
                format!(
                    "`{agent}` has no replica {replica} (it has {})",
                    a.replicas.len()
                ),
            ));
        };
        let run = r.s.run.map(|run| run.id);
        match &r.term {
            Some((id, t)) if Some(*id) == run && r.s.state().is_running() => Ok(t.clone()),
            _ => Err(err(
                ErrorKind::Invalid,
                format!("{agent}/{replica} is not running ({})", r.s.state()),
            )),
        }
    }

    /// `screen`, `send` and `resize`.
    pub(super) fn term_request(&self, req: Request, who: &str) -> Result<Response, ErrorReply> {
        match req {
            Request::Screen {
                agent,
                replica,
                cells,
            } => {
                let t = self.term_of(&agent, replica)?;
                Ok(Response::Screen {
                    screen: t.screen(&agent, replica, cells),
                })
            }
            Request::Send {
                agent,
                replica,
                text,
                enter,
                hold,
            } => {
                let t = self.term_of(&agent, replica)?;
                let mut bytes = text.into_bytes();
                if enter {
                    // What the Enter key sends; the terminal turns it into
                    // a newline for programs that read lines.
                    bytes.push(b'\r');
                }
                let n = bytes.len();
                let before = t.holder();
                t.type_in(bytes, who, hold)
                    .map_err(|e| err(ErrorKind::Invalid, e))?;
                let after = t.holder();
                if before != after {
                    // Focus mode is on the audit trail by its hold, not
                    // by each key.
                    let (action, result) = match after {
                        Some(_) => ("terminal-hold", "took the input"),
                        None => ("terminal-release", "gave the input back"),
                    };
                    let args = serde_json::json!({ "agent": agent, "replica": replica });
                    self.observe.audit_as(who, action, args, result);
                }
                Ok(Response::Done {
                    message: format!("typed {n} bytes into {agent}/{replica}"),
                })
            }
            Request::Resize {
                agent,
                replica,
                rows,
                cols,
            } => {
                let t = self.term_of(&agent, replica)?;
                t.resize(rows, cols)
                    .map_err(|e| err(ErrorKind::Invalid, e))?;
                Ok(Response::Done {
                    message: format!("{agent}/{replica} is now {rows}x{cols}"),
                })
            }
            other => Err(err(
                ErrorKind::Protocol,
                format!("not a terminal request: {other}"),
            )),
        }
    }

    /// What every replica of a `tty` agent is doing now.
    pub(super) fn update_attention(&mut self) {
        let now = crate::clock::now_ms();
        for a in &mut self.agents {
            if a.spec.tty.is_none() {
                continue;
            }
            let patterns = crate::daemon::tty::patterns(&a.spec.attention);
            for r in a.replicas.values_mut() {
                let run = r.s.run.map(|run| run.id);
                r.attention = Some(match &r.term {
                    Some((id, t)) if Some(*id) == run && r.s.state().is_running() => {
                        crate::daemon::tty::attention(t, &patterns, now, r.cpu_percent >= 5.0)
                    }
                    _ => Attention::Exited,
                });
            }
        }
    }
}
