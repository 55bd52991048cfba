//! What adding a column costs on a big CRR (issue 23, item 3), against the plain SQLite ALTER
//! of a table of the same rows that is no CRR, measured in the same run: cr-sqlite 0.16.3's
//! usual `crsql_begin_alter`/`crsql_commit_alter`, which compacts and backfills the clock table
//! (reading the whole table several times), and `ddcp migrate`, which takes the fast path of
//! patches/crsqlite-0.16.3-fast-add-column.patch (triggers rebuilt, nothing read). Also how many
//! clock rows each table has before and after: the same. Figures are printed, never asserted.
//! `cargo bench --bench alter` runs 1,000,000 rows; `cargo test --benches` runs a small smoke.

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
             create table usual (id integer primary key not null, name text, n integer);
             create table items (id integer primary key not null, name text, n integer);
             select crsql_as_crr('usual');
             select crsql_as_crr('items');",
        )
        .unwrap();
    fill(&db, "plain", rows);
    fill(&db, "usual", rows);
    let filled = timed(|| fill(&db, "items", rows));
    let clock =
        |db: &Db, table: &str| count(db, &format!("select count(*) from {table}__crsql_clock"));
    let clock_before = clock(&db, "items");
    println!(
        "alter: ADD COLUMN on a table of {rows} rows (filling a CRR took {:.1} s)",
        filled.as_secs_f64()
    );
    let baseline = timed(|| {
        db.connection()
            .execute_batch("alter table plain add column tag text")
            .unwrap()
    });
    println!(
        "  plain SQLite ALTER (baseline):            {:>9.1} ms",
        baseline.as_secs_f64() * 1e3
    );
    let usual = timed(|| {
        db.connection()
            .execute_batch(
                "select crsql_begin_alter('usual');
                 alter table usual add column tag text;
                 select crsql_commit_alter('usual');",
            )
            .unwrap()
    });
    println!(
        "  cr-sqlite's usual commit_alter:           {:>9.1} ms, {:.0}x the baseline; clock rows {clock_before} before, {} after",
        usual.as_secs_f64() * 1e3,
        usual.as_secs_f64() / baseline.as_secs_f64().max(1e-9),
        clock(&db, "usual")
    );
    let migrated = timed(|| {
        db.migrate("alter table items add column tag text", false)
            .unwrap();
    });
    println!(
        "  ddcp migrate (the fast path):             {:>9.1} ms, {:.1}x the baseline, {:.4} of the usual; clock rows {clock_before} before, {} after",
        migrated.as_secs_f64() * 1e3,
        migrated.as_secs_f64() / baseline.as_secs_f64().max(1e-9),
        migrated.as_secs_f64() / usual.as_secs_f64().max(1e-9),
        clock(&db, "items")
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
