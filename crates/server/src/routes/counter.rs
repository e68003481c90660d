//! Counter work: cashiers' shifts with their cash drawers, and complaint cases with their
//! corrections (KIDSOK 3.2.4). Every correction carries a reason and is audited.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use smartticket_core::Money;
use smartticket_core::id::{ComplaintId, CustomerId, MediumId, ShiftId};
use smartticket_core::paging::{Page, PageRequest};
use smartticket_identity::{Principal, Role};
use smartticket_sales::complaints::{Complaint, ComplaintCase, Correction};
use smartticket_sales::shifts::Shift;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use crate::AppState;
use crate::access::{Access, Api};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller, Ctx};
use crate::problem::Problem;
use crate::routes::created;

/// Who works a counter.
const COUNTER: &[Role] = &[Role::Admin, Role::Operator, Role::Cashier];
/// Who reads cases and shifts.
const READERS: &[Role] = &[Role::Admin, Role::Operator, Role::Cashier, Role::Auditor];

pub(crate) fn register(api: Api) -> Api {
    api.endpoint(Access::Roles(COUNTER), routes!(open_shift))
        .endpoint(Access::Roles(COUNTER), routes!(close_shift))
        .endpoint(Access::Roles(READERS), routes!(get_shift))
        .endpoint(Access::Roles(COUNTER), routes!(open_complaint))
        .endpoint(Access::Roles(READERS), routes!(list_complaints))
        .endpoint(Access::Roles(READERS), routes!(get_complaint))
        .endpoint(Access::Roles(COUNTER), routes!(correct))
        .endpoint(Access::Roles(COUNTER), routes!(close_complaint))
}

fn staff_id(caller: &Principal) -> Result<smartticket_core::id::StaffId, Problem> {
    match caller {
        Principal::Staff { id, .. } => Ok(*id),
        _ => Err(Problem::new(crate::problem::ProblemKind::Forbidden)),
    }
}

/// Opening a shift.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct OpenShift {
    /// Which counter.
    counter: String,
    /// The cash in the drawer at opening.
    float: Money,
}

/// Opens the calling cashier's shift (one at a time).
#[utoipa::path(post, path = "/api/v1/shifts", tag = "counter", request_body = OpenShift,
    responses((status = 201, body = Shift), (status = 409, body = crate::problem::ProblemDocument)))]
async fn open_shift(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Ctx(ctx): Ctx,
    ApiJson(open): ApiJson<OpenShift>,
) -> Result<Response, Problem> {
    let shift = app.sales().open_shift(&ctx, staff_id(&caller)?, &open.counter, open.float).await?;
    Ok(created(format!("/api/v1/shifts/{}", shift.id), shift))
}

/// Closing a shift.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CloseShift {
    /// The cash counted in the drawer.
    counted: Money,
    /// A note on any difference.
    #[serde(default)]
    note: Option<String>,
}

/// Closes the calling cashier's open shift: the counted cash is kept beside the expected
/// amount (float plus cash taken, minus cash refunded).
#[utoipa::path(post, path = "/api/v1/shifts/current/close", tag = "counter", request_body = CloseShift,
    responses((status = 200, body = Shift), (status = 409, body = crate::problem::ProblemDocument)))]
async fn close_shift(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Ctx(ctx): Ctx,
    ApiJson(close): ApiJson<CloseShift>,
) -> Result<Json<Shift>, Problem> {
    Ok(Json(app.sales().close_shift(&ctx, staff_id(&caller)?, close.counted, close.note.as_deref()).await?))
}

/// One shift.
#[utoipa::path(get, path = "/api/v1/shifts/{id}", tag = "counter", params(("id" = ShiftId, Path, description = "Shift id")),
    responses((status = 200, body = Shift), (status = 404, body = crate::problem::ProblemDocument)))]
async fn get_shift(State(app): State<AppState>, ApiPath(id): ApiPath<ShiftId>) -> Result<Json<Shift>, Problem> {
    Ok(Json(app.sales().shift(id).await?))
}

