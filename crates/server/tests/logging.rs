//! Each request, good or bad, writes exactly one log line, and server-side failures say
//! why in that line without telling the client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Method, Request};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn take_lines(&self) -> Vec<String> {
        let bytes = std::mem::take(&mut *self.0.lock().unwrap());
        String::from_utf8(bytes).unwrap().lines().map(str::to_owned).collect()
    }
}

#[test]
fn every_bad_request_logs_exactly_one_line() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber =
        tracing_subscriber::fmt().json().with_env_filter("info,sqlx=warn").with_writer(move || writer.clone()).finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let app = common::TestApp::sqlite().await;
        let admin = app.token_for(smartticket_identity::Role::Admin).await;
        capture.take_lines();
        let bad: Vec<(Method, &str, Option<&str>, &str)> = vec![
            (Method::POST, "/api/v1/staff", Some("{not json"), "invalid-json"),
            (Method::POST, "/api/v1/staff", Some(r#"{"email":"x@example.cz","extra":1}"#), "invalid-body"),
            (
                Method::POST,
                "/api/v1/customers/register",
                Some(r#"{"email":"nope","display_name":"A","password":"Tramvaj jede na Hlavní nádraží"}"#),
                "validation",
            ),
            (
                Method::POST,
                "/api/v1/customers/register",
                Some(r#"{"email":"a@example.cz","display_name":"A","password":""}"#),
                "weak-password",
            ),
            (Method::GET, "/api/v1/staff?limit=9999", None, "invalid-query"),
            (Method::GET, "/api/v1/nowhere", None, "no-route"),
        ];
        for (n, (method, path, body, slug)) in bad.into_iter().enumerate() {
            let mut request = Request::builder()
                .method(method)
                .uri(path)
                .header("authorization", format!("Bearer {admin}"))
                .header("x-request-id", format!("bad-{n}"));
            if body.is_some() {
                request = request.header("content-type", "application/json");
            }
            let answer = app.send(request.body(Body::from(body.unwrap_or_default().to_owned())).unwrap()).await;
            assert_eq!(answer.problem(), Some(slug));
            let lines = capture.take_lines();
            assert_eq!(lines.len(), 1, "{slug}: expected one log line, got {lines:#?}");
            assert!(lines[0].contains(&format!("\"request_id\":\"bad-{n}\"")), "{}", lines[0]);
            assert!(lines[0].contains(&format!("\"problem\":\"{slug}\"")), "{}", lines[0]);
        }
        app.finish().await;

        let mut options = smartticket_store::StoreOptions::postgres("postgres://nobody@127.0.0.1:1/none");
        options.connect_lazily = true;
        options.acquire_timeout = std::time::Duration::from_millis(200);
        let db = smartticket_store::Db::open(&options).await.unwrap();
        let clock = Arc::new(smartticket_core::ManualClock::new(smartticket_core::Timestamp::EPOCH));
        let down =
            smartticket_server::app(smartticket_server::AppState::new(common::services(db, clock, Default::default())));
        capture.take_lines();
        use tower::ServiceExt;
        let request = Request::post("/api/v1/auth/login")
            .header("content-type", "application/json")
            .body(Body::from(r#"{"realm":"staff","email":"a@example.cz","password":"whatever it is"}"#))
            .unwrap();
        let response = down.router.oneshot(request).await.unwrap();
        assert_eq!(response.status(), 503);
        let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
        assert!(!String::from_utf8_lossy(&body).contains("127.0.0.1"), "the client is not told internals");
        let lines = capture.take_lines();
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert!(lines[0].contains("database-unavailable") && lines[0].contains("\"cause\""), "{}", lines[0]);
    });
}
