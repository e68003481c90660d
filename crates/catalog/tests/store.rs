//! Catalogue versions on SQLite and PostgreSQL: publishing, the version in force on a
//! date, refusals that store nothing, and the audit trail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
// Amounts in minor units are grouped as koruna_haléř (700_00 is 700.00 CZK).
#![allow(clippy::inconsistent_digit_grouping)]

use std::sync::Arc;

use chrono::NaiveDate;
use smartticket_catalog::{CatalogDocument, CatalogError, CatalogStore, QuoteRequest, ZoneChoice};
use smartticket_core::id::CatalogVersionId;
use smartticket_core::paging::PageRequest;
use smartticket_core::{Clock, Currency, ManualClock, Money, Timestamp};
use smartticket_identity::AuditCtx;
use smartticket_identity::audit::{self, AuditFilter};
use smartticket_store::{Db, sql};

const IDSOK: &str = include_str!("../../../examples/networks/idsok.toml");

fn date(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

/// The example network with the adult two-zone monthly coupon at `amount`.
fn idsok_with_monthly(amount: &str) -> CatalogDocument {
    let mut document = CatalogDocument::from_toml(IDSOK).unwrap();
    let monthly = document.products.iter_mut().find(|p| p.code == "monthly").unwrap();
    let price = monthly.prices.iter_mut().find(|p| p.discount == "adult" && p.zones == Some(2)).unwrap();
    price.amount = amount.to_owned();
    document
}

/// A store whose clock reads 21 November 2026, 09:00 in Olomouc.
fn service(db: &Db) -> (CatalogStore, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(at("2026-11-21T08:00:00Z")));
    (CatalogStore::new(db.clone(), clock.clone()), clock)
}

fn operator() -> AuditCtx {
    AuditCtx::system("test")
}

fn city_monthly() -> QuoteRequest {
    QuoteRequest {
        product: "monthly".into(),
        discount: "adult".into(),
        zones: ZoneChoice::Combi("OLOMOUC".into()),
        start_date: None,
        amount_minor: None,
    }
}

async fn stored_versions(db: &Db) -> i64 {
    sql!(db.reader(), |c| sqlx::query_scalar("SELECT count(*) FROM catalog_versions").fetch_one(c).await).unwrap()
}

async fn publish_entries(db: &Db) -> Vec<audit::AuditEntry> {
    let filter = AuditFilter { action: Some("catalog.publish".into()), ..AuditFilter::default() };
    audit::list(db, &filter, &PageRequest::default().spec().unwrap()).await.unwrap().items
}

