//! Migrations travel (issue 23, item 2): `ddcp migrate` records each migration in the schema
//! history a database publishes; a remote this database follows has its new migrations
//! applied here, in order, before the changes that need them; one it does not follow is said
//! to be ahead until `ddcp migrate --from` applies them. A history that rewrites what was
//! followed, or a migration that is not additive, is refused in one line and nothing of it is
//! applied.

mod common;

use common::peers::{Peer, add_remote, peer, pull, remote_name};
use common::releases::{Step, pair, pull_between, step, table_rows, write_sql};
use ddcp::db::{AcceptPolicy, DbError, Followed, MigrationStep};
use ddcp::sync::schema_history::SchemaHistory;

/// The app's second version, as a migration file.
const V2: &str = "-- v2: tags and links
    alter table notes add column tag text;
    create table links (id integer primary key not null, url text);
    create index links_by_url on links (url);";

/// Its third.
const V3: &str = "alter table links add column title text;";

fn follow(reader: &mut Peer, source: &Peer) {
    add_remote(reader, source, &AcceptPolicy::default());
    reader
        .db
        .set_schema_follow(&remote_name(source), true)
        .unwrap();
}

fn has_column(peer: &Peer, table: &str, column: &str) -> bool {
    !peer
        .rows(&format!(
            "select name from pragma_table_info('{table}') where name = '{column}'"
        ))
        .is_empty()
}

fn has_index(peer: &Peer, index: &str) -> bool {
    !peer
        .rows(&format!(
            "select name from sqlite_master where type = 'index' and name = '{index}'"
        ))
        .is_empty()
}

#[test]
fn a_migration_is_recorded_once_and_what_is_here_already_is_left_alone() {
    let mut alice = peer();
    let before = alice.db.history_mark().unwrap();
    let migrated = alice.migrate(V2);
    assert_eq!(migrated.applied.len(), 3);
    let history = alice.db.schema_history().unwrap();
    assert_eq!(history.len(), 1);
    // The text without its comments, a statement a line.
    assert!(!history.migrations()[0].contains("-- v2"));
    assert_ne!(alice.db.history_mark().unwrap(), before);
    // The same migration again: nothing to do, nothing recorded twice.
    let again = alice.migrate(V2);
    assert!(again.applied.is_empty());
    assert_eq!(again.present.len(), 3);
    assert_eq!(alice.db.schema_history().unwrap(), history);
    // A column made by hand, then its migration: recorded (so that it travels), not run.
    alice.sql(
        "select crsql_begin_alter('notes');
         alter table notes add column pri integer;
         select crsql_commit_alter('notes');",
    );
    let recorded = alice.migrate("alter table notes add column pri integer");
    assert_eq!(
        recorded.present,
        [MigrationStep::AddColumn {
            table: "notes".into(),
            column: "pri".into()
        }]
    );
    assert_eq!(alice.db.schema_history().unwrap().len(), 2);
}

#[test]
fn a_follower_applies_the_migrations_in_order_before_the_changes_that_need_them() {
    let mut alice = peer();
    let mut bob = peer();
    alice.migrate(V2);
    alice.sql(
        "insert into notes values (1, 'first', 'red');
         insert into links values (1, 'https://example.org');",
    );
    alice.migrate(V3);
    alice.sql("update links set title = 'Example' where id = 1");
    follow(&mut bob, &alice);
    pull(&mut bob, &alice);
    assert!(has_column(&bob, "notes", "tag"));
    assert!(has_column(&bob, "links", "title"));
    assert!(has_index(&bob, "links_by_url"));
    // Every value arrived as it came: nothing waited.
    assert!(bob.db.held().unwrap().is_empty());
    assert_eq!(bob.rows("select tag from notes"), ["red"]);
    assert_eq!(
        bob.rows("select url || ' ' || title from links"),
        ["https://example.org Example"]
    );
    // Bob's history is alice's, in her order: his own followers get it from him.
    assert_eq!(
        bob.db.schema_history().unwrap(),
        alice.db.schema_history().unwrap()
    );
    let schemas = bob.db.remote_schemas().unwrap();
    assert_eq!(schemas.len(), 1);
    assert!(schemas[0].follow && schemas[0].ahead == 0 && schemas[0].refused.is_none());
}

