//! The DoorActor: one database's way in from the network. It keeps the database's private route
//! alive (a new one when Veilid reports it dead, or when the access epoch moves), and opens it
//! in the node's [`Doors`], so that the calls coming in on it are answered by this database's
//! [`Answerer`] and the notes by its [`NoteInbox`]. It also tells the peers listening for this
//! database's new versions (`listeners`).

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, DerivedActorRef};

use super::access::AccessGate;
use super::answering::Answerer;
use super::doors::{Door, Doors};
use super::listeners::{Listeners, Version, spawn_notifier};
use super::note_inbox::NoteInbox;
use crate::db_actor::DbHandle;
use crate::metrics::DbLabel;
use crate::net::{Network, OwnRoute, RouteId};
use tracing::Instrument;

/// A failed attempt to make a route is tried again after this long.
const ROUTE_RETRY: Duration = Duration::from_secs(2);

/// What the DoorActor hears.
#[derive(Debug)]
pub enum DoorMsg {
    /// Make a new private route and have it published.
    RenewRoute,
    /// Veilid reported this route of the database's dead.
    RouteDied(RouteId),
}

/// What the DoorActor tells its database's supervisor.
#[derive(Debug)]
pub enum DoorEvent {
    /// The database's private route changed: the route's blob, to publish.
    RouteChanged(Vec<u8>),
}

/// Keeps one database's route; closes its door when it stops.
#[derive(Debug)]
pub struct DoorActor;

/// Its start.
#[derive(Debug)]
pub struct DoorArgs {
    /// The node's network.
    pub network: Network,
    /// The node's doors, where this database's route is opened.
    pub doors: Doors,
    /// Answers peers' questions.
    pub db: DbHandle,
    /// Hears of the route.
    pub supervisor: DerivedActorRef<DoorEvent>,
    /// Who is answered.
    pub gate: AccessGate,
    /// This database's version, as the listeners are told it.
    pub versions: tokio::sync::watch::Receiver<Option<Version>>,
    /// Where the notes of remotes go.
    pub inbox: Arc<NoteInbox>,
}

/// The route, and what answers on it.
pub struct DoorState {
    network: Network,
    doors: Doors,
    answerer: Arc<Answerer>,
    inbox: Arc<NoteInbox>,
    /// Tells the listeners of new versions.
    notifying: tokio::task::JoinHandle<()>,
    supervisor: DerivedActorRef<DoorEvent>,
    route: Option<OwnRoute>,
    renewing: bool,
    metrics: DbLabel,
}

impl Actor for DoorActor {
    type Msg = DoorMsg;
    type State = DoorState;
    type Arguments = DoorArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<DoorMsg>,
        args: DoorArgs,
    ) -> Result<DoorState, ActorProcessingErr> {
        let listeners = Listeners::labelled(args.db.metrics().clone());
        let notifying = spawn_notifier(
            args.network.clone(),
            listeners.clone(),
            args.gate.clone(),
            args.versions,
        );
        let metrics = args.db.metrics().clone();
        let answerer = Answerer::start(args.db, args.network.clone(), args.gate, listeners);
        Ok(DoorState {
            network: args.network,
            doors: args.doors,
            answerer: Arc::new(answerer),
            inbox: args.inbox,
            notifying,
            supervisor: args.supervisor,
            route: None,
            renewing: false,
            metrics,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<DoorMsg>,
        state: &mut DoorState,
    ) -> Result<(), ActorProcessingErr> {
        state.renewing = true;
        myself.send_message(DoorMsg::RenewRoute)?;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<DoorMsg>,
        message: DoorMsg,
        state: &mut DoorState,
    ) -> Result<(), ActorProcessingErr> {
        let span = state.metrics.span();
        match message {
            DoorMsg::RenewRoute => state.renew_route(&myself).instrument(span).await,
            DoorMsg::RouteDied(id) => {
                let ours = state.route.as_ref().is_some_and(|route| route.id == id);
                if ours && !state.renewing {
                    span.in_scope(|| {
                        tracing::info!(target: "ddcp", "Private route died; making a new one");
                    });
                    state.renewing = true;
                    myself.send_message(DoorMsg::RenewRoute)?;
                }
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<DoorMsg>,
        state: &mut DoorState,
    ) -> Result<(), ActorProcessingErr> {
        state.close();
        Ok(())
    }
}

/// Killed (its supervisor failed to start, say), the actor runs no post_stop: its route is
/// closed and released when its state goes all the same.
impl Drop for DoorState {
    fn drop(&mut self) {
        self.close();
    }
}

impl std::fmt::Debug for DoorState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DoorState")
            .field("route", &self.route.as_ref().map(|route| &route.id))
            .field("renewing", &self.renewing)
            .finish_non_exhaustive()
    }
}

impl DoorState {
    /// Nothing more comes in by this database's route, and no note goes out.
    fn close(&mut self) {
        self.notifying.abort();
        if let Some(route) = self.route.take() {
            self.doors.close(&route.id);
            self.network.release_route(&route.id);
        }
    }

    async fn renew_route(&mut self, myself: &ActorRef<DoorMsg>) {
        match self.network.new_route().await {
            Ok(route) => {
                let door = Door {
                    answerer: Arc::clone(&self.answerer),
                    inbox: Arc::clone(&self.inbox),
                    keeper: myself.clone(),
                };
                self.doors.open(route.id.clone(), door);
                if let Some(old) = self.route.replace(route.clone()) {
                    // Whoever was left behind by a new epoch calls the old route in vain.
                    self.doors.close(&old.id);
                    self.network.release_route(&old.id);
                }
                self.renewing = false;
                let _ = self
                    .supervisor
                    .send_message(DoorEvent::RouteChanged(route.blob));
            }
            Err(err) => {
                tracing::warn!(target: "ddcp", error = %err, "Cannot make a private route; retrying");
                myself.send_after(ROUTE_RETRY, || DoorMsg::RenewRoute);
            }
        }
    }
}
