//! This database's schema history: the additive migrations that made its CRR schema, in the
//! order they were applied here (`ddcp migrate`, or taken from a remote it follows). Peers
//! read it with the schema and follow it (see `db::follow` and docs/schema-evolution.md).

use rusqlite::OptionalExtension;

use super::{Db, DbError, RemoteName};
use crate::sync::schema_history::{
    HistoryError, HistoryMark, MAX_HISTORY_BYTES, MAX_MIGRATION_BYTES, MAX_MIGRATIONS,
    SchemaHistory, migration_id,
};

impl Db {
    /// The schema history, oldest first.
    pub fn schema_history(&self) -> Result<SchemaHistory, DbError> {
        let mut statement = self
            .conn()
            .prepare("select sql from ddcp_migrations order by seq")?;
        let migrations = statement
            .query_map([], |row| row.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        SchemaHistory::new(migrations).map_err(DbError::History)
    }

    /// Where the schema history stands, as the Status publishes it.
    pub fn history_mark(&self) -> Result<HistoryMark, DbError> {
        Ok(self.schema_history()?.mark())
    }
}

/// Adds `migration` (its normalized text) to the history, made here or taken from `origin`;
/// a migration the history holds already is not added again. The history's bounds hold: a
/// migration past them is refused (and its transaction with it).
pub(super) fn record_migration(
    conn: &rusqlite::Connection,
    migration: &str,
    origin: Option<&RemoteName>,
) -> Result<(), DbError> {
    let id = migration_id(migration);
    let known: Option<i64> = conn
        .query_row(
            "select seq from ddcp_migrations where id = ?1",
            [&id[..]],
            |row| row.get(0),
        )
        .optional()?;
    if known.is_some() {
        return Ok(());
    }
    let (count, bytes): (i64, i64) = conn.query_row(
        "select count(*), coalesce(sum(length(cast(sql as blob))), 0) from ddcp_migrations",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    if count as usize >= MAX_MIGRATIONS
        || migration.len() > MAX_MIGRATION_BYTES
        || bytes as usize + migration.len() > MAX_HISTORY_BYTES
    {
        return Err(DbError::History(HistoryError::TooBig));
    }
    let applied_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64);
    conn.execute(
        "insert into ddcp_migrations (sql, id, origin, applied_at) values (?1, ?2, ?3, ?4)",
        (
            migration,
            &id[..],
            origin.map(RemoteName::as_str),
            applied_at,
        ),
    )?;
    Ok(())
}
