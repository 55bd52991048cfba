//! SQLite with cr-sqlite: opening databases, ddcp's metadata, remotes, reading and applying
//! changes, and running SQL scripts. The one place in ddcp that speaks SQL.

mod accept;
mod accept_page;
mod app_sql;
mod apply;
mod backup;
mod binding;
mod changes;
mod create_tables;
mod cursors;
mod dump;
mod error;
mod extension;
mod feed;
mod filters;
mod follow;
mod group;
mod held;
mod history;
mod import;
mod incarnation;
mod judge;
mod members;
mod migrate;
mod migration_guard;
mod migration_plan;
mod migrations;
mod mirrors;
mod owners;
mod remotes;
mod rows;
mod schema;
mod schema_history;
pub mod script;
mod source;
mod staged;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

pub use accept::{AcceptOutcome, AcceptPolicy};
pub use app_sql::{
    AppRows, AppStatement, Committed, MAX_RESULT_BYTES, MAX_RESULT_ROWS, MAX_STATEMENTS, Reader,
    STATEMENT_DEADLINE, StatementDone,
};
pub use apply::{ApplyOutcome, ChangeApplier};
pub use backup::{BackupInfo, add_identity, copy_backup, read_backup, rotate_site_id};
pub use changes::{ChangeExport, ChangeRange, SqlValue, value_from_sql};
pub use error::{DbError, shown};
pub use extension::Extension;
pub use feed::{Arrival, FeedChange};
pub use filters::{FilterJson, read_stored_filter, stored_filter};
pub use follow::{Followed, FollowedMigration, RemoteSchema};
pub use held::{BUNDLE_SITE, HeldApplied, HeldGroup, MAX_HELD};
pub use history::{AuthorHeld, RemotePulls};
pub use import::{CsvRecord, Imported};
pub use incarnation::RestoredLife;
pub use members::{Access, AccessSince, AccessState, Member, MemberName, RestoredAccess};
pub use migrate::{Migrated, MigrationStep};
pub use migrations::METADATA_VERSION;
pub use mirrors::{Mirror, MirrorPrefix};
pub use owners::OwnerCheck;
pub use remotes::{Remote, RemoteName};

use crate::sync::{DbVersion, SiteId};

/// How long a writer waits for another process's lock before it gives up.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The most memory a connection's page cache takes, in KiB.
const PAGE_CACHE_KIB: u32 = 16 * 1024;

/// A ddcp database: one SQLite connection with cr-sqlite loaded.
///
/// Dropping it runs `crsql_finalize()` before the connection closes, as cr-sqlite asks;
/// [`Db::close`] does the same and reports errors.
#[derive(Debug)]
pub struct Db {
    conn: Option<Connection>,
    path: PathBuf,
    /// Whether cr-sqlite is ddcp's own build, with the fast path for added columns
    /// (patches/crsqlite-0.16.3-fast-add-column.patch); a build of the user's (`--ext-file`)
    /// may lack it.
    fast_add_column: bool,
    /// The authorizer that judges apps' statements, once installed on this connection: it
    /// stays (installing one expires every prepared statement, cr-sqlite's cached ones too),
    /// judging only while an app's statement is prepared. A migration's own authorizer
    /// replaces it, and forgets it here.
    app_guard: Option<app_sql::Guard>,
}

impl Db {
    /// Makes `path` a ddcp database: creates the file if needed and adds ddcp's metadata tables.
    /// An existing SQLite database of an application is adopted; a ddcp database is refused, and
    /// a file this call created is removed again when it fails.
    pub fn create(path: &Path, extension: &Extension) -> Result<Db, DbError> {
        let existed = path.exists();
        let result = Db::connect(path, OpenFlags::SQLITE_OPEN_CREATE).and_then(|conn| {
            if migrations::is_ddcp_database(&conn)? {
                return Err(DbError::AlreadyInitialized(path.to_path_buf()));
            }
            // An application table that a migration would create: refuse before anything is
            // written (cr-sqlite adds its tables as soon as it is loaded).
            if let Some(table) = migrations::colliding_table(&conn)? {
                return Err(DbError::NameCollision {
                    path: path.to_path_buf(),
                    table,
                });
            }
            Db::prepare(conn, path, extension)
        });
        if result.is_err() && !existed {
            remove_database_files(path);
        }
        result
    }

    /// Opens an existing ddcp database, migrating its metadata tables when they are older.
    /// Nothing is written to a file that is not a ddcp database.
    pub fn open(path: &Path, extension: &Extension) -> Result<Db, DbError> {
        if !path.exists() {
            return Err(DbError::Missing(path.to_path_buf()));
        }
        let conn = Db::connect(path, OpenFlags::empty())?;
        if !migrations::is_ddcp_database(&conn)? {
            return Err(DbError::NotInitialized(path.to_path_buf()));
        }
        Db::prepare(conn, path, extension)
    }

