//! DDCP embedded in a Rust program (docs/embedding.md): the BBS example's database
//! (examples/bbs/schema.sql) replicated by the program itself, without the `ddcp` CLI running.
//! It starts the replicator, subscribes to the posts and prints each one as it arrives (from
//! this program or any peer), posts once if told to, pulls every remote, and runs until Ctrl-C.
//!
//! ```bash
//! ddcp init && ddcp shell < examples/bbs/schema.sql     # once: the database and its record
//! cargo run --example embed -- ddcp.db .ddcp ann "hello from Rust"
//! ```
//!
//! Arguments: DB_FILE STATE_DIR [AUTHOR BODY]. The network is the state dir's network.conf's
//! (or Veilid's public one).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ddcp::app::{AppStatement, Delivery, RowChange};
use ddcp::config::Config;
use ddcp::embed::{Replicator, ReplicatorOptions};
use ddcp::sync::Value;

const POSTS: &str = "select id, author, body from posts";

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "error,ddcp=info".into()))
        .with_writer(std::io::stderr)
        .init();
    // As the ddcp binary does: memory freed by big pulls goes back to the system.
    ddcp::memory::give_back_freed_memory();
    if let Err(err) = run().await {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (db_file, state_dir) = match args.as_slice() {
        [db_file, state_dir, ..] => (Path::new(db_file), Path::new(state_dir)),
        _ => return Err("usage: embed DB_FILE STATE_DIR [AUTHOR BODY]".into()),
    };
    let config = Config::new(db_file, state_dir)?;
    let replicator = Replicator::start(&config, ReplicatorOptions::default()).await?;
    let app = replicator.app();

    // The posts now, then each change, as commits land: this program's, pulls', anyone's.
    let mut posts = app.subscribe(AppStatement::new(POSTS)).await?;
    if let [_, _, author, body] = args.as_slice() {
        let id = format!(
            "embed-{}",
            SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos()
        );
        let insert = AppStatement::with_params(
            "insert into posts (id, author, body) values (?1, ?2, ?3)",
            vec![
                Value::Text(id),
                Value::Text(author.clone()),
                Value::Text(body.clone()),
            ],
        );
        let committed = app.transaction(vec![insert]).await?;
        println!("posted at db_version {}", committed.db_version.0);
    }
    // Pulls run by themselves as remotes change; one now says how each remote is doing.
    for outcome in replicator.pull(None, Duration::from_secs(60)).await? {
        match outcome.error {
            None => println!("pulled {}: {} changes", outcome.name, outcome.changes),
            Some(why) => println!("pull of {} failed: {why}", outcome.name),
        }
    }

    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            delivery = posts.next() => match delivery {
                Some(Delivery::Rows(rows)) => {
                    for row in rows {
                        println!("post {}", show(&row));
                    }
                }
                Some(Delivery::Event(event)) => match &event.change {
                    RowChange::Insert(row) => println!("new post {}", show(row)),
                    RowChange::Update(row) => println!("edited post {}", show(row)),
                    RowChange::Delete(row) => println!("deleted post {}", show(row)),
                    RowChange::QueryFailed(why) => return Err(why.clone().into()),
                },
                // Cut off (it fell behind the events kept): a real app subscribes again.
                None => return Err("the subscription ended".into()),
            },
        }
    }
    replicator.stop().await?;
    Ok(())
}

/// A post as `author: body`.
fn show(row: &[Value]) -> String {
    let text = |value: Option<&Value>| match value {
        Some(Value::Text(text)) => text.clone(),
        other => format!("{other:?}"),
    };
    format!("{}: {}", text(row.get(1)), text(row.get(2)))
}
