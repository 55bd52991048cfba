//! A RemoteActor: keeps this database up to date with one remote. It opens the remote's DHT
//! record (waiting for it, quietly, while the remote has not published it yet), watches it
//! (renewing the watch when Veilid ends it) and pulls whenever the remote's Status shows a
//! version it has not pulled; only when no node accepts the watch does it poll. A watch can
//! also go quiet without ending, so the Status is read all the same: every [`CHECK_EVERY`]
//! while the remote changes, less often while it does not (`checks`).
//! A private remote that does not count this database among its members (removed, or not
//! added yet) is said once, and the actor waits for the remote's Status to change: a restart
//! could not help. Any other failure ends the actor; the supervisor restarts it alone, with
//! backoff.
//!
//! Its pulls also ask the remote to send notes of its new versions straight to this node
//! (`listen`, see `listeners`): a note has it pull at once, on the route it last read, without
//! waiting for the DHT to tell it. The listen is asked again every [`LISTEN_RENEW`] and whenever
//! this node's route changes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, DerivedActorRef, RpcReplyPort};
use tracing::Instrument;

mod checks;
mod notes;
mod record_hold;
mod waiting;

use super::note_inbox::NoteInbox;
use crate::db::RemoteName;
use crate::db_actor::DbHandle;
use crate::metrics;
use crate::net::{FirstContact, Network, WARN_AFTER};
use crate::pull::{
    PullReport, RemoteLink, RemoteView, check_owner, open_published, pull_remote, read_status,
};
use crate::sync::protocol::{Listen, ListenToken};
use crate::sync::{DbVersion, Incarnation, MemberKeys};
use checks::Checks;
pub use checks::{CHECK_EVERY, QUIET_AFTER, QUIET_CHECK_EVERY};
pub use record_hold::holder_of;
use waiting::Waiting;

/// What a RemoteActor hears.
#[derive(Debug)]
pub enum RemoteMsg {
    /// Look for the remote's record (again): nothing else happens until it is open.
    Open,
    /// Read the remote's Status and pull what is new.
    Sync,
    /// The remote's record changed (its new Status when Veilid sent it along), or the watch
    /// on it ended.
    Changed {
        /// Subkey 0's new value.
        value: Option<Vec<u8>>,
        /// The watch is over: renew it.
        watch_ended: bool,
    },
    /// Some imported routes died: the remote's may be among them.
    RoutesDied,
    /// Pull now, whatever the remote's Status says, and tell how it went (`ddcp pull` through
    /// the daemon). A failure also ends the actor, as any failure does.
    PullNow(RpcReplyPort<Result<PullReport, String>>),
    /// Read the remote's Status though no change was reported: see `checks`.
    Check,
    /// A note from the remote waits in the inbox.
    Noted,
}

/// How often the remote is asked again to send notes, at the latest: at the first check past
/// it, within the remote's `LISTEN_FOR` (10 minutes) even at the checks' quiet pace, so that a
/// listen never lapses. A pull that finds nothing new costs one app call through two private
/// routes, more than a Status check: renewed every 4 minutes, they were about a quarter of an
/// idle host's work (estimated from benches/hosting.rs's windows with and without them).
pub const LISTEN_RENEW: Duration = Duration::from_secs(6 * 60);

/// Keeps this database up to date with one remote (see the module documentation); a failure
/// ends it, and the supervisor starts another.
#[derive(Debug)]
pub struct RemoteActor;

/// What a RemoteActor tells the supervisor. Each names the actor it comes from: the reports of
/// one since replaced by a restart are ignored.
#[derive(Debug)]
pub enum RemoteEvent {
    /// The remote's Status showed this version.
    Seen {
        /// The remote.
        name: RemoteName,
        /// The actor that saw it.
        from: ActorId,
        /// Its db_version.
        version: DbVersion,
    },
    /// The remote cannot be pulled until something changes (it does not count this database
    /// among its members, or names another owner than the pinned one): the actor waits for
    /// that rather than fail again and again.
    Waiting {
        /// The remote.
        name: RemoteName,
        /// The actor that was refused.
        from: ActorId,
        /// What to do about it, in one line.
        error: String,
    },
    /// A pull of the remote finished.
    Pulled {
        /// The remote.
        name: RemoteName,
        /// The actor that pulled.
        from: ActorId,
        /// What the pull did.
        report: PullReport,
    },
}

