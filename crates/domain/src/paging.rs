//! Pagination of lists (SPEC 1): `pageNumber` >= 0 (default 0), `pageSize` 1..=100 (default 50);
//! and where one answer of a conversation's activity copies ends ([`copies_page_end`]), which
//! pages by `eventId` instead.

use crate::error::{Violation, Violations};
use crate::time::Millis;

/// The largest `pageSize`.
pub const MAX_PAGE_SIZE: i64 = 100;

/// A validated page request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    pub number: u64,
    pub size: u64,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            number: 0,
            size: 50,
        }
    }
}

impl PageRequest {
    /// Validates the raw query values, reporting both when both are out of range.
    pub fn new(number: Option<i64>, size: Option<i64>) -> Result<Self, Violations> {
        let mut v = Violations::default();
        let number = number.unwrap_or(0);
        let size = size.unwrap_or(50);
        if number < 0 {
            v.push(Violation::out_of_range("pageNumber", "must be 0 or more"));
        }
        if !(1..=MAX_PAGE_SIZE).contains(&size) {
            v.push(Violation::out_of_range(
                "pageSize",
                &format!("must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
        v.into_result(Self {
            number: number.max(0) as u64,
            size: size.clamp(1, MAX_PAGE_SIZE) as u64,
        })
    }

    /// Rows to skip, at most `i64::MAX`: databases take a signed 64-bit offset, and a page that
    /// far out is simply empty.
    pub fn offset(&self) -> u64 {
        self.number.saturating_mul(self.size).min(i64::MAX as u64)
    }
}

/// One page of results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub number: u64,
    pub size: u64,
    pub total: u64,
    pub results: Vec<T>,
}

impl<T> Page<T> {
    /// Maps the results, keeping the counts.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            number: self.number,
            size: self.size,
            total: self.total,
            results: self.results.into_iter().map(f).collect(),
        }
    }
}

/// How much one answer of a list of activity copies may hold: at most `count` copies and
/// `bytes` bytes of stored JSON, except that the copies of one `eventId` are never split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyBound {
    pub count: u64,
    pub bytes: u64,
}

/// Where one answer of a list of copies ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageEnd {
    /// The last `eventId` answered: every copy up to it, none after.
    pub last: Millis,
    /// Whether copies after `last` may remain: the client asks again from `last`.
    pub more: bool,
}

/// Where an answer ends, from the `(eventId, bytes)` of the copies after the cursor in order,
/// read with a limit of `bound.count + 1` (so that a full read says more may follow). Takes
/// whole events while they fit the bound; the first event is taken whole even past it, so
/// that every answer moves the cursor on. `None` when there is nothing to answer.
pub fn copies_page_end(sizes: &[(Millis, u64)], bound: CopyBound) -> Option<PageEnd> {
    let full = sizes.len() as u64 > bound.count;
    let (mut count, mut bytes) = (0u64, 0u64);
    let mut last = None;
    let mut i = 0;
    while i < sizes.len() {
        let event = sizes[i].0;
        let mut j = i;
        let (mut n, mut b) = (0u64, 0u64);
        while j < sizes.len() && sizes[j].0 == event {
            n += 1;
            b = b.saturating_add(sizes[j].1);
            j += 1;
        }
        // The last event of a full read may have more copies than were read.
        let whole = j < sizes.len() || !full;
        let fits = whole
            && count.saturating_add(n) <= bound.count
            && bytes.saturating_add(b) <= bound.bytes;
        if last.is_some() && !fits {
            break;
        }
        last = Some(event);
        count = count.saturating_add(n);
        bytes = bytes.saturating_add(b);
        i = j;
    }
    last.map(|last| PageEnd {
        last,
        more: i < sizes.len() || full,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_of_copies_ends_between_events() {
        let bound = CopyBound {
            count: 4,
            bytes: 100,
        };
        assert_eq!(copies_page_end(&[], bound), None);
        // Everything fits: no more.
        let all = [(1, 10), (2, 10), (2, 10), (3, 10)];
        assert_eq!(
            copies_page_end(&all, bound),
            Some(PageEnd {
                last: 3,
                more: false
            })
        );
        // Five copies read with a bound of four: event 3's two copies would make five.
        let five = [(1, 10), (2, 10), (2, 10), (3, 10), (3, 10)];
        assert_eq!(
            copies_page_end(&five, bound),
            Some(PageEnd {
                last: 2,
                more: true
            })
        );
        // By bytes: event 2 would pass 100 bytes.
        let big = [(1, 60), (2, 30), (2, 30), (3, 1)];
        assert_eq!(
            copies_page_end(&big, bound),
            Some(PageEnd {
                last: 1,
                more: true
            })
        );
        // Exactly at the bound is taken.
        let exact = [(1, 25), (2, 25), (3, 25), (4, 25)];
        assert_eq!(
            copies_page_end(&exact, bound),
            Some(PageEnd {
                last: 4,
                more: false
            })
        );
        // A first event past the bound is taken whole, alone.
        let huge = [(1, 500), (1, 500), (2, 1)];
        assert_eq!(
            copies_page_end(&huge, bound),
            Some(PageEnd {
                last: 1,
                more: true
            })
        );
        let wide = [(7, 1), (7, 1), (7, 1), (7, 1), (7, 1)];
        assert_eq!(
            copies_page_end(&wide, bound),
            Some(PageEnd {
                last: 7,
                more: true
            })
        );
    }

    #[test]
    fn defaults_and_bounds() {
        assert_eq!(
            PageRequest::new(None, None).unwrap(),
            PageRequest {
                number: 0,
                size: 50
            }
        );
        assert_eq!(PageRequest::new(Some(2), Some(10)).unwrap().offset(), 20);
        assert_eq!(PageRequest::new(Some(-1), Some(0)).unwrap_err().0.len(), 2);
        assert!(PageRequest::new(None, Some(101)).is_err());
        assert!(PageRequest::new(None, Some(100)).is_ok());
    }

    #[test]
    fn offset_fits_a_signed_64_bit_integer() {
        let far = PageRequest::new(Some(i64::MAX), Some(100)).unwrap();
        assert_eq!(far.offset(), i64::MAX as u64);
        assert_eq!(far.number, i64::MAX as u64);
    }
}
