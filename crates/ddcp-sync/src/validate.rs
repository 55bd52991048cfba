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

/// The largest col_version, causal length or seq a change may carry. An honest cell written a
/// thousand times a second takes 285,000 years to reach it; a cell or row pushed to it by a
/// hostile peer still has 2^63 - 2^53 local writes of room before SQLite's integers end (its
/// later changes are refused by peers, see [`counters_in_range`]). 2^53 is also the largest
/// integer JSON tools keep exactly.
pub const MAX_COUNTER: i64 = 1 << 53;

/// Ok when the change's col_version and causal length are in 1..=[`MAX_COUNTER`]. Separate from
/// [`ChangeValidator::check`] so that a puller can drop such a change (a cell pushed to the end
/// of its range by a peer before this check existed) and go on with the rest of the page,
/// rather than stop at it for ever.
pub fn counters_in_range(change: &Change) -> Result<(), InvalidChange> {
    in_range(change, "col_version", change.col_version, 1)?;
    in_range(change, "causal length", change.cl, 1)
}

fn in_range(
    change: &Change,
    field: &'static str,
    value: i64,
    min: i64,
) -> Result<(), InvalidChange> {
    if (min..=MAX_COUNTER).contains(&value) {
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
        counters_in_range(change)?;
        in_range(change, "seq", change.seq.0, 0)?;
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
                col_version: MAX_COUNTER + 1,
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
            assert!(counters_in_range(&huge).is_err());
        }
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
