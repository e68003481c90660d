//! A test server over a fresh database, driven in-process with `oneshot`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use secrecy::SecretString;
use serde_json::Value;
use smartticket_core::{ManualClock, Timestamp};
use smartticket_crypto::hsm::soft::SoftHsm;
use smartticket_identity::partners::{NewApiKey, NewPartner};
use smartticket_identity::sessions::{LoginRequest, Realm};
use smartticket_identity::staff::NewStaff;
use smartticket_identity::{AuditCtx, Identity, IdentityPolicy, Role, StaffRole};
use smartticket_server::{App, AppState, ServerSettings};
use smartticket_store::testing::TestDb;
use tower::ServiceExt;

pub const PASSWORD: &str = "Tramvaj jede na Hlavní nádraží";
/// The card system identifier of test servers.
pub const SYSTEM_ID: &[u8] = b"SmartTicket-test";
/// The test acquirer's webhook secret in test servers.
pub const ACQUIRER_SECRET: &str = "test acquirer secret";

/// The services of a test server over `db`: a software HSM with every key, the test
/// acquirer as the card gateway, the default policies.
pub fn services(
    db: smartticket_store::Db,
    clock: Arc<ManualClock>,
    settings: ServerSettings,
) -> smartticket_server::Services {
    services_with(db, clock, settings, fresh_hsm())
}

/// A software HSM holding every key role.
pub fn fresh_hsm() -> Arc<SoftHsm> {
    Arc::new(SoftHsm::generate(&smartticket_crypto::keys::KeyRole::ALL).unwrap())
}

/// [`services`] with the given HSM (tests that personalise cards need its keys).
pub fn services_with(
    db: smartticket_store::Db,
    clock: Arc<ManualClock>,
    settings: ServerSettings,
    hsm: Arc<SoftHsm>,
) -> smartticket_server::Services {
    use smartticket_sales::payments::test_acquirer::TestAcquirer;
    let identity = Identity::new(db.clone(), clock.clone(), IdentityPolicy::default()).unwrap();
    let acquirer = Arc::new(TestAcquirer::new(SecretString::from(ACQUIRER_SECRET.to_owned()), "http://127.0.0.1:8080"));
    let catalog = smartticket_catalog::CatalogStore::new(db.clone(), clock.clone());
    let fleet = smartticket_fleet::Fleet::new(smartticket_fleet::FleetParts {
        db: db.clone(),
        clock: clock.clone(),
        hsm: hsm.clone(),
        catalog: catalog.clone(),
    });
    let sales = smartticket_sales::Sales::new(smartticket_sales::SalesParts {
        db: db.clone(),
        clock: clock.clone(),
        hsm,
        catalog,
        gateway: acquirer.clone(),
        public_url: "http://127.0.0.1:8080".into(),
        policy: smartticket_sales::SalesPolicy { delivery_step_timeout_ms: 3_000, ..Default::default() },
    });
    smartticket_server::Services {
        db,
        identity,
        sales,
        fleet,
        cards: smartticket_server::CardSettings { system_id: Arc::from(SYSTEM_ID) },
        test_acquirer: Some(acquirer),
        clock,
        settings,
    }
}

pub struct TestApp {
    pub app: App,
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    pub hsm: Arc<SoftHsm>,
    pub test_db: TestDb,
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The problem slug, if the answer is a problem document.
    pub fn problem(&self) -> Option<&str> {
        self.body.get("type").and_then(Value::as_str).and_then(|t| t.strip_prefix("urn:smartticket:problem:"))
    }
}

impl TestApp {
    pub async fn new(test_db: TestDb) -> TestApp {
        Self::with_settings(test_db, ServerSettings::default()).await
    }

    pub async fn with_settings(test_db: TestDb, settings: ServerSettings) -> TestApp {
        let clock = Arc::new(ManualClock::new(Timestamp::parse_rfc3339("2026-11-21T08:00:00Z").unwrap()));
        let hsm = fresh_hsm();
        let state = AppState::new(services_with(test_db.db.clone(), clock.clone(), settings, hsm.clone()));
        let app = smartticket_server::app(state.clone());
        TestApp { app, state, clock, hsm, test_db }
    }

    pub async fn sqlite() -> TestApp {
        Self::new(TestDb::sqlite().await.unwrap()).await
    }

    pub async fn postgres() -> TestApp {
        Self::new(TestDb::postgres().await.expect("PostgreSQL test database")).await
    }

    pub async fn finish(self) {
        self.test_db.finish().await.unwrap();
    }

    pub async fn send(&self, request: Request<Body>) -> Answer {
        let mut request = request;
        request.extensions_mut().insert(ConnectInfo(SocketAddr::from(([203, 0, 113, 7], 40000))));
        let response = self.app.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Answer { status, headers, body }
    }

    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Answer {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => {
                builder.header("content-type", "application/json").body(Body::from(body.to_string())).unwrap()
            }
            None => builder.body(Body::empty()).unwrap(),
        };
        self.send(request).await
    }

    pub fn identity(&self) -> &Identity {
        self.state.identity()
    }

    /// Creates an account holding `role` and returns a bearer token for it.
    pub async fn token_for(&self, role: Role) -> String {
        let email = format!("{}-{}@example.cz", role.as_str(), uuid_suffix());
        let ctx = AuditCtx::system("test");
        match role {
            Role::Partner => {
                let partner = self
                    .identity()
                    .create_partner(
                        &ctx,
                        NewPartner { name: format!("Partner {}", uuid_suffix()), contact_email: email },
                    )
                    .await
                    .unwrap();
                let issued =
                    self.identity().create_api_key(&ctx, partner.id, NewApiKey { label: "test".into() }).await.unwrap();
                secrecy::ExposeSecret::expose_secret(&issued.key).to_owned()
            }
            Role::Customer => {
                let registration = smartticket_identity::customers::Registration {
                    email: email.clone(),
                    display_name: "Petr Zákazník".into(),
                    password: SecretString::from(PASSWORD.to_owned()),
                };
                self.identity().register_customer(&ctx, registration).await.unwrap();
                self.login(Realm::Customer, &email).await
            }
            staff => {
                let role = StaffRole::ALL.into_iter().find(|r| Role::from(*r) == staff).unwrap();
                let new = NewStaff {
                    email: email.clone(),
                    display_name: "Jana Nováková".into(),
                    role,
                    password: SecretString::from(PASSWORD.to_owned()),
                };
                self.identity().create_staff(&ctx, new).await.unwrap();
                self.login(Realm::Staff, &email).await
            }
        }
    }

    pub async fn login(&self, realm: Realm, email: &str) -> String {
        let request = LoginRequest { realm, email: email.into(), password: SecretString::from(PASSWORD.to_owned()) };
        let granted = self.identity().login(&AuditCtx::system("test"), request).await.unwrap();
        secrecy::ExposeSecret::expose_secret(&granted.token).to_owned()
    }
}

pub fn uuid_suffix() -> String {
    uuid::Uuid::now_v7().simple().to_string()[20..].to_owned()
}

/// Runs each async test body (taking `&TestApp`) on SQLite, and on PostgreSQL when asked.
#[macro_export]
macro_rules! app_tests {
    ($(async fn $name:ident($app:ident) $body:block)*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let $app = $crate::common::TestApp::sqlite().await;
                    { let $app = &$app; $body }
                    $app.finish().await;
                }
            )*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs PostgreSQL (SMARTTICKET_TEST_DATABASE_URL)"]
                async fn $name() {
                    let $app = $crate::common::TestApp::postgres().await;
                    { let $app = &$app; $body }
                    $app.finish().await;
                }
            )*
        }
    };
}
