//! Selling end to end below the HTTP layer, on SQLite and PostgreSQL: carts and
//! idempotent checkout, the card gateway's callbacks, bank statements, cash shifts,
//! delivery to a simulated card (through the relay, and across a torn write), discounts
//! with a photo, lost cards, refunds, complaints and the partners' registry.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::sync::{Arc, Mutex};

use common::{World, date};
use smartticket_card::desfire::host::Desfire;
use smartticket_card::fare::KeySource;
use smartticket_card::fare::ops;
use smartticket_card::sim::SimCard;
use smartticket_card::transport::Transport;
use smartticket_core::Currency;
use smartticket_core::Money;
use smartticket_sales::SalesError;
use smartticket_sales::complaints::Correction;
use smartticket_sales::discounts::{Approval, ApprovalMethod, RequestStatus};
use smartticket_sales::entitlements::EntitlementStatus;
use smartticket_sales::media::{OwnershipProof, Scope};
use smartticket_sales::orders::{Buyer, OrderStatus};
use smartticket_sales::payments::test_acquirer::{Decision, event_for};
use smartticket_sales::payments::{PaymentStart, PaymentStatus};
use smartticket_sales::replacement::ReplaceRequest;
use smartticket_sales::sell::SaleRequest;

fn czk(minor: i64) -> Money {
    Money::new(minor, Currency::CZK)
}

fn system_id() -> Arc<[u8]> {
    Arc::from(common::SYSTEM_ID)
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 128]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    bytes.into_inner()
}

/// Pays `order` by card through the test acquirer's signed callback.
async fn pay_by_card(
    world: &World,
    buyer: Buyer,
    order: smartticket_core::id::OrderId,
) -> smartticket_sales::payments::Payment {
    let payment = world.sales.start_payment(&world.customer_ctx(), buyer, order, &PaymentStart::Card).await.unwrap();
    assert!(payment.redirect_url.as_deref().unwrap().contains("/test-acquirer/checkout/"));
    let event = event_for(payment.id, &Decision::Approve).unwrap();
    let (body, signature) = world.signed(&event);
    world.sales.gateway_callback(Some(&signature), &body).await.unwrap()
}

/// Drives a relay session with the simulated card as the remote reader would.
async fn deliver_by_relay(world: &World, sim: &mut SimCard) -> smartticket_sales::delivery::DeliveryStep {
    let mut step =
        world.sales.start_delivery(&world.customer_ctx(), Scope::Customer(world.customer), system_id()).await.unwrap();
    let mut exchanges = 0;
    while let Some(command) = step.command.clone() {
        exchanges += 1;
        assert!(exchanges < 200, "the session never ends");
        let answer = sim.transmit(&hex::decode(command).unwrap()).unwrap();
        step = world.sales.continue_delivery(Scope::Customer(world.customer), step.session_id, &answer).await.unwrap();
    }
    step
}

