//! Which changes a filtered bundle holds (`bundle create --for MEMBER` or filter flags).

use std::collections::HashMap;

use super::CommandError;
use crate::db::Db;
use crate::sync::Change;
use crate::sync::filter::{ChangeFilter, SENTINEL_CID};

/// Keeps what a filter lets into a bundle: its tables and columns, and rows that match now
/// (deletions pass, as they do to a reader over the network).
pub(super) struct BundleFilter<'a> {
    db: &'a Db,
    filter: &'a ChangeFilter,
}

impl<'a> BundleFilter<'a> {
    pub(super) fn new(db: &'a Db, filter: &'a ChangeFilter) -> Self {
        BundleFilter { db, filter }
    }

    pub(super) fn keep(&mut self, mut changes: Vec<Change>) -> Result<Vec<Change>, CommandError> {
        changes.retain(|change| self.filter.admits(change));
        let Some(predicate) = &self.filter.rows else {
            return Ok(changes);
        };
        // One lookup per row of the chunk.
        let mut matches: HashMap<(String, Vec<u8>), bool> = HashMap::new();
        let mut kept = Vec::with_capacity(changes.len());
        for change in changes {
            let deletion = change.cid == SENTINEL_CID && change.cl % 2 == 0;
            let row = (change.table.clone(), change.pk.clone());
            let passes = match matches.get(&row) {
                Some(passes) => *passes,
                None => {
                    let passes = self.db.row_matches(&change.table, &change.pk, predicate)?;
                    matches.insert(row, passes);
                    passes
                }
            };
            if deletion || passes {
                kept.push(change);
            }
        }
        Ok(kept)
    }
}
