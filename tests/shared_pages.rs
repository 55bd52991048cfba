//! A page built for one puller and answered to another (many pullers catching up at once ask
//! for the same pages) never changes an answer: every request for changes is answered by the
//! serving database's responder, which keeps pages, and by a fresh one, and both answers must
//! be the same bytes, for pullers of which the database holds nothing, one whose change is in
//! the pages (it must not get it back), and ones whose change comes after them. A loaded node
//! gives a kept page whole; an asker of another schema is told so.

use ddcp::db::{AcceptPolicy, Db, Extension};
use ddcp::sync::codec::decode_message;
use ddcp::sync::filter::ChangeFilter;
use ddcp::sync::protocol::Message;
use ddcp::sync::pull::{Puller, Received};
use ddcp::sync::serve::Responder;

const SCHEMA: &str = "
    create table items (id text primary key not null, payload blob);
    select crsql_as_crr('items');";

/// Pages of 256 KiB of changes: random payloads make each answer bigger than one message, the
/// kind of page that is kept.
const BUDGET: u32 = 256 << 10;

fn database(dir: &std::path::Path, name: &str) -> Db {
    let db = Db::create(&dir.join(format!("{name}.db")), &Extension::BuiltIn).unwrap();
    db.connection().execute_batch(SCHEMA).unwrap();
    db
}

fn write(db: &Db, id: &str) {
    db.connection()
        .execute(
            "insert into items (id, payload) values (?1, randomblob(200))",
            [id],
        )
        .unwrap();
}

/// `asker` pulls `remote` whole, each request answered by `responder` (which keeps pages
/// across pullers) and compared with a fresh responder's answer. How many requests for changes
/// there were.
fn pull_comparing(asker: &mut Db, remote: &Db, responder: &mut Responder) -> usize {
    let site = remote.site_id().unwrap();
    let mut puller = Puller::new(
        asker.site_id().unwrap(),
        site,
        asker.schema().unwrap().fingerprint(),
        asker.cursor(site).unwrap(),
        BUDGET,
    );
    let mut asked = 0;
    for _round in 0..10_000 {
        if puller.is_up_to_date() {
            return asked;
        }
        for request in puller.requests() {
            let answer = responder.respond(remote, &request);
            if let Ok(Message::ChangesRequest(_)) = decode_message(&request) {
                asked += 1;
                let fresh = Responder::default().respond(remote, &request);
                assert!(
                    answer == fresh,
                    "a kept page answered another asker wrongly"
                );
            }
            if let Received::Page(page) = puller.receive(&answer).unwrap() {
                asker
                    .accept_page(site, *page, &AcceptPolicy::default())
                    .unwrap();
            }
        }
    }
    panic!("the pull did not finish");
}

