//! The sync protocol end to end in memory: real databases, the protocol's own request and
//! answer functions, and a network that loses, repeats and reorders messages, with pullers
//! restarting at random. Every message is checked against Veilid's 32 KiB limit.

use ddcp::db::{AcceptPolicy, Db, DbError, Extension};
use ddcp::sync::protocol::{ErrorCode, MAX_MESSAGE_BYTES};
use ddcp::sync::pull::{PullError, Puller, Received};
use ddcp::sync::schema_fetch::{SchemaFetch, schema_request};
use ddcp::sync::serve::Responder;
use ddcp::sync::{DbVersion, SiteId, Value};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const SCHEMA: &str = "
    create table items (id text primary key not null, v, n integer);
    select crsql_as_crr('items');";

/// How unkind the network is.
#[derive(Clone, Copy)]
struct Faults {
    loss: f64,
    repeat: f64,
    restart: f64,
}

const CALM: Faults = Faults {
    loss: 0.0,
    repeat: 0.0,
    restart: 0.0,
};
const STORMY: Faults = Faults {
    loss: 0.2,
    repeat: 0.2,
    restart: 0.05,
};

struct Peer {
    db: Db,
    site: SiteId,
    responder: Responder,
}

fn peer(dir: &std::path::Path, name: &str, schema: &str) -> Peer {
    let db = Db::create(&dir.join(format!("{name}.db")), &Extension::BuiltIn).unwrap();
    db.connection().execute_batch(schema).unwrap();
    Peer {
        site: db.site_id().unwrap(),
        db,
        responder: Responder::default(),
    }
}

fn new_puller(asker: &Peer, remote: SiteId, budget: u32) -> Puller {
    let fingerprint = asker.db.schema().unwrap().fingerprint();
    let cursor = asker.db.cursor(remote).unwrap();
    Puller::new(asker.site, remote, fingerprint, cursor, budget)
}

/// What one pull did.
#[derive(Default, Debug)]
struct PullStats {
    pages: usize,
    partial_pages: usize,
    changes: usize,
    messages: usize,
    largest_message: usize,
    /// Times the remote turned out restored from a backup: pulled again from the start.
    restored: usize,
}

/// `asker` pulls from `remote` until up to date, through a network with `faults`.
fn pull(
    asker: &mut Peer,
    remote: &mut Peer,
    budget: u32,
    faults: Faults,
    rng: &mut StdRng,
) -> Result<PullStats, PullError> {
    let mut stats = PullStats::default();
    let mut puller = new_puller(asker, remote.site, budget);
    for _round in 0..200_000 {
        if puller.is_up_to_date() {
            return Ok(stats);
        }
        if rng.gen_bool(faults.restart) {
            puller = new_puller(asker, remote.site, budget);
        }
        let mut answers = Vec::new();
        for request in puller.requests() {
            stats.messages += 1;
            stats.largest_message = stats.largest_message.max(request.len());
            assert!(
                request.len() <= MAX_MESSAGE_BYTES,
                "request of {} bytes",
                request.len()
            );
            if rng.gen_bool(faults.loss) {
                continue;
            }
            let answer = remote.responder.respond(&remote.db, &request);
            assert!(
                answer.len() <= MAX_MESSAGE_BYTES,
                "answer of {} bytes",
                answer.len()
            );
            stats.largest_message = stats.largest_message.max(answer.len());
            if rng.gen_bool(faults.loss) {
                continue;
            }
            if rng.gen_bool(faults.repeat) {
                answers.push(answer.clone());
            }
            answers.push(answer);
        }
        answers.shuffle(rng);
        for answer in answers {
            match puller.receive(&answer)? {
                Received::Page(page) => match asker.db.accept_page(
                    remote.site,
                    (*page).clone(),
                    &AcceptPolicy::default(),
                ) {
                    Ok(outcome) => {
                        let outcome = outcome.applied;
                        stats.pages += 1;
                        stats.changes += page.changes.len();
                        if !page.group_complete {
                            // A part of a transaction is staged, never visible on its own.
                            assert_eq!(outcome.db_version_after, outcome.db_version_before);
                            stats.partial_pages += 1;
                        }
                    }
                    // A page already accepted by an earlier puller: start from the database.
                    Err(DbError::StaleCursor) => puller = new_puller(asker, remote.site, budget),
                    // As the daemon does: a remote restored since the cursor was taken is
                    // pulled again from the start.
                    Err(DbError::RemoteRestored) => {
                        stats.restored += 1;
                        asker.db.reset_cursor(remote.site).unwrap();
                        puller = new_puller(asker, remote.site, budget);
                    }
                    Err(err) => panic!("accept_page: {err}"),
                },
                Received::Ignored | Received::Progress { .. } => {}
            }
        }
    }
    panic!("pull did not finish");
}

