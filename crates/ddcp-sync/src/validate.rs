//! Checks on changes that come from outside (a bundle, a peer) before cr-sqlite sees them.
//!
//! cr-sqlite trusts what is inserted into `crsql_changes`: an empty or malformed primary key
//! makes it abort the whole process, and it keeps a change's col_version and causal length as
//! given, so a counter near the end of its range would leave the cell or row at the end of it.
//! So every change is checked against the local schema and sane bounds first.
//!
//! A change's db_version is checked for shape only: ddcp merges every change as if it came at
//! version 1 (`ChangeApplier::apply`), so it cannot move the local version counter.

use std::collections::HashMap;

use super::change::{Change, Value};
use super::schema::SchemaDesc;

/// The largest col_version or causal length a change may carry on its own. An honest cell
/// written a thousand times a second takes 285,000 years to reach it. Past it, a change is
/// taken only as a step of at most [`MAX_COUNTER_STEP`] from this database's own counter for
/// that cell or row ([`counter_step_admitted`]): a cell a hostile peer pushed here (one change
/// can) goes on replicating, edit by edit, between the peers that hold it, while a jump past it
/// is refused, so the end of SQLite's integers stays out of reach (2^43 steps away). 2^53 is
/// also the largest integer JSON tools keep exactly.
pub const MAX_COUNTER: i64 = 1 << 53;

/// How far past this database's own counter a change beyond [`MAX_COUNTER`] may go: the
/// edits of one cell between two pulls.
pub const MAX_COUNTER_STEP: i64 = 1 << 20;

/// No counter ever passes this: cr-sqlite adds to them, and SQLite turns an integer that
/// overflows into a float.
pub const COUNTER_END: i64 = 1 << 62;

/// Whether a change's col_version and causal length are admitted, given this database's own
/// counters for that cell (`local_col_version`) and row (`local_cl`), 0 when it has none: up
/// to [`MAX_COUNTER`] always, past it only as a step of at most [`MAX_COUNTER_STEP`].
pub fn counter_step_admitted(change: &Change, local_col_version: i64, local_cl: i64) -> bool {
    let near = |value: i64, local: i64| {
        value <= MAX_COUNTER || value <= local.saturating_add(MAX_COUNTER_STEP)
    };
    // A sentinel's col_version is its row's causal length.
    let local_cell = if change.cid == SENTINEL_CID {
        local_cl
    } else {
        local_col_version
    };
    near(change.col_version, local_cell) && near(change.cl, local_cl)
}

/// Whether a change's counters need this database's own to be judged
/// ([`counter_step_admitted`]): they pass [`MAX_COUNTER`].
pub fn counters_past_max(change: &Change) -> bool {
    change.col_version > MAX_COUNTER || change.cl > MAX_COUNTER
}

fn in_range(
    change: &Change,
    field: &'static str,
    value: i64,
    min: i64,
    max: i64,
) -> Result<(), InvalidChange> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(InvalidChange::OutOfRange {
            table: change.table.clone(),
            field,
            value,
        })
    }
}

/// Refuses a set of changes (one page: its changes and its rows' cells together) that holds
/// two of one cell. `crsql_changes` holds one row per cell, so an honest page never does; a
/// crafted one could have a filter judge the value it sees last while cr-sqlite keeps the
/// other (the higher col_version wins the merge, not the later place in the page).
pub fn check_each_cell_once<'c>(
    changes: impl IntoIterator<Item = &'c Change>,
) -> Result<(), InvalidChange> {
    let mut seen = std::collections::HashSet::new();
    for change in changes {
        if !seen.insert((&change.table, &change.pk, &change.cid)) {
            return Err(InvalidChange::DuplicateCell {
                table: change.table.clone(),
                cid: change.cid.clone(),
            });
        }
    }
    Ok(())
}

/// The cid cr-sqlite uses for a row's create/delete sentinel.
pub const SENTINEL_CID: &str = "-1";

