//! Replication over a real private Veilid network (scripts/netns.sh, `ddcp testnet`, two
//! `ddcp serve` processes), measured in one run:
//! - latency: a write committed on A until it is visible on B, p50/p95 over 20 writes;
//! - throughput: a 20k-row table written on A in one transaction until all of it is on B, in
//!   changes/s, against what raw app_calls carry on the same network in the same run (32 KiB
//!   answers, 8 in flight as the puller fetches fragments), converted to changes/s at the
//!   changes' own uncompressed wire size.
//!
//! Figures are printed, never asserted. `cargo bench --bench network` runs full size;
//! `cargo test --benches` a small smoke.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::private_net::{Peer, TestNet, this_program_inside_private_network};
use ddcp::db::{Db, Extension};
use ddcp::net::{NetEvent, Node, NodeRole};
use ddcp::sync::DbVersion;
use ddcp::sync::codec::encode_changeset;
use ddcp::sync::protocol::MAX_MESSAGE_BYTES;
use ddcp::sync::pull::FRAGMENT_WINDOW;

const SCHEMA: &str = "
    create table notes (id integer primary key not null, title text, body text, stars integer);
    select crsql_as_crr('notes');
    create table bulk (id integer primary key not null, title text, body text, stars integer);
    select crsql_as_crr('bulk');";

/// A change is visible within this long, or the bench fails.
const VISIBLE_WITHIN: Duration = Duration::from_secs(180);

struct Size {
    writes: usize,
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
            writes: 20,
            rows: 20_000,
            raw_calls: 400,
        }
    } else {
        Size {
            writes: 3,
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
    a.serve();
    b.serve();
    let a_db = open(&a.site.db_file());
    let b_db = open(&b.site.db_file());

    // Warm up: the first pull waits for the DHT to find a's record.
    write_note(&a_db, 0);
    wait_visible(&b_db, "select count(*) from notes where id = 0", 1);

    let mut latencies = Vec::new();
    for i in 1..=size.writes {
        let started = Instant::now();
        write_note(&a_db, i);
        wait_visible(
            &b_db,
            &format!("select count(*) from notes where id = {i}"),
            1,
        );
        latencies.push(started.elapsed());
        // Writes a second apart, as a user's would be, not a burst that one pull carries.
        std::thread::sleep(Duration::from_millis(500));
    }
    latencies.sort();
    println!(
        "latency write on A -> visible on B: p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms (target p50 < 1500 ms)",
        ms(percentile(&latencies, 50)),
        ms(percentile(&latencies, 95)),
        ms(*latencies.last().unwrap())
    );

    let before = DbVersion(a_db.db_version().unwrap().0);
    let started = Instant::now();
    a_db.connection()
        .execute_batch(&format!(
            "begin;
             with recursive n(i) as (select 1 union all select i + 1 from n where i < {})
             insert into bulk (id, title, body, stars)
               select i, 'note ' || i, printf('%.60c', 'x') || i, i % 5 from n;
             commit;",
            size.rows
        ))
        .unwrap();
    wait_visible(&b_db, "select count(*) from bulk", size.rows as i64);
    let elapsed = started.elapsed();
    let changes = a_db.changes_since(before).unwrap();
    let wire_per_change = encode_changeset(&changes).len() as f64 / changes.len() as f64;
    let ddcp_rate = changes.len() as f64 / elapsed.as_secs_f64();
    println!(
        "replication: {} changes ({} rows) in {:.2} s = {:.0} changes/s ({:.0} B per change uncompressed)",
        changes.len(),
        size.rows,
        elapsed.as_secs_f64(),
        ddcp_rate,
        wire_per_change
    );
    a.stop();
    b.stop();

    let raw_bytes_per_s = raw_app_call_throughput(&net, size.raw_calls);
    let raw_rate = raw_bytes_per_s / wire_per_change;
    println!(
        "raw app_call: {:.0} KiB/s of payload ({} in flight) = {:.0} changes/s at that size",
        raw_bytes_per_s / 1024.0,
        FRAGMENT_WINDOW,
        raw_rate
    );
    println!(
        "ratio ddcp/raw: {:.2} (target >= 0.8; ddcp compresses, raw calls do not)",
        ddcp_rate / raw_rate
    );
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

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let index = ((sorted.len() * p).div_ceil(100)).saturating_sub(1);
    sorted[index.min(sorted.len() - 1)]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Bytes per second of app_call answers between two nodes of this process (on vtnode7 and
/// vtnode8), the answers as big as Veilid allows, FRAGMENT_WINDOW calls in flight.
fn raw_app_call_throughput(net: &TestNet, calls: usize) -> f64 {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let start = |host: u8| {
            let settings = net.node_settings(host);
            let role = NodeRole {
                namespace: format!("raw{host}"),
                ..NodeRole::default()
            };
            let dir = dir.path().join(format!("node{host}"));
            async move { Node::start_as(&dir, &settings, &role).await.unwrap() }
        };
        let mut callee = start(7).await;
        let caller = start(8).await;
        callee.attach(VISIBLE_WITHIN).await.unwrap();
        caller.attach(VISIBLE_WITHIN).await.unwrap();
        let route = callee.network().new_route().await.unwrap();
        let mut events = callee.take_events();
        let answering = callee.network().clone();
        tokio::spawn(async move {
            let answer = vec![0x5a; MAX_MESSAGE_BYTES];
            while let Some(event) = events.recv().await {
                if let NetEvent::Call(call) = event {
                    let _ = answering.reply(call.id, answer.clone()).await;
                }
            }
        });
        let network = caller.network().clone();
        let imported = network.import_route(&route.blob).unwrap();
        let target = imported.id().clone();
        // Warm up the route.
        for _ in 0..3 {
            let _ = network.call(&target, b"warm".to_vec()).await;
        }
        let started = Instant::now();
        let mut bytes = 0usize;
        let mut sent = 0;
        let mut in_flight = tokio::task::JoinSet::new();
        while sent < calls || !in_flight.is_empty() {
            while sent < calls && in_flight.len() < FRAGMENT_WINDOW {
                let network = network.clone();
                let target = target.clone();
                in_flight.spawn(async move { network.call(&target, b"page".to_vec()).await });
                sent += 1;
            }
            if let Some(Ok(Ok(answer))) = in_flight.join_next().await {
                bytes += answer.len();
            }
        }
        let rate = bytes as f64 / started.elapsed().as_secs_f64();
        caller.shutdown().await;
        callee.shutdown().await;
        rate
    })
}
