//! Live query subscriptions (the HTTP API's `/v1/subscriptions`, docs/api.md, and
//! [`super::App::subscribe`]): a SELECT whose result is delivered whole, then as events, one per
//! row that enters, changes or leaves it, as local commits and pulls land. The first column of
//! the result identifies a row. Each event has a change id; a subscription keeps its last
//! [`EVENTS_KEPT`] events, so a listener that lost its connection resumes from the last id it
//! saw without missing or repeating one.
//!
//! Bounded everywhere: at most [`MAX_SUBSCRIPTIONS`]; a result as a query's; the events kept,
//! in number and bytes; a listener reads the kept events from its own place in them, with at
//! most [`LISTENER_QUEUE`] deliveries on their way, and one that falls behind the oldest kept
//! event is cut off (its resume is told to subscribe again); a subscription no one listens to
//! is dropped after [`IDLE_KEPT`]. Replication never waits for a subscriber: queries run on the
//! subscription's own read connection in the subscription's own task, which only appends to the kept
//! events; each listener has a task of its own that sends them.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{Notify, mpsc, watch};

use super::AppError;
use crate::db::{AppRows, AppStatement, Reader};
use crate::sync::{DbVersion, Value, random};

/// Subscriptions at once.
pub const MAX_SUBSCRIPTIONS: usize = 128;
/// Events a subscription keeps for resumes ...
pub const EVENTS_KEPT: usize = 10_000;
/// ... and their bytes at most (as [`RowEvent::size`] counts them).
pub const EVENT_BYTES_KEPT: usize = 2 << 20;
/// Deliveries (the first result, then an event each) on their way to a listener.
pub const LISTENER_QUEUE: usize = 64;
/// How long a subscription no one listens to is kept for a resume.
pub const IDLE_KEPT: Duration = Duration::from_secs(300);

/// What happened to a row of a subscription's result, or to the subscription.
#[derive(Clone, Debug, PartialEq)]
pub enum RowChange {
    /// The row entered the result.
    Insert(Vec<Value>),
    /// The row (the same first column) has other values now.
    Update(Vec<Value>),
    /// The row left the result: its values as they were.
    Delete(Vec<Value>),
    /// The query failed (its table was dropped, say): the subscription ends.
    QueryFailed(String),
}

/// One event of a subscription, with its change id (from 1, one per event).
#[derive(Clone, Debug, PartialEq)]
pub struct RowEvent {
    /// Resume from it to have the events after it.
    pub change_id: u64,
    /// What happened.
    pub change: RowChange,
}

impl RowEvent {
    /// About the bytes it takes as JSON: what the events kept are bounded by.
    fn size(&self) -> usize {
        let values = match &self.change {
            RowChange::Insert(row) | RowChange::Update(row) | RowChange::Delete(row) => {
                row.iter().map(value_size).sum()
            }
            RowChange::QueryFailed(why) => why.len(),
        };
        48 + values
    }
}

/// About the bytes a value takes as JSON.
fn value_size(value: &Value) -> usize {
    match value {
        Value::Null | Value::Integer(_) | Value::Real(_) => 21,
        Value::Text(text) => text.len() + 3,
        Value::Blob(bytes) | Value::RawText(bytes) => 2 * bytes.len() + 16,
    }
}

/// What a listener is handed, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Delivery {
    /// The result as it was when subscribing, in the query's order (first on a new
    /// subscription only: a resume goes on from its change id). Events follow from change id 1.
    Rows(Vec<Vec<Value>>),
    /// An event.
    Event(Arc<RowEvent>),
}

/// A listener of a subscription: its id, its columns, and what it is handed.
#[derive(Debug)]
pub struct Subscription {
    id: String,
    columns: Vec<String>,
    deliveries: mpsc::Receiver<Delivery>,
}

impl Subscription {
    /// The id to resume it by.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The result's columns.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The next delivery; `None` when the subscription ended (its query failed, it fell behind
    /// the events kept, or another listener resumed it).
    pub async fn next(&mut self) -> Option<Delivery> {
        self.deliveries.recv().await
    }

