//! The supervisor's event stream, with sequence numbers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::broadcast;

use crate::proto::ServerEvent;

/// Capacity of the event broadcast: a client further behind than this gets
/// a fresh snapshot instead of the backlog.
pub const EVENT_BACKLOG: usize = 4096;

/// Events for subscribed clients, numbered so that a snapshot can say
/// which it includes.
#[derive(Clone, Debug)]
pub struct Events {
    tx: broadcast::Sender<Arc<(u64, ServerEvent)>>,
    seq: Arc<AtomicU64>,
}

impl Events {
    pub(super) fn new() -> Self {
        let (tx, _) = broadcast::channel(EVENT_BACKLOG);
        Self {
            tx,
            seq: Arc::new(AtomicU64::new(0)),
        }
    }

    pub(super) fn emit(&self, event: ServerEvent) {
        let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        // No subscriber is fine: nobody is listening.
        let _ = self.tx.send(Arc::new((seq, event)));
    }

    /// True while at least one client is subscribed.
    pub fn has_subscribers(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// The sequence number of the last event sent.
    pub fn seq(&self) -> u64 {
        self.seq.load(Ordering::SeqCst)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<(u64, ServerEvent)>> {
        self.tx.subscribe()
    }
}
