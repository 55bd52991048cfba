//! What the supervisor knows of each remote's replication, for `ddcp status` and the lag
//! metric: versions seen and pulled, the last success and the last failure since.

use std::time::SystemTime;

use crate::control::RemoteHealth;
use crate::metrics::{self, DbLabel};
use crate::sync::DbVersion;

/// One remote's replication, as its actor reported it.
#[derive(Clone, Debug, Default)]
pub(super) struct Health {
    /// The remote's version when last pulled.
    pulled: Option<DbVersion>,
    /// The remote's version as last seen.
    seen: Option<DbVersion>,
    /// Unix seconds of the last successful pull.
    last_success: Option<i64>,
    /// The last failure since then.
    last_error: Option<String>,
    /// Changes refused by the remote's author policy.
    refused: u64,
}

impl Health {
    /// The remote's Status showed `version`.
    pub fn seen(&mut self, version: DbVersion) {
        self.seen = self.seen.max(Some(version));
    }

    /// A pull finished with the remote at `version`, having skipped `refused` changes.
    pub fn pulled(&mut self, version: DbVersion, refused: u64) {
        self.refused += refused;
        self.pulled = Some(version);
        self.seen(version);
        self.last_success = Some(unix_now());
        self.last_error = None;
    }

    /// The remote's actor failed, or could not start.
    pub fn failed(&mut self, error: String) {
        self.last_error = Some(error);
    }

    /// The last failure since the last success.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Versions of the remote seen but not pulled yet, once one was seen.
    pub fn lag(&self) -> Option<i64> {
        Some((self.seen?.0 - self.pulled.map_or(0, |version| version.0)).max(0))
    }

    /// Exports the lag of remote `name`.
    pub fn report_lag(&self, db: &DbLabel, name: &str) {
        if let Some(lag) = self.lag() {
            metrics::lag(db, name, lag);
        }
    }

    /// The report `ddcp status` shows; `key` is printed as is (without its secret).
    pub fn report(&self, name: String, key: String, restarts: u32, running: bool) -> RemoteHealth {
        RemoteHealth {
            name,
            key,
            pulled_version: self.pulled.map(|version| version.0),
            remote_version: self.seen.map(|version| version.0),
            last_success: self.last_success,
            last_error: self.last_error.clone(),
            refused: self.refused,
            restarts,
            running,
        }
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_what_was_seen_and_not_pulled() {
        let mut health = Health::default();
        assert_eq!(health.lag(), None);
        health.seen(DbVersion(7));
        assert_eq!(health.lag(), Some(7));
        health.failed("timeout".into());
        health.pulled(DbVersion(5), 0);
        assert_eq!(health.lag(), Some(2));
        assert_eq!(health.last_error(), None, "a success clears the last error");
        health.seen(DbVersion(3));
        assert_eq!(health.lag(), Some(2), "an older Status moves nothing");
        let report = health.report("a".into(), "VLD0:k".into(), 1, true);
        assert_eq!(report.pulled_version, Some(5));
        assert_eq!(report.remote_version, Some(7));
        assert!(report.last_success.is_some());
    }
}
