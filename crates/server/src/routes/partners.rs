//! Partners and their API keys.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use smartticket_core::id::{ApiKeyId, PartnerId};
use smartticket_core::paging::{Page, PageRequest};
use smartticket_identity::Role;
use smartticket_identity::partners::{ApiKeyInfo, IssuedApiKey, NewApiKey, NewPartner, Partner};
use utoipa_axum::routes;

use crate::AppState;
use crate::access::{Access, Api};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Ctx};
use crate::problem::Problem;
use crate::routes::created;

const READERS: &[Role] = &[Role::Admin, Role::Operator, Role::Auditor];
const MANAGERS: &[Role] = &[Role::Admin, Role::Operator];
const KEY_MANAGERS: &[Role] = &[Role::Admin];

pub(crate) fn register(api: Api) -> Api {
    api.endpoint(Access::Roles(READERS), routes!(list_partners))
        .endpoint(Access::Roles(MANAGERS), routes!(create_partner))
        .endpoint(Access::Roles(READERS), routes!(get_partner))
        .endpoint(Access::Roles(READERS), routes!(list_api_keys))
        .endpoint(Access::Roles(KEY_MANAGERS), routes!(create_api_key))
        .endpoint(Access::Roles(KEY_MANAGERS), routes!(revoke_api_key))
}

/// Partners in order of creation.
#[utoipa::path(get, path = "/api/v1/partners", tag = "partners", params(PageRequest), responses((status = 200, body = Page<Partner>)))]
async fn list_partners(
    State(app): State<AppState>,
    ApiQuery(page): ApiQuery<PageRequest>,
) -> Result<Json<Page<Partner>>, Problem> {
    Ok(Json(app.identity().list_partners(&page.spec()?).await?))
}

/// Adds a partner.
#[utoipa::path(post, path = "/api/v1/partners", tag = "partners", request_body = NewPartner,
    responses((status = 201, body = Partner), (status = 409, description = "The name is taken", body = crate::problem::ProblemDocument)))]
async fn create_partner(
    State(app): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(new): ApiJson<NewPartner>,
) -> Result<Response, Problem> {
    let partner = app.identity().create_partner(&ctx, new).await?;
    Ok(created(format!("/api/v1/partners/{}", partner.id), partner))
}

/// One partner.
#[utoipa::path(get, path = "/api/v1/partners/{id}", tag = "partners", params(("id" = PartnerId, Path, description = "Partner id")),
    responses((status = 200, body = Partner), (status = 404, body = crate::problem::ProblemDocument)))]
async fn get_partner(State(app): State<AppState>, ApiPath(id): ApiPath<PartnerId>) -> Result<Json<Partner>, Problem> {
    Ok(Json(app.identity().partner(id).await?))
}

/// A partner's API keys, without the keys themselves.
#[utoipa::path(get, path = "/api/v1/partners/{id}/api-keys", tag = "partners", params(("id" = PartnerId, Path, description = "Partner id")),
    responses((status = 200, body = Vec<ApiKeyInfo>), (status = 404, body = crate::problem::ProblemDocument)))]
async fn list_api_keys(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<PartnerId>,
) -> Result<Json<Vec<ApiKeyInfo>>, Problem> {
    Ok(Json(app.identity().list_api_keys(id).await?))
}

/// Makes an API key. The response is the only time the key is shown.
#[utoipa::path(post, path = "/api/v1/partners/{id}/api-keys", tag = "partners", params(("id" = PartnerId, Path, description = "Partner id")),
    request_body = NewApiKey,
    responses((status = 201, body = IssuedApiKey), (status = 404, body = crate::problem::ProblemDocument)))]
async fn create_api_key(
    State(app): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<PartnerId>,
    ApiJson(new): ApiJson<NewApiKey>,
) -> Result<Response, Problem> {
    let issued = app.identity().create_api_key(&ctx, id, new).await?;
    Ok(created(format!("/api/v1/partners/{id}/api-keys/{}", issued.info.id), issued))
}

/// Revokes an API key at once.
#[utoipa::path(delete, path = "/api/v1/partners/{id}/api-keys/{key_id}", tag = "partners",
    params(("id" = PartnerId, Path, description = "Partner id"), ("key_id" = ApiKeyId, Path, description = "Key id")),
    responses((status = 200, body = ApiKeyInfo), (status = 404, body = crate::problem::ProblemDocument)))]
async fn revoke_api_key(
    State(app): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath((id, key_id)): ApiPath<(PartnerId, ApiKeyId)>,
) -> Result<Json<ApiKeyInfo>, Problem> {
    Ok(Json(app.identity().revoke_api_key(&ctx, id, key_id).await?))
}
