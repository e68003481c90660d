//! The validated catalogue: a [`CatalogDocument`] that passed every rule, indexed for
//! quoting. Owns validation (DESIGN.md §4 "Tariff") and leaves storage to
//! [`crate::store`] and calendar arithmetic to [`crate::validity`].
//!
//! A document is valid when: codes are unique per kind and made of letters, digits, `-`
//! and `_`; zone codes are 1..=32 (the card's zone bitmap); every zone a combi-zone or
//! route names exists; every price names a declared discount and, for products sold by
//! zones, a zone count from 1 to the number of zones; no price is negative; every
//! product except stored value has at least one price and stored value has none; each
//! product has exactly the fields its kind uses, within the limits below; the timezone
//! is an IANA name. The first rule broken is reported, naming the item.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use chrono_tz::Tz;
use smartticket_core::id::CatalogVersionId;
use smartticket_core::{Currency, Money, Timestamp};

use crate::document::{
    CODE_CHARS_MAX, CatalogDocument, CombiZoneDef, DiscountDef, NAME_CHARS_MAX, NetworkDef, Period, PriceDef,
    ProductDef, ProductKind, RouteDef, ZoneDef, ZoneScope,
};
use crate::error::{DocumentError, Item, ItemKind, clip};
use crate::validity;

/// Lowest zone code.
pub const ZONE_CODE_MIN: u8 = 1;
/// Highest zone code: the card's contract stores zones as a 32-bit bitmap.
pub const ZONE_CODE_MAX: u8 = 32;
/// Most combi-zones: far more than any network names, small enough to list in one page.
pub const COMBI_ZONES_MAX: usize = 256;
/// Most routes: a regional network runs a few hundred lines.
pub const ROUTES_MAX: usize = 2000;
/// Most zones one route may list.
pub const ROUTE_ZONES_MAX: usize = 64;
/// Most discount categories: the card's environment file keeps the category in one byte,
/// and real networks have fewer than ten.
pub const DISCOUNTS_MAX: usize = 64;
/// Most products.
pub const PRODUCTS_MAX: usize = 256;
/// Most price entries of one product: one per discount and zone count.
pub const PRICES_PER_PRODUCT_MAX: usize = DISCOUNTS_MAX * ZONE_CODE_MAX as usize;
/// Longest `start_days_ahead_max`: a year ahead.
pub const START_DAYS_AHEAD_LIMIT: u16 = 366;
/// Longest single fare, in minutes: a day.
pub const SINGLE_FARE_MINUTES_MAX: u32 = 24 * 60;
/// Longest `{ days = n }` period and longest `validity_days` of trips: a leap year.
pub const PERIOD_DAYS_MAX: u16 = 366;
/// Longest `{ weeks = n }` period.
pub const PERIOD_WEEKS_MAX: u16 = 52;
/// Longest `{ months = n }` period: the annual coupon.
pub const PERIOD_MONTHS_MAX: u16 = 12;
/// Most trips on one product.
pub const TRIPS_MAX: u16 = 1000;

/// A discount category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discount {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Needs a cashier's approval with a photo (KIDSOK 3.1.3–3.1.4).
    pub approval: bool,
    /// The number written on cards.
    pub card_code: u16,
}

/// What a product gives, by kind, with its parameters checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProductTerms {
    /// Valid `minutes` from the sale.
    SingleFare {
        /// Validity in minutes.
        minutes: u32,
    },
    /// A time coupon for `period` from a chosen start date.
    TimeCoupon {
        /// The period.
        period: Period,
    },
    /// `trips` trips within `validity_days` from a chosen start date.
    Trips {
        /// Number of trips.
        trips: u16,
        /// Days of validity, the start day included.
        validity_days: u16,
    },
    /// A purse top-up of an amount between `min` and `max`.
    StoredValue {
        /// Smallest amount.
        min: Money,
        /// Largest amount.
        max: Money,
    },
    /// An event ticket valid from `starts` until `ends`.
    Event {
        /// The ticket server issuing the tickets.
        ticket_server: String,
        /// The event's id there.
        event: String,
        /// Start of validity.
        starts: Timestamp,
        /// End of validity (exclusive).
        ends: Timestamp,
    },
}

/// One entry of a product's price table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriceEntry<'a> {
    /// The discount code.
    pub discount: &'a str,
    /// The number of zones, for products sold by zones.
    pub zones: Option<u8>,
    /// The price.
    pub price: Money,
}

