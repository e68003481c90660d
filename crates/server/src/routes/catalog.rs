//! The tariff catalogue: the catalogue in force and quotes for anyone (the e-shop shows
//! them before login, KIDSOK 3.1.5), and its versions for operators, administrators and
//! auditors. Rules live in `smartticket-catalog`; this module maps them to HTTP.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use smartticket_catalog::{CatalogDocument, NaiveDate, Quote, QuoteRequest, VersionInfo};
use smartticket_core::id::CatalogVersionId;
use smartticket_core::paging::{Page, PageRequest};
use smartticket_identity::Role;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::AppState;
use crate::access::{Access, Api};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Ctx, Unchanged};
use crate::problem::Problem;
use crate::routes::created;

const READERS: &[Role] = &[Role::Admin, Role::Operator, Role::Auditor];
const PUBLISHERS: &[Role] = &[Role::Admin, Role::Operator];

pub(crate) fn register(api: Api) -> Api {
    api.endpoint(Access::Public, routes!(catalog_in_force))
        .endpoint(Access::Public, routes!(quote))
        .endpoint(Access::Roles(READERS), routes!(list_versions))
        .endpoint(Access::Roles(PUBLISHERS), routes!(publish_version))
        .endpoint(Access::Roles(READERS), routes!(get_version))
}

/// A catalogue version with its network document.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogVersion {
    /// The version's record.
    pub version: VersionInfo,
    /// The network document, as stored (amounts normalised).
    pub document: CatalogDocument,
}

/// The catalogue in force today.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogInForce {
    /// Today in the network's timezone.
    pub today: NaiveDate,
    /// The version in force today.
    pub version: VersionInfo,
    /// Its network document.
    pub document: CatalogDocument,
}

/// A network document to publish as a new version.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishVersion {
    /// The first day (network-local) the version is in force: today or later, except for
    /// the first version.
    pub effective_from: NaiveDate,
    /// Why this version exists, e.g. `2027 price review`.
    #[serde(default)]
    pub note: String,
    /// The network document.
    pub document: CatalogDocument,
}

/// The catalogue in force today (network-local), with its version.
#[utoipa::path(get, path = "/api/v1/catalog", tag = "catalog",
    responses((status = 200, body = CatalogInForce), (status = 404, description = "No catalogue is in force", body = crate::problem::ProblemDocument)))]
async fn catalog_in_force(State(app): State<AppState>) -> Result<Json<CatalogInForce>, Problem> {
    let catalog = app.catalog();
    let today = catalog.today().await?;
    let (version, in_force) = catalog.in_force_on(today).await?;
    Ok(Json(CatalogInForce { today, version, document: in_force.document().clone() }))
}

/// Prices a product for a discount, zones and start date from the catalogue in force;
/// changes nothing.
#[utoipa::path(post, path = "/api/v1/catalog/quote", tag = "catalog", request_body = QuoteRequest,
    responses(
        (status = 200, body = Quote),
        (status = 404, description = "No catalogue is in force", body = crate::problem::ProblemDocument),
        (status = 422, description = "The request does not fit the catalogue", body = crate::problem::ProblemDocument),
    ))]
async fn quote(
    State(app): State<AppState>,
    // A POST only because the request has a body: a quote changes nothing.
    _unchanged: Unchanged,
    ApiJson(request): ApiJson<QuoteRequest>,
) -> Result<Json<Quote>, Problem> {
    Ok(Json(app.catalog().quote(&request, app.clock().now()).await?))
}

/// Catalogue versions, latest effective date first.
#[utoipa::path(get, path = "/api/v1/catalog/versions", tag = "catalog", params(PageRequest),
    responses((status = 200, body = Page<VersionInfo>)))]
async fn list_versions(
    State(app): State<AppState>,
    ApiQuery(page): ApiQuery<PageRequest>,
) -> Result<Json<Page<VersionInfo>>, Problem> {
    Ok(Json(app.catalog().versions(&page.spec()?).await?))
}

/// Publishes a network document as the catalogue from `effective_from`. Refused when the
/// document breaks a rule, the date is taken or in the past, or the currency or timezone
/// would change; nothing is stored then.
#[utoipa::path(post, path = "/api/v1/catalog/versions", tag = "catalog", request_body = PublishVersion,
    responses(
        (status = 201, body = VersionInfo),
        (status = 409, description = "Another version takes effect on this date", body = crate::problem::ProblemDocument),
        (status = 422, description = "The document or a field is invalid, or the date is in the past", body = crate::problem::ProblemDocument),
    ))]
async fn publish_version(
    State(app): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(publish): ApiJson<PublishVersion>,
) -> Result<Response, Problem> {
    let info = app.catalog().publish(&ctx, publish.document, publish.effective_from, &publish.note).await?;
    Ok(created(format!("/api/v1/catalog/versions/{}", info.id), info))
}

/// One catalogue version with its document.
#[utoipa::path(get, path = "/api/v1/catalog/versions/{id}", tag = "catalog",
    params(("id" = CatalogVersionId, Path, description = "Catalogue version id")),
    responses((status = 200, body = CatalogVersion), (status = 404, body = crate::problem::ProblemDocument)))]
async fn get_version(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<CatalogVersionId>,
) -> Result<Json<CatalogVersion>, Problem> {
    let (version, catalog) = app.catalog().version(id).await?;
    Ok(Json(CatalogVersion { version, document: catalog.document().clone() }))
}
