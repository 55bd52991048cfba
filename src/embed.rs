//! DDCP inside another Rust program (docs/embedding.md, `examples/embed.rs`): open a database
//! and run what `ddcp serve` runs, the supervised actor tree that publishes it, answers peers
//! and pulls its remotes, in the program's own tokio runtime; read, write and subscribe through
//! [`App`]; pull now; stop. `ddcp serve` itself is this and a Ctrl-C handler.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::path::Path;
//! use ddcp::app::AppStatement;
//! use ddcp::embed::{Replicator, ReplicatorOptions};
//!
//! let config = ddcp::config::Config::new(Path::new("ddcp.db"), Path::new(".ddcp"))?;
//! let replicator = Replicator::start(&config, ReplicatorOptions::default()).await?;
//! let app = replicator.app();
//! app.transaction(vec![AppStatement::new("insert into posts (id) values ('1')")])
//!     .await?;
//! replicator.stop().await?;
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use ractor::ActorRef;

pub use crate::app::{App, AppError};
pub use crate::control::PullOutcome;
pub use crate::serve::{ApiOptions, ServeError as ReplicatorError, open_database, remote_links};

use crate::config::Config;
use crate::metrics::DbLabel;
use crate::net::Node;
use crate::serve::{
    DatabaseSetup, DbName, HostMsg, HostedDatabase, OnFailure, RunningHost, ServeOptions,
    SupervisorMsg,
};

/// How a [`Replicator`] runs; [`Default`] is `ddcp serve`'s.
#[derive(Clone, Debug)]
pub struct ReplicatorOptions {
    /// How long to wait for the Veilid node to be ready to use the network.
    pub attach_timeout: Duration,
    /// How often a remote whose record cannot be watched is polled.
    pub poll_interval: Duration,
    /// The HTTP API, for apps in other processes or languages (`ddcp serve --api`).
    pub api: Option<ApiOptions>,
}

impl Default for ReplicatorOptions {
    fn default() -> ReplicatorOptions {
        ReplicatorOptions {
            attach_timeout: Duration::from_secs(120),
            poll_interval: Duration::from_secs(30),
            api: None,
        }
    }
}

/// A database being replicated: the actor tree of `ddcp serve`, running in this process.
#[derive(Debug)]
pub struct Replicator {
    host: RunningHost,
    supervisor: ActorRef<SupervisorMsg>,
    app: App,
}

impl Replicator {
    /// Opens the database `config` names (made by `ddcp init`), attaches a Veilid node, and
    /// starts publishing it, answering peers and pulling its remotes; with `options.api`, the
    /// HTTP API too. Needs a tokio runtime. Fails, with nothing left running, when the
    /// database cannot be opened, another process serves it, the API's address is taken, or
    /// the node cannot attach within `options.attach_timeout`.
    pub async fn start(
        config: &Config,
        options: ReplicatorOptions,
    ) -> Result<Replicator, ReplicatorError> {
        let serve_options = ServeOptions {
            poll_interval: options.poll_interval,
        };
        let api = options.api.as_ref();
        // One database: its metrics keep the labels they always had.
        let setup =
            DatabaseSetup::prepare(config, serve_options.clone(), api, DbLabel::default()).await?;
        let node = attached_node(config, options.attach_timeout).await?;
        tracing::info!(
            target: "ddcp",
            key = ?setup.identity.key.to_string(),
            remotes = setup.remotes.len(),
            access = setup.access.as_str(),
            "Serving database at DHT"
        );
        let database = HostedDatabase {
            name: single_name(config),
            config: config.clone(),
            options: serve_options,
            setup: Some(setup),
        };
        let host = RunningHost::start(node, vec![database], OnFailure::Stop, None).await?;
        let started = async {
            let supervisor = ractor::call!(host.actor(), HostMsg::Supervisor, None)
                .map_err(|err| err.to_string())?
                .ok_or_else(|| "its database is not running".to_string())?;
            let app = ractor::call!(supervisor, SupervisorMsg::App).map_err(|e| e.to_string())?;
            Ok::<_, String>((supervisor, app))
        };
        let (supervisor, app) = match started.await {
            Ok(started) => started,
            Err(err) => {
                let _ = host.stop().await;
                return Err(ReplicatorError::Stopped(format!(
                    "the replicator stopped as it started: {err}"
                )));
            }
        };
        Ok(Replicator {
            host,
            supervisor,
            app,
        })
    }

    /// The app's handle on the database: transactions, queries, subscriptions.
    pub fn app(&self) -> App {
        self.app.clone()
    }

    /// Has the remote `name` (every remote when `None`) pull now, each for `within` at most:
    /// how each pull went (one that failed says why in its `error`).
    pub async fn pull(
        &self,
        name: Option<&str>,
        within: Duration,
    ) -> Result<Vec<PullOutcome>, ReplicatorError> {
        crate::serve::pull_remotes(
            &self.supervisor.get_derived(),
            name.map(str::to_string),
            within,
        )
        .await
        .map_err(ReplicatorError::Stopped)
    }

    /// Waits until the tree stops by itself: a part it cannot do without (the node, the
    /// database) failed, and why.
    pub async fn stopped(&mut self) -> Result<(), ReplicatorError> {
        self.host.stopped().await
    }

    /// Stops everything, as Ctrl-C stops `ddcp serve`: pulls end, the node shuts down
    /// (flushing Veilid's stores), the database is closed.
    pub async fn stop(self) -> Result<(), ReplicatorError> {
        self.host.stop().await
    }
}

/// A Veilid node started on `config`'s state dir and network, attached within `timeout`.
pub async fn attached_node(config: &Config, timeout: Duration) -> Result<Node, ReplicatorError> {
    let node = Node::start(&config.veilid_dir(), &config.network).await?;
    if let Err(err) = node.attach(timeout).await {
        node.shutdown().await;
        return Err(err.into());
    }
    Ok(node)
}

/// What the log calls the one database of a replicator: its file's name.
fn single_name(config: &Config) -> DbName {
    config
        .db_file
        .file_stem()
        .and_then(|stem| stem.to_str())
        .and_then(|stem| stem.parse().ok())
        .unwrap_or_else(|| "db".parse().expect("a valid name"))
}
