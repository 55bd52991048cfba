//! Peers on different versions of an app (issue 23): a newer peer's changes to a table or
//! column this database lacks are held, everything else replicates, and the held changes are
//! applied once this database has the table or column, without pulling them again.

mod common;

use common::peers::{peer, pull, pull_with, try_pull_with};
use common::releases::{Step, pull_between, step, table_rows, write_sql};
use ddcp::db::{AcceptPolicy, Db, DbError, Extension, MAX_HELD};

/// The app's next version: a column of notes, and a table.
const ADD_TAG: &str = "select crsql_begin_alter('notes');
    alter table notes add column tag text;
    select crsql_commit_alter('notes');";
const ADD_LINKS: &str = "create table links (id integer primary key not null, url text);
    select crsql_as_crr('links');";

fn held(db: &Db) -> Vec<(String, Option<String>, u64)> {
    db.held()
        .unwrap()
        .into_iter()
        .map(|group| (group.table, group.column, group.changes))
        .collect()
}

/// The issue's own example: alice's app adds notes.tag and writes a note and an edit of an old
/// note's body. Bob, still on the old version, takes the edit and the new note now, holds the
/// tag, and has it the moment his app adds the column, without pulling again.
#[test]
fn a_newer_peers_changes_replicate_and_its_new_column_waits_for_the_migration() {
    let alice = peer();
    let mut bob = peer();
    alice.sql("insert into notes values (1, 'first')");
    pull(&mut bob, &alice);
    alice.sql(ADD_TAG);
    alice.sql(
        "insert into notes values (2, 'second', 'work');
         update notes set body = 'first, edited' where id = 1;",
    );
    pull(&mut bob, &alice);
    assert_eq!(bob.notes(), ["1:first, edited", "2:second"]);
    assert_eq!(held(&bob.db), [("notes".into(), Some("tag".into()), 1)]);
    let version = bob.db.db_version().unwrap();
    // Nothing is fetched twice: a pull now brings nothing.
    assert_eq!(pull(&mut bob, &alice), 0);
    bob.sql(ADD_TAG);
    let applied = bob.db.apply_held().unwrap();
    assert_eq!((applied.taken, applied.still_held), (1, 0));
    assert!(bob.db.db_version().unwrap() > version);
    assert_eq!(
        bob.rows("select id || ':' || coalesce(tag, '-') from notes order by id"),
        ["1:-", "2:work"]
    );
    assert!(held(&bob.db).is_empty());
    // Both on the new version: as before.
    alice.sql("update notes set tag = 'home' where id = 1");
    pull(&mut bob, &alice);
    assert_eq!(
        bob.rows("select id || ':' || coalesce(tag, '-') from notes order by id"),
        ["1:home", "2:work"]
    );
}

/// A new table: its rows wait whole (their create too) until the table is made here.
#[test]
fn a_new_tables_rows_wait_for_the_table() {
    let alice = peer();
    let mut bob = peer();
    alice.sql(ADD_LINKS);
    alice.sql(
        "insert into links values (1, 'https://a/1'); insert into links values (2, 'https://a/2');
         insert into notes values (5, 'beside');",
    );
    pull(&mut bob, &alice);
    assert_eq!(bob.notes(), ["5:beside"]);
    assert_eq!(held(&bob.db), [("links".into(), None, 2)]);
    // Still lacking the table: nothing applies, nothing is lost.
    assert_eq!(bob.db.apply_held().unwrap().still_held, 2);
    bob.sql(ADD_LINKS);
    bob.db.apply_held().unwrap();
    assert_eq!(
        bob.rows("select url from links order by id"),
        ["https://a/1", "https://a/2"]
    );
}

/// An older peer serving a newer one is fine as before, and a real conflict names its column.
#[test]
fn an_older_peer_fits_and_a_conflict_is_named() {
    let mut alice = peer();
    let bob = peer();
    alice.sql(ADD_TAG);
    bob.sql("insert into notes values (3, 'old')");
    pull(&mut alice, &bob);
    assert_eq!(alice.notes(), ["3:old"]);
    let carol = {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::create(&dir.path().join("peer.db"), &Extension::BuiltIn).unwrap();
        db.connection()
            .execute_batch(
                "create table notes (id integer primary key not null, body blob);
                 select crsql_as_crr('notes');",
            )
            .unwrap();
        (dir, db)
    };
    let conflict = alice
        .db
        .schema_fit(&carol.1.shared_schema().unwrap(), None)
        .unwrap_err();
    assert_eq!(
        conflict.to_string(),
        "the schemas cannot exchange changes: column notes.body is TEXT here but BLOB there: its values would be read differently"
    );
}

