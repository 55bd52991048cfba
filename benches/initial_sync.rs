//! A new peer's first sync of a big table over a real private Veilid network (scripts/netns.sh,
//! `ddcp testnet`), as a user runs it: A serves 1M rows (about 100 MiB of change data, written
//! in transactions of 10,000 rows); B runs `ddcp pull a`, which is killed with SIGKILL three
//! times at random moments and run again until it completes. B must then hold exactly A's
//! rows (asserted: a sync that loses or doubles rows fails). Before that, at full size, C,
//! another new peer, pulls the same once, never killed. Prints each run's last progress line,
//! the total time and the rate in changes/s, against cr-sqlite's raw merge of the same changes
//! measured in the same run (the lower of benches/network.rs's two ceilings); for C also the
//! transfer alone, from its first rows to the pull's exit (its node's start and the record's
//! lookup before them are a fixed cost of any pull, whatever its size; its node's stop after
//! is in). A run whose calls time out is run again, and says so (a peer that left can take
//! private routes along for a while).
//! `cargo bench --bench initial_sync` runs full size; `cargo test --benches` a smoke (B only).

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::noise::Noise;
use common::private_net::{Peer, TestNet, this_program_inside_private_network};
use ddcp::db::{Db, Extension};
use ddcp::sync::{Change, DbVersion};

const SCHEMA: &str = "
    create table big (id integer primary key not null, title text, body text);
    select crsql_as_crr('big');";

/// What B must end with: A's rows, counted and summed.
const SUMMARY: &str = "select count(*), total(id), sum(length(title)), sum(length(body)) from big";

/// A whole pull (or what is left of it) ends within this long, or the bench fails.
const PULL_WITHIN: Duration = Duration::from_secs(1800);

/// Pulls killed before the one that completes.
const KILLS: usize = 3;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !this_program_inside_private_network(&args) {
        return;
    }
    let full = args.iter().any(|arg| arg == "--bench");
    let rows: usize = if full { 1_000_000 } else { 20_000 };
    println!(
        "initial sync bench ({}): {rows} rows, `ddcp pull` killed {KILLS} times",
        if full { "full" } else { "smoke" }
    );
    let net = TestNet::start();
    let mut a = Peer::new(&net, "a", 5);
    let b = Peer::new(&net, "b", 6);
    let c = full.then(|| Peer::new(&net, "c", 7));
    for peer in [&a, &b].into_iter().chain(&c) {
        peer.sql(SCHEMA);
    }
    let a_db = Db::open(&a.site.db_file(), &Extension::BuiltIn).unwrap();
    write_rows(&a_db, rows);
    let changes = a_db.changes_since(DbVersion(0)).unwrap();
    let merge = raw_merge(&changes);
    let expected = a.sql(SUMMARY);
    for peer in [&b].into_iter().chain(&c) {
        peer.run(&["remote", "add", "a", &a.key()]).ok();
    }
    a.serve();
    let merge_rate = changes.len() as f64 / merge.as_secs_f64();

    // C's one pull, full size only: the smoke's a bench that runs, and a peer that leaves
    // (C's pull) can time out the next peer's calls for a while (a known gap).
    if let Some(c) = &c {
        one_pull(c, changes.len(), merge_rate, &expected);
    }

    // Each killed run is killed a random moment after it brought its first rows (or staged
    // its first part): mid-transfer, not while the node starts.
    let b_db = Db::open(&b.site.db_file(), &Extension::BuiltIn).unwrap();
    let mut noise = Noise(0x5eed ^ rows as u64);
    let started = Instant::now();
    let mut runs = 0;
    loop {
        runs += 1;
        let kill_after = (runs <= KILLS).then(|| {
            let most = if full { 20.0 } else { 1.0 };
            Duration::from_secs_f64(most * (noise.next() % 1000) as f64 / 1000.0)
        });
        let PullRun {
            completed,
            last_line,
            ..
        } = pull(&b, &b_db, kill_after);
        let held = b.sql("select count(*) from big");
        println!(
            "  run {runs}: {} after {:.1} s in all; B holds {} rows; last progress: {}",
            if completed {
                "completed"
            } else {
                "stopped (killed, or told to try again)"
            },
            started.elapsed().as_secs_f64(),
            held.trim(),
            last_line.as_deref().unwrap_or("(none)")
        );
        assert_eq!(b.sql("pragma integrity_check"), "ok\n");
        if completed {
            break;
        }
        assert!(started.elapsed() < PULL_WITHIN, "the pulls never completed");
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(b.sql(SUMMARY), expected, "B's rows differ from A's");
    assert_eq!(b.sql("select count(*) from ddcp_staged_parts"), "0\n");
    let rate = changes.len() as f64 / elapsed;
    println!(
        "initial sync, killed {KILLS} times: {} changes ({rows} rows) in {elapsed:.1} s over {runs} runs = {rate:.0} changes/s; cr-sqlite merge of the same changes {merge_rate:.0} changes/s; ratio {:.2}",
        changes.len(),
        rate / merge_rate
    );

    a.stop();
}

