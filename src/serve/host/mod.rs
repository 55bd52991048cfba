//! The Host: the root of `ddcp serve`'s tree. It owns the one Veilid node every database
//! shares, and one [`Supervisor`] per database, each with its own record, route, members,
//! remotes and state, as if it were served alone.
//!
//! ```text
//! Host                  restarts a failed database alone, with backoff (or, serving one
//!  │                    database, stops with its error); stops everything when the node fails
//!  ├─ NodeActor         the Veilid node: hands each call and note to the database whose route
//!  │                    it came in on; record changes to every database
//!  └─ Supervisor × N    one database's tree (`super::supervisor`)
//! ```

mod name;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

pub use name::{BadDbName, DbName};

use super::doors::Doors;
use super::node::{NodeActor, NodeArgs, NodeMsg};
use super::restart::Restartable;
use super::setup::{DatabaseSetup, ServeOptions};
use super::supervisor::{Supervisor, SupervisorArgs, SupervisorMsg};
use crate::config::Config;
use crate::net::{Network, Node};

/// How long one database's tree, then the node, may take to stop.
const STOP_BOUND: Duration = Duration::from_secs(60);

/// What happens when a database's tree fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFailure {
    /// Serving stops with its error: the one database of a `ddcp serve` or an embedding.
    Stop,
    /// It starts again alone, set up anew from its files, with backoff; the others go on.
    Restart,
}

/// One database to host: its name, its files, and what it was set up with.
#[derive(Debug)]
pub struct HostedDatabase {
    /// What the host calls it.
    pub name: DbName,
    /// Its files: a restart sets it up from them again.
    pub config: Config,
    /// Its knobs.
    pub options: ServeOptions,
    /// Set up already by the caller, so that a bad database is said before anything runs;
    /// none when it could not be (the host tries again, with backoff).
    pub setup: Option<DatabaseSetup>,
}

/// What the host is told.
#[derive(Debug)]
pub enum HostMsg {
    /// The supervisor of the database `name` (the first database's, without a name), while
    /// it runs.
    Supervisor(
        Option<DbName>,
        RpcReplyPort<Option<ActorRef<SupervisorMsg>>>,
    ),
    /// Set up and start the failed database `name` again.
    Restart(DbName),
}

/// The root: see the module documentation.
#[derive(Debug)]
pub struct Host;

/// Its start.
#[derive(Debug)]
pub struct HostArgs {
    /// The attached node.
    pub node: Node,
    /// The databases, in the order they start.
    pub databases: Vec<HostedDatabase>,
    /// What a failed database makes the host do.
    pub on_failure: OnFailure,
    /// Why serving stopped, when a part it cannot do without failed.
    pub fatal: Arc<Mutex<Option<String>>>,
}

/// One hosted database: its files, its tree, and why it last failed.
#[derive(Debug)]
struct Hosted {
    config: Config,
    options: ServeOptions,
    tree: Restartable<SupervisorMsg>,
    last_error: Option<String>,
}

/// The node and the databases.
#[derive(Debug)]
pub struct HostState {
    network: Network,
    node: ActorRef<NodeMsg>,
    doors: Doors,
    databases: BTreeMap<DbName, Hosted>,
    first: Option<DbName>,
    on_failure: OnFailure,
    fatal: Arc<Mutex<Option<String>>>,
}

