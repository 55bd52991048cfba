//! Backups: a consistent copy of a live database (`VACUUM INTO`, one read transaction: a
//! `ddcp serve` writing meanwhile neither waits nor shows half in the copy), optionally with
//! the state dir's identity files inside it (table `ddcp_backup_identity`, in the copy only),
//! and the way back.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::{Db, DbError};
use crate::sync::{Epoch, RecordKey, SiteId};

/// A backup's table of the state dir's identity files, when made `--with-identity`.
const IDENTITY_TABLE: &str = "ddcp_backup_identity";

/// What a backup holds, read without loading cr-sqlite.
#[derive(Debug)]
pub struct BackupInfo {
    /// The database's site id.
    pub site_id: SiteId,
    /// The record it belongs to (without the secret), when it knows one.
    pub record: Option<RecordKey>,
    /// The identity files (name, text) it carries, if any. Secret: never logged.
    pub identity: Vec<(String, String)>,
    /// Whether it is private or has members: whom it lets read depends on who was removed
    /// since it was taken.
    pub holds_members: bool,
    /// Its key epoch.
    pub epoch: Epoch,
}

fn open_plain(path: &Path, flags: OpenFlags) -> Result<Connection, DbError> {
    Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX).map_err(|source| {
        DbError::Open {
            path: path.to_path_buf(),
            source,
        }
    })
}

impl Db {
    /// Writes a consistent copy of this database to `path` (which must not exist).
    pub fn backup_into(&self, path: &Path) -> Result<(), DbError> {
        self.conn()
            .execute("vacuum into ?1", [path.to_string_lossy()])?;
        Ok(())
    }
}

