//! Why a pull stopped: [`RemoteError`], and the kind the errors metric counts it as.

use crate::db::DbError;
use crate::db_actor::DbCallError;
use crate::net::NetError;
use crate::sync::MemberId;
use crate::sync::codec::CodecError;
use crate::sync::protocol::ProtocolError;
use crate::sync::pull::PullError;

/// Why a pull stopped.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // each #[error] says what the variant means
pub enum RemoteError {
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("the remote has published no status yet: is `ddcp serve` running there?")]
    NotPublished,
    #[error("the remote's status is malformed: {0}")]
    BadStatus(CodecError),
    #[error("not a member (ask its owner to run: ddcp member add NAME {0})")]
    NotAMember(MemberId),
    #[error("the remote's sealed status does not open: damaged or forged")]
    DamagedSeal,
    #[error(
        "its status names another owner than the one pinned ({pinned}, now {}): its record's keys may be in other hands, or it publishes another database now; nothing pulled. If its owner confirms the new one: ddcp remote set {name} --owner ID",
        now.map_or_else(|| "none".to_string(), |now| now.to_string())
    )]
    OwnerChanged {
        name: String,
        pinned: MemberId,
        now: Option<MemberId>,
    },
    #[error("the remote sent garbage, nothing of it applied: {0}")]
    Garbage(PullError),
    #[error("the schemas differ, nothing applied: {0}")]
    SchemaMismatch(String),
    #[error(
        "it has this database's site id: one is a copy of the other (a copied database file, or a restore while the original serves). Two copies of one site corrupt their peers: stop one, and make new peers with `ddcp clone KEY`"
    )]
    SameSite,
    #[error("the remote refused: {0}")]
    Refused(ProtocolError),
    #[error("the remote's answers make no progress")]
    NoProgress,
    #[error("the remote stayed too busy to answer for minutes")]
    TooBusy,
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("the database did not answer (ddcp is shutting down?)")]
    DbGone,
}

impl From<DbCallError> for RemoteError {
    fn from(err: DbCallError) -> Self {
        match err {
            DbCallError::Db(err) => RemoteError::Db(err),
            DbCallError::Gone => RemoteError::DbGone,
        }
    }
}

impl RemoteError {
    /// The kind of failure, for the errors metric.
    pub fn kind(&self) -> &'static str {
        match self {
            RemoteError::Net(_) | RemoteError::TooBusy => "net",
            RemoteError::NotPublished => "not_published",
            RemoteError::BadStatus(_)
            | RemoteError::DamagedSeal
            | RemoteError::Garbage(_)
            | RemoteError::NoProgress => "garbage",
            RemoteError::NotAMember(_) => "not_member",
            RemoteError::OwnerChanged { .. } => "owner_changed",
            RemoteError::SchemaMismatch(_) => "schema",
            RemoteError::SameSite => "copy",
            RemoteError::Refused(_) => "refused",
            RemoteError::Db(_) | RemoteError::DbGone => "db",
        }
    }
}
