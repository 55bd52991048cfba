//! Applying changes from elsewhere: [`ChangeApplier`], one open transaction that checks each
//! change and merges it through cr-sqlite (a pulled page goes through it: `accept_page`).

use rusqlite::Connection;

use super::changes::{SqlValue, db_version};
use super::held::hold;
use super::rows::counters_admitted;
use super::{Db, DbError};
use crate::sync::validate::{ChangeValidator, InvalidChange};
use crate::sync::{Change, DbVersion, SiteId};

const INSERT_CHANGE: &str = "insert into crsql_changes
     (\"table\", pk, cid, val, col_version, db_version, site_id, cl, seq)
     values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

/// The db_version every change is merged with. cr-sqlite gives a merged change the larger of
/// the next local version and the one it is given, so a change given 2^53 would push every
/// later local write past what peers accept. A change's version at another database means
/// nothing here (cursors count the remote's own versions, kept apart from the changes), so
/// every merge takes the next local version, as a local write does.
const MERGED_AT: i64 = 1;

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

impl Db {
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

    /// Applies `changes` in one transaction. A counter that jumps past 2^53 refuses them all
    /// (pulls leave such a change behind instead: see [`Db::admit`]).
    pub fn apply_changes(&mut self, changes: &[Change]) -> Result<ApplyOutcome, DbError> {
        // Judged before the merge, against this database's counters as they are: as a page's
        // are (merged, a deletion earlier in the same set could make a later cell look like a
        // jump, where cr-sqlite would ignore that cell anyway).
        refuse_counter_jumps(self.conn(), changes)?;
        let mut applier = self.begin_apply()?;
        applier.apply(changes)?;
        applier.commit()
    }
}

/// Changes being applied in one open transaction. cr-sqlite merges each row by its clocks, so
/// changes already known are no-ops and the order of delivery does not matter.
#[derive(Debug)]
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

    /// Refuses `changes` when one of them takes a counter past 2^53 by a jump (see
    /// `validate::counter_step_admitted`), judged on this transaction's state: for changes
    /// that are all or nothing (a bundle); a pull leaves such a change behind instead.
    pub fn refuse_counter_jumps(&self, changes: &[Change]) -> Result<(), DbError> {
        refuse_counter_jumps(self.conn, changes)
    }

    /// Holds `changes` of `via` (for tables or columns this database lacks) in the open
    /// transaction, until it has them (see `Db::apply_held`).
    pub fn hold(&self, via: SiteId, changes: &[Change]) -> Result<(), DbError> {
        hold(self.conn, via, changes)
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
                MERGED_AT,
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

fn refuse_counter_jumps(conn: &Connection, changes: &[Change]) -> Result<(), DbError> {
    for change in changes {
        if !counters_admitted(conn, change)? {
            return Err(InvalidChange::CounterJump {
                table: change.table.clone(),
                value: change.col_version.max(change.cl),
            }
            .into());
        }
    }
    Ok(())
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
