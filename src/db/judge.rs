//! A remote's row predicate (`remote add --where`), judged on each row as cr-sqlite's merge
//! leaves it rather than on the values a page carries: a cell of the page that loses the merge
//! (a lower col_version, a lower causal length) changes nothing, and a judgement that read it
//! would pass a row that ends up failing. So a complete group is merged, each row it touched
//! is read back, and a row that fails takes the whole transaction back: the group is merged
//! again without that row's changes (see `Db::accept_page`).
//!
//! The rule per row: it passes when it was not here or held the predicate before the group,
//! and after the merge it holds the predicate or is gone. A row gone after the merge that was
//! never here is refused: a deletion of a row this database has not seen cannot be judged, and
//! would otherwise hide whatever another remote writes under that key later.
//!
//! The rows a group touches are held in memory while it is judged, its key and one flag each.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use super::DbError;
use super::apply::ChangeApplier;
use super::rows::row_matches;
use super::staged::{forget_staged, staged_parts};
use crate::sync::filter::RowPredicate;
use crate::sync::{Change, SiteId};

/// A row of a CRR, by its packed key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct RowKey {
    table: String,
    pk: Vec<u8>,
}

impl RowKey {
    fn of(change: &Change) -> RowKey {
        RowKey {
            table: change.table.clone(),
            pk: change.pk.clone(),
        }
    }
}

/// Rows refused while accepting one group: it grows from one try to the next.
#[derive(Debug, Default)]
pub(super) struct RefusedRows(HashSet<RowKey>);

impl RefusedRows {
    fn refuses(&self, change: &Change) -> bool {
        // No allocation for the common case of nothing refused.
        !self.0.is_empty() && self.0.contains(&RowKey::of(change))
    }
}

/// What a judged merge came to.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Judgement {
    /// Every row merged holds the predicate; changes of refused rows were not merged, of the
    /// page `left_out` and of the parts staged before it `left_out_staged`. The staged parts
    /// are gone: commit.
    Merged { left_out: u64, left_out_staged: u64 },
    /// A row the merge left failing the predicate is refused now: roll the transaction back
    /// and merge the group again.
    Refused,
}

/// Merges a complete group of `remote`'s changes into the applier's transaction: the page's
/// `rows` (older cells of rows), the parts staged for it (when `with_staged`), the page's
/// `changes`, leaving out the rows in `refused`, and judges each row it touched by `predicate`.
pub(super) fn merge_judged(
    applier: &mut ChangeApplier<'_>,
    remote: SiteId,
    predicate: &RowPredicate,
    rows: &[Change],
    changes: &[Change],
    refused: &mut RefusedRows,
    with_staged: bool,
) -> Result<Judgement, DbError> {
    let parts = match with_staged {
        true => staged_parts(applier.connection(), remote)?,
        false => Vec::new(),
    };
    // Every row the group touches, as it is here now: whether it holds the predicate, `None`
    // when it is not here.
    let mut before: HashMap<RowKey, Option<bool>> = HashMap::new();
    {
        let conn = applier.connection();
        let mut note = |changes: &[Change]| -> Result<(), DbError> {
            for change in changes {
                if refused.refuses(change) {
                    continue;
                }
                if let Entry::Vacant(unseen) = before.entry(RowKey::of(change)) {
                    let here = row_matches(conn, &change.table, &change.pk, predicate)?;
                    unseen.insert(here);
                }
            }
            Ok(())
        };
        note(rows)?;
        for part in &parts {
            note(&part.read(conn, remote)?)?;
        }
        note(changes)?;
    }
    // A row here that fails the predicate is not the remote's to change.
    before.retain(|key, here| {
        if *here == Some(false) {
            refused.0.insert(key.clone());
        }
        *here != Some(false)
    });
    // Each merge says how many changes it left out.
    let merge = |applier: &mut ChangeApplier<'_>, changes: &[Change]| {
        let kept: Vec<Change> = changes
            .iter()
            .filter(|change| !refused.refuses(change))
            .cloned()
            .collect();
        applier.apply(&kept)?;
        Ok::<_, DbError>((changes.len() - kept.len()) as u64)
    };
    let mut left_out = merge(applier, rows)?;
    let mut left_out_staged = 0;
    for part in &parts {
        let changes = part.read(applier.connection(), remote)?;
        left_out_staged += merge(applier, &changes)?;
    }
    left_out += merge(applier, changes)?;
    let mut refused_now = false;
    for (key, here) in before {
        let after = row_matches(applier.connection(), &key.table, &key.pk, predicate)?;
        let passes = match after {
            Some(holds) => holds,
            None => here.is_some(),
        };
        if !passes {
            refused.0.insert(key);
            refused_now = true;
        }
    }
    if refused_now {
        return Ok(Judgement::Refused);
    }
    if with_staged {
        forget_staged(applier.connection(), remote)?;
    }
    Ok(Judgement::Merged {
        left_out,
        left_out_staged,
    })
}
