//! Every rule a network document and a quote request must follow, each broken once: the
//! error names the item at fault.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
// Amounts in minor units are grouped as koruna_haléř (700_00 is 700.00 CZK).
#![allow(clippy::inconsistent_digit_grouping)]

use chrono::NaiveDate;
use smartticket_catalog::{Catalog, CatalogDocument, DocumentError, ItemKind, QuoteError, QuoteRequest, ZoneChoice};
use smartticket_core::{Currency, Money, Timestamp};

const BASE: &str = r#"
[network]
name = "Test network"
currency = "CZK"
timezone = "Europe/Prague"
start_days_ahead_max = 30
single_fare_minutes = 45

[[zones]]
code = 1
name = "Centre"

[[zones]]
code = 2
name = "Suburbs"

[[zones]]
code = 3
name = "Outskirts"

[[combi_zones]]
code = "CITY"
name = "City"
zones = [1, 2]

[[routes]]
code = "L1"
name = "Line 1"
zones = [1, 2, 3]

[[discounts]]
code = "adult"
card_code = 0
name = "Adult"

[[discounts]]
code = "student"
card_code = 1
name = "Student"
approval = true

[[products]]
code = "week"
card_code = 100
name = "Week"
kind = "time_coupon"
period = { weeks = 1 }
zones = "chosen"
prices = [
    { discount = "adult", zones = 1, amount = "100" },
    { discount = "adult", zones = 2, amount = "150.5" },
]
"#;

fn base() -> CatalogDocument {
    CatalogDocument::from_toml(BASE).unwrap()
}

fn refused(document: CatalogDocument) -> DocumentError {
    Catalog::from_document(document).expect_err("the document must be refused")
}

fn with_product(extra: &str) -> Result<Catalog, DocumentError> {
    Catalog::from_toml(&format!("{BASE}\n{extra}"))
}

#[test]
fn the_base_document_is_valid_and_amounts_are_normalised() {
    let catalog = Catalog::from_document(base()).unwrap();
    let amounts: Vec<&str> = catalog.document().products[0].prices.iter().map(|p| p.amount.as_str()).collect();
    assert_eq!(amounts, ["100.00", "150.50"]);
    assert_eq!(catalog.product("week").unwrap().price("adult", Some(2)), Some(Money::new(15050, Currency::CZK)));
}

#[test]
fn zone_codes_must_fit_the_card_bitmap_and_be_unique() {
    let mut doc = base();
    doc.zones[2].code = 33;
    assert_eq!(refused(doc), DocumentError::ZoneOutOfRange { code: 33 });
    let mut doc = base();
    doc.zones[2].code = 0;
    assert_eq!(refused(doc), DocumentError::ZoneOutOfRange { code: 0 });
    let mut doc = base();
    doc.zones[2].code = 2;
    assert!(matches!(refused(doc), DocumentError::DuplicateCode { kind: ItemKind::Zone, code } if code == "2"));
    let mut doc = base();
    doc.zones.clear();
    assert!(matches!(refused(doc), DocumentError::Empty { field: "zones", .. }));
}

#[test]
fn references_must_name_declared_items() {
    let mut doc = base();
    doc.combi_zones[0].zones.insert(9);
    let err = refused(doc);
    assert_eq!(err.to_string(), "combi-zone `CITY`: zone 9 is not declared in `zones`");
    let mut doc = base();
    doc.routes[0].zones.push(7);
    assert_eq!(refused(doc).to_string(), "route `L1`: zone 7 is not declared in `zones`");
    let mut doc = base();
    doc.products[0].prices[0].discount = "pensioner".into();
    assert_eq!(refused(doc).to_string(), "product `week`: discount `pensioner` is not declared in `discounts`");
}

#[test]
fn codes_are_unique_and_plain() {
    let mut doc = base();
    doc.discounts[1].code = "adult".into();
    assert!(matches!(refused(doc), DocumentError::DuplicateCode { kind: ItemKind::Discount, .. }));
    let mut doc = base();
    let copy = doc.products[0].clone();
    doc.products.push(copy);
    assert_eq!(refused(doc).to_string(), "product `week` is declared twice");
    // Card codes too: a validator reading a contract must find exactly one product.
    let mut doc = base();
    let mut copy = doc.products[0].clone();
    copy.code = "week2".into();
    doc.products.push(copy);
    assert_eq!(refused(doc).to_string(), "product `week2`: card code 100 is already used by `week`");
    let mut doc = base();
    doc.discounts[1].card_code = 0;
    assert!(matches!(refused(doc), DocumentError::DuplicateCardCode { kind: ItemKind::Discount, card_code: 0, .. }));
    let mut doc = base();
    doc.products[0].card_code = 0;
    assert!(refused(doc).to_string().contains("card_code"), "0 marks an empty slot");
    let mut doc = base();
    doc.combi_zones[0].code = "city centre".into();
    assert!(matches!(refused(doc), DocumentError::BadCode { kind: ItemKind::CombiZone, .. }));
    let mut doc = base();
    doc.routes[0].name = "  ".into();
    assert_eq!(refused(doc).to_string(), "route `L1`: `name` must not be empty");
}

