//! The sync protocol's costs, measured in one run: codec throughput and bytes on the wire
//! against the raw changeset bytes (with and without compression). Large changesets and peak
//! memory: benches/large.rs. Figures are printed, never asserted. `cargo bench` runs full
//! size; `cargo test --benches` runs a small smoke.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::Instant;

use common::noise::Noise;
use common::pages::first_version_page;
use ddcp::db::{Db, Extension};
use ddcp::sync::codec::{decode_message, encode_changeset, encode_message};
use ddcp::sync::compress::Compression;
use ddcp::sync::pull::{DEFAULT_PAGE_BYTES, Puller, Received};
use ddcp::sync::serve::Responder;
use ddcp::sync::{Change, DbVersion};

const SCHEMA: &str = "
    create table bookmarks (id text primary key not null, url text, title text, notes text,
                            tags text, created_at integer, payload blob);
    select crsql_as_crr('bookmarks');";

const WORDS: &[&str] = &[
    "local",
    "first",
    "sync",
    "replication",
    "sqlite",
    "crdt",
    "peer",
    "network",
    "veilid",
    "private",
    "database",
    "schema",
    "merge",
    "conflict",
    "offline",
    "tutorial",
    "release",
    "notes",
    "design",
    "storage",
    "rust",
    "async",
    "actor",
    "protocol",
    "bundle",
    "change",
];

/// Bookmarks as people keep them: URLs, titles and notes in words, tags, timestamps.
fn realistic_db(path: &Path, rows: usize) -> Db {
    let db = Db::create(path, &Extension::BuiltIn).unwrap();
    let conn = db.connection();
    conn.execute_batch(SCHEMA).unwrap();
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    conn.execute_batch("begin").unwrap();
    for row in 0..rows {
        let host = WORDS[(noise.next() % WORDS.len() as u64) as usize];
        conn.execute(
            "insert into bookmarks (id, url, title, notes, tags, created_at) values (?1, ?2, ?3, ?4, ?5, ?6)",
            (
                format!("01HF{:022X}", noise.next() as u128 * 31 + row as u128),
                format!("https://{host}.example.org/{}/{}", noise.words(WORDS, 2).replace(' ', "-"), row),
                noise.words(WORDS, 5),
                noise.words(WORDS, 18),
                noise.words(WORDS, 3).replace(' ', ","),
                1_700_000_000 + (noise.next() % 50_000_000) as i64,
            ),
        )
        .unwrap();
        if row % 500 == 499 {
            conn.execute_batch("commit; begin").unwrap();
        }
    }
    conn.execute_batch("commit").unwrap();
    db
}

fn codec_throughput(changes: &[Change]) {
    let raw_bytes: usize = changes.iter().map(Change::size).sum();
    let pages: Vec<&[Change]> = changes.chunks(2000).collect();
    for compression in [Compression::None, Compression::Zstd] {
        let started = Instant::now();
        let encoded: Vec<Vec<u8>> = pages
            .iter()
            .map(|p| encode_message(&first_version_page(p), compression))
            .collect();
        let encode_secs = started.elapsed().as_secs_f64();
        let started = Instant::now();
        for bytes in &encoded {
            decode_message(bytes).unwrap();
        }
        let decode_secs = started.elapsed().as_secs_f64();
        let mib = raw_bytes as f64 / (1 << 20) as f64;
        println!(
            "  codec {compression:?}: encode {:>7.1} MiB/s, decode {:>7.1} MiB/s (of change data)",
            mib / encode_secs,
            mib / decode_secs
        );
    }
}

/// Moves every change of `source` into `target` through the protocol; returns bytes on the wire.
fn exchange(source: &Db, target: &mut Db, compression: Compression) -> usize {
    let mut responder = Responder::new(compression);
    let remote = source.site_id().unwrap();
    let fingerprint = target.schema().unwrap().fingerprint();
    let cursor = target.cursor(remote).unwrap();
    let mut puller = Puller::new(
        target.site_id().unwrap(),
        remote,
        fingerprint,
        cursor,
        DEFAULT_PAGE_BYTES,
    );
    let mut wire = 0;
    while !puller.is_up_to_date() {
        for request in puller.requests() {
            let answer = responder.respond(source, &request);
            wire += request.len() + answer.len();
            if let Received::Page(page) = puller.receive(&answer).unwrap() {
                target
                    .accept_page(remote, *page, &ddcp::db::AcceptPolicy::default())
                    .unwrap();
            }
        }
    }
    wire
}

fn wire_ratio(dir: &Path, source: &Db, changes: &[Change]) {
    let raw = encode_changeset(changes).len();
    println!(
        "  raw changeset (capnp, uncompressed): {:.2} MiB",
        raw as f64 / (1 << 20) as f64
    );
    let mut baseline = None;
    for (index, compression) in [Compression::None, Compression::Zstd]
        .into_iter()
        .enumerate()
    {
        let mut target =
            Db::create(&dir.join(format!("wire-{index}.db")), &Extension::BuiltIn).unwrap();
        target.connection().execute_batch(SCHEMA).unwrap();
        let started = Instant::now();
        let wire = exchange(source, &mut target, compression);
        let secs = started.elapsed().as_secs_f64();
        let baseline_secs = *baseline.get_or_insert(secs);
        println!(
            "  exchange {compression:?}: wire/raw {:.2} (target <= 0.7 with compression), {:.0} changes/s, time x{:.2} of uncompressed",
            wire as f64 / raw as f64,
            changes.len() as f64 / secs,
            secs / baseline_secs
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|arg| arg == "--bench");
    let rows = if full { 20_000 } else { 1_000 };
    let dir = tempfile::tempdir().unwrap();
    let source = realistic_db(&dir.path().join("source.db"), rows);
    let changes = source.changes_since(DbVersion(0)).unwrap();
    println!(
        "protocol: {} realistic rows, {} changes",
        rows,
        changes.len()
    );
    codec_throughput(&changes);
    wire_ratio(dir.path(), &source, &changes);
}
