//! When a watched remote's Status is read though no change was reported. A watch can go quiet
//! without ending (measured on the private network: a remote whose record got new closest
//! nodes was never told of the next change), so the Status is read all the same: every
//! [`CHECK_EVERY`] while the remote changes, and less and less often while it does not, up to
//! [`QUIET_CHECK_EVERY`]. A change missed waits at most that long, and only when its note was
//! lost too.
//!
//! Why slow down: the checks were most of an idle host's work (each is a DHT read from several
//! nodes, every message signed and checked; benches/hosting.rs), while a remote that wrote
//! nothing for minutes has nothing for them to find. Any change, told or found, brings the
//! checks back to every [`CHECK_EVERY`].
//!
//! Here too is the check itself (`RemoteState::check`), and the listen's renewal it makes.

use std::time::Duration;

use ractor::{ActorProcessingErr, ActorRef};

use super::{RemoteMsg, RemoteState};
use crate::metrics;
use crate::pull::read_status;
use crate::serve::one_timer::OneTimer;

/// How often a remote that changes is checked, and a remote that has just changed.
pub const CHECK_EVERY: Duration = Duration::from_secs(30);

/// How often a remote that has not changed for a while is checked, at the least: within the
/// listen's renewal ([`super::LISTEN_RENEW`]), which only a check makes.
pub const QUIET_CHECK_EVERY: Duration = Duration::from_secs(120);

/// How long after its last change a remote is checked every [`QUIET_CHECK_EVERY`]: the checks
/// found nothing at 30 s and 90 s after it, and the next is set for 210 s.
pub const QUIET_AFTER: Duration = Duration::from_secs(90);

/// How long the next check waits: twice the last wait after a check that found nothing, up to
/// [`QUIET_CHECK_EVERY`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckInterval(Duration);

impl CheckInterval {
    /// The interval of a remote that has just changed.
    pub const AFTER_A_CHANGE: CheckInterval = CheckInterval(CHECK_EVERY);

    /// The interval after a check that found nothing new.
    pub fn after_nothing_found(self) -> CheckInterval {
        CheckInterval((self.0 * 2).min(QUIET_CHECK_EVERY))
    }

    /// How long the next check waits.
    pub fn wait(self) -> Duration {
        self.0
    }
}

/// The timer of one remote's checks: one `Check` message at a time, after the current
/// interval.
#[derive(Debug)]
pub(super) struct Checks {
    interval: CheckInterval,
    timer: OneTimer<RemoteMsg>,
}

impl Checks {
    /// Checks `actor`'s remote, first after [`CHECK_EVERY`].
    pub(super) fn start(actor: ActorRef<RemoteMsg>) -> Checks {
        let mut checks = Checks {
            interval: CheckInterval::AFTER_A_CHANGE,
            timer: OneTimer::new(actor),
        };
        checks.set_timer();
        checks
    }

    /// A check found nothing new: the next waits longer.
    pub(super) fn found_nothing(&mut self) {
        self.interval = self.interval.after_nothing_found();
    }

    /// The remote changed: the next check is within [`CHECK_EVERY`], and they keep that pace
    /// until the remote is quiet again.
    pub(super) fn remote_changed(&mut self) {
        if self.interval != CheckInterval::AFTER_A_CHANGE {
            self.interval = CheckInterval::AFTER_A_CHANGE;
            self.set_timer();
        }
    }

    /// Sets the next check after the current interval, in place of any set before.
    pub(super) fn set_timer(&mut self) {
        self.timer.set(self.interval.wait(), RemoteMsg::Check);
    }
}

