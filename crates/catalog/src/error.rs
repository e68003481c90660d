//! What can be wrong with a network document, a quote request or a catalogue operation,
//! each error naming the item at fault (`product `monthly``, `combi-zone `OLO``) so an
//! operator can fix the document without guessing.

use std::fmt;

use chrono::NaiveDate;
use smartticket_core::id::CatalogVersionId;
use smartticket_core::{Money, Timestamp};
use smartticket_store::StoreError;
use thiserror::Error;

use crate::document::ProductKind;

/// Longest piece of untrusted input echoed in an error: codes are at most 32 characters.
const ECHO_CHARS_MAX: usize = 48;

/// Cuts untrusted text to a length that is safe to echo back.
pub(crate) fn clip(text: &str) -> String {
    text.chars().take(ECHO_CHARS_MAX).collect()
}

/// The kinds of item a network document declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    /// The `[network]` table.
    Network,
    /// A fare zone.
    Zone,
    /// A named set of zones sold together.
    CombiZone,
    /// A line as a sequence of zones.
    Route,
    /// A discount category.
    Discount,
    /// A product.
    Product,
}

impl ItemKind {
    /// The name used in messages: `zone`, `combi-zone`, `route`, …
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Network => "network",
            ItemKind::Zone => "zone",
            ItemKind::CombiZone => "combi-zone",
            ItemKind::Route => "route",
            ItemKind::Discount => "discount",
            ItemKind::Product => "product",
        }
    }
}

impl fmt::Display for ItemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One item of a document, as named in messages: `product `monthly``.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// What kind of item.
    pub kind: ItemKind,
    /// Its code as written (empty for the network).
    pub code: String,
}

impl Item {
    pub(crate) fn new(kind: ItemKind, code: impl fmt::Display) -> Self {
        Self { kind, code: clip(&code.to_string()) }
    }

    pub(crate) fn network() -> Self {
        Self { kind: ItemKind::Network, code: String::new() }
    }
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.code.is_empty() { write!(f, "{}", self.kind) } else { write!(f, "{} `{}`", self.kind, self.code) }
    }
}

