//! Domain basics every SmartTicket crate speaks: typed ids, [`Money`] in integer minor
//! units, UTC [`Timestamp`]s with an injectable [`Clock`], and keyset [`paging`].
//!
//! This crate owns no I/O and reads no wall clock except through [`SystemClock`]; callers
//! pass time in, so every library below it stays deterministic under test.
#![forbid(unsafe_code)]

pub mod id;
pub mod money;
pub mod paging;
pub mod time;

pub use id::IdParseError;
pub use money::{Currency, Money, MoneyError};
pub use paging::{CursorKey, Page, PageRequest, PageSpec, PagingError};
pub use time::{Clock, ManualClock, SystemClock, Timestamp};
