//! Delivery to cards through a remote reader: the reader relays APDUs over plain HTTP and
//! the secure session with the card runs here, the credit key never leaving the HSM. Start
//! a session, send the card's answer to each command, until the session reports what it
//! wrote. A reader that goes quiet ends its session; an interrupted write is settled from
//! the card at its next tap.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use smartticket_core::id::DeliverySessionId;
use smartticket_identity::Role;
use smartticket_sales::delivery::DeliveryStep;
use smartticket_sales::media::Scope;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::AppState;
use crate::access::{Access, Api};
use crate::extract::{ApiJson, ApiPath, Caller, Ctx, Unchanged};
use crate::problem::Problem;

/// Who holds readers: counters, partners' machines, passengers' phones.
const READERS: &[Role] = &[Role::Admin, Role::Operator, Role::Cashier, Role::Customer, Role::Partner];

pub(crate) fn register(api: Api) -> Api {
    api.endpoint(Access::Roles(READERS), routes!(start_session))
        .endpoint(Access::Roles(READERS), routes!(answer))
        .endpoint(Access::Roles(READERS), routes!(abort))
}

/// Starts a session for the card in the caller's reader; the answer holds the first
/// command APDU (hex) to send to the card. What the session writes is audited under the
/// caller; the steps themselves change nothing.
#[utoipa::path(post, path = "/api/v1/delivery/sessions", tag = "delivery",
    responses((status = 201, body = DeliveryStep), (status = 429, body = crate::problem::ProblemDocument)))]
async fn start_session(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Ctx(ctx): Ctx,
    _unchanged: Unchanged,
) -> Result<(axum::http::StatusCode, Json<DeliveryStep>), Problem> {
    let step = app.sales().start_delivery(&ctx, Scope::from(&caller), app.cards().system_id.clone()).await?;
    Ok((axum::http::StatusCode::CREATED, Json(step)))
}

/// The card's answer to the last command.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CardAnswer {
    /// The response APDU, hex, status word included.
    response: String,
}

/// Passes the card's answer on; the reply is the next command, or the session's report.
#[utoipa::path(post, path = "/api/v1/delivery/sessions/{id}/responses", tag = "delivery",
    params(("id" = DeliverySessionId, Path, description = "Session id")), request_body = CardAnswer,
    responses((status = 200, body = DeliveryStep), (status = 404, body = crate::problem::ProblemDocument), (status = 409, body = crate::problem::ProblemDocument)))]
async fn answer(
    State(app): State<AppState>,
    Caller(caller): Caller,
    _unchanged: Unchanged,
    ApiPath(id): ApiPath<DeliverySessionId>,
    ApiJson(answer): ApiJson<CardAnswer>,
) -> Result<Json<DeliveryStep>, Problem> {
    let bytes = hex::decode(answer.response.trim()).map_err(|_| Problem::field("response", "hex digits"))?;
    Ok(Json(app.sales().continue_delivery(Scope::from(&caller), id, &bytes).await?))
}

/// Tells the session the card left the field; it ends, and anything uncertain is settled
/// at the card's next tap.
#[utoipa::path(delete, path = "/api/v1/delivery/sessions/{id}", tag = "delivery",
    params(("id" = DeliverySessionId, Path, description = "Session id")),
    responses((status = 200, body = DeliveryStep), (status = 404, body = crate::problem::ProblemDocument)))]
async fn abort(
    State(app): State<AppState>,
    Caller(caller): Caller,
    _unchanged: Unchanged,
    ApiPath(id): ApiPath<DeliverySessionId>,
) -> Result<Json<DeliveryStep>, Problem> {
    Ok(Json(app.sales().abort_delivery(Scope::from(&caller), id).await?))
}
