//! Many databases served by one process on one Veilid node (`ddcp serve --databases DIR`,
//! docs/hosting.md): the folder's layout is `serve::HostFolder`'s.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::Config;
use crate::db::Extension;
use crate::embed::attached_node;
use crate::metrics::DbLabel;
use crate::net::NetworkSettings;
use crate::serve::{
    DatabaseSetup, HostFolder, HostedDatabase, OnFailure, RunningHost, ServeError, ServeOptions,
};

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

/// The databases of a folder, served: a [`RunningHost`].
#[derive(Debug)]
pub struct Hosting;

impl Hosting {
    /// Serves every database in `dir`, and those `ddcp host add` adds. A database that
    /// cannot be opened is said and tried again later, with backoff, while the others serve;
    /// a folder that cannot be read, or a node that cannot attach, fails the start.
    pub async fn start(dir: &Path, options: HostOptions) -> Result<RunningHost, ServeError> {
        let folder = HostFolder {
            dir: dir.to_path_buf(),
            extension: options.extension.clone(),
        };
        make_folder(dir)?;
        // Said before a node starts on the running host's Veilid store.
        if crate::control::connect(&folder.state_dir())?.is_some() {
            return Err(crate::control::ControlError::AlreadyServing(folder.state_dir()).into());
        }
        let names = folder.names()?;
        if names.is_empty() {
            tracing::warn!(target: "ddcp", dir = %dir.display(),
                "No database in the folder yet: add one with `ddcp host add NAME --databases DIR`");
        }
        let serve_options = ServeOptions {
            poll_interval: options.poll_interval,
        };
        let mut databases = Vec::with_capacity(names.len());
        for name in names {
            let config = folder.config_of(&name);
            let label = DbLabel::named(name.as_str());
            let prepared = DatabaseSetup::prepare(&config, serve_options.clone(), None, label);
            let setup = match prepared.await {
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
        let host_config = host_config(&folder, options.network)?;
        let node = attached_node(&host_config, options.attach_timeout).await?;
        tracing::info!(target: "ddcp", databases = databases.len(), dir = %dir.display(),
            "Hosting databases on one node");
        RunningHost::start(
            node,
            databases,
            OnFailure::Restart,
            Some((folder, serve_options)),
        )
        .await
    }
}

/// Makes the databases' folder when it is missing (mode 0700: its databases' state dirs hold
/// secret keys); its parent must exist, so that a mistyped path is said, not served empty.
fn make_folder(dir: &Path) -> Result<(), ServeError> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(|err| {
            ServeError::Stopped(format!(
                "cannot make the databases' folder {}: {err}",
                dir.display()
            ))
        })?;
    tracing::info!(target: "ddcp", dir = %dir.display(), "Made the databases' folder");
    Ok(())
}

/// The host's own state dir, DIR/.ddcp (made if missing), with its network settings.
fn host_config(folder: &HostFolder, network: NetworkSettings) -> Result<Config, ServeError> {
    let mut config = Config {
        db_file: PathBuf::new(),
        state_dir: folder.state_dir(),
        extension: folder.extension.clone(),
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
