//! Publishing lists from what was sold and blocked, on SQLite and PostgreSQL: a validator's
//! `ListHolder` accepts what the back office serves, full and delta; a block reaches the
//! next denylist; unchanged sources publish nothing; concurrent publishers agree; the XML
//! greenlist matches its schema.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::time::Duration;

use common::{PETRA_CARD_UID, PETRA_EXPIRY, PETRA_PAN, World, at, date, png};
use smartticket_acceptance::lists::{
    CouponFlags, DenyReason, Denylist, Greenlist, ListError, ListFile, ListHolder, ListKind, MediumKey,
};
use smartticket_catalog::ZoneChoice;
use smartticket_fleet::{Fleet, FleetError, FleetParts, GREENLIST_XSD, ListDownload, XmlDownload};
use smartticket_sales::discounts::{Approval, ApprovalMethod};
use smartticket_sales::entitlements::EntitlementStatus;
use smartticket_sales::media::Scope;
use smartticket_store::{Db, sql};

fn seconds(at: smartticket_core::Timestamp) -> u64 {
    u64::try_from(at.unix_micros() / 1_000_000).unwrap()
}

fn olomouc() -> ZoneChoice {
    ZoneChoice::Combi("OLOMOUC".into())
}

async fn delta(world: &World, kind: ListKind, since: u64) -> Vec<u8> {
    match world.fleet.list_file(kind, Some(since)).await.unwrap() {
        ListDownload::File { base_version, bytes, .. } if base_version == since => bytes.to_vec(),
        other => panic!("expected a delta from {since}, got {other:?}"),
    }
}

async fn count(db: &Db, query: &'static str) -> i64 {
    sql!(db.reader(), |c| sqlx::query_scalar(query).fetch_one(c).await).unwrap()
}

async fn xml_of(world: &World, since: Option<u64>) -> String {
    match world.fleet.greenlist_xml(since).await.unwrap() {
        XmlDownload::Document { xml, .. } => String::from_utf8(xml).unwrap(),
        other => panic!("expected a document, got {other:?}"),
    }
}

/// Petra's student discount, approved with her photo; answers the photo's stored JPEG.
async fn student_discount(world: &World) -> (smartticket_core::id::DiscountRequestId, Vec<u8>) {
    let ctx = world.customer_ctx();
    let photo = world.sales.upload_photo(&ctx, world.customer, &png(320, 400)).await.unwrap();
    let request = world.sales.request_discount(&ctx, world.customer, "student", photo.id, Some("ISIC")).await.unwrap();
    let approval =
        Approval { method: ApprovalMethod::DocumentAtCounter, document: None, valid_until: date("2027-06-30") };
    world.sales.approve_discount(&world.cashier_ctx(), world.cashier, request.id, &approval).await.unwrap();
    (request.id, world.sales.photo(None, photo.id).await.unwrap())
}

