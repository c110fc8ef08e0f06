//! The `eventId` clock (SPEC 4): the one place where a hub's next `eventId` is decided.
//!
//! An `eventId` is the clock in epoch milliseconds, unless activities arrive faster than one per
//! millisecond in a hub, in which case it runs ahead of the clock by the excess; within a hub it
//! strictly increases. Storage keeps each hub's last id and asks this module for the next ones,
//! in the transaction that appends them.

use crate::time::Millis;

/// The next `eventId` of a hub: strictly greater than `last` (the hub's latest), and the clock
/// `now` (epoch ms) unless that is not greater: `max(now, last + 1)`.
pub fn next_event_id(last: Option<Millis>, now: Millis) -> Millis {
    match last {
        Some(last) => now.max(last.saturating_add(1)),
        None => now,
    }
}

/// A hub's `eventId` sequence: [`next_event_id`] with the last value kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventIdClock {
    last: Option<Millis>,
}

impl EventIdClock {
    /// A clock that continues after `last` (the hub's latest `eventId`, `None` for none yet).
    pub const fn after(last: Option<Millis>) -> Self {
        Self { last }
    }

    /// The next `eventId` at `now`, remembered as the last one.
    pub fn next(&mut self, now: Millis) -> Millis {
        let id = next_event_id(self.last, now);
        self.last = Some(id);
        id
    }

    /// `n` consecutive `eventId`s at `now` (as `n` calls of [`EventIdClock::next`] at the same
    /// `now` would give): the first of them; the last is remembered. `n` of 0 reserves nothing
    /// and answers the id the next call would give.
    pub fn reserve(&mut self, now: Millis, n: usize) -> Millis {
        let first = next_event_id(self.last, now);
        if n > 0 {
            let n = Millis::try_from(n).unwrap_or(Millis::MAX);
            self.last = Some(first.saturating_add(n - 1));
        }
        first
    }

    /// The last `eventId` handed out.
    pub const fn last(&self) -> Option<Millis> {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn event_ids_follow_the_clock_and_run_ahead_when_crowded() {
        assert_eq!(next_event_id(None, 100), 100);
        assert_eq!(next_event_id(Some(50), 100), 100);
        assert_eq!(next_event_id(Some(100), 100), 101);
        assert_eq!(next_event_id(Some(105), 100), 106);
        assert_eq!(next_event_id(Some(i64::MAX), 0), i64::MAX);
        let mut clock = EventIdClock::after(Some(99));
        assert_eq!(
            [
                clock.next(100),
                clock.next(100),
                clock.next(100),
                clock.next(200)
            ],
            [100, 101, 102, 200]
        );
        assert_eq!(clock.last(), Some(200));
    }

    #[test]
    fn a_reservation_is_the_ids_that_one_call_each_would_give() {
        let mut one = EventIdClock::after(Some(105));
        let mut each = one;
        let first = one.reserve(100, 3);
        assert_eq!(first, 106);
        assert_eq!(
            [each.next(100), each.next(100), each.next(100)],
            [106, 107, 108]
        );
        assert_eq!(one, each);
        assert_eq!(one.reserve(100, 0), 109);
        assert_eq!(one.last(), Some(108));
    }

    proptest! {
        #[test]
        fn event_ids_are_strictly_increasing(
            start in proptest::option::of(0i64..1_000_000_000_000),
            nows in proptest::collection::vec(0i64..1_000_000_000_000, 1..50),
        ) {
            let mut clock = EventIdClock::after(start);
            let mut last = start;
            for now in nows {
                let id = clock.next(now);
                prop_assert!(id >= now);
                if let Some(l) = last { prop_assert!(id > l); }
                last = Some(id);
            }
        }


        #[test]
        fn reservations_and_single_ids_give_the_same_sequence(
            start in proptest::option::of(0i64..1_000_000_000_000),
            steps in proptest::collection::vec((0i64..1_000_000_000_000, 0usize..20), 1..30),
        ) {
            let mut batched = EventIdClock::after(start);
            let mut single = EventIdClock::after(start);
            for (now, n) in steps {
                let first = batched.reserve(now, n);
                for i in 0..n {
                    prop_assert_eq!(single.next(now), first + i as Millis);
                }
                prop_assert_eq!(batched.last(), single.last());
            }
        }
    }
}
