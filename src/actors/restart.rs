//! A child the supervisor restarts after a failure, with backoff that grows while it keeps
//! failing and starts over once it ran well for a while.

use std::time::{Duration, Instant};

use ractor::{ActorCell, ActorRef};

/// The first restart of a failed child waits this long ...
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// ... each further one twice as long, up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A child that ran this long before failing starts again from the first backoff.
const HEALTHY_RUN: Duration = Duration::from_secs(300);

/// A child the supervisor restarts: its actor (none while it waits to restart) and its
/// restart history.
pub(super) struct Restartable<M: ractor::Message> {
    /// The running actor; none while it waits to restart.
    pub actor: Option<ActorRef<M>>,
    started: Instant,
    /// How often it was restarted.
    pub restarts: u32,
    backoff: Duration,
}

impl<M: ractor::Message> Restartable<M> {
    pub fn running(actor: ActorRef<M>) -> Self {
        Restartable {
            actor: Some(actor),
            started: Instant::now(),
            restarts: 0,
            backoff: FIRST_BACKOFF,
        }
    }

    pub fn is(&self, cell: &ActorCell) -> bool {
        self.actor
            .as_ref()
            .is_some_and(|actor| actor.get_id() == cell.get_id())
    }

    /// Marks it failed; how long to wait before starting it again.
    pub fn failed(&mut self) -> Duration {
        self.actor = None;
        if self.started.elapsed() >= HEALTHY_RUN {
            self.backoff = FIRST_BACKOFF;
        }
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        self.restarts += 1;
        wait
    }

    pub fn restarted(&mut self, actor: ActorRef<M>) {
        self.actor = Some(actor);
        self.started = Instant::now();
    }
}
