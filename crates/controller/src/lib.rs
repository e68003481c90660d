//! The door controller's REST API (DESIGN §4, access-control mode): manage the identifier
//! list on the device, present identifiers as a reader would, and read the event journal.
//! Every decision and rule is `smartticket_acceptance::access`'s; this crate owns HTTP only:
//! the bearer token, the body limit, and problem documents naming the field at fault.
//!
//! Endpoints (all but `health` need `Authorization: Bearer <token>`):
//!
//! | method and path | what |
//! |---|---|
//! | `GET /api/v1/health` | `{"status":"ok"}`; no token, nothing about the device |
//! | `GET /api/v1/identifiers?offset=&limit=` | a page of the list, in order (bits, value) |
//! | `GET/PUT/DELETE /api/v1/identifiers/{bits:HEX}` | one entry; `PUT` takes a grant |
//! | `GET /api/v1/events?since=SEQ&limit=N` | journalled events after `SEQ`, oldest first |
//! | `POST /api/v1/present` | `{"identifier","door"}` → the decision (journalled first) |
//!
//! A change's actor is the `X-Actor` header (default `api`): what the caller says, recorded
//! as said; the token is the authority.
#![forbid(unsafe_code)]

mod auth;
mod body;
pub mod problem;
mod routes;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use smartticket_acceptance::access::Controller;
use smartticket_core::Clock;

pub use auth::{ApiToken, TOKEN_BYTES_MAX, TOKEN_BYTES_MIN, TokenError};
pub use problem::Problem;

/// Largest request body. The largest valid one (a grant: a 64-byte label, 32 doors, two
/// timestamps) is under 1 KiB; 8 KiB leaves room for formatting and refuses anything else
/// before it is read.
pub const BODY_BYTES_MAX: usize = 8 * 1024;
/// Default page size of `GET /api/v1/identifiers` and `GET /api/v1/events`.
pub const PAGE_LIMIT_DEFAULT: u32 = 100;

/// What the handlers share. The controller sits behind a blocking mutex and is only used on
/// blocking threads: every journal append and list write waits for `fsync`.
#[derive(Clone)]
pub struct AppState {
    controller: Arc<Mutex<Controller>>,
    token: ApiToken,
    clock: Arc<dyn Clock>,
}

/// The API over `controller`, authorised by `token`, telling time by `clock`.
pub fn router(controller: Controller, token: ApiToken, clock: Arc<dyn Clock>) -> Router {
    let state = AppState { controller: Arc::new(Mutex::new(controller)), token, clock };
    routes::routes().layer(DefaultBodyLimit::max(BODY_BYTES_MAX)).with_state(state)
}

/// Serves `router` on `listener` until `shutdown` completes; requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}
