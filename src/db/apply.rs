//! Applying changes from elsewhere: [`ChangeApplier`], one open transaction that checks each
//! change and merges it through cr-sqlite, and [`Db::accept_page`], a pulled page applied (or
//! staged, when it is a part of a transaction cut into pages) with its cursor moved, all or
//! nothing.

use rusqlite::Connection;

use super::accept::{AcceptOutcome, AcceptPolicy, keep_accepted};
use super::changes::{SqlValue, db_version};
use super::cursors::{read_cursor, read_incarnation, record_pull, write_cursor};
use super::held::{hold, schema_holds};
use super::judge::{Judgement, RefusedRows, merge_judged};
use super::rows::counters_admitted;
use super::staged::{forget_staged, stage, staged_parts};
use super::{Db, DbError};
use crate::sync::protocol::ChangesPage;
use crate::sync::schema_fit::SchemaFit;
use crate::sync::validate::{ChangeValidator, InvalidChange, check_each_cell_once};
use crate::sync::{Change, DbVersion, Incarnation, SiteId};

const INSERT_CHANGE: &str = "insert into crsql_changes
     (\"table\", pk, cid, val, col_version, db_version, site_id, cl, seq)
     values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

/// The db_version every change is merged with. cr-sqlite gives a merged change the larger of
/// the next local version and the one it is given, so a change given 2^53 would push every
/// later local write past what peers accept. A change's version at another database means
/// nothing here (cursors count the remote's own versions, kept apart from the changes), so
/// every merge takes the next local version, as a local write does.
const MERGED_AT: i64 = 1;

/// Tries of a page whose rows are judged on the merge before it is left for the next pull.
pub(super) const MAX_JUDGED_TRIES: usize = 3;

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

    /// Accepts a page of `remote`'s changes: drops what `policy` refuses, checks each change,
    /// stages a part of a group or applies complete groups (with the parts staged before), and
    /// moves the cursor, all in one transaction. A page that does not start at the stored
    /// cursor is refused (it was applied already, or another puller moved on).
    pub fn accept_page(
        &mut self,
        remote: SiteId,
        page: ChangesPage,
        policy: &AcceptPolicy,
    ) -> Result<AcceptOutcome, DbError> {
        self.accept_page_fitting(remote, page, policy, &SchemaFit::default())
    }

    /// [`Db::accept_page`] from a remote whose schema fits this database's as `fit` says:
    /// changes to a table or column this database lacks are held (see `held`), in the same
    /// transaction, and the cursor moves past them.
    pub fn accept_page_fitting(
        &mut self,
        remote: SiteId,
        mut page: ChangesPage,
        policy: &AcceptPolicy,
        fit: &SchemaFit,
    ) -> Result<AcceptOutcome, DbError> {
        // Before any filter judges a row by the page's values: each cell once.
        check_each_cell_once(page.changes.iter().chain(&page.rows))?;
        let mut waiting = Vec::new();
        if !fit.is_whole() {
            // What this database lacks now: the fit may be older than a migration that added
            // the column meanwhile.
            let here = self.fit_here(policy.into.as_ref())?;
            for changes in [&mut page.changes, &mut page.rows] {
                let (wait, now): (Vec<Change>, Vec<Change>) = changes
                    .drain(..)
                    .partition(|change| fit.must_wait(change) && !schema_holds(&here, change));
                *changes = now;
                waiting.extend(wait);
            }
        }
        // What the remote may not bring is not held either.
        let before = waiting.len();
        waiting.retain(|change| {
            policy.authors.admits(&change.site_id, &remote) && policy.filter.admits(change)
        });
        let mut refused = (before - waiting.len()) as u64;
        refused += self.admit(remote, policy, &mut page.changes, &mut page.rows)?;
        // A row the merge leaves failing the row predicate takes the transaction back, and the
        // group is merged again without it. Rows merge independently, so the second try
        // settles it, unless another process keeps changing the same rows in between.
        let mut refused_rows = RefusedRows::default();
        for _ in 0..MAX_JUDGED_TRIES {
            if let Some(outcome) =
                self.try_accept_page(remote, &page, &waiting, policy, &mut refused_rows)?
            {
                return Ok(AcceptOutcome {
                    refused: refused + outcome.refused,
                    ..outcome
                });
            }
        }
        Err(DbError::RowsKeptChanging)
    }

    /// Leaves in `changes` and `rows` what `remote` may bring here (its policy, and counters
    /// that do not jump past 2^53), named as this database names them (mirrors, made when
    /// missing); how many it dropped.
    pub(super) fn admit(
        &mut self,
        remote: SiteId,
        policy: &AcceptPolicy,
        changes: &mut Vec<Change>,
        rows: &mut Vec<Change>,
    ) -> Result<u64, DbError> {
        if let Some(into) = &policy.into {
            // Mirrors of tables made since the remote was added: made before the apply
            // begins, so that its checks know them.
            let tables: std::collections::BTreeSet<&str> = changes
                .iter()
                .chain(rows.iter())
                .map(|change| change.table.as_str())
                .collect();
            self.ensure_mirrors(into, &tables.into_iter().collect::<Vec<_>>())?;
        }
        let mirrors = self.mirrors()?;
        let mut refused = keep_accepted(remote, policy, &mirrors, changes, rows);
        // A counter that jumps past 2^53 (a cell pushed there by a peer, seen here for the first
        // time) is left behind, counted as refused: stopping at it would stop every change
        // after it.
        for changes in [changes, rows] {
            let before = changes.len();
            let mut kept = Vec::with_capacity(before);
            for change in changes.drain(..) {
                if counters_admitted(self.conn(), &change)? {
                    kept.push(change);
                }
            }
            refused += (before - kept.len()) as u64;
            *changes = kept;
        }
        Ok(refused)
    }

    /// One try of [`Db::accept_page`] on a page already filtered by author, table and column:
    /// `None` when a row was refused on the merge and the transaction rolled back.
    fn try_accept_page(
        &mut self,
        remote: SiteId,
        page: &ChangesPage,
        waiting: &[Change],
        policy: &AcceptPolicy,
        refused_rows: &mut RefusedRows,
    ) -> Result<Option<AcceptOutcome>, DbError> {
        let mut applier = self.begin_apply()?;
        // A cursor counts versions of one life of the remote: after a restore its versions
        // count again from the backup's, and this cursor would skip what they now name.
        let taken_in = read_incarnation(applier.connection(), remote)?;
        if !taken_in.continues_in(page.incarnation) {
            return Err(DbError::RemoteRestored);
        }
        let stored = read_cursor(applier.connection(), remote)?;
        if stored != page.since {
            return Err(DbError::StaleCursor);
        }
        // Changes of rows refused on the merge: of this page, of the parts staged before it.
        let (mut left_out, mut left_out_staged) = (0, 0);
        match (&policy.filter.rows, page.group_complete) {
            (None, true) => {
                // A row's older cells: current state at the remote, merged like any change
                // (what is known already is a no-op).
                applier.apply(&page.rows)?;
                apply_staged(&mut applier, remote)?;
                applier.apply(&page.changes)?;
            }
            (None, false) => {
                applier.apply(&page.rows)?;
                applier.check(&page.changes)?;
                stage(applier.connection(), remote, &page.changes)?;
            }
            // Rows are judged when the group is whole: its older cells wait with its parts.
            (Some(_), false) => {
                applier.check(&page.rows)?;
                applier.check(&page.changes)?;
                stage(applier.connection(), remote, &page.rows)?;
                stage(applier.connection(), remote, &page.changes)?;
            }
            (Some(predicate), true) => {
                match merge_judged(
                    &mut applier,
                    remote,
                    predicate,
                    &page.rows,
                    &page.changes,
                    refused_rows,
                    true,
                )? {
                    Judgement::Merged {
                        left_out: page_out,
                        left_out_staged: staged_out,
                    } => (left_out, left_out_staged) = (page_out, staged_out),
                    // Dropping the applier rolls back, which also resets cr-sqlite's pending
                    // version: a refused change must not leave its db_version behind.
                    Judgement::Refused => return Ok(None),
                }
            }
        }
        let incarnation = match page.incarnation {
            // A remote from before incarnations: the one known, if any, stays.
            Incarnation::UNKNOWN => taken_in,
            known => known,
        };
        hold(applier.connection(), remote, waiting)?;
        write_cursor(applier.connection(), remote, &page.after, incarnation)?;
        applier.note_arrival(remote, "pull")?;
        let admitted = (page.changes.len() + page.rows.len()) as u64 - left_out;
        record_pull(applier.connection(), remote, admitted)?;
        Ok(Some(AcceptOutcome {
            applied: applier.commit()?,
            admitted,
            refused: left_out + left_out_staged,
            held: waiting.len() as u64,
        }))
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

/// Merges the staged parts of `remote`'s transaction, in order, one part in memory at a time
/// (a group of any size passes through), and forgets them.
fn apply_staged(applier: &mut ChangeApplier<'_>, remote: SiteId) -> Result<(), DbError> {
    for part in staged_parts(applier.connection(), remote)? {
        let changes = part.read(applier.connection(), remote)?;
        applier.apply(&changes)?;
    }
    forget_staged(applier.connection(), remote)
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
