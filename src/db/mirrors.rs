//! Mirrors: a remote added with `--into PREFIX` lands its tables in local CRRs named PREFIX
//! followed by the table's name (`--into alice_`: alice's `bookmarks` in `alice_bookmarks`),
//! never in the local table itself. A view per table, `ddcp_all_T`, reads the local table and
//! its mirrors together, with a `source` column ('local', or the remote's name).
//!
//! Mirrors are this database's copy of someone else's content: unless the remote was added
//! with `--serve-mirrors`, they stay out of what this database serves (pages, bundles) and out
//! of the schema it publishes, so peers keep comparing the tables they share.

use std::fmt;
use std::str::FromStr;

use rusqlite::{Connection, OptionalExtension};

use super::create_tables::{column_sql, table_sql};
use super::rows::quoted;
use super::{Db, DbError};
use crate::sync::filter::ChangeFilter;
use crate::sync::schema::{ColumnDesc, SchemaDesc, TableDesc};

/// The prefix of a remote's mirror tables: letters, digits and '_', starting with a letter.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MirrorPrefix(String);

impl MirrorPrefix {
    /// The prefix as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The mirror of `table`.
    pub fn mirror_of(&self, table: &str) -> String {
        format!("{}{table}", self.0)
    }

    /// Whether `table` is one of this prefix's mirrors.
    pub fn holds(&self, table: &str) -> bool {
        table.starts_with(&self.0)
    }
}

impl FromStr for MirrorPrefix {
    type Err = DbError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let lower = text.to_ascii_lowercase();
        let plain = text.len() <= 32
            && text.starts_with(|c: char| c.is_ascii_alphabetic())
            && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let reserved = ["sqlite_", "crsql", "ddcp_"]
            .iter()
            .any(|taken| lower.starts_with(taken));
        if !plain || reserved {
            return Err(DbError::BadMirrorPrefix(crate::sync::text::printable(
                text, 40,
            )));
        }
        Ok(MirrorPrefix(text.to_string()))
    }
}