impl RemoteState {
    /// Reads the remote's Status; one this database has not pulled means a change was not
    /// reported: the record is watched again, and pulled. (Polling reads it anyway; a Status
    /// that cannot be read now is looked at again at the next check.)
    pub(super) async fn check(
        &mut self,
        myself: &ActorRef<RemoteMsg>,
    ) -> Result<(), ActorProcessingErr> {
        let renew = self.listen_due();
        if self.polling.is_some() && !renew {
            return Ok(());
        }
        let (network, me, link) = (&self.args.network, &self.args.me, &self.args.link);
        let view = match read_status(network, me, &link.key).await {
            Ok(view) => view,
            Err(err) => {
                tracing::debug!(target: "ddcp", remote_name = %link.name, error = %err,
                    "Cannot check the remote's status");
                return Ok(());
            }
        };
        let missed = self.polling.is_none()
            && self.pulled.is_none_or(|(version, incarnation)| {
                view.status.db_version > version || view.status.incarnation != incarnation
            });
        if !missed && let Some(checks) = &mut self.checks {
            checks.found_nothing();
        }
        if missed {
            tracing::debug!(target: "ddcp", remote_name = %link.name,
                "The remote changed and no notification came: watching it again");
            if self.pulled.is_some() {
                // (Never pulled yet: the first pull failed, nothing a watch could tell.)
                metrics::missed_notification(self.args.db.metrics(), link.name.as_str());
            }
            self.watch_record(myself).await;
            // Its pull asks for notes again too.
            self.sync(Some(view), false).await?;
        } else if renew {
            // Pulls ask for notes: one now asks again, whatever the remote's version. Asking
            // again is no reason to fail: the next check asks again.
            if let Err(err) = self.sync(Some(view), true).await {
                tracing::debug!(target: "ddcp", remote_name = %self.args.link.name, error = %err,
                    "Cannot ask the remote for notes again");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

    use super::*;

    #[test]
    fn checks_slow_down_while_nothing_is_found_and_keep_the_quiet_pace() {
        let mut interval = CheckInterval::AFTER_A_CHANGE;
        let mut waits = Vec::new();
        for _ in 0..5 {
            waits.push(interval.wait().as_secs());
            interval = interval.after_nothing_found();
        }
        assert_eq!(waits, [30, 60, 120, 120, 120]);
    }

    #[test]
    fn the_quiet_pace_starts_when_quiet_after_says() {
        // The checks at CHECK_EVERY and 3 × CHECK_EVERY after a change found nothing; the timer
        // set at the second waits the quiet interval.
        let second = CheckInterval::AFTER_A_CHANGE.after_nothing_found();
        assert_eq!(QUIET_AFTER, CHECK_EVERY + second.wait());
        assert_eq!(second.after_nothing_found().wait(), QUIET_CHECK_EVERY);
    }

    /// Tells the test when each `Check` came, counted from the start.
    struct Recorder;

    impl ractor::Actor for Recorder {
        type Msg = RemoteMsg;
        type State = (tokio::time::Instant, UnboundedSender<Duration>);
        type Arguments = Self::State;

        async fn pre_start(
            &self,
            _myself: ActorRef<RemoteMsg>,
            args: Self::State,
        ) -> Result<Self::State, ractor::ActorProcessingErr> {
            Ok(args)
        }

        async fn handle(
            &self,
            _myself: ActorRef<RemoteMsg>,
            message: RemoteMsg,
            (started, checked): &mut Self::State,
        ) -> Result<(), ractor::ActorProcessingErr> {
            if let RemoteMsg::Check = message {
                let _ = checked.send(started.elapsed());
            }
            Ok(())
        }
    }

    /// The next check's time, in whole seconds from the start.
    async fn next_check(checked: &mut UnboundedReceiver<Duration>) -> u64 {
        checked.recv().await.expect("a check").as_secs()
    }

    #[tokio::test(start_paused = true)]
    async fn the_timer_slows_while_checks_find_nothing_and_hurries_after_a_change() {
        let (tell, mut checked) = unbounded_channel();
        let started = tokio::time::Instant::now();
        let (actor, handle) = ractor::Actor::spawn(None, Recorder, (started, tell))
            .await
            .unwrap();
        let mut checks = Checks::start(actor.clone());
        // As the RemoteActor does: each check found nothing, and set the next.
        let mut times = Vec::new();
        for _ in 0..3 {
            times.push(next_check(&mut checked).await);
            checks.found_nothing();
            checks.set_timer();
        }
        assert_eq!(times, [30, 90, 210]);
        // The remote changes 20 s after the last check: the one set for 330 s gives way to one
        // 30 s after the change.
        tokio::time::sleep(Duration::from_secs(20)).await;
        checks.remote_changed();
        assert_eq!(next_check(&mut checked).await, 260);
        checks.set_timer();
        assert_eq!(next_check(&mut checked).await, 290);
        checks.set_timer();
        // A change while at the pace of a change leaves the timer as it is.
        tokio::time::sleep(Duration::from_secs(10)).await;
        checks.remote_changed();
        assert_eq!(next_check(&mut checked).await, 320);
        // Dropped with the actor's state: no check comes after.
        drop(checks);
        tokio::time::sleep(QUIET_CHECK_EVERY * 2).await;
        assert!(checked.try_recv().is_err());
        actor.stop(None);
        handle.await.unwrap();
    }

    #[test]
    fn the_quiet_pace_renews_the_listen_in_time() {
        // A listen is renewed at the first check past LISTEN_RENEW: it must come before the
        // remote lets the listen lapse.
        assert!(
            super::super::LISTEN_RENEW + QUIET_CHECK_EVERY < crate::serve::listeners::LISTEN_FOR
        );
    }
}
