//! One module per command group. Each turns parsed arguments into calls on `db` and `sync` and
//! prints the result; errors come back as [`CommandError`], printed as one line by `main`.

mod access;
mod addr;
mod api_token;
mod backup;
mod bundle;
mod bundle_filter;
mod clone;
mod clone_file;
mod completions;
mod daemon;
pub mod filter_args;
mod host;
mod id;
mod init;
mod log;
mod member;
mod migrate;
pub mod output;
mod pull;
mod remote;
mod restore;
mod serve;
mod share;
mod shell;
mod signals;
mod status;
mod testnet;
mod watch;

use std::path::PathBuf;

use crate::cli::{Cli, Command};
use crate::db::DbError;
use crate::sync::bundle::BundleError;
use crate::sync::record_key::BadRecordKey;

/// What can stop a command. Every message is one line meant for the user.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{0}")]
    Db(#[from] DbError),
    #[error("{0}")]
    Net(#[from] crate::net::NetError),
    /// The key is not echoed: its secret part would land in terminals' scrollback and logs.
    #[error(
        "invalid record key: {0} (copy the whole key, as `ddcp init` or `ddcp addr` printed it: VLD0:<key>:<secret>)"
    )]
    BadKey(BadRecordKey),
    /// The id is not echoed either: a secret key pasted by mistake must not be repeated.
    #[error("invalid member id: {0}")]
    BadMemberId(crate::sync::member::BadMemberId),
    #[error("{0}")]
    BadAuthors(crate::sync::authors::BadAuthorPolicy),
    #[error(transparent)]
    BadFilterFlags(#[from] filter_args::BadFilterFlags),
    #[error(transparent)]
    ApiToken(#[from] crate::api::TokenError),
    #[error("{path}: {reason}")]
    Sealed {
        path: String,
        reason: crate::sync::sealed_file::SealedFileError,
    },
    #[error(
        "--encrypt-to {} is neither a member id (VLD0:...) nor a member's name",
        crate::db::shown(.0)
    )]
    NoRecipient(String),
    #[error("the change is stored, but the running ddcp serve did not take it ({0}): restart it")]
    NotTaken(String),
    #[error(
        "no `ddcp serve --databases {}` runs (its socket is DIR/.ddcp/control.sock; give the folder with --databases)",
        .0.display()
    )]
    NoHost(PathBuf),
    #[error("the host refused: {0}")]
    HostRefused(String),
    #[error("{0}")]
    Replicator(#[from] crate::embed::ReplicatorError),
    #[error(
        "a bundle is binary: not written to a terminal (redirect it, `> FILE`, or give a file name)"
    )]
    BinaryToTerminal,
    #[error(
        "{0} has no secret part, and Veilid 0.5 records cannot be read without it: give the whole key its `ddcp init` printed (VLD0:<key>:<secret>)"
    )]
    KeyWithoutSecret(crate::sync::RecordKey),
    #[error(
        "a bundle with a row filter (--where) is made from the start (--since 0): a row that started to match since could not arrive whole"
    )]
    RowFilterSince,
    #[error(
        "a database is at {0} already: `ddcp restore` brings back a lost one (start a new peer from a backup with `ddcp clone`)"
    )]
    RestoreOverExisting(PathBuf),
    #[error(
        "{0} knows no DHT record (made before ddcp bound databases to records): it cannot be restored as the same database"
    )]
    BackupWithoutRecord(PathBuf),
    #[error(
        "the state dir {} holds record {held}, the backup is of record {backup}: restore it with its own state dir (--state-dir)",
        state_dir.display()
    )]
    RestoreOtherRecord {
        state_dir: PathBuf,
        held: String,
        backup: String,
    },
    #[error(
        "{} holds no keys (made without --with-identity) and the state dir {} holds none: restore it where its state dir is, or from a backup made --with-identity",
        file.display(), state_dir.display()
    )]
    RestoreWithoutIdentity { file: PathBuf, state_dir: PathBuf },
    #[error(
        "another copy of this database serves record {0} now (its route answers): stop it first, or pass --force (two copies of one site corrupt each other's peers)"
    )]
    AnotherCopyServes(crate::sync::RecordKey),
    #[error(
        "the record's status is sealed by another identity than {}/member: restore with the state dir or the backup (--with-identity) of the copy that published it, or make sure no other copy serves and pass --force",
        .0.display()
    )]
    StatusOfAnotherOwner(PathBuf),
    #[error(
        "--owner checks a remote's status: a clone from a backup file has none (start it from the remote's key)"
    )]
    OwnerForAFile,
    #[error(
        "remote {name}: its status names owner {}, not {expected} as --owner says: nothing made (check the id with the remote's owner)",
        named.map_or_else(|| "none".to_string(), |id| id.to_string())
    )]
    NotTheOwner {
        name: String,
        expected: crate::sync::MemberId,
        named: Option<crate::sync::MemberId>,
    },
    #[error(
        "cannot tell which members were removed since this backup: the state dir {} keeps no record of removals from that far back, and {why}; pass --keep-members to keep the backup's members (then `ddcp member remove` whoever was removed since, before `ddcp serve`)",
        state_dir.display()
    )]
    RemovalsUnknown {
        state_dir: PathBuf,
        why: &'static str,
    },
    #[error(
        "cannot check that no other copy of this database serves ({0}): make sure none does and pass --force"
    )]
    CannotCheckServing(String),
    #[error("--json with '-': stdout carries the bundle; give a file name")]
    JsonWithStdout,
    #[error(
        "{0}: a sealed bundle's schema is read by the database it is sealed for, once it exists: make it with `ddcp init`, then `ddcp bundle apply --create-tables`"
    )]
    SealedSchema(PathBuf),
    #[error(
        "nothing to change: give --authors, --schema, --owner or a filter (--tables, --exclude-tables, --exclude-columns, --where, --no-filter)"
    )]
    NothingToSet,
    #[error(
        "nothing to change: give a filter (--tables, --exclude-tables, --exclude-columns, --where, --no-filter)"
    )]
    NoFilterGiven,
    #[error("{0}")]
    MemberFile(#[from] crate::member_file::MemberFileError),
    #[error(transparent)]
    RemovalsFile(#[from] crate::removals_file::RemovalsFileError),
    #[error("{path}: {reason}")]
    Bundle { path: String, reason: BundleError },
    #[error("{0} is the database itself (or its WAL): refusing to overwrite it")]
    WouldOverwriteDatabase(PathBuf),
    #[error("--since {since} is beyond this database's db_version {db_version}")]
    SinceBeyondVersion {
        since: crate::sync::DbVersion,
        db_version: crate::sync::DbVersion,
    },
    #[error("no changes after db_version {0}: nothing to bundle (an empty bundle is not written)")]
    NothingToBundle(crate::sync::DbVersion),
    #[error(
        "of the changes after db_version {0}, nothing passes the filter: nothing to bundle (an empty bundle is not written)"
    )]
    NothingPassesFilter(crate::sync::DbVersion),
    #[error("the bundle's schema cannot be merged here: {0}; nothing was applied")]
    SchemaMismatch(String),
    #[error("{what} {path}: {source}")]
    File {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Output(#[from] std::io::Error),
    #[error("line {line}: {message}")]
    DotCommand { line: usize, message: String },
    #[error(".read {0}: files read within each other {1} deep (does one read itself?)")]
    ReadTooDeep(String, usize),
    #[error("line {0}: NUL byte in the input")]
    NulByte(usize),
    #[error("{0}; the open transaction was rolled back")]
    RolledBack(Box<CommandError>),
    #[error("the script ended inside a transaction (BEGIN without COMMIT); it was rolled back")]
    UnfinishedTransaction,
    #[error("{0}")]
    Serve(String),
    #[error("{0}")]
    NetworkFile(#[from] crate::config::BadNetworkFile),
    #[error("{0}")]
    Control(#[from] crate::control::ControlError),
    #[error("no remotes to pull: add one with `ddcp remote add NAME KEY`")]
    NoRemotes,
    #[error("remote {name}: {reason}")]
    Remote { name: String, reason: String },
    /// As [`CommandError::Remote`], when the remote is private and this database is not one
    /// of its members: its member identity must outlive the failure (the owner adds it).
    #[error("remote {name}: {reason}")]
    NotAMember { name: String, reason: String },
    #[error(
        "{} exists: pass --force to replace it (a backup is never replaced by accident)",
        .0.display()
    )]
    BackupExists(PathBuf),
    #[error("cannot write {}: its folder does not exist", .0.display())]
    NoFolder(PathBuf),
    #[error("no folder at {}", .0.display())]
    NoSuchFolder(PathBuf),
    #[error(
        "this database has no CRR tables yet: `ddcp bundle apply --create-tables {}` makes the bundle's, then applies it",
        .0.display()
    )]
    NoTablesYet(PathBuf),
    #[error(
        "no file at {}: a backup to clone from must exist (or give a record key, VLD0:<key>:<secret>)",
        .0.display()
    )]
    NoBackupFile(PathBuf),
}