/// A product, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// The number written into card contracts.
    pub card_code: u32,
    /// Kind.
    pub kind: ProductKind,
    /// Chosen zones or all.
    pub zones: ZoneScope,
    /// Kind-specific terms.
    pub terms: ProductTerms,
    /// Prices by (discount, zone count); the count is 0 for products covering all zones.
    prices: BTreeMap<(String, u8), Money>,
}

impl Product {
    /// The price for `discount` and, for products sold by zones, `zones` zones.
    pub fn price(&self, discount: &str, zones: Option<u8>) -> Option<Money> {
        self.prices.get(&(discount.to_owned(), zones.unwrap_or(0))).copied()
    }

    /// Every price, ordered by discount code then zone count.
    pub fn prices(&self) -> impl Iterator<Item = PriceEntry<'_>> {
        self.prices.iter().map(|((discount, zones), price)| PriceEntry {
            discount: discount.as_str(),
            zones: (*zones != 0).then_some(*zones),
            price: *price,
        })
    }

    /// True when some price exists for `discount`.
    pub fn is_offered_with(&self, discount: &str) -> bool {
        self.prices.keys().any(|(code, _)| code == discount)
    }
}

/// A valid catalogue, ready to quote from. Cheap to share behind an `Arc`.
#[derive(Debug, Clone)]
pub struct Catalog {
    version: Option<CatalogVersionId>,
    document: CatalogDocument,
    timezone: Tz,
    zones: BTreeMap<u8, String>,
    combi_zones: BTreeMap<String, Vec<u8>>,
    discounts: BTreeMap<String, Discount>,
    products: BTreeMap<String, Product>,
}

impl Catalog {
    /// Checks `document` against every rule and indexes it. Amounts in the kept document
    /// are normalised to the currency's minor digits (`"550"` → `"550.00"`), so its
    /// canonical JSON is the same for equal tariffs.
    pub fn from_document(mut document: CatalogDocument) -> Result<Catalog, DocumentError> {
        let timezone = check_network(&document.network)?;
        let zones = check_zones(&document.zones)?;
        let combi_zones = check_combi_zones(&document.combi_zones, &zones)?;
        check_routes(&document.routes, &zones)?;
        let discounts = check_discounts(&document.discounts)?;
        if document.products.len() > PRODUCTS_MAX {
            return Err(DocumentError::TooMany { what: "products", max: PRODUCTS_MAX });
        }
        let context = ProductContext { network: &document.network, zone_count: zones.len(), discounts: &discounts };
        let mut products = BTreeMap::new();
        for def in &mut document.products {
            let product = check_product(def, &context)?;
            if products.contains_key(&product.code) {
                return Err(DocumentError::DuplicateCode { kind: ItemKind::Product, code: clip(&def.code) });
            }
            if let Some(other) = products.values().find(|p: &&Product| p.card_code == product.card_code) {
                return Err(DocumentError::DuplicateCardCode {
                    kind: ItemKind::Product,
                    code: clip(&def.code),
                    card_code: product.card_code,
                    other: other.code.clone(),
                });
            }
            if products.insert(product.code.clone(), product).is_some() {
                return Err(DocumentError::DuplicateCode { kind: ItemKind::Product, code: clip(&def.code) });
            }
        }
        Ok(Catalog { version: None, document, timezone, zones, combi_zones, discounts, products })
    }

    /// Reads and checks a TOML document.
    pub fn from_toml(text: &str) -> Result<Catalog, DocumentError> {
        Catalog::from_document(CatalogDocument::from_toml(text)?)
    }

    /// Marks the catalogue as the stored version `id`; quotes then carry the id.
    pub(crate) fn with_version(mut self, id: CatalogVersionId) -> Catalog {
        self.version = Some(id);
        self
    }

    /// The stored version this catalogue was loaded from; `None` for an unstored one.
    pub fn version(&self) -> Option<CatalogVersionId> {
        self.version
    }

    /// The document, amounts normalised.
    pub fn document(&self) -> &CatalogDocument {
        &self.document
    }

    /// The network's name.
    pub fn network_name(&self) -> &str {
        &self.document.network.name
    }

    /// The currency of every price.
    pub fn currency(&self) -> Currency {
        self.document.network.currency
    }

