//! Logging in and out, who am I, and changing one's own password.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use smartticket_identity::sessions::{LoginGranted, LoginRequest, PasswordChange};
use smartticket_identity::{Principal, Role};
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::AppState;
use crate::access::{ANY_ROLE, Access, Api, SESSION_HOLDERS};
use crate::extract::{ApiJson, Caller, Ctx};
use crate::problem::Problem;

pub(crate) fn register(api: Api) -> Api {
    api.endpoint(Access::Public, routes!(login))
        .endpoint(Access::Roles(SESSION_HOLDERS), routes!(logout))
        .endpoint(Access::Roles(ANY_ROLE), routes!(me))
        .endpoint(Access::Roles(SESSION_HOLDERS), routes!(change_password))
}

/// Logs a staff user or customer in and returns a bearer token. Five wrong passwords in a
/// row lock the account for 15 minutes.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, body = LoginGranted),
        (status = 401, description = "Email or password is wrong", body = crate::problem::ProblemDocument),
        (status = 403, description = "The account is disabled", body = crate::problem::ProblemDocument),
        (status = 429, description = "The account is locked; see Retry-After", body = crate::problem::ProblemDocument),
    ))]
async fn login(
    State(app): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<Json<LoginGranted>, Problem> {
    Ok(Json(app.identity().login(&ctx, request).await?))
}

/// Ends the caller's session; the token stops working at once.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", responses((status = 204, description = "Logged out")))]
async fn logout(State(app): State<AppState>, Ctx(ctx): Ctx, Caller(principal): Caller) -> Result<StatusCode, Problem> {
    app.identity().logout(&ctx, &principal).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller, as the server knows them.
#[derive(Serialize, ToSchema)]
struct Me {
    /// The caller's role.
    role: Role,
    /// The staff user's, customer's or partner's id.
    id: String,
    /// The login email (staff and customers) or contact email (partners).
    email: String,
    /// The name to show.
    display_name: String,
}

/// Who the caller is: role, id and name.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", responses((status = 200, body = Me)))]
async fn me(State(app): State<AppState>, Caller(principal): Caller) -> Result<Json<Me>, Problem> {
    let me = match principal {
        Principal::Staff { id, role, .. } => {
            let user = app.identity().staff(id).await?;
            Me { role: role.into(), id: id.to_string(), email: user.email, display_name: user.display_name }
        }
        Principal::Customer { id, .. } => {
            let customer = app.identity().customer(id).await?;
            Me { role: Role::Customer, id: id.to_string(), email: customer.email, display_name: customer.display_name }
        }
        Principal::Partner { id, .. } => {
            let partner = app.identity().partner(id).await?;
            Me { role: Role::Partner, id: id.to_string(), email: partner.contact_email, display_name: partner.name }
        }
    };
    Ok(Json(me))
}

/// Changes the caller's own password and ends their other sessions.
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", request_body = PasswordChange,
    responses(
        (status = 204, description = "Changed"),
        (status = 403, description = "The current password is wrong", body = crate::problem::ProblemDocument),
        (status = 422, description = "The new password is too weak", body = crate::problem::ProblemDocument),
    ))]
async fn change_password(
    State(app): State<AppState>,
    Ctx(ctx): Ctx,
    Caller(principal): Caller,
    ApiJson(change): ApiJson<PasswordChange>,
) -> Result<StatusCode, Problem> {
    app.identity().change_password(&ctx, &principal, change).await?;
    Ok(StatusCode::NO_CONTENT)
}