/// Why a network document was refused. Nothing of a refused document is stored.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DocumentError {
    /// The text is larger than [`DOCUMENT_BYTES_MAX`](crate::DOCUMENT_BYTES_MAX).
    #[error("the document is {bytes} bytes; at most {max} are accepted", max = crate::DOCUMENT_BYTES_MAX)]
    TooLarge {
        /// Its size.
        bytes: usize,
    },
    /// The text is not well-formed TOML or JSON, or does not have the document's shape
    /// (a missing or unknown field, a wrong type).
    #[error("{format} line {line}, column {column}: {message}")]
    Syntax {
        /// `TOML` or `JSON`.
        format: &'static str,
        /// 1-based line of the error (0 when the parser did not say).
        line: usize,
        /// 1-based column, in characters (0 when the parser did not say).
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The network's timezone is not an IANA timezone name.
    #[error("network: `{0}` is not an IANA timezone such as Europe/Prague")]
    UnknownTimezone(String),
    /// A zone code outside 1..=32: the card's zone bitmap has 32 bits.
    #[error("zone {code}: zone codes must be between 1 and 32 (the card's zone bitmap has 32 bits)")]
    ZoneOutOfRange {
        /// The code given.
        code: u8,
    },
    /// Two items of one kind share a code.
    #[error("{kind} `{code}` is declared twice")]
    DuplicateCode {
        /// Which kind of item.
        kind: ItemKind,
        /// The code.
        code: String,
    },
    /// Two items of one kind share a card code: a validator could not tell them apart.
    #[error("{kind} `{code}`: card code {card_code} is already used by `{other}`")]
    DuplicateCardCode {
        /// Which kind of item.
        kind: ItemKind,
        /// The item's code.
        code: String,
        /// The card code given twice.
        card_code: u32,
        /// The item that has it already.
        other: String,
    },
    /// A code is empty, too long, or uses characters other than letters, digits, `-`, `_`.
    #[error("{kind} `{code}`: a code is 1 to {max} letters, digits, `-` or `_`", max = crate::document::CODE_CHARS_MAX)]
    BadCode {
        /// Which kind of item.
        kind: ItemKind,
        /// The code (cut to a safe length).
        code: String,
    },
    /// An item refers to a zone the network does not declare.
    #[error("{item}: zone {zone} is not declared in `zones`")]
    UnknownZone {
        /// The item holding the reference.
        item: Item,
        /// The zone code.
        zone: u8,
    },
    /// A price refers to a discount the network does not declare.
    #[error("{item}: discount `{discount}` is not declared in `discounts`")]
    UnknownDiscount {
        /// The item holding the reference.
        item: Item,
        /// The discount code.
        discount: String,
    },
    /// A field that must not be empty is (a name, a combi-zone's or route's zones).
    #[error("{item}: `{field}` must not be empty")]
    Empty {
        /// The item.
        item: Item,
        /// The field.
        field: &'static str,
    },
    /// More items of a kind than a document may hold.
    #[error("at most {max} {what} are allowed")]
    TooMany {
        /// What there are too many of.
        what: &'static str,
        /// The limit.
        max: usize,
    },
    /// A field's value is out of its range or otherwise wrong.
    #[error("{item}: `{field}` {message}")]
    Field {
        /// The item.
        item: Item,
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A product lacks a field its kind needs, or has one its kind does not use.
    #[error("product `{product}`: {}", kind_field_message(*kind, field, *needed))]
    KindField {
        /// The product.
        product: String,
        /// Its kind.
        kind: ProductKind,
        /// The field.
        field: &'static str,
        /// True when the field is missing, false when it does not apply.
        needed: bool,
    },
    /// A product other than stored value has no price.
    #[error("product `{product}` has no price: add at least one entry to `prices`")]
    NoPrice {
        /// The product.
        product: String,
    },
    /// An amount is not a decimal number in the network's currency.
    #[error("{item}: `{field}` `{text}` is not an amount: {message}")]
    BadAmount {
        /// The item.
        item: Item,
        /// The field.
        field: &'static str,
        /// What was written.
        text: String,
        /// Why it was refused.
        message: String,
    },
    /// A price is below zero.
    #[error("product `{product}`: the price for discount `{discount}` is negative ({amount})")]
    NegativePrice {
        /// The product.
        product: String,
        /// The discount of the price entry.
        discount: String,
        /// The amount as written.
        amount: String,
    },
    /// Two prices of a product for the same discount and number of zones.
    #[error("product `{product}`: two prices for discount `{discount}`{}", zones_suffix(*zones))]
    DuplicatePrice {
        /// The product.
        product: String,
        /// The discount.
        discount: String,
        /// The number of zones, for products sold by zones.
        zones: Option<u8>,
    },
    /// A price entry's `zones` count is missing, present where it must not be, or larger
    /// than the network's number of zones.
    #[error("product `{product}`, discount `{discount}`: {message}")]
    PriceZones {
        /// The product.
        product: String,
        /// The discount.
        discount: String,
        /// What is wrong.
        message: String,
    },
    /// A stored-value product whose minimum exceeds its maximum.
    #[error("product `{product}`: amount_min {min} is greater than amount_max {max}")]
    StoredValueLimits {
        /// The product.
        product: String,
        /// The minimum as parsed.
        min: Money,
        /// The maximum as parsed.
        max: Money,
    },
    /// An event that ends before it starts.
    #[error("product `{product}`: the event ends ({ends}) before it starts ({starts})")]
    EventWindow {
        /// The product.
        product: String,
        /// Start.
        starts: Timestamp,
        /// End.
        ends: Timestamp,
    },
}

fn kind_field_message(kind: ProductKind, field: &str, needed: bool) -> String {
    if needed {
        format!("kind {} needs `{field}`", kind.as_str())
    } else {
        format!("`{field}` does not apply to kind {}", kind.as_str())
    }
}

fn zones_suffix(zones: Option<u8>) -> String {
    zones.map(|z| format!(" and {z} zone(s)")).unwrap_or_default()
}

/// Why a quote was refused: the request does not fit the catalogue. Every variant is the
/// caller's to fix; [`QuoteError::field`] names the request field at fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum QuoteError {
    /// No product has this code.
    #[error("product `{0}` is not in the catalogue")]
    UnknownProduct(String),
    /// No discount has this code.
    #[error("discount `{0}` is not in the catalogue")]
    UnknownDiscount(String),
    /// The product is not sold with this discount (no price for it).
    #[error("product `{product}` is not sold with discount `{discount}`")]
    NotOffered {
        /// The product.
        product: String,
        /// The discount.
        discount: String,
    },
    /// The product has no price for this discount and number of zones.
    #[error("product `{product}` with discount `{discount}` has no price for {zones} zone(s)")]
    NoPriceForZones {
        /// The product.
        product: String,
        /// The discount.
        discount: String,
        /// The number of zones chosen.
        zones: usize,
    },
    /// The product is sold by zones: choose zones or a combi-zone.
    #[error("product `{0}` is sold by zones: choose zones or a combi-zone")]
    ZonesRequired(String),
    /// The product covers the whole network; zones cannot be chosen.
    #[error("product `{0}` covers every zone: do not choose zones")]
    ZonesNotApplicable(String),
    /// A chosen zone does not exist.
    #[error("zone {0} is not in the catalogue")]
    UnknownZone(u8),
    /// A zone was chosen twice.
    #[error("zone {0} is chosen twice")]
    DuplicateZone(u8),
    /// No combi-zone has this code.
    #[error("combi-zone `{0}` is not in the catalogue")]
    UnknownCombiZone(String),
    /// The product starts at the sale or at a fixed time; no start date may be chosen.
    #[error("product `{0}` has no start date to choose")]
    StartDateNotApplicable(String),
    /// The start date is before today.
    #[error("the start date {start} is in the past (today is {today})")]
    StartInPast {
        /// The date asked for.
        start: NaiveDate,
        /// Today in the network's timezone.
        today: NaiveDate,
    },
    /// The start date is further ahead than the network allows.
    #[error("the start date {start} is too far ahead: the latest is {latest}")]
    StartTooFarAhead {
        /// The date asked for.
        start: NaiveDate,
        /// The latest allowed start date.
        latest: NaiveDate,
    },
    /// A stored-value product needs the amount to load.
    #[error("product `{0}` is stored value: give amount_minor")]
    AmountRequired(String),
    /// Only stored-value products take an amount.
    #[error("product `{0}` has a fixed price: do not give amount_minor")]
    AmountNotApplicable(String),
    /// The stored-value amount is outside the product's limits.
    #[error("the amount {amount} is outside {min}–{max}")]
    AmountOutOfRange {
        /// The amount asked for.
        amount: Money,
        /// The product's minimum.
        min: Money,
        /// The product's maximum.
        max: Money,
    },
    /// The event has ended; its tickets are no longer sold.
    #[error("event product `{product}` ended at {ended}")]
    EventOver {
        /// The product.
        product: String,
        /// When the event ended.
        ended: Timestamp,
    },
    /// The validity would fall outside the supported calendar, or be empty (a day the
    /// network's timezone skipped).
    #[error("the validity period does not exist in the network's calendar")]
    OutOfRange,
}

