//! When an owner writes its record's unchanged value again. Veilid stores a record's value on
//! the nodes closest to its key at the time of the write, and copies it to nodes that became
//! closest later only when a node holding it opens it anew (rehydration, in Veilid 0.5.8);
//! an owner keeps its record open, so nothing copies it. When many nodes join at once (the
//! hosting bench's twenty, many_peers' sixteen), they can become a record's closest nodes
//! without holding it, and a newcomer's read asks only them: it finds nothing, however often
//! it looks (measured: 1 to 7 of 20 fresh nodes in each hosting run never found one of their
//! remotes, or their own record).
//!
//! Written again with the same bytes, the value goes to the closest nodes of now at the same
//! sequence number: no watcher is told of a change, no reader pulls. The writes follow the
//! last change closely, when the owner's own view of the network is youngest, and then less
//! and less often, down to one every [`LONGEST_REFRESH`], each database's pauses stretched by
//! up to a quarter so that a host's databases are not all written at once
//! ([`RefreshPauses::spread`]). [`REWRITTEN_WITHIN`] is what a newcomer waits at most after a
//! crowd joined, once the owner's node knows the crowd. With 20 newcomers and 7 nodes
//! that hold a record, all ten of its closest nodes are newcomers for about 2% of records
//! (C(20,10) / C(27,10)): about one of the sixty lookups of the hosting bench's newcomers
//! (their own records and two remotes each), where 1 to 7 failed.

use std::time::Duration;

use crate::backoff::Backoff;

/// The first rewrite, after a changed value was written.
pub const FIRST_REFRESH: Duration = Duration::from_secs(60);

/// The longest wait between rewrites of an unchanged value. Longer would cost a hundred
/// databases' host less (a write is a fanout to about ten nodes, each message signed and
/// checked), but a newcomer might wait that long for a record.
pub const LONGEST_REFRESH: Duration = Duration::from_secs(10 * 60);

/// The most a schedule is stretched by ([`RefreshPauses::spread`]), in thousandths.
const MOST_STRETCH: u16 = 250;

/// The longest wait between rewrites of a spread schedule: [`LONGEST_REFRESH`] stretched the
/// most.
pub const REWRITTEN_WITHIN: Duration =
    Duration::from_secs(LONGEST_REFRESH.as_secs() * (1000 + MOST_STRETCH as u64) / 1000);

/// How long to wait before writing an unchanged value again: [`FIRST_REFRESH`] after a
/// change, then twice as long after each rewrite, up to [`LONGEST_REFRESH`]; each pause
/// stretched by the schedule's own factor, if any.
#[derive(Clone, Debug)]
pub struct RefreshPauses {
    pauses: Backoff,
    /// Each pause is this many thousandths of the plain schedule's.
    stretch: u16,
}

impl Default for RefreshPauses {
    /// The plain schedule: 1, 2, 4, 8, 10, 10... minutes.
    fn default() -> Self {
        RefreshPauses {
            pauses: Backoff::doubling(FIRST_REFRESH, LONGEST_REFRESH),
            stretch: 1000,
        }
    }
}

impl RefreshPauses {
    /// The plain schedule, every pause stretched by one random factor from 1 to 1.25. A host's
    /// databases all start at once, and on the plain schedule would all be written again at
    /// once, each time: a hundred writes that fill the node's DHT operations (and hold up the
    /// remotes' checks) for a few seconds. Stretched each its own way, they drift apart.
    pub fn spread() -> RefreshPauses {
        let [a, b] = crate::sync::random::bytes::<2>();
        RefreshPauses {
            stretch: 1000 + u16::from_le_bytes([a, b]) % (MOST_STRETCH + 1),
            ..RefreshPauses::default()
        }
    }

    /// A changed value was written: the pause before its first rewrite.
    pub fn after_change(&mut self) -> Duration {
        self.pauses.reset();
        let pause = self.pauses.failed();
        self.stretched(pause)
    }

    /// The value was written again unchanged: the pause before the next rewrite.
    pub fn after_refresh(&mut self) -> Duration {
        // Backoff counts failures; here each rewrite counts, so that the next waits longer.
        let pause = self.pauses.failed();
        self.stretched(pause)
    }

    fn stretched(&self, pause: Duration) -> Duration {
        pause * u32::from(self.stretch) / 1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn rewrites_follow_a_change_closely_then_thin_out_to_the_longest() {
        let mut pauses = RefreshPauses::default();
        let mut waits = vec![pauses.after_change()];
        waits.extend((0..6).map(|_| pauses.after_refresh()));
        assert_eq!(
            waits,
            [1, 2, 4, 8, 10, 10, 10].map(|minutes| minutes * MINUTE)
        );
    }

    #[test]
    fn a_spread_schedule_is_the_plain_one_stretched_by_one_factor() {
        let mut plain = RefreshPauses::default();
        let mut factors = std::collections::BTreeSet::new();
        for _ in 0..50 {
            let mut spread = RefreshPauses::spread();
            let mut pauses = vec![(spread.after_change(), plain.after_change())];
            pauses.extend((0..6).map(|_| (spread.after_refresh(), plain.after_refresh())));
            let factor = pauses[0].0.as_secs_f64() / pauses[0].1.as_secs_f64();
            assert!((1.0..=1.25).contains(&factor), "{factor}");
            assert!(pauses.iter().all(|(spread, _)| *spread <= REWRITTEN_WITHIN));
            for (spread, plain) in pauses {
                let this = spread.as_secs_f64() / plain.as_secs_f64();
                assert!((this - factor).abs() < 1e-9, "{this} against {factor}");
            }
            factors.insert((factor * 1000.0).round() as u32);
        }
        // Fifty schedules drawn from 251 factors: not all alike.
        assert!(factors.len() > 10, "{factors:?}");
    }

    #[test]
    fn a_change_starts_the_pauses_over() {
        let mut pauses = RefreshPauses::default();
        pauses.after_change();
        for _ in 0..10 {
            pauses.after_refresh();
        }
        assert_eq!(pauses.after_change(), FIRST_REFRESH);
        assert_eq!(pauses.after_refresh(), 2 * FIRST_REFRESH);
    }
}
