//! Fare media: registering fare cards and bank cards (through the token gate), the
//! lifecycle, blocking and replacing lost media, proofs of ownership, and what each medium
//! carries. Rules live in `smartticket-sales`; this module maps them to HTTP.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use secrecy::SecretString;
use serde::Deserialize;
use smartticket_core::id::{CustomerId, MediumId};
use smartticket_identity::{Principal, Role};
use smartticket_sales::MediumEvent;
use smartticket_sales::entitlements::Entitlement;
use smartticket_sales::media::{Medium, OwnershipProof, Scope};
use smartticket_sales::replacement::{ReplaceRequest, ReplacementReport};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use crate::AppState;
use crate::access::{Access, Api};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller, Ctx};
use crate::problem::Problem;
use crate::routes::created;

/// Who sees media: their owners, counters, partners, and the back office.
const VIEWERS: &[Role] = &[Role::Admin, Role::Operator, Role::Cashier, Role::Auditor, Role::Customer, Role::Partner];
/// Who registers fare cards to people.
const REGISTRARS: &[Role] = &[Role::Admin, Role::Operator, Role::Cashier, Role::Customer, Role::Partner];
/// Who changes the lifecycle as staff.
const LIFECYCLE: &[Role] = &[Role::Admin, Role::Operator, Role::Cashier];
/// Who manages card stock.
const STOCK: &[Role] = &[Role::Admin, Role::Operator];
/// Who blocks media: owners and counters.
const BLOCKERS: &[Role] = &[Role::Admin, Role::Operator, Role::Cashier, Role::Customer];
/// Who registers bank cards: the passenger, or a cashier for them.
const TOKEN_GATE: &[Role] = &[Role::Cashier, Role::Customer];

pub(crate) fn register(api: Api) -> Api {
    api.endpoint(Access::Roles(VIEWERS), routes!(list_media))
        .endpoint(Access::Roles(VIEWERS), routes!(get_medium))
        .endpoint(Access::Roles(VIEWERS), routes!(medium_entitlements))
        .endpoint(Access::Roles(&[Role::Admin, Role::Operator, Role::Cashier, Role::Partner]), routes!(find_card))
        .endpoint(Access::Roles(STOCK), routes!(add_stock))
        .endpoint(Access::Roles(REGISTRARS), routes!(register_fare_card))
        .endpoint(Access::Roles(TOKEN_GATE), routes!(register_bank_card))
        .endpoint(Access::Roles(LIFECYCLE), routes!(change_status))
        .endpoint(Access::Roles(&[Role::Admin, Role::Operator, Role::Cashier, Role::Customer]), routes!(activate))
        .endpoint(Access::Roles(BLOCKERS), routes!(block))
        .endpoint(Access::Roles(BLOCKERS), routes!(replace))
        .endpoint(Access::Roles(&[Role::Customer]), routes!(rename))
        .endpoint(Access::Roles(&[Role::Customer]), routes!(claim))
}

/// Whose media to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct MediaQuery {
    /// Staff: the passenger whose media to list (customers always get their own).
    customer_id: Option<CustomerId>,
}

/// A passenger's media, newest first.
#[utoipa::path(get, path = "/api/v1/media", tag = "media", params(MediaQuery),
    responses((status = 200, body = Vec<Medium>), (status = 422, body = crate::problem::ProblemDocument)))]
async fn list_media(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<MediaQuery>,
) -> Result<Json<Vec<Medium>>, Problem> {
    let customer = match (&caller, query.customer_id) {
        (Principal::Customer { id, .. }, _) => *id,
        (Principal::Staff { .. }, Some(customer)) => customer,
        (Principal::Staff { .. }, None) => return Err(Problem::field("customer_id", "name the passenger")),
        (Principal::Partner { .. }, _) => {
            return Err(Problem::field("customer_id", "partners look cards up by printed number"));
        }
    };
    Ok(Json(app.sales().media_of(customer).await?))
}

/// One medium.
#[utoipa::path(get, path = "/api/v1/media/{id}", tag = "media", params(("id" = MediumId, Path, description = "Medium id")),
    responses((status = 200, body = Medium), (status = 404, body = crate::problem::ProblemDocument)))]
async fn get_medium(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<MediumId>,
) -> Result<Json<Medium>, Problem> {
    Ok(Json(app.sales().medium(Scope::from(&caller), id).await?))
}

/// What a medium carries and will carry: contracts, purse loads and event tickets, with
/// those waiting for the next tap marked `pending_delivery`.
#[utoipa::path(get, path = "/api/v1/media/{id}/entitlements", tag = "media", params(("id" = MediumId, Path, description = "Medium id")),
    responses((status = 200, body = Vec<Entitlement>), (status = 404, body = crate::problem::ProblemDocument)))]
async fn medium_entitlements(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<MediumId>,
) -> Result<Json<Vec<Entitlement>>, Problem> {
    Ok(Json(app.sales().entitlements_of(Scope::from(&caller), id).await?))
}

