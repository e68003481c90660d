//! The network document: the tariff as an operator writes it (TOML) and as it is stored
//! (canonical JSON). This module owns its shape and parsing; the rules that make a
//! document valid live in [`crate::catalog`], which turns it into a [`Catalog`](crate::Catalog).
//!
//! Shape (DESIGN.md §4 "Tariff", KIDSOK 3.1.5):
//!
//! ```toml
//! [network]
//! name = "IDSOK"
//! currency = "CZK"              # ISO 4217
//! timezone = "Europe/Prague"    # IANA; validity days are local calendar days
//! start_days_ahead_max = 60     # how far ahead a buyer may start a coupon
//! single_fare_minutes = 60      # default validity of single fares
//!
//! [[zones]]
//! code = 1                      # 1..=32: a bit of the card's zone bitmap
//! name = "71 Olomouc"
//!
//! [[combi_zones]]
//! code = "OLOMOUC"
//! name = "Olomouc city"
//! zones = [1, 2]
//!
//! [[routes]]
//! code = "L1"
//! name = "Olomouc – Šternberk"
//! zones = [1, 2, 3]             # in the order the line passes them
//!
//! [[discounts]]
//! code = "student"
//! name = "Student 15–26"
//! card_code = 2                 # the number cards carry; stable and unique in the network
//! approval = true               # needs a cashier's approval with a photo (KIDSOK 3.1.3–3.1.4)
//!
//! [[products]]
//! code = "monthly"
//! name = "Monthly coupon"
//! card_code = 24                # the number card contracts carry; stable, unique, ≥ 1
//! kind = "time_coupon"          # single_fare | time_coupon | trips | stored_value | event
//! period = { months = 1 }       # or { days = n } or { weeks = n }
//! zones = "chosen"              # or "all" (the default)
//! prices = [ { discount = "adult", zones = 1, amount = "550.00" } ]
//! ```
//!
//! Kind-specific fields: `single_fare` takes `minutes` (else the network default);
//! `time_coupon` needs `period`; `trips` needs `trips` and `validity_days`;
//! `stored_value` needs `amount_min` and `amount_max` and has no prices; `event` needs
//! `ticket_server`, `event`, `starts` and `ends` (RFC 3339, quoted or TOML date-times).
//! Amounts are decimal strings in major units, never floats.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use smartticket_core::{Currency, Timestamp};
use utoipa::ToSchema;

use crate::error::DocumentError;

/// Largest document accepted, in bytes: the same as the API's request body limit, and
/// far above a real network (the IDSOK example is about 18 KiB).
pub const DOCUMENT_BYTES_MAX: usize = 1024 * 1024;
/// Longest code of a combi-zone, route, discount or product, in characters.
pub const CODE_CHARS_MAX: usize = 32;
/// Longest name, in characters.
pub const NAME_CHARS_MAX: usize = 200;

/// A whole network's tariff: what one catalogue version holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogDocument {
    /// The network's name, currency, timezone and sale limits.
    pub network: NetworkDef,
    /// Fare zones.
    #[serde(default)]
    pub zones: Vec<ZoneDef>,
    /// Named sets of zones a buyer may choose instead of single zones.
    #[serde(default)]
    pub combi_zones: Vec<CombiZoneDef>,
    /// Lines as ordered zone sequences; validators check coupons against them.
    #[serde(default)]
    pub routes: Vec<RouteDef>,
    /// Discount categories.
    #[serde(default)]
    pub discounts: Vec<DiscountDef>,
    /// What is sold.
    #[serde(default)]
    pub products: Vec<ProductDef>,
}

/// The `[network]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkDef {
    /// The network's name.
    pub name: String,
    /// The currency of every price (ISO 4217).
    pub currency: Currency,
    /// IANA timezone name, e.g. `Europe/Prague`; validity days are its calendar days.
    pub timezone: String,
    /// How many days after today a buyer may choose as a coupon's start date.
    pub start_days_ahead_max: u16,
    /// Validity of a single fare in minutes, unless the product says otherwise.
    pub single_fare_minutes: u32,
}