/// C's one pull of A's `changes`, never killed: its whole run and its transfer alone, against
/// cr-sqlite's merge rate. First, while no node has been killed: a killed node's routes die
/// with it, and a route through it would time C's calls out until another is made.
fn one_pull(c: &Peer, changes: usize, merge_rate: f64, expected: &str) {
    let c_db = Db::open(&c.site.db_file(), &Extension::BuiltIn).unwrap();
    let c_started = Instant::now();
    let c_deadline = c_started + PULL_WITHIN;
    let mut c_first_rows = None;
    let (whole, transfer) = loop {
        let run = pull(c, &c_db, None);
        c_first_rows = c_first_rows.or(run.first_rows_at);
        if run.completed {
            let first_rows = c_first_rows.expect("C's rows came");
            // From its first run's start, and its first rows: a run that failed counts.
            break (c_started.elapsed(), first_rows.elapsed());
        }
        // Its node did not find the record yet, or its calls timed out: run again, as B's
        // runs are (what a failed run brought stays, and the transfer counts from it).
        assert!(
            Instant::now() < c_deadline,
            "C's pull never found A's record"
        );
    };
    assert_eq!(c.sql(SUMMARY), expected, "C's rows differ from A's");
    let rate_of = |took: Duration| changes as f64 / took.as_secs_f64();
    println!(
        "initial sync, one pull: {:.1} s in all = {:.0} changes/s, ratio {:.2}; the transfer alone (its first rows to the pull's exit) {:.1} s = {:.0} changes/s, ratio {:.2} (target >= 0.6)",
        whole.as_secs_f64(),
        rate_of(whole),
        rate_of(whole) / merge_rate,
        transfer.as_secs_f64(),
        rate_of(transfer),
        rate_of(transfer) / merge_rate,
    );
}

/// How a run of `ddcp pull` went.
struct PullRun {
    /// It ended by itself, successfully.
    completed: bool,
    /// Its last progress line.
    last_line: Option<String>,
    /// When its first rows (or staged parts) showed in the database.
    first_rows_at: Option<Instant>,
}

/// `rows` rows into `big`, 10,000 per transaction.
fn write_rows(db: &Db, rows: usize) {
    let conn = db.connection();
    let mut insert = conn
        .prepare("insert into big (id, title, body) values (?1, 'row ' || ?1, printf('%.80c', 'x') || ?1)")
        .unwrap();
    for chunk in (1..=rows).collect::<Vec<_>>().chunks(10_000) {
        conn.execute_batch("begin").unwrap();
        for id in chunk {
            insert.execute([*id as i64]).unwrap();
        }
        conn.execute_batch("commit").unwrap();
    }
}

/// How far `db` is: rows held and parts staged.
fn held(db: &Db) -> i64 {
    db.connection()
        .query_row(
            "select (select count(*) from big) + (select count(*) from ddcp_staged_parts)",
            [],
            |row| row.get(0),
        )
        .unwrap()
}

/// Runs `ddcp pull a` on `peer` (whose database is `db`), killed with SIGKILL `kill_after`
/// after it brought something, if still running.
fn pull(peer: &Peer, db: &Db, kill_after: Option<Duration>) -> PullRun {
    let before = held(db);
    let mut first_rows_at = None;
    let mut kill_at = None;
    let mut child = peer
        .command(&["pull", "a"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let lines = std::thread::spawn(move || {
        let mut last = None;
        let mut all = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.starts_with("pulling ") {
                last = Some(line.clone());
            }
            all.push(line);
        }
        (last, all)
    });
    let deadline = Instant::now() + PULL_WITHIN;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if first_rows_at.is_none() && held(db) > before {
            first_rows_at = Some(Instant::now());
            kill_at = kill_after.map(|delay| Instant::now() + delay);
        }
        if kill_at.is_some_and(|at| Instant::now() >= at) || Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (last_line, all) = lines.join().unwrap();
    let completed = match status {
        // A node that just attached may not find the record yet; ddcp says to try again,
        // and the loop does, within PULL_WITHIN. So it does when the pull's calls timed out:
        // a node that left (a killed or finished pull) takes the private routes through it
        // along, and a new run's node makes new ones (a known gap, said on stdout).
        Some(status)
            if !status.success()
                && all.iter().any(|line| {
                    line.contains("is not on the network yet")
                        || line.contains("app call failed: Timeout")
                }) =>
        {
            if let Some(line) = all.iter().find(|line| line.contains("Timeout")) {
                println!("  (a pull failed, run again: {line})");
            }
            false
        }
        Some(status) => {
            assert!(status.success(), "ddcp pull failed:\n{}", all.join("\n"));
            true
        }
        None => {
            assert!(
                kill_after.is_some(),
                "ddcp pull never ended:\n{}",
                all.join("\n")
            );
            false
        }
    };
    PullRun {
        completed,
        last_line,
        first_rows_at,
    }
}

/// cr-sqlite's own merge of `changes` into a fresh database.
fn raw_merge(changes: &[Change]) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(&dir.path().join("merge.db"), &Extension::BuiltIn).unwrap();
    db.connection().execute_batch(SCHEMA).unwrap();
    common::baseline::raw_merge(&db, changes)
}
