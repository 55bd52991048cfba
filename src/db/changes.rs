//! Reading this database's changes from `crsql_changes`, and applying changes from elsewhere.

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, Row, ToSql, Transaction};

use super::{Db, DbError};
use crate::sync::compress::MAX_PAGE_BYTES;
use crate::sync::validate::ChangeValidator;
use crate::sync::{Change, DbVersion, Seq, SiteId, Value};

/// The columns of `crsql_changes`, in the order [`change_from_row`] reads them.
pub(super) const CHANGE_COLUMNS: &str =
    "\"table\", pk, cid, val, col_version, db_version, site_id, cl, seq";

const INSERT_CHANGE: &str = "insert into crsql_changes
     (\"table\", pk, cid, val, col_version, db_version, site_id, cl, seq)
     values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

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

/// What an apply did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// Changes offered, including those the database already had.
    pub offered: u64,
    /// The database's version before the apply.
    pub db_version_before: DbVersion,
    /// Unchanged when every change offered was already known.
    pub db_version_after: DbVersion,
}

/// A change's value as a SQL parameter, byte for byte (TEXT that is not UTF-8 included).
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

    /// Starts applying changes from elsewhere; nothing is visible until
    /// [`ChangeApplier::commit`], and dropping the applier rolls everything back.
    pub fn begin_apply(&mut self) -> Result<ChangeApplier<'_>, DbError> {
        let validator = ChangeValidator::new(&self.schema()?);
        let conn = self.conn_mut();
        // IMMEDIATE: take the write lock now rather than fail half way when another process
        // (an application, `ddcp shell`) writes at the same time. The version is read under
        // the lock: no other commit can fall between it and this transaction's.
        conn.execute_batch("begin immediate")?;
        let db_version_before = match db_version(conn) {
            Ok(version) => version,
            Err(err) => {
                let _ = conn.execute_batch("rollback");
                return Err(err);
            }
        };
        Ok(ChangeApplier {
            conn,
            validator,
            open: true,
            offered: 0,
            db_version_before,
        })
    }

    /// Applies `changes` in one transaction.
    pub fn apply_changes(&mut self, changes: &[Change]) -> Result<ApplyOutcome, DbError> {
        let mut applier = self.begin_apply()?;
        applier.apply(changes)?;
        applier.commit()
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

/// Changes being applied in one open transaction. cr-sqlite merges each row by its clocks, so
/// changes already known are no-ops and the order of delivery does not matter.
pub struct ChangeApplier<'db> {
    conn: &'db mut Connection,
    /// Changes come from outside: each is checked before cr-sqlite sees it.
    validator: ChangeValidator,
    /// True until committed; an applier dropped while open rolls back.
    open: bool,
    offered: u64,
    db_version_before: DbVersion,
}

impl ChangeApplier<'_> {
    /// The connection, inside the open transaction.
    pub(super) fn connection(&self) -> &Connection {
        self.conn
    }

    /// Checks `changes` as [`ChangeApplier::apply`] would, without applying them.
    pub(super) fn check(&self, changes: &[Change]) -> Result<(), DbError> {
        for change in changes {
            self.validator.check(change)?;
        }
        Ok(())
    }

    /// Merges `changes` into the open transaction.
    pub fn apply(&mut self, changes: &[Change]) -> Result<(), DbError> {
        let mut insert = self.conn.prepare_cached(INSERT_CHANGE)?;
        for change in changes {
            self.validator.check(change)?;
            insert.execute((
                &change.table,
                &change.pk,
                &change.cid,
                SqlValue(&change.val),
                change.col_version,
                change.db_version.0,
                &change.site_id.0[..],
                change.cl,
                change.seq.0,
            ))?;
        }
        self.offered += changes.len() as u64;
        Ok(())
    }

    /// Notes, in the open transaction, that what it merged came from the site `via` (a pull:
    /// `kind` "pull"; a bundle: "bundle"), for the change feed. cr-sqlite gives merged changes
    /// their versions as it merges (an incoming version may make the local one jump), so the
    /// range is read back from the clocks, where only this transaction can have written since
    /// it began.
    pub fn note_arrival(&self, via: SiteId, kind: &str) -> Result<(), DbError> {
        // Each clock table's own db_version index, two seeks each: crsql_changes would read
        // every change of the page back through its virtual table (a fifth of a page's apply).
        let ranges: Vec<String> = super::schema::crr_tables(self.conn)?
            .iter()
            .map(|table| {
                let clock = super::rows::quoted(&format!("{table}__crsql_clock"));
                format!(
                    "select (select min(db_version) from {clock} where db_version > ?1) as first,
                            (select max(db_version) from {clock} where db_version > ?1) as last"
                )
            })
            .collect();
        if ranges.is_empty() {
            return Ok(());
        }
        let (first, last): (Option<i64>, Option<i64>) = self.conn.query_row(
            &format!(
                "select min(first), max(last) from ({})",
                ranges.join(" union all ")
            ),
            [self.db_version_before.0],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        if let (Some(first), Some(last)) = (first, last) {
            self.conn.execute(
                "insert into ddcp_arrivals (first, last, via, kind) values (?1, ?2, ?3, ?4)",
                (first, last, &via.0[..], kind),
            )?;
        }
        Ok(())
    }

    /// Commits everything applied so far.
    pub fn commit(mut self) -> Result<ApplyOutcome, DbError> {
        self.conn.execute_batch("commit")?;
        self.open = false;
        // cr-sqlite assigns the merged changes their version at commit.
        let db_version_after = db_version(self.conn)?;
        Ok(ApplyOutcome {
            offered: self.offered,
            db_version_before: self.db_version_before,
            db_version_after,
        })
    }
}

