//! Reading the shape of this database's CRR tables.

use super::mirrors::MirrorPrefix;
use super::{Db, DbError};
use crate::sync::schema::{ColumnDesc, SchemaDesc, TableDesc};
use crate::sync::schema_fit::SchemaFit;

/// cr-sqlite keeps each CRR's clocks in a table named after it with this suffix.
const CLOCK_SUFFIX: &str = "__crsql_clock";

impl Db {
    /// The names of the tables that are CRRs, sorted.
    pub fn crr_tables(&self) -> Result<Vec<String>, DbError> {
        crr_tables(self.conn())
    }

    /// The CRR tables and their columns: what peers must agree on to exchange changes.
    pub fn schema(&self) -> Result<SchemaDesc, DbError> {
        read_schema(self.conn())
    }

    /// How a remote's schema (`theirs`) fits this database (see [`Db::fit_here`]).
    pub fn schema_fit(
        &self,
        theirs: &SchemaDesc,
        into: Option<&MirrorPrefix>,
    ) -> Result<SchemaFit, DbError> {
        Ok(SchemaFit::between(&self.fit_here(into)?, theirs)?)
    }

    /// Where a remote's changes land, named as the remote names its tables: all of this
    /// database's CRRs; or, for a remote pulled into mirrors (`into`), its own tables, each
    /// as its mirror has it once the mirror is made (a mirror keeps the columns its table had
    /// when it was made).
    pub fn fit_here(&self, into: Option<&MirrorPrefix>) -> Result<SchemaDesc, DbError> {
        let Some(prefix) = into else {
            return self.schema();
        };
        let all = self.schema()?;
        let tables = self
            .own_schema()?
            .tables
            .into_iter()
            .map(|own| {
                match all
                    .tables
                    .iter()
                    .find(|t| t.name == prefix.mirror_of(&own.name))
                {
                    Some(mirror) => TableDesc {
                        name: own.name,
                        columns: mirror.columns.clone(),
                    },
                    None => own,
                }
            })
            .collect();
        Ok(SchemaDesc::new(tables))
    }
}

/// [`Db::crr_tables`] on `conn` (inside a transaction too).
pub(super) fn crr_tables(conn: &rusqlite::Connection) -> Result<Vec<String>, DbError> {
    let mut statement = conn.prepare(
        "select clock.name from sqlite_master clock
             where clock.type = 'table' and clock.name like '%' || ?1
             order by clock.name",
    )?;
    let clock_tables = statement.query_map([CLOCK_SUFFIX], |row| row.get::<_, String>(0))?;
    let mut tables = Vec::new();
    for clock in clock_tables {
        let clock = clock?;
        if let Some(table) = clock.strip_suffix(CLOCK_SUFFIX) {
            tables.push(table.to_string());
        }
    }
    Ok(tables)
}

/// [`Db::schema`] on `conn` (inside a transaction too).
pub(super) fn read_schema(conn: &rusqlite::Connection) -> Result<SchemaDesc, DbError> {
    let mut tables = Vec::new();
    for name in crr_tables(conn)? {
        let mut statement = conn.prepare(
            "select name, type, \"notnull\", pk, dflt_value from pragma_table_info(?1)
                 order by cid",
        )?;
        let columns = statement
            .query_map([&name], |row| {
                Ok(ColumnDesc {
                    name: row.get(0)?,
                    decl_type: row.get::<_, String>(1)?.to_uppercase(),
                    not_null: row.get(2)?,
                    pk_index: row.get(3)?,
                    default_value: row.get(4)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        tables.push(TableDesc { name, columns });
    }
    Ok(SchemaDesc::new(tables))
}

/// Tables that belong to SQLite, cr-sqlite or ddcp rather than to the application.
pub(super) const INTERNAL_TABLES: &str = "name not like 'sqlite\\_%' escape '\\'
    and name not like 'crsql\\_%' escape '\\'
    and name not like '%\\_\\_crsql\\_%' escape '\\'
    and name not like 'ddcp\\_%' escape '\\'";

impl Db {
    /// The application's tables (not SQLite's, cr-sqlite's or ddcp's own), sorted.
    pub fn user_tables(&self) -> Result<Vec<String>, DbError> {
        let sql = format!(
            "select name from sqlite_master where type = 'table' and {INTERNAL_TABLES} order by name"
        );
        let mut statement = self.conn().prepare(&sql)?;
        let names = statement.query_map([], |row| row.get(0))?;
        Ok(names.collect::<Result<_, _>>()?)
    }

    /// The CREATE statements of the application's tables, indexes, views and triggers, or of
    /// those that belong to `table`.
    pub fn schema_sql(&self, table: Option<&str>) -> Result<Vec<String>, DbError> {
        let sql = format!(
            "select sql from sqlite_master where sql is not null and {INTERNAL_TABLES}
             and (?1 is null or tbl_name = ?1)
             order by tbl_name, type = 'table' desc, name"
        );
        let mut statement = self.conn().prepare(&sql)?;
        let rows = statement.query_map([table], |row| row.get::<_, String>(0))?;
        Ok(rows
            .map(|sql| sql.map(|sql| format!("{sql};")))
            .collect::<Result<_, _>>()?)
    }
}

/// Ends the alteration `crsql_begin_alter(table)` began, after statements that only added
/// columns. With `fast` (ddcp's own cr-sqlite build), through the fast path of
/// patches/crsqlite-0.16.3-fast-add-column.patch: no compaction and no backfill, which read
/// the whole table and cannot find anything to do after an ADD COLUMN (benches/alter.rs
/// measures both); else cr-sqlite's usual commit.
pub(super) fn commit_added_columns(
    conn: &rusqlite::Connection,
    table: &str,
    fast: bool,
) -> rusqlite::Result<()> {
    let sql = match fast {
        true => "select crsql_commit_alter('main', ?1, 1)",
        false => "select crsql_commit_alter(?1)",
    };
    conn.query_row(sql, [table], |_| Ok(()))
}

#[cfg(test)]
mod tests {
    use crate::db::test_support::temp_db;

    #[test]
    fn lists_crrs_and_their_columns() {
        let (_dir, db) = temp_db();
        db.conn()
            .execute_batch(
                "create table plain (x);
                 create table items (id text primary key not null, name text, qty integer);
                 select crsql_as_crr('items');",
            )
            .unwrap();
        assert_eq!(db.crr_tables().unwrap(), ["items"]);
        assert_eq!(db.user_tables().unwrap(), ["items", "plain"]);
        assert_eq!(
            db.schema_sql(Some("plain")).unwrap(),
            ["CREATE TABLE plain (x);"]
        );
        let schema = db.schema().unwrap();
        let columns: Vec<_> = schema.tables[0]
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.decl_type.as_str(), c.pk_index))
            .collect();
        assert_eq!(
            columns,
            [
                ("id", "TEXT", 1),
                ("name", "TEXT", 0),
                ("qty", "INTEGER", 0)
            ]
        );
    }
}
