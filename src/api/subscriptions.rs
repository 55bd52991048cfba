//! Live query subscriptions (`POST /v1/subscriptions`, docs/api.md): a SELECT whose result is
//! sent whole, then as events, one per row that enters, changes or leaves it, as local commits
//! and pulls land. The first column of the result identifies a row. Each event has a change id;
//! a subscription keeps its last [`EVENTS_KEPT`] events, so a client that lost its connection
//! resumes from the last id it saw (`GET /v1/subscriptions/ID?from=N`) without missing or
//! repeating one.
//!
//! Bounded everywhere: at most [`MAX_SUBSCRIPTIONS`]; a result as a query's; the events kept,
//! in number and bytes; a listener reads the kept events from its own place in them, with at
//! most [`LISTENER_QUEUE`] pieces on their way, and one that falls behind the oldest kept
//! event is cut off (its resume is told to subscribe again); a subscription no one listens to
//! is dropped after [`IDLE_KEPT`]. Replication never waits for a subscriber: queries run on the
//! API's own read connection in the subscription's own task, which only appends to the kept
//! events; each listener has a task of its own that sends them.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::{Value as Json, json};
use tokio::sync::{Notify, mpsc, watch};

use super::json::row_to_json;
use crate::db::{AppRows, AppStatement, DbError, Reader};
use crate::sync::{DbVersion, Value, random};

/// Subscriptions at once.
pub const MAX_SUBSCRIPTIONS: usize = 128;
/// Events a subscription keeps for resumes ...
pub const EVENTS_KEPT: usize = 10_000;
/// ... and their bytes at most.
pub const EVENT_BYTES_KEPT: usize = 2 << 20;
/// Pieces (the first result, then an event each) on their way to a listener's connection.
pub const LISTENER_QUEUE: usize = 64;
/// How long a subscription no one listens to is kept for a resume.
pub const IDLE_KEPT: Duration = Duration::from_secs(300);

/// What happened to a row of the result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Event {
    Insert,
    Update,
    Delete,
}

impl Event {
    fn name(self) -> &'static str {
        match self {
            Event::Insert => "insert",
            Event::Update => "update",
            Event::Delete => "delete",
        }
    }
}

/// The subscriptions of one API.
#[derive(Debug, Default)]
pub struct Subscriptions {
    by_id: Mutex<HashMap<String, Arc<Subscription>>>,
}

/// Why a subscription cannot be made or resumed.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    /// As many run as may.
    #[error("{MAX_SUBSCRIPTIONS} subscriptions run already: end one (close its connection; it is dropped {} s later) first", IDLE_KEPT.as_secs())]
    TooMany,
    /// Its query failed or was refused.
    #[error("{0}")]
    Query(DbError),
    /// The query's task failed.
    #[error("the subscription's query failed")]
    Failed,
    /// No subscription has that id (it ended, or was dropped idle).
    #[error("no such subscription (it ended, or no one listened for a while): subscribe again")]
    Unknown,
    /// The events after that id are no longer kept.
    #[error("the events after that change id are no longer kept: subscribe again")]
    TooOld,
}

/// One subscription.
#[derive(Debug)]
struct Subscription {
    id: String,
    statement: AppStatement,
    state: Mutex<SubscriptionState>,
    /// Wakes the listener's task when an event is kept or the listener is replaced.
    kept: Notify,
}

#[derive(Debug)]
struct SubscriptionState {
    columns: Vec<String>,
    /// The result as last read, by its rows' first column.
    rows: BTreeMap<String, Vec<Value>>,
    /// The last event's change id.
    change_id: u64,
    /// The last events, oldest first, as the lines sent; and their bytes.
    log: VecDeque<(u64, Bytes)>,
    log_bytes: usize,
    /// Which listener is the one: a resume makes a new one, and the old one's task stops.
    listener: u64,
    /// Whether a listener's connection is open.
    listening: bool,
    /// Since when no one listens.
    idle_since: Option<Instant>,
    /// Set when the subscription ended (its query failed, or no one listened): its tasks stop.
    ended: bool,
}

impl SubscriptionState {
    /// The oldest change id a listener can still be sent.
    fn first_kept(&self) -> u64 {
        self.log.front().map_or(self.change_id + 1, |(id, _)| *id)
    }
}

