//! Replication over a real private Veilid network (scripts/netns.sh, `ddcp testnet`, two
//! `ddcp serve` processes), measured in one run:
//! - latency: writes committed on A by another process (an app's), one every 100 ms, each until
//!   it is visible on B (B pulls from A) and on C (C pulls from B: the far end of a chain),
//!   p50/p95/max over 100 writes, against a raw app call's round trip on the same network (the
//!   floor of any pull); the same for a private database (P, and its member Q); and an app's
//!   write through A's HTTP API until B's subscription (an app's, on B's API) tells of it,
//!   against B's p50 as its baseline (what replication itself takes);
//! - throughput: 20k rows written on A in one transaction (timed from its commit), and 20k
//!   one-row transactions written while B is stopped (a backlog: written one by one while B
//!   pulls, they would measure how fast A writes), until all of them are on B. The rate is
//!   taken over the time B spent pulling (its `ddcp_pull_duration_seconds`), against the lower
//!   of two ceilings measured in the same run: (a) what raw app_calls carry on the same network
//!   (32 KiB answers, the best of 4, 8 and 16 in flight; the puller keeps 8) divided by ddcp's own wire
//!   bytes per change (compressed, as its pages are sent), and (b) cr-sqlite's raw merge rate
//!   of the same changes (`insert into crsql_changes` in one transaction). The time from A's
//!   commit until B starts pulling (A notices its commit, publishes its Status, B hears of it)
//!   is printed apart: it is latency, which the first figure measures.
//!
//! Figures are printed, never asserted. `cargo bench --bench network` runs full size;
//! `cargo test --benches` a small smoke.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::metrics::{sample, scrape};
use common::private_net::{Peer, TestNet, runtime, this_program_inside_private_network};
use ddcp::db::{Db, Extension};
use ddcp::net::{NetEvent, Node, NodeRole};
use ddcp::sync::codec::encode_changeset;
use ddcp::sync::compress::Compression;
use ddcp::sync::protocol::MAX_MESSAGE_BYTES;
use ddcp::sync::pull::{DEFAULT_PAGE_BYTES, FRAGMENT_WINDOW, Puller};
use ddcp::sync::serve::Responder;
use ddcp::sync::{Change, DbVersion};

const SCHEMA: &str = "
    create table notes (id integer primary key not null, title text, body text, stars integer);
    select crsql_as_crr('notes');
    create table bulk (id integer primary key not null, title text, body text, stars integer);
    select crsql_as_crr('bulk');
    create table trickle (id integer primary key not null, title text, body text, stars integer);
    select crsql_as_crr('trickle');";

/// A change is visible within this long, or the bench fails.
const VISIBLE_WITHIN: Duration = Duration::from_secs(180);

/// B's metrics endpoint (inside the bench's own network namespace).
const B_METRICS: &str = "127.0.0.1:9120";

struct Size {
    writes: usize,
    api_writes: usize,
    rows: usize,
    raw_calls: usize,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !this_program_inside_private_network(&args) {
        return;
    }
    let full = args.iter().any(|arg| arg == "--bench");
    let size = if full {
        Size {
            writes: 100,
            api_writes: 20,
            rows: 20_000,
            raw_calls: 400,
        }
    } else {
        Size {
            writes: 3,
            api_writes: 3,
            rows: 2_000,
            raw_calls: 24,
        }
    };
    println!(
        "network bench ({}): {} writes, {} rows, {} raw calls",
        if full { "full" } else { "smoke" },
        size.writes,
        size.rows,
        size.raw_calls
    );
    let net = TestNet::start();
    let mut a = Peer::new(&net, "a", 5);
    let mut b = Peer::new(&net, "b", 6);
    for peer in [&a, &b] {
        peer.sql(SCHEMA);
    }
    b.run(&["remote", "add", "a", &a.key()]).ok();
    for peer in [&mut a, &mut b] {
        peer.log_filter = Some(LATENCY_LOG.into());
    }
    a.serve();
    b.serve_with(&["--metrics-addr", B_METRICS]);
    let a_db = open(&a.site.db_file());
    let b_db = open(&b.site.db_file());
    // Warm up: the first pull waits for the DHT to find the remote's record.
    write_note(&a_db, 0);
    wait_visible(&b_db, "select count(*) from notes where id = 0", 1);

