//! The control socket's messages: what the CLI asks a running `ddcp serve` and what it
//! answers, and how long each may take. Plain serde types, so that the fuzzer reads them with
//! the framing exactly as both ends do (fuzz/fuzz_targets/control.rs).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::watch;

/// How long the daemon may work on a pull: every remote asked is pulled at once, each within
/// this deadline, and the answer names the ones that did not finish.
pub const PULL_DEADLINE: Duration = Duration::from_secs(600);
/// How long the daemon may work on any other request.
pub const QUESTION_DEADLINE: Duration = Duration::from_secs(30);
/// The client waits this much longer than the daemon works, so that the daemon's own answer
/// ("took too long") arrives rather than a bare timeout.
pub const REPLY_MARGIN: Duration = Duration::from_secs(5);

/// What the CLI asks a running `ddcp serve`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlRequest {
    /// The remotes table changed: start and stop remote actors to match it.
    RemotesChanged,
    /// The access mode or the members changed: publish accordingly (and, when the epoch moved,
    /// on a new route).
    AccessChanged,
    /// Pull this remote now (every remote when `None`) and answer when done.
    Pull(Option<String>),
    /// Each remote's health (`ddcp status`). Not a remote's Status, the record it publishes:
    /// the name on the wire stays `Status` for daemons of earlier releases.
    #[serde(rename = "Status")]
    Health,
    /// A host's databases, each with its remotes' health (`ddcp host status`).
    HostStatus,
    /// Serve the database of the host's folder `name`, made first when there is none
    /// (`ddcp host add`).
    HostAdd(String),
    /// Stop serving the database `name`, and not serve it at the host's next start (`ddcp
    /// host remove`); its files stay.
    HostRemove(String),
    /// Stream the changes after db_version `since` (after the newest when `None`), of these
    /// tables (all when empty), until the client goes (`ddcp watch`).
    Watch {
        /// Changes after this db_version.
        since: Option<i64>,
        /// Only these tables.
        tables: Vec<String>,
    },
}

impl ControlRequest {
    /// How long the daemon may work on this request.
    pub fn deadline(&self) -> Duration {
        match self {
            ControlRequest::Pull(_) => PULL_DEADLINE,
            _ => QUESTION_DEADLINE,
        }
    }
}

/// How one pull went.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullOutcome {
    /// The remote.
    pub name: String,
    /// Pages accepted.
    pub pages: u64,
    /// Changes received and admitted.
    pub changes: u64,
    /// Changes received and skipped: the remote may not bring them (`--authors`, filters).
    #[serde(default)]
    pub refused: u64,
    /// The remote's db_version when it last answered.
    pub remote_version: i64,
    /// Whether this database changed.
    pub applied: bool,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// One remote as the daemon sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteHealth {
    /// Its name.
    pub name: String,
    /// Its record key, without the secret.
    pub key: String,
    /// The remote's db_version when last pulled.
    pub pulled_version: Option<i64>,
    /// The remote's db_version as last seen in its Status.
    pub remote_version: Option<i64>,
    /// Unix seconds of the last successful pull.
    pub last_success: Option<i64>,
    /// The last failure since that success.
    pub last_error: Option<String>,
    /// Changes its `--authors` or accept filter refused since `ddcp serve` started.
    #[serde(default)]
    pub refused: u64,
    /// How often its actor was restarted.
    pub restarts: u32,
    /// False while it waits to restart.
    pub running: bool,
}

impl RemoteHealth {
    /// Versions of the remote not pulled yet, when both ends are known.
    pub fn lag(&self) -> Option<i64> {
        Some((self.remote_version? - self.pulled_version.unwrap_or(0)).max(0))
    }
}

/// One database of a host, as the host sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostedHealth {
    /// Its name: its folder's.
    pub name: String,
    /// False while it waits to start again after a failure.
    pub running: bool,
    /// How often it was started again.
    pub restarts: u32,
    /// Why it last failed, since it last started.
    pub last_error: Option<String>,
    /// Its remotes.
    pub remotes: Vec<RemoteHealth>,
}

impl HostedHealth {
    /// Versions not pulled yet, over all its remotes whose lag is known.
    pub fn lag(&self) -> Option<i64> {
        self.remotes
            .iter()
            .filter_map(RemoteHealth::lag)
            .reduce(|a, b| a + b)
    }
}

/// The daemon's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlResponse {
    /// Done, nothing to report.
    Done,
    /// The pulls asked for.
    Pulled(Vec<PullOutcome>),
    /// Each remote's health.
    #[serde(rename = "Status")]
    Health(Vec<RemoteHealth>),
    /// A watch's first message: the changes after this db_version follow.
    Watching {
        /// The db_version the watch starts after.
        from: i64,
    },
    /// Changes, in order: a watch's messages after the first.
    Changes(Vec<watch::WatchedChange>),
    /// A host's databases, by name.
    Host(Vec<HostedHealth>),
    /// A database a host now serves: its record key, as `ddcp init` prints it.
    Added {
        /// The record key, with its secret: the one who asked is the owner.
        key: String,
        /// Whether it was made now (else it was in the folder already).
        made: bool,
    },
    /// The request failed.
    Error(String),
}
