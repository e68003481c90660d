//! `CatalogDocument::from_toml` and `from_json` on arbitrary UTF-8 (tariff documents are
//! uploaded through the API), then `Catalog::from_document` on whatever parses. Never
//! panics; a valid catalogue's canonical JSON parses and re-validates, to the same canonical
//! text (the stored SHA-256 depends on it); and quoting a few fixed requests against it
//! never panics, while a quote it gives is in the network's currency with sorted zones and
//! a non-empty validity window.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smartticket_catalog::{Catalog, CatalogDocument, NaiveDate, QuoteRequest, ZoneChoice};
use smartticket_core::Timestamp;

/// 2026-11-21T08:00:00Z, a Saturday morning in Europe.
const NOW_MICROS: i64 = 1_795_248_000_000_000;

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    for document in [CatalogDocument::from_toml(text), CatalogDocument::from_json(text)].into_iter().flatten() {
        if let Ok(catalog) = Catalog::from_document(document) {
            check(&catalog);
        }
    }
});

fn check(catalog: &Catalog) {
    let canonical = catalog.document().to_canonical_json();
    let reread = CatalogDocument::from_json(&canonical)
        .unwrap_or_else(|e| panic!("canonical JSON does not parse: {e}\n{canonical}"));
    let again = Catalog::from_document(reread)
        .unwrap_or_else(|e| panic!("canonical document does not validate: {e}\n{canonical}"));
    assert_eq!(again.document().to_canonical_json(), canonical, "canonical JSON is not stable");

    let now = Timestamp::from_unix_micros(NOW_MICROS).expect("a representable instant");
    let today = NaiveDate::from_ymd_opt(2026, 11, 21).expect("a real date");
    let document = catalog.document();
    let product = document.products.first().map(|p| p.code.clone()).unwrap_or_default();
    let discount = document.discounts.first().map(|d| d.code.clone()).unwrap_or_default();
    let requests = [
        (ZoneChoice::All, None, None),
        (ZoneChoice::Zones(vec![1]), None, None),
        (ZoneChoice::All, today.succ_opt(), None),
        (ZoneChoice::Zones(vec![1]), Some(today), None),
        (ZoneChoice::All, None, Some(100)),
    ];
    for (zones, start_date, amount_minor) in requests {
        let request =
            QuoteRequest { product: product.clone(), discount: discount.clone(), zones, start_date, amount_minor };
        let Ok(quote) = catalog.quote(&request, today, now) else {
            continue;
        };
        assert_eq!(quote.price.currency, catalog.currency(), "quoted in another currency");
        assert!(quote.zones.windows(2).all(|pair| pair[0] < pair[1]), "zones not sorted and distinct");
        if let (Some(from), Some(until)) = (quote.valid_from, quote.valid_until) {
            assert!(from < until, "empty validity {from:?}..{until:?} for {request:?}");
        }
    }
}
