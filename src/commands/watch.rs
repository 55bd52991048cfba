//! `ddcp watch`: the change feed, one change per line, until Ctrl-C. Through a running
//! `ddcp serve` (which wakes the watch at each new version), or, with no serve, by reading the
//! database itself and looking for new versions a few times a second.

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::time::Duration;

use super::CommandError;
use crate::cli::WatchArgs;
use crate::config::Config;
use crate::control::watch::WatchedChange;
use crate::control::{ControlError, ControlRequest, ControlResponse};
use crate::db::Db;
use crate::sync::{Cursor, DbVersion};

/// Changes read at a time by a watch of its own.
const CHUNK_BYTES: usize = 256 << 10;
/// How often a watch of its own looks for new versions.
const LOOK_EVERY: Duration = Duration::from_millis(250);

pub fn run(config: &Config, args: &WatchArgs) -> Result<(), CommandError> {
    let tables: Vec<String> = match &args.tables {
        Some(list) => list.split(',').map(|t| t.trim().to_string()).collect(),
        None => Vec::new(),
    };
    let db = super::open_db(config)?;
    let known = db.crr_tables()?;
    if let Some(unknown) = tables.iter().find(|table| !known.contains(table)) {
        let unknown = crate::sync::text::printable(unknown, 80);
        return Err(db
            .explain_unknown_table(crate::sync::filter::BadFilter::UnknownTable(unknown))
            .into());
    }
    // A version the database has not reached would be waited for in silence.
    let db_version = db.db_version()?;
    if let Some(since) = args.since.map(DbVersion)
        && since > db_version
    {
        return Err(CommandError::SinceBeyondVersion { since, db_version });
    }
    let mut printer = Printer { json: args.json };
    let result = match crate::control::connect(&config.state_dir)? {
        Some(mut stream) => {
            db.close()?;
            let request = ControlRequest::Watch {
                since: args.since,
                tables,
            };
            crate::control::watch(&mut stream, &request, |message| match message {
                ControlResponse::Watching { from } => {
                    tracing::info!(target: "ddcp", after_db_version = from,
                        "Watching through the running ddcp serve (Ctrl-C to stop)");
                    Ok(())
                }
                ControlResponse::Changes(changes) => {
                    printer.print(&changes).map_err(|source| ControlError::Io {
                        path: "stdout".into(),
                        source,
                    })
                }
                _ => Err(ControlError::Malformed("not a watch's message".into())),
            })
            .map_err(CommandError::from)
        }
        None => watch_alone(db, args.since, &tables.into_iter().collect(), &mut printer),
    };
    match result {
        // The reader went (`| head`): the watch is over, not failed.
        Err(CommandError::Output(err)) if err.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(CommandError::Control(ControlError::Io { source, .. }))
            if source.kind() == io::ErrorKind::BrokenPipe =>
        {
            Ok(())
        }
        other => other,
    }
}

/// The watch with no `ddcp serve`: reads the database itself.
fn watch_alone(
    db: Db,
    since: Option<i64>,
    tables: &BTreeSet<String>,
    printer: &mut Printer,
) -> Result<(), CommandError> {
    let from = match since {
        Some(since) => DbVersion(since),
        None => db.db_version()?,
    };
    tracing::info!(target: "ddcp", after_db_version = from.0,
        "Watching the database (no ddcp serve runs; Ctrl-C to stop)");
    let mut position = Cursor::after_group(from);
    loop {
        let (feed, next) = db.read_feed(&position, CHUNK_BYTES)?;
        position = next;
        if feed.is_empty() {
            std::thread::sleep(LOOK_EVERY);
            continue;
        }
        let changes: Vec<WatchedChange> = feed
            .iter()
            .filter(|change| tables.is_empty() || tables.contains(&change.change.table))
            .map(WatchedChange::from)
            .collect();
        printer.print(&changes)?;
    }
}

struct Printer {
    json: bool,
}

impl Printer {
    /// Prints `changes`, one per line, and flushes: a reader sees each batch as it comes.
    fn print(&mut self, changes: &[WatchedChange]) -> io::Result<()> {
        let mut out = io::stdout().lock();
        for change in changes {
            if self.json {
                serde_json::to_writer(&mut out, change).map_err(io::Error::other)?;
                writeln!(out)?;
            } else {
                writeln!(out, "{}", change.line())?;
            }
        }
        out.flush()
    }
}
