//! `ddcp pull [NAME]`: pull the remotes once, without a daemon. Pages are applied through a
//! DbActor, as `ddcp serve` applies them.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::daemon::ask_daemon;
use super::output::{print_json, print_line};
use super::{CommandError, block_on};
use crate::cli::PullArgs;
use crate::config::Config;
use crate::control::{ControlError, ControlRequest, ControlResponse, PullOutcome};
use crate::db::{Db, DbError};
use crate::db_actor::DbHandle;
use crate::embed::remote_links;
use crate::net::{FirstContact, Network, Node};
use crate::pull::{PullProgress, PullReport, RemoteLink, pull_remote};
use crate::sync::MemberKeys;

/// A remote whose record is not on the network yet is waited for this long.
const FIRST_CONTACT: Duration = Duration::from_secs(60);

/// The progress line is redrawn at most this often.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// Off a terminal, a progress line this often.
const PROGRESS_LINE_EVERY: Duration = Duration::from_secs(5);

#[derive(Serialize)]
struct PullJson {
    remote: String,
    pages: u64,
    changes: u64,
    /// Changes skipped: the remote may not bring them (`--authors`, filters).
    refused: u64,
    remote_db_version: i64,
    applied: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub fn run(config: &Config, args: &PullArgs) -> Result<(), CommandError> {
    let db = super::open_db(config)?;
    let mut links = remote_links(&db)?;
    if let Some(name) = &args.name {
        links.retain(|link| link.name.as_str() == name);
        if links.is_empty() {
            return Err(DbError::NoSuchRemote(name.clone()).into());
        }
    }
    if links.is_empty() {
        return Err(CommandError::NoRemotes);
    }
    let outcomes = match ask_daemon(config, ControlRequest::Pull(args.name.clone()))? {
        // A running `ddcp serve` holds the node: it pulls, and says how it went.
        Some(ControlResponse::Pulled(outcomes)) => {
            db.close()?;
            outcomes
        }
        Some(_) => return Err(ControlError::Malformed("not a pull report".into()).into()),
        None => {
            let attach_timeout = Duration::from_secs(args.attach.attach_timeout);
            let me = crate::member_file::load_or_create(&config.state_dir)?;
            block_on(async move {
                let node = Node::start(&config.veilid_dir(), &config.network).await?;
                let result = pull_all(&node, db, &me, &links, attach_timeout).await;
                node.shutdown().await;
                result
            })??
        }
    };
    if args.json {
        let json: Vec<PullJson> = outcomes
            .iter()
            .map(|outcome| PullJson {
                remote: outcome.name.clone(),
                pages: outcome.pages,
                changes: outcome.changes,
                refused: outcome.refused,
                remote_db_version: outcome.remote_version,
                applied: outcome.applied,
                error: outcome.error.clone(),
            })
            .collect();
        print_json(&json)?;
    } else {
        for outcome in outcomes.iter().filter(|outcome| outcome.error.is_none()) {
            let refused = match outcome.refused {
                0 => String::new(),
                refused => format!(", {refused} refused (not accepted from it)"),
            };
            print_line(format_args!(
                "{}: {} changes in {} pages{refused}, remote at db_version {}",
                outcome.name, outcome.changes, outcome.pages, outcome.remote_version
            ))?;
        }
    }
    match outcomes.into_iter().find(|outcome| outcome.error.is_some()) {
        Some(failed) => Err(CommandError::Remote {
            name: failed.name,
            reason: failed.error.unwrap_or_default(),
        }),
        None => Ok(()),
    }
}

/// A DbActor of this process's own, for a pull without `ddcp serve`: its handle, and what ends
/// when it stopped.
pub(super) async fn db_actor(
    db: Db,
) -> Result<(DbHandle, tokio::task::JoinHandle<()>), CommandError> {
    DbHandle::spawn(db, None, None)
        .await
        .map_err(|err| CommandError::Serve(err.to_string()))
}

/// Pulls every remote of `links` with this process's own node; the first failure ends it.
async fn pull_all(
    node: &Node,
    db: Db,
    me: &MemberKeys,
    links: &[RemoteLink],
    attach_timeout: Duration,
) -> Result<Vec<PullOutcome>, CommandError> {
    node.attach(attach_timeout).await?;
    let network = node.network();
    let (db, handle) = db_actor(db).await?;
    let mut reports = Vec::new();
    let mut failure = None;
    for link in links {
        match pull_one(network, &db, me, link).await {
            Ok(report) => reports.push(report.outcome(link.name.to_string())),
            Err(reason) => {
                failure = Some(CommandError::Remote {
                    name: link.name.to_string(),
                    reason: reason.to_string(),
                });
                break;
            }
        }
    }
    db.actor().stop(None);
    let _ = handle.await;
    match failure {
        Some(err) => Err(err),
        None => Ok(reports),
    }
}

async fn pull_one(
    network: &Network,
    db: &DbHandle,
    me: &MemberKeys,
    link: &RemoteLink,
) -> Result<PullReport, crate::pull::RemoteError> {
    open_when_published(network, link).await?;
    let mut bar = ProgressLine::new(link.name.as_str());
    let result = pull_remote(network, db, me, link, None, None, &mut |progress| {
        bar.show(progress)
    })
    .await;
    bar.finish();
    network.close_record(&link.key).await;
    let report = result?;
    Ok(report)
}

/// Opens the remote's record, waiting up to [`FIRST_CONTACT`] while it is not on the network
/// yet (the remote starts at the same time, say): said once, looked for again and again.
async fn open_when_published(
    network: &Network,
    link: &RemoteLink,
) -> Result<(), crate::pull::RemoteError> {
    let mut contact = FirstContact::default();
    loop {
        match network.open_record_within(&link.key, contact.bound()).await {
            Ok(()) => return Ok(()),
            Err(err) if err.is_record_not_found_yet() && contact.waited() < FIRST_CONTACT => {
                if contact.misses() == 0 {
                    tracing::info!(target: "ddcp", remote_name = %link.name,
                        "The remote's record is not on the network yet (has it served?): waiting up to {} s",
                        FIRST_CONTACT.as_secs());
                }
                tokio::time::sleep(contact.missed()).await;
            }
            Err(err) => return Err(err.into()),
        }
    }
}

/// A progress line on stderr: redrawn in place on a terminal, a plain line every few seconds
/// elsewhere.
pub(super) struct ProgressLine<'a> {
    name: &'a str,
    /// On a terminal the line is redrawn in place; elsewhere (a log, a script) a plain line is
    /// written now and then.
    terminal: bool,
    drawn_at: Option<Instant>,
    started: Instant,
}

