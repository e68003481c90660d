//! Liveness, readiness and the OpenAPI document.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::AppState;
use crate::access::{Access, Api};
use crate::problem::{Problem, ProblemKind};

pub(crate) fn register(api: Api) -> Api {
    api.endpoint(Access::Public, routes!(healthz))
        .endpoint(Access::Public, routes!(readyz))
        .endpoint(Access::Public, routes!(openapi))
}

/// The process is up.
#[derive(Serialize, ToSchema)]
struct Health {
    /// Always `ok`.
    status: &'static str,
}

/// The server can serve requests: the database answers and its schema is current.
#[derive(Serialize, ToSchema)]
struct Ready {
    /// Always `ready`.
    status: &'static str,
    /// `sqlite` or `postgres`.
    database: String,
    /// The newest migration applied.
    schema_version: Option<i64>,
}

/// Liveness: answers as long as the process runs, without touching the database.
#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the database is reachable and every migration of this build is applied.
#[utoipa::path(get, path = "/readyz", tag = "system",
    responses((status = 200, body = Ready), (status = 503, description = "Not ready", body = crate::problem::ProblemDocument)))]
async fn readyz(State(app): State<AppState>) -> Result<Json<Ready>, Problem> {
    app.db().ping().await?;
    let status = app.db().migration_status().await?;
    if !status.is_current() {
        return Err(Problem::with_detail(
            ProblemKind::NotReady,
            format!(
                "schema not current: pending {:?}, unknown {:?}, modified {:?}",
                status.pending, status.unknown, status.modified
            ),
        ));
    }
    Ok(Json(Ready {
        status: "ready",
        database: app.db().backend().to_string(),
        schema_version: status.applied.last().copied(),
    }))
}

/// The OpenAPI 3.1 document of this API, generated from the code.
#[utoipa::path(get, path = "/api/openapi.json", tag = "system",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
async fn openapi(State(app): State<AppState>) -> Response {
    match app.openapi_json() {
        Some(json) => {
            let mut response = json.to_string().into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        None => Problem::new(ProblemKind::NotReady).into_response(),
    }
}
