//! The shared queue's connection owner: one PostgreSQL connection, the
//! `LISTEN` for wake-ups, reconnects with backoff, ordered state writes
//! that survive a lost connection, and the once-a-second upkeep (lease
//! renewal, expired claims, queue figures, trimming).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, NoTls};

use super::sql::{self, Put, Refused};
use super::{Cache, Event, Held, Identity, Op, Reply, schema};

/// Starts the error of a submit whose outcome is not known.
pub const UNCERTAIN: &str = "uncertain: ";

/// A statement that takes longer than this counts as a lost connection.
const QUERY_TIMEOUT: Duration = Duration::from_secs(15);
/// State writes sent in one transaction at most.
const BATCH: usize = 4096;
const UPKEEP: Duration = Duration::from_secs(1);
const OFFER_EVERY: Duration = Duration::from_secs(10);
const TRIM_EVERY: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Why a statement failed: the connection (retry after reconnecting) or
/// the statement itself.
enum Fault {
    Conn(String),
    Sql(String),
}

impl Fault {
    fn text(&self) -> &str {
        match self {
            Fault::Conn(s) | Fault::Sql(s) => s,
        }
    }
}

async fn timed<T>(
    f: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, Fault> {
    match tokio::time::timeout(QUERY_TIMEOUT, f).await {
        Err(_) => Err(Fault::Conn(format!(
            "no answer within {}s",
            QUERY_TIMEOUT.as_secs()
        ))),
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(classify(&e)),
    }
}

/// A cancel or retry within the statement time limit.
async fn within<T>(f: impl std::future::Future<Output = Result<T, Refused>>) -> Result<T, Refused> {
    tokio::time::timeout(QUERY_TIMEOUT, f)
        .await
        .unwrap_or(Err(Refused::Timeout))
}

/// Connection trouble, a shutdown or a conflict worth retrying, versus an
/// error in the statement or its data.
fn classify(e: &tokio_postgres::Error) -> Fault {
    let text = match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => e.to_string(),
    };
    match e.code().map(|c| c.code()) {
        None => Fault::Conn(text),
        Some(c) if ["08", "40", "53", "57"].iter().any(|p| c.starts_with(p)) => Fault::Conn(text),
        Some(_) => Fault::Sql(text),
    }
}

pub(super) struct Actor {
    pg: tokio_postgres::Config,
    place: String,
    me: Arc<Identity>,
    lease: Duration,
    keep: usize,
    cache: Arc<Mutex<Cache>>,
    events: mpsc::UnboundedSender<Event>,
    client: Option<Client>,
    /// State writes not yet in the database, in order.
    backlog: Vec<Put>,
    flushes: Vec<Reply<()>>,
    offer: Vec<(String, Vec<String>)>,
    backoff: Duration,
    retry_at: Instant,
    renewed: Instant,
    offered: Instant,
    trimmed: Instant,
}

impl Actor {
    pub(super) fn new(
        mut pg: tokio_postgres::Config,
        place: String,
        me: Arc<Identity>,
        spec: &crate::config::TasksSpec,
        cache: Arc<Mutex<Cache>>,
        events: mpsc::UnboundedSender<Event>,
    ) -> Actor {
        pg.connect_timeout(Duration::from_secs(5));
        pg.application_name("autonomos");
        // A half-open connection is found in seconds, not hours; a row
        // lock or statement never holds the actor past its time limit.
        pg.keepalives(true);
        pg.keepalives_idle(Duration::from_secs(10));
        pg.options("-c lock_timeout=10s -c statement_timeout=14s -c idle_in_transaction_session_timeout=60s");
        let long_ago = Instant::now() - Duration::from_secs(3600);
        Actor {
            pg,
            place,
            me,
            lease: spec.lease,
            keep: spec.keep,
            cache,
            events,
            client: None,
            backlog: Vec::new(),
            flushes: Vec::new(),
            offer: Vec::new(),
            backoff: Duration::from_millis(200),
            retry_at: Instant::now(),
            renewed: long_ago,
            offered: long_ago,
            trimmed: long_ago,
        }
    }