fn contents(db: &Db) -> Vec<(String, Value, Option<i64>)> {
    let mut statement = db
        .connection()
        .prepare("select id, v, n from items order by id")
        .unwrap();
    statement
        .query_map([], |row| {
            let v = ddcp::db::value_from_sql(row.get_ref(1)?);
            Ok((row.get(0)?, v, row.get(2)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn random_edit(db: &Db, rng: &mut StdRng) {
    let id = format!("item-{}", rng.gen_range(0..12));
    let conn = db.connection();
    let value = match rng.gen_range(0..6) {
        0 => Value::Null,
        1 => Value::Integer(rng.r#gen()),
        2 => Value::Text("ü".repeat(rng.gen_range(0..300))),
        3 => Value::Blob(vec![rng.r#gen(); rng.gen_range(0..2000)]),
        // Now and then a value bigger than one message: fragments.
        4 => Value::Blob(vec![7; rng.gen_range(40_000..90_000)]),
        _ => Value::Real(0.5),
    };
    if rng.gen_bool(0.15) {
        conn.execute("delete from items where id = ?1", [&id])
            .unwrap();
    } else if rng.gen_bool(0.3) {
        // A multi-row transaction: a group that small page budgets must cut.
        conn.execute_batch("begin").unwrap();
        for k in 0..rng.gen_range(2..30) {
            conn.execute(
                "insert into items (id, v, n) values (?1, ?2, ?3) on conflict (id) do update set v = excluded.v, n = excluded.n",
                (format!("{id}-{k}"), ddcp::db::SqlValue(&value), k),
            )
            .unwrap();
        }
        conn.execute_batch("commit").unwrap();
    } else {
        conn.execute(
            "insert into items (id, v, n) values (?1, ?2, ?3) on conflict (id) do update set v = excluded.v, n = excluded.n",
            (&id, ddcp::db::SqlValue(&value), rng.gen_range(0..100)),
        )
        .unwrap();
    }
}

fn two_mut(peers: &mut [Peer], a: usize, b: usize) -> (&mut Peer, &mut Peer) {
    assert_ne!(a, b);
    if a < b {
        let (left, right) = peers.split_at_mut(b);
        (&mut left[a], &mut right[0])
    } else {
        let (left, right) = peers.split_at_mut(a);
        (&mut right[0], &mut left[b])
    }
}

#[test]
fn three_peers_converge_through_a_stormy_network() {
    for seed in 0..6u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let dir = tempfile::tempdir().unwrap();
        let mut peers: Vec<Peer> = ["a", "b", "c"]
            .iter()
            .map(|n| peer(dir.path(), n, SCHEMA))
            .collect();
        for _step in 0..30 {
            if rng.gen_bool(0.6) {
                random_edit(&peers[rng.gen_range(0..3)].db, &mut rng);
            } else {
                let (a, b) = (rng.gen_range(0..3), rng.gen_range(0..3));
                if a != b {
                    let budget = *[600u32, 4096, 256 << 10].choose(&mut rng).unwrap();
                    let (asker, remote) = two_mut(&mut peers, a, b);
                    pull(asker, remote, budget, STORMY, &mut rng).unwrap();
                }
            }
        }
        // Everyone pulls from everyone twice: relayed changes reach every peer.
        for _ in 0..2 {
            for (a, b) in [(0, 1), (1, 2), (2, 0), (1, 0), (2, 1), (0, 2)] {
                let (asker, remote) = two_mut(&mut peers, a, b);
                pull(asker, remote, 4096, STORMY, &mut rng).unwrap();
            }
        }
        let expected = contents(&peers[0].db);
        assert!(!expected.is_empty());
        for peer in &peers[1..] {
            assert!(
                contents(&peer.db) == expected,
                "seed {seed}: peers diverged"
            );
        }
        // Pulling again moves nothing: every cursor is at the end, nothing is applied twice.
        for (a, b) in [(0, 1), (1, 2), (2, 0)] {
            let (asker, remote) = two_mut(&mut peers, a, b);
            let before = asker.db.db_version().unwrap();
            let stats = pull(asker, remote, 4096, CALM, &mut rng).unwrap();
            assert_eq!(stats.changes, 0, "seed {seed}");
            assert_eq!(asker.db.db_version().unwrap(), before);
        }
    }
}

#[test]
fn a_5_mib_value_and_a_50k_row_transaction_travel_in_fragments() {
    let mut rng = StdRng::seed_from_u64(1);
    let dir = tempfile::tempdir().unwrap();
    let mut a = peer(dir.path(), "a", SCHEMA);
    let mut b = peer(dir.path(), "b", SCHEMA);
    let big: Vec<u8> = (0..5 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    a.db.connection()
        .execute("insert into items (id, v) values ('big', ?1)", [&big])
        .unwrap();
    a.db.connection()
        .execute_batch(
            "with recursive k(i) as (select 1 union all select i + 1 from k where i < 50000)
             insert into items (id, v, n) select 'row-' || i, 'value ' || i, i from k;",
        )
        .unwrap();
    let stats = pull(&mut b, &mut a, 256 << 10, STORMY, &mut rng).unwrap();
    assert!(stats.largest_message <= MAX_MESSAGE_BYTES);
    assert!(
        stats.pages > 2,
        "the 50k-row transaction is cut into parts: {stats:?}"
    );
    assert_eq!(contents(&b.db), contents(&a.db));
    let got: Vec<u8> =
        b.db.connection()
            .query_row("select v from items where id = 'big'", [], |r| r.get(0))
            .unwrap();
    assert!(got == big);
}

#[test]
fn changes_relay_from_a_through_b_to_c_and_never_echo_back() {
    let mut rng = StdRng::seed_from_u64(2);
    let dir = tempfile::tempdir().unwrap();
    let mut a = peer(dir.path(), "a", SCHEMA);
    let mut b = peer(dir.path(), "b", SCHEMA);
    let mut c = peer(dir.path(), "c", SCHEMA);
    a.db.connection()
        .execute_batch("insert into items values ('from-a', 'A wrote this', 1)")
        .unwrap();
    pull(&mut b, &mut a, 4096, CALM, &mut rng).unwrap();
    // C knows only B, and B never wrote this row.
    pull(&mut c, &mut b, 4096, CALM, &mut rng).unwrap();
    assert_eq!(contents(&c.db), contents(&a.db));
    let author: Vec<u8> =
        c.db.connection()
            .query_row(
                "select site_id from crsql_changes where pk = crsql_pack_columns('from-a') limit 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
    assert_eq!(
        author,
        a.site.0.to_vec(),
        "relayed rows keep their author's site id"
    );
    // A pulls from B: B holds only A's own rows, which are not sent back.
    let stats = pull(&mut a, &mut b, 4096, CALM, &mut rng).unwrap();
    assert_eq!(stats.changes, 0);
    assert_eq!(a.db.db_version().unwrap(), DbVersion(1));
}

/// b comes back from a backup, as `ddcp restore` brings it: its version counter is the backup's
/// again, so the rows it writes next get versions a has pulled past. a's cursor, taken in b's
/// life before the restore, would skip them; the pages' incarnation tells a to start over.
#[test]
fn rows_a_restored_remote_writes_are_not_skipped() {
    let mut rng = StdRng::seed_from_u64(5);
    let dir = tempfile::tempdir().unwrap();
    let mut a = peer(dir.path(), "a", SCHEMA);
    let mut b = peer(dir.path(), "b", SCHEMA);
    let write = |peer: &Peer, id: &str| {
        peer.db
            .connection()
            .execute("insert into items (id, v, n) values (?1, 'x', 1)", [id])
            .unwrap();
    };
    write(&b, "before-backup");
    let backup = dir.path().join("b-backup.db");
    b.db.backup_into(&backup).unwrap();
    for i in 0..5 {
        write(&b, &format!("after-backup-{i}"));
    }
    pull(&mut a, &mut b, 4096, CALM, &mut rng).unwrap();
    let pulled_to = a.db.cursor(b.site).unwrap().db_version;

    let site = b.site;
    b.db.close().unwrap();
    let mut restored = Db::open(&backup, &Extension::BuiltIn).unwrap();
    restored
        .begin_restored_life(&ddcp::db::AccessSince::default())
        .unwrap();
    let mut b = Peer {
        site: restored.site_id().unwrap(),
        db: restored,
        responder: Responder::default(),
    };
    assert_eq!(b.site, site);
    write(&b, "after-restore");
    assert!(
        b.db.db_version().unwrap() <= pulled_to,
        "the restored counter repeats versions a pulled"
    );
    // Past a's cursor, so that b does not simply say it does not know it.
    let mut more = 0;
    while b.db.db_version().unwrap() <= pulled_to {
        write(&b, &format!("more-{more}"));
        more += 1;
    }
    let stats = pull(&mut a, &mut b, 4096, CALM, &mut rng).unwrap();
    assert_eq!(stats.restored, 1);
    let at_a = contents(&a.db);
    for row in contents(&b.db) {
        assert!(at_a.contains(&row), "{row:?} skipped");
    }
    // Pulled again in the same life: no start over.
    write(&b, "later");
    let stats = pull(&mut a, &mut b, 4096, CALM, &mut rng).unwrap();
    assert_eq!(stats.restored, 0);
    assert!(contents(&a.db).iter().any(|(id, _, _)| id == "later"));
}

#[test]
fn peers_with_different_schemas_exchange_nothing() {
    let mut rng = StdRng::seed_from_u64(3);
    let dir = tempfile::tempdir().unwrap();
    let mut a = peer(dir.path(), "a", SCHEMA);
    let other = "create table items (id text primary key not null, v, n integer, extra text);
                 select crsql_as_crr('items');";
    let mut b = peer(dir.path(), "b", other);
    a.db.connection()
        .execute_batch("insert into items values ('x', 1, 1)")
        .unwrap();
    let (a_before, b_before) = (a.db.db_version().unwrap(), b.db.db_version().unwrap());
    let err = pull(&mut b, &mut a, 4096, CALM, &mut rng).unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::SchemaMismatch), "{err}");
    assert_eq!(a.db.db_version().unwrap(), a_before);
    assert_eq!(b.db.db_version().unwrap(), b_before);
    assert!(contents(&b.db).is_empty());
    // The puller asks for the remote's schema to name the difference.
    let answer = a.responder.respond(&a.db, &schema_request());
    let remote_schema = SchemaFetch::new().receive(&answer).unwrap().unwrap().shape;
    assert_eq!(
        b.db.schema().unwrap().difference(&remote_schema).unwrap(),
        "column items.extra is missing there"
    );
}

#[test]
fn garbage_from_a_peer_is_an_error_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = peer(dir.path(), "a", SCHEMA);
    let b = peer(dir.path(), "b", SCHEMA);
    let mut puller = new_puller(&b, a.site, 4096);
    for garbage in [
        &b""[..],
        b"\x00\x00\x00\x00",
        &[0xff; 64][..],
        b"hello, this is not capnp at all",
    ] {
        assert!(puller.receive(garbage).is_err());
        let answer = a.responder.respond(&a.db, garbage);
        assert!(matches!(
            ddcp::sync::codec::decode_message(&answer).unwrap(),
            ddcp::sync::protocol::Message::Error(e) if e.code == ErrorCode::Malformed
        ));
    }
}