/// A relay on the old version (alice new, bob old, carol new; carol pulls only from bob): bob
/// holds alice's new-column value and serves onward everything else; carol gets the value once
/// bob adds the column (then it is bob's change like any other), without anyone pulling again.
#[test]
fn a_relay_on_the_old_version_passes_the_new_column_on_once_it_has_it() {
    let alice = peer();
    let mut bob = peer();
    let mut carol = peer();
    alice.sql(ADD_TAG);
    carol.sql(ADD_TAG);
    alice.sql("insert into notes values (1, 'from alice', 'red')");
    pull(&mut bob, &alice);
    pull(&mut carol, &bob);
    assert_eq!(carol.notes(), ["1:from alice"]);
    assert_eq!(carol.rows("select coalesce(tag, '-') from notes"), ["-"]);
    bob.sql(ADD_TAG);
    bob.db.apply_held().unwrap();
    pull(&mut carol, &bob);
    assert_eq!(carol.rows("select coalesce(tag, '-') from notes"), ["red"]);
}

/// The app's releases, in order: each peer applies a prefix of them.
const MIGRATIONS: [&str; 4] = [
    ADD_TAG,
    ADD_LINKS,
    "select crsql_begin_alter('notes');
     alter table notes add column pri integer;
     select crsql_commit_alter('notes');",
    "select crsql_begin_alter('links');
     alter table links add column title text;
     select crsql_commit_alter('links');",
];

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config { cases: 24, ..Default::default() })]

    /// Issue 23, item 4: three peers, additive releases applied at random moments between
    /// random writes (to old and new columns) and pulls in random order. Once every peer has
    /// every release, and each pulled from each once more, they hold the same rows: nothing
    /// written on any version was lost, and what waited was never pulled twice.
    #[test]
    fn peers_on_random_releases_converge_once_all_have_them(
        steps in proptest::collection::vec(step(), 1..40),
    ) {
        let mut peers = [peer(), peer(), peer()];
        let mut at = [0usize; 3];
        for step in &steps {
            match *step {
                Step::Migrate(peer) => {
                    if at[peer] < MIGRATIONS.len() {
                        peers[peer].sql(MIGRATIONS[at[peer]]);
                        at[peer] += 1;
                        peers[peer].db.apply_held().unwrap();
                    }
                }
                Step::Write { peer, id, column, value } => {
                    peers[peer].sql(&write_sql(at[peer], id, column, value));
                }
                Step::Pull { reader, source } => {
                    pull_between(&mut peers, reader, source);
                }
            }
        }
        for peer in 0..3 {
            while at[peer] < MIGRATIONS.len() {
                peers[peer].sql(MIGRATIONS[at[peer]]);
                at[peer] += 1;
            }
            peers[peer].db.apply_held().unwrap();
        }
        // Two rounds: what one peer takes in the first, the others take from it in the second.
        for _ in 0..2 {
            for (reader, source) in [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)] {
                pull_between(&mut peers, reader, source);
            }
        }
        for peer in &peers {
            proptest::prop_assert!(peer.db.held().unwrap().is_empty());
        }
        let first = table_rows(&peers[0]);
        proptest::prop_assert_eq!(&table_rows(&peers[1]), &first);
        proptest::prop_assert_eq!(&table_rows(&peers[2]), &first);
    }
}

/// A change for a table this database lacks is checked as far as it can be when it is held:
/// one that could never be merged (an empty key) refuses its page, nothing held, the cursor
/// where it was; it would otherwise stop every held change after it once the table is made
/// (review of issue 23).
#[test]
fn a_held_change_that_could_never_merge_refuses_its_page() {
    let alice = peer();
    let mut bob = peer();
    alice.sql(ADD_LINKS);
    alice.sql("insert into links values (1, 'https://a/1')");
    let theirs = alice.db.shared_schema().unwrap();
    let fit = bob.db.schema_fit(&theirs, None).unwrap();
    let policy = AcceptPolicy::default();
    bob.db.align_cursor(alice.site, &policy).unwrap();
    let mut changes = alice.db.changes_since(ddcp::sync::DbVersion(0)).unwrap();
    for change in &mut changes {
        change.pk = Vec::new();
    }
    let version = alice.db.db_version().unwrap();
    let page = ddcp::sync::protocol::ChangesPage {
        site_id: alice.site,
        since: ddcp::sync::Cursor::START,
        after: ddcp::sync::Cursor::after_group(version),
        group_complete: true,
        more: false,
        db_version: version,
        incarnation: alice.db.incarnation().unwrap(),
        changes,
        rows: Vec::new(),
    };
    let refused = bob.db.accept_page_fitting(alice.site, page, &policy, &fit);
    assert!(refused.is_err(), "{refused:?}");
    assert!(held(&bob.db).is_empty());
    assert_eq!(
        bob.db.cursor(alice.site).unwrap(),
        ddcp::sync::Cursor::START
    );
    // Pulled as it is, it is held.
    pull(&mut bob, &alice);
    assert_eq!(held(&bob.db), [("links".into(), None, 1)]);
}