    pub(super) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Op>) {
        let mut notes: Option<mpsc::UnboundedReceiver<String>> = None;
        let mut tick = tokio::time::interval(UPKEEP);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if self.client.is_none() && Instant::now() >= self.retry_at {
                notes = self.connect().await;
            }
            let note = async {
                match notes.as_mut() {
                    Some(n) => n.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                op = rx.recv() => {
                    let Some(op) = op else { return };
                    let mut ops = vec![op];
                    while ops.len() < BATCH {
                        match rx.try_recv() {
                            Ok(o) => ops.push(o),
                            Err(_) => break,
                        }
                    }
                    self.handle(ops).await;
                }
                n = note => match n {
                    Some(agent) => {
                        let _ = self.events.send(Event::Wake(agent));
                    }
                    None => {
                        notes = None;
                        self.lost("the connection closed");
                    }
                },
                _ = tick.tick() => self.upkeep().await,
            }
        }
    }

    /// Connects, creates the tables if missing, and listens for wake-ups.
    async fn connect(&mut self) -> Option<mpsc::UnboundedReceiver<String>> {
        match self.try_connect().await {
            Ok((client, notes)) => {
                tracing::info!(store = %self.place, "connected to the shared task queue");
                self.client = Some(client);
                self.backoff = Duration::from_millis(200);
                if let Ok(mut c) = self.cache.lock() {
                    c.connected = true;
                    c.error = None;
                }
                // Work may have arrived while away: everyone looks.
                let _ = self.events.send(Event::Wake(String::new()));
                self.write_backlog().await;
                Some(notes)
            }
            Err(e) => {
                let first = self
                    .cache
                    .lock()
                    .map(|c| c.error.as_deref() != Some(e.as_str()))
                    .unwrap_or(true);
                if first {
                    tracing::warn!(store = %self.place, error = %e, "the shared task queue is unreachable; retrying");
                }
                if let Ok(mut c) = self.cache.lock() {
                    c.connected = false;
                    c.error = Some(e);
                }
                self.retry_at = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                None
            }
        }
    }

    async fn try_connect(&mut self) -> Result<(Client, mpsc::UnboundedReceiver<String>), String> {
        let (mut client, mut conn) =
            tokio::time::timeout(Duration::from_secs(6), self.pg.connect(NoTls))
                .await
                .map_err(|_| "no answer within 6s".to_string())?
                .map_err(|e| describe(&e))?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
            while let Some(m) = messages.next().await {
                match m {
                    Ok(AsyncMessage::Notification(n)) => {
                        let _ = tx.send(n.payload().to_string());
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "the shared task queue's connection failed");
                        break;
                    }
                }
            }
        });
        tokio::time::timeout(QUERY_TIMEOUT, schema::ensure(&mut client))
            .await
            .map_err(|_| "creating the tables took too long".to_string())?
            .map_err(|e| describe(&e))?;
        client
            .batch_execute(&format!("LISTEN {}", sql::CHANNEL))
            .await
            .map_err(|e| describe(&e))?;
        Ok((client, rx))
    }

    /// The connection is gone: reconnect soon; writes wait in the backlog.
    fn lost(&mut self, why: &str) {
        if self.client.take().is_some() {
            tracing::warn!(store = %self.place, error = %why, "lost the shared task queue; reconnecting");
        }
        if let Ok(mut c) = self.cache.lock() {
            c.connected = false;
            c.error = Some(why.to_string());
            // Not known while away (a stale figure would mislead).
            c.waiting.clear();
        }
        self.retry_at = Instant::now() + self.backoff;
    }

    fn unreachable(&self) -> String {
        let why = self
            .cache
            .lock()
            .ok()
            .and_then(|c| c.error.clone())
            .unwrap_or_else(|| "not connected yet".into());
        format!(
            "the shared task queue at {} is unreachable: {why}",
            self.place
        )
    }

    /// Ops in order: state writes join the backlog, which is written before
    /// any read so a read sees them.
    async fn handle(&mut self, ops: Vec<Op>) {
        for op in ops {
            match op {
                Op::Put {
                    task,
                    release_after,
                    unclaimed,
                } => self.backlog.push(Put {
                    task: *task,
                    release_after,
                    unclaimed,
                }),
                Op::Flush(a) => self.flushes.push(a),
                Op::Offer(list) => {
                    self.offer = list;
                    self.offered = Instant::now() - OFFER_EVERY;
                }
                Op::Unclaim(ids) => {
                    self.write_backlog().await;
                    if let Some(c) = self.client.as_ref()
                        && let Err(Fault::Conn(e)) =
                            timed(sql::unclaim(c, &ids, &self.me.owner)).await
                    {
                        self.lost(&e);
                    }
                }
                other => {
                    self.write_backlog().await;
                    self.ask(other).await;
                    // A long run of requests never delays the renewal.
                    if let Err(Fault::Conn(e)) = self.renew().await {
                        self.lost(&e);
                    }
                }
            }
        }
        self.write_backlog().await;
    }

    /// Sends the waiting state writes; on a lost connection they stay.
    async fn write_backlog(&mut self) {
        while !self.backlog.is_empty() {
            let Some(c) = self.client.as_mut() else {
                return;
            };
            let n = self.backlog.len().min(BATCH);
            match timed(sql::puts(c, &self.backlog[..n], &self.me.owner)).await {
                Ok(lost) => {
                    for id in lost {
                        tracing::warn!(task = %id, "a task's claim was lost (its lease ran out and another daemon took it); this daemon's result was not written");
                    }
                    self.backlog.drain(..n);
                }
                Err(Fault::Conn(e)) => return self.lost(&e),
                Err(Fault::Sql(e)) if n > 1 => {
                    // One bad write must not take the others with it: each
                    // alone, and only what is refused alone is dropped.
                    tracing::warn!(error = %e, writes = n, "a batch of task writes was refused; writing them one by one");
                    let batch: Vec<Put> = self.backlog.drain(..n).collect();
                    for (i, p) in batch.iter().enumerate() {
                        let Some(c) = self.client.as_mut() else {
                            self.backlog.splice(0..0, batch[i..].iter().cloned());
                            return;
                        };
                        match timed(sql::puts(c, std::slice::from_ref(p), &self.me.owner)).await {
                            Ok(_) => {}
                            Err(Fault::Conn(e)) => {
                                self.backlog.splice(0..0, batch[i..].iter().cloned());
                                return self.lost(&e);
                            }
                            Err(Fault::Sql(e)) => {
                                tracing::error!(task = %p.task.id, error = %e, "a task's state write was refused by the shared queue; dropped");
                            }
                        }
                    }
                }
                Err(Fault::Sql(e)) => {
                    let id = self
                        .backlog
                        .first()
                        .map(|p| p.task.id.clone())
                        .unwrap_or_default();
                    tracing::error!(task = %id, error = %e, "a task's state write was refused by the shared queue; dropped");
                    self.backlog.drain(..n);
                }
            }
        }
        for f in self.flushes.drain(..) {
            let _ = f.send(Ok(()));
        }
    }

    async fn ask(&mut self, op: Op) {
        let Some(c) = self.client.as_mut() else {
            let why = self.unreachable();
            return answer_err(op, why);
        };
        let place = self.place.clone();
        let fault = match op {
            Op::Submit(rows, a) => match timed(sql::submit(c, &rows)).await {
                // Lost mid-submit: the commit may or may not have happened.
                Err(Fault::Conn(e)) => {
                    let _ = a.send(Err(format!("{UNCERTAIN}{e}")));
                    Some(e)
                }
                r => reply(a, r),
            },
            Op::Claim { agent, n, answer } => {
                let lease = self.lease.as_secs_f64();
                let me = &self.me;
                let r = timed(sql::claim(c, &agent, n, &me.owner, &me.host, lease)).await;
                reply(answer, r)
            }
            Op::List {
                agent,
                state,
                limit,
                answer,
            } => reply(
                answer,
                timed(sql::list(c, agent.as_deref(), state, limit)).await,
            ),
            Op::Get(id, a) => reply(a, timed(sql::get(c, &id)).await),
            Op::Cancel(id, a) => refusable(a, &id, within(sql::cancel(c, &id)).await),
            Op::Retry(id, a) => refusable(a, &id, within(sql::retry(c, &id)).await),
            Op::Put { .. } | Op::Flush(_) | Op::Offer(_) | Op::Unclaim(_) => None,
        };
        if let Some(e) = fault {
            tracing::debug!(store = %place, error = %e, "shared queue request failed");
            self.lost(&e);
        }
    }

    /// Once a second: renew this daemon's claims (every third of the
    /// lease), return expired claims to the queue, refresh the figures,
    /// announce this host's agents, trim finished tasks.
    async fn upkeep(&mut self) {
        if self.client.is_none() {
            return;
        }
        self.write_backlog().await;
        if let Err(Fault::Conn(e)) = self.renew().await {
            return self.lost(&e);
        }
        let Some(c) = self.client.as_mut() else {
            return;
        };
        match timed(sql::expire(c, self.me.previous.as_deref())).await {
            Ok(agents) => {
                for a in agents {
                    let _ = self.events.send(Event::Wake(a));
                }
            }
            Err(Fault::Conn(e)) => return self.lost(&e),
            Err(Fault::Sql(e)) => tracing::error!(error = %e, "expiring claims failed"),
        }
        match timed(sql::waiting(c)).await {
            Ok(w) => {
                if let Ok(mut cache) = self.cache.lock() {
                    cache.waiting = w;
                }
            }
            Err(Fault::Conn(e)) => return self.lost(&e),
            Err(Fault::Sql(e)) => tracing::error!(error = %e, "counting the shared queue failed"),
        }
        if self.offered.elapsed() >= OFFER_EVERY {
            self.offered = Instant::now();
            match timed(sql::offers(c, &self.me.host, &self.offer)).await {
                Ok(o) => {
                    if let Ok(mut cache) = self.cache.lock() {
                        cache.offered = o;
                    }
                }
                Err(f) => tracing::warn!(error = %f.text(), "announcing task agents failed"),
            }
        }
        if self.trimmed.elapsed() >= TRIM_EVERY {
            self.trimmed = Instant::now();
            if let Err(f) = timed(sql::trim(c, self.keep)).await {
                tracing::warn!(error = %f.text(), "trimming finished tasks failed");
            }
        }
    }

    async fn renew(&mut self) -> Result<(), Fault> {
        if self.renewed.elapsed() < self.lease / 3 {
            return Ok(());
        }
        let Some(c) = self.client.as_ref() else {
            return Ok(());
        };
        let since = super::mono_ms();
        let (ids, cancel) = timed(sql::renew(c, &self.me.owner, self.lease.as_secs_f64())).await?;
        self.renewed = Instant::now();
        let _ = self.events.send(Event::Held(Held { since, ids, cancel }));
        Ok(())
    }
}

