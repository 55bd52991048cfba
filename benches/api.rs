//! The HTTP API's cost (issue 24, item 5), in one run: transactions per second through the API
//! (over a keep-alive loopback connection, through the DbActor, as an app sees it) against the
//! same writes made with rusqlite directly on a database of the same shape (the true limit:
//! SQLite and cr-sqlite's triggers, no HTTP, no actor), single-statement and batched; and a
//! subscription fan-out: 100 subscribers to one query, one write, time until the last is told,
//! and the memory each takes. Figures are printed, never asserted. `cargo bench --bench api`
//! runs the full sizes; `cargo test --benches` a small smoke.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ddcp::api::{ApiState, ApiToken};
use ddcp::app::AppStatement;
use ddcp::db::{Db, Extension};
use ddcp::db_actor::{DbEvent, DbHandle};
use ddcp::sync::Value;

const SCHEMA: &str = "create table posts (id integer primary key not null, author text, body text);
    select crsql_as_crr('posts');";

fn database(dir: &std::path::Path, name: &str) -> Db {
    let db = Db::create(&dir.join(name), &Extension::BuiltIn).unwrap();
    db.connection().execute_batch(SCHEMA).unwrap();
    db
}

/// A keep-alive HTTP/1.1 connection to the API, read through a buffer (a read per byte of the
/// head would be the client's cost, counted against the API).
struct Client {
    stream: BufReader<TcpStream>,
    token: String,
}

impl Client {
    fn post(&mut self, path: &str, body: &str) -> String {
        let (status, body) = self.request(path, body);
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        body
    }

    /// One request: the status line and the body, whatever the status.
    fn request(&mut self, path: &str, body: &str) -> (String, String) {
        // One write, as an HTTP client sends a request: `write!` straight to the socket would
        // send each piece of the format as a segment of its own.
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n\r\n{body}",
            self.token,
            body.len()
        );
        self.stream.get_mut().write_all(request.as_bytes()).unwrap();
        let mut status = String::new();
        self.stream.read_line(&mut status).unwrap();
        let mut length = None;
        loop {
            let mut header = String::new();
            self.stream.read_line(&mut header).unwrap();
            if header == "\r\n" {
                break;
            }
            if let Some(value) = header.to_ascii_lowercase().strip_prefix("content-length: ") {
                length = value.trim().parse().ok();
            }
        }
        let mut body = vec![0u8; length.expect("a content-length")];
        self.stream.read_exact(&mut body).unwrap();
        (status, String::from_utf8(body).unwrap())
    }
}

/// Stands in for `ddcp serve`'s supervisor, which hears of every commit: with a listener the
/// DbActor reads and reports the database's state after each transaction, as it does in serve.
/// The App it tells is set once the DbActor it needs has started.
struct Supervisor;

type AppCell = Arc<std::sync::OnceLock<ddcp::app::App>>;

impl ractor::Actor for Supervisor {
    type Msg = DbEvent;
    type State = AppCell;
    type Arguments = AppCell;

    async fn pre_start(
        &self,
        _myself: ractor::ActorRef<DbEvent>,
        app: AppCell,
    ) -> Result<AppCell, ractor::ActorProcessingErr> {
        Ok(app)
    }