    // Throughput first, A and B alone: the latency's peers would pull (and answer) meanwhile,
    // and a peer stopped mid-run takes with it the private routes that hop through its node.
    let mut one_transaction = replicate(&a_db, &b_db, "bulk", size.rows, None);
    let mut one_row_each = replicate(&a_db, &b_db, "trickle", size.rows, Some(&mut b));

    // Latency: C pulls from B (a chain), Q from the private P (its member).
    let mut c = Peer::new(&net, "c", 9);
    let mut p = Peer::new(&net, "p", 10);
    let mut q = Peer::new(&net, "q", 11);
    for peer in [&c, &p, &q] {
        peer.sql(SCHEMA);
    }
    c.run(&["remote", "add", "b", &b.key()]).ok();
    p.run(&["access", "private"]).ok();
    let q_id = q.run(&["id"]).ok().trim().to_string();
    p.run(&["member", "add", "q", &q_id]).ok();
    q.run(&["remote", "add", "p", &p.key()]).ok();
    for peer in [&mut c, &mut p, &mut q] {
        peer.log_filter = Some(LATENCY_LOG.into());
        peer.serve();
    }
    let [c_db, p_db, q_db] = [&c, &p, &q].map(|peer| open(&peer.site.db_file()));
    wait_visible(&c_db, "select count(*) from notes where id = 0", 1);
    write_note(&p_db, 0);
    wait_visible(&q_db, "select count(*) from notes where id = 0", 1);
    let round_trip = raw_round_trip(&net);
    println!(
        "raw app_call round trip (a small question and answer): p50 {:.1} ms, p95 {:.1} ms (the floor of a pull)",
        ms(percentile(&round_trip, 50)),
        ms(percentile(&round_trip, 95))
    );
    let interval = Duration::from_millis(100);
    let from_a = cadence_writes(
        &a.site.db_file(),
        &[&b_db, &c_db],
        1..=size.writes,
        interval,
    );
    let on_b = latencies(&from_a, 0);
    print_latency(
        "A -> B",
        &on_b,
        &round_trip,
        "p50 < 100 ms, p95 < 300 ms, max < 1 s",
    );
    print_steps("A -> B", &from_a, 0, &a.log(), &b.log());
    print_latency(
        "A -> B -> C, on C",
        &latencies(&from_a, 1),
        &round_trip,
        "p50 < 250 ms",
    );
    let from_p = cadence_writes(&p.site.db_file(), &[&q_db], 1..=size.writes, interval);
    print_latency(
        "private P -> member Q",
        &latencies(&from_p, 0),
        &round_trip,
        "p50 < 100 ms, p95 < 300 ms, max < 1 s",
    );
    print_steps("P -> Q", &from_p, 0, &p.log(), &q.log());

    let visible_p50 = percentile(&on_b, 50);
    let told = subscription_latencies(&a, &b, size.api_writes);
    println!(
        "latency API write on A -> B's subscription told: p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms; p50 / visible-on-B p50 = {:.2}",
        ms(percentile(&told, 50)),
        ms(percentile(&told, 95)),
        ms(*told.last().unwrap()),
        percentile(&told, 50).as_secs_f64() / visible_p50.as_secs_f64()
    );
    for peer in [&mut a, &mut b, &mut c, &mut p, &mut q] {
        peer.stop();
    }
    if std::env::var_os("DDCP_SERVE_LOG").is_some() {
        // Where B's pulls spent their time, page by page (logged at debug level).
        for line in b
            .log()
            .lines()
            .filter(|line| line.contains("Pulled a page"))
        {
            println!("  B: {line}");
        }
    }
    for run in [&mut one_transaction, &mut one_row_each] {
        run.raw_merge = raw_merge(&run.changes);
        run.raw_read = (0..3)
            .map(|_| common::baseline::raw_read(&a_db, run.since, run.until).0)
            .min()
            .unwrap();
    }

