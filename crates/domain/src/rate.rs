//! Rate limits as token buckets (SPEC 1, code 429): a [`Rate`] lets `burst` requests through at
//! once and refills at a steady pace; [`take`] decides one request. Pure arithmetic over
//! microseconds, with time passed in; where a bucket is kept (in process or in Redis) is the
//! API's business.
//!
//! A bucket is kept as one number, its *theoretical arrival time* (TAT, the generic cell rate
//! algorithm): the moment at which the bucket would be full again. Taking a token moves it one
//! interval later; a request is refused when that would put it more than `burst` intervals
//! ahead of now. This is exactly a token bucket of `burst` tokens refilled every interval, in
//! one value that a Redis script can update atomically.

use std::fmt;

/// Microseconds in a second.
const MICROS: u64 = 1_000_000;

/// A limit: on average one request per `interval_micros`, up to `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Requests allowed per `per_secs` seconds.
    pub count: u32,
    /// The period of `count`: 1 (second), 60 (minute) or 3600 (hour), in seconds.
    pub per_secs: u32,
    /// Requests allowed at once, from a full bucket.
    pub burst: u32,
}

impl Rate {
    /// The largest count or burst accepted.
    pub const MAX: u32 = 1_000_000;

    /// `count` requests per second, `burst` at once.
    pub const fn per_second(count: u32, burst: u32) -> Self {
        Self {
            count,
            per_secs: 1,
            burst,
        }
    }

    /// `count` requests per minute, `burst` at once.
    pub const fn per_minute(count: u32, burst: u32) -> Self {
        Self {
            count,
            per_secs: 60,
            burst,
        }
    }

    /// Parses `COUNT/UNIT:BURST`, e.g. `100/s:500` (units `s`, `m`, `h`), or `COUNT/UNIT` (the
    /// burst is then the count). Counts and bursts are 1 to 1,000,000.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "'{text}' is not a rate such as 100/s:500 (COUNT/UNIT:BURST; UNIT s, m or h; \
                 COUNT and BURST 1 to {})",
                Self::MAX
            )
        };
        let (rate, burst) = match text.trim().split_once(':') {
            Some((rate, burst)) => (rate, Some(burst)),
            None => (text.trim(), None),
        };
        let (count, unit) = rate.split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let per_secs = match unit.trim() {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            _ => return Err(bad()),
        };
        let burst: u32 = match burst {
            Some(b) => b.trim().parse().map_err(|_| bad())?,
            None => count,
        };
        if !(1..=Self::MAX).contains(&count) || !(1..=Self::MAX).contains(&burst) {
            return Err(bad());
        }
        Ok(Self {
            count,
            per_secs,
            burst,
        })
    }

    /// Microseconds between two tokens (at least 1).
    pub fn interval_micros(self) -> u64 {
        (u64::from(self.per_secs) * MICROS / u64::from(self.count.max(1))).max(1)
    }

    /// How far ahead of now a bucket's TAT may be: `burst` intervals.
    pub fn tolerance_micros(self) -> u64 {
        self.interval_micros() * u64::from(self.burst)
    }
}

impl fmt::Display for Rate {
    /// As configured: `100/s:500`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per_secs {
            60 => "m",
            3600 => "h",
            _ => "s",
        };
        write!(f, "{}/{unit}:{}", self.count, self.burst)
    }
}

/// The answer for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Taken {
    /// Allowed: the bucket's new TAT, to keep.
    Allowed { tat: u64 },
    /// Refused: the bucket is unchanged; a token is there in this many microseconds.
    Refused { wait_micros: u64 },
}

/// Takes one token from the bucket whose TAT is `tat` (0 for a bucket never used) at `now`
/// (both in microseconds of one clock).
pub fn take(rate: Rate, tat: u64, now: u64) -> Taken {
    let next = tat.max(now) + rate.interval_micros();
    let ahead = next - now;
    let tolerance = rate.tolerance_micros();
    if ahead > tolerance {
        Taken::Refused {
            wait_micros: ahead - tolerance,
        }
    } else {
        Taken::Allowed { tat: next }
    }
}

/// Whole seconds for `Retry-After`: the wait rounded up, at least 1.
pub fn retry_after_secs(wait_micros: u64) -> u64 {
    wait_micros.div_ceil(MICROS).max(1)
}