impl CommandError {
    /// True when stdout was closed by its reader (`ddcp ... | head`): not a failure.
    pub fn is_broken_pipe(&self) -> bool {
        let io = match self {
            CommandError::Output(err) => err,
            CommandError::Db(DbError::Io(err)) => err,
            _ => return false,
        };
        io.kind() == std::io::ErrorKind::BrokenPipe
    }
}

/// Opens the database, and checks that the state dir (when it holds a record) is its own: the
/// two are given apart (`--db-file`, `--state-dir`) and must not be mixed. A database made
/// before databases knew their record is bound to the state dir's record now.
pub(crate) fn open_db(config: &crate::config::Config) -> Result<crate::db::Db, CommandError> {
    Ok(crate::embed::open_database(config)?)
}

/// Creates the state directory (mode 0700), or says why it cannot.
fn create_state_dir(config: &crate::config::Config) -> Result<(), CommandError> {
    config
        .create_state_dir()
        .map_err(|source| CommandError::File {
            what: "cannot create state directory",
            path: config.state_dir.clone(),
            source,
        })
}

/// A remote's record key as the user typed it: whole, as veilid-core 0.5 prints it. (The
/// one-part form of older releases and the seed README parses, but its records cannot be read.)
fn remote_key(text: &str) -> Result<crate::sync::RecordKey, CommandError> {
    let key: crate::sync::RecordKey = text.parse().map_err(CommandError::BadKey)?;
    if key.secret().is_none() {
        return Err(CommandError::KeyWithoutSecret(key));
    }
    Ok(key)
}