#[test]
fn routes_do_not_repeat_a_zone_in_a_row() {
    let mut doc = base();
    doc.routes[0].zones = vec![1, 2, 2, 3];
    assert!(refused(doc).to_string().contains("repeats a zone in a row"));
    let mut doc = base();
    doc.routes[0].zones = vec![1, 2, 1];
    Catalog::from_document(doc).expect("a line may come back through a zone");
}

#[test]
fn the_timezone_must_exist() {
    let mut doc = base();
    doc.network.timezone = "Europe/Olomouc".into();
    assert_eq!(refused(doc), DocumentError::UnknownTimezone("Europe/Olomouc".into()));
}

#[test]
fn prices_must_exist_be_amounts_and_not_be_negative() {
    let mut doc = base();
    doc.products[0].prices.clear();
    assert_eq!(refused(doc).to_string(), "product `week` has no price: add at least one entry to `prices`");
    let mut doc = base();
    doc.products[0].prices[0].amount = "-1.00".into();
    assert!(matches!(refused(doc), DocumentError::NegativePrice { product, .. } if product == "week"));
    let mut doc = base();
    doc.products[0].prices[0].amount = "1.005".into();
    assert!(matches!(refused(doc), DocumentError::BadAmount { field: "amount", .. }));
    let mut doc = base();
    doc.products[0].prices[0].amount = "12.5e1".into();
    assert!(matches!(refused(doc), DocumentError::BadAmount { .. }));
    let mut doc = base();
    doc.products[0].prices[1].zones = Some(1);
    assert!(matches!(refused(doc), DocumentError::DuplicatePrice { zones: Some(1), .. }));
}

#[test]
fn price_zone_counts_match_the_product_scope() {
    let mut doc = base();
    doc.products[0].prices[0].zones = None;
    assert!(matches!(refused(doc), DocumentError::PriceZones { .. }));
    let mut doc = base();
    doc.products[0].prices[0].zones = Some(4);
    assert!(refused(doc).to_string().contains("the network has 3 zone(s)"));
    let err = with_product(
        r#"[[products]]
code = "net"
card_code = 101
name = "Network day"
kind = "time_coupon"
period = { days = 1 }
zones = "all"
prices = [ { discount = "adult", zones = 1, amount = "10.00" } ]"#,
    )
    .unwrap_err();
    assert!(matches!(err, DocumentError::PriceZones { .. }), "{err}");
}