/// Whether a bucket of this TAT is full at `now`, so that forgetting it changes nothing.
pub fn is_full(tat: u64, now: u64) -> bool {
    tat <= now
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = MICROS;

    /// Takes `n` tokens at `now`; answers how many were allowed and the last TAT.
    fn burst(rate: Rate, mut tat: u64, now: u64, n: u32) -> (u32, u64) {
        let mut allowed = 0;
        for _ in 0..n {
            if let Taken::Allowed { tat: t } = take(rate, tat, now) {
                tat = t;
                allowed += 1;
            }
        }
        (allowed, tat)
    }

    #[test]
    fn a_full_bucket_allows_its_burst_then_refuses() {
        let rate = Rate::per_second(1, 100);
        let now = 1_000 * SEC;
        let (allowed, tat) = burst(rate, 0, now, 100);
        assert_eq!(allowed, 100);
        // The 101st waits one interval (one second).
        assert_eq!(take(rate, tat, now), Taken::Refused { wait_micros: SEC });
        assert_eq!(retry_after_secs(SEC), 1);
    }

    #[test]
    fn tokens_come_back_at_the_rate() {
        let rate = Rate::per_second(10, 5);
        let now = 50 * SEC;
        let (allowed, tat) = burst(rate, 0, now, 10);
        assert_eq!(allowed, 5);
        // 100 ms later exactly one token is back.
        let later = now + SEC / 10;
        let (allowed, tat) = burst(rate, tat, later, 3);
        assert_eq!(allowed, 1);
        // After a long pause the bucket is full again, never fuller.
        assert!(is_full(tat, later + SEC));
        assert_eq!(burst(rate, tat, later + 10 * SEC, 10).0, 5);
    }

    #[test]
    fn a_refusal_leaves_the_bucket_unchanged_and_says_how_long_to_wait() {
        let rate = Rate::per_second(2, 1);
        let now = 7 * SEC;
        let Taken::Allowed { tat } = take(rate, 0, now) else {
            panic!("a full bucket allows one");
        };
        assert_eq!(tat, now + SEC / 2);
        assert_eq!(
            take(rate, tat, now + SEC / 10),
            Taken::Refused {
                wait_micros: 4 * SEC / 10
            }
        );
        assert_eq!(retry_after_secs(4 * SEC / 10), 1);
        assert_eq!(retry_after_secs(2 * SEC + 1), 3);
        assert_eq!(retry_after_secs(0), 1);
        assert!(matches!(
            take(rate, tat, now + SEC / 2),
            Taken::Allowed { .. }
        ));
    }

    #[test]
    fn slow_rates_and_the_clock_going_back() {
        let rate = Rate::parse("2/m:1").unwrap();
        assert_eq!(rate.interval_micros(), 30 * SEC);
        let Taken::Allowed { tat } = take(rate, 0, 100 * SEC) else {
            panic!("allowed");
        };
        // A node whose clock is behind sees a longer wait, never a panic.
        assert_eq!(
            take(rate, tat, 90 * SEC),
            Taken::Refused {
                wait_micros: 40 * SEC
            }
        );
    }

    #[test]
    fn rates_parse_and_print() {
        assert_eq!(Rate::parse("100/s:500"), Ok(Rate::per_second(100, 500)));
        assert_eq!(Rate::parse(" 10/s "), Ok(Rate::per_second(10, 10)));
        assert_eq!(
            Rate::parse("30/h:5"),
            Ok(Rate {
                count: 30,
                per_secs: 3600,
                burst: 5
            })
        );
        assert_eq!(Rate::per_second(100, 500).to_string(), "100/s:500");
        assert_eq!(Rate::parse("1/m:3").unwrap().to_string(), "1/m:3");
        for bad in [
            "",
            "100",
            "100/d:5",
            "0/s:5",
            "5/s:0",
            "-1/s",
            "x/s",
            "5/s:y",
            "2000000/s",
        ] {
            let err = Rate::parse(bad).unwrap_err();
            assert!(err.contains("100/s:500"), "{bad}: {err}");
        }
        // The fastest rate still moves the bucket.
        assert_eq!(Rate::per_second(Rate::MAX, 1).interval_micros(), 1);
    }
}
