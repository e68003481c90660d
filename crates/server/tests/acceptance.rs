//! Offline acceptance over HTTP, on SQLite and PostgreSQL: a carrier downloads the signed
//! lists (full, delta, "up to date"), the XML greenlist and its schema, and uploads
//! validator batches that are acknowledged once, audited once, and refused on conflict.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use common::TestApp;
use http_body_util::BodyExt;
use serde_json::json;
use smartticket_acceptance::lists::{Denylist, ListHolder, ListKind, TrustedKeys};
use smartticket_identity::Role;
use tower::ServiceExt;

/// A GET answered with raw bytes (list files are binary).
async fn get_bytes(app: &TestApp, path: &str, token: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
    let request =
        Request::builder().uri(path).header("authorization", format!("Bearer {token}")).body(Body::empty()).unwrap();
    let mut request = request;
    request.extensions_mut().insert(axum::extract::ConnectInfo(std::net::SocketAddr::from(([203, 0, 113, 7], 40000))));
    let response = app.app.router.clone().oneshot(request).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.into_body().collect().await.unwrap().to_bytes().to_vec())
}

async fn publish(app: &TestApp, kind: ListKind) -> u64 {
    let now = app.state.clock().now();
    app.state.fleet().publish(kind, app.hsm.as_ref(), now).await.unwrap().version
}

app_tests! {
    async fn a_carrier_downloads_lists_full_delta_and_up_to_date(app) {
        let carrier = app.token_for(Role::Carrier).await;
        let before = app.call(Method::GET, "/api/v1/lists/denylist", Some(&carrier), None).await;
        assert_eq!((before.status, before.problem()), (StatusCode::SERVICE_UNAVAILABLE, Some("not-ready")));
        assert!(before.headers.contains_key("retry-after"));

        assert_eq!(publish(app, ListKind::Denylist).await, 1);
        let (status, headers, file) = get_bytes(app, "/api/v1/lists/denylist", &carrier).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "application/octet-stream");
        assert_eq!((&headers["x-list-version"], &headers["x-list-base-version"]), (&"1".parse().unwrap(), &"0".parse().unwrap()));
        let keys = TrustedKeys::from_hsm(app.hsm.as_ref()).unwrap();
        let mut holder = ListHolder::<Denylist>::new();
        assert_eq!(holder.offer(&file, &keys).unwrap().list_version, 1);

        let (status, headers, body) = get_bytes(app, "/api/v1/lists/denylist?since=1", &carrier).await;
        assert_eq!((status, body.len()), (StatusCode::NO_CONTENT, 0), "up to date");
        assert_eq!(headers["x-list-version"], "1");
        let unknown = app.call(Method::GET, "/api/v1/lists/denylist?since=9", Some(&carrier), None).await;
        assert_eq!((unknown.status, unknown.problem()), (StatusCode::CONFLICT, Some("list-version-unknown")));
        let bad = app.call(Method::GET, "/api/v1/lists/denylist?since=x", Some(&carrier), None).await;
        assert_eq!(bad.problem(), Some("invalid-query"));

        // The XML service and its schema.
        publish(app, ListKind::Greenlist).await;
        let (status, headers, xml) = get_bytes(app, "/api/v1/greenlist.xml", &carrier).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "application/xml; charset=utf-8");
        assert!(String::from_utf8(xml).unwrap().contains(r#"<greenlist version="1" baseVersion="0""#));
        let (status, _, schema) = get_bytes(app, "/api/v1/greenlist.xsd", &carrier).await;
        assert_eq!((status, schema.as_slice()), (StatusCode::OK, smartticket_fleet::GREENLIST_XSD.as_bytes()));
        let cashier = app.token_for(Role::Cashier).await;
        let refused = app.call(Method::GET, "/api/v1/greenlist.xml", Some(&cashier), None).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
    }

    async fn validator_batches_are_acknowledged_once_and_conflicts_refused(app) {
        let carrier = app.token_for(Role::Carrier).await;
        let admin = app.token_for(Role::Admin).await;
        let body = json!({
            "batch_id": "bus17-1-2", "device_id": "bus-17", "first_sequence": 1, "last_sequence": 2,
            "records": ["dGFwIDE=", "dGFwIDI="],
        });
        let ack = app.call(Method::POST, "/api/v1/validators/batches", Some(&carrier), Some(body.clone())).await;
        assert_eq!(ack.status, StatusCode::OK, "{}", ack.body);
        assert_eq!(ack.body["contiguous_through"], 2);
        let again = app.call(Method::POST, "/api/v1/validators/batches", Some(&carrier), Some(body.clone())).await;
        assert_eq!((again.status, &again.body), (StatusCode::OK, &ack.body), "a replay is answered the same");
        let audit = app.call(Method::GET, "/api/v1/audit?limit=500", Some(&admin), None).await;
        let uploads = audit.body["items"].as_array().unwrap().iter().filter(|e| e["action"] == "validator.batch").count();
        assert_eq!(uploads, 1, "audited once");

        let mut forged = body.clone();
        forged["records"][1] = json!("Zm9yZ2Vk");
        let conflict = app.call(Method::POST, "/api/v1/validators/batches", Some(&carrier), Some(forged)).await;
        assert_eq!((conflict.status, conflict.problem()), (StatusCode::CONFLICT, Some("batch-conflict")));
        let mut not_base64 = body.clone();
        not_base64["batch_id"] = json!("other");
        not_base64["records"][0] = json!("***");
        let invalid = app.call(Method::POST, "/api/v1/validators/batches", Some(&carrier), Some(not_base64)).await;
        assert_eq!((invalid.status, invalid.problem()), (StatusCode::UNPROCESSABLE_ENTITY, Some("validation")));
        let mut gap = body;
        gap["last_sequence"] = json!(5);
        let invalid = app.call(Method::POST, "/api/v1/validators/batches", Some(&carrier), Some(gap)).await;
        assert_eq!(invalid.body["errors"][0]["field"], "records");

        // What is stored of the device: each record once, however often it was sent.
        let stored = app.call(Method::GET, "/api/v1/validators/bus-17", Some(&carrier), None).await;
        assert_eq!(stored.status, StatusCode::OK, "{}", stored.body);
        assert_eq!((stored.body["records_stored"].as_u64(), stored.body["contiguous_through"].as_u64()), (Some(2), Some(2)));
        assert_eq!(stored.body["batches_received"], 1);
        let unknown = app.call(Method::GET, "/api/v1/validators/bus-99", Some(&carrier), None).await;
        assert_eq!((unknown.status, unknown.problem()), (StatusCode::NOT_FOUND, Some("not-found")));
    }
}
