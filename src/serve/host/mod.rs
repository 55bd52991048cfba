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

mod control;
mod folder;
mod name;
mod running;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

pub use folder::HostFolder;
pub use name::{BadDbName, DbName};
pub use running::RunningHost;

use super::control::ask;
use super::doors::Doors;
use super::node::{NodeActor, NodeArgs, NodeMsg};
use super::restart::Restartable;
use super::setup::{DatabaseSetup, ServeOptions};
use super::supervisor::{Supervisor, SupervisorArgs, SupervisorMsg};
use crate::config::Config;
use crate::control::HostedHealth;
use crate::metrics::DbLabel;
use crate::net::{Network, Node, RecordIdentity};
use control::HostControlActor;

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
    /// Every database, and its remotes' health.
    Status(RpcReplyPort<Vec<HostedHealth>>),
    /// Serve the database `name` of the host's folder, made first when there is none: its
    /// whole record key, and whether it was made.
    Add(DbName, RpcReplyPort<Result<(String, bool), String>>),
    /// Stop serving the database `name`, now and at the host's next start.
    Remove(DbName, RpcReplyPort<Result<(), String>>),
}

/// How long `Status` waits for one database's remotes' health: a database busy past it is
/// shown without them.
const HEALTH_BOUND: Duration = Duration::from_secs(2);

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
    /// The folder of databases, and how new ones are served, when databases may be added
    /// and removed (`ddcp serve --databases`): the host's control socket goes in it.
    pub folder: Option<(HostFolder, ServeOptions)>,
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
    folder: Option<(HostFolder, ServeOptions)>,
    control: Option<ActorRef<()>>,
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
            folder: args.folder,
            control: None,
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
                    crate::metrics::restarted(&DbLabel::named(name.as_str()), "database");
                    tracing::warn!(target: "ddcp", db = %name, error = %err, restart_in = ?wait,
                        "A database cannot start");
                    myself.send_after(wait, move || HostMsg::Restart(name.clone()));
                }
            }
            state.databases.insert(database.name, hosted);
        }
        if let Some((folder, _)) = &state.folder {
            let args = (folder.state_dir(), myself.clone());
            match Actor::spawn_linked(None, HostControlActor, args, myself.get_cell()).await {
                Ok((control, _)) => state.control = Some(control),
                Err(err) => {
                    state.stop_all().await;
                    return Err(err.into());
                }
            }
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
            HostMsg::Status(reply) => {
                let _ = reply.send(state.status().await);
            }
            HostMsg::Add(name, reply) => {
                let _ = reply.send(state.add(&myself, name).await);
            }
            HostMsg::Remove(name, reply) => {
                let _ = reply.send(state.remove(name).await);
            }
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
        let control = state.control.as_ref().map(|control| control.get_id());
        if cell.get_id() == state.node.get_id() || Some(cell.get_id()) == control {
            let which = if Some(cell.get_id()) == control {
                "host's control socket"
            } else {
                "Veilid node"
            };
            let reason = format!("the {which} failed: {error}");
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
        crate::metrics::restarted(&DbLabel::named(name.as_str()), "database");
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
        let label = DbLabel::named(name.as_str());
        let setup = DatabaseSetup::prepare(&hosted.config, hosted.options.clone(), None, label);
        let setup = setup.await;
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
                crate::metrics::restarted(&DbLabel::named(name.as_str()), "database");
                tracing::warn!(target: "ddcp", db = %name, error, restart_in = ?wait,
                    "A database cannot start again");
                hosted.last_error = Some(error);
                myself.send_after(wait, move || HostMsg::Restart(name.clone()));
            }
        }
    }

    /// Every database, and its remotes' health, asked of all at once.
    async fn status(&self) -> Vec<HostedHealth> {
        let mut asking = tokio::task::JoinSet::new();
        for (name, hosted) in &self.databases {
            let (name, tree) = (name.to_string(), hosted.tree.actor.clone());
            let (restarts, last_error) = (hosted.tree.restarts, hosted.last_error.clone());
            asking.spawn(async move {
                let remotes = match &tree {
                    Some(tree) => {
                        let derived = tree.get_derived();
                        let asked = ask(&derived, super::ControlQuery::Health);
                        tokio::time::timeout(HEALTH_BOUND, asked)
                            .await
                            .ok()
                            .and_then(Result::ok)
                            .unwrap_or_default()
                    }
                    None => Vec::new(),
                };
                HostedHealth {
                    name,
                    running: tree.is_some(),
                    restarts,
                    last_error,
                    remotes,
                }
            });
        }
        let mut status = asking.join_all().await;
        status.sort_by(|a, b| a.name.cmp(&b.name));
        status
    }

    /// Serves the database `name` of the folder, made first when there is none.
    async fn add(
        &mut self,
        myself: &ActorRef<HostMsg>,
        name: DbName,
    ) -> Result<(String, bool), String> {
        let Some((folder, options)) = self.folder.clone() else {
            return Err("this serve has no folder of databases to add to".into());
        };
        if self.databases.contains_key(&name) {
            return Err(format!("{name} is served already"));
        }
        let made = !folder.holds(&name);
        let config = folder.config_of(&name);
        if made {
            folder
                .make(&name, &self.network)
                .await
                .map_err(|err| err.to_string())?;
        }
        let key = RecordIdentity::load(&config.state_dir)
            .map_err(|err| err.to_string())?
            .key;
        let label = DbLabel::named(name.as_str());
        let setup = DatabaseSetup::prepare(&config, options.clone(), None, label)
            .await
            .map_err(|err| err.to_string())?;
        let tree = self
            .start_tree(myself, setup)
            .await
            .map_err(|err| err.to_string())?;
        let mut hosted = Hosted {
            config,
            options,
            tree: Restartable::not_started(),
            last_error: None,
        };
        hosted.tree.restarted(tree);
        tracing::info!(target: "ddcp", db = %name, made, "Serving a database added");
        self.databases.insert(name.clone(), hosted);
        // Served now whatever comes: the error says what the next start would do.
        folder
            .set_removed(&name, false)
            .map_err(|err| format!("{name} is served, but stays out of the next start: {err}"))?;
        Ok((key.reveal().to_string(), made))
    }

    /// Stops serving the database `name`, now and at the next start; its files stay.
    async fn remove(&mut self, name: DbName) -> Result<(), String> {
        let Some((folder, _)) = &self.folder else {
            return Err("this serve has no folder of databases to remove from".into());
        };
        let Some(mut hosted) = self.databases.remove(&name) else {
            return Err(format!("no database named {name} is served"));
        };
        if let Some(tree) = hosted.tree.actor.take() {
            let _ = tree.stop_and_wait(None, Some(STOP_BOUND)).await;
        }
        tracing::info!(target: "ddcp", db = %name, "Stopped serving a database removed");
        folder.set_removed(&name, true).map_err(|err| {
            format!("{name} is stopped, but would be served at the next start: {err}")
        })
    }

    /// Stops every database's tree, all at once, then the node: its shutdown flushes Veilid's
    /// stores.
    async fn stop_all(&mut self) {
        if let Some(control) = self.control.take() {
            let _ = control.stop_and_wait(None, Some(STOP_BOUND)).await;
        }
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
