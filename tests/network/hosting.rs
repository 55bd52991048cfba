//! `ddcp serve --databases DIR`: many databases served by one process on one Veilid node.

use std::time::Duration;

use crate::common::example_peers::Flood;
use crate::common::metrics::{sample, scrape};
use crate::common::private_net::{Peer, TestNet, inside_private_network, runtime, wait_until};
use crate::{ARRIVAL, Answered, answered, member_keys, open_when_reachable};

/// Where `peer` stands with its remote `name`, as `ddcp status` says it.
fn status_of(peer: &Peer) -> String {
    peer.run(&["status"]).ok().to_string()
}

/// x and y, both private, are served by one `ddcp serve --databases`: x made by `ddcp init` in
/// its folder and served alone once before, y made by `ddcp host add` while the host serves.
/// bob is x's member only, carol y's. Each replicates with its own member, both ways, and
/// refuses the other; a call on y's route is answered by y alone, even one x would answer.
/// y's folder taken away stops y alone: x goes on; put back, y serves again. Removed and added
/// again live, y stops and serves again.
#[test]
fn one_serve_hosts_two_private_databases_and_a_broken_one_stops_alone() {
    if !inside_private_network!() {
        return;
    }
    use ddcp::net::Node;
    use ddcp::pull::open_published;
    use ddcp::sync::RecordKey;
    use ddcp::sync::codec::encode_message;
    use ddcp::sync::compress::Compression;
    use ddcp::sync::protocol::{ErrorCode, Message};
    use ddcp::sync::seal::authenticate;

    let net = TestNet::start();
    let mut host = Peer::empty(&net, "host", 5);
    let dir = host.site.dir.path().to_path_buf();
    let mut x = Peer::hosted_in(&net, &dir, "x", 5);
    let y = Peer::hosted_empty(&net, &dir, "y", 5);
    let mut bob = Peer::new(&net, "bob", 6);
    let mut carol = Peer::new(&net, "carol", 7);
    x.run(&["remote", "add", "bob", &bob.key()]).ok();
    // x was made by `ddcp init` in its folder: its first serve there publishes its record.
    x.serve();
    wait_until(ARRIVAL, "a first publish", || {
        x.log().contains("updated status").then_some(())
    });
    x.stop();
    host.serve_with(&["--databases", ".", "--metrics-addr", "127.0.0.1:9120"]);
    // y is made by the host, on its node, while it serves.
    let added = wait_until(ARRIVAL, "the host to take `host add`", || {
        let run = host.run(&["host", "add", "y", "--databases", "."]);
        (run.code == 0).then(|| run.stdout.trim().to_string())
    });
    assert_eq!(added, y.key());
    y.run_with_input(&["shell"], &crate::common::fixture("cr_tables.sql"))
        .ok();
    for (db, member) in [(&x, &bob), (&y, &carol)] {
        assert_eq!(db.run(&["access", "private"]).ok().trim(), "private");
        let id = member.run(&["id"]).ok().trim().to_string();
        db.run(&["member", "add", member.name, &id]).ok();
    }
    x.sql("insert into bookmarks (id, url) values ('x1', 'https://x/1')");
    y.sql("insert into bookmarks (id, url) values ('y1', 'https://y/1')");
    let (x_key, y_key) = (x.key(), y.key());
    for peer in [&bob, &carol] {
        peer.run(&["remote", "add", "x", &x_key]).ok();
        peer.run(&["remote", "add", "y", &y_key]).ok();
    }
    bob.serve();
    carol.serve();

    // Each database replicates with its member, both ways.
    bob.wait_for(
        "select count(*) from bookmarks where id = 'x1'",
        "1",
        ARRIVAL,
    );
    carol.wait_for(
        "select count(*) from bookmarks where id = 'y1'",
        "1",
        ARRIVAL,
    );
    bob.sql("insert into bookmarks (id, url) values ('b1', 'https://b/1')");
    x.wait_for(
        "select count(*) from bookmarks where id = 'b1'",
        "1",
        ARRIVAL,
    );
    // Its lines name the database.
    assert!(
        host.log()
            .contains("db{db=x}: ddcp: Pulled changes from remote database"),
        "{}",
        host.log()
    );
    // And refuses the other's.
    wait_until(ARRIVAL, "bob to be refused by y", || {
        status_of(&bob).contains("not a member").then_some(())
    });
    wait_until(ARRIVAL, "carol to be refused by x", || {
        status_of(&carol).contains("not a member").then_some(())
    });
    assert_eq!(
        bob.sql("select count(*) from bookmarks where id like 'y%'")
            .trim(),
        "0"
    );
    assert_eq!(
        carol
            .sql("select count(*) from bookmarks where id like 'x%'")
            .trim(),
        "0"
    );
    // Each database's metrics carry its name; the node's, none.
    let text = scrape(9120);
    for db in ["x", "y"] {
        let version = sample(&text, &format!("ddcp_db_version{{db=\"{db}\"}}"));
        assert!(version > Some(0.0), "{db}: {text}");
    }
    assert!(
        sample(&text, r#"ddcp_changes_applied_total{remote="bob",db="x"}"#) > Some(0.0),
        "{text}"
    );
    assert_eq!(sample(&text, "ddcp_veilid_ready"), Some(1.0), "{text}");
    // Each database's status is its own, read through its own state dir's socket.
    assert!(status_of(&x).contains("bob"), "{}", status_of(&x));

    // A call reaches the database whose route it came in on, and no other: bob's request, which
    // x answers, is refused on y's route; carol's the other way round.
    let bob_keys = member_keys(&bob);
    let carol_keys = member_keys(&carol);
    runtime().block_on(async {
        let node_dir = tempfile::tempdir().unwrap();
        let node = Node::start(&node_dir.path().join("veilid"), &net.node_settings(9))
            .await
            .unwrap();
        node.attach(ARRIVAL).await.unwrap();
        let network = node.network().clone();
        let schema_request = encode_message(&Message::SchemaRequest, Compression::None);
        let mut doors = Vec::new();
        for (key, keys) in [(&x_key, &bob_keys), (&y_key, &carol_keys)] {
            let key: RecordKey = key.parse().unwrap();
            open_when_reachable(&network, &key).await;
            let raw = network.read_record(&key).await.unwrap().unwrap();
            let opened = open_published(keys, &key, &raw).unwrap();
            let request = authenticate(
                keys,
                &key,
                opened.session.unwrap().epoch,
                schema_request.clone(),
            );
            let wire = encode_message(&Message::Authenticated(request), Compression::None);
            doors.push((network.import_route(&opened.status.route).unwrap(), wire));
        }
        let call = |route: &ddcp::net::ImportedRoute, wire: &Vec<u8>| {
            let (network, route, wire) = (network.clone(), route.id().clone(), wire.clone());
            async move { answered(&network.call(&route, wire).await.unwrap()) }
        };
        let (x_route, bobs) = &doors[0];
        let (y_route, carols) = &doors[1];
        assert_eq!(call(x_route, bobs).await, Answered::Sealed);
        assert_eq!(call(y_route, carols).await, Answered::Sealed);
        assert_eq!(
            call(y_route, bobs).await,
            Answered::Refused(ErrorCode::NotAllowed),
            "y answered a request of x's member"
        );
        assert_eq!(
            call(x_route, carols).await,
            Answered::Refused(ErrorCode::NotAllowed),
            "x answered a request of y's member"
        );
        drop(doors);
        node.shutdown().await;
    });

    // A member flooding x (bob's identity, 48 signed calls at once, again as soon as answered)
    // is shed by x's own queue; y's rows still reach carol, and y sheds nothing.
    let flood = Flood::start_member(&net, &x_key, &bob.site.path(".ddcp/member"), 9);
    wait_until(ARRIVAL, "the flood on x to be told tooBusy", || {
        (flood.counts().busy > 0).then_some(())
    });
    for n in 1..=3 {
        y.sql(&format!(
            "insert into bookmarks (id, url) values ('yf{n}', 'https://y/f{n}')"
        ));
        carol.wait_for(
            "select count(*) from bookmarks where id like 'yf%'",
            &n.to_string(),
            ARRIVAL,
        );
    }
    let text = scrape(9120);
    assert!(
        sample(&text, r#"ddcp_requests_shed_total{reason="busy",db="x"}"#) > Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"ddcp_requests_shed_total{reason="busy",db="y"}"#),
        None,
        "{text}"
    );
    drop(flood);

    // y's folder taken away: y stops, alone.
    let away = dir.join(".away-y");
    std::fs::rename(dir.join("y"), &away).unwrap();
    wait_until(ARRIVAL, "y to stop", || {
        host.log()
            .contains("was removed while served")
            .then_some(())
    });
    bob.sql("insert into bookmarks (id, url) values ('b2', 'https://b/2')");
    x.sql("insert into bookmarks (id, url) values ('x2', 'https://x/2')");
    x.wait_for(
        "select count(*) from bookmarks where id = 'b2'",
        "1",
        ARRIVAL,
    );
    bob.wait_for(
        "select count(*) from bookmarks where id = 'x2'",
        "1",
        ARRIVAL,
    );
    let status = host.run(&["host", "status"]).ok().to_string();
    assert!(status.contains("y: waiting to start again"), "{status}");
    // `ddcp status` in the host's folder, where there is no database, is the host's.
    let here = host.run(&["status"]).ok().to_string();
    assert!(here.contains("y: waiting to start again"), "{here}");
    assert!(here.contains("x: serving"), "{here}");
    assert!(status.contains("x: serving"), "{status}");
    // Put back, it serves again: carol gets what it wrote since.
    std::fs::rename(&away, dir.join("y")).unwrap();
    y.sql("insert into bookmarks (id, url) values ('y2', 'https://y/2')");
    carol.wait_for(
        "select count(*) from bookmarks where id = 'y2'",
        "1",
        ARRIVAL + Duration::from_secs(60),
    );
    assert!(
        host.log().contains("A database started again"),
        "{}",
        host.log()
    );
    for peer in [&mut host, &mut bob, &mut carol] {
        peer.stop();
    }
}

/// Two databases of one host pulling each other: both ends on the same node, each call going
/// out by one database's route and in by the other's.
#[test]
fn two_databases_of_one_host_replicate_with_each_other() {
    if !inside_private_network!() {
        return;
    }
    let net = TestNet::start();
    let mut host = Peer::empty(&net, "host", 5);
    let dir = host.site.dir.path().to_path_buf();
    let p = Peer::hosted_empty(&net, &dir, "p", 5);
    let q = Peer::hosted_empty(&net, &dir, "q", 5);
    host.serve_with(&["--databases", "."]);
    for db in [&p, &q] {
        wait_until(ARRIVAL, "the host to take `host add`", || {
            (host.run(&["host", "add", db.name]).code == 0).then_some(())
        });
        db.run_with_input(&["shell"], &crate::common::fixture("cr_tables.sql"))
            .ok();
    }
    p.run(&["remote", "add", "q", &q.key()]).ok();
    q.run(&["remote", "add", "p", &p.key()]).ok();
    p.sql("insert into bookmarks (id, url) values ('p1', 'https://p/1')");
    q.wait_for(
        "select count(*) from bookmarks where id = 'p1'",
        "1",
        ARRIVAL,
    );
    q.sql("insert into bookmarks (id, url) values ('q1', 'https://q/1')");
    p.wait_for(
        "select count(*) from bookmarks where id = 'q1'",
        "1",
        ARRIVAL,
    );
    // Again, after the pulls released the routes they imported: each database's own route
    // still answers.
    p.sql("insert into bookmarks (id, url) values ('p2', 'https://p/2')");
    q.wait_for(
        "select count(*) from bookmarks where id = 'p2'",
        "1",
        ARRIVAL,
    );
    host.stop();
}
