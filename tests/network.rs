//! Replication over a real private Veilid network: `ddcp testnet`'s plain nodes plus one
//! `ddcp` process per peer, each test in a network namespace of its own (scripts/netns.sh).

mod common;
#[path = "network/hosting.rs"]
mod hosting;

use std::time::Duration;

use common::browser::{Browser, Page};
use common::curl_lines::CurlLines;
use common::example_peers::example_program;
use common::fixture;
use common::metrics::{sample, scrape};
use common::private_net::{self, Peer, TestNet, inside_private_network, runtime};

/// How long a change may take to show up on a peer before the test fails. Generous: on two
/// shared cores and a debug build the first pull waits for the DHT to find a record.
pub(crate) const ARRIVAL: Duration = Duration::from_secs(120);

const BOOKMARKS: &str = "select id, url, title from bookmarks order by id";
const TAGS: &str = "select bookmark_id, tag from tags order by 1, 2";

/// The harness's guard: a network test's inner run that matches no test fails the outer one
/// (before, a test whose name was written again by hand passed once renamed: it ran nothing).
#[test]
#[should_panic(expected = "did not run exactly one test")]
fn a_network_test_whose_inner_run_matches_no_test_fails() {
    private_net::test_inside_private_network("no_test_is_named_this");
}

#[test]
fn a_network_test_is_run_inside_by_its_own_name() {
    assert_eq!(
        private_net::this_test_name!(),
        "a_network_test_is_run_inside_by_its_own_name"
    );
    assert_eq!(
        private_net::passed_tests(
            "test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 21 filtered out; finished in 3.2s"
        ),
        Some(1)
    );
    assert_eq!(
        private_net::passed_tests("test result: FAILED. 0 passed; 1 failed;"),
        None
    );
}

fn rows(peer: &Peer) -> String {
    peer.sql(&format!("{BOOKMARKS}; {TAGS}"))
}

#[test]
fn the_seed_readme_session_replicates_both_ways() {
    if !inside_private_network!() {
        return;
    }
    let net = TestNet::start();
    let mut alice = Peer::new(&net, "alice", 5);
    alice
        .run_with_input(&["shell"], &fixture("ins_test_schema_alice.sql"))
        .ok();
    let mut bob = Peer::new(&net, "bob", 6);
    bob.use_network_file();
    let alice_key = alice.key();
    let bob_key = bob.key();
    // The VLD0: prefix is optional.
    bob.run(&[
        "remote",
        "add",
        "alice",
        alice_key.trim_start_matches("VLD0:"),
    ])
    .ok();
    alice.run(&["remote", "add", "bob", &bob_key]).ok();
    // Each with the HTTP API apps use (issue 24), on loopback in this test's namespace, and
    // the example BBS app's page beside it.
    let bbs = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/bbs");
    for peer in [&alice, &bob] {
        let schema = std::fs::read(format!("{bbs}/schema.sql")).unwrap();
        peer.run_with_input(&["shell"], &schema).ok();
    }
    alice.serve_with(&["--api", "127.0.0.1:7701", "--app", bbs]);
    bob.serve_with(&["--api", "127.0.0.1:7702", "--app", bbs]);

    bob.wait_for("select count(*) from bookmarks", "3", ARRIVAL);
    bob.wait_for("select count(*) from tags", "4", ARRIVAL);
    assert!(
        bob.log()
            .contains(r#"Pulled changes from remote database remote_name="alice""#),
        "{}",
        bob.log()
    );
    assert!(
        alice.log().contains("Database changed, updated status"),
        "{}",
        alice.log()
    );
    // The seed's own line, its key without the secret.
    let serving = format!(
        r#"Serving database at DHT key="{}" remotes=1"#,
        alice_key.rsplit_once(':').unwrap().0
    );
    assert!(alice.log().contains(&serving), "{}", alice.log());

    bob.sql("update bookmarks set title = 'Veilid, by bob' where url = 'https://veilid.com/'");
    alice.wait_for(
        "select title from bookmarks where url = 'https://veilid.com/'",
        "Veilid, by bob",
        ARRIVAL,
    );

    // Schema evolution (issue 23): alice's app adds a column while bob still runs the old
    // version. Her edit of a column both have reaches bob now; the new column's value is held
    // at bob, shown by `ddcp status`, and lands the moment bob's app adds the column, without
    // another pull.
    const ADD_NOTE: &str = "select crsql_begin_alter('bookmarks');
        alter table bookmarks add column note text;
        select crsql_commit_alter('bookmarks');";
    alice.sql(ADD_NOTE);
    alice.sql(
        "update bookmarks set title = 'Veilid, v2', note = 'read later'
         where url = 'https://veilid.com/'",
    );
    bob.wait_for(
        "select title from bookmarks where url = 'https://veilid.com/'",
        "Veilid, v2",
        ARRIVAL,
    );
    let status: serde_json::Value =
        serde_json::from_str(bob.run(&["status", "--json"]).ok()).unwrap();
    assert_eq!(
        status["held"],
        serde_json::json!([{"table": "bookmarks", "column": "note", "changes": 1}]),
        "{status}"
    );
    assert!(
        bob.run(&["status"])
            .ok()
            .contains("held:        1 changes for bookmarks.note: this database lacks the column")
    );
    bob.sql(ADD_NOTE);
    bob.wait_for(
        "select note from bookmarks where url = 'https://veilid.com/'",
        "read later",
        ARRIVAL,
    );
    // Merged by the shell that added the column (or by the serve, which notices the schema
    // move): nothing waits any more.
    let status: serde_json::Value =
        serde_json::from_str(bob.run(&["status", "--json"]).ok()).unwrap();
    assert_eq!(status["held"], serde_json::json!([]), "{status}");
    // Both on the new version: as before, both ways.
    bob.sql("update bookmarks set note = 'read' where url = 'https://veilid.com/'");
    alice.wait_for(
        "select note from bookmarks where url = 'https://veilid.com/'",
        "read",
        ARRIVAL,
    );
    // An app writes on alice through her HTTP API; bob's app reads it through his, and the
    // reverse (issue 24): the API's writes replicate like any other.
    let alice_api = Api::of(&alice, 7701);
    let bob_api = Api::of(&bob, 7702);
    // Bob's app subscribes to the rows its query shows: alice's write, pulled, is an event.
    let subscription = bob_api.subscribe("select id, title from bookmarks where id like 'api-%'");
    assert_eq!(
        subscription.next()["columns"],
        serde_json::json!(["id", "title"])
    );
    assert_eq!(
        subscription.next(),
        serde_json::json!({"eoq": {"change_id": 0}})
    );
    alice_api.transaction(
        r#"{"statements": [{"sql": "insert into bookmarks (id, url, title) values (?1, ?2, ?3)", "params": ["api-a", "https://a.example/", "from alice's app"]}]}"#,
    );
    assert_eq!(
        subscription.next(),
        serde_json::json!({"change_id": 1, "event": "insert", "row": ["api-a", "from alice's app"]})
    );
    bob_api.wait_for_row(
        "select title from bookmarks where id = 'api-a'",
        "from alice's app",
    );
    bob_api.transaction(
        r#"{"statements": ["update bookmarks set title = 'edited by bob''s app' where id = 'api-a'"]}"#,
    );
    alice_api.wait_for_row(
        "select title from bookmarks where id = 'api-a'",
        "edited by bob's app",
    );
    // A local program needs neither TCP nor the token: the state dir's socket.
    let status = std::process::Command::new("curl")
        .args(["-sS", "--fail-with-body", "--unix-socket"])
        .arg(alice.site.path(".ddcp/api.sock"))
        .arg("http://localhost/v1/status")
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["serving"], serde_json::json!(true), "{status}");
    the_bbs_pages_show_each_others_posts_live(&alice, &bob);
    a_rust_program_replicates_the_bbs_with_the_embedding_api(&net, &alice);
    alice.stop();
    bob.stop();
    assert_eq!(rows(&alice), rows(&bob));
    for peer in [&alice, &bob] {
        assert!(
            peer.log()
                .contains("Serving the HTTP API on http://127.0.0.1:770")
        );
        // The token is never logged.
        let token = peer.run(&["api-token"]).ok().trim().to_string();
        assert!(!peer.log().contains(&token));
    }
    // Started together, each looked for the other's record before it was published: a
    // normal start, not a failure.
    for peer in [&alice, &bob] {
        assert!(!peer.log().contains("Remote failed"), "{}", peer.log());
    }
}

/// The example BBS app (examples/bbs) in headless Chromium, a page on each peer, used as a
/// person would: a post on one page appears on the other's without a reload, both ways; a post
/// is shown as text, never run as markup. Screenshots of both pages are kept in
/// [`common::artifacts_dir`].
fn the_bbs_pages_show_each_others_posts_live(alice: &Peer, bob: &Peer) {
    let mut browser = Browser::start();
    let mut open = |peer: &Peer, port: u16| {
        let token = peer.run(&["api-token"]).ok().trim().to_string();
        let page = browser.open(&format!("http://127.0.0.1:{port}/#token={token}"));
        (page, token)
    };
    let (alice_page, alice_token) = open(alice, 7701);
    let (bob_page, _) = open(bob, 7702);
    const STATE: &str = "document.querySelector('#state').textContent";
    // (The page may not have a body yet when first asked: not live, rather than an error.)
    const LIVE: &str = "document.body?.dataset.state === 'live'";
    for page in [&alice_page, &bob_page] {
        browser.wait_until(page, LIVE, ARRIVAL, STATE);
    }
    // The token left the address bar once the page took it.
    assert_eq!(
        browser.eval(&alice_page, "location.href"),
        serde_json::json!("http://127.0.0.1:7701/")
    );
    assert!(!alice.log().contains(&alice_token));

    let post = |browser: &mut Browser, page: &Page, author: &str, body: &str| {
        let fill = format!(
            "document.querySelector('#author').value = {author:?};
             document.querySelector('#body').value = {body:?};
             document.querySelector('#post-form button').click();"
        );
        browser.eval(page, &fill);
    };
    let shows = |body: &str| {
        format!(
            "[...document.querySelectorAll('#posts li .body')].some(p => p.textContent === {body:?})"
        )
    };
    const POSTS: &str = "document.querySelector('#posts').innerText";

    post(
        &mut browser,
        &alice_page,
        "alice",
        "Hello from alice's page",
    );
    let started = std::time::Instant::now();
    browser.wait_until(
        &alice_page,
        &shows("Hello from alice's page"),
        ARRIVAL,
        POSTS,
    );
    browser.wait_until(&bob_page, &shows("Hello from alice's page"), ARRIVAL, POSTS);
    eprintln!(
        "alice's post shown on bob's page {:?} after it showed on hers",
        started.elapsed()
    );

    // A hostile peer's post is words on the page, not markup that runs.
    let markup = "<img src=x onerror=\"document.body.dataset.ran = 1\"> and bob says hi";
    post(&mut browser, &bob_page, "bob", markup);
    let started = std::time::Instant::now();
    browser.wait_until(&alice_page, &shows(markup), ARRIVAL, POSTS);
    eprintln!(
        "bob's post shown on alice's page {:?} after he posted",
        started.elapsed()
    );
    for page in [&alice_page, &bob_page] {
        assert_eq!(
            browser.eval(
                page,
                "document.body.dataset.ran === undefined && !document.querySelector('#posts img')"
            ),
            serde_json::json!(true)
        );
        assert_eq!(
            browser.eval(page, "document.querySelectorAll('#posts li').length"),
            serde_json::json!(2)
        );
    }
    let artifacts = common::artifacts_dir();
    browser.screenshot(&alice_page, &artifacts.join("bbs-alice.png"));
    browser.screenshot(&bob_page, &artifacts.join("bbs-bob.png"));
    eprintln!(
        "the BBS pages' screenshots: {}/bbs-*.png",
        artifacts.display()
    );
    // Both peers hold both posts, as the pages said.
    for peer in [alice, bob] {
        peer.wait_for("select count(*) from posts", "2", ARRIVAL);
    }
}

