//! First contact with a peer's record: while its owner has not published it yet (a peer that
//! never served, or both starting at once), Veilid takes 10 s to call a record missing. Looks
//! cut short and repeated find it within a round trip of its first publish instead.

use std::time::{Duration, Instant};

use crate::backoff::Backoff;

/// Each quick look gives up after this long: an existing record opens in a round trip.
const QUICK_LOOK: Duration = Duration::from_secs(2);

/// Quick looks (a minute or so of them) before each look gets Veilid's own full search (and ddcp's 30 s bound), so that
/// a slow network still gets its answer.
const QUICK_LOOKS: u32 = 20;

/// The pause after each of the first ten looks that found nothing is a quarter second: a look
/// started before the record's first publish misses it (the nodes it asked are not asked
/// again), so the next one follows soon. The pauses after double, up to 10 s.
const PAUSES: Backoff = Backoff::flat_then_doubling(EAGER_PAUSE, EAGER_LOOKS, LONGEST_PAUSE);
const EAGER_PAUSE: Duration = Duration::from_millis(250);
const EAGER_LOOKS: u32 = 10;
const LONGEST_PAUSE: Duration = Duration::from_secs(10);

/// Waiting longer than this deserves one warning: a mistyped key waits forever too.
pub const WARN_AFTER: Duration = Duration::from_secs(300);

/// Where a first contact stands: looks made so far, since when.
#[derive(Debug)]
pub struct FirstContact {
    /// Counts the looks that found nothing.
    pauses: Backoff,
    since: Instant,
}

impl Default for FirstContact {
    fn default() -> Self {
        FirstContact {
            pauses: PAUSES,
            since: Instant::now(),
        }
    }
}

impl FirstContact {
    /// How long the next look may take (give it to `Network::open_record_within`).
    pub fn bound(&self) -> Duration {
        if self.pauses.failures() < QUICK_LOOKS {
            QUICK_LOOK
        } else {
            super::network::DHT_BOUND
        }
    }

    /// A look found nothing: how long to pause before the next.
    pub fn missed(&mut self) -> Duration {
        self.pauses.failed()
    }

    /// Looks that found nothing so far.
    pub fn misses(&self) -> u32 {
        self.pauses.failures()
    }

    /// Since the first look.
    pub fn waited(&self) -> Duration {
        self.since.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_looks_then_full_ones_with_growing_pauses() {
        let mut contact = FirstContact::default();
        assert_eq!(contact.bound(), QUICK_LOOK);
        let pauses: Vec<Duration> = (0..QUICK_LOOKS).map(|_| contact.missed()).collect();
        assert!(
            pauses[..EAGER_LOOKS as usize]
                .iter()
                .all(|p| *p == EAGER_PAUSE)
        );
        assert_eq!(pauses[EAGER_LOOKS as usize], EAGER_PAUSE * 2);
        assert_eq!(*pauses.last().unwrap(), LONGEST_PAUSE);
        assert_eq!(contact.misses(), QUICK_LOOKS);
        assert!(contact.bound() > QUICK_LOOK);
    }
}