    /// The network's timezone: validity days are its calendar days.
    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// How many days ahead a coupon may start.
    pub fn start_days_ahead_max(&self) -> u16 {
        self.document.network.start_days_ahead_max
    }

    /// The network's local date at `now`.
    pub fn local_date(&self, now: Timestamp) -> NaiveDate {
        validity::local_date(self.timezone, now)
    }

    /// Zones by code, with their names.
    pub fn zones(&self) -> &BTreeMap<u8, String> {
        &self.zones
    }

    /// The zones of a combi-zone, sorted.
    pub fn combi_zone(&self, code: &str) -> Option<&[u8]> {
        self.combi_zones.get(code).map(Vec::as_slice)
    }

    /// A discount category.
    pub fn discount(&self, code: &str) -> Option<&Discount> {
        self.discounts.get(code)
    }

    /// Every discount category, by code.
    pub fn discounts(&self) -> impl Iterator<Item = &Discount> {
        self.discounts.values()
    }

    /// A product.
    pub fn product(&self, code: &str) -> Option<&Product> {
        self.products.get(code)
    }

    /// Every product, by code.
    pub fn products(&self) -> impl Iterator<Item = &Product> {
        self.products.values()
    }
}

fn check_code(kind: ItemKind, code: &str) -> Result<(), DocumentError> {
    let plain = code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if code.is_empty() || code.chars().count() > CODE_CHARS_MAX || !plain {
        return Err(DocumentError::BadCode { kind, code: clip(code) });
    }
    Ok(())
}

fn check_text(item: &Item, field: &'static str, text: &str) -> Result<(), DocumentError> {
    if text.trim().is_empty() {
        return Err(DocumentError::Empty { item: item.clone(), field });
    }
    let message = if text.chars().count() > NAME_CHARS_MAX {
        format!("must be at most {NAME_CHARS_MAX} characters")
    } else if text.chars().any(char::is_control) {
        "must not contain control characters".to_owned()
    } else {
        return Ok(());
    };
    Err(DocumentError::Field { item: item.clone(), field, message })
}

fn out_of_range(
    item: &Item,
    field: &'static str,
    low: impl std::fmt::Display,
    high: impl std::fmt::Display,
) -> DocumentError {
    DocumentError::Field { item: item.clone(), field, message: format!("must be between {low} and {high}") }
}

fn check_network(network: &NetworkDef) -> Result<Tz, DocumentError> {
    let item = Item::network();
    check_text(&item, "name", &network.name)?;
    let timezone: Tz = network.timezone.parse().map_err(|_| DocumentError::UnknownTimezone(clip(&network.timezone)))?;
    if network.start_days_ahead_max > START_DAYS_AHEAD_LIMIT {
        return Err(out_of_range(&item, "start_days_ahead_max", 0, START_DAYS_AHEAD_LIMIT));
    }
    if !(1..=SINGLE_FARE_MINUTES_MAX).contains(&network.single_fare_minutes) {
        return Err(out_of_range(&item, "single_fare_minutes", 1, SINGLE_FARE_MINUTES_MAX));
    }
    Ok(timezone)
}

fn check_zones(defs: &[ZoneDef]) -> Result<BTreeMap<u8, String>, DocumentError> {
    if defs.is_empty() {
        return Err(DocumentError::Empty { item: Item::network(), field: "zones" });
    }
    let mut zones = BTreeMap::new();
    for zone in defs {
        if !(ZONE_CODE_MIN..=ZONE_CODE_MAX).contains(&zone.code) {
            return Err(DocumentError::ZoneOutOfRange { code: zone.code });
        }
        check_text(&Item::new(ItemKind::Zone, zone.code), "name", &zone.name)?;
        if zones.insert(zone.code, zone.name.clone()).is_some() {
            return Err(DocumentError::DuplicateCode { kind: ItemKind::Zone, code: zone.code.to_string() });
        }
    }
    Ok(zones)
}

fn check_known_zone(item: &Item, zone: u8, zones: &BTreeMap<u8, String>) -> Result<(), DocumentError> {
    if zones.contains_key(&zone) { Ok(()) } else { Err(DocumentError::UnknownZone { item: item.clone(), zone }) }
}

