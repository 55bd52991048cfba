//! The sync protocol's messages, as Rust types (their wire form is schema/ddcp.capnp, through
//! [`super::codec`]). A puller sends requests, the remote answers; see `serve` and `pull`.

use super::change::Change;
use super::cursor::Cursor;
use super::ids::{DbVersion, Epoch, Incarnation, SiteId};
use super::member::MemberId;
use super::schema::{SchemaDesc, SchemaFingerprint};
use super::schema_history::{HistoryMark, SchemaHistory};

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 1;

/// The largest message Veilid carries (app_call question or answer, one DHT subkey).
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024;

/// The largest answer before a private database seals it: sealing adds a nonce, a tag and a
/// wrapper (about 130 bytes), and the sealed answer must still be one message.
pub const MAX_ANSWER_BYTES: usize = MAX_MESSAGE_BYTES - 256;

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// What a database publishes about itself in its DHT record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The database's cr-sqlite site id.
    pub site_id: SiteId,
    /// Its newest version: a peer behind it has changes to pull.
    pub db_version: DbVersion,
    /// Its CRR schema's fingerprint: peers with another one cannot exchange changes.
    pub schema_fingerprint: SchemaFingerprint,
    /// The private route blob that peers call this database on.
    pub route: Vec<u8>,
    /// The database's member id (empty from builds before private databases).
    pub public_key: Vec<u8>,
    /// Its life since its last restore: a puller that pulled another one starts over.
    pub incarnation: Incarnation,
    /// Where its schema history stands: a follower asks for it when it moved.
    pub history: HistoryMark,
}

/// What a database's record holds: its Status for anyone with the record's key, or sealed for
/// its members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Published {
    /// A public database's Status.
    Open(Status),
    /// A private database's.
    Sealed(SealedStatus),
}

/// A private database's Status, which only its members can open ([`crate::seal`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedStatus {
    /// Requests must name it; it moves on when a member is removed.
    pub epoch: Epoch,
    /// The database's member id: members agree keys with it.
    pub owner: MemberId,
    /// The body's key, sealed to each member in turn.
    pub keys: Vec<Vec<u8>>,
    /// The body's nonce.
    pub nonce: [u8; 24],
    /// An encoded [`Status`], encrypted.
    pub body: Vec<u8>,
}

/// A request to a private database, signed by a member ([`crate::seal::authenticate`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authenticated {
    /// Who asks.
    pub member: MemberId,
    /// The epoch of the Status the asker read.
    pub epoch: Epoch,
    /// Random; the answer is bound to it.
    pub nonce: [u8; 24],
    /// The request itself (an encoded message).
    pub request: Vec<u8>,
    /// The member's signature over the database's record key, epoch, nonce and request.
    pub signature: [u8; 64],
}

/// The answer to an [`Authenticated`] request, which only its asker can open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedAnswer {
    /// The answer's nonce.
    pub nonce: [u8; 24],
    /// The encoded answer, encrypted for the asker.
    pub answer: Vec<u8>,
}

/// "Send me your changes after `since`."
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangesRequest {
    /// The asker's own changes are left out: it has them.
    pub asker: SiteId,
    /// Where the asker stands in the answering database's changes.
    pub since: Cursor,
    /// The page budget in bytes of changes; an answer over one message is fragmented.
    pub max_bytes: u32,
    /// The asker's CRR schema fingerprint; the answer is an error when it differs.
    pub schema_fingerprint: SchemaFingerprint,
    /// Where the asker wants to be told of new versions, if it does.
    pub listen: Option<Listen>,
}

/// The most bytes of a route blob a listener may give (Veilid's are a few hundred).
pub const MAX_LISTEN_ROUTE_BYTES: usize = 4096;

/// "Tell me of your new versions": a [`Note`] goes to `route`, quoting `token`, whenever the
/// answering database moves, for as long as the asker keeps asking (docs/protocol.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listen {
    /// The asker's private route blob, at most [`MAX_LISTEN_ROUTE_BYTES`].
    pub route: Vec<u8>,
    /// What the notes quote.
    pub token: ListenToken,
}

/// A listener's token: random, known to it and to the database it asked alone (the request
/// travels inside a private route), so a note that quotes it comes from that database.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenToken(pub [u8; 16]);

impl ListenToken {
    /// A new random token.
    pub fn random() -> ListenToken {
        ListenToken(crate::random::bytes())
    }
}

/// The token authenticates notes: it stays out of logs.
impl std::fmt::Debug for ListenToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ListenToken(..)")
    }
}

