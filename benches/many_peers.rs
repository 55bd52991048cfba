//! One database served to many pullers at once, on a real private Veilid network
//! (scripts/netns.sh, `ddcp testnet`, one `ddcp serve` process per peer): A writes 20k rows
//! (60k changes) in one transaction, first with one puller serving, then with sixteen, each
//! its own `ddcp serve` on its own address. Printed for both: the time until the puller(s) have
//! every row (the first, the median and the last of them), and what A's serve spent on it: CPU
//! time, resident memory after, and its peak. One puller is the baseline of the same run.
//!
//! Figures are printed, never asserted. `cargo bench --bench many_peers` runs full size;
//! `cargo test --benches` a small smoke (two pullers).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::private_net::{Peer, TestNet, this_program_inside_private_network_of};
use common::process::{cpu_time, memory_kib};
use ddcp::db::{Db, Extension};

const SCHEMA: &str = "
    create table bulk (id integer primary key not null, title text, body text, stars integer);
    select crsql_as_crr('bulk');";

/// The pullers' names (a Peer's name lives as long as the program).
const NAMES: [&str; 16] = [
    "p01", "p02", "p03", "p04", "p05", "p06", "p07", "p08", "p09", "p10", "p11", "p12", "p13",
    "p14", "p15", "p16",
];

/// Every puller has A's rows within this long, or the bench fails.
const VISIBLE_WITHIN: Duration = Duration::from_secs(600);

/// Peers made (each `ddcp init` attaches a node and writes a record) at once.
const MADE_AT_ONCE: usize = 4;

/// The testnet's own nodes take vtnode1..4; A is on vtnode5, the pullers after it.
const FIRST_PULLER_HOST: usize = 6;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let full = args.iter().any(|arg| arg == "--bench");
    let (pullers, rows) = if full { (16, 20_000) } else { (2, 1_000) };
    if !this_program_inside_private_network_of(FIRST_PULLER_HOST - 1 + pullers, &args) {
        return;
    }
    println!(
        "many-peers bench ({}): {rows} rows in one transaction to 1, then {pullers} pullers",
        if full { "full" } else { "smoke" }
    );
    let net = TestNet::start();
    let mut a = Peer::new(&net, "a", 5);
    a.sql(SCHEMA);
    a.serve();
    let a_db = open(&a);
    let key = a.key();

    let mut peers = make_pullers(&net, pullers);
    for peer in &peers {
        peer.sql(SCHEMA);
        peer.run(&["remote", "add", "a", &key]).ok();
    }

    // One puller, as the baseline; its first pull finds a's record.
    peers[0].serve();
    let mut written = 0;
    written = write_rows(&a_db, written, 1);
    wait_all(&peers[..1], written);
    let one = fan_out(&a, &a_db, &peers[..1], &mut written, rows);

    // All of them: the others catch up first (A's rows so far), then the same write.
    for peer in &mut peers[1..] {
        peer.serve();
    }
    wait_all(&peers, written);
    let many = fan_out(&a, &a_db, &peers, &mut written, rows);

    for (what, run) in [("1 puller", &one), ("all pullers", &many)] {
        println!(
            "{what} ({}): {} changes each; on the first after {:.2} s, the median {:.2} s, the last {:.2} s; A's serve: {:.2} s of CPU, RSS {} MiB after, peak {} MiB",
            run.pullers,
            rows * 3,
            run.first.as_secs_f64(),
            run.median.as_secs_f64(),
            run.last.as_secs_f64(),
            run.cpu.as_secs_f64(),
            run.rss_kib / 1024,
            run.peak_kib / 1024,
        );
    }
    println!(
        "{} pullers against 1: x{:.2} the time until the last has every row, x{:.2} A's CPU ({:.2} per puller)",
        many.pullers,
        many.last.as_secs_f64() / one.last.as_secs_f64(),
        many.cpu.as_secs_f64() / one.cpu.as_secs_f64(),
        many.cpu.as_secs_f64() / one.cpu.as_secs_f64() / many.pullers as f64,
    );
    // With DDCP_SERVE_LOG=error,ddcp=debug, A logs every page it answers.
    let log = a.log();
    let pages: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Served a page"))
        .collect();
    if !pages.is_empty() {
        let shared = pages.iter().filter(|l| l.contains("shared=true")).count();
        println!(
            "A answered {} pages (both runs), {shared} of them with a page built for another puller",
            pages.len()
        );
    }
    for peer in &mut peers {
        peer.stop();
    }
    a.stop();
}

