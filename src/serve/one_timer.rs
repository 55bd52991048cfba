//! One message to an actor after a pause, at most one pending: setting it again replaces the
//! pending one, and dropping it cancels it, so a timer never outlives its actor's state. The
//! timer of a remote's Status checks and of the publisher's rewrites.

use std::time::Duration;

use ractor::{ActorRef, Message};

/// At most one pending message to `actor`.
#[derive(Debug)]
pub(super) struct OneTimer<M: Message> {
    actor: ActorRef<M>,
    pending: Option<tokio::task::JoinHandle<()>>,
}

impl<M: Message> OneTimer<M> {
    /// Nothing pending yet.
    pub(super) fn new(actor: ActorRef<M>) -> OneTimer<M> {
        OneTimer {
            actor,
            pending: None,
        }
    }

    /// Sends `message` after `pause`, in place of any message pending.
    pub(super) fn set(&mut self, pause: Duration, message: M) {
        self.cancel();
        let actor = self.actor.clone();
        self.pending = Some(tokio::spawn(async move {
            tokio::time::sleep(pause).await;
            let _ = actor.send_message(message);
        }));
    }

    /// Nothing pending any more.
    pub(super) fn cancel(&mut self) {
        if let Some(pending) = self.pending.take() {
            pending.abort();
        }
    }
}

impl<M: Message> Drop for OneTimer<M> {
    fn drop(&mut self) {
        self.cancel();
    }
}
