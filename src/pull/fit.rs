//! Fitting a remote's schema to this database's before its changes are pulled (see
//! `sync::schema_fit`), and naming the difference when they cannot be fitted.

use std::sync::Arc;

use super::{Pull, RemoteError};
use crate::db::DbError;
use crate::db_actor::DbCallError;
use crate::sync::pull::{PullError, read_schema_answer, schema_request};
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
        // Pulled into mirrors, the remote's tables are compared with this database's own.
        let into = self.link.accept.into.is_some();
        let ours = match into {
            true => self.local.own_fingerprint,
            false => self.local.schema_fingerprint,
        };
        let theirs = self.remote.schema_fingerprint;
        self.request_fingerprint = theirs;
        if theirs == ours && ask == Ask::WhenItDiffers {
            self.fit = Arc::default();
            return Ok(());
        }
        let answer = self.caller().call(schema_request()).await?;
        let schema = read_schema_answer(&answer).map_err(|err| match err {
            PullError::Refused(error) => RemoteError::Refused(error),
            other => RemoteError::Garbage(other),
        })?;
        // The schema the remote has now, which its Status may not name yet (an upgrade while
        // it serves, its Status on its way): the requests name this one, and the remote
        // refuses them if it moved again.
        self.request_fingerprint = schema.fingerprint();
        if self.request_fingerprint == ours {
            self.fit = Arc::default();
            return Ok(());
        }
        let fit = match self
            .db
            .fit_schema(schema, self.link.accept.into.clone())
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

    /// Names the difference between the schemas, for the user.
    pub(super) async fn schema_mismatch(&self) -> RemoteError {
        let theirs = match self.caller().call(schema_request()).await {
            Ok(answer) => read_schema_answer(&answer).ok(),
            Err(_) => None,
        };
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
