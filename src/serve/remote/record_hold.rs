//! How a remote's actor holds its remote's record on the node the databases of a host share:
//! by its own id, so that one actor letting go (a remote removed, restarted, or its database
//! stopped) closes the record only when no other actor holds it.

use ractor::ActorId;

use super::RemoteState;
use crate::net::RecordHolder;

/// A killed actor runs neither post_stop nor the failed handler's cleanup (its supervisor
/// stopping, or failing to start, kills its remotes): its note box and its hold on the record
/// are let go when its state goes. Letting go twice is harmless: holds are by actor.
impl Drop for RemoteState {
    fn drop(&mut self) {
        self.args.inbox.close(&self.token, self.actor_id);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (network, key, holder) = (
                self.args.network.clone(),
                self.args.link.key.clone(),
                self.holder(),
            );
            runtime.spawn(async move { network.close_record_as(holder, &key).await });
        }
    }
}

/// How a remote's actor holds its record on the node the databases share.
pub fn holder_of(actor: ActorId) -> RecordHolder {
    RecordHolder(actor.pid())
}

impl RemoteState {
    pub(super) fn holder(&self) -> RecordHolder {
        holder_of(self.actor_id)
    }
}
