//! Large changesets through the in-memory exchange (the responder and puller a serve and a pull
//! use, pages compressed, applied by `accept_page`), measured in one run against cr-sqlite's
//! own merge of the same changes: 50, 100 and 200 MiB of rows (1 KiB of incompressible payload
//! each), written in one transaction and in 1,000 transactions. Each exchange and each merge
//! runs in a fresh process, so that its peak RSS is its own. Prints the time, the rate, the
//! ratio to the merge (target >= 0.5), the peak RSS (target < 100 MiB, for 1 GiB too) and how
//! the time grows with the size (target: each doubling <= 2.2x), each the fastest of two tries
//! (the peak RSS the highest of them). Figures are printed, never asserted.
//! `cargo bench --bench large` runs full size; `cargo bench --bench large -- --sizes 1024`
//! the sizes given (MiB, comma-separated; 1 GiB is the memory goal's case, about 9 minutes
//! and 5 GB of disk); `cargo test --benches` a small smoke;
//! `--write-source PATH MIB TRANSACTIONS`, then `--exchange PATH TARGET` or `--merge PATH
//! TARGET`, one case by hand.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;
use std::time::Instant;

use common::noise::Noise;
use ddcp::db::{AcceptPolicy, Db, Extension};
use ddcp::sync::compress::Compression;
use ddcp::sync::protocol::ChangesPage;
use ddcp::sync::pull::{DEFAULT_PAGE_BYTES, Puller, Received};
use ddcp::sync::serve::Responder;
use ddcp::sync::{Change, DbVersion};

const SCHEMA: &str = "
    create table blobs (id text primary key not null, title text, payload blob);
    select crsql_as_crr('blobs');";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.as_slice() {
        [_, flag, source, target] if flag == "--exchange" => return child_exchange(source, target),
        [_, flag, source, target] if flag == "--merge" => return child_merge(source, target),
        // One case's source, to run `--exchange` or `--merge` on by hand (under `perf`).
        [_, flag, path, mib, transactions] if flag == "--write-source" => {
            let number = |arg: &str| arg.parse().expect("--write-source PATH MIB TRANSACTIONS");
            return write_source(Path::new(path), number(mib), number(transactions));
        }
        _ => {}
    }
    let full = args.iter().any(|arg| arg == "--bench");
    // `cargo bench --bench large -- --sizes 1024`: the memory goal's case (1 GiB), by hand.
    let asked: Option<Vec<usize>> = args.iter().position(|arg| arg == "--sizes").map(|at| {
        let list = args.get(at + 1).expect("--sizes MIB[,MIB...]");
        list.split(',')
            .map(|mib| mib.parse().expect("--sizes takes MiB, comma-separated"))
            .collect()
    });
    let sizes: &[usize] = match &asked {
        Some(sizes) => sizes,
        None if full => &[50, 100, 200],
        None => &[1, 2, 4],
    };
    println!(
        "large changesets ({}): {sizes:?} MiB, in one transaction and in 1,000",
        if full { "full" } else { "smoke" }
    );
    let dir = tempfile::tempdir().unwrap();
    for transactions in [1, 1000] {
        let mut previous: Option<f64> = None;
        for &mib in sizes {
            let source = dir.path().join(format!("source-{mib}-{transactions}.db"));
            write_source(&source, mib, transactions);
            let exchange = best_of(TRIES, || {
                run_child("--exchange", &source, &dir.path().join("exchanged.db"))
            });
            let merge = best_of(TRIES, || {
                run_child("--merge", &source, &dir.path().join("merged.db"))
            });
            let growth = previous.map_or(String::new(), |before| {
                format!(
                    ", x{:.2} the time of half the size (target <= 2.2)",
                    exchange.secs / before
                )
            });
            previous = Some(exchange.secs);
            let [serving, receiving, waiting, staging, applying] =
                exchange.phases.expect("an exchange's phases");
            println!(
                "  {mib} MiB in {transactions} transaction(s): {} changes, exchange {:.2} s ({:.1} MiB/s, peak RSS {:.0} MiB, target < 100; each on its own thread: serving {serving:.2} s, receiving {receiving:.2} s, the database staging parts {staging:.2} s, applying {applying:.2} s, waiting for pages {waiting:.2} s), cr-sqlite merge {:.2} s; ratio {:.2} (target >= 0.5){growth}",
                exchange.changes,
                exchange.secs,
                mib as f64 / exchange.secs,
                exchange.peak_rss_kib as f64 / 1024.0,
                merge.secs,
                merge.secs / exchange.secs,
            );
            std::fs::remove_file(&source).unwrap();
        }
    }
}

