//! The baseline the benchmarks measure DDCP against: cr-sqlite's own merge.

use std::time::{Duration, Instant};

use ddcp::db::Db;
use ddcp::sync::{Change, Value};

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
