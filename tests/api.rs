//! The HTTP API (issue 24) served in this process over loopback, as `ddcp serve --api` serves
//! it (the same routes, token and DbActor; the Veilid node is not needed to answer an app), and
//! asked by clients as apps in other languages would: raw HTTP/1.1, curl, and Python's urllib.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

mod common;

use common::curl_lines::CurlLines;
use ddcp::api::{ApiState, ApiToken, AppFiles, MAX_BODY_BYTES};
use ddcp::db::{Db, Extension};
use ddcp::db_actor::DbHandle;

/// A database served by the API on a loopback port of its own.
struct Served {
    _dir: tempfile::TempDir,
    address: SocketAddr,
    token: String,
    runtime: tokio::runtime::Runtime,
}

fn served() -> Served {
    served_with(None)
}

/// A database served by the API, with an app's files from `app` beside it (`--app DIR`).
fn served_with(app: Option<&std::path::Path>) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let db = Db::create(&path, &Extension::BuiltIn).unwrap();
    db.connection()
        .execute_batch(
            "create table posts (id integer primary key not null, author text, body text);
             select crsql_as_crr('posts');",
        )
        .unwrap();
    let token = ApiToken::load_or_create(dir.path()).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let address = runtime.block_on(async {
        let (db, _stopped) = DbHandle::spawn(db, None, None).await.unwrap();
        let mut state = ApiState::new(
            ddcp::app::App::new(db, path.clone()).unwrap(),
            Some(token.clone()),
            path.clone(),
            Extension::BuiltIn,
            None,
        );
        state.app_files = app.map(|dir| AppFiles::new(dir).unwrap());
        let listener = ddcp::api::listen("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let address = listener.local_addr().unwrap();
        let state = Arc::new(state);
        // The state dir's socket too, as ddcp serve always has it.
        let local = ddcp::api::listen_local(dir.path()).unwrap();
        tokio::spawn(ddcp::api::serve_local(local, Arc::clone(&state)));
        tokio::spawn(ddcp::api::serve(listener, state));
        address
    });
    Served {
        _dir: dir,
        address,
        token: token.reveal().to_string(),
        runtime,
    }
}

/// What the server answered: its status and body.
struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|err| panic!("{err}: {}", self.body))
    }
}

impl Served {
    /// One request over a connection of its own, as raw HTTP/1.1.
    fn request(&self, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> Answer {
        let mut stream = TcpStream::connect(self.address).unwrap();
        let auth = token
            .map(|token| format!("Authorization: Bearer {token}\r\n"))
            .unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .unwrap();
        let _ = stream.write_all(body);
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        let response = String::from_utf8_lossy(&response).to_string();
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let status = head.split(' ').nth(1).unwrap_or("0").parse().unwrap();
        let content_type = head
            .lines()
            .find_map(|line| {
                line.to_ascii_lowercase()
                    .strip_prefix("content-type: ")
                    .map(String::from)
            })
            .unwrap_or_default();
        Answer {
            status,
            content_type,
            body: body.to_string(),
        }
    }

    fn post(&self, path: &str, json: serde_json::Value) -> Answer {
        self.request("POST", path, Some(&self.token), json.to_string().as_bytes())
    }
}

#[test]
fn transactions_queries_and_status_answer_json() {
    let api = served();
    let done = api.post(
        "/v1/transactions",
        serde_json::json!({"statements": [
            {"sql": "insert into posts (id, author, body) values (?1, ?2, ?3)", "params": [1, "ann", "hello"]},
            {"sql": "insert into posts (id, author, body) values (?1, ?2, ?3) returning id", "params": [2, "bob", {"blob": "00ff"}]},
        ]}),
    );
    assert_eq!(done.status, 200, "{}", done.body);
    let json = done.json();
    assert!(json["db_version"].as_i64().unwrap() > 0, "{json}");
    assert_eq!(json["results"][0]["rows_affected"], 1);
    assert_eq!(json["results"][1]["rows"], serde_json::json!([[2]]));
    let rows = api.post(
        "/v1/queries",
        serde_json::json!({"sql": "select id, author, body from posts where id >= ?1 order by id", "params": [1]}),
    );
    assert_eq!(rows.status, 200, "{}", rows.body);
    assert_eq!(rows.content_type, "application/x-ndjson");
    let lines: Vec<serde_json::Value> = rows
        .body
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            serde_json::json!({"columns": ["id", "author", "body"]}),
            serde_json::json!({"row": [1, "ann", "hello"]}),
            serde_json::json!({"row": [2, "bob", {"blob": "00ff"}]}),
            serde_json::json!({"eoq": {"rows": 2}}),
        ]
    );
    let status = api.request("GET", "/v1/status", Some(&api.token), b"");
    assert_eq!(status.status, 200, "{}", status.body);
    let status = status.json();
    assert_eq!(status["crr_tables"], serde_json::json!(["posts"]));
    assert_eq!(status["serving"], true);
}

