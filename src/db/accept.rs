//! What a remote may change here: its `--authors` and its accept filter (tables, columns, a
//! row predicate), applied to each page inside the transaction that applies it. Refused
//! changes are dropped before cr-sqlite sees them; the cursor still moves past them.
//!
//! A row predicate decides per row of the page: the remote's changes to a row pass when the
//! row as it is here matches (or is not here yet) and the row as the page would leave it
//! matches too (this database's values with the page's values for that row written over
//! them). So a remote allowed `owner = 'bob'` can change bob's rows, cannot change another's,
//! cannot hand a row over to bob, and cannot create a row that is not bob's. A deletion is
//! checked against the row as it is here. Each part of a transaction cut into parts is
//! checked on its own. A remote pulled `--into` mirrors is checked against the mirror's row.

use std::collections::{HashMap, HashSet};

use rusqlite::Connection;

use super::DbError;
use super::apply::ApplyOutcome;
use super::mirrors::MirrorPrefix;
use super::rows::{row_matches, would_match};
use crate::sync::authors::AuthorPolicy;
use crate::sync::filter::{ChangeFilter, RowPredicate, SENTINEL_CID};
use crate::sync::{Change, SiteId};

/// Everything a remote may bring, and where it lands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AcceptPolicy {
    /// Whose changes.
    pub authors: AuthorPolicy,
    /// To which tables, columns and rows (named as the remote names them).
    pub filter: ChangeFilter,
    /// Its tables land in these mirrors rather than in this database's own (`--into`).
    pub into: Option<MirrorPrefix>,
}

impl AcceptPolicy {
    /// A text that differs whenever what the policy admits may differ: a cursor that moved
    /// under one policy starts over under another (see `Db::align_cursor`). Just the authors
    /// when there is no filter, as stored before filters existed.
    pub fn stored_form(&self) -> String {
        let mut form = self.authors.to_string();
        let filter = super::filters::stored_filter(&self.filter);
        if !filter.is_empty() {
            form.push_str(&format!("\n{filter}"));
        }
        if let Some(into) = &self.into {
            form.push_str(&format!("\ninto {into}"));
        }
        form
    }
}

/// What accepting a page did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcceptOutcome {
    /// The apply of what passed.
    pub applied: ApplyOutcome,
    /// Changes admitted (some may have been known already).
    pub admitted: u64,
    /// Changes the policy refused.
    pub refused: u64,
}

/// Leaves in `changes` and `rows` (one page's) what `policy` admits from the remote whose
/// site is `remote`; how many it dropped.
pub(super) fn keep_accepted(
    conn: &Connection,
    remote: SiteId,
    policy: &AcceptPolicy,
    changes: &mut Vec<Change>,
    rows: &mut Vec<Change>,
) -> Result<u64, DbError> {
    let before = changes.len() + rows.len();
    let admits = |change: &Change| {
        policy.authors.admits(&change.site_id, &remote) && policy.filter.admits(change)
    };
    changes.retain(admits);
    rows.retain(admits);
    if let Some(into) = &policy.into {
        // Past the filter, which names the remote's tables: here they are mirrors.
        for change in changes.iter_mut().chain(rows.iter_mut()) {
            change.table = into.mirror_of(&change.table);
        }
    }
    if let Some(predicate) = &policy.filter.rows {
        let refused = refused_rows(conn, predicate, changes.iter().chain(rows.iter()))?;
        if !refused.is_empty() {
            let passes =
                |change: &Change| !refused.contains(&(change.table.as_str(), change.pk.as_slice()));
            let (kept_changes, kept_rows): (Vec<Change>, Vec<Change>) = (
                changes.iter().filter(|c| passes(c)).cloned().collect(),
                rows.iter().filter(|c| passes(c)).cloned().collect(),
            );
            *changes = kept_changes;
            *rows = kept_rows;
        }
    }
    Ok((before - changes.len() - rows.len()) as u64)
}

/// The rows of `cells` the predicate refuses.
fn refused_rows<'c>(
    conn: &Connection,
    predicate: &RowPredicate,
    cells: impl Iterator<Item = &'c Change>,
) -> Result<HashSet<(&'c str, &'c [u8])>, DbError> {
    // Each row's cells in page order: a later value of a column is the one the row ends with.
    let mut by_row: HashMap<(&str, &[u8]), Vec<&Change>> = HashMap::new();
    for cell in cells {
        by_row
            .entry((cell.table.as_str(), cell.pk.as_slice()))
            .or_default()
            .push(cell);
    }
    let mut refused = HashSet::new();
    for ((table, pk), cells) in by_row {
        let here = row_matches(conn, table, pk, predicate)?;
        if here == Some(false) {
            refused.insert((table, pk));
            continue;
        }
        let values: Vec<(&str, &crate::sync::Value)> = cells
            .iter()
            .filter(|cell| cell.cid != SENTINEL_CID)
            .map(|cell| (cell.cid.as_str(), &cell.val))
            .collect();
        let only_deletions = cells
            .iter()
            .all(|cell| cell.cid == SENTINEL_CID && cell.cl % 2 == 0);
        if !only_deletions && !would_match(conn, table, pk, &values, predicate)? {
            refused.insert((table, pk));
        }
    }
    Ok(refused)
}
