//! The console's link to its daemon: the session, reconnecting after a
//! drop (once a second, each attempt shown), the selected agent's logs
//! fetched one request at a time, and requests sent or refused.

use std::time::Duration;

use futures_util::future::BoxFuture;

use super::Connect;
use super::model::{Conn, Model};
use super::update;
use crate::client::{ClientError, Incoming, Session, Update};
use crate::proto::{Request, ServerEvent};

/// What the link saw.
pub(super) enum Happened {
    /// An answer or an update; None when the session ended.
    Incoming(Option<Incoming>),
    /// Time to try again.
    RetryDue,
    /// A reconnect attempt ended (connected and subscribed, or not).
    Connected(Box<Result<Session, ClientError>>),
}

pub(super) struct Link {
    connect: Connect,
    session: Option<Session>,
    reconnect: Option<BoxFuture<'static, Result<Session, ClientError>>>,
    retry_at: Option<tokio::time::Instant>,
    logs_in_flight: bool,
    /// The operator asked for a shutdown: a closed link is the end.
    shutting_down: bool,
}

impl Link {
    pub fn new(connect: Connect, session: Session, m: &mut Model) -> Link {
        m.conn = attached(&session);
        Link {
            connect,
            session: Some(session),
            reconnect: None,
            retry_at: None,
            logs_in_flight: false,
            shutting_down: false,
        }
    }

    /// A link whose first connection failed (one of several hosts): it
    /// shows as reconnecting and tries again like a dropped one.
    pub fn pending(connect: Connect, m: &mut Model, error: String) -> Link {
        let mut l = Link {
            connect,
            session: None,
            reconnect: None,
            retry_at: None,
            logs_in_flight: false,
            shutting_down: false,
        };
        l.retry_later(m, error, false);
        l
    }

    /// Waits for the next thing the link does.
    pub async fn next(&mut self) -> Happened {
        tokio::select! {
            inc = async {
                match self.session.as_mut() {
                    Some(s) => s.rx.recv().await,
                    None => std::future::pending().await,
                }
            } => Happened::Incoming(inc),
            _ = async {
                match self.retry_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            } => Happened::RetryDue,
            r = async {
                match self.reconnect.as_mut() {
                    Some(f) => f.await,
                    None => std::future::pending().await,
                }
            } => Happened::Connected(Box::new(r)),
        }
    }

    /// Applies what happened to the model; returns requests it calls for.
    pub async fn handle(&mut self, m: &mut Model, h: Happened) -> Vec<Request> {
        match h {
            Happened::Incoming(inc) => return self.incoming(m, inc),
            Happened::RetryDue => {
                self.retry_at = None;
                // Connecting and subscribing both happen in the attempt,
                // never in the console's loop: a slow host holds up nobody.
                let connecting = (self.connect)();
                self.reconnect = Some(Box::pin(async move {
                    let c = connecting.await?;
                    tokio::time::timeout(Duration::from_secs(10), Session::start(c))
                        .await
                        .unwrap_or_else(|_| {
                            Err(ClientError::Protocol("no snapshot within 10 s".into()))
                        })
                }));
            }
            Happened::Connected(r) => {
                self.reconnect = None;
                match *r {
                    Ok(s) => {
                        m.conn = attached(&s);
                        m.notify("reconnected", false);
                        self.session = Some(s);
                        self.shutting_down = false;
                    }
                    Err(e) => {
                        let absent = matches!(e, ClientError::NoDaemon { .. });
                        // A daemon that shut down cleanly removed its
                        // socket: stopped, even when its last words (the
                        // shutting-down event) were lost with the link.
                        let gone = matches!(&e, ClientError::NoDaemon { socket, .. }
                            if !std::path::Path::new(socket).exists());
                        if gone && matches!(m.conn, Conn::Reconnecting { .. }) {
                            update::link_lost_stopped(m);
                        }
                        self.retry_later(m, e.to_string(), absent)
                    }
                }
            }
        }
        vec![]
    }

    fn incoming(&mut self, m: &mut Model, inc: Option<Incoming>) -> Vec<Request> {
        let mut requests = Vec::new();
        match inc {
            Some(Incoming::Answer(Request::Shutdown, Ok(_))) if self.shutting_down => {
                m.conn = Conn::Stopped { at: m.now };
                m.quit = true;
            }
            Some(i) => {
                if matches!(i, Incoming::Answer(Request::Logs { .. }, _)) {
                    self.logs_in_flight = false;
                }
                if matches!(i, Incoming::Answer(Request::Shutdown, Err(_))) {
                    self.shutting_down = false;
                }
                let fleet_changed = matches!(
                    i,
                    Incoming::Update(Update::Event(_, ServerEvent::FleetChanged))
                );
                update::apply(m, i);
                if fleet_changed {
                    requests.push(Request::Status);
                }
            }
            None => update::link_lost(m, "connection lost".into()),
        }
        if matches!(m.conn, Conn::Reconnecting { .. } | Conn::Stopped { .. }) {
            if self.shutting_down {
                m.conn = Conn::Stopped { at: m.now };
                m.quit = true;
            }
            self.session = None;
            self.logs_in_flight = false;
            self.retry_at = Some(tokio::time::Instant::now());
        }
        requests
    }

    /// Fetches the selected agent's new output, one request at a time.
    pub fn poll_logs(&mut self, m: &mut Model) {
        if let (Some(s), false) = (&self.session, self.logs_in_flight)
            && let Some(r) = update::logs_request(m)
        {
            self.logs_in_flight = s.send(r);
        }
    }

    /// Sends the requests, or says they could not be.
    pub fn send(&mut self, m: &mut Model, requests: Vec<Request>) {
        for r in requests {
            let shutdown = r == Request::Shutdown;
            match &self.session {
                Some(s) if s.send(r) => self.shutting_down |= shutdown,
                _ => m.notify("not connected: the request was not sent", true),
            }
        }
    }

    /// `absent`: no daemon answers at all (as after a shutdown).
    fn retry_later(&mut self, m: &mut Model, error: String, absent: bool) {
        if matches!(m.conn, Conn::Stopped { .. }) && absent {
            // A stopped daemon is looked for quietly, less often.
            self.retry_at = Some(tokio::time::Instant::now() + Duration::from_secs(2));
            return;
        }
        let attempts = match &m.conn {
            Conn::Reconnecting { attempts, .. } => attempts + 1,
            _ => 1,
        };
        if attempts == 1 || attempts.is_multiple_of(30) {
            m.notify(
                format!("reconnect attempt {attempts} failed: {error}"),
                true,
            );
        }
        m.conn = Conn::Reconnecting { error, attempts };
        m.dirty = true;
        self.retry_at = Some(tokio::time::Instant::now() + Duration::from_secs(1));
    }
}

fn attached(s: &Session) -> Conn {
    Conn::Attached {
        host: s.daemon.host.clone(),
        pid: s.daemon.pid,
        version: s.daemon.version.clone(),
    }
}