/// Opening a case.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewComplaint {
    /// The passenger (from a customer search).
    #[serde(default)]
    customer_id: Option<CustomerId>,
    /// The medium (a card held to the reader).
    #[serde(default)]
    medium_id: Option<MediumId>,
    /// What it is about.
    subject: String,
}

/// Opens a complaint case about a passenger or a medium.
#[utoipa::path(post, path = "/api/v1/complaints", tag = "counter", request_body = NewComplaint,
    responses((status = 201, body = Complaint), (status = 404, body = crate::problem::ProblemDocument), (status = 422, body = crate::problem::ProblemDocument)))]
async fn open_complaint(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Ctx(ctx): Ctx,
    ApiJson(new): ApiJson<NewComplaint>,
) -> Result<Response, Problem> {
    let complaint =
        app.sales().open_complaint(&ctx, staff_id(&caller)?, new.customer_id, new.medium_id, &new.subject).await?;
    Ok(created(format!("/api/v1/complaints/{}", complaint.id), complaint))
}

/// Which cases.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ComplaintsQuery {
    /// Only open cases (the default).
    open: Option<bool>,
    /// Items per page.
    limit: Option<u32>,
    /// The cursor of the next page.
    cursor: Option<String>,
}

/// Complaint cases, oldest first.
#[utoipa::path(get, path = "/api/v1/complaints", tag = "counter", params(ComplaintsQuery),
    responses((status = 200, body = Page<Complaint>)))]
async fn list_complaints(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<ComplaintsQuery>,
) -> Result<Json<Page<Complaint>>, Problem> {
    let page = PageRequest { limit: query.limit, cursor: query.cursor }.spec()?;
    Ok(Json(app.sales().complaints(query.open.unwrap_or(true), &page).await?))
}

/// The whole case file: the passenger's media, entitlements, discounts, orders and recent
/// taps, with the corrections made.
#[utoipa::path(get, path = "/api/v1/complaints/{id}", tag = "counter", params(("id" = ComplaintId, Path, description = "Complaint id")),
    responses((status = 200, body = ComplaintCase), (status = 404, body = crate::problem::ProblemDocument)))]
async fn get_complaint(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<ComplaintId>,
) -> Result<Json<ComplaintCase>, Problem> {
    Ok(Json(app.sales().complaint_case(id).await?))
}

/// A correction with its reason.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CorrectionRequest {
    /// What to change.
    correction: Correction,
    /// Why (kept with the case and in the audit log).
    reason: String,
}

/// Corrects an entitlement in an open case: extend its validity, cancel it, or grant a
/// product free of charge.
#[utoipa::path(post, path = "/api/v1/complaints/{id}/corrections", tag = "counter", params(("id" = ComplaintId, Path, description = "Complaint id")),
    request_body = CorrectionRequest,
    responses((status = 200, body = ComplaintCase), (status = 409, body = crate::problem::ProblemDocument), (status = 422, body = crate::problem::ProblemDocument)))]
async fn correct(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<ComplaintId>,
    ApiJson(request): ApiJson<CorrectionRequest>,
) -> Result<Json<ComplaintCase>, Problem> {
    Ok(Json(app.sales().correct(&ctx, staff_id(&caller)?, id, &request.correction, &request.reason).await?))
}

/// Closing a case.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CloseComplaint {
    /// How it was resolved.
    resolution: String,
}

/// Closes a case with its resolution.
#[utoipa::path(post, path = "/api/v1/complaints/{id}/close", tag = "counter", params(("id" = ComplaintId, Path, description = "Complaint id")),
    request_body = CloseComplaint,
    responses((status = 200, body = Complaint), (status = 409, body = crate::problem::ProblemDocument)))]
async fn close_complaint(
    State(app): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<ComplaintId>,
    ApiJson(close): ApiJson<CloseComplaint>,
) -> Result<Json<Complaint>, Problem> {
    Ok(Json(app.sales().close_complaint(&ctx, id, &close.resolution).await?))
}
