//! The PublisherActor: keeps this database's Status in its DHT record current. It learns the
//! database's state from the DbActor and the private route from the NodeActor (both through the
//! supervisor) and writes the Status whenever either changes, sealed for the members while the
//! database is private (the [`AccessGate`] does it); a failed write is retried. An unchanged
//! Status is written again now and then, so that nodes that joined since hold it too
//! ([`crate::net::RefreshPauses`] says why and when).

mod refresh;

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tracing::Instrument;

use self::refresh::Refreshes;
use super::access::AccessGate;
use crate::db_actor::LocalState;
use crate::metrics::{self, RewriteOutcome};
use crate::net::{Network, RecordIdentity, RefreshPauses, Rewrite};
use crate::sync::protocol::Status;

/// A failed write is tried again after this long.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// What the PublisherActor hears.
#[derive(Debug)]
pub enum PublisherMsg {
    /// The database's state changed.
    Local(LocalState),
    /// This node's private route changed.
    Route(Vec<u8>),
    /// Write the Status if it is not current (after a failed write).
    Publish,
    /// The access mode or the members changed: seal the Status anew.
    AccessChanged,
    /// Write the Status again, unchanged (the timer of [`Refreshes`], numbered).
    Refresh(u64),
}

/// Writes the Status; a failed write is retried, a failed start restarts it.
#[derive(Debug)]
pub struct PublisherActor;

/// The node and record to publish to, and what is known so far.
#[derive(Debug)]
pub struct PublisherArgs {
    /// The node.
    pub network: Network,
    /// The database's record and owner.
    pub identity: RecordIdentity,
    /// The state and route known so far (after a restart, the supervisor's copies).
    pub local: Option<LocalState>,
    /// The route known so far.
    pub route: Option<Vec<u8>>,
    /// Seals the Status while the database is private.
    pub gate: AccessGate,
}

/// What was published last, so that an unchanged Status is not written again but on the
/// refresh timer.
#[derive(Debug)]
pub struct PublisherState {
    args: PublisherArgs,
    published: Option<Published>,
    retry_pending: bool,
    refreshes: Refreshes,
}

/// The Status written last, under which access state (the gate's generation), and the bytes
/// written: a sealed Status is sealed anew each time, so a rewrite sends the same bytes, or
/// it would be a new value and every watcher would pull.
#[derive(Debug)]
struct Published {
    wanted: (Status, u64),
    bytes: Vec<u8>,
}

