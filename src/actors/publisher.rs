//! The PublisherActor: keeps this database's Status in its DHT record current. It learns the
//! database's state from the DbActor and the private route from the NodeActor (both through the
//! supervisor) and writes the Status whenever either changes; a failed write is retried.

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::db::LocalState;
use crate::metrics;
use crate::net::{Network, RecordIdentity};
use crate::sync::codec::encode_status;
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
}

/// Writes the Status; a failed write is retried, a failed start restarts it.
pub struct PublisherActor;

/// The node and record to publish to, and what is known so far.
pub struct PublisherArgs {
    /// The node.
    pub network: Network,
    /// The database's record and owner.
    pub identity: RecordIdentity,
    /// The state and route known so far (after a restart, the supervisor's copies).
    pub local: Option<LocalState>,
    /// The route known so far.
    pub route: Option<Vec<u8>>,
}

/// What was published last, so that an unchanged Status is not written again.
pub struct PublisherState {
    args: PublisherArgs,
    published: Option<Status>,
    retry_pending: bool,
}

impl Actor for PublisherActor {
    type Msg = PublisherMsg;
    type State = PublisherState;
    type Arguments = PublisherArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<PublisherMsg>,
        args: PublisherArgs,
    ) -> Result<PublisherState, ActorProcessingErr> {
        Ok(PublisherState {
            args,
            published: None,
            retry_pending: false,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<PublisherMsg>,
        state: &mut PublisherState,
    ) -> Result<(), ActorProcessingErr> {
        // Failing here fails the actor: the supervisor starts it again later.
        let args = &state.args;
        args.network.open_own_record(&args.identity).await?;
        myself.send_message(PublisherMsg::Publish)?;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<PublisherMsg>,
        message: PublisherMsg,
        state: &mut PublisherState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            PublisherMsg::Local(local) => state.args.local = Some(local),
            PublisherMsg::Route(route) => state.args.route = Some(route),
            PublisherMsg::Publish => state.retry_pending = false,
        }
        let Some(status) = state.wanted() else {
            return Ok(());
        };
        if state.published.as_ref() == Some(&status) {
            return Ok(());
        }
        let network = &state.args.network;
        match network
            .publish(&state.args.identity, encode_status(&status))
            .await
        {
            Ok(()) => {
                tracing::info!(
                    target: "ddcp",
                    db_version = status.db_version.0,
                    key = %state.args.identity.key,
                    "Database changed, updated status"
                );
                state.published = Some(status);
            }
            Err(err) => {
                metrics::error("publish");
                tracing::warn!(target: "ddcp", error = %err, "Cannot publish status; retrying");
                if !state.retry_pending {
                    state.retry_pending = true;
                    myself.send_after(RETRY_AFTER, || PublisherMsg::Publish);
                }
            }
        }
        Ok(())
    }
}

impl PublisherState {
    /// The Status to publish, once both the database's state and a route are known.
    fn wanted(&self) -> Option<Status> {
        let local = self.args.local.as_ref()?;
        let route = self.args.route.as_ref()?;
        Some(Status {
            site_id: local.site_id,
            db_version: local.db_version,
            schema_fingerprint: local.schema_fingerprint,
            route: route.clone(),
            // Private databases (Status encrypted for members) are not built yet.
            public_key: Vec::new(),
        })
    }
}
