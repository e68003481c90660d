//! Keyset paging: a caller asks for up to `limit` items after an opaque cursor and gets
//! the next cursor back. Keyset rather than offset, so a page is stable while rows are
//! appended (the audit log grows during a read) and deep pages cost the same as the first.

use serde::{Deserialize, Serialize};
use thiserror::Error;
use utoipa::{IntoParams, ToSchema};

/// Items per page when the caller does not say.
pub const PAGE_LIMIT_DEFAULT: u32 = 50;
/// Most items one page may hold; bounds the memory and time of any list request.
pub const PAGE_LIMIT_MAX: u32 = 500;

/// Why a page request was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PagingError {
    /// `limit` outside `1..=PAGE_LIMIT_MAX`.
    #[error("limit must be between 1 and {PAGE_LIMIT_MAX}, got {0}")]
    LimitOutOfRange(u32),
    /// The cursor was not one this server handed out.
    #[error("the cursor is not one returned by a previous page")]
    BadCursor,
}

/// What the caller asked for, as received (query parameters `limit` and `cursor`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageRequest {
    /// Items per page, 1 to 500; 50 when absent.
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page; absent for the first page.
    pub cursor: Option<String>,
}

/// A position a list can continue after: an integer sequence (`i64`) or a text key such
/// as a time-ordered id (`String`).
pub trait CursorKey: Sized {
    /// Reads the position from a cursor's body.
    fn from_cursor(body: &str) -> Option<Self>;
    /// Writes the position into a cursor's body.
    fn to_cursor(&self) -> String;
}

impl CursorKey for i64 {
    fn from_cursor(body: &str) -> Option<Self> {
        if body.len() > 20 { None } else { body.parse().ok() }
    }
    fn to_cursor(&self) -> String {
        self.to_string()
    }
}

/// Longest text key a cursor may carry; ids are 36 characters.
const CURSOR_TEXT_CHARS_MAX: usize = 64;

impl CursorKey for String {
    fn from_cursor(body: &str) -> Option<Self> {
        let plain = body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        (plain && body.len() <= CURSOR_TEXT_CHARS_MAX).then(|| body.to_owned())
    }
    fn to_cursor(&self) -> String {
        self.clone()
    }
}

/// A validated page request: a limit within bounds and the position to continue after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageSpec<K = i64> {
    /// Items to return at most.
    pub limit: u32,
    /// Return items strictly after this position in the list's order, or from the start.
    pub after: Option<K>,
}

impl<K> PageSpec<K> {
    /// Rows to fetch: one more than the limit, to learn whether a next page exists.
    pub fn fetch_rows(&self) -> i64 {
        i64::from(self.limit) + 1
    }
}

impl PageRequest {
    /// Checks the limit and decodes the cursor into the list's position type.
    pub fn spec<K: CursorKey>(&self) -> Result<PageSpec<K>, PagingError> {
        let limit = self.limit.unwrap_or(PAGE_LIMIT_DEFAULT);
        if !(1..=PAGE_LIMIT_MAX).contains(&limit) {
            return Err(PagingError::LimitOutOfRange(limit));
        }
        let after = match &self.cursor {
            None => None,
            Some(cursor) => Some(decode_cursor(cursor)?),
        };
        Ok(PageSpec { limit, after })
    }
}

/// Cursors are a version tag and a position, so the encoding can change later without
/// misreading cursors a client kept from an older release.
fn decode_cursor<K: CursorKey>(cursor: &str) -> Result<K, PagingError> {
    let body = cursor.strip_prefix("p1.").ok_or(PagingError::BadCursor)?;
    if body.is_empty() {
        return Err(PagingError::BadCursor);
    }
    K::from_cursor(body).ok_or(PagingError::BadCursor)
}

/// The cursor that continues after `position`.
pub fn encode_cursor<K: CursorKey>(position: &K) -> String {
    format!("p1.{}", position.to_cursor())
}

/// One page of items and where the next one starts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Page<T> {
    /// The items, in the list's order.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows fetched in order: the extra row, if
    /// present, only proves there is a next page and is dropped.
    pub fn from_rows<K: CursorKey>(mut rows: Vec<T>, spec: &PageSpec<K>, position: impl Fn(&T) -> K) -> Self {
        let limit = spec.limit as usize;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|last| encode_cursor(&position(last)))
        } else {
            None
        };
        Page { items: rows, next_cursor }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        assert_eq!(PageRequest::default().spec::<i64>().unwrap(), PageSpec { limit: 50, after: None });
        let too_big = PageRequest { limit: Some(501), cursor: None };
        assert_eq!(too_big.spec::<i64>(), Err(PagingError::LimitOutOfRange(501)));
        let zero = PageRequest { limit: Some(0), cursor: None };
        assert_eq!(zero.spec::<i64>(), Err(PagingError::LimitOutOfRange(0)));
    }

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        let request = PageRequest { limit: Some(10), cursor: Some(encode_cursor(&42_i64)) };
        assert_eq!(request.spec::<i64>().unwrap().after, Some(42));
        for junk in ["", "42", "p1.", "p1.x", "p2.5", "p1.999999999999999999999"] {
            let request = PageRequest { limit: None, cursor: Some(junk.into()) };
            assert_eq!(request.spec::<i64>(), Err(PagingError::BadCursor), "{junk:?}");
        }
        let id = "0192f0c4-a1b2-7c3e-9d5f-6a7b8c9d0e1f".to_owned();
        let request = PageRequest { limit: None, cursor: Some(encode_cursor(&id)) };
        assert_eq!(request.spec::<String>().unwrap().after, Some(id));
        for junk in ["p1.a b", "p1.'; DROP TABLE x", &format!("p1.{}", "a".repeat(65))] {
            let request = PageRequest { limit: None, cursor: Some(junk.to_string()) };
            assert_eq!(request.spec::<String>(), Err(PagingError::BadCursor), "{junk:?}");
        }
    }

    #[test]
    fn the_extra_row_only_signals_a_next_page() {
        let spec = PageSpec::<i64> { limit: 2, after: None };
        let page = Page::from_rows(vec![1_i64, 2, 3], &spec, |n| *n);
        assert_eq!(page.items, vec![1, 2]);
        assert_eq!(page.next_cursor.as_deref(), Some("p1.2"));
        let last = Page::from_rows(vec![1_i64, 2], &spec, |n| *n);
        assert_eq!(last.next_cursor, None);
    }
}
