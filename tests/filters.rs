//! Filters end to end in memory: real databases, the protocol's own request and answer code,
//! random edits and random filters (proptest). What is proven:
//! (a) what is served is exactly what the reader's filter allows: nothing outside it appears in
//!     any page, its changes or the rows it carries;
//! (b) accepting through a filter ends where applying the filtered changes ends;
//! (c) readers with the same filter converge, whenever each pulls (with a row predicate, in the
//!     rows that match: a row that stopped matching stays at a reader as it was);
//! (d) a row that starts to match arrives whole: every row that matches at the source is, at
//!     the reader, what it is at the source (its allowed columns).

use std::collections::BTreeMap;

use ddcp::commands::filter_args::FilterFlags;
use ddcp::db::{AcceptPolicy, Db, DbError, Extension};
use ddcp::sync::filter::{ChangeFilter, SENTINEL_CID};
use ddcp::sync::protocol::ChangesPage;
use ddcp::sync::pull::{Puller, Received};
use ddcp::sync::serve::{MAX_PAGE_BUDGET, Responder};
use ddcp::sync::{DbVersion, SiteId};
use proptest::prelude::*;
use proptest::test_runner::Config;

const SCHEMA: &str = "
    create table posts (id integer primary key not null, owner text, body text, secret text);
    select crsql_as_crr('posts');
    create table tags (id integer primary key not null, name text);
    select crsql_as_crr('tags');";

const OWNERS: [&str; 3] = ["alice", "bob", "carol"];

struct Peer {
    _dir: tempfile::TempDir,
    db: Db,
    site: SiteId,
}

fn peer() -> Peer {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(&dir.path().join("peer.db"), &Extension::BuiltIn).unwrap();
    db.connection().execute_batch(SCHEMA).unwrap();
    Peer {
        site: db.site_id().unwrap(),
        _dir: dir,
        db,
    }
}

/// One transaction at the source.
#[derive(Clone, Debug)]
enum Edit {
    Post { id: u8, owner: usize, body: u8 },
    Owner { id: u8, owner: usize },
    Body { id: u8, body: u8 },
    Secret { id: u8, secret: u8 },
    Delete { id: u8 },
    Tag { id: u8, name: u8 },
}

impl Edit {
    fn sql(&self) -> String {
        match self {
            Edit::Post { id, owner, body } => format!(
                "insert into posts values ({id}, '{}', 'body {body}', 'secret {body}')
                 on conflict (id) do update set owner = excluded.owner, body = excluded.body",
                OWNERS[*owner]
            ),
            Edit::Owner { id, owner } => {
                format!(
                    "update posts set owner = '{}' where id = {id}",
                    OWNERS[*owner]
                )
            }
            Edit::Body { id, body } => {
                format!("update posts set body = 'edited {body}' where id = {id}")
            }
            Edit::Secret { id, secret } => {
                format!("update posts set secret = 'secret {secret}' where id = {id}")
            }
            Edit::Delete { id } => format!("delete from posts where id = {id}"),
            Edit::Tag { id, name } => format!(
                "insert into tags values ({id}, 'tag {name}')
                 on conflict (id) do update set name = excluded.name"
            ),
        }
    }
}

fn edit() -> impl Strategy<Value = Edit> {
    let id = 0u8..6;
    prop_oneof![
        3 => (id.clone(), 0..OWNERS.len(), any::<u8>())
            .prop_map(|(id, owner, body)| Edit::Post { id, owner, body }),
        3 => (id.clone(), 0..OWNERS.len()).prop_map(|(id, owner)| Edit::Owner { id, owner }),
        2 => (id.clone(), any::<u8>()).prop_map(|(id, body)| Edit::Body { id, body }),
        1 => (id.clone(), any::<u8>()).prop_map(|(id, secret)| Edit::Secret { id, secret }),
        1 => id.clone().prop_map(|id| Edit::Delete { id }),
        1 => (id, any::<u8>()).prop_map(|(id, name)| Edit::Tag { id, name }),
    ]
}

/// A step: an edit at the source, or a pull by one of two readers.
#[derive(Clone, Debug)]
enum Step {
    Edit(Edit),
    Pull(usize),
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec(
        prop_oneof![4 => edit().prop_map(Step::Edit), 1 => (0usize..2).prop_map(Step::Pull)],
        1..40,
    )
}

/// The filter parts proptest picks from.
#[derive(Clone, Debug)]
struct FilterChoice {
    tables: Option<&'static str>,
    exclude_columns: Option<&'static str>,
    rows: Option<&'static str>,
}

fn filter_choice() -> impl Strategy<Value = FilterChoice> {
    (
        prop_oneof![Just(None), Just(Some("posts")), Just(Some("tags"))],
        prop_oneof![Just(None), Just(Some("posts.secret"))],
        prop_oneof![
            Just(None),
            Just(Some("owner = 'bob'")),
            Just(Some("owner in ('bob', 'carol') and body is not null")),
        ],
    )
        .prop_map(|(tables, exclude_columns, rows)| FilterChoice {
            tables,
            exclude_columns,
            rows,
        })
}

