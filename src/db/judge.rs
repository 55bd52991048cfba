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
//! would otherwise hide whatever another remote writes under that key later. A row deleted
//! here and deleted again one life later (the remote brought it back and deleted it between
//! two pulls) passes.
//!
//! The rows a group touches are held in memory while it is judged: each one's key and how it
//! was here before.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use rusqlite::Connection;

use super::DbError;
use super::apply::ChangeApplier;
use super::rows::{row_cells, row_matches};
use super::staged::{forget_staged, staged_parts};
use crate::sync::filter::{RowPredicate, SENTINEL_CID};
use crate::sync::{Change, DbVersion, SiteId};

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

/// A row as it was here before the merge.
struct Before {
    /// Whether it holds the predicate; `None` when it is not here.
    matches: Option<bool>,
    /// It is not here because it was deleted here, and the group deletes it once more, one
    /// life later (see [`next_deletion_of_a_deleted_row`]).
    deleted_here: bool,
}

/// A row's delete sentinel: an even causal length.
fn is_deletion(change: &Change) -> bool {
    change.cid == SENTINEL_CID && change.cl % 2 == 0
}

/// Whether `change` (a deletion) deletes a row deleted here once more, one life later: the
/// remote brought it back and deleted it again between two pulls, and taking its deletion
/// keeps the two databases agreeing (refused, a later copy of the row's return from another
/// peer would bring back here a row the remote deleted). A deletion further ahead is refused:
/// a causal length far past this database's own would keep the row from ever coming back.
fn next_deletion_of_a_deleted_row(conn: &Connection, change: &Change) -> Result<bool, DbError> {
    let cells = row_cells(conn, &change.table, &change.pk, DbVersion(i64::MAX))?;
    let local_cl = cells.first().map_or(0, |cell| cell.cl);
    Ok(local_cl > 0 && local_cl % 2 == 0 && change.cl <= local_cl + 2)
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
    // when it is not here; and whether a deletion of it may pass though it is not here.
    let mut before: HashMap<RowKey, Before> = HashMap::new();
    {
        let conn = applier.connection();
        let mut note = |changes: &[Change]| -> Result<(), DbError> {
            for change in changes {
                if refused.refuses(change) {
                    continue;
                }
                let seen = match before.entry(RowKey::of(change)) {
                    Entry::Vacant(unseen) => unseen.insert(Before {
                        matches: row_matches(conn, &change.table, &change.pk, predicate)?,
                        deleted_here: false,
                    }),
                    Entry::Occupied(seen) => seen.into_mut(),
                };
                if seen.matches.is_none() && is_deletion(change) {
                    seen.deleted_here |= next_deletion_of_a_deleted_row(conn, change)?;
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
        if here.matches == Some(false) {
            refused.0.insert(key.clone());
        }
        here.matches != Some(false)
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
            None => here.matches.is_some() || here.deleted_here,
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
