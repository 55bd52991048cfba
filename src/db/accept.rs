//! What a remote may change here: its `--authors` and its accept filter (tables, columns, a
//! row predicate), applied to each page inside the transaction that applies it. Changes
//! refused by author, table or column are dropped before cr-sqlite sees them; the cursor still
//! moves past them.
//!
//! A row predicate decides per row, on the row as cr-sqlite's merge leaves it (see `judge`):
//! the remote's changes to a row pass when the row as it is here matches (or is not here yet)
//! and the row after the merge matches too, or is gone. So a remote allowed `owner = 'bob'`
//! can change and delete bob's rows, cannot change another's, cannot hand a row over to bob,
//! cannot create a row that is not bob's, and cannot delete a row this database has not seen.
//! A transaction cut into parts is judged whole when its last part arrives. A remote pulled
//! `--into` mirrors is judged on the mirror's row.

use super::apply::ApplyOutcome;
use super::mirrors::{Mirror, MirrorPrefix};
use crate::sync::authors::AuthorPolicy;
use crate::sync::filter::ChangeFilter;
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
    /// Changes held for tables or columns this database lacks.
    pub held: u64,
}

/// Leaves in `changes` and `rows` (one page's) what `policy` admits from the remote whose
/// site is `remote` by author, table and column, renamed to their mirrors under `--into`; how
/// many it dropped. The row predicate is judged later, on the rows as merged (see `judge`).
///
/// `mirrors` are this database's mirror prefixes: a remote not pulled `--into` may not write
/// into another remote's mirrors (`ddcp_all_T` would say their rows came from that remote).
pub(super) fn keep_accepted(
    remote: SiteId,
    policy: &AcceptPolicy,
    mirrors: &[Mirror],
    changes: &mut Vec<Change>,
    rows: &mut Vec<Change>,
) -> u64 {
    let before = changes.len() + rows.len();
    let into_a_mirror = |change: &Change| {
        policy.into.is_none() && mirrors.iter().any(|m| m.prefix.holds(&change.table))
    };
    let admits = |change: &Change| {
        policy.authors.admits(&change.site_id, &remote)
            && policy.filter.admits(change)
            && !into_a_mirror(change)
    };
    changes.retain(admits);
    rows.retain(admits);
    if let Some(into) = &policy.into {
        // Past the filter, which names the remote's tables: here they are mirrors.
        for change in changes.iter_mut().chain(rows.iter_mut()) {
            change.table = into.mirror_of(&change.table);
        }
    }
    (before - changes.len() - rows.len()) as u64
}