/// A remote pulled `--into` mirrors on a newer version: its new column waits until this
/// database's migration adds the column, which `ddcp migrate` gives the mirror too.
#[test]
fn a_mirrored_remotes_new_column_lands_once_the_migration_adds_it() {
    let alice = peer();
    let mut bob = peer();
    let policy = AcceptPolicy {
        into: Some("alice_".parse().unwrap()),
        ..AcceptPolicy::default()
    };
    alice.sql(ADD_TAG);
    alice.sql("insert into notes values (1, 'hers', 'red')");
    pull_with(&mut bob, &alice, &policy);
    assert_eq!(bob.rows("select body from alice_notes"), ["hers"]);
    assert_eq!(held(&bob.db), [("notes".into(), Some("tag".into()), 1)]);
    let steps = bob
        .db
        .migrate("alter table notes add column tag text", false)
        .unwrap();
    assert_eq!(steps.applied.len(), 1);
    assert_eq!(bob.rows("select tag from alice_notes"), ["red"]);
    assert!(held(&bob.db).is_empty());
    // The view over both has the column too.
    assert_eq!(
        bob.rows("select coalesce(tag, '-') from ddcp_all_notes where source != 'local'"),
        ["red"]
    );
}

/// A remote pulled `--into` sends rows of a table this database makes later: held, then merged
/// into the mirror made for it at that moment (before, the mirror did not exist yet when the
/// held rows were checked, and they were dropped).
#[test]
fn a_mirrored_remotes_new_table_lands_in_a_mirror_made_for_it() {
    let alice = peer();
    let mut bob = peer();
    let policy = AcceptPolicy {
        into: Some("alice_".parse().unwrap()),
        ..AcceptPolicy::default()
    };
    alice.sql(ADD_LINKS);
    alice.sql("insert into links values (1, 'https://a/1')");
    pull_with(&mut bob, &alice, &policy);
    assert_eq!(held(&bob.db), [("links".into(), None, 1)]);
    bob.db
        .migrate(
            "create table links (id integer primary key not null, url text)",
            false,
        )
        .unwrap();
    assert_eq!(bob.rows("select url from alice_links"), ["https://a/1"]);
    assert!(bob.rows("select url from links").is_empty());
    assert!(held(&bob.db).is_empty());
}

/// A held-changes table at its bound (issue 23, item 4's bad input): the page that would add
/// to it is refused whole, in one line that says what to do, and nothing is lost: the cursor
/// stays, so once there is room the same pull brings it all.
#[test]
fn a_full_held_table_refuses_the_page_and_loses_nothing() {
    let alice = peer();
    let mut bob = peer();
    alice.sql(ADD_TAG);
    alice.sql("insert into notes values (1, 'first', 'red')");
    // Bob holds a million of alice's changes already, for a table he lacks (a long-lagging
    // peer would): the bound is per remote.
    let via: String = alice.site.0.iter().map(|b| format!("{b:02x}")).collect();
    bob.sql(&format!(
        "with recursive n(i) as (select 1 union all select i + 1 from n where i < {MAX_HELD})
         insert into ddcp_held (via, tbl, pk, cid, val, col_version, db_version, author, cl, seq)
         select x'{via}', 'later', cast(i as blob), 'c', null, 1, 1, x'00', 1, 0 from n"
    ));
    let err = try_pull_with(&mut bob, &alice, &AcceptPolicy::default()).unwrap_err();
    assert!(matches!(err, DbError::HeldFull(_)), "{err}");
    let said = err.to_string();
    assert!(
        said.contains("1000000 changes are held") && said.contains("`ddcp status` says which"),
        "{said}"
    );
    assert!(bob.notes().is_empty(), "a part of the page was applied");
    assert_eq!(held(&bob.db), [("later".to_string(), None, MAX_HELD)]);
    // Room again: the same pull brings the note, and holds its tag.
    bob.sql("delete from ddcp_held where tbl = 'later'");
    pull(&mut bob, &alice);
    assert_eq!(bob.notes(), ["1:first"]);
    assert_eq!(
        held(&bob.db),
        [("notes".to_string(), Some("tag".to_string()), 1)]
    );
}