/// carol is a Rust program of its own, examples/embed.rs, with the embedding API (no `ddcp
/// serve`): it pulls alice's posts, prints them from its subscription, and its own post reaches
/// alice; Ctrl-C stops it cleanly.
fn a_rust_program_replicates_the_bbs_with_the_embedding_api(net: &TestNet, alice: &Peer) {
    let mut carol = Peer::new(net, "carol", 7);
    let bbs = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/bbs/schema.sql");
    carol
        .run_with_input(&["shell"], &std::fs::read(bbs).unwrap())
        .ok();
    // The program reads its network from the state dir, as Config::new does.
    carol.use_network_file();
    carol.run(&["remote", "add", "alice", &alice.key()]).ok();
    // Told while it serves: alice's daemon starts pulling carol at once.
    alice.run(&["remote", "add", "carol", &carol.key()]).ok();
    let out = carol.site.path("embed.out");
    let mut embed = std::process::Command::new(example_program("embed"))
        .args(["ddcp.db", ".ddcp", "carol", "hello from Rust"])
        .current_dir(carol.site.dir.path())
        .env("RUST_LOG", "error")
        .stdout(std::fs::File::create(&out).unwrap())
        .spawn()
        .unwrap();
    let printed = || std::fs::read_to_string(&out).unwrap_or_default();
    private_net::wait_until(
        ARRIVAL,
        "the embedded replicator to show alice's post",
        || {
            printed()
                .lines()
                .any(|line| line.ends_with("post alice: Hello from alice's page"))
                .then_some(())
        },
    );
    assert!(printed().contains("posted at db_version"), "{}", printed());
    assert!(
        printed().contains("new post carol: hello from Rust"),
        "{}",
        printed()
    );
    alice.wait_for(
        "select body from posts where author = 'carol'",
        "hello from Rust",
        ARRIVAL,
    );
    std::process::Command::new("kill")
        .args(["-INT", &embed.id().to_string()])
        .status()
        .unwrap();
    let status = embed.wait().unwrap();
    assert!(status.success(), "{status}: {}", printed());
}

/// A peer's HTTP API, asked with curl as an app in another language would.
struct Api {
    url: String,
    auth: String,
}

impl Api {
    fn of(peer: &Peer, port: u16) -> Api {
        let token = peer.run(&["api-token"]).ok().trim().to_string();
        Api {
            url: format!("http://127.0.0.1:{port}"),
            auth: format!("Authorization: Bearer {token}"),
        }
    }

