//! Discounts that need approval (KIDSOK 3.1.3–3.1.4, 3.2.2): passengers upload a photo and
//! ask for a category; cashiers work through the queue with the photo beside each request
//! and approve for a period or reject with a reason.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use smartticket_core::id::{CustomerId, DiscountRequestId, PhotoId};
use smartticket_core::paging::{Page, PageRequest};
use smartticket_identity::{Principal, Role};
use smartticket_sales::discounts::{Approval, DiscountRequest, PhotoInfo, RequestStatus};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use crate::AppState;
use crate::access::{Access, Api};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller, Ctx, RawBody};
use crate::problem::{Problem, ProblemKind};
use crate::routes::created;

/// Who decides requests.
const DECIDERS: &[Role] = &[Role::Admin, Role::Operator, Role::Cashier];
/// Who sees requests and photos: the passenger and the back office.
const VIEWERS: &[Role] = &[Role::Admin, Role::Operator, Role::Cashier, Role::Auditor, Role::Customer];
/// Largest photo upload; the photo crate refuses larger ones with a clear message too.
const PHOTO_BYTES_MAX: usize = 5 * 1024 * 1024;

pub(crate) fn register(api: Api) -> Api {
    let (schemas, paths, upload) = routes!(upload_photo);
    let upload = upload.layer(axum::extract::DefaultBodyLimit::max(PHOTO_BYTES_MAX));
    api.endpoint(Access::Roles(&[Role::Customer, Role::Cashier]), (schemas, paths, upload))
        .endpoint(Access::Roles(VIEWERS), routes!(get_photo))
        .endpoint(Access::Roles(&[Role::Customer]), routes!(request_discount))
        .endpoint(Access::Roles(VIEWERS), routes!(list_requests))
        .endpoint(Access::Roles(VIEWERS), routes!(get_request))
        .endpoint(Access::Roles(DECIDERS), routes!(approve))
        .endpoint(Access::Roles(DECIDERS), routes!(reject))
}

/// Whose photo.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PhotoOwner {
    /// A cashier: the passenger photographed at the counter.
    customer_id: Option<CustomerId>,
}

fn own_or_named(caller: &Principal, named: Option<CustomerId>) -> Result<CustomerId, Problem> {
    match (caller, named) {
        (Principal::Customer { id, .. }, None) => Ok(*id),
        (Principal::Customer { .. }, Some(_)) => Err(Problem::field("customer_id", "a passenger acts for themselves")),
        (_, Some(customer)) => Ok(customer),
        (_, None) => Err(Problem::field("customer_id", "name the passenger")),
    }
}

/// Uploads a photo (`image/jpeg` or `image/png`, at most 5 MiB). It is re-encoded and
/// stripped of every metadata before it is stored; anything that is not a photo is refused.
#[utoipa::path(post, path = "/api/v1/photos", tag = "discounts", params(PhotoOwner),
    request_body(content = Vec<u8>, content_type = "image/jpeg", description = "The photo, JPEG or PNG"),
    responses((status = 201, body = PhotoInfo), (status = 413, body = crate::problem::ProblemDocument), (status = 415, body = crate::problem::ProblemDocument), (status = 422, body = crate::problem::ProblemDocument)))]
async fn upload_photo(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Ctx(ctx): Ctx,
    ApiQuery(owner): ApiQuery<PhotoOwner>,
    body: RawBody,
) -> Result<Response, Problem> {
    body.expect(&["image/jpeg", "image/png"])?;
    let customer = own_or_named(&caller, owner.customer_id)?;
    let photo = app.sales().upload_photo(&ctx, customer, &body.bytes).await?;
    Ok(created(format!("/api/v1/photos/{}", photo.id), photo))
}

/// A photo, as the stored JPEG: the passenger's own, or any for the back office.
#[utoipa::path(get, path = "/api/v1/photos/{id}", tag = "discounts", params(("id" = PhotoId, Path, description = "Photo id")),
    responses((status = 200, content_type = "image/jpeg", body = Vec<u8>), (status = 404, body = crate::problem::ProblemDocument)))]
async fn get_photo(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<PhotoId>,
) -> Result<Response, Problem> {
    let owner = match caller {
        Principal::Customer { id, .. } => Some(id),
        _ => None,
    };
    let jpeg = app.sales().photo(owner, id).await?;
    let mut response = jpeg.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    // A face is personal data: never cached by shared caches.
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    Ok(response)
}

