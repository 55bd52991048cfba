//! The database layer's one error type.

use std::path::{Path, PathBuf};

use crate::sync::filter::BadFilter;
use crate::sync::ids::BadSiteId;
use crate::sync::record_key::BadRecordKey;
use crate::sync::redact::{NOT_SHOWN, looks_like_a_key};

/// What can go wrong in the database layer. Messages are complete sentences for the user.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // each #[error] says what the variant means
pub enum DbError {
    #[error("no database at {0}: run `ddcp init` first (or pass --db-file)")]
    Missing(PathBuf),
    #[error("{0} is not a ddcp database: run `ddcp init` to add ddcp's tables to it")]
    NotInitialized(PathBuf),
    #[error("{0} is already a ddcp database")]
    AlreadyInitialized(PathBuf),
    #[error("{path} is not a SQLite database")]
    NotSqlite { path: PathBuf },
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "database metadata is schema version {found}, newer than this ddcp knows ({known}): upgrade ddcp"
    )]
    TooNew { found: i64, known: i64 },
    #[error("ddcp's metadata in the database is damaged ({0})")]
    CorruptMetadata(String),
    #[error("{path} already has a table named {table}, which ddcp needs for itself")]
    NameCollision { path: PathBuf, table: String },
    #[error("cannot load cr-sqlite: {0}")]
    Extension(String),
    #[error("{}", sqlite_message(.0))]
    Sqlite(#[from] rusqlite::Error),
    #[error("line {line}: {message} (in: {statement})")]
    Script {
        line: usize,
        statement: String,
        message: String,
    },
    #[error("remote {} already exists", shown(.0))]
    RemoteExists(String),
    #[error("remote {existing:?} already has key {key}")]
    RemoteKeyExists { existing: String, key: String },
    #[error("{0}")]
    Import(String),
    #[error(
        "{0:?} is a table here but not a CRR: make it one with `ddcp shell -c \"select crsql_as_crr('{0}')\"`"
    )]
    NotACrr(String),
    #[error(
        "{0:?} is a mirror of another database's table (--into), not one of this database's own: a filter names its own tables"
    )]
    MirrorInFilter(String),
    #[error("no table named {}", shown(.0))]
    NoSuchTable(String),
    #[error("no remote named {}", shown(.0))]
    NoSuchRemote(String),
    #[error(
        "invalid remote name {0:?}: use letters, digits, '.', '_' and '-', not starting with '-' and not only dots"
    )]
    BadRemoteName(String),
    #[error(
        "this looks like a record key, not a remote's name: the name comes first (`ddcp remote add NAME KEY`)"
    )]
    KeyForRemoteName,
    #[error(
        "this looks like a key, not a member's name: the name comes first, and is a word of your own (`ddcp member add NAME ID`)"
    )]
    KeyForMemberName,
    #[error(
        "invalid member name {}: use letters, digits, '.', '_' and '-', not starting with '-' and not only dots",
        shown(.0)
    )]
    BadMemberName(String),
    #[error("member {} already exists", shown(.0))]
    MemberExists(String),
    #[error("that id is member {0:?} already")]
    MemberIdExists(String),
    #[error("no member named {}", shown(.0))]
    NoSuchMember(String),
    #[error("a private database has at most {0} members; remove one first")]
    TooManyMembers(usize),
    #[error("the members table holds a malformed id")]
    StoredMember,
    #[error("a change's row key is malformed: {0}")]
    BadRowKey(String),
    #[error(
        "invalid --into prefix {0:?}: use letters, digits and '_', starting with a letter (e.g. alice_), at most 32, not sqlite_, crsql or ddcp_"
    )]
    BadMirrorPrefix(String),
    #[error("--into {prefix}: the name is taken by {by}")]
    MirrorPrefixTaken { prefix: String, by: String },
    #[error(
        "--into {prefix}: {table} starts with it, so a mirror's name could be one of this database's own: choose a prefix no table's name starts with (e.g. {prefix}_)"
    )]
    MirrorPrefixStartsTable { prefix: String, table: String },
    #[error(transparent)]
    BadFilter(#[from] BadFilter),
    #[error("remote {name:?} has an invalid key in the database: {reason}")]
    StoredKey { name: String, reason: BadRecordKey },
    #[error("database holds a malformed site id: {0}")]
    SiteId(#[from] BadSiteId),
    #[error("refused a change: {0}")]
    InvalidChange(#[from] crate::sync::validate::InvalidChange),
    #[error(
        "a value in table {table:?} is {size} bytes, over the {limit}-byte limit for replication"
    )]
    ValueTooLarge {
        table: String,
        size: usize,
        limit: usize,
    },
    #[error(
        "the rows a page changes were judged differently at each try (another program writes them, or triggers or the accept filter's --where read other rows): it is pulled again"
    )]
    RowsKeptChanging,
    #[error(
        "its status names the site id of remote {}: two remotes cannot be one database (one of them lies, or was added twice); remove one",
        shown(.0)
    )]
    SiteOfAnotherRemote(String),
    #[error("its status names no site id (all zeros): no database has that one")]
    NoSite,
    #[error(
        "{0} changes are held for tables or columns this database lacks (a remote runs a newer version of the app): add them (`ddcp status` says which), or remove the remote; nothing more is pulled from it meanwhile"
    )]
    HeldFull(u64),
    #[error("statement {statement} of the migration: {reason}; nothing was applied")]
    BadMigration { statement: usize, reason: String },
    #[error("the migration holds no statement")]
    EmptyMigration,
    #[error("{0}")]
    History(crate::sync::schema_history::HistoryError),
    #[error(
        "a transaction holds from 1 to {max} statements, and this one {0}",
        max = super::app_sql::MAX_STATEMENTS
    )]
    AppStatementCount(usize),
    #[error("statement {statement}: {reason}; nothing was applied")]
    AppStatement { statement: usize, reason: String },
    #[error(
        "remote {} is pulled into mirrors: its tables are not this database's, so its schema is not followed",
        shown(.0)
    )]
    FollowIntoMirrors(String),
    #[error("the page does not start where this database stands in the remote's changes")]
    StaleCursor,
    #[error(
        "the remote was restored from a backup since it was last pulled: its changes are pulled again from the start"
    )]
    RemoteRestored,
    #[error("the schemas cannot exchange changes: {0}")]
    SchemaConflict(#[from] crate::sync::schema_fit::SchemaConflict),
    #[error("the remote's schema cannot be made here: {0}")]
    BadPeerSchema(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// `text` quoted, unless it looks like a key (it has a ':', or a run as long as a key's): a
/// secret typed in the wrong place is not repeated.
pub fn shown(text: &str) -> String {
    if text.contains(':') || looks_like_a_key(text) {
        NOT_SHOWN.to_string()
    } else {
        format!("{text:?}")
    }
}

/// SQLite's message without the SQL text that rusqlite appends to syntax errors.
pub(super) fn sqlite_message(err: &rusqlite::Error) -> String {
    match err {
        rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
        rusqlite::Error::SqliteFailure(_, Some(message)) => message.clone(),
        other => other.to_string(),
    }
}

impl DbError {
    /// Classifies a failure to open `path`.
    pub(super) fn from_open(path: &Path, err: rusqlite::Error) -> DbError {
        if err.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) {
            DbError::NotSqlite {
                path: path.to_path_buf(),
            }
        } else {
            DbError::Open {
                path: path.to_path_buf(),
                source: err,
            }
        }
    }
}