fn check_combi_zones(
    defs: &[CombiZoneDef],
    zones: &BTreeMap<u8, String>,
) -> Result<BTreeMap<String, Vec<u8>>, DocumentError> {
    if defs.len() > COMBI_ZONES_MAX {
        return Err(DocumentError::TooMany { what: "combi-zones", max: COMBI_ZONES_MAX });
    }
    let mut combi_zones = BTreeMap::new();
    for combi in defs {
        check_code(ItemKind::CombiZone, &combi.code)?;
        let item = Item::new(ItemKind::CombiZone, &combi.code);
        check_text(&item, "name", &combi.name)?;
        if combi.zones.is_empty() {
            return Err(DocumentError::Empty { item, field: "zones" });
        }
        for zone in &combi.zones {
            check_known_zone(&item, *zone, zones)?;
        }
        // A BTreeSet iterates in order, so the stored list is sorted.
        let members: Vec<u8> = combi.zones.iter().copied().collect();
        if combi_zones.insert(combi.code.clone(), members).is_some() {
            return Err(DocumentError::DuplicateCode { kind: ItemKind::CombiZone, code: clip(&combi.code) });
        }
    }
    Ok(combi_zones)
}

fn check_routes(defs: &[RouteDef], zones: &BTreeMap<u8, String>) -> Result<(), DocumentError> {
    if defs.len() > ROUTES_MAX {
        return Err(DocumentError::TooMany { what: "routes", max: ROUTES_MAX });
    }
    let mut codes = BTreeSet::new();
    for route in defs {
        check_code(ItemKind::Route, &route.code)?;
        let item = Item::new(ItemKind::Route, &route.code);
        check_text(&item, "name", &route.name)?;
        if route.zones.is_empty() {
            return Err(DocumentError::Empty { item, field: "zones" });
        }
        if route.zones.len() > ROUTE_ZONES_MAX {
            return Err(DocumentError::Field {
                item,
                field: "zones",
                message: format!("lists more than {ROUTE_ZONES_MAX} zones"),
            });
        }
        for zone in &route.zones {
            check_known_zone(&item, *zone, zones)?;
        }
        if route.zones.windows(2).any(|pair| pair.first() == pair.last()) {
            return Err(DocumentError::Field {
                item,
                field: "zones",
                message: "repeats a zone in a row: list each zone once per pass".to_owned(),
            });
        }
        if !codes.insert(route.code.as_str()) {
            return Err(DocumentError::DuplicateCode { kind: ItemKind::Route, code: clip(&route.code) });
        }
    }
    Ok(())
}

fn check_discounts(defs: &[DiscountDef]) -> Result<BTreeMap<String, Discount>, DocumentError> {
    if defs.len() > DISCOUNTS_MAX {
        return Err(DocumentError::TooMany { what: "discounts", max: DISCOUNTS_MAX });
    }
    let mut discounts = BTreeMap::new();
    for def in defs {
        check_code(ItemKind::Discount, &def.code)?;
        check_text(&Item::new(ItemKind::Discount, &def.code), "name", &def.name)?;
        if discounts.contains_key(&def.code) {
            return Err(DocumentError::DuplicateCode { kind: ItemKind::Discount, code: clip(&def.code) });
        }
        if let Some(other) = discounts.values().find(|d: &&Discount| d.card_code == def.card_code) {
            return Err(DocumentError::DuplicateCardCode {
                kind: ItemKind::Discount,
                code: clip(&def.code),
                card_code: u32::from(def.card_code),
                other: other.code.clone(),
            });
        }
        let discount = Discount {
            code: def.code.clone(),
            name: def.name.clone(),
            approval: def.approval,
            card_code: def.card_code,
        };
        if discounts.insert(def.code.clone(), discount).is_some() {
            return Err(DocumentError::DuplicateCode { kind: ItemKind::Discount, code: clip(&def.code) });
        }
    }
    Ok(discounts)
}

/// What checking a product needs from the rest of the document.
struct ProductContext<'a> {
    network: &'a NetworkDef,
    zone_count: usize,
    discounts: &'a BTreeMap<String, Discount>,
}

