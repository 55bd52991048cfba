//! Apply rate of ddcp's apply path against raw `insert into crsql_changes`.
//!
//! Both sides merge the same 100k changes into a fresh database in one transaction: ddcp
//! through `Db::apply_changes` (its `Change` values bound to a cached statement), the baseline
//! through a hand-written prepared insert over pre-built SQLite values. Figures are printed,
//! never asserted. `cargo bench` runs the full size; `cargo test --benches` runs a small smoke.

use std::time::{Duration, Instant};

use ddcp::db::{Db, Extension};
use ddcp::sync::{Change, DbVersion};
use rusqlite::types::Value as SqlValue;

const SCHEMA: &str = "
    create table readings (id text primary key not null, sensor text, value real, raw blob, note text);
    select crsql_as_crr('readings');";
/// Four non-key columns: one change per column of each inserted row.
const COLUMNS_PER_ROW: usize = 4;
const ROUNDS: usize = 3;

fn source_changes(dir: &std::path::Path, changes: usize) -> Vec<Change> {
    let db = Db::create(&dir.join("source.db"), &Extension::BuiltIn).unwrap();
    let conn = db.connection();
    conn.execute_batch(SCHEMA).unwrap();
    conn.execute_batch("begin").unwrap();
    {
        let mut insert = conn
            .prepare("insert into readings values (?1, ?2, ?3, ?4, ?5)")
            .unwrap();
        for row in 0..changes / COLUMNS_PER_ROW {
            insert
                .execute((
                    format!("reading-{row:08}-{:016x}", row.wrapping_mul(0x9e37_79b9)),
                    format!("sensor-{}", row % 17),
                    row as f64 * 0.25,
                    vec![(row % 251) as u8; 24],
                    (row % 3 == 0).then(|| format!("note {row}; calibrated")),
                ))
                .unwrap();
        }
    }
    conn.execute_batch("commit").unwrap();
    db.changes_since(DbVersion(0)).unwrap()
}

fn fresh_target(dir: &std::path::Path, name: &str) -> Db {
    let path = dir.join(name);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let db = Db::create(&path, &Extension::BuiltIn).unwrap();
    db.connection().execute_batch(SCHEMA).unwrap();
    db
}

fn ddcp_apply(dir: &std::path::Path, changes: &[Change]) -> Duration {
    let mut db = fresh_target(dir, "ddcp.db");
    let started = Instant::now();
    let outcome = db.apply_changes(changes).unwrap();
    let elapsed = started.elapsed();
    assert_eq!(outcome.offered as usize, changes.len());
    elapsed
}

/// The same rows as plain SQLite values, built before the clock starts.
fn raw_rows(changes: &[Change]) -> Vec<[SqlValue; 9]> {
    changes
        .iter()
        .map(|c| {
            let val = match &c.val {
                ddcp::sync::Value::Null => SqlValue::Null,
                ddcp::sync::Value::Integer(x) => SqlValue::Integer(*x),
                ddcp::sync::Value::Real(x) => SqlValue::Real(*x),
                ddcp::sync::Value::Text(x) => SqlValue::Text(x.clone()),
                ddcp::sync::Value::Blob(x) => SqlValue::Blob(x.clone()),
                // The bench data holds only valid UTF-8 text.
                ddcp::sync::Value::RawText(_) => unreachable!("no raw text in the bench data"),
            };
            [
                SqlValue::Text(c.table.clone()),
                SqlValue::Blob(c.pk.clone()),
                SqlValue::Text(c.cid.clone()),
                val,
                SqlValue::Integer(c.col_version),
                SqlValue::Integer(c.db_version.0),
                SqlValue::Blob(c.site_id.0.to_vec()),
                SqlValue::Integer(c.cl),
                SqlValue::Integer(c.seq.0),
            ]
        })
        .collect()
}

fn raw_insert(dir: &std::path::Path, rows: &[[SqlValue; 9]]) -> Duration {
    let db = fresh_target(dir, "raw.db");
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
        for row in rows {
            insert
                .execute(rusqlite::params_from_iter(row.iter()))
                .unwrap();
        }
    }
    conn.execute_batch("commit").unwrap();
    started.elapsed()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    let count = if full { 100_000 } else { 2_000 };
    let dir = tempfile::tempdir().unwrap();
    let changes = source_changes(dir.path(), count);
    let rows = raw_rows(&changes);
    let mut ddcp_times = Vec::new();
    let mut raw_times = Vec::new();
    // Interleaved, and each side first in turn, so that both see the same load and caches.
    for round in 0..ROUNDS {
        if round % 2 == 0 {
            raw_times.push(raw_insert(dir.path(), &rows));
            ddcp_times.push(ddcp_apply(dir.path(), &changes));
        } else {
            ddcp_times.push(ddcp_apply(dir.path(), &changes));
            raw_times.push(raw_insert(dir.path(), &rows));
        }
    }
    let rate = |elapsed: Duration| changes.len() as f64 / elapsed.as_secs_f64();
    let ddcp = rate(median(ddcp_times));
    let raw = rate(median(raw_times));
    println!(
        "apply of {} changes, one transaction, median of {ROUNDS}:",
        changes.len()
    );
    println!("  raw insert into crsql_changes  {raw:>12.0} changes/s");
    println!("  ddcp apply_changes             {ddcp:>12.0} changes/s");
    println!(
        "  ratio ddcp/raw                 {:>12.2}  (target >= 0.9)",
        ddcp / raw
    );
}