smartticket_store::backend_tests! {
    async fn one_call_sales_commit_together_and_each_fails_alone(db) {
        let world = World::new(db).await;
        let partner = Buyer::Partner(world.partner);
        let partner_ctx = smartticket_identity::AuditCtx::new(smartticket_identity::audit::Actor::Partner { id: world.partner });
        let mut cards = Vec::new();
        for n in 0..4_u8 {
            cards.push(world.new_card([4, 0x20, n, 0, 0, 0, 1], &format!("80{n}"), None).await.0);
        }
        let sale = |medium, minor| SaleRequest { items: vec![world.top_up(medium, minor)], payment: PaymentStart::Partner };
        // Many sales at once: good ones, a bad one in the middle, and retries of one key.
        let mut tasks = Vec::new();
        for n in 0..40_usize {
            let sales = world.sales.clone();
            let ctx = partner_ctx.clone();
            let (medium, minor, key) = match n {
                13 => (world.card, 1_000, "k13".to_owned()),  // Petra's card: not the partner's
                17 => (cards[0], 0, "k17".to_owned()),         // below the purse's minimum
                20..=24 => (cards[1], 2_000, "retried".to_owned()),
                _ => (cards[n % 4], 1_000 + n as i64, format!("k{n}")),
            };
            let request = sale(medium, minor);
            tasks.push(tokio::spawn(async move { (n, sales.sell(&ctx, partner, request, &key).await) }));
        }
        let mut retried = Vec::new();
        let mut sold = 0;
        for task in tasks {
            let (n, outcome) = task.await.unwrap();
            match n {
                13 => assert!(matches!(outcome, Err(SalesError::NotFound { .. })), "{outcome:?}"),
                17 => assert!(matches!(outcome, Err(SalesError::Catalog(_) | SalesError::Invalid { .. })), "{outcome:?}"),
                20..=24 => retried.push(outcome.unwrap().id),
                _ => {
                    let order = outcome.unwrap();
                    assert_eq!(order.status, OrderStatus::Paid);
                    assert_eq!(order.entitlements.len(), 1);
                    // The answer is built without reading back; it must be what was written.
                    assert_eq!(world.sales.order(Scope::Staff, order.id).await.unwrap(), order);
                    sold += 1;
                }
            }
        }
        retried.dedup();
        assert_eq!(retried.len(), 1, "five calls with one key are one sale");
        let counts = world.sales.paid_counts().await.unwrap();
        assert_eq!(counts.paid_orders, sold + 1, "exactly the sales answered as sold are stored");
        assert_eq!(counts.approved_payments, counts.paid_orders);
        // Cash at a counter, and a discount that needs an approval (decided one by one).
        let cashier = Buyer::Cashier(world.cashier);
        let refused = world.sales.sell(&world.cashier_ctx(), cashier, SaleRequest { items: vec![world.top_up(world.card, 500)], payment: PaymentStart::Cash }, "c1").await;
        assert!(matches!(refused, Err(SalesError::Conflict(ref m)) if m.contains("shift")), "{refused:?}");
        world.sales.open_shift(&world.cashier_ctx(), world.cashier, "Counter 2", czk(0)).await.unwrap();
        let mut student = world.month_pass(world.card);
        student.discount = "student".into();
        let refused = world.sales.sell(&world.cashier_ctx(), cashier, SaleRequest { items: vec![student], payment: PaymentStart::Cash }, "c2").await;
        assert!(matches!(refused, Err(SalesError::DiscountNotApproved { .. })), "{refused:?}");
        let cash = world.sales.sell(&world.cashier_ctx(), cashier, SaleRequest { items: vec![world.month_pass(world.card)], payment: PaymentStart::Cash }, "c3").await.unwrap();
        assert_eq!(cash.customer_id, Some(world.customer), "a counter sale for a registered card is the passenger's");
        assert_eq!(cash.entitlements[0].contract_serial, Some(1));
        assert_eq!(cash.entitlements[0].status, EntitlementStatus::PendingDelivery);
    }

    async fn a_cart_becomes_one_order_however_often_it_is_checked_out(db) {
        let world = World::new(db).await;
        let ctx = world.customer_ctx();
        let cart = world.sales.add_to_cart(&ctx, world.passenger(), &world.month_pass(world.card)).await.unwrap();
        assert_eq!(cart.items.len(), 1);
        assert_eq!(cart.total, Some(czk(70_000)), "the Olomouc combi-zone is two zones: 700 CZK");
        // Ten concurrent checkouts with different keys (ten tabs): one order.
        let mut tasks = Vec::new();
        for n in 0..10 {
            let sales = world.sales.clone();
            let ctx = ctx.clone();
            let buyer = world.passenger();
            let key = format!("tab-{n}");
            tasks.push(tokio::spawn(async move { (sales.checkout(&ctx, buyer, &key).await, key) }));
        }
        let mut ids = Vec::new();
        let mut winning_key = None;
        for task in tasks {
            let (outcome, key) = task.await.unwrap();
            match outcome {
                Ok(order) => {
                    ids.push(order.id);
                    winning_key = Some(key);
                }
                Err(SalesError::Invalid { field: "cart", .. }) => {} // the cart was gone by then
                Err(other) => panic!("{other:?}"),
            }
        }
        ids.dedup();
        assert_eq!(ids.len(), 1, "every successful checkout names the same order: {ids:?}");
        let order = world.sales.checkout(&ctx, world.passenger(), &winning_key.unwrap()).await.unwrap();
        assert_eq!(order.id, ids[0], "the same key gives the same order");
        assert_eq!(order.status, OrderStatus::AwaitingPayment);
        assert_eq!(order.total, czk(70_000));
        // The client cannot set a price: the item has no price field, and the catalogue's is used.
        assert_eq!(order.items[0].quote.price, czk(70_000));
    }

    async fn a_card_payment_is_applied_once_and_gives_a_pending_delivery(db) {
        let world = World::new(db).await;
        let ctx = world.customer_ctx();
        let order = world.sales.create_order(&ctx, world.passenger(), &[world.month_pass(world.card), world.top_up(world.card, 20_000)], "k1").await.unwrap();
        assert_eq!(order.total, czk(90_000));
        let payment = world.sales.start_payment(&ctx, world.passenger(), order.id, &PaymentStart::Card).await.unwrap();
        // A second card attempt while the first waits at the bank is refused.
        let again = world.sales.start_payment(&ctx, world.passenger(), order.id, &PaymentStart::Card).await;
        assert!(matches!(again, Err(SalesError::Conflict(_))), "{again:?}");
        let event = event_for(payment.id, &Decision::Approve).unwrap();
        let (body, signature) = world.signed(&event);
        let paid = world.sales.gateway_callback(Some(&signature), &body).await.unwrap();
        assert_eq!(paid.status, PaymentStatus::Approved);
        // The bank repeats its webhook: nothing changes.
        let replay = world.sales.gateway_callback(Some(&signature), &body).await.unwrap();
        assert_eq!(replay.status, PaymentStatus::Approved);
        let order = world.sales.order(Scope::Customer(world.customer), order.id).await.unwrap();
        assert_eq!(order.status, OrderStatus::Paid);
        assert_eq!(order.entitlements.len(), 2, "one entitlement per item, however often the bank calls");
        assert!(order.entitlements.iter().all(|e| e.status == EntitlementStatus::PendingDelivery));
        // A forged callback is refused.
        let forged = world.sales.gateway_callback(Some("t=1,v1=00"), &body).await;
        assert!(matches!(forged, Err(SalesError::Gateway(_))), "{forged:?}");
        // No second payment for a paid order.
        let more = world.sales.start_payment(&ctx, world.passenger(), order.id, &PaymentStart::BankTransfer).await;
        assert!(matches!(more, Err(SalesError::Conflict(_))), "{more:?}");
        // The receipt is in the outbox.
        let mails = smartticket_mail::list(&world.db, &smartticket_mail::MailFilter { status: None, to: Some("petra@example.org".into()) }, &smartticket_core::PageSpec { limit: 10, after: None }).await.unwrap();
        assert!(mails.items.iter().any(|m| m.subject.starts_with("Receipt for order")), "{:?}", mails.items);
    }

    async fn a_declined_card_leaves_the_order_payable(db) {
        let world = World::new(db).await;
        let ctx = world.customer_ctx();
        let order = world.sales.create_order(&ctx, world.passenger(), &[world.month_pass(world.card)], "k1").await.unwrap();
        let payment = world.sales.start_payment(&ctx, world.passenger(), order.id, &PaymentStart::Card).await.unwrap();
        let event = event_for(payment.id, &Decision::Decline("insufficient funds")).unwrap();
        let (body, signature) = world.signed(&event);
        let declined = world.sales.gateway_callback(Some(&signature), &body).await.unwrap();
        assert_eq!(declined.status, PaymentStatus::Declined);
        assert_eq!(declined.failure.as_deref(), Some("insufficient funds"));
        let paid = pay_by_card(&world, world.passenger(), order.id).await;
        assert_eq!(paid.status, PaymentStatus::Approved);
    }

    async fn a_second_approval_is_refunded_not_kept(db) {
        let world = World::new(db).await;
        let ctx = world.customer_ctx();
        let order = world.sales.create_order(&ctx, world.passenger(), &[world.month_pass(world.card)], "k1").await.unwrap();
        let transfer = world.sales.start_payment(&ctx, world.passenger(), order.id, &PaymentStart::BankTransfer).await.unwrap();
        let card = world.sales.start_payment(&ctx, world.passenger(), order.id, &PaymentStart::Card).await.unwrap();
        let statement = statement(&[(transfer.variable_symbol.as_deref().unwrap(), "700.00", "REF-1")]);
        let report = world.sales.import_statement(&common::system(), &statement).await.unwrap();
        assert_eq!(report.matched.len(), 1);
        let event = event_for(card.id, &Decision::Approve).unwrap();
        let (body, signature) = world.signed(&event);
        let card = world.sales.gateway_callback(Some(&signature), &body).await.unwrap();
        assert_eq!(card.status, PaymentStatus::Refunded, "the order was already paid by transfer");
        let order = world.sales.order(Scope::Staff, order.id).await.unwrap();
        assert_eq!(order.payments.iter().filter(|p| p.status == PaymentStatus::Approved).count(), 1);
        assert_eq!(order.entitlements.len(), 1);
    }

    async fn a_statement_pays_by_variable_symbol_once(db) {
        let world = World::new(db).await;
        let ctx = world.customer_ctx();
        let order = world.sales.create_order(&ctx, world.passenger(), &[world.month_pass(world.card)], "k1").await.unwrap();
        let payment = world.sales.start_payment(&ctx, world.passenger(), order.id, &PaymentStart::BankTransfer).await.unwrap();
        let vs = payment.variable_symbol.clone().unwrap();
        let other = world.sales.create_order(&ctx, world.passenger(), &[world.top_up(world.card, 10_000)], "k2").await.unwrap();
        let short = world.sales.start_payment(&ctx, world.passenger(), other.id, &PaymentStart::BankTransfer).await.unwrap();
        let xml = statement(&[(&vs, "700.00", "REF-1"), (short.variable_symbol.as_deref().unwrap(), "50.00", "REF-2"), ("999", "1.00", "REF-3")]);
        let report = world.sales.import_statement(&common::system(), &xml).await.unwrap();
        assert_eq!(report.matched.len(), 1);
        assert_eq!(report.matched[0].order_id, order.id);
        assert_eq!(report.unmatched.len(), 2);
        assert!(report.unmatched.iter().any(|m| m.why.contains("does not match")), "{report:?}");
        let again = world.sales.import_statement(&common::system(), &xml).await.unwrap();
        assert_eq!(again.matched.len(), 0);
        assert_eq!(again.already_imported, 1);
        assert_eq!(world.sales.order(Scope::Staff, order.id).await.unwrap().status, OrderStatus::Paid);
        assert_eq!(world.sales.order(Scope::Staff, other.id).await.unwrap().status, OrderStatus::AwaitingPayment);
    }

    async fn cash_needs_an_open_shift_and_counts_in_it(db) {
        let world = World::new(db).await;
        let staff = world.cashier_ctx();
        let buyer = Buyer::Cashier(world.cashier);
        let order = world.sales.create_order(&staff, buyer, &[world.top_up(world.card, 30_000)], "c1").await.unwrap();
        assert_eq!(order.customer_id, Some(world.customer), "a counter sale for a registered card is the passenger's");
        let refused = world.sales.start_payment(&staff, buyer, order.id, &PaymentStart::Cash).await;
        assert!(matches!(refused, Err(SalesError::Conflict(ref m)) if m.contains("shift")), "{refused:?}");
        let shift = world.sales.open_shift(&staff, world.cashier, "Counter 1", czk(100_000)).await.unwrap();
        let paid = world.sales.start_payment(&staff, buyer, order.id, &PaymentStart::Cash).await.unwrap();
        assert_eq!(paid.status, PaymentStatus::Approved);
        assert_eq!(world.sales.shift(shift.id).await.unwrap().expected, czk(130_000));
        let closed = world.sales.close_shift(&staff, world.cashier, czk(129_000), Some("one coin short")).await.unwrap();
        assert_eq!(closed.difference, Some(czk(-1_000)));
        // The passenger cannot pay in cash from the e-shop.
        let order = world.sales.create_order(&world.customer_ctx(), world.passenger(), &[world.top_up(world.card, 100)], "e1").await.unwrap();
        let cash = world.sales.start_payment(&world.customer_ctx(), world.passenger(), order.id, &PaymentStart::Cash).await;
        assert!(matches!(cash, Err(SalesError::Invalid { field: "method", .. })), "{cash:?}");
    }

    async fn what_was_paid_reaches_the_card_at_the_next_tap_through_the_relay(db) {
        let mut world = World::new(db).await;
        let order = world.sales.create_order(&world.customer_ctx(), world.passenger(), &[world.month_pass(world.card), world.top_up(world.card, 20_000)], "k1").await.unwrap();
        pay_by_card(&world, world.passenger(), order.id).await;
        let pending = world.sales.pending_deliveries(Scope::Customer(world.customer), world.card).await.unwrap();
        assert_eq!(pending.len(), 2);
        let mut sim = world.sim.take().unwrap();
        let step = deliver_by_relay(&world, &mut sim).await;
        let report = step.report.unwrap_or_else(|| panic!("{:?}", step.error));
        assert_eq!(report.medium_id, Some(world.card));
        assert_eq!(report.delivered.len(), 2);
        assert_eq!(report.balance, Some(czk(20_000)));
        // The card says so, read with the read key as a validator would.
        let keys = KeySource { hsm: world.hsm.as_ref(), system_id: common::SYSTEM_ID };
        let mut card = Desfire::new(sim);
        let state = ops::read(&mut card, &keys).unwrap();
        assert_eq!(state.purse, 20_000);
        let contract = state.contracts.iter().flatten().next().unwrap();
        assert_eq!(contract.valid_from, common::at("2026-11-30T23:00:00Z"));
        assert_eq!(contract.zones, 0b11, "the Olomouc combi-zone is zones 1 and 2");
        assert_eq!(contract.product, 24, "the monthly coupon's card code");
        let order = world.sales.order(Scope::Staff, order.id).await.unwrap();
        assert!(order.entitlements.iter().all(|e| e.status == EntitlementStatus::Delivered));
        // The next tap has nothing to write.
        let mut sim = card.into_transport();
        let step = deliver_by_relay(&world, &mut sim).await;
        assert!(step.report.unwrap().delivered.is_empty());
    }

    async fn a_torn_write_is_settled_from_the_card_and_never_doubles_the_purse(db) {
        let mut world = World::new(db).await;
        let shared = Arc::new(Mutex::new(world.sim.take().unwrap()));
        for (round, after_commit) in [(1, true), (2, false)] {
            let order = world
                .sales
                .create_order(&world.customer_ctx(), world.passenger(), &[world.top_up(world.card, 10_000)], &format!("k{round}"))
                .await
                .unwrap();
            pay_by_card(&world, world.passenger(), order.id).await;
            // The reader loses the card at the commit: after it ran (the card has the value,
            // the answer is lost) or before it (the card never committed).
            let torn = Flaky { card: shared.clone(), at_commit: Some(after_commit) };
            let outcome = world.sales.deliver_local(&common::system(), Desfire::new(torn), system_id()).await.map(|(report, _)| report);
            assert!(matches!(outcome, Err(SalesError::Card(_))), "{outcome:?}");
            let order_now = world.sales.order(Scope::Staff, order.id).await.unwrap();
            assert_eq!(order_now.entitlements[0].status, EntitlementStatus::PendingDelivery, "unknown until the card is seen again");
            shared.lock().unwrap().remove();
            shared.lock().unwrap().tap();
            // The next tap settles it from what the card shows.
            let steady = Flaky { card: shared.clone(), at_commit: None };
            let (report, _) = world.sales.deliver_local(&common::system(), Desfire::new(steady), system_id()).await.unwrap();
            if after_commit {
                assert_eq!(report.recovered, vec![order_now.entitlements[0].id], "found on the card, not written again");
                assert!(report.delivered.is_empty());
            } else {
                assert!(report.recovered.is_empty());
                assert_eq!(report.delivered, vec![order_now.entitlements[0].id], "written now");
            }
            assert_eq!(report.balance, Some(czk(10_000 * round)), "the purse holds each top-up exactly once");
            let order_now = world.sales.order(Scope::Staff, order.id).await.unwrap();
            assert_eq!(order_now.entitlements[0].status, EntitlementStatus::Delivered);
        }
    }

    async fn discounted_products_need_an_approved_photo_request(db) {
        let world = World::new(db).await;
        let ctx = world.customer_ctx();
        let mut student = world.month_pass(world.card);
        student.discount = "student".into();
        let refused = world.sales.create_order(&ctx, world.passenger(), &[student.clone()], "s1").await;
        assert!(matches!(refused, Err(SalesError::DiscountNotApproved { .. })), "{refused:?}");
        let not_image = world.sales.upload_photo(&ctx, world.customer, b"<html>hello</html>").await;
        assert!(matches!(not_image, Err(SalesError::Invalid { field: "photo", .. })), "{not_image:?}");
        let photo = world.sales.upload_photo(&ctx, world.customer, &png(320, 400)).await.unwrap();
        let stored = world.sales.photo(Some(world.customer), photo.id).await.unwrap();
        assert_eq!(&stored[..2], &[0xFF, 0xD8], "stored as a re-encoded JPEG");
        let request = world.sales.request_discount(&ctx, world.customer, "student", photo.id, Some("ISIC 123")).await.unwrap();
        assert_eq!(request.status, RequestStatus::Pending);
        let twice = world.sales.request_discount(&ctx, world.customer, "student", photo.id, None).await;
        assert!(matches!(twice, Err(SalesError::Conflict(_))), "{twice:?}");
        let queue = world.sales.discount_requests(Some(RequestStatus::Pending), None, &smartticket_core::PageSpec { limit: 10, after: None }).await.unwrap();
        assert_eq!(queue.items.len(), 1);
        let approval = Approval { method: ApprovalMethod::DocumentAtCounter, document: Some("ISIC S 420 123 456".into()), valid_until: date("2027-06-30") };
        let approved = world.sales.approve_discount(&world.cashier_ctx(), world.cashier, request.id, &approval).await.unwrap();
        assert_eq!(approved.status, RequestStatus::Approved);
        assert_eq!(approved.decided_by, Some(world.cashier));
        assert_eq!(approved.method, Some(ApprovalMethod::DocumentAtCounter));
        let order = world.sales.create_order(&ctx, world.passenger(), &[student], "s2").await.unwrap();
        assert_eq!(order.total, czk(35_000), "half price for students");
        // Revoked: no more discounted sales.
        world.sales.reject_discount(&world.cashier_ctx(), world.cashier, request.id, "document expired").await.unwrap();
        let mut again = world.month_pass(world.card);
        again.discount = "student".into();
        let refused = world.sales.create_order(&ctx, world.passenger(), &[again], "s3").await;
        assert!(matches!(refused, Err(SalesError::DiscountNotApproved { .. })), "{refused:?}");
    }

    async fn a_lost_card_is_blocked_and_its_products_move_to_the_replacement(db) {
        let world = World::new(db).await;
        let order = world.sales.create_order(&world.customer_ctx(), world.passenger(), &[world.month_pass(world.card), world.top_up(world.card, 5_000)], "k1").await.unwrap();
        pay_by_card(&world, world.passenger(), order.id).await;
        let (spare, _) = world.new_card([4, 7, 7, 7, 7, 7, 7], "3003", None).await;
        // An anonymous card is no replacement for Petra's.
        let request = ReplaceRequest { replacement_id: spare, reason: "lost on the tram".into(), receipt: None };
        let refused = world.sales.replace_medium(&world.customer_ctx(), Scope::Customer(world.customer), world.card, &request).await;
        assert!(matches!(refused, Err(SalesError::NotFound { .. } | SalesError::Invalid { .. })), "{refused:?}");
        // Her new card, registered to her at a counter, takes over.
        let (replacement, _) = world.new_card([4, 5, 5, 5, 5, 5, 5], "5005", Some(world.customer)).await;
        let request = ReplaceRequest { replacement_id: replacement, reason: "lost on the tram".into(), receipt: None };
        let report = world.sales.replace_medium(&world.customer_ctx(), Scope::Customer(world.customer), world.card, &request).await.unwrap();
        assert_eq!(report.blocked.status, smartticket_sales::MediumStatus::PermanentlyBlocked);
        assert_eq!(report.moved.len(), 2, "the month pass and the undelivered top-up move");
        assert!(report.balance_moves_after.is_some());
        let old = world.sales.order(Scope::Staff, order.id).await.unwrap();
        assert!(old.entitlements.iter().filter(|e| e.medium_id == world.card).all(|e| e.status == EntitlementStatus::Transferred));
        let moved: Vec<_> = old.entitlements.iter().filter(|e| e.medium_id == report.replacement.id).collect();
        assert_eq!(moved.len(), 2);
        assert!(moved.iter().all(|e| e.status == EntitlementStatus::PendingDelivery));
        // Nothing more is sold for the blocked card.
        let refused = world.sales.create_order(&world.customer_ctx(), world.passenger(), &[world.top_up(world.card, 100)], "k2").await;
        assert!(matches!(refused, Err(SalesError::Invalid { field: "items", .. })), "{refused:?}");
    }

    async fn unused_orders_are_refunded_and_cannot_be_delivered_after(db) {
        let mut world = World::new(db).await;
        let order = world.sales.create_order(&world.customer_ctx(), world.passenger(), &[world.month_pass(world.card)], "k1").await.unwrap();
        pay_by_card(&world, world.passenger(), order.id).await;
        let empty = world.sales.refund_order(&world.cashier_ctx(), order.id, "  ").await;
        assert!(matches!(empty, Err(SalesError::Invalid { field: "reason", .. })), "{empty:?}");
        let refunded = world.sales.refund_order(&world.cashier_ctx(), order.id, "bought twice by mistake").await.unwrap();
        assert_eq!(refunded.status, OrderStatus::Refunded);
        assert!(refunded.entitlements.iter().all(|e| e.status == EntitlementStatus::Refunded));
        assert_eq!(refunded.payments[0].status, PaymentStatus::Refunded);
        let report = world.sales.deliver_local(&common::system(), Desfire::new(world.sim.take().unwrap()), system_id()).await.unwrap().0;
        assert!(report.delivered.is_empty(), "a refunded product is never written");
        let twice = world.sales.refund_order(&world.cashier_ctx(), order.id, "again").await;
        assert!(matches!(twice, Err(SalesError::Conflict(_))), "{twice:?}");
    }

    async fn a_complaint_shows_the_passenger_and_corrects_with_reasons(db) {
        let world = World::new(db).await;
        let order = world.sales.create_order(&world.customer_ctx(), world.passenger(), &[world.month_pass(world.card)], "k1").await.unwrap();
        pay_by_card(&world, world.passenger(), order.id).await;
        world.sales.record_tap(world.card, common::at("2026-11-20T07:00:00Z"), "Hlavní nádraží").await.unwrap();
        let staff = world.cashier_ctx();
        let case = world.sales.open_complaint(&staff, world.cashier, None, Some(world.card), "validator refused the pass").await.unwrap();
        assert_eq!(case.customer_id, Some(world.customer), "the card leads to its passenger");
        let file = world.sales.complaint_case(case.id).await.unwrap();
        assert_eq!(file.media.len(), 1);
        assert_eq!(file.orders.len(), 1);
        assert_eq!(file.events.len(), 1);
        let entitlement = file.entitlements[0].id;
        let later = common::at("2027-01-05T23:00:00Z");
        let correction = Correction::ExtendValidity { entitlement_id: entitlement, valid_until: later };
        let no_reason = world.sales.correct(&staff, world.cashier, case.id, &correction, "").await;
        assert!(matches!(no_reason, Err(SalesError::Invalid { field: "reason", .. })), "{no_reason:?}");
        let file = world.sales.correct(&staff, world.cashier, case.id, &correction, "four days lost to a broken validator").await.unwrap();
        assert_eq!(file.entitlements[0].valid_until, Some(later));
        assert_eq!(file.complaint.actions.len(), 1);
        assert_eq!(file.complaint.actions[0].reason, "four days lost to a broken validator");
        let closed = world.sales.close_complaint(&staff, case.id, "extended by four days").await.unwrap();
        let after = world.sales.correct(&staff, world.cashier, closed.id, &correction, "again").await;
        assert!(matches!(after, Err(SalesError::Conflict(_))), "{after:?}");
        let entries = smartticket_identity::audit::list(&world.db, &Default::default(), &smartticket_core::PageSpec { limit: 200, after: None }).await.unwrap();
        assert!(entries.items.iter().any(|e| e.action == "complaint.correct"), "corrections are audited");
    }

    async fn an_anonymous_card_is_claimed_only_with_a_proof_and_few_guesses(db) {
        let world = World::new(db).await;
        let (anonymous, _) = world.new_card([4, 8, 8, 8, 8, 8, 8], "8008", None).await;
        // The world's clock stands at 2026-11-21T08:30Z.
        world.sales.record_tap(anonymous, common::at("2026-11-20T02:30:00Z"), "Hlavní nádraží").await.unwrap();
        world.sales.record_tap(anonymous, common::at("2026-11-21T03:30:00Z"), "Náměstí Hrdinů").await.unwrap();
        // A tap older than the two-week window proves nothing.
        world.sales.record_tap(anonymous, common::at("2026-11-01T08:30:00Z"), "Letiště").await.unwrap();
        let ctx = world.customer_ctx();
        let stations = |a: &str, b: &str| OwnershipProof::Stations([a.to_owned(), b.to_owned()]);

        // Petra's own registered card is not anonymous: nothing to claim.
        let own = world.sales.claim_card(&ctx, world.customer, "1001", &stations("a", "b"), None).await;
        assert!(matches!(own, Err(SalesError::NotFound { .. })), "{own:?}");
        // Naming one station twice is no proof, nor is a station outside the window.
        let twice = world.sales.claim_card(&ctx, world.customer, "8008", &stations("Hlavní nádraží", "hlavní nádraží"), None).await;
        assert!(matches!(twice, Err(SalesError::ProofRejected { attempts_left: 4 })), "{twice:?}");
        let old = world.sales.claim_card(&ctx, world.customer, "8008", &stations("Letiště", "Hlavní nádraží"), None).await;
        assert!(matches!(old, Err(SalesError::ProofRejected { attempts_left: 3 })), "{old:?}");
        // No top-up was ever recorded, so no amount matches.
        let topup = world.sales.claim_card(&ctx, world.customer, "8008", &OwnershipProof::LastTopupMinor(0), None).await;
        assert!(matches!(topup, Err(SalesError::ProofRejected { attempts_left: 2 })), "{topup:?}");
        // Two stations it was really tapped at, in any case and order, prove it.
        let claimed = world
            .sales
            .claim_card(&ctx, world.customer, "8008", &stations(" náměstí hrdinů", "HLAVNÍ NÁDRAŽÍ"), Some("Found it"))
            .await
            .unwrap();
        assert_eq!(claimed.customer_id, Some(world.customer));
        assert_eq!(claimed.label.as_deref(), Some("Found it"));
        // Once owned, it is no longer anonymous: nobody else claims it.
        let again = world.sales.claim_card(&ctx, world.customer, "8008", &stations("Hlavní nádraží", "Náměstí Hrdinů"), None).await;
        assert!(matches!(again, Err(SalesError::NotFound { .. })), "{again:?}");
        let entries = smartticket_identity::audit::list(&world.db, &Default::default(), &smartticket_core::PageSpec { limit: 200, after: None }).await.unwrap();
        assert_eq!(entries.items.iter().filter(|e| e.action == "medium.claim").count(), 4, "each attempt is audited");
    }

    async fn guessing_a_cards_proof_stops_after_the_daily_limit(db) {
        let world = World::new(db).await;
        let (anonymous, _) = world.new_card([4, 9, 9, 9, 9, 9, 9], "9009", None).await;
        world.sales.record_tap(anonymous, common::at("2026-11-21T07:00:00Z"), "Hlavní nádraží").await.unwrap();
        world.sales.record_tap(anonymous, common::at("2026-11-21T07:30:00Z"), "Náměstí Hrdinů").await.unwrap();
        let ctx = world.customer_ctx();
        for left in (0..5).rev() {
            let wrong = world.sales.claim_card(&ctx, world.customer, "9009", &OwnershipProof::LastTopupMinor(100 + i64::from(left)), None).await;
            assert!(matches!(wrong, Err(SalesError::ProofRejected { attempts_left }) if attempts_left == left), "{wrong:?}");
        }
        // The right proof no longer helps today...
        let right = OwnershipProof::Stations(["Hlavní nádraží".to_owned(), "Náměstí Hrdinů".to_owned()]);
        let blocked = world.sales.claim_card(&ctx, world.customer, "9009", &right, None).await;
        assert!(matches!(blocked, Err(SalesError::TooManyAttempts(_))), "{blocked:?}");
        // ...but does a day later, while the taps are still in the window.
        world.clock.advance_micros(25 * 3_600 * 1_000_000);
        let claimed = world.sales.claim_card(&ctx, world.customer, "9009", &right, None).await.unwrap();
        assert_eq!(claimed.customer_id, Some(world.customer));
    }

    async fn a_partner_sells_only_for_its_own_media_and_sees_its_own_registry(db) {
        let world = World::new(db).await;
        let partner = Buyer::Partner(world.partner);
        let ctx = smartticket_identity::AuditCtx::new(smartticket_identity::audit::Actor::Partner { id: world.partner });
        // Petra's registered card is not the partner's to sell for.
        let refused = world.sales.create_order(&ctx, partner, &[world.top_up(world.card, 10_000)], "p1").await;
        assert!(matches!(refused, Err(SalesError::NotFound { .. })), "{refused:?}");
        // An anonymous card is: the partner tops it up and collects the money itself.
        let (anonymous, _) = world.new_card([4, 6, 6, 6, 6, 6, 6], "6006", None).await;
        let order = world.sales.create_order(&ctx, partner, &[world.top_up(anonymous, 10_000)], "p2").await.unwrap();
        let paid = world.sales.start_payment(&ctx, partner, order.id, &PaymentStart::Partner).await.unwrap();
        assert_eq!(paid.status, PaymentStatus::Approved);
        let registry = world.sales.registry(Some(world.partner), date("2026-11-21"), date("2026-11-21")).await.unwrap();
        assert_eq!(registry.rows.len(), 1);
        assert_eq!(registry.rows[0].gross, czk(10_000));
        assert_eq!(registry.rows[0].partner_name.as_deref(), Some("Trafika"));
        // Another partner's registry does not include it.
        let other = world.sales.registry(Some(smartticket_core::id::PartnerId::new()), date("2026-11-21"), date("2026-11-21")).await.unwrap();
        assert!(other.rows.is_empty());
        // A partner cannot see a customer's order.
        let mine = world.sales.create_order(&world.customer_ctx(), world.passenger(), &[world.top_up(world.card, 100)], "c1").await.unwrap();
        let hidden = world.sales.order(Scope::Partner(world.partner), mine.id).await;
        assert!(matches!(hidden, Err(SalesError::NotFound { .. })), "{hidden:?}");
    }
}

