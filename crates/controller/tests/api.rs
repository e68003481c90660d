//! The controller's REST API through `tower::ServiceExt::oneshot`, on a real device
//! directory: the token, each endpoint, 422s naming their field, and nothing stored or
//! journalled on a bad request.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use smartticket_acceptance::access::{Controller, LIST_FILE_NAME};
use smartticket_controller::{ApiToken, BODY_BYTES_MAX, router};
use smartticket_core::{ManualClock, Timestamp};
use tower::ServiceExt;

const TOKEN: &str = "test-token-0123456789abcdef";

struct Device {
    router: Router,
    clock: Arc<ManualClock>,
    directory: tempfile::TempDir,
}

fn device() -> Device {
    let directory = tempfile::tempdir().unwrap();
    let (controller, _) = Controller::open(directory.path(), 5, 30).unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::parse_rfc3339("2026-03-01T08:00:00Z").unwrap()));
    let router = router(controller, ApiToken::new(TOKEN).unwrap(), clock.clone());
    Device { router, clock, directory }
}

struct Answer {
    status: StatusCode,
    content_type: String,
    body: Value,
}

impl Device {
    async fn call(&self, method: Method, uri: &str, body: Option<Value>, token: Option<&str>) -> Answer {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match body {
            Some(body) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(&body).unwrap())
            }
            None => Body::empty(),
        };
        self.send(request.body(body).unwrap()).await
    }

    async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|value| value.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
        Answer { status, content_type, body }
    }

    async fn get(&self, uri: &str) -> Answer {
        self.call(Method::GET, uri, None, Some(TOKEN)).await
    }

    async fn put(&self, uri: &str, body: Value) -> Answer {
        self.call(Method::PUT, uri, Some(body), Some(TOKEN)).await
    }

    async fn present(&self, identifier: &str, door: u8) -> Answer {
        let body = json!({ "identifier": identifier, "door": door });
        self.call(Method::POST, "/api/v1/present", Some(body), Some(TOKEN)).await
    }

    fn list_bytes(&self) -> Vec<u8> {
        std::fs::read(self.directory.path().join(LIST_FILE_NAME)).unwrap()
    }
}

fn assert_invalid_field(answer: &Answer, field: &str) {
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", answer.body);
    assert_eq!(answer.content_type, "application/problem+json");
    assert_eq!(answer.body["field"], field, "{:?}", answer.body);
    assert_eq!(answer.body["type"], "urn:smartticket:problem:validation");
}

#[tokio::test]
async fn the_token_is_required_except_for_health() {
    let device = device();
    let health = device.call(Method::GET, "/api/v1/health", None, None).await;
    assert_eq!((health.status, health.body.clone()), (StatusCode::OK, json!({ "status": "ok" })));
    for token in [None, Some("wrong-token-0123456789abcdef"), Some(""), Some(&TOKEN[..TOKEN.len() - 1])] {
        for (method, uri) in [
            (Method::GET, "/api/v1/identifiers"),
            (Method::GET, "/api/v1/identifiers/26:1"),
            (Method::DELETE, "/api/v1/identifiers/26:1"),
            (Method::GET, "/api/v1/events"),
        ] {
            let answer = device.call(method, uri, None, token).await;
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{uri}");
            assert_eq!(answer.content_type, "application/problem+json");
            assert_eq!(answer.body["type"], "urn:smartticket:problem:unauthenticated");
        }
        let put = device.call(Method::PUT, "/api/v1/identifiers/26:1", Some(json!({ "label": "x" })), token).await;
        assert_eq!(put.status, StatusCode::UNAUTHORIZED);
        let present =
            device.call(Method::POST, "/api/v1/present", Some(json!({ "identifier": "26:1", "door": 1 })), token).await;
        assert_eq!(present.status, StatusCode::UNAUTHORIZED);
    }
    // Nothing was stored or journalled by any of them.
    assert_eq!(device.get("/api/v1/identifiers").await.body["total"], 0);
    assert_eq!(device.get("/api/v1/events").await.body["events"], json!([]));
    assert_eq!(ApiToken::new("short").unwrap_err(), smartticket_controller::TokenError::Length);
}

