//! Customer accounts: self-registration in the e-shop, and lookup by staff.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use smartticket_core::id::CustomerId;
use smartticket_core::paging::{Page, PageRequest};
use smartticket_identity::Role;
use smartticket_identity::customers::{Customer, CustomerSearch, Registration};
use utoipa_axum::routes;

use crate::AppState;
use crate::access::{Access, Api};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Ctx};
use crate::problem::Problem;
use crate::routes::created;

const READERS: &[Role] = &[Role::Admin, Role::Operator, Role::Cashier, Role::Auditor];

pub(crate) fn register(api: Api) -> Api {
    api.endpoint(Access::Public, routes!(register_customer))
        .endpoint(Access::Roles(READERS), routes!(search_customers))
        .endpoint(Access::Roles(READERS), routes!(get_customer))
}

/// Opens a customer account; the email becomes its login (KIDSOK 3.1.1).
#[utoipa::path(post, path = "/api/v1/customers/register", tag = "customers", request_body = Registration,
    responses(
        (status = 201, body = Customer),
        (status = 409, description = "The email is taken", body = crate::problem::ProblemDocument),
        (status = 422, description = "A field is invalid or the password is weak", body = crate::problem::ProblemDocument),
    ))]
async fn register_customer(
    State(app): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(registration): ApiJson<Registration>,
) -> Result<Response, Problem> {
    let customer = app.identity().register_customer(&ctx, registration).await?;
    Ok(created(format!("/api/v1/customers/{}", customer.id), customer))
}

/// Customers, optionally those whose email starts with a text.
#[utoipa::path(get, path = "/api/v1/customers", tag = "customers", params(CustomerSearch, PageRequest),
    responses((status = 200, body = Page<Customer>)))]
async fn search_customers(
    State(app): State<AppState>,
    ApiQuery(search): ApiQuery<CustomerSearch>,
    ApiQuery(page): ApiQuery<PageRequest>,
) -> Result<Json<Page<Customer>>, Problem> {
    Ok(Json(app.identity().search_customers(&search, &page.spec()?).await?))
}

/// One customer.
#[utoipa::path(get, path = "/api/v1/customers/{id}", tag = "customers", params(("id" = CustomerId, Path, description = "Customer id")),
    responses((status = 200, body = Customer), (status = 404, body = crate::problem::ProblemDocument)))]
async fn get_customer(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<CustomerId>,
) -> Result<Json<Customer>, Problem> {
    Ok(Json(app.identity().customer(id).await?))
}
