//! The shell's `.import`: rows of a file into a table, all or none.

use std::fmt::Display;

use super::rows::quoted;
use super::{Db, DbError};

/// One record of an imported file: its fields, and the line it starts on (for errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvRecord {
    /// The line of the file the record starts on, from 1.
    pub line: usize,
    /// The record's fields, unquoted.
    pub fields: Vec<String>,
}

/// What an import did.
#[derive(Debug, PartialEq, Eq)]
pub struct Imported {
    /// Rows inserted.
    pub rows: usize,
    /// The table was made from the file's first record.
    pub created: bool,
}

impl Db {
    /// Inserts `records` into `table`, all of them or none. As sqlite3's `.import` does, a
    /// missing table is created from the first record (its column names, every column TEXT,
    /// not a CRR until `crsql_as_crr`); into an existing table every record is a row, with one
    /// field per column. A record that does not fit, or a reading error, undoes the import.
    pub fn import<E: Display>(
        &self,
        table: &str,
        records: impl Iterator<Item = Result<CsvRecord, E>>,
    ) -> Result<Imported, DbError> {
        let conn = self.conn();
        // A savepoint works inside the script's own transaction as well as outside one.
        conn.execute_batch("savepoint ddcp_import")?;
        let result = self.import_all(table, records);
        if result.is_err() {
            conn.execute_batch("rollback to ddcp_import")?;
        }
        conn.execute_batch("release ddcp_import")?;
        result
    }

    fn import_all<E: Display>(
        &self,
        table: &str,
        mut records: impl Iterator<Item = Result<CsvRecord, E>>,
    ) -> Result<Imported, DbError> {
        let read = |record: Result<CsvRecord, E>| record.map_err(|err| import_error(err));
        let exists: bool = self.conn().query_row(
            "select count(*) > 0 from sqlite_master where type = 'table' and name = ?1",
            [table],
            |row| row.get(0),
        )?;
        let created = !exists;
        let columns: Vec<String> = if exists {
            if !self.user_tables()?.iter().any(|name| name == table) {
                return Err(import_error(format!(
                    "{table} is ddcp's or cr-sqlite's own table"
                )));
            }
            self.conn()
                .prepare("select name from pragma_table_xinfo(?1) where hidden = 0 order by cid")?
                .query_map([table], |row| row.get(0))?
                .collect::<Result<_, _>>()?
        } else {
            let Some(header) = records
                .next()
                .transpose()
                .map_err(|err| import_error(err))?
            else {
                return Err(import_error(
                    "the file is empty: no header to name the columns",
                ));
            };
            self.create_from_header(table, header)?
        };
        let names: Vec<String> = columns.iter().map(|c| quoted(c)).collect();
        let placeholders = vec!["?"; columns.len()].join(",");
        let mut insert = self.conn().prepare(&format!(
            "insert into {}({}) values ({placeholders})",
            quoted(table),
            names.join(",")
        ))?;
        let mut rows = 0;
        for record in records {
            let record = read(record)?;
            if record.fields.len() != columns.len() {
                return Err(import_error(format!(
                    "line {}: {} fields, but {table} has {} columns",
                    record.line,
                    record.fields.len(),
                    columns.len()
                )));
            }
            insert
                .execute(rusqlite::params_from_iter(&record.fields))
                .map_err(|err| {
                    import_error(format!("line {}: {}", record.line, DbError::from(err)))
                })?;
            rows += 1;
        }
        Ok(Imported { rows, created })
    }

    fn create_from_header(&self, table: &str, header: CsvRecord) -> Result<Vec<String>, DbError> {
        let columns = header.fields;
        if let Some(blank) = columns.iter().position(|name| name.trim().is_empty()) {
            return Err(import_error(format!(
                "line {}: column {} of the header has no name",
                header.line,
                blank + 1
            )));
        }
        let definitions: Vec<String> = columns
            .iter()
            .map(|c| format!("{} TEXT", quoted(c)))
            .collect();
        self.conn()
            .execute_batch(&format!(
                "create table {}({})",
                quoted(table),
                definitions.join(", ")
            ))
            .map_err(|err| import_error(format!("line {}: {}", header.line, DbError::from(err))))?;
        Ok(columns)
    }
}

fn import_error(message: impl Display) -> DbError {
    DbError::Import(message.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_support::temp_db;

    fn records(lines: &[&[&str]]) -> Vec<Result<CsvRecord, String>> {
        lines
            .iter()
            .enumerate()
            .map(|(index, fields)| {
                Ok(CsvRecord {
                    line: index + 1,
                    fields: fields.iter().map(|f| f.to_string()).collect(),
                })
            })
            .collect()
    }

    fn content(db: &Db, sql: &str) -> Vec<(String, String)> {
        let mut statement = db.conn().prepare(sql).unwrap();
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn creates_a_table_from_the_header_or_fills_an_existing_one() {
        let (_dir, db) = temp_db();
        let imported = db
            .import(
                "people",
                records(&[&["id", "name"], &["1", "ann"]]).into_iter(),
            )
            .unwrap();
        assert_eq!(
            imported,
            Imported {
                rows: 1,
                created: true
            }
        );
        db.conn()
            .execute_batch(
                "create table items (id text primary key not null, qty integer);
                 select crsql_as_crr('items');",
            )
            .unwrap();
        let imported = db
            .import("items", records(&[&["a", "1"], &["b", "2"]]).into_iter())
            .unwrap();
        assert_eq!(
            imported,
            Imported {
                rows: 2,
                created: false
            }
        );
        assert_eq!(
            content(&db, "select id, typeof(qty) from items order by id"),
            vec![
                ("a".into(), "integer".into()),
                ("b".into(), "integer".into())
            ]
        );
        assert_eq!(
            content(&db, "select id, name from people"),
            vec![("1".into(), "ann".into())]
        );
    }

    #[test]
    fn a_bad_record_undoes_the_whole_import() {
        let (_dir, db) = temp_db();
        db.conn()
            .execute_batch("create table items (id text primary key not null, qty integer)")
            .unwrap();
        let err = db
            .import("items", records(&[&["a", "1"], &["b"]]).into_iter())
            .unwrap_err();
        assert_eq!(err.to_string(), "line 2: 1 fields, but items has 2 columns");
        let err = db
            .import("items", records(&[&["a", "1"], &["a", "2"]]).into_iter())
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("line 2: UNIQUE constraint failed"),
            "{err}"
        );
        let mut failing = records(&[&["a", "1"]]);
        failing.push(Err("line 2: a quoted field is never closed".into()));
        let err = db.import("items", failing.into_iter()).unwrap_err();
        assert_eq!(err.to_string(), "line 2: a quoted field is never closed");
        assert!(content(&db, "select id, qty from items").is_empty());
        let err = db
            .import("new", records(&[&["id", ""]]).into_iter())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 1: column 2 of the header has no name"
        );
        assert!(db.import("crsql_master", records(&[]).into_iter()).is_err());
    }
}
