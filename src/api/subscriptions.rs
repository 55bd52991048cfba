//! Live query subscriptions (`POST /v1/subscriptions`, docs/api.md): a SELECT whose result is
//! sent whole, then as events, one per row that enters, changes or leaves it, as local commits
//! and pulls land. The first column of the result identifies a row. Each event has a change id;
//! a subscription keeps its last [`EVENTS_KEPT`] events, so a client that lost its connection
//! resumes from the last id it saw (`GET /v1/subscriptions/ID?from=N`) without missing or
//! repeating one.
//!
//! Bounded everywhere: at most [`MAX_SUBSCRIPTIONS`]; a result as a query's; a listener that
//! does not read keeps at most [`LISTENER_QUEUE`] lines queued, then its connection is cut (it
//! resumes from its last id); a subscription no one listens to is dropped after [`IDLE_KEPT`].
//! Replication never waits for a subscriber: queries run on the API's own read connection, in
//! the subscription's own task.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::{Value as Json, json};
use tokio::sync::{mpsc, watch};

use super::json::row_to_json;
use crate::db::{AppRows, AppStatement, DbError, Reader};
use crate::sync::{DbVersion, Value, random};

/// Subscriptions at once.
pub const MAX_SUBSCRIPTIONS: usize = 256;
/// Events a subscription keeps for resumes.
pub const EVENTS_KEPT: usize = 10_000;
/// Lines queued for a listener that does not read; past them its connection is cut.
pub const LISTENER_QUEUE: usize = 1024;
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
#[derive(Debug)]
pub enum SubscribeError {
    /// As many run as may.
    TooMany,
    /// Its query failed or was refused.
    Query(DbError),
    /// No subscription has that id (it ended, or was dropped idle).
    Unknown,
    /// The events after that id are no longer kept.
    TooOld,
}

impl std::fmt::Display for SubscribeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubscribeError::TooMany => write!(
                f,
                "{MAX_SUBSCRIPTIONS} subscriptions run already: end one (close its connection and wait {} s) first",
                IDLE_KEPT.as_secs()
            ),
            SubscribeError::Query(err) => write!(f, "{err}"),
            SubscribeError::Unknown => f.write_str(
                "no such subscription (it ended, or no one listened for a while): subscribe again",
            ),
            SubscribeError::TooOld => write!(
                f,
                "the events after that change id are no longer kept (a subscription keeps its last {EVENTS_KEPT}): subscribe again"
            ),
        }
    }
}

/// One subscription.
#[derive(Debug)]
struct Subscription {
    id: String,
    statement: AppStatement,
    state: Mutex<SubscriptionState>,
}

#[derive(Debug)]
struct SubscriptionState {
    columns: Vec<String>,
    /// The result as last read, by its rows' first column.
    rows: BTreeMap<String, Vec<Value>>,
    /// The last event's change id.
    change_id: u64,
    /// The last events, oldest first, as the lines sent.
    log: VecDeque<(u64, Bytes)>,
    /// Who listens now.
    listener: Option<mpsc::Sender<Bytes>>,
    /// Since when no one listens.
    idle_since: Option<Instant>,
    /// Set when the subscription ended (its query failed): its task stops.
    ended: bool,
}