impl Subscriptions {
    /// Subscribes to `statement`: the lines of its current result (the columns, the rows, the
    /// change id they stand at), then its events, as they come. `versions` says when the
    /// database moved; `reader`, a connection of the subscription's own, runs the query.
    pub async fn subscribe(
        self: &Arc<Self>,
        statement: AppStatement,
        reader: Arc<Mutex<Reader>>,
        versions: watch::Receiver<DbVersion>,
    ) -> Result<mpsc::Receiver<Bytes>, SubscribeError> {
        if self.by_id.lock().len() >= MAX_SUBSCRIPTIONS {
            return Err(SubscribeError::TooMany);
        }
        let result = read(&reader, &statement).await?;
        let id = hex::encode(random::bytes::<16>());
        // The current result goes as one piece (bounded as a query's is), in the query's order.
        let mut first = line(&json!({ "id": id, "columns": result.columns })).to_vec();
        for row in &result.rows {
            first.extend_from_slice(&line(&json!({ "row": row_to_json(row) })));
        }
        first.extend_from_slice(&line(&json!({ "eoq": { "change_id": 0 } })));
        let subscription = Arc::new(Subscription {
            id: id.clone(),
            statement,
            state: Mutex::new(SubscriptionState {
                columns: result.columns,
                rows: keyed(result.rows),
                change_id: 0,
                log: VecDeque::new(),
                log_bytes: 0,
                listener: 0,
                listening: true,
                idle_since: None,
                ended: false,
            }),
            kept: Notify::new(),
        });
        {
            let mut by_id = self.by_id.lock();
            if by_id.len() >= MAX_SUBSCRIPTIONS {
                return Err(SubscribeError::TooMany);
            }
            by_id.insert(id, Arc::clone(&subscription));
        }
        let lines = listen(&subscription, 0, 0, Bytes::from(first));
        tokio::spawn(follow(Arc::clone(self), subscription, reader, versions));
        Ok(lines)
    }

    /// Resumes subscription `id` after change id `from`: its columns, the events after it,
    /// then the ones to come. A listener it had is cut off.
    pub fn resume(&self, id: &str, from: u64) -> Result<mpsc::Receiver<Bytes>, SubscribeError> {
        let subscription = self
            .by_id
            .lock()
            .get(id)
            .cloned()
            .ok_or(SubscribeError::Unknown)?;
        let (listener, header) = {
            let mut state = subscription.state.lock();
            if state.ended {
                return Err(SubscribeError::Unknown);
            }
            if from > state.change_id || from + 1 < state.first_kept() {
                return Err(SubscribeError::TooOld);
            }
            state.listener += 1;
            state.listening = true;
            state.idle_since = None;
            let header = line(&json!({ "id": subscription.id, "columns": state.columns }));
            (state.listener, header)
        };
        // The listener it replaces sees it is no longer the one.
        subscription.kept.notify_waiters();
        Ok(listen(&subscription, listener, from, header))
    }

    /// How many run.
    pub fn count(&self) -> usize {
        self.by_id.lock().len()
    }

    fn remove(&self, id: &str) {
        self.by_id.lock().remove(id);
    }
}

/// A listener's lines: `first`, then the kept events after change id `after`, as they come,
/// sent by a task of the listener's own, which stops when the listener is replaced, its
/// connection closes, or it falls behind the oldest kept event.
fn listen(
    subscription: &Arc<Subscription>,
    listener: u64,
    after: u64,
    first: Bytes,
) -> mpsc::Receiver<Bytes> {
    let (sender, receiver) = mpsc::channel(LISTENER_QUEUE);
    // A new channel has room for its first piece.
    let _ = sender.try_send(first);
    tokio::spawn(send_events(
        Arc::clone(subscription),
        listener,
        after,
        sender,
    ));
    receiver
}

/// Sends the kept events after `cursor` to a listener, as they are kept.
async fn send_events(
    subscription: Arc<Subscription>,
    listener: u64,
    mut cursor: u64,
    sender: mpsc::Sender<Bytes>,
) {
    'sending: loop {
        let kept = subscription.kept.notified();
        tokio::pin!(kept);
        // Registered before the state is looked at: an event kept meanwhile wakes it.
        kept.as_mut().enable();
        let (due, ended): (Vec<(u64, Bytes)>, bool) = {
            let state = subscription.state.lock();
            if state.listener != listener || cursor + 1 < state.first_kept() {
                break;
            }
            let due = state
                .log
                .iter()
                .filter(|(id, _)| *id > cursor)
                .take(LISTENER_QUEUE)
                .cloned()
                .collect();
            (due, state.ended)
        };
        if due.is_empty() {
            if ended {
                break;
            }
            tokio::select! {
                _ = kept => {}
                _ = sender.closed() => break,
            }
            continue;
        }
        for (id, text) in due {
            if sender.send(text).await.is_err() {
                break 'sending;
            }
            cursor = id;
        }
    }
    let mut state = subscription.state.lock();
    if state.listener == listener {
        state.listening = false;
    }
}