/// A card by its printed number or UID.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct FindCard {
    /// The number printed on the card.
    printed_number: Option<String>,
    /// The chip's UID, hex.
    uid: Option<String>,
}

/// Finds a fare card (a cashier's reader, a partner topping up by number).
#[utoipa::path(get, path = "/api/v1/media/find", tag = "media", params(FindCard),
    responses((status = 200, body = Medium), (status = 404, body = crate::problem::ProblemDocument)))]
async fn find_card(
    State(app): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<FindCard>,
) -> Result<Json<Medium>, Problem> {
    let found =
        app.sales().find_card(Scope::from(&caller), query.printed_number.as_deref(), query.uid.as_deref()).await?;
    Ok(Json(found))
}

/// A personalised card entering stock.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewStock {
    /// The chip's 7-byte UID, hex.
    uid: String,
    /// The number printed on the card.
    printed_number: String,
}

/// Adds a personalised card to stock (status `manufactured`).
#[utoipa::path(post, path = "/api/v1/media/stock", tag = "media", request_body = NewStock,
    responses((status = 201, body = Medium), (status = 409, body = crate::problem::ProblemDocument)))]
async fn add_stock(
    State(app): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(new): ApiJson<NewStock>,
) -> Result<Response, Problem> {
    let uid: [u8; 7] = hex::decode(new.uid.trim())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| Problem::field("uid", "7 bytes in hex (14 digits)"))?;
    let medium = app.sales().register_stock(&ctx, uid, &new.printed_number).await?;
    Ok(created(format!("/api/v1/media/{}", medium.id), medium))
}

/// Registering a fare card from stock.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewFareCard {
    /// The number printed on the card.
    printed_number: String,
    /// The owner's name for it.
    #[serde(default)]
    label: Option<String>,
    /// Staff and partners: the passenger it is registered to (absent: an anonymous card).
    #[serde(default)]
    customer_id: Option<CustomerId>,
}

/// Registers an issued fare card: to the calling passenger, or by staff or a partner to a
/// passenger or as an anonymous card. The answer carries the registration receipt code.
#[utoipa::path(post, path = "/api/v1/media/fare-cards", tag = "media", request_body = NewFareCard,
    responses((status = 201, body = Medium), (status = 404, body = crate::problem::ProblemDocument), (status = 409, body = crate::problem::ProblemDocument)))]
async fn register_fare_card(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Ctx(ctx): Ctx,
    ApiJson(new): ApiJson<NewFareCard>,
) -> Result<Response, Problem> {
    let scope = Scope::from(&caller);
    if matches!(scope, Scope::Customer(_)) && new.customer_id.is_some() {
        return Err(Problem::field("customer_id", "a passenger registers cards to their own account"));
    }
    let medium =
        app.sales().register_fare_card(&ctx, scope, new.customer_id, &new.printed_number, new.label.as_deref()).await?;
    Ok(created(format!("/api/v1/media/{}", medium.id), medium))
}

/// A bank card at the token gate. The number is turned into a token in the HSM and
/// dropped; it is never stored or logged.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewBankCard {
    /// The card number (PAN), digits with optional spaces.
    #[schema(value_type = String, format = Password)]
    pan: SecretString,
    /// The expiry, `MM/YY`.
    expiry: String,
    /// The owner's name for it.
    #[serde(default)]
    label: Option<String>,
    /// A cashier: the passenger it is registered to.
    #[serde(default)]
    customer_id: Option<CustomerId>,
}

/// The token gate (KIDSOK 3.1.2): registers a bank card as a fare medium under a token;
/// only the token and a masked number such as `4276 **** **** 1234` are kept.
#[utoipa::path(post, path = "/api/v1/token-gate/bank-cards", tag = "media", request_body = NewBankCard,
    responses((status = 201, body = Medium), (status = 409, body = crate::problem::ProblemDocument), (status = 422, body = crate::problem::ProblemDocument)))]
async fn register_bank_card(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Ctx(ctx): Ctx,
    ApiJson(new): ApiJson<NewBankCard>,
) -> Result<Response, Problem> {
    let customer = match (&caller, new.customer_id) {
        (Principal::Customer { id, .. }, None) => *id,
        (Principal::Customer { .. }, Some(_)) => {
            return Err(Problem::field("customer_id", "a passenger registers cards to their own account"));
        }
        (_, Some(customer)) => customer,
        (_, None) => return Err(Problem::field("customer_id", "name the passenger")),
    };
    let medium = app.sales().register_bank_card(&ctx, customer, &new.pan, &new.expiry, new.label.as_deref()).await?;
    Ok(created(format!("/api/v1/media/{}", medium.id), medium))
}

/// A lifecycle event applied by staff.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct StatusChange {
    /// What happens: `issue`, `unblock`, `destroy`, …
    event: MediumEvent,
    /// Why.
    #[serde(default)]
    reason: Option<String>,
}