fn check_product(def: &mut ProductDef, context: &ProductContext<'_>) -> Result<Product, DocumentError> {
    check_code(ItemKind::Product, &def.code)?;
    let item = Item::new(ItemKind::Product, &def.code);
    check_text(&item, "name", &def.name)?;
    check_kind_fields(def)?;
    let terms = product_terms(def, context.network)?;
    let prices = if def.kind == ProductKind::StoredValue {
        if def.zones != ZoneScope::All {
            return Err(DocumentError::Field {
                item,
                field: "zones",
                message: "must be \"all\": stored value pays any fare".to_owned(),
            });
        }
        if !def.prices.is_empty() {
            return Err(kind_field(def, "prices", false));
        }
        BTreeMap::new()
    } else {
        price_table(def, context)?
    };
    if def.card_code == 0 {
        return Err(DocumentError::Field {
            item,
            field: "card_code",
            message: "must be at least 1 (0 marks an empty contract slot)".to_owned(),
        });
    }
    Ok(Product {
        code: def.code.clone(),
        name: def.name.clone(),
        card_code: def.card_code,
        kind: def.kind,
        zones: def.zones,
        terms,
        prices,
    })
}

fn kind_field(def: &ProductDef, field: &'static str, needed: bool) -> DocumentError {
    DocumentError::KindField { product: clip(&def.code), kind: def.kind, field, needed }
}

/// Refuses fields the product's kind does not use; missing fields are caught where the
/// terms are read.
fn check_kind_fields(def: &ProductDef) -> Result<(), DocumentError> {
    let present = [
        ("minutes", def.minutes.is_some()),
        ("period", def.period.is_some()),
        ("trips", def.trips.is_some()),
        ("validity_days", def.validity_days.is_some()),
        ("amount_min", def.amount_min.is_some()),
        ("amount_max", def.amount_max.is_some()),
        ("ticket_server", def.ticket_server.is_some()),
        ("event", def.event.is_some()),
        ("starts", def.starts.is_some()),
        ("ends", def.ends.is_some()),
    ];
    let allowed: &[&str] = match def.kind {
        ProductKind::SingleFare => &["minutes"],
        ProductKind::TimeCoupon => &["period"],
        ProductKind::Trips => &["trips", "validity_days"],
        ProductKind::StoredValue => &["amount_min", "amount_max"],
        ProductKind::Event => &["ticket_server", "event", "starts", "ends"],
    };
    match present.iter().find(|(field, is_present)| *is_present && !allowed.contains(field)) {
        Some((field, _)) => Err(kind_field(def, field, false)),
        None => Ok(()),
    }
}

fn need<T: Clone>(def: &ProductDef, value: &Option<T>, field: &'static str) -> Result<T, DocumentError> {
    value.clone().ok_or_else(|| kind_field(def, field, true))
}

fn product_terms(def: &mut ProductDef, network: &NetworkDef) -> Result<ProductTerms, DocumentError> {
    let item = Item::new(ItemKind::Product, &def.code);
    let in_range = |field, value: u32, high: u32| {
        if (1..=high).contains(&value) { Ok(()) } else { Err(out_of_range(&item, field, 1, high)) }
    };
    match def.kind {
        ProductKind::SingleFare => {
            let minutes = def.minutes.unwrap_or(network.single_fare_minutes);
            in_range("minutes", minutes, SINGLE_FARE_MINUTES_MAX)?;
            Ok(ProductTerms::SingleFare { minutes })
        }
        ProductKind::TimeCoupon => {
            let period = need(def, &def.period, "period")?;
            let (count, high) = match period {
                Period::Days(n) => (n, PERIOD_DAYS_MAX),
                Period::Weeks(n) => (n, PERIOD_WEEKS_MAX),
                Period::Months(n) => (n, PERIOD_MONTHS_MAX),
            };
            in_range("period", u32::from(count), u32::from(high))?;
            Ok(ProductTerms::TimeCoupon { period })
        }
        ProductKind::Trips => {
            let trips = need(def, &def.trips, "trips")?;
            let validity_days = need(def, &def.validity_days, "validity_days")?;
            in_range("trips", u32::from(trips), u32::from(TRIPS_MAX))?;
            in_range("validity_days", u32::from(validity_days), u32::from(PERIOD_DAYS_MAX))?;
            Ok(ProductTerms::Trips { trips, validity_days })
        }
        ProductKind::StoredValue => stored_value_terms(def, network),
        ProductKind::Event => {
            let ticket_server = need(def, &def.ticket_server, "ticket_server")?;
            let event = need(def, &def.event, "event")?;
            let starts = need(def, &def.starts, "starts")?;
            let ends = need(def, &def.ends, "ends")?;
            check_text(&item, "ticket_server", &ticket_server)?;
            check_text(&item, "event", &event)?;
            if ends <= starts {
                return Err(DocumentError::EventWindow { product: clip(&def.code), starts, ends });
            }
            Ok(ProductTerms::Event { ticket_server, event, starts, ends })
        }
    }
}

