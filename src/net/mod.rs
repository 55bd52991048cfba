//! Veilid: the node's configuration and startup, and this database's DHT record. The one place
//! in ddcp that touches veilid-core.

mod events;
mod first_contact;
mod identity;
mod network;
mod node;
mod record_holds;
mod refresh;
mod released;
mod testnet;

pub use events::{CallId, IncomingCall, NetEvent};
pub use first_contact::{FirstContact, WARN_AFTER};
pub use identity::{RecordIdentity, create_record_identity};
pub use network::{ImportedRoute, Network, OwnRoute, Rewrite, RouteId};
pub use node::{NetworkSettings, Node, NodeRole};
pub use record_holds::RecordHolder;
pub use refresh::{FIRST_REFRESH, LONGEST_REFRESH, REWRITTEN_WITHIN, RefreshPauses};
pub use testnet::{TestNet, TestNetPlan};

/// What can go wrong on the network side. Messages are complete sentences for the user.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // each #[error] says what the variant means
pub enum NetError {
    #[error("cannot start the Veilid node in {dir}: {reason}")]
    Startup {
        dir: std::path::PathBuf,
        reason: String,
    },
    #[error("cannot create the database's DHT record: {0}")]
    CreateRecord(String),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is damaged: {reason}")]
    BadIdentity {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("{0} already holds a database's DHT record: one state dir per database")]
    IdentityExists(std::path::PathBuf),
    #[error("no DHT record in {0}: run `ddcp init` first (or pass --state-dir)")]
    NoIdentity(std::path::PathBuf),
    #[error("cannot join the Veilid network: {0}")]
    Attach(String),
    #[error(
        "the listen address {0:?} (--listen, VEILID_LISTEN or network.conf) is not a HOST:PORT that resolves (e.g. 0.0.0.0:5150)"
    )]
    BadListen(String),
    #[error(
        "the Veilid node was not ready within {0:?}: check the bootstrap settings and that peers are up"
    )]
    AttachTimeout(std::time::Duration),
    #[error("private route: {0}")]
    Route(String),
    #[error("app call failed: {0}")]
    Call(String),
    #[error("DHT record {key}: {reason}")]
    Record { key: String, reason: String },
    #[error("DHT record {key} is not on the network yet: {reason}")]
    RecordNotFound { key: String, reason: String },
    #[error("no answer from the Veilid network within {0:?}")]
    Timeout(std::time::Duration),
    #[error("a message of {0} bytes is over Veilid's 32 KiB limit (a bug: please report it)")]
    TooBig(usize),
}

impl NetError {
    /// The record could not be found, or not in time: normal while its owner has not
    /// published it yet (a peer that never served, or one starting now).
    pub fn is_record_not_found_yet(&self) -> bool {
        matches!(self, NetError::RecordNotFound { .. } | NetError::Timeout(_))
    }
}