impl QuoteError {
    /// The request field at fault, as the API spells it.
    pub fn field(&self) -> &'static str {
        match self {
            QuoteError::UnknownProduct(_) | QuoteError::EventOver { .. } => "product",
            QuoteError::UnknownDiscount(_) | QuoteError::NotOffered { .. } => "discount",
            QuoteError::NoPriceForZones { .. }
            | QuoteError::ZonesRequired(_)
            | QuoteError::ZonesNotApplicable(_)
            | QuoteError::UnknownZone(_)
            | QuoteError::DuplicateZone(_)
            | QuoteError::UnknownCombiZone(_) => "zones",
            QuoteError::StartDateNotApplicable(_)
            | QuoteError::StartInPast { .. }
            | QuoteError::StartTooFarAhead { .. }
            | QuoteError::OutOfRange => "start_date",
            QuoteError::AmountRequired(_)
            | QuoteError::AmountNotApplicable(_)
            | QuoteError::AmountOutOfRange { .. } => "amount_minor",
        }
    }
}

/// Why a catalogue operation failed, and whose move it is: the caller (a bad document or
/// request, a refused date), or the operator (storage).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The network document was refused.
    #[error(transparent)]
    Document(#[from] DocumentError),
    /// The quote request does not fit the catalogue.
    #[error(transparent)]
    Quote(#[from] QuoteError),
    /// A request field other than the document is wrong (a note too long, a date out of
    /// the supported range).
    #[error("{field}: {message}")]
    Invalid {
        /// The field, as the API spells it.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The effective date is before today while versions exist: published history is
    /// never rewritten.
    #[error("effective_from {effective_from} is before today ({today}); past catalogues cannot be changed")]
    BackDated {
        /// The date asked for.
        effective_from: NaiveDate,
        /// Today in the network's timezone.
        today: NaiveDate,
    },
    /// Another version already takes effect on this date.
    #[error("a catalogue version already takes effect on {0}")]
    DuplicateDate(NaiveDate),
    /// The document changes what every version of a network shares (currency,
    /// timezone): prices and validity days of earlier versions would be misread.
    #[error("the network's {field} cannot change between versions (was {was}, the document says {now})")]
    NetworkChanged {
        /// `currency` or `timezone`.
        field: &'static str,
        /// The value in the newest published version.
        was: String,
        /// The value in the document.
        now: String,
    },
    /// No version takes effect on or before the date (or none is published at all).
    #[error("no catalogue is in force on {0}")]
    NoCatalog(NaiveDate),
    /// No catalogue version has this id.
    #[error("catalogue version {0} does not exist")]
    NotFound(CatalogVersionId),
    /// Storage failed; nothing was changed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for CatalogError {
    fn from(error: sqlx::Error) -> Self {
        CatalogError::Store(StoreError::from(error))
    }
}
