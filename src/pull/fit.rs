//! Fitting a remote's schema to this database's before its changes are pulled (see
//! `sync::schema_fit`), and naming the difference when they cannot be fitted.

use std::sync::Arc;
use std::time::Instant;

use super::{Pull, ROUTE_PATIENCE, ROUTE_PAUSE, RemoteError};
use crate::db::{DbError, Followed};
use crate::db_actor::DbCallError;
use crate::sync::protocol::PublishedSchema;
use crate::sync::schema_history::SchemaHistory;
use crate::sync::text::printable;

/// When a pull asks the remote for its schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ask {
    /// When the schema its Status names differs from this database's.
    WhenItDiffers,
    /// Always: the remote said its schema is not the one the requests named.
    Always,
}

impl Pull<'_> {
    /// Fits the remote's schema (the one its Status names) to this database's: the same, or
    /// asked for and compared table by table and column by column (see `sync::schema_fit`).
    /// The requests then name the remote's schema: the remote answers whatever this database
    /// lacks, and what must wait is held here. A real conflict ends the pull, named.
    pub(super) async fn fit_schema(&mut self, ask: Ask) -> Result<(), RemoteError> {
        // Pulled into mirrors, the remote's tables are compared with this database's own, and
        // its history is not this database's to follow.
        let into = self.link.accept.into.is_some();
        let mut ours = match into {
            true => self.local.own_fingerprint,
            false => self.local.schema_fingerprint,
        };
        let theirs = self.remote.schema_fingerprint;
        self.request_fingerprint = theirs;
        let history_moved =
            !into && self.db.seen_history(&self.link.name).await? != Some(self.remote.history);
        if theirs == ours && !history_moved && ask == Ask::WhenItDiffers {
            self.fit = Arc::default();
            return Ok(());
        }
        let schema = self.fetch_schema_patiently().await?;
        if !into && self.follow_history(schema.history).await? {
            // This database's schema moved: the remote's is compared with it as it is now.
            self.local = self.db.state().await?;
            ours = self.local.schema_fingerprint;
        }
        // The schema the remote has now, which its Status may not name yet (an upgrade while
        // it serves, its Status on its way): the requests name this one, and the remote
        // refuses them if it moved again.
        self.request_fingerprint = schema.shape.fingerprint();
        if self.request_fingerprint == ours {
            self.fit = Arc::default();
            return Ok(());
        }
        let fit = match self
            .db
            .fit_schema(schema.shape, self.link.accept.into.clone())
            .await
        {
            Err(DbCallError::Db(DbError::SchemaConflict(conflict))) => {
                // The remote's table and column names: its own words, made printable.
                return Err(RemoteError::SchemaMismatch(printable(
                    &conflict.to_string(),
                    300,
                )));
            }
            other => other?,
        };
        if !fit.is_whole() {
            tracing::debug!(target: "ddcp", remote_name = %self.link.name,
                "The remote's schema has tables or columns this database lacks: their changes are held");
        }
        self.fit = Arc::new(fit);
        Ok(())
    }

    /// Takes in the remote's schema history: followed (its new migrations applied here) when
    /// this database follows the remote, else noted, and said once when it is ahead or
    /// refused. Whether this database's schema moved.
    async fn follow_history(&self, history: SchemaHistory) -> Result<bool, RemoteError> {
        let name = &self.link.name;
        match self.db.see_history(name, history).await? {
            Followed::Applied(steps) => Ok(!steps.is_empty()),
            Followed::Ahead(0) => Ok(false),
            Followed::Ahead(ahead) => {
                tracing::info!(target: "ddcp", remote_name = %name, ahead,
                    "The remote's schema is migrations ahead of this database's: `ddcp migrate --from {name}` applies them (or `ddcp remote set {name} --schema follow`); meanwhile what the common part holds keeps replicating");
                Ok(false)
            }
            Followed::Refused(why) => {
                // The remote's own words in it (a failing statement): made printable.
                tracing::warn!(target: "ddcp", remote_name = %name, why = %printable(&why, 300),
                    "The remote's schema history is not followed");
                Ok(true)
            }
        }
    }

    /// Names the difference between the schemas, for the user.
    pub(super) async fn schema_mismatch(&self) -> RemoteError {
        let theirs = self
            .caller()
            .fetch_schema()
            .await
            .ok()
            .map(|schema| schema.shape);
        let ours = self.db.schema().await.ok();
        let difference = match (ours, theirs) {
            (Some(ours), Some(theirs)) => ours.difference(&theirs),
            _ => None,
        };
        // Names of the remote's tables and columns: its own words, made printable.
        let difference = difference.map(|text| printable(&text, 300));
        RemoteError::SchemaMismatch(
            difference
                .unwrap_or_else(|| "the remote's CRR tables are not this database's".to_string()),
        )
    }
}

impl Pull<'_> {
    /// The remote's schema, asked again on a fresh route while the calls fail, for up to
    /// [`ROUTE_PATIENCE`], as the pages are: a pull's first call is often this one, and a
    /// route that died with a node it went through takes its owner 20-35 s to replace.
    async fn fetch_schema_patiently(&mut self) -> Result<PublishedSchema, RemoteError> {
        let started = Instant::now();
        loop {
            match self.caller().fetch_schema().await {
                Err(RemoteError::Net(err)) if started.elapsed() < ROUTE_PATIENCE => {
                    tracing::debug!(target: "ddcp", remote_name = %self.link.name, error = %err,
                        "Asking the remote for its schema failed: reading its status again");
                    tokio::time::sleep(ROUTE_PAUSE).await;
                    self.refresh_route_patiently(started).await?;
                }
                other => return other,
            }
        }
    }
}