/// Applies a lifecycle event (CityPay 7.6). An event the lifecycle does not allow now is
/// refused with the allowed ones listed (`allowed_events`).
#[utoipa::path(post, path = "/api/v1/media/{id}/status", tag = "media", params(("id" = MediumId, Path, description = "Medium id")),
    request_body = StatusChange,
    responses((status = 200, body = Medium), (status = 409, body = crate::problem::ProblemDocument)))]
async fn change_status(
    State(app): State<AppState>,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<MediumId>,
    ApiJson(change): ApiJson<StatusChange>,
) -> Result<Json<Medium>, Problem> {
    Ok(Json(app.sales().change_status(&ctx, Scope::Staff, id, change.event, change.reason.as_deref()).await?))
}

/// The one online activation (CityPay 7.3).
#[utoipa::path(post, path = "/api/v1/media/{id}/activate", tag = "media", params(("id" = MediumId, Path, description = "Medium id")),
    responses((status = 200, body = Medium), (status = 409, body = crate::problem::ProblemDocument)))]
async fn activate(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<MediumId>,
) -> Result<Json<Medium>, Problem> {
    Ok(Json(app.sales().activate(&ctx, Scope::from(&caller), id).await?))
}

/// Blocking a medium.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct BlockRequest {
    /// Why (lost, stolen, damaged).
    reason: String,
    /// For good rather than until unblocked.
    #[serde(default)]
    permanent: bool,
    /// At a counter: the registration receipt code (KIDSOK 3.2.3).
    #[serde(default)]
    receipt: Option<String>,
}

/// Blocks a medium: it goes on the denylist.
#[utoipa::path(post, path = "/api/v1/media/{id}/block", tag = "media", params(("id" = MediumId, Path, description = "Medium id")),
    request_body = BlockRequest,
    responses((status = 200, body = Medium), (status = 409, body = crate::problem::ProblemDocument), (status = 422, body = crate::problem::ProblemDocument)))]
async fn block(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<MediumId>,
    ApiJson(request): ApiJson<BlockRequest>,
) -> Result<Json<Medium>, Problem> {
    let scope = Scope::from(&caller);
    let medium =
        app.sales().block(&ctx, scope, id, request.permanent, &request.reason, request.receipt.as_deref()).await?;
    Ok(Json(medium))
}

/// Blocks a lost medium for good and moves its contracts (and, after the waiting period,
/// its purse balance) to another medium of the same passenger.
#[utoipa::path(post, path = "/api/v1/media/{id}/replace", tag = "media", params(("id" = MediumId, Path, description = "The lost medium")),
    request_body = ReplaceRequest,
    responses((status = 200, body = ReplacementReport), (status = 409, body = crate::problem::ProblemDocument), (status = 422, body = crate::problem::ProblemDocument)))]
async fn replace(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<MediumId>,
    ApiJson(request): ApiJson<ReplaceRequest>,
) -> Result<Json<ReplacementReport>, Problem> {
    Ok(Json(app.sales().replace_medium(&ctx, Scope::from(&caller), id, &request).await?))
}

/// A new name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Rename {
    /// The owner's name for the medium; empty clears it.
    label: Option<String>,
}

/// Names a medium.
#[utoipa::path(patch, path = "/api/v1/media/{id}", tag = "media", params(("id" = MediumId, Path, description = "Medium id")),
    request_body = Rename,
    responses((status = 200, body = Medium), (status = 404, body = crate::problem::ProblemDocument)))]
async fn rename(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Ctx(ctx): Ctx,
    ApiPath(id): ApiPath<MediumId>,
    ApiJson(rename): ApiJson<Rename>,
) -> Result<Json<Medium>, Problem> {
    Ok(Json(app.sales().rename(&ctx, Scope::from(&caller), id, rename.label.as_deref()).await?))
}

/// A claim on an anonymous card.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Claim {
    /// The number printed on the card.
    printed_number: String,
    /// Two stations where it was used recently, or its last top-up amount.
    proof: OwnershipProof,
    /// The owner's name for it.
    #[serde(default)]
    label: Option<String>,
}

/// Claims an anonymous card for the calling passenger with a proof of ownership (seed
/// 001); a limited number of attempts per card per day.
#[utoipa::path(post, path = "/api/v1/media/claim", tag = "media", request_body = Claim,
    responses((status = 200, body = Medium), (status = 403, body = crate::problem::ProblemDocument), (status = 429, body = crate::problem::ProblemDocument)))]
async fn claim(
    State(app): State<AppState>,
    Caller(caller): Caller,
    Ctx(ctx): Ctx,
    ApiJson(claim): ApiJson<Claim>,
) -> Result<Json<Medium>, Problem> {
    let Principal::Customer { id, .. } = caller else {
        return Err(Problem::field("proof", "only a passenger claims a card"));
    };
    let medium = app.sales().claim_card(&ctx, id, &claim.printed_number, &claim.proof, claim.label.as_deref()).await?;
    Ok(Json(medium))
}
