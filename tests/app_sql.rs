//! SQL an app runs through ddcp (issue 24, the HTTP API's ground): a transaction is all or
//! nothing and its writes replicate; reads run apart; what an app may not do (ddcp's own
//! tables, the schema, files, transactions of its own, unbounded results or time) is refused
//! by SQLite's authorizer in one line, whatever the spelling.

use ddcp::db::{AppStatement, Db, DbError, Extension, MAX_RESULT_ROWS, MAX_STATEMENTS, Reader};
use ddcp::sync::Value;

fn db() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(&dir.path().join("app.db"), &Extension::BuiltIn).unwrap();
    db.connection()
        .execute_batch(
            "create table posts (id integer primary key not null, author text, body text);
             select crsql_as_crr('posts');",
        )
        .unwrap();
    (dir, db)
}

fn statement(sql: &str, params: Vec<Value>) -> AppStatement {
    AppStatement {
        sql: sql.into(),
        params,
    }
}

fn count(db: &Db, sql: &str) -> i64 {
    db.connection()
        .query_row(sql, [], |row| row.get(0))
        .unwrap()
}

#[test]
fn a_transaction_commits_whole_and_its_writes_replicate() {
    let (_dir, mut db) = db();
    let before = db.db_version().unwrap();
    let committed = db
        .run_app_transaction(&[
            statement(
                "insert into posts (id, author, body) values (?1, ?2, ?3)",
                vec![
                    Value::Integer(1),
                    Value::Text("ann".into()),
                    Value::Text("hi".into()),
                ],
            ),
            statement(
                "update posts set body = ?1 where id = 1 returning id, body",
                vec![Value::Text("hello".into())],
            ),
        ])
        .unwrap();
    assert!(committed.db_version > before);
    assert_eq!(committed.results[0].rows_affected, 1);
    assert!(committed.results[0].rows.is_none());
    let returned = committed.results[1].rows.as_ref().unwrap();
    assert_eq!(returned.columns, ["id", "body"]);
    assert_eq!(
        returned.rows,
        [vec![Value::Integer(1), Value::Text("hello".into())]]
    );
    // Recorded as changes: peers pull them.
    assert!(
        count(
            &db,
            "select count(*) from crsql_changes where \"table\" = 'posts'"
        ) > 0
    );
    // A reader of its own sees the commit.
    let reader = Reader::open(db.path()).unwrap();
    let rows = reader
        .query(&statement(
            "select author, body from posts where id = ?1",
            vec![Value::Integer(1)],
        ))
        .unwrap();
    assert_eq!(
        rows.rows,
        [vec![Value::Text("ann".into()), Value::Text("hello".into())]]
    );
}

#[test]
fn a_failing_statement_takes_the_whole_transaction_back() {
    let (_dir, mut db) = db();
    let err = db
        .run_app_transaction(&[
            statement("insert into posts (id, body) values (1, 'kept?')", vec![]),
            statement("insert into nope values (1)", vec![]),
        ])
        .unwrap_err()
        .to_string();
    assert_eq!(err, "statement 2: no such table: nope; nothing was applied");
    assert_eq!(count(&db, "select count(*) from posts"), 0);
    let err = db
        .run_app_transaction(&[statement("insert into posts (id) values (?1)", vec![])])
        .unwrap_err()
        .to_string();
    assert!(err.contains("takes 1 parameters and was given 0"), "{err}");
    let err = db.run_app_transaction(&[]).unwrap_err();
    assert!(matches!(err, DbError::AppStatementCount(0)), "{err}");
    let many = vec![statement("select 1", vec![]); MAX_STATEMENTS + 1];
    assert!(matches!(
        db.run_app_transaction(&many),
        Err(DbError::AppStatementCount(_))
    ));
}

