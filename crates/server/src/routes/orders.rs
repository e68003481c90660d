//! Carts, orders and payments: the e-shop's cart and checkout, direct orders for counters
//! and partners, paying by method, refunds, and the payment gateway's callback. Prices
//! never come from the client: every item is priced from the catalogue in force.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use smartticket_core::id::{CartItemId, CustomerId, OrderId, PaymentId};
use smartticket_core::paging::{Page, PageRequest};
use smartticket_identity::{Principal, Role};
use smartticket_sales::media::Scope;
use smartticket_sales::orders::{Buyer, Cart, ItemRequest, Order, OrderSummary};
use smartticket_sales::payments::test_acquirer::SIGNATURE_HEADER;
use smartticket_sales::payments::{Payment, PaymentStart, StatementReport};
use smartticket_sales::sell::SaleRequest;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use crate::AppState;
use crate::access::{Access, Api};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller, Ctx, IdempotencyKey, RawBody, Unchanged};
use crate::problem::{Problem, ProblemKind};
use crate::routes::created;

/// Who buys: passengers, counters, partners.
const BUYERS: &[Role] = &[Role::Admin, Role::Operator, Role::Cashier, Role::Customer, Role::Partner];
/// Who sees orders.
const VIEWERS: &[Role] = &[Role::Admin, Role::Operator, Role::Cashier, Role::Auditor, Role::Customer, Role::Partner];
/// Who refunds.
const REFUNDERS: &[Role] = &[Role::Admin, Role::Operator, Role::Cashier];
/// Who imports bank statements.
const TREASURY: &[Role] = &[Role::Admin, Role::Operator];
/// Largest bank statement accepted (a day of an operator's account).
const STATEMENT_BYTES_MAX: usize = 16 * 1024 * 1024;

pub(crate) fn register(api: Api) -> Api {
    let (schemas, paths, statement) = routes!(import_statement);
    let statement = statement.layer(axum::extract::DefaultBodyLimit::max(STATEMENT_BYTES_MAX));
    api.endpoint(Access::Roles(&[Role::Customer]), routes!(get_cart))
        .endpoint(Access::Roles(&[Role::Customer]), routes!(add_to_cart))
        .endpoint(Access::Roles(&[Role::Customer]), routes!(remove_from_cart))
        .endpoint(Access::Roles(&[Role::Customer]), routes!(checkout))
        .endpoint(Access::Roles(BUYERS), routes!(create_order))
        .endpoint(Access::Roles(&[Role::Admin, Role::Operator, Role::Cashier, Role::Partner]), routes!(sell))
        .endpoint(Access::Roles(VIEWERS), routes!(list_orders))
        .endpoint(Access::Roles(VIEWERS), routes!(get_order))
        .endpoint(Access::Roles(BUYERS), routes!(cancel_order))
        .endpoint(Access::Roles(BUYERS), routes!(start_payment))
        .endpoint(Access::Roles(VIEWERS), routes!(get_payment))
        .endpoint(Access::Roles(REFUNDERS), routes!(refund_order))
        .endpoint(Access::Public, routes!(gateway_callback))
        .endpoint(Access::Roles(TREASURY), (schemas, paths, statement))
}

/// The buyer a caller acts as.
pub(crate) fn buyer(caller: &Principal) -> Buyer {
    match caller {
        Principal::Customer { id, .. } => Buyer::Customer(*id),
        Principal::Staff { id, .. } => Buyer::Cashier(*id),
        Principal::Partner { id, .. } => Buyer::Partner(*id),
    }
}

/// The calling passenger's cart, priced as of now; lines that can no longer be sold say
/// why in `problem`.
#[utoipa::path(get, path = "/api/v1/cart", tag = "orders", responses((status = 200, body = Cart)))]
async fn get_cart(State(app): State<AppState>, Caller(caller): Caller) -> Result<Json<Cart>, Problem> {
    Ok(Json(app.sales().cart(buyer(&caller)).await?))
}

/// Adds a line to the cart after checking it can be sold (medium, product, discount
/// approval, dates); the price comes from the catalogue.
#[utoipa::path(post, path = "/api/v1/cart/items", tag = "orders", request_body = ItemRequest,
    responses((status = 200, body = Cart), (status = 403, body = crate::problem::ProblemDocument), (status = 422, body = crate::problem::ProblemDocument)))]
