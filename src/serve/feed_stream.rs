//! `ddcp watch` through a running `ddcp serve`: the change feed streamed on a control
//! connection. Each watch reads with a connection of its own (never the DbActor's, so a watch
//! never holds up replication) and sleeps until the DbActor reports a new version (no polling).
//! A slow reader only slows its own stream: it is sent at most one chunk ahead of what it read,
//! and resumes where it stands (cr-sqlite keeps each cell's newest state, so a reader far behind
//! gets the newest values, not every intermediate one).

use std::path::PathBuf;

use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::sync::watch;

use crate::control::ControlResponse;
use crate::control::frame::write_message;
use crate::control::watch::WatchedChange;
use crate::db::{Db, Extension};
use crate::sync::{Cursor, DbVersion};

/// Changes read (and sent) at a time: one message of the feed, well under the frame limit.
const CHUNK_BYTES: usize = 256 << 10;

/// Watches at once; each holds a control connection.
pub const MAX_WATCHES: usize = 8;

/// Where a watch opens the database.
#[derive(Clone, Debug)]
pub struct FeedSource {
    /// The database file.
    pub db_file: PathBuf,
    /// Its cr-sqlite.
    pub extension: Extension,
}

/// Streams the changes after `since` (the newest when `None`) of `tables` (all when empty) to
/// `stream` until the client goes. `versions` moves with each new version of the database.
pub async fn stream_changes(
    mut stream: UnixStream,
    source: FeedSource,
    since: Option<i64>,
    tables: Vec<String>,
    mut versions: watch::Receiver<DbVersion>,
) -> std::io::Result<()> {
    // Opened, and "now" read, on a connection of the watch's own.
    let (opened, newest) = tokio::task::spawn_blocking(move || {
        let db = Db::open(&source.db_file, &source.extension)?;
        let newest = db.db_version()?;
        Ok::<_, crate::db::DbError>((db, newest))
    })
    .await?
    .map_err(std::io::Error::other)?;
    let mut db = Some(opened);
    let from = since.map_or(newest, DbVersion);
    send(&mut stream, &ControlResponse::Watching { from: from.0 }).await?;
    let mut position = Cursor::after_group(from);
    loop {
        // Seen before reading: a version reported while this reads wakes the next wait.
        versions.borrow_and_update();
        let (back, read) = {
            let db_now = db.take().expect("the watch's database");
            let at = position.clone();
            tokio::task::spawn_blocking(move || {
                let read = db_now.read_feed(&at, CHUNK_BYTES);
                (db_now, read)
            })
            .await?
        };
        db = Some(back);
        let (feed, next) = read.map_err(std::io::Error::other)?;
        let caught_up = feed.is_empty();
        position = next;
        let changes: Vec<WatchedChange> = feed
            .iter()
            .filter(|change| tables.is_empty() || tables.contains(&change.change.table))
            .map(WatchedChange::from)
            .collect();
        if !changes.is_empty() {
            send(&mut stream, &ControlResponse::Changes(changes)).await?;
        }
        if caught_up {
            tokio::select! {
                changed = versions.changed() => {
                    if changed.is_err() {
                        return Ok(()); // serve is stopping
                    }
                }
                // The client sends nothing after its request: readable means it went.
                _ = stream.readable() => {
                    let mut byte = [0; 1];
                    match stream.try_read(&mut byte) {
                        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                        _ => return Ok(()),
                    }
                }
            }
        }
    }
}

async fn send(stream: &mut UnixStream, message: &ControlResponse) -> std::io::Result<()> {
    let mut frame = Vec::new();
    write_message(&mut frame, message)?;
    stream.write_all(&frame).await
}
