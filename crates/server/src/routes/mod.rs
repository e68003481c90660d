//! The API's endpoints, one module per area. Each module's `register` adds its handlers
//! with their access rules.

mod acceptance;
mod accounts;
mod audit;
mod auth;
mod catalog;
mod counter;
mod customers;
mod delivery;
mod discounts;
mod media;
mod orders;
mod partners;
mod registry;
mod staff;
mod system;
mod test_acquirer;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::access::Api;
use crate::problem::{Problem, ProblemKind};

/// Adds every endpoint.
pub(crate) fn register(api: Api) -> Api {
    let api = system::register(api);
    let api = auth::register(api);
    let api = staff::register(api);
    let api = customers::register(api);
    let api = partners::register(api);
    let api = accounts::register(api);
    let api = catalog::register(api);
    let api = media::register(api);
    let api = orders::register(api);
    let api = counter::register(api);
    let api = discounts::register(api);
    let api = delivery::register(api);
    let api = registry::register(api);
    let api = test_acquirer::register(api);
    let api = acceptance::register(api);
    audit::register(api)
}

/// Answer for paths no route matches.
pub(crate) async fn no_route() -> Problem {
    Problem::with_detail(ProblemKind::NoRoute, "see /api/openapi.json for the endpoints")
}

/// Answer for a known path with a method it does not support.
pub(crate) async fn method_not_allowed() -> Problem {
    Problem::new(ProblemKind::MethodNotAllowed)
}

/// `201 Created` with a `Location` header and the created resource as JSON.
pub(crate) fn created<T: serde::Serialize>(location: String, body: T) -> Response {
    let mut response = (axum::http::StatusCode::CREATED, axum::Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}
