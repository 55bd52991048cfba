//! Why a remote cannot be pulled until something changes, on its side or in this database
//! (it does not count this one as a member; its Status names another owner than the pinned
//! one), and how the RemoteActor waits for that: said once, to the log and to the supervisor,
//! the record still watched and checked, and said again when a pull works.

use ractor::ActorProcessingErr;

use super::{RemoteEvent, RemoteState};
use crate::pull::RemoteError;

/// Why a remote cannot be pulled until something changes, on its side or in this database:
/// no restart could help.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Waiting {
    /// Its private database does not count this one among its members.
    NotAMember,
    /// Its Status names another owner than the pinned one.
    OwnerChanged,
}

impl Waiting {
    /// Whether `err` is a reason to wait, and which.
    pub(super) fn from_error(err: &ActorProcessingErr) -> Option<Waiting> {
        match err.downcast_ref::<RemoteError>()? {
            RemoteError::NotAMember(_) => Some(Waiting::NotAMember),
            RemoteError::OwnerChanged { .. } => Some(Waiting::OwnerChanged),
            _ => None,
        }
    }
}

impl RemoteState {
    /// The remote cannot be pulled until something changes. Said once (and to the
    /// supervisor, for `ddcp status`); the record stays watched and checked, and is pulled
    /// when its record changes and at each renewal of the listen (`LISTEN_RENEW`), so that
    /// being added again, or the owner pinned again, is noticed.
    pub(super) fn waits(&mut self, why: Waiting, error: String) {
        if self.waiting.replace(why) == Some(why) {
            return;
        }
        let name = &self.args.link.name;
        match why {
            Waiting::NotAMember => tracing::warn!(target: "ddcp", remote_name = %name, error,
                "The remote's private database does not count this one as a member; waiting for its status to change"),
            Waiting::OwnerChanged => tracing::warn!(target: "ddcp", remote_name = %name, error,
                "The remote's status names another owner than the one pinned; not pulling it until it names the pinned one again, or another is pinned"),
        }
        let _ = self.args.supervisor.send_message(RemoteEvent::Waiting {
            name: self.args.link.name.clone(),
            from: self.actor_id,
            error,
        });
    }

    /// A pull worked: whatever the actor waited for is over, and said so.
    pub(super) fn waited(&mut self) {
        let name = &self.args.link.name;
        match self.waiting.take() {
            Some(Waiting::NotAMember) => {
                tracing::info!(target: "ddcp", remote_name = %name, "A member of the remote's database again")
            }
            Some(Waiting::OwnerChanged) => {
                tracing::info!(target: "ddcp", remote_name = %name, "The remote's status names its pinned owner: pulling again")
            }
            None => {}
        }
    }
}
