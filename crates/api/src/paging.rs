//! Pagination parameters (SPEC 1).

use switchboard_domain::paging::PageRequest;

use crate::error::ApiError;

/// Validates `pageNumber` and `pageSize`: out of range is 400/206.
pub fn page(number: Option<i64>, size: Option<i64>) -> Result<PageRequest, ApiError> {
    PageRequest::new(number, size).map_err(ApiError::from)
}
