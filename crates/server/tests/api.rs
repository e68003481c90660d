//! The API's contract, over HTTP semantics in-process: who may call what, the OpenAPI
//! document against the routes, problem documents for bad input, and the audit trail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use smartticket_identity::Role;
use smartticket_server::Access;

use common::{PASSWORD, TestApp};

/// A value for a path parameter that the parameter's schema accepts: typed ids carry a
/// pattern `^xyz_[0-9a-f]{32}$`, from which a well-formed (and absent) id is made.
fn sample_path_value(doc: &Value, operation: &Value, name: &str) -> String {
    let parameters = operation["parameters"].as_array().cloned().unwrap_or_default();
    let parameter =
        parameters.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("parameter {name} is not documented"));
    let mut schema = parameter["schema"].clone();
    if let Some(reference) = schema["$ref"].as_str() {
        let schema_name = reference.trim_start_matches("#/components/schemas/");
        schema = doc["components"]["schemas"][schema_name].clone();
    }
    // A plain string (a validator's device id: hex) takes hex digits.
    if schema["pattern"].is_null() && schema["type"] == "string" {
        return "0".repeat(32);
    }
    let pattern = schema["pattern"].as_str().unwrap_or_else(|| panic!("parameter {name} has no pattern: {schema}"));
    let prefix = pattern.trim_start_matches('^').split('_').next().unwrap();
    format!("{prefix}_{}", "0".repeat(32))
}

fn fill_path(doc: &Value, operation: &Value, template: &str) -> String {
    template
        .split('/')
        .map(|segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => sample_path_value(doc, operation, name),
            None => segment.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn openapi(app: &TestApp) -> Value {
    let answer = app.call(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["content-type"], "application/json");
    answer.body
}

fn operations(doc: &Value) -> Vec<(Method, String, Value)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if let Ok(method) = method.to_uppercase().parse::<Method>() {
                found.push((method, path.clone(), operation.clone()));
            }
        }
    }
    found
}

