//! One row of a CRR, found by the packed key its changes carry: whether it holds a filter's
//! row predicate, and its current cells as `crsql_changes` gives them. `crsql_changes` itself
//! cannot look a row up by key (cr-sqlite 0.16 scans every change for it), so the cells are
//! read from the table's clock and key tables, which cr-sqlite indexes by key.
//!
//! Also where a `--where` expression is checked before it is stored: one read-only SQL
//! expression over the columns of every table it may be used on.

use rusqlite::{Connection, ToSql, params_from_iter};

use super::changes::{SqlValue, value_from_sql};
use super::{Db, DbError};
use crate::sync::filter::{BadFilter, ChangeFilter, RowPredicate, SENTINEL_CID};
use crate::sync::schema::{SchemaDesc, TableDesc};
use crate::sync::validate::{counter_step_admitted, counters_past_max};
use crate::sync::{Change, DbVersion, Seq, SiteId, Value, packed_pk};

/// `name` as a SQL identifier.
pub(super) fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A table's key columns (in key order) and its other columns (in declaration order).
pub(super) struct TableKeys {
    pub(super) key: Vec<String>,
    pub(super) others: Vec<String>,
}

pub(super) fn table_keys(conn: &Connection, table: &str) -> Result<TableKeys, DbError> {
    let mut statement =
        conn.prepare_cached("select name, pk from pragma_table_info(?1) order by pk, cid")?;
    let mut key = Vec::new();
    let mut others = Vec::new();
    let rows = statement.query_map([table], |row| Ok((row.get::<_, String>(0)?, row.get(1)?)))?;
    for row in rows {
        let (name, pk): (String, i64) = row?;
        if pk > 0 {
            key.push(name)
        } else {
            others.push(name)
        }
    }
    if key.is_empty() {
        return Err(DbError::CorruptMetadata(format!(
            "CRR {table:?} has no primary key"
        )));
    }
    Ok(TableKeys { key, others })
}

/// `"a" = ?1 and "b" = ?2`: the row whose key columns are the parameters.
fn key_condition(keys: &TableKeys, alias: &str) -> String {
    keys.key
        .iter()
        .enumerate()
        .map(|(index, column)| format!("{alias}{} = ?{}", quoted(column), index + 1))
        .collect::<Vec<_>>()
        .join(" and ")
}

/// The key values of `pk`, checked against the table's key.
fn key_values(table: &str, keys: &TableKeys, pk: &[u8]) -> Result<Vec<Value>, DbError> {
    let values = packed_pk::unpack(pk)
        .map_err(|reason| DbError::BadRowKey(format!("{table:?}: {reason}")))?;
    if values.len() != keys.key.len() {
        return Err(DbError::BadRowKey(format!(
            "{table:?}: wrong number of columns"
        )));
    }
    Ok(values)
}

fn parameters(values: &[Value]) -> impl Iterator<Item = SqlValue<'_>> {
    values.iter().map(SqlValue)
}

impl Db {
    /// Whether the row of `table` whose packed key is `pk` holds `predicate` now; false when
    /// there is no such row.
    pub fn row_matches(
        &self,
        table: &str,
        pk: &[u8],
        predicate: &RowPredicate,
    ) -> Result<bool, DbError> {
        Ok(row_matches(self.conn(), table, pk, predicate)?.unwrap_or(false))
    }

    /// The current cells of the row of `table` whose packed key is `pk`, with db_version at
    /// most `through`: what `crsql_changes` holds for the row (its sentinel, when it has one).
    pub fn row_cells(
        &self,
        table: &str,
        pk: &[u8],
        through: DbVersion,
    ) -> Result<Vec<Change>, DbError> {
        row_cells(self.conn(), table, pk, through)
    }

    /// Checks a filter of what peers read (a member's, the shared one, a bundle's) against
    /// the tables this database serves: mirrors not served onward are none of its business.
    /// See [`Db::check_filter_against`].
    pub fn check_read_filter(&self, filter: &ChangeFilter) -> Result<(), DbError> {
        self.check_filter_against(filter, self.shared_schema()?)
    }

    /// Checks a filter of what a remote may change here against this database's own tables,
    /// the remote's: a remote pulled `--into` names its own tables, never the mirrors.
    pub fn check_accept_filter(&self, filter: &ChangeFilter) -> Result<(), DbError> {
        self.check_filter_against(filter, self.own_schema()?)
    }

