//! The NodeActor: owns the Veilid node that every database of this `ddcp serve` shares. Peers'
//! calls and notes never enter its mailbox: the task reading the node's events hands each to
//! the database whose route it came in on ([`Doors`]). The rest it passes on: a dead route of a
//! database's to the actor keeping it; record changes and peers' dead routes to every database
//! that joined (each knows its own remotes).

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, DerivedActorRef};

use super::door::DoorMsg;
use super::doors::Doors;
use crate::metrics;
use crate::net::{NetEvent, Network, Node, RouteId};
use crate::sync::RecordKey;

/// What the NodeActor hears.
#[derive(Debug)]
pub enum NodeMsg {
    /// The node reported something other than a call or a note.
    Event(NetEvent),
    /// A database's supervisor hears of record changes and peers' dead routes from now on.
    Join(DerivedActorRef<NodeEvent>),
    /// It no longer does (it stops).
    Leave(ActorId),
}

/// What the NodeActor tells every database that joined.
#[derive(Clone, Debug)]
pub enum NodeEvent {
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

/// Its start: the attached node, and the doors its calls and notes go through.
#[derive(Debug)]
pub struct NodeArgs {
    /// The node, attached.
    pub node: Node,
    /// The databases' routes.
    pub doors: Doors,
}

/// The node, and the task reading its events.
#[derive(Debug)]
pub struct NodeState {
    node: Option<Node>,
    network: Network,
    doors: Doors,
    /// Reads the node's events: calls and notes through the doors, the rest to this actor.
    reading: tokio::task::JoinHandle<()>,
    /// The databases that joined.
    joined: Vec<DerivedActorRef<NodeEvent>>,
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
        let forward_to = myself.clone();
        let doors = args.doors.clone();
        let reading = tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                match event {
                    NetEvent::Call(call) => doors.take_call(call).await,
                    NetEvent::Message { message, route } => {
                        doors.take_note(&message, route.as_ref());
                    }
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
            doors: args.doors,
            node: Some(args.node),
            reading,
            joined: Vec::new(),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<NodeMsg>,
        message: NodeMsg,
        state: &mut NodeState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            NodeMsg::Join(database) => state.joined.push(database),
            NodeMsg::Leave(id) => state.joined.retain(|database| database.get_id() != id),
            // Taken through the doors before they reach the mailbox.
            NodeMsg::Event(NetEvent::Call(_) | NetEvent::Message { .. }) => {}
            NodeMsg::Event(NetEvent::ValueChanged {
                key,
                value,
                watch_ended,
            }) => state.tell_all(NodeEvent::ValueChanged {
                key,
                value,
                watch_ended,
            }),
            NodeMsg::Event(NetEvent::RoutesDied { own, mut remote }) => {
                state.network.drop_released(&mut remote);
                for (route, keeper) in state.doors.keepers_of(&own) {
                    let _ = keeper.send_message(DoorMsg::RouteDied(route));
                }
                if !remote.is_empty() {
                    state.tell_all(NodeEvent::RemoteRoutesDied(remote));
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
        if let Some(node) = state.node.take() {
            node.shutdown().await;
        }
        Ok(())
    }
}

impl NodeState {
    /// Tells every database that joined; one that stopped without leaving is forgotten.
    fn tell_all(&mut self, event: NodeEvent) {
        self.joined
            .retain(|database| database.send_message(event.clone()).is_ok());
    }
}