impl<'a> ProgressLine<'a> {
    pub(super) fn new(name: &'a str) -> Self {
        ProgressLine {
            name,
            terminal: std::io::stderr().is_terminal(),
            drawn_at: None,
            started: Instant::now(),
        }
    }

    pub(super) fn show(&mut self, progress: &PullProgress) {
        let every = if self.terminal {
            PROGRESS_EVERY
        } else {
            PROGRESS_LINE_EVERY
        };
        // Off a terminal, a pull shorter than one interval says nothing.
        let since = self.drawn_at.unwrap_or(self.started);
        if (self.terminal && self.drawn_at.is_none()) || since.elapsed() >= every {
            self.draw(progress);
        }
    }

    fn draw(&mut self, progress: &PullProgress) {
        self.drawn_at = Some(Instant::now());
        let fragments = progress
            .fragments
            .map(|(got, of)| format!(", page part {got}/{of}"))
            .unwrap_or_default();
        let line = format!(
            "pulling {}: {} changes in {} pages{fragments}, {:.0} s",
            self.name,
            progress.changes,
            progress.pages,
            self.started.elapsed().as_secs_f64()
        );
        let mut err = std::io::stderr().lock();
        let _ = if self.terminal {
            write!(err, "\r\x1b[2K{line}")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }

    pub(super) fn finish(&mut self) {
        if self.terminal && self.drawn_at.is_some() {
            let _ = writeln!(std::io::stderr().lock());
        }
    }
}
