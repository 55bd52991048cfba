//! The baselines the benchmarks measure DDCP against: cr-sqlite's own merge, and its own read
//! of the changes a server sends.

use std::time::{Duration, Instant};

use ddcp::db::Db;
use ddcp::sync::{Change, DbVersion, Value};

/// cr-sqlite's read of `db`'s changes after `since` up to and including `until`, every column,
/// in one query: the least any server does to send them. The time of the read, and how many it
/// read.
pub fn raw_read(db: &Db, since: DbVersion, until: DbVersion) -> (Duration, usize) {
    let started = Instant::now();
    let mut statement = db
        .connection()
        .prepare(
            "select \"table\", pk, cid, val, col_version, db_version, site_id, cl, seq
             from crsql_changes where db_version > ?1 and db_version <= ?2
             order by db_version, seq",
        )
        .unwrap();
    let mut rows = statement.query([since.0, until.0]).unwrap();
    let mut count = 0;
    while let Some(row) = rows.next().unwrap() {
        for column in 0..9 {
            std::hint::black_box(row.get_ref(column).unwrap());
        }
        count += 1;
    }
    (started.elapsed(), count)
}

/// cr-sqlite merging `changes` into `db` (a fresh database with their tables): `insert into
/// crsql_changes` in one transaction, each value bound as it is. The time of the merge alone.
pub fn raw_merge(db: &Db, changes: &[Change]) -> Duration {
    let conn = db.connection();
    let started = Instant::now();
    conn.execute_batch("begin").unwrap();
    {
        let mut insert = conn
            .prepare(
                "insert into crsql_changes
                 (\"table\", pk, cid, val, col_version, db_version, site_id, cl, seq)
                 values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .unwrap();
        for change in changes {
            insert
                .execute(rusqlite::params![
                    change.table,
                    change.pk,
                    change.cid,
                    sql_value(&change.val),
                    change.col_version,
                    change.db_version.0,
                    change.site_id.0.to_vec(),
                    change.cl,
                    change.seq.0,
                ])
                .unwrap();
        }
    }
    conn.execute_batch("commit").unwrap();
    started.elapsed()
}

fn sql_value(value: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as Sql;
    match value {
        Value::Null => Sql::Null,
        Value::Integer(x) => Sql::Integer(*x),
        Value::Real(x) => Sql::Real(*x),
        Value::Text(x) => Sql::Text(x.clone()),
        Value::Blob(x) | Value::RawText(x) => Sql::Blob(x.clone()),
    }
}