/// Why a change is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[allow(missing_docs)] // each #[error] says what the variant means
pub enum InvalidChange {
    #[error("table {0:?} is not a CRR here")]
    UnknownTable(String),
    #[error("table {table:?} has no column {cid:?}")]
    UnknownColumn { table: String, cid: String },
    #[error("primary key of a change to {table:?} is malformed ({reason})")]
    BadPrimaryKey { table: String, reason: &'static str },
    #[error(
        "two changes of one cell (table {table:?}, column {cid:?}) in one page: an honest peer sends each cell once, at its newest"
    )]
    DuplicateCell { table: String, cid: String },
    #[error(
        "a change to {table:?} takes a counter to {value}: past 2^53, and more than 2^20 past this database's own"
    )]
    CounterJump { table: String, value: i64 },
    #[error("{field} {value} of a change to {table:?} is out of range")]
    OutOfRange {
        table: String,
        field: &'static str,
        value: i64,
    },
}

#[derive(Debug)]
struct TableShape {
    pk_columns: usize,
    columns: Vec<String>,
}

/// Checks changes against one database's CRR schema.
#[derive(Debug)]
pub struct ChangeValidator {
    tables: HashMap<String, TableShape>,
}

impl ChangeValidator {
    /// A validator for a database whose CRRs are `schema`.
    pub fn new(schema: &SchemaDesc) -> Self {
        let tables = schema
            .tables
            .iter()
            .map(|table| {
                let shape = TableShape {
                    pk_columns: table.columns.iter().filter(|c| c.pk_index > 0).count(),
                    columns: table
                        .columns
                        .iter()
                        .filter(|c| c.pk_index == 0)
                        .map(|c| c.name.clone())
                        .collect(),
                };
                (table.name.clone(), shape)
            })
            .collect();
        ChangeValidator { tables }
    }

    /// Ok when cr-sqlite can merge `change` safely.
    pub fn check(&self, change: &Change) -> Result<(), InvalidChange> {
        let table = &change.table;
        let shape = self
            .tables
            .get(table)
            .ok_or_else(|| InvalidChange::UnknownTable(table.clone()))?;
        if change.cid != SENTINEL_CID && !shape.columns.contains(&change.cid) {
            return Err(InvalidChange::UnknownColumn {
                table: table.clone(),
                cid: change.cid.clone(),
            });
        }
        check_packed_pk(&change.pk, shape.pk_columns).map_err(|reason| {
            InvalidChange::BadPrimaryKey {
                table: table.clone(),
                reason,
            }
        })?;
        // The step past MAX_COUNTER needs this database's counters: `counter_step_admitted`.
        in_range(change, "col_version", change.col_version, 1, COUNTER_END)?;
        in_range(change, "causal length", change.cl, 1, COUNTER_END)?;
        in_range(change, "seq", change.seq.0, 0, MAX_COUNTER)?;
        // Any positive db_version: it is merged as 1 (a database that reached 2^53 before
        // that, by a peer's change, still replicates).
        if change.db_version.0 < 1 {
            return Err(InvalidChange::OutOfRange {
                table: table.clone(),
                field: "db_version",
                value: change.db_version.0,
            });
        }
        Ok(())
    }
}

/// What can be checked of a change without this database's schema: its key is a well-formed
/// packed key without NULL, its counters are in range. For changes held until this database
/// has their table or column (checked whole, by [`ChangeValidator::check`], when merged).
pub fn check_shape(change: &Change) -> Result<(), InvalidChange> {
    let table = || change.table.clone();
    let values =
        super::packed_pk::unpack(&change.pk).map_err(|reason| InvalidChange::BadPrimaryKey {
            table: table(),
            reason,
        })?;
    if values.is_empty() || values.contains(&Value::Null) {
        return Err(InvalidChange::BadPrimaryKey {
            table: table(),
            reason: "no column, or NULL in the key",
        });
    }
    in_range(change, "col_version", change.col_version, 1, COUNTER_END)?;
    in_range(change, "causal length", change.cl, 1, COUNTER_END)?;
    in_range(change, "seq", change.seq.0, 0, MAX_COUNTER)?;
    in_range(change, "db_version", change.db_version.0, 1, i64::MAX)
}

