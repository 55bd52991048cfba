//! What a database is and holds, as `ddcp status --json` and the HTTP API's `/v1/status` say
//! it: read from the database, with what a running `ddcp serve` knows of each remote added by
//! whoever asks it.

use std::path::Path;

use serde::Serialize;

use crate::control::RemoteHealth;
use crate::db::{Db, DbError, FilterJson, MirrorPrefix};
use crate::sync::text::printable;

#[derive(Debug, Serialize)]
pub struct StatusJson {
    pub db_file: String,
    pub site_id: String,
    pub db_version: i64,
    pub schema_fingerprint: String,
    /// This database's own CRR tables (mirrors left out).
    pub crr_tables: Vec<String>,
    /// The CRR tables that mirror a remote's (`--into`).
    pub mirror_tables: Vec<String>,
    /// `public` or `private`.
    pub access: &'static str,
    /// Members (who may read it while private).
    pub members: usize,
    pub remotes: Vec<RemoteJson>,
    /// Changes held for tables or columns this database lacks (a remote runs a newer version
    /// of the app), by what they wait for.
    pub held: Vec<HeldJson>,
    /// Migrations in this database's schema history (what peers that follow it apply).
    pub migrations: usize,
    /// Each remote's schema history as its last pull saw it.
    pub remote_schemas: Vec<RemoteSchemaJson>,
    /// Whether a `ddcp serve` runs for this state dir.
    pub serving: bool,
    /// Each remote as the running `ddcp serve` sees it (empty without one).
    pub replication: Vec<HealthJson>,
}

#[derive(Debug, Serialize)]
pub struct HeldJson {
    pub table: String,
    /// The column this database lacks; null when it lacks the whole table.
    pub column: Option<String>,
    pub changes: u64,
}

impl HeldJson {
    /// "3 changes for notes.tag: this database lacks the column". The names are a remote's:
    /// made printable.
    pub fn describe(&self) -> String {
        let table = printable(&self.table, 80);
        match &self.column {
            Some(column) => format!(
                "{} changes for {table}.{}: this database lacks the column",
                self.changes,
                printable(column, 80)
            ),
            None => format!(
                "{} changes for {table}: this database lacks the table",
                self.changes
            ),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct RemoteSchemaJson {
    pub remote: String,
    /// `follow` or `manual`.
    pub schema: &'static str,
    /// Migrations in the history it published.
    pub published: u32,
    /// Of them, how many have steps this database lacks.
    pub ahead: usize,
    /// Why its history is not followed further, when it is not.
    pub refused: Option<String>,
}

impl RemoteSchemaJson {
    /// One line for `ddcp status`, when there is something to say.
    pub fn describe(&self) -> Option<String> {
        let name = &self.remote;
        if let Some(refused) = &self.refused {
            // Its words may be the remote's (a statement SQLite refused): made printable.
            return Some(format!("{name}: {}", printable(refused, 300)));
        }
        match (self.ahead, self.schema) {
            (0, _) => None,
            (ahead, "follow") => Some(format!(
                "{name}'s schema is {ahead} migration{} ahead: followed at its next pull",
                plural(ahead)
            )),
            (ahead, _) => Some(format!(
                "{name}'s schema is {ahead} migration{} ahead: `ddcp migrate --from {name}`",
                plural(ahead)
            )),
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[derive(Debug, Serialize)]
pub struct HealthJson {
    pub name: String,
    pub pulled_version: Option<i64>,
    pub remote_version: Option<i64>,
    pub lag: Option<i64>,
    pub last_success: Option<i64>,
    pub last_error: Option<String>,
    pub refused: u64,
    pub restarts: u32,
    pub running: bool,
}

impl From<RemoteHealth> for HealthJson {
    fn from(health: RemoteHealth) -> Self {
        HealthJson {
            lag: health.lag(),
            name: health.name,
            pulled_version: health.pulled_version,
            remote_version: health.remote_version,
            last_success: health.last_success,
            last_error: health.last_error,
            refused: health.refused,
            restarts: health.restarts,
            running: health.running,
        }
    }
}

/// What `ddcp status --json` says of `db` (the file at `db_file`), but for what a running
/// `ddcp serve` knows: `serving` false and no `replication` yet.
pub fn read_status(db: &mut Db, db_file: &Path) -> Result<StatusJson, DbError> {
    let access = db.access_state()?;
    Ok(StatusJson {
        db_file: db_file.display().to_string(),
        site_id: db.site_id()?.to_string(),
        db_version: db.db_version()?.0,
        schema_fingerprint: db.shared_schema()?.fingerprint().to_string(),
        crr_tables: db
            .own_schema()?
            .tables
            .into_iter()
            .map(|table| table.name)
            .collect(),
        mirror_tables: db.mirror_tables()?,
        access: access.access.as_str(),
        members: access.members.len(),
        remotes: remotes_json(db, false)?,
        held: db
            .held()?
            .into_iter()
            .map(|group| HeldJson {
                table: group.table,
                column: group.column,
                changes: group.changes,
            })
            .collect(),
        migrations: db.schema_history()?.len(),
        remote_schemas: db
            .remote_schemas()?
            .into_iter()
            .map(|state| RemoteSchemaJson {
                remote: state.remote.to_string(),
                schema: if state.follow { "follow" } else { "manual" },
                published: state.published,
                ahead: state.ahead,
                refused: state.refused,
            })
            .collect(),
        serving: false,
        replication: Vec::new(),
    })
}

/// A remote as `remote list --json` and `status --json` print it.
#[derive(Serialize)]
pub struct RemoteJson {
    pub name: String,
    /// The record key; with its secret only when the user asked (`--show-secrets`).
    pub key: String,
    pub added_at: i64,
    /// Whose changes it may bring (`any`, `direct` or site ids).
    pub authors: String,
    /// Which tables, columns and rows it may change here; `null` for all.
    pub accepts: Option<FilterJson>,
    /// The prefix of the mirrors its tables land in; `null` when they land in the tables.
    pub into: Option<String>,
    /// `follow` when the migrations it publishes are applied here, else `manual`.
    pub schema: &'static str,
    /// The database identity its Status must name (its `ddcp id`), pinned at first contact
    /// or with `--owner`; `null` until then.
    pub owner: Option<String>,
}

/// Without its key, which may hold the record's secret (`--show-secrets`).
impl std::fmt::Debug for RemoteJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteJson")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The remotes, their keys without the secret unless `show_secrets`.
pub fn remotes_json(db: &Db, show_secrets: bool) -> Result<Vec<RemoteJson>, DbError> {
    db.remotes()?
        .into_iter()
        .map(|remote| {
            Ok(RemoteJson {
                owner: db
                    .remote_owner(&remote.name)?
                    .map(|owner| owner.to_string()),
                name: remote.name.to_string(),
                key: if show_secrets {
                    remote.key.reveal().to_string()
                } else {
                    remote.key.to_string()
                },
                added_at: remote.added_at,
                authors: remote.accept.authors.to_string(),
                accepts: (!remote.accept.filter.is_open())
                    .then(|| FilterJson::from(&remote.accept.filter)),
                into: remote.accept.into.as_ref().map(MirrorPrefix::to_string),
                schema: schema_mode(remote.follows_schema),
            })
        })
        .collect()
}

/// How `--json` names whether a remote's schema is followed.
pub fn schema_mode(follows: bool) -> &'static str {
    match follows {
        true => "follow",
        false => "manual",
    }
}
