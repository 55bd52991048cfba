//! A hostile peer for the network tests. `random`, `lying` and `repeating` publish a Status
//! like a ddcp database, then answer every call with garbage: `random`, bytes that decode as
//! nothing; `lying`, a well-formed page whose change names a table that does not exist, with an
//! empty primary key (cr-sqlite would abort on it if ddcp let it through); `repeating`, the
//! manifest of a fragmented answer to a page request, and its first fragment to every other
//! call, forever; `bombing`, a well-formed page of one new bookmark whose changes claim
//! db_version 2^53, the end of the range peers accept (merged as given, the puller's next own
//! write would be past it), then empty pages. `flood` calls a database as fast as it can, many calls at once, each asking
//! for the most expensive page there is and to be told of its new versions (each call with a
//! token of its own: as many listens as it can make); with a NOTE_TARGET_KEY it also sends that
//! database forged notes (random tokens, huge versions) on the route its Status names.
//! `member_flood` floods as `flood` does, as a member of a private database: every call signed
//! with the member identity in MEMBER_FILE (a state dir's `member` file).
//!
//!   garbage_peer random|lying|repeating|bombing STATE_DIR
//!                                             prints its record key, then serves until killed
//!   garbage_peer flood STATE_DIR TARGET_KEY [NOTE_TARGET_KEY]
//!   garbage_peer member_flood STATE_DIR TARGET_KEY MEMBER_FILE
//!                                             print `answers=N busy=N failed=N notes=N` every second
//!
//! Network settings come from VEILID_* as for ddcp.

#[path = "support/network_env.rs"]
mod network_env;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ddcp::net::{NetEvent, Node, create_record_identity};
use ddcp::sync::codec::{decode_message, encode_message, encode_status};
use ddcp::sync::compress::Compression;
use ddcp::sync::fragment::{self, FRAGMENT_BYTES};
use ddcp::sync::ids::{Incarnation, Seq};
use ddcp::sync::protocol::{
    ChangesPage, ChangesRequest, ErrorCode, Fragment, Listen, ListenToken, Message, Note, Status,
};
use ddcp::sync::serve::MAX_PAGE_BUDGET;
use ddcp::sync::{Change, Cursor, DbVersion, RecordKey, SchemaDesc, SiteId, Value};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(dir)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: garbage_peer random|lying|repeating|bombing STATE_DIR");
        std::process::exit(2);
    };
    let garbage = match mode.as_str() {
        "random" => Garbage::Random,
        "lying" => Garbage::Lying,
        "repeating" => Garbage::Repeating,
        "bombing" => Garbage::Bombing,
        "flood" => {
            let target: RecordKey = args.get(3).expect("TARGET_KEY").parse().expect("a key");
            let note_target: Option<RecordKey> = args.get(4).map(|key| key.parse().expect("a key"));
            return flood(PathBuf::from(dir), target, note_target, None).await;
        }
        "member_flood" => {
            let target: RecordKey = args.get(3).expect("TARGET_KEY").parse().expect("a key");
            let file = std::fs::read_to_string(args.get(4).expect("MEMBER_FILE")).expect("read");
            let secret = file
                .lines()
                .find_map(|line| line.strip_prefix("secret "))
                .expect("a member file");
            let member = ddcp::sync::MemberKeys::from_revealed(secret).expect("a member key");
            return flood(PathBuf::from(dir), target, None, Some(member)).await;
        }
        _ => panic!("mode must be random, lying, repeating, bombing, flood or member_flood"),
    };
    let mut node = Node::start(&PathBuf::from(dir), &network_env::settings())
        .await
        .expect("start");
    let identity = create_record_identity(node.network())
        .await
        .expect("record");
    node.attach(Duration::from_secs(120)).await.expect("attach");
    let network = node.network().clone();
    network.open_own_record(&identity).await.expect("open");
    let route = network.new_route().await.expect("route");
    // A site of each kind's own: a puller keeps one cursor per site.
    let site_id = SiteId([7 + garbage as u8; 16]);
    let status = Status {
        site_id,
        db_version: DbVersion(1000),
        // A schema of no tables: every database fits it, so pulls go on to ask for pages.
        schema_fingerprint: SchemaDesc::default().fingerprint(),
        route: route.blob,
        public_key: Vec::new(),
        incarnation: Incarnation(1),
        history: Default::default(),
    };
    network
        .publish(&identity, encode_status(&status))
        .await
        .expect("publish");
    println!("{}", identity.key.reveal());
    let mut events = node.take_events();
    let mut answers = 0u64;
    while let Some(event) = events.recv().await {
        let NetEvent::Call(call) = event else {
            continue;
        };
        answers += 1;
        // The schema step is answered honestly (no tables), the pages are the garbage.
        if let Ok(Message::SchemaRequest) = decode_message(&call.message) {
            let schema = Message::Schema(Default::default());
            let _ = network
                .reply(call.id, encode_message(&schema, Compression::None))
                .await;
            continue;
        }
        let answer = match garbage {
            Garbage::Random => answers.to_le_bytes().repeat(100),
            Garbage::Lying => lie(site_id),
            Garbage::Repeating => repeat(&call.message),
            Garbage::Bombing => bomb(site_id, &call.message),
        };
        let _ = network.reply(call.id, answer).await;
    }
}

