//! Where a puller stands in a remote database's changes.
//!
//! Changes are ordered by `(db_version, seq, table, pk, cid)`. `(db_version, seq)` alone would
//! not do: seq does not tell rows apart once a database merged several peers' transactions in
//! one of its own (cr-sqlite keeps the source's seq, so two transactions of a peer merged
//! together both contribute a seq 0 at the same local db_version). `(table, pk, cid)` names one
//! cell, which `crsql_changes` shows once, so the whole key is unique.

use std::cmp::Ordering;

use super::change::Change;
use super::ids::{DbVersion, Seq};

/// The position of one change within its db_version group.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RowKey {
    /// The change's seq within its group.
    pub seq: Seq,
    /// Its table ...
    pub table: String,
    /// ... packed primary key ...
    pub pk: Vec<u8>,
    /// ... and column: together they name one cell, which makes the key unique.
    pub cid: String,
}

impl RowKey {
    /// The key of `change` within its group.
    pub fn of(change: &Change) -> RowKey {
        RowKey {
            seq: change.seq,
            table: change.table.clone(),
            pk: change.pk.clone(),
            cid: change.cid.clone(),
        }
    }
}

/// Everything up to `db_version` has been received, except that when `within` is set the group
/// of `db_version` is received only up to and including that row.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Cursor {
    /// The newest db_version reached.
    pub db_version: DbVersion,
    /// Where inside that version's group, when it is not complete yet.
    pub within: Option<RowKey>,
}

impl Cursor {
    /// Before the first change.
    pub const START: Cursor = Cursor {
        db_version: DbVersion(0),
        within: None,
    };

    /// After every change of `db_version` and before.
    pub fn after_group(db_version: DbVersion) -> Cursor {
        Cursor {
            db_version,
            within: None,
        }
    }

    /// Just after `change`, inside its group.
    pub fn after_change(change: &Change) -> Cursor {
        Cursor {
            db_version: change.db_version,
            within: Some(RowKey::of(change)),
        }
    }

    /// Just after every change of the group of `db_version` whose seq is at most `seq`. It
    /// names no change: a filtered reader's page may end there without showing it the table,
    /// key or column of a change it may not read. (The key is that of seq + 1 with an empty
    /// table, key and column, which sort before every real one.)
    pub fn after_seq(db_version: DbVersion, seq: Seq) -> Cursor {
        Cursor {
            db_version,
            within: Some(RowKey {
                seq: Seq(seq.0.saturating_add(1)),
                table: String::new(),
                pk: Vec::new(),
                cid: String::new(),
            }),
        }
    }

    /// True when `change` comes after this cursor, i.e. has not been received yet.
    pub fn admits(&self, change: &Change) -> bool {
        match change.db_version.cmp(&self.db_version) {
            Ordering::Greater => true,
            Ordering::Less => false,
            Ordering::Equal => self
                .within
                .as_ref()
                .is_some_and(|key| compare_to_key(change, key) == Ordering::Greater),
        }
    }
}

fn compare_to_key(change: &Change, key: &RowKey) -> Ordering {
    (
        change.seq,
        change.table.as_str(),
        change.pk.as_slice(),
        change.cid.as_str(),
    )
        .cmp(&(
            key.seq,
            key.table.as_str(),
            key.pk.as_slice(),
            key.cid.as_str(),
        ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SiteId, Value};

    fn change(db_version: i64, seq: i64, pk: u8) -> Change {
        Change {
            table: "t".into(),
            pk: vec![pk],
            cid: "c".into(),
            val: Value::Null,
            col_version: 1,
            db_version: DbVersion(db_version),
            site_id: SiteId([0; 16]),
            cl: 1,
            seq: Seq(seq),
        }
    }

    #[test]
    fn admits_what_comes_after() {
        assert!(Cursor::START.admits(&change(1, 0, 0)));
        let done_2 = Cursor::after_group(DbVersion(2));
        assert!(!done_2.admits(&change(2, 9, 0)));
        assert!(done_2.admits(&change(3, 0, 0)));
        // Two rows with the same (db_version, seq), told apart by their pk.
        let within = Cursor::after_change(&change(2, 0, 1));
        assert!(!within.admits(&change(2, 0, 1)));
        assert!(within.admits(&change(2, 0, 2)));
        assert!(!within.admits(&change(2, 0, 0)));
        assert!(within.admits(&change(2, 1, 0)));
    }
}
