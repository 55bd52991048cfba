//! The rest of a cut group: a transaction too big for one page is served across pages, each
//! starting after the last change sent (a [`RowKey`] within the group). `crsql_changes` would
//! read the whole group, every value included, and sort it for every one of those pages,
//! which made a big transaction's transfer quadratic in its size (200 MiB: 67 s against 9 s
//! for the same rows in 1,000 transactions). This reads each CRR's clock in group order
//! through an index ddcp adds to it, `(db_version, seq)`, and merges the tables' streams:
//! each page costs what it sends.

use rusqlite::Connection;

use super::DbError;
use super::changes::change_from_row;
use super::rows::{quoted, table_keys};
use super::schema::crr_tables;
use crate::sync::cursor::RowKey;
use crate::sync::filter::SENTINEL_CID;
use crate::sync::page::Visit;
use crate::sync::{Change, DbVersion, Seq, SiteId};

/// The key before every change of a group.
pub(super) fn group_start() -> RowKey {
    RowKey {
        seq: Seq(-1),
        table: String::new(),
        pk: Vec::new(),
        cid: String::new(),
    }
}

/// The index ddcp adds to a CRR's clock table (its name hides it among cr-sqlite's own).
fn seq_index(table: &str) -> String {
    format!("{table}__crsql_clock_ddcp_seq")
}

/// Offers the changes of group `db_version` after `after` (not authored by `except`), in
/// cursor order, to `visit` until it answers [`Visit::Stop`]; true if it did.
pub(super) fn visit_rest_of_group(
    conn: &Connection,
    db_version: DbVersion,
    after: &RowKey,
    except: SiteId,
    visit: &mut dyn FnMut(Change) -> Visit,
) -> Result<bool, DbError> {
    let tables = crr_tables(conn)?;
    let mut statements = Vec::with_capacity(tables.len());
    for table in &tables {
        // Made once per CRR, the first time one of its groups is cut (and again if cr-sqlite
        // rebuilt the clock table); a write, by the database's one writer.
        conn.execute_batch(&format!(
            "create index if not exists {} on {} (db_version, seq)",
            quoted(&seq_index(table)),
            quoted(&format!("{table}__crsql_clock"))
        ))?;
        statements.push(conn.prepare_cached(&group_query(conn, table)?)?);
    }
    let mut streams = Vec::with_capacity(statements.len());
    for statement in &mut statements {
        streams.push(statement.query(rusqlite::params![
            db_version.0,
            after.seq.0,
            &except.0[..]
        ])?);
    }
    // Each table's next change after `after`, merged by their keys.
    let mut heads: Vec<Option<(RowKey, Change)>> = Vec::with_capacity(streams.len());
    for stream in &mut streams {
        heads.push(next_after(stream, after)?);
    }
    loop {
        let Some(index) = (0..heads.len())
            .filter(|&index| heads[index].is_some())
            .min_by(|&a, &b| {
                let key = |index: usize| heads[index].as_ref().map(|(key, _)| key);
                key(a).cmp(&key(b))
            })
        else {
            return Ok(false);
        };
        let (_, change) = heads[index].take().expect("chosen among the present");
        if visit(change) == Visit::Stop {
            return Ok(true);
        }
        heads[index] = next_after(&mut streams[index], after)?;
    }
}

/// The stream's next change whose key is after `after` (the query starts at its seq).
fn next_after(
    stream: &mut rusqlite::Rows<'_>,
    after: &RowKey,
) -> Result<Option<(RowKey, Change)>, DbError> {
    while let Some(row) = stream.next()? {
        let change = change_from_row(row)?;
        let key = RowKey::of(&change);
        if key > *after {
            return Ok(Some((key, change)));
        }
    }
    Ok(None)
}

/// One table's changes of a group from a seq on, in group order, as `crsql_changes` gives
/// them (its columns, in [`super::changes::CHANGE_COLUMNS`] order): the packed key from the
/// key table, the value from the row (none for a sentinel or a deleted row), the causal
/// length from the sentinel. Parameters: db_version, seq, the site to leave out.
fn group_query(conn: &Connection, table: &str) -> Result<String, DbError> {
    let keys = table_keys(conn, table)?;
    let key_columns: Vec<String> = keys
        .key
        .iter()
        .map(|c| format!("p.{}", quoted(c)))
        .collect();
    let value = if keys.others.is_empty() {
        "null".to_string()
    } else {
        let cases: String = keys
            .others
            .iter()
            .map(|c| format!(" when {} then t.{}", text_literal(c), quoted(c)))
            .collect();
        format!("case c.col_name{cases} else null end")
    };
    let joined_row = keys
        .key
        .iter()
        .map(|c| format!("t.{0} = p.{0}", quoted(c)))
        .collect::<Vec<_>>()
        .join(" and ");
    let clock = quoted(&format!("{table}__crsql_clock"));
    Ok(format!(
        "select {name}, crsql_pack_columns({keys}) as pk, c.col_name, {value}, c.col_version,
                c.db_version, s.site_id,
                coalesce((select sentinel.col_version from {clock} sentinel
                          where sentinel.key = c.key and sentinel.col_name = '{SENTINEL_CID}'), 1),
                c.seq
         from {clock} c indexed by {index}
         join {pks} p on p.__crsql_key = c.key
         join crsql_site_id s on s.ordinal = c.site_id
         left join {row_table} t on {joined_row}
         where c.db_version = ?1 and c.seq >= ?2 and s.site_id != ?3
         order by c.seq, pk, c.col_name",
        name = text_literal(table),
        keys = key_columns.join(", "),
        index = quoted(&seq_index(table)),
        pks = quoted(&format!("{table}__crsql_pks")),
        row_table = quoted(table),
    ))
}