/// A private database's [`Note`], sealed for the member who listens (`seal::seal_note`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedNote {
    /// The listener's token: finds its remote, and binds the seal.
    pub token: ListenToken,
    /// The key epoch it is sealed in.
    pub epoch: Epoch,
    /// The seal's nonce.
    pub nonce: [u8; 24],
    /// The encoded note, encrypted.
    pub note: Vec<u8>,
}

/// The most bytes of a sealed note: a note is a few dozen.
pub const MAX_SEALED_NOTE_BYTES: usize = 256;

/// A one-way hint to a listener: the database has a new version. Never applied: the listener
/// pulls, and checks what it pulls as always.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The listener's token.
    pub token: ListenToken,
    /// The database's newest version.
    pub db_version: DbVersion,
    /// Its life since its last restore.
    pub incarnation: Incarnation,
}

/// A page of changes: whole db_version groups, or one part of a group too big for one page.
#[derive(Clone, Debug, PartialEq)]
pub struct ChangesPage {
    /// The answering database.
    pub site_id: SiteId,
    /// The request's cursor, echoed, so that a late or repeated answer is recognized.
    pub since: Cursor,
    /// Where the next request starts.
    pub after: Cursor,
    /// False while the page is a part of a group that continues in the next page.
    pub group_complete: bool,
    /// The remote had changes beyond `after` when it answered.
    pub more: bool,
    /// The remote's db_version when it answered ...
    pub db_version: DbVersion,
    /// ... in this life of it: a cursor of another life is no good here (the puller starts
    /// over).
    pub incarnation: Incarnation,
    /// The changes, in cursor order.
    pub changes: Vec<Change>,
    /// For a reader whose filter has a row predicate: the current cells, from before `since`,
    /// of rows a change of this page may have made visible to it (applied with the page;
    /// known ones are no-ops). Empty otherwise.
    pub rows: Vec<Change>,
}

/// An answer too big for one message, to be fetched in fragments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fragmented {
    /// SHA-256 of the whole answer.
    pub hash: Hash,
    /// The whole answer's length in bytes.
    pub total_len: u64,
    /// How many fragments carry it.
    pub fragment_count: u32,
}

/// "Send me fragment `index` of the answer to `original`."
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FragmentRequest {
    /// The request whose answer was fragmented, so a remote that forgot the answer can rebuild it.
    pub original: Vec<u8>,
    /// The fragmented answer's hash, from its manifest.
    pub hash: Hash,
    /// Which fragment, from 0.
    pub index: u32,
}

/// One fragment of a fragmented answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fragment {
    /// The hash of the answer this fragment belongs to.
    pub hash: Hash,
    /// Its position, from 0.
    pub index: u32,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// What a peer can act on when it gets an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// The request could not be decoded.
    Malformed,
    /// The CRR schemas differ: nothing can be exchanged.
    SchemaMismatch,
    /// The cursor is ahead of the database: start over.
    UnknownCursor,
    /// Try again later.
    TooBusy,
    /// The asker may not read this database.
    NotAllowed,
    /// The fragmented answer changed meanwhile: ask for the page again.
    FragmentGone,
    /// The protocol versions differ.
    UnsupportedVersion,
    /// The database failed to answer.
    Internal,
}

/// An error answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ProtocolError {
    /// What the asker can do about it.
    pub code: ErrorCode,
    /// Details for the log.
    pub message: String,
}

impl ProtocolError {
    /// An error of kind `code`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ProtocolError {
            code,
            message: message.into(),
        }
    }
}

/// A database's schema as it answers a schema request: the CRR tables' shape, and the history
/// of migrations that made it (docs/schema-evolution.md).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublishedSchema {
    /// The CRR tables and their columns.
    pub shape: SchemaDesc,
    /// The additive migrations that made them, oldest first.
    pub history: SchemaHistory,
}

/// Every message of the protocol.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// A puller asks for changes.
    ChangesRequest(ChangesRequest),
    /// A page of changes answers it.
    ChangesPage(ChangesPage),
    /// The answer is too big for one message: fetch its fragments.
    Fragmented(Fragmented),
    /// A puller asks for one fragment.
    FragmentRequest(FragmentRequest),
    /// One fragment answers it.
    Fragment(Fragment),
    /// The request failed.
    Error(ProtocolError),
    /// "Send me your CRR schema and its history".
    SchemaRequest,
    /// The answer to a schema request.
    Schema(PublishedSchema),
    /// A request to a private database.
    Authenticated(Authenticated),
    /// Its answer.
    SealedAnswer(SealedAnswer),
    /// A new version, told to a listener.
    Note(Note),
    /// A private database's note, sealed for the member who listens.
    SealedNote(SealedNote),
}