    fn post(&self, path: &str, body: &str) -> (bool, String) {
        let output = std::process::Command::new("curl")
            .args([
                "-sS",
                "--fail-with-body",
                "-m",
                "10",
                "-H",
                &self.auth,
                "-d",
                body,
            ])
            .arg(format!("{}{path}", self.url))
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).to_string(),
        )
    }

    /// Subscribes to `sql`: its lines as curl receives them.
    fn subscribe(&self, sql: &str) -> Subscription {
        let mut curl = std::process::Command::new("curl");
        curl.args(["-sS", "-N", "-H", &self.auth, "-d"])
            .arg(serde_json::json!({ "sql": sql }).to_string())
            .arg(format!("{}/v1/subscriptions", self.url));
        Subscription(CurlLines::start(curl))
    }

    fn transaction(&self, body: &str) {
        let (ok, answer) = self.post("/v1/transactions", body);
        assert!(ok && answer.contains("db_version"), "{answer}");
    }

    /// Waits until `sql`, asked through the API, returns one row of one value, `expected`.
    fn wait_for_row(&self, sql: &str, expected: &str) {
        let body = serde_json::json!({ "sql": sql }).to_string();
        let want = serde_json::json!({ "row": [expected] }).to_string();
        let deadline = std::time::Instant::now() + ARRIVAL;
        loop {
            let (ok, answer) = self.post("/v1/queries", &body);
            if ok && answer.lines().any(|line| line == want) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{sql} never answered {expected}: {answer}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

/// A subscription's lines, each awaited within [`ARRIVAL`].
struct Subscription(CurlLines);

impl Subscription {
    fn next(&self) -> serde_json::Value {
        self.0.next(ARRIVAL)
    }
}

#[test]
fn changes_relay_through_a_middle_peer_and_conflicting_edits_converge() {
    if !inside_private_network!() {
        return;
    }
    let net = TestNet::start();
    let mut a = Peer::new(&net, "a", 5);
    let mut b = Peer::new(&net, "b", 6);
    let mut c = Peer::new(&net, "c", 7);
    // A and C know only B; B knows both.
    a.run(&["remote", "add", "b", &b.key()]).ok();
    c.run(&["remote", "add", "b", &b.key()]).ok();
    b.run(&["remote", "add", "a", &a.key()]).ok();
    b.run(&["remote", "add", "c", &c.key()]).ok();
    a.sql("insert into bookmarks (id, url, title) values ('x', 'https://x/', 'from a')");
    for peer in [&mut a, &mut b, &mut c] {
        peer.serve();
    }
    c.wait_for(
        "select title from bookmarks where id = 'x'",
        "from a",
        ARRIVAL,
    );

    // All three edit the same row at once, and add rows of their own.
    for (peer, n) in [(&a, 1), (&b, 2), (&c, 3)] {
        peer.sql(&format!(
            "update bookmarks set title = 'edited by {0}', created_at = {n} where id = 'x';
             insert into bookmarks (id, url) values ('{0}-own', 'https://{0}/');
             insert into tags values ('x', 'tag-{0}');",
            peer.name
        ));
    }
    for peer in [&a, &b, &c] {
        peer.wait_for("select count(*) from bookmarks", "4", ARRIVAL);
        peer.wait_for("select count(*) from tags", "3", ARRIVAL);
    }
    // Counts agree; the winner of the conflicting edit must agree too.
    let deadline = std::time::Instant::now() + ARRIVAL;
    while !(rows(&a) == rows(&b) && rows(&b) == rows(&c)) {
        assert!(
            std::time::Instant::now() < deadline,
            "no convergence:\na:\n{}\nb:\n{}\nc:\n{}",
            rows(&a),
            rows(&b),
            rows(&c)
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // Versions that differ (issue 23): a moves to the app's next version (a column and a
    // table), b in the middle and c stay on the old one. Edits of old columns go on flowing
    // every way; a's new values wait at b. Then b follows a's schema, writes to the new
    // column itself, and c, which knows only b, follows b's: a's and b's new values reach c.
    const V2: &[u8] = b"alter table bookmarks add column note text;
        create table lists (id text primary key not null, name text);";
    a.run_with_input(&["migrate", "-"], V2).ok();
    a.sql(
        "update bookmarks set title = 'a on v2', note = 'from v2' where id = 'x';
         insert into lists values ('l1', 'reading');",
    );
    c.wait_for(
        "select title from bookmarks where id = 'x'",
        "a on v2",
        ARRIVAL,
    );
    c.sql("update bookmarks set title = 'c on v1' where id = 'x'");
    a.wait_for(
        "select title from bookmarks where id = 'x'",
        "c on v1",
        ARRIVAL,
    );
    let status: serde_json::Value =
        serde_json::from_str(b.run(&["status", "--json"]).ok()).unwrap();
    assert!(
        !status["held"].as_array().unwrap().is_empty(),
        "b holds nothing: {status}"
    );
    assert!(
        b.run(&["status"])
            .ok()
            .contains("history:     a's schema is 1 migration ahead: `ddcp migrate --from a`"),
        "{}",
        b.run(&["status"]).stdout
    );
    b.run(&["remote", "set", "a", "--schema", "follow"]).ok();
    b.run(&["pull", "a"]).ok();
    b.wait_for(
        "select note from bookmarks where id = 'x'",
        "from v2",
        ARRIVAL,
    );
    b.sql("update bookmarks set note = 'from b' where id = 'b-own'");
    c.run(&["remote", "set", "b", "--schema", "follow"]).ok();
    c.run(&["pull", "b"]).ok();
    c.wait_for(
        "select note from bookmarks where id = 'x'",
        "from v2",
        ARRIVAL,
    );
    c.wait_for(
        "select note from bookmarks where id = 'b-own'",
        "from b",
        ARRIVAL,
    );
    c.wait_for("select name from lists", "reading", ARRIVAL);
    // c's history is a's migration, taken through b.
    let status: serde_json::Value =
        serde_json::from_str(c.run(&["status", "--json"]).ok()).unwrap();
    assert_eq!(status["migrations"], 1, "{status}");
    assert_eq!(status["held"].as_array().unwrap().len(), 0, "{status}");
    assert_eq!(status["remote_schemas"][0]["schema"], "follow", "{status}");
    assert_eq!(status["remote_schemas"][0]["ahead"], 0, "{status}");
    for peer in [&mut a, &mut b, &mut c] {
        peer.stop();
    }
}

/// A table for bulk tests: 20k rows in one transaction, and one 5 MiB value.
const BULK: &str = "
    create table bulk (id integer primary key not null, v blob);
    select crsql_as_crr('bulk');";
const BULK_ROWS: &str = "
    begin;
    with recursive n(i) as (select 1 union all select i + 1 from n where i < 20000)
    insert into bulk (id, v) select i, randomblob(40) from n;
    commit;
    insert into bulk (id, v) values (0, randomblob(5 * 1024 * 1024));";
const BULK_SUMMARY: &str = "select count(*), sum(length(v)), hex(substr((select v from bulk where id = 0), 3000000, 16)), (select hex(v) from bulk where id = 12345) from bulk";

#[test]
fn a_5_mib_value_and_a_20k_row_transaction_replicate_with_ddcp_pull() {
    if !inside_private_network!() {
        return;
    }
    let net = TestNet::start();
    let mut a = Peer::new(&net, "a", 5);
    let b = Peer::new(&net, "b", 6);
    for peer in [&a, &b] {
        peer.sql(BULK);
    }
    a.sql(BULK_ROWS);
    b.run(&["remote", "add", "a", &a.key()]).ok();
    a.serve();
    // The one-shot pull: it retries while a's record is not yet on the network.
    let mut pulled = None;
    for _ in 0..6 {
        let run = b.run(&["pull", "a", "--json"]);
        if run.code == 0 {
            pulled = Some(run.stdout);
            break;
        }
        assert!(run.stderr.lines().count() == 1, "{}", run.stderr);
        std::thread::sleep(Duration::from_secs(2));
    }
    let pulled = pulled.expect("ddcp pull never succeeded");
    assert!(pulled.contains(r#""remote": "a""#), "{pulled}");
    assert_eq!(b.sql(BULK_SUMMARY), a.sql(BULK_SUMMARY));
    assert_eq!(b.sql("pragma integrity_check"), "ok\n");
    // Every message within Veilid's limit: the node refuses (and logs) anything bigger.
    assert!(!a.log().contains("over 32 KiB"), "{}", a.log());
    a.stop();
}

#[test]
fn a_puller_killed_mid_transfer_resumes_without_loss() {
    if !inside_private_network!() {
        return;
    }
    let net = TestNet::start();
    let mut a = Peer::new(&net, "a", 5);
    let mut b = Peer::new(&net, "b", 6);
    for peer in [&a, &b] {
        peer.sql(BULK);
    }
    a.sql(BULK_ROWS);
    b.run(&["remote", "add", "a", &a.key()]).ok();
    a.serve();
    b.serve();
    // Kill b once part of the transfer is in: a staged part of the big transaction, or a
    // cursor already moved.
    common::private_net::wait_until(ARRIVAL, "b to be mid-transfer", || {
        let progress = b.sql(
            "select (select count(*) from ddcp_staged_parts) + (select count(*) from ddcp_cursors)",
        );
        (progress.trim() != "0").then_some(())
    });
    b.kill();
    assert_ne!(b.sql(BULK_SUMMARY), a.sql(BULK_SUMMARY), "killed too late");
    b.serve();
    b.wait_for(BULK_SUMMARY, a.sql(BULK_SUMMARY).trim(), ARRIVAL);
    assert_eq!(b.sql("pragma integrity_check"), "ok\n");
    assert_eq!(b.sql("select count(*) from ddcp_staged_parts"), "0\n");
    a.stop();
    b.stop();
}

#[test]
fn a_stopped_remote_catches_up_while_the_others_keep_going() {
    if !inside_private_network!() {
        return;
    }
    let net = TestNet::start();
    let mut a = Peer::new(&net, "a", 5);
    let mut b = Peer::new(&net, "b", 6);
    let mut c = Peer::new(&net, "c", 7);
    b.run(&["remote", "add", "a", &a.key()]).ok();
    b.run(&["remote", "add", "c", &c.key()]).ok();
    c.run(&["remote", "add", "b", &b.key()]).ok();
    for peer in [&mut a, &mut b, &mut c] {
        peer.serve();
    }
    a.sql("insert into bookmarks (id, url) values ('a1', 'https://a/1')");
    c.sql("insert into bookmarks (id, url) values ('c1', 'https://c/1')");
    b.wait_for("select count(*) from bookmarks", "2", ARRIVAL);

    c.stop();
    // b keeps pulling from a while c is away; c writes offline.
    a.sql("insert into bookmarks (id, url) values ('a2', 'https://a/2')");
    c.sql("insert into bookmarks (id, url) values ('c2', 'https://c/2')");
    b.wait_for(
        "select count(*) from bookmarks where id like 'a%'",
        "2",
        ARRIVAL,
    );
    std::thread::sleep(Duration::from_secs(5));
    a.sql("insert into bookmarks (id, url) values ('a3', 'https://a/3')");
    b.wait_for(
        "select count(*) from bookmarks where id like 'a%'",
        "3",
        ARRIVAL,
    );

    c.serve();
    b.wait_for("select count(*) from bookmarks", "5", ARRIVAL);
    c.wait_for("select count(*) from bookmarks", "5", ARRIVAL);
    for peer in [&mut a, &mut b, &mut c] {
        peer.stop();
    }
}

/// The encryption secret of a record key as `ddcp init` prints it (`VLD0:<key>:<secret>`).
fn secret_of(key: &str) -> String {
    let secret = key.rsplit(':').next().unwrap();
    assert_eq!(key.matches(':').count(), 2, "{key} has no secret");
    secret.to_string()
}

/// Fails when any of `secrets` appears in `text` (named `what`).
#[track_caller]
fn assert_no_secret(what: &str, text: &str, secrets: &[String]) {
    for secret in secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a record secret appears in {what}:\n{text}"
        );
    }
}

#[test]
fn peers_answering_garbage_are_logged_and_skipped_and_the_others_keep_going() {
    if !inside_private_network!() {
        return;
    }
    let net = TestNet::start();
    let mut a = Peer::new(&net, "a", 5);
    let mut b = Peer::new(&net, "b", 6);
    // Made, never served: a remote whose record the network does not know.
    let silent = Peer::new(&net, "silent", 9);
    let random = common::example_peers::GarbagePeer::start(&net, "random", 7);
    let lying = common::example_peers::GarbagePeer::start(&net, "lying", 8);
    let repeating = common::example_peers::GarbagePeer::start(&net, "repeating", 10);
    let bombing = common::example_peers::GarbagePeer::start(&net, "bombing", 11);
    let secrets: Vec<String> = [
        a.key(),
        b.key(),
        silent.key(),
        random.key.clone(),
        lying.key.clone(),
        repeating.key.clone(),
        bombing.key.clone(),
    ]
    .iter()
    .map(|key| secret_of(key))
    .collect();
    // What the commands print, errors included, for the secret check at the end.
    let mut printed = String::new();
    let mut run = |peer: &Peer, args: &[&str]| {
        let run = peer.run(args);
        printed.push_str(&run.stdout);
        printed.push_str(&run.stderr);
        run
    };
    run(&b, &["remote", "add", "a", &a.key()]).ok();
    run(&b, &["remote", "add", "random", &random.key]).ok();
    run(&b, &["remote", "add", "lying", &lying.key]).ok();
    run(&b, &["remote", "add", "repeating", &repeating.key]).ok();
    run(&b, &["remote", "add", "bombing", &bombing.key]).ok();
    run(&b, &["remote", "add", "silent", &silent.key()]).ok();
    // A bad key and a duplicate: refused without echoing the secret.
    let bad = format!("{}:{}", silent.key(), secret_of(&a.key()));
    run(&b, &["remote", "add", "bad", &bad]).fails_with("invalid record key");
    run(&b, &["remote", "add", "again", &a.key()]).fails_with("already has key");
    a.sql("insert into bookmarks (id, url) values ('a1', 'https://a/1')");
    a.serve();
    b.serve_with(&["--metrics-addr", "127.0.0.1:9103"]);
    b.wait_for(
        "select count(*) from bookmarks where id = 'a1'",
        "1",
        ARRIVAL,
    );
    // The hostile remotes fail, again and again, each restarted alone with growing backoff.
    common::private_net::wait_until(ARRIVAL, "the hostile remotes to fail twice", || {
        let log = b.log();
        let failures = |name: &str| {
            log.lines()
                .filter(|line| line.contains(&format!(r#"Remote failed remote_name="{name}""#)))
                .count()
        };
        ["random", "lying", "repeating"]
            .iter()
            .all(|name| failures(name) >= 2)
            .then_some(())
    });
    let log = b.log();
    assert!(
        log.contains("the remote sent garbage, nothing of it applied"),
        "{log}"
    );
    // A remote repeating one fragment is given up on, not asked forever.
    assert!(
        log.contains("the remote's answers make no progress"),
        "{log}"
    );
    assert!(log.contains("refused a change"), "{log}");
    assert!(
        log.contains("restart_in=1s") && log.contains("restart_in=2s"),
        "{log}"
    );
    // `ddcp status` reports them, through the running daemon.
    let status: serde_json::Value =
        serde_json::from_str(b.run(&["status", "--json"]).ok()).unwrap();
    let health = |name: &str| {
        status["replication"]
            .as_array()
            .unwrap()
            .iter()
            .find(|remote| remote["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {status}"))
    };
    for name in ["random", "lying", "repeating"] {
        let remote = health(name);
        assert!(remote["restarts"].as_u64().unwrap() >= 2, "{status}");
        assert!(remote["last_error"].is_string(), "{status}");
        assert!(remote["last_success"].is_null(), "{status}");
    }
    assert!(health("a")["last_success"].is_i64(), "{status}");
    // The bookmark whose changes claimed db_version 2^53 arrived, and took b's next version
    // like a local write (issue 29, item 2): merged as given, b's counter would be at 2^53.
    b.wait_for(
        "select count(*) from bookmarks where id = 'bomb'",
        "1",
        ARRIVAL,
    );
    let status: serde_json::Value =
        serde_json::from_str(b.run(&["status", "--json"]).ok()).unwrap();
    assert!(status["db_version"].as_i64().unwrap() < 1 << 20, "{status}");
    // The honest remote is unaffected, and the one writer is never stuck: a new row of a's
    // arrives, and b's own write is published.
    a.sql("insert into bookmarks (id, url) values ('a2', 'https://a/2')");
    b.wait_for(
        "select group_concat(id) from bookmarks where id like 'a%'",
        "a1,a2",
        ARRIVAL,
    );
    b.sql("insert into tags values ('a1', 'from-b')");
    let status: serde_json::Value =
        serde_json::from_str(b.run(&["status", "--json"]).ok()).unwrap();
    let published = format!("updated status db_version={} ", status["db_version"]);
    common::private_net::wait_until(ARRIVAL, "b to publish its own write", || {
        b.log().contains(&published).then_some(())
    });
    assert_eq!(b.sql("pragma integrity_check"), "ok\n");

    // The remote that never served is waited for, quietly: said once at info, never a
    // failure (it is how every first contact with a peer starting later begins).
    common::private_net::wait_until(ARRIVAL, "the unpublished remote to be waited for", || {
        b.log()
            .contains("The remote's record is not on the network yet (has it served?): waiting for it remote_name=silent")
            .then_some(())
    });
    assert!(
        !b.log().contains(r#"Remote failed remote_name="silent""#),
        "{}",
        b.log()
    );
    // No secret anywhere the user did not ask for one: logs, status (text and JSON), remote
    // list, metrics, errors.
    run(&b, &["status"]).ok();
    run(&b, &["status", "--json"]).ok();
    run(&b, &["remote", "list"]).ok();
    run(&b, &["remote", "list", "--json"]).ok();
    run(&b, &["pull", "silent"]);
    run(&b, &["pull", "random", "--json"]);
    assert!(printed.contains(silent.key().split(':').nth(1).unwrap()));
    let metrics_before_stop = scrape(9103);
    assert!(
        metrics_before_stop.contains("ddcp_errors_total"),
        "{metrics_before_stop}"
    );
    a.stop();
    b.stop();
    for (what, text) in [
        ("what the commands printed", printed.as_str()),
        ("b's serve log", &b.log()),
        ("a's serve log", &a.log()),
        ("b's metrics", &metrics_before_stop),
    ] {
        assert_no_secret(what, text, &secrets);
    }
    // Asked for, the secrets are there: the check above could fail.
    let shown = b.run(&["remote", "list", "--show-secrets"]);
    assert!(
        shown.ok().contains(&secret_of(&a.key())),
        "{}",
        shown.stdout
    );
}

/// 20k rows in one transaction: every page of them is as big as a responder makes pages.
const ROWS_20K: &str = "
    begin;
    with recursive n(i) as (select 1 union all select i + 1 from n where i < 20000)
    insert into bulk (id, v) select i, randomblob(40) from n;
    commit;";

#[test]
fn a_flood_of_calls_is_told_too_busy_and_the_honest_remote_keeps_replicating() {
    if !inside_private_network!() {
        return;
    }
    use common::example_peers::Flood;
    use common::private_net::wait_until;
    use common::process::memory_mib;
    let net = TestNet::start();
    let mut a = Peer::new(&net, "a", 5);
    let mut b = Peer::new(&net, "b", 6);
    for peer in [&a, &b] {
        peer.sql(BULK);
    }
    a.sql(ROWS_20K);
    b.run(&["remote", "add", "a", &a.key()]).ok();
    a.serve_with(&["--metrics-addr", "127.0.0.1:9104"]);
    b.serve_with(&["--metrics-addr", "127.0.0.1:9105"]);
    let summary = "select count(*), sum(length(v)) from bulk";
    b.wait_for(summary, a.sql(summary).trim(), ARRIVAL);
    let (rss_before, _) = memory_mib(a.serve_pid());

    // Two hostile peers ask for the most expensive page there is, 48 calls each at once, and
    // again the moment they are answered or refused, each call asking to be told of a's new
    // versions with a token of its own; one also sends b forged notes.
    let floods = [
        Flood::start_forging(&net, &a.key(), Some(&b.key()), 7),
        Flood::start(&net, &a.key(), 8),
    ];
    wait_until(ARRIVAL, "both floods to be told tooBusy", || {
        floods
            .iter()
            .all(|flood| flood.counts().busy > 0)
            .then_some(())
    });
    // Under the flood, a's new rows still reach b, twice over.
    for n in 1..=2 {
        a.sql(&format!(
            "insert into bookmarks (id, url) values ('f{n}', 'https://f/{n}')"
        ));
        b.wait_for("select count(*) from bookmarks", &n.to_string(), ARRIVAL);
    }
    let (rss_after, peak) = memory_mib(a.serve_pid());
    let counts: Vec<_> = floods.iter().map(Flood::counts).collect();
    let shed = scrape(9104);
    println!(
        "flood: {counts:?}; a's serve RSS {rss_before} MiB before, {rss_after} MiB after, peak {peak} MiB"
    );
    assert!(
        sample(&shed, r#"ddcp_requests_shed_total{reason="busy"}"#).unwrap_or(0.0) > 0.0,
        "{shed}"
    );
    // a keeps 32 listens at most, whatever the floods asked; b listened before them and kept
    // its place: a's notes still reach it. The forged notes were dropped as unknown.
    assert_eq!(sample(&shed, "ddcp_listeners"), Some(32.0), "{shed}");
    wait_until(ARRIVAL, "the forged notes to reach b", || {
        (floods[0].counts().notes > 0).then_some(())
    });
    let told = wait_until(ARRIVAL, "b to count the forged notes", || {
        let text = scrape(9105);
        (sample(&text, r#"ddcp_notes_received_total{outcome="unknown"}"#) > Some(0.0))
            .then_some(text)
    });
    assert!(
        sample(&told, r#"ddcp_notes_received_total{outcome="taken"}"#) > Some(0.0),
        "{told}"
    );
    // Bounded: the answers in flight are, so memory cannot follow the flood.
    assert!(
        peak < rss_before + 256,
        "peak RSS {peak} MiB from {rss_before} MiB"
    );
    drop(floods);

    // a goes private, with two members: b, and one that floods as the floods above did. The
    // flood fills its own share of a's queue and is refused past it; b's pulls are never told
    // tooBusy, and answers go to each member in turn.
    let dir = tempfile::tempdir().unwrap();
    let flooder = ddcp::sync::MemberKeys::generate();
    let member_file = dir.path().join("member");
    let text = format!(
        "id {}\nsecret {}\n",
        flooder.id(),
        flooder.reveal().as_str()
    );
    std::fs::write(&member_file, text).unwrap();
    let b_id = b.run(&["id"]).ok().trim().to_string();
    a.run(&["member", "add", "b", &b_id]).ok();
    a.run(&["member", "add", "flooder", &flooder.id().to_string()])
        .ok();
    a.run(&["access", "private"]).ok();
    let private_rows = "select count(*) from bookmarks where id like 'p%'";
    a.sql("insert into bookmarks (id, url) values ('p0', 'https://p/0')");
    b.wait_for(private_rows, "1", ARRIVAL);
    let told_busy = || {
        sample(&scrape(9105), r#"ddcp_remote_busy_total{remote="a"}"#)
            .expect("b exports ddcp_remote_busy_total for a")
    };
    let busy_before = told_busy();
    let flood = Flood::start_member(&net, &a.key(), &member_file, 9);
    wait_until(ARRIVAL, "the member's flood to be told tooBusy", || {
        (flood.counts().busy > 0).then_some(())
    });
    for n in 1..=3 {
        a.sql(&format!(
            "insert into bookmarks (id, url) values ('p{n}', 'https://p/{n}')"
        ));
        b.wait_for(private_rows, &(n + 1).to_string(), ARRIVAL);
    }
    // And a transaction of 2 MiB, which b fetches in many calls, up to 8 at once.
    a.sql(
        "with recursive n(i) as (select 1 union all select i + 1 from n where i < 2000)
         insert into bulk (id, v) select 100000 + i, randomblob(1024) from n",
    );
    let bulk_rows = "select count(*) from bulk where id > 100000";
    b.wait_for(bulk_rows, "2000", ARRIVAL);
    let counts = flood.counts();
    println!("member flood: {counts:?}");
    assert!(counts.answers > 0, "the flooding member was never answered");
    assert_eq!(
        told_busy(),
        busy_before,
        "b was told tooBusy while another member flooded"
    );
    drop(flood);
    a.stop();
    b.stop();
}

#[test]
fn a_running_serve_takes_remote_changes_pulls_and_status_through_its_control_socket() {
    if !inside_private_network!() {
        return;
    }
    let net = TestNet::start();
    let mut a = Peer::new(&net, "a", 5);
    let mut b = Peer::new(&net, "b", 6);
    a.sql("insert into bookmarks (id, url) values ('a1', 'https://a/1')");
    a.serve();
    b.serve();
    common::private_net::wait_until(ARRIVAL, "b's control socket", || {
        b.site.path(".ddcp/control.sock").exists().then_some(())
    });

    // Added while serving: replication starts without a restart.
    let added = b.run(&["remote", "add", "a", &a.key()]);
    added.ok();
    assert!(
        added
            .stderr
            .contains("The running ddcp serve took the change"),
        "{}",
        added.stderr
    );
    b.wait_for("select count(*) from bookmarks", "1", ARRIVAL);

    // Status comes from the daemon: each remote's health, lag falling to 0.
    common::private_net::wait_until(ARRIVAL, "b's status to show a pulled, lag 0", || {
        let status: serde_json::Value =
            serde_json::from_str(b.run(&["status", "--json"]).ok()).unwrap();
        let health = &status["replication"][0];
        (status["serving"] == true
            && health["name"] == "a"
            && health["lag"] == 0
            && health["last_success"].is_i64())
        .then_some(())
    });
    let text = b.run(&["status"]);
    assert!(text.ok().contains("a: running, pulled"), "{}", text.stdout);

    // A pull through the daemon (a one-shot pull could not even start: serve holds the node).
    a.sql("insert into bookmarks (id, url) values ('a2', 'https://a/2')");
    let pulled: serde_json::Value =
        serde_json::from_str(b.run(&["pull", "a", "--json"]).ok()).unwrap();
    assert_eq!(pulled[0]["remote"], "a", "{pulled}");
    assert!(pulled[0].get("error").is_none(), "{pulled}");
    assert_eq!(b.sql("select count(*) from bookmarks"), "2\n");
    b.run(&["pull", "nobody"])
        .fails_with("no remote named \"nobody\"");

    // The change feed through the daemon: a remote's change and a local one as they come;
    // then, resumed after the last version seen, exactly what came meanwhile.
    let mut watch = Watch::start(&b, &["--json"]);
    a.sql("insert into bookmarks (id, url) values ('a3', 'https://a/3')");
    let pulled = watch.next_where(|c| c["key"]["id"] == "a3" && c["column"] == "url");
    assert_eq!(pulled["source"], "remote:a", "{pulled}");
    assert_eq!(pulled["value"], "https://a/3", "{pulled}");
    b.sql("insert into bookmarks (id, url) values ('b1', 'https://b/1')");
    let local = watch.next_where(|c| c["key"]["id"] == "b1" && c["column"] == "url");
    assert_eq!(local["source"], "local", "{local}");
    let seen = local["db_version"].as_i64().unwrap();
    drop(watch);
    a.sql("insert into bookmarks (id, url) values ('a4', 'https://a/4')");
    b.wait_for(
        "select count(*) from bookmarks where id = 'a4'",
        "1",
        ARRIVAL,
    );
    let mut resumed = Watch::start(&b, &["--json", "--since", &seen.to_string()]);
    let missed = resumed.next_where(|c| c["key"]["id"] == "a4" && c["column"] == "url");
    assert_eq!(missed["source"], "remote:a", "{missed}");
    for change in &resumed.seen {
        assert!(
            change["db_version"].as_i64().unwrap() > seen,
            "doubled: {change}"
        );
    }
    drop(resumed);

    // Removed while serving: its actor stops.
    b.run(&["remote", "remove", "a"]).ok();
    let status: serde_json::Value =
        serde_json::from_str(b.run(&["status", "--json"]).ok()).unwrap();
    assert_eq!(status["replication"], serde_json::json!([]), "{status}");
    assert!(b.log().contains("Stopped pulling remote"), "{}", b.log());

    // Another user cannot use the socket, even when the files around it are opened up.
    refused_to_another_user(&b);
    assert!(
        b.log()
            .contains("Refused a control connection from another user"),
        "{}",
        b.log()
    );

    // A daemon killed without cleaning up leaves a stale socket: detected, removed, no hang.
    b.kill();
    assert!(b.site.path(".ddcp/control.sock").exists());
    let status: serde_json::Value =
        serde_json::from_str(b.run(&["status", "--json"]).ok()).unwrap();
    assert_eq!(status["serving"], false);
    assert!(!b.site.path(".ddcp/control.sock").exists());
    b.serve();
    common::private_net::wait_until(ARRIVAL, "b's new control socket", || {
        b.site.path(".ddcp/control.sock").exists().then_some(())
    });
    a.stop();
    b.stop();
}

/// `ddcp watch` running against a peer: its JSON lines as they come.
struct Watch {
    process: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    /// Every change read so far.
    seen: Vec<serde_json::Value>,
}

impl Watch {
    fn start(peer: &Peer, options: &[&str]) -> Watch {
        let mut process = peer
            .command(&[&["watch"], options].concat())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = process.stdout.take().unwrap();
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        Watch {
            process,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first change from now on for which `wanted` holds.
    fn next_where(&mut self, wanted: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = std::time::Instant::now() + ARRIVAL;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .expect("the watch printed nothing in time");
            let change: serde_json::Value = serde_json::from_str(&line).unwrap();
            self.seen.push(change.clone());
            if wanted(&change) {
                return change;
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Runs `ddcp status` as user nobody against `peer`'s state dir, with the state dir and the
/// socket opened to everyone: the daemon must still refuse, and the command fail in one line.
fn refused_to_another_user(peer: &Peer) {
    use std::os::unix::fs::PermissionsExt;
    let open = |path: &std::path::Path, mode| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    open(peer.site.dir.path(), 0o755);
    open(&peer.site.path(".ddcp"), 0o755);
    open(&peer.site.path(".ddcp/control.sock"), 0o777);
    // The record file too, so that the command gets past the check that the database and the
    // state dir belong together and as far as the socket.
    open(&peer.site.path(".ddcp/record"), 0o644);
    // nobody's own copy of the database, in a folder it owns.
    let theirs = tempfile::tempdir().unwrap();
    open(theirs.path(), 0o777);
    let copy = theirs.path().join("copy.db");
    peer.sql(&format!("vacuum into '{}'", copy.display()));
    open(&copy, 0o666);
    let output = std::process::Command::new("runuser")
        .args(["-u", "nobody", "--"])
        .arg(env!("CARGO_BIN_EXE_ddcp"))
        .arg("--db-file")
        .arg(&copy)
        .arg("--state-dir")
        .arg(peer.site.path(".ddcp"))
        .args(["status", "--json"])
        .current_dir(theirs.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "nobody got an answer: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: control socket"), "{stderr}");
    open(&peer.site.path(".ddcp/record"), 0o600);
    open(peer.site.dir.path(), 0o700);
    open(&peer.site.path(".ddcp"), 0o700);
}

#[test]
fn metrics_move_with_replication_and_parse_as_prometheus_text() {
    if !inside_private_network!() {
        return;
    }
    let net = TestNet::start();
    let mut a = Peer::new(&net, "a", 5);
    let mut b = Peer::new(&net, "b", 6);
    b.run(&["remote", "add", "a", &a.key()]).ok();
    a.sql("insert into bookmarks (id, url) values ('a1', 'https://a/1')");
    a.serve_with(&["--metrics-addr", "127.0.0.1:9101"]);
    b.serve_with(&["--metrics-addr", "127.0.0.1:9102"]);
    // A real Prometheus (Debian's) scrapes both, with the deploy kit's alert rules loaded.
    let prometheus = Prometheus::start(&[9101, 9102]);
    b.wait_for("select count(*) from bookmarks", "1", ARRIVAL);

    let applied = |text: &str| sample(text, r#"ddcp_changes_applied_total{remote="a"}"#);
    let before = common::private_net::wait_until(ARRIVAL, "b's lag to reach 0", || {
        let text = scrape(9102);
        (sample(&text, r#"ddcp_remote_lag_versions{remote="a"}"#) == Some(0.0)).then_some(text)
    });
    assert!(applied(&before).unwrap() > 0.0, "{before}");
    assert_eq!(sample(&before, "ddcp_veilid_ready"), Some(1.0), "{before}");
    assert!(
        sample(&before, "ddcp_db_version").unwrap() > 0.0,
        "{before}"
    );
    assert!(before.contains("ddcp_pull_duration_seconds"), "{before}");

    a.sql("insert into bookmarks (id, url) values ('a2', 'https://a/2')");
    b.wait_for("select count(*) from bookmarks", "2", ARRIVAL);
    let after = common::private_net::wait_until(ARRIVAL, "b's applied count to move", || {
        let text = scrape(9102);
        (applied(&text) > applied(&before)).then_some(text)
    });
    let served = scrape(9101);
    // One series, whoever asks: askers are not authenticated, so they name no label.
    assert!(
        sample(&served, "ddcp_changes_served_total").unwrap() > 0.0,
        "{served}"
    );
    assert!(!served.contains("ddcp_changes_served_total{"), "{served}");
    assert!(
        sample(&served, "ddcp_bytes_out_total").unwrap() > 0.0,
        "{served}"
    );
    for text in [&before, &after, &served] {
        assert_prometheus_text(text);
    }
    // b's pulls asked a to tell it of new versions: a sent notes, b took them (whether a note
    // or the DHT's watch told b first, both came).
    assert_eq!(sample(&served, "ddcp_listeners"), Some(1.0), "{served}");
    let noted = common::private_net::wait_until(ARRIVAL, "b to take a note", || {
        let text = scrape(9102);
        (sample(&text, r#"ddcp_notes_received_total{outcome="taken"}"#) > Some(0.0)).then_some(text)
    });
    assert_eq!(
        sample(&noted, r#"ddcp_notes_received_total{outcome="unknown"}"#),
        None,
        "{noted}"
    );
    assert!(
        sample(&scrape(9101), r#"ddcp_notes_sent_total{outcome="sent"}"#) > Some(0.0),
        "a sent no note"
    );

    // Prometheus's view: both targets up, the rules loaded, and b's lag in its TSDB rising
    // and falling back to 0. b is held behind by a write lock on its database (as a long
    // transaction of an application's would), while a writes a3.
    let lock = rusqlite::Connection::open(b.site.db_file()).unwrap();
    lock.execute_batch("begin immediate").unwrap();
    a.sql("insert into bookmarks (id, url) values ('a3', 'https://a/3')");
    let lag = r#"ddcp_remote_lag_versions{remote="a"}"#;
    common::private_net::wait_until(ARRIVAL, "Prometheus to see b behind", || {
        let values = prometheus.samples(&format!("{lag}[2m]"));
        values.iter().any(|value| *value > 0.0).then_some(())
    });
    lock.execute_batch("rollback").unwrap();
    drop(lock);
    b.wait_for("select count(*) from bookmarks", "3", ARRIVAL);
    common::private_net::wait_until(ARRIVAL, "Prometheus to see both targets up", || {
        let targets = prometheus.get("/api/v1/targets");
        (targets.matches(r#""health":"up""#).count() == 2).then_some(())
    });
    let rules = prometheus.get("/api/v1/rules");
    for alert in [
        "DdcpRemoteLagging",
        "DdcpRemoteRestarting",
        "DdcpVeilidNotReady",
        "DdcpPolling",
        "DdcpRecordWrittenElsewhere",
    ] {
        assert!(rules.contains(alert), "{rules}");
    }
    let history =
        common::private_net::wait_until(ARRIVAL, "Prometheus to see b's lag at 0", || {
            // Every sample of the last two minutes, oldest first.
            let values = prometheus.samples(&format!("{lag}[2m]"));
            (values.last() == Some(&0.0)).then_some(values)
        });
    let highest = history.iter().cloned().fold(0.0, f64::max);
    assert!(highest > 0.0, "{history:?}");
    println!(
        "b's lag as Prometheus saw it: {} samples, highest {highest}, now 0",
        history.len()
    );
    drop(prometheus);
    // a writes its unchanged Status again a minute or so after its last change (a3), and it
    // goes out: a's node holds the value it wrote (not one another node wrote over it).
    let rewritten = common::private_net::wait_until(
        ddcp::net::REWRITTEN_WITHIN,
        "a to write its unchanged Status again",
        || {
            let text = scrape(9101);
            (sample(&text, r#"ddcp_status_rewrites_total{outcome="written"}"#) > Some(0.0))
                .then_some(text)
        },
    );
    assert!(
        !rewritten.contains(r#"outcome="superseded""#),
        "{rewritten}"
    );
    a.stop();
    b.stop();
}

/// Debian's Prometheus, scraping ddcp's metrics on loopback every 500 ms, with the deploy
/// kit's alert rules; stopped when dropped.
struct Prometheus {
    process: std::process::Child,
    _dir: tempfile::TempDir,
    port: u16,
}

impl Prometheus {
    fn start(metrics_ports: &[u16]) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let targets: Vec<String> = metrics_ports
            .iter()
            .map(|port| format!("\"127.0.0.1:{port}\""))
            .collect();
        std::fs::write(
            dir.path().join("prometheus.yml"),
            format!(
                "global: {{scrape_interval: 500ms, evaluation_interval: 1s}}
scrape_configs:
  - job_name: ddcp
    static_configs: [{{targets: [{}]}}]
rule_files: [ddcp-alerts.yml]
",
                targets.join(", ")
            ),
        )
        .unwrap();
        let alerts =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/ddcp-alerts.yml");
        std::fs::copy(alerts, dir.path().join("ddcp-alerts.yml")).unwrap();
        let port = 9190;
        let process = std::process::Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("Debian's prometheus package (scripts/install-deps.sh installs it)");
        let prometheus = Prometheus {
            process,
            _dir: dir,
            port,
        };
        common::private_net::wait_until(Duration::from_secs(60), "Prometheus to start", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        prometheus
    }

    /// GET `path` from its HTTP API: the body.
    fn get(&self, path: &str) -> String {
        common::metrics::http_get(self.port, path)
    }

    /// The samples a PromQL range selector gives now, oldest first (one series at most).
    fn samples(&self, selector: &str) -> Vec<f64> {
        let query: String = selector
            .bytes()
            .map(|byte| match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' => {
                    (byte as char).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect();
        let body = self.get(&format!("/api/v1/query?query={query}"));
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["status"], "success", "{body}");
        json["data"]["result"]
            .as_array()
            .and_then(|series| series.first())
            .and_then(|series| series["values"].as_array())
            .map(|values| {
                values
                    .iter()
                    .map(|pair| pair[1].as_str().unwrap().parse().unwrap())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Every line is a comment (`# HELP`, `# TYPE`), blank, or `name{labels} value`.
fn assert_prometheus_text(text: &str) {
    for line in text.lines() {
        if line.is_empty() || line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line:?}"));
        assert!(
            value.parse::<f64>().is_ok() || ["NaN", "+Inf", "-Inf"].contains(&value),
            "bad value in {line:?}"
        );
        let name = series.split('{').next().unwrap();
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                && !name.starts_with(|c: char| c.is_ascii_digit()),
            "bad name in {line:?}"
        );
        if let Some(labels) = series.strip_prefix(name) {
            assert!(
                labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                "bad labels in {line:?}"
            );
        }
    }
}

/// A pull imports its remote's route to call it, and releases it when done: a node serving for
/// months must not hold every route its remotes ever had. This process pulls with a node of its
/// own, so that it can count what Veilid holds.
#[test]
fn a_pull_releases_the_route_it_imported() {
    if !inside_private_network!() {
        return;
    }
    use ddcp::db::{Db, Extension};
    use ddcp::db_actor::DbHandle;
    use ddcp::net::Node;
    use ddcp::pull::{RemoteLink, pull_remote, read_status};
    use ddcp::sync::{MemberKeys, RecordKey};

    let net = TestNet::start();
    let mut a = Peer::new(&net, "a", 5);
    a.sql("insert into bookmarks (id, url) values ('a1', 'https://a/1')");
    a.serve();
    let key: RecordKey = a.key().parse().unwrap();
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(&dir.path().join("veilid"), &net.node_settings(6))
            .await
            .unwrap();
        node.attach(ARRIVAL).await.unwrap();
        let network = node.network().clone();
        let mut db = Db::create(&dir.path().join("b.db"), &Extension::BuiltIn).unwrap();
        let schema = String::from_utf8(fixture("cr_tables.sql")).unwrap();
        db.connection().execute_batch(&schema).unwrap();
        let link = RemoteLink {
            name: "a".parse().unwrap(),
            key: key.clone(),
            accept: Default::default(),
        };
        db.add_remote(&link.name, &key, &link.accept, false)
            .unwrap();
        let (db, stopped) = DbHandle::spawn(db, None, None).await.unwrap();
        let me = MemberKeys::generate();
        // a's record takes a moment to reach the DHT after its serve starts.
        let deadline = std::time::Instant::now() + ARRIVAL;
        let report = loop {
            let pulled = match network.open_record(&key).await {
                Ok(()) => pull_remote(&network, &db, &me, &link, None, None, &mut |_| {}).await,
                Err(err) => Err(err.into()),
            };
            match pulled {
                Ok(report) => break report,
                Err(err) if std::time::Instant::now() < deadline => {
                    eprintln!("not yet: {err}");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                Err(err) => panic!("the pull never succeeded: {err}"),
            }
        };
        assert!(report.changes > 0, "{report:?}");
        assert_eq!(
            network.imported_route_count().await.unwrap(),
            0,
            "the pull kept its remote's route"
        );
        // The count does see a route held: the check above could fail.
        let status = read_status(&network, &me, &key).await.unwrap().status;
        let held = network.import_route(&status.route).unwrap();
        assert_eq!(network.imported_route_count().await.unwrap(), 1);
        drop(held);
        assert_eq!(network.imported_route_count().await.unwrap(), 0);
        db.actor().stop(None);
        let _ = stopped.await;
        network.close_record(&key).await;
        node.shutdown().await;
    });
    a.stop();
}

/// The secret key in a peer's member file (`.ddcp/member`), as the test's own identity.
/// Opens `key`'s record from the test's own node: a node that just attached may be told "try
/// again" by the DHT for a while, as a fresh `ddcp pull` is.
pub(crate) async fn open_when_reachable(network: &ddcp::net::Network, key: &ddcp::sync::RecordKey) {
    let deadline = std::time::Instant::now() + ARRIVAL;
    loop {
        match network.open_record(key).await {
            Ok(()) => return,
            Err(err) if std::time::Instant::now() < deadline => {
                eprintln!("opening {key} again: {err}");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(err) => panic!("cannot open {key}: {err}"),
        }
    }
}

pub(crate) fn member_keys(peer: &Peer) -> ddcp::sync::MemberKeys {
    let text = std::fs::read_to_string(peer.site.path(".ddcp/member")).unwrap();
    let secret = text
        .lines()
        .find_map(|line| line.strip_prefix("secret "))
        .unwrap();
    ddcp::sync::MemberKeys::from_revealed(secret).unwrap()
}

/// What a peer that calls alice's route gets back: an error code, or a sealed answer.
#[derive(Debug, PartialEq)]
pub(crate) enum Answered {
    Refused(ddcp::sync::protocol::ErrorCode),
    Sealed,
    Other,
}

pub(crate) fn answered(bytes: &[u8]) -> Answered {
    use ddcp::sync::codec::decode_message;
    use ddcp::sync::protocol::Message;
    match decode_message(bytes) {
        Ok(Message::Error(error)) => Answered::Refused(error.code),
        Ok(Message::SealedAnswer(_)) => Answered::Sealed,
        _ => Answered::Other,
    }
}

/// alice is private, bob and dave her members. bob replicates both ways; carol, who holds
/// alice's whole key, reads only ciphertext from her record and is refused; forged and
/// replayed requests are refused; once alice removes bob, her next row reaches dave without
/// any action of his and never reaches bob, whose pull fails with one line.
#[test]
fn a_private_database_answers_its_members_only_and_a_removed_member_is_locked_out() {
    if !inside_private_network!() {
        return;
    }
    use ddcp::net::Node;
    use ddcp::pull::open_published;
    use ddcp::sync::codec::{decode_published, encode_message};
    use ddcp::sync::compress::Compression;
    use ddcp::sync::protocol::{ErrorCode, Message, Published};
    use ddcp::sync::seal::{authenticate, open_answer, open_status};
    use ddcp::sync::{MemberId, RecordKey};

    let net = TestNet::start();
    let mut alice = Peer::new(&net, "alice", 5);
    let mut bob = Peer::new(&net, "bob", 6);
    let carol = Peer::new(&net, "carol", 7);
    let mut dave = Peer::new(&net, "dave", 8);
    assert_eq!(alice.run(&["access", "private"]).ok().trim(), "private");
    let bob_id = bob.run(&["id"]).ok().trim().to_string();
    let dave_id = dave.run(&["id"]).ok().trim().to_string();
    alice.run(&["member", "add", "bob", &bob_id]).ok();
    alice.run(&["member", "add", "dave", &dave_id]).ok();
    let listed = alice.run(&["member", "list"]).ok().to_string();
    assert_eq!(listed, format!("bob\t{bob_id}\ndave\t{dave_id}\n"));
    alice.sql("insert into bookmarks (id, url) values ('a1', 'https://a/1')");
    let alice_key = alice.key();
    for peer in [&bob, &carol, &dave] {
        peer.run(&["remote", "add", "alice", &alice_key]).ok();
    }
    alice.run(&["remote", "add", "bob", &bob.key()]).ok();
    alice.serve_with(&["--metrics-addr", "127.0.0.1:9106"]);
    bob.serve_with(&["--metrics-addr", "127.0.0.1:9107"]);
    dave.serve();

    // Members replicate, both ways.
    bob.wait_for(
        "select count(*) from bookmarks where id = 'a1'",
        "1",
        ARRIVAL,
    );
    dave.wait_for(
        "select count(*) from bookmarks where id = 'a1'",
        "1",
        ARRIVAL,
    );
    bob.sql("insert into bookmarks (id, url) values ('b1', 'https://b/1')");
    alice.wait_for(
        "select count(*) from bookmarks where id = 'b1'",
        "1",
        ARRIVAL,
    );
    // A backup with bob and dave members (restored at the end, once bob is removed).
    let backup = alice.site.path("alice-backup.db");
    let backup = backup.to_str().unwrap().to_string();
    alice.run(&["backup", &backup, "--with-identity"]).ok();

    // carol holds the whole key but is no member: one line that says what to do.
    let carol_id = carol.run(&["id"]).ok().trim().to_string();
    // A one-shot pull's fresh node may not reach the DHT at once (see the 5 MiB test); then
    // it also says it waits for the record (info, which these runs log): asked again.
    let mut refused = carol.run(&["pull", "alice"]);
    for _ in 0..6 {
        if refused.stderr.contains("not a member") && refused.stderr.lines().count() == 1 {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
        refused = carol.run(&["pull", "alice"]);
    }
    let line = refused.fails_with("not a member");
    assert_eq!(
        line.trim(),
        format!(
            "error: remote alice: not a member (ask its owner to run: ddcp member add NAME {carol_id})"
        )
    );

    // erin clones alice before she is a member: one line with her id, nothing made but the
    // identity; added, the same command clones.
    let erin = Peer::empty(&net, "erin", 10);
    let mut refused = erin.run(&["clone", &alice_key]);
    for _ in 0..6 {
        if refused.stderr.contains("not a member") && refused.stderr.lines().count() == 1 {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
        refused = erin.run(&["clone", &alice_key]);
    }
    refused.fails_with("error: remote origin: not a member");
    let erin_id = erin.run(&["id"]).ok().trim().to_string();
    assert!(refused.stderr.contains(&erin_id), "{}", refused.stderr);
    assert!(!erin.site.db_file().exists());
    alice.run(&["member", "add", "erin", &erin_id]).ok();
    erin.run(&["clone", &alice_key]).ok();
    assert_eq!(
        erin.sql("select count(*) from bookmarks where id = 'a1'")
            .trim(),
        "1"
    );

    let key: RecordKey = alice_key.parse().unwrap();
    let bob_keys = member_keys(&bob);
    let carol_keys = member_keys(&carol);
    let dave_keys = member_keys(&dave);
    let site_id = alice.run(&["status", "--json"]).ok().to_string();
    let site_id: serde_json::Value = serde_json::from_str(&site_id).unwrap();
    let site_id = hex::decode(site_id["site_id"].as_str().unwrap()).unwrap();
    let bobs_captured = runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(&dir.path().join("veilid"), &net.node_settings(9))
            .await
            .unwrap();
        node.attach(ARRIVAL).await.unwrap();
        let network = node.network().clone();
        open_when_reachable(&network, &key).await;

        // What carol reads with the key: ciphertext, no site id, route or schema in it.
        let raw = network.read_record(&key).await.unwrap().unwrap();
        let Published::Sealed(sealed) = decode_published(&raw).unwrap() else {
            panic!("alice's status is readable without being a member");
        };
        let contains = |needle: &[u8]| raw.windows(needle.len()).any(|w| w == needle);
        assert_eq!(
            open_status(&carol_keys, &key, &sealed),
            Err(ddcp::sync::seal::SealError::NotAMember)
        );
        let opened = open_published(&bob_keys, &key, &raw).unwrap();
        let first_route = opened.status.route.clone();
        let first_epoch = opened.session.unwrap().epoch;
        assert!(!contains(&site_id), "the site id is in the clear");
        assert!(!contains(&first_route[..64]), "the route is in the clear");
        assert!(!contains(b"bookmarks"), "the schema is in the clear");
        assert!(opened.status.db_version.0 > 0);

        // Calls on alice's route (which carol could only have from a member).
        let route = network.import_route(&first_route).unwrap();
        let call = |bytes: Vec<u8>| {
            let network = network.clone();
            let route = route.id().clone();
            async move { network.call(&route, bytes).await.unwrap() }
        };
        let schema_request = encode_message(&Message::SchemaRequest, Compression::None);
        let wrap = |request: ddcp::sync::protocol::Authenticated| {
            encode_message(&Message::Authenticated(request), Compression::None)
        };
        assert_eq!(
            answered(&call(schema_request.clone()).await),
            Answered::Refused(ErrorCode::NotAllowed),
            "an unauthenticated request was answered"
        );
        let mut forged = authenticate(&carol_keys, &key, first_epoch, schema_request.clone());
        forged.member = bob_keys.id();
        assert_eq!(
            answered(&call(wrap(forged)).await),
            Answered::Refused(ErrorCode::NotAllowed),
            "a request in bob's name, signed by carol, was answered"
        );
        let carols = authenticate(&carol_keys, &key, first_epoch, schema_request.clone());
        assert_eq!(
            answered(&call(wrap(carols)).await),
            Answered::Refused(ErrorCode::NotAllowed)
        );
        // bob's own request passes, and only bob opens its answer: the checks above can fail.
        let bobs = authenticate(&bob_keys, &key, first_epoch, schema_request.clone());
        let bobs_wire = wrap(bobs.clone());
        let answer = call(bobs_wire.clone()).await;
        let Ok(Message::SealedAnswer(sealed_answer)) = ddcp::sync::codec::decode_message(&answer)
        else {
            panic!("bob's request was not answered: {:?}", answered(&answer));
        };
        let owner = MemberId::from_slice(&opened.status.public_key).unwrap();
        assert!(open_answer(&bob_keys, &owner, &key, &bobs, &sealed_answer).is_ok());
        assert!(open_answer(&carol_keys, &owner, &key, &bobs, &sealed_answer).is_err());
        drop(route);

        // Both members listen for alice's notes (their requests were signed), and bob opened
        // the notes alice sealed for him (her version moved as she pulled his b1).
        let listeners = || sample(&scrape(9106), "ddcp_listeners");
        common::private_net::wait_until(ARRIVAL, "bob and dave to listen", || {
            (listeners() == Some(2.0)).then_some(())
        });
        let bobs = common::private_net::wait_until(ARRIVAL, "bob to take a note", || {
            let text = scrape(9107);
            (sample(&text, r#"ddcp_notes_received_total{outcome="taken"}"#) > Some(0.0))
                .then_some(text)
        });
        assert_eq!(
            sample(&bobs, r#"ddcp_notes_received_total{outcome="unopened"}"#),
            None,
            "{bobs}"
        );

        // alice removes bob while serving, then writes.
        alice.run(&["member", "remove", "bob"]).ok();
        alice.sql("insert into bookmarks (id, url) values ('a2', 'https://a/2')");
        dave.wait_for(
            "select count(*) from bookmarks where id = 'a2'",
            "1",
            ARRIVAL,
        );
        // bob's listen went with his membership: alice's notes go to dave alone.
        common::private_net::wait_until(ARRIVAL, "bob's listen to end", || {
            (listeners() == Some(1.0)).then_some(())
        });

        // The new Status: a new epoch, and soon a new route (Veilid may take a few tries to
        // make one); bob's key opens nothing, dave's does.
        let deadline = std::time::Instant::now() + ARRIVAL;
        let (raw, now) = loop {
            let raw = network.read_record(&key).await.unwrap().unwrap();
            let now = open_published(&dave_keys, &key, &raw).unwrap();
            if now.status.route != first_route {
                break (raw, now);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the route never changed"
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        assert!(matches!(
            open_published(&bob_keys, &key, &raw),
            Err(ddcp::pull::RemoteError::NotAMember(_))
        ));
        assert!(now.session.unwrap().epoch > first_epoch);
        // bob's earlier request, replayed on the new route, and a new one of his: refused.
        let route = network.import_route(&now.status.route).unwrap();
        let call = |bytes: Vec<u8>| {
            let network = network.clone();
            let route = route.id().clone();
            async move { network.call(&route, bytes).await.unwrap() }
        };
        assert_eq!(
            answered(&call(bobs_wire.clone()).await),
            Answered::Refused(ErrorCode::NotAllowed),
            "bob's replayed request was answered"
        );
        let epoch = now.session.unwrap().epoch;
        let again = authenticate(&bob_keys, &key, epoch, schema_request.clone());
        assert_eq!(
            answered(&call(wrap(again)).await),
            Answered::Refused(ErrorCode::NotAllowed)
        );
        let daves = authenticate(&dave_keys, &key, epoch, schema_request);
        assert_eq!(answered(&call(wrap(daves)).await), Answered::Sealed);
        drop(route);
        network.close_record(&key).await;
        node.shutdown().await;
        bobs_wire
    });

    // bob never receives a2, and his pull says why in one line.
    let pulled = bob.run(&["pull", "alice"]);
    let line = pulled.fails_with("not a member");
    assert!(line.contains(&bob_id), "{line}");
    assert_eq!(
        bob.sql("select count(*) from bookmarks where id = 'a2'")
            .trim(),
        "0"
    );
    let status = bob.run(&["status"]).ok().to_string();
    assert!(status.contains("not a member"), "{status}");
    // bob's serve said so, and waits for alice's Status to change: no restart could help, so
    // its remote is not failed and restarted (a warning each time, for ever).
    let log = bob.log();
    assert!(log.contains("does not count this one as a member"), "{log}");
    assert!(
        !log.lines()
            .any(|line| line.contains("Remote failed") && line.contains("not a member")),
        "{log}"
    );
    // Added back, bob's serve pulls a2; removed and added back again with nothing written in
    // between, it still notices (adding a member moves no version) and its error goes.
    let not_a_member = |bob: &Peer| bob.run(&["status"]).ok().contains("not a member");
    for round in ["added back", "added back again"] {
        alice.run(&["member", "add", "bob", &bob_id]).ok();
        common::private_net::wait_until(ARRIVAL, &format!("bob {round} to pull"), || {
            (!not_a_member(&bob)).then_some(())
        });
        if round == "added back" {
            bob.wait_for(
                "select count(*) from bookmarks where id = 'a2'",
                "1",
                ARRIVAL,
            );
            alice.run(&["member", "remove", "bob"]).ok();
            common::private_net::wait_until(ARRIVAL, "bob to see his removal", || {
                not_a_member(&bob).then_some(())
            });
        }
    }
    assert!(
        bob.log()
            .contains("A member of the remote's database again"),
        "{}",
        bob.log()
    );
    // alice logged the refusals, once per asker per minute, never a secret of hers.
    let log = alice.log();
    assert!(
        log.contains("Refused a request to this private database"),
        "{log}"
    );
    assert!(log.contains("Access changed"), "{log}");

    // bob is removed for good; then alice's machine is lost, state dir and all, and her
    // backup (bob and dave members, the first epoch) restored elsewhere. What she last
    // published says bob was removed since: he stays out, and the epoch moves past it.
    alice.run(&["member", "remove", "bob"]).ok();
    common::private_net::wait_until(ARRIVAL, "bob to see his last removal", || {
        not_a_member(&bob).then_some(())
    });
    let epoch_of = |peer: &Peer| {
        let json: serde_json::Value =
            serde_json::from_str(peer.run(&["access", "--json"]).ok()).unwrap();
        ddcp::sync::Epoch(json["epoch"].as_u64().unwrap())
    };
    let last_epoch = epoch_of(&alice);
    alice.stop();
    let mut restored = Peer::empty(&net, "alice-restored", 11);
    let said = restored.run(&["restore", &backup]).ok().to_string();
    assert!(
        said.contains("kept out: bob (removed since the backup"),
        "{said}"
    );
    let listed = restored.run(&["member", "list"]).ok().to_string();
    assert_eq!(listed, format!("dave\t{dave_id}\n"));
    assert_eq!(epoch_of(&restored).0, last_epoch.0 + 1);
    restored.serve();
    restored.sql("insert into bookmarks (id, url) values ('a3', 'https://a/3')");
    dave.wait_for(
        "select count(*) from bookmarks where id = 'a3'",
        "1",
        ARRIVAL,
    );
    // bob's pull fails with the not-a-member line; a3 never reaches him.
    let mut pulled = bob.run(&["pull", "alice"]);
    for _ in 0..6 {
        if pulled.stderr.contains("not a member") && pulled.stderr.lines().count() == 1 {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
        pulled = bob.run(&["pull", "alice"]);
    }
    let line = pulled.fails_with("not a member");
    assert!(line.contains(&bob_id), "{line}");
    assert_eq!(
        bob.sql("select count(*) from bookmarks where id = 'a3'")
            .trim(),
        "0"
    );
    // The request bob signed as a member in the backup's epoch, replayed to the restored
    // database: refused. Its Status: sealed in a later epoch than any alice published.
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(&dir.path().join("veilid"), &net.node_settings(12))
            .await
            .unwrap();
        node.attach(ARRIVAL).await.unwrap();
        let network = node.network().clone();
        open_when_reachable(&network, &key).await;
        let deadline = std::time::Instant::now() + ARRIVAL;
        let now = loop {
            let raw = network.read_record(&key).await.unwrap().unwrap();
            match open_published(&dave_keys, &key, &raw) {
                Ok(now)
                    if now.status.db_version.0 > 0 && now.session.unwrap().epoch > last_epoch =>
                {
                    break now;
                }
                _ if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_secs(1)).await
                }
                other => panic!("the restored database's status never came: {other:?}"),
            }
        };
        let route = network.import_route(&now.status.route).unwrap();
        let answer = network.call(route.id(), bobs_captured).await.unwrap();
        assert_eq!(
            answered(&answer),
            Answered::Refused(ErrorCode::NotAllowed),
            "bob's captured request was answered by the restored database"
        );
        drop(route);
        network.close_record(&key).await;
        node.shutdown().await;
    });
    restored.stop();
    bob.stop();
    dave.stop();
}

/// c pulls b with `--authors direct`: b's own rows land at c, the rows b relays from a do not
/// (counted, in `ddcp status`); widened to `any`, c pulls b again from the start and a's rows
/// land too.
#[test]
fn authors_direct_keeps_relayed_rows_out_until_widened() {
    if !inside_private_network!() {
        return;
    }
    let net = TestNet::start();
    let mut a = Peer::new(&net, "a", 5);
    let mut b = Peer::new(&net, "b", 6);
    let mut c = Peer::new(&net, "c", 7);
    b.run(&["remote", "add", "a", &a.key()]).ok();
    c.run(&["remote", "add", "b", &b.key(), "--authors", "direct"])
        .ok();
    let listed = c.run(&["remote", "list"]).ok().to_string();
    assert!(listed.ends_with("\tauthors=direct\n"), "{listed}");
    a.sql("insert into bookmarks (id, url) values ('a1', 'https://a/1')");
    a.serve();
    b.serve();
    c.serve();
    b.wait_for(
        "select count(*) from bookmarks where id = 'a1'",
        "1",
        ARRIVAL,
    );
    b.sql("insert into bookmarks (id, url) values ('b1', 'https://b/1')");
    c.wait_for(
        "select count(*) from bookmarks where id = 'b1'",
        "1",
        ARRIVAL,
    );
    // b wrote b1 after it merged a1: c's pull went past a1, and skipped it.
    assert_eq!(
        c.sql("select count(*) from bookmarks where id = 'a1'")
            .trim(),
        "0"
    );
    let status = common::private_net::wait_until(ARRIVAL, "c's status to count refusals", || {
        let status = c.run(&["status", "--json"]).ok().to_string();
        let json: serde_json::Value = serde_json::from_str(&status).unwrap();
        let refused = json["replication"][0]["refused"].as_u64().unwrap_or(0);
        (refused > 0).then_some(status)
    });
    assert!(status.contains(r#""refused""#), "{status}");

    c.run(&["remote", "set", "b", "--authors", "any"]).ok();
    c.wait_for(
        "select count(*) from bookmarks where id = 'a1'",
        "1",
        ARRIVAL,
    );
    assert!(
        c.log().contains("pulling its changes again from the start"),
        "{}",
        c.log()
    );
    a.stop();
    b.stop();
    c.stop();
}

/// `ddcp clone KEY DIR`: a new peer in one command. Its tables are made as the remote's (no DDL
/// typed), the remote is added as `origin` and pulled; the clone has a record of its own, and
/// serving both, the clone's edits travel back.
#[test]
fn clone_makes_a_new_peer_in_one_command() {
    if !inside_private_network!() {
        return;
    }
    let net = TestNet::start();
    let mut alice = Peer::new(&net, "alice", 5);
    alice
        .run_with_input(&["shell"], &fixture("ins_test_schema_alice.sql"))
        .ok();
    alice.serve();
    let alice_key = alice.key();
    // Told another owner than the one alice's status names: nothing made.
    let carol = Peer::empty(&net, "carol", 7);
    let stranger = ddcp::sync::MemberKeys::generate().id().to_string();
    let mut refused = carol.run(&["clone", &alice_key, "--owner", &stranger]);
    for _ in 0..6 {
        if refused.stderr.contains("as --owner says") && refused.stderr.lines().count() == 1 {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
        refused = carol.run(&["clone", &alice_key, "--owner", &stranger]);
    }
    refused.fails_with("as --owner says: nothing made");
    assert!(!carol.site.db_file().exists() && !carol.site.path(".ddcp").exists());
    // bob's folder holds nothing yet: clone makes the database and the state dir there; told
    // alice's id, it pins it.
    let alice_id = alice.run(&["id"]).ok().trim().to_string();
    let mut bob = Peer::empty(&net, "bob", 6);
    let run = bob.run(&["clone", &alice_key, "--owner", &alice_id, "--json"]);
    let report: serde_json::Value = serde_json::from_str(run.ok()).unwrap();
    assert_eq!(report["remote"], "origin");
    assert!(report["changes"].as_u64().unwrap() > 0, "{report}");
    let bob_key = report["key"].as_str().unwrap().to_string();
    assert_ne!(bob_key, alice_key);

    // The clone is a peer like any: same schema, alice's rows, alice as its remote.
    assert_eq!(bob.key(), bob_key);
    assert_eq!(rows(&bob), rows(&alice));
    let status = |peer: &Peer| -> serde_json::Value {
        serde_json::from_str(peer.run(&["status", "--json"]).ok()).unwrap()
    };
    assert_eq!(
        status(&bob)["schema_fingerprint"],
        status(&alice)["schema_fingerprint"]
    );
    assert!(bob.run(&["remote", "list"]).ok().starts_with("origin\t"));
    let remotes: serde_json::Value =
        serde_json::from_str(bob.run(&["remote", "list", "--json"]).ok()).unwrap();
    assert_eq!(remotes[0]["owner"], alice_id.as_str());
    // What bob holds from whom: alice's changes, through origin.
    let log: serde_json::Value =
        serde_json::from_str(bob.run(&["log", "--remote", "origin", "--json"]).ok()).unwrap();
    let origin = &log["remotes"][0];
    assert_eq!(origin["site_id"], status(&alice)["site_id"]);
    assert!(origin["pulled_version"].as_i64().unwrap() > 0, "{log}");
    assert!(origin["changes_pulled"].as_u64().unwrap() > 0, "{log}");
    assert_eq!(log["authors"][0]["who"], "remote origin");
    alice.run(&["remote", "add", "bob", &bob_key]).ok();
    alice.stop();
    alice.serve();
    bob.serve();
    bob.sql("update bookmarks set title = 'cloned, then edited' where url = 'https://veilid.com/'");
    alice.wait_for(
        "select title from bookmarks where url = 'https://veilid.com/'",
        "cloned, then edited",
        ARRIVAL,
    );
    alice.stop();
    bob.stop();
}

/// The posts table the filter test adds to the fixtures' schema (on every peer: schemas must
/// agree).
const POSTS: &str = "create table posts (id text primary key not null, owner text, body text);
    select crsql_as_crr('posts');";

/// alice is private. dave may read bookmarks only: his pulls never carry tags or posts, as
/// decoded from what alice sends him. bob may read the posts he owns: his gets his post, then
/// alice's post whole once she hands it to him. alice accepts from bob changes to posts he
/// owns only: his edit of his post lands, his new bookmark and his forged post do not
/// (counted in her status). erin pulls alice `--into alice_`: alice's rows land in mirrors,
/// never in erin's own tables, and the view shows both.
#[test]
fn filters_limit_what_each_member_reads_and_what_a_remote_may_change() {
    if !inside_private_network!() {
        return;
    }
    use ddcp::net::Node;
    use ddcp::pull::open_published;
    use ddcp::sync::codec::{decode_message, encode_message};
    use ddcp::sync::compress::Compression;
    use ddcp::sync::protocol::{ChangesRequest, Message};
    use ddcp::sync::seal::{authenticate, open_answer};
    use ddcp::sync::{Cursor, MemberId, RecordKey, SiteId};

    let net = TestNet::start();
    let mut alice = Peer::new(&net, "alice", 5);
    let mut bob = Peer::new(&net, "bob", 6);
    let mut erin = Peer::new(&net, "erin", 7);
    let mut dave = Peer::new(&net, "dave", 8);
    for peer in [&alice, &bob, &erin, &dave] {
        peer.sql(POSTS);
    }
    alice.run(&["access", "private"]).ok();
    let bob_id = bob.run(&["id"]).ok().trim().to_string();
    let dave_id = dave.run(&["id"]).ok().trim().to_string();
    let erin_id = erin.run(&["id"]).ok().trim().to_string();
    alice.run(&["member", "add", "erin", &erin_id]).ok();
    // A filter that names what is not there is refused with one line, nothing stored.
    alice
        .run(&["member", "add", "bob", &bob_id, "--where", "author = 'bob'"])
        .fails_with("no such column: author");
    alice
        .run(&["member", "add", "bob", &bob_id, "--tables", "posts"])
        .ok();
    alice
        .run(&["member", "set", "bob", "--where", "owner = 'bob'"])
        .ok();
    alice
        .run(&["member", "add", "dave", &dave_id, "--tables", "bookmarks"])
        .ok();
    let members = alice.run(&["member", "list", "--json"]).ok().to_string();
    let members: serde_json::Value = serde_json::from_str(&members).unwrap();
    assert_eq!(
        members[0]["reads"],
        serde_json::json!({"tables": ["posts"], "where": "owner = 'bob'"})
    );
    assert_eq!(
        members[1]["reads"],
        serde_json::json!({"tables": ["bookmarks"]})
    );
    assert_eq!(members[2]["reads"], serde_json::Value::Null);
    alice.sql(
        "insert into bookmarks (id, url) values ('a1', 'https://a/1');
         insert into tags values ('a1', 'secret-tag');
         insert into posts values ('p1', 'alice', 'hello');
         insert into posts values ('p2', 'bob', 'yo');",
    );
    let alice_key = alice.key();
    bob.run(&["remote", "add", "alice", &alice_key]).ok();
    dave.run(&["remote", "add", "alice", &alice_key]).ok();
    erin.sql("insert into bookmarks (id, url) values ('e1', 'https://e/1')");
    erin.run(&["remote", "add", "alice", &alice_key, "--into", "alice_"])
        .ok();
    alice
        .run(&[
            "remote",
            "add",
            "bob",
            &bob.key(),
            "--tables",
            "posts",
            "--where",
            "owner = 'bob'",
        ])
        .ok();
    alice.serve();
    bob.serve();
    dave.serve();
    erin.serve();

    // erin keeps alice's rows apart, and reads both through the view.
    erin.wait_for(
        "select count(*) from alice_bookmarks where id = 'a1'",
        "1",
        ARRIVAL,
    );
    assert_eq!(erin.sql("select id from bookmarks").trim(), "e1");
    assert_eq!(
        erin.sql("select source || ' ' || id from ddcp_all_bookmarks order by id"),
        "alice a1\nlocal e1\n"
    );
    assert!(
        erin.run(&["remote", "list"])
            .ok()
            .ends_with("\tinto=alice_\n"),
        "the mirror prefix is listed"
    );

    dave.wait_for("select count(*) from bookmarks", "1", ARRIVAL);
    assert_eq!(dave.sql("select count(*) from tags").trim(), "0");
    assert_eq!(dave.sql("select count(*) from posts").trim(), "0");
    bob.wait_for("select body from posts where id = 'p2'", "yo", ARRIVAL);
    assert_eq!(
        bob.sql("select count(*) from posts where id = 'p1'").trim(),
        "0"
    );
    assert_eq!(bob.sql("select count(*) from bookmarks").trim(), "0");

    // alice hands p1 to bob: it reaches him whole, though only its owner changed.
    alice.sql("update posts set owner = 'bob' where id = 'p1'");
    bob.wait_for(
        "select owner || ' ' || body from posts where id = 'p1'",
        "bob hello",
        ARRIVAL,
    );

    // bob edits his post, adds a bookmark and forges a post of alice's: only the edit lands.
    bob.sql(
        "insert into bookmarks (id, url) values ('b1', 'https://b/1');
         insert into posts values ('p3', 'alice', 'forged');",
    );
    bob.sql("update posts set body = 'yo, edited' where id = 'p2'");
    alice.wait_for(
        "select body from posts where id = 'p2'",
        "yo, edited",
        ARRIVAL,
    );
    assert_eq!(
        alice
            .sql("select count(*) from bookmarks where id = 'b1'")
            .trim(),
        "0"
    );
    assert_eq!(
        alice
            .sql("select count(*) from posts where id = 'p3'")
            .trim(),
        "0"
    );
    let status =
        common::private_net::wait_until(ARRIVAL, "alice's status to count refusals", || {
            let status = alice.run(&["status", "--json"]).ok().to_string();
            let json: serde_json::Value = serde_json::from_str(&status).unwrap();
            let refused = json["replication"][0]["refused"].as_u64().unwrap_or(0);
            (refused >= 2).then_some(status)
        });
    assert!(status.contains(r#""refused""#), "{status}");
    let remotes = alice.run(&["remote", "list", "--json"]).ok().to_string();
    let remotes: serde_json::Value = serde_json::from_str(&remotes).unwrap();
    assert_eq!(
        remotes[0]["accepts"],
        serde_json::json!({"tables": ["posts"], "where": "owner = 'bob'"})
    );

    // On the wire: what alice sends dave, decoded.
    let key: RecordKey = alice_key.parse().unwrap();
    let dave_keys = member_keys(&dave);
    let fingerprint = {
        let dir = tempfile::tempdir().unwrap();
        let db =
            ddcp::db::Db::create(&dir.path().join("s.db"), &ddcp::db::Extension::BuiltIn).unwrap();
        let schema = String::from_utf8(fixture("cr_tables.sql")).unwrap();
        db.connection().execute_batch(&schema).unwrap();
        db.connection().execute_batch(POSTS).unwrap();
        db.schema().unwrap().fingerprint()
    };
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(&dir.path().join("veilid"), &net.node_settings(9))
            .await
            .unwrap();
        node.attach(ARRIVAL).await.unwrap();
        let network = node.network().clone();
        open_when_reachable(&network, &key).await;
        let raw = network.read_record(&key).await.unwrap().unwrap();
        let opened = open_published(&dave_keys, &key, &raw).unwrap();
        let owner = MemberId::from_slice(&opened.status.public_key).unwrap();
        let epoch = opened.session.unwrap().epoch;
        let route = network.import_route(&opened.status.route).unwrap();
        let request = encode_message(
            &Message::ChangesRequest(ChangesRequest {
                asker: SiteId([9; 16]),
                since: Cursor::START,
                max_bytes: 1 << 20,
                schema_fingerprint: fingerprint,
                listen: None,
            }),
            Compression::None,
        );
        let signed = authenticate(&dave_keys, &key, epoch, request);
        let answer = network
            .call(
                route.id(),
                encode_message(&Message::Authenticated(signed.clone()), Compression::None),
            )
            .await
            .unwrap();
        let Ok(Message::SealedAnswer(sealed)) = decode_message(&answer) else {
            panic!("dave's request was not answered");
        };
        let opened = open_answer(&dave_keys, &owner, &key, &signed, &sealed).unwrap();
        let Ok(Message::ChangesPage(page)) = decode_message(&opened) else {
            panic!("not a page");
        };
        let tables: std::collections::BTreeSet<&str> = page
            .changes
            .iter()
            .chain(&page.rows)
            .map(|change| change.table.as_str())
            .collect();
        assert_eq!(tables.into_iter().collect::<Vec<_>>(), ["bookmarks"]);
        drop(route);
        network.close_record(&key).await;
        node.shutdown().await;
    });
    alice.stop();
    bob.stop();
    dave.stop();
    erin.stop();
}

/// b is backed up while a's rows stream in and b writes; b writes b2 after the backup, which a
/// pulls. A restore is refused while b still serves; b's database is then lost (its state dir
/// kept), restored from the backup, and its serve catches up: a's rows and b's own b2 (back
/// from a) are there, each once. The rows b writes after the restore, at versions a pulled
/// before the loss, reach a all the same, and so do b's later edits. Last, b's record names
/// another owner than the one a pinned: a pulls nothing from it until the new one is pinned.
#[test]
fn a_restored_database_catches_up_with_nothing_lost_or_doubled() {
    if !inside_private_network!() {
        return;
    }
    let net = TestNet::start();
    let mut a = Peer::new(&net, "a", 5);
    let mut b = Peer::new(&net, "b", 6);
    a.run(&["remote", "add", "b", &b.key()]).ok();
    b.run(&["remote", "add", "a", &a.key()]).ok();
    a.sql("insert into bookmarks (id, url) values ('a1', 'https://a/1')");
    a.serve();
    b.serve();
    b.wait_for(
        "select count(*) from bookmarks where id = 'a1'",
        "1",
        ARRIVAL,
    );

    // A backup while both write.
    let made = std::thread::scope(|scope| {
        let writing = scope.spawn(|| {
            for i in 0..20 {
                a.sql(&format!(
                    "insert into bookmarks (id, url) values ('a-{i}', 'https://a/{i}')"
                ));
                b.sql(&format!(
                    "insert into bookmarks (id, url) values ('b-{i}', 'https://b/{i}')"
                ));
            }
        });
        let backup = b.site.path("b-backup.db");
        let made = b.run(&["backup", backup.to_str().unwrap()]);
        writing.join().unwrap();
        made
    });
    made.ok();
    let backup = b.site.path("b-backup.db");
    let backup = backup.to_str().unwrap().to_string();
    b.sql("insert into bookmarks (id, url) values ('b2', 'https://b/2')");
    a.wait_for(
        "select count(*) from bookmarks where id = 'b2'",
        "1",
        ARRIVAL,
    );
    a.wait_for(
        "select count(*) from bookmarks where id = 'b-19'",
        "1",
        ARRIVAL,
    );

    // b serves still: its route answers, the restore is refused.
    let elsewhere = Peer::empty(&net, "b-elsewhere", 7);
    std::fs::create_dir_all(elsewhere.site.path(".ddcp")).unwrap();
    std::fs::copy(
        b.site.path(".ddcp/record"),
        elsewhere.site.path(".ddcp/record"),
    )
    .unwrap();
    std::fs::copy(
        b.site.path(".ddcp/member"),
        elsewhere.site.path(".ddcp/member"),
    )
    .unwrap();
    let refused = elsewhere.run(&["restore", &backup]);
    assert_ne!(refused.code, 0);
    assert!(
        refused
            .stderr
            .contains("another copy of this database serves record"),
        "{}",
        refused.stderr
    );
    assert!(!elsewhere.site.db_file().exists());

    // b's disk dies: the database is gone, the state dir (its keys) stays.
    b.stop();
    let version = |peer: &Peer| -> i64 {
        peer.sql("select crsql_db_version()")
            .trim()
            .parse()
            .unwrap()
    };
    let lost_at = version(&b);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", b.site.db_file().display()));
    }
    let restored = b.run(&["restore", &backup]);
    assert!(
        restored.ok().starts_with("restored site "),
        "{}",
        restored.stdout
    );
    // Before it serves, b writes past the version it was lost at: its counter went back to
    // the backup's, so its first rows get versions a pulled before the loss. a's cursor, of
    // b's earlier life, must start over instead of skipping them (or being told it is ahead).
    let mut offline = 0;
    while version(&b) <= lost_at {
        b.sql(&format!(
            "insert into bookmarks (id, url) values ('offline-{offline}', 'https://b/o')"
        ));
        offline += 1;
    }
    let expected: Vec<String> = a
        .sql("select id from bookmarks")
        .lines()
        .map(str::to_string)
        .chain((0..offline).map(|i| format!("offline-{i}")))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let expected = expected.join("\n") + "\n";
    b.serve();
    b.wait_for(
        "select count(*) from bookmarks where id = 'b2'",
        "1",
        ARRIVAL,
    );
    b.wait_for(
        "select count(*) from bookmarks",
        &expected.lines().count().to_string(),
        ARRIVAL,
    );
    assert_eq!(b.sql("select id from bookmarks order by id"), expected);
    assert_eq!(b.sql("pragma integrity_check").trim(), "ok");
    a.wait_for(
        "select count(*) from bookmarks where id like 'offline-%'",
        &offline.to_string(),
        ARRIVAL,
    );
    // And it goes on as the same database: its next row reaches a.
    b.sql("insert into bookmarks (id, url) values ('b3', 'https://b/3')");
    a.wait_for(
        "select count(*) from bookmarks where id = 'b3'",
        "1",
        ARRIVAL,
    );
    // a pinned b's owner (its `ddcp id`) at first contact, and the restore kept it. Now b's
    // record publishes another database identity (as whoever holds its owner key could):
    // a refuses it in one line and pulls nothing, until told to pin the new one.
    let pinned = b.run(&["id"]).ok().trim().to_string();
    let remotes: serde_json::Value =
        serde_json::from_str(a.run(&["remote", "list", "--json"]).ok()).unwrap();
    assert_eq!(remotes[0]["owner"], pinned.as_str());
    b.stop();
    // A new member identity on a new node (as a thief of the record key would publish from):
    // the old node's routes, which Veilid keeps across restarts, go with it. A node that never
    // held the record writes under a sequence number the network is past, and must write again
    // over the newer value Veilid hands back (`Network::publish`), or a never sees it.
    std::fs::remove_file(b.site.path(".ddcp/member")).unwrap();
    std::fs::remove_dir_all(b.site.path(".ddcp/veilid")).unwrap();
    let now = b.run(&["id"]).ok().trim().to_string();
    assert_ne!(now, pinned);
    b.serve();
    // Until b's new Status is out, its old one (the pinned owner) is pulled as before.
    let mut refused = a.run(&["pull", "b"]);
    for _ in 0..15 {
        if refused.stderr.contains("names another owner") {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
        refused = a.run(&["pull", "b"]);
    }
    refused.fails_with("names another owner than the one pinned");
    b.sql("insert into bookmarks (id, url) values ('b4', 'https://b/4')");
    let refused = a.run(&["pull", "b"]);
    let line = refused.fails_with("names another owner than the one pinned");
    assert!(line.contains(&pinned) && line.contains(&now), "{line}");
    assert_eq!(
        a.sql("select count(*) from bookmarks where id = 'b4'")
            .trim(),
        "0"
    );
    let status = a.run(&["status"]).ok().to_string();
    assert!(status.contains("names another owner"), "{status}");
    a.run(&["remote", "set", "b", "--owner", &now]).ok();
    a.run(&["pull", "b"]).ok();
    assert_eq!(
        a.sql("select count(*) from bookmarks where id = 'b4'")
            .trim(),
        "1"
    );
    let log = a.log();
    assert_eq!(
        log.matches("names another owner than the one pinned; not pulling")
            .count(),
        1,
        "{log}"
    );
    assert!(
        log.contains("names its pinned owner: pulling again"),
        "{log}"
    );
    a.stop();
    b.stop();
}
