//! The `ddcp` binary as a user runs it: every local command, good input and bad.

mod common;

use common::{Site, fixture, snapshot};

const KEY: &str = "73iT7NuqplS2nab1AH4P7lJYiQROR_k4NyUhag_K4DY";
const SECRET: &str = "eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHg";
/// A record key whole, as veilid-core 0.5 prints it (KEY, then its secret).
const WHOLE: &str =
    "73iT7NuqplS2nab1AH4P7lJYiQROR_k4NyUhag_K4DY:eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHg";

#[test]
fn init_creates_the_database_a_private_state_dir_and_a_dht_record() {
    let site = Site::new();
    let run = site.run(&["init"]);
    let key = run.ok().trim().to_string();
    // veilid-core 0.5's two-part form, which `remote add` accepts, on stdout; the log line
    // names the record without its secret.
    let parsed: ddcp::sync::RecordKey = key.parse().unwrap();
    let secret = parsed.secret_text().expect("a two-part key");
    assert!(
        run.stderr.contains(&format!(
            "INFO ddcp: Registered database at DHT key=\"{parsed}\""
        )),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(&secret), "{}", run.stderr);
    let record = std::fs::read_to_string(site.path(".ddcp/record")).unwrap();
    let owner = record
        .lines()
        .find_map(|line| line.strip_prefix("owner "))
        .unwrap();
    let owner_secret = owner.rsplit(':').next().unwrap();
    assert_eq!(site.run(&["addr"]).ok().trim(), key);
    let json: serde_json::Value = serde_json::from_str(site.run(&["addr", "--json"]).ok()).unwrap();
    assert_eq!(json["key"], key);
    assert!(site.db_file().is_file());
    use std::os::unix::fs::PermissionsExt;
    let mode = |path| {
        std::fs::metadata(site.path(path))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(".ddcp"), 0o700);
    assert_eq!(mode(".ddcp/record"), 0o600, "the owner keypair is secret");
    let status_text = site.run(&["status", "--json"]).ok().to_string();
    let status: serde_json::Value = serde_json::from_str(&status_text).unwrap();
    assert_eq!(status["db_version"], 0);
    assert_eq!(status["site_id"].as_str().unwrap().len(), 32);
    for shown in [status_text, site.run(&["status"]).ok().to_string()] {
        assert!(
            !shown.contains(&secret) && !shown.contains(owner_secret),
            "{shown}"
        );
    }
}

#[test]
fn init_refuses_an_existing_database_or_identity_and_changes_nothing() {
    let site = Site::with_bookmarks();
    let before = snapshot(&site.db_file());
    let identity = snapshot(&site.path(".ddcp/record"));
    // Run twice: said of the database.
    site.run(&["init"])
        .fails_with("ddcp.db is already a ddcp database");
    site.run(&["--db-file", "new.db", "init"])
        .fails_with("already holds a database's DHT record");
    assert!(!site.path("new.db").exists());
    site.run(&["--state-dir", "other", "init"])
        .fails_with("is already a ddcp database");
    assert!(
        !site.path("other").exists(),
        "a failed init leaves no state dir behind"
    );
    assert_eq!(snapshot(&site.db_file()), before);
    assert_eq!(snapshot(&site.path(".ddcp/record")), identity);
}

#[test]
fn a_damaged_owner_key_is_reported_without_quoting_it() {
    let site = Site::new();
    site.run(&["init"]).ok();
    let path = site.path(".ddcp/record");
    let record = std::fs::read_to_string(&path).unwrap();
    let owner = record
        .lines()
        .find_map(|line| line.strip_prefix("owner "))
        .unwrap()
        .to_string();
    // One character gone from the secret half: what a bad copy or a disk error leaves.
    // (veilid-core takes a secret of any length, and parsed this one whenever the last
    // character's spare bits happened to be zero, about one run in sixteen; ddcp now checks
    // both halves are 32 bytes itself.)
    let damaged = &owner[..owner.len() - 1];
    std::fs::write(&path, record.replace(&owner, damaged)).unwrap();
    let line = site
        .run(&["addr"])
        .fails_with("the owner line is not a VLD0 keypair")
        .to_string();
    let secret_part = damaged.rsplit(':').next().unwrap();
    assert!(!line.contains(secret_part), "{line}");
}

#[test]
fn addr_without_init_says_what_to_do() {
    Site::new()
        .run(&["addr"])
        .fails_with("no DHT record in .ddcp: run `ddcp init` first");
}

#[test]
fn init_refuses_a_file_that_is_not_sqlite() {
    let site = Site::new();
    std::fs::write(site.db_file(), b"just some text, not a database at all").unwrap();
    let before = snapshot(&site.db_file());
    site.run(&["init"]).fails_with("is not a SQLite database");
    assert_eq!(snapshot(&site.db_file()), before);
}

#[test]
fn init_adopts_an_application_database() {
    let site = Site::new();
    let conn = rusqlite::Connection::open(site.db_file()).unwrap();
    conn.execute_batch("create table notes (id text primary key not null, body text); insert into notes values ('n1', 'kept');")
        .unwrap();
    drop(conn);
    site.run(&["init"]).ok();
    assert_eq!(site.sql("select body from notes"), "kept\n");
}

#[test]
fn commands_refuse_a_missing_database_and_create_nothing() {
    let site = Site::new();
    for args in [
        &["status"][..],
        &["shell", "-c", "select 1"],
        &["remote", "list"],
        &["remote", "add", "alice", WHOLE],
        &["bundle", "create", "out.bundle"],
    ] {
        site.run(args)
            .fails_with("no database at ddcp.db: run `ddcp init` first");
        assert!(!site.db_file().exists(), "{args:?} created the database");
        assert!(!site.path("out.bundle").exists());
    }
}

#[test]
fn commands_refuse_a_plain_sqlite_database_without_writing_to_it() {
    let site = Site::new();
    let conn = rusqlite::Connection::open(site.db_file()).unwrap();
    conn.execute_batch("create table notes (body text)")
        .unwrap();
    drop(conn);
    let before = snapshot(&site.db_file());
    site.run(&["status"])
        .fails_with("is not a ddcp database: run `ddcp init`");
    assert_eq!(snapshot(&site.db_file()), before);
}

#[test]
fn db_file_and_state_dir_come_from_flags_or_environment() {
    let site = Site::new();
    site.run(&["--db-file", "other.db", "--state-dir", "st", "init"])
        .ok();
    assert!(site.path("other.db").is_file() && site.path("st").is_dir());
    let run = site
        .command(&["status", "--json"])
        .env("DDCP_DB_FILE", "other.db")
        .env("DDCP_STATE_DIR", "st")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.stderr.is_empty());

    // The old names still work, with a warning; the new ones win over them.
    let run = site
        .command(&["status", "--json"])
        .env("DB_FILE", "other.db")
        .env("STATE_DIR", "st")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("DB_FILE is read as DDCP_DB_FILE")
            && stderr.contains("STATE_DIR is read as DDCP_STATE_DIR"),
        "{stderr}"
    );
    let run = site
        .command(&["status"])
        .env("DB_FILE", "other.db")
        .env("DDCP_DB_FILE", "missing.db")
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("missing.db"));
}

#[test]
fn shell_runs_whole_scripts_with_triggers_comments_and_semicolons_in_strings() {
    let site = Site::new();
    site.run(&["init"]).ok();
    site.run_with_input(&["shell"], &fixture("cr_test_schema.sql"))
        .ok();
    assert_eq!(
        site.sql("select sensor, count(*), min(noted) from arrivals group by sensor order by 1"),
        "cellar|1|arrived; logged\ngreenhouse-1|2|arrived; logged\n"
    );
    assert_eq!(
        site.sql("select note from readings where note like '%;%'"),
        "door open; windy\n"
    );
}

#[test]
fn shell_output_modes() {
    let site = Site::with_bookmarks();
    site.run_with_input(&["shell"], &fixture("ins_test_schema_alice.sql"))
        .ok();
    let sql = "select tag, length(tag) as n from tags where tag in ('p2p', 'crdt') order by tag";
    assert_eq!(site.sql(sql), "crdt|4\np2p|3\n");
    let csv = site.run(&["shell", "--mode", "csv", "--header", "-c", sql]);
    assert_eq!(csv.ok(), "tag,n\ncrdt,4\np2p,3\n");
    let json = site.run(&["shell", "--mode", "json", "-c", sql]);
    let rows: serde_json::Value = serde_json::from_str(json.ok()).unwrap();
    assert_eq!(
        rows,
        serde_json::json!([{"tag": "crdt", "n": 4}, {"tag": "p2p", "n": 3}])
    );
    let boxed = site.run(&["shell", "--mode", "box", "-c", sql]);
    assert_eq!(
        boxed.ok(),
        "┌──────┬───┐\n│ tag  │ n │\n├──────┼───┤\n│ crdt │ 4 │\n│ p2p  │ 3 │\n└──────┴───┘\n"
    );
}

#[test]
fn shell_dot_commands() {
    let site = Site::with_bookmarks();
    site.sql("create table local_only (x)");
    assert_eq!(site.sql(".crrs"), "bookmarks\ntags\n");
    assert_eq!(site.sql(".tables"), "bookmarks\nlocal_only\ntags\n");
    assert!(site.sql(".schema tags").starts_with("CREATE TABLE tags"));
    let script = b".mode csv\n.headers on\nselect 1 as one;\n.quit\nselect 2;\n";
    assert_eq!(site.run_with_input(&["shell"], script).ok(), "one\n1\n");
    site.run_with_input(&["shell"], b"select 1;\n.frobnicate\n")
        .fails_with("line 2: unknown or malformed command");
    // `.mode` alone says which mode is in use.
    assert_eq!(site.sql(".mode"), "list\n");
    assert_eq!(
        site.run_with_input(&["shell"], b".mode json\n.mode\n").ok(),
        "json\n"
    );
    // .read runs a file's SQL and dot-commands; its errors name the file and its line.
    std::fs::write(
        site.path("more.sql"),
        ".mode csv\ninsert into local_only values (7);\nselect x from local_only;\n",
    )
    .unwrap();
    assert_eq!(
        site.run_with_input(&["shell"], b".read more.sql\nselect 8;\n")
            .ok(),
        "7\n8\n"
    );
    std::fs::write(site.path("bad.sql"), "select 1;\nselect * from nope;\n").unwrap();
    site.run_with_input(&["shell"], b".read bad.sql\n")
        .fails_with("line 1: bad.sql: line 2: no such table: nope");
    std::fs::write(site.path("self.sql"), ".read self.sql\n").unwrap();
    let line = site
        .run_with_input(&["shell"], b".read self.sql\n")
        .fails_with("16 deep")
        .to_string();
    // Said once, not once per level it went down.
    assert_eq!(line.matches("self.sql").count(), 1, "{line}");
    // .timer on: each statement's time after its rows.
    let timed = site
        .run_with_input(&["shell"], b".timer on\nselect 1;\n")
        .ok()
        .to_string();
    assert!(timed.starts_with("1\nRun Time: real "), "{timed}");
    // The SQL positionally, as sqlite3 takes it.
    assert_eq!(site.run(&["shell", "select 40 + 2"]).ok(), "42\n");
    site.run(&["shell", "-c", "select 1", "select 2"])
        .fails_with("cannot be used with");
}

