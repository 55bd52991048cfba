//! How a peer's CRR schema fits this database's, table by table and column by column, so that
//! peers on different versions of an app keep replicating: a change to a table or column this
//! database lacks waits here (held) until it has it; a change to what both have is merged now.
//! Only a real conflict stops: one table with different primary keys, or one column whose
//! values would be read differently (another type affinity), or NOT NULL here where the peer
//! may send NULL.
//!
//! cr-sqlite names a change's column by its name, so the order of columns does not matter.

use std::collections::BTreeSet;

use super::change::Change;
use super::filter::SENTINEL_CID;
use super::schema::{ColumnDesc, SchemaDesc, TableDesc};

/// What of a peer's changes this database can merge now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SchemaFit {
    /// The peer's tables this database lacks.
    missing_tables: BTreeSet<String>,
    /// The peer's columns this database lacks, in tables both have: (table, column).
    missing_columns: BTreeSet<(String, String)>,
}

/// Why two schemas cannot exchange changes at all. Meant for the user: names the table and
/// column.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs)] // each #[error] says what the variant means
pub enum SchemaConflict {
    #[error("table {table:?} has the primary key ({here}) here but ({there}) there")]
    PrimaryKey {
        table: String,
        here: String,
        there: String,
    },
    #[error(
        "column {table}.{column} is {here} here but {there} there: its values would be read differently"
    )]
    Affinity {
        table: String,
        column: String,
        here: &'static str,
        there: &'static str,
    },
    #[error("column {table}.{column} is NOT NULL here but may be NULL there")]
    NotNull { table: String, column: String },
}

impl SchemaFit {
    /// How `there` (a peer's schema) fits `here` (this database's): what this database lacks,
    /// or the first conflict.
    pub fn between(here: &SchemaDesc, there: &SchemaDesc) -> Result<SchemaFit, SchemaConflict> {
        let mut fit = SchemaFit::default();
        for theirs in &there.tables {
            match here.tables.iter().find(|ours| ours.name == theirs.name) {
                None => {
                    fit.missing_tables.insert(theirs.name.clone());
                }
                Some(ours) => fit.add_table(ours, theirs)?,
            }
        }
        Ok(fit)
    }

    fn add_table(&mut self, ours: &TableDesc, theirs: &TableDesc) -> Result<(), SchemaConflict> {
        let (here, there) = (primary_key(ours), primary_key(theirs));
        if here != there {
            return Err(SchemaConflict::PrimaryKey {
                table: ours.name.clone(),
                here: here.join(", "),
                there: there.join(", "),
            });
        }
        for column in theirs.columns.iter().filter(|c| c.pk_index == 0) {
            let Some(local) = ours.columns.iter().find(|c| c.name == column.name) else {
                self.missing_columns
                    .insert((ours.name.clone(), column.name.clone()));
                continue;
            };
            let (here, there) = (affinity(&local.decl_type), affinity(&column.decl_type));
            if here != there {
                return Err(SchemaConflict::Affinity {
                    table: ours.name.clone(),
                    column: column.name.clone(),
                    here,
                    there,
                });
            }
            if local.not_null && !column.not_null {
                return Err(SchemaConflict::NotNull {
                    table: ours.name.clone(),
                    column: column.name.clone(),
                });
            }
        }
        Ok(())
    }

    /// True when every change of the peer can be merged here now.
    pub fn is_whole(&self) -> bool {
        self.missing_tables.is_empty() && self.missing_columns.is_empty()
    }

    /// Whether `change` (named as the peer names it) must wait here: its table or column is
    /// missing.
    pub fn must_wait(&self, change: &Change) -> bool {
        if self.missing_tables.contains(&change.table) {
            return true;
        }
        change.cid != SENTINEL_CID
            && !self.missing_columns.is_empty()
            && self
                .missing_columns
                .contains(&(change.table.clone(), change.cid.clone()))
    }
}

/// The key columns of `table`, in key order.
fn primary_key(table: &TableDesc) -> Vec<&str> {
    let mut key: Vec<&ColumnDesc> = table.columns.iter().filter(|c| c.pk_index > 0).collect();
    key.sort_by_key(|c| c.pk_index);
    key.iter().map(|c| c.name.as_str()).collect()
}