    // The network's best: as many calls in flight as it rewards (the puller keeps
    // FRAGMENT_WINDOW fragment requests in flight).
    let raw = raw_app_call_throughput(&net, size.raw_calls, &WINDOWS);
    let raw_bytes_per_s = raw.iter().map(|(_, rate)| *rate).fold(0.0, f64::max);
    println!(
        "raw app_call, KiB/s of payload by calls in flight: {} (the puller keeps {FRAGMENT_WINDOW}); the best is the ceiling",
        raw.iter()
            .map(|(window, rate)| format!("{window}: {:.0}", rate / 1024.0))
            .collect::<Vec<_>>()
            .join(", "),
    );
    for (what, run) in [
        ("one transaction", one_transaction),
        ("one-row transactions, a backlog", one_row_each),
    ] {
        let changes = run.changes.len() as f64;
        let rate = changes / run.pulling.as_secs_f64();
        let network_ceiling = raw_bytes_per_s / run.wire_per_change;
        let merge_ceiling = changes / run.raw_merge.as_secs_f64();
        let ceiling = network_ceiling.min(merge_ceiling);
        println!(
            "{what} (written on A in {:.2} s): {:.0} changes pulled by B in {:.2} s = {rate:.0} changes/s; {:.1} B per change on the wire ({:.0} uncompressed)",
            run.written.as_secs_f64(),
            changes,
            run.pulling.as_secs_f64(),
            run.wire_per_change,
            run.raw_per_change,
        );
        println!(
            "  on B {:.2} s after {}, {:.2} s of it before B pulled",
            run.elapsed.as_secs_f64(),
            run.elapsed_from,
            run.elapsed.saturating_sub(run.pulling).as_secs_f64(),
        );
        println!(
            "  ceilings: network {network_ceiling:.0} changes/s (raw app_call / wire bytes), cr-sqlite merge {merge_ceiling:.0} changes/s; ddcp / lower = {:.2} (target >= 0.8)",
            rate / ceiling
        );
        if run.one_transaction {
            // Applied whole once every page is here: its fetch cannot overlap its merge.
            let serial = 1.0 / (1.0 / network_ceiling + 1.0 / merge_ceiling);
            println!(
                "  one transaction is fetched, then merged: the serial ceiling (bytes / network rate + changes / merge rate) is {serial:.0} changes/s; ddcp / serial = {:.2} (target >= 0.8)",
                rate / serial
            );
            // A's read of the changes, which no server avoids, ends before the merge begins;
            // at best it overlaps the transfer.
            let read_ceiling = changes / run.raw_read.as_secs_f64();
            let with_read = 1.0 / (1.0 / network_ceiling.min(read_ceiling) + 1.0 / merge_ceiling);
            println!(
                "  with A's read of the changes (cr-sqlite's, {read_ceiling:.0} changes/s): max(bytes / network rate, changes / read rate) + changes / merge rate is {with_read:.0} changes/s; ddcp / that = {:.2}",
                rate / with_read
            );
        }
    }
}

/// One throughput run's figures.
struct Replicated {
    /// The rows were written in one transaction (not a backlog of one-row ones).
    one_transaction: bool,
    changes: Vec<Change>,
    /// From the commit (one transaction) or B's start (a backlog) until B has every row ...
    elapsed: Duration,
    /// ... what that was from ...
    elapsed_from: &'static str,
    /// ... and the time B spent pulling meanwhile.
    pulling: Duration,
    /// How long A took to write the rows.
    written: Duration,
    /// ddcp's bytes on the wire per change: its compressed pages, as a responder makes them.
    wire_per_change: f64,
    /// The changes' own encoded size per change, uncompressed.
    raw_per_change: f64,
    /// cr-sqlite merging the same changes into a fresh database, in one transaction.
    raw_merge: Duration,
    /// A's versions before and after the rows were written.
    since: DbVersion,
    until: DbVersion,
    /// cr-sqlite reading the same changes out of A (the best of three, once the serves stopped).
    raw_read: Duration,
}

