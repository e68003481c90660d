//! Staff users: listed and read by administrators and auditors, managed by
//! administrators.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use smartticket_core::id::StaffId;
use smartticket_core::paging::{Page, PageRequest};
use smartticket_identity::Role;
use smartticket_identity::staff::{NewStaff, StaffChanges, StaffUser};
use utoipa_axum::routes;

use crate::AppState;
use crate::access::{Access, Api};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Ctx};
use crate::problem::Problem;
use crate::routes::created;

const READERS: &[Role] = &[Role::Admin, Role::Auditor];
const MANAGERS: &[Role] = &[Role::Admin];

pub(crate) fn register(api: Api) -> Api {
    api.endpoint(Access::Roles(READERS), routes!(list_staff))
        .endpoint(Access::Roles(MANAGERS), routes!(create_staff))
        .endpoint(Access::Roles(READERS), routes!(get_staff))
        .endpoint(Access::Roles(MANAGERS), routes!(update_staff))
}

/// Staff users in order of creation.
#[utoipa::path(get, path = "/api/v1/staff", tag = "staff", params(PageRequest), responses((status = 200, body = Page<StaffUser>)))]
async fn list_staff(
    State(app): State<AppState>,
    ApiQuery(page): ApiQuery<PageRequest>,
) -> Result<Json<Page<StaffUser>>, Problem> {
    Ok(Json(app.identity().list_staff(&page.spec()?).await?))
}

/// Creates a staff user with a role and an initial password.
#[utoipa::path(post, path = "/api/v1/staff", tag = "staff", request_body = NewStaff,
    responses(
        (status = 201, body = StaffUser),
        (status = 409, description = "The email is taken", body = crate::problem::ProblemDocument),
        (status = 422, description = "A field is invalid or the password is weak", body = crate::problem::ProblemDocument),
    ))]
async fn create_staff(
    State(app): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(new): ApiJson<NewStaff>,
) -> Result<Response, Problem> {
    let user = app.identity().create_staff(&ctx, new).await?;
    Ok(created(format!("/api/v1/staff/{}", user.id), user))
}

/// One staff user.
#[utoipa::path(get, path = "/api/v1/staff/{id}", tag = "staff", params(("id" = StaffId, Path, description = "Staff user id")),
    responses((status = 200, body = StaffUser), (status = 404, body = crate::problem::ProblemDocument)))]
async fn get_staff(State(app): State<AppState>, ApiPath(id): ApiPath<StaffId>) -> Result<Json<StaffUser>, Problem> {
    Ok(Json(app.identity().staff(id).await?))
}

/// Changes a staff user's name, role or disabled flag. Disabling ends their sessions; the
/// last active administrator cannot be demoted or disabled.
#[utoipa::path(patch, path = "/api/v1/staff/{id}", tag = "staff", params(("id" = StaffId, Path, description = "Staff user id")),
    request_body = StaffChanges,
    responses(
        (status = 200, body = StaffUser),
        (status = 404, body = crate::problem::ProblemDocument),
        (status = 409, description = "Would leave no active administrator", body = crate::problem::ProblemDocument),
    ))]
async fn update_staff(
    State(app): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<StaffId>,
    ApiJson(changes): ApiJson<StaffChanges>,
) -> Result<Json<StaffUser>, Problem> {
    Ok(Json(app.identity().update_staff(&ctx, id, changes).await?))
}