    /// Checks `filter` against `schema`: its names (see [`ChangeFilter::check_schema`]) and
    /// its row predicate, which must be one read-only expression over the columns of every
    /// table the filter admits.
    fn check_filter_against(
        &self,
        filter: &ChangeFilter,
        schema: SchemaDesc,
    ) -> Result<(), DbError> {
        filter
            .check_schema(&schema)
            .map_err(|err| self.explain_unknown_table(err))?;
        let Some(predicate) = &filter.rows else {
            return Ok(());
        };
        let admitted: Vec<&TableDesc> = schema
            .tables
            .iter()
            .filter(|t| filter.admits_table(&t.name))
            .collect();
        let mut refused = None;
        let mut works_on = Vec::new();
        for table in &admitted {
            match check_predicate(self.conn(), table, predicate) {
                Ok(()) => works_on.push(table.name.as_str()),
                Err(err) => refused = refused.or(Some(err)),
            }
        }
        match refused {
            None => Ok(()),
            // It works on some tables: the user most likely meant those.
            Some(DbError::BadFilter(BadFilter::BadPredicate { table, reason }))
                if !works_on.is_empty() =>
            {
                Err(DbError::BadFilter(BadFilter::BadPredicate {
                    table,
                    reason: format!(
                        "{reason} (it works on {0}: give --tables {0})",
                        works_on.join(",")
                    ),
                }))
            }
            Some(err) => Err(err),
        }
    }

    /// A table a filter names that is no CRR here: said as a plain table made one with
    /// `crsql_as_crr` when it is one.
    pub fn explain_unknown_table(&self, err: BadFilter) -> DbError {
        if let BadFilter::UnknownTable(name) = &err {
            if self
                .mirror_tables()
                .is_ok_and(|tables| tables.contains(name))
            {
                return DbError::MirrorInFilter(name.clone());
            }
            if self.user_tables().is_ok_and(|tables| tables.contains(name)) {
                return DbError::NotACrr(name.clone());
            }
        }
        DbError::BadFilter(err)
    }
}

