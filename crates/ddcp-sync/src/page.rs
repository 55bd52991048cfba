//! Cutting a remote's changes into pages.
//!
//! A page holds whole db_version groups (one source transaction each) as long as they fit the
//! budget. A group too big for a page on its own is cut into parts (the receiver stages the
//! parts and applies the group once complete), so a reader never sees half a transaction.
//! The builder never holds more than the budget plus one change (with the rows it carries).
//!
//! A filtered reader's page leaves changes out ([`PageBuilder::skip`]): the cursor still moves
//! past them, and a run of left-out changes ends the page after [`SKIP_LIMIT`] of them, so that
//! one request never reads a whole database, or a whole huge transaction, for nothing. Such a
//! page ends at a group boundary, or inside a group at the end of one seq
//! ([`Cursor::after_seq`]): never at a change left out, whose table, key and column the
//! cursor would show the reader.

use super::change::Change;
use super::cursor::Cursor;
use super::ids::{DbVersion, Seq};

/// Changes left out before a page ends at the next group boundary, however little it holds.
pub const SKIP_LIMIT: usize = 50_000;

/// Whether a source should keep offering changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visit {
    /// Offer the next change.
    Continue,
    /// The page is full: offer no more.
    Stop,
}

/// What one page holds and where the next one starts.
#[derive(Clone, Debug, PartialEq)]
pub struct PagePlan {
    /// The changes, in cursor order.
    pub changes: Vec<Change>,
    /// The rows carried with them (see `ChangesPage::rows`).
    pub rows: Vec<Change>,
    /// Where the next page starts.
    pub after: Cursor,
    /// False while the page is a part of a group that continues in the next page.
    pub group_complete: bool,
    /// Changes remain beyond `after`.
    pub more: bool,
}

/// Changes and the rows they carry, with their size.
#[derive(Debug, Default)]
struct Held {
    changes: Vec<Change>,
    rows: Vec<Change>,
    size: usize,
}

impl Held {
    fn push(&mut self, change: Change, rows: Vec<Change>, size: usize) {
        self.changes.push(change);
        self.rows.extend(rows);
        self.size += size;
    }

    fn append(&mut self, other: &mut Held) {
        self.changes.append(&mut other.changes);
        self.rows.append(&mut other.rows);
        self.size += std::mem::take(&mut other.size);
    }

    fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Builds one page from changes offered in cursor order, after `since`.
#[derive(Debug)]
pub struct PageBuilder {
    since: Cursor,
    budget: usize,
    /// Whole groups taken (or, when continuing a cut group, that group's rows).
    taken: Held,
    /// The group being read, not yet known to be complete.
    pending: Held,
    /// The version of the last change offered or skipped.
    last_read: Option<DbVersion>,
    skipped: usize,
    /// Set once [`SKIP_LIMIT`] changes were left out inside a group: the page ends at the end
    /// of this seq of this group.
    cut_after_seq: Option<(DbVersion, Seq)>,
    stopped: Option<PagePlan>,
}

impl PageBuilder {
    /// A builder for the page after `since` holding about `budget` bytes of changes (at least
    /// one change, however big).
    pub fn new(since: Cursor, budget: usize) -> Self {
        PageBuilder {
            since,
            budget: budget.max(1),
            taken: Held::default(),
            pending: Held::default(),
            last_read: None,
            skipped: 0,
            cut_after_seq: None,
            stopped: None,
        }
    }

    fn continuing(&self) -> bool {
        self.since.within.is_some()
    }

    /// Offers the next change; `Stop` once the page is full.
    pub fn offer(&mut self, change: Change) -> Visit {
        self.offer_with_rows(change, Vec::new())
    }

