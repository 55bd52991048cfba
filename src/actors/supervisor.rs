//! The Supervisor: starts the tree, routes what one child learns to the others, and restarts a
//! failed publisher or remote alone, with growing backoff. The node and the database are the
//! ground the others stand on: when one of them fails, serving stops with its error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SupervisionEvent};

use super::db::{DbActor, DbArgs, DbMsg, LocalState};
use super::node::{NodeActor, NodeArgs, NodeMsg};
use super::publisher::{PublisherActor, PublisherArgs, PublisherMsg};
use super::pulling::RemoteLink;
use super::remote::{RemoteActor, RemoteArgs, RemoteMsg};
use crate::db::{Db, RemoteName};
use crate::net::{Network, Node, RecordIdentity, RouteId};
use crate::sync::RecordKey;

/// The first restart of a failed child waits this long ...
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// ... each further one twice as long, up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A child that ran this long before failing starts again from the first backoff.
const HEALTHY_RUN: Duration = Duration::from_secs(300);

/// How `ddcp serve` runs.
pub struct ServeOptions {
    /// How often a remote whose record cannot be watched is polled.
    pub poll_interval: Duration,
}

/// What the supervisor hears.
#[derive(Debug)]
pub enum SupervisorMsg {
    /// The database's state changed (from the DbActor).
    LocalChanged(LocalState),
    /// This node's private route changed (from the NodeActor).
    RouteChanged(Vec<u8>),
    /// A watched record changed (from the NodeActor).
    ValueChanged {
        /// The record.
        key: RecordKey,
        /// Its subkey 0, when Veilid sent it along.
        value: Option<Vec<u8>>,
        /// The watch ended.
        watch_ended: bool,
    },
    /// Peers' routes died (from the NodeActor).
    RemoteRoutesDied(Vec<RouteId>),
    /// Start a failed remote again.
    RestartRemote(RemoteName),
    /// Start the failed publisher again.
    RestartPublisher,
}

/// The Supervisor.
pub struct Supervisor;

/// Its start: everything the tree needs, opened and attached by the caller so that a bad
/// database or an unreachable network is reported before anything runs.
pub struct SupervisorArgs {
    /// The attached node.
    pub node: Node,
    /// The database.
    pub db: Db,
    /// Its record.
    pub identity: RecordIdentity,
    /// The remotes to pull.
    pub remotes: Vec<RemoteLink>,
    /// Knobs.
    pub options: ServeOptions,
    /// Why serving stopped, when a child it cannot do without failed.
    pub fatal: Arc<Mutex<Option<String>>>,
}

/// A child the supervisor restarts: its actor (none while it waits to restart) and its
/// restart history.
struct Restartable<M: ractor::Message> {
    actor: Option<ActorRef<M>>,
    started: Instant,
    restarts: u32,
    backoff: Duration,
}

impl<M: ractor::Message> Restartable<M> {
    fn running(actor: ActorRef<M>) -> Self {
        Restartable {
            actor: Some(actor),
            started: Instant::now(),
            restarts: 0,
            backoff: FIRST_BACKOFF,
        }
    }

    fn is(&self, cell: &ActorCell) -> bool {
        self.actor
            .as_ref()
            .is_some_and(|actor| actor.get_id() == cell.get_id())
    }

    /// Marks it failed; how long to wait before starting it again.
    fn failed(&mut self) -> Duration {
        self.actor = None;
        if self.started.elapsed() >= HEALTHY_RUN {
            self.backoff = FIRST_BACKOFF;
        }
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        self.restarts += 1;
        wait
    }

    fn restarted(&mut self, actor: ActorRef<M>) {
        self.actor = Some(actor);
        self.started = Instant::now();
    }
}

struct RemoteSlot {
    link: RemoteLink,
    child: Restartable<RemoteMsg>,
}

