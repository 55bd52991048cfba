//! The HTTP API's cost (issue 24, item 5), in one run: transactions per second through the API
//! (over a keep-alive loopback connection, through the DbActor, as an app sees it) against the
//! same writes made with rusqlite directly on a database of the same shape (the true limit:
//! SQLite and cr-sqlite's triggers, no HTTP, no actor), single-statement and batched; and a
//! subscription fan-out: 100 subscribers to one query, one write, time until the last is told,
//! and the memory each takes. Figures are printed, never asserted. `cargo bench --bench api`
//! runs the full sizes; `cargo test --benches` a small smoke.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ddcp::api::{ApiState, ApiToken};
use ddcp::db::{Db, Extension};
use ddcp::db_actor::DbHandle;

const SCHEMA: &str = "create table posts (id integer primary key not null, author text, body text);
    select crsql_as_crr('posts');";

fn database(dir: &std::path::Path, name: &str) -> Db {
    let db = Db::create(&dir.join(name), &Extension::BuiltIn).unwrap();
    db.connection().execute_batch(SCHEMA).unwrap();
    db
}

/// A keep-alive HTTP/1.1 connection to the API.
struct Client {
    stream: TcpStream,
    token: String,
}

impl Client {
    fn post(&mut self, path: &str, body: &str) -> String {
        write!(
            self.stream,
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n\r\n{body}",
            self.token,
            body.len()
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            self.stream.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length: "))
            .and_then(|length| length.trim().parse().ok())
            .expect("a content-length");
        let mut body = vec![0u8; length];
        self.stream.read_exact(&mut body).unwrap();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        String::from_utf8(body).unwrap()
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    let (single, batches, subscribers) = if full { (2000, 100, 100) } else { (100, 5, 10) };
    let batch = 100;
    let dir = tempfile::tempdir().unwrap();

    // The baseline: rusqlite on a database of the same shape, each write its own transaction.
    let direct = database(dir.path(), "direct.db");
    let started = Instant::now();
    for id in 0..single {
        direct
            .connection()
            .execute(
                "insert into posts (id, author, body) values (?1, 'ann', 'hello')",
                [id],
            )
            .unwrap();
    }
    let direct_single = single as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    for round in 0..batches {
        let conn = direct.connection();
        conn.execute_batch("begin").unwrap();
        for n in 0..batch {
            conn.execute(
                "insert into posts (id, author, body) values (?1, 'ann', 'hello')",
                [1_000_000 + round * batch + n],
            )
            .unwrap();
        }
        conn.execute_batch("commit").unwrap();
    }
    let direct_batched = (batches * batch) as f64 / started.elapsed().as_secs_f64();

    // The API, served in this process as `ddcp serve --api` serves it.
    let path = dir.path().join("api.db");
    let db = database(dir.path(), "api.db");
    let token = ApiToken::load_or_create(dir.path()).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let address: SocketAddr = runtime.block_on(async {
        let (db, _stopped) = DbHandle::spawn(db, None, None).await.unwrap();
        let state = ApiState::new(
            ddcp::app::App::new(db, path.clone()).unwrap(),
            Some(token.clone()),
            path.clone(),
            Extension::BuiltIn,
            None,
        );
        let listener = ddcp::api::listen("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(ddcp::api::serve(listener, Arc::new(state)));
        address
    });
    let stream = TcpStream::connect(address).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut client = Client {
        stream,
        token: token.reveal().to_string(),
    };
    let started = Instant::now();
    for id in 0..single {
        client.post(
            "/v1/transactions",
            &format!(
                r#"{{"statements": [{{"sql": "insert into posts (id, author, body) values (?1, 'ann', 'hello')", "params": [{id}]}}]}}"#
            ),
        );
    }
    let api_single = single as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    for round in 0..batches {
        let statements: Vec<String> = (0..batch)
            .map(|n| {
                format!(
                    r#"{{"sql": "insert into posts (id, author, body) values (?1, 'ann', 'hello')", "params": [{}]}}"#,
                    1_000_000 + round * batch + n
                )
            })
            .collect();
        client.post(
            "/v1/transactions",
            &format!(r#"{{"statements": [{}]}}"#, statements.join(",")),
        );
    }
    let api_batched = (batches * batch) as f64 / started.elapsed().as_secs_f64();
    println!(
        "api: transactions through the HTTP API against rusqlite directly ({single} single-statement, {batches} of {batch} statements)"
    );
    println!(
        "  single statement: rusqlite {direct_single:>9.0}/s (baseline), API {api_single:>9.0}/s: {:.2} of it (goal >= 0.5)",
        api_single / direct_single
    );
    println!(
        "  batched rows:     rusqlite {direct_batched:>9.0}/s (baseline), API {api_batched:>9.0}/s: {:.2} of it (goal >= 0.8)",
        api_batched / direct_batched
    );

    // Fan-out: subscribers to one query, one write.
    let rss_before = rss_kib();
    let mut streams: Vec<TcpStream> = (0..subscribers)
        .map(|_| {
            let mut stream = TcpStream::connect(address).unwrap();
            let body = r#"{"sql": "select id, body from posts where author = 'fan'"}"#;
            write!(
                stream,
                "POST /v1/subscriptions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n\r\n{body}",
                token.reveal(),
                body.len()
            )
            .unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let mut seen = Vec::new();
            let mut chunk = [0u8; 4096];
            while !String::from_utf8_lossy(&seen).contains("eoq") {
                let read = stream.read(&mut chunk).unwrap();
                assert!(read > 0, "the subscription ended");
                seen.extend_from_slice(&chunk[..read]);
            }
            stream
        })
        .collect();
    let per_subscriber = rss_kib().saturating_sub(rss_before) as f64 / subscribers as f64;
    let started = Instant::now();
    client.post(
        "/v1/transactions",
        r#"{"statements": ["insert into posts (id, author, body) values (-1, 'fan', 'to all')"]}"#,
    );
    let written = started.elapsed();
    for stream in &mut streams {
        let mut seen = Vec::new();
        let mut chunk = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("\"change_id\":1") {
            let read = stream.read(&mut chunk).unwrap();
            assert!(read > 0, "the subscription ended");
            seen.extend_from_slice(&chunk[..read]);
        }
    }
    let all_told = started.elapsed();
    println!(
        "  fan-out: {subscribers} subscribers, one write ({:.1} ms to commit through the API): the last told after {:.1} ms; about {per_subscriber:.0} KiB of memory each",
        written.as_secs_f64() * 1e3,
        all_told.as_secs_f64() * 1e3
    );
    drop(streams);
    drop(runtime);
}