#[test]
fn products_carry_exactly_their_kinds_fields() {
    let err = with_product(
        r#"[[products]]
code = "month"
card_code = 102
name = "Month"
kind = "time_coupon"
prices = [ { discount = "adult", amount = "10.00" } ]"#,
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "product `month`: kind time_coupon needs `period`");
    let err = with_product(
        r#"[[products]]
code = "single"
card_code = 103
name = "Single"
kind = "single_fare"
trips = 10
prices = [ { discount = "adult", amount = "10.00" } ]"#,
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "product `single`: `trips` does not apply to kind single_fare");
    let err = with_product(
        r#"[[products]]
code = "long"
card_code = 104
name = "Long"
kind = "time_coupon"
period = { months = 13 }
prices = [ { discount = "adult", amount = "10.00" } ]"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("`period` must be between 1 and 12"), "{err}");
    let err = with_product(
        r#"[[products]]
code = "two"
card_code = 105
name = "Two"
kind = "time_coupon"
period = { months = 1, days = 3 }
prices = [ { discount = "adult", amount = "10.00" } ]"#,
    )
    .unwrap_err();
    assert!(matches!(err, DocumentError::Syntax { format: "TOML", line: 59, .. }), "{err}");
    assert!(err.to_string().contains("exactly one of { days = n }"), "{err}");
}

#[test]
fn stored_value_limits_are_ordered_and_have_no_table() {
    let purse = |min: &str, max: &str, extra: &str| {
        with_product(&format!(
            "[[products]]\ncode = \"purse\"\ncard_code = 90\nname = \"Purse\"\nkind = \"stored_value\"\namount_min = \"{min}\"\namount_max = \"{max}\"\n{extra}"
        ))
    };
    purse("1.00", "5000.00", "").unwrap();
    let err = purse("100.00", "50.00", "").unwrap_err();
    assert_eq!(err.to_string(), "product `purse`: amount_min 100.00 CZK is greater than amount_max 50.00 CZK");
    assert!(matches!(purse("-1.00", "5.00", "").unwrap_err(), DocumentError::Field { field: "amount_min", .. }));
    assert!(matches!(
        purse("1.00", "5.00", "prices = [ { discount = \"adult\", amount = \"1.00\" } ]").unwrap_err(),
        DocumentError::KindField { field: "prices", needed: false, .. }
    ));
    assert!(matches!(
        purse("1.00", "5.00", "zones = \"chosen\"").unwrap_err(),
        DocumentError::Field { field: "zones", .. }
    ));
}

#[test]
fn events_end_after_they_start() {
    let err = with_product(
        r#"[[products]]
code = "gig"
card_code = 106
name = "Gig"
kind = "event"
ticket_server = "tickets.example"
event = "G1"
starts = "2027-05-01T20:00:00+02:00"
ends = "2027-05-01T18:00:00+02:00"
prices = [ { discount = "adult", amount = "10.00" } ]"#,
    )
    .unwrap_err();
    assert!(matches!(err, DocumentError::EventWindow { .. }), "{err}");
}

// ---- quoting ----

fn today() -> NaiveDate {
    "2026-11-21".parse().unwrap()
}

fn now() -> Timestamp {
    Timestamp::parse_rfc3339("2026-11-21T10:00:00Z").unwrap()
}

fn quote(zones: ZoneChoice, start_date: Option<&str>) -> Result<smartticket_catalog::Quote, QuoteError> {
    let request = QuoteRequest {
        product: "week".into(),
        discount: "adult".into(),
        zones,
        start_date: start_date.map(|d| d.parse().unwrap()),
        amount_minor: None,
    };
    Catalog::from_document(base()).unwrap().quote(&request, today(), now())
}

#[test]
fn quote_zone_choices_are_checked() {
    assert_eq!(quote(ZoneChoice::Zones(vec![2]), None).unwrap().price, Money::new(10000, Currency::CZK));
    assert_eq!(quote(ZoneChoice::Combi("CITY".into()), None).unwrap().price, Money::new(15050, Currency::CZK));
    assert_eq!(quote(ZoneChoice::All, None), Err(QuoteError::ZonesRequired("week".into())));
    assert_eq!(quote(ZoneChoice::Zones(vec![]), None), Err(QuoteError::ZonesRequired("week".into())));
    assert_eq!(quote(ZoneChoice::Zones(vec![1, 1]), None), Err(QuoteError::DuplicateZone(1)));
    assert_eq!(quote(ZoneChoice::Zones(vec![4]), None), Err(QuoteError::UnknownZone(4)));
    assert_eq!(quote(ZoneChoice::Combi("TOWN".into()), None), Err(QuoteError::UnknownCombiZone("TOWN".into())));
    let three = quote(ZoneChoice::Zones(vec![1, 2, 3]), None).unwrap_err();
    assert_eq!(three, QuoteError::NoPriceForZones { product: "week".into(), discount: "adult".into(), zones: 3 });
    assert_eq!(three.field(), "zones");
}

#[test]
fn quote_start_dates_are_bounded() {
    let week = quote(ZoneChoice::Zones(vec![1]), Some("2026-12-21")).unwrap();
    assert_eq!(week.valid_from.unwrap().to_rfc3339(), "2026-12-20T23:00:00.000000Z");
    assert_eq!(week.valid_until.unwrap().to_rfc3339(), "2026-12-27T23:00:00.000000Z");
    let past = quote(ZoneChoice::Zones(vec![1]), Some("2026-11-20")).unwrap_err();
    assert!(matches!(past, QuoteError::StartInPast { .. }));
    assert_eq!(past.field(), "start_date");
    let far = quote(ZoneChoice::Zones(vec![1]), Some("2026-12-22")).unwrap_err();
    assert!(matches!(far, QuoteError::StartTooFarAhead { latest, .. } if latest.to_string() == "2026-12-21"));
}

#[test]
fn quote_products_and_discounts_must_exist_and_be_offered() {
    let catalog = Catalog::from_document(base()).unwrap();
    let mut request = QuoteRequest {
        product: "week".into(),
        discount: "student".into(),
        zones: ZoneChoice::Zones(vec![1]),
        start_date: None,
        amount_minor: None,
    };
    let err = catalog.quote(&request, today(), now()).unwrap_err();
    assert_eq!(err, QuoteError::NotOffered { product: "week".into(), discount: "student".into() });
    request.discount = "nobody".into();
    assert_eq!(catalog.quote(&request, today(), now()), Err(QuoteError::UnknownDiscount("nobody".into())));
    request.discount = "adult".into();
    request.amount_minor = Some(100);
    assert_eq!(catalog.quote(&request, today(), now()), Err(QuoteError::AmountNotApplicable("week".into())));
    request.product = "x".repeat(10_000);
    let err = catalog.quote(&request, today(), now()).unwrap_err();
    assert!(err.to_string().len() < 100, "untrusted input is not echoed in full");
}

#[test]
fn quote_stored_value_takes_the_amount_within_limits() {
    let catalog = with_product(
        "[[products]]\ncode = \"purse\"\ncard_code = 90\nname = \"Purse\"\nkind = \"stored_value\"\namount_min = \"1\"\namount_max = \"5000\"",
    )
    .unwrap();
    let request = |amount_minor| QuoteRequest {
        product: "purse".into(),
        discount: "student".into(),
        zones: ZoneChoice::All,
        start_date: None,
        amount_minor,
    };
    let quote = catalog.quote(&request(Some(250_00)), today(), now()).unwrap();
    assert_eq!(quote.price, Money::new(250_00, Currency::CZK));
    assert_eq!((quote.valid_from, quote.valid_until), (None, None));
    assert!(quote.requires_approval);
    assert_eq!(catalog.quote(&request(None), today(), now()), Err(QuoteError::AmountRequired("purse".into())));
    assert!(matches!(catalog.quote(&request(Some(99)), today(), now()), Err(QuoteError::AmountOutOfRange { .. })));
    assert!(matches!(catalog.quote(&request(Some(500_001)), today(), now()), Err(QuoteError::AmountOutOfRange { .. })));
    let mut dated = request(Some(100));
    dated.start_date = Some(today());
    assert_eq!(catalog.quote(&dated, today(), now()), Err(QuoteError::StartDateNotApplicable("purse".into())));
}

#[test]
fn quote_events_stop_selling_when_they_end() {
    let catalog = with_product(
        r#"[[products]]
code = "gig"
card_code = 107
name = "Gig"
kind = "event"
ticket_server = "tickets.example"
event = "G1"
starts = "2026-11-21T18:00:00+01:00"
ends = "2026-11-21T23:00:00+01:00"
prices = [ { discount = "adult", amount = "30.00" } ]"#,
    )
    .unwrap();
    let request = QuoteRequest {
        product: "gig".into(),
        discount: "adult".into(),
        zones: ZoneChoice::All,
        start_date: None,
        amount_minor: None,
    };
    let quote = catalog.quote(&request, today(), now()).unwrap();
    assert_eq!(quote.zones, vec![1, 2, 3]);
    let late = Timestamp::parse_rfc3339("2026-11-21T22:00:00Z").unwrap();
    assert!(matches!(catalog.quote(&request, today(), late), Err(QuoteError::EventOver { .. })));
    let mut zoned = request.clone();
    zoned.zones = ZoneChoice::Zones(vec![1]);
    assert_eq!(catalog.quote(&zoned, today(), now()), Err(QuoteError::ZonesNotApplicable("gig".into())));
}

#[test]
fn quote_requests_refuse_unknown_fields() {
    let ok: QuoteRequest = serde_json::from_str(
        r#"{"product":"week","discount":"adult","zones":{"combi":"CITY"},"start_date":"2026-11-22"}"#,
    )
    .unwrap();
    assert_eq!(ok.zones, ZoneChoice::Combi("CITY".into()));
    let all: QuoteRequest = serde_json::from_str(r#"{"product":"p","discount":"d"}"#).unwrap();
    assert_eq!(all.zones, ZoneChoice::All);
    assert!(serde_json::from_str::<QuoteRequest>(r#"{"product":"p","discount":"d","price":1}"#).is_err());
}
