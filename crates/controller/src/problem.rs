//! Every error the controller's API returns, as an RFC 9457 `application/problem+json`
//! document with a stable `type`, and for bad input the `field` at fault. The one place
//! errors become HTTP: [`AccessError`]s convert here and nowhere else.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use smartticket_acceptance::access::AccessError;
use smartticket_acceptance::journal::JournalError;

/// The media type of problem documents (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";
/// Prefix of every problem `type`, as in the back office's API.
pub const PROBLEM_TYPE_PREFIX: &str = "urn:smartticket:problem:";

/// One error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `urn:smartticket:problem:<slug>`; the slug never changes once released.
    #[serde(rename = "type")]
    pub kind: String,
    /// A summary that does not change between occurrences.
    pub title: &'static str,
    /// The HTTP status, repeated for clients that only see the body.
    pub status: u16,
    /// What went wrong this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The request field at fault (body field, query parameter, path segment or header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Problem {
    /// A problem of kind `slug`.
    #[must_use]
    pub fn new(status: StatusCode, slug: &str, title: &'static str) -> Problem {
        Problem {
            kind: format!("{PROBLEM_TYPE_PREFIX}{slug}"),
            title,
            status: status.as_u16(),
            detail: None,
            field: None,
        }
    }

    /// With a detail.
    #[must_use]
    pub fn detail(mut self, detail: impl Into<String>) -> Problem {
        self.detail = Some(detail.into());
        self
    }

    /// 422: `field` is not valid, because `detail`.
    #[must_use]
    pub fn invalid_field(field: &str, detail: impl Into<String>) -> Problem {
        let mut problem = Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", "A field is not valid");
        problem.field = Some(field.to_owned());
        problem.detail(detail)
    }

    /// 401: no valid bearer token.
    #[must_use]
    pub fn unauthenticated() -> Problem {
        Problem::new(StatusCode::UNAUTHORIZED, "unauthenticated", "This endpoint needs the device's API token")
    }

    /// 404.
    #[must_use]
    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "The resource does not exist").detail(detail)
    }

    /// 500 without details: what failed is logged, not told to the caller.
    #[must_use]
    pub fn internal() -> Problem {
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "The controller failed; see its log")
    }

    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<AccessError> for Problem {
    fn from(error: AccessError) -> Problem {
        match &error {
            AccessError::Identifier(inner) => Problem::invalid_field("identifier", inner.to_string()),
            AccessError::Grant(inner) => Problem::invalid_field(inner.field(), inner.to_string()),
            AccessError::DoorOutOfRange { .. } => Problem::invalid_field("door", error.to_string()),
            AccessError::InvalidActor => Problem::invalid_field("x-actor", error.to_string()),
            AccessError::ListFull => {
                Problem::new(StatusCode::CONFLICT, "list-full", "The access list is full").detail(error.to_string())
            }
            // Nothing more can be journalled, so nothing may be decided or changed until the
            // events are collected: the device is unavailable, not broken.
            AccessError::Journal(JournalError::Full { .. }) => {
                tracing::error!(%error, "access: the journal is full");
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "journal-full", "The event journal is full")
            }
            _ => {
                tracing::error!(%error, "access: the controller failed");
                Problem::internal()
            }
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let unauthenticated = status == StatusCode::UNAUTHORIZED;
        let mut response = (status, axum::Json(self)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if unauthenticated {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
