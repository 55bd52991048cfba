//! Veilid: the node's configuration and startup, and this database's DHT record. The one place
//! in ddcp that touches veilid-core.

mod identity;
mod node;

pub use identity::{RecordIdentity, create_record_identity};
pub use node::{NetworkSettings, Node};

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
}
