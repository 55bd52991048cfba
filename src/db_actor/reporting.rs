//! The DbActor's news: commits by other connections noticed (a look at SQLite's data
//! version, woken by the WAL's watch or the timer), the state read again only as far as it can
//! have moved, and reported to the listener; changes held for a schema this database lacked
//! tried again when its schema moves.

use super::{DbEvent, DbState, LocalState};
use crate::db::{Db, DbError};
use crate::metrics;

/// The state last reported, with the SQLite schema and data versions it was read at.
#[derive(Debug)]
pub(super) struct Reported {
    state: LocalState,
    schema_version: i64,
    data_version: i64,
}

impl DbState {
    /// Reports what other connections committed since the last look, if anything.
    pub(super) fn look_for_changes(&mut self) -> Result<(), DbError> {
        let data_version = self.db.sqlite_data_version()?;
        if self.looked_at == Some(data_version) {
            return Ok(());
        }
        self.report_changes()?;
        self.looked_at = Some(data_version);
        Ok(())
    }

    /// Tells the listener when the database's version or schema moved.
    pub(super) fn report_changes(&mut self) -> Result<(), DbError> {
        let schema_version = self.db.sqlite_schema_version()?;
        if self.held_tried_at != Some(schema_version) {
            self.held_tried_at = Some(schema_version);
            self.apply_held();
        }
        if self.listener.is_none() {
            return Ok(());
        }
        // Read before the state: a commit by another connection from here on shows next time.
        let data_version = self.db.sqlite_data_version()?;
        let db_version = self.db.db_version()?;
        if let Some(reported) = &self.reported
            && reported.state.db_version == db_version
            && reported.schema_version == schema_version
        {
            return Ok(());
        }
        let state = read_state(&self.db)?;
        self.report(state, schema_version, data_version);
        Ok(())
    }

    /// Reports the state after an app's transaction. It could only write the app's own tables
    /// (SQLite's authorizer refused ddcp's, cr-sqlite's and any schema change), so only the
    /// version moved, unless another connection committed meanwhile: then the state is read
    /// whole. Reading it whole after every write took as long as the write (benches/api.rs).
    pub(super) fn report_app_commit(&mut self) -> Result<(), DbError> {
        let Some(reported) = &self.reported else {
            return self.report_changes();
        };
        let schema_version = self.db.sqlite_schema_version()?;
        let data_version = self.db.sqlite_data_version()?;
        if reported.schema_version != schema_version || reported.data_version != data_version {
            return self.report_changes();
        }
        let state = LocalState {
            db_version: self.db.db_version()?,
            ..reported.state.clone()
        };
        if state != reported.state {
            self.report(state, schema_version, data_version);
        }
        Ok(())
    }

    fn report(&mut self, state: LocalState, schema_version: i64, data_version: i64) {
        let Some(listener) = &self.listener else {
            return;
        };
        metrics::db_version(&self.metrics, state.db_version.0);
        // A write's way to the peers, step by step (benches/network.rs prints the steps).
        tracing::debug!(target: "ddcp_latency", db_version = state.db_version.0, "reported");
        self.reported = Some(Reported {
            state: state.clone(),
            schema_version,
            data_version,
        });
        // The listener only stops at shutdown; then nobody needs the news.
        let _ = listener.send_message(DbEvent::StateChanged(state));
    }

    /// Accepts the changes held for tables or columns this database lacked, now that its
    /// schema moved (a migration, an app's ALTER): they may fit now.
    pub(super) fn apply_held(&mut self) {
        match self.db.apply_held() {
            Ok(applied) => {
                self.held = applied.still_held;
                metrics::held(&self.metrics, self.held);
                if applied.taken > 0 {
                    tracing::info!(target: "ddcp", taken = applied.taken, still_held = applied.still_held,
                        "The schema moved: applied changes held for tables or columns this database lacked");
                }
            }
            Err(err) => {
                metrics::error(&self.metrics, "db");
                tracing::warn!(target: "ddcp", error = %err, "Cannot apply the held changes");
            }
        }
    }
}

pub(super) fn read_state(db: &Db) -> Result<LocalState, DbError> {
    Ok(LocalState {
        site_id: db.site_id()?,
        db_version: db.db_version()?,
        schema_fingerprint: db.shared_schema()?.fingerprint(),
        own_fingerprint: db.own_schema()?.fingerprint(),
        incarnation: db.incarnation()?,
        history: db.history_mark()?,
    })
}