#[test]
fn a_remote_not_followed_is_ahead_until_migrate_from_applies_its_migrations() {
    let mut alice = peer();
    let mut bob = peer();
    alice.migrate(V2);
    alice.sql("insert into notes values (1, 'first', 'red')");
    pull(&mut bob, &alice);
    // The common part replicated; the new column's value waits.
    assert_eq!(bob.notes(), ["1:first"]);
    assert!(!has_column(&bob, "notes", "tag"));
    assert_eq!(bob.db.held().unwrap().len(), 1);
    let schemas = bob.db.remote_schemas().unwrap();
    assert_eq!((schemas[0].follow, schemas[0].ahead), (false, 1));
    let name = remote_name(&alice);
    // A dry run says what it would do and does nothing.
    let would = bob.db.migrate_from(&name, true).unwrap();
    assert_eq!(would.len(), 1);
    assert_eq!(would[0].number, 1);
    assert_eq!(would[0].steps.len(), 3);
    assert!(!has_column(&bob, "notes", "tag"));
    let done = bob.db.migrate_from(&name, false).unwrap();
    assert_eq!(done.len(), 1);
    assert!(has_index(&bob, "links_by_url"));
    // The held value merged, without a pull.
    assert!(bob.db.held().unwrap().is_empty());
    assert_eq!(bob.rows("select tag from notes"), ["red"]);
    assert_eq!(bob.db.remote_schemas().unwrap()[0].ahead, 0);
    assert!(bob.db.migrate_from(&name, false).unwrap().is_empty());
}

/// Item 2's relay: A new, B in the middle, C old; each knows only the next. B follows A and C
/// follows B: A's migrations reach C through B's history, and A's values with them.
#[test]
fn migrations_and_their_values_travel_through_a_relay() {
    let mut a = peer();
    let mut b = peer();
    let mut c = peer();
    a.migrate(V2);
    a.sql("insert into notes values (1, 'first', 'from a')");
    follow(&mut b, &a);
    follow(&mut c, &b);
    pull(&mut b, &a);
    pull(&mut c, &b);
    assert!(has_column(&c, "notes", "tag"));
    assert!(has_index(&c, "links_by_url"));
    assert_eq!(c.rows("select tag from notes"), ["from a"]);
    assert_eq!(
        c.db.schema_history().unwrap(),
        a.db.schema_history().unwrap()
    );
}

#[test]
fn a_history_that_rewrites_a_followed_migration_is_refused_until_taken_again() {
    let mut alice = peer();
    let mut bob = peer();
    alice.migrate("alter table notes add column tag text");
    follow(&mut bob, &alice);
    pull(&mut bob, &alice);
    let name = remote_name(&alice);
    let bob_schema = bob.db.schema().unwrap();
    // Alice's history now says her first migration was another one.
    let rewritten = SchemaHistory::new(vec![
        "alter table notes add column label text;\n".into(),
        "alter table notes add column pri integer;\n".into(),
    ])
    .unwrap();
    let seen = bob.db.see_remote_history(&name, &rewritten).unwrap();
    let Followed::Refused(why) = seen else {
        panic!("followed a rewritten history: {seen:?}");
    };
    assert!(
        why.contains("rewrites migration 1 of the 1 followed"),
        "{why}"
    );
    assert!(why.contains("--schema follow"), "{why}");
    assert_eq!(bob.db.schema().unwrap(), bob_schema);
    let schemas = bob.db.remote_schemas().unwrap();
    assert_eq!(schemas[0].refused.as_deref(), Some(why.as_str()));
    // Seen again, the same: still refused, still nothing applied.
    assert!(matches!(
        bob.db.see_remote_history(&name, &rewritten).unwrap(),
        Followed::Refused(_)
    ));
    assert_eq!(bob.db.schema().unwrap(), bob_schema);
    // The user takes it as it is now.
    bob.db.set_schema_follow(&name, true).unwrap();
    let taken = bob.db.see_remote_history(&name, &rewritten).unwrap();
    assert!(
        matches!(&taken, Followed::Applied(steps) if steps.len() == 2),
        "{taken:?}"
    );
    assert!(has_column(&bob, "notes", "label") && has_column(&bob, "notes", "pri"));
    assert!(bob.db.remote_schemas().unwrap()[0].refused.is_none());
}