/// Writes `rows` rows into `table` on A and waits until B has them all: in one transaction
/// while B serves, or (`backlog`: B) one row per transaction while B is stopped, B serving
/// again once they are all written.
fn replicate(
    a_db: &Db,
    b_db: &Db,
    table: &str,
    rows: usize,
    mut backlog: Option<&mut Peer>,
) -> Replicated {
    let one_transaction = backlog.is_none();
    let before = DbVersion(a_db.db_version().unwrap().0);
    if let Some(b) = backlog.as_deref_mut() {
        b.stop();
    }
    let pulled_before = time_pulling();
    let insert = format!(
        "insert into {table} (id, title, body, stars) values (?1, 'note ' || ?1, printf('%.60c', 'x') || ?1, ?1 % 5)"
    );
    let conn = a_db.connection();
    let writing = Instant::now();
    if one_transaction {
        conn.execute_batch("begin").unwrap();
    }
    {
        let mut statement = conn.prepare(&insert).unwrap();
        for id in 1..=rows {
            statement.execute([id as i64]).unwrap();
        }
    }
    if one_transaction {
        conn.execute_batch("commit").unwrap();
    }
    let written = writing.elapsed();
    let started = Instant::now();
    if let Some(b) = backlog {
        b.serve_with(&["--metrics-addr", B_METRICS]);
    }
    wait_visible(b_db, &format!("select count(*) from {table}"), rows as i64);
    let elapsed = started.elapsed();
    // A new serve's metrics start from nothing.
    let pulling = time_pulling()
        - if one_transaction {
            pulled_before
        } else {
            Duration::ZERO
        };
    let until = a_db.db_version().unwrap();
    let changes = a_db.changes_since(before).unwrap();
    let raw_per_change = encode_changeset(&changes).len() as f64 / changes.len() as f64;
    let wire_per_change = wire_bytes(a_db, before) as f64 / changes.len() as f64;
    Replicated {
        one_transaction,
        changes,
        elapsed,
        elapsed_from: if one_transaction {
            "its commit"
        } else {
            "B's serve started"
        },
        pulling,
        written,
        wire_per_change,
        raw_per_change,
        raw_merge: Duration::ZERO,
        since: before,
        until,
        raw_read: Duration::ZERO,
    }
}

/// cr-sqlite merging `changes` into a fresh database, in one transaction (measured once the
/// serves have stopped: they would take CPU from it): the best of three, this machine's merge
/// times varying by half from one try to the next.
fn raw_merge(changes: &[Change]) -> Duration {
    (0..3)
        .map(|_| {
            let scratch = tempfile::tempdir().unwrap();
            let target = Db::create(&scratch.path().join("merge.db"), &Extension::BuiltIn).unwrap();
            target.connection().execute_batch(SCHEMA).unwrap();
            common::baseline::raw_merge(&target, changes)
        })
        .min()
        .unwrap()
}

/// The bytes of ddcp's answers (pages, manifests and fragments, compressed as served) carrying
/// `source`'s changes after `since`, through the same responder and puller a serve and a pull
/// use, without the network (the pages are not applied: only their size counts).
fn wire_bytes(source: &Db, since: DbVersion) -> usize {
    let mut responder = Responder::new(Compression::Zstd);
    let mut puller = Puller::new(
        ddcp::sync::SiteId([7; 16]),
        source.site_id().unwrap(),
        source.schema().unwrap().fingerprint(),
        ddcp::sync::cursor::Cursor::after_group(since),
        DEFAULT_PAGE_BYTES,
    );
    let mut wire = 0;
    while !puller.is_up_to_date() {
        for request in puller.requests() {
            let answer = responder.respond(source, &request);
            wire += answer.len();
            puller.receive(&answer).unwrap();
        }
    }
    wire
}

/// How long B's serve has spent pulling a, by its own metric. The pull that brings the last
/// rows reports its time a moment after they are visible: waited for.
fn time_pulling() -> Duration {
    let series = "ddcp_pull_duration_seconds_sum{remote=\"a\"}";
    let read = || {
        std::net::TcpStream::connect(B_METRICS)
            .ok()
            .and_then(|_| sample(&scrape(port(B_METRICS)), series))
    };
    std::thread::sleep(Duration::from_millis(200));
    Duration::from_secs_f64(read().unwrap_or(0.0))
}

fn port(addr: &str) -> u16 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

fn open(path: &Path) -> Db {
    Db::open(path, &Extension::BuiltIn).unwrap()
}

fn write_note(db: &Db, id: usize) {
    db.connection()
        .execute(
            "insert into notes (id, title, body, stars) values (?1, 'title', 'body', 3)",
            [id as i64],
        )
        .unwrap();
}

/// One write of [`cadence_writes`]: A's version it made, when it committed and when each reader
/// had it (Unix time, seconds: the serves' logs are compared with them).
struct Write {
    db_version: i64,
    committed: f64,
    visible: Vec<f64>,
}

