//! The DbActor: the database's one writer. Pages pulled from remotes are accepted here, one at
//! a time, each in one transaction with its cursor; requests from peers are answered from the
//! same connection. Commits made by anyone (ddcp shell, an application) are noticed and the
//! database's new state reported (`reporting`, woken by `commit_watch` and a timer).

use std::sync::Arc;
use std::time::Duration;

mod commit_watch;
mod file_identity;
mod file_watcher;
mod handle;
mod messages;
mod reporting;

pub use handle::{DbCallError, DbHandle};
pub use messages::{DbEvent, DbMsg, LocalState};

use ractor::{Actor, ActorProcessingErr, ActorRef, DerivedActorRef};

use crate::db::{Db, Followed};
use crate::metrics::{self, DbLabel};
use crate::sync::serve::{MAX_PAGE_BUDGET, Responder, internal_answer};

/// How often the database is checked for commits made by other processes when its WAL cannot
/// be watched ([`commit_watch`]), or no longer is.
pub(crate) const CHANGE_CHECK_INTERVAL: Duration = Duration::from_millis(200);

/// How often it is checked while the WAL is watched: the bound on a commit the watch missed.
/// The watch also tells of the file removed or replaced, at once. A look costs little, but a
/// host of a hundred databases looking every 200 ms spent 3.8% of a core on it while idle, 0.4%
/// every 2 s, and still a sixth of its idle CPU every 5 s (benches/hosting.rs).
pub(crate) const WATCHED_CHECK_INTERVAL: Duration = Duration::from_secs(60);

/// The only writer of the database while `ddcp serve` or `ddcp pull` runs.
#[derive(Debug)]
pub struct DbActor;

/// The DbActor's start: the open database, and who hears of its changes.
#[derive(Debug)]
pub struct DbArgs {
    /// The database.
    pub db: Db,
    /// Told of every change of [`LocalState`], and the reason commits are looked for; `None`
    /// for a one-shot pull.
    pub listener: Option<DerivedActorRef<DbEvent>>,
    /// How often the database is looked at for commits by other processes, besides the
    /// watch on its WAL.
    pub look_interval: Duration,
    /// Its metrics' label.
    pub metrics: DbLabel,
}

/// The DbActor's state.
#[derive(Debug)]
pub struct DbState {
    db: Db,
    responder: Responder,
    listener: Option<DerivedActorRef<DbEvent>>,
    /// What was last reported, and when.
    reported: Option<reporting::Reported>,
    /// The SQLite schema version the held changes were last tried at: they are tried again
    /// when it moves.
    held_tried_at: Option<i64>,
    /// Changes held, as last counted (for the metric).
    held: u64,
    /// SQLite's data version when the database was last looked at: it moves only when another
    /// connection commits, and this one's own commits are reported as they are made.
    looked_at: Option<i64>,
    /// Wakes the actor when another process writes to the database (with a listener).
    _commit_watch: Option<commit_watch::CommitWatch>,
    /// The file opened: the actor stops when its path names another, or none.
    file: Option<file_identity::FileIdentity>,
    metrics: DbLabel,
    /// How often to look for commits once the WAL's watch ended.
    look_interval: Duration,
}

