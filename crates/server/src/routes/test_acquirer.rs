//! The built-in test acquirer's hosted payment page: where a card payment sends the payer
//! when the test acquirer is the configured gateway. The page takes a card number, decides
//! by the magic numbers (approve, decline, no answer), signs the bank's webhook exactly as
//! a real gateway would, and delivers it to the same verification the public callback
//! endpoint uses; then it sends the payer back to the shop.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use secrecy::SecretString;
use serde::Deserialize;
use smartticket_core::id::PaymentId;
use smartticket_crypto::token::Pan;
use smartticket_sales::media::Scope;
use smartticket_sales::payments::test_acquirer::{Decision, decide, event_for};
use smartticket_sales::payments::{CardGateway, PaymentStatus};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use crate::AppState;
use crate::access::{Access, Api};
use crate::extract::{ApiPath, ApiQuery, Unchanged};
use crate::problem::{Problem, ProblemKind};

pub(crate) fn register(api: Api) -> Api {
    api.endpoint(Access::Public, routes!(checkout_page)).endpoint(Access::Public, routes!(pay))
}

/// Where to return.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ReturnTo {
    /// The shop page to send the payer back to.
    #[serde(rename = "return")]
    return_url: Option<String>,
}

/// Escapes text for HTML.
fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            other => other.to_string(),
        })
        .collect()
}

/// The return address, if it is this shop's (anything else would make the bank page an
/// open redirect).
fn own_return(app: &AppState, return_url: Option<&str>) -> String {
    let base = app.sales().public_base();
    match return_url {
        Some(url) if url.starts_with(&format!("{base}/")) && !url.chars().any(char::is_control) => url.to_owned(),
        _ => format!("{base}/"),
    }
}

fn acquirer_enabled(app: &AppState) -> Result<(), Problem> {
    if app.test_acquirer().is_none() {
        return Err(Problem::with_detail(
            ProblemKind::NotFound,
            "the test acquirer is not the configured card gateway",
        ));
    }
    Ok(())
}

fn page(title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title}</title></head><body><main><h1>{title}</h1>{body}</main></body></html>"
    );
    let mut response = Html(html).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The bank's page for a card payment: the amount and a card form. Magic numbers:
/// 4111 1111 1111 1111 approves, 4000 0000 0000 0002 declines, 4000 0000 0000 0119 never
/// answers.
#[utoipa::path(get, path = "/test-acquirer/checkout/{payment}", tag = "test acquirer",
    params(("payment" = PaymentId, Path, description = "Payment id"), ReturnTo),
    responses((status = 200, content_type = "text/html", body = String), (status = 404, body = crate::problem::ProblemDocument)))]
async fn checkout_page(
    State(app): State<AppState>,
    ApiPath(payment): ApiPath<PaymentId>,
    ApiQuery(back): ApiQuery<ReturnTo>,
) -> Result<Response, Problem> {
    acquirer_enabled(&app)?;
    let found = app.sales().payment(Scope::Staff, payment).await?;
    let return_url = own_return(&app, back.return_url.as_deref());
    if found.status != PaymentStatus::Pending {
        let body = format!(
            "<p>This payment is already {}.</p><p><a href=\"{}\">Back to the shop</a></p>",
            escape(&format!("{:?}", found.status).to_lowercase()),
            escape(&return_url)
        );
        return Ok(page("Test acquirer", &body));
    }
    let body = format!(
        "<p>Pay <strong>{amount}</strong> for order {order}.</p>\
         <form method=\"post\" action=\"/test-acquirer/checkout/{payment}\">\
         <input type=\"hidden\" name=\"return_url\" value=\"{back}\">\
         <p><label for=\"pan\">Card number</label><br><input id=\"pan\" name=\"pan\" inputmode=\"numeric\" autocomplete=\"cc-number\" required></p>\
         <p><label for=\"expiry\">Expiry (MM/YY)</label><br><input id=\"expiry\" name=\"expiry\" autocomplete=\"cc-exp\" required></p>\
         <p><button type=\"submit\">Pay</button></p></form>\
         <p><small>Test cards: 4111 1111 1111 1111 approves; 4000 0000 0000 0002 is declined; \
         4000 0000 0000 0119 gets no answer.</small></p>",
        amount = escape(&found.amount.to_string()),
        order = escape(&found.order_id.to_string()),
        back = escape(&return_url),
    );
    Ok(page("Test acquirer", &body))
}

/// The card form.
#[derive(Deserialize, ToSchema)]
struct PayForm {
    /// The card number.
    #[schema(value_type = String)]
    pan: SecretString,
    /// Expiry, MM/YY.
    expiry: String,
    /// Where to return.
    return_url: Option<String>,
}

/// Submits the card: the test acquirer decides, signs its webhook and delivers it, then
/// sends the payer back to the shop (303).
#[utoipa::path(post, path = "/test-acquirer/checkout/{payment}", tag = "test acquirer",
    params(("payment" = PaymentId, Path, description = "Payment id")),
    request_body(content = PayForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Back to the shop"), (status = 200, content_type = "text/html", body = String),
        (status = 422, body = crate::problem::ProblemDocument)))]
async fn pay(
    State(app): State<AppState>,
    ApiPath(payment): ApiPath<PaymentId>,
    // The payment changes through the webhook, which the domain audits under the bank's name.
    _unchanged: Unchanged,
    form: Result<axum::Form<PayForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, Problem> {
    acquirer_enabled(&app)?;
    let Some(acquirer) = app.test_acquirer().cloned() else { return Err(Problem::new(ProblemKind::NotFound)) };
    let axum::Form(form) = form.map_err(|e| Problem::with_detail(ProblemKind::InvalidBody, e.body_text()))?;
    let pan = Pan::parse(secrecy::ExposeSecret::expose_secret(&form.pan))
        .map_err(|e| Problem::field("pan", e.to_string()))?;
    smartticket_crypto::token::Expiry::parse_mm_yy(&form.expiry)
        .map_err(|e| Problem::field("expiry", e.to_string()))?;
    let return_url = own_return(&app, form.return_url.as_deref());
    let decision = decide(&pan);
    drop(pan);
    let Some(event) = event_for(payment, &decision) else {
        debug_assert_eq!(decision, Decision::Timeout);
        let body = format!(
            "<p>The bank did not answer. The payment stays pending; nothing was charged.</p><p><a href=\"{}\">Back to the shop</a></p>",
            escape(&return_url)
        );
        return Ok(page("Test acquirer", &body));
    };
    let (body, signature) = acquirer
        .signed_callback(&event, app.clock().now())
        .map_err(|e| Problem::new(ProblemKind::Internal).caused_by(e))?;
    let _: &dyn CardGateway = acquirer.as_ref();
    app.sales().gateway_callback(Some(&signature), &body).await?;
    let mut response = StatusCode::SEE_OTHER.into_response();
    let location = HeaderValue::from_str(&return_url).map_err(|_| Problem::new(ProblemKind::Internal))?;
    response.headers_mut().insert(header::LOCATION, location);
    Ok(response)
}
