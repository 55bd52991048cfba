//! What the DbActor is asked ([`DbMsg`]), what it tells its listener ([`DbEvent`]), and the
//! state of the database it reports ([`LocalState`]).

use std::sync::Arc;

use ractor::RpcReplyPort;

use crate::db::{
    AcceptOutcome, AcceptPolicy, AccessState, AppStatement, Committed, DbError, Followed,
    MirrorPrefix, OwnerCheck, Remote, RemoteName,
};
use crate::sync::filter::ChangeFilter;
use crate::sync::protocol::ChangesPage;
use crate::sync::schema_fit::SchemaFit;
use crate::sync::schema_history::{HistoryMark, SchemaHistory};
use crate::sync::{
    Cursor, DbVersion, Incarnation, MemberId, SchemaDesc, SchemaFingerprint, SiteId,
};

/// What peers learn about this database from its Status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalState {
    /// The database's site id.
    pub site_id: SiteId,
    /// Its newest version.
    pub db_version: DbVersion,
    /// The fingerprint of the CRR tables it shares (its own, and mirrors served onward).
    pub schema_fingerprint: SchemaFingerprint,
    /// The fingerprint of its own CRR tables (mirrors left out): what a remote pulled into
    /// mirrors must have.
    pub own_fingerprint: SchemaFingerprint,
    /// Its life since its last restore.
    pub incarnation: Incarnation,
    /// Where its schema history stands.
    pub history: HistoryMark,
}

/// What the DbActor does.
pub enum DbMsg {
    /// Answer a peer's request (the bytes of an app call), its pages within a budget when one
    /// is given, holding only what the filter lets that peer read.
    Answer {
        /// The request as it came.
        request: Vec<u8>,
        /// The page budget, when a loaded node asks for smaller pages.
        budget: Option<u32>,
        /// What the asker may read.
        filter: Arc<ChangeFilter>,
        /// Gets the answer's bytes.
        reply: RpcReplyPort<Vec<u8>>,
    },
    /// The database's state now.
    State(RpcReplyPort<Result<LocalState, DbError>>),
    /// The CRR tables the database shares (see `Db::shared_schema`).
    Schema(RpcReplyPort<Result<SchemaDesc, DbError>>),
    /// Where this database stands in a remote's changes.
    Cursor {
        /// The remote's site.
        remote: SiteId,
        /// Gets the cursor.
        reply: RpcReplyPort<Result<Cursor, DbError>>,
    },
    /// Forget where this database stands in a remote's changes.
    ResetCursor {
        /// The remote's site.
        remote: SiteId,
        /// Told when it is done.
        reply: RpcReplyPort<Result<(), DbError>>,
    },
    /// Accept a page of a remote's changes.
    Accept {
        /// The remote's site.
        remote: SiteId,
        /// The page.
        page: Box<ChangesPage>,
        /// What the remote may change here.
        policy: AcceptPolicy,
        /// How the remote's schema fits this database's: what must wait here.
        fit: Arc<SchemaFit>,
        /// Gets what was applied and refused.
        reply: RpcReplyPort<Result<AcceptOutcome, DbError>>,
    },
    /// How a remote's schema fits this database's.
    FitSchema {
        /// The remote's schema.
        theirs: Box<SchemaDesc>,
        /// The remote's mirrors' prefix, when it is pulled into mirrors.
        into: Option<MirrorPrefix>,
        /// Gets the fit, or the conflict.
        reply: RpcReplyPort<Result<SchemaFit, DbError>>,
    },
    /// Where the schema history a remote published stood when last seen.
    SeenHistory {
        /// The remote.
        remote: RemoteName,
        /// Gets the mark, if the remote's history was ever seen.
        reply: RpcReplyPort<Result<Option<HistoryMark>, DbError>>,
    },
    /// Take in the schema history a remote publishes now (and follow it, if it is followed).
    SeeHistory {
        /// The remote.
        remote: RemoteName,
        /// Its history.
        history: Box<SchemaHistory>,
        /// Gets what became of it.
        reply: RpcReplyPort<Result<Followed, DbError>>,
    },
    /// Run an app's statements in one transaction (the HTTP API).
    AppTransaction {
        /// The statements.
        statements: Vec<AppStatement>,
        /// Gets what they did, or why none was applied.
        reply: RpcReplyPort<Result<Committed, DbError>>,
    },
    /// The remotes table.
    Remotes(RpcReplyPort<Result<Vec<Remote>, DbError>>),
    /// A pull of this remote starts: note the site its Status named, and ready the cursor in
    /// its changes for a pull under this accept policy.
    AlignCursor {
        /// The remote's name here.
        name: RemoteName,
        /// The site its Status named.
        remote: SiteId,
        /// The policy the pull runs under.
        policy: AcceptPolicy,
        /// Gets whether the cursor started over.
        reply: RpcReplyPort<Result<bool, DbError>>,
    },
    /// Checks the owner a remote's Status names against the pinned one (pinned when none is).
    CheckOwner {
        /// The remote's name here.
        name: RemoteName,
        /// The owner its Status named, if any.
        seen: Option<MemberId>,
        /// Gets how it compares.
        reply: RpcReplyPort<Result<OwnerCheck, DbError>>,
    },
    /// The access mode, key epoch and members.
    AccessState(RpcReplyPort<Result<AccessState, DbError>>),
    /// Check for commits made since the last check.
    CheckForChanges,
    /// The watch on the WAL ended: look on the timer as often as without one.
    WatchEnded,
}

