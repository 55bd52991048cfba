//! Accepting a pulled page: [`Db::accept_page`] drops what the remote's policy refuses, holds
//! what this database lacks the table or column for, stages a part of a transaction cut into
//! pages or merges complete ones (judged row by row under a `--where`), and moves the cursor,
//! all in one transaction.

use super::accept::{AcceptOutcome, AcceptPolicy, keep_accepted};
use super::apply::ChangeApplier;
use super::cursors::{read_cursor, read_incarnation, record_pull, write_cursor};
use super::held::{hold, schema_holds};
use super::judge::{Judgement, RefusedRows, merge_judged};
use super::rows::counters_admitted;
use super::staged::{forget_staged, stage, staged_parts};
use super::{Db, DbError};
use crate::sync::protocol::ChangesPage;
use crate::sync::schema_fit::SchemaFit;
use crate::sync::validate::check_each_cell_once;
use crate::sync::{Change, Incarnation, SiteId};

/// Tries of a page whose rows are judged on the merge before it is left for the next pull.
pub(super) const MAX_JUDGED_TRIES: usize = 3;

impl Db {
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

/// Merges the staged parts of `remote`'s transaction, in order, one part in memory at a time
/// (a group of any size passes through), and forgets them.
fn apply_staged(applier: &mut ChangeApplier<'_>, remote: SiteId) -> Result<(), DbError> {
    for part in staged_parts(applier.connection(), remote)? {
        let changes = part.read(applier.connection(), remote)?;
        applier.apply(&changes)?;
    }
    forget_staged(applier.connection(), remote)
}
