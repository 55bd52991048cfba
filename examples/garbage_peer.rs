//! A hostile peer for the network tests: it publishes a Status like a ddcp database, then
//! answers every call with garbage. `random`: bytes that decode as nothing; `lying`: a
//! well-formed page whose change names a table that does not exist, with an empty primary key
//! (cr-sqlite would abort on it if ddcp let it through).
//!
//!   garbage_peer random|lying STATE_DIR     (network settings from VEILID_* as for ddcp)
//!
//! Prints the record key on stdout, then serves until killed.

use std::path::PathBuf;
use std::time::Duration;

use ddcp::net::{NetEvent, NetworkSettings, Node, create_record_identity};
use ddcp::sync::codec::{encode_message, encode_status};
use ddcp::sync::compress::Compression;
use ddcp::sync::ids::Seq;
use ddcp::sync::protocol::{ChangesPage, Message, Status};
use ddcp::sync::{Change, Cursor, DbVersion, SchemaFingerprint, SiteId, Value};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(dir)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: garbage_peer random|lying STATE_DIR");
        std::process::exit(2);
    };
    let lying = match mode.as_str() {
        "random" => false,
        "lying" => true,
        _ => panic!("mode must be random or lying"),
    };
    let env = |name: &str| std::env::var(name).ok();
    let settings = NetworkSettings {
        bootstrap_records: env("VEILID_BOOTSTRAP").into_iter().collect(),
        network_key: env("VEILID_NETWORK_KEY"),
        listen: env("VEILID_LISTEN"),
    };
    let mut node = Node::start(&PathBuf::from(dir), &settings)
        .await
        .expect("start");
    let identity = create_record_identity(&node).await.expect("record");
    node.attach(Duration::from_secs(120)).await.expect("attach");
    let network = node.network().clone();
    network.open_own_record(&identity).await.expect("open");
    let route = network.new_route().await.expect("route");
    let site_id = SiteId([7; 16]);
    let status = Status {
        site_id,
        db_version: DbVersion(1000),
        schema_fingerprint: SchemaFingerprint([0; 32]),
        route: route.blob,
        public_key: Vec::new(),
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
        let answer = if lying {
            lie(site_id)
        } else {
            answers.to_le_bytes().repeat(100)
        };
        let _ = network.reply(call.id, answer).await;
    }
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
        changes: vec![change],
    };
    encode_message(&Message::ChangesPage(page), Compression::None)
}
