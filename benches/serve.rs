//! The serving side's page building against a raw read of the same changes, in one run.
//!
//! A big transaction is sent in parts, each built when the puller asks for it: the database
//! reads the part's changes, the page is encoded, compressed and cut into fragments. In
//! `benches/network.rs` a part of 11k changes took the serving side 42-76 ms, and the parts of
//! one transaction arrive no faster than they are built. The baseline is the least any server
//! must do: read the same changes out of cr-sqlite (`select ... from crsql_changes` over the
//! transaction's versions, every column, in one query). Then the parts of ddcp's building apart: its
//! own reading of the changes (the same rows, read from the clock tables in the group's order,
//! as a page reads them), then encoding, then compressing. Figures are printed, never asserted.
//! `cargo bench --bench serve` runs full size (20k rows, 60k changes, one transaction, as the
//! network bench writes); `cargo test --benches` runs a small smoke.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::baseline::raw_read;
use common::pages::first_version_page;

use ddcp::db::{Db, Extension};
use ddcp::sync::codec::encode_message;
use ddcp::sync::compress::Compression;
use ddcp::sync::cursor::Cursor;
use ddcp::sync::page::Visit;
use ddcp::sync::pull::{DEFAULT_PAGE_BYTES, Puller, Received};
use ddcp::sync::serve::{ChangeSource, Responder};
use ddcp::sync::{DbVersion, SiteId};

/// As benches/network.rs writes its big transaction.
const SCHEMA: &str = "
    create table bulk (id integer primary key not null, title text, body text, stars integer);
    select crsql_as_crr('bulk');";
const ROUNDS: usize = 3;

fn source(dir: &std::path::Path, rows: usize) -> Db {
    let db = Db::create(&dir.join("source.db"), &Extension::BuiltIn).unwrap();
    let conn = db.connection();
    conn.execute_batch(SCHEMA).unwrap();
    conn.execute_batch("begin").unwrap();
    for id in 0..rows as i64 {
        conn.execute(
            "insert into bulk (id, title, body, stars) values (?1, 'note ' || ?1, printf('%.60c', 'x') || ?1, ?1 % 5)",
            [id],
        )
        .unwrap();
    }
    conn.execute_batch("commit").unwrap();
    db
}

/// ddcp's serving of the whole transaction to a puller that asks for part after part (and
/// each part's fragments), as a serve answers them; the pages are not applied.
fn served(db: &Db) -> (Duration, usize, usize) {
    let mut responder = Responder::new(Compression::Zstd);
    let remote = db.site_id().unwrap();
    let fingerprint = db.schema().unwrap().fingerprint();
    let mut puller = Puller::new(
        SiteId([7; 16]),
        remote,
        fingerprint,
        Cursor::START,
        DEFAULT_PAGE_BYTES,
    );
    let (mut building, mut pages, mut changes) = (Duration::ZERO, 0, 0);
    while !puller.is_up_to_date() {
        for request in puller.requests() {
            let started = Instant::now();
            let answer = responder.respond(db, &request);
            building += started.elapsed();
            if let Received::Page(page) = puller.receive(&answer).unwrap() {
                pages += 1;
                changes += page.changes.len();
            }
        }
    }
    (building, pages, changes)
}

/// ddcp's parts apart, over the same changes: its reading, then encoding without and with
/// compression, in pages of the size served.
fn parts(db: &Db, pages: usize) -> (Duration, Duration, Duration) {
    let started = Instant::now();
    let mut changes = Vec::new();
    db.visit_changes(&Cursor::START, SiteId([7; 16]), &mut |change| {
        changes.push(change);
        Visit::Continue
    })
    .unwrap();
    let reading = started.elapsed();
    let size = changes.len().div_ceil(pages.max(1));
    let timed = |compression| {
        let started = Instant::now();
        for part in changes.chunks(size) {
            std::hint::black_box(encode_message(&first_version_page(part), compression));
        }
        started.elapsed()
    };
    let encoding = timed(Compression::None);
    let compressed = timed(Compression::Zstd);
    (reading, encoding, compressed)
}

fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    let rows = if full { 20_000 } else { 1_000 };
    let dir = tempfile::tempdir().unwrap();
    let db = source(dir.path(), rows);
    let best = |mut each: Box<dyn FnMut() -> Duration>| (0..ROUNDS).map(|_| each()).min().unwrap();

    let (_, changes) = raw_read(&db, DbVersion(0), DbVersion(1));
    let raw = best(Box::new(|| raw_read(&db, DbVersion(0), DbVersion(1)).0));
    let (_, pages, served_changes) = served(&db);
    assert_eq!(served_changes, changes, "every change served once");
    let building = best(Box::new(|| served(&db).0));
    let mut split = Vec::new();
    for _ in 0..ROUNDS {
        split.push(parts(&db, pages));
    }
    let reading = split.iter().map(|p| p.0).min().unwrap();
    let encoding = split.iter().map(|p| p.1).min().unwrap();
    let compressed = split.iter().map(|p| p.2).min().unwrap();

    let rate = |took: Duration| changes as f64 / took.as_secs_f64();
    let ms = |took: Duration| took.as_secs_f64() * 1e3;
    println!(
        "serve bench ({}): one transaction of {rows} rows, {changes} changes, served in {pages} parts (best of {ROUNDS})",
        if full { "full" } else { "smoke" }
    );
    println!(
        "  raw read out of crsql_changes (baseline): {:.1} ms, {:.0} changes/s",
        ms(raw),
        rate(raw)
    );
    println!(
        "  ddcp serving every part: {:.1} ms, {:.0} changes/s, {:.1} ms a part; x{:.2} the raw read",
        ms(building),
        rate(building),
        ms(building) / pages as f64,
        building.as_secs_f64() / raw.as_secs_f64()
    );
    println!(
        "  its parts apart: reading {:.1} ms (x{:.2} raw), encoding {:.1} ms, encoding and compressing {:.1} ms",
        ms(reading),
        reading.as_secs_f64() / raw.as_secs_f64(),
        ms(encoding),
        ms(compressed)
    );
}
