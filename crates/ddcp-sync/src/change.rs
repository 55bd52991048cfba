//! Changes as cr-sqlite's `crsql_changes` table holds them.

use super::ids::{DbVersion, Seq, SiteId};

/// One SQLite value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A 64-bit integer.
    Integer(i64),
    /// A 64-bit float.
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Bytes, possibly empty.
    Blob(Vec<u8>),
    /// TEXT that is not valid UTF-8, which SQLite stores as given: replicated byte for byte
    /// rather than refused or mangled.
    RawText(Vec<u8>),
}

impl Value {
    /// Bytes this value takes in memory and, roughly, on the wire.
    pub fn size(&self) -> usize {
        match self {
            Value::Null => 0,
            Value::Integer(_) | Value::Real(_) => 8,
            Value::Text(text) => text.len(),
            Value::Blob(blob) | Value::RawText(blob) => blob.len(),
        }
    }
}

/// One row of `crsql_changes`: the value of one column of one row at one version, or a row's
/// create/delete sentinel (`cid` "-1").
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// The CRR the change belongs to.
    pub table: String,
    /// cr-sqlite's packed encoding of the row's primary key.
    pub pk: Vec<u8>,
    /// The column, or "-1" for the row's create/delete sentinel.
    pub cid: String,
    /// The column's value (NULL for sentinels).
    pub val: Value,
    /// How many times this column of this row has been written: the merge's first tiebreak.
    pub col_version: i64,
    /// The version at the database this change was read from (not at its author, when relayed).
    pub db_version: DbVersion,
    /// The site that authored the change; kept as is when changes are relayed.
    pub site_id: SiteId,
    /// Causal length: odd while the row exists, even once deleted.
    pub cl: i64,
    /// The change's position within its transaction.
    pub seq: Seq,
}

impl Change {
    /// Approximate size in bytes, used to budget pages and chunks.
    pub fn size(&self) -> usize {
        // The fixed part: five 8-byte integers and the 16-byte site id.
        const FIXED: usize = 5 * 8 + 16;
        FIXED + self.table.len() + self.pk.len() + self.cid.len() + self.val.size()
    }
}

/// Splits changes (in `db_version` order) into the groups that one source transaction wrote.
/// Applying a group whole keeps the source's transaction atomic at the receiver.
pub fn transaction_groups(changes: &[Change]) -> impl Iterator<Item = &[Change]> {
    changes.chunk_by(|a, b| a.db_version == b.db_version)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn change(db_version: i64, seq: i64) -> Change {
        Change {
            table: "t".into(),
            pk: vec![1],
            cid: "c".into(),
            val: Value::Integer(db_version),
            col_version: 1,
            db_version: DbVersion(db_version),
            site_id: SiteId([7; 16]),
            cl: 1,
            seq: Seq(seq),
        }
    }

    #[test]
    fn groups_follow_db_versions() {
        let changes = [
            change(1, 0),
            change(1, 1),
            change(2, 0),
            change(4, 0),
            change(4, 1),
        ];
        let sizes: Vec<usize> = transaction_groups(&changes).map(<[Change]>::len).collect();
        assert_eq!(sizes, [2, 1, 2]);
    }
}