impl fmt::Display for MirrorPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A mirror prefix in use, or used once (its tables stay when its remote is removed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mirror {
    /// The prefix.
    pub prefix: MirrorPrefix,
    /// The remote whose tables it holds: the `source` its rows show in the views.
    pub source: String,
    /// Whether its tables are served onward like this database's own.
    pub serve: bool,
}

pub(super) fn read_mirrors(conn: &Connection) -> Result<Vec<Mirror>, DbError> {
    let mut statement =
        conn.prepare_cached("select prefix, remote, serve from ddcp_mirrors order by prefix")?;
    let rows = statement.query_map([], |row| {
        Ok((row.get::<_, String>(0)?, row.get(1)?, row.get(2)?))
    })?;
    rows.map(|row| {
        let (prefix, source, serve) = row?;
        Ok(Mirror {
            prefix: prefix
                .parse()
                .map_err(|_| DbError::CorruptMetadata("a mirror prefix".into()))?,
            source,
            serve,
        })
    })
    .collect()
}

/// `schema` without the tables of the mirrors `leave_out` picks.
fn without_mirrors(
    schema: SchemaDesc,
    mirrors: &[Mirror],
    leave_out: impl Fn(&Mirror) -> bool,
) -> SchemaDesc {
    let tables = schema
        .tables
        .into_iter()
        .filter(|table| {
            !mirrors
                .iter()
                .any(|mirror| leave_out(mirror) && mirror.prefix.holds(&table.name))
        })
        .collect();
    SchemaDesc::new(tables)
}

impl Db {
    /// The mirror prefixes in use or used once.
    pub fn mirrors(&self) -> Result<Vec<Mirror>, DbError> {
        read_mirrors(self.conn())
    }

    /// The CRR tables that are mirrors (`--into`), served onward or not.
    pub fn mirror_tables(&self) -> Result<Vec<String>, DbError> {
        let mirrors = self.mirrors()?;
        Ok(self
            .schema()?
            .tables
            .into_iter()
            .map(|table| table.name)
            .filter(|name| mirrors.iter().any(|mirror| mirror.prefix.holds(name)))
            .collect())
    }

    /// This database's own CRR tables: all of them but mirrors. What a remote pulled `--into`
    /// mirrors must have.
    pub fn own_schema(&self) -> Result<SchemaDesc, DbError> {
        let mirrors = self.mirrors()?;
        Ok(without_mirrors(self.schema()?, &mirrors, |_| true))
    }

    /// The CRR tables this database shares: its own, and the mirrors it serves onward. What it
    /// publishes, answers a schema request with, and compares an asker's schema with.
    pub fn shared_schema(&self) -> Result<SchemaDesc, DbError> {
        let mirrors = self.mirrors()?;
        Ok(without_mirrors(self.schema()?, &mirrors, |mirror| {
            !mirror.serve
        }))
    }

    /// What leaves out the mirrors this database does not serve: for readers and bundles.
    pub fn unserved_mirrors(&self) -> Result<ChangeFilter, DbError> {
        let mut filter = ChangeFilter::default();
        for mirror in self.mirrors()? {
            if !mirror.serve {
                filter.hidden_prefixes.insert(mirror.prefix.to_string());
            }
        }
        Ok(filter)
    }

    /// Makes the mirrors of `tables` (this database's own) under `prefix` that do not exist
    /// yet, as CRRs shaped as their tables, and the views over each table and its mirrors.
    pub fn ensure_mirrors(
        &mut self,
        prefix: &MirrorPrefix,
        tables: &[&str],
    ) -> Result<(), DbError> {
        let own = self.own_schema()?;
        let tx = self.conn_mut().transaction()?;
        let made = make_mirrors(&tx, prefix, &own, tables)?;
        if made {
            make_views(&tx, &own)?;
            tx.commit()?;
        }
        Ok(())
    }
}

/// Registers `prefix` for remote `source` (`--serve-mirrors`: `serve`), refusing one that
/// would take a name of this database's own tables or overlap another remote's, and makes the
/// mirrors of every own table and their views.
pub(super) fn add_mirror(
    conn: &Connection,
    prefix: &MirrorPrefix,
    source: &str,
    serve: bool,
) -> Result<(), DbError> {
    let mirrors = read_mirrors(conn)?;
    for mirror in &mirrors {
        let (a, b) = (mirror.prefix.as_str(), prefix.as_str());
        if a != b && (a.starts_with(b) || b.starts_with(a)) {
            return Err(DbError::MirrorPrefixTaken {
                prefix: prefix.to_string(),
                by: format!("the mirrors of {} ({a})", mirror.source),
            });
        }
    }
    let known = mirrors.iter().any(|mirror| mirror.prefix == *prefix);
    let schema = super::schema::read_schema(conn)?;
    let own = without_mirrors(schema, &mirrors, |_| true);
    // Any table, view or index of the application under the prefix, unless they are this
    // prefix's mirrors from an earlier remote.
    if !known {
        let taken: Option<String> = conn
            .query_row(
                "select name from sqlite_master where substr(name, 1, length(?1)) = ?1 limit 1",
                [prefix.as_str()],
                |row| row.get(0),
            )
            .optional()?;
        if let Some(table) = taken {
            return Err(DbError::MirrorPrefixStartsTable {
                prefix: prefix.to_string(),
                table,
            });
        }
    }
    conn.execute(
        "insert into ddcp_mirrors (prefix, remote, serve) values (?1, ?2, ?3)
         on conflict (prefix) do update set remote = excluded.remote, serve = excluded.serve",
        (prefix.as_str(), source, serve),
    )?;
    let names: Vec<&str> = own.tables.iter().map(|table| table.name.as_str()).collect();
    make_mirrors(conn, prefix, &own, &names)?;
    make_views(conn, &own)?;
    Ok(())
}

/// Makes the missing mirrors of `tables`; true when it made any.
fn make_mirrors(
    conn: &Connection,
    prefix: &MirrorPrefix,
    own: &SchemaDesc,
    tables: &[&str],
) -> Result<bool, DbError> {
    let existing = super::schema::crr_tables(conn)?;
    let mut made = false;
    for name in tables {
        let Some(table) = own.tables.iter().find(|table| table.name == *name) else {
            continue;
        };
        let mirror = TableDesc {
            name: prefix.mirror_of(&table.name),
            columns: table.columns.clone(),
        };
        if existing.contains(&mirror.name) {
            continue;
        }
        conn.execute(&table_sql(&mirror)?, [])?;
        conn.query_row("select crsql_as_crr(?1)", [&mirror.name], |_| Ok(()))?;
        made = true;
    }
    Ok(made)
}

/// Gives the mirrors of own table `table` the columns it has and they lack (a migration added
/// them), each inside cr-sqlite's alteration, and makes the views again: a remote pulled
/// `--into` on a newer version then has somewhere to land its new column. The mirrors and
/// columns added. `fast`: see [`super::schema::commit_added_columns`].
pub(super) fn add_columns_to_mirrors(
    conn: &Connection,
    table: &str,
    fast: bool,
) -> Result<Vec<(String, String)>, DbError> {
    let schema = super::schema::read_schema(conn)?;
    let Some(own) = schema.tables.iter().find(|t| t.name == table) else {
        return Ok(Vec::new());
    };
    let mirrors = read_mirrors(conn)?;
    let mut added = Vec::new();
    for mirror in &mirrors {
        let name = mirror.prefix.mirror_of(table);
        let Some(current) = schema.tables.iter().find(|t| t.name == name) else {
            continue;
        };
        let missing: Vec<&ColumnDesc> = own
            .columns
            .iter()
            .filter(|c| !current.columns.iter().any(|m| m.name == c.name))
            .collect();
        if missing.is_empty() {
            continue;
        }
        conn.query_row("select crsql_begin_alter(?1)", [&name], |_| Ok(()))?;
        for column in missing {
            conn.execute_batch(&format!(
                "alter table {} add column {}",
                quoted(&name),
                column_sql(&name, column)?
            ))?;
            added.push((name.clone(), column.name.clone()));
        }
        super::schema::commit_added_columns(conn, &name, fast)?;
    }
    if !added.is_empty() {
        let own = without_mirrors(super::schema::read_schema(conn)?, &mirrors, |_| true);
        make_views(conn, &own)?;
    }
    Ok(added)
}

/// The view `ddcp_all_T` over each own table T and its mirrors that exist.
fn make_views(conn: &Connection, own: &SchemaDesc) -> Result<(), DbError> {
    let mirrors = read_mirrors(conn)?;
    let existing = super::schema::crr_tables(conn)?;
    for table in &own.tables {
        let columns: Vec<String> = table.columns.iter().map(|c| quoted(&c.name)).collect();
        let columns = columns.join(", ");
        // The column saying where a row comes from; renamed when the table has one of its own.
        let source = if table
            .columns
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case("source"))
        {
            "ddcp_source"
        } else {
            "source"
        };
        let literal = |text: &str| format!("'{}'", text.replace('\'', "''"));
        let mut parts = vec![format!(
            "select 'local' as {source}, {columns} from {}",
            quoted(&table.name)
        )];
        for mirror in &mirrors {
            let name = mirror.prefix.mirror_of(&table.name);
            if existing.contains(&name) {
                parts.push(format!(
                    "select {} as {source}, {columns} from {}",
                    literal(&mirror.source),
                    quoted(&name)
                ));
            }
        }
        let view = quoted(&format!("ddcp_all_{}", table.name));
        conn.execute(&format!("drop view if exists {view}"), [])?;
        conn.execute(
            &format!("create view {view} as {}", parts.join(" union all ")),
            [],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_support::temp_db;

    #[test]
    fn prefixes_are_plain_names_clear_of_reserved_ones() {
        assert!("alice_".parse::<MirrorPrefix>().is_ok());
        assert!("Site2".parse::<MirrorPrefix>().is_ok());
        for bad in ["", "_x", "1a", "a-b", "a b", "ddcp_x", "crsql_", "sqlite_a"] {
            assert!(bad.parse::<MirrorPrefix>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn mirrors_are_made_viewed_and_kept_out_of_the_shared_schema() {
        let (_dir, mut db) = temp_db();
        db.conn()
            .execute_batch(
                "create table posts (id text primary key not null, body text);
                 select crsql_as_crr('posts');
                 create table alicia (id text primary key not null);
                 select crsql_as_crr('alicia');
                 insert into posts values ('p1', 'mine');",
            )
            .unwrap();
        let shared_before = db.shared_schema().unwrap();
        let prefix: MirrorPrefix = "alice_".parse().unwrap();
        let tx = db.conn_mut().transaction().unwrap();
        add_mirror(&tx, &prefix, "alice", false).unwrap();
        tx.commit().unwrap();
        assert!(
            db.crr_tables()
                .unwrap()
                .contains(&"alice_posts".to_string())
        );
        db.conn()
            .execute_batch("insert into alice_posts values ('p9', 'hers')")
            .unwrap();
        let rows = db
            .conn()
            .prepare("select source, id, body from ddcp_all_posts order by id")
            .unwrap()
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [("local".into(), "p1".into()), ("alice".into(), "p9".into())]
        );
        // Peers compare the tables they share: the mirrors are not among them.
        assert_eq!(db.shared_schema().unwrap(), shared_before);
        assert_eq!(db.own_schema().unwrap(), shared_before);
        assert!(!db.unserved_mirrors().unwrap().admits_table("alice_posts"));
        assert!(db.unserved_mirrors().unwrap().admits_table("posts"));
        // A prefix overlapping another's, or an application's table, is refused.
        let tx = db.conn_mut().transaction().unwrap();
        for (taken, by) in [("alice_x", "alice"), ("ali", "alice_"), ("alici", "alicia")] {
            let err = add_mirror(&tx, &taken.parse().unwrap(), "x", false).unwrap_err();
            assert!(err.to_string().contains(by), "{taken}: {err}");
        }
        drop(tx);
        // Served onward: part of the shared schema.
        let tx = db.conn_mut().transaction().unwrap();
        add_mirror(&tx, &prefix, "alice", true).unwrap();
        tx.commit().unwrap();
        assert!(
            db.shared_schema()
                .unwrap()
                .tables
                .iter()
                .any(|table| table.name == "alice_posts")
        );
    }
}