#[test]
fn an_apps_files_are_served_beside_the_api_without_the_token_and_nothing_else() {
    let bbs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/bbs");
    let api = served_with(Some(&bbs));
    let page = api.request("GET", "/", None, b"");
    assert_eq!(page.status, 200);
    assert_eq!(page.content_type, "text/html; charset=utf-8");
    assert_eq!(
        page.body,
        std::fs::read_to_string(bbs.join("index.html")).unwrap()
    );
    let script = api.request("GET", "/app.js", None, b"");
    assert_eq!(
        (script.status, script.content_type.as_str()),
        (200, "text/javascript; charset=utf-8")
    );
    // Out of the directory, hidden, or missing: one JSON error each.
    for path in [
        "/../Cargo.toml",
        "/%2e%2e/Cargo.toml",
        "/.git",
        "/nope.js",
        "/schema.sql/x",
    ] {
        let answer = api.request("GET", path, None, b"");
        assert_eq!(answer.status, 404, "{path}: {}", answer.body);
        assert!(answer.json()["error"].is_string(), "{path}");
    }
    // The API itself still needs the token, and a POST is never a file.
    assert_eq!(api.request("GET", "/v1/status", None, b"").status, 401);
    assert_eq!(api.request("POST", "/index.html", None, b"").status, 401);
    assert_eq!(
        api.request("GET", "/v1/status", Some(&api.token), b"")
            .status,
        200
    );
}