impl Actor for DbActor {
    type Msg = DbMsg;
    type State = DbState;
    type Arguments = DbArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<DbMsg>,
        args: DbArgs,
    ) -> Result<DbState, ActorProcessingErr> {
        let mut commit_watch = None;
        let file = file_identity::FileIdentity::of(args.db.path());
        if args.listener.is_some() {
            commit_watch = commit_watch::CommitWatch::start(args.db.path(), myself.clone());
            let interval = match commit_watch {
                Some(_) => WATCHED_CHECK_INTERVAL.max(args.look_interval),
                None => args.look_interval,
            };
            myself.send_interval(interval, || DbMsg::CheckForChanges);
        }
        Ok(DbState {
            db: args.db,
            responder: Responder::default(),
            listener: args.listener,
            reported: None,
            held_tried_at: None,
            held: 0,
            looked_at: None,
            _commit_watch: commit_watch,
            file,
            metrics: args.metrics,
            look_interval: args.look_interval,
        })
    }

    async fn post_start(
        &self,
        _myself: ActorRef<DbMsg>,
        state: &mut DbState,
    ) -> Result<(), ActorProcessingErr> {
        state.report_changes()?;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<DbMsg>,
        message: DbMsg,
        state: &mut DbState,
    ) -> Result<(), ActorProcessingErr> {
        if let DbMsg::WatchEnded = message {
            // Looked at often again, as when the WAL could not be watched.
            myself.send_interval(state.look_interval, || DbMsg::CheckForChanges);
            return Ok(());
        }
        // SQLite work blocks: the actor has a thread of its own (`DbHandle::spawn`).
        let span = state.metrics.span();
        span.in_scope(|| state.handle(message))
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<DbMsg>,
        state: &mut DbState,
    ) -> Result<(), ActorProcessingErr> {
        // Nothing to flush: every accepted page was committed. The connection closes with the
        // state.
        let _ = state;
        Ok(())
    }
}

