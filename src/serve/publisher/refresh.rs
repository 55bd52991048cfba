//! The timer of the Status's rewrites (why an unchanged Status is written again:
//! [`crate::net::RefreshPauses`]): one `Refresh` message at a time, numbered, so that one that
//! was on its way while a change set the timer anew is told apart and dropped.

use ractor::ActorRef;

use super::PublisherMsg;
use crate::net::RefreshPauses;
use crate::serve::one_timer::OneTimer;

/// Sends the publisher `Refresh` after each pause of the schedule.
#[derive(Debug)]
pub(super) struct Refreshes {
    pauses: RefreshPauses,
    timer: OneTimer<PublisherMsg>,
    /// The number of the timer set last.
    armed: u64,
}

impl Refreshes {
    /// No rewrite until a Status is written; then after each of `pauses`.
    pub(super) fn new(actor: ActorRef<PublisherMsg>, pauses: RefreshPauses) -> Refreshes {
        Refreshes {
            pauses,
            timer: OneTimer::new(actor),
            armed: 0,
        }
    }

    /// A changed Status was written: its first rewrite follows soon, in place of any set before.
    pub(super) fn changed(&mut self) {
        let pause = self.pauses.after_change();
        self.set_timer(pause);
    }

    /// The Status was written again (or the rewrite failed): the next waits longer.
    pub(super) fn refreshed(&mut self) {
        let pause = self.pauses.after_refresh();
        self.set_timer(pause);
    }

    /// No rewrite until the next change (the record holds a value this node did not write).
    pub(super) fn stop(&mut self) {
        self.timer.cancel();
    }

    /// Whether a `Refresh(number)` is the one the timer set last sent: the Status is due to be
    /// written again. An older one was already on its way when a change set the timer anew.
    pub(super) fn is_due(&self, number: u64) -> bool {
        number == self.armed
    }

    fn set_timer(&mut self, pause: std::time::Duration) {
        self.armed += 1;
        self.timer.set(pause, PublisherMsg::Refresh(self.armed));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

    use super::*;

    /// Tells the test when each `Refresh` came, in whole minutes from the start, and its number.
    struct Recorder;

    impl ractor::Actor for Recorder {
        type Msg = PublisherMsg;
        type State = (tokio::time::Instant, UnboundedSender<(u64, u64)>);
        type Arguments = Self::State;

        async fn pre_start(
            &self,
            _myself: ActorRef<PublisherMsg>,
            args: Self::State,
        ) -> Result<Self::State, ractor::ActorProcessingErr> {
            Ok(args)
        }

        async fn handle(
            &self,
            _myself: ActorRef<PublisherMsg>,
            message: PublisherMsg,
            (started, told): &mut Self::State,
        ) -> Result<(), ractor::ActorProcessingErr> {
            if let PublisherMsg::Refresh(number) = message {
                let _ = told.send((started.elapsed().as_secs() / 60, number));
            }
            Ok(())
        }
    }

    /// The minute of the next `Refresh`, which must be the one due.
    async fn next_refresh(told: &mut UnboundedReceiver<(u64, u64)>, refreshes: &Refreshes) -> u64 {
        let (minute, number) = told.recv().await.expect("a refresh");
        assert!(refreshes.is_due(number), "the refresh of minute {minute}");
        minute
    }

    #[tokio::test(start_paused = true)]
    async fn rewrites_thin_out_after_a_change_and_a_change_brings_them_close_again() {
        let (tell, mut told) = unbounded_channel();
        let started = tokio::time::Instant::now();
        let (actor, handle) = ractor::Actor::spawn(None, Recorder, (started, tell))
            .await
            .unwrap();
        let mut refreshes = Refreshes::new(actor.clone(), RefreshPauses::default());
        // Nothing written yet: nothing to write again.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(told.try_recv().is_err());
        // Written at minute 60; as the publisher does, each rewrite sets the next.
        refreshes.changed();
        let mut minutes = Vec::new();
        for _ in 0..6 {
            minutes.push(next_refresh(&mut told, &refreshes).await);
            refreshes.refreshed();
        }
        assert_eq!(minutes, [61, 63, 67, 75, 85, 95]);
        // A change 5 minutes later: the rewrite set for minute 105 gives way to one a minute
        // after the change.
        tokio::time::sleep(Duration::from_secs(5 * 60)).await;
        let before_the_change = refreshes.armed;
        refreshes.changed();
        assert!(!refreshes.is_due(before_the_change));
        assert_eq!(next_refresh(&mut told, &refreshes).await, 101);
        // Stopped (the record was written by another node): none until the next change.
        refreshes.refreshed();
        refreshes.stop();
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(told.try_recv().is_err());
        // Dropped with the publisher's state, a rewrite pending: it never comes.
        refreshes.changed();
        drop(refreshes);
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(told.try_recv().is_err());
        actor.stop(None);
        handle.await.unwrap();
    }
}