impl Drop for ChangeApplier<'_> {
    fn drop(&mut self) {
        if self.open {
            // Nothing of an unfinished apply may stay; a failed rollback means SQLite already
            // rolled back on its own.
            let _ = self.conn.execute_batch("rollback");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::db::test_support::temp_db;
    use crate::sync::{DbVersion, Value};

    const SCHEMA: &str = "create table items (id text primary key not null, name text, data blob);
        select crsql_as_crr('items');";

    #[test]
    fn changes_move_between_databases_and_reapplying_is_a_no_op() {
        let (_a_dir, a) = temp_db();
        let (_b_dir, mut b) = temp_db();
        a.conn().execute_batch(SCHEMA).unwrap();
        b.conn().execute_batch(SCHEMA).unwrap();
        a.conn()
            .execute_batch(
                "insert into items values ('x', 'héllo', x'');
                 insert into items values ('y', null, x'00ff');
                 update items set name = 'bye' where id = 'x';",
            )
            .unwrap();
        let changes = a.changes_since(DbVersion(0)).unwrap();
        assert!(changes.iter().any(|c| c.val == Value::Blob(vec![])));
        let first = b.apply_changes(&changes).unwrap();
        assert!(first.db_version_after > first.db_version_before);
        let again = b.apply_changes(&changes).unwrap();
        assert_eq!(again.db_version_after, again.db_version_before);
        let rows = |db: &crate::db::Db| -> Vec<(String, Option<String>, Vec<u8>)> {
            let mut statement = db
                .conn()
                .prepare("select * from items order by id")
                .unwrap();
            statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert_eq!(rows(&a), rows(&b));
        // The relay keeps the author's site id.
        let relayed = b.changes_since(DbVersion(0)).unwrap();
        assert!(relayed.iter().all(|c| c.site_id == a.site_id().unwrap()));
    }

    #[test]
    fn an_arrival_spans_exactly_the_versions_its_merge_wrote() {
        let schema = "create table notes (id integer primary key not null, body text);
            select crsql_as_crr('notes');";
        let (_a_dir, a) = temp_db();
        let (_b_dir, mut b) = temp_db();
        for db in [&a, &b] {
            db.conn().execute_batch(SCHEMA).unwrap();
            db.conn().execute_batch(schema).unwrap();
        }
        // b's own history first, so that merged versions are not b's first ones; a's changes
        // come from many versions of its own, in both tables, deletions too.
        b.conn()
            .execute_batch(
                "insert into notes values (100, 'b''s'); insert into notes values (101, 'b2');",
            )
            .unwrap();
        for i in 0..20 {
            a.conn()
                .execute_batch(&format!(
                    "insert into items values ('i{i}', 'n', x'01'); insert into notes values ({i}, 'a');"
                ))
                .unwrap();
        }
        a.conn()
            .execute_batch("delete from items where id = 'i3'")
            .unwrap();
        let before = b.db_version().unwrap();
        let mut applier = b.begin_apply().unwrap();
        applier
            .apply(&a.changes_since(DbVersion(0)).unwrap())
            .unwrap();
        applier.note_arrival(a.site_id().unwrap(), "pull").unwrap();
        let expected: (Option<i64>, Option<i64>) = applier
            .conn
            .query_row(
                "select min(db_version), max(db_version) from crsql_changes where db_version > ?1",
                [before.0],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        applier.commit().unwrap();
        let noted: (Option<i64>, Option<i64>) = b
            .conn()
            .query_row("select first, last from ddcp_arrivals", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .unwrap();
        assert!(expected.0.is_some());
        assert_eq!(noted, expected);
    }

    #[test]
    fn a_failing_apply_leaves_nothing_behind() {
        let (_a_dir, a) = temp_db();
        let (_b_dir, mut b) = temp_db();
        a.conn().execute_batch(SCHEMA).unwrap();
        a.conn()
            .execute_batch("insert into items values ('x', 'a', null)")
            .unwrap();
        // b has no CRR named items: the apply fails and must leave b as it was.
        let changes = a.changes_since(DbVersion(0)).unwrap();
        assert!(b.apply_changes(&changes).is_err());
        assert_eq!(b.db_version().unwrap(), DbVersion(0));
    }
}