/// Whether the row of `table` whose packed key is `pk` holds `predicate` now; `None` when
/// there is no such row.
pub(super) fn row_matches(
    conn: &Connection,
    table: &str,
    pk: &[u8],
    predicate: &RowPredicate,
) -> Result<Option<bool>, DbError> {
    let keys = table_keys(conn, table)?;
    let values = key_values(table, &keys, pk)?;
    let sql = format!(
        "select case when ({}) then 1 else 0 end from {} where {}",
        predicate.as_sql(),
        quoted(table),
        key_condition(&keys, "")
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query(params_from_iter(parameters(&values)))?;
    Ok(match rows.next()? {
        Some(row) => Some(row.get::<_, i64>(0)? == 1),
        None => None,
    })
}

/// Whether `change`'s col_version and causal length are admitted here: up to 2^53 always, past
/// it only as a step from this database's own counters of the cell and row (see
/// [`crate::sync::validate::counter_step_admitted`]). A change to a table that is no CRR here
/// is left to the validator, which refuses it by name.
pub(super) fn counters_admitted(conn: &Connection, change: &Change) -> Result<bool, DbError> {
    if !counters_past_max(change) {
        return Ok(true);
    }
    if !super::schema::crr_tables(conn)?.contains(&change.table) {
        return Ok(true);
    }
    let cells = row_cells(conn, &change.table, &change.pk, DbVersion(i64::MAX))?;
    let local_cl = cells.first().map_or(0, |cell| cell.cl);
    let local_col_version = cells
        .iter()
        .find(|cell| cell.cid == change.cid)
        .map_or(0, |cell| cell.col_version);
    Ok(counter_step_admitted(change, local_col_version, local_cl))
}

/// [`Db::row_cells`] on `conn`.
pub(super) fn row_cells(
    conn: &Connection,
    table: &str,
    pk: &[u8],
    through: DbVersion,
) -> Result<Vec<Change>, DbError> {
    let keys = table_keys(conn, table)?;
    let values = key_values(table, &keys, pk)?;
    let (clock, key_table) = (
        quoted(&format!("{table}__crsql_clock")),
        quoted(&format!("{table}__crsql_pks")),
    );
    // The causal length is the sentinel's col_version, 1 for a row that never had one.
    let sql = format!(
        "select c.col_name, c.col_version, c.db_version, s.site_id, c.seq,
               coalesce((select sentinel.col_version from {clock} sentinel
                         where sentinel.key = c.key and sentinel.col_name = '{SENTINEL_CID}'), 1)
             from {key_table} p join {clock} c on c.key = p.__crsql_key
             join crsql_site_id s on s.ordinal = c.site_id
             where {} and c.db_version <= ?{}",
        key_condition(&keys, "p."),
        keys.key.len() + 1
    );
    let mut arguments: Vec<&dyn ToSql> = Vec::new();
    let key_parameters: Vec<SqlValue<'_>> = parameters(&values).collect();
    for parameter in &key_parameters {
        arguments.push(parameter);
    }
    arguments.push(&through.0);
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query(arguments.as_slice())?;
    let mut cells = Vec::new();
    while let Some(row) = rows.next()? {
        cells.push(Change {
            table: table.to_string(),
            pk: pk.to_vec(),
            cid: row.get(0)?,
            val: Value::Null,
            col_version: row.get(1)?,
            db_version: DbVersion(row.get(2)?),
            site_id: SiteId::from_slice(&row.get::<_, Vec<u8>>(3)?)?,
            cl: row.get(5)?,
            seq: Seq(row.get(4)?),
        });
    }
    if cells.iter().any(|cell| cell.cid != SENTINEL_CID) {
        let current = row_values(conn, table, &keys, &values)?;
        let current = current.unwrap_or_default();
        for cell in &mut cells {
            if let Some(index) = keys.others.iter().position(|name| *name == cell.cid) {
                cell.val = current.get(index).cloned().unwrap_or(Value::Null);
            }
        }
    }
    Ok(cells)
}

/// The values of the row's columns outside its key, in `keys.others` order; `None` when the
/// row is gone.
fn row_values(
    conn: &Connection,
    table: &str,
    keys: &TableKeys,
    values: &[Value],
) -> Result<Option<Vec<Value>>, DbError> {
    // `select 1, ...`: a row with no columns outside its key still says it exists.
    let mut columns = vec!["1".to_string()];
    columns.extend(keys.others.iter().map(|name| quoted(name)));
    let sql = format!(
        "select {} from {} where {}",
        columns.join(", "),
        quoted(table),
        key_condition(keys, "")
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query(params_from_iter(parameters(values)))?;
    Ok(match rows.next()? {
        Some(row) => Some(
            (1..columns.len())
                .map(|index| Ok(value_from_sql(row.get_ref(index)?)))
                .collect::<Result<_, rusqlite::Error>>()?,
        ),
        None => None,
    })
}

fn check_predicate(
    conn: &Connection,
    table: &TableDesc,
    predicate: &RowPredicate,
) -> Result<(), DbError> {
    let refused = |reason: String| {
        DbError::BadFilter(BadFilter::BadPredicate {
            table: table.name.clone(),
            reason,
        })
    };
    // Wrapped as `where` will use it: a stray ')' or ';' cannot reach outside the
    // expression without making the statement two, which SQLite's prepare refuses.
    let sql = format!(
        "select case when ({}) then 1 else 0 end from {} limit 0",
        predicate.as_sql(),
        quoted(&table.name)
    );
    let statement = conn.prepare(&sql).map_err(|err| match err {
        // SQLite's own words, without the statement the expression was wrapped in.
        rusqlite::Error::SqlInputError { msg, .. }
        | rusqlite::Error::SqliteFailure(_, Some(msg)) => refused(msg),
        rusqlite::Error::MultipleStatement => refused("it holds more than one statement".into()),
        other => refused(other.to_string()),
    })?;
    if !statement.readonly() {
        return Err(refused("it would write to the database".into()));
    }
    // A parameter ($a, :a, @a, ?) is a value the expression does not hold, and SQLite reads
    // `$a(...)` as one token where a bracket counter sees a '(': a way out of the parentheses
    // the expression is used in. `RowPredicate::parse` refuses them first; this is SQLite's
    // own word on it, in case its tokenizer knows a form the parse does not.
    if statement.parameter_count() > 0 {
        return Err(refused("it holds a parameter ($, :, @ or ?)".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::filter_args::FilterFlags;
    use crate::db::test_support::temp_db;

    const SCHEMA: &str = "
        create table posts (id integer primary key not null, owner text, body text);
        select crsql_as_crr('posts');
        create table tags (post integer not null, tag text not null, note text,
                           primary key (post, tag));
        select crsql_as_crr('tags');";

    fn where_filter(predicate: &str) -> ChangeFilter {
        FilterFlags {
            rows: Some(predicate),
            ..FilterFlags::default()
        }
        .applied_to(&ChangeFilter::default())
        .unwrap()
    }

    #[test]
    fn a_rows_cells_are_what_crsql_changes_holds() {
        let (_dir, mut db) = temp_db();
        let (_other_dir, other) = temp_db();
        db.conn().execute_batch(SCHEMA).unwrap();
        other.conn().execute_batch(SCHEMA).unwrap();
        db.conn()
            .execute_batch(
                "insert into posts values (1, 'alice', 'hi'), (2, 'bob', 'yo');
                 update posts set body = 'hello' where id = 1;
                 insert into tags values (1, 'x', 'n'), (2, 'y', null);
                 delete from posts where id = 2;
                 insert into posts values (2, 'carol', 'back');",
            )
            .unwrap();
        // A change merged from another site keeps its author.
        other
            .conn()
            .execute_batch("insert into posts values (3, 'dave', 'from afar')")
            .unwrap();
        db.apply_changes(&other.changes_since(DbVersion(0)).unwrap())
            .unwrap();
        let newest = db.db_version().unwrap();
        let all = db.changes_since(DbVersion(0)).unwrap();
        let mut rows: Vec<(String, Vec<u8>)> = all
            .iter()
            .map(|c| (c.table.clone(), c.pk.clone()))
            .collect();
        rows.dedup();
        for (table, pk) in rows {
            let key = |c: &Change| (c.cid.clone(), c.db_version);
            let mut expected: Vec<Change> = all
                .iter()
                .filter(|c| c.table == table && c.pk == pk)
                .cloned()
                .collect();
            let mut cells = db.row_cells(&table, &pk, newest).unwrap();
            expected.sort_by_key(key);
            cells.sort_by_key(key);
            assert_eq!(cells, expected, "{table}");
            // Only cells up to a version.
            let early = db.row_cells(&table, &pk, DbVersion(1)).unwrap();
            assert!(early.iter().all(|c| c.db_version <= DbVersion(1)));
        }
    }

    #[test]
    fn rows_are_matched_by_their_current_columns() {
        let (_dir, db) = temp_db();
        db.conn().execute_batch(SCHEMA).unwrap();
        db.conn()
            .execute_batch("insert into posts values (1, 'bob', 'hi'), (2, 'alice', 'yo')")
            .unwrap();
        let changes = db.changes_since(DbVersion(0)).unwrap();
        let pk_of = |id: i64| {
            changes
                .iter()
                .find(|c| c.val == Value::Text(if id == 1 { "bob" } else { "alice" }.into()))
                .unwrap()
                .pk
                .clone()
        };
        let bob = where_filter("owner = 'bob'").rows.unwrap();
        assert!(db.row_matches("posts", &pk_of(1), &bob).unwrap());
        assert!(!db.row_matches("posts", &pk_of(2), &bob).unwrap());
        db.conn()
            .execute_batch("delete from posts where id = 1")
            .unwrap();
        assert!(!db.row_matches("posts", &pk_of(1), &bob).unwrap());
        assert!(matches!(
            db.row_matches("posts", &[1, 0xff], &bob),
            Err(DbError::BadRowKey(_))
        ));
    }

    #[test]
    fn a_predicate_that_writes_or_names_unknown_columns_is_refused() {
        let (_dir, db) = temp_db();
        db.conn().execute_batch(SCHEMA).unwrap();
        let refused = |predicate: &str| {
            matches!(
                db.check_read_filter(&where_filter(predicate)),
                Err(DbError::BadFilter(BadFilter::BadPredicate { .. }))
            )
        };
        // On both tables, `owner` is only in posts.
        assert!(refused("owner = 'bob'"));
        assert!(
            db.check_read_filter(
                &FilterFlags {
                    tables: Some("posts"),
                    ..FilterFlags::default()
                }
                .applied_to(&where_filter("owner = 'bob'"))
                .unwrap()
            )
            .is_ok()
        );
        assert!(db.check_read_filter(&where_filter("1 = 1")).is_ok());
        assert!(refused("owner = "));
        // Refused before SQLite sees them: not one expression.
        for injected in [
            "1); delete from posts; select (1",
            "1) from posts; delete from posts --",
        ] {
            let flags = FilterFlags {
                rows: Some(injected),
                ..FilterFlags::default()
            };
            let refusal = flags.applied_to(&ChangeFilter::default()).unwrap_err();
            assert!(
                refusal.to_string().contains("one SQL expression"),
                "{refusal}"
            );
        }
        assert!(refused("nope = 1"));
    }
}
