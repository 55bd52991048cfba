//! The Supervisor of one database: starts its tree, routes what one child learns to the
//! others, and restarts a failed publisher or remote alone, with growing backoff. The database
//! and its door (its route) are the ground the others stand on: when one of them fails, this
//! database's serving stops with its error, and the [`super::host`] decides what comes next.
//! A remote whose actor cannot even be started waits for its restart like one that failed; it
//! never stops the tree.

mod health;
mod remote_actors;
mod remotes;

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tracing::Instrument;

use super::access::AccessGate;
use super::control::{ControlActor, ControlArgs, ControlMsg, ControlQuery, PullTarget};
use super::door::{DoorActor, DoorArgs, DoorEvent, DoorMsg};
use super::doors::Doors;
use super::listeners::Version;
use super::node::{NodeEvent, NodeMsg};
use super::note_inbox::NoteInbox;
use super::publisher::{PublisherActor, PublisherArgs, PublisherMsg};
use super::remote::{RemoteEvent, RemoteMsg};
use super::restart::Restartable;
use super::setup::{DatabaseSetup, ServeOptions};
use crate::app::App;
use crate::db::RemoteName;
use crate::db_actor::{DbCallError, DbEvent, DbHandle, LocalState};
use crate::metrics;
use crate::net::{Network, RecordIdentity};
use crate::sync::{DbVersion, MemberKeys};
use remotes::{RemoteSlots, SlotId};

/// What the supervisor is told: each child's events through a narrow type of its own (a
/// child holds a [`DerivedActorRef`] of it, never this enum), and its own restarts.
#[derive(Debug)]
pub enum SupervisorMsg {
    /// From the DbActor.
    Db(DbEvent),
    /// From the NodeActor.
    Node(NodeEvent),
    /// From the DoorActor.
    Door(DoorEvent),
    /// From a RemoteActor.
    Remote(RemoteEvent),
    /// From the ControlActor: a question of the CLI's.
    Control(ControlQuery),
    /// Start a failed remote again, if its slot is still the one that failed.
    RestartRemote(RemoteName, SlotId),
    /// Start the failed publisher again.
    RestartPublisher,
    /// The app's handle on the database (`crate::embed`).
    App(RpcReplyPort<App>),
}

/// `From` each child's event type into [`SupervisorMsg`], and back (which a
/// [`DerivedActorRef`] needs to return a message it could not deliver).
macro_rules! child_events {
    ($($variant:ident($event:ty)),* $(,)?) => {$(
        impl From<$event> for SupervisorMsg {
            fn from(event: $event) -> Self {
                SupervisorMsg::$variant(event)
            }
        }

        impl TryFrom<SupervisorMsg> for $event {
            type Error = SupervisorMsg;

            fn try_from(message: SupervisorMsg) -> Result<Self, SupervisorMsg> {
                match message {
                    SupervisorMsg::$variant(event) => Ok(event),
                    other => Err(other),
                }
            }
        }
    )*};
}

child_events!(
    Db(DbEvent),
    Node(NodeEvent),
    Door(DoorEvent),
    Remote(RemoteEvent),
    Control(ControlQuery),
);

/// One database's tree: see the module documentation for what it guarantees.
#[derive(Debug)]
pub struct Supervisor;

/// Its start: everything the tree needs, opened by the caller so that a bad database is
/// reported before anything runs.
#[derive(Debug)]
pub struct SupervisorArgs {
    /// The node's network.
    pub network: Network,
    /// The NodeActor, which tells this database of record changes.
    pub node: ActorRef<NodeMsg>,
    /// The node's doors, where this database's route is opened.
    pub doors: Doors,
    /// The database, and what serving it takes.
    pub setup: DatabaseSetup,
}

