//! Selling end to end over HTTP, on SQLite and PostgreSQL (issue 4's "done when"):
//! - a passenger registers and confirms the email, attaches a fare card and a bank card,
//!   buys a month coupon and a top-up, pays on the test acquirer's page, and sees the card
//!   updated at the next tap on a simulated reader relayed over HTTP;
//! - a cashier approves a discount with a photo, takes cash in a shift, and blocks a lost
//!   card, moving its products to the replacement;
//! - a partner sells through its API key and downloads its registry as CSV and XLSX, and
//!   can neither see nor sell for anyone else's customers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{Answer, TestApp};
use serde_json::{Value, json};
use smartticket_card::desfire::host::Desfire;
use smartticket_card::fare::{KeySource, ops};
use smartticket_card::sim::SimCard;
use smartticket_card::transport::Transport;
use smartticket_identity::Role;
use smartticket_identity::sessions::Realm;

const IDSOK: &str = include_str!("../../../examples/networks/idsok.toml");

fn s(value: &Value, key: &str) -> String {
    value[key].as_str().unwrap_or_else(|| panic!("{key} in {value}")).to_owned()
}

impl TestApp {
    async fn publish_network(&self, operator: &str) {
        let document = serde_json::to_value(smartticket_catalog::CatalogDocument::from_toml(IDSOK).unwrap()).unwrap();
        let body = json!({ "document": document, "effective_from": "2026-11-01", "note": "IDSOK" });
        let answer = self.call(Method::POST, "/api/v1/catalog/versions", Some(operator), Some(body)).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    }

    /// A card personalised with the server's keys, put in stock and issued by `operator`.
    async fn stock_card(&self, operator: &str, uid: [u8; 7], number: &str) -> SimCard {
        let keys = KeySource { hsm: self.hsm.as_ref(), system_id: common::SYSTEM_ID };
        let mut card = Desfire::new(SimCard::blank(uid));
        let environment = smartticket_card::fare::records::Environment {
            card_number: 9_643_000_000_000 + number.parse::<u64>().unwrap(),
            profile: 1,
            discount_category: 0,
            expires: smartticket_core::Timestamp::parse_rfc3339("2031-12-31T00:00:00Z").unwrap(),
            issuer: 1,
        };
        ops::personalise(&mut card, &keys, &keys, &environment).unwrap();
        let body = json!({ "uid": hex::encode(uid), "printed_number": number });
        let answer = self.call(Method::POST, "/api/v1/media/stock", Some(operator), Some(body)).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        let id = s(&answer.body, "id");
        let issued = self
            .call(
                Method::POST,
                &format!("/api/v1/media/{id}/status"),
                Some(operator),
                Some(json!({ "event": "issue" })),
            )
            .await;
        assert_eq!(issued.status, StatusCode::OK, "{}", issued.body);
        assert_eq!(issued.body["status"], "issued");
        card.into_transport()
    }

