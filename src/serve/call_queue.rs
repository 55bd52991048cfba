//! Peers' calls waiting for an answer slot, fair per asker where askers are known.
//!
//! Unsigned askers cannot be told apart, so they share one class, [`Asker::Anyone`]. What the
//! queue avoids for them is the way a plain bounded FIFO starves polite askers: a flooder that
//! re-asks the instant it is refused grabs every place that frees up, and an honest puller that
//! pauses before asking again never gets in. Here a newcomer always gets in; when the queue is
//! full, a waiter picked at random (perhaps the newcomer) is refused instead, and the next call
//! answered is also picked at random.
//!
//! A private database's members sign their requests, so each is a class of its own
//! ([`Asker::Member`], its signature checked before it is queued): one holds at most
//! [`CallQueue`]'s `per_member` places, and a member over that is refused one of its own calls.
//! When the whole queue is full, the call refused is one of the class that holds the most. The
//! next call answered comes from a class picked at random among those waiting: a member that
//! floods gets as many answers as one that asks once at a time, not more, and never takes the
//! other's places.

use crate::sync::MemberId;

/// Who asked, as far as the queue can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Asker {
    /// An unsigned request (a public database's askers).
    Anyone,
    /// A member of a private database, its signature checked.
    Member(MemberId),
}

/// A bounded set of waiting items, by asker.
pub(super) struct CallQueue<T> {
    classes: Vec<(Asker, Vec<T>)>,
    waiting: usize,
    capacity: usize,
    per_member: usize,
    random: Box<dyn FnMut() -> u64 + Send>,
}

impl<T> CallQueue<T> {
    /// A queue of at most `capacity` items, `per_member` of one member's, drawing its picks
    /// from `random`.
    pub fn new(capacity: usize, per_member: usize, random: Box<dyn FnMut() -> u64 + Send>) -> Self {
        assert!(capacity > 0 && per_member > 0, "a queue holds something");
        CallQueue {
            classes: Vec::new(),
            waiting: 0,
            capacity,
            per_member,
            random,
        }
    }

    /// A queue whose picks come from the process's random hash keys.
    pub fn randomized(capacity: usize, per_member: usize) -> Self {
        use std::hash::BuildHasher;
        let keys = std::collections::hash_map::RandomState::new();
        let mut draws = 0u64;
        CallQueue::new(
            capacity,
            per_member,
            Box::new(move || {
                draws += 1;
                keys.hash_one(draws)
            }),
        )
    }

    fn pick(&mut self, below: usize) -> usize {
        ((self.random)() % below as u64) as usize
    }

    fn class_of(&self, asker: Asker) -> Option<usize> {
        self.classes.iter().position(|(which, _)| *which == asker)
    }

    /// Takes a random item out of class `index` (dropping the class when it empties).
    fn take_from(&mut self, index: usize) -> T {
        let items = &mut self.classes[index].1;
        let at = ((self.random)() % items.len() as u64) as usize;
        let item = items.swap_remove(at);
        if items.is_empty() {
            self.classes.swap_remove(index);
        }
        self.waiting -= 1;
        item
    }

    /// Adds `item`, asked by `asker`. When that member held its share already, or the queue
    /// was full, one item is pushed out and returned, to be refused: one of the member's own
    /// (perhaps `item`), or of the class that holds the most.
    pub fn push(&mut self, asker: Asker, item: T) -> Option<T> {
        let index = match self.class_of(asker) {
            Some(index) => index,
            None => {
                self.classes.push((asker, Vec::new()));
                self.classes.len() - 1
            }
        };
        self.classes[index].1.push(item);
        self.waiting += 1;
        let over_share =
            matches!(asker, Asker::Member(_)) && self.classes[index].1.len() > self.per_member;
        if over_share {
            return Some(self.take_from(index));
        }
        if self.waiting <= self.capacity {
            return None;
        }
        let most = self.classes.iter().map(|(_, items)| items.len()).max()?;
        let largest: Vec<usize> = (0..self.classes.len())
            .filter(|&at| self.classes[at].1.len() == most)
            .collect();
        let out = largest[self.pick(largest.len())];
        Some(self.take_from(out))
    }

    /// A waiting item, from a class picked at random, and how many still wait after it.
    pub fn take(&mut self) -> Option<(T, usize)> {
        if self.classes.is_empty() {
            return None;
        }
        let index = self.pick(self.classes.len());
        let item = self.take_from(index);
        Some((item, self.waiting))
    }

    /// True when the next push refuses one (for an asker with room in its share).
    pub fn is_full(&self) -> bool {
        self.waiting >= self.capacity
    }

    /// True when `asker`, a member, holds its whole share: its next push refuses one of its own.
    pub fn holds_share(&self, asker: Asker) -> bool {
        matches!(asker, Asker::Member(_))
            && self
                .class_of(asker)
                .is_some_and(|index| self.classes[index].1.len() >= self.per_member)
    }

    /// Takes out every waiting item that `gone` says should go.
    pub fn remove_where(&mut self, mut gone: impl FnMut(&T) -> bool) -> Vec<T> {
        let mut removed = Vec::new();
        for (_, items) in &mut self.classes {
            let mut index = 0;
            while index < items.len() {
                if gone(&items[index]) {
                    removed.push(items.swap_remove(index));
                } else {
                    index += 1;
                }
            }
        }
        self.classes.retain(|(_, items)| !items.is_empty());
        self.waiting -= removed.len();
        removed
    }