/// The children, their restart histories, and the latest state and route (a restarted
/// publisher starts from them).
#[derive(Debug)]
pub struct SupervisorState {
    network: Network,
    identity: RecordIdentity,
    options: ServeOptions,
    db: DbHandle,
    node: ActorRef<NodeMsg>,
    door: ActorRef<DoorMsg>,
    publisher: Restartable<PublisherMsg>,
    remotes: RemoteSlots<RemoteMsg>,
    control: Option<ActorRef<ControlMsg>>,
    local: Option<LocalState>,
    route: Option<Vec<u8>>,
    gate: AccessGate,
    me: Arc<MemberKeys>,
    /// The database's newest version, for the watches of the control socket.
    versions: tokio::sync::watch::Sender<DbVersion>,
    /// Apps' way in: told of every version, for its subscriptions.
    app: App,
    /// The database's version, as the peers listening for it are told (by the NodeActor).
    noted: tokio::sync::watch::Sender<Option<Version>>,
    /// Where remotes' notes go, and this node's route for them.
    inbox: Arc<NoteInbox>,
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
        let (network, setup) = (args.network, args.setup);
        let cell = myself.get_cell();
        let publisher =
            spawn_publisher(&network, &setup.identity, &setup.gate, None, None, &cell).await?;
        let (db, _) = DbHandle::spawn_labelled(
            setup.db,
            Some(myself.get_derived()),
            Some(cell.clone()),
            setup.metrics.clone(),
        )
        .await?;
        let noted = tokio::sync::watch::Sender::new(None);
        let inbox = Arc::new(NoteInbox::labelled(setup.metrics));
        let door_args = DoorArgs {
            network: network.clone(),
            doors: args.doors,
            db: db.clone(),
            supervisor: myself.get_derived(),
            gate: setup.gate.clone(),
            versions: noted.subscribe(),
            inbox: Arc::clone(&inbox),
        };
        let (door, _) = Actor::spawn_linked(None, DoorActor, door_args, cell.clone()).await?;
        args.node
            .send_message(NodeMsg::Join(myself.get_derived()))?;
        let app = App::new(db.clone(), setup.db_file)?;
        let mut state = SupervisorState {
            network,
            identity: setup.identity,
            options: setup.options,
            db,
            node: args.node,
            door,
            publisher: Restartable::running(publisher),
            remotes: RemoteSlots::default(),
            control: None,
            local: None,
            route: None,
            gate: setup.gate,
            me: setup.me,
            versions: tokio::sync::watch::Sender::new(DbVersion(0)),
            app,
            noted,
            inbox,
        };
        for link in setup.remotes {
            state.add_remote(link, &myself).await;
        }
        let control_args = ControlArgs {
            state_dir: setup.state_dir,
            supervisor: myself.get_derived(),
            feed: setup.feed,
            versions: state.versions.subscribe(),
        };
        let (control, _) =
            Actor::spawn_linked(None, ControlActor, control_args, cell.clone()).await?;
        state.control = Some(control);
        let api_args = setup.api.args(state.app.clone(), myself.get_derived());
        Actor::spawn_linked(None, super::ApiActor, api_args, cell).await?;
        // What the CLI changed between the caller's reading of the database and the socket's
        // opening reached no one: read it again now that changes are heard.
        state.reload_access().await?;
        state.reload_remotes(&myself).await?;
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        message: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let span = state.db.metrics().span();
        state.take(message, &myself).instrument(span).await
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let span = state.db.metrics().span();
        state.child_stopped(event, &myself).instrument(span).await
    }

    async fn post_stop(
        &self,
        myself: ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        // Pulls end first, then the route (the host's node stays, for the other databases),
        // then the database, whose every accepted page is committed already. A pull is abandoned, not
        // waited for: whatever it handed the DbActor is applied whole or not at all, and the
        // next start resumes from the cursor.
        for actor in state.remotes.running() {
            let _ = actor.kill_and_wait(Some(STOP_BOUND)).await;
        }
        if let Some(publisher) = state.publisher.actor.take() {
            let _ = publisher.stop_and_wait(None, Some(STOP_BOUND)).await;
        }
        if let Some(control) = state.control.take() {
            let _ = control.stop_and_wait(None, Some(STOP_BOUND)).await;
        }
        let _ = state.node.send_message(NodeMsg::Leave(myself.get_id()));
        let _ = state.door.stop_and_wait(None, Some(STOP_BOUND)).await;
        let _ = state.db.actor().stop_and_wait(None, Some(STOP_BOUND)).await;
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

    fn publisher_failed(&mut self, myself: &ActorRef<SupervisorMsg>, error: String) {
        metrics::restarted(self.db.metrics(), "publisher");
        let wait = self.publisher.failed();
        tracing::warn!(target: "ddcp", error, restart_in = ?wait, "Publisher failed");
        myself.send_after(wait, || SupervisorMsg::RestartPublisher);
    }

    async fn restart_publisher(&mut self, myself: &ActorRef<SupervisorMsg>) {
        if !self.publisher.is_waiting() {
            return;
        }
        let cell = myself.get_cell();
        let (local, route) = (self.local.clone(), self.route.clone());
        let started = spawn_publisher(
            &self.network,
            &self.identity,
            &self.gate,
            local,
            route,
            &cell,
        )
        .await;
        match started {
            Ok(actor) => self.publisher.restarted(actor),
            Err(err) => self.publisher_failed(myself, err.to_string()),
        }
    }

    /// Takes the access mode and members from the database. When the epoch moved (a member
    /// was removed, or the database went private), the route changes too, the old one
    /// released: whoever was left behind can neither read the new Status nor call the node.
    async fn reload_access(&mut self) -> Result<(), DbCallError> {
        let access = self.db.access_state().await?;
        let (mode, epoch, members) = (access.access, access.epoch, access.members.len());
        let update = self.gate.update(access);
        if !update.changed {
            return Ok(());
        }
        tracing::info!(target: "ddcp", access = mode.as_str(), epoch = epoch.0, members,
            "Access changed");
        self.tell_publisher(PublisherMsg::AccessChanged);
        if update.epoch_moved {
            let _ = self.door.send_message(DoorMsg::RenewRoute);
        }
        Ok(())
    }
}