    async fn call_with(
        &self,
        method: Method,
        path: &str,
        token: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Answer {
        let mut builder =
            Request::builder().method(method).uri(path).header("authorization", format!("Bearer {token}"));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = match body {
            Some(body) => {
                builder.header("content-type", "application/json").body(Body::from(body.to_string())).unwrap()
            }
            None => builder.body(Body::empty()).unwrap(),
        };
        self.send(request).await
    }

    async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let mut builder = Request::builder().method(method).uri(path).header("content-type", content_type);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let mut request = builder.body(Body::from(body)).unwrap();
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from(([203, 0, 113, 7], 40000))));
        let response = self.app.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes().to_vec();
        (status, headers, bytes)
    }

    /// Relays a delivery session between the server and a simulated card in a reader.
    async fn tap(&self, token: &str, card: &mut SimCard) -> Value {
        let mut step = self.call(Method::POST, "/api/v1/delivery/sessions", Some(token), None).await;
        assert_eq!(step.status, StatusCode::CREATED, "{}", step.body);
        let session = s(&step.body, "session_id");
        for _ in 0..200 {
            let Some(command) = step.body["command"].as_str() else {
                assert!(step.body["error"].is_null(), "{}", step.body);
                return step.body["report"].clone();
            };
            let answer = card.transmit(&hex::decode(command).unwrap()).unwrap();
            step = self
                .call(
                    Method::POST,
                    &format!("/api/v1/delivery/sessions/{session}/responses"),
                    Some(token),
                    Some(json!({ "response": hex::encode(answer) })),
                )
                .await;
            assert_eq!(step.status, StatusCode::OK, "{}", step.body);
        }
        panic!("the session never ended");
    }

    /// Registers a passenger through the e-shop, confirms the email from the mailed link,
    /// and logs in.
    async fn passenger(&self, email: &str) -> (String, String) {
        let registration = json!({ "email": email, "display_name": "Petra Nováková", "password": common::PASSWORD });
        let answer = self.call(Method::POST, "/api/v1/customers/register", None, Some(registration)).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        let customer = s(&answer.body, "id");
        let link = self.mailed_text(email, "confirm-email").await;
        let token = link.split("token=").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
        let confirmed =
            self.call(Method::POST, "/api/v1/customers/confirm-email", None, Some(json!({ "token": token }))).await;
        assert_eq!(confirmed.status, StatusCode::NO_CONTENT, "{}", confirmed.body);
        (customer, self.login(Realm::Customer, email).await)
    }

    /// The body of the newest mail to `to` containing `needle`.
    async fn mailed_text(&self, to: &str, needle: &str) -> String {
        let bodies: Vec<String> = smartticket_store::sql!(self.test_db.db.reader(), |c| {
            sqlx::query_scalar("SELECT body_text FROM outbox_mail WHERE to_address = $1 ORDER BY created_at_us DESC")
                .bind(to)
                .fetch_all(c)
                .await
        })
        .unwrap();
        bodies.into_iter().find(|b| b.contains(needle)).unwrap_or_else(|| panic!("no mail to {to} with {needle}"))
    }
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 250) as u8, (y % 250) as u8, 90]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    bytes.into_inner()
}

fn month_pass(medium: &str, discount: &str) -> Value {
    json!({ "medium_id": medium, "product": "monthly", "discount": discount, "zones": { "combi": "OLOMOUC" }, "start_date": "2026-12-01" })
}

fn top_up(medium: &str, minor: i64) -> Value {
    json!({ "medium_id": medium, "product": "purse", "discount": "adult", "amount_minor": minor })
}