/// `count` peers with the fixtures' schema, on their own addresses, made a few at a time.
fn make_pullers(net: &TestNet, count: usize) -> Vec<Peer> {
    let mut peers = Vec::new();
    for batch in (0..count).collect::<Vec<_>>().chunks(MADE_AT_ONCE) {
        std::thread::scope(|scope| {
            let made: Vec<_> = batch
                .iter()
                .map(|&i| {
                    scope.spawn(move || Peer::new(net, NAMES[i], (FIRST_PULLER_HOST + i) as u8))
                })
                .collect();
            peers.extend(made.into_iter().map(|peer| peer.join().unwrap()));
        });
    }
    peers
}

/// What one write cost A and took to reach its pullers.
struct FanOut {
    pullers: usize,
    first: Duration,
    median: Duration,
    last: Duration,
    cpu: Duration,
    rss_kib: u64,
    peak_kib: u64,
}

/// Writes `rows` rows on A in one transaction and waits until every puller has them.
fn fan_out(a: &Peer, a_db: &Db, pullers: &[Peer], written: &mut usize, rows: usize) -> FanOut {
    let pid = a.serve_pid();
    let cpu_before = cpu_time(pid);
    *written = write_rows(a_db, *written, rows);
    let started = Instant::now();
    let mut arrivals = wait_all(pullers, *written);
    let cpu = cpu_time(pid) - cpu_before;
    arrivals.sort();
    let (rss_kib, peak_kib) = memory_kib(pid);
    FanOut {
        pullers: pullers.len(),
        first: arrivals[0] - started,
        median: arrivals[arrivals.len() / 2] - started,
        last: arrivals[arrivals.len() - 1] - started,
        cpu,
        rss_kib,
        peak_kib,
    }
}

/// Rows `from + 1 ..= from + rows` on A, in one transaction; the new total.
fn write_rows(a_db: &Db, from: usize, rows: usize) -> usize {
    let conn = a_db.connection();
    conn.execute_batch("begin").unwrap();
    {
        let mut insert = conn
            .prepare("insert into bulk (id, title, body, stars) values (?1, 'note ' || ?1, printf('%.60c', 'x') || ?1, ?1 % 5)")
            .unwrap();
        for id in from + 1..=from + rows {
            insert.execute([id as i64]).unwrap();
        }
    }
    conn.execute_batch("commit").unwrap();
    from + rows
}

/// Waits until every peer holds `rows` rows of `bulk`; when each got there.
fn wait_all(peers: &[Peer], rows: usize) -> Vec<Instant> {
    let dbs: Vec<Db> = peers.iter().map(open).collect();
    let mut arrived: Vec<Option<Instant>> = vec![None; peers.len()];
    let deadline = Instant::now() + VISIBLE_WITHIN;
    while arrived.iter().any(Option::is_none) {
        for (db, at) in dbs.iter().zip(&mut arrived) {
            if at.is_none() && count(db) == rows as i64 {
                *at = Some(Instant::now());
            }
        }
        let missing: Vec<&str> = peers
            .iter()
            .zip(&arrived)
            .filter(|(_, at)| at.is_none())
            .map(|(peer, _)| peer.name)
            .collect();
        assert!(
            Instant::now() < deadline,
            "{missing:?} still lack rows after {VISIBLE_WITHIN:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    arrived.into_iter().flatten().collect()
}

fn count(db: &Db) -> i64 {
    db.connection()
        .query_row("select count(*) from bulk", [], |row| row.get(0))
        .unwrap()
}

fn open(peer: &Peer) -> Db {
    Db::open(&peer.site.db_file(), &Extension::BuiltIn).unwrap()
}
