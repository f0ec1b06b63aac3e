//! A bounded channel for blocking threads that allocates as it fills.
//!
//! `std::sync::mpsc::sync_channel(n)` reserves and initializes all `n`
//! slots at once: the audit queue's 65,536 slots alone were 8 MiB of
//! resident memory in every daemon, idle or not. This is std's unbounded
//! (linked-block, lazily allocated) channel with the same bound counted
//! beside it, and the same calls: `try_send` refuses past the bound,
//! `send` waits for room.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

pub use std::sync::mpsc::{RecvError, RecvTimeoutError, TryRecvError, TrySendError};

/// The sending half; clone it freely.
#[derive(Debug)]
pub struct Sender<T> {
    tx: mpsc::Sender<T>,
    len: Arc<AtomicUsize>,
    cap: usize,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender {
            tx: self.tx.clone(),
            len: self.len.clone(),
            cap: self.cap,
        }
    }
}

/// The receiving half.
#[derive(Debug)]
pub struct Receiver<T> {
    rx: mpsc::Receiver<T>,
    len: Arc<AtomicUsize>,
}

/// A channel that holds at most `cap` messages.
pub fn channel<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = mpsc::channel();
    let len = Arc::new(AtomicUsize::new(0));
    (
        Sender {
            tx,
            len: len.clone(),
            cap: cap.max(1),
        },
        Receiver { rx, len },
    )
}

impl<T> Sender<T> {
    /// Queues `t` unless the channel is full or closed.
    pub fn try_send(&self, t: T) -> Result<(), TrySendError<T>> {
        if self.len.fetch_add(1, Ordering::SeqCst) >= self.cap {
            self.len.fetch_sub(1, Ordering::SeqCst);
            return Err(TrySendError::Full(t));
        }
        self.tx.send(t).map_err(|e| {
            self.len.fetch_sub(1, Ordering::SeqCst);
            TrySendError::Disconnected(e.0)
        })
    }

    /// Queues `t`, waiting for room (blocking: for a blocking thread).
    pub fn send(&self, mut t: T) -> Result<(), mpsc::SendError<T>> {
        loop {
            match self.try_send(t) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Disconnected(back)) => return Err(mpsc::SendError(back)),
                Err(TrySendError::Full(back)) => {
                    t = back;
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
    }
}

impl<T> Receiver<T> {
    fn took(&self, t: T) -> T {
        self.len.fetch_sub(1, Ordering::SeqCst);
        t
    }

    pub fn recv(&self) -> Result<T, RecvError> {
        self.rx.recv().map(|t| self.took(t))
    }

    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.rx.try_recv().map(|t| self.took(t))
    }

    pub fn recv_timeout(&self, d: Duration) -> Result<T, RecvTimeoutError> {
        self.rx.recv_timeout(d).map(|t| self.took(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_holds_and_room_comes_back() {
        let (tx, rx) = channel::<u32>(2);
        tx.try_send(1).expect("room");
        tx.clone().try_send(2).expect("room");
        assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
        assert_eq!(rx.recv(), Ok(1));
        tx.try_send(3).expect("room again");
        // A blocked send goes through once the receiver takes one.
        let t2 = tx.clone();
        let h = std::thread::spawn(move || t2.send(4));
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(rx.try_recv(), Ok(2));
        h.join().expect("joins").expect("sent");
        assert_eq!(rx.recv_timeout(Duration::from_secs(1)), Ok(3));
        assert_eq!(rx.recv_timeout(Duration::from_secs(1)), Ok(4));
        drop(rx);
        assert!(matches!(tx.try_send(5), Err(TrySendError::Disconnected(5))));
        assert!(tx.send(6).is_err());
    }
}