async fn spawn_publisher(
    network: &Network,
    identity: &RecordIdentity,
    gate: &AccessGate,
    local: Option<LocalState>,
    route: Option<Vec<u8>>,
    cell: &ActorCell,
) -> Result<ActorRef<PublisherMsg>, ActorProcessingErr> {
    let args = PublisherArgs {
        network: network.clone(),
        identity: identity.clone(),
        local,
        route,
        gate: gate.clone(),
    };
    let (actor, _) = Actor::spawn_linked(None, PublisherActor, args, cell.clone()).await?;
    Ok(actor)
}

impl SupervisorState {
    /// What a child or the CLI told: routed to whom it concerns.
    async fn take(
        &mut self,
        message: SupervisorMsg,
        myself: &ActorRef<SupervisorMsg>,
    ) -> Result<(), ActorProcessingErr> {
        let state = self;
        let myself = myself.clone();
        match message {
            SupervisorMsg::Db(DbEvent::StateChanged(local)) => {
                state.versions.send_replace(local.db_version);
                state
                    .noted
                    .send_replace(Some((local.db_version, local.incarnation)));
                state.app.database_moved(local.db_version);
                state.local = Some(local.clone());
                state.tell_publisher(PublisherMsg::Local(local));
            }
            SupervisorMsg::Door(DoorEvent::RouteChanged(route)) => {
                state.inbox.set_route(route.clone());
                state.route = Some(route.clone());
                state.tell_publisher(PublisherMsg::Route(route));
            }
            SupervisorMsg::Node(NodeEvent::ValueChanged {
                key,
                value,
                watch_ended,
            }) => {
                if let Some(actor) = state.remotes.actor_for_record(&key) {
                    let _ = actor.send_message(RemoteMsg::Changed { value, watch_ended });
                }
            }
            SupervisorMsg::Node(NodeEvent::RemoteRoutesDied(_)) => {
                for actor in state.remotes.running() {
                    let _ = actor.send_message(RemoteMsg::RoutesDied);
                }
            }
            SupervisorMsg::RestartRemote(name, id) => state.restart_remote(name, id, &myself).await,
            SupervisorMsg::RestartPublisher => state.restart_publisher(&myself).await,
            SupervisorMsg::App(reply) => {
                let _ = reply.send(state.app.clone());
            }
            SupervisorMsg::Remote(RemoteEvent::Seen {
                name,
                from,
                version,
            }) => {
                if let Some(slot) = state.remotes.reported_by(&name, from) {
                    slot.health.seen(version);
                    slot.health.report_lag(state.db.metrics(), name.as_str());
                }
            }
            SupervisorMsg::Remote(RemoteEvent::Waiting { name, from, error }) => {
                if let Some(slot) = state.remotes.reported_by(&name, from) {
                    slot.health.failed(error);
                }
            }
            SupervisorMsg::Remote(RemoteEvent::Pulled { name, from, report }) => {
                if let Some(slot) = state.remotes.reported_by(&name, from) {
                    slot.health.pulled(report.remote_version, report.refused);
                    slot.health.report_lag(state.db.metrics(), name.as_str());
                }
            }
            SupervisorMsg::Control(ControlQuery::Health(reply)) => {
                let _ = reply.send(state.remotes.health());
            }
            SupervisorMsg::Control(ControlQuery::ReloadRemotes(reply)) => {
                let reloaded = state.reload_remotes(&myself).await;
                let _ = reply.send(reloaded);
            }
            SupervisorMsg::Control(ControlQuery::ReloadAccess(reply)) => {
                let reloaded = state.reload_access().await;
                let _ = reply.send(reloaded);
            }
            SupervisorMsg::Control(ControlQuery::PullTargets { name, reply }) => {
                let targets = state
                    .remotes
                    .iter()
                    .filter(|slot| name.as_deref().is_none_or(|n| slot.link.name.as_str() == n))
                    .map(|slot| PullTarget {
                        name: slot.link.name.to_string(),
                        actor: slot.child.actor.clone(),
                        last_error: slot.health.last_error().map(str::to_string),
                    })
                    .collect();
                let _ = reply.send(targets);
            }
        }
        Ok(())
    }
}

