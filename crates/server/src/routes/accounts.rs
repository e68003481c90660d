//! Account flows through the mailbox: confirming an email address, opening an account at
//! a counter (KIDSOK 3.2.1), and resetting a forgotten password. The public endpoints
//! answer the same whether or not an account exists; the link errors say only what the
//! link's holder can act on.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use smartticket_identity::Role;
use smartticket_identity::accounts::{
    CounterRegistration, EmailConfirmation, PasswordResetConfirmation, PasswordResetRequest,
};
use smartticket_identity::customers::Customer;
use utoipa_axum::routes;

use crate::AppState;
use crate::access::{Access, Api};
use crate::extract::{ApiJson, Ctx};
use crate::problem::Problem;
use crate::routes::created;

/// Who may open an account for a customer at a counter.
const COUNTER_STAFF: &[Role] = &[Role::Admin, Role::Cashier];

pub(crate) fn register(api: Api) -> Api {
    api.endpoint(Access::Public, routes!(confirm_email))
        .endpoint(Access::Roles(COUNTER_STAFF), routes!(create_customer_at_counter))
        .endpoint(Access::Public, routes!(request_password_reset))
        .endpoint(Access::Public, routes!(confirm_password_reset))
}

/// Confirms the email address of the account the link was mailed for. Each link works
/// once.
#[utoipa::path(post, path = "/api/v1/customers/confirm-email", tag = "customers", request_body = EmailConfirmation,
    responses(
        (status = 204, description = "The address is confirmed"),
        (status = 400, description = "The link is not valid", body = crate::problem::ProblemDocument),
        (status = 409, description = "The link was used already", body = crate::problem::ProblemDocument),
        (status = 410, description = "The link has expired", body = crate::problem::ProblemDocument),
    ))]
async fn confirm_email(
    State(app): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(confirmation): ApiJson<EmailConfirmation>,
) -> Result<StatusCode, Problem> {
    app.identity().confirm_email(&ctx, &confirmation.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Opens an account for a customer at a counter: no password yet; the customer is mailed
/// their login and a link to choose a password, valid seven days (KIDSOK 3.2.1).
#[utoipa::path(post, path = "/api/v1/customers", tag = "customers", request_body = CounterRegistration,
    responses(
        (status = 201, body = Customer),
        (status = 409, description = "The email is taken", body = crate::problem::ProblemDocument),
        (status = 422, description = "A field is invalid", body = crate::problem::ProblemDocument),
    ))]
async fn create_customer_at_counter(
    State(app): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(registration): ApiJson<CounterRegistration>,
) -> Result<Response, Problem> {
    let customer =
        app.identity().create_customer_at_counter(&ctx, &registration.email, &registration.display_name).await?;
    Ok(created(format!("/api/v1/customers/{}", customer.id), customer))
}

/// Mails a password reset link, valid 60 minutes, if an account has this email. The
/// answer is 202 whether or not one has, so it tells nobody who has an account; an
/// account gets at most three such mails an hour.
#[utoipa::path(post, path = "/api/v1/auth/password-reset", tag = "auth", request_body = PasswordResetRequest,
    responses(
        (status = 202, description = "If an account has this email, a link is on its way"),
        (status = 422, description = "The email is not an email address", body = crate::problem::ProblemDocument),
    ))]
async fn request_password_reset(
    State(app): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(request): ApiJson<PasswordResetRequest>,
) -> Result<StatusCode, Problem> {
    app.identity().request_password_reset(&ctx, &request.email).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Sets a new password with a mailed link (a reset, or the first password of an account
/// opened at a counter). Confirms the email, clears a lockout and ends every session of
/// the account. Each link works once.
#[utoipa::path(post, path = "/api/v1/auth/password-reset/confirm", tag = "auth", request_body = PasswordResetConfirmation,
    responses(
        (status = 204, description = "The password is set; log in with it"),
        (status = 400, description = "The link is not valid", body = crate::problem::ProblemDocument),
        (status = 403, description = "The account is disabled", body = crate::problem::ProblemDocument),
        (status = 409, description = "The link was used already", body = crate::problem::ProblemDocument),
        (status = 410, description = "The link has expired", body = crate::problem::ProblemDocument),
        (status = 422, description = "The new password is too weak", body = crate::problem::ProblemDocument),
    ))]
async fn confirm_password_reset(
    State(app): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(confirmation): ApiJson<PasswordResetConfirmation>,
) -> Result<StatusCode, Problem> {
    app.identity().set_password_with_token(&ctx, &confirmation.token, &confirmation.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}
