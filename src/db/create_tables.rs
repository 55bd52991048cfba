//! Creating a database's CRR tables from a peer's schema: how `ddcp clone` starts a database
//! that replicates with its source at once. The schema is a peer's word, so it is checked
//! before it becomes SQL: names are quoted, declared types must look like SQLite types,
//! defaults may not end a statement, each table is made by one statement (SQLite refuses a
//! second), and the tables made must have the schema's fingerprint, or nothing is kept.

use super::rows::quoted;
use super::{Db, DbError};
use crate::sync::schema::{ColumnDesc, SchemaDesc, TableDesc};

/// `TEXT`, `VARCHAR(255)`, `DOUBLE PRECISION`, `NUMERIC(10, 5)`, or nothing.
fn is_type_name(decl_type: &str) -> bool {
    let (words, size) = match decl_type.split_once('(') {
        None => (decl_type, None),
        Some((words, rest)) => (words, Some(rest)),
    };
    let words_ok = words
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ' ');
    let size_ok = size.is_none_or(|size| {
        size.strip_suffix(')').is_some_and(|numbers| {
            numbers.split(',').all(|n| {
                !n.trim().is_empty()
                    && n.trim()
                        .trim_start_matches(['+', '-'])
                        .chars()
                        .all(|c| c.is_ascii_digit())
            })
        })
    });
    words_ok && size_ok && decl_type.len() <= 100
}

pub(super) fn column_sql(table: &str, column: &ColumnDesc) -> Result<String, DbError> {
    let bad = |what: &str| DbError::BadPeerSchema(format!("{table}.{}: {what}", column.name));
    if !is_type_name(&column.decl_type) {
        return Err(bad("its declared type is not a type name"));
    }
    let mut sql = format!("{} {}", quoted(&column.name), column.decl_type);
    if column.not_null {
        sql.push_str(" not null");
    }
    if let Some(default) = &column.default_value {
        if default.contains(';') || default.len() > 1000 {
            return Err(bad("its default is not an expression"));
        }
        // Parenthesized, as SQLite takes any constant expression: pragma table_info gives
        // `datetime('now')` for a column declared `default (datetime('now'))`.
        sql.push_str(&format!(" default ({default})"));
    }
    Ok(sql)
}

pub(super) fn table_sql(table: &TableDesc) -> Result<String, DbError> {
    let lower = table.name.to_ascii_lowercase();
    if ["sqlite_", "crsql_", "ddcp_"]
        .iter()
        .any(|prefix| lower.starts_with(prefix))
        || lower.contains("__crsql_")
    {
        return Err(DbError::BadPeerSchema(format!(
            "{}: a name SQLite, cr-sqlite or ddcp keeps for itself",
            table.name
        )));
    }
    let mut parts = table
        .columns
        .iter()
        .map(|column| column_sql(&table.name, column))
        .collect::<Result<Vec<_>, _>>()?;
    let mut key: Vec<&ColumnDesc> = table.columns.iter().filter(|c| c.pk_index > 0).collect();
    key.sort_by_key(|column| column.pk_index);
    if key.is_empty() {
        return Err(DbError::BadPeerSchema(format!(
            "{}: a CRR needs a primary key",
            table.name
        )));
    }
    let key: Vec<String> = key.iter().map(|column| quoted(&column.name)).collect();
    parts.push(format!("primary key ({})", key.join(", ")));
    Ok(format!(
        "create table {} ({})",
        quoted(&table.name),
        parts.join(", ")
    ))
}

impl Db {
    /// Creates `schema`'s tables and makes them CRRs, in one transaction; a database that
    /// already has any of them, or a schema that does not come out as itself, is refused with
    /// nothing written.
    pub fn create_tables(&mut self, schema: &SchemaDesc) -> Result<(), DbError> {
        let statements = schema
            .tables
            .iter()
            .map(table_sql)
            .collect::<Result<Vec<_>, _>>()?;
        let tx = self.conn_mut().transaction()?;
        for (table, sql) in schema.tables.iter().zip(&statements) {
            // One statement each: `execute` refuses SQL that goes on after it.
            tx.execute(sql, [])
                .map_err(|err| DbError::BadPeerSchema(format!("{}: {err}", table.name)))?;
            tx.query_row("select crsql_as_crr(?1)", [&table.name], |_| Ok(()))
                .map_err(|err| DbError::BadPeerSchema(format!("{}: {err}", table.name)))?;
        }
        // Checked before the commit: a schema that does not come out as itself leaves nothing.
        let made = super::schema::read_schema(&tx)?;
        if made.fingerprint() != schema.fingerprint() {
            let why = made
                .difference(schema)
                .unwrap_or_else(|| "the tables made differ".to_string());
            return Err(DbError::BadPeerSchema(why));
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_support::temp_db;

    #[test]
    fn a_databases_schema_is_made_again_in_another() {
        let (_dir, source) = temp_db();
        source
            .conn()
            .execute_batch(
                "create table bookmarks (id text primary key not null, url text not null
                   default '', title text, added text not null default (datetime('now')),
                   score numeric(10, 2) default -1);
                 select crsql_as_crr('bookmarks');
                 create table pairs (a integer not null, b text not null,
                   primary key (b, a));
                 select crsql_as_crr('pairs');",
            )
            .unwrap();
        let schema = source.schema().unwrap();
        let (_dir, mut copy) = temp_db();
        copy.create_tables(&schema).unwrap();
        assert_eq!(copy.schema().unwrap(), schema);
        // The defaults work as they did at the source.
        copy.conn()
            .execute("insert into bookmarks (id) values ('x')", [])
            .unwrap();
        // Made already: refused, nothing changed.
        assert!(copy.create_tables(&schema).is_err());
    }

    #[test]
    fn a_hostile_schema_becomes_no_sql() {
        let column = |decl_type: &str, default: Option<&str>| ColumnDesc {
            name: "c".into(),
            decl_type: decl_type.into(),
            not_null: false,
            pk_index: 1,
            default_value: default.map(str::to_string),
        };
        let table = |name: &str, column: ColumnDesc| TableDesc {
            name: name.into(),
            columns: vec![column],
        };
        for bad in [
            table("t", column("TEXT); drop table x; --", None)),
            table("t", column("TEXT", Some("1); drop table x; --"))),
            table("t", column("TEXT", Some("1) , evil text default (2"))),
            table("ddcp_meta", column("TEXT", None)),
            table("t", column("VARCHAR(1", None)),
        ] {
            let (_dir, mut db) = temp_db();
            let schema = SchemaDesc::new(vec![bad]);
            assert!(db.create_tables(&schema).is_err(), "{schema:?}");
            assert!(db.crr_tables().unwrap().is_empty(), "{schema:?}");
        }
    }
}