#[test]
fn what_an_app_may_not_do_is_refused_whatever_the_spelling() {
    let (dir, mut db) = db();
    // A view of the app's own over ddcp's tables (made outside the API, which makes none).
    db.connection()
        .execute_batch("create view leak as select record_key from ddcp_remotes")
        .unwrap();
    let reader = Reader::open(db.path()).unwrap();
    for (sql, said) in [
        (
            "insert into ddcp_remotes (name, record_key, added_at) values ('x', 'y', 0)",
            "ddcp_remotes",
        ),
        (
            "update \"DDCP_REMOTES\" set record_key = ''",
            "ddcp_remotes",
        ),
        ("select record_key from ddcp_remotes", "ddcp_remotes"),
        ("select * from posts__crsql_clock", "posts__crsql_clock"),
        ("delete from crsql_master", "crsql_master"),
        ("create table t (id integer primary key)", "ddcp migrate"),
        ("drop table posts", "ddcp migrate"),
        ("alter table posts add column x text", "ddcp migrate"),
        (
            "create trigger t after insert on posts begin delete from posts; end",
            "ddcp migrate",
        ),
        ("select crsql_as_crr('posts')", "crsql_as_crr()"),
        ("begin", "one transaction already"),
        ("savepoint s", "one transaction already"),
        ("attach database ':memory:' as x", "Attach"),
        ("pragma writable_schema = 1", "Pragma"),
        (
            "insert into posts (id) values (1); delete from posts",
            "one statement",
        ),
        // What a named subquery or CTE reads is named after it, as a trigger's is: it opens
        // nothing of ddcp's.
        (
            "with x as (select record_key from ddcp_remotes) select * from x",
            "ddcp_remotes",
        ),
        (
            "with x as (select record_key from ddcp_remotes) insert into posts (id, body) select 1, record_key from x",
            "ddcp_remotes",
        ),
        (
            "select * from (select record_key from ddcp_remotes) as posts__crsql_itrig",
            "ddcp_remotes",
        ),
        (
            "with x as (select crsql_as_crr('posts')) select * from x",
            "crsql_as_crr()",
        ),
        (
            "select crsql_next_db_version()",
            "only cr-sqlite's triggers",
        ),
        ("select * from leak", "ddcp_remotes"),
        (
            "select * from pragma_table_info('ddcp_remotes')",
            "a pragma is not an app's",
        ),
        ("vacuum into '/tmp/ddcp-api-vacuum-test.db'", "vacuum"),
        (
            "insert into posts (id, body) values (9, randomblob(1000000000))",
            "too big",
        ),
    ] {
        let err = db
            .run_app_transaction(&[statement(sql, vec![])])
            .unwrap_err()
            .to_string();
        let said_so = err.contains(said)
            || (said == "one statement" && err.contains("Multiple statements"))
            || (said == "vacuum" && (err.contains("VACUUM") || err.contains("attach")));
        assert!(said_so, "{sql}: {err}");
        assert!(err.ends_with("nothing was applied"), "{sql}: {err}");
    }
    assert_eq!(count(&db, "select count(*) from posts"), 0);
    // A query reads only.
    let err = reader
        .query(&statement("insert into posts (id) values (1)", vec![]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("a query only reads"), "{err}");
    let err = reader
        .query(&statement("select * from ddcp_remotes", vec![]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("ddcp_remotes"), "{err}");
    for sql in [
        "with x as (select record_key from ddcp_remotes) select * from x",
        "select * from leak",
    ] {
        let err = reader
            .query(&statement(sql, vec![]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("ddcp_remotes"), "{sql}: {err}");
    }
    // VACUUM INTO asks no authorizer: a query must not copy the database to a file.
    let copy = dir.path().join("copy.db");
    let err = reader
        .query(&statement(
            &format!("vacuum into '{}'", copy.display()),
            vec![],
        ))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("a query only reads") || err.contains("attach"),
        "{err}"
    );
    assert!(!copy.exists());
    let err = reader
        .query(&statement("select randomblob(1000000000)", vec![]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("too big"), "{err}");
}

#[test]
fn results_and_time_are_bounded() {
    let (_dir, mut db) = db();
    let reader = Reader::open(db.path()).unwrap();
    let err = reader
        .query(&statement(
            &format!(
                "with recursive n(i) as (select 1 union all select i + 1 from n where i <= {MAX_RESULT_ROWS}) select i from n"
            ),
            vec![],
        ))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("more than {MAX_RESULT_ROWS} rows")),
        "{err}"
    );
    // A query that never ends is stopped at the deadline, and the connections work after.
    let err = reader
        .query(&statement(
            "with recursive n(i) as (select 1 union all select i + 1 from n) select count(*) from n",
            vec![],
        ))
        .unwrap_err()
        .to_string();
    assert!(err.contains("was stopped"), "{err}");
    assert_eq!(
        reader.query(&statement("select 1", vec![])).unwrap().rows,
        [vec![Value::Integer(1)]]
    );
    db.run_app_transaction(&[statement("insert into posts (id) values (1)", vec![])])
        .unwrap();
}

/// The writer keeps the apps' authorizer between transactions; a migration replaces it with
/// its own for a while, and the next app transaction is judged again all the same.
#[test]
fn refusals_hold_across_transactions_and_after_a_migration() {
    let (_dir, mut db) = db();
    let forbidden = || statement("delete from crsql_site_id", vec![]);
    let insert = |id: i64| {
        statement(
            "insert into posts (id, author, body) values (?1, 'ann', 'hi')",
            vec![Value::Integer(id)],
        )
    };
    for id in 1..=3 {
        db.run_app_transaction(&[insert(id)]).unwrap();
        assert!(db.run_app_transaction(&[forbidden()]).is_err());
    }
    db.migrate("alter table posts add column stars integer;", false)
        .unwrap();
    let refused = db.run_app_transaction(&[forbidden()]).unwrap_err();
    assert!(refused.to_string().contains("crsql_site_id"), "{refused}");
    db.run_app_transaction(&[statement("update posts set stars = 5 where id = 1", vec![])])
        .unwrap();
    assert_eq!(count(&db, "select count(*) from crsql_site_id"), 1);
    assert_eq!(count(&db, "select stars from posts where id = 1"), 5);
}