    /// Offers the next change with the rows it carries (they go in the same page, or neither
    /// does); `Stop` once the page is full.
    pub fn offer_with_rows(&mut self, change: Change, rows: Vec<Change>) -> Visit {
        if self.stopped.is_some() {
            return Visit::Stop;
        }
        if let Some(plan) = self.cut_before(&change) {
            return self.stop_with(Some(plan));
        }
        let plan = if self.continuing() {
            self.offer_in_cut_group(change, rows)
        } else {
            self.offer_in_whole_groups(change, rows)
        };
        self.stop_with(plan)
    }

    /// Tells the builder that the next change was read and left out (a filter refused it).
    pub fn skip(&mut self, change: &Change) -> Visit {
        if self.stopped.is_some() {
            return Visit::Stop;
        }
        if let Some(plan) = self.cut_before(change) {
            return self.stop_with(Some(plan));
        }
        self.skipped += 1;
        let plan = if self.continuing() {
            let group = self.since.db_version;
            if change.db_version != group {
                Some(self.plan_taken(true, true, Cursor::after_group(group)))
            } else {
                self.cut_after_this_seq(change);
                None
            }
        } else {
            let mut plan = None;
            if let Some(last_read) = self.last_read.filter(|v| *v != change.db_version) {
                // Every group before this change's is read whole.
                self.close_pending_group();
                if self.skipped >= SKIP_LIMIT {
                    plan = Some(self.plan_taken(true, true, Cursor::after_group(last_read)));
                }
            } else if self.last_read.is_some() {
                self.cut_after_this_seq(change);
            }
            self.last_read = Some(change.db_version);
            plan
        };
        self.stop_with(plan)
    }

    /// Once [`SKIP_LIMIT`] changes were left out inside a group, the page is to end with the
    /// seq of `change` (left out), not at `change` itself: its table, key and column are not
    /// the reader's to see.
    fn cut_after_this_seq(&mut self, change: &Change) {
        if self.skipped >= SKIP_LIMIT && self.cut_after_seq.is_none() {
            self.cut_after_seq = Some((change.db_version, change.seq));
        }
    }

    /// The page that ends before `change`, when it comes after the seq the page is to end
    /// with inside its group (see [`PageBuilder::cut_after_this_seq`]).
    fn cut_before(&mut self, change: &Change) -> Option<PagePlan> {
        let (group, seq) = self.cut_after_seq?;
        if change.db_version != group {
            // The group ended: the page ends at its end as usual, or, read on, the next group
            // is cut the same way.
            self.cut_after_seq = None;
            return None;
        }
        if change.seq == seq {
            return None;
        }
        let after = Cursor::after_seq(group, seq);
        if self.continuing() {
            return Some(self.plan_taken(false, true, after));
        }
        if !self.taken.is_empty() {
            // Whole groups were taken: the page ends after them, and the next one reads this
            // group again from its start.
            let after = Cursor::after_group(self.last_taken_version());
            return Some(self.plan_taken(true, true, after));
        }
        // This group's first part: what of it the reader may read, maybe nothing.
        let part = std::mem::take(&mut self.pending);
        Some(PagePlan {
            changes: part.changes,
            rows: part.rows,
            after,
            group_complete: false,
            more: true,
        })
    }

    fn stop_with(&mut self, plan: Option<PagePlan>) -> Visit {
        match plan {
            Some(plan) => {
                self.stopped = Some(plan);
                Visit::Stop
            }
            None => Visit::Continue,
        }
    }

    /// The pending group is complete, and it fits (checked as it grew).
    fn close_pending_group(&mut self) {
        self.taken.append(&mut self.pending);
    }

    fn offer_in_cut_group(&mut self, change: Change, rows: Vec<Change>) -> Option<PagePlan> {
        let group = self.since.db_version;
        if change.db_version != group {
            // The rest of the group is all here: stop at its end.
            return Some(self.plan_taken(true, true, Cursor::after_group(group)));
        }
        let size = change.size() + rows.iter().map(Change::size).sum::<usize>();
        if !self.taken.is_empty() && self.taken.size + size > self.budget {
            let after = Cursor::after_change(self.taken.changes.last().expect("not empty"));
            return Some(self.plan_taken(false, true, after));
        }
        self.taken.push(change, rows, size);
        None
    }

