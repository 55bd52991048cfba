//! The shell's `.dump`: the application's tables as SQL that rebuilds them elsewhere.

use std::io::Write;

use super::rows::quoted;
use super::schema::INTERNAL_TABLES;
use super::{Db, DbError};

impl Db {
    /// Writes SQL that rebuilds the application's tables (or only `table`): each table, its
    /// rows, which tables are CRRs, then the indexes, views and triggers. Loaded into a new
    /// database (`ddcp shell < dump.sql`) it gives the same content with a history of its own:
    /// site ids, versions and remotes are not in it (`ddcp backup` keeps those).
    ///
    /// Mirrors not served onward (`--into`) are another database's rows, kept apart: a whole
    /// dump leaves them out (a comment names them), and one asked for by name is dumped as a
    /// plain table, never made a CRR, so that no peer rebuilt from a dump serves them as its
    /// own.
    pub fn dump(&self, table: Option<&str>, out: &mut dyn Write) -> Result<(), DbError> {
        let all = self.user_tables()?;
        let mirrors = self.mirrors()?;
        let apart = |name: &str| {
            mirrors
                .iter()
                .any(|mirror| !mirror.serve && mirror.prefix.holds(name))
        };
        let (tables, left_out): (Vec<String>, Vec<String>) = match table {
            None => all.into_iter().partition(|name| !apart(name)),
            Some(table) if all.iter().any(|name| name == table) => {
                (vec![table.to_string()], Vec::new())
            }
            Some(table) => return Err(DbError::NoSuchTable(table.to_string())),
        };
        let crrs = self.crr_tables()?;
        writeln!(out, "PRAGMA foreign_keys=OFF;")?;
        writeln!(out, "BEGIN TRANSACTION;")?;
        if !left_out.is_empty() {
            writeln!(
                out,
                "-- Left out: {} (mirrors of other databases' rows, pulled --into; not this database's own).",
                left_out.join(", ")
            )?;
        }
        for table in &tables {
            self.dump_table(table, out)?;
        }
        // After the rows: crsql_as_crr records them as this new database's own changes.
        for table in tables
            .iter()
            .filter(|table| crrs.contains(table) && !apart(table))
        {
            writeln!(out, "SELECT crsql_as_crr({});", text_literal(table))?;
        }
        self.dump_other_objects(table, &left_out, out)?;
        writeln!(out, "COMMIT;")?;
        Ok(())
    }