    /// How many wait.
    pub fn len(&self) -> usize {
        self.waiting
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::MemberKeys;

    /// A deterministic stand-in for the random picks: the tests do not depend on luck.
    fn xorshift(seed: u64) -> Box<dyn FnMut() -> u64 + Send> {
        let mut state = seed;
        Box::new(move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        })
    }

    #[test]
    fn it_never_holds_more_than_its_capacity_and_refuses_one_per_overflow() {
        let mut queue = CallQueue::new(4, 2, xorshift(7));
        let mut refused = Vec::new();
        let members = [MemberKeys::generate().id(), MemberKeys::generate().id()];
        for item in 0..30 {
            let asker = match item % 3 {
                0 => Asker::Anyone,
                n => Asker::Member(members[n - 1]),
            };
            refused.extend(queue.push(asker, item));
            assert!(queue.len() <= 4);
        }
        assert_eq!(refused.len(), 26);
        let mut kept = Vec::new();
        while let Some((item, left)) = queue.take() {
            kept.push(item);
            assert_eq!(left, queue.len());
        }
        // Nothing lost, nothing twice.
        kept.extend(refused);
        kept.sort();
        assert_eq!(kept, (0..30).collect::<Vec<_>>());
    }

    #[test]
    fn items_can_be_taken_out_by_a_rule_before_a_push_refuses_one() {
        let mut queue = CallQueue::new(4, 4, xorshift(3));
        for item in 0..4 {
            assert!(queue.push(Asker::Anyone, item).is_none());
        }
        assert!(queue.is_full());
        let mut gone = queue.remove_where(|item| item % 2 == 0);
        gone.sort();
        assert_eq!(gone, [0, 2]);
        assert!(!queue.is_full());
        assert!(
            queue.push(Asker::Anyone, 4).is_none(),
            "room again: nothing refused"
        );
    }

    #[test]
    fn a_member_holding_its_share_is_known_before_it_pushes() {
        let member = Asker::Member(MemberKeys::generate().id());
        let mut queue = CallQueue::new(16, 2, xorshift(5));
        assert!(!queue.holds_share(member));
        assert_eq!(queue.push(member, 1), None);
        assert!(!queue.holds_share(member));
        assert_eq!(queue.push(member, 2), None);
        assert!(queue.holds_share(member));
        assert!(!queue.holds_share(Asker::Anyone));
        assert_eq!(queue.remove_where(|item| *item == 1), [1]);
        assert!(
            !queue.holds_share(member),
            "a place freed is the member's again"
        );
    }

    /// A flood keeps the queue full and re-asks the moment it is refused; an honest call comes
    /// once. With a FIFO that refuses newcomers, it would never get in.
    #[test]
    fn an_honest_call_among_a_flood_is_answered_often() {
        const TRIALS: usize = 1000;
        const FLOOD_PER_ANSWER: usize = 4;
        let mut answered = 0;
        let mut queue = CallQueue::new(64, 8, xorshift(42));
        for _ in 0..64 {
            queue.push(Asker::Anyone, false);
        }
        for _ in 0..TRIALS {
            // `true` is the honest call: it is refused, or answered before it is.
            let mut outcome = None;
            if queue.push(Asker::Anyone, true) == Some(true) {
                outcome = Some(false);
            }
            while outcome.is_none() {
                for _ in 0..FLOOD_PER_ANSWER {
                    if queue.push(Asker::Anyone, false) == Some(true) {
                        outcome = Some(false);
                    }
                }
                if outcome.is_none() && queue.take().is_some_and(|(honest, _)| honest) {
                    outcome = Some(true);
                }
                queue.push(Asker::Anyone, false);
            }
            answered += usize::from(outcome == Some(true));
        }
        // 1 / (1 + calls per answer) in theory: about 0.2 here.
        assert!(answered > TRIALS / 10, "answered {answered} of {TRIALS}");
    }

    /// Two members flood, each keeping far more calls in flight than its share; a third asks
    /// one call at a time, as a puller does. Its calls are never refused, and each is answered
    /// within a few answers: the floods cost it nothing but their turns.
    #[test]
    fn a_member_asking_once_at_a_time_is_never_refused_while_others_flood() {
        const TRIALS: usize = 1000;
        const FLOOD_PER_ANSWER: usize = 12;
        let (flood_a, flood_b, honest) = (
            Asker::Member(MemberKeys::generate().id()),
            Asker::Member(MemberKeys::generate().id()),
            Asker::Member(MemberKeys::generate().id()),
        );
        let mut queue = CallQueue::new(16, 8, xorshift(9));
        let mut answers_waited = 0;
        for _ in 0..TRIALS {
            assert_eq!(
                queue.push(honest, true),
                None,
                "the honest member was refused"
            );
            loop {
                for flood in [flood_a, flood_b].repeat(FLOOD_PER_ANSWER / 2) {
                    assert_ne!(queue.push(flood, false), Some(true));
                }
                answers_waited += 1;
                if queue.take().is_some_and(|(honest, _)| honest) {
                    break;
                }
            }
        }
        // A class picked at random among three: about three answers per honest call.
        assert!(
            answers_waited < TRIALS * 5,
            "{answers_waited} answers for {TRIALS} honest calls"
        );
    }
}