    fn offer_in_whole_groups(&mut self, change: Change, rows: Vec<Change>) -> Option<PagePlan> {
        if self
            .last_read
            .is_some_and(|last_read| last_read != change.db_version)
        {
            self.close_pending_group();
        }
        self.last_read = Some(change.db_version);
        let size = change.size() + rows.iter().map(Change::size).sum::<usize>();
        let total = self.taken.size + self.pending.size + size;
        if total > self.budget && !(self.taken.is_empty() && self.pending.is_empty()) {
            if self.taken.is_empty() {
                // One group alone is bigger than a page: send its first part.
                let part = std::mem::take(&mut self.pending);
                let after = Cursor::after_change(part.changes.last().expect("not empty"));
                return Some(PagePlan {
                    changes: part.changes,
                    rows: part.rows,
                    after,
                    group_complete: false,
                    more: true,
                });
            }
            let after = Cursor::after_group(self.last_taken_version());
            return Some(self.plan_taken(true, true, after));
        }
        self.pending.push(change, rows, size);
        None
    }

    fn last_taken_version(&self) -> DbVersion {
        self.taken.changes.last().expect("not empty").db_version
    }

    fn plan_taken(&mut self, group_complete: bool, more: bool, after: Cursor) -> PagePlan {
        let taken = std::mem::take(&mut self.taken);
        PagePlan {
            changes: taken.changes,
            rows: taken.rows,
            after,
            group_complete,
            more,
        }
    }