/// Reads the subscription's query again each time the database moves, and keeps the events
/// that take its result there; ends when the query fails or no one listened for
/// [`IDLE_KEPT`].
async fn follow(
    all: Arc<Subscriptions>,
    subscription: Arc<Subscription>,
    reader: Arc<Mutex<Reader>>,
    mut versions: watch::Receiver<DbVersion>,
) {
    loop {
        let moved = tokio::time::timeout(IDLE_KEPT / 10, versions.changed()).await;
        if let Ok(Err(_)) = moved {
            // The database's reports ended: serve is stopping.
            break;
        }
        {
            let mut state = subscription.state.lock();
            if state.listening {
                state.idle_since = None;
            } else if state.idle_since.get_or_insert_with(Instant::now).elapsed() > IDLE_KEPT {
                break;
            }
        }
        if moved.is_err() {
            continue;
        }
        versions.borrow_and_update();
        match read(&reader, &subscription.statement).await {
            Ok(result) => subscription.changed_to(keyed(result.rows)),
            Err(err) => {
                let text = line(&json!({ "error": err.to_string() }));
                let mut state = subscription.state.lock();
                let change_id = state.change_id + 1;
                state.change_id = change_id;
                state.log.push_back((change_id, text));
                drop(state);
                subscription.kept.notify_waiters();
                break;
            }
        }
    }
    subscription.state.lock().ended = true;
    subscription.kept.notify_waiters();
    all.remove(&subscription.id);
}

impl Subscription {
    /// Keeps the events that take the result from what it was to `rows`.
    fn changed_to(&self, rows: BTreeMap<String, Vec<Value>>) {
        let mut state = self.state.lock();
        let mut events = Vec::new();
        for (key, row) in &rows {
            match state.rows.get(key) {
                None => events.push((Event::Insert, row.clone())),
                Some(was) if was != row => events.push((Event::Update, row.clone())),
                Some(_) => {}
            }
        }
        for (key, row) in &state.rows {
            if !rows.contains_key(key) {
                events.push((Event::Delete, row.clone()));
            }
        }
        state.rows = rows;
        if events.is_empty() {
            return;
        }
        for (event, row) in events {
            state.change_id += 1;
            let change_id = state.change_id;
            let text = line(&json!({
                "change_id": change_id,
                "event": event.name(),
                "row": row_to_json(&row),
            }));
            state.log_bytes += text.len();
            state.log.push_back((change_id, text));
            while state.log.len() > EVENTS_KEPT || state.log_bytes > EVENT_BYTES_KEPT {
                match state.log.pop_front() {
                    Some((_, dropped)) => state.log_bytes -= dropped.len(),
                    None => break,
                }
            }
        }
        drop(state);
        self.kept.notify_waiters();
    }
}

/// Runs the query on the subscription's connection.
async fn read(
    reader: &Arc<Mutex<Reader>>,
    statement: &AppStatement,
) -> Result<AppRows, SubscribeError> {
    let (reader, statement) = (Arc::clone(reader), statement.clone());
    match tokio::task::spawn_blocking(move || reader.lock().query(&statement)).await {
        Ok(read) => read.map_err(SubscribeError::Query),
        Err(_) => Err(SubscribeError::Failed),
    }
}

/// The rows by their first column (a later row with the same first column wins).
fn keyed(rows: Vec<Vec<Value>>) -> BTreeMap<String, Vec<Value>> {
    rows.into_iter()
        .map(|row| {
            let key = row
                .first()
                .map(|first| row_to_json(std::slice::from_ref(first)).to_string())
                .unwrap_or_default();
            (key, row)
        })
        .collect()
}

/// One NDJSON line.
fn line(json: &Json) -> Bytes {
    let mut text = serde_json::to_vec(json).unwrap_or_default();
    text.push(b'\n');
    Bytes::from(text)
}