/// Its state.
pub struct SupervisorState {
    network: Network,
    identity: RecordIdentity,
    options: ServeOptions,
    fatal: Arc<Mutex<Option<String>>>,
    db: ActorRef<DbMsg>,
    node: ActorRef<NodeMsg>,
    publisher: Restartable<PublisherMsg>,
    remotes: HashMap<RemoteName, RemoteSlot>,
    local: Option<LocalState>,
    route: Option<Vec<u8>>,
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let network = args.node.network().clone();
        let cell = myself.get_cell();
        let publisher = spawn_publisher(&network, &args.identity, None, None, &cell).await?;
        let db_args = DbArgs {
            db: args.db,
            supervisor: Some(myself.clone()),
        };
        let (db, _) = Actor::spawn_linked(None, DbActor, db_args, cell.clone()).await?;
        let node_args = NodeArgs {
            node: args.node,
            db: db.clone(),
            supervisor: myself.clone(),
        };
        let (node, _) = Actor::spawn_linked(None, NodeActor, node_args, cell.clone()).await?;
        let mut state = SupervisorState {
            network,
            identity: args.identity,
            options: args.options,
            fatal: args.fatal,
            db,
            node,
            publisher: Restartable::running(publisher),
            remotes: HashMap::new(),
            local: None,
            route: None,
        };
        for link in args.remotes {
            let actor = state.spawn_remote(&link, &cell).await?;
            let name = link.name.clone();
            let child = Restartable::running(actor);
            state.remotes.insert(name, RemoteSlot { link, child });
        }
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        message: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let cell = myself.get_cell();
        match message {
            SupervisorMsg::LocalChanged(local) => {
                state.local = Some(local.clone());
                state.tell_publisher(PublisherMsg::Local(local));
            }
            SupervisorMsg::RouteChanged(route) => {
                state.route = Some(route.clone());
                state.tell_publisher(PublisherMsg::Route(route));
            }
            SupervisorMsg::ValueChanged {
                key,
                value,
                watch_ended,
            } => {
                let slot = state
                    .remotes
                    .values()
                    .find(|slot| slot.link.key.without_secret() == key.without_secret());
                if let Some(actor) = slot.and_then(|slot| slot.child.actor.as_ref()) {
                    let _ = actor.send_message(RemoteMsg::Changed { value, watch_ended });
                }
            }
            SupervisorMsg::RemoteRoutesDied(_) => {
                for slot in state.remotes.values() {
                    if let Some(actor) = &slot.child.actor {
                        let _ = actor.send_message(RemoteMsg::RoutesDied);
                    }
                }
            }
            SupervisorMsg::RestartRemote(name) => {
                let Some(link) = state.remotes.get(&name).map(|slot| slot.link.clone()) else {
                    return Ok(());
                };
                let actor = state.spawn_remote(&link, &cell).await?;
                if let Some(slot) = state.remotes.get_mut(&name) {
                    slot.child.restarted(actor);
                }
            }
            SupervisorMsg::RestartPublisher => {
                let actor = spawn_publisher(
                    &state.network,
                    &state.identity,
                    state.local.clone(),
                    state.route.clone(),
                    &cell,
                )
                .await?;
                state.publisher.restarted(actor);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, error) = match event {
            SupervisionEvent::ActorFailed(cell, error) => (cell, error.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, reason.unwrap_or_else(|| "stopped".into()))
            }
            _ => return Ok(()),
        };
        if cell.get_id() == state.db.get_id() || cell.get_id() == state.node.get_id() {
            let which = if cell.get_id() == state.db.get_id() {
                "database"
            } else {
                "Veilid node"
            };
            let reason = format!("the {which} failed: {error}");
            tracing::error!(target: "ddcp", "{reason}");
            *state.fatal.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.clone());
            myself.stop(Some(reason));
            return Ok(());
        }
        if state.publisher.is(&cell) {
            let wait = state.publisher.failed();
            tracing::warn!(target: "ddcp", error, restart_in = ?wait, "Publisher failed");
            myself.send_after(wait, || SupervisorMsg::RestartPublisher);
            return Ok(());
        }
        let failed = state
            .remotes
            .iter_mut()
            .find(|(_, slot)| slot.child.is(&cell));
        if let Some((name, slot)) = failed {
            let wait = slot.child.failed();
            tracing::warn!(
                target: "ddcp",
                remote_name = ?name.as_str(),
                error,
                restarts = slot.child.restarts,
                restart_in = ?wait,
                "Remote failed"
            );
            let name = name.clone();
            myself.send_after(wait, move || SupervisorMsg::RestartRemote(name));
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        // Pulls end first, then the node (its shutdown flushes Veilid's stores), then the
        // database, whose every accepted page is committed already. A pull is abandoned, not
        // waited for: whatever it handed the DbActor is applied whole or not at all, and the
        // next start resumes from the cursor.
        for slot in state.remotes.values_mut() {
            if let Some(actor) = slot.child.actor.take() {
                let _ = actor.kill_and_wait(Some(STOP_BOUND)).await;
            }
        }
        if let Some(publisher) = state.publisher.actor.take() {
            let _ = publisher.stop_and_wait(None, Some(STOP_BOUND)).await;
        }
        let _ = state.node.stop_and_wait(None, Some(STOP_BOUND)).await;
        let _ = state.db.stop_and_wait(None, Some(STOP_BOUND)).await;
        Ok(())
    }
}

/// How long one child may take to stop.
const STOP_BOUND: Duration = Duration::from_secs(40);

impl SupervisorState {
    fn tell_publisher(&self, message: PublisherMsg) {
        // While the publisher waits to restart, it gets the latest state in its arguments.
        if let Some(publisher) = &self.publisher.actor {
            let _ = publisher.send_message(message);
        }
    }

    async fn spawn_remote(
        &self,
        link: &RemoteLink,
        cell: &ActorCell,
    ) -> Result<ActorRef<RemoteMsg>, ActorProcessingErr> {
        let args = RemoteArgs {
            link: link.clone(),
            network: self.network.clone(),
            db: self.db.clone(),
            poll_interval: self.options.poll_interval,
        };
        let (actor, _) = Actor::spawn_linked(None, RemoteActor, args, cell.clone()).await?;
        Ok(actor)
    }
}

async fn spawn_publisher(
    network: &Network,
    identity: &RecordIdentity,
    local: Option<LocalState>,
    route: Option<Vec<u8>>,
    cell: &ActorCell,
) -> Result<ActorRef<PublisherMsg>, ActorProcessingErr> {
    let args = PublisherArgs {
        network: network.clone(),
        identity: identity.clone(),
        local,
        route,
    };
    let (actor, _) = Actor::spawn_linked(None, PublisherActor, args, cell.clone()).await?;
    Ok(actor)
}
