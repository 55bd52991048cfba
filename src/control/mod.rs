//! The CLI <-> daemon protocol, over the state dir's control socket: typed requests and
//! answers, how long each may take, and the client side. The daemon side is
//! `actors::control`. Messages are JSON, framed by a little-endian u32 length ([`frame`]): the
//! socket is local and its messages small, and JSON keeps optional fields optional and an
//! exchange readable with `socat`.

mod client;
pub mod frame;
mod messages;
pub mod watch;

use std::path::{Path, PathBuf};

pub use client::{ask, connect, watch};
pub use messages::{
    ControlRequest, ControlResponse, HostedHealth, PULL_DEADLINE, PullOutcome, QUESTION_DEADLINE,
    REPLY_MARGIN, RemoteHealth,
};

/// The socket's file name in the state dir.
const SOCKET_FILE: &str = "control.sock";

/// What goes wrong between the CLI and the daemon.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // each #[error] says what the variant means
pub enum ControlError {
    #[error("control socket {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the running ddcp serve sent a malformed answer: {0}")]
    Malformed(String),
    #[error("the running ddcp serve: {0}")]
    Daemon(String),
    #[error("another ddcp serve already runs for {0}")]
    AlreadyServing(PathBuf),
}

/// Where the control socket of `state_dir` lives.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET_FILE)
}