/// A fare zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ZoneDef {
    /// 1..=32: the zone's bit in the card's zone bitmap.
    pub code: u8,
    /// Name, e.g. `71 Olomouc`.
    pub name: String,
}

/// A named set of zones sold together (KIDSOK: kombizóna).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CombiZoneDef {
    /// Code a buyer chooses it by.
    pub code: String,
    /// Name.
    pub name: String,
    /// Its zones.
    pub zones: BTreeSet<u8>,
}

/// A line as the ordered sequence of zones it passes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteDef {
    /// Line code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Zones in the order the line passes them.
    pub zones: Vec<u8>,
}

/// A discount category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscountDef {
    /// Code.
    pub code: String,
    /// Name, e.g. `Student 15–26`.
    pub name: String,
    /// The number written on cards for this category (contracts and the card's
    /// environment): stable across catalogue versions, unique in the network.
    pub card_code: u16,
    /// Needs a cashier's approval with a photo before it can be bought (KIDSOK 3.1.3–3.1.4).
    #[serde(default)]
    pub approval: bool,
}

/// What kind of product, which decides how its validity is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProductKind {
    /// One journey, valid `minutes` from the sale.
    SingleFare,
    /// A time coupon for a period of days, weeks or months from a chosen start date.
    TimeCoupon,
    /// N trips, usable for `validity_days` from a chosen start date.
    Trips,
    /// A purse top-up of an amount the buyer chooses.
    StoredValue,
    /// A ticket for an event from a third-party ticket server, valid for its duration.
    Event,
}

impl ProductKind {
    /// The name as written in documents: `single_fare`, `time_coupon`, …
    pub fn as_str(self) -> &'static str {
        match self {
            ProductKind::SingleFare => "single_fare",
            ProductKind::TimeCoupon => "time_coupon",
            ProductKind::Trips => "trips",
            ProductKind::StoredValue => "stored_value",
            ProductKind::Event => "event",
        }
    }
}

impl fmt::Display for ProductKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A time coupon's period: written `{ days = n }`, `{ weeks = n }` or `{ months = n }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", try_from = "PeriodFields")]
pub enum Period {
    /// `n` calendar days, the start day included.
    Days(u16),
    /// `n` weeks of seven days.
    Weeks(u16),
    /// `n` calendar months: until the day before the same day `n` months later.
    Months(u16),
}

/// A period as written, read field by field so that a wrong mix gets a plain message.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PeriodFields {
    days: Option<u16>,
    weeks: Option<u16>,
    months: Option<u16>,
}

impl TryFrom<PeriodFields> for Period {
    type Error = &'static str;

    fn try_from(fields: PeriodFields) -> Result<Period, Self::Error> {
        match (fields.days, fields.weeks, fields.months) {
            (Some(n), None, None) => Ok(Period::Days(n)),
            (None, Some(n), None) => Ok(Period::Weeks(n)),
            (None, None, Some(n)) => Ok(Period::Months(n)),
            _ => Err("a period is exactly one of { days = n }, { weeks = n } or { months = n }"),
        }
    }
}

/// Which zones a product covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ZoneScope {
    /// The buyer chooses zones or a combi-zone; the price depends on how many.
    Chosen,
    /// Every zone of the network; one price per discount.
    #[default]
    All,
}