impl DbState {
    fn handle(&mut self, message: DbMsg) -> Result<(), ActorProcessingErr> {
        // A reply port whose asker gave up is not this actor's failure: sends are ignored.
        match message {
            DbMsg::Answer {
                request,
                budget,
                filter,
                reply,
            } => {
                if reply.is_closed() {
                    // The asker stopped waiting while this waited in the mailbox.
                    metrics::shed(&self.metrics, metrics::ShedReason::Expired);
                    return Ok(());
                }
                let budget = budget.unwrap_or(MAX_PAGE_BUDGET);
                // Mirrors not served onward stay out, whoever asks.
                let filter = match self.db.unserved_mirrors() {
                    Ok(unserved) if unserved.is_open() => filter,
                    Ok(unserved) => Arc::new(filter.and(&unserved)),
                    Err(err) => {
                        metrics::error(&self.metrics, "db");
                        tracing::warn!(target: "ddcp", error = %err, "Cannot answer a peer");
                        let _ = reply.send(internal_answer());
                        return Ok(());
                    }
                };
                let started = std::time::Instant::now();
                let shared_before = self.responder.pages_shared();
                let answer = self
                    .responder
                    .respond_within(&self.db, &request, budget, &filter);
                if let Some(served) = self.responder.take_served() {
                    metrics::served(&self.metrics, served.changes);
                    let shared = self.responder.pages_shared() > shared_before;
                    if shared {
                        metrics::page_shared(&self.metrics);
                    }
                    tracing::debug!(target: "ddcp", changes = served.changes, bytes = answer.len(),
                        shared, took_ms = started.elapsed().as_secs_f64() * 1e3, "Served a page");
                }
                if let Some(failure) = self.responder.take_source_failure() {
                    metrics::error(&self.metrics, "db");
                    tracing::warn!(target: "ddcp", error = %failure, "Cannot answer a peer");
                }
                let _ = reply.send(answer);
            }
            DbMsg::State(reply) => {
                let _ = reply.send(reporting::read_state(&self.db));
            }
            DbMsg::Schema(reply) => {
                let _ = reply.send(self.db.shared_schema());
            }
            DbMsg::Cursor { remote, reply } => {
                let _ = reply.send(self.db.cursor(remote));
            }
            DbMsg::ResetCursor { remote, reply } => {
                let _ = reply.send(self.db.reset_cursor(remote));
            }
            DbMsg::Accept {
                remote,
                page,
                policy,
                fit,
                reply,
            } => {
                let outcome = self.db.accept_page_fitting(remote, *page, &policy, &fit);
                if let Ok(accepted) = &outcome
                    && accepted.held > 0
                {
                    self.held += accepted.held;
                    metrics::held(&self.metrics, self.held);
                }
                if outcome.is_err() && self.db.in_transaction() {
                    self.db.rollback()?;
                }
                let _ = reply.send(outcome);
                if let Err(err) = self.report_changes() {
                    tracing::debug!(target: "ddcp", error = %err, "Cannot check for changes");
                }
            }
            DbMsg::FitSchema {
                theirs,
                into,
                reply,
            } => {
                let _ = reply.send(self.db.schema_fit(&theirs, into.as_ref()));
            }
            DbMsg::SeenHistory { remote, reply } => {
                let _ = reply.send(self.db.seen_history(&remote));
            }
            DbMsg::SeeHistory {
                remote,
                history,
                reply,
            } => {
                let followed = self.db.see_remote_history(&remote, &history);
                if let Ok(Followed::Applied(steps)) = &followed
                    && !steps.is_empty()
                {
                    tracing::info!(target: "ddcp", remote_name = %remote, steps = steps.len(),
                        "Followed the remote's schema: applied its new migrations");
                }
                let _ = reply.send(followed);
                // The history this database publishes may have moved without its schema (a
                // migration it had made by hand, now recorded): report the state again.
                self.reported = None;
                if let Err(err) = self.report_changes() {
                    metrics::error(&self.metrics, "db");
                    tracing::warn!(target: "ddcp", error = %err, "Cannot read the database's state");
                }
            }
            DbMsg::AppTransaction { statements, reply } => {
                let committed = self.db.run_app_transaction(&statements);
                let wrote = committed.is_ok();
                let _ = reply.send(committed);
                // Peers hear of it now, not at the next look for commits.
                if wrote && let Err(err) = self.report_app_commit() {
                    metrics::error(&self.metrics, "db");
                    tracing::warn!(target: "ddcp", error = %err, "Cannot read the database's state");
                }
            }
            DbMsg::Remotes(reply) => {
                let _ = reply.send(self.db.remotes());
            }
            DbMsg::AlignCursor {
                name,
                remote,
                policy,
                reply,
            } => {
                let aligned = self
                    .db
                    .note_remote_site(&name, remote)
                    .and_then(|()| self.db.align_cursor(remote, &policy));
                let _ = reply.send(aligned);
            }
            DbMsg::CheckOwner { name, seen, reply } => {
                let _ = reply.send(self.db.check_remote_owner(&name, seen.as_ref()));
            }
            DbMsg::AccessState(reply) => {
                let _ = reply.send(self.db.access_state());
            }
            // Taken by the actor before it gets here.
            DbMsg::WatchEnded => {}
            DbMsg::CheckForChanges => {
                if let Some(gone) = self.file.as_ref().and_then(|file| file.gone()) {
                    return Err(gone.into());
                }
                // Another process's write may hold the database for a moment: check later.
                if let Err(err) = self.look_for_changes() {
                    tracing::debug!(target: "ddcp", error = %err, "Cannot check for changes");
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Extension;
    use crate::db::test_support::temp_db;
    use tokio::sync::mpsc;

    /// Stands in for the supervisor: passes on what the DbActor reports.
    struct Listener;

    impl Actor for Listener {
        type Msg = DbEvent;
        type State = mpsc::UnboundedSender<LocalState>;
        type Arguments = mpsc::UnboundedSender<LocalState>;

        async fn pre_start(
            &self,
            _myself: ActorRef<DbEvent>,
            reports: Self::Arguments,
        ) -> Result<Self::State, ActorProcessingErr> {
            Ok(reports)
        }

        async fn handle(
            &self,
            _myself: ActorRef<DbEvent>,
            DbEvent::StateChanged(state): DbEvent,
            reports: &mut Self::State,
        ) -> Result<(), ActorProcessingErr> {
            let _ = reports.send(state);
            Ok(())
        }
    }

    /// The DbActor of `db`, looking for commits every `look_interval`, and what it reports.
    async fn spawn_listened(
        db: Db,
        look_interval: Duration,
    ) -> (
        ActorRef<DbMsg>,
        ActorRef<DbEvent>,
        mpsc::UnboundedReceiver<LocalState>,
    ) {
        let (sender, reports) = mpsc::unbounded_channel();
        let (listener, _) = Actor::spawn(None, Listener, sender).await.unwrap();
        let args = DbArgs {
            db,
            listener: Some(listener.get_derived()),
            look_interval,
            metrics: DbLabel::default(),
        };
        let (actor, _) = Actor::spawn(None, DbActor, args).await.unwrap();
        (actor, listener, reports)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_crr_made_by_another_connection_is_reported_without_a_new_version() {
        let (dir, db) = temp_db();
        let path = db.path().to_path_buf();
        let (actor, listener, mut reports) = spawn_listened(db, CHANGE_CHECK_INTERVAL).await;
        let first = reports.recv().await.unwrap();

        // Another process makes a CRR: no change is written, db_version stays where it was.
        let other = Db::open(&path, &Extension::BuiltIn).unwrap();
        other
            .connection()
            .execute_batch(
                "create table notes (id text primary key not null, body text);
                 select crsql_as_crr('notes');",
            )
            .unwrap();
        other.close().unwrap();

        // The table and its making a CRR are two commits, and the watch on the WAL may report
        // the state between them (a table that is no CRR yet): the reports are read until the
        // CRR shows, none with a new version.
        let reported = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let next = reports.recv().await.unwrap();
                assert_eq!(next.db_version, first.db_version);
                if next.schema_fingerprint != first.schema_fingerprint {
                    return next;
                }
            }
        })
        .await
        .expect("the new CRR was never reported");
        assert_ne!(reported.schema_fingerprint, first.schema_fingerprint);
        actor.stop(None);
        listener.stop(None);
        drop(dir);
    }

    /// The database file removed, replaced, or its folder moved away: the watch has the actor
    /// look at once, and it stops (its timed look never comes within the test).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_removed_replaced_or_moved_away_stops_the_actor_without_its_timed_look() {
        for how in ["removed", "replaced", "folder moved"] {
            let dir = tempfile::tempdir().unwrap();
            let folder = dir.path().join("served");
            std::fs::create_dir(&folder).unwrap();
            let path = folder.join("test.db");
            let db = Db::create(&path, &Extension::BuiltIn).unwrap();
            let (sender, _reports) = mpsc::unbounded_channel();
            let (listener, _) = Actor::spawn(None, Listener, sender).await.unwrap();
            let args = DbArgs {
                db,
                listener: Some(listener.get_derived()),
                look_interval: Duration::from_secs(3600),
                metrics: DbLabel::default(),
            };
            let (actor, stopped) = Actor::spawn(None, DbActor, args).await.unwrap();
            // Served, and not stopping by itself.
            actor.call(DbMsg::State, None).await.unwrap();
            assert_eq!(actor.get_status(), ractor::ActorStatus::Running, "{how}");

            match how {
                "removed" => std::fs::remove_file(&path).unwrap(),
                "replaced" => {
                    let copy = folder.join("copy.db");
                    std::fs::copy(&path, &copy).unwrap();
                    std::fs::rename(&copy, &path).unwrap();
                }
                _ => std::fs::rename(&folder, dir.path().join("away")).unwrap(),
            }
            tokio::time::timeout(Duration::from_secs(10), stopped)
                .await
                .unwrap_or_else(|_| panic!("the database file {how}: the actor went on"))
                .unwrap();
            listener.stop(None);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn another_processs_commit_wakes_the_actor_without_its_timed_look() {
        let (dir, db) = temp_db();
        db.connection()
            .execute_batch(
                "create table notes (id text primary key not null, body text);
                 select crsql_as_crr('notes');",
            )
            .unwrap();
        let path = db.path().to_path_buf();
        // The timed look never comes within the test: only the watch on the WAL can tell.
        let (actor, listener, mut reports) = spawn_listened(db, Duration::from_secs(3600)).await;
        let first = reports.recv().await.unwrap();

        let other = Db::open(&path, &Extension::BuiltIn).unwrap();
        for (round, id) in ["a", "b", "c"].into_iter().enumerate() {
            other
                .connection()
                .execute("insert into notes (id, body) values (?1, 'x')", [id])
                .unwrap();
            let next = tokio::time::timeout(Duration::from_secs(10), reports.recv())
                .await
                .expect("another process's commit was never noticed")
                .unwrap();
            assert_eq!(next.db_version.0, first.db_version.0 + round as i64 + 1);
        }
        other.close().unwrap();
        actor.stop(None);
        listener.stop(None);
        drop(dir);
    }
}