    /// The page: the one the builder stopped at, or, when the source ran out, all it was offered.
    pub fn finish(mut self) -> PagePlan {
        if let Some(plan) = self.stopped.take() {
            return plan;
        }
        if self.continuing() {
            let after = Cursor::after_group(self.since.db_version);
            return self.plan_taken(true, false, after);
        }
        self.close_pending_group();
        // Everything offered or skipped was read: the next page starts after it.
        let after = match self.last_read {
            Some(last_read) => Cursor::after_group(last_read),
            None => self.since.clone(),
        };
        self.plan_taken(true, false, after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Seq, SiteId, Value};

    /// A change of about 100 bytes.
    fn change(db_version: i64, seq: i64) -> Change {
        Change {
            table: "t".into(),
            pk: vec![seq as u8],
            cid: "c".into(),
            val: Value::Blob(vec![0; 42]),
            col_version: 1,
            db_version: DbVersion(db_version),
            site_id: SiteId([0; 16]),
            cl: 1,
            seq: Seq(seq),
        }
    }

    fn build(since: Cursor, budget: usize, changes: &[Change]) -> PagePlan {
        let mut builder = PageBuilder::new(since.clone(), budget);
        for change in changes.iter().filter(|c| since.admits(c)) {
            if builder.offer(change.clone()) == Visit::Stop {
                break;
            }
        }
        builder.finish()
    }

    fn versions(plan: &PagePlan) -> Vec<(i64, i64)> {
        plan.changes
            .iter()
            .map(|c| (c.db_version.0, c.seq.0))
            .collect()
    }

    #[test]
    fn pages_end_on_whole_groups_where_they_fit() {
        let changes = [
            change(1, 0),
            change(1, 1),
            change(2, 0),
            change(3, 0),
            change(3, 1),
        ];
        let plan = build(Cursor::START, 350, &changes);
        assert_eq!(versions(&plan), [(1, 0), (1, 1), (2, 0)]);
        assert!(plan.group_complete && plan.more);
        assert_eq!(plan.after, Cursor::after_group(DbVersion(2)));
        let rest = build(plan.after, 350, &changes);
        assert_eq!(versions(&rest), [(3, 0), (3, 1)]);
        assert!(rest.group_complete && !rest.more);
    }

    #[test]
    fn a_group_bigger_than_a_page_is_cut_and_walked_to_its_end() {
        let changes: Vec<Change> = (0..7)
            .map(|seq| change(5, seq))
            .chain([change(6, 0)])
            .collect();
        let mut since = Cursor::START;
        let mut parts = Vec::new();
        loop {
            let plan = build(since, 250, &changes);
            parts.push((versions(&plan), plan.group_complete));
            since = plan.after.clone();
            if !plan.more {
                break;
            }
        }
        assert_eq!(
            parts,
            [
                (vec![(5, 0), (5, 1)], false),
                (vec![(5, 2), (5, 3)], false),
                (vec![(5, 4), (5, 5)], false),
                (vec![(5, 6)], true),
                (vec![(6, 0)], true),
            ]
        );
    }

    #[test]
    fn a_single_change_bigger_than_the_budget_still_makes_a_page() {
        let plan = build(Cursor::START, 10, &[change(1, 0), change(2, 0)]);
        assert_eq!(versions(&plan), [(1, 0)]);
        assert!(plan.group_complete && plan.more);
    }

    /// The page `build` makes when changes of table "skip" are left out.
    fn build_skipping(since: Cursor, budget: usize, changes: &[Change]) -> PagePlan {
        let mut builder = PageBuilder::new(since.clone(), budget);
        for change in changes.iter().filter(|c| since.admits(c)) {
            let visit = if change.table == "skip" {
                builder.skip(change)
            } else {
                builder.offer(change.clone())
            };
            if visit == Visit::Stop {
                break;
            }
        }
        builder.finish()
    }

    fn skipped(mut change: Change) -> Change {
        change.table = "skip".into();
        change
    }

    #[test]
    fn changes_left_out_still_move_the_cursor() {
        let changes = [change(1, 0), skipped(change(2, 0)), skipped(change(3, 0))];
        let plan = build_skipping(Cursor::START, 1000, &changes);
        assert_eq!(versions(&plan), [(1, 0)]);
        assert!(plan.group_complete && !plan.more);
        // Read through version 3: the next page does not read those again.
        assert_eq!(plan.after, Cursor::after_group(DbVersion(3)));
        // Nothing but left-out changes: an empty page that moves on.
        let plan = build_skipping(Cursor::START, 1000, &changes[1..]);
        assert!(plan.changes.is_empty() && !plan.more);
        assert_eq!(plan.after, Cursor::after_group(DbVersion(3)));
    }

    #[test]
    fn a_long_run_of_left_out_changes_ends_the_page_at_a_group_boundary() {
        let mut changes: Vec<Change> = (0..SKIP_LIMIT as i64)
            .map(|version| skipped(change(version + 1, 0)))
            .collect();
        changes.push(skipped(change(SKIP_LIMIT as i64 + 1, 0)));
        changes.push(change(SKIP_LIMIT as i64 + 2, 0));
        let plan = build_skipping(Cursor::START, 1000, &changes);
        assert!(plan.changes.is_empty() && plan.more && plan.group_complete);
        assert_eq!(
            plan.after,
            Cursor::after_group(DbVersion(SKIP_LIMIT as i64 - 1))
        );
        let rest = build_skipping(plan.after, 1000, &changes);
        assert_eq!(versions(&rest), [(SKIP_LIMIT as i64 + 2, 0)]);
    }

    /// Issue 29, items 4 and 5: one transaction of changes a reader may not read, bigger than
    /// the skip limit. The page ends inside it (one request does not read it whole), at the end
    /// of a seq: the cursor the reader gets names no change it may not read.
    #[test]
    fn a_huge_group_left_out_ends_pages_inside_it_without_naming_a_change() {
        let limit = SKIP_LIMIT as i64;
        let mut changes: Vec<Change> = vec![change(4, 0)];
        changes.extend((0..limit + 10).map(|seq| skipped(change(5, seq))));
        changes.push(change(5, limit + 10));
        changes.push(change(6, 0));
        let first = build_skipping(Cursor::START, 1000, &changes);
        assert_eq!(versions(&first), [(4, 0)]);
        assert!(first.group_complete && first.more);
        // Group 4 taken whole; group 5 read again from its start, on its own.
        let second = build_skipping(first.after, 1000, &changes);
        assert!(second.changes.is_empty() && !second.group_complete && second.more);
        assert_eq!(
            second.after,
            Cursor::after_seq(DbVersion(5), Seq(limit - 1))
        );
        let third = build_skipping(second.after.clone(), 1000, &changes);
        assert_eq!(versions(&third), [(5, limit + 10)]);
        assert!(third.group_complete);
        assert_eq!(third.after, Cursor::after_group(DbVersion(5)));
        for after in [&second.after, &third.after] {
            if let Some(key) = &after.within {
                assert!(key.table.is_empty() && key.pk.is_empty() && key.cid.is_empty());
            }
        }
        // Continuing inside the group from a cursor of the reader's choosing: the same.
        let within = Cursor::after_change(&skipped(change(5, 3)));
        let cut = build_skipping(within, 1000, &changes);
        assert!(cut.changes.is_empty() && !cut.group_complete);
        assert_eq!(cut.after, Cursor::after_seq(DbVersion(5), Seq(limit + 3)));
    }

    /// The limit crossed at the tail of one group, the next starting with a change the reader
    /// may read: the next group is cut too, not read whole (review of issue 29).
    #[test]
    fn the_skip_limit_holds_for_the_next_group_too() {
        let limit = SKIP_LIMIT as i64;
        let mut changes: Vec<Change> = (0..limit).map(|seq| skipped(change(5, seq))).collect();
        changes.push(change(6, 0));
        changes.extend((1..limit + 10).map(|seq| skipped(change(6, seq))));
        changes.push(change(7, 0));
        let plan = build_skipping(Cursor::START, 1_000_000, &changes);
        assert!(!plan.group_complete && plan.more, "{:?}", plan.after);
        assert_eq!(versions(&plan), [(6, 0)]);
        assert_eq!(plan.after.db_version, DbVersion(6));
    }

    #[test]
    fn a_cut_group_skips_within_itself_and_ends_where_it_ends() {
        let changes = [
            change(5, 0),
            change(5, 1),
            skipped(change(5, 2)),
            change(5, 3),
            change(6, 0),
        ];
        let first = build_skipping(Cursor::START, 150, &changes);
        assert_eq!(versions(&first), [(5, 0)]);
        assert!(!first.group_complete);
        let second = build_skipping(first.after, 150, &changes);
        assert_eq!(versions(&second), [(5, 1)]);
        let third = build_skipping(second.after, 250, &changes);
        assert_eq!(versions(&third), [(5, 3)]);
        assert!(third.group_complete);
        assert_eq!(third.after, Cursor::after_group(DbVersion(5)));
    }

    #[test]
    fn rows_travel_with_the_change_that_carries_them() {
        let row = |seq| change(0, seq);
        let mut builder = PageBuilder::new(Cursor::START, 350);
        assert_eq!(
            builder.offer_with_rows(change(1, 0), vec![row(0)]),
            Visit::Continue
        );
        assert_eq!(builder.offer(change(2, 0)), Visit::Continue);
        // Too big with its rows: it waits for the next page, its rows with it.
        assert_eq!(
            builder.offer_with_rows(change(3, 0), vec![row(1), row(2)]),
            Visit::Stop
        );
        let plan = builder.finish();
        assert_eq!(versions(&plan), [(1, 0), (2, 0)]);
        assert_eq!(plan.rows, [row(0)]);
    }

    #[test]
    fn nothing_new_gives_an_empty_final_page() {
        let since = Cursor::after_group(DbVersion(9));
        let plan = build(since.clone(), 100, &[]);
        assert!(plan.changes.is_empty() && !plan.more && plan.group_complete);
        assert_eq!(plan.after, since);
    }
}