/// Puts the identity files `files` (name, text) into the backup at `path`.
pub fn add_identity(path: &Path, files: &[(String, String)]) -> Result<(), DbError> {
    let conn = open_plain(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    conn.execute_batch(&format!(
        "create table {IDENTITY_TABLE} (file text primary key not null, content text not null)"
    ))?;
    for (file, content) in files {
        conn.execute(
            &format!("insert into {IDENTITY_TABLE} (file, content) values (?1, ?2)"),
            (file, content),
        )?;
    }
    Ok(())
}

/// What the backup at `path` holds; a file that is no ddcp database is refused.
pub fn read_backup(path: &Path) -> Result<BackupInfo, DbError> {
    let conn = open_plain(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let not_backup = || DbError::NotInitialized(path.to_path_buf());
    if !super::migrations::is_ddcp_database(&conn).map_err(|_| DbError::NotSqlite {
        path: path.to_path_buf(),
    })? {
        return Err(not_backup());
    }
    let site: Vec<u8> = conn
        .query_row(
            "select site_id from crsql_site_id where ordinal = 0",
            [],
            |row| row.get(0),
        )
        .map_err(|_| not_backup())?;
    let record: Option<String> = conn
        .query_row(
            "select value from ddcp_meta where key = 'record_key'",
            [],
            |row| row.get(0),
        )
        .optional()?;
    let has_identity: bool = conn.query_row(
        "select count(*) from sqlite_master where name = ?1",
        [IDENTITY_TABLE],
        |row| row.get(0),
    )?;
    let identity = if has_identity {
        let mut statement = conn.prepare(&format!("select file, content from {IDENTITY_TABLE}"))?;
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    Ok(BackupInfo {
        site_id: SiteId::from_slice(&site)?,
        record: record
            .map(|text| text.parse())
            .transpose()
            .map_err(|_| DbError::CorruptMetadata("record_key is not a record key".into()))?,
        identity,
        holds_members: holds_members(&conn)?,
        epoch: backup_epoch(&conn)?,
    })
}

fn backup_epoch(conn: &Connection) -> Result<Epoch, DbError> {
    let epoch: Option<i64> = conn
        .query_row(
            "select value from ddcp_meta where key = 'epoch' and typeof(value) = 'integer'",
            [],
            |row| row.get(0),
        )
        .optional()?;
    Ok(Epoch(epoch.unwrap_or(0).max(0) as u64))
}

fn holds_members(conn: &Connection) -> Result<bool, DbError> {
    let private = conn
        .query_row(
            "select value = 'private' from ddcp_meta where key = 'access'",
            [],
            |row| row.get::<_, bool>(0),
        )
        .optional()?
        .unwrap_or(false);
    // Made by a migration: a backup of a database from before it has no members.
    let has_table: bool = conn.query_row(
        "select count(*) from sqlite_master where name = 'ddcp_members'",
        [],
        |row| row.get(0),
    )?;
    let members: i64 = match has_table {
        true => conn.query_row("select count(*) from ddcp_members", [], |row| row.get(0))?,
        false => 0,
    };
    Ok(private || members > 0)
}

/// Copies the backup at `from` to `to` (which must not exist), without the identity it carries.
pub fn copy_backup(from: &Path, to: &Path) -> Result<(), DbError> {
    let source = open_plain(from, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    source.execute("vacuum into ?1", [to.to_string_lossy()])?;
    drop(source);
    let copy = open_plain(to, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    // The keys leave no trace in the copy: a dropped table's pages keep their bytes on the
    // free list (a database file is not as private as the state dir), so they are zeroed
    // (secure_delete) and dropped from the file (vacuum); the journal stays in memory, not
    // in a file beside it that would hold them again.
    copy.execute_batch(&format!(
        "pragma journal_mode = memory;
         pragma secure_delete = on;
         drop table if exists {IDENTITY_TABLE};
         vacuum;"
    ))?;
    Ok(())
}

/// Gives the database at `path` (a copy, not open anywhere) a new site id: what the old one
/// wrote stays its (its clocks move to a site ordinal of their own), what is written from now on
/// is the new one's. Its record binding goes too: the copy gets a record of its own.
pub fn rotate_site_id(path: &Path) -> Result<SiteId, DbError> {
    let mut conn = open_plain(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    let tx = conn.transaction()?;
    let clocks: Vec<String> = {
        let mut statement = tx.prepare(
            "select name from sqlite_master where type = 'table' and name like '%\\_\\_crsql\\_clock' escape '\\'",
        )?;
        statement
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?
    };
    // The old site becomes an ordinary one: every clock entry it wrote (ordinal 0, the local
    // site's) moves to its new ordinal.
    let ordinal: i64 = tx.query_row(
        "select coalesce(max(ordinal), 0) + 1 from crsql_site_id",
        [],
        |row| row.get(0),
    )?;
    let old: Vec<u8> = tx.query_row(
        "select site_id from crsql_site_id where ordinal = 0",
        [],
        |row| row.get(0),
    )?;
    let new = SiteId(crate::sync::random::bytes());
    tx.execute(
        "update crsql_site_id set site_id = ?1 where ordinal = 0",
        [&new.0[..]],
    )?;
    tx.execute(
        "insert into crsql_site_id (site_id, ordinal) values (?1, ?2)",
        (old, ordinal),
    )?;
    for clock in &clocks {
        tx.execute(
            &format!(
                "update {} set site_id = ?1 where site_id = 0",
                super::rows::quoted(clock)
            ),
            [ordinal],
        )?;
    }
    tx.execute("delete from ddcp_meta where key = 'record_key'", [])?;
    tx.commit()?;
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_support::temp_db;

    #[test]
    fn a_backup_copies_the_database_and_carries_the_identity_when_asked() {
        let (dir, db) = temp_db();
        db.conn()
            .execute_batch(
                "create table t (id integer primary key not null, v text);
                 select crsql_as_crr('t'); insert into t values (1, 'one');",
            )
            .unwrap();
        let backup = dir.path().join("b.db");
        db.backup_into(&backup).unwrap();
        // Refused over an existing file.
        assert!(db.backup_into(&backup).is_err());
        let files = vec![("member".to_string(), "secret VLD0-SECRET:x".to_string())];
        add_identity(&backup, &files).unwrap();
        let info = read_backup(&backup).unwrap();
        assert_eq!(info.site_id, db.site_id().unwrap());
        assert_eq!(info.identity, files);
        let restored = dir.path().join("restored.db");
        copy_backup(&backup, &restored).unwrap();
        assert!(read_backup(&restored).unwrap().identity.is_empty());
        let again = Db::open(&restored, &crate::db::Extension::BuiltIn).unwrap();
        assert_eq!(again.site_id().unwrap(), db.site_id().unwrap());
        assert_eq!(
            again
                .changes_since(crate::sync::DbVersion(0))
                .unwrap()
                .len(),
            1
        );
        assert!(read_backup(&dir.path().join("nothing.db")).is_err());
    }

    #[test]
    fn a_rotated_copy_keeps_who_wrote_what_and_writes_as_a_new_site() {
        let (dir, db) = temp_db();
        db.conn()
            .execute_batch(
                "create table t (id integer primary key not null, v text);
                 select crsql_as_crr('t'); insert into t values (1, 'one');",
            )
            .unwrap();
        let old = db.site_id().unwrap();
        let copy = dir.path().join("copy.db");
        db.backup_into(&copy).unwrap();
        let new = rotate_site_id(&copy).unwrap();
        assert_ne!(new, old);
        let copy = Db::open(&copy, &crate::db::Extension::BuiltIn).unwrap();
        assert_eq!(copy.site_id().unwrap(), new);
        assert_eq!(copy.bound_record().unwrap(), None);
        copy.connection()
            .execute_batch("insert into t values (2, 'two')")
            .unwrap();
        let authors: Vec<(String, SiteId)> = copy
            .changes_since(crate::sync::DbVersion(0))
            .unwrap()
            .into_iter()
            .map(|c| (format!("{:?}", c.val), c.site_id))
            .collect();
        assert_eq!(
            authors,
            [
                ("Text(\"one\")".to_string(), old),
                ("Text(\"two\")".to_string(), new)
            ]
        );
    }
}