#[test]
fn shell_dump_and_import_move_tables_as_sql_and_csv() {
    let site = Site::with_bookmarks();
    site.sql(
        "insert into bookmarks values ('b1', 'https://x', 'it''s
two lines', 3);
         insert into tags values ('b1', '日本');",
    );
    // A dump loaded into a new database gives the same rows, CRRs and schema.
    let dump = site.sql(".dump");
    let copy = Site::new();
    copy.run(&["init"]).ok();
    copy.run_with_input(&["shell"], dump.as_bytes()).ok();
    let everything = "select * from bookmarks; select * from tags;";
    assert_eq!(copy.sql(everything), site.sql(everything));
    assert_eq!(copy.sql(".crrs"), "bookmarks\ntags\n");
    assert_eq!(copy.sql(".schema"), site.sql(".schema"));
    assert!(site.sql(".dump tags").contains("INSERT INTO \"tags\""));
    site.run(&["shell", "-c", ".dump nope"])
        .fails_with("no table named \"nope\"");

    // .import: a new table from the header, an existing one all or nothing.
    std::fs::write(
        site.path("people.csv"),
        "id,name\n1,\"Ann, \"\"A\"\"\"\n2,Bo\n",
    )
    .unwrap();
    site.sql(".import people.csv people");
    assert_eq!(
        site.sql("select id, name from people"),
        "1|Ann, \"A\"\n2|Bo\n"
    );
    std::fs::write(site.path("more.csv"), "b2,https://y,t,1\nb3,https://z\n").unwrap();
    site.run(&["shell", "-c", ".import more.csv bookmarks"])
        .fails_with("more.csv: line 2: 2 fields, but bookmarks has 4 columns");
    assert_eq!(site.sql("select count(*) from bookmarks"), "1\n");

    // Box mode: wide characters aligned, blobs as hex.
    assert_eq!(
        site.run(&[
            "shell",
            "--mode",
            "box",
            "-c",
            "select '日本' as n, x'00ff' as b"
        ])
        .ok(),
        "┌──────┬─────────┐\n│ n    │ b       │\n├──────┼─────────┤\n│ 日本 │ x'00ff' │\n└──────┴─────────┘\n"
    );
}

#[test]
fn shell_stops_at_the_first_error_and_names_its_line() {
    let site = Site::with_bookmarks();
    let script = b"insert into tags values ('b1', 'first');\n\
        -- a comment\n\
        insert into tags values ('b1', 'second');\n\
        insert into no_such_table values (1);\n\
        insert into tags values ('b1', 'never');\n";
    let run = site.run_with_input(&["shell"], script);
    let line = run.fails_with("line 4: no such table: no_such_table");
    assert!(
        line.contains("(in: insert into no_such_table values (1);)"),
        "{line}"
    );
    assert_eq!(
        site.sql("select tag from tags order by tag"),
        "first\nsecond\n"
    );

    site.run(&["shell", "-c", "selec 1"])
        .fails_with("line 1: near \"selec\": syntax error");
}

#[test]
fn remote_add_list_remove() {
    let site = Site::with_bookmarks();
    // The VLD0: prefix is optional. What was done is said on stdout, the key without its secret.
    assert_eq!(
        site.run(&["remote", "add", "alice", WHOLE]).ok(),
        format!("added remote alice (VLD0:{KEY})\n")
    );
    site.run(&["remote", "add", "bob", &format!("VLD0:{SECRET}:{KEY}")])
        .ok();
    // Keys without their secret, unless asked.
    assert_eq!(
        site.run(&["remote", "list"]).ok(),
        format!("alice\tVLD0:{KEY}\nbob\tVLD0:{SECRET}\n")
    );
    assert_eq!(
        site.run(&["remote", "list", "--show-secrets"]).ok(),
        format!("alice\tVLD0:{WHOLE}\nbob\tVLD0:{SECRET}:{KEY}\n")
    );
    let json: serde_json::Value =
        serde_json::from_str(site.run(&["remote", "list", "--json"]).ok()).unwrap();
    assert_eq!(json[0]["name"], "alice");
    assert_eq!(json[0]["key"], format!("VLD0:{KEY}"));
    assert_eq!(json[1]["key"], format!("VLD0:{SECRET}"));
    let json: serde_json::Value = serde_json::from_str(
        site.run(&["remote", "list", "--json", "--show-secrets"])
            .ok(),
    )
    .unwrap();
    assert_eq!(json[1]["key"], format!("VLD0:{SECRET}:{KEY}"));
    let status = site.run(&["status", "--json"]).ok().to_string();
    assert!(!status.contains(&format!("{SECRET}:{KEY}")), "{status}");
    // No owner is pinned before the first contact, unless given; `set` pins another.
    assert_eq!(json[0]["owner"], serde_json::Value::Null);
    let (owner, other) = (
        ddcp::sync::MemberKeys::generate().id().to_string(),
        ddcp::sync::MemberKeys::generate().id().to_string(),
    );
    let key = format!("{}:{SECRET}", "A".repeat(43));
    site.run(&["remote", "add", "carol", &key, "--owner", &owner])
        .ok();
    let owner_of = |name: &str| -> serde_json::Value {
        let json: serde_json::Value =
            serde_json::from_str(site.run(&["remote", "list", "--json"]).ok()).unwrap();
        let remote = json.as_array().unwrap().iter().find(|r| r["name"] == name);
        remote.unwrap()["owner"].clone()
    };
    assert_eq!(owner_of("carol"), owner.as_str());
    let said = site
        .run(&["remote", "set", "carol", "--owner", &other])
        .ok()
        .to_string();
    assert_eq!(
        said,
        format!("remote carol's status must name owner {other}: taken at its next pull\n")
    );
    assert_eq!(owner_of("carol"), other.as_str());
    site.run(&["remote", "remove", "carol"]).ok();
    site.run(&["remote", "remove", "alice"]).ok();
    assert_eq!(
        site.run(&["remote", "list", "--show-secrets"]).ok(),
        format!("bob\tVLD0:{SECRET}:{KEY}\n")
    );
    site.run(&["remote", "remove", "alice"])
        .fails_with("no remote named \"alice\"");
}

/// A second secret, for the record of [`KEY`].
const OTHER_SECRET: &str = "YW5vdGhlci1zZWNyZXQtb2YtdGhlLXNhbWUtcmVjb3I";

#[test]
fn remote_add_refuses_bad_input_and_writes_nothing() {
    let site = Site::with_bookmarks();
    site.run(&["remote", "add", "alice", WHOLE]).ok();
    let before = site.run(&["remote", "list", "--json"]).ok().to_string();
    let db_before = snapshot(&site.db_file());
    // The same record with another secret than alice's.
    let with_secret = format!("{KEY}:{OTHER_SECRET}");
    let secret_first = format!("{SECRET}:{KEY}");
    let named_without_secret = format!("remote \"alice\" already has key VLD0:{KEY}");
    let other_key = format!("{}:{SECRET}", "A".repeat(43));
    for (args, message) in [
        (
            vec!["remote", "add", "bob", "VLD0:nope"],
            "invalid record key: key is 3 bytes; expected 32",
        ),
        (
            vec!["remote", "add", "bob", "VLD1:abc"],
            "unsupported crypto kind",
        ),
        (
            vec!["remote", "add", "bob", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"],
            "key is 24 bytes; expected 32",
        ),
        (
            vec!["remote", "add", "bob", &KEY[1..]],
            "not unpadded base64url",
        ),
        (
            // The one-part form parses, but Veilid 0.5 cannot read its record.
            vec!["remote", "add", "bob", KEY],
            "has no secret part",
        ),
        (
            vec!["remote", "add", "alice", &secret_first],
            "remote \"alice\" already exists",
        ),
        (
            // The error names the record, never the secret that came with it.
            vec!["remote", "add", "carol", with_secret.as_str()],
            named_without_secret.as_str(),
        ),
        (
            vec!["remote", "add", "--", "-x", WHOLE],
            "invalid remote name",
        ),
        (vec!["remote", "add", "a/b", WHOLE], "invalid remote name"),
        (
            // The prefix is the problem, not a name someone holds.
            vec!["remote", "add", "bob", &other_key, "--into", "book"],
            "--into book: bookmarks starts with it",
        ),
        (
            // Name and key swapped: the key is not repeated, the order is said.
            vec!["remote", "add", WHOLE, "erin"],
            "this looks like a record key, not a remote's name: the name comes first",
        ),
        (
            vec!["remote", "add", "bob", &other_key, "--owner", "VLD0:nope"],
            "invalid member id",
        ),
        (
            vec!["remote", "set", "alice", "--owner", "nope"],
            "invalid member id",
        ),
    ] {
        let line = site.run(&args).fails_with(message).to_string();
        assert!(!line.contains(&format!(":{SECRET}")), "{line}");
        assert!(!line.contains(OTHER_SECRET), "{line}");
        assert_eq!(site.run(&["remote", "list", "--json"]).ok(), before);
    }
    assert_eq!(snapshot(&site.db_file()), db_before);
}

/// `-` in place of a key reads it from stdin (out of the shell's history and `ps`), as safely
/// as an argument: refused with one line, its secret never printed back.
#[test]
fn a_key_given_as_a_dash_is_read_from_stdin() {
    let site = Site::with_bookmarks();
    let whole = format!("VLD0:{WHOLE}\n");
    assert_eq!(
        site.run_with_input(&["remote", "add", "alice", "-"], whole.as_bytes())
            .ok(),
        format!("added remote alice (VLD0:{KEY})\n")
    );
    assert_eq!(
        site.run(&["remote", "list", "--show-secrets"]).ok(),
        format!("alice\tVLD0:{WHOLE}\n")
    );
    let before = site.run(&["remote", "list", "--json"]).ok().to_string();
    let with_secret = format!("{KEY}:{OTHER_SECRET}\n");
    let long = "A".repeat(2000);
    for (stdin, message) in [
        ("", "the remote's key is -, but standard input holds no key"),
        ("\n", "standard input holds no key"),
        (long.as_str(), "standard input's first line is not a key"),
        (
            with_secret.as_str(),
            "remote \"alice\" already has key VLD0:",
        ),
    ] {
        let run = site.run_with_input(&["remote", "add", "carol", "-"], stdin.as_bytes());
        let line = run.fails_with(message);
        assert!(!line.contains(OTHER_SECRET), "{line}");
        assert_eq!(site.run(&["remote", "list", "--json"]).ok(), before);
    }
    // A member's id too.
    let id = ddcp::sync::MemberKeys::generate().id().to_string();
    site.run_with_input(&["member", "add", "bob", "-"], id.as_bytes())
        .ok();
    let members = site.run(&["member", "list"]).ok().to_string();
    assert!(members.contains(&id), "{members}");
}

#[test]
fn status_shows_versions_tables_and_remotes() {
    let site = Site::with_bookmarks();
    site.run_with_input(&["shell"], &fixture("ins_test_schema_alice.sql"))
        .ok();
    site.run(&["remote", "add", "alice", WHOLE]).ok();
    let text = site.run(&["status"]).ok().to_string();
    assert!(text.contains("crr tables:  bookmarks, tags"), "{text}");
    assert!(text.contains(&format!("alice\tVLD0:{KEY}")), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(site.run(&["status", "--json"]).ok()).unwrap();
    // Two transactions: the bookmarks, then the tags.
    assert_eq!(json["db_version"], 2);
    assert_eq!(json["crr_tables"], serde_json::json!(["bookmarks", "tags"]));
    assert_eq!(json["remotes"][0]["name"], "alice");
}

fn bookmark_rows(site: &Site) -> String {
    site.sql("select id, url, title, created_at from bookmarks order by id; select * from tags order by 1, 2")
}

#[test]
fn bundles_carry_changes_between_databases() {
    let alice = Site::with_bookmarks();
    alice
        .run_with_input(&["shell"], &fixture("ins_test_schema_alice.sql"))
        .ok();
    let bob = Site::with_bookmarks();
    let bundle = alice.path("all.bundle");
    let bundle = bundle.to_str().unwrap();
    let created = alice.run(&["bundle", "create", bundle]).ok().to_string();
    assert_eq!(
        created,
        format!("wrote 13 changes (db_version 1..=2) to {bundle}\n")
    );
    let verify = alice.run(&["bundle", "verify", "--json", bundle]);
    let summary: serde_json::Value = serde_json::from_str(verify.ok()).unwrap();
    assert_eq!(summary["changes"], 13);
    bob.run(&["bundle", "apply", bundle]).ok();
    assert_eq!(bookmark_rows(&bob), bookmark_rows(&alice));

    // Bob edits; a bundle of only his new changes brings the edit back to Alice.
    let since = serde_json::from_str::<serde_json::Value>(bob.run(&["status", "--json"]).ok())
        .unwrap()["db_version"]
        .to_string();
    bob.sql("update bookmarks set title = 'NNCP, by bob' where url like '%nncp%'");
    let delta = bob.path("delta.bundle");
    let delta = delta.to_str().unwrap();
    let created: serde_json::Value = serde_json::from_str(
        bob.run(&["bundle", "create", "--since", &since, delta, "--json"])
            .ok(),
    )
    .unwrap();
    assert_eq!(created["changes"], 1);
    bob.run(&["bundle", "create", "-", "--json"])
        .fails_with("--json with '-'");
    let summary: serde_json::Value =
        serde_json::from_str(bob.run(&["bundle", "verify", "--json", delta]).ok()).unwrap();
    assert_eq!(summary["changes"], 1);
    alice.run(&["bundle", "apply", delta]).ok();
    assert_eq!(bookmark_rows(&bob), bookmark_rows(&alice));
    assert!(bookmark_rows(&alice).contains("NNCP, by bob"));

    // A bundle of all bob holds: alice's changes relayed, and his own, counted per author.
    let all = bob.path("all-of-bob.bundle");
    let all = all.to_str().unwrap();
    bob.run(&["bundle", "create", all]).ok();
    let summary: serde_json::Value =
        serde_json::from_str(bob.run(&["bundle", "verify", "--json", all]).ok()).unwrap();
    let site_of = |site: &Site| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(site.run(&["status", "--json"]).ok()).unwrap()
            ["site_id"]
            .clone()
    };
    let mut authors: Vec<(String, u64)> = summary["authors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["site_id"].as_str().unwrap().to_string(),
                a["changes"].as_u64().unwrap(),
            )
        })
        .collect();
    authors.sort();
    // bob's title replaced alice's in that cell: cr-sqlite keeps the newest change per cell.
    let mut expected = vec![
        (site_of(&alice).as_str().unwrap().to_string(), 12),
        (site_of(&bob).as_str().unwrap().to_string(), 1),
    ];
    expected.sort();
    assert_eq!(authors, expected);
    assert_eq!(summary["changes"], 13);

    // Nothing new since: no empty bundle.
    let now = serde_json::from_str::<serde_json::Value>(bob.run(&["status", "--json"]).ok())
        .unwrap()["db_version"]
        .to_string();
    bob.run(&["bundle", "create", "--since", &now, "none.bundle"])
        .fails_with("nothing to bundle");

    // Applying the same bundle again changes nothing, and says so.
    let version = || alice.run(&["status", "--json"]).ok().to_string();
    let before = version();
    let again = alice.run(&["bundle", "apply", delta]).ok().to_string();
    assert!(
        again.starts_with("nothing new in 1 changes from site ")
            && again.contains("this database held them all"),
        "{again}"
    );
    assert_eq!(version(), before);
    let json: serde_json::Value =
        serde_json::from_str(alice.run(&["bundle", "apply", "--json", delta]).ok()).unwrap();
    assert_eq!(
        (json["changes"].as_u64(), json["changed"].as_bool()),
        (Some(1), Some(false))
    );
}