crate::app_tests! {
    async fn a_passenger_buys_pays_on_the_bank_page_and_the_card_is_updated_at_the_next_tap(app) {
        let operator = app.token_for(Role::Operator).await;
        app.publish_network(&operator).await;
        let mut card = app.stock_card(&operator, [4, 1, 2, 3, 4, 5, 6], "1001").await;
        let (_customer, me) = app.passenger("petra@example.org").await;

        // Her fare card, by its printed number; activated online once.
        let answer = app.call(Method::POST, "/api/v1/media/fare-cards", Some(&me), Some(json!({ "printed_number": "1001", "label": "my card" }))).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        assert_eq!(answer.body["status"], "inactive");
        let fare_card = s(&answer.body, "id");
        let activated = app.call(Method::POST, &format!("/api/v1/media/{fare_card}/activate"), Some(&me), None).await;
        assert_eq!(activated.body["status"], "active", "{}", activated.body);

        // Her bank card, through the token gate: only a token and a masked number are kept.
        let bank = json!({ "pan": "4111 1111 1111 1111", "expiry": "12/29", "label": "Visa" });
        let answer = app.call(Method::POST, "/api/v1/token-gate/bank-cards", Some(&me), Some(bank)).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        assert_eq!(answer.body["masked_pan"], "4111 **** **** 1111");
        assert!(!answer.body.to_string().contains("4111111111111111"));
        let stored: Vec<String> = smartticket_store::sql!(app.test_db.db.reader(), |c| {
            sqlx::query_scalar("SELECT details FROM audit_log").fetch_all(c).await
        })
        .unwrap();
        assert!(stored.iter().all(|d| !d.contains("4111111111111111") && !d.contains("1111 1111 1111")), "no PAN in the audit log");
        let bad = app.call(Method::POST, "/api/v1/token-gate/bank-cards", Some(&me), Some(json!({ "pan": "4111 1111 1111 1112", "expiry": "12/29" }))).await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "a number failing Luhn: {}", bad.body);

        // The cart: a month coupon and a top-up; the price is the catalogue's.
        let answer = app.call(Method::POST, "/api/v1/cart/items", Some(&me), Some(month_pass(&fare_card, "adult"))).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        let mut with_price = top_up(&fare_card, 20_000);
        with_price["price"] = json!(1);
        let refused = app.call(Method::POST, "/api/v1/cart/items", Some(&me), Some(with_price)).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "a client-sent price is refused: {}", refused.body);
        let cart = app.call(Method::POST, "/api/v1/cart/items", Some(&me), Some(top_up(&fare_card, 20_000))).await;
        assert_eq!(cart.body["total"], json!({ "amount_minor": 90_000, "currency": "CZK" }), "{}", cart.body);

        // Checkout: no key, refused; the same key twice, one order.
        let no_key = app.call(Method::POST, "/api/v1/cart/checkout", Some(&me), None).await;
        assert_eq!(no_key.problem(), Some("invalid-header"));
        let order = app.call_with(Method::POST, "/api/v1/cart/checkout", &me, &[("idempotency-key", "checkout-1")], None).await;
        assert_eq!(order.status, StatusCode::CREATED, "{}", order.body);
        let again = app.call_with(Method::POST, "/api/v1/cart/checkout", &me, &[("idempotency-key", "checkout-1")], None).await;
        assert_eq!(again.body["id"], order.body["id"], "a double click gives the same order");
        let order_id = s(&order.body, "id");

        // Pay on the bank's page.
        let payment = app.call(Method::POST, &format!("/api/v1/orders/{order_id}/payments"), Some(&me), Some(json!({ "method": "card" }))).await;
        assert_eq!(payment.status, StatusCode::CREATED, "{}", payment.body);
        let redirect = s(&payment.body, "redirect_url");
        let page_path = redirect.strip_prefix("http://127.0.0.1:8080").unwrap().to_owned();
        let (status, _, html) = app.raw(Method::GET, &page_path, None, "text/plain", Vec::new()).await;
        assert_eq!(status, StatusCode::OK);
        let html = String::from_utf8(html).unwrap();
        assert!(html.contains("900.00 CZK"), "{html}");
        let form_path = page_path.split('?').next().unwrap().to_owned();
        let form = format!("pan=4111+1111+1111+1111&expiry=12%2F29&return_url=http%3A%2F%2F127.0.0.1%3A8080%2Forders%2F{order_id}");
        let (status, headers, _) = app.raw(Method::POST, &form_path, None, "application/x-www-form-urlencoded", form.into_bytes()).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers["location"], format!("http://127.0.0.1:8080/orders/{order_id}"));
        let paid = app.call(Method::GET, &format!("/api/v1/orders/{order_id}"), Some(&me), None).await;
        assert_eq!(paid.body["status"], "paid", "{}", paid.body);
        let entitlements = paid.body["entitlements"].as_array().unwrap();
        assert_eq!(entitlements.len(), 2);
        assert!(entitlements.iter().all(|e| e["status"] == "pending_delivery"));
        let receipt = app.mailed_text("petra@example.org", "Total: 900.00 CZK").await;
        assert!(receipt.contains("next time you hold it"), "{receipt}");

        // The next tap on a reader relayed over HTTP writes both.
        let report = app.tap(&me, &mut card).await;
        assert_eq!(report["delivered"].as_array().unwrap().len(), 2, "{report}");
        assert_eq!(report["balance"], json!({ "amount_minor": 20_000, "currency": "CZK" }));
        let keys = KeySource { hsm: app.hsm.as_ref(), system_id: common::SYSTEM_ID };
        let mut reader = Desfire::new(card);
        let state = ops::read(&mut reader, &keys).unwrap();
        assert_eq!(state.purse, 20_000);
        assert_eq!(state.contracts.iter().flatten().count(), 1);
        let after = app.call(Method::GET, &format!("/api/v1/media/{fare_card}/entitlements"), Some(&me), None).await;
        assert!(after.body.as_array().unwrap().iter().all(|e| e["status"] == "delivered"), "{}", after.body);

        // A day ticket on the bank card is in force at once (account-based, greenlist).
        let bank_card = s(&answer_bank_card(app, &me).await, "id");
        let day = json!({ "medium_id": bank_card, "product": "day", "discount": "adult", "zones": { "zones": [1] } });
        let order = app.call_with(Method::POST, "/api/v1/orders", &me, &[("idempotency-key", "day-1")], Some(json!({ "items": [day] }))).await;
        assert_eq!(order.status, StatusCode::CREATED, "{}", order.body);
        let id = s(&order.body, "id");
        let declined = app.call(Method::POST, &format!("/api/v1/orders/{id}/payments"), Some(&me), Some(json!({ "method": "card" }))).await;
        let payment_id = s(&declined.body, "id");
        let form = "pan=4000000000000002&expiry=12%2F29".to_owned();
        let (status, _, _) = app.raw(Method::POST, &format!("/test-acquirer/checkout/{payment_id}"), None, "application/x-www-form-urlencoded", form.into_bytes()).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        let payment = app.call(Method::GET, &format!("/api/v1/payments/{payment_id}"), Some(&me), None).await;
        assert_eq!(payment.body["status"], "declined", "{}", payment.body);
        let retry = app.call(Method::POST, &format!("/api/v1/orders/{id}/payments"), Some(&me), Some(json!({ "method": "card" }))).await;
        let payment_id = s(&retry.body, "id");
        let (status, _, _) = app.raw(Method::POST, &format!("/test-acquirer/checkout/{payment_id}"), None, "application/x-www-form-urlencoded", b"pan=4111111111111111&expiry=12%2F29".to_vec()).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        let order = app.call(Method::GET, &format!("/api/v1/orders/{id}"), Some(&me), None).await;
        assert_eq!(order.body["entitlements"][0]["status"], "active", "{}", order.body);

        // A forged webhook is refused.
        let forged = app.raw(Method::POST, "/api/v1/payments/callbacks/card", None, "application/json", b"{}".to_vec()).await;
        assert_eq!(forged.0, StatusCode::BAD_REQUEST);
    }

    async fn a_cashier_approves_a_discount_with_a_photo_takes_cash_and_replaces_a_lost_card(app) {
        let operator = app.token_for(Role::Operator).await;
        let cashier = app.token_for(Role::Cashier).await;
        app.publish_network(&operator).await;
        app.stock_card(&operator, [4, 2, 2, 2, 2, 2, 2], "2001").await;
        app.stock_card(&operator, [4, 3, 3, 3, 3, 3, 3], "2002").await;
        let (customer, me) = app.passenger("jan@example.org").await;
        let card = app.call(Method::POST, "/api/v1/media/fare-cards", Some(&me), Some(json!({ "printed_number": "2001" }))).await;
        let card_id = s(&card.body, "id");
        let receipt = s(&card.body, "registration_receipt");

        // Without an approval, no student price.
        let refused = app.call(Method::POST, "/api/v1/cart/items", Some(&me), Some(month_pass(&card_id, "student"))).await;
        assert_eq!(refused.problem(), Some("discount-not-approved"), "{}", refused.body);
        // A photo: not an image is refused; a PNG is stored as a clean JPEG.
        let (status, _, body) = app.raw(Method::POST, "/api/v1/photos", Some(&me), "image/png", b"<html>not a photo</html>".to_vec()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{}", String::from_utf8_lossy(&body));
        let (status, _, body) = app.raw(Method::POST, "/api/v1/photos", Some(&me), "text/plain", png(300, 400)).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", String::from_utf8_lossy(&body));
        let (status, _, body) = app.raw(Method::POST, "/api/v1/photos", Some(&me), "image/png", png(300, 400)).await;
        assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
        let photo: Value = serde_json::from_slice(&body).unwrap();
        let request = app.call(Method::POST, "/api/v1/discount-requests", Some(&me), Some(json!({ "category": "student", "photo_id": photo["id"], "note": "ISIC" }))).await;
        assert_eq!(request.status, StatusCode::CREATED, "{}", request.body);

        // The cashier's queue, with the photo beside the request.
        let queue = app.call(Method::GET, "/api/v1/discount-requests?status=pending", Some(&cashier), None).await;
        let waiting = &queue.body["items"][0];
        assert_eq!(waiting["customer_name"], "Petra Nováková");
        let (status, headers, jpeg) = app.raw(Method::GET, &format!("/api/v1/photos/{}", s(waiting, "photo_id")), Some(&cashier), "text/plain", Vec::new()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "image/jpeg");
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
        let approval = json!({ "method": "document_at_counter", "document": "ISIC S 420 000 111", "valid_until": "2027-08-31" });
        let approved = app.call(Method::POST, &format!("/api/v1/discount-requests/{}/approve", s(waiting, "id")), Some(&cashier), Some(approval)).await;
        assert_eq!(approved.body["status"], "approved", "{}", approved.body);
        assert_eq!(approved.body["method"], "document_at_counter");
        let cart = app.call(Method::POST, "/api/v1/cart/items", Some(&me), Some(month_pass(&card_id, "student"))).await;
        assert_eq!(cart.body["total"]["amount_minor"], 35_000, "{}", cart.body);
        let order = app.call_with(Method::POST, "/api/v1/cart/checkout", &me, &[("idempotency-key", "k1")], None).await;
        let order_id = s(&order.body, "id");

        // The passenger pays in cash at the counter: the cashier's shift takes it.
        let no_shift = app.call(Method::POST, &format!("/api/v1/orders/{order_id}/payments"), Some(&cashier), Some(json!({ "method": "cash" }))).await;
        assert_eq!(no_shift.problem(), Some("conflict"), "{}", no_shift.body);
        let shift = app.call(Method::POST, "/api/v1/shifts", Some(&cashier), Some(json!({ "counter": "Hlavní nádraží 1", "float": { "amount_minor": 100_000, "currency": "CZK" } }))).await;
        assert_eq!(shift.status, StatusCode::CREATED, "{}", shift.body);
        let paid = app.call(Method::POST, &format!("/api/v1/orders/{order_id}/payments"), Some(&cashier), Some(json!({ "method": "cash" }))).await;
        assert_eq!(paid.body["status"], "approved", "{}", paid.body);
        let closed = app.call(Method::POST, "/api/v1/shifts/current/close", Some(&cashier), Some(json!({ "counted": { "amount_minor": 135_000, "currency": "CZK" } }))).await;
        assert_eq!(closed.body["difference"]["amount_minor"], 0, "{}", closed.body);

        // The card is lost: a new one is registered to her at the counter and takes over.
        let new_card = app.call(Method::POST, "/api/v1/media/fare-cards", Some(&cashier), Some(json!({ "printed_number": "2002", "customer_id": customer }))).await;
        let new_id = s(&new_card.body, "id");
        let wrong = app.call(Method::POST, &format!("/api/v1/media/{card_id}/replace"), Some(&cashier), Some(json!({ "replacement_id": new_id, "reason": "lost", "receipt": "WRONG" }))).await;
        assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY, "the registration receipt is checked: {}", wrong.body);
        let replaced = app.call(Method::POST, &format!("/api/v1/media/{card_id}/replace"), Some(&cashier), Some(json!({ "replacement_id": new_id, "reason": "lost on the bus", "receipt": receipt }))).await;
        assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);
        assert_eq!(replaced.body["blocked"]["status"], "permanently_blocked");
        assert_eq!(replaced.body["moved"].as_array().unwrap().len(), 1);
        let moved = app.call(Method::GET, &format!("/api/v1/media/{new_id}/entitlements"), Some(&me), None).await;
        assert_eq!(moved.body[0]["discount"], "student", "{}", moved.body);
        assert_eq!(moved.body[0]["status"], "pending_delivery");
        // The lifecycle refuses what it does not allow, listing what it would.
        let illegal = app.call(Method::POST, &format!("/api/v1/media/{card_id}/status"), Some(&cashier), Some(json!({ "event": "unblock" }))).await;
        assert_eq!(illegal.problem(), Some("illegal-transition"), "{}", illegal.body);
        assert_eq!(illegal.body["allowed_events"], json!(["destroy"]));
    }

    async fn a_partner_sells_with_its_api_key_and_downloads_its_own_registry(app) {
        let operator = app.token_for(Role::Operator).await;
        let partner = app.token_for(Role::Partner).await;
        let other_partner = app.token_for(Role::Partner).await;
        app.publish_network(&operator).await;
        app.stock_card(&operator, [4, 4, 4, 4, 4, 4, 4], "3001").await;
        app.stock_card(&operator, [4, 5, 5, 5, 5, 5, 5], "3002").await;
        let (_, me) = app.passenger("eva@example.org").await;
        let hers = app.call(Method::POST, "/api/v1/media/fare-cards", Some(&me), Some(json!({ "printed_number": "3002" }))).await;
        let hers = s(&hers.body, "id");

        // An anonymous card sold at the kiosk, topped up there.
        let card = app.call(Method::POST, "/api/v1/media/fare-cards", Some(&partner), Some(json!({ "printed_number": "3001" }))).await;
        assert_eq!(card.status, StatusCode::CREATED, "{}", card.body);
        let card = s(&card.body, "id");
        let order = app.call_with(Method::POST, "/api/v1/orders", &partner, &[("idempotency-key", "sale-1")], Some(json!({ "items": [top_up(&card, 30_000)] }))).await;
        assert_eq!(order.status, StatusCode::CREATED, "{}", order.body);
        let order_id = s(&order.body, "id");
        let paid = app.call(Method::POST, &format!("/api/v1/orders/{order_id}/payments"), Some(&partner), Some(json!({ "method": "partner" }))).await;
        assert_eq!(paid.body["status"], "approved", "{}", paid.body);

        // A sale in one call (order and payment together), and its retry.
        let sale = json!({ "items": [top_up(&card, 5_000)], "payment": { "method": "partner" } });
        let sold = app.call_with(Method::POST, "/api/v1/sales", &partner, &[("idempotency-key", "pos-1")], Some(sale.clone())).await;
        assert_eq!(sold.status, StatusCode::CREATED, "{}", sold.body);
        assert_eq!(sold.body["status"], "paid");
        let retried = app.call_with(Method::POST, "/api/v1/sales", &partner, &[("idempotency-key", "pos-1")], Some(sale)).await;
        assert_eq!(retried.body["id"], sold.body["id"], "a retried sale is the same sale");
        let by_card = json!({ "items": [top_up(&card, 5_000)], "payment": { "method": "card" } });
        let refused = app.call_with(Method::POST, "/api/v1/sales", &partner, &[("idempotency-key", "pos-2")], Some(by_card)).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);

        // Not another partner's customers, nor their orders or cards.
        let theirs = app.call_with(Method::POST, "/api/v1/orders", &partner, &[("idempotency-key", "sale-2")], Some(json!({ "items": [top_up(&hers, 100)] }))).await;
        assert_eq!(theirs.status, StatusCode::NOT_FOUND, "{}", theirs.body);
        let peek = app.call(Method::GET, &format!("/api/v1/media/{hers}"), Some(&partner), None).await;
        assert_eq!(peek.status, StatusCode::NOT_FOUND);
        let peek = app.call(Method::GET, &format!("/api/v1/orders/{order_id}"), Some(&other_partner), None).await;
        assert_eq!(peek.status, StatusCode::NOT_FOUND);
        let passenger_pays = app.call(Method::POST, &format!("/api/v1/orders/{order_id}/payments"), Some(&me), Some(json!({ "method": "card" }))).await;
        assert_eq!(passenger_pays.status, StatusCode::NOT_FOUND);

        // Its registry, in three formats; another partner's is not its to read.
        let json = app.call(Method::GET, "/api/v1/registry/partner-sales?from=2026-11-21&to=2026-11-21", Some(&partner), None).await;
        assert_eq!(json.status, StatusCode::OK, "{}", json.body);
        assert_eq!(json.body["rows"].as_array().unwrap().len(), 1);
        assert_eq!(json.body["rows"][0]["gross"]["amount_minor"], 35_000);
        let (status, headers, csv) = app.raw(Method::GET, "/api/v1/registry/partner-sales?from=2026-11-21&to=2026-11-21&format=csv", Some(&partner), "text/plain", Vec::new()).await;
        assert_eq!(status, StatusCode::OK);
        assert!(headers["content-type"].to_str().unwrap().starts_with("text/csv"));
        let csv = String::from_utf8(csv).unwrap();
        assert!(csv.starts_with("date,partner_id,partner,channel,orders,items,gross,refunded"), "{csv}");
        assert!(csv.contains(",partner,2,2,350.00,0.00"), "{csv}");
        let (status, _, xlsx) = app.raw(Method::GET, "/api/v1/registry/partner-sales?from=2026-11-21&to=2026-11-21&format=xlsx", Some(&partner), "text/plain", Vec::new()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&xlsx[..2], b"PK", "an XLSX workbook is a zip");
        let empty = app.call(Method::GET, "/api/v1/registry/partner-sales?from=2026-11-21&to=2026-11-21", Some(&other_partner), None).await;
        assert!(empty.body["rows"].as_array().unwrap().is_empty());
        let partner_id = json.body["rows"][0]["partner_id"].as_str().unwrap().to_owned();
        let snoop = app.call(Method::GET, &format!("/api/v1/registry/partner-sales?from=2026-11-21&to=2026-11-21&partner_id={partner_id}"), Some(&other_partner), None).await;
        assert_eq!(snoop.status, StatusCode::FORBIDDEN);
    }
}

async fn answer_bank_card(app: &TestApp, token: &str) -> Value {
    let media = app.call(Method::GET, "/api/v1/media", Some(token), None).await;
    media.body.as_array().unwrap().iter().find(|m| m["kind"] == "bank_card").unwrap().clone()
}
