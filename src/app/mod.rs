//! An app's way into a database ddcp replicates: transactions through the one writer, read
//! queries on a connection of their own, and live subscriptions to a query's result. The HTTP
//! API (`crate::api`) serves it as JSON; a Rust program has it from
//! [`crate::embed::Replicator::app`] (docs/embedding.md).
//!
//! What an app may run is checked by SQLite's authorizer (`crate::db::app_sql`): its own
//! tables, never ddcp's or cr-sqlite's, no schema change, every statement within a deadline
//! and what it returns bounded.

mod error;
mod subscriptions;

use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;

pub use error::AppError;
pub use subscriptions::{
    Delivery, EVENT_BYTES_KEPT, EVENTS_KEPT, IDLE_KEPT, LISTENER_QUEUE, MAX_SUBSCRIPTIONS,
    RowChange, RowEvent, Subscription, Subscriptions,
};

pub use crate::db::{AppRows, AppStatement, Committed, StatementDone};
use crate::db::{Reader, STATEMENT_DEADLINE};
use crate::db_actor::DbHandle;
use crate::sync::DbVersion;

/// An app's handle on one database; clones share it.
#[derive(Clone, Debug)]
pub struct App {
    db: DbHandle,
    db_file: PathBuf,
    /// Read queries' connection: they take turns.
    reader: Arc<Mutex<Reader>>,
    /// The database's newest version: moves with every commit reported and every transaction
    /// of the app's; wakes the subscriptions.
    versions: watch::Sender<DbVersion>,
    subscriptions: Arc<Subscriptions>,
}

impl App {
    /// The app's handle on the database at `db_file`, written through `db` (its DbActor).
    /// Opens the queries' connection.
    pub fn new(db: DbHandle, db_file: PathBuf) -> Result<App, AppError> {
        Ok(App {
            db,
            reader: Arc::new(Mutex::new(Reader::open(&db_file)?)),
            db_file,
            versions: watch::Sender::new(DbVersion(0)),
            subscriptions: Arc::default(),
        })
    }

    /// Runs `statements` in one transaction through the one writer: all of them, or none
    /// when one fails (the error names it). Subscriptions hear of the commit at once.
    pub async fn transaction(&self, statements: Vec<AppStatement>) -> Result<Committed, AppError> {
        let committed = self.db.app_transaction(statements).await?;
        self.database_moved(committed.db_version);
        Ok(committed)
    }

    /// Runs one read query.
    pub async fn query(&self, statement: AppStatement) -> Result<AppRows, AppError> {
        let reader = Arc::clone(&self.reader);
        tokio::task::spawn_blocking(move || {
            // Queries take turns on the one connection: a wait longer than a query may run
            // says the database is busy.
            let reader = reader
                .try_lock_for(STATEMENT_DEADLINE)
                .ok_or(AppError::QueriesBusy)?;
            Ok(reader.query(&statement)?)
        })
        .await
        .map_err(|_| AppError::Failed("the query stopped".into()))?
    }

    /// Subscribes to the result of `statement`, a read query whose first column identifies a
    /// row: [`Delivery::Rows`] with the result now, then a [`Delivery::Event`] per row that
    /// enters, changes or leaves it, as commits land (the app's, pulls', any other process's
    /// that ddcp serve notices).
    pub async fn subscribe(&self, statement: AppStatement) -> Result<Subscription, AppError> {
        // A connection of the subscription's own: its re-reads wait for no query, nor hold
        // one up.
        let db_file = self.db_file.clone();
        let reader = tokio::task::spawn_blocking(move || Reader::open(&db_file))
            .await
            .map_err(|_| AppError::Failed("subscribing stopped".into()))??;
        self.subscriptions
            .subscribe(statement, reader, self.versions.subscribe())
            .await
    }

    /// Resumes subscription `id` after change id `from`, the last one its listener was
    /// handed: the events after it, none missed or repeated, then the ones to come.
    pub fn resume(&self, id: &str, from: u64) -> Result<Subscription, AppError> {
        self.subscriptions.resume(id, from)
    }

    /// How many subscriptions run.
    pub fn subscription_count(&self) -> usize {
        self.subscriptions.count()
    }

    /// The database moved to `version` (a commit by anyone): the subscriptions read again.
    pub fn database_moved(&self, version: DbVersion) {
        self.versions.send_if_modified(|newest| {
            let moved = version > *newest;
            *newest = (*newest).max(version);
            moved
        });
    }
}