/// A new DHT record for this database, made by a Veilid node started for it and stopped again
/// (locally, without the network: `ddcp serve` publishes its first value).
fn new_record_identity(
    config: &crate::config::Config,
) -> Result<crate::net::RecordIdentity, CommandError> {
    Ok(block_on(async {
        let node = crate::net::Node::start(&config.veilid_dir(), &config.network).await?;
        let identity = crate::net::create_record_identity(node.network()).await;
        node.shutdown().await;
        identity
    })??)
}

/// Runs `work` on a tokio runtime: veilid-core is async; the commands around it are not.
fn block_on<T>(work: impl std::future::Future<Output = T>) -> Result<T, CommandError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    Ok(runtime.block_on(work))
}

/// Runs the command `cli` names.
pub fn run(cli: Cli) -> Result<(), CommandError> {
    let mut config = cli.config();
    // A host's network file is its own (DIR/.ddcp), not the one of the state dir it runs by.
    let hosting = matches!(&cli.command, Command::Serve(args) if args.databases.is_some());
    if !hosting {
        config.read_network_file()?;
    }
    match cli.command {
        Command::Init(args) => init::run(&config, &args),
        Command::Clone(args) => clone::run(&config, &args),
        Command::Addr(flag) => addr::run(&config, flag.json),
        Command::Id(flag) => id::run(&config, flag.json),
        Command::Access(args) => access::run(&config, &args),
        Command::Member(command) => member::run(&config, command),
        Command::Host(args) => host::run(&args),
        Command::Share(args) => share::run(&config, &args),
        Command::Watch(args) => watch::run(&config, &args),
        Command::Completions(args) => completions::completions(args.shell),
        Command::Man(args) => completions::man(&args),
        Command::Backup(args) => backup::backup(&config, &args),
        Command::Restore(args) => restore::restore(&config, &args),
        Command::Shell(args) => shell::run(&config, &args),
        Command::Remote(command) => remote::run(&config, command),
        Command::Status(flag) => status::run(&config, flag.json),
        Command::ApiToken => api_token::run(&config),
        Command::Migrate(args) => migrate::run(&config, &args),
        Command::Log(args) => log::run(&config, &args),
        Command::Bundle(command) => bundle::run(&config, command),
        Command::Serve(args) => serve::run(&config, &args),
        Command::Pull(args) => pull::run(&config, &args),
        Command::Testnet(args) => testnet::run(&config, &args),
    }
}