#[test]
fn bundles_work_through_stdin_and_stdout() {
    let alice = Site::with_bookmarks();
    alice
        .run_with_input(&["shell"], &fixture("ins_test_schema_alice.sql"))
        .ok();
    let bytes = alice
        .command(&["bundle", "create", "-"])
        .output()
        .unwrap()
        .stdout;
    let bob = Site::with_bookmarks();
    bob.run_with_input(&["bundle", "apply", "-"], &bytes).ok();
    assert_eq!(bookmark_rows(&bob), bookmark_rows(&alice));
}

#[test]
fn corrupted_truncated_or_foreign_bundles_are_refused_whole() {
    let alice = Site::with_bookmarks();
    alice
        .run_with_input(&["shell"], &fixture("ins_test_schema_alice.sql"))
        .ok();
    let good = alice.path("good.bundle");
    alice
        .run(&["bundle", "create", good.to_str().unwrap()])
        .ok();
    let bytes = std::fs::read(&good).unwrap();
    let bob = Site::with_bookmarks();
    let db_before = snapshot(&bob.db_file());
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 0x40;
    let cases = [
        (bytes[..bytes.len() - 1].to_vec(), "truncated or corrupted"),
        (bytes[..bytes.len() / 2].to_vec(), "truncated or corrupted"),
        (flipped, "truncated or corrupted"),
        (b"PK\x03\x04 a zip file".to_vec(), "not a ddcp bundle"),
        (Vec::new(), "not a ddcp bundle"),
    ];
    for (content, message) in cases {
        let path = bob.path("bad.bundle");
        std::fs::write(&path, content).unwrap();
        bob.run(&["bundle", "apply", path.to_str().unwrap()])
            .fails_with(message);
        assert_eq!(bookmark_rows(&bob), "");
    }
    assert_eq!(snapshot(&bob.db_file()), db_before);
    bob.run(&["bundle", "apply", "no-such-file"])
        .fails_with("cannot read no-such-file");
}

/// A bundle of a newer version of the app (issue 23): what this database has is merged, what it
/// lacks is held and shown by `ddcp status`, and merged once `ddcp shell` adds it. A real
/// conflict (a column of another type) refuses the bundle whole, in one line.
#[test]
fn a_bundle_of_a_newer_schema_applies_what_fits_and_holds_the_rest() {
    let alice = Site::with_bookmarks();
    alice
        .run_with_input(&["shell"], &fixture("ins_test_schema_alice.sql"))
        .ok();
    let bundle = alice.path("all.bundle");
    alice
        .run(&["bundle", "create", bundle.to_str().unwrap()])
        .ok();
    let older = |columns: &str| {
        let site = Site::new();
        site.run(&["init"]).ok();
        site.run_with_input(
            &["shell"],
            format!(
                "create table bookmarks (id text primary key not null, {columns});\nselect crsql_as_crr('bookmarks');\n"
            )
            .as_bytes(),
        )
        .ok();
        site
    };
    let carol = older("url text");
    let applied = carol
        .run(&["bundle", "apply", bundle.to_str().unwrap()])
        .ok()
        .to_string();
    assert!(applied.contains("held "), "{applied}");
    assert_eq!(
        carol.sql("select count(*) from bookmarks where url like 'https://%'"),
        "3\n"
    );
    let status = carol.run(&["status"]).ok().to_string();
    assert!(
        status.contains("for bookmarks.title: this database lacks the column"),
        "{status}"
    );
    assert!(
        status.contains("for tags: this database lacks the table"),
        "{status}"
    );
    carol.sql(
        "select crsql_begin_alter('bookmarks'); alter table bookmarks add column title text; \
         select crsql_commit_alter('bookmarks');",
    );
    assert_eq!(
        carol.sql("select count(*) from bookmarks where title is not null"),
        alice.sql("select count(*) from bookmarks where title is not null")
    );
    let status = carol.run(&["status"]).ok().to_string();
    assert!(!status.contains("bookmarks.title"), "{status}");

    let dave = older("url integer");
    let before = snapshot(&dave.db_file());
    dave.run(&["bundle", "apply", bundle.to_str().unwrap()])
        .fails_with("the bundle's schema cannot be merged here: column bookmarks.url is INTEGER here but TEXT there: its values would be read differently; nothing was applied");
    assert_eq!(snapshot(&dave.db_file()), before);
}

#[test]
fn bundle_create_never_leaves_half_a_file() {
    let alice = Site::with_bookmarks();
    let target = alice.path("no-such-dir/out.bundle");
    alice
        .run(&["bundle", "create", target.to_str().unwrap()])
        .fails_with("cannot write");
    assert!(!target.exists());
}

fn crsqlite_so() -> std::path::PathBuf {
    let dir = std::env::var_os("CRSQLITE_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/crsqlite-0.16.3")
        });
    dir.join("crsqlite.so")
}

#[test]
fn ext_file_loads_a_users_own_cr_sqlite_build() {
    let site = Site::new();
    let ext = crsqlite_so();
    assert!(
        ext.is_file(),
        "scripts/build-crsqlite.sh builds {}",
        ext.display()
    );
    let ext = ext.to_str().unwrap();
    site.run(&["--ext-file", ext, "init"]).ok();
    let out = site
        .command(&["shell", "-c", "select crsql_db_version()"])
        .env("EXT_FILE", ext)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n");
    site.run(&["--ext-file", "/nonexistent/crsqlite.so", "status"])
        .fails_with(
            "cannot load cr-sqlite: extension file /nonexistent/crsqlite.so does not exist",
        );
    let other = Site::new();
    other
        .run(&["--ext-file", "/nonexistent/crsqlite.so", "init"])
        .fails_with("cannot load cr-sqlite");
    assert!(
        !other.db_file().exists(),
        "a failed init leaves no database behind"
    );
}

#[test]
fn the_binary_carries_cr_sqlite_itself() {
    let ldd = std::process::Command::new("ldd")
        .arg(env!("CARGO_BIN_EXE_ddcp"))
        .output()
        .unwrap();
    let libraries = String::from_utf8_lossy(&ldd.stdout);
    assert!(ldd.status.success(), "ldd failed");
    assert!(!libraries.contains("crsqlite"), "{libraries}");
    assert!(!libraries.contains("libsqlite3"), "{libraries}");
    // No extension file is given: the built-in cr-sqlite answers.
    let site = Site::new();
    site.run(&["init"]).ok();
    assert_eq!(site.sql("select crsql_db_version()"), "0\n");
}

#[test]
fn help_lists_every_command() {
    let help = Site::new().run(&["--help"]).ok().to_string();
    for command in [
        "init", "clone", "addr", "id", "access", "member", "shell", "remote", "status", "log",
        "bundle",
    ] {
        assert!(help.contains(command), "{help}");
    }
}