    async fn handle(
        &self,
        _myself: ractor::ActorRef<DbEvent>,
        DbEvent::StateChanged(state): DbEvent,
        app: &mut AppCell,
    ) -> Result<(), ractor::ActorProcessingErr> {
        if let Some(app) = app.get() {
            app.database_moved(state.db_version);
        }
        Ok(())
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

/// Rounds each way is measured in, alternating: this machine's other work slows whichever
/// runs at the time, so each figure is the median of its rounds.
const ROUNDS: usize = 5;

const INSERT: &str = "insert into posts (id, author, body) values (?1, 'ann', 'hello')";

/// Rows per second, the median of `rates`.
fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// Runs `work` (which writes `rows` rows) and answers its rows per second.
fn rate(rows: usize, work: impl FnOnce()) -> f64 {
    let started = Instant::now();
    work();
    rows as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    let (single, batches, subscribers) = if full { (400, 20, 100) } else { (20, 2, 10) };
    let batch = 100;
    let dir = tempfile::tempdir().unwrap();

    // The baseline: rusqlite on a database of the same shape (SQLite and cr-sqlite's triggers
    // alone), each write its own transaction, or 100 in one.
    let direct = database(dir.path(), "direct.db");
    // The same writes as an app's statements (SQLite's authorizer, the bounds), without the
    // DbActor: what the app's checks cost.
    let mut checked = database(dir.path(), "checked.db");
    // The API, served in this process as `ddcp serve --api` serves it.
    let path = dir.path().join("api.db");
    let db = database(dir.path(), "api.db");
    let token = ApiToken::load_or_create(dir.path()).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (address, app): (SocketAddr, ddcp::app::App) = runtime.block_on(async {
        let app_cell = AppCell::default();
        let (supervisor, _) = ractor::Actor::spawn(None, Supervisor, app_cell.clone())
            .await
            .unwrap();
        let (db, _stopped) = DbHandle::spawn(db, Some(supervisor.get_derived()), None)
            .await
            .unwrap();
        let app = ddcp::app::App::new(db, path.clone()).unwrap();
        app_cell.set(app.clone()).unwrap();
        let state = ApiState::new(
            app.clone(),
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
        (address, app)
    });
    let stream = TcpStream::connect(address).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut client = Client {
        stream: BufReader::new(stream),
        token: token.reveal().to_string(),
    };

    let mut next_id = 0i64;
    let mut ids = |count: usize| {
        let first = next_id;
        next_id += count as i64;
        first..next_id
    };
    let (mut direct_single, mut app_single, mut api_single) = (Vec::new(), Vec::new(), Vec::new());
    let (mut checked_single, mut checked_batched) = (Vec::new(), Vec::new());
    let (mut direct_batched, mut api_batched) = (Vec::new(), Vec::new());
    let mut round_trips = Vec::new();
    for _ in 0..ROUNDS {
        // HTTP alone: a request the API answers without the database (no such route).
        round_trips.push(rate(single, || {
            for _ in 0..single {
                let (status, _) = client.request("/v1/nothing", "");
                assert!(status.starts_with("HTTP/1.1 404"), "{status}");
            }
        }));
        let rows = ids(single);
        direct_single.push(rate(single, || {
            for id in rows {
                direct.connection().execute(INSERT, [id]).unwrap();
            }
        }));
        let rows = ids(single);
        checked_single.push(rate(single, || {
            for id in rows {
                let statement = AppStatement::with_params(INSERT, vec![Value::Integer(id)]);
                checked.run_app_transaction(&[statement]).unwrap();
            }
        }));
        // The same transaction through the DbActor, without HTTP or JSON: where the time goes.
        let rows = ids(single);
        app_single.push(rate(single, || {
            for id in rows {
                let statement = AppStatement::with_params(INSERT, vec![Value::Integer(id)]);
                runtime.block_on(app.transaction(vec![statement])).unwrap();
            }
        }));
        let rows = ids(single);
        api_single.push(rate(single, || {
            for id in rows {
                client.post(
                    "/v1/transactions",
                    &format!(r#"{{"statements": [{{"sql": "{INSERT}", "params": [{id}]}}]}}"#),
                );
            }
        }));
        let rows = ids(batches * batch);
        direct_batched.push(rate(batches * batch, || {
            let conn = direct.connection();
            for chunk in rows.collect::<Vec<_>>().chunks(batch) {
                conn.execute_batch("begin").unwrap();
                for id in chunk {
                    conn.execute(INSERT, [id]).unwrap();
                }
                conn.execute_batch("commit").unwrap();
            }
        }));
        let rows = ids(batches * batch);
        checked_batched.push(rate(batches * batch, || {
            for chunk in rows.collect::<Vec<_>>().chunks(batch) {
                let statements: Vec<AppStatement> = chunk
                    .iter()
                    .map(|id| AppStatement::with_params(INSERT, vec![Value::Integer(*id)]))
                    .collect();
                checked.run_app_transaction(&statements).unwrap();
            }
        }));
        let rows = ids(batches * batch);
        api_batched.push(rate(batches * batch, || {
            for chunk in rows.collect::<Vec<_>>().chunks(batch) {
                let statements: Vec<String> = chunk
                    .iter()
                    .map(|id| format!(r#"{{"sql": "{INSERT}", "params": [{id}]}}"#))
                    .collect();
                client.post(
                    "/v1/transactions",
                    &format!(r#"{{"statements": [{}]}}"#, statements.join(",")),
                );
            }
        }));
    }
    let (direct_single, app_single, api_single) = (
        median(direct_single),
        median(app_single),
        median(api_single),
    );
    let (direct_batched, api_batched) = (median(direct_batched), median(api_batched));
    let round_trip_us = 1e6 / median(round_trips);
    let checked_us = 1e6 / median(checked_single);
    println!(
        "api: transactions through the HTTP API against rusqlite directly ({single} single-statement, {batches} of {batch} statements; the median of {ROUNDS} alternating rounds)"
    );
    println!(
        "  single statement: rusqlite {direct_single:>9.0}/s (baseline), API {api_single:>9.0}/s: {:.2} of it (goal >= 0.5); through the DbActor alone (no HTTP, no JSON) {app_single:.0}/s: {:.2}",
        api_single / direct_single,
        app_single / direct_single
    );
    println!(
        "  batched rows:     rusqlite {direct_batched:>9.0}/s (baseline), API {api_batched:>9.0}/s: {:.2} of it (goal >= 0.8); the app's statements checked and run alone {:.0}/s: {:.2}",
        api_batched / direct_batched,
        median(checked_batched.clone()),
        median(checked_batched) / direct_batched
    );
    println!(
        "  where a single-statement transaction's time goes: {:.0} µs through the API = {round_trip_us:.0} µs an HTTP round trip alone (a 404) + {:.0} µs the rest (the body read and parsed, the answer, the threads woken between) + {:.0} µs the hop to the DbActor and back + {checked_us:.0} µs the app's statement checked and run (rusqlite directly: {:.0} µs)",
        1e6 / api_single,
        1e6 / api_single - round_trip_us - 1e6 / app_single,
        1e6 / app_single - checked_us,
        1e6 / direct_single
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
