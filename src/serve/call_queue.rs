//! Peers' calls waiting for an answer slot. Askers are not authenticated, so the queue cannot
//! be fair per asker; what it avoids is the way a plain bounded FIFO starves polite askers: a
//! flooder that re-asks the instant it is refused grabs every place that frees up, and an
//! honest puller that pauses before asking again never gets in. Here a newcomer always gets in;
//! when the queue is full, a waiter picked at random (perhaps the newcomer) is refused instead,
//! and the next call answered is also picked at random. An honest call then gets answered
//! with a chance that depends on how fast calls come and are answered, not on timing.

/// A bounded set of waiting items, in and out in random order.
pub(super) struct CallQueue<T> {
    waiting: Vec<T>,
    capacity: usize,
    random: Box<dyn FnMut() -> u64 + Send>,
}

impl<T> CallQueue<T> {
    /// A queue of at most `capacity` items, drawing its picks from `random`.
    pub fn new(capacity: usize, random: Box<dyn FnMut() -> u64 + Send>) -> Self {
        assert!(capacity > 0, "a queue holds something");
        CallQueue {
            waiting: Vec::with_capacity(capacity),
            capacity,
            random,
        }
    }

    /// A queue whose picks come from the process's random hash keys.
    pub fn randomized(capacity: usize) -> Self {
        use std::hash::BuildHasher;
        let keys = std::collections::hash_map::RandomState::new();
        let mut draws = 0u64;
        CallQueue::new(
            capacity,
            Box::new(move || {
                draws += 1;
                keys.hash_one(draws)
            }),
        )
    }

    fn pick(&mut self, below: usize) -> usize {
        ((self.random)() % below as u64) as usize
    }

    /// Adds `item`; when the queue was full, one item (a random waiter or `item` itself) is
    /// pushed out and returned, to be refused.
    pub fn push(&mut self, item: T) -> Option<T> {
        if self.waiting.len() < self.capacity {
            self.waiting.push(item);
            return None;
        }
        let out = self.pick(self.waiting.len() + 1);
        if out == self.waiting.len() {
            return Some(item);
        }
        Some(std::mem::replace(&mut self.waiting[out], item))
    }

    /// A waiting item, picked at random, and how many still wait after it.
    pub fn take(&mut self) -> Option<(T, usize)> {
        if self.waiting.is_empty() {
            return None;
        }
        let index = self.pick(self.waiting.len());
        let item = self.waiting.swap_remove(index);
        Some((item, self.waiting.len()))
    }

    /// True when the next push refuses one.
    pub fn is_full(&self) -> bool {
        self.waiting.len() >= self.capacity
    }

    /// Takes out every waiting item that `gone` says should go.
    pub fn remove_where(&mut self, mut gone: impl FnMut(&T) -> bool) -> Vec<T> {
        let mut removed = Vec::new();
        let mut index = 0;
        while index < self.waiting.len() {
            if gone(&self.waiting[index]) {
                removed.push(self.waiting.swap_remove(index));
            } else {
                index += 1;
            }
        }
        removed
    }

    /// How many wait.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut queue = CallQueue::new(4, xorshift(7));
        let mut refused = Vec::new();
        for item in 0..10 {
            refused.extend(queue.push(item));
            assert!(queue.len() <= 4);
        }
        assert_eq!(refused.len(), 6);
        let mut kept = Vec::new();
        while let Some((item, left)) = queue.take() {
            kept.push(item);
            assert_eq!(left, queue.len());
        }
        // Nothing lost, nothing twice.
        kept.extend(refused);
        kept.sort();
        assert_eq!(kept, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn items_can_be_taken_out_by_a_rule_before_a_push_refuses_one() {
        let mut queue = CallQueue::new(4, xorshift(3));
        for item in 0..4 {
            assert!(queue.push(item).is_none());
        }
        assert!(queue.is_full());
        let mut gone = queue.remove_where(|item| item % 2 == 0);
        gone.sort();
        assert_eq!(gone, [0, 2]);
        assert!(!queue.is_full());
        assert!(queue.push(4).is_none(), "room again: nothing refused");
    }

    /// A flood keeps the queue full and re-asks the moment it is refused; an honest call comes
    /// once. With a FIFO that refuses newcomers, it would never get in.
    #[test]
    fn an_honest_call_among_a_flood_is_answered_often() {
        const TRIALS: usize = 1000;
        const FLOOD_PER_ANSWER: usize = 4;
        let mut answered = 0;
        let mut queue = CallQueue::new(64, xorshift(42));
        for _ in 0..64 {
            queue.push(false);
        }
        for _ in 0..TRIALS {
            // `true` is the honest call: it is refused, or answered before it is.
            let mut outcome = None;
            if queue.push(true) == Some(true) {
                outcome = Some(false);
            }
            while outcome.is_none() {
                for _ in 0..FLOOD_PER_ANSWER {
                    if queue.push(false) == Some(true) {
                        outcome = Some(false);
                    }
                }
                if outcome.is_none() && queue.take().is_some_and(|(honest, _)| honest) {
                    outcome = Some(true);
                }
                queue.push(false);
            }
            answered += usize::from(outcome == Some(true));
        }
        // 1 / (1 + calls per answer) in theory: about 0.2 here.
        assert!(answered > TRIALS / 10, "answered {answered} of {TRIALS}");
    }
}