/// What a garbage peer answers.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Garbage {
    Random,
    Lying,
    Repeating,
    Bombing,
}

/// Calls in flight at once while flooding: more than a database answers at once.
const FLOOD_CALLS: usize = 48;

/// Asks `target` for its first page, the largest a responder grants, from [`FLOOD_CALLS`]
/// tasks at once, forever, each asking to be told with a token of its own (signed as `member`
/// when given); sends `note_target` forged notes; counts the answers by kind, and the notes
/// sent.
async fn flood(
    dir: PathBuf,
    target: RecordKey,
    note_target: Option<RecordKey>,
    member: Option<ddcp::sync::MemberKeys>,
) {
    let node = Node::start(&dir, &network_env::settings())
        .await
        .expect("start");
    node.attach(Duration::from_secs(120)).await.expect("attach");
    let network = node.network().clone();
    // A public target's Status opens for anyone: then this identity is never a member.
    let flooder = member.unwrap_or_else(ddcp::sync::MemberKeys::generate);
    let view = loop {
        // The target may not have published yet.
        if network.open_record(&target).await.is_ok()
            && let Ok(view) = ddcp::pull::read_status(&network, &flooder, &target).await
        {
            break view;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let (status, session) = (view.status, view.session);
    let imported = network.import_route(&status.route).expect("route");
    let route = imported.id().clone();
    // Its own route, for the listens: the notes it is sent come back to it, unread.
    let own_route = network.new_route().await.expect("own route");
    let counts = Arc::new([(); 4].map(|()| AtomicU64::new(0)));
    for _ in 0..FLOOD_CALLS {
        let request = encode_message(
            &Message::ChangesRequest(ChangesRequest {
                asker: SiteId([9; 16]),
                since: Cursor::START,
                max_bytes: MAX_PAGE_BUDGET,
                schema_fingerprint: status.schema_fingerprint,
                listen: Some(Listen {
                    route: own_route.blob.clone(),
                    token: ListenToken::random(),
                }),
            }),
            Compression::None,
        );
        let (network, route, counts) = (network.clone(), route.clone(), Arc::clone(&counts));
        let (flooder, target) = (flooder.clone(), target.clone());
        tokio::spawn(async move {
            loop {
                // A member's call is signed anew each time, as a puller's is.
                let call = match session {
                    Some(session) => encode_message(
                        &Message::Authenticated(ddcp::sync::seal::authenticate(
                            &flooder,
                            &target,
                            session.epoch,
                            request.clone(),
                        )),
                        Compression::None,
                    ),
                    None => request.clone(),
                };
                let kind = match network.call(&route, call).await {
                    Ok(answer) => match decode_message(&answer) {
                        Ok(Message::Error(error)) if error.code == ErrorCode::TooBusy => 1,
                        _ => 0,
                    },
                    Err(_) => 2,
                };
                counts[kind].fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    if let Some(note_target) = note_target {
        tokio::spawn(forge_notes(
            network.clone(),
            flooder,
            note_target,
            Arc::clone(&counts),
        ));
    }
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let [answers, busy, failed, notes] =
            counts.each_ref().map(|count| count.load(Ordering::Relaxed));
        println!("answers={answers} busy={busy} failed={failed} notes={notes}");
    }
}

/// Sends `target` notes no database of its remotes sent: random tokens, versions far ahead;
/// counts them in `counts[3]`.
async fn forge_notes(
    network: ddcp::net::Network,
    me: ddcp::sync::MemberKeys,
    target: RecordKey,
    counts: Arc<[AtomicU64; 4]>,
) {
    let status = loop {
        if network.open_record(&target).await.is_ok()
            && let Ok(view) = ddcp::pull::read_status(&network, &me, &target).await
        {
            break view.status;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let imported = network.import_route(&status.route).expect("route");
    loop {
        let note = Message::Note(Note {
            token: ListenToken::random(),
            db_version: DbVersion(1 << 40),
            incarnation: Incarnation(7),
        });
        let bytes = encode_message(&note, Compression::None);
        if network.message(imported.id(), bytes).await.is_ok() {
            counts[3].fetch_add(1, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// To a page request, the manifest of an answer of three fragments; to anything else, the
/// first of them: the puller never gets the other two.
fn repeat(question: &[u8]) -> Vec<u8> {
    let answer = vec![7; FRAGMENT_BYTES * 2 + 1];
    let manifest = fragment::manifest(&answer);
    let message = match decode_message(question) {
        Ok(Message::ChangesRequest(_)) => Message::Fragmented(manifest),
        _ => Message::Fragment(Fragment {
            hash: manifest.hash,
            index: 0,
            bytes: fragment::fragment(&answer, 0).unwrap().to_vec(),
        }),
    };
    encode_message(&message, Compression::None)
}

/// A page that follows the protocol's form and breaks the database's rules.
fn lie(site_id: SiteId) -> Vec<u8> {
    let change = Change {
        table: "no_such_table".into(),
        pk: Vec::new(),
        cid: "x".into(),
        val: Value::Integer(1),
        col_version: 1,
        db_version: DbVersion(1),
        site_id,
        cl: 1,
        seq: Seq(0),
    };
    let page = ChangesPage {
        site_id,
        since: Cursor::START,
        after: Cursor::after_group(DbVersion(1)),
        group_complete: true,
        more: false,
        db_version: DbVersion(1000),
        incarnation: Incarnation(1),
        changes: vec![change],
        rows: Vec::new(),
    };
    encode_message(&Message::ChangesPage(page), Compression::None)
}

/// The version `bombing` claims for its changes: the largest a change may carry.
const BOMB_VERSION: DbVersion = DbVersion(ddcp::sync::validate::MAX_COUNTER);

/// To the first page request, a new bookmark ('bomb') whose changes claim [`BOMB_VERSION`];
/// to any later one, an empty page where the asker stands.
fn bomb(site_id: SiteId, question: &[u8]) -> Vec<u8> {
    let since = match decode_message(question) {
        Ok(Message::ChangesRequest(request)) => request.since,
        _ => Cursor::START,
    };
    // cr-sqlite's packing of the one-column text key 'bomb'.
    let pk = vec![1, 0x0b, 4, b'b', b'o', b'm', b'b'];
    let cell = |cid: &str, val: Value, seq: i64| Change {
        table: "bookmarks".into(),
        pk: pk.clone(),
        cid: cid.into(),
        val,
        col_version: 1,
        db_version: BOMB_VERSION,
        site_id,
        cl: 1,
        seq: Seq(seq),
    };
    let (changes, after) = if since == Cursor::START {
        let changes = vec![
            cell("-1", Value::Null, 0),
            cell("url", Value::Text("https://bomb/".into()), 1),
        ];
        (changes, Cursor::after_group(BOMB_VERSION))
    } else {
        (Vec::new(), since.clone())
    };
    let page = ChangesPage {
        site_id,
        since,
        after,
        group_complete: true,
        more: false,
        db_version: BOMB_VERSION,
        incarnation: Incarnation(1),
        changes,
        rows: Vec::new(),
    };
    encode_message(&Message::ChangesPage(page), Compression::None)
}
