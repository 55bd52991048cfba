//! What adding a column costs on a big CRR (issue 23, item 3): `ddcp migrate`'s ALTER TABLE ...
//! ADD COLUMN, inside cr-sqlite's `crsql_begin_alter`/`crsql_commit_alter`, against the plain
//! SQLite ALTER of a table of the same rows that is no CRR, measured in the same run. SQLite
//! adds a column without touching the rows; cr-sqlite 0.16.3 rebuilds the table's triggers and
//! compacts (and may backfill) its clock table. Also how many clock rows the table has before
//! and after. Figures are printed, never asserted. `cargo bench --bench alter` runs 1,000,000
//! rows; `cargo test --benches` runs a small smoke.

use std::time::{Duration, Instant};

use ddcp::db::{Db, Extension};

fn fill(db: &Db, table: &str, rows: usize) {
    db.connection()
        .execute_batch(&format!(
            "begin;
             with recursive n(i) as (select 1 union all select i + 1 from n where i < {rows})
             insert into {table} select i, 'item ' || i, i % 97 from n;
             commit;"
        ))
        .unwrap();
}

fn count(db: &Db, sql: &str) -> i64 {
    db.connection()
        .query_row(sql, [], |row| row.get(0))
        .unwrap()
}

fn timed(work: impl FnOnce()) -> Duration {
    let started = Instant::now();
    work();
    started.elapsed()
}

fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    let rows = if full { 1_000_000 } else { 10_000 };
    let dir = tempfile::tempdir().unwrap();
    let mut db = Db::create(&dir.path().join("alter.db"), &Extension::BuiltIn).unwrap();
    db.connection()
        .execute_batch(
            "create table plain (id integer primary key not null, name text, n integer);
             create table items (id integer primary key not null, name text, n integer);
             select crsql_as_crr('items');",
        )
        .unwrap();
    fill(&db, "plain", rows);
    let filled = timed(|| fill(&db, "items", rows));
    let clock = "select count(*) from items__crsql_clock";
    let clock_before = count(&db, clock);
    println!(
        "alter: ADD COLUMN on a table of {rows} rows (filling the CRR took {:.1} s)",
        filled.as_secs_f64()
    );
    let baseline = timed(|| {
        db.connection()
            .execute_batch("alter table plain add column tag text")
            .unwrap()
    });
    println!(
        "  plain SQLite ALTER (baseline):          {:>9.1} ms",
        baseline.as_secs_f64() * 1e3
    );
    let migrated = timed(|| {
        db.migrate("alter table items add column tag text", false)
            .unwrap();
    });
    println!(
        "  ddcp migrate on the CRR (cr-sqlite's):  {:>9.1} ms, {:.0}x the baseline; clock rows {clock_before} before, {} after",
        migrated.as_secs_f64() * 1e3,
        migrated.as_secs_f64() / baseline.as_secs_f64().max(1e-9),
        count(&db, clock)
    );
    // A write to the new column replicates (the triggers know it).
    db.connection()
        .execute_batch("update items set tag = 'x' where id = 1")
        .unwrap();
    assert_eq!(
        count(&db, "select count(*) from crsql_changes where cid = 'tag'"),
        1
    );
}