impl FilterChoice {
    fn filter(&self) -> ChangeFilter {
        // A row predicate over posts' columns is only valid where posts alone pass.
        let tables = match (self.rows, self.tables) {
            (Some(_), _) => Some("posts"),
            (None, tables) => tables,
        };
        FilterFlags {
            tables,
            exclude_columns: self.exclude_columns,
            rows: self.rows,
            ..FilterFlags::default()
        }
        .applied_to(&ChangeFilter::default())
        .unwrap()
    }
}

/// `reader` pulls from `source` until up to date: the source serves through `serves`, the
/// reader accepts through `accepts`. Every page is checked against `serves` first (a).
fn pull(reader: &mut Peer, source: &Peer, serves: &ChangeFilter, accepts: &AcceptPolicy) {
    pull_within(reader, source, serves, accepts, MAX_PAGE_BUDGET);
}

/// [`pull`] in pages of at most `budget` bytes of changes.
fn pull_within(
    reader: &mut Peer,
    source: &Peer,
    serves: &ChangeFilter,
    accepts: &AcceptPolicy,
    budget: u32,
) {
    let mut responder = Responder::default();
    let fingerprint = reader.db.schema().unwrap().fingerprint();
    reader.db.align_cursor(source.site, accepts).unwrap();
    let mut puller = Puller::new(
        reader.site,
        source.site,
        fingerprint,
        reader.db.cursor(source.site).unwrap(),
        64 << 10,
    );
    for _ in 0..10_000 {
        if puller.is_up_to_date() {
            return;
        }
        for request in puller.requests() {
            let answer = responder.respond_within(&source.db, &request, budget, serves);
            if let Received::Page(page) = puller.receive(&answer).unwrap() {
                check_served(source, serves, &page);
                match reader.db.accept_page(source.site, *page, accepts) {
                    Ok(_) => {}
                    Err(DbError::StaleCursor) => unreachable!("one puller at a time"),
                    Err(err) => panic!("accept_page: {err}"),
                }
            }
        }
    }
    panic!("the pull did not finish");
}

/// (a): nothing outside the filter, in the changes or in the rows carried.
fn check_served(source: &Peer, serves: &ChangeFilter, page: &ChangesPage) {
    for change in page.changes.iter().chain(&page.rows) {
        assert!(
            serves.admits(change),
            "served outside the filter: {change:?}"
        );
        let deletion = change.cid == SENTINEL_CID && change.cl % 2 == 0;
        if let (Some(rows), false) = (&serves.rows, deletion) {
            assert!(
                source
                    .db
                    .row_matches(&change.table, &change.pk, rows)
                    .unwrap(),
                "served a row that does not match: {change:?}"
            );
        }
    }
}

type Rows = BTreeMap<i64, Vec<Option<String>>>;

