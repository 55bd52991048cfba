//! The Supervisor: starts the tree, routes what one child learns to the others, and restarts a
//! failed publisher or remote alone, with growing backoff. The node and the database are the
//! ground the others stand on: when one of them fails, serving stops with its error.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use super::control::{ControlActor, ControlArgs, ControlMsg};
use super::db::{DbActor, DbArgs, DbMsg, LocalState};
use super::node::{NodeActor, NodeArgs, NodeMsg};
use super::publisher::{PublisherActor, PublisherArgs, PublisherMsg};
use super::pulling::{PullReport, RemoteLink};
use super::remote::{RemoteActor, RemoteArgs, RemoteMsg};
use super::restart::Restartable;
use crate::control::{ControlRequest, ControlResponse, PullOutcome, RemoteHealth};
use crate::db::{Db, RemoteName};
use crate::metrics;
use crate::net::{Network, Node, RecordIdentity, RouteId};
use crate::sync::{DbVersion, RecordKey};

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
    /// A remote's Status showed this version (from its RemoteActor).
    RemoteSeen {
        /// The remote.
        name: RemoteName,
        /// Its db_version.
        version: DbVersion,
    },
    /// A remote's pull finished (from its RemoteActor).
    RemotePulled {
        /// The remote.
        name: RemoteName,
        /// What the pull did.
        report: PullReport,
    },
    /// A question from the CLI (through the ControlActor).
    Control(ControlRequest, RpcReplyPort<ControlResponse>),
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
    /// Where the control socket goes.
    pub state_dir: PathBuf,
    /// Why serving stopped, when a child it cannot do without failed.
    pub fatal: Arc<Mutex<Option<String>>>,
}

struct RemoteSlot {
    link: RemoteLink,
    child: Restartable<RemoteMsg>,
    /// The remote's version when last pulled.
    pulled: Option<DbVersion>,
    /// The remote's version as last seen.
    seen: Option<DbVersion>,
    /// Unix seconds of the last successful pull.
    last_success: Option<i64>,
    /// The last failure since then.
    last_error: Option<String>,
}

impl RemoteSlot {
    fn new(link: RemoteLink, actor: ActorRef<RemoteMsg>) -> Self {
        RemoteSlot {
            link,
            child: Restartable::running(actor),
            pulled: None,
            seen: None,
            last_success: None,
            last_error: None,
        }
    }

    fn report_lag(&self) {
        if let Some(lag) = self.health().lag() {
            metrics::lag(self.link.name.as_str(), lag);
        }
    }