    /// [`Subscription::next`], polled (for a response body).
    pub fn poll_next(
        &mut self,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Delivery>> {
        self.deliveries.poll_recv(context)
    }
}

/// The subscriptions of one database.
#[derive(Debug, Default)]
pub struct Subscriptions {
    by_id: Mutex<HashMap<String, Arc<Follow>>>,
}

/// One subscription, as followed.
#[derive(Debug)]
struct Follow {
    id: String,
    statement: AppStatement,
    state: Mutex<FollowState>,
    /// Wakes the listener's task when an event is kept or the listener is replaced.
    kept: Notify,
}

#[derive(Debug)]
struct FollowState {
    columns: Vec<String>,
    /// The result as last read, by its rows' first column.
    rows: BTreeMap<KeyValue, Vec<Value>>,
    /// The last event's change id.
    change_id: u64,
    /// The last events, oldest first; and their bytes.
    log: VecDeque<Arc<RowEvent>>,
    log_bytes: usize,
    /// Which listener is the one: a resume makes a new one, and the old one's task stops.
    listener: u64,
    /// Whether a listener listens.
    listening: bool,
    /// Since when no one listens.
    idle_since: Option<Instant>,
    /// Set when the subscription ended (its query failed, or no one listened): its tasks stop.
    ended: bool,
}

impl FollowState {
    /// The oldest change id a listener can still be handed.
    fn first_kept(&self) -> u64 {
        self.log
            .front()
            .map_or(self.change_id + 1, |event| event.change_id)
    }
}

/// A row's first column, ordered (a later row with the same first column wins).
#[derive(Debug, Clone)]
struct KeyValue(Value);

impl PartialEq for KeyValue {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for KeyValue {}

impl PartialOrd for KeyValue {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for KeyValue {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Reals are compared by their bits' order: NaN is one key like any other.
        fn rank(value: &Value) -> (u8, i64, u64, &[u8]) {
            match value {
                Value::Null => (0, 0, 0, &[]),
                Value::Integer(int) => (1, *int, 0, &[]),
                Value::Real(real) => (2, 0, real.to_bits(), &[]),
                Value::Text(text) => (3, 0, 0, text.as_bytes()),
                Value::Blob(bytes) => (4, 0, 0, bytes),
                Value::RawText(bytes) => (5, 0, 0, bytes),
            }
        }
        rank(&self.0).cmp(&rank(&other.0))
    }
}

impl Subscriptions {
    /// Subscribes to `statement`: its current result, then its events, as they come.
    /// `versions` says when the database moved; `reader`, a connection of the subscription's
    /// own, runs the query.
    pub async fn subscribe(
        self: &Arc<Self>,
        statement: AppStatement,
        reader: Reader,
        versions: watch::Receiver<DbVersion>,
    ) -> Result<Subscription, AppError> {
        if self.by_id.lock().len() >= MAX_SUBSCRIPTIONS {
            return Err(AppError::TooManySubscriptions);
        }
        let reader = Arc::new(Mutex::new(reader));
        let result = read(&reader, &statement).await?;
        let id = hex::encode(random::bytes::<16>());
        let follow = Arc::new(Follow {
            id: id.clone(),
            statement,
            state: Mutex::new(FollowState {
                columns: result.columns.clone(),
                rows: keyed(result.rows.clone()),
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
                return Err(AppError::TooManySubscriptions);
            }
            by_id.insert(id, Arc::clone(&follow));
        }
        // The current result goes as one delivery (bounded as a query's is).
        let subscription = listen(&follow, 0, 0, result.columns, Some(result.rows));
        tokio::spawn(follow_query(Arc::clone(self), follow, reader, versions));
        Ok(subscription)
    }

    /// Resumes subscription `id` after change id `from`: the events after it, then the ones to
    /// come. A listener it had is cut off.
    pub fn resume(&self, id: &str, from: u64) -> Result<Subscription, AppError> {
        let follow = self
            .by_id
            .lock()
            .get(id)
            .cloned()
            .ok_or(AppError::UnknownSubscription)?;
        let (listener, columns) = {
            let mut state = follow.state.lock();
            if state.ended {
                return Err(AppError::UnknownSubscription);
            }
            if from > state.change_id || from + 1 < state.first_kept() {
                return Err(AppError::EventsNotKept);
            }
            state.listener += 1;
            state.listening = true;
            state.idle_since = None;
            (state.listener, state.columns.clone())
        };
        // The listener it replaces sees it is no longer the one.
        follow.kept.notify_waiters();
        Ok(listen(&follow, listener, from, columns, None))
    }

    /// How many run.
    pub fn count(&self) -> usize {
        self.by_id.lock().len()
    }

    fn remove(&self, id: &str) {
        self.by_id.lock().remove(id);
    }
}

/// A listener: `rows` first if given, then the kept events after change id `after`, as they
/// come, handed on by a task of the listener's own, which stops when the listener is
/// replaced, dropped, or falls behind the oldest kept event.
fn listen(
    follow: &Arc<Follow>,
    listener: u64,
    after: u64,
    columns: Vec<String>,
    rows: Option<Vec<Vec<Value>>>,
) -> Subscription {
    let (sender, deliveries) = mpsc::channel(LISTENER_QUEUE);
    if let Some(rows) = rows {
        // A new channel has room for its first delivery.
        let _ = sender.try_send(Delivery::Rows(rows));
    }
    tokio::spawn(hand_on_events(Arc::clone(follow), listener, after, sender));
    Subscription {
        id: follow.id.clone(),
        columns,
        deliveries,
    }
}

/// Hands the kept events after `cursor` to a listener, as they are kept.
async fn hand_on_events(
    follow: Arc<Follow>,
    listener: u64,
    mut cursor: u64,
    sender: mpsc::Sender<Delivery>,
) {
    'handing: loop {
        let kept = follow.kept.notified();
        tokio::pin!(kept);
        // Registered before the state is looked at: an event kept meanwhile wakes it.
        kept.as_mut().enable();
        let (due, ended): (Vec<Arc<RowEvent>>, bool) = {
            let state = follow.state.lock();
            if state.listener != listener || cursor + 1 < state.first_kept() {
                break;
            }
            let due = state
                .log
                .iter()
                .filter(|event| event.change_id > cursor)
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
        for event in due {
            let change_id = event.change_id;
            if sender.send(Delivery::Event(event)).await.is_err() {
                break 'handing;
            }
            cursor = change_id;
        }
    }
    let mut state = follow.state.lock();
    if state.listener == listener {
        state.listening = false;
    }
}

/// Reads the subscription's query again each time the database moves, and keeps the events
/// that take its result there; ends when the query fails or no one listened for
/// [`IDLE_KEPT`].
async fn follow_query(
    all: Arc<Subscriptions>,
    follow: Arc<Follow>,
    reader: Arc<Mutex<Reader>>,
    mut versions: watch::Receiver<DbVersion>,
) {
    loop {
        let moved = tokio::time::timeout(IDLE_KEPT / 10, versions.changed()).await;
        if let Ok(Err(_)) = moved {
            // The database's reports ended: it is stopping.
            break;
        }
        {
            let mut state = follow.state.lock();
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
        match read(&reader, &follow.statement).await {
            Ok(result) => follow.changed_to(keyed(result.rows)),
            Err(err) => {
                follow.keep(vec![RowChange::QueryFailed(err.to_string())]);
                break;
            }
        }
    }
    follow.state.lock().ended = true;
    follow.kept.notify_waiters();
    all.remove(&follow.id);
}

impl Follow {
    /// Keeps the events that take the result from what it was to `rows`.
    fn changed_to(&self, rows: BTreeMap<KeyValue, Vec<Value>>) {
        let mut changes = Vec::new();
        {
            let mut state = self.state.lock();
            for (key, row) in &rows {
                match state.rows.get(key) {
                    None => changes.push(RowChange::Insert(row.clone())),
                    Some(was) if was != row => changes.push(RowChange::Update(row.clone())),
                    Some(_) => {}
                }
            }
            for (key, row) in &state.rows {
                if !rows.contains_key(key) {
                    changes.push(RowChange::Delete(row.clone()));
                }
            }
            state.rows = rows;
        }
        self.keep(changes);
    }

    /// Keeps `changes` as the next events, within the bounds, and wakes the listener.
    fn keep(&self, changes: Vec<RowChange>) {
        if changes.is_empty() {
            return;
        }
        let mut state = self.state.lock();
        for change in changes {
            state.change_id += 1;
            let event = Arc::new(RowEvent {
                change_id: state.change_id,
                change,
            });
            state.log_bytes += event.size();
            state.log.push_back(event);
            while state.log.len() > EVENTS_KEPT || state.log_bytes > EVENT_BYTES_KEPT {
                match state.log.pop_front() {
                    Some(dropped) => state.log_bytes -= dropped.size(),
                    None => break,
                }
            }
        }
        drop(state);
        self.kept.notify_waiters();
    }
}

/// Runs the query on the subscription's connection.
async fn read(reader: &Arc<Mutex<Reader>>, statement: &AppStatement) -> Result<AppRows, AppError> {
    let (reader, statement) = (Arc::clone(reader), statement.clone());
    match tokio::task::spawn_blocking(move || reader.lock().query(&statement)).await {
        Ok(read) => read.map_err(AppError::from),
        Err(_) => Err(AppError::Failed("the subscription's query stopped".into())),
    }
}

/// The rows by their first column (a later row with the same first column wins).
fn keyed(rows: Vec<Vec<Value>>) -> BTreeMap<KeyValue, Vec<Value>> {
    rows.into_iter()
        .map(|row| (KeyValue(row.first().cloned().unwrap_or(Value::Null)), row))
        .collect()
}
