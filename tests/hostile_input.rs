//! Input crafted to hurt: bundles with a valid checksum but harmful content, and scripts and
//! arguments that once crashed ddcp or lost data. Each is refused with one line, and nothing
//! is written.

mod common;

use common::{Site, fixture, snapshot};
use ddcp::sync::bundle::{BundleWriter, FORMAT_VERSION};
use ddcp::sync::codec::BundleHeader;
use ddcp::sync::{Change, DbVersion, SchemaDesc, Seq, SiteId, Value};

/// A bundle with a good checksum around `changes`, claiming the schema of `site`'s database.
fn crafted_bundle(site: &Site, changes: &[Change], since: i64, until: i64) -> std::path::PathBuf {
    let db = ddcp::db::Db::open(&site.db_file(), &ddcp::db::Extension::BuiltIn).unwrap();
    let schema: SchemaDesc = db.schema().unwrap();
    db.close().unwrap();
    let header = BundleHeader {
        format_version: FORMAT_VERSION,
        site_id: SiteId([9; 16]),
        since: DbVersion(since),
        until: DbVersion(until),
        change_count: changes.len() as u64,
        schema,
    };
    let mut writer = BundleWriter::start(Vec::new(), &header).unwrap();
    writer.write_changes(changes).unwrap();
    let path = site.path("crafted.bundle");
    std::fs::write(&path, writer.finish().unwrap()).unwrap();
    path
}

fn tag_change(pk: Vec<u8>, db_version: i64) -> Change {
    Change {
        table: "bookmarks".into(),
        pk,
        cid: "title".into(),
        val: Value::Text("evil".into()),
        col_version: 1,
        db_version: DbVersion(db_version),
        site_id: SiteId([9; 16]),
        cl: 1,
        seq: Seq(0),
    }
}

/// cr-sqlite's packing of the one-column text key "k1".
const GOOD_PK: [u8; 5] = [1, 0x0b, 2, b'k', b'1'];

#[test]
fn crafted_bundles_are_refused_whole() {
    let site = Site::with_bookmarks();
    let before = snapshot(&site.db_file());
    let good = tag_change(GOOD_PK.to_vec(), 1);
    let cases = [
        (
            vec![good.clone(), tag_change(Vec::new(), 1)],
            0,
            1,
            "primary key of a change to \"bookmarks\" is malformed (empty)",
        ),
        (
            vec![tag_change(vec![1, 0x4b, 0, 0], 1)],
            0,
            1,
            "is malformed",
        ),
        (
            vec![tag_change(GOOD_PK.to_vec(), i64::MAX)],
            0,
            i64::MAX,
            "version range",
        ),
        (
            vec![tag_change(GOOD_PK.to_vec(), 7)],
            0,
            3,
            "outside its stated range",
        ),
        (
            vec![Change {
                table: "nope".into(),
                ..good.clone()
            }],
            0,
            1,
            "table \"nope\" is not a CRR here",
        ),
        (
            vec![Change {
                cid: "id".into(),
                ..good.clone()
            }],
            0,
            1,
            "has no column \"id\"",
        ),
        (
            vec![Change {
                col_version: 0,
                ..good.clone()
            }],
            0,
            1,
            "col_version 0",
        ),
    ];
    for (changes, since, until, message) in cases {
        let path = crafted_bundle(&site, &changes, since, until);
        site.run(&["bundle", "apply", path.to_str().unwrap()])
            .fails_with(message);
        assert_eq!(snapshot(&site.db_file()), before, "{message}");
    }
    // The good change alone goes through: the refusals above were about the bad ones.
    let path = crafted_bundle(&site, &[good], 0, 1);
    site.run(&["bundle", "apply", path.to_str().unwrap()]).ok();
}

#[test]
fn bundle_create_never_overwrites_the_database() {
    let site = Site::with_bookmarks();
    let before = snapshot(&site.db_file());
    site.run(&["bundle", "create", "ddcp.db"])
        .fails_with("is the database itself (or its WAL): refusing to overwrite it");
    assert_eq!(snapshot(&site.db_file()), before);
    site.run(&["bundle", "create", "--since", "-5", "x.bundle"])
        .fails_with("unexpected argument '-5'");
}