#[test]
fn a_bad_network_file_is_one_line_naming_the_file_and_line() {
    let site = Site::with_bookmarks();
    std::fs::write(
        site.path(".ddcp/network.conf"),
        "# settings\nlisten = vtnode5:5150\nbootstrap vtnode1\n",
    )
    .unwrap();
    site.run(&["status"])
        .fails_with("network.conf:3: expected NAME = VALUE");
    std::fs::write(site.path(".ddcp/network.conf"), "colour = blue\n").unwrap();
    site.run(&["status"])
        .fails_with("unknown setting \"colour\"");
    std::fs::write(site.path(".ddcp/network.conf"), "listen = vtnode5:5150\n").unwrap();
    site.run(&["status"]).ok();
}

#[test]
fn serve_and_pull_without_init_say_what_to_do() {
    let site = Site::new();
    site.run(&["serve"]).fails_with("run `ddcp init` first");
    site.run(&["pull"]).fails_with("run `ddcp init` first");
}

#[test]
fn pull_of_an_unknown_remote_is_refused_before_any_network() {
    let site = Site::with_bookmarks();
    site.run(&["pull", "nobody"])
        .fails_with("no remote named \"nobody\"");
    site.run(&["pull"]).fails_with("no remotes to pull");
}

#[test]
fn id_is_made_by_init_kept_private_and_the_same_every_time() {
    let site = Site::new();
    let init = site.run(&["init"]);
    init.ok();
    let id = site.run(&["id"]).ok().trim().to_string();
    let parsed: ddcp::sync::MemberId = id.parse().unwrap();
    assert_eq!(id, parsed.to_string());
    assert_eq!(site.run(&["id"]).ok().trim(), id);
    let json: serde_json::Value = serde_json::from_str(site.run(&["id", "--json"]).ok()).unwrap();
    assert_eq!(json["id"], id);
    use std::os::unix::fs::PermissionsExt;
    let file = site.path(".ddcp/member");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // The secret half is in the file and nowhere the user did not ask for it.
    let text = std::fs::read_to_string(&file).unwrap();
    let secret = text
        .lines()
        .find_map(|line| line.strip_prefix("secret VLD0-SECRET:"))
        .unwrap();
    for run in [
        &init,
        &site.run(&["status"]),
        &site.run(&["status", "--json"]),
    ] {
        assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret));
    }
}

#[test]
fn members_are_added_listed_and_removed_and_access_switches() {
    let site = Site::with_bookmarks();
    assert_eq!(site.run(&["access"]).ok(), "public\n");
    let bob = ddcp::sync::MemberKeys::generate().id().to_string();
    let dave = ddcp::sync::MemberKeys::generate().id().to_string();
    // A member id is public: said back as given (only what may be a secret is held back).
    let added = site.run(&["member", "add", "bob", &bob]).ok().to_string();
    assert!(added.contains(&bob), "{added}");
    // The VLD0: prefix is optional, as for record keys.
    site.run(&["member", "add", "dave", &dave[5..]]).ok();
    // base64url has '-': an id (or a record key) without its prefix may start with one.
    let mut hyphen = ddcp::sync::MemberKeys::generate().id().to_string();
    while !hyphen[5..].starts_with('-') {
        hyphen = ddcp::sync::MemberKeys::generate().id().to_string();
    }
    site.run(&["member", "add", "eve", &hyphen[5..]]).ok();
    site.run(&["member", "rm", "eve"]).ok();
    site.run(&[
        "remote",
        "add",
        "eve",
        &format!("-UCQRnGtEpOa7lEbeY980mDK1dFVJCHAIR1vdkWom1Q:{SECRET}"),
    ])
    .ok();
    assert_eq!(
        site.run(&["member", "list"]).ok(),
        format!("bob\t{bob}\ndave\t{dave}\n")
    );
    let json: serde_json::Value =
        serde_json::from_str(site.run(&["member", "ls", "--json"]).ok()).unwrap();
    assert_eq!(json[1]["name"], "dave");
    assert_eq!(json[1]["id"], dave.as_str());
    assert!(json[1]["added_at"].as_i64().unwrap() > 0);

    assert_eq!(site.run(&["access", "private"]).ok(), "private\n");
    site.run(&["member", "rm", "bob"]).ok();
    let json: serde_json::Value =
        serde_json::from_str(site.run(&["access", "--json"]).ok()).unwrap();
    // Removing eve, going private and removing bob each moved the key epoch on.
    assert_eq!(
        json,
        serde_json::json!({"access": "private", "epoch": 3, "members": 1})
    );
    site.run(&["member", "remove", "bob"])
        .fails_with("no member named \"bob\"");
    assert_eq!(site.run(&["access", "public"]).ok(), "public\n");

    let private = Site::new();
    private.run(&["init", "--private"]).ok();
    assert_eq!(private.run(&["access"]).ok(), "private\n");
}

#[test]
fn member_add_refuses_bad_input_and_writes_nothing() {
    let site = Site::with_bookmarks();
    let bob = ddcp::sync::MemberKeys::generate();
    site.run(&["member", "add", "bob", &bob.id().to_string()])
        .ok();
    let before = snapshot(&site.db_file());
    // A secret key pasted by mistake parses as base64 too; it is never echoed.
    let pasted_secret = bob.reveal();
    let other = ddcp::sync::MemberKeys::generate().id().to_string();
    let bobs = bob.id().to_string();
    for (args, message) in [
        (
            vec!["member", "add", "carol", "VLD0:nope"],
            "invalid member id",
        ),
        (
            vec!["member", "add", "carol", "VLD1:abc"],
            "unsupported crypto kind",
        ),
        (
            vec!["member", "add", "bob", other.as_str()],
            "member \"bob\" already exists",
        ),
        (
            vec!["member", "add", "bobby", bobs.as_str()],
            "that id is member \"bob\" already",
        ),
        (
            vec!["member", "add", "a/b", other.as_str()],
            "invalid member name",
        ),
    ] {
        site.run(&args).fails_with(message);
    }
    let body = pasted_secret.strip_prefix("VLD0-SECRET:").unwrap();
    for args in [
        vec!["member", "add", "carol", pasted_secret.as_str()],
        // Arguments swapped: the secret in the name's place.
        vec!["member", "add", pasted_secret.as_str(), "carol"],
        vec![
            "bundle",
            "create",
            "x.bundle",
            "--encrypt-to",
            pasted_secret.as_str(),
        ],
    ] {
        let line = site.run(&args).fails_with("").to_string();
        assert!(!line.contains(body), "{line}");
    }
    assert_eq!(snapshot(&site.db_file()), before);
}

#[test]
fn a_bundle_sealed_for_one_member_opens_there_only() {
    let alice = Site::with_bookmarks();
    alice
        .run_with_input(&["shell"], &fixture("ins_test_schema_alice.sql"))
        .ok();
    let bob = Site::with_bookmarks();
    let carol = Site::with_bookmarks();
    let bob_id = bob.run(&["id"]).ok().trim().to_string();
    let alice_id = alice.run(&["id"]).ok().trim().to_string();
    let sealed = alice.path("for-bob.bundle");
    let sealed = sealed.to_str().unwrap();
    alice
        .run(&["bundle", "create", sealed, "--encrypt-to", &bob_id])
        .ok();
    // Nothing of the rows is readable in the file.
    let bytes = std::fs::read(sealed).unwrap();
    let url = b"https://veilid.com/";
    assert!(!bytes.windows(url.len()).any(|w| w == url));
    assert!(bytes.starts_with(b"DDCPSEAL"));

    let verify = bob.run(&["bundle", "verify", "--json", sealed]);
    let summary: serde_json::Value = serde_json::from_str(verify.ok()).unwrap();
    assert_eq!(summary["changes"], 13);
    assert_eq!(summary["sealed_by"], alice_id.as_str());
    bob.run(&["bundle", "apply", sealed]).ok();
    assert_eq!(bookmark_rows(&bob), bookmark_rows(&alice));

    let carol_db = snapshot(&carol.db_file());
    let line = carol
        .run(&["bundle", "apply", sealed])
        .fails_with(&format!(
            "the file is sealed for {bob_id}, not for this database"
        ))
        .to_string();
    assert!(line.contains("for-bob.bundle"), "{line}");
    carol
        .run(&["bundle", "verify", sealed])
        .fails_with("not for this database");
    // A flipped byte: refused whole at bob too, nothing applied.
    let mut damaged = bytes.clone();
    let at = damaged.len() / 2;
    damaged[at] ^= 1;
    let bob_db = snapshot(&bob.db_file());
    bob.run_with_input(&["bundle", "apply", "-"], &damaged)
        .fails_with("truncated or corrupted");
    assert_eq!(snapshot(&bob.db_file()), bob_db);
    assert_eq!(snapshot(&carol.db_file()), carol_db);

    // A member's name does as well as an id; an unknown one is refused.
    alice.run(&["member", "add", "bob", &bob_id]).ok();
    let by_name = alice.path("by-name.bundle");
    let by_name = by_name.to_str().unwrap();
    alice
        .run(&["bundle", "create", by_name, "--encrypt-to", "bob"])
        .ok();
    carol
        .run(&["bundle", "apply", by_name])
        .fails_with("sealed for");
    bob.run(&["bundle", "apply", by_name]).ok();
    alice
        .run(&["bundle", "create", by_name, "--encrypt-to", "dave"])
        .fails_with("neither a member id");
}