smartticket_store::backend_tests! {
    async fn the_version_in_force_is_the_latest_effective_on_or_before_the_date(db) {
        let (catalog, _) = service(&db);
        let first = catalog.publish(&operator(), idsok_with_monthly("700.00"), date("2026-01-01"), "first tariff").await.unwrap();
        let second = catalog.publish(&operator(), idsok_with_monthly("750.00"), date("2026-12-01"), "price rise").await.unwrap();
        assert!(matches!(catalog.effective_on(date("2025-12-31")).await, Err(CatalogError::NoCatalog(_))));
        for (day, expected) in [("2026-01-01", first.id), ("2026-11-30", first.id), ("2026-12-01", second.id), ("2030-01-01", second.id)] {
            let (info, in_force) = catalog.in_force_on(date(day)).await.unwrap();
            assert_eq!(info.id, expected, "{day}");
            assert_eq!(in_force.version(), Some(expected), "{day}");
        }
        let again = catalog.effective_on(date("2026-06-01")).await.unwrap();
        let once_more = catalog.effective_on(date("2026-07-01")).await.unwrap();
        assert!(Arc::ptr_eq(&again, &once_more), "parsed catalogues are cached by version");
        assert_eq!(second.effective_from, date("2026-12-01"));
        assert_eq!(second.note, "price rise");
        assert_eq!(second.published_by, "test");
        assert_eq!(second.document_sha256.len(), 64);
    }

    async fn a_future_price_change_never_alters_todays_quote(db) {
        let (catalog, clock) = service(&db);
        let first = catalog.publish(&operator(), idsok_with_monthly("700.00"), date("2026-11-01"), "").await.unwrap();
        let before = catalog.quote(&city_monthly(), clock.now()).await.unwrap();
        let second = catalog.publish(&operator(), idsok_with_monthly("750.00"), date("2026-12-01"), "").await.unwrap();
        let after = catalog.quote(&city_monthly(), clock.now()).await.unwrap();
        assert_eq!(after, before, "publishing a future version changes nothing today");
        assert_eq!(after.catalog_version, Some(first.id));
        assert_eq!(after.price, Money::new(700_00, Currency::CZK));
        // 30 November 23:59 in Olomouc is still the old tariff; 1 December 00:00 the new one.
        clock.set(at("2026-11-30T22:59:59Z"));
        assert_eq!(catalog.quote(&city_monthly(), clock.now()).await.unwrap().catalog_version, Some(first.id));
        clock.set(at("2026-11-30T23:00:00Z"));
        let new = catalog.quote(&city_monthly(), clock.now()).await.unwrap();
        assert_eq!(new.catalog_version, Some(second.id));
        assert_eq!(new.price, Money::new(750_00, Currency::CZK));
        assert_eq!(catalog.today().await.unwrap(), date("2026-12-01"));
    }

    async fn duplicates_and_back_dating_are_refused_and_store_nothing(db) {
        let (catalog, _) = service(&db);
        catalog.publish(&operator(), idsok_with_monthly("700.00"), date("2026-01-01"), "").await.unwrap();
        catalog.publish(&operator(), idsok_with_monthly("720.00"), date("2026-11-21"), "effective today").await.unwrap();
        let back = catalog.publish(&operator(), idsok_with_monthly("650.00"), date("2026-11-20"), "").await;
        assert!(matches!(back, Err(CatalogError::BackDated { today, .. }) if today == date("2026-11-21")), "{back:?}");
        let twice = catalog.publish(&operator(), idsok_with_monthly("800.00"), date("2026-11-21"), "").await;
        assert!(matches!(twice, Err(CatalogError::DuplicateDate(d)) if d == date("2026-11-21")), "{twice:?}");
        let mut bad = idsok_with_monthly("800.00");
        bad.zones[0].code = 40;
        let invalid = catalog.publish(&operator(), bad, date("2027-01-01"), "").await;
        assert!(matches!(invalid, Err(CatalogError::Document(_))), "{invalid:?}");
        let mut euros = idsok_with_monthly("800.00");
        euros.network.currency = Currency::EUR;
        let changed = catalog.publish(&operator(), euros, date("2027-01-01"), "").await;
        assert!(matches!(changed, Err(CatalogError::NetworkChanged { field: "currency", .. })), "{changed:?}");
        let long_note = "x".repeat(501);
        let noted = catalog.publish(&operator(), idsok_with_monthly("800.00"), date("2027-01-01"), &long_note).await;
        assert!(matches!(noted, Err(CatalogError::Invalid { field: "note", .. })), "{noted:?}");
        assert_eq!(stored_versions(&db).await, 2);
        assert_eq!(publish_entries(&db).await.len(), 2, "refusals leave no audit entry");
    }

    async fn publishing_is_audited_in_the_same_transaction(db) {
        let (catalog, _) = service(&db);
        let info = catalog.publish(&operator().with_reason(Some("yearly review")), idsok_with_monthly("700.00"), date("2027-01-01"), "2027 tariff").await.unwrap();
        let entries = publish_entries(&db).await;
        assert_eq!(entries.len(), 1);
        let entry = &entries[0];
        assert_eq!(entry.target_kind.as_deref(), Some("catalog_version"));
        assert_eq!(entry.target_id.as_deref(), Some(info.id.to_string().as_str()));
        assert_eq!(entry.actor_kind, "system");
        assert_eq!(entry.reason.as_deref(), Some("yearly review"));
        assert_eq!(entry.details["effective_from"], "2027-01-01");
        assert_eq!(entry.details["document_sha256"], info.document_sha256.as_str());
        assert_eq!(entry.details["first_version"], true);
        assert_eq!(entry.at, info.published_at);
    }

    async fn versions_are_immutable_in_the_database_itself(db) {
        let (catalog, _) = service(&db);
        catalog.publish(&operator(), idsok_with_monthly("700.00"), date("2027-01-01"), "").await.unwrap();
        let mut tx = db.begin().await.unwrap();
        let update = sql!(tx.conn(), |c| sqlx::query("UPDATE catalog_versions SET note = 'rewritten'").execute(c).await.map(|r| r.rows_affected()));
        assert!(update.is_err(), "UPDATE must be refused");
        drop(tx);
        let mut tx = db.begin().await.unwrap();
        let delete = sql!(tx.conn(), |c| sqlx::query("DELETE FROM catalog_versions").execute(c).await.map(|r| r.rows_affected()));
        assert!(delete.is_err(), "DELETE must be refused");
        drop(tx);
        assert_eq!(stored_versions(&db).await, 1);
    }

    async fn versions_page_newest_effective_first_and_load_by_id(db) {
        let (catalog, _) = service(&db);
        let mut published = Vec::new();
        for (day, amount) in [("2026-01-01", "700.00"), ("2026-12-01", "720.00"), ("2027-01-01", "740")] {
            published.push(catalog.publish(&operator(), idsok_with_monthly(amount), date(day), "").await.unwrap());
        }
        let first_page = catalog.versions(&PageRequest { limit: Some(2), cursor: None }.spec().unwrap()).await.unwrap();
        let days: Vec<String> = first_page.items.iter().map(|v| v.effective_from.to_string()).collect();
        assert_eq!(days, ["2027-01-01", "2026-12-01"]);
        let next = PageRequest { limit: Some(2), cursor: first_page.next_cursor.clone() };
        let second_page = catalog.versions(&next.spec().unwrap()).await.unwrap();
        assert_eq!(second_page.items.len(), 1);
        assert_eq!(second_page.items[0].id, published[0].id);
        assert_eq!(second_page.next_cursor, None);

        let (info, loaded) = catalog.version(published[2].id).await.unwrap();
        assert_eq!(info, published[2]);
        let monthly = loaded.product("monthly").unwrap();
        assert_eq!(monthly.price("adult", Some(2)), Some(Money::new(740_00, Currency::CZK)));
        let missing = CatalogVersionId::new();
        assert!(matches!(catalog.version(missing).await, Err(CatalogError::NotFound(id)) if id == missing));
    }

    async fn a_restarted_service_reads_what_was_published(db) {
        let (catalog, clock) = service(&db);
        let info = catalog.publish(&operator(), idsok_with_monthly("700.00"), date("2026-11-01"), "").await.unwrap();
        let (fresh, _) = service(&db);
        let quote = fresh.quote(&city_monthly(), clock.now()).await.unwrap();
        assert_eq!(quote.catalog_version, Some(info.id));
        let (_, loaded) = fresh.version(info.id).await.unwrap();
        assert_eq!(loaded.document().to_canonical_json().len(), loaded.document().to_canonical_json().trim().len());
        let stored: String = sql!(db.reader(), |c| sqlx::query_scalar("SELECT document FROM catalog_versions").fetch_one(c).await).unwrap();
        assert_eq!(stored, loaded.document().to_canonical_json(), "the stored text is the canonical JSON");
    }

    async fn nothing_published_means_no_catalogue(db) {
        let (catalog, clock) = service(&db);
        assert!(matches!(catalog.quote(&city_monthly(), clock.now()).await, Err(CatalogError::NoCatalog(_))));
        assert!(matches!(catalog.today().await, Err(CatalogError::NoCatalog(_))));
        let page = catalog.versions(&PageRequest::default().spec().unwrap()).await.unwrap();
        assert!(page.items.is_empty());
        // The first version may take effect in the past: a network starts with its real date.
        catalog.publish(&operator(), idsok_with_monthly("700.00"), date("2020-01-01"), "").await.unwrap();
        assert!(catalog.quote(&city_monthly(), clock.now()).await.is_ok());
    }
}
