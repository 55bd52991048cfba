//! What a filter costs the answering side, measured in one run against the same source served
//! without one: every page of a full pull from the start is built (and encoded) through the
//! filter, and the time is compared with the unfiltered pull of the same database. A filter
//! reads every change either way (it decides per change), so the ratio is the filter's own
//! cost. Goal (issue #11): a table or column filter within 10%, a `--where` filter within 2x.
//! Also the incremental pull after owners change, where rows are revealed whole. Figures are
//! printed, never asserted. `cargo bench --bench filters` runs full size; `cargo test
//! --benches` runs a small smoke.

use std::time::{Duration, Instant};

use ddcp::commands::filter_args::FilterFlags;
use ddcp::db::{Db, Extension};
use ddcp::sync::filter::ChangeFilter;
use ddcp::sync::pull::{DEFAULT_PAGE_BYTES, Puller, Received};
use ddcp::sync::serve::{MAX_PAGE_BUDGET, Responder};
use ddcp::sync::{Cursor, SiteId};

const SCHEMA: &str = "
    create table posts (id integer primary key not null, owner text, body text, secret text);
    select crsql_as_crr('posts');
    create table tags (id integer primary key not null, name text);
    select crsql_as_crr('tags');";

fn source(dir: &std::path::Path, rows: usize) -> Db {
    let db = Db::create(&dir.join("source.db"), &Extension::BuiltIn).unwrap();
    db.connection().execute_batch(SCHEMA).unwrap();
    db.connection()
        .execute_batch(&format!(
            "with recursive n(i) as (select 1 union all select i + 1 from n where i < {rows})
             insert into posts select i, 'user' || (i % 10), 'a post of some length, ' || i,
               'secret ' || i from n;
             with recursive n(i) as (select 1 union all select i + 1 from n where i < {rows})
             insert into tags select i, 'tag ' || (i % 50) from n;"
        ))
        .unwrap();
    db
}

/// Serves a pull from `since` through `filter` to the end; the time, pages and changes sent.
fn serve_all(db: &Db, since: Cursor, filter: &ChangeFilter) -> (Duration, u64, u64) {
    let mut responder = Responder::default();
    let remote = db.site_id().unwrap();
    let fingerprint = db.shared_schema().unwrap().fingerprint();
    let mut puller = Puller::new(
        SiteId([9; 16]),
        remote,
        fingerprint,
        since,
        DEFAULT_PAGE_BYTES,
    );
    let (mut pages, mut changes) = (0, 0);
    let started = Instant::now();
    while !puller.is_up_to_date() {
        for request in puller.requests() {
            let answer = responder.respond_within(db, &request, MAX_PAGE_BUDGET, filter);
            if let Received::Page(page) = puller.receive(&answer).unwrap() {
                pages += 1;
                changes += (page.changes.len() + page.rows.len()) as u64;
            }
        }
    }
    (started.elapsed(), pages, changes)
}

fn filter(flags: FilterFlags<'_>) -> ChangeFilter {
    flags.applied_to(&ChangeFilter::default()).unwrap()
}

fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    let rows = if full { 20_000 } else { 500 };
    let dir = tempfile::tempdir().unwrap();
    let db = source(dir.path(), rows);
    let total = db.changes_since(ddcp::sync::DbVersion(0)).unwrap().len();
    println!("filters: a full pull of {rows} posts and {rows} tags ({total} changes), served");
    // Warm SQLite's cache, then the baseline.
    serve_all(&db, Cursor::START, &ChangeFilter::default());
    let (baseline, _, sent) = serve_all(&db, Cursor::START, &ChangeFilter::default());
    let rate = |time: Duration| total as f64 / time.as_secs_f64();
    println!(
        "  no filter (baseline):       {:>8.1} ms, {sent:>7} changes sent, {:>9.0} changes read/s",
        baseline.as_secs_f64() * 1e3,
        rate(baseline)
    );
    let cases = [
        (
            "--tables posts",
            filter(FilterFlags {
                tables: Some("posts"),
                ..FilterFlags::default()
            }),
        ),
        (
            "--exclude-columns p.secret",
            filter(FilterFlags {
                exclude_columns: Some("posts.secret"),
                ..FilterFlags::default()
            }),
        ),
        (
            "--where owner = 'user1'",
            filter(FilterFlags {
                tables: Some("posts"),
                rows: Some("owner = 'user1'"),
                ..FilterFlags::default()
            }),
        ),
    ];
    for (name, filter) in &cases {
        let (time, _, sent) = serve_all(&db, Cursor::START, filter);
        println!(
            "  {name:<27} {:>8.1} ms, {sent:>7} changes sent, {:>9.0} changes read/s, time {:.2}x the baseline's",
            time.as_secs_f64() * 1e3,
            rate(time),
            time.as_secs_f64() / baseline.as_secs_f64()
        );
    }
    // Owners change after a reader caught up: the rows that start to match arrive whole.
    let caught_up = Cursor::after_group(db.db_version().unwrap());
    db.connection()
        .execute_batch(&format!(
            "update posts set owner = 'user1' where id % 10 = 2 and id <= {}",
            rows / 5
        ))
        .unwrap();
    let (_, where_filter) = &cases[2];
    let (plain, _, plain_sent) = serve_all(&db, caught_up.clone(), &ChangeFilter::default());
    let (revealing, _, revealed_sent) = serve_all(&db, caught_up, where_filter);
    // A revealed row is sent whole (every cell, not the one changed): per change sent is the
    // fair comparison, the time for the same changes read is the other.
    let per_sent = |time: Duration, sent: u64| time.as_secs_f64() / sent.max(1) as f64;
    println!(
        "  after {} owner changes: no filter {:.1} ms ({plain_sent} changes sent); --where {:.1} ms ({revealed_sent} changes sent: the rows whole), time {:.2}x, per change sent {:.2}x",
        rows / 50,
        plain.as_secs_f64() * 1e3,
        revealing.as_secs_f64() * 1e3,
        revealing.as_secs_f64() / plain.as_secs_f64(),
        per_sent(revealing, revealed_sent) / per_sent(plain, plain_sent)
    );
}
