//! Reading this database's changes from `crsql_changes`: a consistent snapshot, read in chunks;
//! and the conversions between SQLite's values and a change's. Applying them is apply.rs's.

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, Row, ToSql, Transaction};

use super::{Db, DbError};
use crate::sync::compress::MAX_PAGE_BYTES;
use crate::sync::{Change, DbVersion, Seq, SiteId, Value};

/// The columns of `crsql_changes`, in the order [`change_from_row`] reads them.
pub(super) const CHANGE_COLUMNS: &str =
    "\"table\", pk, cid, val, col_version, db_version, site_id, cl, seq";

/// A consistent slice of a database's changes: those after `since`, up to and including `until`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChangeRange {
    /// Changes after this version of the database ...
    pub since: DbVersion,
    /// ... up to and including this one (its version when the snapshot began).
    pub until: DbVersion,
    /// How many rows of `crsql_changes` the range holds.
    pub count: u64,
}

/// A change's value as a SQL parameter, byte for byte (TEXT that is not UTF-8 included).
#[derive(Debug)]
pub struct SqlValue<'a>(pub &'a Value);

impl ToSql for SqlValue<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            Value::Null => ValueRef::Null,
            Value::Integer(int) => ValueRef::Integer(*int),
            Value::Real(real) => ValueRef::Real(*real),
            Value::Text(text) => ValueRef::Text(text.as_bytes()),
            Value::Blob(blob) => ValueRef::Blob(blob),
            Value::RawText(bytes) => ValueRef::Text(bytes),
        }))
    }
}

/// Converts a SQLite value, keeping TEXT that is not UTF-8 as raw bytes.
pub fn value_from_sql(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(int) => Value::Integer(int),
        ValueRef::Real(real) => Value::Real(real),
        ValueRef::Text(text) => match String::from_utf8(text.to_vec()) {
            Ok(text) => Value::Text(text),
            Err(err) => Value::RawText(err.into_bytes()),
        },
        ValueRef::Blob(blob) => Value::Blob(blob.to_vec()),
    }
}

pub(super) fn change_from_row(row: &Row<'_>) -> Result<Change, DbError> {
    let table: String = row.get(0)?;
    let val = value_from_sql(row.get_ref(3)?);
    if val.size() > MAX_PAGE_BYTES {
        return Err(DbError::ValueTooLarge {
            table,
            size: val.size(),
            limit: MAX_PAGE_BYTES,
        });
    }
    Ok(Change {
        pk: row.get(1)?,
        cid: row.get(2)?,
        val,
        col_version: row.get(4)?,
        db_version: DbVersion(row.get(5)?),
        site_id: SiteId::from_slice(&row.get::<_, Vec<u8>>(6)?)?,
        cl: row.get(7)?,
        seq: Seq(row.get(8)?),
        table,
    })
}

pub(super) fn db_version(conn: &Connection) -> Result<DbVersion, DbError> {
    Ok(DbVersion(conn.query_row(
        "select crsql_db_version()",
        [],
        |row| row.get(0),
    )?))
}

impl Db {
    /// Opens a consistent snapshot of the changes after `since`, to be read in chunks.
    pub fn export_changes(&self, since: DbVersion) -> Result<ChangeExport<'_>, DbError> {
        // A read transaction: later writes move rows of crsql_changes to newer versions, and the
        // count, the bound and the rows must all describe the same moment.
        let tx = rusqlite::Transaction::new_unchecked(
            self.conn(),
            rusqlite::TransactionBehavior::Deferred,
        )?;
        let range = read_range(&tx, since)?;
        Ok(ChangeExport { tx, range })
    }

    /// All changes after `since`, in (db_version, seq) order.
    pub fn changes_since(&self, since: DbVersion) -> Result<Vec<Change>, DbError> {
        let mut all = Vec::new();
        self.export_changes(since)?
            .for_each_chunk::<DbError>(usize::MAX, |chunk| {
                all.extend_from_slice(chunk);
                Ok(())
            })?;
        Ok(all)
    }
}

fn read_range(conn: &Connection, since: DbVersion) -> Result<ChangeRange, DbError> {
    let until = db_version(conn)?;
    let count: i64 = conn.query_row(
        "select count(*) from crsql_changes where db_version > ?1 and db_version <= ?2",
        (since.0, until.0),
        |row| row.get(0),
    )?;
    Ok(ChangeRange {
        since,
        until,
        count: count as u64,
    })
}

/// A snapshot of a range of this database's changes (see [`Db::export_changes`]).
#[derive(Debug)]
pub struct ChangeExport<'db> {
    tx: Transaction<'db>,
    range: ChangeRange,
}

impl ChangeExport<'_> {
    /// The versions and the number of changes the snapshot holds.
    pub fn range(&self) -> ChangeRange {
        self.range
    }

    /// Hands the changes to `on_chunk` in (db_version, seq) order, in chunks of about
    /// `chunk_bytes` (a chunk may end inside a transaction's group).
    pub fn for_each_chunk<E: From<DbError>>(
        &self,
        chunk_bytes: usize,
        mut on_chunk: impl FnMut(&[Change]) -> Result<(), E>,
    ) -> Result<(), E> {
        let sql = format!(
            "select {CHANGE_COLUMNS} from crsql_changes
             where db_version > ?1 and db_version <= ?2 order by db_version, seq"
        );
        let mut statement = self.tx.prepare(&sql).map_err(DbError::from)?;
        let mut rows = statement
            .query((self.range.since.0, self.range.until.0))
            .map_err(DbError::from)?;
        let mut chunk = Vec::new();
        let mut chunk_size = 0;
        while let Some(row) = rows.next().map_err(DbError::from)? {
            let change = change_from_row(row)?;
            chunk_size += change.size();
            chunk.push(change);
            if chunk_size >= chunk_bytes {
                on_chunk(&chunk)?;
                chunk.clear();
                chunk_size = 0;
            }
        }
        if !chunk.is_empty() {
            on_chunk(&chunk)?;
        }
        Ok(())
    }
}