/// What a RemoteActor needs: the remote, the node and database it works with.
#[derive(Debug)]
pub struct RemoteArgs {
    /// The remote.
    pub link: RemoteLink,
    /// The node.
    pub network: Network,
    /// The database the pages go to.
    pub db: DbHandle,
    /// How often to poll when the record cannot be watched.
    pub poll_interval: Duration,
    /// Hears how each pull went.
    pub supervisor: DerivedActorRef<RemoteEvent>,
    /// This database's member identity, for a private remote.
    pub me: Arc<MemberKeys>,
    /// Where the remote's notes arrive, and this node's route for them.
    pub inbox: Arc<NoteInbox>,
}

/// A RemoteActor's state between messages.
#[derive(Debug)]
pub struct RemoteState {
    args: RemoteArgs,
    /// This actor, named in its reports: the supervisor ignores those of an actor it replaced.
    actor_id: ActorId,
    /// The remote's version, and its life, when this actor last finished pulling.
    pulled: Option<(DbVersion, Incarnation)>,
    /// The timer that polls while the record cannot be watched.
    polling: Option<tokio::task::JoinHandle<()>>,
    /// The checks of the Status while the record is open.
    checks: Option<Checks>,
    /// Until the remote's record is open: the looks for it so far.
    first_contact: Option<FirstContact>,
    /// Said once that the remote's record is taking long.
    warned: bool,
    /// What the remote's notes quote.
    token: ListenToken,
    /// The remote's Status as last read: a note is pulled on its route.
    last_view: Option<RemoteView>,
    /// When the remote was last asked for notes, and on which of this node's routes.
    listened: Option<(Instant, Vec<u8>)>,
    /// Why the remote cannot be pulled until something changes (said once, until a pull
    /// works again).
    waiting: Option<Waiting>,
}