/// A product. Which optional fields it needs depends on `kind` (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductDef {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// The number written into card contracts for this product, by which validators find
    /// it: stable across catalogue versions, unique in the network, at least 1.
    pub card_code: u32,
    /// What kind of product.
    pub kind: ProductKind,
    /// Chosen zones or all; `all` when absent.
    #[serde(default)]
    pub zones: ZoneScope,
    /// `single_fare`: validity in minutes from the sale (else the network default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<u32>,
    /// `time_coupon`: the period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    /// `trips`: the number of trips.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trips: Option<u16>,
    /// `trips`: days the trips may be used, the start day included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity_days: Option<u16>,
    /// `stored_value`: the smallest amount, in major units (`"1.00"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_min: Option<String>,
    /// `stored_value`: the largest amount, in major units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_max: Option<String>,
    /// `event`: the ticket server that issues the tickets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_server: Option<String>,
    /// `event`: the event's id on that server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// `event`: when the ticket starts to be valid.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "instant::optional")]
    pub starts: Option<Timestamp>,
    /// `event`: when it stops being valid (exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "instant::optional")]
    pub ends: Option<Timestamp>,
    /// The price table; empty for stored value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prices: Vec<PriceDef>,
}

/// One price: for a discount and, for products sold by zones, a number of zones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceDef {
    /// The discount category.
    pub discount: String,
    /// How many zones (products with `zones = "chosen"` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zones: Option<u8>,
    /// The amount in major units, as a decimal string (`"550.00"`).
    pub amount: String,
}

impl CatalogDocument {
    /// Reads a document from TOML. Checks only the shape (fields and types); call
    /// [`Catalog::from_document`](crate::Catalog::from_document) for the rules. Errors
    /// carry the line and column.
    pub fn from_toml(text: &str) -> Result<CatalogDocument, DocumentError> {
        check_size(text)?;
        toml::from_str(text).map_err(|error| {
            let (line, column) = error.span().map(|span| line_column(text, span.start)).unwrap_or((0, 0));
            DocumentError::Syntax { format: "TOML", line, column, message: error.message().trim().to_owned() }
        })
    }

    /// Reads a document from JSON (the stored form, or an API request). Checks only the
    /// shape, like [`CatalogDocument::from_toml`].
    pub fn from_json(text: &str) -> Result<CatalogDocument, DocumentError> {
        check_size(text)?;
        serde_json::from_str(text).map_err(|error| DocumentError::Syntax {
            format: "JSON",
            line: error.line(),
            column: error.column(),
            message: strip_position(&error.to_string()),
        })
    }

    /// The canonical JSON text: keys in a fixed order, no whitespace. A document that
    /// passed [`Catalog::from_document`](crate::Catalog::from_document) has its amounts
    /// normalised too, so equal tariffs give equal texts (and equal SHA-256 digests).
    pub fn to_canonical_json(&self) -> String {
        // Going through `Value` orders object keys by serde_json's map: sorted, or in
        // declaration order if some crate enables `preserve_order`; deterministic either
        // way. Serialising plain data cannot fail; the fallback keeps the function total.
        serde_json::to_value(self).and_then(|value| serde_json::to_string(&value)).unwrap_or_default()
    }
}

fn check_size(text: &str) -> Result<(), DocumentError> {
    if text.len() > DOCUMENT_BYTES_MAX { Err(DocumentError::TooLarge { bytes: text.len() }) } else { Ok(()) }
}

/// 1-based line and character column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.bytes().filter(|b| *b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before.get(line_start..).map(|s| s.chars().count()).unwrap_or(0) + 1;
    (line, column)
}

/// serde_json appends " at line L column C"; the position is reported in fields instead.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message.get(..index).unwrap_or(message).to_owned(),
        None => message.to_owned(),
    }
}

/// Event times: an RFC 3339 string (JSON, quoted TOML) or a native TOML offset date-time.
mod instant {
    use super::*;

    pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        d.deserialize_any(InstantVisitor)
    }

    struct InstantVisitor;

    impl<'de> Visitor<'de> for InstantVisitor {
        type Value = Option<Timestamp>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an RFC 3339 date-time with an offset, e.g. 2026-06-20T18:00:00+02:00")
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
            Timestamp::parse_rfc3339(text)
                .map(Some)
                .map_err(|e| E::custom(format!("`{}` is not an RFC 3339 date-time with an offset: {e}", clip(text))))
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            // TOML hands its native date-times over as a one-entry map; its `Display` is
            // RFC 3339 when the value has an offset, and a local date-time (refused below)
            // when it has none, since an event time needs one.
            let datetime = toml::value::Datetime::deserialize(de::value::MapAccessDeserializer::new(map))?;
            self.visit_str(&datetime.to_string())
        }
    }

    fn clip(text: &str) -> String {
        crate::error::clip(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[network]
name = "Test"
currency = "CZK"
timezone = "Europe/Prague"
start_days_ahead_max = 30
single_fare_minutes = 45

[[zones]]
code = 1
name = "Centre"
"#;

    #[test]
    fn reads_a_minimal_document() {
        let doc = CatalogDocument::from_toml(MINIMAL).unwrap();
        assert_eq!(doc.network.currency, Currency::CZK);
        assert_eq!(doc.zones.len(), 1);
        assert!(doc.products.is_empty());
    }

    #[test]
    fn unknown_fields_are_refused_with_their_position() {
        let text = MINIMAL.replace("name = \"Centre\"", "name = \"Centre\"\ncolour = \"red\"");
        let err = CatalogDocument::from_toml(&text).unwrap_err();
        match err {
            DocumentError::Syntax { format: "TOML", line, column, message } => {
                assert_eq!(line, 12, "{message}");
                assert_eq!(column, 1);
                assert!(message.contains("colour"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_currency_is_refused() {
        let err = CatalogDocument::from_toml(&MINIMAL.replace("CZK", "XYZ")).unwrap_err();
        assert!(err.to_string().contains("XYZ"), "{err}");
        assert!(err.to_string().starts_with("TOML line 4"), "{err}");
    }

    #[test]
    fn json_errors_carry_line_and_column() {
        let err = CatalogDocument::from_json("{\n  \"network\": 1\n}").unwrap_err();
        assert!(matches!(err, DocumentError::Syntax { format: "JSON", line: 2, .. }), "{err:?}");
        assert!(!err.to_string().contains(" at line "), "{err}");
    }

    #[test]
    fn oversized_documents_are_refused_before_parsing() {
        let big = "#".repeat(DOCUMENT_BYTES_MAX + 1);
        assert!(matches!(CatalogDocument::from_toml(&big), Err(DocumentError::TooLarge { .. })));
    }

    #[test]
    fn event_times_may_be_native_toml_or_strings() {
        let product = r#"
[[products]]
code = "concert"
name = "Concert"
card_code = 60
kind = "event"
ticket_server = "tickets.example"
event = "E1"
starts = 2026-06-20T18:00:00+02:00
ends = "2026-06-21T02:00:00+02:00"
"#;
        let doc = CatalogDocument::from_toml(&format!("{MINIMAL}{product}")).unwrap();
        let concert = &doc.products[0];
        assert_eq!(concert.starts.unwrap().to_rfc3339(), "2026-06-20T16:00:00.000000Z");
        assert_eq!(concert.ends.unwrap().to_rfc3339(), "2026-06-21T00:00:00.000000Z");
        let local = format!("{MINIMAL}{}", product.replace("2026-06-20T18:00:00+02:00", "2026-06-20T18:00:00"));
        assert!(CatalogDocument::from_toml(&local).is_err(), "an event time needs an offset");
    }

    #[test]
    fn canonical_json_round_trips() {
        let doc = CatalogDocument::from_toml(MINIMAL).unwrap();
        let json = doc.to_canonical_json();
        assert!(!json.contains(' ') || json.contains("\"Centre\""));
        assert_eq!(CatalogDocument::from_json(&json).unwrap(), doc);
        assert_eq!(CatalogDocument::from_json(&json).unwrap().to_canonical_json(), json);
    }

    #[test]
    fn positions_count_characters() {
        assert_eq!(line_column("ab\nčd", 5), (2, 2));
        assert_eq!(line_column("x", 0), (1, 1));
        assert_eq!(line_column("x", 99), (1, 2));
    }
}