/// SQLite's type affinity of a declared type (section 3.1 of its datatype documentation),
/// applied in its order.
fn affinity(decl_type: &str) -> &'static str {
    let upper = decl_type.to_ascii_uppercase();
    if upper.contains("INT") {
        "INTEGER"
    } else if ["CHAR", "CLOB", "TEXT"].iter().any(|t| upper.contains(t)) {
        "TEXT"
    } else if upper.contains("BLOB") || upper.trim().is_empty() {
        "BLOB"
    } else if ["REAL", "FLOA", "DOUB"].iter().any(|t| upper.contains(t)) {
        "REAL"
    } else {
        "NUMERIC"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DbVersion, Seq, SiteId, Value};

    fn column(name: &str, decl_type: &str, pk_index: u32, not_null: bool) -> ColumnDesc {
        ColumnDesc {
            name: name.into(),
            decl_type: decl_type.into(),
            not_null,
            pk_index,
            default_value: None,
        }
    }

    fn notes(extra: &[ColumnDesc]) -> TableDesc {
        let mut columns = vec![
            column("id", "INTEGER", 1, true),
            column("body", "TEXT", 0, false),
        ];
        columns.extend(extra.iter().cloned());
        TableDesc {
            name: "notes".into(),
            columns,
        }
    }

    fn change(table: &str, cid: &str) -> Change {
        Change {
            table: table.into(),
            pk: vec![1, 9, 1],
            cid: cid.into(),
            val: Value::Null,
            col_version: 1,
            db_version: DbVersion(1),
            site_id: SiteId([1; 16]),
            cl: 1,
            seq: Seq(0),
        }
    }

    #[test]
    fn a_newer_peer_fits_and_what_this_database_lacks_waits() {
        let here = SchemaDesc::new(vec![notes(&[])]);
        let tags = TableDesc {
            name: "tags".into(),
            columns: vec![column("name", "TEXT", 1, true)],
        };
        let there = SchemaDesc::new(vec![notes(&[column("tag", "VARCHAR(20)", 0, false)]), tags]);
        let fit = SchemaFit::between(&here, &there).unwrap();
        assert!(!fit.is_whole());
        assert!(fit.must_wait(&change("notes", "tag")));
        assert!(fit.must_wait(&change("tags", "-1")));
        assert!(!fit.must_wait(&change("notes", "body")));
        assert!(!fit.must_wait(&change("notes", "-1")));
        // An older peer fits a newer database whole: it sends nothing this one lacks.
        assert!(SchemaFit::between(&there, &here).unwrap().is_whole());
        // Declared types of one affinity, and another column order, fit.
        let reordered = SchemaDesc::new(vec![TableDesc {
            name: "notes".into(),
            columns: vec![
                column("body", "CLOB", 0, false),
                column("id", "INT", 1, true),
            ],
        }]);
        assert!(SchemaFit::between(&here, &reordered).unwrap().is_whole());
    }

    #[test]
    fn a_real_conflict_names_its_table_and_column() {
        let here = SchemaDesc::new(vec![notes(&[])]);
        let retyped = SchemaDesc::new(vec![TableDesc {
            name: "notes".into(),
            columns: vec![
                column("id", "INTEGER", 1, true),
                column("body", "REAL", 0, false),
            ],
        }]);
        assert_eq!(
            SchemaFit::between(&here, &retyped).unwrap_err().to_string(),
            "column notes.body is TEXT here but REAL there: its values would be read differently"
        );
        let rekeyed = SchemaDesc::new(vec![TableDesc {
            name: "notes".into(),
            columns: vec![
                column("id", "INTEGER", 0, false),
                column("body", "TEXT", 1, true),
            ],
        }]);
        assert_eq!(
            SchemaFit::between(&here, &rekeyed).unwrap_err().to_string(),
            "table \"notes\" has the primary key (id) here but (body) there"
        );
        let strict = SchemaDesc::new(vec![TableDesc {
            name: "notes".into(),
            columns: vec![
                column("id", "INTEGER", 1, true),
                column("body", "TEXT", 0, true),
            ],
        }]);
        assert!(matches!(
            SchemaFit::between(&strict, &here),
            Err(SchemaConflict::NotNull { .. })
        ));
    }
}