smartticket_store::backend_tests! {
    async fn a_coupon_sold_on_a_bank_card_is_greenlisted_and_a_validator_accepts_it(db) {
        let world = World::new(db).await;
        let month = world.item(world.bank_card, "monthly", "adult", olomouc(), "2026-12-01");
        let order = world.buy(&[month], "m1").await;
        let sold = &order.entitlements[0];
        assert_eq!(sold.status, EntitlementStatus::Active, "account-based media are in force at once");
        // The fare card's coupon travels on the card, not in the greenlist.
        world.buy(&[world.item(world.fare_card, "monthly", "adult", olomouc(), "2026-12-01")], "m2").await;

        let info = world.publish(ListKind::Greenlist).await;
        assert_eq!((info.version, info.entry_count, info.coupon_count), (1, 1, 1));
        let file = world.full_file(ListKind::Greenlist).await;
        assert_eq!(file.len() as u64, info.file_bytes);
        let mut holder = ListHolder::<Greenlist>::new();
        let installed = holder.offer(&file, &world.trusted()).unwrap();
        assert_eq!((installed.list_version, installed.entry_count), (1, 1));

        // The validator tokenises the card it reads and finds the coupon.
        let coupons = holder.list().unwrap().lookup(&world.bank_key(PETRA_PAN, PETRA_EXPIRY));
        assert_eq!(coupons.len(), 1);
        let coupon = coupons[0];
        assert_eq!(coupon.product_code, 24, "the monthly coupon's card code");
        assert_eq!(coupon.zones_bitmap, 0b11, "Olomouc is zones 1 and 2");
        assert_eq!(coupon.valid_from_unix_s, seconds(sold.valid_from.unwrap()));
        assert_eq!(coupon.valid_until_unix_s, seconds(sold.valid_until.unwrap()));
        assert_eq!((coupon.discount_code, coupon.photo_reference, coupon.flags), (0, 0, CouponFlags::NONE));
        assert!(coupon.is_valid_at(seconds(at("2026-12-15T07:00:00Z"))));
        assert!(!coupon.is_valid_at(seconds(at("2026-11-25T07:00:00Z"))), "bought ahead: not valid yet");
        assert!(holder.list().unwrap().lookup(&world.bank_key("5555 5555 5555 4444", "11/28")).is_empty());
    }

    async fn a_delta_from_the_previous_version_applies_and_equals_the_new_full_list(db) {
        let world = World::new(db).await;
        let keys = world.trusted();
        world.buy(&[world.item(world.bank_card, "monthly", "adult", olomouc(), "2026-12-01")], "m1").await;
        let second = world.register_bank_card("5555 5555 5555 4444", "11/28").await;
        world.buy(&[world.item(second, "week", "adult", ZoneChoice::Zones(vec![1, 3]), "2026-11-23")], "w1").await;
        assert_eq!(world.publish(ListKind::Greenlist).await.version, 1);
        assert_eq!(world.publish(ListKind::Denylist).await.version, 1);
        let mut green = ListHolder::<Greenlist>::new();
        green.offer(&world.full_file(ListKind::Greenlist).await, &keys).unwrap();
        let mut deny = ListHolder::<Denylist>::new();
        deny.offer(&world.full_file(ListKind::Denylist).await, &keys).unwrap();
        assert_eq!(green.list().unwrap().len(), 2);

        // Petra loses her first bank card (removed from the greenlist, denied), buys a day
        // ticket on the second (its coupons change).
        world.sales.block(&world.customer_ctx(), Scope::Customer(world.customer), world.bank_card, false, "lost in the tram", None).await.unwrap();
        world.buy(&[world.item(second, "day", "adult", ZoneChoice::Zones(vec![2]), "2026-11-21")], "d1").await;
        assert_eq!(world.publish(ListKind::Greenlist).await.version, 2);
        assert_eq!(world.publish(ListKind::Denylist).await.version, 2);

        let green_delta = delta(&world, ListKind::Greenlist, 1).await;
        let header = *ListFile::parse(&green_delta).unwrap().header();
        assert_eq!((header.base_version, header.removal_count, header.entry_count), (1, 1, 1), "one removal, one update");
        assert_eq!(green.offer(&green_delta, &keys).unwrap().list_version, 2);
        let mut fresh = ListHolder::<Greenlist>::new();
        fresh.offer(&world.full_file(ListKind::Greenlist).await, &keys).unwrap();
        assert_eq!(green.list(), fresh.list(), "version 1 plus the delta is version 2");
        let list = green.list().unwrap();
        assert!(list.lookup(&world.bank_key(PETRA_PAN, PETRA_EXPIRY)).is_empty());
        assert_eq!(list.lookup(&world.bank_key("5555 5555 5555 4444", "11/28")).len(), 2);

        assert_eq!(deny.offer(&delta(&world, ListKind::Denylist, 1).await, &keys).unwrap().list_version, 2);
        let mut fresh = ListHolder::<Denylist>::new();
        fresh.offer(&world.full_file(ListKind::Denylist).await, &keys).unwrap();
        assert_eq!(deny.list(), fresh.list());
        assert_eq!(deny.list().unwrap().reason(&world.bank_key(PETRA_PAN, PETRA_EXPIRY)), Some(DenyReason::Lost));

        // The same delta again is the same file (made once, remembered); the validator
        // refuses it as a replay.
        assert_eq!(delta(&world, ListKind::Greenlist, 1).await, green_delta);
        assert!(matches!(green.offer(&green_delta, &keys), Err(ListError::Replayed(2))));
        assert_eq!(world.fleet.list_file(ListKind::Greenlist, Some(2)).await.unwrap(), ListDownload::UpToDate { version: 2 });
        for since in [0, 3] {
            let refused = world.fleet.list_file(ListKind::Greenlist, Some(since)).await;
            assert!(matches!(refused, Err(FleetError::UnknownVersion { latest: 2, .. })), "{since}: {refused:?}");
        }
    }

    async fn a_card_blocked_in_selling_is_in_the_next_denylist(db) {
        let world = World::new(db).await;
        let first = world.publish(ListKind::Denylist).await;
        assert_eq!((first.version, first.entry_count), (1, 0));
        world.sales.block(&world.customer_ctx(), Scope::Customer(world.customer), world.fare_card, false, "lost on the tram", None).await.unwrap();
        let next = world.publish(ListKind::Denylist).await;
        assert_eq!((next.version, next.entry_count), (2, 1));
        let mut holder = ListHolder::<Denylist>::new();
        holder.offer(&world.full_file(ListKind::Denylist).await, &world.trusted()).unwrap();
        let card = MediumKey::card_uid(&PETRA_CARD_UID).unwrap();
        assert_eq!(holder.list().unwrap().reason(&card), Some(DenyReason::Lost), "keyed by the UID a validator reads");
        // Unblocked: gone from the next version.
        world.sales.change_status(&world.cashier_ctx(), Scope::Staff, world.fare_card, smartticket_sales::MediumEvent::Unblock, Some("found")).await.unwrap();
        let after = world.publish(ListKind::Denylist).await;
        assert_eq!((after.version, after.entry_count), (3, 0));
    }

    async fn unchanged_sources_publish_no_new_version(db) {
        let world = World::new(db).await;
        let sold = world.buy(&[world.item(world.bank_card, "day", "adult", ZoneChoice::Zones(vec![1]), "2026-11-21")], "d1").await;
        let first = world.publish(ListKind::Greenlist).await;
        world.clock.advance_micros(60_000_000);
        let again = world.publish(ListKind::Greenlist).await;
        assert_eq!(again, first, "same content: the current version, nothing stored");
        assert_eq!(count(&world.db, "SELECT count(*) FROM list_versions").await, 1);
        assert_eq!(count(&world.db, "SELECT count(*) FROM audit_log WHERE action = 'list.publish'").await, 1);
        // A label is not in the list: still nothing new.
        world.sales.rename(&world.customer_ctx(), Scope::Customer(world.customer), world.bank_card, Some("old Visa")).await.unwrap();
        assert_eq!(world.publish(ListKind::Greenlist).await, first);
        // Once the day ticket has ended, the list changes: it is no longer listed.
        world.clock.set(sold.entitlements[0].valid_until.unwrap());
        let ended = world.publish(ListKind::Greenlist).await;
        assert_eq!((ended.version, ended.entry_count), (2, 0));
    }

    async fn concurrent_publishers_give_each_version_one_file(db) {
        let world = World::new(db).await;
        world.buy(&[world.item(world.bank_card, "monthly", "adult", olomouc(), "2026-12-01")], "m1").await;
        // Separate services, as separate server processes would be (no shared lock).
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let fleet = Fleet::new(FleetParts {
                db: world.db.clone(),
                clock: world.clock.clone(),
                hsm: world.hsm.clone(),
                catalog: world.sales.catalog().clone(),
            });
            tasks.push(tokio::spawn(async move { fleet.publish_all().await }));
        }
        let mut versions = Vec::new();
        for task in tasks {
            let [deny, green] = task.await.unwrap().unwrap();
            versions.push((deny.version, deny.fingerprint, green.version, green.fingerprint));
        }
        versions.dedup();
        assert_eq!(versions.len(), 1, "every publisher answers the one version stored: {versions:?}");
        assert_eq!(count(&world.db, "SELECT count(*) FROM list_versions").await, 2);
        // And with the content changing between publishers, versions stay dense and unique.
        let mut tasks = Vec::new();
        for n in 0..4_u8 {
            let world_fleet = Fleet::new(FleetParts {
                db: world.db.clone(),
                clock: world.clock.clone(),
                hsm: world.hsm.clone(),
                catalog: world.sales.catalog().clone(),
            });
            let pan = ["4012 8888 8888 1881", "5105 1051 0510 5100", "4222 2222 2222 2", "3782 8224 6310 005"][usize::from(n)];
            let card = world.register_bank_card(pan, "01/30").await;
            world.buy(&[world.item(card, "day", "adult", ZoneChoice::Zones(vec![1]), "2026-11-21")], &format!("c{n}")).await;
            tasks.push(tokio::spawn(async move { world_fleet.publish_all().await }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let rows: Vec<(i64, String)> = sql!(world.db.reader(), |c| {
            sqlx::query_as("SELECT version, fingerprint FROM list_versions WHERE kind = 'greenlist' ORDER BY version").fetch_all(c).await
        }).unwrap();
        let numbers: Vec<i64> = rows.iter().map(|(v, _)| *v).collect();
        assert_eq!(numbers, (1..=rows.len() as i64).collect::<Vec<_>>(), "dense version numbers");
        assert!(rows.windows(2).all(|pair| pair[0].1 != pair[1].1), "each version differs from the one before");
        let latest = world.fleet.latest(ListKind::Greenlist).await.unwrap().unwrap();
        assert_eq!(latest.entry_count, 5);
    }

    async fn the_background_publisher_denies_a_block_within_an_interval(db) {
        let world = World::new(db).await;
        let fleet = world.fleet.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let publisher = tokio::spawn(async move {
            fleet.run_publisher(Duration::from_millis(50), async { let _ = stopped.await; }).await;
        });
        world.sales.block(&world.customer_ctx(), Scope::Customer(world.customer), world.bank_card, true, "card stolen", None).await.unwrap();
        let key = world.bank_key(PETRA_PAN, PETRA_EXPIRY);
        let keys = world.trusted();
        let mut denied = None;
        for _ in 0..200 {
            if let Ok(ListDownload::File { bytes, .. }) = world.fleet.list_file(ListKind::Denylist, None).await {
                let mut holder = ListHolder::<Denylist>::new();
                holder.offer(&bytes, &keys).unwrap();
                denied = holder.list().unwrap().reason(&key);
                if denied.is_some() {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(denied, Some(DenyReason::Stolen));
        stop.send(()).unwrap();
        publisher.await.unwrap();
    }

    async fn the_xml_greenlist_matches_its_schema_with_photos_inline(db) {
        let world = World::new(db).await;
        let schema = common::xsd::parse_schema(GREENLIST_XSD);
        let (request, jpeg) = student_discount(&world).await;
        world.buy(&[
            world.item(world.bank_card, "monthly", "student", olomouc(), "2026-12-01"),
            world.item(world.bank_card, "day", "adult", ZoneChoice::Zones(vec![1, 2, 3]), "2026-11-21"),
        ], "s1").await;
        let second = world.register_bank_card("5555 5555 5555 4444", "11/28").await;
        world.buy(&[world.item(second, "week", "adult", olomouc(), "2026-11-23")], "w1").await;
        world.publish(ListKind::Greenlist).await;

        let mut holder = ListHolder::<Greenlist>::new();
        holder.offer(&world.full_file(ListKind::Greenlist).await, &world.trusted()).unwrap();
        let coupons = holder.list().unwrap().lookup(&world.bank_key(PETRA_PAN, PETRA_EXPIRY)).to_vec();
        let student = coupons.iter().find(|c| c.product_code == 24).unwrap();
        assert_eq!(student.discount_code, 2, "the student discount's card code");
        assert!(student.flags.contains(CouponFlags::PHOTO_REQUIRED));
        assert_ne!(student.photo_reference, 0);

        let xml = xml_of(&world, None).await;
        schema.validate(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
        let document = common::xsd::parse_tree(&xml).unwrap();
        assert_eq!(document.children.len(), 2, "two media");
        let petra = document.children.iter().find(|m| m.children.len() == 3).expect("two coupons and a photo");
        let photo = &petra.children[2];
        assert_eq!(photo.name, "photo");
        let inline = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, photo.text.trim()).unwrap();
        assert_eq!(inline, jpeg, "the stored photo, inline");
        assert!(xml.contains(r#"productCode="monthly""#) && xml.contains(r#"discountCode="student""#), "{xml}");
        assert!(xml.contains(&format!(r#"photoRef="{}""#, student.photo_reference)));

        // The checker does check: broken documents are refused.
        for (from, to) in [(r#"zones="1 2""#, r#"zones="0""#), ("<photo ", "<picture "), (r#" token=""#, r#" tok=""#)] {
            let broken = xml.replacen(from, to, 1);
            assert_ne!(broken, xml, "{from}");
            assert!(schema.validate(&broken).is_err(), "accepted a document with {to}");
        }

        // A delta: the second card is lost, Petra's coupons stay; then up to date.
        world.sales.block(&world.customer_ctx(), Scope::Customer(world.customer), second, false, "lost", None).await.unwrap();
        assert_eq!(world.publish(ListKind::Greenlist).await.version, 2);
        let changes = xml_of(&world, Some(1)).await;
        schema.validate(&changes).unwrap_or_else(|e| panic!("{e}\n{changes}"));
        let document = common::xsd::parse_tree(&changes).unwrap();
        assert_eq!(document.children.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["removed"]);
        assert_eq!(world.fleet.greenlist_xml(Some(2)).await.unwrap(), XmlDownload::UpToDate { version: 2 });

        // A revoked approval withholds the discounted coupon; the full-fare one stays.
        world.sales.reject_discount(&world.cashier_ctx(), world.cashier, request, "documents were false").await.unwrap();
        world.publish(ListKind::Greenlist).await;
        let mut holder = ListHolder::<Greenlist>::new();
        holder.offer(&world.full_file(ListKind::Greenlist).await, &world.trusted()).unwrap();
        let left = holder.list().unwrap().lookup(&world.bank_key(PETRA_PAN, PETRA_EXPIRY)).to_vec();
        assert_eq!(left.iter().map(|c| c.product_code).collect::<Vec<_>>(), [21]);
    }
}

#[tokio::test]
async fn nothing_is_served_before_the_first_publication() {
    let test_db = smartticket_store::testing::TestDb::sqlite().await.unwrap();
    let world = World::new(test_db.db.clone()).await;
    let refused = world.fleet.list_file(ListKind::Denylist, None).await;
    assert!(matches!(refused, Err(FleetError::NothingPublished(ListKind::Denylist))), "{refused:?}");
    assert!(matches!(world.fleet.greenlist_xml(None).await, Err(FleetError::NothingPublished(_))));
    test_db.finish().await.unwrap();
}

/// The same document checked by libxml2's full XSD implementation.
#[tokio::test]
#[ignore = "needs xmllint"]
async fn the_xml_greenlist_passes_xmllint_schema_validation() {
    let found = std::process::Command::new("xmllint").arg("--version").output();
    assert!(
        found.as_ref().is_ok_and(|o| o.status.success()),
        "xmllint is not installed (Debian/Ubuntu: apt-get install libxml2-utils): {found:?}"
    );
    let test_db = smartticket_store::testing::TestDb::sqlite().await.unwrap();
    let world = World::new(test_db.db.clone()).await;
    student_discount(&world).await;
    world
        .buy(
            &[
                world.item(world.bank_card, "monthly", "student", olomouc(), "2026-12-01"),
                world.item(world.bank_card, "day", "adult", ZoneChoice::Zones(vec![1]), "2026-11-21"),
            ],
            "s1",
        )
        .await;
    let second = world.register_bank_card("5555 5555 5555 4444", "11/28").await;
    world.buy(&[world.item(second, "week", "adult", olomouc(), "2026-11-23")], "w1").await;
    world.publish(ListKind::Greenlist).await;
    world
        .sales
        .block(&world.customer_ctx(), Scope::Customer(world.customer), second, false, "lost", None)
        .await
        .unwrap();
    world.publish(ListKind::Greenlist).await;
    let dir = tempfile_dir();
    let schema = dir.join("greenlist.xsd");
    std::fs::write(&schema, GREENLIST_XSD).unwrap();
    for (name, since) in [("full.xml", None), ("delta.xml", Some(1))] {
        let path = dir.join(name);
        std::fs::write(&path, xml_of(&world, since).await).unwrap();
        let output = std::process::Command::new("xmllint")
            .arg("--noout")
            .arg("--schema")
            .arg(&schema)
            .arg(&path)
            .output()
            .unwrap();
        assert!(output.status.success(), "{name}: {}", String::from_utf8_lossy(&output.stderr));
    }
    std::fs::remove_dir_all(&dir).unwrap();
    test_db.finish().await.unwrap();
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("smartticket-fleet-xml-{}", smartticket_core::id::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