fn stored_value_terms(def: &mut ProductDef, network: &NetworkDef) -> Result<ProductTerms, DocumentError> {
    let item = Item::new(ItemKind::Product, &def.code);
    let min_text = need(def, &def.amount_min, "amount_min")?;
    let max_text = need(def, &def.amount_max, "amount_max")?;
    let min = parse_amount(&item, "amount_min", &min_text, network.currency)?;
    let max = parse_amount(&item, "amount_max", &max_text, network.currency)?;
    for (field, amount) in [("amount_min", min), ("amount_max", max)] {
        if amount.amount_minor <= 0 {
            return Err(DocumentError::Field { item, field, message: "must be more than zero".to_owned() });
        }
    }
    if min.amount_minor > max.amount_minor {
        return Err(DocumentError::StoredValueLimits { product: clip(&def.code), min, max });
    }
    def.amount_min = Some(major_text(min));
    def.amount_max = Some(major_text(max));
    Ok(ProductTerms::StoredValue { min, max })
}

fn parse_amount(item: &Item, field: &'static str, text: &str, currency: Currency) -> Result<Money, DocumentError> {
    Money::parse_major(text, currency).map_err(|e| DocumentError::BadAmount {
        item: item.clone(),
        field,
        text: clip(text),
        message: e.to_string(),
    })
}

/// `550.00`: the amount in major units with the currency's minor digits, no code.
fn major_text(amount: Money) -> String {
    let text = amount.to_string();
    let suffix = format!(" {}", amount.currency.code());
    text.strip_suffix(&suffix).map(str::to_owned).unwrap_or(text)
}

fn price_table(
    def: &mut ProductDef,
    context: &ProductContext<'_>,
) -> Result<BTreeMap<(String, u8), Money>, DocumentError> {
    if def.prices.is_empty() {
        return Err(DocumentError::NoPrice { product: clip(&def.code) });
    }
    if def.prices.len() > PRICES_PER_PRODUCT_MAX {
        return Err(DocumentError::TooMany { what: "prices per product", max: PRICES_PER_PRODUCT_MAX });
    }
    let item = Item::new(ItemKind::Product, &def.code);
    let mut prices = BTreeMap::new();
    for entry in &mut def.prices {
        if !context.discounts.contains_key(&entry.discount) {
            return Err(DocumentError::UnknownDiscount { item, discount: clip(&entry.discount) });
        }
        let zones = price_zone_count(&def.code, def.zones, entry, context.zone_count)?;
        let price = parse_amount(&item, "amount", &entry.amount, context.network.currency)?;
        if price.amount_minor < 0 {
            return Err(DocumentError::NegativePrice {
                product: clip(&def.code),
                discount: clip(&entry.discount),
                amount: clip(&entry.amount),
            });
        }
        entry.amount = major_text(price);
        if prices.insert((entry.discount.clone(), zones), price).is_some() {
            return Err(DocumentError::DuplicatePrice {
                product: clip(&def.code),
                discount: clip(&entry.discount),
                zones: entry.zones,
            });
        }
    }
    Ok(prices)
}

/// The zone count of a price entry as a table key: 1..=zones for products sold by zones,
/// 0 for products covering every zone.
fn price_zone_count(product: &str, scope: ZoneScope, entry: &PriceDef, zone_count: usize) -> Result<u8, DocumentError> {
    let problem = |message: String| DocumentError::PriceZones {
        product: clip(product),
        discount: clip(&entry.discount),
        message,
    };
    match (scope, entry.zones) {
        (ZoneScope::All, None) => Ok(0),
        (ZoneScope::All, Some(_)) => {
            Err(problem("the product covers every zone: give one price per discount, without `zones`".to_owned()))
        }
        (ZoneScope::Chosen, None) => {
            Err(problem("the product is sold by zones: give `zones`, the zone count".to_owned()))
        }
        (ZoneScope::Chosen, Some(count)) if count == 0 || usize::from(count) > zone_count => {
            Err(problem(format!("`zones` is {count}; the network has {zone_count} zone(s)")))
        }
        (ZoneScope::Chosen, Some(count)) => Ok(count),
    }
}
