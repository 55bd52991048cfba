//! What a pull did, and where it is while it runs.

use crate::sync::{DbVersion, Incarnation};

/// What a pull did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PullReport {
    /// Pages accepted.
    pub pages: u64,
    /// Changes received and admitted (some may have been known already).
    pub changes: u64,
    /// Changes received and skipped: the remote may not bring them (`--authors`, or its
    /// accept filter).
    pub refused: u64,
    /// The remote's version when it last answered ...
    pub remote_version: DbVersion,
    /// ... in this life of it (see [`Incarnation`]).
    pub remote_incarnation: Incarnation,
    /// True when this database changed.
    pub applied: bool,
}

impl PullReport {
    /// The report as the control socket and `ddcp pull --json` give it, for remote `name`.
    pub fn outcome(&self, name: String) -> crate::control::PullOutcome {
        crate::control::PullOutcome {
            name,
            pages: self.pages,
            changes: self.changes,
            refused: self.refused,
            remote_version: self.remote_version.0,
            applied: self.applied,
            error: None,
        }
    }
}

/// Where a pull is, for a progress display.
#[derive(Clone, Debug, Default)]
pub struct PullProgress {
    /// Pages accepted so far.
    pub pages: u64,
    /// Changes received so far.
    pub changes: u64,
    /// Fragments of the answer being fetched, of how many.
    pub fragments: Option<(u32, u32)>,
    /// The remote's version.
    pub remote_version: DbVersion,
}
