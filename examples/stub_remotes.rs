//! Many databases with nothing to give, from one Veilid node, for the benches that need many
//! remotes up to date (benches/idle_remotes.rs): N records, each publishing the Status of a
//! database of its own (its own site id and private route, version 0), and every request for
//! changes on a route answered with that database's empty last page (and a request for its schema
//! with a schema of no tables, which every database fits). Each Status is written again on the
//! schedule a serve's publisher keeps ([`ddcp::net::RefreshPauses`]), so that a bench's
//! newcomers find the stubs as they find real databases.
//!
//!   stub_remotes N STATE_DIR     prints the N record keys, one a line, then answers until killed
//!
//! Network settings come from VEILID_* as for ddcp.

#[path = "support/network_env.rs"]
mod network_env;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use ddcp::net::{
    NetEvent, Network, Node, RecordIdentity, RefreshPauses, RouteId, create_record_identity,
};
use ddcp::sync::codec::{decode_message, encode_message, encode_status};
use ddcp::sync::compress::Compression;
use ddcp::sync::ids::Incarnation;
use ddcp::sync::protocol::{ChangesPage, ErrorCode, Message, ProtocolError, Status};
use ddcp::sync::{DbVersion, SchemaDesc, SiteId};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(count), Some(dir)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: stub_remotes N STATE_DIR");
        std::process::exit(2);
    };
    let count: u8 = count.parse().expect("N from 1 to 255");
    let mut node = Node::start(&PathBuf::from(dir), &network_env::settings())
        .await
        .expect("start");
    node.attach(Duration::from_secs(120)).await.expect("attach");
    let network = node.network().clone();
    let mut sites: HashMap<RouteId, SiteId> = HashMap::new();
    let mut keys = Vec::new();
    let mut written = Vec::new();
    for i in 1..=count {
        let identity = create_record_identity(node.network())
            .await
            .expect("record");
        network.open_own_record(&identity).await.expect("open");
        let route = network.new_route().await.expect("route");
        let site_id = SiteId([i; 16]);
        let status = Status {
            site_id,
            db_version: DbVersion(0),
            // A schema of no tables: every database fits it, so pulls go on to ask for pages.
            schema_fingerprint: SchemaDesc::default().fingerprint(),
            route: route.blob,
            public_key: Vec::new(),
            incarnation: Incarnation(u64::from(i)),
            history: Default::default(),
        };
        let bytes = encode_status(&status);
        network
            .publish(&identity, bytes.clone())
            .await
            .expect("publish");
        sites.insert(route.id, site_id);
        keys.push(identity.key.reveal().to_string());
        written.push((identity, bytes));
    }
    tokio::spawn(refresh(network.clone(), written));
    for key in keys {
        println!("{key}");
    }
    let mut events = node.take_events();
    while let Some(event) = events.recv().await {
        let NetEvent::Call(call) = event else {
            continue;
        };
        let site = call.route.as_ref().and_then(|route| sites.get(route));
        let answer = match (site, decode_message(&call.message)) {
            (Some(&site_id), Ok(Message::ChangesRequest(request))) => {
                Message::ChangesPage(ChangesPage {
                    site_id,
                    since: request.since.clone(),
                    after: request.since,
                    group_complete: true,
                    more: false,
                    db_version: DbVersion(0),
                    incarnation: Incarnation(u64::from(site_id.0[0])),
                    changes: Vec::new(),
                    rows: Vec::new(),
                })
            }
            (Some(_), Ok(Message::SchemaRequest)) => Message::Schema(Default::default()),
            _ => Message::Error(ProtocolError::new(ErrorCode::Malformed, "a stub")),
        };
        let _ = network
            .reply(call.id, encode_message(&answer, Compression::None))
            .await;
    }
}

/// Writes each stub's unchanged Status again, as a serve's publisher does.
async fn refresh(network: Network, written: Vec<(RecordIdentity, Vec<u8>)>) {
    let mut pauses = RefreshPauses::spread();
    let mut pause = pauses.after_change();
    loop {
        tokio::time::sleep(pause).await;
        for (identity, bytes) in &written {
            // A failed rewrite stands until the next, as in the publisher.
            let _ = network.rewrite(identity, bytes.clone()).await;
        }
        pause = pauses.after_refresh();
    }
}