    fn dump_table(&self, table: &str, out: &mut dyn Write) -> Result<(), DbError> {
        let create: String = self.conn().query_row(
            "select sql from sqlite_master where type = 'table' and name = ?1",
            [table],
            |row| row.get(0),
        )?;
        writeln!(out, "{create};")?;
        // Generated and hidden columns take no value of their own.
        let columns: Vec<String> = self
            .conn()
            .prepare("select name from pragma_table_xinfo(?1) where hidden = 0 order by cid")?
            .query_map([table], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        let names: Vec<String> = columns.iter().map(|c| quoted(c)).collect();
        // SQLite's quote() writes each value as the literal that reads back the same: reals
        // exactly, text with its quotes doubled, blobs as x'..'.
        let values: Vec<String> = names.iter().map(|c| format!("quote({c})")).collect();
        let select = format!("select {} from {}", values.join(", "), quoted(table));
        let insert = format!("INSERT INTO {}({}) VALUES", quoted(table), names.join(","));
        let mut statement = self.conn().prepare(&select)?;
        let mut rows = statement.query([])?;
        let mut literals = Vec::with_capacity(columns.len());
        while let Some(row) = rows.next()? {
            literals.clear();
            for index in 0..columns.len() {
                literals.push(row.get::<_, String>(index)?);
            }
            writeln!(out, "{insert}({});", literals.join(","))?;
        }
        Ok(())
    }

    /// The application's indexes, views and triggers (of `table` only, if given); cr-sqlite's
    /// own triggers are not among them (crsql_as_crr makes them again).
    fn dump_other_objects(
        &self,
        table: Option<&str>,
        left_out: &[String],
        out: &mut dyn Write,
    ) -> Result<(), DbError> {
        let sql = format!(
            "select sql, tbl_name from sqlite_master
                 where type in ('index', 'view', 'trigger') and sql is not null and {INTERNAL_TABLES}
                 and (?1 is null or tbl_name = ?1)
                 order by type = 'trigger', rowid"
        );
        let mut statement = self.conn().prepare(&sql)?;
        let objects = statement.query_map([table], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?;
        for object in objects {
            let (sql, on_table) = object?;
            if !left_out.contains(&on_table) {
                writeln!(out, "{sql};")?;
            }
        }
        Ok(())
    }
}

/// `text` as a SQL string literal.
fn text_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use crate::db::script::{PendingSql, RowSink, StatementSplitter};
    use crate::db::test_support::temp_db;
    use crate::sync::Value;

    /// Rows of every query, as text.
    #[derive(Default)]
    struct Collect(Vec<Vec<Value>>);

    impl RowSink for Collect {
        fn begin(&mut self, _: &[String]) -> std::io::Result<()> {
            Ok(())
        }
        fn row(&mut self, values: &[Value]) -> std::io::Result<()> {
            self.0.push(values.to_vec());
            Ok(())
        }
        fn end(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn run_script(db: &crate::db::Db, script: &str) -> Vec<Vec<Value>> {
        let mut splitter = StatementSplitter::new();
        let mut sink = Collect::default();
        let mut pending: Vec<PendingSql> = Vec::new();
        for line in script.lines() {
            splitter.next_line();
            pending.extend(splitter.push_line(line));
        }
        pending.extend(splitter.finish());
        for sql in &pending {
            db.run_sql(sql, &mut sink).unwrap();
        }
        sink.0
    }

    const SCHEMA: &str = "
        create table items (id text primary key not null, name text, qty real, data blob);
        select crsql_as_crr('items');
        create index items_by_name on items (name);
        create table notes (n integer primary key, body text, twice integer generated always as (n * 2));
        create view named as select id, name from items;";

    #[test]
    fn a_dump_loaded_into_a_new_database_gives_the_same_content_and_crrs() {
        let (_dir, db) = temp_db();
        run_script(&db, SCHEMA);
        run_script(
            &db,
            "insert into items values ('a', 'it''s \"quoted\"', 0.1, x'00ff');
             insert into items values ('b', 'line one
line two', 1e300, null);
             insert into items values ('c', '日本', -0.0, x'');
             insert into notes (n, body) values (1, 'x');",
        );
        let mut dump = Vec::new();
        db.dump(None, &mut dump).unwrap();
        let dump = String::from_utf8(dump).unwrap();

        let (_dir2, copy) = temp_db();
        run_script(&copy, &dump);
        let content = "select id, name, qty, data, typeof(qty) from items order by id";
        assert_eq!(run_script(&copy, content), run_script(&db, content));
        let notes = "select n, body, twice from notes";
        assert_eq!(run_script(&copy, notes), run_script(&db, notes));
        assert_eq!(copy.crr_tables().unwrap(), vec!["items".to_string()]);
        assert_eq!(copy.schema_sql(None).unwrap(), db.schema_sql(None).unwrap());
        // The rows are the new database's own changes, ready to replicate.
        let changes = "select count(*) from crsql_changes where site_id = crsql_site_id()";
        assert_eq!(run_script(&copy, changes), run_script(&db, changes));
    }

    #[test]
    fn one_table_or_a_clear_error() {
        let (_dir, db) = temp_db();
        run_script(&db, SCHEMA);
        run_script(&db, "insert into notes (n, body) values (1, 'x');");
        let mut dump = Vec::new();
        db.dump(Some("notes"), &mut dump).unwrap();
        let dump = String::from_utf8(dump).unwrap();
        assert!(dump.contains("INSERT INTO \"notes\"(\"n\",\"body\") VALUES(1,'x');"));
        assert!(!dump.contains("items"), "{dump}");
        let err = db.dump(Some("nope"), &mut Vec::new()).unwrap_err();
        assert_eq!(err.to_string(), "no table named \"nope\"");
    }
}