#[tokio::test]
async fn manage_the_list_and_present() {
    let device = device();
    let created = device
        .put(
            "/api/v1/identifiers/26:1a2b3c",
            json!({ "label": "Petra", "doors": [1, 2], "valid_until": "2027-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["identifier"], "26:1A2B3C");
    assert_eq!(created.body["doors"], json!([1, 2]));
    assert_eq!((created.body["sequence"].clone(), created.body["revision"].clone()), (json!(1), json!(1)));
    let wide = device.put("/api/v1/identifiers/64:FFFFFFFFFFFFFFFF", json!({ "label": "Ivan" })).await;
    assert_eq!(wide.status, StatusCode::CREATED);

    let one = device.get("/api/v1/identifiers/26:1A2B3C").await;
    assert_eq!(one.body["label"], "Petra");
    assert_eq!(one.body["valid_until"], "2027-01-01T00:00:00.000000Z");
    let page = device.get("/api/v1/identifiers?offset=1&limit=1").await;
    assert_eq!(page.body["total"], 2);
    assert_eq!(page.body["items"][0]["identifier"], "64:FFFFFFFFFFFFFFFF");

    let granted = device.present("26:1A2B3C", 1).await;
    assert_eq!(granted.status, StatusCode::OK);
    assert_eq!(granted.body["decision"], "granted");
    assert_eq!(granted.body["sequence"], 3);
    let passback = device.present("26:1A2B3C", 1).await;
    assert_eq!(
        (passback.body["decision"].clone(), passback.body["reason"].clone()),
        (json!("denied"), json!("passback"))
    );
    device.clock.advance_micros(31_000_000);
    assert_eq!(device.present("26:1A2B3C", 1).await.body["decision"], "granted");
    assert_eq!(device.present("26:1A2B3C", 3).await.body["reason"], "wrong_door");
    assert_eq!(device.present("34:1A2B3C", 1).await.body["reason"], "unknown");

    let replaced = device
        .call(
            Method::PUT,
            "/api/v1/identifiers/26:1A2B3C",
            Some(json!({ "label": "Petra", "blocked": true })),
            Some(TOKEN),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK);
    assert_eq!(device.present("26:1A2B3C", 1).await.body["reason"], "blocked");

    let mut delete = Request::builder()
        .method(Method::DELETE)
        .uri("/api/v1/identifiers/64:FFFFFFFFFFFFFFFF")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header("x-actor", "alice")
        .body(Body::empty())
        .unwrap();
    let removed = device.send(delete).await;
    assert_eq!(removed.status, StatusCode::OK, "{:?}", removed.body);
    delete = Request::builder()
        .method(Method::DELETE)
        .uri("/api/v1/identifiers/64:FFFFFFFFFFFFFFFF")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(device.send(delete).await.status, StatusCode::NOT_FOUND);
    assert_eq!(device.get("/api/v1/identifiers/64:FFFFFFFFFFFFFFFF").await.status, StatusCode::NOT_FOUND);

    let events = device.get("/api/v1/events?since=0&limit=1000").await;
    let records: Vec<String> = events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| format!("{} {}", event["sequence"], event["record"].as_str().unwrap()))
        .collect();
    assert_eq!(
        records,
        [
            "1 access_put",
            "2 access_put",
            "3 access_presented",
            "4 access_presented",
            "5 access_presented",
            "6 access_presented",
            "7 access_presented",
            "8 access_put",
            "9 access_presented",
            "10 access_removed",
        ]
    );
    assert_eq!(events.body["events"][9]["actor"], "alice");
    assert_eq!(events.body["events"][0]["actor"], "api");
    assert_eq!(events.body["next_since"], 10);
    let later = device.get("/api/v1/events?since=8&limit=1").await;
    assert_eq!(later.body["events"][0]["sequence"], 9);
    assert_eq!(later.body["next_since"], 9);
}

#[tokio::test]
async fn bad_requests_name_their_field_and_change_nothing() {
    let device = device();
    device.put("/api/v1/identifiers/26:1", json!({ "label": "one" })).await;
    let list_before = device.list_bytes();
    let events_before = device.get("/api/v1/events").await.body;

    assert_invalid_field(&device.put("/api/v1/identifiers/65:1", json!({ "label": "x" })).await, "identifier");
    assert_invalid_field(&device.put("/api/v1/identifiers/26:4000000", json!({ "label": "x" })).await, "identifier");
    assert_invalid_field(&device.put("/api/v1/identifiers/nonsense", json!({ "label": "x" })).await, "identifier");
    assert_invalid_field(&device.put("/api/v1/identifiers/26:2", json!({ "label": "x".repeat(65) })).await, "label");
    assert_invalid_field(&device.put("/api/v1/identifiers/26:2", json!({})).await, "label");
    assert_invalid_field(&device.put("/api/v1/identifiers/26:2", json!({ "label": 5 })).await, "label");
    assert_invalid_field(
        &device.put("/api/v1/identifiers/26:2", json!({ "label": "x", "doors": [33] })).await,
        "doors",
    );
    assert_invalid_field(&device.put("/api/v1/identifiers/26:2", json!({ "label": "x", "doors": [] })).await, "doors");
    let inverted = json!({ "label": "x", "valid_from": "2026-02-01T00:00:00Z", "valid_until": "2026-01-01T00:00:00Z" });
    assert_invalid_field(&device.put("/api/v1/identifiers/26:2", inverted).await, "valid_until");
    assert_invalid_field(
        &device.put("/api/v1/identifiers/26:2", json!({ "label": "x", "valid_from": "soon" })).await,
        "valid_from",
    );
    assert_invalid_field(
        &device.put("/api/v1/identifiers/26:2", json!({ "label": "x", "valid_untill": null })).await,
        "valid_untill",
    );
    assert_invalid_field(
        &device.put("/api/v1/identifiers/26:2", json!({ "label": "x", "blocked": "yes" })).await,
        "blocked",
    );
    assert_invalid_field(&device.put("/api/v1/identifiers/26:2", json!(["label"])).await, "body");
    let long_actor = Request::builder()
        .method(Method::PUT)
        .uri("/api/v1/identifiers/26:2")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-actor", "a".repeat(65))
        .body(Body::from(r#"{"label":"x"}"#))
        .unwrap();
    assert_invalid_field(&device.send(long_actor).await, "x-actor");

    let present = |body: Value| device.call(Method::POST, "/api/v1/present", Some(body), Some(TOKEN));
    assert_invalid_field(&present(json!({ "identifier": "26:1", "door": 0 })).await, "door");
    assert_invalid_field(&present(json!({ "identifier": "26:1", "door": 300 })).await, "door");
    assert_invalid_field(&present(json!({ "identifier": "26:1" })).await, "door");
    assert_invalid_field(&present(json!({ "identifier": "65:1", "door": 1 })).await, "identifier");
    assert_invalid_field(&present(json!({ "identifier": 17, "door": 1 })).await, "identifier");

    assert_invalid_field(&device.get("/api/v1/identifiers?limit=1001").await, "limit");
    assert_invalid_field(&device.get("/api/v1/identifiers?limit=0").await, "limit");
    assert_invalid_field(&device.get("/api/v1/identifiers?offset=-1").await, "offset");
    assert_invalid_field(&device.get("/api/v1/identifiers?page=2").await, "page");
    assert_invalid_field(&device.get("/api/v1/events?since=x").await, "since");

    let not_json = Request::builder()
        .method(Method::PUT)
        .uri("/api/v1/identifiers/26:2")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{label"))
        .unwrap();
    assert_eq!(device.send(not_json).await.status, StatusCode::BAD_REQUEST);
    let not_typed = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/present")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::from(r#"{"identifier":"26:1","door":1}"#))
        .unwrap();
    assert_eq!(device.send(not_typed).await.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge = json!({ "label": "x", "padding": "y".repeat(BODY_BYTES_MAX) });
    let too_large = device.put("/api/v1/identifiers/26:2", huge).await;
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(too_large.content_type, "application/problem+json");
    assert_eq!(device.get("/api/v1/nothing").await.status, StatusCode::NOT_FOUND);

    assert_eq!(device.list_bytes(), list_before, "the list file is unchanged");
    assert_eq!(device.get("/api/v1/events").await.body, events_before, "nothing was journalled");
    assert_eq!(device.get("/api/v1/identifiers").await.body["total"], 1);
}

#[tokio::test]
async fn a_real_listener_serves_the_api() {
    let device = device();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(smartticket_controller::serve(listener, device.router.clone(), async {
        let _ = stopped.await;
    }));
    // A plain blocking client: the request is one line, and no HTTP client crate is needed.
    let answer = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream.write_all(b"GET /api/v1/health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with(r#"{"status":"ok"}"#), "{answer}");
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
