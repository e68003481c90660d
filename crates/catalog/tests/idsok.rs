//! The IDSOK example network: it imports, and every product quotes with sensible prices
//! and validity; random requests only ever get prices from the table.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
// Amounts in minor units are grouped as koruna_haléř (700_00 is 700.00 CZK).
#![allow(clippy::inconsistent_digit_grouping)]

use chrono::NaiveDate;
use proptest::prelude::*;
use smartticket_catalog::{Catalog, CatalogDocument, ProductKind, ProductTerms, QuoteRequest, ZoneChoice, ZoneScope};
use smartticket_core::{Currency, Money, Timestamp};

const IDSOK: &str = include_str!("../../../examples/networks/idsok.toml");

fn idsok() -> Catalog {
    Catalog::from_toml(IDSOK).expect("the example network is valid")
}

fn date(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

/// 21 November 2026, 09:30 in Olomouc.
fn now() -> Timestamp {
    at("2026-11-21T08:30:00Z")
}

fn today() -> NaiveDate {
    date("2026-11-21")
}

fn czk(amount_minor: i64) -> Money {
    Money::new(amount_minor, Currency::CZK)
}

fn request(product: &str, discount: &str, zones: ZoneChoice) -> QuoteRequest {
    QuoteRequest { product: product.into(), discount: discount.into(), zones, start_date: None, amount_minor: None }
}

#[test]
fn the_example_imports_with_everything_the_brief_lists() {
    let catalog = idsok();
    assert_eq!(catalog.currency(), Currency::CZK);
    assert_eq!(catalog.timezone().name(), "Europe/Prague");
    assert_eq!(catalog.zones().len(), 8);
    assert_eq!(catalog.combi_zone("OLOMOUC"), Some(&[1_u8, 2][..]));
    let approvals: Vec<(&str, bool)> = catalog.discounts().map(|d| (d.code.as_str(), d.approval)).collect();
    assert_eq!(approvals, [("adult", false), ("child", false), ("senior", true), ("student", true)]);
    let kinds: Vec<ProductKind> = catalog.products().map(|p| p.kind).collect();
    for kind in [
        ProductKind::SingleFare,
        ProductKind::TimeCoupon,
        ProductKind::Trips,
        ProductKind::StoredValue,
        ProductKind::Event,
    ] {
        assert!(kinds.contains(&kind), "{kind} missing");
    }
    assert_eq!(catalog.document().routes.len(), 5);
}

#[test]
fn every_product_quotes() {
    let catalog = idsok();
    for product in catalog.products() {
        let zones = match product.zones {
            ZoneScope::Chosen => ZoneChoice::Combi("OLOMOUC".into()),
            ZoneScope::All => ZoneChoice::All,
        };
        let mut request = request(&product.code, "adult", zones);
        if product.kind == ProductKind::StoredValue {
            request.amount_minor = Some(50_000);
        }
        let quote = catalog.quote(&request, today(), now()).unwrap_or_else(|e| panic!("{}: {e}", product.code));
        assert_eq!(quote.product, product.code);
        assert_eq!(quote.catalog_version, None, "not from the store");
        assert!(quote.price.amount_minor > 0, "{}", product.code);
        if let (Some(from), Some(until)) = (quote.valid_from, quote.valid_until) {
            assert!(until > from, "{}", product.code);
        }
    }
}

#[test]
fn prices_follow_zones_and_discounts() {
    let catalog = idsok();
    let city =
        catalog.quote(&request("monthly", "adult", ZoneChoice::Combi("OLOMOUC".into())), today(), now()).unwrap();
    assert_eq!(city.zones, vec![1, 2]);
    assert_eq!(city.price, czk(700_00));
    let same = catalog.quote(&request("monthly", "adult", ZoneChoice::Zones(vec![2, 1])), today(), now()).unwrap();
    assert_eq!(same.price, city.price, "a combi-zone costs what its zones cost");
    assert_eq!(same.zones, vec![1, 2], "zones come back sorted");
    let student = catalog.quote(&request("monthly", "student", ZoneChoice::Zones(vec![1, 2])), today(), now()).unwrap();
    assert_eq!(student.price, czk(350_00));
    assert!(student.requires_approval);
    assert!(!city.requires_approval);
    let whole =
        catalog.quote(&request("monthly", "adult", ZoneChoice::Zones((1..=8).collect())), today(), now()).unwrap();
    assert_eq!(whole.price, czk(1_600_00));
}

#[test]
fn validity_is_computed_from_the_chosen_start_date() {
    let catalog = idsok();
    let mut monthly = request("monthly", "adult", ZoneChoice::Combi("OLOMOUC".into()));
    monthly.start_date = Some(date("2027-01-31"));
    assert!(catalog.quote(&monthly, today(), now()).is_err(), "more than 60 days ahead");
    let quote = catalog.quote(&monthly, date("2027-01-10"), at("2027-01-10T08:00:00Z")).unwrap();
    // 31 January 00:00 CET until 28 February 00:00 CET: the coupon's last day is 27 February.
    assert_eq!(quote.valid_from, Some(at("2027-01-30T23:00:00Z")));
    assert_eq!(quote.valid_until, Some(at("2027-02-27T23:00:00Z")));

    let mut day = request("day", "child", ZoneChoice::Zones(vec![1]));
    day.start_date = Some(date("2026-11-21"));
    let quote = catalog.quote(&day, today(), now()).unwrap();
    assert_eq!(quote.valid_from, Some(at("2026-11-20T23:00:00Z")));
    assert_eq!(quote.valid_until, Some(at("2026-11-21T23:00:00Z")));

    let trips = catalog.quote(&request("trips10", "adult", ZoneChoice::Zones(vec![1])), today(), now()).unwrap();
    assert_eq!(trips.trips, Some(10));
    assert_eq!(trips.valid_until, Some(at("2027-02-18T23:00:00Z")), "90 days from 21 November");

    let single = catalog.quote(&request("single", "adult", ZoneChoice::Zones(vec![1])), today(), now()).unwrap();
    assert_eq!(single.valid_from, Some(now()));
    assert_eq!(single.valid_until, Some(at("2026-11-21T09:30:00Z")));

    let event = catalog.quote(&request("flora2027", "child", ZoneChoice::All), today(), now()).unwrap();
    assert_eq!(event.valid_from, Some(at("2027-04-21T22:00:00Z")));
    assert_eq!(event.zones, (1..=8).collect::<Vec<u8>>());
    assert_eq!(event.price, czk(60_00));
}

#[test]
fn the_example_round_trips_through_canonical_json() {
    let catalog = idsok();
    let json = catalog.document().to_canonical_json();
    let again = Catalog::from_document(CatalogDocument::from_json(&json).unwrap()).unwrap();
    assert_eq!(again.document(), catalog.document());
    assert_eq!(again.document().to_canonical_json(), json);
}

fn any_zone_choice() -> impl Strategy<Value = ZoneChoice> {
    prop_oneof![
        1 => Just(ZoneChoice::All),
        3 => prop::collection::btree_set(1_u8..=8, 1..=8)
            .prop_flat_map(|set| Just(set.into_iter().collect::<Vec<u8>>()).prop_shuffle())
            .prop_map(ZoneChoice::Zones),
        1 => prop::collection::vec(0_u8..=10, 0..10).prop_map(ZoneChoice::Zones),
        2 => prop::sample::select(vec!["OLOMOUC", "OLOMOUC-STERNBERK", "OLOMOUC-PREROV", "NOWHERE"])
            .prop_map(|c| ZoneChoice::Combi(c.to_owned())),
    ]
}

fn any_request() -> impl Strategy<Value = QuoteRequest> {
    let products =
        vec!["single", "day", "week", "days30", "monthly", "quarterly", "trips10", "purse", "flora2027", "nope"];
    let discounts = vec!["adult", "child", "student", "senior", "nope"];
    (
        prop::sample::select(products),
        prop::sample::select(discounts),
        any_zone_choice(),
        prop::option::of(-5_i64..80),
        prop::option::weighted(0.2, -100_i64..600_000),
    )
        .prop_map(|(product, discount, zones, offset, amount_minor)| QuoteRequest {
            product: product.to_owned(),
            discount: discount.to_owned(),
            zones,
            start_date: offset.map(|days| today() + chrono::Duration::days(days)),
            amount_minor,
        })
}

proptest! {
    #[test]
    fn every_quote_is_priced_from_the_table_and_valid_for_a_while(request in any_request(), minutes in 0_i64..(500 * 24 * 60)) {
        let catalog = idsok();
        let now = now().checked_add(chrono::Duration::minutes(minutes)).unwrap();
        let today = catalog.local_date(now);
        let Ok(quote) = catalog.quote(&request, today, now) else { return Ok(()) };
        let product = catalog.product(&quote.product).unwrap();
        match &product.terms {
            ProductTerms::StoredValue { min, max } => {
                prop_assert_eq!(Some(quote.price.amount_minor), request.amount_minor);
                prop_assert!(min.amount_minor <= quote.price.amount_minor);
                prop_assert!(quote.price.amount_minor <= max.amount_minor);
            }
            _ => {
                let table: Vec<Money> = product.prices().filter(|p| p.discount == quote.discount).map(|p| p.price).collect();
                prop_assert!(table.contains(&quote.price), "{:?} not in {:?}", quote.price, table);
                let zones = match product.zones { ZoneScope::Chosen => u8::try_from(quote.zones.len()).ok(), ZoneScope::All => None };
                prop_assert_eq!(product.price(&quote.discount, zones), Some(quote.price));
            }
        }
        if let (Some(from), Some(until)) = (quote.valid_from, quote.valid_until) {
            prop_assert!(until > from);
        }
        if let Some(start) = request.start_date {
            prop_assert!(start >= today);
            let from = quote.valid_from.unwrap();
            prop_assert_eq!(catalog.local_date(from), start);
        }
        prop_assert!(quote.zones.windows(2).all(|w| w[0] < w[1]), "zones sorted and distinct");
    }
}