impl Actor for Host {
    type Msg = HostMsg;
    type State = HostState;
    type Arguments = HostArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<HostMsg>,
        args: HostArgs,
    ) -> Result<HostState, ActorProcessingErr> {
        let network = args.node.network().clone();
        let doors = Doors::default();
        let node_args = NodeArgs {
            node: args.node,
            doors: doors.clone(),
        };
        let (node, _) = Actor::spawn_linked(None, NodeActor, node_args, myself.get_cell()).await?;
        let mut state = HostState {
            network,
            node,
            doors,
            databases: BTreeMap::new(),
            first: args.databases.first().map(|database| database.name.clone()),
            on_failure: args.on_failure,
            fatal: args.fatal,
        };
        for database in args.databases {
            let name = database.name.clone();
            let started = match database.setup {
                Some(setup) => state.start_tree(&myself, setup).await,
                None => Err("it could not be set up".into()),
            };
            let mut hosted = Hosted {
                config: database.config,
                options: database.options,
                tree: Restartable::not_started(),
                last_error: None,
            };
            match started {
                Ok(tree) => hosted.tree.restarted(tree),
                Err(err) if state.on_failure == OnFailure::Stop => {
                    state.stop_all().await;
                    return Err(err);
                }
                Err(err) => {
                    hosted.last_error = Some(err.to_string());
                    let wait = hosted.tree.failed();
                    tracing::warn!(target: "ddcp", db = %name, error = %err, restart_in = ?wait,
                        "A database cannot start");
                    myself.send_after(wait, move || HostMsg::Restart(name.clone()));
                }
            }
            state.databases.insert(database.name, hosted);
        }
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<HostMsg>,
        message: HostMsg,
        state: &mut HostState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            HostMsg::Supervisor(name, reply) => {
                let tree = name
                    .or_else(|| state.first.clone())
                    .and_then(|name| state.databases.get(&name))
                    .and_then(|hosted| hosted.tree.actor.clone());
                let _ = reply.send(tree);
            }
            HostMsg::Restart(name) => state.restart(&myself, name).await,
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<HostMsg>,
        event: SupervisionEvent,
        state: &mut HostState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, error) = match event {
            SupervisionEvent::ActorFailed(cell, error) => (cell, error.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, reason.unwrap_or_else(|| "stopped".into()))
            }
            _ => return Ok(()),
        };
        if cell.get_id() == state.node.get_id() {
            let reason = format!("the Veilid node failed: {error}");
            tracing::error!(target: "ddcp", "{reason}");
            *state.fatal.lock() = Some(reason.clone());
            myself.stop(Some(reason));
            return Ok(());
        }
        let Some((name, hosted)) = state
            .databases
            .iter_mut()
            .find(|(_, hosted)| hosted.tree.is(&cell))
        else {
            return Ok(());
        };
        if state.on_failure == OnFailure::Stop {
            *state.fatal.lock() = Some(error.clone());
            myself.stop(Some(error));
            return Ok(());
        }
        let wait = hosted.tree.failed();
        crate::metrics::restarted("database");
        tracing::warn!(target: "ddcp", db = %name, error, restarts = hosted.tree.restarts,
            restart_in = ?wait, "A database stopped; the others go on");
        hosted.last_error = Some(error);
        let name = name.clone();
        myself.send_after(wait, move || HostMsg::Restart(name.clone()));
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<HostMsg>,
        state: &mut HostState,
    ) -> Result<(), ActorProcessingErr> {
        state.stop_all().await;
        Ok(())
    }
}

impl HostState {
    /// Starts one database's tree on this host's node.
    async fn start_tree(
        &self,
        myself: &ActorRef<HostMsg>,
        setup: DatabaseSetup,
    ) -> Result<ActorRef<SupervisorMsg>, ActorProcessingErr> {
        let args = SupervisorArgs {
            network: self.network.clone(),
            node: self.node.clone(),
            doors: self.doors.clone(),
            setup,
        };
        let (tree, _) = Actor::spawn_linked(None, Supervisor, args, myself.get_cell()).await?;
        Ok(tree)
    }

    /// Sets up the failed database `name` from its files again and starts it; failing that,
    /// tries again later.
    async fn restart(&mut self, myself: &ActorRef<HostMsg>, name: DbName) {
        let Some(hosted) = self.databases.get(&name) else {
            return;
        };
        if !hosted.tree.is_waiting() {
            return;
        }
        let setup = DatabaseSetup::prepare(&hosted.config, hosted.options.clone(), None).await;
        let started = match setup {
            Ok(setup) => self
                .start_tree(myself, setup)
                .await
                .map_err(|e| e.to_string()),
            Err(err) => Err(err.to_string()),
        };
        let Some(hosted) = self.databases.get_mut(&name) else {
            return;
        };
        match started {
            Ok(tree) => {
                tracing::info!(target: "ddcp", db = %name, restarts = hosted.tree.restarts,
                    "A database started again");
                hosted.tree.restarted(tree);
            }
            Err(error) => {
                let wait = hosted.tree.failed();
                tracing::warn!(target: "ddcp", db = %name, error, restart_in = ?wait,
                    "A database cannot start again");
                hosted.last_error = Some(error);
                myself.send_after(wait, move || HostMsg::Restart(name.clone()));
            }
        }
    }

    /// Stops every database's tree, all at once, then the node: its shutdown flushes Veilid's
    /// stores.
    async fn stop_all(&mut self) {
        let mut stopping = tokio::task::JoinSet::new();
        for hosted in self.databases.values_mut() {
            if let Some(tree) = hosted.tree.actor.take() {
                stopping.spawn(async move {
                    let _ = tree.stop_and_wait(None, Some(STOP_BOUND)).await;
                });
            }
        }
        stopping.join_all().await;
        let _ = self.node.stop_and_wait(None, Some(STOP_BOUND)).await;
    }
}
