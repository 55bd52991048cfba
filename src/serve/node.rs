//! The NodeActor: owns the Veilid node. It keeps a private route alive (a new one when Veilid
//! reports it dead) and passes record changes and dead peer routes to the supervisor, which
//! knows the remotes. Peers' calls never enter its mailbox: the task reading the node's events
//! hands them straight to the [`Answerer`], which bounds the work they make, and peers' notes
//! to the [`NoteInbox`]. It also tells the peers listening for this database's new versions
//! (`listeners`).

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, DerivedActorRef};

use super::access::AccessGate;
use super::answering::Answerer;
use super::listeners::{Listeners, Version, spawn_notifier};
use super::note_inbox::{NoteInbox, take_note};
use crate::db_actor::DbHandle;
use crate::metrics;
use crate::net::{NetEvent, Network, Node, OwnRoute, RouteId};
use crate::sync::RecordKey;

/// A failed attempt to make a route is tried again after this long.
const ROUTE_RETRY: Duration = Duration::from_secs(2);

/// What the NodeActor hears.
#[derive(Debug)]
pub enum NodeMsg {
    /// The node reported something other than a call.
    Event(NetEvent),
    /// Make a new private route and have it published.
    RenewRoute,
}

/// What the NodeActor tells the supervisor.
#[derive(Debug)]
pub enum NodeEvent {
    /// This node's private route changed: the route's blob, to publish.
    RouteChanged(Vec<u8>),
    /// A watched record changed.
    ValueChanged {
        /// The record.
        key: RecordKey,
        /// Its subkey 0, when Veilid sent it along.
        value: Option<Vec<u8>>,
        /// The watch ended.
        watch_ended: bool,
    },
    /// Peers' routes died.
    RemoteRoutesDied(Vec<RouteId>),
}

/// Owns the Veilid node: shuts it down when it stops.
#[derive(Debug)]
pub struct NodeActor;

/// Its start: the attached node, the database that answers calls, the supervisor.
#[derive(Debug)]
pub struct NodeArgs {
    /// The node, attached.
    pub node: Node,
    /// Answers peers' questions.
    pub db: DbHandle,
    /// Hears of routes and record changes.
    pub supervisor: DerivedActorRef<NodeEvent>,
    /// Who is answered.
    pub gate: AccessGate,
    /// This database's version, as the listeners are told it.
    pub versions: tokio::sync::watch::Receiver<Option<Version>>,
    /// Where the notes of remotes go.
    pub inbox: Arc<NoteInbox>,
}

/// The node, its route, and the task reading its events.
#[derive(Debug)]
pub struct NodeState {
    node: Option<Node>,
    network: Network,
    /// Reads the node's events: calls to the answerer, notes to the inbox, the rest to this
    /// actor.
    reading: tokio::task::JoinHandle<()>,
    /// Tells the listeners of new versions.
    notifying: tokio::task::JoinHandle<()>,
    supervisor: DerivedActorRef<NodeEvent>,
    route: Option<OwnRoute>,
    renewing: bool,
}

impl Actor for NodeActor {
    type Msg = NodeMsg;
    type State = NodeState;
    type Arguments = NodeArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<NodeMsg>,
        mut args: NodeArgs,
    ) -> Result<NodeState, ActorProcessingErr> {
        let mut events = args.node.take_events();
        let network = args.node.network().clone();
        let listeners = Listeners::default();
        let notifying = spawn_notifier(
            network.clone(),
            listeners.clone(),
            args.gate.clone(),
            args.versions,
        );
        let answerer = Answerer::start(args.db, network.clone(), args.gate, listeners);
        let forward_to = myself.clone();
        let inbox = args.inbox;
        let reading = tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                match event {
                    NetEvent::Call(call) => answerer.take(call).await,
                    NetEvent::Message(bytes) => take_note(&inbox, &bytes),
                    event => {
                        if forward_to.send_message(NodeMsg::Event(event)).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Ok(NodeState {
            network,
            node: Some(args.node),
            reading,
            notifying,
            supervisor: args.supervisor,
            route: None,
            renewing: false,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<NodeMsg>,
        state: &mut NodeState,
    ) -> Result<(), ActorProcessingErr> {
        state.renewing = true;
        myself.send_message(NodeMsg::RenewRoute)?;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<NodeMsg>,
        message: NodeMsg,
        state: &mut NodeState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            NodeMsg::RenewRoute => state.renew_route(&myself).await,
            // Taken by the answerer and the inbox before they reach the mailbox.
            NodeMsg::Event(NetEvent::Call(_) | NetEvent::Message(_)) => {}
            NodeMsg::Event(NetEvent::ValueChanged {
                key,
                value,
                watch_ended,
            }) => {
                let _ = state.supervisor.send_message(NodeEvent::ValueChanged {
                    key,
                    value,
                    watch_ended,
                });
            }
            NodeMsg::Event(NetEvent::RoutesDied { own, mut remote }) => {
                state.network.drop_released(&mut remote);
                let ours_died = state
                    .route
                    .as_ref()
                    .is_some_and(|route| own.contains(&route.id));
                if ours_died && !state.renewing {
                    tracing::info!(target: "ddcp", "Private route died; making a new one");
                    state.renewing = true;
                    myself.send_message(NodeMsg::RenewRoute)?;
                }
                if !remote.is_empty() {
                    let _ = state
                        .supervisor
                        .send_message(NodeEvent::RemoteRoutesDied(remote));
                }
            }
            NodeMsg::Event(NetEvent::Attachment {
                state: attachment,
                ready,
                peers,
            }) => {
                metrics::attachment(ready, peers);
                tracing::debug!(target: "ddcp", attachment, ready, peers, "Veilid attachment");
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<NodeMsg>,
        state: &mut NodeState,
    ) -> Result<(), ActorProcessingErr> {
        state.reading.abort();
        state.notifying.abort();
        if let Some(node) = state.node.take() {
            node.shutdown().await;
        }
        Ok(())
    }
}

impl NodeState {
    async fn renew_route(&mut self, myself: &ActorRef<NodeMsg>) {
        match self.network.new_route().await {
            Ok(route) => {
                if let Some(old) = self.route.replace(route.clone()) {
                    self.network.release_route(&old.id);
                }
                self.renewing = false;
                let _ = self
                    .supervisor
                    .send_message(NodeEvent::RouteChanged(route.blob));
            }
            Err(err) => {
                tracing::warn!(target: "ddcp", error = %err, "Cannot make a private route; retrying");
                myself.send_after(ROUTE_RETRY, || NodeMsg::RenewRoute);
            }
        }
    }
}
