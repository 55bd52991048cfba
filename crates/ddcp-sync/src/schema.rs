//! The shape of a database's CRR tables, and the fingerprint peers compare before they exchange
//! changes: cr-sqlite merges only between databases whose CRRs agree.

use sha2::{Digest, Sha256};

/// One column of a CRR table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnDesc {
    /// The column's name.
    pub name: String,
    /// The declared type, as written in CREATE TABLE (upper-cased: SQLite ignores its case).
    pub decl_type: String,
    /// Declared NOT NULL.
    pub not_null: bool,
    /// 0 when not in the primary key, else the column's 1-based position in it.
    pub pk_index: u32,
    /// The DEFAULT expression, as SQLite keeps it: what `ddcp clone` creates the column with
    /// (cr-sqlite needs one on every NOT NULL column outside the key). Not part of the
    /// fingerprint: peers merge whatever their defaults.
    pub default_value: Option<String>,
}

/// One CRR table and its columns, in declaration order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableDesc {
    /// The table's name.
    pub name: String,
    /// Its columns, in declaration order.
    pub columns: Vec<ColumnDesc>,
}

/// All CRR tables of a database, sorted by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SchemaDesc {
    /// The CRR tables, by name.
    pub tables: Vec<TableDesc>,
}

/// A SHA-256 over a [`SchemaDesc`]'s canonical form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchemaFingerprint(pub [u8; 32]);

impl std::fmt::Display for SchemaFingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(&self.0[..8]))
    }
}

impl ColumnDesc {
    /// Equal in what the fingerprint covers (the default is not).
    pub fn same_shape(&self, other: &ColumnDesc) -> bool {
        (&self.name, &self.decl_type, self.not_null, self.pk_index)
            == (
                &other.name,
                &other.decl_type,
                other.not_null,
                other.pk_index,
            )
    }
}

impl SchemaDesc {
    /// A schema of `tables`, in canonical (name) order.
    pub fn new(mut tables: Vec<TableDesc>) -> Self {
        tables.sort_by(|a, b| a.name.cmp(&b.name));
        SchemaDesc { tables }
    }

    /// The fingerprint: equal for schemas that can exchange changes.
    pub fn fingerprint(&self) -> SchemaFingerprint {
        let mut hash = Sha256::new();
        // Length-prefixed fields: no two different schemas share an encoding.
        let mut field = |bytes: &[u8]| {
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(bytes);
        };
        for table in &self.tables {
            field(table.name.as_bytes());
            field(&(table.columns.len() as u64).to_le_bytes());
            for column in &table.columns {
                field(column.name.as_bytes());
                field(column.decl_type.as_bytes());
                field(&[u8::from(column.not_null)]);
                field(&column.pk_index.to_le_bytes());
            }
        }
        SchemaFingerprint(hash.finalize().into())
    }

    /// The first difference between `self` (here) and `other` (the peer's), in words, or None
    /// when they agree.
    pub fn difference(&self, other: &SchemaDesc) -> Option<String> {
        for ours in &self.tables {
            match other.tables.iter().find(|t| t.name == ours.name) {
                None => return Some(format!("table {:?} is a CRR here but not there", ours.name)),
                Some(theirs) => {
                    if let Some(diff) = table_difference(ours, theirs) {
                        return Some(diff);
                    }
                }
            }
        }
        other
            .tables
            .iter()
            .find(|t| !self.tables.iter().any(|o| o.name == t.name))
            .map(|t| format!("table {:?} is a CRR there but not here", t.name))
    }
}

fn table_difference(ours: &TableDesc, theirs: &TableDesc) -> Option<String> {
    let table = &ours.name;
    for (index, column) in ours.columns.iter().enumerate() {
        match theirs.columns.get(index) {
            None => return Some(format!("column {table}.{} is missing there", column.name)),
            Some(other) if !other.same_shape(column) => {
                return Some(format!(
                    "column {index} of {table} is {} here but {} there",
                    describe(column),
                    describe(other)
                ));
            }
            Some(_) => {}
        }
    }
    theirs
        .columns
        .get(ours.columns.len())
        .map(|extra| format!("column {table}.{} is missing here", extra.name))
}

fn describe(column: &ColumnDesc) -> String {
    let mut text = format!("{:?} {}", column.name, column.decl_type);
    if column.not_null {
        text.push_str(" NOT NULL");
    }
    if column.pk_index > 0 {
        text.push_str(&format!(" (primary key #{})", column.pk_index));
    }
    text.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, decl_type: &str, pk_index: u32) -> ColumnDesc {
        ColumnDesc {
            default_value: None,
            name: name.into(),
            decl_type: decl_type.into(),
            not_null: pk_index > 0,
            pk_index,
        }
    }

    fn items(extra: Option<ColumnDesc>) -> TableDesc {
        let mut columns = vec![column("id", "TEXT", 1), column("name", "TEXT", 0)];
        columns.extend(extra);
        TableDesc {
            name: "items".into(),
            columns,
        }
    }

    #[test]
    fn equal_schemas_share_a_fingerprint_whatever_the_table_order() {
        let other = TableDesc {
            name: "a".into(),
            columns: vec![column("k", "BLOB", 1)],
        };
        let one = SchemaDesc::new(vec![items(None), other.clone()]);
        let two = SchemaDesc::new(vec![other, items(None)]);
        assert_eq!(one.fingerprint(), two.fingerprint());
        assert_eq!(one.difference(&two), None);
    }

    #[test]
    fn a_difference_is_named() {
        let here = SchemaDesc::new(vec![items(None)]);
        let there = SchemaDesc::new(vec![items(Some(column("qty", "INTEGER", 0)))]);
        assert_ne!(here.fingerprint(), there.fingerprint());
        assert_eq!(
            here.difference(&there).unwrap(),
            "column items.qty is missing here"
        );
        assert_eq!(
            here.difference(&SchemaDesc::default()).unwrap(),
            "table \"items\" is a CRR here but not there"
        );
        let retyped = SchemaDesc::new(vec![TableDesc {
            name: "items".into(),
            columns: vec![column("id", "TEXT", 1), column("name", "BLOB", 0)],
        }]);
        assert_eq!(
            here.difference(&retyped).unwrap(),
            "column 1 of items is \"name\" TEXT here but \"name\" BLOB there"
        );
    }
}
