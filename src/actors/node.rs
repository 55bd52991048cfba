//! The NodeActor: owns the Veilid node. It keeps a private route alive (a new one when Veilid
//! reports it dead), hands peers' questions to the DbActor and sends back its answers, and
//! passes record changes and dead peer routes to the supervisor, which knows the remotes.

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::db::DbMsg;
use super::supervisor::SupervisorMsg;
use crate::metrics;
use crate::net::{IncomingCall, NetEvent, Network, Node, OwnRoute};

/// A failed attempt to make a route is tried again after this long.
const ROUTE_RETRY: Duration = Duration::from_secs(2);

/// Veilid gives a callee 5 s to answer; the database gets most of it.
const ANSWER_BOUND: Duration = Duration::from_millis(4000);

/// What the NodeActor hears.
#[derive(Debug)]
pub enum NodeMsg {
    /// The node reported something.
    Event(NetEvent),
    /// Make a new private route and have it published.
    RenewRoute,
}

/// The NodeActor.
pub struct NodeActor;

/// Its start: the attached node, the database that answers calls, the supervisor.
pub struct NodeArgs {
    /// The node, attached.
    pub node: Node,
    /// Answers peers' questions.
    pub db: ActorRef<DbMsg>,
    /// Hears of routes and record changes.
    pub supervisor: ActorRef<SupervisorMsg>,
}

/// Its state.
pub struct NodeState {
    node: Option<Node>,
    network: Network,
    db: ActorRef<DbMsg>,
    supervisor: ActorRef<SupervisorMsg>,
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
        let forward_to = myself.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if forward_to.send_message(NodeMsg::Event(event)).is_err() {
                    break;
                }
            }
        });
        Ok(NodeState {
            network: args.node.network().clone(),
            node: Some(args.node),
            db: args.db,
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
            NodeMsg::Event(NetEvent::Call(call)) => state.answer(call),
            NodeMsg::Event(NetEvent::ValueChanged {
                key,
                value,
                watch_ended,
            }) => {
                let _ = state.supervisor.send_message(SupervisorMsg::ValueChanged {
                    key,
                    value,
                    watch_ended,
                });
            }
            NodeMsg::Event(NetEvent::RoutesDied { own, remote }) => {
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
                        .send_message(SupervisorMsg::RemoteRoutesDied(remote));
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
                    .send_message(SupervisorMsg::RouteChanged(route.blob));
            }
            Err(err) => {
                tracing::warn!(target: "ddcp", error = %err, "Cannot make a private route; retrying");
                myself.send_after(ROUTE_RETRY, || NodeMsg::RenewRoute);
            }
        }
    }

    /// Answers a call off the actor's task: the database may take a while, and the node's
    /// other events must not wait for it.
    fn answer(&self, call: IncomingCall) {
        let db = self.db.clone();
        let network = self.network.clone();
        let question_len = call.message.len();
        tokio::spawn(async move {
            let asked = db
                .call(
                    |reply| DbMsg::Answer(call.message, reply),
                    Some(ANSWER_BOUND),
                )
                .await;
            match asked {
                Ok(ractor::rpc::CallResult::Success(answer)) => {
                    metrics::traffic(question_len, answer.len());
                    if let Err(err) = network.reply(call.id, answer).await {
                        tracing::debug!(target: "ddcp", error = %err, "Cannot answer a call");
                    }
                }
                // No answer: the caller times out and asks again.
                _ => tracing::warn!(target: "ddcp", "The database did not answer a peer in time"),
            }
        });
    }
}