impl std::fmt::Debug for DbMsg {
    /// The request and its small fields: a page's changes and a request's bytes are counted,
    /// not printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbMsg::Answer {
                request, budget, ..
            } => f
                .debug_struct("Answer")
                .field("request_bytes", &request.len())
                .field("budget", budget)
                .finish_non_exhaustive(),
            DbMsg::State(_) => f.write_str("State"),
            DbMsg::Schema(_) => f.write_str("Schema"),
            DbMsg::Cursor { remote, .. } => f
                .debug_struct("Cursor")
                .field("remote", remote)
                .finish_non_exhaustive(),
            DbMsg::ResetCursor { remote, .. } => f
                .debug_struct("ResetCursor")
                .field("remote", remote)
                .finish_non_exhaustive(),
            DbMsg::Accept { remote, page, .. } => f
                .debug_struct("Accept")
                .field("remote", remote)
                .field("changes", &page.changes.len())
                .field("rows", &page.rows.len())
                .finish_non_exhaustive(),
            DbMsg::FitSchema { theirs, into, .. } => f
                .debug_struct("FitSchema")
                .field("tables", &theirs.tables.len())
                .field("into", into)
                .finish_non_exhaustive(),
            DbMsg::SeenHistory { remote, .. } => f
                .debug_struct("SeenHistory")
                .field("remote", remote)
                .finish_non_exhaustive(),
            DbMsg::SeeHistory {
                remote, history, ..
            } => f
                .debug_struct("SeeHistory")
                .field("remote", remote)
                .field("migrations", &history.len())
                .finish_non_exhaustive(),
            DbMsg::AppTransaction { statements, .. } => f
                .debug_struct("AppTransaction")
                .field("statements", &statements.len())
                .finish_non_exhaustive(),
            DbMsg::Remotes(_) => f.write_str("Remotes"),
            DbMsg::AlignCursor { name, remote, .. } => f
                .debug_struct("AlignCursor")
                .field("name", name)
                .field("remote", remote)
                .finish_non_exhaustive(),
            DbMsg::CheckOwner { name, seen, .. } => f
                .debug_struct("CheckOwner")
                .field("name", name)
                .field("seen", seen)
                .finish_non_exhaustive(),
            DbMsg::AccessState(_) => f.write_str("AccessState"),
            DbMsg::CheckForChanges => f.write_str("CheckForChanges"),
            DbMsg::WatchEnded => f.write_str("WatchEnded"),
        }
    }
}

/// What the DbActor tells whoever listens (`ddcp serve`'s supervisor).
#[derive(Debug)]
pub enum DbEvent {
    /// The database's version or schema moved: this is its state now.
    StateChanged(LocalState),
}
