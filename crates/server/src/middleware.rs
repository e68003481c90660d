//! The layers every request passes through: a request id and one access-log line, a
//! timeout, panic containment, and the audit guard that proves every successful change
//! wrote an audit entry.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::problem::{Problem, ProblemKind};

/// Header carrying the request id in both directions.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Longest client-supplied request id kept; longer ones are replaced by our own.
const REQUEST_ID_CHARS_MAX: usize = 64;

/// The id of the current request, taken from `X-Request-Id` if the client sent a sane
/// one, or made fresh.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Set when an audit entry has been recorded for the current request.
#[derive(Debug, Clone)]
pub struct AuditFlag(pub Arc<AtomicBool>);

fn accept_request_id(value: Option<&HeaderValue>) -> Option<String> {
    let text = value?.to_str().ok()?;
    let sane = !text.is_empty()
        && text.len() <= REQUEST_ID_CHARS_MAX
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    sane.then(|| text.to_owned())
}

/// Gives the request an id, echoes it on the response (and inside problem documents),
/// and writes one log line when the response is ready.
pub async fn observe(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = accept_request_id(request.headers().get(REQUEST_ID_HEADER))
        .unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
    request.extensions_mut().insert(RequestId(id.clone()));
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let mut response = next.run(request).await;
    let problem = response.extensions().get::<Problem>().cloned();
    if let Some(problem) = &problem {
        // Re-render the document with the request id, so a user can quote it.
        let body = serde_json::to_vec(&problem.document(Some(id.clone()))).unwrap_or_default();
        response.headers_mut().remove(header::CONTENT_LENGTH);
        *response.body_mut() = Body::from(body);
        if problem.kind.status() == axum::http::StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let headers = response.headers_mut();
    // API answers carry tokens and personal data: never cache them, never sniff them.
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    let status = response.status().as_u16();
    let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let route = route.as_deref().unwrap_or("-");
    let cause = problem.as_ref().and_then(|p| p.cause.clone()).unwrap_or_default();
    let problem = problem.map(|p| p.kind.slug()).unwrap_or("");
    // One line per request, whatever happened: the problem kind and, for server-side
    // failures, the internal cause that the client never sees.
    if status >= 500 {
        tracing::error!(request_id = %id, %method, route, status, latency_us, problem, cause, "request");
    } else {
        tracing::info!(request_id = %id, %method, route, status, latency_us, problem, "request");
    }
    response
}

/// Abandons a request that runs longer than the configured timeout. The handler's future
/// is dropped, which rolls back any open transaction: nothing half-done is committed.
pub async fn deadline(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let limit = Duration::from_millis(app.settings().request_timeout_ms);
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => Problem::with_detail(ProblemKind::Timeout, format!("no answer within {} ms", limit.as_millis()))
            .into_response(),
    }
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Every successful state-changing request must have written an audit entry. A handler
/// that forgets is a bug: debug builds (and so every test) answer 500 to make it loud;
/// release builds log it as an error and keep the caller's answer.
pub async fn audit_guard(mut request: Request, next: Next) -> Response {
    if !changes_state(request.method()) {
        return next.run(request).await;
    }
    let flag = Arc::new(AtomicBool::new(false));
    request.extensions_mut().insert(AuditFlag(flag.clone()));
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let method = request.method().clone();
    let response = next.run(request).await;
    if response.status().is_success() && !flag.load(Ordering::Acquire) {
        tracing::error!(%method, route, "state-changing request succeeded without an audit entry");
        if cfg!(debug_assertions) {
            return Problem::with_detail(ProblemKind::Internal, "handler did not record an audit entry")
                .into_response();
        }
    }
    response
}

/// The answer when a handler panics: a plain internal-error problem, never the message.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    Problem::new(ProblemKind::Internal).caused_by(format!("handler panicked: {message}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_from_clients_are_bounded() {
        assert_eq!(accept_request_id(Some(&HeaderValue::from_static("abc-123"))), Some("abc-123".into()));
        assert_eq!(accept_request_id(Some(&HeaderValue::from_static("has space"))), None);
        let long = HeaderValue::from_str(&"a".repeat(65)).unwrap();
        assert_eq!(accept_request_id(Some(&long)), None);
        assert_eq!(accept_request_id(None), None);
    }
}