/// Tries of each exchange and each merge, the fastest kept: this machine's times vary by
/// 15-30% from one try to the next, the merge's as much as the exchange's, which made the
/// growth per doubling of one try a figure of the noise.
const TRIES: usize = 2;

/// The fastest of `tries` runs of `run`, with the highest peak RSS of them all (memory is
/// judged by its worst try, time by its best).
fn best_of(tries: usize, mut run: impl FnMut() -> Measured) -> Measured {
    let runs: Vec<Measured> = (0..tries).map(|_| run()).collect();
    let peak_rss_kib = runs.iter().map(|run| run.peak_rss_kib).max().unwrap();
    let fastest = runs
        .into_iter()
        .min_by(|a, b| a.secs.total_cmp(&b.secs))
        .unwrap();
    Measured {
        peak_rss_kib,
        ..fastest
    }
}

/// `mib` MiB of rows, 1 KiB of incompressible payload each, in `transactions` transactions.
fn write_source(path: &Path, mib: usize, transactions: usize) {
    let db = Db::create(path, &Extension::BuiltIn).unwrap();
    let conn = db.connection();
    conn.execute_batch(SCHEMA).unwrap();
    let rows = mib * 1024;
    let per_transaction = rows.div_ceil(transactions);
    let mut noise = Noise(7);
    let mut insert = conn
        .prepare("insert into blobs (id, title, payload) values (?1, ?2, ?3)")
        .unwrap();
    conn.execute_batch("begin").unwrap();
    for row in 0..rows {
        let payload: Vec<u8> = (0..128).flat_map(|_| noise.next().to_le_bytes()).collect();
        insert
            .execute((format!("row-{row:09}"), format!("title {row}"), payload))
            .unwrap();
        if row % per_transaction == per_transaction - 1 {
            conn.execute_batch("commit; begin").unwrap();
        }
    }
    conn.execute_batch("commit").unwrap();
    drop(insert);
    db.close().unwrap();
}

/// What a child process measured.
struct Measured {
    secs: f64,
    peak_rss_kib: u64,
    changes: u64,
    /// The exchange's time serving pages and receiving them (each on its own thread), and the
    /// database's time waiting for pages, staging parts of a cut transaction, and applying
    /// whole ones (a cut one's last part applies all of its parts).
    phases: Option<[f64; 5]>,
}

fn run_child(mode: &str, source: &Path, target: &Path) -> Measured {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", target.display()));
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args([mode, source.to_str().unwrap(), target.to_str().unwrap()])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let maybe = |name: &str| -> Option<f64> {
        report
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(name))
            .and_then(|v| v.parse().ok())
    };
    let field = |name: &str| maybe(name).unwrap_or_else(|| panic!("no {name} in {report}"));
    Measured {
        secs: field("secs="),
        peak_rss_kib: field("peak_rss_kib=") as u64,
        changes: field("changes=") as u64,
        phases: maybe("serving=").map(|serving| {
            [
                serving,
                field("receiving="),
                field("waiting="),
                field("staging="),
                field("applying="),
            ]
        }),
    }
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn fresh_target(path: &str) -> Db {
    let db = Db::create(Path::new(path), &Extension::BuiltIn).unwrap();
    db.connection().execute_batch(SCHEMA).unwrap();
    db
}