/// A reader over a shared simulated card that loses the card at the DESFire commit
/// (INS C7): after passing it on (`Some(true)`) or before (`Some(false)`).
struct Flaky {
    card: Arc<Mutex<SimCard>>,
    at_commit: Option<bool>,
}

impl Transport for Flaky {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, smartticket_card::TransportError> {
        let mut card = self.card.lock().unwrap();
        if command.get(1) == Some(&0xC7)
            && let Some(after) = self.at_commit.take()
        {
            if after {
                let _ = card.transmit(command);
            }
            return Err(smartticket_card::TransportError::CardRemoved);
        }
        card.transmit(command)
    }

    fn describe(&self) -> String {
        "flaky reader".into()
    }
}

fn statement(entries: &[(&str, &str, &str)]) -> String {
    let mut xml = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt><GrpHdr><MsgId>S1</MsgId><CreDtTm>2026-11-21T18:00:00</CreDtTm></GrpHdr><Stmt><Id>1</Id>"#,
    );
    for (vs, amount, reference) in entries {
        xml.push_str(&format!(
            r#"<Ntry><Amt Ccy="CZK">{amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts><AcctSvcrRef>{reference}</AcctSvcrRef><NtryDtls><TxDtls><RmtInf><Strd><CdtrRefInf><Ref>{vs}</Ref></CdtrRefInf></Strd></RmtInf></TxDtls></NtryDtls></Ntry>"#
        ));
    }
    xml.push_str("</Stmt></BkToCstmrStmt></Document>");
    xml
}
