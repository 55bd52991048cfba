//! Cutting a remote's changes into pages.
//!
//! A page holds whole db_version groups (one source transaction each) as long as they fit the
//! budget. A group too big for a page on its own is cut into parts (the receiver stages the
//! parts and applies the group once complete), so a reader never sees half a transaction.
//! The builder never holds more than the budget plus one change.

use super::change::Change;
use super::cursor::Cursor;
use super::ids::DbVersion;

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
    /// Where the next page starts.
    pub after: Cursor,
    /// False while the page is a part of a group that continues in the next page.
    pub group_complete: bool,
    /// Changes remain beyond `after`.
    pub more: bool,
}

/// Builds one page from changes offered in cursor order, after `since`.
pub struct PageBuilder {
    since: Cursor,
    budget: usize,
    /// Whole groups taken (or, when continuing a cut group, that group's rows).
    taken: Vec<Change>,
    taken_size: usize,
    /// The group being read, not yet known to be complete.
    pending: Vec<Change>,
    pending_size: usize,
    stopped: Option<PagePlan>,
}

impl PageBuilder {
    /// A builder for the page after `since` holding about `budget` bytes of changes (at least
    /// one change, however big).
    pub fn new(since: Cursor, budget: usize) -> Self {
        PageBuilder {
            since,
            budget: budget.max(1),
            taken: Vec::new(),
            taken_size: 0,
            pending: Vec::new(),
            pending_size: 0,
            stopped: None,
        }
    }

    fn continuing(&self) -> bool {
        self.since.within.is_some()
    }

    /// Offers the next change; `Stop` once the page is full.
    pub fn offer(&mut self, change: Change) -> Visit {
        if self.stopped.is_some() {
            return Visit::Stop;
        }
        let plan = if self.continuing() {
            self.offer_in_cut_group(change)
        } else {
            self.offer_in_whole_groups(change)
        };
        match plan {
            Some(plan) => {
                self.stopped = Some(plan);
                Visit::Stop
            }
            None => Visit::Continue,
        }
    }

    fn offer_in_cut_group(&mut self, change: Change) -> Option<PagePlan> {
        let group = self.since.db_version;
        if change.db_version != group {
            // The rest of the group is all here: stop at its end.
            return Some(self.plan_taken(true, true, Cursor::after_group(group)));
        }
        let size = change.size();
        if !self.taken.is_empty() && self.taken_size + size > self.budget {
            let after = Cursor::after_change(self.taken.last().expect("not empty"));
            return Some(self.plan_taken(false, true, after));
        }
        self.taken_size += size;
        self.taken.push(change);
        None
    }

    fn offer_in_whole_groups(&mut self, change: Change) -> Option<PagePlan> {
        if self
            .pending
            .last()
            .is_some_and(|last| last.db_version != change.db_version)
        {
            // The pending group is complete, and it fits (checked as it grew).
            self.taken.append(&mut self.pending);
            self.taken_size += std::mem::take(&mut self.pending_size);
        }
        let size = change.size();
        let total = self.taken_size + self.pending_size + size;
        if total > self.budget && !(self.taken.is_empty() && self.pending.is_empty()) {
            if self.taken.is_empty() {
                // One group alone is bigger than a page: send its first part.
                let part = std::mem::take(&mut self.pending);
                let after = Cursor::after_change(part.last().expect("not empty"));
                return Some(PagePlan {
                    changes: part,
                    after,
                    group_complete: false,
                    more: true,
                });
            }
            let after = Cursor::after_group(self.last_taken_version());
            return Some(self.plan_taken(true, true, after));
        }
        self.pending_size += size;
        self.pending.push(change);
        None
    }

    fn last_taken_version(&self) -> DbVersion {
        self.taken.last().expect("not empty").db_version
    }

    fn plan_taken(&mut self, group_complete: bool, more: bool, after: Cursor) -> PagePlan {
        PagePlan {
            changes: std::mem::take(&mut self.taken),
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
        self.taken.append(&mut self.pending);
        let after = match self.taken.last() {
            Some(last) => Cursor::after_group(last.db_version),
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

    #[test]
    fn nothing_new_gives_an_empty_final_page() {
        let since = Cursor::after_group(DbVersion(9));
        let plan = build(since.clone(), 100, &[]);
        assert!(plan.changes.is_empty() && !plan.more && plan.group_complete);
        assert_eq!(plan.after, since);
    }
}
