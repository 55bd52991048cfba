//! `ddcp serve`: the supervision tree of `actors`, until Ctrl-C or SIGTERM.

use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use ractor::Actor;

use super::signals::stop_requested;
use super::{CommandError, block_on};
use crate::api::{ApiToken, AppFiles};
use crate::cli::ServeArgs;
use crate::config::Config;
use crate::control::ControlError;
use crate::db::{Access, Db};
use crate::member_file;
use crate::net::{Node, RecordIdentity};
use crate::pull::RemoteLink;
use crate::serve::{AccessGate, ApiSetup, FeedSource, ServeOptions, Supervisor, SupervisorArgs};

pub fn run(config: &Config, args: &ServeArgs) -> Result<(), CommandError> {
    let mut db = super::open_db(config)?;
    let identity = RecordIdentity::load(&config.state_dir)?;
    if crate::control::connect(&config.state_dir)?.is_some() {
        return Err(ControlError::AlreadyServing(config.state_dir.clone()).into());
    }
    let me = member_file::load_or_create(&config.state_dir)?;
    let access = db.access_state()?;
    let access_mode = access.access;
    if access_mode == Access::Private && access.members.is_empty() {
        tracing::warn!(target: "ddcp",
            "The database is private and has no members: no peer can read it (add one with `ddcp member add NAME ID`)");
    }
    let gate = AccessGate::new(identity.key.clone(), me.clone(), access);
    let remotes = remote_links(&db)?;
    let options = ServeOptions {
        poll_interval: Duration::from_secs(args.poll_interval),
    };
    let attach_timeout = Duration::from_secs(args.attach.attach_timeout);
    let metrics_addr = args.metrics_addr;
    let api = match args.api {
        Some(address) => Some((address, ApiToken::load_or_create(&config.state_dir)?)),
        None => None,
    };
    let app_files = match &args.app {
        Some(dir) => Some(AppFiles::new(dir).map_err(|err| CommandError::Serve(err.to_string()))?),
        None => None,
    };
    block_on(async move {
        if let Some(address) = metrics_addr {
            crate::metrics::install(address).map_err(CommandError::Serve)?;
            tracing::info!(target: "ddcp", "Serving metrics on http://{address}/metrics");
        }
        // Bound before the node starts: a port in use is said at once, in one line.
        let api = match api {
            Some((address, token)) => {
                let listener = crate::api::listen(address)
                    .await
                    .map_err(CommandError::Serve)?;
                if !address.ip().is_loopback() {
                    tracing::warn!(target: "ddcp", address = %address,
                        "The HTTP API listens beyond this machine: anyone who reaches it with the token can read and write the database");
                }
                tracing::info!(target: "ddcp", "Serving the HTTP API on http://{address} (its token: `ddcp api-token`)");
                if let Some(dir) = &args.app {
                    tracing::info!(target: "ddcp", dir = %dir.display(),
                        "Serving the app's files on http://{address}/");
                }
                Some(ApiSetup {
                    listener,
                    token,
                    db_file: config.db_file.clone(),
                    extension: config.extension.clone(),
                    app_files,
                })
            }
            None => None,
        };
        let node = Node::start(&config.veilid_dir(), &config.network).await?;
        if let Err(err) = node.attach(attach_timeout).await {
            node.shutdown().await;
            return Err(err.into());
        }
        tracing::info!(
            target: "ddcp",
            key = ?identity.key.to_string(),
            remotes = remotes.len(),
            access = access_mode.as_str(),
            "Serving database at DHT"
        );
        let fatal = Arc::new(Mutex::new(None));
        let supervisor_args = SupervisorArgs {
            node,
            db,
            identity,
            remotes,
            gate,
            me: Arc::new(me),
            options,
            state_dir: config.state_dir.clone(),
            feed: FeedSource {
                db_file: config.db_file.clone(),
                extension: config.extension.clone(),
            },
            fatal: fatal.clone(),
            api,
        };
        let (supervisor, mut handle) = Actor::spawn(None, Supervisor, supervisor_args)
            .await
            .map_err(|err| CommandError::Serve(err.to_string()))?;
        tokio::select! {
            _ = stop_requested() => {
                tracing::info!(target: "ddcp", "Stopping");
                supervisor.stop(None);
                let _ = (&mut handle).await;
            }
            _ = &mut handle => {}
        }
        let fatal = fatal.lock().take();
        match fatal {
            Some(reason) => Err(CommandError::Serve(reason)),
            None => Ok(()),
        }
    })?
}

/// The remotes stored in the database, as the actors know them.
pub(super) fn remote_links(db: &Db) -> Result<Vec<RemoteLink>, CommandError> {
    Ok(db
        .remotes()?
        .into_iter()
        .map(|remote| RemoteLink {
            name: remote.name,
            key: remote.key,
            accept: remote.accept,
        })
        .collect())
}
