//! The `logs` request: recent lines of an agent's replicas from memory.

use super::LOGS_REPLY_BYTES;
use super::actor::{Actor, Answer};
use crate::proto::{LogLine, Response};

impl Actor {
    pub(super) fn logs(&mut self, agent: &str, lines: usize, since: Option<u64>, answer: Answer) {
        let ai = match self.find(agent) {
            Ok(ai) => ai,
            Err(e) => return drop(answer.send(Err(e))),
        };
        let since = since.unwrap_or(0);
        let mut all: Vec<LogLine> = Vec::new();
        for r in self.agents[ai].replicas.values() {
            if let Ok(ring) = r.ring.lock() {
                all.extend(ring.tail_since(since, lines));
            }
        }
        all.sort_by_key(|l| l.seq);
        let skip = all.len().saturating_sub(lines);
        let mut lines = all.split_off(skip);
        // Keep the answer well inside one frame: newest lines first.
        let mut budget = LOGS_REPLY_BYTES;
        let keep = lines
            .iter()
            .rev()
            .take_while(|l| {
                let cost = l.text.len() * 2 + 96;
                let fits = cost <= budget;
                budget = budget.saturating_sub(cost);
                fits
            })
            .count();
        let lines = lines.split_off(lines.len() - keep);
        let next = lines.last().map(|l| l.seq).unwrap_or(since).max(since);
        let _ = answer.send(Ok(Response::Logs { lines, next }));
    }
}