/// A discount request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewRequest {
    /// The discount category.
    category: String,
    /// The passenger's photo.
    photo_id: PhotoId,
    /// A note for the cashier (which document will be shown).
    #[serde(default)]
    note: Option<String>,
}

/// Asks for a discount category that needs approval.
#[utoipa::path(post, path = "/api/v1/discount-requests", tag = "discounts", request_body = NewRequest,
    responses((status = 201, body = DiscountRequest), (status = 409, body = crate::problem::ProblemDocument), (status = 422, body = crate::problem::ProblemDocument)))]
async fn request_discount(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Ctx(ctx): Ctx,
    ApiJson(new): ApiJson<NewRequest>,
) -> Result<Response, Problem> {
    let customer = own_or_named(&caller, None)?;
    let request =
        app.sales().request_discount(&ctx, customer, &new.category, new.photo_id, new.note.as_deref()).await?;
    Ok(created(format!("/api/v1/discount-requests/{}", request.id), request))
}

/// Which requests.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct RequestsQuery {
    /// Only requests in this status (`pending` is the cashier's queue).
    status: Option<RequestStatus>,
    /// Staff: one passenger's requests.
    customer_id: Option<CustomerId>,
    /// Items per page.
    limit: Option<u32>,
    /// The cursor of the next page.
    cursor: Option<String>,
}

/// Discount requests, oldest first: the cashier's queue, or a passenger's own.
#[utoipa::path(get, path = "/api/v1/discount-requests", tag = "discounts", params(RequestsQuery),
    responses((status = 200, body = Page<DiscountRequest>)))]
async fn list_requests(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<RequestsQuery>,
) -> Result<Json<Page<DiscountRequest>>, Problem> {
    let customer = match caller {
        Principal::Customer { id, .. } => Some(id),
        _ => query.customer_id,
    };
    let page = PageRequest { limit: query.limit, cursor: query.cursor }.spec()?;
    Ok(Json(app.sales().discount_requests(query.status, customer, &page).await?))
}

/// One request.
#[utoipa::path(get, path = "/api/v1/discount-requests/{id}", tag = "discounts", params(("id" = DiscountRequestId, Path, description = "Request id")),
    responses((status = 200, body = DiscountRequest), (status = 404, body = crate::problem::ProblemDocument)))]
async fn get_request(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<DiscountRequestId>,
) -> Result<Json<DiscountRequest>, Problem> {
    let owner = match caller {
        Principal::Customer { id, .. } => Some(id),
        _ => None,
    };
    Ok(Json(app.sales().discount_request(owner, id).await?))
}

fn staff(caller: &Principal) -> Result<smartticket_core::id::StaffId, Problem> {
    match caller {
        Principal::Staff { id, .. } => Ok(*id),
        _ => Err(Problem::new(ProblemKind::Forbidden)),
    }
}

/// Approves a waiting request until the given day, recording how it was checked.
#[utoipa::path(post, path = "/api/v1/discount-requests/{id}/approve", tag = "discounts", params(("id" = DiscountRequestId, Path, description = "Request id")),
    request_body = Approval,
    responses((status = 200, body = DiscountRequest), (status = 409, body = crate::problem::ProblemDocument), (status = 422, body = crate::problem::ProblemDocument)))]
async fn approve(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<DiscountRequestId>,
    ApiJson(approval): ApiJson<Approval>,
) -> Result<Json<DiscountRequest>, Problem> {
    Ok(Json(app.sales().approve_discount(&ctx, staff(&caller)?, id, &approval).await?))
}

/// Why a request is refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Rejection {
    /// The reason, shown to the passenger.
    reason: String,
}

/// Rejects a waiting request, or revokes an approval, with a reason.
#[utoipa::path(post, path = "/api/v1/discount-requests/{id}/reject", tag = "discounts", params(("id" = DiscountRequestId, Path, description = "Request id")),
    request_body = Rejection,
    responses((status = 200, body = DiscountRequest), (status = 409, body = crate::problem::ProblemDocument), (status = 422, body = crate::problem::ProblemDocument)))]
async fn reject(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<DiscountRequestId>,
    ApiJson(rejection): ApiJson<Rejection>,
) -> Result<Json<DiscountRequest>, Problem> {
    Ok(Json(app.sales().reject_discount(&ctx, staff(&caller)?, id, &rejection.reason).await?))
}
