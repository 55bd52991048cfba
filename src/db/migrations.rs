//! ddcp's metadata tables and their numbered migrations (db/migrations/NNN_*.sql).
//!
//! The metadata version (how many migrations ran) is kept in `ddcp_meta` under the key
//! `schema_version` (its name on disk since the first release), not in `pragma user_version`,
//! which belongs to the application that shares the database. It is not SQLite's own schema
//! version (`pragma schema_version`, see [`super::Db::sqlite_schema_version`]), which moves with
//! every table created or altered; the names in code keep the two apart.

use rusqlite::{Connection, OptionalExtension};

use super::DbError;

/// The migrations, in order; the database's metadata version is how many have run.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/001_meta.sql"),
    include_str!("migrations/002_pull.sql"),
    include_str!("migrations/003_members.sql"),
    include_str!("migrations/004_authors.sql"),
    include_str!("migrations/005_pulls.sql"),
    include_str!("migrations/006_filters.sql"),
    include_str!("migrations/007_arrivals.sql"),
    include_str!("migrations/008_staged_parts.sql"),
    include_str!("migrations/009_incarnation.sql"),
    include_str!("migrations/010_held.sql"),
    include_str!("migrations/011_schema_history.sql"),
    include_str!("migrations/012_remote_owners.sql"),
];

/// The metadata version this build writes.
pub const METADATA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Whether the database holds ddcp's metadata tables.
pub fn is_ddcp_database(conn: &Connection) -> Result<bool, DbError> {
    Ok(conn
        .query_row(
            "select 1 from sqlite_master where type = 'table' and name = 'ddcp_meta'",
            [],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// A table of the application's whose name ddcp's migrations would take.
pub fn colliding_table(conn: &Connection) -> Result<Option<String>, DbError> {
    Ok(conn
        .query_row(
            "select name from sqlite_master where name like 'ddcp\\_%' escape '\\' limit 1",
            [],
            |row| row.get(0),
        )
        .optional()?)
}

/// The database's metadata version (0 before `ddcp init`).
pub fn metadata_version(conn: &Connection) -> Result<i64, DbError> {
    if !is_ddcp_database(conn)? {
        return Ok(0);
    }
    Ok(conn
        .query_row(
            "select value from ddcp_meta where key = 'schema_version'",
            [],
            |row| row.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// Brings the metadata tables up to [`METADATA_VERSION`], all in one transaction.
pub fn migrate(conn: &mut Connection) -> Result<(), DbError> {
    let current = metadata_version(conn)?;
    if current < 0 {
        return Err(DbError::CorruptMetadata(format!(
            "schema_version is {current}"
        )));
    }
    if current > METADATA_VERSION {
        return Err(DbError::TooNew {
            found: current,
            known: METADATA_VERSION,
        });
    }
    if current == METADATA_VERSION {
        return Ok(());
    }
    let tx = conn.transaction()?;
    for migration in &MIGRATIONS[current as usize..] {
        tx.execute_batch(migration)?;
    }
    tx.execute(
        "insert into ddcp_meta (key, value) values ('schema_version', ?1)
         on conflict (key) do update set value = excluded.value",
        [METADATA_VERSION],
    )?;
    tx.commit()?;
    Ok(())
}