impl Actor for RemoteActor {
    type Msg = RemoteMsg;
    type State = RemoteState;
    type Arguments = RemoteArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<RemoteMsg>,
        args: RemoteArgs,
    ) -> Result<RemoteState, ActorProcessingErr> {
        let token = args.inbox.open(&args.link.key, myself.clone());
        metrics::remote_started(args.db.metrics(), args.link.name.as_str());
        Ok(RemoteState {
            args,
            actor_id: myself.get_id(),
            pulled: None,
            polling: None,
            checks: None,
            first_contact: Some(FirstContact::default()),
            warned: false,
            token,
            last_view: None,
            listened: None,
            waiting: None,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<RemoteMsg>,
        _state: &mut RemoteState,
    ) -> Result<(), ActorProcessingErr> {
        myself.send_message(RemoteMsg::Open)?;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<RemoteMsg>,
        message: RemoteMsg,
        state: &mut RemoteState,
    ) -> Result<(), ActorProcessingErr> {
        let span = state.args.db.metrics().span();
        let handled = match state.handle(message, &myself).instrument(span).await {
            Err(err) if let Some(why) = Waiting::from_error(&err) => {
                state.waits(why, err.to_string());
                Ok(())
            }
            handled => handled,
        };
        if handled.is_err() {
            // ractor skips post_stop for an actor whose handler failed: the record (and its
            // watch) is let go here, before the supervisor starts a successor that opens it.
            state.args.inbox.close(&state.token, state.actor_id);
            state
                .args
                .network
                .close_record_as(state.holder(), &state.args.link.key)
                .await;
        }
        handled
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<RemoteMsg>,
        state: &mut RemoteState,
    ) -> Result<(), ActorProcessingErr> {
        state.args.inbox.close(&state.token, state.actor_id);
        state
            .args
            .network
            .close_record_as(state.holder(), &state.args.link.key)
            .await;
        Ok(())
    }
}

impl RemoteState {
    async fn handle(
        &mut self,
        message: RemoteMsg,
        myself: &ActorRef<RemoteMsg>,
    ) -> Result<(), ActorProcessingErr> {
        let state = self;
        if state.first_contact.is_some() {
            return state.before_contact(message, myself).await;
        }
        match message {
            RemoteMsg::Open => {}
            RemoteMsg::Sync | RemoteMsg::RoutesDied => {
                if state.polling.is_some() {
                    // Polling is the fallback: try to watch again at every poll.
                    state.watch_record(myself).await;
                }
                state.sync(None, false).await?;
            }
            RemoteMsg::PullNow(reply) => {
                let outcome = state.sync(None, true).await;
                let _ = reply.send(match &outcome {
                    Ok(report) => Ok(report.clone().unwrap_or_default()),
                    Err(err) => Err(err.to_string()),
                });
                outcome?;
            }
            RemoteMsg::Check => {
                let checked = state.check(myself).await;
                if let Some(checks) = &mut state.checks {
                    checks.set_timer();
                }
                checked?;
            }
            RemoteMsg::Noted => state.take_note().await?,
            RemoteMsg::Changed { value, watch_ended } => {
                if watch_ended {
                    state.watch_record(myself).await;
                }
                // A value that does not decode (or open) is read again from the network by
                // `sync`, whose pull reports why.
                let link = &state.args.link;
                let status =
                    value.and_then(|bytes| open_published(&state.args.me, &link.key, &bytes).ok());
                if status.is_some() || !watch_ended {
                    state.sync(status, false).await?;
                }
            }
        }
        Ok(())
    }

    /// While the remote's record is not open: looks for it, and answers what needs it with
    /// why it cannot be done yet.
    async fn before_contact(
        &mut self,
        message: RemoteMsg,
        myself: &ActorRef<RemoteMsg>,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            RemoteMsg::Open => self.open(myself).await,
            RemoteMsg::PullNow(reply) => {
                let _ = reply.send(Err(
                    "its record is not on the network yet: has it served? (waiting for it)".into(),
                ));
                Ok(())
            }
            // Nothing to pull from yet; the open brings a Sync.
            RemoteMsg::Sync
            | RemoteMsg::RoutesDied
            | RemoteMsg::Changed { .. }
            | RemoteMsg::Check => Ok(()),
            RemoteMsg::Noted => {
                // Taken, so that the next note tells this actor again.
                self.args.inbox.take(&self.token);
                Ok(())
            }
        }
    }

    /// Opens the remote's record, then watches it and pulls. A record not on the network yet
    /// is the normal first contact with a peer that has not served yet (or starts now): said
    /// once, at info, and looked for again, quickly at first.
    async fn open(&mut self, myself: &ActorRef<RemoteMsg>) -> Result<(), ActorProcessingErr> {
        let Some(contact) = self.first_contact.as_mut() else {
            return Ok(());
        };
        let (name, key) = (&self.args.link.name, &self.args.link.key);
        match self
            .args
            .network
            .open_record_as(holder_of(self.actor_id), key, contact.bound())
            .await
        {
            Ok(()) => {
                if contact.misses() > 0 {
                    tracing::info!(target: "ddcp", remote_name = %name,
                        "Found the remote's record after {:.1} s", contact.waited().as_secs_f64());
                }
                self.first_contact = None;
                self.watch_record(myself).await;
                self.checks = Some(Checks::start(myself.clone()));
                myself.send_message(RemoteMsg::Sync)?;
                Ok(())
            }
            Err(err) if err.is_record_not_found_yet() => {
                if contact.misses() == 0 {
                    tracing::info!(target: "ddcp", remote_name = %name,
                        "The remote's record is not on the network yet (has it served?): waiting for it");
                } else if !self.warned && contact.waited() >= WARN_AFTER {
                    self.warned = true;
                    tracing::warn!(target: "ddcp", remote_name = %name,
                        "Still no record for the remote after {} minutes: is its key right, and does it serve?",
                        WARN_AFTER.as_secs() / 60);
                }
                let pause = contact.missed();
                myself.send_after(pause, || RemoteMsg::Open);
                Ok(())
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Watches the remote's record; polls when no node takes the watch.
    async fn watch_record(&mut self, myself: &ActorRef<RemoteMsg>) {
        let name = &self.args.link.name;
        match self.args.network.watch_record(&self.args.link.key).await {
            Ok(true) => {
                metrics::watched(self.args.db.metrics(), name.as_str());
                if let Some(timer) = self.polling.take() {
                    timer.abort();
                    tracing::info!(target: "ddcp", remote_name = %name, "Watching the remote again; polling stopped");
                } else {
                    tracing::debug!(target: "ddcp", remote_name = %name, "Watching remote");
                }
            }
            outcome => {
                let error = match outcome {
                    Err(err) => err.to_string(),
                    Ok(_) => "no node accepted the watch".to_string(),
                };
                metrics::polling(self.args.db.metrics(), name.as_str());
                if self.polling.is_none() {
                    let interval = self.args.poll_interval;
                    tracing::warn!(target: "ddcp", remote_name = %name, error,
                        "Cannot watch the remote; polling every {interval:?}");
                    self.polling = Some(myself.send_interval(interval, || RemoteMsg::Sync));
                }
            }
        }
    }

    /// Pulls when the remote has something this database has not pulled, or when `force`d;
    /// what the pull did, or `None` when there was nothing to pull. Without a Status in hand,
    /// it reads the remote's.
    async fn sync(
        &mut self,
        status: Option<RemoteView>,
        force: bool,
    ) -> Result<Option<PullReport>, ActorProcessingErr> {
        let name = self.args.link.name.clone();
        let (network, me, link) = (&self.args.network, &self.args.me, &self.args.link);
        let view = match status {
            Some(view) => view,
            None => read_status(network, me, &link.key)
                .await
                .inspect_err(|err| metrics::error(self.args.db.metrics(), err.kind()))?,
        };
        // A Status naming another owner than the pinned one says nothing: not its version,
        // not the key its notes are opened with. Nor is the last one kept to pull a note on:
        // notes are dropped (counted unopened) until a Status is taken again.
        if let Err(err) = check_owner(&self.args.db, link, &view).await {
            metrics::error(self.args.db.metrics(), err.kind());
            self.last_view = None;
            return Err(err.into());
        }
        // The remote's version as read: the supervisor hears it at once, so that the lag
        // shows even while the pull cannot be done (the database locked by an application).
        let _ = self.args.supervisor.send_message(RemoteEvent::Seen {
            name: name.clone(),
            from: self.actor_id,
            version: view.status.db_version,
        });
        // What the next note's pull goes by (only its version is the note's): the Status as
        // last read, its route the newest.
        self.last_view = Some(view.clone());
        // A remote restored from a backup counts its versions again from the backup's: one of
        // another life is pulled whatever its version. A database added back as a member pulls
        // too, though the remote may have written nothing since (adding a member moves no
        // version): that pull is what says it is a member again.
        if let Some((version, incarnation)) = self.pulled
            && !force
            && self.waiting.is_none()
            && view.status.db_version <= version
            && view.status.incarnation == incarnation
        {
            return Ok(None);
        }
        let route = self.args.inbox.route();
        let listen = route.clone().map(|route| Listen {
            route,
            token: self.token,
        });
        let started = Instant::now();
        let db = &self.args.db;
        let pulled = pull_remote(network, db, me, link, Some(view), listen, &mut |_| {}).await;
        let report = pulled.inspect_err(|err| metrics::error(db.metrics(), err.kind()))?;
        if let Some(route) = route {
            self.listened = Some((Instant::now(), route));
        }
        metrics::pull_took(
            db.metrics(),
            link.name.as_str(),
            started.elapsed().as_secs_f64(),
        );
        self.waited();
        let pulled = Some((report.remote_version, report.remote_incarnation));
        if self.pulled != pulled
            && let Some(checks) = &mut self.checks
        {
            checks.remote_changed();
        }
        self.pulled = pulled;
        let _ = self.args.supervisor.send_message(RemoteEvent::Pulled {
            name,
            from: self.actor_id,
            report: report.clone(),
        });
        Ok(Some(report))
    }
}