fn check_packed_pk(pk: &[u8], expected_columns: usize) -> Result<(), &'static str> {
    let values = super::packed_pk::unpack(pk)?;
    if values.len() != expected_columns {
        return Err("wrong number of columns");
    }
    if values.contains(&Value::Null) {
        // cr-sqlite keys are NOT NULL; a NULL in one would never match its row.
        return Err("NULL in the key");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{ColumnDesc, TableDesc};
    use crate::{DbVersion, Seq, SiteId};

    fn validator() -> ChangeValidator {
        let column = |name: &str, pk_index| ColumnDesc {
            name: name.into(),
            decl_type: "TEXT".into(),
            not_null: pk_index > 0,
            pk_index,
            default_value: None,
        };
        ChangeValidator::new(&SchemaDesc::new(vec![TableDesc {
            name: "items".into(),
            columns: vec![column("id", 1), column("name", 0)],
        }]))
    }

    fn change(pk: Vec<u8>) -> Change {
        Change {
            table: "items".into(),
            pk,
            cid: "name".into(),
            val: Value::Null,
            col_version: 1,
            db_version: DbVersion(1),
            site_id: SiteId([1; 16]),
            cl: 1,
            seq: Seq(0),
        }
    }

    const INTEGER: u8 = 1;
    const TEXT: u8 = 3;
    const NULL: u8 = 5;

    /// Text 'ab' packed as cr-sqlite does: one column, type TEXT with a 1-byte length.
    const PK_AB: [u8; 5] = [1, (1 << 3) | TEXT, 2, b'a', b'b'];

    #[test]
    fn accepts_what_cr_sqlite_writes() {
        let validator = validator();
        assert_eq!(validator.check(&change(PK_AB.to_vec())), Ok(()));
        let sentinel = Change {
            cid: "-1".into(),
            ..change(PK_AB.to_vec())
        };
        assert_eq!(validator.check(&sentinel), Ok(()));
        // INTEGER 0 packs with no value bytes at all.
        assert_eq!(check_packed_pk(&[1, INTEGER], 1), Ok(()));
    }

    #[test]
    fn refuses_what_would_hurt() {
        let validator = validator();
        for pk in [
            vec![],
            vec![2, (1 << 3) | TEXT, 2, b'a', b'b'],
            vec![1, (1 << 3) | TEXT, 9, b'a'],
            vec![1, (9 << 3) | INTEGER, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            vec![1, 7],
            vec![1, NULL, 0],
            vec![1, NULL],
        ] {
            assert!(
                matches!(
                    validator.check(&change(pk.clone())),
                    Err(InvalidChange::BadPrimaryKey { .. })
                ),
                "{pk:?}"
            );
        }
        let other_table = Change {
            table: "nope".into(),
            ..change(PK_AB.to_vec())
        };
        assert!(validator.check(&other_table).is_err());
        let pk_as_cid = Change {
            cid: "id".into(),
            ..change(PK_AB.to_vec())
        };
        assert!(validator.check(&pk_as_cid).is_err());
        for huge in [
            Change {
                col_version: COUNTER_END + 1,
                ..change(PK_AB.to_vec())
            },
            Change {
                cl: i64::MAX,
                ..change(PK_AB.to_vec())
            },
        ] {
            assert!(matches!(
                validator.check(&huge),
                Err(InvalidChange::OutOfRange { .. })
            ));
        }
        // Past MAX_COUNTER: a step from this database's own counter, not a jump.
        let past = Change {
            col_version: MAX_COUNTER + 5,
            ..change(PK_AB.to_vec())
        };
        assert!(counters_past_max(&past));
        assert!(!counter_step_admitted(&past, 0, 1));
        assert!(counter_step_admitted(&past, MAX_COUNTER, 1));
        assert!(!counter_step_admitted(
            &past,
            MAX_COUNTER - MAX_COUNTER_STEP,
            1
        ));
        let deleted = Change {
            cid: SENTINEL_CID.into(),
            col_version: MAX_COUNTER + 2,
            cl: MAX_COUNTER + 2,
            ..change(PK_AB.to_vec())
        };
        assert!(!counter_step_admitted(&deleted, 0, 0));
        assert!(counter_step_admitted(&deleted, 7, MAX_COUNTER + 1));
        assert!(counter_step_admitted(&change(PK_AB.to_vec()), 0, 0));
        let late = Change {
            db_version: DbVersion(i64::MAX),
            ..change(PK_AB.to_vec())
        };
        assert_eq!(validator.check(&late), Ok(()));
        let none = Change {
            db_version: DbVersion(0),
            ..change(PK_AB.to_vec())
        };
        assert!(validator.check(&none).is_err());
        let zero = Change {
            col_version: 0,
            ..change(PK_AB.to_vec())
        };
        assert!(validator.check(&zero).is_err());
    }
}