/// In a fresh process: the exchange, page by page, as a serve and a pull do it, each side on
/// threads of its own: the serving side (in life, a process on another peer), the puller
/// (fetching and receiving the next page: reassembling, decompressing, decoding) and the
/// database (accepting pages: staging the parts of a cut transaction, applying whole ones),
/// which takes a page while the puller fetches the next, as `ddcp serve` and `ddcp pull` do
/// (src/actors/pulling.rs). The clock stops when the database took the last page.
fn child_exchange(source_path: &str, target_path: &str) {
    // As the ddcp binary does, so that the peak is a process's as ddcp runs it.
    ddcp::memory::give_back_freed_memory();
    let mut target = fresh_target(target_path);
    let remote = Db::open(Path::new(source_path), &Extension::BuiltIn)
        .unwrap()
        .site_id()
        .unwrap();
    let puller = Puller::new(
        target.site_id().unwrap(),
        remote,
        target.schema().unwrap().fingerprint(),
        target.cursor(remote).unwrap(),
        DEFAULT_PAGE_BYTES,
    );
    let started = Instant::now();
    let (server, asked, answered) = serving_thread(source_path.to_owned());
    let (pulling, pages) = pulling_thread(puller, asked, answered);
    let (mut changes, mut waiting, mut staging, mut applying) = (0, 0.0, 0.0, 0.0);
    let mut clock = Instant::now();
    for page in pages {
        waiting += clock.elapsed().as_secs_f64();
        clock = Instant::now();
        let part = !page.group_complete;
        let outcome = target
            .accept_page(remote, page, &AcceptPolicy::default())
            .unwrap();
        changes += outcome.admitted;
        *(if part { &mut staging } else { &mut applying }) += clock.elapsed().as_secs_f64();
        clock = Instant::now();
    }
    let secs = started.elapsed().as_secs_f64();
    let receiving = pulling.join().unwrap();
    let serving = server.join().unwrap();
    println!(
        "secs={secs:.3} peak_rss_kib={} changes={changes} serving={serving:.3} receiving={receiving:.3} waiting={waiting:.3} staging={staging:.3} applying={applying:.3}",
        peak_rss_kib()
    );
}

/// Requests, or their answers, sent at once.
type Batch = Vec<Vec<u8>>;

/// The serving side on a thread of its own: answers each batch of requests, in order, until
/// the puller hangs up, then says how many seconds it spent serving.
fn serving_thread(source_path: String) -> (JoinHandle<f64>, SyncSender<Batch>, Receiver<Batch>) {
    let (asked, asks) = mpsc::sync_channel::<Batch>(1);
    let (answer, answered) = mpsc::sync_channel(1);
    let server = std::thread::spawn(move || {
        let source = Db::open(Path::new(&source_path), &Extension::BuiltIn).unwrap();
        let mut responder = Responder::new(Compression::Zstd);
        let mut serving = 0.0;
        for requests in asks {
            let started = Instant::now();
            let answers = requests
                .iter()
                .map(|request| responder.respond(&source, request))
                .collect();
            serving += started.elapsed().as_secs_f64();
            if answer.send(answers).is_err() {
                break;
            }
        }
        serving
    });
    (server, asked, answered)
}

/// The puller on a thread of its own: asks the serving thread, makes sense of its answers and
/// hands each page to the database, one at a time (the next fetched while the database takes
/// the last); then says how many seconds it spent receiving.
fn pulling_thread(
    mut puller: Puller,
    asked: SyncSender<Batch>,
    answered: Receiver<Batch>,
) -> (JoinHandle<f64>, Receiver<ChangesPage>) {
    let (hand, pages) = mpsc::sync_channel(0);
    let pulling = std::thread::spawn(move || {
        let mut receiving = 0.0;
        while !puller.is_up_to_date() {
            asked.send(puller.requests()).unwrap();
            let answers = answered.recv().unwrap();
            let started = Instant::now();
            let mut received = Vec::new();
            for answer in answers {
                if let Received::Page(page) = puller.receive(&answer).unwrap() {
                    received.push(*page);
                }
            }
            receiving += started.elapsed().as_secs_f64();
            for page in received {
                hand.send(page).unwrap();
            }
        }
        receiving
    });
    (pulling, pages)
}

/// In a fresh process: cr-sqlite merging the same changes, read beforehand (the clock runs
/// for the merge only), in one transaction.
fn child_merge(source_path: &str, target_path: &str) {
    let source = Db::open(Path::new(source_path), &Extension::BuiltIn).unwrap();
    let changes: Vec<Change> = source.changes_since(DbVersion(0)).unwrap();
    let target = fresh_target(target_path);
    let merge = common::baseline::raw_merge(&target, &changes);
    println!(
        "secs={:.3} peak_rss_kib={} changes={}",
        merge.as_secs_f64(),
        peak_rss_kib(),
        changes.len()
    );
}