    /// Opens the file and checks that it is SQLite, without changing anything in it.
    fn connect(path: &Path, extra: OpenFlags) -> Result<Connection, DbError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | extra;
        let mut conn = Connection::open_with_flags(path, flags)
            .map_err(|err| DbError::from_open(path, err))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // ddcp's transactions write: taking the write lock at BEGIN, they wait their turn
        // (busy_timeout) behind `ddcp serve` or the application. Begun deferred, one that read
        // first failed at once with "database is locked" when another wrote meanwhile.
        conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
        conn.query_row("select count(*) from sqlite_master", [], |_| Ok(()))
            .map_err(|err| DbError::from_open(path, err))?;
        Ok(conn)
    }

    /// Loads cr-sqlite (which creates its own tables on first use), switches to WAL and brings
    /// ddcp's metadata up to date.
    fn prepare(conn: Connection, path: &Path, extension: &Extension) -> Result<Db, DbError> {
        extension.load(&conn)?;
        let mut db = Db {
            conn: Some(conn),
            path: path.to_path_buf(),
            fast_add_column: matches!(extension, Extension::BuiltIn),
            app_guard: None,
        };
        // WAL lets `ddcp serve` read while an application or `ddcp shell` writes.
        db.conn()
            .query_row("pragma journal_mode = wal", [], |_| Ok(()))?;
        // SQLite's default page cache (2 MiB) makes a big merge read its indexes back from
        // the file over and over: with 16 MiB, cr-sqlite merges a 200 MiB transaction about
        // 1.6x as fast (benches/large.rs). Pages are taken only as used.
        db.conn()
            .execute_batch(&format!("pragma cache_size = -{PAGE_CACHE_KIB}"))?;
        migrations::migrate(db.conn_mut())?;
        Ok(db)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The underlying connection, cr-sqlite loaded: for applications, tests and benchmarks that
    /// need raw SQL. ddcp's own code goes through this layer's methods.
    pub fn connection(&self) -> &Connection {
        self.conn()
    }

    pub(crate) fn conn(&self) -> &Connection {
        self.conn
            .as_ref()
            .expect("connection is open until close or drop")
    }

    pub(crate) fn conn_mut(&mut self) -> &mut Connection {
        self.conn
            .as_mut()
            .expect("connection is open until close or drop")
    }

    /// This replica's cr-sqlite site id.
    pub fn site_id(&self) -> Result<SiteId, DbError> {
        let bytes: Vec<u8> = self
            .conn()
            .query_row("select crsql_site_id()", [], |row| row.get(0))?;
        Ok(SiteId::from_slice(&bytes)?)
    }

    /// The database's current version: the db_version of its newest change.
    pub fn db_version(&self) -> Result<DbVersion, DbError> {
        changes::db_version(self.conn())
    }

    /// SQLite's schema version: moves whenever any connection creates, alters or drops a table
    /// (so a CRR made by `ddcp shell` or the application shows here).
    pub fn sqlite_schema_version(&self) -> Result<i64, DbError> {
        Ok(self
            .conn()
            .query_row("pragma schema_version", [], |row| row.get(0))?)
    }

    /// SQLite's data version: moves whenever another connection commits (this one's own commits
    /// leave it where it was).
    pub fn sqlite_data_version(&self) -> Result<i64, DbError> {
        Ok(self
            .conn()
            .query_row("pragma data_version", [], |row| row.get(0))?)
    }

    /// True while a transaction that SQL opened (BEGIN) is still open.
    pub fn in_transaction(&self) -> bool {
        !self.conn().is_autocommit()
    }

    /// Rolls back a transaction that SQL left open.
    pub fn rollback(&self) -> Result<(), DbError> {
        Ok(self.conn().execute_batch("rollback")?)
    }

    /// Finalizes cr-sqlite and closes the connection, reporting what goes wrong.
    pub fn close(mut self) -> Result<(), DbError> {
        let conn = self
            .conn
            .take()
            .expect("connection is open until close or drop");
        finalize(&conn)?;
        conn.close().map_err(|(_, err)| DbError::Sqlite(err))
    }
}

fn finalize(conn: &Connection) -> Result<(), DbError> {
    conn.query_row("select crsql_finalize()", [], |_| Ok(()))?;
    Ok(())
}

/// Removes a database file and its WAL companions (after a failed `create` or `init`).
pub fn remove_database_files(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // Errors cannot be reported from drop; close() is the path that reports them.
            let _ = finalize(&conn);
        }
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// A fresh ddcp database in a temporary folder, with the built-in cr-sqlite.
    pub fn temp_db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::create(&dir.path().join("test.db"), &Extension::BuiltIn).unwrap();
        (dir, db)
    }
}