#[test]
fn usage_errors_are_one_line_that_keeps_what_helps() {
    let site = Site::new();
    for (args, wanted) in [
        (
            &["remote", "add", "x"][..],
            "the following required arguments were not provided: <KEY> (see 'ddcp remote add --help')",
        ),
        (&["stauts"], "a similar subcommand exists: 'status'"),
        (
            &["shell", "--mode", "html"],
            "possible values: list, csv, json, box (see 'ddcp shell --help')",
        ),
        (&["status", "--jsn"], "a similar argument exists: '--json'"),
    ] {
        let run = site.run(args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
        assert!(run.stderr.contains(wanted), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn json_mode_keeps_every_column_in_order() {
    let site = Site::with_bookmarks();
    let out = site
        .run(&[
            "shell",
            "--mode",
            "json",
            "-c",
            "select 1 as a, 2 as a, 3 as z, 'x' as b",
        ])
        .ok()
        .to_string();
    assert_eq!(out, "[{\"a\":1,\"a\":2,\"z\":3,\"b\":\"x\"}]\n");
}

#[test]
fn a_state_dir_given_with_another_database_is_refused() {
    let a = Site::with_bookmarks();
    let other = Site::with_bookmarks();
    let a_key = a.run(&["addr"]).ok().trim().to_string();
    let other_db = other.db_file();
    let other_db = other_db.to_str().unwrap();
    let other_before = snapshot(&other.db_file());
    // From a's folder, with the other database: a's state dir is not that database's.
    for command in [
        &["addr"][..],
        &["status"],
        &["id"],
        &["serve"],
        &["pull"],
        &["remote", "add", "x", WHOLE],
        &["member", "list"],
    ] {
        let args = [&["--db-file", other_db][..], command].concat();
        let line = a.run(&args).fails_with("belongs to record").to_string();
        assert!(
            line.contains("give the state dir made with this database"),
            "{line}"
        );
        // Keys named without their secret.
        let secret = a_key.rsplit(':').next().unwrap();
        assert!(!line.contains(secret), "{line}");
    }
    assert_eq!(snapshot(&other.db_file()), other_before);
    // With its own state dir, the other database is fine.
    let other_state = other.path(".ddcp");
    a.run(&[
        "--db-file",
        other_db,
        "--state-dir",
        other_state.to_str().unwrap(),
        "status",
    ])
    .ok();

    // A database made before databases knew their record is bound on first use.
    a.sql("delete from ddcp_meta where key = 'record_key'");
    a.run(&["status"]).ok();
    let bound = a.sql("select value from ddcp_meta where key = 'record_key'");
    assert_eq!(bound.trim(), a_key.rsplit_once(':').unwrap().0);
}

#[test]
fn clone_refuses_bad_input_before_making_anything() {
    let site = Site::new();
    for (args, message) in [
        (vec!["clone", "VLD0:nope", "bob"], "invalid record key"),
        (
            vec!["clone", WHOLE, "bob", "--name", "a/b"],
            "invalid remote name",
        ),
        (
            vec!["clone", WHOLE, "bob", "--authors", "some"],
            "--authors takes",
        ),
    ] {
        site.run(&args).fails_with(message);
        assert!(!site.path("bob").exists(), "{args:?} made bob/");
    }
    // Where a database is already: refused, nothing touched.
    let existing = Site::with_bookmarks();
    let before = snapshot(&existing.db_file());
    existing.run(&["clone", WHOLE]).fails_with("already");
    site.run(&["clone", KEY, "bob"])
        .fails_with("has no secret part");
    assert!(!site.path("bob").exists());
    assert_eq!(snapshot(&existing.db_file()), before);
    // A backup's path with a typo is a missing file, not a malformed key.
    for typo in ["./backup-with-a-typo.db", "backups/alice", "~/alice.db"] {
        site.run(&["clone", typo, "bob"]).fails_with(&format!(
            "no file at {typo}: a backup to clone from must exist"
        ));
        assert!(!site.path("bob").exists());
    }
}

/// A clone that fails once it started (here: no network to reach) leaves nothing it made: no
/// DIR, no state dir, no member identity (kept only when a private remote refused it).
#[test]
fn a_failed_clone_leaves_nothing_behind() {
    let site = Site::new();
    let failed = site.run(&["clone", WHOLE, "carol", "--attach-timeout", "1"]);
    assert_ne!(failed.code, 0);
    let last = failed.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: the Veilid node was not ready"),
        "{last}"
    );
    assert!(
        !site.path("carol").exists(),
        "the failed clone left carol/ behind"
    );
    // A DIR that was there stays, with what it held.
    std::fs::create_dir(site.path("dave")).unwrap();
    std::fs::write(site.path("dave/notes.txt"), "mine").unwrap();
    let failed = site.run(&["clone", WHOLE, "dave", "--attach-timeout", "1"]);
    assert_ne!(failed.code, 0);
    assert!(!site.path("dave/.ddcp").exists() && !site.path("dave/ddcp.db").exists());
    assert_eq!(
        std::fs::read_to_string(site.path("dave/notes.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn quiet_and_verbose_set_how_much_is_logged() {
    let site = Site::with_bookmarks();
    // Site's commands run with RUST_LOG=error,ddcp=info: the flags win over it.
    let loud = site.run(&["remote", "add", "alice", WHOLE]);
    assert!(
        loud.stderr.contains("INFO ddcp: Added remote"),
        "{}",
        loud.stderr
    );
    let quiet = site.run(&["-q", "remote", "add", "bob", &format!("{SECRET}:{KEY}")]);
    assert_eq!(quiet.stderr, "");
    quiet.ok();
    let verbose = site.run(&["-v", "status"]);
    verbose.ok();
    // And errors still show under -q, as one line.
    site.run(&["-q", "remote", "add", "alice", WHOLE])
        .fails_with("already exists");
}

#[test]
fn init_and_remote_add_speak_json_too() {
    let site = Site::new();
    let init: serde_json::Value = serde_json::from_str(site.run(&["init", "--json"]).ok()).unwrap();
    let key: ddcp::sync::RecordKey = init["key"].as_str().unwrap().parse().unwrap();
    assert!(key.secret().is_some());
    assert_eq!(init["id"], site.run(&["id"]).ok().trim());
    assert_eq!(init["access"], "public");
    let added: serde_json::Value = serde_json::from_str(
        site.run(&[
            "remote",
            "add",
            "alice",
            WHOLE,
            "--json",
            "--authors",
            "direct",
        ])
        .ok(),
    )
    .unwrap();
    assert_eq!(added["name"], "alice");
    assert_eq!(added["key"], format!("VLD0:{KEY}"));
    assert_eq!(added["authors"], "direct");
    assert_eq!(
        site.run(&["remote", "remove", "alice"]).ok(),
        "removed remote alice\n"
    );
}

#[test]
fn log_counts_what_is_held_by_author_and_each_remote() {
    let alice = Site::with_bookmarks();
    alice
        .run_with_input(&["shell"], &fixture("ins_test_schema_alice.sql"))
        .ok();
    let bob = Site::with_bookmarks();
    let bundle = alice.path("all.bundle");
    let bundle = bundle.to_str().unwrap();
    alice.run(&["bundle", "create", bundle]).ok();
    bob.run(&["bundle", "apply", bundle]).ok();
    bob.sql("insert into bookmarks (id, url) values ('b1', 'https://b/1')");
    bob.run(&["remote", "add", "alice", WHOLE]).ok();
    let log: serde_json::Value = serde_json::from_str(bob.run(&["log", "--json"]).ok()).unwrap();
    let site = |site: &Site| -> String {
        serde_json::from_str::<serde_json::Value>(site.run(&["status", "--json"]).ok()).unwrap()
            ["site_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let authors = log["authors"].as_array().unwrap();
    // alice's 13 changes came by file, not from a remote: relayed, as far as bob knows.
    assert_eq!(authors[0]["site_id"], site(&alice));
    assert_eq!(authors[0]["changes"], 13);
    assert_eq!(authors[0]["who"], serde_json::Value::Null);
    assert_eq!(authors[1]["site_id"], site(&bob));
    assert_eq!(authors[1]["who"], "this database");
    assert_eq!(log["remotes"][0]["name"], "alice");
    assert_eq!(log["remotes"][0]["site_id"], serde_json::Value::Null);
    let text = bob.run(&["log"]).ok().to_string();
    assert!(
        // The bundle merged as one version (1), as one local transaction is.
        text.contains("(this database): 3 changes, at db_version 2..=2"),
        "{text}"
    );
    assert!(text.contains("never pulled"), "{text}");
    bob.run(&["log", "--remote", "carol"])
        .fails_with("no remote named \"carol\"");
}

#[test]
fn a_bundle_makes_a_new_peer_without_typing_its_schema() {
    let alice = Site::with_bookmarks();
    alice
        .run_with_input(&["shell"], &fixture("ins_test_schema_alice.sql"))
        .ok();
    let bundle = alice.path("all.bundle");
    let bundle = bundle.to_str().unwrap();
    alice.run(&["bundle", "create", bundle]).ok();
    let fingerprint = |site: &Site| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(site.run(&["status", "--json"]).ok()).unwrap()
            ["schema_fingerprint"]
            .clone()
    };

    // The air-gapped clone, in two steps: the schema, then the rows.
    let bob = Site::new();
    bob.run(&["init", "--schema-from", bundle]).ok();
    assert_eq!(fingerprint(&bob), fingerprint(&alice));
    assert_eq!(bob.sql("select count(*) from bookmarks"), "0\n");
    bob.run(&["bundle", "apply", bundle]).ok();
    assert_eq!(bookmark_rows(&bob), bookmark_rows(&alice));

    // Or in one: a database with no CRR tables yet takes the bundle's.
    let carol = Site::new();
    carol.run(&["init"]).ok();
    carol
        .run(&["bundle", "apply", bundle])
        .fails_with("this database has no CRR tables yet: `ddcp bundle apply --create-tables");
    carol
        .run(&["bundle", "apply", "--create-tables", bundle])
        .ok();
    assert_eq!(bookmark_rows(&carol), bookmark_rows(&alice));
    assert_eq!(fingerprint(&carol), fingerprint(&alice));

    // A bundle that is not one makes nothing.
    let dave = Site::new();
    std::fs::write(dave.path("junk.bundle"), b"not a bundle").unwrap();
    dave.run(&["init", "--schema-from", "junk.bundle"])
        .fails_with("not a ddcp bundle");
    assert!(!dave.db_file().exists());
    assert!(!dave.path(".ddcp").exists());
}

/// Filters on the command line: refused with one line when they name what is not there or
/// would write, shown by `member list` and `share`; a bundle for a member holds only what that
/// member may read (within what the database shares), a bundle with filter flags only what
/// passes them.
#[test]
fn filters_are_checked_shown_and_shape_bundles() {
    let alice = Site::with_bookmarks();
    alice
        .run_with_input(&["shell"], &fixture("ins_test_schema_alice.sql"))
        .ok();
    let bob = Site::with_bookmarks();
    let bob_id = bob.run(&["id"]).ok().trim().to_string();
    let before = snapshot(&alice.db_file());
    for (flags, refusal) in [
        (
            vec!["--where", "owner = 'bob'"],
            "the --where expression does not work on table bookmarks: no such column: owner",
        ),
        (
            vec![
                "--tables",
                "bookmarks",
                "--where",
                "1); delete from bookmarks; select (1",
            ],
            "--where: a row filter is one SQL expression: a ')' closes a '(' it does not open",
        ),
        (vec!["--tables", "nope"], "no CRR table named \"nope\" here"),
        (
            vec!["--exclude-columns", "bookmarks.id"],
            "bookmarks.id is in its table's primary key",
        ),
        (vec!["--exclude-columns", "title"], "TABLE.COLUMN"),
    ] {
        let mut args = vec!["member", "add", "bob", &bob_id];
        args.extend(flags);
        alice.run(&args).fails_with(refusal);
    }
    assert_eq!(snapshot(&alice.db_file()), before, "a refused filter wrote");

    alice
        .run(&[
            "member",
            "add",
            "bob",
            &bob_id,
            "--tables",
            "bookmarks",
            "--where",
            "title like 'V%'",
        ])
        .ok();
    let listed = alice.run(&["member", "list"]).ok().to_string();
    assert!(
        listed.ends_with("\treads: tables=bookmarks where=(title like 'V%')\n"),
        "{listed}"
    );
    alice
        .run(&["share", "--exclude-columns", "bookmarks.created_at"])
        .ok();
    let shared: serde_json::Value =
        serde_json::from_str(alice.run(&["share", "--json"]).ok()).unwrap();
    assert_eq!(
        shared["shares"],
        serde_json::json!({"exclude_columns": ["bookmarks.created_at"]})
    );

    // bob's bundle: the one bookmark whose title starts with V, without created_at, no tags.
    let for_bob = alice.path("for-bob.bundle");
    let for_bob = for_bob.to_str().unwrap();
    alice
        .run(&["bundle", "create", for_bob, "--for", "bob"])
        .ok();
    bob.run(&["bundle", "apply", for_bob]).ok();
    assert_eq!(
        bob.sql("select id, url, title, created_at from bookmarks; select count(*) from tags"),
        "01HF7Z3K8Q1B2C3D4E5F6G7H8K|https://veilid.com/|Veilid; a p2p framework|0\n0\n"
    );
    alice
        .run(&["bundle", "create", for_bob, "--for", "bob", "--since", "1"])
        .fails_with("made from the start (--since 0)");

    // Filter flags alone: only what passes them (the shared filter is for readers).
    let tags = alice.path("tags.bundle");
    let tags = tags.to_str().unwrap();
    alice
        .run(&["bundle", "create", tags, "--tables", "tags"])
        .ok();
    let summary: serde_json::Value =
        serde_json::from_str(alice.run(&["bundle", "verify", "--json", tags]).ok()).unwrap();
    assert_eq!(summary["changes"], 4);
    // What its changes touch, apart from the schema it carries.
    assert_eq!(
        summary["changed_tables"],
        serde_json::json!([{"table": "tags", "changes": 4}])
    );
    let text = alice.run(&["bundle", "verify", tags]).ok().to_string();
    assert!(
        text.contains(") to tags (4); schema of tables bookmarks, tags"),
        "{text}"
    );
    alice
        .run(&[
            "bundle",
            "create",
            tags,
            "--tables",
            "tags",
            "--where",
            "tag = 'none'",
        ])
        .fails_with("nothing passes the filter");
}

/// `ddcp watch` with no serve running: from `--since 0` everything the database holds, then
/// what comes (a local commit, a bundle), each saying where it came from; an unknown table is
/// refused with one line.
#[test]
fn watch_alone_streams_what_the_database_gets() {
    use std::io::BufRead;
    let alice = Site::with_bookmarks();
    alice
        .run_with_input(&["shell"], &fixture("ins_test_schema_alice.sql"))
        .ok();
    let bundle = alice.path("alice.bundle");
    let bundle = bundle.to_str().unwrap();
    alice.run(&["bundle", "create", bundle]).ok();
    let alice_site: serde_json::Value =
        serde_json::from_str(alice.run(&["status", "--json"]).ok()).unwrap();
    let bob = Site::with_bookmarks();
    // A version the database has not reached is refused, not waited for in silence; a
    // negative one is told as out of range.
    bob.run(&["watch", "--since", "99"])
        .fails_with("--since 99 is beyond this database's db_version");
    bob.run(&["watch", "--since", "-1"])
        .fails_with("invalid value '-1' for '--since <DB_VERSION>'");
    bob.run(&["watch", "--tables", "nope"])
        .fails_with("no CRR table named \"nope\" here");
    bob.sql("insert into tags values ('b1', 'mine')");
    let mut watch = bob
        .command(&["watch", "--since", "0", "--json", "--tables", "tags"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(watch.stdout.take().unwrap()).lines();
    let mut next =
        || -> serde_json::Value { serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap() };
    let mine = next();
    assert_eq!(
        mine["key"],
        serde_json::json!({"bookmark_id": "b1", "tag": "mine"})
    );
    assert_eq!(
        (mine["source"].as_str(), mine["column"].is_null()),
        (Some("local"), true)
    );
    bob.run(&["bundle", "apply", bundle]).ok();
    let from_bundle: Vec<serde_json::Value> = (0..4).map(|_| next()).collect();
    let source = format!("bundle:{}", alice_site["site_id"].as_str().unwrap());
    for change in &from_bundle {
        assert_eq!(change["table"], "tags", "{change}");
        assert_eq!(change["source"], source.as_str(), "{change}");
        assert!(change["db_version"].as_i64() > mine["db_version"].as_i64());
    }
    let _ = watch.kill();
    let _ = watch.wait();
}

/// `ddcp backup` and `ddcp restore` without a network: a private copy, with the keys only when
/// asked; a restore refuses to overwrite a database, to run without keys, or (unable to check
/// that no other copy serves) without --force; forced, it brings back the same database.
#[test]
fn backup_and_restore_bring_back_the_same_database() {
    use std::os::unix::fs::PermissionsExt;
    let alice = Site::with_bookmarks();
    alice
        .run_with_input(&["shell"], &fixture("ins_test_schema_alice.sql"))
        .ok();
    let plain = alice.path("plain.db");
    let plain = plain.to_str().unwrap();
    let keyed = alice.path("keyed.db");
    let keyed = keyed.to_str().unwrap();
    let made = alice.run(&["backup", plain]);
    assert!(made.ok().starts_with("backed up site "), "{}", made.stdout);
    // An existing backup is replaced only when asked; a missing folder is FILE's, not a
    // partial file's the user never typed.
    let first = snapshot(std::path::Path::new(plain));
    alice
        .run(&["backup", plain])
        .fails_with("exists: pass --force to replace it");
    assert_eq!(snapshot(std::path::Path::new(plain)), first);
    alice.run(&["backup", plain, "--force"]).ok();
    let nowhere = alice.path("no/such/dir/x.db");
    let line = alice
        .run(&["backup", nowhere.to_str().unwrap()])
        .fails_with("its folder does not exist")
        .to_string();
    assert!(!line.contains(".partial"), "{line}");
    let json: serde_json::Value = serde_json::from_str(
        alice
            .run(&["backup", keyed, "--with-identity", "--json"])
            .ok(),
    )
    .unwrap();
    assert_eq!(json["with_identity"], true);
    let mode = std::fs::metadata(keyed).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let owner = std::fs::read_to_string(alice.path(".ddcp/record")).unwrap();
    let owner_secret = owner
        .lines()
        .find_map(|l| l.strip_prefix("owner "))
        .unwrap();
    let owner_secret = owner_secret.rsplit(':').next().unwrap().as_bytes();
    let holds = |path: &str| {
        let bytes = std::fs::read(path).unwrap();
        bytes.windows(owner_secret.len()).any(|w| w == owner_secret)
    };
    assert!(
        !holds(plain),
        "the owner key is in a backup made without --with-identity"
    );
    assert!(holds(keyed));

    // Over an existing database: refused.
    alice
        .run(&["restore", keyed, "--force"])
        .fails_with("a database is at");
    // A machine that lost everything, and a backup without keys: refused.
    let lost = Site::new();
    lost.run(&["restore", plain, "--force"])
        .fails_with("holds no keys (made without --with-identity)");
    assert!(!lost.db_file().exists());
    // Without --force, and no network to check on: refused, nothing left behind.
    // (The Veilid node, with no network at all here, logs errors of its own first.)
    let unchecked = lost.run(&["restore", keyed, "--attach-timeout", "2"]);
    assert_ne!(unchecked.code, 0);
    let last = unchecked.stderr.lines().last().unwrap();
    assert!(
        last.starts_with("error: cannot check that no other copy of this database serves"),
        "{last}"
    );
    assert!(!lost.db_file().exists() && !lost.path(".ddcp/record").exists());
    let restored = lost.run(&["restore", keyed, "--force"]);
    assert!(
        restored.ok().starts_with("restored site "),
        "{}",
        restored.stdout
    );
    // What --force skipped, and what the user now has to make sure of, said every time.
    assert!(
        restored
            .stderr
            .contains("warning: --force: whether another copy of record VLD0:")
            && restored.stderr.contains("never serves or pulls again"),
        "{}",
        restored.stderr
    );
    // The keys the backup carried went to the state dir (0600), and left no trace in the
    // database file, free pages included; nor in a new peer cloned from that backup.
    let lost_db = lost.db_file();
    assert!(
        !holds(lost_db.to_str().unwrap()),
        "the restored database file holds the owner key"
    );
    let fresh = Site::new();
    fresh.run(&["clone", keyed, "peer"]).ok();
    let peer_db = fresh.path("peer/ddcp.db");
    assert!(
        !holds(peer_db.to_str().unwrap()),
        "a clone of the backup holds its owner key"
    );
    assert_eq!(lost.run(&["addr"]).ok(), alice.run(&["addr"]).ok());
    assert_eq!(lost.run(&["id"]).ok(), alice.run(&["id"]).ok());
    let status = |site: &Site| -> serde_json::Value {
        serde_json::from_str(site.run(&["status", "--json"]).ok()).unwrap()
    };
    assert_eq!(status(&lost)["site_id"], status(&alice)["site_id"]);
    assert_eq!(bookmark_rows(&lost), bookmark_rows(&alice));
}

/// A backup brings back its members of the time; a restore keeps out whoever was removed since
/// (from the state dir's record of removals) and moves the key epoch past every one used. A
/// readmitted member stays in. On a machine without that record, a forced restore (which reads
/// nothing from the network) is refused unless told to keep the backup's members.
#[test]
fn a_restore_keeps_out_members_removed_since_the_backup() {
    use ddcp::sync::MemberKeys;
    let alice = Site::with_bookmarks();
    alice.run(&["access", "private"]).ok();
    let (bob, dave) = (MemberKeys::generate().id(), MemberKeys::generate().id());
    alice.run(&["member", "add", "bob", &bob.to_string()]).ok();
    alice
        .run(&["member", "add", "dave", &dave.to_string()])
        .ok();
    let plain = alice.path("plain.db");
    let plain = plain.to_str().unwrap();
    let keyed = alice.path("keyed.db");
    let keyed = keyed.to_str().unwrap();
    alice.run(&["backup", plain]).ok();
    alice.run(&["backup", keyed, "--with-identity"]).ok();
    alice.run(&["member", "remove", "bob"]).ok();
    let members = |site: &Site| site.run(&["member", "list"]).ok().to_string();
    let epoch = |site: &Site| -> u64 {
        let json: serde_json::Value =
            serde_json::from_str(site.run(&["access", "--json"]).ok()).unwrap();
        json["epoch"].as_u64().unwrap()
    };
    assert_eq!(epoch(&alice), 2);
    let lose = |site: &Site| {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", site.db_file().display()));
        }
    };

    lose(&alice);
    let restored = alice.run(&["restore", plain, "--force"]);
    let said = restored.ok().to_string();
    assert!(
        said.contains("kept out: bob (removed since the backup, or not in the status it last published); key epoch 3"),
        "{said}"
    );
    assert_eq!(members(&alice), format!("dave\t{dave}\n"));
    assert_eq!(epoch(&alice), 3);

    // Added back, bob is not kept out by the next restore; the epoch still moves on.
    alice.run(&["member", "add", "bob", &bob.to_string()]).ok();
    lose(&alice);
    let said = alice.run(&["restore", plain, "--force"]).ok().to_string();
    assert!(!said.contains("kept out"), "{said}");
    assert_eq!(members(&alice), format!("bob\t{bob}\ndave\t{dave}\n"));
    assert_eq!(epoch(&alice), 4);

    // A record of removals begun after the backup (made by an earlier ddcp, say) does not
    // say who was removed before it began: forced, the restore is refused.
    std::fs::remove_file(alice.path(".ddcp/removals")).unwrap();
    alice.run(&["member", "remove", "dave"]).ok();
    lose(&alice);
    alice
        .run(&["restore", plain, "--force"])
        .fails_with("keeps no record of removals from that far back");
    assert!(!alice.db_file().exists());
    alice
        .run(&["restore", plain, "--force", "--keep-members"])
        .ok();
    // (dave, written down, is kept out all the same.)
    assert_eq!(members(&alice), format!("bob\t{bob}\n"));

    // A machine that lost the state dir too: forced, nothing says who was removed.
    let lost = Site::new();
    lost.run(&["restore", keyed, "--force"])
        .fails_with("cannot tell which members were removed since this backup");
    assert!(!lost.db_file().exists() && !lost.path(".ddcp/record").exists());
    lost.run(&["restore", keyed, "--force", "--keep-members"])
        .ok();
    assert_eq!(members(&lost), format!("bob\t{bob}\ndave\t{dave}\n"));
    assert_eq!(epoch(&lost), 2);
}

/// `ddcp clone BACKUP DIR`: a new peer from a copy: the same rows, written by the same authors,
/// under a new site id and a record of its own; its own writes are its new site's.
#[test]
fn clone_of_a_backup_is_a_new_peer() {
    let alice = Site::with_bookmarks();
    alice
        .run_with_input(&["shell"], &fixture("ins_test_schema_alice.sql"))
        .ok();
    let backup = alice.path("alice.db.bak");
    let backup = backup.to_str().unwrap();
    alice.run(&["backup", backup]).ok();
    let status = |site: &Site, dir: Option<&str>| -> serde_json::Value {
        let mut args = vec!["status", "--json"];
        let db_file;
        let state_dir;
        if let Some(dir) = dir {
            db_file = format!("{dir}/ddcp.db");
            state_dir = format!("{dir}/.ddcp");
            args = vec![
                "--db-file",
                &db_file,
                "--state-dir",
                &state_dir,
                "status",
                "--json",
            ];
        }
        serde_json::from_str(site.run(&args).ok()).unwrap()
    };
    let bob = Site::new();
    let cloned: serde_json::Value =
        serde_json::from_str(bob.run(&["clone", backup, "copy", "--json"]).ok()).unwrap();
    let alice_site = status(&alice, None)["site_id"].clone();
    assert_eq!(cloned["from_site"], alice_site);
    assert_ne!(cloned["site_id"], alice_site);
    let copy = status(&bob, Some("copy"));
    assert_eq!(copy["site_id"], cloned["site_id"]);
    assert_ne!(
        cloned["key"].as_str(),
        Some(alice.run(&["addr"]).ok().trim())
    );
    let in_copy = |sql: &str| {
        bob.run(&[
            "--db-file",
            "copy/ddcp.db",
            "--state-dir",
            "copy/.ddcp",
            "shell",
            "-c",
            sql,
        ])
        .ok()
        .to_string()
    };
    assert_eq!(
        in_copy(
            "select id, url, title, created_at from bookmarks order by id; select * from tags order by 1, 2"
        ),
        bookmark_rows(&alice)
    );
    in_copy("insert into tags values ('x', 'new')");
    let authors = in_copy(
        "select lower(hex(site_id)), count(*) from crsql_changes group by site_id order by 2",
    );
    assert_eq!(
        authors,
        format!(
            "{}|1\n{}|13\n",
            cloned["site_id"].as_str().unwrap(),
            alice_site.as_str().unwrap()
        )
    );
    // Made already: refused, nothing changed.
    bob.run(&["clone", backup, "copy"]).fails_with("already");
}

/// Completions and the man page come from the same definitions the commands parse with.
#[test]
fn completions_and_the_man_page_name_every_command() {
    let site = Site::new();
    let bash = site.run(&["completions", "bash"]).ok().to_string();
    assert!(bash.contains("complete -F"), "{bash}");
    let man = site.run(&["man"]).ok().to_string();
    assert!(man.starts_with(".ie") || man.contains(".TH ddcp"), "{man}");
    for command in [
        "init", "clone", "share", "watch", "backup", "restore", "member",
    ] {
        assert!(bash.contains(command), "bash completion lacks {command}");
        assert!(man.contains(command), "the man page lacks {command}");
    }
    for shell in ["zsh", "fish"] {
        assert!(!site.run(&["completions", shell]).ok().is_empty());
    }
    site.run(&["completions", "tcsh"])
        .fails_with("invalid value 'tcsh'");
    // ddcp(1) refers to a page per command: --dir writes every one it refers to, each with
    // its command's options.
    std::fs::create_dir(site.path("man1")).unwrap();
    let written = site.run(&["man", "--dir", "man1"]).ok().to_string();
    let mut references = 0;
    for after in man.split("ddcp\\-").skip(1) {
        // A reference is `ddcp\-remote\-add(1)` in roff.
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '\\' || *c == '-')
            .collect();
        if !after[name.len()..].starts_with("(1)") {
            continue;
        }
        let page = name.replace("\\-", "-");
        let file = site.path(&format!("man1/ddcp-{page}.1"));
        assert!(
            file.is_file(),
            "ddcp(1) refers to ddcp-{page}(1), which was not written"
        );
        references += 1;
    }
    assert!(references > 10, "{references} references in ddcp(1)");
    let read = |page: &str| std::fs::read_to_string(site.path(&format!("man1/{page}"))).unwrap();
    assert!(read("ddcp-bundle-create.1").contains("encrypt\\-to"));
    assert!(read("ddcp-watch.1").contains("since"));
    assert!(read("ddcp-backup.1").contains("with\\-identity"));
    assert!(written.lines().count() > 25, "{written}");
    site.run(&["man", "--dir", "nowhere"])
        .fails_with("no folder at nowhere");
}

/// Runs ddcp with `args` in `site` for `bound` at most (then kills it: serve, watch and the
/// network commands run until stopped or until their network gives up); all it printed.
fn run_bounded(site: &Site, args: &[String], bound: std::time::Duration) -> String {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut child = site
        .command(&args)
        .env("RUST_LOG", "error,ddcp=debug")
        .stdin(std::process::Stdio::null())
        .stdout(out.reopen().unwrap())
        .stderr(out.reopen().unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + bound;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    String::from_utf8_lossy(&snapshot(out.path())).into_owned()
}

/// Every command a user runs, as its words ("remote", "add"), with its definition.
fn leaf_commands(
    command: &clap::Command,
    path: &[String],
    found: &mut Vec<(Vec<String>, clap::Command)>,
) {
    for sub in command
        .get_subcommands()
        .filter(|sub| sub.get_name() != "help")
    {
        let mut words = path.to_vec();
        words.push(sub.get_name().to_string());
        if sub.has_subcommands() {
            leaf_commands(sub, &words, found);
        } else {
            found.push((words, sub.clone()));
        }
    }
}

/// A record key typed where it does not belong (names and keys swapped, a key pasted as a
/// table, a path or an option's value) is never repeated: not in an error, a log line or
/// anything printed. Every command, every argument that takes a value, both forms of a key.
#[test]
fn a_whole_key_in_any_position_of_any_command_is_never_echoed() {
    use clap::CommandFactory;
    let site = Site::with_bookmarks();
    let mut root = ddcp::cli::Cli::command();
    root.build();
    let mut commands = Vec::new();
    leaf_commands(&root, &[], &mut commands);
    assert!(commands.len() > 25, "{}", commands.len());
    // `ddcp testnet` serves a network until stopped whatever its arguments: nothing it is
    // given comes back out but its own bootstrap record.
    commands.retain(|(words, _)| words[0] != "testnet");
    let mut argvs: Vec<Vec<String>> = Vec::new();
    for key in [WHOLE.to_string(), format!("VLD0:{WHOLE}")] {
        for (words, command) in &commands {
            let positionals: Vec<&clap::Arg> = command.get_positionals().collect();
            // Each positional in turn holds the key, the others a plain value.
            for at in 0..positionals.len() {
                let mut argv = words.clone();
                argv.extend((0..positionals.len()).map(|i| {
                    if i == at {
                        key.clone()
                    } else {
                        "x".to_string()
                    }
                }));
                argvs.push(argv);
            }
            // Each option that takes a value holds it, required positionals a plain value.
            let required: Vec<String> = positionals
                .iter()
                .filter(|arg| arg.is_required_set())
                .map(|_| "x".to_string())
                .collect();
            for option in command.get_opts() {
                let Some(long) = option.get_long() else {
                    continue;
                };
                let mut argv = words.clone();
                argv.extend([format!("--{long}"), key.clone()]);
                argv.extend(required.iter().cloned());
                argvs.push(argv);
            }
        }
    }
    // A key inside a longer argument: a list, a path, SQL text, a name it starts.
    for form in [
        vec!["share", "--tables", "bookmarks,{key}"],
        vec![
            "remote",
            "add",
            "zz",
            "{key}",
            "--tables",
            "bookmarks,{secret}",
        ],
        vec!["shell", "-c", "select * from \"{key}\""],
        vec!["shell", "-c", "select '{key}' from nowhere"],
        vec!["shell", "-c", ".import /tmp/x-{secret}.csv bookmarks"],
        vec!["shell", "-c", ".read /tmp/{secret}"],
        vec!["member", "add", "n{secret}", "VLD0:{public}"],
        vec!["clone", "/tmp/{key}.db", "x"],
        vec!["watch", "--tables", "{key}"],
    ] {
        argvs.push(
            form.iter()
                .map(|word| {
                    word.replace("{key}", WHOLE)
                        .replace("{secret}", SECRET)
                        .replace("{public}", KEY)
                })
                .collect(),
        );
    }
    let runs = argvs.len();
    // Several at once: the runs that serve or reach for a network wait out their bound.
    let echoed: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = argvs
            .chunks(runs.div_ceil(6))
            .map(|chunk| {
                let site = &site;
                scope.spawn(move || {
                    chunk
                        .iter()
                        .filter_map(|argv| {
                            let printed =
                                run_bounded(site, argv, std::time::Duration::from_secs(6));
                            printed
                                .contains(SECRET)
                                .then(|| format!("`ddcp {}`:\n{printed}", argv.join(" ")))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().unwrap())
            .collect()
    });
    assert!(
        echoed.is_empty(),
        "the key's secret repeated by:\n{}",
        echoed.join("\n")
    );
    assert!(runs > 100, "{runs} runs");
}

/// A one-shot command says what it did once, on stdout: no info line on stderr repeats it
/// unless asked for (-v, RUST_LOG). `ddcp serve` keeps its info lines: they are its news.
#[test]
fn a_one_shot_command_says_what_it_did_once() {
    let site = Site::new();
    let quiet = |args: &[&str]| {
        let mut command = site.command(args);
        command.env_remove("RUST_LOG");
        common::run_command(command, b"")
    };
    let init = quiet(&["init"]);
    assert!(init.ok().starts_with("VLD0:"), "{}", init.stdout);
    assert_eq!(init.stderr, "", "init said it twice");
    let added = quiet(&["remote", "add", "alice", WHOLE]);
    assert!(added.ok().contains("alice"), "{}", added.stdout);
    assert_eq!(added.stderr, "");
    let mut verbose = site.command(&["-v", "remote", "remove", "alice"]);
    verbose.env_remove("RUST_LOG");
    let removed = common::run_command(verbose, b"");
    assert!(
        removed.stderr.contains("INFO") || removed.stderr.contains("DEBUG"),
        "{}",
        removed.stderr
    );
}

/// Where the answer is one step away, the error says the step.
#[test]
fn errors_say_the_step_when_it_is_one_away() {
    let site = Site::with_bookmarks();
    site.sql("create table plain (id integer primary key, x text)");
    let not_crr = "\"plain\" is a table here but not a CRR: make it one with `ddcp shell -c \"select crsql_as_crr('plain')\"`";
    site.run(&["share", "--tables", "plain"])
        .fails_with(not_crr);
    site.run(&["watch", "--tables", "plain"])
        .fails_with(not_crr);
    site.run(&["share", "--where", "title = 'x'"])
        .fails_with("no such column: title (it works on bookmarks: give --tables bookmarks)");
    site.run(&["shell", "select", "1"])
        .fails_with("give the SQL as one quoted argument: ddcp shell \"select ...\"");
    site.run(&["remote", "add", "bob", &WHOLE[..60]])
        .fails_with("copy the whole key, as `ddcp init` or `ddcp addr` printed it");
    let bundle = site.path("all.bundle");
    let bundle = bundle.to_str().unwrap();
    site.sql("insert into bookmarks (id, url) values ('b1', 'https://b/1')");
    site.run(&["bundle", "create", bundle]).ok();
    let fresh = Site::new();
    fresh.run(&["init"]).ok();
    fresh
        .run(&["bundle", "apply", bundle])
        .fails_with("this database has no CRR tables yet: `ddcp bundle apply --create-tables");
}

/// Mirrors (`--into`) are another database's rows: `status` lists them apart from this
/// database's own CRRs, and `.dump` leaves them out (or, named, dumps a plain table), so no
/// peer rebuilt from a dump serves them as its own.
#[test]
fn mirrors_stay_apart_in_status_and_dump() {
    let site = Site::with_bookmarks();
    site.run(&["remote", "add", "alice", WHOLE, "--into", "alice_"])
        .ok();
    let status: serde_json::Value =
        serde_json::from_str(site.run(&["status", "--json"]).ok()).unwrap();
    let own = status["crr_tables"].to_string();
    assert!(
        own.contains("\"bookmarks\"") && !own.contains("alice_"),
        "{own}"
    );
    assert!(
        status["mirror_tables"]
            .to_string()
            .contains("alice_bookmarks"),
        "{status}"
    );
    let text = site.run(&["status"]).ok().to_string();
    assert!(text.contains("mirrors:     alice_bookmarks"), "{text}");
    let dump = site.sql(".dump");
    // Named once, in the comment that says it was left out.
    assert_eq!(dump.matches("alice_bookmarks").count(), 1, "{dump}");
    assert!(dump.contains("-- Left out: alice_bookmarks"), "{dump}");
    assert!(dump.contains("crsql_as_crr('bookmarks')"), "{dump}");
    // Filters name this database's own tables: a mirror is not one, and a --where is checked
    // on its own tables only.
    site.run(&["share", "--tables", "alice_bookmarks"])
        .fails_with("\"alice_bookmarks\" is a mirror of another database's table (--into)");
    site.run(&["share", "--where", "title = 'x'"])
        .fails_with("no such column: title (it works on bookmarks: give --tables bookmarks)");
    let one = site.sql(".dump alice_bookmarks");
    assert!(
        one.contains("alice_bookmarks") && !one.contains("crsql_as_crr"),
        "{one}"
    );
    // A database rebuilt from the dump holds its own tables only.
    let rebuilt = Site::new();
    rebuilt.run(&["init"]).ok();
    rebuilt.run_with_input(&["shell"], dump.as_bytes()).ok();
    let rebuilt_status: serde_json::Value =
        serde_json::from_str(rebuilt.run(&["status", "--json"]).ok()).unwrap();
    assert_eq!(rebuilt_status["crr_tables"], status["crr_tables"]);
}

/// A listen address Veilid cannot use is one line at once: Veilid itself would retry it every
/// second, in error lines of its own, until the attach timed out two minutes later.
#[test]
fn a_listen_address_that_cannot_be_used_is_one_line_at_once() {
    let site = Site::with_bookmarks();
    site.run(&["remote", "add", "alice", WHOLE]).ok();
    for command in [vec!["serve"], vec!["pull"], vec!["clone", WHOLE, "x"]] {
        let mut args = command.clone();
        args.extend(["--listen", "nonsense"]);
        site.run(&args)
            .fails_with("the listen address \"nonsense\" (--listen, VEILID_LISTEN or network.conf) is not a HOST:PORT");
    }
}

/// An argument that is not UTF-8 is one line like any other bad input, never a panic.
#[test]
fn an_argument_that_is_not_utf8_is_one_line() {
    use std::os::unix::ffi::OsStrExt;
    let site = Site::with_bookmarks();
    let mut command = site.command(&["status", "--db-file"]);
    command.arg(std::ffi::OsStr::from_bytes(b"\xff\xfe.db"));
    common::run_command(command, b"").fails_with("no database at");
    let mut command = site.command(&[]);
    command.arg(std::ffi::OsStr::from_bytes(b"\xff"));
    let run = common::run_command(command, b"");
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.starts_with("error: unrecognized subcommand"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked") && !run.stderr.contains("internal error"));
}

/// `ddcp migrate` (issue 23, item 2): additive statements applied all or nothing, with the new
/// table made a CRR; a destructive one refuses the whole file in one line; --dry-run changes
/// nothing.
#[test]
fn migrate_applies_additive_changes_whole_and_refuses_destructive_ones() {
    let site = Site::with_bookmarks();
    let migration = site.path("v2.sql");
    std::fs::write(
        &migration,
        "-- v2
         alter table bookmarks add column note text;
         create table lists (id text primary key not null, name text);
         create index lists_by_name on lists (name);",
    )
    .unwrap();
    let before = snapshot(&site.db_file());
    let dry = site
        .run(&["migrate", migration.to_str().unwrap(), "--dry-run"])
        .ok()
        .to_string();
    assert!(dry.contains("nothing was applied"), "{dry}");
    assert_eq!(snapshot(&site.db_file()), before);
    let done = site
        .run(&["migrate", migration.to_str().unwrap()])
        .ok()
        .to_string();
    assert_eq!(
        done,
        "added column bookmarks.note\ncreated table lists (a CRR)\ncreated index lists_by_name\n"
    );
    let status: serde_json::Value =
        serde_json::from_str(site.run(&["status", "--json"]).ok()).unwrap();
    assert_eq!(
        status["crr_tables"],
        serde_json::json!(["bookmarks", "lists", "tags"])
    );
    // Recorded in the schema history peers follow, once.
    assert_eq!(status["migrations"], 1);
    let again = site
        .run(&["migrate", migration.to_str().unwrap()])
        .ok()
        .to_string();
    assert!(
        again.contains("already here: added column bookmarks.note"),
        "{again}"
    );
    let status: serde_json::Value =
        serde_json::from_str(site.run(&["status", "--json"]).ok()).unwrap();
    assert_eq!(status["migrations"], 1);
    let destructive = site.path("v3.sql");
    std::fs::write(
        &destructive,
        "alter table lists add column color text; alter table bookmarks drop column note;",
    )
    .unwrap();
    let before = snapshot(&site.db_file());
    site.run(&["migrate", destructive.to_str().unwrap()])
        .fails_with(
            "statement 2 of the migration: dropping a column: peers still on the old version",
        );
    assert_eq!(snapshot(&site.db_file()), before);
}

/// `ddcp migrate --from` and `ddcp remote add/set --schema` (issue 23, item 2): a remote whose
/// history this database never saw has nothing to apply; an unknown remote, a remote pulled
/// into mirrors set to follow, and `migrate` given both a file and a remote each get one line.
#[test]
fn migrate_from_and_schema_follow_say_what_they_do() {
    let site = Site::with_bookmarks();
    site.run(&["remote", "add", "alice", WHOLE, "--schema", "follow"])
        .ok();
    let listed = site.run(&["remote", "list"]).ok().to_string();
    assert!(
        listed.contains("alice\t") && listed.contains("schema=follow"),
        "{listed}"
    );
    let json: serde_json::Value =
        serde_json::from_str(site.run(&["remote", "list", "--json"]).ok()).unwrap();
    assert_eq!(json[0]["schema"], "follow");
    let manual = site
        .run(&["remote", "set", "alice", "--schema", "manual"])
        .ok()
        .to_string();
    assert!(manual.contains("`ddcp migrate --from alice`"), "{manual}");
    let json: serde_json::Value =
        serde_json::from_str(site.run(&["remote", "list", "--json"]).ok()).unwrap();
    assert_eq!(json[0]["schema"], "manual");
    let nothing = site.run(&["migrate", "--from", "alice"]).ok().to_string();
    assert!(
        nothing.contains("has every migration alice published"),
        "{nothing}"
    );
    site.run(&["migrate", "--from", "bob"])
        .fails_with("no remote named");
    site.run(&["migrate", "v2.sql", "--from", "alice"])
        .fails_with("cannot be used with");
    site.run(&[
        "remote",
        "add",
        "sensors",
        &format!("{SECRET}:{KEY}"),
        "--into",
        "s_",
    ])
    .ok();
    site.run(&["remote", "set", "sensors", "--schema", "follow"])
        .fails_with("is pulled into mirrors: its tables are not this database's");
    let status: serde_json::Value =
        serde_json::from_str(site.run(&["status", "--json"]).ok()).unwrap();
    assert_eq!(status["migrations"], 0);
    assert_eq!(status["remote_schemas"], serde_json::json!([]));
}

/// `ddcp api-token` (issue 24): one token per state dir, made once, owner only; and `ddcp
/// serve --api` on a port another program holds says so in one line, before any network.
#[test]
fn the_api_token_is_made_once_and_a_busy_api_port_is_one_line() {
    let site = Site::with_bookmarks();
    let token = site.run(&["api-token"]).ok().trim().to_string();
    assert_eq!(token.len(), 64, "{token}");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(site.run(&["api-token"]).ok().trim(), token);
    use std::os::unix::fs::PermissionsExt;
    let file = site.path(".ddcp/api-token");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let line = site
        .run(&["serve", "--api", &address])
        .fails_with("the API cannot listen on")
        .to_string();
    assert!(line.contains(&address) && !line.contains(&token), "{line}");
    // An app directory without its page is said at once too (`--app`).
    let empty = site.path("empty-app");
    std::fs::create_dir(&empty).unwrap();
    site.run(&["serve", "--api", "127.0.0.1:0", "--app", "empty-app"])
        .fails_with("has no index.html");
    site.run(&["serve", "--api", "127.0.0.1:0", "--app", "no-such-dir"])
        .fails_with("the app directory no-such-dir cannot be read");
}

#[test]
fn host_commands_without_a_running_host_say_so_in_one_line() {
    let site = Site::new();
    site.run(&["host", "status", "--databases", "."])
        .fails_with("no `ddcp serve --databases .` runs");
    site.run(&["host", "add", "x"])
        .fails_with("no `ddcp serve --databases .` runs");
    // Nothing was made: the host makes databases, not the command.
    assert!(!site.path("x").exists());
    site.run(&[
        "serve",
        "--databases",
        "missing/db",
        "--attach-timeout",
        "1",
    ])
    .fails_with("cannot make the databases' folder missing/db");
}