impl SupervisorState {
    /// A child failed or stopped: restarted alone, or this database's tree stops.
    async fn child_stopped(
        &mut self,
        event: SupervisionEvent,
        myself: &ActorRef<SupervisorMsg>,
    ) -> Result<(), ActorProcessingErr> {
        let state = self;
        let myself = myself.clone();
        let (cell, error) = match event {
            SupervisionEvent::ActorFailed(cell, error) => (cell, error.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, reason.unwrap_or_else(|| "stopped".into()))
            }
            _ => return Ok(()),
        };
        let db = state.db.actor().get_id();
        if cell.get_id() == db || cell.get_id() == state.door.get_id() {
            let which = if cell.get_id() == db {
                "database"
            } else {
                "database's route keeper"
            };
            let reason = format!("the {which} failed: {error}");
            tracing::error!(target: "ddcp", "{reason}");
            myself.stop(Some(reason));
            return Ok(());
        }
        if state.publisher.is(&cell) {
            state.publisher_failed(&myself, error);
            return Ok(());
        }
        if let Some((name, id, wait)) = state.remotes.failed(&cell, error.clone()) {
            metrics::restarted(state.db.metrics(), "remote");
            let restarts = state
                .remotes
                .get_mut(&name)
                .map_or(0, |slot| slot.child.restarts);
            tracing::warn!(
                target: "ddcp",
                remote_name = ?name.as_str(),
                error,
                restarts,
                restart_in = ?wait,
                "Remote failed"
            );
            myself.send_after(wait, move || SupervisorMsg::RestartRemote(name, id));
        }
        Ok(())
    }
}