impl Subscriptions {
    /// Subscribes to `statement`: its id, and the lines a listener gets first (the columns,
    /// the current rows, and the change id they stand at), with the channel the events follow
    /// on. `versions` says when the database moved; `reader` runs the query.
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
        let (sender, receiver) = mpsc::channel(LISTENER_QUEUE);
        // The current result goes as one piece (bounded as a query's is): it takes one place
        // of the listener's queue, whose reader is not reading yet.
        let rows = keyed(result.rows);
        let mut first = line(&json!({ "id": id, "columns": result.columns })).to_vec();
        for row in rows.values() {
            first.extend_from_slice(&line(&json!({ "row": row_to_json(row) })));
        }
        first.extend_from_slice(&line(&json!({ "eoq": { "change_id": 0 } })));
        // The channel is new: the piece fits.
        let _ = sender.try_send(Bytes::from(first));
        let subscription = Arc::new(Subscription {
            id: id.clone(),
            statement,
            state: Mutex::new(SubscriptionState {
                columns: result.columns,
                rows,
                change_id: 0,
                log: VecDeque::new(),
                listener: Some(sender),
                idle_since: None,
                ended: false,
            }),
        });
        {
            let mut by_id = self.by_id.lock();
            if by_id.len() >= MAX_SUBSCRIPTIONS {
                return Err(SubscribeError::TooMany);
            }
            by_id.insert(id, Arc::clone(&subscription));
        }
        tokio::spawn(follow(Arc::clone(self), subscription, reader, versions));
        Ok(receiver)
    }

    /// Resumes subscription `id` after change id `from`: its columns, the events after it
    /// that are kept, then the ones to come. A listener it had is cut off.
    pub fn resume(&self, id: &str, from: u64) -> Result<mpsc::Receiver<Bytes>, SubscribeError> {
        let subscription = self
            .by_id
            .lock()
            .get(id)
            .cloned()
            .ok_or(SubscribeError::Unknown)?;
        let mut state = subscription.state.lock();
        if state.ended {
            return Err(SubscribeError::Unknown);
        }
        let oldest_kept = state.log.front().map_or(state.change_id + 1, |(id, _)| *id);
        if from > state.change_id || from + 1 < oldest_kept {
            return Err(SubscribeError::TooOld);
        }
        let missed: Vec<Bytes> = state
            .log
            .iter()
            .filter(|(id, _)| *id > from)
            .map(|(_, text)| text.clone())
            .collect();
        if missed.len() + 1 > LISTENER_QUEUE {
            return Err(SubscribeError::TooOld);
        }
        let (sender, receiver) = mpsc::channel(LISTENER_QUEUE);
        let header = line(&json!({ "id": subscription.id, "columns": state.columns }));
        // The channel is new and the lines fewer than its bound: each fits.
        for text in std::iter::once(header).chain(missed) {
            let _ = sender.try_send(text);
        }
        state.listener = Some(sender);
        state.idle_since = None;
        Ok(receiver)
    }

    /// How many run.
    pub fn count(&self) -> usize {
        self.by_id.lock().len()
    }

    fn remove(&self, id: &str) {
        self.by_id.lock().remove(id);
    }
}

/// Reads the subscription's query again each time the database moves, and sends what changed
/// in its result; ends when it fails or no one listened for [`IDLE_KEPT`].
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
            if state
                .listener
                .as_ref()
                .is_some_and(|sender| sender.is_closed())
            {
                state.listener = None;
            }
            if state.listener.is_none() {
                let since = *state.idle_since.get_or_insert_with(Instant::now);
                if since.elapsed() > IDLE_KEPT {
                    break;
                }
            }
        }
        if moved.is_err() {
            continue;
        }
        versions.borrow_and_update();
        match read(&reader, &subscription.statement).await {
            Ok(result) => subscription.changed_to(keyed(result.rows)),
            Err(err) => {
                let mut state = subscription.state.lock();
                if let Some(listener) = state.listener.take() {
                    let _ = listener.try_send(line(&json!({ "error": err.to_string() })));
                }
                state.ended = true;
                break;
            }
        }
    }
    all.remove(&subscription.id);
}

impl Subscription {
    /// Sends the events that take the result from what it was to `rows`.
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
        for (event, row) in events {
            state.change_id += 1;
            let change_id = state.change_id;
            let text = line(&json!({
                "change_id": change_id,
                "event": event.name(),
                "row": row_to_json(&row),
            }));
            if state.log.len() == EVENTS_KEPT {
                state.log.pop_front();
            }
            state.log.push_back((change_id, text.clone()));
            // A listener that does not keep up is cut off: it resumes from its last id.
            if let Some(listener) = &state.listener
                && listener.try_send(text).is_err()
            {
                state.listener = None;
            }
        }
    }
}

/// Runs the query on the reader's connection.
async fn read(
    reader: &Arc<Mutex<Reader>>,
    statement: &AppStatement,
) -> Result<AppRows, SubscribeError> {
    let (reader, statement) = (Arc::clone(reader), statement.clone());
    tokio::task::spawn_blocking(move || reader.lock().query(&statement))
        .await
        .map_err(|_| {
            SubscribeError::Query(DbError::AppStatement {
                statement: 1,
                reason: "the query's task failed".into(),
            })
        })?
        .map_err(SubscribeError::Query)
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