impl Actor for PublisherActor {
    type Msg = PublisherMsg;
    type State = PublisherState;
    type Arguments = PublisherArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<PublisherMsg>,
        args: PublisherArgs,
    ) -> Result<PublisherState, ActorProcessingErr> {
        Ok(PublisherState {
            args,
            published: None,
            retry_pending: false,
            refreshes: Refreshes::new(myself, RefreshPauses::spread()),
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<PublisherMsg>,
        state: &mut PublisherState,
    ) -> Result<(), ActorProcessingErr> {
        // Failing here fails the actor: the supervisor starts it again later.
        let args = &state.args;
        match args.network.open_own_record(&args.identity).await {
            Err(err) if err.is_record_not_found_yet() => {
                // A record `ddcp init` made is in the Veilid store of its own state dir only,
                // until its first `ddcp serve` there publishes it: another node (a host's)
                // finds it nowhere. A record published before can also be missed for a while
                // by a node that has just joined (issue 25's first contact): the hint names
                // both, since the error cannot tell them apart.
                return Err(format!(
                    "{err} (until the node that made a database publishes it, no other node can open it: serve a database made by `ddcp init` once in its own folder first; one published before may not be found yet by a node that has just joined, and is looked for again)"
                )
                .into());
            }
            opened => opened?,
        }
        myself.send_message(PublisherMsg::Publish)?;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<PublisherMsg>,
        message: PublisherMsg,
        state: &mut PublisherState,
    ) -> Result<(), ActorProcessingErr> {
        let span = state.args.gate.metrics().span();
        state.take(message, &myself).instrument(span).await
    }
}

impl PublisherState {
    /// Takes what the supervisor tells, and publishes when the Status to publish changed.
    async fn take(
        &mut self,
        message: PublisherMsg,
        myself: &ActorRef<PublisherMsg>,
    ) -> Result<(), ActorProcessingErr> {
        let state = self;
        let refresh = match message {
            PublisherMsg::Refresh(number) if !state.refreshes.is_due(number) => return Ok(()),
            PublisherMsg::Refresh(_) => true,
            _ => false,
        };
        match message {
            PublisherMsg::Local(local) => state.args.local = Some(local),
            PublisherMsg::Route(route) => state.args.route = Some(route),
            PublisherMsg::Publish => state.retry_pending = false,
            PublisherMsg::AccessChanged | PublisherMsg::Refresh(_) => {}
        }
        let Some(status) = state.wanted() else {
            return Ok(());
        };
        let generation = state.args.gate.generation();
        let wanted = (status, generation);
        if let Some(published) = &state.published
            && published.wanted == wanted
        {
            if refresh {
                state.refresh().await;
            }
            return Ok(());
        }
        let (status, _) = &wanted;
        let network = &state.args.network;
        let bytes = state.args.gate.publishable(status);
        match network.publish(&state.args.identity, bytes.clone()).await {
            Ok(()) => {
                tracing::info!(
                    target: "ddcp",
                    db_version = status.db_version.0,
                    key = %state.args.identity.key,
                    "Database changed, updated status"
                );
                state.published = Some(Published { wanted, bytes });
                state.refreshes.changed();
            }
            Err(err) => {
                metrics::error(state.args.gate.metrics(), "publish");
                tracing::warn!(target: "ddcp", error = %err, "Cannot publish status; retrying");
                if !state.retry_pending {
                    state.retry_pending = true;
                    myself.send_after(RETRY_AFTER, || PublisherMsg::Publish);
                }
            }
        }
        Ok(())
    }

    /// Writes the published Status again, the same bytes; the next rewrite waits longer.
    async fn refresh(&mut self) {
        let Some(published) = &self.published else {
            return;
        };
        let network = &self.args.network;
        let metrics_label = self.args.gate.metrics();
        match network
            .rewrite(&self.args.identity, published.bytes.clone())
            .await
        {
            Ok(Rewrite::Written) => {
                metrics::status_rewrite(metrics_label, RewriteOutcome::Written);
                tracing::debug!(target: "ddcp", "Wrote the unchanged status again");
                self.refreshes.refreshed();
            }
            Ok(Rewrite::Superseded) => {
                metrics::status_rewrite(metrics_label, RewriteOutcome::Superseded);
                // Another node writes this record (the same database served twice, or
                // restored elsewhere): its value stands, as it did before the rewrites, until
                // this database changes and publishes over it.
                tracing::warn!(target: "ddcp", key = %self.args.identity.key,
                    "The record holds a status this node did not write: not writing it again until this database changes");
                self.refreshes.stop();
            }
            // Not an error worth a retry: the value stands where it was written, and the next
            // rewrite comes anyway.
            Err(err) => {
                metrics::status_rewrite(metrics_label, RewriteOutcome::Failed);
                tracing::debug!(target: "ddcp", error = %err,
                    "Cannot write the unchanged status again");
                self.refreshes.refreshed();
            }
        }
    }

    /// The Status to publish, once both the database's state and a route are known.
    fn wanted(&self) -> Option<Status> {
        let local = self.args.local.as_ref()?;
        let route = self.args.route.as_ref()?;
        Some(Status {
            site_id: local.site_id,
            db_version: local.db_version,
            schema_fingerprint: local.schema_fingerprint,
            history: local.history,
            route: route.clone(),
            // The gate fills in the database's member id.
            public_key: Vec::new(),
            incarnation: local.incarnation,
        })
    }
}
