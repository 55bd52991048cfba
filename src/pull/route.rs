//! The remote a pull follows: its Status read again for a fresh route while calls fail (a
//! private route dies with any node it passes through), and every Status checked against the
//! owner pinned for the remote before its route and seals are followed.

use std::time::{Duration, Instant};

use super::{Pull, RemoteError, RemoteLink, RemoteView, read_status};
use crate::db::OwnerCheck;
use crate::db_actor::DbHandle;

/// How long calls may keep failing, the remote's Status read again between rounds, before a
/// pull gives up (at least [`super::CALL_ATTEMPTS`] rounds): a private route dies with any
/// node it passes through (a peer that stopped), and its owner's node takes 20-35 s to find
/// out and publish a new one (veilid-core's route tests), so a puller that gave up after four
/// calls failed while the remote was there all along.
pub(super) const ROUTE_PATIENCE: Duration = Duration::from_secs(60);

/// The pause between rounds of failed calls once [`super::CALL_ATTEMPTS`] have failed: a call that
/// fails at once must not spin.
pub(super) const ROUTE_PAUSE: Duration = Duration::from_secs(1);

impl Pull<'_> {
    /// [`Pull::refresh_route`] while calls fail, since `failing_since`: a read of the Status
    /// that fails within [`ROUTE_PATIENCE`] (the DHT is slow too) is one more failure, not the
    /// end.
    pub(super) async fn refresh_route_patiently(
        &mut self,
        failing_since: Instant,
    ) -> Result<(), RemoteError> {
        match self.refresh_route().await {
            Err(RemoteError::Net(_) | RemoteError::NotPublished)
                if failing_since.elapsed() < ROUTE_PATIENCE =>
            {
                Ok(())
            }
            other => other,
        }
    }

    pub(super) async fn refresh_route(&mut self) -> Result<(), RemoteError> {
        let view = read_status(self.network, self.me, &self.link.key).await?;
        // Read again mid-pull, it is checked again: its route and seals are followed next.
        check_owner(self.db, self.link, &view).await?;
        self.session = view.session;
        let status = view.status;
        if status.route != self.remote.route {
            // The old route is let go of as it is dropped (released when no one else holds
            // it: the new blob may name the same route).
            self.route = self.network.import_route(&status.route)?;
        }
        self.remote = status;
        Ok(())
    }
}

/// Whoever holds the record's owner key can write any Status: one naming another database
/// identity than the pinned one is not followed (db/owners.rs); the first one named is pinned.
pub async fn check_owner(
    db: &DbHandle,
    link: &RemoteLink,
    view: &RemoteView,
) -> Result<(), RemoteError> {
    match db.check_owner(&link.name, view.owner()).await? {
        OwnerCheck::Changed { pinned, now } => Err(RemoteError::OwnerChanged {
            name: link.name.to_string(),
            pinned,
            now,
        }),
        OwnerCheck::PinnedNow => {
            let owner = view
                .owner()
                .map(|owner| owner.to_string())
                .unwrap_or_default();
            tracing::info!(target: "ddcp", remote_name = %link.name, owner,
                "Pinned the remote's owner: a status naming another is refused");
            Ok(())
        }
        OwnerCheck::Same | OwnerCheck::Unnamed => Ok(()),
    }
}