fn text_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;
    use crate::db::test_support::temp_db;

    fn start() -> RowKey {
        group_start()
    }

    /// The rest of the group as `crsql_changes` gives it: what the reader must equal.
    fn oracle(db: &Db, db_version: DbVersion, after: &RowKey, except: SiteId) -> Vec<Change> {
        let sql = format!(
            "select {} from crsql_changes
             where db_version = ?1 and site_id != ?2 and (seq, \"table\", pk, cid) > (?3, ?4, ?5, ?6)
             order by seq, \"table\", pk, cid",
            super::super::changes::CHANGE_COLUMNS
        );
        let mut statement = db.conn().prepare(&sql).unwrap();
        let mut rows = statement
            .query(rusqlite::params![
                db_version.0,
                &except.0[..],
                after.seq.0,
                after.table,
                after.pk,
                after.cid
            ])
            .unwrap();
        let mut changes = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            changes.push(change_from_row(row).unwrap());
        }
        changes
    }

    fn read(db: &Db, db_version: DbVersion, after: &RowKey, except: SiteId) -> Vec<Change> {
        let mut changes = Vec::new();
        visit_rest_of_group(db.conn(), db_version, after, except, &mut |change| {
            changes.push(change);
            Visit::Continue
        })
        .unwrap();
        changes
    }

    #[test]
    fn the_rest_of_a_group_is_what_crsql_changes_holds_in_the_same_order() {
        let (_a_dir, a) = temp_db();
        let (_b_dir, mut b) = temp_db();
        let schema = "
            create table items (id text primary key not null, name text, 'odd''name' blob);
            select crsql_as_crr('items');
            create table pairs (x integer not null, y text not null, primary key (x, y));
            select crsql_as_crr('pairs');
            create table notes (id integer primary key not null, body text);
            select crsql_as_crr('notes');";
        a.conn().execute_batch(schema).unwrap();
        b.conn().execute_batch(schema).unwrap();
        // Changes from another site, merged into b's big transaction with b's own: relayed
        // seqs collide with b's, so ties are broken by table, key and column.
        a.conn()
            .execute_batch(
                "insert into items values ('r1', 'relayed', x'01'), ('r2', null, null);
                 insert into pairs values (1, 'a'), (2, 'b');
                 delete from items where id = 'r2';",
            )
            .unwrap();
        let relayed = a.changes_since(DbVersion(0)).unwrap();
        let before = b.db_version().unwrap();
        b.conn().execute_batch("begin").unwrap();
        for i in 0..40 {
            b.conn()
                .execute_batch(&format!(
                    "insert into items values ('i{i:02}', 'n{i}', x'{i:02x}');
                     insert into notes values ({i}, 'note {i}');
                     insert into pairs values ({i}, 'p');"
                ))
                .unwrap();
        }
        b.conn()
            .execute_batch(
                "update items set name = 'changed' where id = 'i05';
                 delete from notes where id = 7;
                 delete from items where id = 'i09';",
            )
            .unwrap();
        b.conn().execute_batch("commit").unwrap();
        let group = b.db_version().unwrap();
        assert_eq!(group.0, before.0 + 1);
        let mut applier = b.begin_apply().unwrap();
        applier.apply(&relayed).unwrap();
        applier.commit().unwrap();

        assert!(oracle(&b, group, &start(), SiteId([0; 16])).len() > 100);
        // b's big group, and the groups the merge of a's changes made (cr-sqlite gives merged
        // changes versions of their own as it merges).
        for group in (before.0 + 1..=b.db_version().unwrap().0).map(DbVersion) {
            let all = oracle(&b, group, &start(), SiteId([0; 16]));
            // From every point of the group: the start, each change, past the end.
            let mut starts = vec![start()];
            starts.extend(all.iter().map(RowKey::of));
            for after in &starts {
                assert_eq!(
                    read(&b, group, after, SiteId([0; 16])),
                    oracle(&b, group, after, SiteId([0; 16])),
                    "after {after:?}"
                );
            }
            // Leaving out an author leaves out its changes.
            let author = a.site_id().unwrap();
            assert_eq!(
                read(&b, group, &start(), author),
                oracle(&b, group, &start(), author)
            );
        }
        // A visitor that stops is not offered more.
        let mut offered = 0;
        let stopped = visit_rest_of_group(b.conn(), group, &start(), SiteId([0; 16]), &mut |_| {
            offered += 1;
            if offered == 3 {
                Visit::Stop
            } else {
                Visit::Continue
            }
        })
        .unwrap();
        assert!(stopped);
        assert_eq!(offered, 3);
    }
}