async fn add_to_cart(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Ctx(ctx): Ctx,
    ApiJson(item): ApiJson<ItemRequest>,
) -> Result<Json<Cart>, Problem> {
    Ok(Json(app.sales().add_to_cart(&ctx, buyer(&caller), &item).await?))
}

/// Removes a line from the cart.
#[utoipa::path(delete, path = "/api/v1/cart/items/{id}", tag = "orders", params(("id" = CartItemId, Path, description = "Cart line id")),
    responses((status = 200, body = Cart), (status = 404, body = crate::problem::ProblemDocument)))]
async fn remove_from_cart(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<CartItemId>,
) -> Result<Json<Cart>, Problem> {
    Ok(Json(app.sales().remove_from_cart(&ctx, buyer(&caller), id).await?))
}

/// Turns the cart into an order. The `Idempotency-Key` header makes a double click or a
/// retry harmless: the same key answers with the same order, and concurrent checkouts of
/// one cart give one order.
#[utoipa::path(post, path = "/api/v1/cart/checkout", tag = "orders",
    params(("Idempotency-Key" = String, Header, description = "One fresh value per purchase attempt, reused on retries")),
    responses((status = 201, body = Order), (status = 422, body = crate::problem::ProblemDocument)))]
async fn checkout(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Ctx(ctx): Ctx,
    IdempotencyKey(key): IdempotencyKey,
) -> Result<Response, Problem> {
    let order = app.sales().checkout(&ctx, buyer(&caller), &key).await?;
    // A repeated key changes nothing; the first request's audit entry stands for both.
    ctx.mark_recorded();
    Ok(created(format!("/api/v1/orders/{}", order.id), order))
}

/// Items of a direct order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewOrder {
    /// What to buy.
    items: Vec<ItemRequest>,
}

/// Creates an order in one call (counters, partners, scripts). Same idempotency rules as
/// checkout.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", request_body = NewOrder,
    params(("Idempotency-Key" = String, Header, description = "One fresh value per purchase attempt, reused on retries")),
    responses((status = 201, body = Order), (status = 403, body = crate::problem::ProblemDocument), (status = 422, body = crate::problem::ProblemDocument)))]
async fn create_order(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Ctx(ctx): Ctx,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(new): ApiJson<NewOrder>,
) -> Result<Response, Problem> {
    let order = app.sales().create_order(&ctx, buyer(&caller), &new.items, &key).await?;
    ctx.mark_recorded();
    Ok(created(format!("/api/v1/orders/{}", order.id), order))
}

/// A sale in one call, as a point of sale makes it: the order and its payment (`cash` by a
/// cashier with an open shift, `partner` by a partner who collects the money) in one
/// transaction. Same idempotency rules as checkout. Sales arriving together are committed
/// together (group commit); each is answered only once it is durable.
#[utoipa::path(post, path = "/api/v1/sales", tag = "orders", request_body = SaleRequest,
    params(("Idempotency-Key" = String, Header, description = "One fresh value per sale, reused on retries")),
    responses((status = 201, body = Order), (status = 404, body = crate::problem::ProblemDocument), (status = 409, body = crate::problem::ProblemDocument), (status = 422, body = crate::problem::ProblemDocument)))]
async fn sell(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Ctx(ctx): Ctx,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(sale): ApiJson<SaleRequest>,
) -> Result<Response, Problem> {
    let order = app.sales().sell(&ctx, buyer(&caller), sale, &key).await?;
    Ok(created(format!("/api/v1/orders/{}", order.id), order))
}

/// Whose orders.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct OrdersQuery {
    /// Staff: one passenger's orders.
    customer_id: Option<CustomerId>,
    /// Items per page.
    limit: Option<u32>,
    /// The cursor of the next page.
    cursor: Option<String>,
}

/// Orders, newest first: a passenger's own, a partner's sales, or (staff) everyone's or
/// one passenger's.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", params(OrdersQuery),
    responses((status = 200, body = Page<OrderSummary>)))]
async fn list_orders(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<OrdersQuery>,
) -> Result<Json<Page<OrderSummary>>, Problem> {
    let page = PageRequest { limit: query.limit, cursor: query.cursor }.spec()?;
    Ok(Json(app.sales().orders(Scope::from(&caller), query.customer_id, &page).await?))
}

/// One order with its items, payments and entitlements.
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders", params(("id" = OrderId, Path, description = "Order id")),
    responses((status = 200, body = Order), (status = 404, body = crate::problem::ProblemDocument)))]
async fn get_order(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<OrderId>,
) -> Result<Json<Order>, Problem> {
    Ok(Json(app.sales().order(Scope::from(&caller), id).await?))
}

