//! A child the supervisor restarts after a failure, with backoff that grows while it keeps
//! failing and starts over once it ran well for a while.

use std::time::{Duration, Instant};

use ractor::{ActorCell, ActorRef};

use crate::backoff::Backoff;

/// The first restart of a failed child waits a second, each further one twice as long, up to a
/// minute.
const BACKOFF: Backoff = Backoff::doubling(Duration::from_secs(1), Duration::from_secs(60));
/// A child that ran this long before failing starts again from the first backoff.
const HEALTHY_RUN: Duration = Duration::from_secs(300);

/// A child the supervisor restarts: its actor (none while it waits to restart) and its
/// restart history.
#[derive(Debug)]
pub(crate) struct Restartable<M: ractor::Message> {
    /// The running actor; none while it waits to restart.
    pub actor: Option<ActorRef<M>>,
    started: Instant,
    /// How often it was restarted.
    pub restarts: u32,
    backoff: Backoff,
}

impl<M: ractor::Message> Restartable<M> {
    pub fn running(actor: ActorRef<M>) -> Self {
        Restartable {
            actor: Some(actor),
            started: Instant::now(),
            restarts: 0,
            backoff: BACKOFF,
        }
    }

    /// A child that could not even be started: it waits for its first restart.
    pub fn not_started() -> Self {
        Restartable {
            actor: None,
            started: Instant::now(),
            restarts: 0,
            backoff: BACKOFF,
        }
    }

    pub fn is(&self, cell: &ActorCell) -> bool {
        self.actor
            .as_ref()
            .is_some_and(|actor| actor.get_id() == cell.get_id())
    }

    /// Marks it failed; how long to wait before starting it again.
    pub fn failed(&mut self) -> Duration {
        self.failed_at(Instant::now())
    }

    fn failed_at(&mut self, now: Instant) -> Duration {
        // Only a child that ran, and ran long, starts over: one that keeps failing to start
        // never had a healthy run, however long ago its last start was.
        let ran = self.actor.take().is_some();
        if ran && now.duration_since(self.started) >= HEALTHY_RUN {
            self.backoff.reset();
        }
        self.restarts += 1;
        self.backoff.failed()
    }

    /// True while it waits to be started again.
    pub fn is_waiting(&self) -> bool {
        self.actor.is_none()
    }

    pub fn restarted(&mut self, actor: ActorRef<M>) {
        self.restarted_at(actor, Instant::now());
    }

    fn restarted_at(&mut self, actor: ActorRef<M>, now: Instant) {
        self.actor = Some(actor);
        self.started = now;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::marker::PhantomData;

    use ractor::{Actor, ActorProcessingErr};

    use super::*;

    /// An actor that ignores its messages: a child to restart or route to, without a network.
    struct Idle<M>(PhantomData<fn() -> M>);

    impl<M: ractor::Message> Actor for Idle<M> {
        type Msg = M;
        type State = ();
        type Arguments = ();

        async fn pre_start(
            &self,
            _myself: ActorRef<M>,
            _args: (),
        ) -> Result<(), ActorProcessingErr> {
            Ok(())
        }
    }

    /// A running actor that takes `M` and does nothing with it.
    pub async fn idle<M: ractor::Message>() -> ActorRef<M> {
        Actor::spawn(None, Idle(PhantomData), ()).await.unwrap().0
    }

    #[tokio::test]
    async fn backoff_doubles_to_a_ceiling_and_starts_over_after_a_healthy_run() {
        let start = Instant::now();
        let mut child = Restartable::<()>::running(idle().await);
        let mut waits = Vec::new();
        for n in 0..9 {
            let now = start + Duration::from_secs(n);
            waits.push(child.failed_at(now).as_secs());
            assert!(child.is_waiting());
            child.restarted_at(idle().await, now);
            assert!(!child.is_waiting());
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(child.restarts, 9);
        // Five minutes up: the next failure is a first one again.
        let later = start + Duration::from_secs(8) + HEALTHY_RUN;
        assert_eq!(child.failed_at(later), Duration::from_secs(1));
        child.restarted_at(idle().await, later);
        assert_eq!(child.failed_at(later).as_secs(), 2);
        assert_eq!(child.restarts, 11);
        // Failing to start again and again, long after: the backoff keeps growing.
        let much_later = later + HEALTHY_RUN * 2;
        assert_eq!(child.failed_at(much_later).as_secs(), 4);
        assert_eq!(child.failed_at(much_later + HEALTHY_RUN).as_secs(), 8);
    }

    #[tokio::test]
    async fn a_child_is_recognized_by_its_current_actor_only() {
        let first = idle::<()>().await;
        let mut child = Restartable::running(first.clone());
        assert!(child.is(&first.get_cell()));
        child.failed();
        assert!(!child.is(&first.get_cell()), "a failed child has no actor");
        let second = idle().await;
        child.restarted(second.clone());
        assert!(child.is(&second.get_cell()));
        assert!(!child.is(&first.get_cell()));
        assert!(Restartable::<()>::not_started().is_waiting());
    }
}