fn ids(db: &Db) -> Vec<String> {
    let mut statement = db
        .connection()
        .prepare("select id from items order by id")
        .unwrap();
    statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn pages_kept_for_one_puller_answer_others_exactly_as_pages_built_for_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = database(dir.path(), "a");
    let mut responder = Responder::default();
    // a's rows one by one, c's row among them (in the first page), then a's rows in three
    // big transactions (each cut into pages), then e's row.
    for row in 0..100 {
        write(&a, &format!("a-before-c-{row:04}"));
    }
    let mut c = database(dir.path(), "c");
    write(&c, "c-0");
    pull_comparing(&mut a, &c, &mut Responder::default());
    for row in 0..1200 {
        write(&a, &format!("a-after-c-{row:04}"));
    }
    for transaction in 0..3 {
        a.connection().execute_batch("begin").unwrap();
        for row in 0..1000 {
            write(&a, &format!("a-{transaction}-{row:04}"));
        }
        a.connection().execute_batch("commit").unwrap();
    }
    let mut e = database(dir.path(), "e");
    write(&e, "e-0");
    pull_comparing(&mut a, &e, &mut Responder::default());

    let mut b = database(dir.path(), "b");
    let asked = pull_comparing(&mut b, &a, &mut responder);
    assert!(asked >= 3, "{asked} pages: too few to share");
    assert_eq!(responder.pages_shared(), 0);
    // c's own row is in the first page: that page is built for c without it.
    pull_comparing(&mut c, &a, &mut responder);
    let after_c = responder.pages_shared();
    assert!(
        after_c < asked as u64,
        "c was given pages holding its own row"
    );
    // d, of which a holds nothing, gets every page kept.
    let mut d = database(dir.path(), "d");
    pull_comparing(&mut d, &a, &mut responder);
    assert!(
        responder.pages_shared() > after_c,
        "nothing was shared with d"
    );
    // e's row comes after the pages of a's rows: it gets those.
    let before_e = responder.pages_shared();
    pull_comparing(&mut e, &a, &mut responder);
    assert!(
        responder.pages_shared() > before_e,
        "nothing was shared with e"
    );
    for puller in [&b, &c, &d, &e] {
        assert_eq!(ids(puller), ids(&a));
    }
    // A puller whose own change comes after the pages: the pages built for it (without its
    // change, which they would not have held anyway) are every puller's, kept for the next.
    let mut g = database(dir.path(), "g");
    write(&g, "g-0");
    pull_comparing(&mut a, &g, &mut Responder::default());
    // (A row after g's: g's cursor ends where h's does.)
    write(&a, "a-after-g");
    let mut writer_first = Responder::default();
    pull_comparing(&mut g, &a, &mut writer_first);
    let mut h = database(dir.path(), "h");
    pull_comparing(&mut h, &a, &mut writer_first);
    assert!(
        writer_first.pages_shared() > 0,
        "nothing built for g went to h"
    );
    assert_eq!(ids(&h), ids(&a));
    // A page that read to the end, where g's new change is: built for g without it, it is not
    // h's page (the comparison fails if h gets it).
    for row in 0..300 {
        write(&a, &format!("a-late-{row:04}"));
    }
    write(&g, "g-1");
    pull_comparing(&mut a, &g, &mut Responder::default());
    pull_comparing(&mut g, &a, &mut writer_first);
    pull_comparing(&mut h, &a, &mut writer_first);
    assert_eq!(ids(&h), ids(&a));
    // A write: the pages kept describe a database that is no more (f asks what b asked
    // first; the comparison fails if it gets b's page).
    write(&a, "a-later");
    let mut f = database(dir.path(), "f");
    pull_comparing(&mut f, &a, &mut responder);
    assert_eq!(ids(&f), ids(&a));
}

#[test]
fn a_kept_page_goes_whole_to_an_asker_of_a_loaded_node_and_never_to_one_of_another_schema() {
    let dir = tempfile::tempdir().unwrap();
    let a = database(dir.path(), "a");
    a.connection().execute_batch("begin").unwrap();
    for row in 0..2000 {
        write(&a, &format!("a-{row:04}"));
    }
    a.connection().execute_batch("commit").unwrap();
    let mut responder = Responder::default();
    let mut b = database(dir.path(), "b");
    pull_comparing(&mut b, &a, &mut responder);
    let shared = responder.pages_shared();

    // Another puller's first request, while the node is loaded (a budget of 64 KiB): the page
    // kept for b, not a small one built for it.
    let c = database(dir.path(), "c");
    let site = a.site_id().unwrap();
    let puller = Puller::new(
        c.site_id().unwrap(),
        site,
        c.schema().unwrap().fingerprint(),
        c.cursor(site).unwrap(),
        BUDGET,
    );
    let request = puller.requests().into_iter().next().unwrap();
    let loaded = responder.respond_within(&a, &request, 64 << 10, &ChangeFilter::default());
    assert!(matches!(
        decode_message(&loaded),
        Ok(Message::Fragmented(_))
    ));
    assert_eq!(loaded, Responder::default().respond(&a, &request));
    assert_eq!(responder.pages_shared(), shared + 1);
    // An asker of another schema is told so, whatever was kept.
    let other_schema = Puller::new(
        c.site_id().unwrap(),
        site,
        ddcp::sync::schema::SchemaFingerprint([0; 32]),
        c.cursor(site).unwrap(),
        BUDGET,
    );
    let request = other_schema.requests().into_iter().next().unwrap();
    assert!(matches!(
        decode_message(&responder.respond(&a, &request)),
        Ok(Message::Error(_))
    ));
    let request = puller.requests().into_iter().next().unwrap();
    // Nothing kept to give: built within the smaller budget.
    let built =
        Responder::default().respond_within(&a, &request, 64 << 10, &ChangeFilter::default());
    assert_ne!(built, loaded);
}
