//! SmartTicket's HTTP API: JSON under `/api/v1`, errors as RFC 9457 problem documents,
//! the OpenAPI 3.1 document at `/api/openapi.json`, and health at `/healthz` and
//! `/readyz`.
//!
//! This crate is a thin layer: handlers parse, call a domain crate, and map the result.
//! Access rules live beside each route ([`access`]); errors become HTTP in one place
//! ([`problem`]); every change is audited by the domain call it makes, and a guard in
//! [`middleware`] proves it.
#![forbid(unsafe_code)]

pub mod access;
pub mod extract;
pub mod middleware;
pub mod problem;
mod routes;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use smartticket_catalog::CatalogStore;
use smartticket_core::Clock;
use smartticket_fleet::Fleet;
use smartticket_identity::Identity;
use smartticket_sales::Sales;
use smartticket_sales::payments::test_acquirer::TestAcquirer;
use smartticket_store::Db;
use tokio::net::TcpListener;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

pub use access::{Access, RouteAccess};
pub use problem::{Problem, ProblemKind};

/// How the server behaves; every limit is explicit.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// A request running longer than this is abandoned (and its transaction rolled back).
    pub request_timeout_ms: u64,
    /// After SIGTERM, how long in-flight requests may take before the server stops anyway.
    pub shutdown_grace_ms: u64,
    /// Take the client address from `X-Forwarded-For` (only behind a proxy you control).
    pub trust_forwarded_for: bool,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            body_limit_bytes: 1024 * 1024,
            request_timeout_ms: 30_000,
            shutdown_grace_ms: 30_000,
            trust_forwarded_for: false,
        }
    }
}

/// Everything a request handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    identity: Identity,
    sales: Sales,
    fleet: Fleet,
    cards: CardSettings,
    test_acquirer: Option<Arc<TestAcquirer>>,
    clock: Arc<dyn Clock>,
    settings: ServerSettings,
    openapi_json: OnceLock<Arc<str>>,
}

/// What the server needs to talk to fare cards.
#[derive(Clone)]
pub struct CardSettings {
    /// The system identifier mixed into every card key (6–21 bytes).
    pub system_id: Arc<[u8]>,
}

/// The services a server is built from.
pub struct Services {
    /// The database, open and migrated.
    pub db: Db,
    /// People, sessions and the audit log.
    pub identity: Identity,
    /// Selling (and, through it, the catalogue).
    pub sales: Sales,
    /// Offline acceptance: published lists and validators' uploads.
    pub fleet: Fleet,
    /// Card access.
    pub cards: CardSettings,
    /// The built-in test acquirer, when it is the configured card gateway: its hosted
    /// payment page is served only then.
    pub test_acquirer: Option<Arc<TestAcquirer>>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Limits and switches.
    pub settings: ServerSettings,
}

impl AppState {
    /// State over the services.
    pub fn new(services: Services) -> Self {
        let Services { db, identity, sales, fleet, cards, test_acquirer, clock, settings } = services;
        Self {
            inner: Arc::new(Inner {
                db,
                identity,
                sales,
                fleet,
                cards,
                test_acquirer,
                clock,
                settings,
                openapi_json: OnceLock::new(),
            }),
        }
    }

    /// The selling service.
    pub fn sales(&self) -> &Sales {
        &self.inner.sales
    }

    /// The fleet service: lists for validators, their uploads.
    pub fn fleet(&self) -> &Fleet {
        &self.inner.fleet
    }

    /// Card access settings.
    pub fn cards(&self) -> &CardSettings {
        &self.inner.cards
    }

    /// The test acquirer, if it is the configured gateway.
    pub fn test_acquirer(&self) -> Option<&Arc<TestAcquirer>> {
        self.inner.test_acquirer.as_ref()
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// The identity service.
    pub fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    /// The tariff catalogue.
    pub fn catalog(&self) -> &CatalogStore {
        self.inner.sales.catalog()
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The server settings.
    pub fn settings(&self) -> &ServerSettings {
        &self.inner.settings
    }

    pub(crate) fn openapi_json(&self) -> Option<Arc<str>> {
        self.inner.openapi_json.get().cloned()
    }
}

/// The API's root document: title, version, security scheme, tags. Paths are added by
/// the routes themselves.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "SmartTicket API",
        description = "Sell electronic tickets and stored value, deliver them to fare media, accept them offline, \
                       and clear and settle every sale and tap. Errors are RFC 9457 problem documents whose `type` \
                       is stable; every operation lists the roles allowed in `x-roles`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    modifiers(&SecurityScheme),
    components(schemas(problem::ProblemDocument, problem::FieldError))
)]
struct ApiDoc;

struct SecurityScheme;

impl utoipa::Modify for SecurityScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A session token (`sts_…`) from `POST /api/v1/auth/login`, or a partner API key (`stk_…`).",
                    ))
                    .build(),
            ),
        );
    }
}

/// The whole application: routes, their OpenAPI document, and the route table.
pub struct App {
    /// The router, ready to serve.
    pub router: Router,
    /// The OpenAPI document served at `/api/openapi.json`.
    pub openapi: utoipa::openapi::OpenApi,
    /// Every route with its access rule.
    pub routes: Vec<RouteAccess>,
}

/// Builds the application over `state`.
pub fn app(state: AppState) -> App {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let api = routes::register(access::Api::new(state.clone(), OpenApiRouter::with_openapi(doc)));
    let (router, routes) = api.finish();
    let (router, openapi) = router.split_for_parts();
    let json: Arc<str> = serde_json::to_string(&openapi).unwrap_or_default().into();
    let _ = state.inner.openapi_json.set(json);
    let settings = state.settings().clone();
    let router = router
        .fallback(routes::no_route)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(axum::middleware::from_fn(middleware::audit_guard))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::deadline))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(middleware::panic_response))
        .layer(axum::middleware::from_fn(middleware::observe))
        .layer(DefaultBodyLimit::max(settings.body_limit_bytes))
        .with_state(state);
    App { router, openapi, routes }
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets in-flight requests
/// finish for up to `grace` before returning. New connections are refused from the moment
/// `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let (stopping_tx, mut stopping_rx) = tokio::sync::watch::channel(false);
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections, finishing requests in flight");
        let _ = stopping_tx.send(true);
    };
    let server = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(signal);
    let server = server.into_future();
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => result,
        () = async {
            let _ = stopping_rx.wait_for(|stopping| *stopping).await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(grace_ms = grace.as_millis() as u64, "requests still running after the grace period; stopping anyway");
            Ok(())
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
