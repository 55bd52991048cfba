//! The sync protocol's messages, as Rust types (their wire form is schema/ddcp.capnp, through
//! [`super::codec`]). A puller sends requests, the remote answers; see `serve` and `pull`.

use super::change::Change;
use super::cursor::Cursor;
use super::ids::{DbVersion, SiteId};
use super::schema::{SchemaDesc, SchemaFingerprint};

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 1;

/// The largest message Veilid carries (app_call question or answer, one DHT subkey).
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024;

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// What a database publishes about itself in its DHT record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub site_id: SiteId,
    pub db_version: DbVersion,
    pub schema_fingerprint: SchemaFingerprint,
    /// The private route blob that peers call this database on.
    pub route: Vec<u8>,
    /// The public key peers encrypt to.
    pub public_key: Vec<u8>,
}

/// "Send me your changes after `since`."
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangesRequest {
    /// The asker's own changes are left out: it has them.
    pub asker: SiteId,
    pub since: Cursor,
    /// The page budget in bytes of changes; an answer over one message is fragmented.
    pub max_bytes: u32,
    pub schema_fingerprint: SchemaFingerprint,
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
    /// The remote's db_version when it answered.
    pub db_version: DbVersion,
    pub changes: Vec<Change>,
}

/// An answer too big for one message, to be fetched in fragments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fragmented {
    /// SHA-256 of the whole answer.
    pub hash: Hash,
    pub total_len: u64,
    pub fragment_count: u32,
}

/// "Send me fragment `index` of the answer to `original`."
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FragmentRequest {
    /// The request whose answer was fragmented, so a remote that forgot the answer can rebuild it.
    pub original: Vec<u8>,
    pub hash: Hash,
    pub index: u32,
}

/// One fragment of a fragmented answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fragment {
    pub hash: Hash,
    pub index: u32,
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
    pub code: ErrorCode,
    pub message: String,
}

impl ProtocolError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ProtocolError {
            code,
            message: message.into(),
        }
    }
}

/// Every message of the protocol.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    ChangesRequest(ChangesRequest),
    ChangesPage(ChangesPage),
    Fragmented(Fragmented),
    FragmentRequest(FragmentRequest),
    Fragment(Fragment),
    Error(ProtocolError),
    /// "Send me your CRR schema" (to name a difference after a mismatch).
    SchemaRequest,
    Schema(SchemaDesc),
}
