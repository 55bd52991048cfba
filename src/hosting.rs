//! Many databases served by one process on one Veilid node (`ddcp serve --databases DIR`,
//! docs/hosting.md). DIR holds one folder per database, as `ddcp init` makes it when run
//! inside the folder with the default names: DIR/NAME/ddcp.db and its state dir
//! DIR/NAME/.ddcp. The node's own state (its Veilid stores, its `network.conf`) is DIR/.ddcp.
//!
//! A folder is chosen over a list of paths or a repeated option: it names each database (the
//! folder's name, which the log, the status and the metrics use), keeps each database's state
//! dir beside its file so that the CLI addresses it as it would a database served alone, and
//! takes a new database by making a folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use ractor::{Actor, ActorRef};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::db::Extension;
use crate::embed::attached_node;
use crate::net::NetworkSettings;
use crate::serve::{
    DatabaseSetup, DbName, Host, HostArgs, HostMsg, HostedDatabase, OnFailure, ServeError,
    ServeOptions,
};

/// A hosted database's file, in its folder.
pub const DB_FILE: &str = "ddcp.db";
/// A hosted database's state dir, in its folder; the host's own, in the databases' folder.
pub const STATE_DIR: &str = ".ddcp";

/// How a host runs.
#[derive(Clone, Debug)]
pub struct HostOptions {
    /// How long to wait for the Veilid node to be ready to use the network.
    pub attach_timeout: Duration,
    /// How often a remote whose record cannot be watched is polled.
    pub poll_interval: Duration,
    /// The network, as the command line and the environment give it; DIR/.ddcp/network.conf
    /// fills in the rest.
    pub network: NetworkSettings,
    /// The cr-sqlite build.
    pub extension: Extension,
}

/// The databases of a folder, served.
#[derive(Debug)]
pub struct Hosting {
    host: ActorRef<HostMsg>,
    running: JoinHandle<()>,
    fatal: Arc<Mutex<Option<String>>>,
}

impl Hosting {
    /// Serves every database in `dir`. A database that cannot be opened is said and tried
    /// again later, with backoff, while the others serve; a folder without any database, or
    /// a node that cannot attach, fails the start.
    pub async fn start(dir: &Path, options: HostOptions) -> Result<Hosting, ServeError> {
        let names = database_names(dir)?;
        let serve_options = ServeOptions {
            poll_interval: options.poll_interval,
        };
        let mut databases = Vec::with_capacity(names.len());
        for name in names {
            let config = database_config(dir, &name, &options.extension);
            let setup = match DatabaseSetup::prepare(&config, serve_options.clone(), None).await {
                Ok(setup) => Some(setup),
                Err(err) => {
                    tracing::error!(target: "ddcp", db = %name, error = %err,
                        "A database cannot be served; trying again later");
                    None
                }
            };
            databases.push(HostedDatabase {
                name,
                config,
                options: serve_options.clone(),
                setup,
            });
        }
        let host_config = host_config(dir, options.network, &options.extension)?;
        let node = attached_node(&host_config, options.attach_timeout).await?;
        tracing::info!(target: "ddcp", databases = databases.len(), dir = %dir.display(),
            "Hosting databases on one node");
        let fatal = Arc::new(Mutex::new(None));
        let args = HostArgs {
            node,
            databases,
            on_failure: OnFailure::Restart,
            fatal: fatal.clone(),
        };
        let (host, running) = Actor::spawn(None, Host, args)
            .await
            .map_err(|err| ServeError::Stopped(err.to_string()))?;
        Ok(Hosting {
            host,
            running,
            fatal,
        })
    }

    /// Waits until the host stops by itself (its node failed), and why.
    pub async fn stopped(&mut self) -> Result<(), ServeError> {
        let _ = (&mut self.running).await;
        self.outcome()
    }

    /// Stops every database, then the node.
    pub async fn stop(mut self) -> Result<(), ServeError> {
        tracing::info!(target: "ddcp", "Stopping");
        self.host.stop(None);
        let _ = (&mut self.running).await;
        self.outcome()
    }

    fn outcome(&self) -> Result<(), ServeError> {
        match self.fatal.lock().take() {
            Some(reason) => Err(ServeError::Stopped(reason)),
            None => Ok(()),
        }
    }
}

/// The databases in `dir`: its folders holding a database file and a state dir, by name.
/// Folders that hold no database are left alone; one whose name cannot name a database is
/// said and left alone.
pub fn database_names(dir: &Path) -> Result<Vec<DbName>, ServeError> {
    let unreadable = |err: std::io::Error| {
        ServeError::Stopped(format!(
            "cannot read the databases' folder {}: {err}",
            dir.display()
        ))
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let path = entry.map_err(unreadable)?.path();
        if !(path.join(DB_FILE).is_file() && path.join(STATE_DIR).is_dir()) {
            continue;
        }
        let Some(folder) = path.file_name().and_then(|name| name.to_str()) else {
            continue;
        };
        match folder.parse::<DbName>() {
            Ok(name) => names.push(name),
            Err(err) => tracing::warn!(target: "ddcp", "Not served: {err}"),
        }
    }
    if names.is_empty() {
        return Err(ServeError::Stopped(format!(
            "no database in {}: make one with `ddcp --db-file {dir}/NAME/{DB_FILE} --state-dir {dir}/NAME/{STATE_DIR} init`",
            dir.display(),
            dir = dir.display(),
        )));
    }
    names.sort();
    Ok(names)
}

/// The files of the database `name` in `dir`.
pub fn database_config(dir: &Path, name: &DbName, extension: &Extension) -> Config {
    let folder = dir.join(name.as_str());
    Config {
        db_file: folder.join(DB_FILE),
        state_dir: folder.join(STATE_DIR),
        extension: extension.clone(),
        network: NetworkSettings::default(),
    }
}

/// The host's own state dir, DIR/.ddcp (made if missing), with its network settings.
fn host_config(
    dir: &Path,
    network: NetworkSettings,
    extension: &Extension,
) -> Result<Config, ServeError> {
    let mut config = Config {
        db_file: PathBuf::new(),
        state_dir: dir.join(STATE_DIR),
        extension: extension.clone(),
        network,
    };
    config.create_state_dir().map_err(|err| {
        ServeError::Stopped(format!("cannot make {}: {err}", config.state_dir.display()))
    })?;
    config
        .read_network_file()
        .map_err(|err| ServeError::Stopped(err.to_string()))?;
    Ok(config)
}