/// Answers; returns the connection fault, if that is what it was.
fn reply<T>(a: Reply<T>, r: Result<T, Fault>) -> Option<String> {
    match r {
        Ok(v) => {
            let _ = a.send(Ok(v));
            None
        }
        Err(Fault::Sql(e)) => {
            let _ = a.send(Err(e));
            None
        }
        Err(Fault::Conn(e)) => {
            let _ = a.send(Err(format!("the shared task queue failed: {e}")));
            Some(e)
        }
    }
}

fn refusable<T>(a: Reply<T>, id: &str, r: Result<T, Refused>) -> Option<String> {
    match r {
        Ok(v) => reply(a, Ok(v)),
        Err(Refused::NotFound) => {
            let _ = a.send(Err(format!("no task `{id}`")));
            None
        }
        Err(Refused::Not(why)) => {
            let _ = a.send(Err(why));
            None
        }
        Err(Refused::Db(e)) => reply(a, Err(classify(&e))),
        Err(Refused::Timeout) => reply(
            a,
            Err(Fault::Conn(format!(
                "no answer within {}s",
                QUERY_TIMEOUT.as_secs()
            ))),
        ),
    }
}

fn answer_err(op: Op, why: String) {
    match op {
        Op::Submit(_, a) | Op::List { answer: a, .. } => drop(a.send(Err(why))),
        Op::Claim { answer, .. } => drop(answer.send(Err(why))),
        Op::Get(_, a) => drop(a.send(Err(why))),
        Op::Cancel(_, a) => drop(a.send(Err(why))),
        Op::Retry(_, a) => drop(a.send(Err(why))),
        Op::Flush(a) => drop(a.send(Err(why))),
        Op::Put { .. } | Op::Offer(_) | Op::Unclaim(_) => {}
    }
}

/// A connection error in words (the server's message when it sent one).
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                s = format!("{s}: {inner}");
                src = inner.source();
            }
            s
        }
    }
}