/// Gives up an unpaid order.
#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", tag = "orders", params(("id" = OrderId, Path, description = "Order id")),
    responses((status = 200, body = Order), (status = 409, body = crate::problem::ProblemDocument)))]
async fn cancel_order(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<OrderId>,
) -> Result<Json<Order>, Problem> {
    Ok(Json(app.sales().cancel_order(&ctx, Scope::from(&caller), id).await?))
}

/// Pays an order: `card` answers with `redirect_url`, the bank's page; `bank_transfer`
/// with the `variable_symbol` to quote; `cash` (a cashier with an open shift) and
/// `partner` (a partner, who collects the money) are approved at once.
#[utoipa::path(post, path = "/api/v1/orders/{id}/payments", tag = "orders", params(("id" = OrderId, Path, description = "Order id")),
    request_body = PaymentStart,
    responses((status = 201, body = Payment), (status = 409, body = crate::problem::ProblemDocument), (status = 422, body = crate::problem::ProblemDocument)))]
async fn start_payment(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<OrderId>,
    ApiJson(method): ApiJson<PaymentStart>,
) -> Result<Response, Problem> {
    let payment = app.sales().start_payment(&ctx, buyer(&caller), id, &method).await?;
    Ok(created(format!("/api/v1/payments/{}", payment.id), payment))
}

/// One payment.
#[utoipa::path(get, path = "/api/v1/payments/{id}", tag = "orders", params(("id" = PaymentId, Path, description = "Payment id")),
    responses((status = 200, body = Payment), (status = 404, body = crate::problem::ProblemDocument)))]
async fn get_payment(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<PaymentId>,
) -> Result<Json<Payment>, Problem> {
    Ok(Json(app.sales().payment(Scope::from(&caller), id).await?))
}

/// Why an order is refunded.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Refund {
    /// The reason, kept in the audit log.
    reason: String,
}

/// Refunds a paid order whose products are all unused (not yet written to a card, or not
/// yet started on an account medium); the money goes back the way it came.
#[utoipa::path(post, path = "/api/v1/orders/{id}/refund", tag = "orders", params(("id" = OrderId, Path, description = "Order id")),
    request_body = Refund,
    responses((status = 200, body = Order), (status = 409, body = crate::problem::ProblemDocument)))]
async fn refund_order(
    State(app): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<OrderId>,
    ApiJson(refund): ApiJson<Refund>,
) -> Result<Json<Order>, Problem> {
    Ok(Json(app.sales().refund_order(&ctx, id, &refund.reason).await?))
}

/// The card gateway's signed webhook. A repeated delivery (same event id) changes nothing
/// and gets the same answer; a callback that is not authentic is refused.
#[utoipa::path(post, path = "/api/v1/payments/callbacks/card", tag = "orders",
    params(("Test-Acquirer-Signature" = String, Header, description = "`t=<unix seconds>,v1=<hex HMAC-SHA256>` for the test acquirer")),
    responses((status = 200, body = Payment), (status = 400, body = crate::problem::ProblemDocument)))]
async fn gateway_callback(
    State(app): State<AppState>,
    headers: HeaderMap,
    // The domain audits the callback under the gateway's name.
    _unchanged: Unchanged,
    body: axum::body::Bytes,
) -> Result<Json<Payment>, Problem> {
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    Ok(Json(app.sales().gateway_callback(signature, &body).await?))
}

/// Imports a camt.053 bank statement (`application/xml`): booked credits whose variable
/// symbol and amount match a waiting bank transfer pay its order. Importing the same
/// statement again matches nothing twice.
#[utoipa::path(post, path = "/api/v1/payments/bank-statements", tag = "orders",
    request_body(content = String, content_type = "application/xml", description = "An ISO 20022 camt.053 statement"),
    responses((status = 200, body = StatementReport), (status = 415, body = crate::problem::ProblemDocument), (status = 422, body = crate::problem::ProblemDocument)))]
async fn import_statement(
    State(app): State<AppState>,
    Ctx(ctx): Ctx,
    body: RawBody,
) -> Result<Json<StatementReport>, Problem> {
    body.expect(&["application/xml", "text/xml"])?;
    let xml = std::str::from_utf8(&body.bytes)
        .map_err(|_| Problem::with_detail(ProblemKind::InvalidBody, "the statement is not UTF-8 text"))?;
    Ok(Json(app.sales().import_statement(&ctx, xml).await?))
}
