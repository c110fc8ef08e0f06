//! Pagination of lists (SPEC 1): `pageNumber` >= 0 (default 0), `pageSize` 1..=100 (default 50).

use crate::error::{Violation, Violations};

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

#[cfg(test)]
mod tests {
    use super::*;

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