/// A peer publishes what it likes as its history: a follower applies only additive changes to
/// its own tables, each migration whole or not at all, and says which one it refused.
#[test]
fn a_hostile_history_changes_nothing_here() {
    let alice = peer();
    let mut bob = peer();
    bob.sql("insert into notes values (1, 'mine')");
    follow(&mut bob, &alice);
    let name = remote_name(&alice);
    let before = bob.db.schema().unwrap();
    let tables = bob.rows("select name from sqlite_master order by name");
    for (migration, said) in [
        ("drop table notes", "dropping a table"),
        ("alter table notes drop column body", "dropping a column"),
        (
            "create table stolen as select * from ddcp_remotes",
            "AS SELECT",
        ),
        (
            "create table copy (id integer primary key not null) as select 1",
            "syntax error",
        ),
        (
            "create table t2 as values(1) union all select 2",
            "AS SELECT",
        ),
        (
            "create table t3 as with recursive n(i) as (select 1 union all select i + 1 from n) select i from n",
            "AS SELECT",
        ),
        (
            "create index evil on 'ddcp_cursors'(json(remote)) where pos > 1",
            "ddcp_cursors",
        ),
        (
            "create index evil on notes__crsql_clock (col_name)",
            "notes__crsql_clock",
        ),
        (
            "create index bomb on notes (printf('%.*c', 999999999, 'x'))",
            "calls printf()",
        ),
        (
            "create table checked (id integer primary key not null, v text check (v > (select count(*) from ddcp_remotes)))",
            "subqueries prohibited",
        ),
        (
            "alter table notes add column c text check (length(c) < 9)",
            "CHECK",
        ),
        (
            "alter table notes add column d text default body",
            "DEFAULT that is not a literal",
        ),
        (
            "alter table notes\u{a0}add\u{a0}e rename to other",
            "past ASCII",
        ),
        ("alter table ddcp_remotes add column x text", "ddcp_remotes"),
        ("create index i on crsql_master (key)", "crsql_master"),
        ("create table sqlite_x (id integer primary key)", "sqlite_x"),
        (
            "create temp table t (id integer primary key not null)",
            "temporary",
        ),
        (
            "create table temp.t (id integer primary key not null)",
            "database temp",
        ),
        (
            "create table main.other (id integer primary key not null)",
            "did not make table main alone",
        ),
        (
            "alter table notes add column ok text; insert into notes values (2, 'theirs', 'x')",
            "statement 2",
        ),
        (
            "create trigger t after insert on notes begin delete from notes; end",
            "CREATE TABLE",
        ),
        ("attach database '/tmp/x.db' as x", "CREATE TABLE"),
        (
            "create view v as select * from ddcp_remotes",
            "CREATE TABLE",
        ),
    ] {
        let history = SchemaHistory::new(vec![
            "alter table notes add column fine text;\n".into(),
            migration.into(),
        ])
        .unwrap();
        let seen = bob.db.see_remote_history(&name, &history).unwrap();
        let Followed::Refused(why) = seen else {
            panic!("{migration}: followed: {seen:?}");
        };
        assert!(
            why.contains("its migration 2 is not followed") && why.contains(said),
            "{migration}: {why}"
        );
        // The additive first migration was applied; the hostile second one not at all.
        assert!(has_column(&bob, "notes", "fine"), "{migration}");
        assert_eq!(
            bob.rows("select name from sqlite_master where name not like '%fine%' order by name"),
            tables,
            "{migration}"
        );
        assert_eq!(bob.notes(), ["1:mine"], "{migration}");
        // Taken again from the first, for the next case.
        bob.db.set_schema_follow(&name, true).unwrap();
    }
    assert_ne!(bob.db.schema().unwrap(), before);
    // A remote pulled into mirrors is not followed: its tables are not this database's.
    let mut carol = peer();
    let mirrored = AcceptPolicy {
        into: Some("a_".parse().unwrap()),
        ..AcceptPolicy::default()
    };
    add_remote(&mut carol, &alice, &mirrored);
    assert!(matches!(
        carol.db.set_schema_follow(&name, true),
        Err(DbError::FollowIntoMirrors(_))
    ));
}