fn posts(db: &Db) -> Rows {
    let mut statement = db
        .connection()
        .prepare("select id, owner, body, secret from posts")
        .unwrap();
    statement
        .query_map([], |row| {
            Ok((row.get(0)?, vec![row.get(1)?, row.get(2)?, row.get(3)?]))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn tags(db: &Db) -> BTreeMap<i64, Option<String>> {
    let mut statement = db
        .connection()
        .prepare("select id, name from tags")
        .unwrap();
    statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// (d): every post that passes the filter at the source is, at the reader, what it is at the
/// source in the columns that pass (an excluded column never arrives: NULL). And the reader
/// holds no post the source deleted, and nothing of a table the filter leaves out.
fn check_visible_rows(source: &Peer, reader: &Peer, filter: &ChangeFilter) {
    let at_reader = posts(&reader.db);
    let secret_passes = filter.admits_cell("posts", "secret");
    if filter.admits_table("posts") {
        let at_source = posts(&source.db);
        for (id, columns) in &at_source {
            let pk = pk_of(*id);
            let passes = match &filter.rows {
                Some(rows) => source.db.row_matches("posts", &pk, rows).unwrap(),
                None => true,
            };
            if !passes {
                continue;
            }
            let mut expected = columns.clone();
            if !secret_passes {
                expected[2] = None;
            }
            assert_eq!(at_reader.get(id), Some(&expected), "post {id}");
        }
        for id in at_reader.keys() {
            assert!(
                at_source.contains_key(id),
                "post {id} deleted at the source"
            );
        }
    } else {
        assert!(at_reader.is_empty());
    }
    if !filter.admits_table("tags") {
        assert!(tags(&reader.db).is_empty());
    } else {
        assert_eq!(tags(&reader.db), tags(&source.db));
    }
}

/// cr-sqlite's packed key of one INTEGER.
fn pk_of(id: i64) -> Vec<u8> {
    let bytes = id.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    let mut pk = vec![1, (((8 - skip) as u8) << 3) | 1];
    pk.extend_from_slice(&bytes[skip..]);
    pk
}

fn run(source: &mut Peer, readers: &mut [Peer; 2], steps: &[Step], serves: &ChangeFilter) {
    let accepts = AcceptPolicy::default();
    for step in steps {
        match step {
            Step::Edit(edit) => source.db.connection().execute_batch(&edit.sql()).unwrap(),
            Step::Pull(reader) => pull(&mut readers[*reader], source, serves, &accepts),
        }
    }
    for reader in readers.iter_mut() {
        pull(reader, source, serves, &accepts);
    }
}

proptest! {
    #![proptest_config(Config { cases: 48, ..Config::default() })]

    /// (a), (c) and (d): two readers with the same serve filter, pulling at random moments.
    #[test]
    fn filtered_readers_get_exactly_what_passes_and_converge(
        steps in steps(),
        choice in filter_choice(),
    ) {
        let serves = choice.filter();
        let mut source = peer();
        let mut readers = [peer(), peer()];
        run(&mut source, &mut readers, &steps, &serves);
        for reader in &readers {
            check_visible_rows(&source, reader, &serves);
        }
        // (c): pulled at different moments, the same in the end; with a row predicate, in the
        // rows that match now (one that stopped matching stays at a reader as it was, so a
        // reader that pulled while it matched keeps what another never saw).
        let matching = |reader: &Peer| -> Rows {
            let mut rows = posts(&reader.db);
            if let Some(predicate) = &serves.rows {
                rows.retain(|id, _| source.db.row_matches("posts", &pk_of(*id), predicate).unwrap());
            }
            rows
        };
        prop_assert_eq!(matching(&readers[0]), matching(&readers[1]));
        prop_assert_eq!(tags(&readers[0].db), tags(&readers[1].db));
    }

    /// (b): a reader accepting through a table and column filter from an unfiltered source
    /// ends where one that applied the source's filtered changes ends.
    #[test]
    fn accepting_through_a_filter_equals_applying_the_filtered_changes(
        steps in steps(),
        tables in prop_oneof![Just(None), Just(Some("posts")), Just(Some("tags"))],
        exclude in prop_oneof![Just(None), Just(Some("posts.secret"))],
    ) {
        let filter = FilterFlags {
                tables,
                exclude_columns: exclude,
                ..FilterFlags::default()
            }.applied_to(&ChangeFilter::default())
            .unwrap();
        let accepts = AcceptPolicy { filter: filter.clone(), ..AcceptPolicy::default() };
        let source = peer();
        let mut accepting = peer();
        for step in &steps {
            match step {
                Step::Edit(edit) => source.db.connection().execute_batch(&edit.sql()).unwrap(),
                Step::Pull(_) => pull(&mut accepting, &source, &ChangeFilter::default(), &accepts),
            }
        }
        pull(&mut accepting, &source, &ChangeFilter::default(), &accepts);
        let mut applying = peer();
        let mut changes = source.db.changes_since(DbVersion(0)).unwrap();
        changes.retain(|change| filter.admits(change));
        applying.db.apply_changes(&changes).unwrap();
        prop_assert_eq!(posts(&accepting.db), posts(&applying.db));
        prop_assert_eq!(tags(&accepting.db), tags(&applying.db));
    }
}

/// A post written by alice, handed to bob later: bob, who pulled before, gets it whole.
#[test]
fn a_row_that_starts_to_match_arrives_whole() {
    let serves = FilterChoice {
        tables: None,
        exclude_columns: None,
        rows: Some("owner = 'bob'"),
    }
    .filter();
    let source = peer();
    let mut bob = peer();
    let accepts = AcceptPolicy::default();
    source
        .db
        .connection()
        .execute_batch("insert into posts values (1, 'alice', 'hello', 's')")
        .unwrap();
    pull(&mut bob, &source, &serves, &accepts);
    assert!(posts(&bob.db).is_empty());
    source
        .db
        .connection()
        .execute_batch("update posts set owner = 'bob' where id = 1")
        .unwrap();
    pull(&mut bob, &source, &serves, &accepts);
    let whole = vec![Some("bob".into()), Some("hello".into()), Some("s".into())];
    assert_eq!(posts(&bob.db).get(&1), Some(&whole));
    // It stops matching: it stays at bob as it was.
    source
        .db
        .connection()
        .execute_batch("update posts set owner = 'carol', body = 'gone' where id = 1")
        .unwrap();
    pull(&mut bob, &source, &serves, &accepts);
    assert_eq!(posts(&bob.db).get(&1), Some(&whole));
}

/// What alice accepts from bob in the BBS: changes to posts whose owner is bob.
fn accepts_bobs_posts() -> AcceptPolicy {
    AcceptPolicy {
        filter: FilterChoice {
            tables: None,
            exclude_columns: None,
            rows: Some("owner = 'bob'"),
        }
        .filter(),
        ..AcceptPolicy::default()
    }
}

/// The shared BBS: a remote allowed `owner = 'bob'` changes bob's posts and nothing else.
#[test]
fn a_row_predicate_on_accept_lets_a_remote_change_only_its_own_rows() {
    let mut alice = peer();
    let mut bob = peer();
    let accepts_bobs = accepts_bobs_posts();
    let open = ChangeFilter::default();
    // Both start with alice's post and bob's post.
    alice
        .db
        .connection()
        .execute_batch(
            "insert into posts values (1, 'alice', 'mine', null);
             insert into posts values (2, 'bob', 'his', null);",
        )
        .unwrap();
    pull(&mut bob, &alice, &open, &AcceptPolicy::default());
    // Bob edits his post, edits alice's, takes alice's over, and writes one as alice.
    bob.db
        .connection()
        .execute_batch(
            "update posts set body = 'his, edited' where id = 2;
             update posts set body = 'defaced' where id = 1;
             insert into posts values (3, 'alice', 'forged', null);",
        )
        .unwrap();
    bob.db
        .connection()
        .execute_batch("update posts set owner = 'bob', body = 'taken' where id = 1")
        .unwrap();
    pull(&mut alice, &bob, &open, &accepts_bobs);
    let at_alice = posts(&alice.db);
    assert_eq!(at_alice[&1][1].as_deref(), Some("mine"));
    assert_eq!(at_alice[&1][0].as_deref(), Some("alice"));
    assert_eq!(at_alice[&2][1].as_deref(), Some("his, edited"));
    assert!(!at_alice.contains_key(&3));
}

#[test]
fn packed_keys_in_this_test_are_cr_sqlites() {
    let source = peer();
    source
        .db
        .connection()
        .execute_batch("insert into posts values (54321, 'x', null, null)")
        .unwrap();
    let pk: Vec<u8> = source
        .db
        .connection()
        .query_row("select pk from crsql_changes limit 1", [], |row| row.get(0))
        .unwrap();
    assert_eq!(pk, pk_of(54321));
}

/// `--into alice_`: alice's posts land in alice_posts, never in bob's own posts; the view
/// reads both; what bob serves leaves the mirror out, and its schema stays bob's own.
#[test]
fn a_remote_pulled_into_mirrors_stays_apart_and_is_not_served_onward() {
    use ddcp::db::MirrorPrefix;
    use ddcp::sync::Cursor;
    use ddcp::sync::codec::{decode_message, encode_message};
    use ddcp::sync::compress::Compression;
    use ddcp::sync::protocol::{ChangesRequest, Message};

    let alice = peer();
    let mut bob = peer();
    alice
        .db
        .connection()
        .execute_batch("insert into posts values (1, 'alice', 'hers', null)")
        .unwrap();
    bob.db
        .connection()
        .execute_batch("insert into posts values (1, 'bob', 'his', null)")
        .unwrap();
    let into: MirrorPrefix = "alice_".parse().unwrap();
    let accepts = AcceptPolicy {
        into: Some(into),
        ..AcceptPolicy::default()
    };
    let shared_before = bob.db.shared_schema().unwrap();
    bob.db
        .add_remote(
            &"alice".parse().unwrap(),
            &"VLD0:73iT7NuqplS2nab1AH4P7lJYiQROR_k4NyUhag_K4DY"
                .parse()
                .unwrap(),
            &accepts,
            false,
        )
        .unwrap();
    // The pull compares alice's tables with bob's own, as the daemon does.
    let mut responder = Responder::default();
    bob.db.align_cursor(alice.site, &accepts).unwrap();
    let mut puller = Puller::new(
        bob.site,
        alice.site,
        bob.db.own_schema().unwrap().fingerprint(),
        bob.db.cursor(alice.site).unwrap(),
        64 << 10,
    );
    while !puller.is_up_to_date() {
        for request in puller.requests() {
            let answer = responder.respond(&alice.db, &request);
            if let Received::Page(page) = puller.receive(&answer).unwrap() {
                bob.db.accept_page(alice.site, *page, &accepts).unwrap();
            }
        }
    }
    assert_eq!(posts(&bob.db)[&1][1].as_deref(), Some("his"));
    let mirrored: String = bob
        .db
        .connection()
        .query_row("select body from alice_posts where id = 1", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(mirrored, "hers");
    let mut statement = bob
        .db
        .connection()
        .prepare("select source, body from ddcp_all_posts order by source")
        .unwrap();
    let both: Vec<(String, String)> = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        both,
        [
            ("alice".into(), "hers".into()),
            ("local".into(), "his".into())
        ]
    );
    // What bob serves: his own schema, and none of the mirror's rows.
    assert_eq!(bob.db.shared_schema().unwrap(), shared_before);
    let request = encode_message(
        &Message::ChangesRequest(ChangesRequest {
            asker: SiteId([9; 16]),
            since: Cursor::START,
            max_bytes: 1 << 20,
            schema_fingerprint: shared_before.fingerprint(),
            listen: None,
        }),
        Compression::None,
    );
    let everything = bob.db.unserved_mirrors().unwrap();
    let answer =
        Responder::default().respond_within(&bob.db, &request, MAX_PAGE_BUDGET, &everything);
    let Ok(Message::ChangesPage(page)) = decode_message(&answer) else {
        panic!("not a page");
    };
    assert!(!page.changes.is_empty());
    assert!(page.changes.iter().all(|change| change.table == "posts"));
    assert!(page.changes.iter().all(|change| change.site_id == bob.site));
}

/// The README's own example, attacked (issue 29, item 1): with `--where "owner = 'bob'"`, bob
/// serves a new post with owner 'carol' at col_version 1000 and owner 'bob' at col_version 1 in
/// one page. A check that read the page in order saw 'bob'; cr-sqlite's merge keeps the higher
/// col_version, 'carol'. A page holding two changes of one cell is refused whole, nothing
/// applied, the cursor where it was.
#[test]
fn a_page_with_two_changes_of_one_cell_is_refused_whole() {
    let mut alice = peer();
    let bob = peer();
    let accepts_bobs = accepts_bobs_posts();
    bob.db
        .connection()
        .execute_batch("insert into posts values (9, 'bob', 'mine', null)")
        .unwrap();
    let mut changes = bob.db.changes_since(DbVersion(0)).unwrap();
    let owner = changes
        .iter()
        .position(|change| change.cid == "owner")
        .unwrap();
    // Written in someone else's name, placed first so that bob's own value comes last.
    let mut forged = changes[owner].clone();
    forged.val = ddcp::sync::Value::Text("carol".into());
    forged.col_version = 1000;
    changes.insert(owner, forged);
    let page = crafted_page(&mut alice, &bob, &accepts_bobs, changes);
    let before = page.since.clone();
    let refused = alice.db.accept_page(bob.site, page, &accepts_bobs);
    assert!(
        matches!(refused, Err(DbError::InvalidChange(_))),
        "{refused:?}"
    );
    assert!(
        posts(&alice.db).is_empty(),
        "a change of the page was applied"
    );
    assert_eq!(alice.db.cursor(bob.site).unwrap(), before);
}

/// A page of `changes` from `source` as a hostile source would serve it: one complete group up
/// to its current version, starting where `reader` stands under `policy`.
fn crafted_page(
    reader: &mut Peer,
    source: &Peer,
    policy: &AcceptPolicy,
    changes: Vec<ddcp::sync::Change>,
) -> ChangesPage {
    let version = source.db.db_version().unwrap();
    reader.db.align_cursor(source.site, policy).unwrap();
    ChangesPage {
        site_id: source.site,
        since: reader.db.cursor(source.site).unwrap(),
        after: ddcp::sync::Cursor::after_group(version),
        group_complete: true,
        more: false,
        db_version: version,
        incarnation: source.db.incarnation().unwrap(),
        changes,
        rows: Vec::new(),
    }
}

/// Issue 29, item 1: alice accepts bob's posts or public ones (`owner = 'bob' or body =
/// 'public'`). Bob hands his post to carol and adds a body of 'public' at a col_version lower
/// than alice's: that cell loses cr-sqlite's merge. Read from the page, the row would be
/// public; merged, it is carol's post with its old body, which alice's filter refuses. The row
/// is judged as merged: it stays bob's, and the refusal is counted.
#[test]
fn a_cell_that_loses_the_merge_does_not_pass_a_row() {
    let mut alice = peer();
    let bob = peer();
    let accepts = AcceptPolicy {
        filter: FilterChoice {
            tables: None,
            exclude_columns: None,
            rows: Some("owner = 'bob' or body = 'public'"),
        }
        .filter(),
        ..AcceptPolicy::default()
    };
    bob.db
        .connection()
        .execute_batch(
            "insert into posts values (2, 'bob', 'his', null);
             update posts set body = 'his, 2' where id = 2;
             update posts set body = 'his, 3' where id = 2;",
        )
        .unwrap();
    pull(&mut alice, &bob, &ChangeFilter::default(), &accepts);
    let mine = posts(&alice.db);
    assert_eq!(mine[&2][0].as_deref(), Some("bob"));
    let since = bob.db.db_version().unwrap();
    bob.db
        .connection()
        .execute_batch("update posts set owner = 'carol' where id = 2")
        .unwrap();
    let mut changes = bob.db.changes_since(since).unwrap();
    let mut public = bob
        .db
        .changes_since(DbVersion(0))
        .unwrap()
        .into_iter()
        .find(|change| change.cid == "body")
        .unwrap();
    assert_eq!(public.col_version, 3);
    public.col_version = 1;
    public.val = ddcp::sync::Value::Text("public".into());
    public.db_version = bob.db.db_version().unwrap();
    changes.push(public);
    let page = crafted_page(&mut alice, &bob, &accepts, changes);
    let outcome = alice.db.accept_page(bob.site, page, &accepts).unwrap();
    assert_eq!(posts(&alice.db), mine, "the row changed hands");
    assert_eq!(outcome.refused, 2);
    assert_eq!(outcome.admitted, 0);
    // Past the page: it is not fetched again.
    assert_eq!(
        alice.db.cursor(bob.site).unwrap(),
        ddcp::sync::Cursor::after_group(bob.db.db_version().unwrap())
    );
}

/// Issue 29, item 3: bob, allowed `owner = 'bob'`, sends the tombstone of a post alice has not
/// seen (carol's next id: bob made and deleted it twice, a causal length of 4). Taken, it would
/// hide carol's post under that id from alice for ever, and alice would serve the tombstone
/// onward. A deletion of a row never seen here cannot be judged: it is refused.
#[test]
fn a_deletion_of_a_row_never_seen_here_is_refused() {
    let mut alice = peer();
    let bob = peer();
    let carol = peer();
    let accepts_bobs = accepts_bobs_posts();
    bob.db
        .connection()
        .execute_batch(
            "insert into posts values (7, 'bob', 'x', null); delete from posts where id = 7;
             insert into posts values (7, 'bob', 'x', null); delete from posts where id = 7;
             insert into posts values (8, 'bob', 'his', null);",
        )
        .unwrap();
    pull(&mut alice, &bob, &ChangeFilter::default(), &accepts_bobs);
    assert!(posts(&alice.db).contains_key(&8), "bob's own post arrives");
    carol
        .db
        .connection()
        .execute_batch("insert into posts values (7, 'carol', 'hers', null)")
        .unwrap();
    pull(
        &mut alice,
        &carol,
        &ChangeFilter::default(),
        &AcceptPolicy::default(),
    );
    assert_eq!(posts(&alice.db)[&7][0].as_deref(), Some("carol"));
}

/// A deletion of a row the remote may change, one alice has, passes: bob deletes his post.
#[test]
fn a_remote_deletes_its_own_rows() {
    let mut alice = peer();
    let bob = peer();
    let accepts_bobs = accepts_bobs_posts();
    bob.db
        .connection()
        .execute_batch("insert into posts values (8, 'bob', 'his', null)")
        .unwrap();
    pull(&mut alice, &bob, &ChangeFilter::default(), &accepts_bobs);
    assert!(posts(&alice.db).contains_key(&8));
    bob.db
        .connection()
        .execute_batch("delete from posts where id = 8")
        .unwrap();
    pull(&mut alice, &bob, &ChangeFilter::default(), &accepts_bobs);
    assert!(posts(&alice.db).is_empty());
}

/// A transaction cut into pages is judged whole when its last part arrives: bob's forty posts
/// of one transaction arrive, carol's post among them does not, and nothing stays staged.
#[test]
fn a_transaction_cut_into_pages_is_judged_whole() {
    let mut alice = peer();
    let bob = peer();
    let accepts_bobs = accepts_bobs_posts();
    let mut script = String::from("begin;");
    for id in 0..40 {
        let owner = if id == 20 { "carol" } else { "bob" };
        script.push_str(&format!(
            "insert into posts values ({id}, '{owner}', '{}', null);",
            "x".repeat(100)
        ));
    }
    script.push_str("commit;");
    bob.db.connection().execute_batch(&script).unwrap();
    pull_within(
        &mut alice,
        &bob,
        &ChangeFilter::default(),
        &accepts_bobs,
        1_000,
    );
    let at_alice = posts(&alice.db);
    assert_eq!(at_alice.len(), 39);
    assert!(!at_alice.contains_key(&20));
    let staged: i64 = alice
        .db
        .connection()
        .query_row(
            "select (select count(*) from ddcp_staged) + (select count(*) from ddcp_staged_parts)",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(staged, 0);
}

/// A refused row leaves no trace, its db_version included: cr-sqlite moves the version it
/// gives the next local write past every version it merged in the transaction, even one a
/// savepoint rolled back. Bob's refused change claims version 1,000,000; alice's next write
/// is not pushed past it.
#[test]
fn a_refused_row_leaves_its_version_behind() {
    let mut alice = peer();
    let bob = peer();
    let accepts_bobs = accepts_bobs_posts();
    bob.db
        .connection()
        .execute_batch("insert into posts values (3, 'carol', 'as carol', null)")
        .unwrap();
    let mut changes = bob.db.changes_since(DbVersion(0)).unwrap();
    for change in &mut changes {
        change.db_version = DbVersion(1_000_000);
    }
    let page = crafted_page(&mut alice, &bob, &accepts_bobs, changes);
    let outcome = alice.db.accept_page(bob.site, page, &accepts_bobs).unwrap();
    assert_eq!(outcome.admitted, 0);
    assert!(posts(&alice.db).is_empty());
    alice
        .db
        .connection()
        .execute_batch("insert into posts values (1, 'alice', 'mine', null)")
        .unwrap();
    assert!(alice.db.db_version().unwrap() < DbVersion(1_000));
}

/// Issue 29, item 2: bob serves a post whose changes claim db_version 2^53. cr-sqlite would
/// give the merged changes that version and alice's next write 2^53 + 1, which peers refuse:
/// everything alice wrote after would stop replicating, and the poison would spread to whoever
/// merged from her. Merged as version 1, it moves alice's counter by one, like a local write.
#[test]
fn a_change_at_the_end_of_db_versions_does_not_move_the_local_version() {
    let mut alice = peer();
    let bob = peer();
    let mut carol = peer();
    let open = AcceptPolicy::default();
    bob.db
        .connection()
        .execute_batch("insert into posts values (1, 'bob', 'late', null)")
        .unwrap();
    let mut changes = bob.db.changes_since(DbVersion(0)).unwrap();
    for change in &mut changes {
        change.db_version = DbVersion(ddcp::sync::validate::MAX_COUNTER);
    }
    let page = crafted_page(&mut alice, &bob, &open, changes);
    alice.db.accept_page(bob.site, page, &open).unwrap();
    assert_eq!(alice.db.db_version().unwrap(), DbVersion(1));
    alice
        .db
        .connection()
        .execute_batch("insert into posts values (2, 'alice', 'after', null)")
        .unwrap();
    assert_eq!(alice.db.db_version().unwrap(), DbVersion(2));
    pull(&mut carol, &alice, &ChangeFilter::default(), &open);
    assert_eq!(posts(&carol.db), posts(&alice.db));
    assert_eq!(posts(&carol.db).len(), 2);
}

/// A cell pushed to the end of its col_version range (here: by a page that carried exactly 2^53,
/// which one change may) is edited at alice: the edit's col_version is past 2^53. Dave, who
/// holds the cell at 2^53 too, takes the edit (a step from his own counter). Carol, who never
/// saw the cell, leaves it behind, counted as refused, and takes everything else: one pushed
/// cell stops no remote, and a jump past 2^53 is refused.
#[test]
fn a_cell_pushed_to_the_end_replicates_between_its_holders_and_stops_no_pull() {
    let mut alice = peer();
    let bob = peer();
    let mut carol = peer();
    let mut dave = peer();
    let open = AcceptPolicy::default();
    bob.db
        .connection()
        .execute_batch("insert into posts values (1, 'bob', 'old', null)")
        .unwrap();
    let mut changes = bob.db.changes_since(DbVersion(0)).unwrap();
    for change in changes.iter_mut().filter(|change| change.cid == "body") {
        change.col_version = ddcp::sync::validate::MAX_COUNTER;
    }
    for holder in [&mut alice, &mut dave] {
        let page = crafted_page(holder, &bob, &open, changes.clone());
        holder.db.accept_page(bob.site, page, &open).unwrap();
    }
    alice
        .db
        .connection()
        .execute_batch(
            "update posts set body = 'edited' where id = 1;
             insert into posts values (2, 'alice', 'mine', null);",
        )
        .unwrap();
    pull(&mut dave, &alice, &ChangeFilter::default(), &open);
    assert_eq!(posts(&dave.db), posts(&alice.db));
    pull(&mut carol, &alice, &ChangeFilter::default(), &open);
    let at_carol = posts(&carol.db);
    assert_eq!(at_carol[&2][1].as_deref(), Some("mine"));
    // The post arrives without the cell that jumps.
    assert_eq!(at_carol[&1][0].as_deref(), Some("bob"));
    assert_eq!(at_carol[&1][1], None);
    // A bundle carrying the jump is refused whole, with one line.
    let jump = alice
        .db
        .changes_since(DbVersion(0))
        .unwrap()
        .into_iter()
        .filter(|change| change.cid == "body")
        .collect::<Vec<_>>();
    let refused = carol.db.apply_changes(&jump).unwrap_err();
    assert!(refused.to_string().contains("past 2^53"), "{refused}");
}

/// The way out for a cell pushed to the end of its range before these checks
/// (docs/threat-model.md): write its row anew, deleted and inserted in one transaction. The
/// higher causal length wins at every peer whatever the col_version, and the row's edits travel
/// again.
#[test]
fn a_row_written_anew_replicates_again_after_its_cell_was_pushed_to_the_end() {
    let mut alice = peer();
    let bob = peer();
    let mut carol = peer();
    let open = AcceptPolicy::default();
    bob.db
        .connection()
        .execute_batch("insert into posts values (1, 'bob', 'old', null)")
        .unwrap();
    let mut changes = bob.db.changes_since(DbVersion(0)).unwrap();
    for change in changes.iter_mut().filter(|change| change.cid == "body") {
        change.col_version = ddcp::sync::validate::MAX_COUNTER;
    }
    // Both alice and carol took the pushed cell.
    let page = crafted_page(&mut alice, &bob, &open, changes.clone());
    alice.db.accept_page(bob.site, page, &open).unwrap();
    let page = crafted_page(&mut carol, &bob, &open, changes);
    carol.db.accept_page(bob.site, page, &open).unwrap();
    alice
        .db
        .connection()
        .execute_batch(
            "begin;
             delete from posts where id = 1;
             insert into posts values (1, 'bob', 'written anew', null);
             commit;",
        )
        .unwrap();
    pull(&mut carol, &alice, &ChangeFilter::default(), &open);
    assert_eq!(posts(&carol.db), posts(&alice.db));
    alice
        .db
        .connection()
        .execute_batch("update posts set body = 'and edited' where id = 1")
        .unwrap();
    pull(&mut carol, &alice, &ChangeFilter::default(), &open);
    assert_eq!(posts(&carol.db)[&1][1].as_deref(), Some("and edited"));
}

/// Issue 29, item 6: bob pulls alice `--into alice_` and carol with an open policy. Carol
/// sends a change to bob's table alice_posts (a CRR at bob like any other): taken, `ddcp_all_posts`
/// would show carol's row as alice's. A remote not pulled `--into` writes into no mirror.
#[test]
fn a_remote_cannot_write_into_another_remotes_mirrors() {
    use ddcp::db::MirrorPrefix;
    let mut bob = peer();
    let carol = peer();
    let into: MirrorPrefix = "alice_".parse().unwrap();
    let from_alice = AcceptPolicy {
        into: Some(into),
        ..AcceptPolicy::default()
    };
    bob.db
        .add_remote(
            &"alice".parse().unwrap(),
            &"VLD0:73iT7NuqplS2nab1AH4P7lJYiQROR_k4NyUhag_K4DY"
                .parse()
                .unwrap(),
            &from_alice,
            false,
        )
        .unwrap();
    carol
        .db
        .connection()
        .execute_batch("insert into posts values (5, 'alice', 'not by alice', null)")
        .unwrap();
    let mut changes = carol.db.changes_since(DbVersion(0)).unwrap();
    for change in &mut changes {
        change.table = "alice_posts".into();
    }
    let open = AcceptPolicy::default();
    let page = crafted_page(&mut bob, &carol, &open, changes);
    let outcome = bob.db.accept_page(carol.site, page, &open).unwrap();
    assert_eq!(outcome.admitted, 0);
    let mirrored: i64 = bob
        .db
        .connection()
        .query_row("select count(*) from alice_posts", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mirrored, 0);
}

/// Stated in docs/threat-model.md, not closed: a deletion has no columns left to judge, so a
/// reader filtered to `owner = 'bob'` receives the tombstone, and so the key, of alice's
/// deleted post; nothing else of it. And the schema a filtered reader is answered holds every
/// table, those it may not read too. When either is closed, this test says so.
#[test]
fn a_filtered_reader_learns_deleted_keys_and_every_tables_schema() {
    let source = peer();
    let reader = peer();
    let serves = FilterChoice {
        tables: Some("posts"),
        exclude_columns: None,
        rows: Some("owner = 'bob'"),
    }
    .filter();
    source
        .db
        .connection()
        .execute_batch(
            "insert into posts values (41, 'alice', 'hers', 'x'); delete from posts where id = 41;",
        )
        .unwrap();
    let mut responder = Responder::default();
    let mut puller = Puller::new(
        reader.site,
        source.site,
        reader.db.schema().unwrap().fingerprint(),
        ddcp::sync::Cursor::START,
        64 << 10,
    );
    let mut served = Vec::new();
    while !puller.is_up_to_date() {
        for request in puller.requests() {
            let answer = responder.respond_within(&source.db, &request, MAX_PAGE_BUDGET, &serves);
            if let Received::Page(page) = puller.receive(&answer).unwrap() {
                served.extend(page.changes);
            }
        }
    }
    assert_eq!(served.len(), 1, "{served:?}");
    assert_eq!(
        (served[0].cid.as_str(), served[0].pk.as_slice()),
        (SENTINEL_CID, pk_of(41).as_slice())
    );
    let answer = responder.respond_within(
        &source.db,
        &ddcp::sync::schema_fetch::schema_request(),
        MAX_PAGE_BUDGET,
        &serves,
    );
    let Ok(ddcp::sync::protocol::Message::Schema(schema)) =
        ddcp::sync::codec::decode_message(&answer)
    else {
        panic!("no schema answered");
    };
    assert!(schema.shape.tables.iter().any(|table| table.name == "tags"));
}

/// A filtered reader inside a transaction cut into pages: each page after the first starts
/// inside the group, and the rows a change carries were read through the group's own version,
/// its own cell among them, which the reader refused as two changes of one cell (review of
/// issue 29). The reader gets bob's posts of one big transaction whole.
#[test]
fn a_filtered_reader_takes_a_transaction_cut_into_pages() {
    let source = peer();
    let mut reader = peer();
    let serves = FilterChoice {
        tables: None,
        exclude_columns: None,
        rows: Some("owner = 'bob'"),
    }
    .filter();
    source
        .db
        .connection()
        .execute_batch("insert into posts values (100, 'bob', 'before', null)")
        .unwrap();
    pull(&mut reader, &source, &serves, &AcceptPolicy::default());
    let mut script = String::from("begin;");
    for id in 0..40 {
        let owner = if id % 3 == 0 { "alice" } else { "bob" };
        script.push_str(&format!(
            "insert into posts values ({id}, '{owner}', '{}', 's');",
            "x".repeat(100)
        ));
    }
    script.push_str("commit;");
    source.db.connection().execute_batch(&script).unwrap();
    pull_within(
        &mut reader,
        &source,
        &serves,
        &AcceptPolicy::default(),
        1_000,
    );
    check_visible_rows(&source, &reader, &serves);
}

/// Bob brings his deleted post back and deletes it again between two of alice's pulls: alice,
/// who deleted it with him, takes the second deletion (one life later), so carol's copy of the
/// post's return, taken meanwhile, does not bring back at alice a post bob deleted (review of
/// issue 29: refused, the two diverged).
#[test]
fn a_row_deleted_here_takes_its_next_deletion() {
    let mut alice = peer();
    let bob = peer();
    let mut carol = peer();
    let accepts_bobs = accepts_bobs_posts();
    let open = AcceptPolicy::default();
    bob.db
        .connection()
        .execute_batch("insert into posts values (8, 'bob', 'his', null)")
        .unwrap();
    pull(&mut alice, &bob, &ChangeFilter::default(), &accepts_bobs);
    bob.db
        .connection()
        .execute_batch("delete from posts where id = 8")
        .unwrap();
    pull(&mut alice, &bob, &ChangeFilter::default(), &accepts_bobs);
    assert!(posts(&alice.db).is_empty());
    bob.db
        .connection()
        .execute_batch("insert into posts values (8, 'bob', 'back', null)")
        .unwrap();
    pull(&mut carol, &bob, &ChangeFilter::default(), &open);
    bob.db
        .connection()
        .execute_batch("delete from posts where id = 8")
        .unwrap();
    pull(&mut alice, &bob, &ChangeFilter::default(), &accepts_bobs);
    pull(&mut alice, &carol, &ChangeFilter::default(), &open);
    assert!(posts(&alice.db).is_empty(), "{:?}", posts(&alice.db));
}
