//! What serving one database takes, read from its files before anything runs (so that a bad
//! database is said at once, in one line): the database opened, its record's identity, its
//! member identity, who is answered, its remotes, its API. A database served among others is
//! set up again this way when it restarts after a failure.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::access::AccessGate;
use super::api::ApiSetup;
use super::feed_stream::FeedSource;
use crate::api::{ApiToken, AppFiles};
use crate::config::Config;
use crate::db::{Access, Db, DbError};
use crate::member_file;
use crate::metrics::DbLabel;
use crate::net::RecordIdentity;
use crate::pull::RemoteLink;
use crate::sync::MemberKeys;

/// How `ddcp serve` runs.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// How often a remote whose record cannot be watched is polled.
    pub poll_interval: Duration,
}

/// Where the HTTP API listens, and an app's files to serve beside it.
#[derive(Clone, Debug)]
pub struct ApiOptions {
    /// A loopback address unless other machines must reach it (docs/api.md).
    pub address: SocketAddr,
    /// A directory with an `index.html`, served at `/` without the token (`--app`).
    pub app_dir: Option<PathBuf>,
}

/// Why a database cannot be served, or serving stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
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

/// Everything one database's supervisor starts from.
#[derive(Debug)]
pub struct DatabaseSetup {
    /// The database.
    pub db: Db,
    /// Its record.
    pub identity: RecordIdentity,
    /// The remotes to pull.
    pub remotes: Vec<RemoteLink>,
    /// Who is answered, and how the Status is sealed.
    pub gate: AccessGate,
    /// Whether it is public or private, as it was set up (the gate follows later changes).
    pub access: Access,
    /// This database's member identity: its requests to private databases are signed with it.
    pub me: Arc<MemberKeys>,
    /// Knobs.
    pub options: ServeOptions,
    /// Where the control socket goes.
    pub state_dir: PathBuf,
    /// Where `ddcp watch` reads the changes from.
    pub feed: FeedSource,
    /// The database file (apps' queries read it on connections of their own).
    pub db_file: PathBuf,
    /// The HTTP API: on the state dir's socket, and on TCP when `--api` asked for it.
    pub api: ApiSetup,
    /// The label of its metrics.
    pub metrics: DbLabel,
}

impl DatabaseSetup {
    /// Opens the database `config` names (made by `ddcp init`) and reads what serving it
    /// takes; with `api`, binds the HTTP API's address; its metrics labelled `metrics`.
    /// Fails when the database cannot be opened, another process serves it, or the API's
    /// address is taken.
    pub async fn prepare(
        config: &Config,
        options: ServeOptions,
        api: Option<&ApiOptions>,
        metrics: DbLabel,
    ) -> Result<DatabaseSetup, ServeError> {
        let mut db = open_database(config)?;
        let identity = RecordIdentity::load(&config.state_dir)?;
        if crate::control::connect(&config.state_dir)?.is_some() {
            return Err(
                crate::control::ControlError::AlreadyServing(config.state_dir.clone()).into(),
            );
        }
        let me = member_file::load_or_create(&config.state_dir)?;
        let access = db.access_state()?;
        if access.access == Access::Private && access.members.is_empty() {
            tracing::warn!(target: "ddcp", db = %config.db_file.display(),
                "The database is private and has no members: no peer can read it (add one with `ddcp member add NAME ID`)");
        }
        let access_mode = access.access;
        let gate =
            AccessGate::new(identity.key.clone(), me.clone(), access).labelled(metrics.clone());
        let remotes = remote_links(&db)?;
        let api = api_setup(config, api).await?;
        Ok(DatabaseSetup {
            db,
            identity,
            remotes,
            gate,
            access: access_mode,
            me: Arc::new(me),
            options,
            state_dir: config.state_dir.clone(),
            feed: FeedSource {
                db_file: config.db_file.clone(),
                extension: config.extension.clone(),
            },
            db_file: config.db_file.clone(),
            api,
            metrics,
        })
    }
}

/// Opens the database `config` names, and checks that its state dir (when it holds a record)
/// is its own: the two are given apart and must not be mixed. A database made before
/// databases knew their record is bound to the state dir's record now.
pub fn open_database(config: &Config) -> Result<Db, ServeError> {
    let db = Db::open(&config.db_file, &config.extension)?;
    if !RecordIdentity::exists(&config.state_dir) {
        return Ok(db);
    }
    let identity = RecordIdentity::load(&config.state_dir)?;
    match db.bound_record()? {
        Some(bound) if bound.key() == identity.key.key() => {}
        Some(bound) => {
            return Err(ServeError::ForeignStateDir {
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

/// The API's TCP listener, bound (with `options`), and what the API serves.
async fn api_setup(config: &Config, options: Option<&ApiOptions>) -> Result<ApiSetup, ServeError> {
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
            .map_err(ServeError::Stopped)?,
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