/// The app's releases as migration files, in order.
const RELEASES: [&str; 4] = [
    "alter table notes add column tag text;",
    "create table links (id integer primary key not null, url text);",
    "alter table notes add column pri integer;",
    "alter table links add column title text; create index links_by_title on links (title);",
];

/// How many of the releases `peer` has (they come in order, whoever applied them).
fn release_of(peer: &Peer) -> usize {
    let has = [
        has_column(peer, "notes", "tag"),
        has_column(peer, "links", "url"),
        has_column(peer, "notes", "pri"),
        has_column(peer, "links", "title"),
    ];
    has.iter().take_while(|has| **has).count()
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config { cases: 24, ..Default::default() })]

    /// Issue 23, item 4, with migrations that travel: three peers that follow each other's
    /// schema; releases applied with `ddcp migrate` by any peer at random moments, between
    /// random writes (to old and new columns) and pulls in random order. Pulls alone bring
    /// every peer every release (no peer migrates at the end), no history is refused, and
    /// once each pulled from each they hold the same rows: nothing written on any version
    /// was lost.
    #[test]
    fn peers_that_follow_each_other_converge_on_every_release_and_every_value(
        steps in proptest::collection::vec(step(), 1..40),
    ) {
        let mut peers = [peer(), peer(), peer()];
        for (reader, source) in [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)] {
            let (reader, source) = pair(&mut peers, reader, source);
            follow(reader, source);
        }
        // Somebody ships every release in the end.
        let mut steps = steps;
        steps.extend((0..RELEASES.len()).map(|_| Step::Migrate(0)));
        for step in &steps {
            match *step {
                Step::Migrate(peer) => {
                    let at = release_of(&peers[peer]);
                    if at < RELEASES.len() {
                        peers[peer].migrate(RELEASES[at]);
                    }
                }
                Step::Write { peer, id, column, value } => {
                    let at = release_of(&peers[peer]);
                    peers[peer].sql(&write_sql(at, id, column, value));
                }
                Step::Pull { reader, source } => pull_between(&mut peers, reader, source),
            }
        }
        // Two rounds: what one peer takes in the first, the others take from it in the second.
        for _ in 0..2 {
            for (reader, source) in [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)] {
                pull_between(&mut peers, reader, source);
            }
        }
        for peer in &peers {
            proptest::prop_assert_eq!(release_of(peer), RELEASES.len());
            proptest::prop_assert!(has_index(peer, "links_by_title"));
            proptest::prop_assert!(peer.db.held().unwrap().is_empty());
            for schema in peer.db.remote_schemas().unwrap() {
                proptest::prop_assert!(schema.refused.is_none(), "{:?}", schema.refused);
                proptest::prop_assert_eq!(schema.ahead, 0);
            }
        }
        let first = table_rows(&peers[0]);
        proptest::prop_assert_eq!(&table_rows(&peers[1]), &first);
        proptest::prop_assert_eq!(&table_rows(&peers[2]), &first);
    }
}
