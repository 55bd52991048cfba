//! What an app's request through [`super::App`] can fail with: its own mistake, a busy or
//! stopped database, or a subscription that is gone.

use crate::db::DbError;
use crate::db_actor::DbCallError;

use super::subscriptions::{IDLE_KEPT, MAX_SUBSCRIPTIONS};

/// Why an app's request failed. Messages are complete sentences for the app's developer.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A statement failed or was refused (bad SQL, a table of ddcp's, a bound): nothing of the
    /// transaction was kept. SQLite's words, and which statement.
    #[error("{0}")]
    Refused(DbError),
    /// Queries wait for each other on one connection; one waited longer than a query may run.
    #[error("queries are waiting for each other: try again")]
    QueriesBusy,
    /// The database's actor is not running (serve is stopping or restarting it).
    #[error("the database is not running (ddcp serve is stopping or restarting it)")]
    Stopped,
    /// The database failed, not the app's statement.
    #[error("the database failed: {0}")]
    Database(DbError),
    /// As many subscriptions run as may.
    #[error("{MAX_SUBSCRIPTIONS} subscriptions run already: end one (close its connection; it is dropped {} s later) first", IDLE_KEPT.as_secs())]
    TooManySubscriptions,
    /// No subscription has that id (it ended, or was dropped idle).
    #[error("no such subscription (it ended, or no one listened for a while): subscribe again")]
    UnknownSubscription,
    /// The events after that change id are no longer kept.
    #[error("the events after that change id are no longer kept: subscribe again")]
    EventsNotKept,
    /// A task of the request's stopped before it answered.
    #[error("{0}")]
    Failed(String),
}

impl From<DbError> for AppError {
    fn from(err: DbError) -> AppError {
        match err {
            err @ (DbError::AppStatement { .. } | DbError::AppStatementCount(_)) => {
                AppError::Refused(err)
            }
            err => AppError::Database(err),
        }
    }
}

impl From<DbCallError> for AppError {
    fn from(err: DbCallError) -> AppError {
        match err {
            DbCallError::Db(err) => err.into(),
            DbCallError::Gone => AppError::Stopped,
        }
    }
}