/// Writes note `ids` into the database at `writer` from a connection of this process's own
/// (an app's), one every `interval`, and notes when each is visible in each of `readers`
/// (looked at every millisecond).
fn cadence_writes(
    writer: &Path,
    readers: &[&Db],
    ids: std::ops::RangeInclusive<usize>,
    interval: Duration,
) -> Vec<Write> {
    let (committed_at, commits) = std::sync::mpsc::channel();
    let writing = {
        let (writer, ids) = (writer.to_path_buf(), ids.clone());
        std::thread::spawn(move || {
            let db = open(&writer);
            let start = Instant::now();
            for (n, id) in ids.enumerate() {
                let at = start + interval * n as u32;
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
                write_note(&db, id);
                let committed = unix_now();
                let version = db.db_version().unwrap().0;
                committed_at.send((id, version, committed)).unwrap();
            }
        })
    };
    let (first, last) = (*ids.start(), *ids.end());
    let mut writes: Vec<Write> = Vec::new();
    let mut seen = vec![first - 1; readers.len()];
    let deadline = Instant::now() + VISIBLE_WITHIN + interval * (last - first + 1) as u32;
    while seen.iter().any(|newest| *newest < last) {
        assert!(
            Instant::now() < deadline,
            "notes {first}..={last} never all arrived"
        );
        for (index, (reader, newest)) in readers.iter().zip(seen.iter_mut()).enumerate() {
            let max: Option<i64> = reader
                .connection()
                .query_row(
                    "select max(id) from notes where id between ?1 and ?2",
                    [first as i64, last as i64],
                    |row| row.get(0),
                )
                .unwrap();
            let now = unix_now();
            // Each note is its own transaction, applied in order: all up to the newest are in.
            let arrived = max.map_or(first - 1, |max| max as usize);
            while *newest < arrived {
                *newest += 1;
                while writes.len() <= *newest - first {
                    let (id, db_version, committed) = commits.recv().unwrap();
                    assert_eq!(id, first + writes.len());
                    writes.push(Write {
                        db_version,
                        committed,
                        visible: vec![f64::NAN; readers.len()],
                    });
                }
                writes[*newest - first].visible[index] = now;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    writing.join().unwrap();
    writes
}

/// How long each of `writes` took to be visible on reader `index`, sorted.
fn latencies(writes: &[Write], index: usize) -> Vec<Duration> {
    let mut latencies: Vec<Duration> = writes
        .iter()
        .map(|write| Duration::from_secs_f64((write.visible[index] - write.committed).max(0.0)))
        .collect();
    latencies.sort();
    latencies
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The log filter of the latency's serves: the steps of a write's way, logged by target
/// `ddcp_latency` (each with the writer's db_version), and serve's own default.
const LATENCY_LOG: &str = "error,ddcp=info,ddcp_latency=debug";

/// The steps of a write's way from the writer (its serve logged `writer_log`) to a reader (its
/// serve logged `reader_log`, and the bench saw the row as `writes[..].visible[index]`): the
/// p50 of each step, over the writes whose every step was logged in order.
fn print_steps(what: &str, writes: &[Write], index: usize, writer_log: &str, reader_log: &str) {
    let writer_steps = ["reported", "sending notes"];
    let reader_steps = ["note taken", "page fetched", "page applied"];
    let stamps: Vec<std::collections::HashMap<i64, f64>> = writer_steps
        .iter()
        .map(|step| logged_at(writer_log, step))
        .chain(reader_steps.iter().map(|step| logged_at(reader_log, step)))
        .collect();
    let names = [
        "noticed (commit -> A's DbActor reported it)",
        "note out (-> A's notifier sent it)",
        "note in (-> B's actor took it)",
        "fetched (-> B had the page)",
        "applied (-> B's DbActor applied it)",
        "seen (-> the bench saw the row)",
    ];
    let mut steps: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let mut whole = 0;
    for write in writes {
        let mut at: Vec<f64> = vec![write.committed];
        at.extend(
            stamps
                .iter()
                .filter_map(|stamps| stamps.get(&write.db_version)),
        );
        at.push(write.visible[index]);
        // A write some other way told (the DHT's watch, a pull already running) has a step
        // missing or out of order: not counted.
        if at.len() != names.len() + 1 || at.windows(2).any(|pair| pair[1] < pair[0]) {
            continue;
        }
        whole += 1;
        for (step, pair) in steps.iter_mut().zip(at.windows(2)) {
            step.push((pair[1] - pair[0]) * 1e3);
        }
    }
    if whole == 0 {
        println!("  steps, {what}: no write had every step logged in order");
        return;
    }
    let parts: Vec<String> = names
        .iter()
        .zip(&mut steps)
        .map(|(name, step)| {
            step.sort_by(f64::total_cmp);
            format!("{name} {:.1} ms", step[step.len() / 2])
        })
        .collect();
    println!(
        "  steps, {what} (p50 of each, over the {whole} of {} writes whose every step was logged in order): {}",
        writes.len(),
        parts.join(", ")
    );
}

/// When each db_version's `step` was first logged in `log` (Unix time, seconds).
fn logged_at(log: &str, step: &str) -> std::collections::HashMap<i64, f64> {
    let mut stamps = std::collections::HashMap::new();
    let marker = format!("ddcp_latency: {step} ");
    for line in log.lines().filter(|line| line.contains(&marker)) {
        let (Some(stamp), Some(version)) = (
            line.split_whitespace().next().and_then(rfc3339_unix),
            line.split("db_version=")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|value| value.parse::<i64>().ok()),
        ) else {
            continue;
        };
        stamps.entry(version).or_insert(stamp);
    }
    stamps
}

/// `2026-12-07T11:56:11.123456Z` (tracing's timestamps) as Unix time, in seconds.
fn rfc3339_unix(stamp: &str) -> Option<f64> {
    let (date, time) = stamp.strip_suffix('Z')?.split_once('T')?;
    let mut date = date.split('-').map(|part| part.parse::<i64>());
    let (year, month, day) = (date.next()?.ok()?, date.next()?.ok()?, date.next()?.ok()?);
    let mut time = time.split(':');
    let (hours, minutes) = (
        time.next()?.parse::<f64>().ok()?,
        time.next()?.parse::<f64>().ok()?,
    );
    let seconds = time.next()?.parse::<f64>().ok()?;
    // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some(days as f64 * 86_400.0 + hours * 3_600.0 + minutes * 60.0 + seconds)
}

fn print_latency(what: &str, sorted: &[Duration], round_trip: &[Duration], goal: &str) {
    let floor = percentile(round_trip, 50);
    println!(
        "latency write -> visible, {what}: p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms over {} writes, one per 100 ms (goal {goal}); p50 = {:.1} raw round trips",
        ms(percentile(sorted, 50)),
        ms(percentile(sorted, 95)),
        ms(*sorted.last().unwrap()),
        sorted.len(),
        percentile(sorted, 50).as_secs_f64() / floor.as_secs_f64()
    );
}

/// Polls `sql` on `db` every few milliseconds until it counts `expected`.
fn wait_visible(db: &Db, sql: &str, expected: i64) {
    let deadline = Instant::now() + VISIBLE_WITHIN;
    loop {
        let count: i64 = db
            .connection()
            .query_row(sql, [], |row| row.get(0))
            .unwrap();
        if count == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{sql} stayed at {count}, not {expected}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `writes` notes written by an app through A's API (its state dir's socket), each timed until
/// an app's subscription on B's API tells of it; sorted.
fn subscription_latencies(a: &Peer, b: &Peer, writes: usize) -> Vec<Duration> {
    let a_socket = a.site.path(".ddcp/api.sock");
    let events = subscribe(
        &b.site.path(".ddcp/api.sock"),
        "select id from notes where id >= 1000000",
    );
    let mut told = Vec::new();
    for i in 0..writes {
        let id = 1_000_000 + i;
        let started = Instant::now();
        let answer = post(
            &a_socket,
            "/v1/transactions",
            &format!(r#"{{"statements": ["insert into notes (id, title) values ({id}, 'api')"]}}"#),
        );
        assert!(answer.contains("db_version"), "{answer}");
        let want = format!(r#""event":"insert","row":[{id}]"#);
        loop {
            let line = events
                .recv_timeout(VISIBLE_WITHIN)
                .expect("B's subscription told of the write in time");
            if line.contains(&want) {
                break;
            }
        }
        told.push(started.elapsed());
        std::thread::sleep(Duration::from_millis(500));
    }
    told.sort();
    told
}

/// One request to the API on `socket`; the answer's body (with its framing, if chunked).
fn post(socket: &Path, path: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// Subscribes to `sql` on the API at `socket`: its NDJSON lines as they come (the chunked
/// framing's lines left out).
fn subscribe(socket: &Path, sql: &str) -> std::sync::mpsc::Receiver<String> {
    use std::io::{BufRead, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
    let body = serde_json::json!({ "sql": sql }).to_string();
    write!(
        stream,
        "POST /v1/subscriptions HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stream)
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with('{') && sender.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let index = ((sorted.len() * p).div_ceil(100)).saturating_sub(1);
    sorted[index.min(sorted.len() - 1)]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Round trips of a small app_call between two nodes of this process (on vtnode7 and vtnode8),
/// one at a time: what a pull of a small change cannot be faster than; sorted.
fn raw_round_trip(net: &TestNet) -> Vec<Duration> {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let pair = RawPair::start(net, dir.path(), 256).await;
        let network = pair.caller.network().clone();
        let mut round_trips = Vec::new();
        for _ in 0..50 {
            let started = Instant::now();
            if network.call(pair.route.id(), vec![0x5a; 256]).await.is_ok() {
                round_trips.push(started.elapsed());
            }
        }
        pair.shutdown().await;
        round_trips.sort();
        round_trips
    })
}

/// Two attached nodes of this process, on vtnode7 and vtnode8: the callee answers every call
/// with a given number of bytes on its route, which the caller has imported and warmed up.
struct RawPair {
    callee: Node,
    caller: Node,
    route: ddcp::net::ImportedRoute,
}

impl RawPair {
    async fn start(net: &TestNet, dir: &Path, answer_bytes: usize) -> RawPair {
        let start = |host: u8| {
            let settings = net.node_settings(host);
            let role = NodeRole {
                namespace: format!("raw{host}"),
                ..NodeRole::default()
            };
            let dir = dir.join(format!("node{host}"));
            async move { Node::start_as(&dir, &settings, &role).await.unwrap() }
        };
        let mut callee = start(7).await;
        let caller = start(8).await;
        callee.attach(VISIBLE_WITHIN).await.unwrap();
        caller.attach(VISIBLE_WITHIN).await.unwrap();
        let own = callee.network().new_route().await.unwrap();
        let mut events = callee.take_events();
        let answering = callee.network().clone();
        tokio::spawn(async move {
            let answer = vec![0x5a; answer_bytes];
            while let Some(event) = events.recv().await {
                if let NetEvent::Call(call) = event {
                    let _ = answering.reply(call.id, answer.clone()).await;
                }
            }
        });
        let route = caller.network().import_route(&own.blob).unwrap();
        for _ in 0..3 {
            let _ = caller.network().call(route.id(), b"warm".to_vec()).await;
        }
        RawPair {
            callee,
            caller,
            route,
        }
    }

    async fn shutdown(self) {
        drop(self.route);
        self.caller.shutdown().await;
        self.callee.shutdown().await;
    }
}

/// Calls in flight the raw app_call rate is measured with.
const WINDOWS: [usize; 3] = [4, 8, 16];

/// Bytes per second of app_call answers between two nodes of this process (on vtnode7 and
/// vtnode8), the answers as big as Veilid allows, `calls` calls with each number of `windows`
/// in flight.
fn raw_app_call_throughput(net: &TestNet, calls: usize, windows: &[usize]) -> Vec<(usize, f64)> {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let pair = RawPair::start(net, dir.path(), MAX_MESSAGE_BYTES).await;
        let network = pair.caller.network().clone();
        let target = pair.route.id().clone();
        let mut rates = Vec::new();
        for &window in windows {
            let started = Instant::now();
            let mut bytes = 0usize;
            let mut sent = 0;
            let mut in_flight = tokio::task::JoinSet::new();
            while sent < calls || !in_flight.is_empty() {
                while sent < calls && in_flight.len() < window {
                    let network = network.clone();
                    let target = target.clone();
                    in_flight.spawn(async move { network.call(&target, b"page".to_vec()).await });
                    sent += 1;
                }
                if let Some(Ok(Ok(answer))) = in_flight.join_next().await {
                    bytes += answer.len();
                }
            }
            rates.push((window, bytes as f64 / started.elapsed().as_secs_f64()));
        }
        pair.shutdown().await;
        rates
    })
}
