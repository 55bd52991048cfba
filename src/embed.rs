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

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use ractor::{Actor, ActorRef};
use tokio::task::JoinHandle;

pub use crate::app::{App, AppError};
pub use crate::control::PullOutcome;

use crate::api::{ApiToken, AppFiles};
use crate::config::Config;
use crate::db::{Access, Db, DbError};
use crate::member_file;
use crate::net::{Node, RecordIdentity};
use crate::pull::RemoteLink;
use crate::serve::{
    AccessGate, ApiSetup, FeedSource, ServeOptions, Supervisor, SupervisorArgs, SupervisorMsg,
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

/// Where the HTTP API listens, and an app's files to serve beside it.
#[derive(Clone, Debug)]
pub struct ApiOptions {
    /// A loopback address unless other machines must reach it (docs/api.md).
    pub address: SocketAddr,
    /// A directory with an `index.html`, served at `/` without the token (`--app`).
    pub app_dir: Option<PathBuf>,
}

/// Why a replicator could not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplicatorError {
    /// The database cannot be opened or read.
    #[error("{0}")]
    Db(#[from] DbError),
    /// The Veilid node, or the record's identity.
    #[error("{0}")]
    Net(#[from] crate::net::NetError),
    /// The state dir's control socket (another `ddcp serve` uses it, say).
    #[error("{0}")]
    Control(#[from] crate::control::ControlError),
    /// This database's member identity.
    #[error("{0}")]
    MemberFile(#[from] crate::member_file::MemberFileError),
    /// The API's token file.
    #[error("{0}")]
    ApiToken(#[from] crate::api::TokenError),
    /// The app's directory.
    #[error("{0}")]
    AppFiles(#[from] crate::api::AppFilesError),
    /// The database and the state dir belong to different records.
    #[error(
        "{} belongs to record {db_record}, but the state dir {} holds record {state_record}: give the state dir made with this database (--state-dir)",
        db.display(), state_dir.display()
    )]
    ForeignStateDir {
        /// The database file.
        db: PathBuf,
        /// The record it is bound to.
        db_record: String,
        /// The state dir.
        state_dir: PathBuf,
        /// The record the state dir holds.
        state_record: String,
    },
    /// The tree could not start, or stopped because a part it cannot do without failed: why.
    #[error("{0}")]
    Stopped(String),
}

/// Opens the database `config` names, and checks that its state dir (when it holds a record)
/// is its own: the two are given apart and must not be mixed. A database made before
/// databases knew their record is bound to the state dir's record now.
pub fn open_database(config: &Config) -> Result<Db, ReplicatorError> {
    let db = Db::open(&config.db_file, &config.extension)?;
    if !RecordIdentity::exists(&config.state_dir) {
        return Ok(db);
    }
    let identity = RecordIdentity::load(&config.state_dir)?;
    match db.bound_record()? {
        Some(bound) if bound.key() == identity.key.key() => {}
        Some(bound) => {
            return Err(ReplicatorError::ForeignStateDir {
                db: config.db_file.clone(),
                db_record: bound.to_string(),
                state_dir: config.state_dir.clone(),
                state_record: identity.key.to_string(),
            });
        }
        None => db.bind_record(&identity.key)?,
    }
    Ok(db)
}

/// A database being replicated: the actor tree of `ddcp serve`, running in this process.
#[derive(Debug)]
pub struct Replicator {
    supervisor: ActorRef<SupervisorMsg>,
    running: JoinHandle<()>,
    fatal: Arc<Mutex<Option<String>>>,
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
        let mut db = open_database(config)?;
        let identity = RecordIdentity::load(&config.state_dir)?;
        if crate::control::connect(&config.state_dir)?.is_some() {
            return Err(
                crate::control::ControlError::AlreadyServing(config.state_dir.clone()).into(),
            );
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
        // Bound before the node starts: a port in use is said at once, in one line.
        let api = api_setup(config, options.api.as_ref()).await?;
        let node = Node::start(&config.veilid_dir(), &config.network).await?;
        if let Err(err) = node.attach(options.attach_timeout).await {
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
            options: ServeOptions {
                poll_interval: options.poll_interval,
            },
            state_dir: config.state_dir.clone(),
            feed: FeedSource {
                db_file: config.db_file.clone(),
                extension: config.extension.clone(),
            },
            fatal: fatal.clone(),
            db_file: config.db_file.clone(),
            api,
        };
        let (supervisor, running) = Actor::spawn(None, Supervisor, supervisor_args)
            .await
            .map_err(|err| ReplicatorError::Stopped(err.to_string()))?;
        let app = match ractor::call!(supervisor, SupervisorMsg::App) {
            Ok(app) => app,
            Err(err) => {
                supervisor.stop(None);
                let _ = running.await;
                return Err(ReplicatorError::Stopped(format!(
                    "the replicator stopped as it started: {err}"
                )));
            }
        };
        Ok(Replicator {
            supervisor,
            running,
            fatal,
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
        let _ = (&mut self.running).await;
        self.outcome()
    }

    /// Stops everything, as Ctrl-C stops `ddcp serve`: pulls end, the node shuts down
    /// (flushing Veilid's stores), the database is closed.
    pub async fn stop(mut self) -> Result<(), ReplicatorError> {
        tracing::info!(target: "ddcp", "Stopping");
        self.supervisor.stop(None);
        let _ = (&mut self.running).await;
        self.outcome()
    }

    fn outcome(&self) -> Result<(), ReplicatorError> {
        match self.fatal.lock().take() {
            Some(reason) => Err(ReplicatorError::Stopped(reason)),
            None => Ok(()),
        }
    }
}

/// The API's TCP listener, bound (with `options`), and what the API serves.
async fn api_setup(
    config: &Config,
    options: Option<&ApiOptions>,
) -> Result<ApiSetup, ReplicatorError> {
    let mut setup = ApiSetup {
        tcp: None,
        token: None,
        state_dir: config.state_dir.clone(),
        db_file: config.db_file.clone(),
        extension: config.extension.clone(),
        app_files: None,
    };
    let Some(options) = options else {
        return Ok(setup);
    };
    setup.token = Some(ApiToken::load_or_create(&config.state_dir)?);
    if let Some(dir) = &options.app_dir {
        setup.app_files = Some(AppFiles::new(dir)?);
    }
    let address = options.address;
    setup.tcp = Some(
        crate::api::listen(address)
            .await
            .map_err(ReplicatorError::Stopped)?,
    );
    if !address.ip().is_loopback() {
        tracing::warn!(target: "ddcp", address = %address,
            "The HTTP API listens beyond this machine: anyone who reaches it with the token can read and write the database");
    }
    tracing::info!(target: "ddcp", "Serving the HTTP API on http://{address} (its token: `ddcp api-token`)");
    if let Some(dir) = &options.app_dir {
        tracing::info!(target: "ddcp", dir = %dir.display(), "Serving the app's files on http://{address}/");
    }
    Ok(setup)
}

/// The remotes stored in the database, as the actors know them.
pub fn remote_links(db: &Db) -> Result<Vec<RemoteLink>, DbError> {
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
