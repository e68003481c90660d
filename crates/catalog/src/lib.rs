//! The tariff catalogue (DESIGN.md §4 "Tariff"): zones and combi-zones, routes as zone
//! sequences, discount categories (some needing an approval with a photo), products
//! (single fares, time coupons, N trips, stored value, event tickets) and their prices,
//! and fare quotes following the KIDSOK purchase wizard (seed 002, §3.1.5).
//!
//! A network is written as a TOML [`CatalogDocument`], validated into a [`Catalog`], and
//! published through the [`CatalogStore`] as an immutable version taking effect on a
//! date; it is stored as canonical JSON with its SHA-256. Quoting is pure
//! ([`Catalog::quote`]); the store only picks the version in force. Selling, delivery and
//! acceptance live elsewhere and ask this crate for prices and validity.
#![forbid(unsafe_code)]

pub mod catalog;
pub mod document;
mod error;
pub mod quote;
pub mod store;
pub mod validity;

/// The calendar date type of the API (`effective_from`, `start_date`), re-exported so
/// callers need no direct chrono dependency.
pub use chrono::NaiveDate;

pub use catalog::{Catalog, Discount, PriceEntry, Product, ProductTerms};
pub use document::{
    CatalogDocument, CombiZoneDef, DOCUMENT_BYTES_MAX, DiscountDef, NetworkDef, Period, PriceDef, ProductDef,
    ProductKind, RouteDef, ZoneDef, ZoneScope,
};
pub use error::{CatalogError, DocumentError, Item, ItemKind, QuoteError};
pub use quote::{Quote, QuoteRequest, ZoneChoice};
pub use store::{CatalogStore, VersionInfo};