#[test]
fn bundle_since_beyond_the_database_is_refused() {
    let site = Site::with_bookmarks();
    site.run(&[
        "bundle",
        "create",
        "--since",
        "9223372036854775807",
        "edge.bundle",
    ])
    .fails_with("--since 9223372036854775807 is beyond this database's db_version 0");
    assert!(!site.path("edge.bundle").exists());
    // Nothing after the newest version: no empty bundle, as git refuses one.
    site.run(&["bundle", "create", "--since", "0", "empty.bundle"])
        .fails_with("no changes after db_version 0: nothing to bundle");
    assert!(!site.path("empty.bundle").exists());
}

#[test]
fn a_closed_pipe_fails_bundle_create() {
    let site = Site::with_bookmarks();
    site.run_with_input(&["shell"], &fixture("ins_test_schema_alice.sql"))
        .ok();
    site.sql(
        "with recursive n(i) as (select 1 union all select i + 1 from n where i < 2000)
         insert into bookmarks (id, title) select 'bulk-' || i, hex(zeroblob(500)) from n",
    );
    let status = site
        .command(&["bundle", "create", "-"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map(|mut child| {
            drop(child.stdout.take());
            child.wait_with_output().unwrap()
        })
        .unwrap();
    assert!(!status.status.success());
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert!(stderr.contains("error: cannot write -"), "{stderr}");
}

#[test]
fn scripts_that_leave_a_transaction_open_are_rolled_back_and_reported() {
    let site = Site::with_bookmarks();
    site.run_with_input(&["shell"], b"begin;\ninsert into tags values ('b1', 'kept?');\ninsert into nope values (1);\n")
        .fails_with("line 3: no such table: nope (in: insert into nope values (1);); the open transaction was rolled back");
    site.run_with_input(
        &["shell"],
        b"begin;\ninsert into tags values ('b1', 'x');\n",
    )
    .fails_with("the script ended inside a transaction");
    assert_eq!(site.sql("select count(*) from tags"), "0\n");
}

#[test]
fn nul_bytes_and_comments_in_scripts() {
    let site = Site::with_bookmarks();
    site.run_with_input(
        &["shell"],
        b"insert into tags values ('b1', 'a');\x00insert into tags values ('b1', 'b');\n",
    )
    .fails_with("line 1: NUL byte in the input");
    assert_eq!(site.sql("select count(*) from tags"), "0\n");
    assert_eq!(
        site.run_with_input(&["shell"], b"-- list them\n.crrs\n")
            .ok(),
        "bookmarks\ntags\n"
    );
    site.run_with_input(&["shell"], b"-- one\n-- two\nselect * from nope;\n")
        .fails_with("line 3: no such table: nope (in: select * from nope;)");
}

#[test]
fn init_leaves_nothing_behind_when_it_fails() {
    let site = Site::new();
    std::fs::write(site.path("not-a-dir"), b"x").unwrap();
    site.run(&["--state-dir", "not-a-dir/state", "init"])
        .fails_with("cannot create state directory");
    assert!(!site.db_file().exists());
    let conn = rusqlite::Connection::open(site.db_file()).unwrap();
    conn.execute_batch("create table ddcp_remotes (x)").unwrap();
    drop(conn);
    let before = snapshot(&site.db_file());
    site.run(&["init"])
        .fails_with("already has a table named ddcp_remotes");
    assert_eq!(snapshot(&site.db_file()), before);
    assert!(!site.path(".ddcp").exists());
}

#[test]
fn a_damaged_schema_version_is_reported_not_a_crash() {
    let site = Site::with_bookmarks();
    let conn = rusqlite::Connection::open(site.db_file()).unwrap();
    conn.execute(
        "update ddcp_meta set value = -1 where key = 'schema_version'",
        [],
    )
    .unwrap();
    drop(conn);
    site.run(&["status"])
        .fails_with("metadata in the database is damaged (schema_version is -1)");
}

#[test]
fn text_that_is_not_utf8_replicates_byte_for_byte() {
    let alice = Site::with_bookmarks();
    alice.sql("insert into bookmarks (id, title) values ('odd', cast(x'ff41c3' as text))");
    let bundle = alice.path("odd.bundle");
    alice
        .run(&["bundle", "create", bundle.to_str().unwrap()])
        .ok();
    let bob = Site::with_bookmarks();
    bob.run(&["bundle", "apply", bundle.to_str().unwrap()]).ok();
    let query = "select typeof(title), hex(title) from bookmarks where id = 'odd'";
    assert_eq!(bob.sql(query), "text|FF41C3\n");
    assert_eq!(bob.sql(query), alice.sql(query));
}