app_tests! {
    async fn every_route_enforces_its_declared_roles(app) {
        let doc = openapi(app).await;
        let mut tokens = std::collections::HashMap::new();
        for role in Role::ALL {
            tokens.insert(role, app.token_for(role).await);
        }
        let mut checked = 0;
        for (method, template, operation) in operations(&doc) {
            let declared: Vec<Role> = serde_json::from_value(operation["x-roles"].clone())
                .unwrap_or_else(|_| panic!("{method} {template} does not declare x-roles"));
            let path = fill_path(&doc, &operation, &template);
            let body = matches!(method, Method::POST | Method::PATCH | Method::PUT).then(|| json!({}));
            let anonymous = app.call(method.clone(), &path, None, body.clone()).await;
            if declared.is_empty() {
                assert_ne!(anonymous.status, StatusCode::UNAUTHORIZED, "{method} {template} is public");
                continue;
            }
            assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{method} {template} without credentials");
            assert_eq!(anonymous.problem(), Some("unauthenticated"));
            assert_eq!(anonymous.headers["www-authenticate"], "Bearer");
            for role in Role::ALL {
                let answer = app.call(method.clone(), &path, Some(&tokens[&role]), body.clone()).await;
                if declared.contains(&role) {
                    assert!(
                        answer.status != StatusCode::UNAUTHORIZED && answer.status != StatusCode::FORBIDDEN,
                        "{method} {template} must admit {role}, got {} {:?}", answer.status, answer.body
                    );
                    if answer.status.is_success() && template.starts_with("/api/v1/auth/") {
                        // logout (or a password change) ended the session: take a new one.
                        tokens.insert(role, app.token_for(role).await);
                    }
                } else {
                    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{method} {template} must refuse {role}: {:?}", answer.body);
                    assert_eq!(answer.problem(), Some("forbidden"));
                    let allowed: Vec<String> = serde_json::from_value(answer.body["allowed_roles"].clone()).unwrap();
                    assert_eq!(allowed, declared.iter().map(|r| r.as_str().to_owned()).collect::<Vec<_>>());
                }
                checked += 1;
            }
        }
        assert!(checked > 100, "only {checked} role checks ran");
    }

    async fn bad_input_gets_a_specific_problem_and_changes_nothing(app) {
        let admin = app.token_for(Role::Admin).await;
        let audit_before = app.call(Method::GET, "/api/v1/audit?limit=500", Some(&admin), None).await.body["items"].as_array().unwrap().len();
        let raw = |body: &'static str, content_type: Option<&'static str>| {
            let mut builder = Request::builder().method(Method::POST).uri("/api/v1/staff").header("authorization", format!("Bearer {admin}"));
            if let Some(content_type) = content_type {
                builder = builder.header("content-type", content_type);
            }
            builder.body(Body::from(body)).unwrap()
        };
        let cases: Vec<(Request<Body>, StatusCode, &str)> = vec![
            (raw("{\"email\": ", Some("application/json")), StatusCode::BAD_REQUEST, "invalid-json"),
            (raw("{}", None), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type"),
            (raw(r#"{"email":"a@example.cz","display_name":"A","role":"admin","password":"Tramvaj jede na Hlavní nádraží","shoe_size":42}"#, Some("application/json")), StatusCode::UNPROCESSABLE_ENTITY, "invalid-body"),
            (raw(r#"{"email":"a@example.cz","display_name":"A","role":"emperor","password":"Tramvaj jede na Hlavní nádraží"}"#, Some("application/json")), StatusCode::UNPROCESSABLE_ENTITY, "invalid-body"),
            (raw(r#"{"email":7,"display_name":"A","role":"admin","password":"x"}"#, Some("application/json")), StatusCode::UNPROCESSABLE_ENTITY, "invalid-body"),
            (raw(r#"{"email":"not-an-email","display_name":"A","role":"admin","password":"Tramvaj jede na Hlavní nádraží"}"#, Some("application/json")), StatusCode::UNPROCESSABLE_ENTITY, "validation"),
            (raw(r#"{"email":"a@example.cz","display_name":"A","role":"admin","password":""}"#, Some("application/json")), StatusCode::UNPROCESSABLE_ENTITY, "weak-password"),
            (raw(r#"{"email":"a@example.cz","display_name":"A","role":"admin","password":"password123"}"#, Some("application/json")), StatusCode::UNPROCESSABLE_ENTITY, "weak-password"),
        ];
        for (request, status, slug) in cases {
            let answer = app.send(request).await;
            assert_eq!((answer.status, answer.problem()), (status, Some(slug)), "{:?}", answer.body);
            assert_eq!(answer.headers["content-type"], "application/problem+json");
            assert_eq!(answer.body["request_id"], answer.headers["x-request-id"].to_str().unwrap());
        }
        let validation = app.call(Method::POST, "/api/v1/staff", Some(&admin), Some(json!({"email":"nope","display_name":"A","role":"admin","password":PASSWORD}))).await;
        assert_eq!(validation.body["errors"][0]["field"], "email");

        let huge = "x".repeat(2 * 1024 * 1024);
        let request = Request::builder().method(Method::POST).uri("/api/v1/customers/register").header("content-type", "application/json").body(Body::from(format!("{{\"email\":\"{huge}\"}}"))).unwrap();
        let answer = app.send(request).await;
        assert_eq!((answer.status, answer.problem()), (StatusCode::PAYLOAD_TOO_LARGE, Some("body-too-large")));

        let first = app.call(Method::POST, "/api/v1/customers/register", None, Some(json!({"email":"dup@example.cz","display_name":"D","password":PASSWORD}))).await;
        assert_eq!(first.status, StatusCode::CREATED);
        assert_eq!(first.headers["location"], format!("/api/v1/customers/{}", first.body["id"].as_str().unwrap()));
        let again = app.call(Method::POST, "/api/v1/customers/register", None, Some(json!({"email":"DUP@example.cz","display_name":"D","password":PASSWORD}))).await;
        assert_eq!((again.status, again.problem()), (StatusCode::CONFLICT, Some("email-taken")));

        let checks: Vec<(Method, String, Option<String>, StatusCode, &str)> = vec![
            (Method::GET, "/api/v1/staff".into(), Some("sts_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into()), StatusCode::UNAUTHORIZED, "token-invalid"),
            (Method::GET, "/api/v1/staff".into(), Some("garbage".into()), StatusCode::UNAUTHORIZED, "token-invalid"),
            (Method::GET, "/api/v1/staff?limit=0".into(), Some(admin.clone()), StatusCode::BAD_REQUEST, "invalid-query"),
            (Method::GET, "/api/v1/staff?limit=abc".into(), Some(admin.clone()), StatusCode::BAD_REQUEST, "invalid-query"),
            (Method::GET, "/api/v1/staff?cursor=p1.'--".into(), Some(admin.clone()), StatusCode::BAD_REQUEST, "invalid-query"),
            (Method::GET, "/api/v1/staff/cus_00000000000000000000000000000000".into(), Some(admin.clone()), StatusCode::BAD_REQUEST, "invalid-path"),
            (Method::GET, "/api/v1/staff/stf_00000000000000000000000000000000".into(), Some(admin.clone()), StatusCode::NOT_FOUND, "not-found"),
            (Method::GET, "/api/v1/nothing-here".into(), None, StatusCode::NOT_FOUND, "no-route"),
            (Method::DELETE, "/api/v1/staff".into(), Some(admin.clone()), StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed"),
        ];
        for (method, path, token, status, slug) in checks {
            let answer = app.call(method.clone(), &path, token.as_deref(), None).await;
            assert_eq!((answer.status, answer.problem()), (status, Some(slug)), "{method} {path}: {:?}", answer.body);
        }

        let bad_reason = Request::builder().method(Method::POST).uri("/api/v1/partners").header("authorization", format!("Bearer {admin}")).header("content-type", "application/json").header("audit-reason", "%FF%FE").body(Body::from(r#"{"name":"X","contact_email":"x@example.cz"}"#)).unwrap();
        let answer = app.send(bad_reason).await;
        assert_eq!((answer.status, answer.problem()), (StatusCode::BAD_REQUEST, Some("invalid-header")));

        let staff = app.call(Method::GET, "/api/v1/staff", Some(&admin), None).await;
        assert_eq!(staff.body["items"].as_array().unwrap().len(), 1, "only the admin exists: {:?}", staff.body);
        let audit_after = app.call(Method::GET, "/api/v1/audit?limit=500", Some(&admin), None).await.body["items"].as_array().unwrap().len();
        assert_eq!(audit_after, audit_before + 1, "only the successful registration was recorded");
    }

    async fn sessions_expire_and_logins_lock(app) {
        let token = app.token_for(Role::Cashier).await;
        app.clock.advance_micros(9 * 3600 * 1_000_000);
        let answer = app.call(Method::GET, "/api/v1/auth/me", Some(&token), None).await;
        assert_eq!((answer.status, answer.problem()), (StatusCode::UNAUTHORIZED, Some("token-expired")));
        let body = json!({"realm":"staff","email":"nobody@example.cz","password":"wrong wrong wrong"});
        let answer = app.call(Method::POST, "/api/v1/auth/login", None, Some(body)).await;
        assert_eq!((answer.status, answer.problem()), (StatusCode::UNAUTHORIZED, Some("invalid-credentials")));
        app.identity().create_staff(&smartticket_identity::AuditCtx::system("t"), smartticket_identity::staff::NewStaff {
            email: "lock@example.cz".into(), display_name: "L".into(), role: smartticket_identity::StaffRole::Cashier,
            password: secrecy::SecretString::from(PASSWORD.to_owned()),
        }).await.unwrap();
        for _ in 0..5 {
            let body = json!({"realm":"staff","email":"lock@example.cz","password":"not the password"});
            app.call(Method::POST, "/api/v1/auth/login", None, Some(body)).await;
        }
        let body = json!({"realm":"staff","email":"lock@example.cz","password":PASSWORD});
        let answer = app.call(Method::POST, "/api/v1/auth/login", None, Some(body)).await;
        assert_eq!((answer.status, answer.problem()), (StatusCode::TOO_MANY_REQUESTS, Some("account-locked")));
        let retry: u64 = answer.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=900).contains(&retry), "{retry}");
    }

    async fn audit_records_who_what_when_where_and_why(app) {
        let admin = app.token_for(Role::Admin).await;
        let auditor = app.token_for(Role::Auditor).await;
        let request = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/partners")
            .header("authorization", format!("Bearer {admin}"))
            .header("content-type", "application/json")
            .header("audit-reason", "Smlouva%20%C4%8D.%2042%20podeps%C3%A1na")
            .header("x-request-id", "req-abc-123")
            .body(Body::from(r#"{"name":"Česká spořitelna","contact_email":"api@csas.cz"}"#))
            .unwrap();
        let created = app.send(request).await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        assert_eq!(created.headers["x-request-id"], "req-abc-123");
        let partner_id = created.body["id"].as_str().unwrap().to_owned();
        let me = app.call(Method::GET, "/api/v1/auth/me", Some(&admin), None).await;
        let log = app.call(Method::GET, &format!("/api/v1/audit?target={partner_id}"), Some(&auditor), None).await;
        assert_eq!(log.status, StatusCode::OK);
        let entries = log.body["items"].as_array().unwrap();
        assert_eq!(entries.len(), 1);
        let entry = &entries[0];
        assert_eq!(entry["action"], "partner.create");
        assert_eq!(entry["actor_kind"], "staff");
        assert_eq!(entry["actor_id"], me.body["id"]);
        assert_eq!(entry["actor_role"], "admin");
        assert_eq!(entry["outcome"], "ok");
        assert_eq!(entry["reason"], "Smlouva č. 42 podepsána");
        assert_eq!(entry["source_ip"], "203.0.113.7");
        assert_eq!(entry["request_id"], "req-abc-123");
        assert_eq!(entry["details"]["name"], "Česká spořitelna");
        assert!(entry["at"].as_str().unwrap().starts_with("2026-11-21T08:00:00"));

        let cashier = app.token_for(Role::Cashier).await;
        let denied = app.call(Method::GET, "/api/v1/audit", Some(&cashier), None).await;
        assert_eq!(denied.status, StatusCode::FORBIDDEN);
        let by_action = app.call(Method::GET, "/api/v1/audit?action=auth.login", Some(&auditor), None).await;
        assert!(by_action.body["items"].as_array().unwrap().iter().all(|e| e["action"] == "auth.login"));
    }
}

#[tokio::test]
async fn openapi_document_matches_the_routes() {
    let app = TestApp::sqlite().await;
    let doc = openapi(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: BTreeSet<(String, String)> =
        operations(&doc).into_iter().map(|(m, p, _)| (m.to_string(), p)).collect();
    let routed: BTreeSet<(String, String)> =
        app.app.routes.iter().map(|r| (r.method.to_string(), r.path.clone())).collect();
    assert_eq!(documented, routed, "the OpenAPI document and the route table disagree");
    for (method, template, operation) in operations(&doc) {
        assert!(operation["x-roles"].is_array(), "{method} {template} lacks x-roles");
        assert!(operation["responses"].as_object().is_some_and(|r| !r.is_empty()));
        let path = fill_path(&doc, &operation, &template);
        let answer = app.call(method.clone(), &path, None, None).await;
        assert_ne!(answer.problem(), Some("no-route"), "{method} {template} is documented but not routed");
        assert_ne!(answer.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {template} is documented but not routed");
    }
    let route = app.app.routes.iter().find(|r| r.path == "/api/v1/audit").unwrap();
    assert_eq!(route.access, Access::Roles(&[Role::Admin, Role::Auditor]));
    app.finish().await;
}

#[tokio::test]
async fn readiness_and_liveness() {
    let app = TestApp::sqlite().await;
    let health = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!((health.status, &health.body["status"]), (StatusCode::OK, &json!("ok")));
    let ready = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.body["database"], "sqlite");
    app.finish().await;
}

#[tokio::test]
async fn a_database_that_is_down_answers_503_and_liveness_stays_up() {
    let mut options = smartticket_store::StoreOptions::postgres("postgres://nobody@127.0.0.1:1/none");
    options.connect_lazily = true;
    options.acquire_timeout = std::time::Duration::from_millis(300);
    let db = smartticket_store::Db::open(&options).await.unwrap();
    let clock = std::sync::Arc::new(smartticket_core::ManualClock::new(smartticket_core::Timestamp::EPOCH));
    let state = smartticket_server::AppState::new(common::services(db, clock, Default::default()));
    let app = smartticket_server::app(state);
    let call = |method: Method, path: &'static str, body: Option<&'static str>| {
        let router = app.router.clone();
        async move {
            use tower::ServiceExt;
            let mut builder = Request::builder().method(method).uri(path);
            if body.is_some() {
                builder = builder.header("content-type", "application/json");
            }
            let response = router.oneshot(builder.body(Body::from(body.unwrap_or(""))).unwrap()).await.unwrap();
            (response.status(), response.headers().get("retry-after").cloned())
        }
    };
    assert_eq!(call(Method::GET, "/healthz", None).await.0, StatusCode::OK);
    let (status, retry) = call(Method::GET, "/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(retry.is_some());
    let login = r#"{"realm":"staff","email":"a@example.cz","password":"whatever it is"}"#;
    assert_eq!(call(Method::POST, "/api/v1/auth/login", Some(login)).await.0, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn a_change_without_an_audit_entry_is_caught() {
    use axum::routing::post;
    let router: axum::Router = axum::Router::new()
        .route("/forgetful", post(|| async { StatusCode::OK }))
        .route("/read", axum::routing::get(|| async { StatusCode::OK }))
        .layer(axum::middleware::from_fn(smartticket_server::middleware::audit_guard));
    use tower::ServiceExt;
    let response = router.clone().oneshot(Request::post("/forgetful").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR, "debug builds make a missing audit entry loud");
    let response = router.oneshot(Request::get("/read").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "reads need no audit entry");
}

#[tokio::test]
#[ignore = "manual: prints the OpenAPI document"]
async fn print_openapi() {
    let app = TestApp::sqlite().await;
    println!("{}", serde_json::to_string_pretty(&openapi(&app).await).unwrap());
}
