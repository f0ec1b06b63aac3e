//! Alert requests: the report, acknowledgements, silences.

use super::actor::{Actor, Answer};
use super::err;
use crate::core::units::fmt_ms;
use crate::proto::{ErrorKind, Response};

/// The longest silence.
const MAX_SILENCE_MS: u64 = 30 * 86_400_000;

impl Actor {
    pub(super) fn alerts(&mut self, answer: Answer) {
        let _ = answer.send(Ok(Response::Alerts {
            report: Box::new(self.observe.report()),
        }));
    }

    pub(super) fn ack(&mut self, pattern: &str, answer: Answer, who: &str) {
        let ids = self.observe.ack(pattern, who);
        let _ = answer.send(if ids.is_empty() {
            Err(err(
                ErrorKind::Invalid,
                format!("no firing alert matches `{pattern}` (see `autonomos alerts`)"),
            ))
        } else {
            Ok(Response::Done {
                message: format!("acknowledged {}", ids.join(", ")),
            })
        });
    }

    pub(super) fn silence(&mut self, pattern: &str, for_ms: u64, answer: Answer, who: &str) {
        if for_ms == 0 || for_ms > MAX_SILENCE_MS {
            let _ = answer.send(Err(err(
                ErrorKind::Invalid,
                "a silence lasts from 1ms to 30 days",
            )));
            return;
        }
        let now = self.clock.now();
        let ids = self.observe.silence(pattern, now + for_ms, who);
        let covered = if ids.is_empty() {
            "no live alert yet; it applies to future ones".to_string()
        } else {
            ids.join(", ")
        };
        let _ = answer.send(Ok(Response::Done {
            message: format!("silenced `{pattern}` for {} ({covered})", fmt_ms(for_ms)),
        }));
    }
}
