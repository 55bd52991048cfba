//! Pauses that grow while something keeps failing: the one backoff of ddcp's retry loops (a
//! failed actor restarted, the control socket's accept loop, first contact with a record).

use std::time::Duration;

/// A pause of `first` for the first `flat` failures, then twice as long after each further
/// one, up to `longest`; [`Backoff::reset`] starts over. No jitter: each loop retries one
/// thing of this node's own, so no crowd of peers retries in step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    flat: u32,
    longest: Duration,
    failures: u32,
}

impl Backoff {
    /// `first`, then doubling after each failure, up to `longest`.
    pub const fn doubling(first: Duration, longest: Duration) -> Backoff {
        Backoff::flat_then_doubling(first, 1, longest)
    }

    /// `first` for `flat` failures, then doubling, up to `longest`.
    pub const fn flat_then_doubling(first: Duration, flat: u32, longest: Duration) -> Backoff {
        Backoff {
            first,
            flat,
            longest,
            failures: 0,
        }
    }

    /// Counts one more failure; how long to pause before the next try.
    pub fn failed(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        // Past 2^16 the pause is at its longest whatever the numbers.
        let doublings = self.failures.saturating_sub(self.flat).min(16);
        self.first.saturating_mul(1 << doublings).min(self.longest)
    }

    /// A success (or a long healthy run): the next failure pauses `first` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Failures since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn pauses_double_up_to_the_longest_and_start_over_on_reset() {
        let mut backoff = Backoff::doubling(100 * MS, 500 * MS);
        let pauses: Vec<Duration> = (0..5).map(|_| backoff.failed()).collect();
        assert_eq!(pauses, [100 * MS, 200 * MS, 400 * MS, 500 * MS, 500 * MS]);
        assert_eq!(backoff.failures(), 5);
        backoff.reset();
        assert_eq!(backoff.failed(), 100 * MS);
    }

    #[test]
    fn a_flat_start_keeps_the_first_pause_that_many_times() {
        let mut backoff = Backoff::flat_then_doubling(250 * MS, 3, Duration::from_secs(10));
        let pauses: Vec<Duration> = (0..5).map(|_| backoff.failed()).collect();
        assert_eq!(pauses, [250 * MS, 250 * MS, 250 * MS, 500 * MS, 1000 * MS]);
        // However many failures, the pause stays bounded and nothing overflows.
        for _ in 0..100_000 {
            backoff.failed();
        }
        assert_eq!(backoff.failed(), Duration::from_secs(10));
    }
}