#[test]
fn every_refusal_is_one_json_object_with_its_status() {
    let api = served();
    let cases: Vec<(Answer, u16, &str)> = vec![
        (
            api.request("GET", "/v1/status", None, b""),
            401,
            "Authorization: Bearer",
        ),
        (
            api.request("GET", "/v1/status", Some(&"0".repeat(64)), b""),
            401,
            "ddcp api-token",
        ),
        (
            api.post(
                "/v1/transactions",
                serde_json::json!({"statements": ["insert into posts (id) values (1)", "insert into nope values (1)"]}),
            ),
            400,
            "statement 2: no such table: nope; nothing was applied",
        ),
        (
            api.post(
                "/v1/transactions",
                serde_json::json!({"statements": ["update ddcp_remotes set record_key = ''"]}),
            ),
            400,
            "ddcp_remotes",
        ),
        (
            api.post(
                "/v1/transactions",
                serde_json::json!({"statements": ["create table t (id integer primary key)"]}),
            ),
            400,
            "ddcp migrate",
        ),
        (
            api.post("/v1/queries", serde_json::json!({"sql": "delete from posts"})),
            400,
            "a query only reads",
        ),
        (
            api.request("POST", "/v1/transactions", Some(&api.token), b"{not json"),
            400,
            "not the JSON expected",
        ),
        (
            api.request("GET", "/v1/transactions", Some(&api.token), b""),
            405,
            "not a method",
        ),
        (
            api.request("GET", "/v2/anything", Some(&api.token), b""),
            404,
            "no route",
        ),
        (
            api.request(
                "POST",
                "/v1/transactions",
                Some(&api.token),
                &vec![b' '; MAX_BODY_BYTES + 1],
            ),
            413,
            "at most",
        ),
    ];
    for (answer, status, said) in cases {
        assert_eq!(answer.status, status, "{}", answer.body);
        assert_eq!(answer.content_type, "application/json", "{}", answer.body);
        let json = answer.json();
        let message = json["error"].as_str().unwrap_or_else(|| panic!("{json}"));
        assert!(message.contains(said), "{message}");
        assert_eq!(json.as_object().unwrap().len(), 1, "{json}");
        // The token is never in an answer.
        assert!(!answer.body.contains(&api.token));
    }
    // The failed transaction left nothing.
    let rows = api.post(
        "/v1/queries",
        serde_json::json!({"sql": "select count(*) from posts"}),
    );
    assert!(rows.body.contains(r#"{"row":[0]}"#), "{}", rows.body);
}

/// As a user of another language would: curl, and Python's standard library.
#[test]
fn the_state_dirs_socket_serves_its_owner_without_the_token() {
    use std::os::unix::fs::PermissionsExt;
    let api = served();
    let socket = ddcp::api::local_socket_path(api._dir.path());
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let curl = |path: &str, body: &str| {
        let output = std::process::Command::new("curl")
            .args(["-sS", "--fail-with-body", "--unix-socket"])
            .arg(&socket)
            .args(["-d", body])
            .arg(format!("http://localhost{path}"))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8_lossy(&output.stdout).to_string()
    };
    let done = curl(
        "/v1/transactions",
        r#"{"statements": ["insert into posts (id, author, body) values (9, 'local', 'no token')"]}"#,
    );
    assert!(done.contains("db_version"), "{done}");
    assert!(
        curl("/v1/queries", r#"{"sql": "select body from posts"}"#)
            .contains(r#"{"row":["no token"]}"#)
    );
    // Over TCP the token is still needed.
    let refused = api.request("POST", "/v1/queries", None, br#"{"sql": "select 1"}"#);
    assert_eq!(refused.status, 401);
    drop(api.runtime);
}

#[test]
fn curl_and_python_urllib_read_and_write() {
    let api = served();
    let url = format!("http://{}", api.address);
    let auth = format!("Authorization: Bearer {}", api.token);
    let curl = std::process::Command::new("curl")
        .args(["-sS", "--fail-with-body", "-H", &auth, "-H", "Content-Type: application/json"])
        .args(["-d", r#"{"statements": [{"sql": "insert into posts (id, author, body) values (?1, ?2, ?3)", "params": [7, "curl", "from curl"]}]}"#])
        .arg(format!("{url}/v1/transactions"))
        .output()
        .unwrap();
    assert!(
        curl.status.success(),
        "{}",
        String::from_utf8_lossy(&curl.stdout)
    );
    assert!(String::from_utf8_lossy(&curl.stdout).contains("db_version"));
    let python = r#"
import json, sys, urllib.request
url, token = sys.argv[1], sys.argv[2]
def post(path, body):
    request = urllib.request.Request(url + path, data=json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    return urllib.request.urlopen(request).read().decode()
post("/v1/transactions", {"statements": [{"sql": "insert into posts (id, author, body) values (?1, ?2, ?3)", "params": [8, "python", "from urllib"]}]})
lines = [json.loads(line) for line in post("/v1/queries", {"sql": "select author, body from posts order by id"}).splitlines()]
print(json.dumps([line["row"] for line in lines if "row" in line]))
"#;
    let output = std::process::Command::new("python3")
        .args(["-c", python, &url, &api.token])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        r#"[["curl", "from curl"], ["python", "from urllib"]]"#
    );
    drop(api.runtime);
}

/// A subscription's lines as curl receives them, each within a deadline.
struct Listening(CurlLines);

impl Listening {
    fn start(api: &Served, method: &str, path: &str, body: Option<&str>) -> Listening {
        let mut command = std::process::Command::new("curl");
        command
            .args(["-sS", "-N", "-X", method, "-H"])
            .arg(format!("Authorization: Bearer {}", api.token))
            .arg(format!("http://{}{path}", api.address));
        if let Some(body) = body {
            command.args(["-d", body]);
        }
        Listening(CurlLines::start(command))
    }

    fn next(&self) -> serde_json::Value {
        self.0.next(std::time::Duration::from_secs(10))
    }
}

/// Live queries: the rows, then an event per row that enters, changes or leaves the result,
/// each with a change id; a client that lost its connection resumes after the last id it saw,
/// and misses and repeats none.
#[test]
fn a_subscription_tells_each_change_once_across_a_resume() {
    let api = served();
    let write = |sql: &str| {
        let answer = api.post(
            "/v1/transactions",
            serde_json::json!({ "statements": [sql] }),
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
    };
    write("insert into posts (id, author, body) values (1, 'ann', 'first')");
    let query = r#"{"sql": "select id, body from posts where author = 'ann'"}"#;
    let listening = Listening::start(&api, "POST", "/v1/subscriptions", Some(query));
    let header = listening.next();
    let id = header["id"].as_str().unwrap().to_string();
    assert_eq!(header["columns"], serde_json::json!(["id", "body"]));
    assert_eq!(listening.next(), serde_json::json!({"row": [1, "first"]}));
    assert_eq!(
        listening.next(),
        serde_json::json!({"eoq": {"change_id": 0}})
    );
    write("insert into posts (id, author, body) values (2, 'ann', 'second')");
    assert_eq!(
        listening.next(),
        serde_json::json!({"change_id": 1, "event": "insert", "row": [2, "second"]})
    );
    // A row outside the result changes nothing of it.
    write("insert into posts (id, author, body) values (3, 'bob', 'not ann')");
    write("update posts set body = 'first, edited' where id = 1");
    assert_eq!(
        listening.next(),
        serde_json::json!({"change_id": 2, "event": "update", "row": [1, "first, edited"]})
    );
    // The connection is lost; a change lands meanwhile; the client resumes after id 2.
    drop(listening);
    write("delete from posts where id = 2");
    // Rows written by another connection than the API's (a pull, an app's own) move the
    // result too once the DbActor reports them; here the API's own write wakes it.
    let resumed = Listening::start(&api, "GET", &format!("/v1/subscriptions/{id}?from=2"), None);
    assert_eq!(resumed.next()["id"], id.as_str());
    assert_eq!(
        resumed.next(),
        serde_json::json!({"change_id": 3, "event": "delete", "row": [2, "second"]})
    );
    write("insert into posts (id, author, body) values (4, 'ann', 'fourth')");
    assert_eq!(
        resumed.next(),
        serde_json::json!({"change_id": 4, "event": "insert", "row": [4, "fourth"]})
    );
    // An unknown subscription, and a resume without its id, are one JSON object each.
    let unknown = api.request(
        "GET",
        "/v1/subscriptions/nope?from=0",
        Some(&api.token),
        b"",
    );
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert!(
        unknown.json()["error"]
            .as_str()
            .unwrap()
            .contains("subscribe again")
    );
    let bad = api.request(
        "GET",
        &format!("/v1/subscriptions/{id}"),
        Some(&api.token),
        b"",
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
}

/// A subscriber that does not read holds up nothing: writes go on at their pace, its queue is
/// bounded and it is cut off, and its resume, once the events it missed are no longer kept,
/// says to subscribe again.
#[test]
fn a_subscriber_that_does_not_read_is_cut_off_and_holds_up_nothing() {
    let api = served();
    let fill = api.post(
        "/v1/transactions",
        serde_json::json!({"statements": [
            "insert into posts (id, author, body) with recursive n(i) as (select 1 union all select i + 1 from n where i < 5000) select i, 'ann', 'x' from n"
        ]}),
    );
    assert_eq!(fill.status, 200, "{}", fill.body);
    // Subscribes, reads its first line, and then reads nothing.
    let mut stream = TcpStream::connect(api.address).unwrap();
    let body = r#"{"sql": "select id, body from posts"}"#;
    write!(
        stream,
        "POST /v1/subscriptions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n\r\n{body}",
        api.token,
        body.len()
    )
    .unwrap();
    let mut first = [0u8; 256];
    let read = stream.read(&mut first).unwrap();
    let head = String::from_utf8_lossy(&first[..read]).to_string();
    let id = head
        .split("\"id\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("{head}"))
        .to_string();
    // 20 rewrites of every row: 100,000 events, far more than the socket and the queue hold.
    let started = std::time::Instant::now();
    for round in 0..20 {
        let answer = api.post(
            "/v1/transactions",
            serde_json::json!({"statements": [format!("update posts set body = 'round {round}'")]}),
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let resumed = api.request(
            "GET",
            &format!("/v1/subscriptions/{id}?from=0"),
            Some(&api.token),
            b"",
        );
        // Gone: the events after 0 are no longer kept (once the task has caught up).
        if resumed.status == 410 {
            assert!(
                resumed.json()["error"]
                    .as_str()
                    .unwrap()
                    .contains("subscribe again")
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} {}",
            resumed.status,
            resumed.body
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    drop(stream);
}

/// A listener that reads gets every event of a commit that changes more rows than its queue
/// holds: events wait in the subscription's keeping, not in the listener's queue.
#[test]
fn a_reading_listener_gets_every_event_of_a_big_commit() {
    let api = served();
    let listening = Listening::start(
        &api,
        "POST",
        "/v1/subscriptions",
        Some(r#"{"sql": "select id, body from posts"}"#),
    );
    assert_eq!(
        listening.next()["columns"],
        serde_json::json!(["id", "body"])
    );
    assert_eq!(
        listening.next(),
        serde_json::json!({"eoq": {"change_id": 0}})
    );
    let answer = api.post(
        "/v1/transactions",
        serde_json::json!({"statements": [
            "insert into posts (id, author, body) with recursive n(i) as (select 1 union all select i + 1 from n where i < 2000) select i, 'ann', 'x' from n"
        ]}),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    for change_id in 1..=2000u64 {
        let event = listening.next();
        assert_eq!(event["change_id"], change_id, "{event}");
        assert_eq!(event["event"], "insert", "{event}");
    }
}