    fn health(&self) -> RemoteHealth {
        RemoteHealth {
            name: self.link.name.to_string(),
            key: self.link.key.to_string(),
            pulled_version: self.pulled.map(|version| version.0),
            remote_version: self.seen.map(|version| version.0),
            last_success: self.last_success,
            last_error: self.last_error.clone(),
            restarts: self.child.restarts,
            running: self.child.actor.is_some(),
        }
    }
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
    remotes: BTreeMap<RemoteName, RemoteSlot>,
    control: Option<ActorRef<ControlMsg>>,
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
            remotes: BTreeMap::new(),
            control: None,
            local: None,
            route: None,
        };
        for link in args.remotes {
            state.add_remote(link, &myself).await?;
        }
        let control_args = ControlArgs {
            state_dir: args.state_dir,
            supervisor: myself.clone(),
        };
        let (control, _) = Actor::spawn_linked(None, ControlActor, control_args, cell).await?;
        state.control = Some(control);
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
                let actor = state.spawn_remote(&link, &myself).await?;
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
            SupervisorMsg::RemoteSeen { name, version } => {
                if let Some(slot) = state.remotes.get_mut(&name) {
                    slot.seen = slot.seen.max(Some(version));
                    slot.report_lag();
                }
            }
            SupervisorMsg::RemotePulled { name, report } => {
                if let Some(slot) = state.remotes.get_mut(&name) {
                    slot.pulled = Some(report.remote_version);
                    slot.seen = slot.seen.max(Some(report.remote_version));
                    slot.last_success = Some(unix_now());
                    slot.last_error = None;
                    slot.report_lag();
                }
            }
            SupervisorMsg::Control(request, reply) => {
                state.control(request, reply, &myself).await;
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
            metrics::restarted("publisher");
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
            metrics::restarted("remote");
            let wait = slot.child.failed();
            slot.last_error = Some(error.clone());
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
        if let Some(control) = state.control.take() {
            let _ = control.stop_and_wait(None, Some(STOP_BOUND)).await;
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
        myself: &ActorRef<SupervisorMsg>,
    ) -> Result<ActorRef<RemoteMsg>, ActorProcessingErr> {
        let args = RemoteArgs {
            link: link.clone(),
            network: self.network.clone(),
            db: self.db.clone(),
            poll_interval: self.options.poll_interval,
            supervisor: myself.clone(),
        };
        let (actor, _) = Actor::spawn_linked(None, RemoteActor, args, myself.get_cell()).await?;
        Ok(actor)
    }

    async fn add_remote(
        &mut self,
        link: RemoteLink,
        myself: &ActorRef<SupervisorMsg>,
    ) -> Result<(), ActorProcessingErr> {
        let actor = self.spawn_remote(&link, myself).await?;
        self.remotes
            .insert(link.name.clone(), RemoteSlot::new(link, actor));
        Ok(())
    }

    /// Answers the CLI. A pull is waited for off the supervisor's task, so that the tree keeps
    /// running meanwhile.
    async fn control(
        &mut self,
        request: ControlRequest,
        reply: RpcReplyPort<ControlResponse>,
        myself: &ActorRef<SupervisorMsg>,
    ) {
        let response = match request {
            ControlRequest::Status => {
                ControlResponse::Status(self.remotes.values().map(RemoteSlot::health).collect())
            }
            ControlRequest::RemotesChanged => match self.reload_remotes(myself).await {
                Ok(()) => ControlResponse::Done,
                Err(err) => ControlResponse::Error(err.to_string()),
            },
            ControlRequest::Pull(name) => {
                let targets: Vec<(String, Option<ActorRef<RemoteMsg>>, Option<String>)> = self
                    .remotes
                    .iter()
                    .filter(|(slot_name, _)| {
                        name.as_deref().is_none_or(|n| slot_name.as_str() == n)
                    })
                    .map(|(slot_name, slot)| {
                        (
                            slot_name.to_string(),
                            slot.child.actor.clone(),
                            slot.last_error.clone(),
                        )
                    })
                    .collect();
                if let (Some(name), true) = (&name, targets.is_empty()) {
                    let _ = reply.send(ControlResponse::Error(format!("no remote named {name:?}")));
                    return;
                }
                tokio::spawn(async move {
                    let mut outcomes = Vec::new();
                    for (name, actor, last_error) in targets {
                        outcomes.push(pull_now(name, actor, last_error).await);
                    }
                    let _ = reply.send(ControlResponse::Pulled(outcomes));
                });
                return;
            }
        };
        let _ = reply.send(response);
    }

    /// Starts and stops remote actors to match the remotes table.
    async fn reload_remotes(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
    ) -> Result<(), ActorProcessingErr> {
        let stored = match self
            .db
            .call(DbMsg::Remotes, Some(super::DB_CALL_BOUND))
            .await?
        {
            ractor::rpc::CallResult::Success(remotes) => remotes?,
            _ => return Err("the database did not answer".into()),
        };
        let gone: Vec<RemoteName> = self
            .remotes
            .iter()
            .filter(|(name, slot)| {
                !stored
                    .iter()
                    .any(|remote| &remote.name == *name && remote.key == slot.link.key)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            if let Some(mut slot) = self.remotes.remove(&name)
                && let Some(actor) = slot.child.actor.take()
            {
                let _ = actor.kill_and_wait(Some(STOP_BOUND)).await;
            }
            tracing::info!(target: "ddcp", remote_name = ?name.as_str(), "Stopped pulling remote");
        }
        for remote in stored {
            if !self.remotes.contains_key(&remote.name) {
                tracing::info!(target: "ddcp", remote_name = ?remote.name.as_str(), "Started pulling remote");
                let link = RemoteLink {
                    name: remote.name,
                    key: remote.key,
                };
                self.add_remote(link, myself).await?;
            }
        }
        Ok(())
    }
}

/// Has `actor` pull now; how it went.
async fn pull_now(
    name: String,
    actor: Option<ActorRef<RemoteMsg>>,
    last_error: Option<String>,
) -> PullOutcome {
    let failed = |error: String| PullOutcome {
        name: name.clone(),
        pages: 0,
        changes: 0,
        remote_version: 0,
        applied: false,
        error: Some(error),
    };
    let Some(actor) = actor else {
        let why = last_error.unwrap_or_else(|| "it failed".into());
        return failed(format!("waiting to restart after a failure: {why}"));
    };
    match actor
        .call(RemoteMsg::PullNow, Some(Duration::from_secs(570)))
        .await
    {
        Ok(ractor::rpc::CallResult::Success(Ok(report))) => PullOutcome {
            name: name.clone(),
            pages: report.pages,
            changes: report.changes,
            remote_version: report.remote_version.0,
            applied: report.applied,
            error: None,
        },
        Ok(ractor::rpc::CallResult::Success(Err(error))) => failed(error),
        Ok(ractor::rpc::CallResult::Timeout) => failed("the pull took too long".into()),
        _ => failed("the remote's actor stopped".into()),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64)
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
