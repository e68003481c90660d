//! Request extractors whose failures are problem documents: JSON bodies, query strings,
//! path parameters, the authenticated caller, and the audit context of a change.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use smartticket_identity::audit::REASON_CHARS_MAX;
use smartticket_identity::{Actor, AuditCtx, Principal};

use crate::AppState;
use crate::middleware::{AuditFlag, RequestId};
use crate::problem::{Problem, ProblemKind};

/// Longest extractor message echoed back; serde messages can quote input.
const DETAIL_CHARS_MAX: usize = 300;

fn clip(text: &str) -> String {
    text.chars().take(DETAIL_CHARS_MAX).collect()
}

/// A JSON request body. Unknown fields, wrong types, bad syntax, a missing content type
/// and oversized bodies each get their own problem type.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_problem(rejection)),
        }
    }
}

fn json_problem(rejection: JsonRejection) -> Problem {
    match rejection {
        JsonRejection::JsonDataError(e) => {
            // The useful part is after the axum prefix: "field: what is wrong".
            let text = std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_else(|| e.body_text());
            Problem::with_detail(ProblemKind::InvalidBody, clip(&text))
        }
        JsonRejection::JsonSyntaxError(e) => {
            let text = std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_else(|| e.body_text());
            Problem::with_detail(ProblemKind::InvalidJson, clip(&text))
        }
        JsonRejection::MissingJsonContentType(_) => Problem::with_detail(
            ProblemKind::UnsupportedMediaType,
            "send the body with `Content-Type: application/json`",
        ),
        JsonRejection::BytesRejection(e) => {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                Problem::with_detail(ProblemKind::BodyTooLarge, e.body_text())
            } else {
                Problem::with_detail(ProblemKind::InvalidJson, clip(&e.body_text()))
            }
        }
        other => Problem::with_detail(ProblemKind::InvalidJson, clip(&other.body_text())),
    }
}

/// A query string.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                let text = std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_else(|| e.body_text());
                Err(Problem::with_detail(ProblemKind::InvalidQuery, clip(&text)))
            }
            Err(other) => Err(Problem::with_detail(ProblemKind::InvalidQuery, clip(&other.body_text()))),
        }
    }
}

/// Path parameters, e.g. a typed id.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                Err(Problem::with_detail(ProblemKind::InvalidPath, clip(&e.body_text())))
            }
            Err(other) => Err(Problem::with_detail(ProblemKind::Internal, clip(&other.body_text()))),
        }
    }
}

/// The authenticated caller. Only endpoints registered with roles have one; asking for it
/// on a public endpoint is a programming error and answers 500.
pub struct Caller(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Principal>().cloned().map(Caller).ok_or_else(|| {
            Problem::new(ProblemKind::Internal).caused_by("Caller extracted on an endpoint without an access rule")
        })
    }
}

/// Header carrying the reason for a change, percent-encoded UTF-8 (so `Oprava%20jízdenky`
/// or plain ASCII). Recorded in the audit log.
pub const AUDIT_REASON_HEADER: &str = "audit-reason";

/// The circumstances of a request, for the audit log: who, from where, which request,
/// and why.
pub struct Ctx(pub AuditCtx);

impl FromRequestParts<AppState> for Ctx {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let actor = parts.extensions.get::<Principal>().map(Actor::from).unwrap_or(Actor::Anonymous);
        let mut ctx = AuditCtx::new(actor).with_reason(reason(parts)?.as_deref());
        ctx.source_ip = client_ip(parts, state.settings().trust_forwarded_for);
        ctx.request_id = parts.extensions.get::<RequestId>().map(|id| id.0.clone());
        let flag = parts
            .extensions
            .get::<AuditFlag>()
            .map(|f| f.0.clone())
            .unwrap_or_else(|| Arc::new(AtomicBool::new(false)));
        Ok(Ctx(ctx.with_recorded_flag(flag)))
    }
}

fn reason(parts: &Parts) -> Result<Option<String>, Problem> {
    let Some(value) = parts.headers.get(AUDIT_REASON_HEADER) else {
        return Ok(None);
    };
    let invalid = |why: &str| {
        let mut problem = Problem::field(AUDIT_REASON_HEADER, why);
        problem.kind = ProblemKind::InvalidHeader;
        problem
    };
    let decoded = percent_encoding::percent_decode(value.as_bytes())
        .decode_utf8()
        .map_err(|_| invalid("must be percent-encoded UTF-8"))?;
    if decoded.chars().count() > REASON_CHARS_MAX {
        return Err(invalid(&format!("must be at most {REASON_CHARS_MAX} characters")));
    }
    if decoded.chars().any(|c| c.is_control()) {
        return Err(invalid("must not contain control characters"));
    }
    Ok(Some(decoded.into_owned()))
}

/// The client's address: the socket peer, or the first `X-Forwarded-For` hop when the
/// server is configured to sit behind a trusted proxy (otherwise that header is a lie
/// anyone can tell).
fn client_ip(parts: &Parts, trust_forwarded_for: bool) -> Option<String> {
    if trust_forwarded_for {
        let forwarded = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .and_then(|ip| ip.parse::<std::net::IpAddr>().ok());
        if let Some(ip) = forwarded {
            return Some(ip.to_string());
        }
    }
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip().to_string())
}

/// Marks a `POST` that changes nothing (a quote, one step of a card session whose changes
/// the domain audits itself): the audit guard then expects no entry from this request.
pub struct Unchanged;

impl<S: Send + Sync> FromRequestParts<S> for Unchanged {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(AuditFlag(flag)) = parts.extensions.get::<AuditFlag>() {
            flag.store(true, std::sync::atomic::Ordering::Release);
        }
        Ok(Unchanged)
    }
}

/// Header naming one attempt of a request that must not happen twice (a checkout, a sale).
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// The `Idempotency-Key` header, required: the same key always gets the same order.
pub struct IdempotencyKey(pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let value = parts.headers.get(IDEMPOTENCY_KEY_HEADER).ok_or_else(|| {
            Problem::with_detail(
                ProblemKind::InvalidHeader,
                "send an `Idempotency-Key` header (one fresh value per purchase attempt, reused on retries)",
            )
        })?;
        let text = value
            .to_str()
            .map_err(|_| Problem::with_detail(ProblemKind::InvalidHeader, "`Idempotency-Key` must be ASCII"))?;
        Ok(IdempotencyKey(text.to_owned()))
    }
}

/// A raw request body of one of a few media types (an image, an XML statement), with the
/// type the client declared. The size limit is the route's body limit.
pub struct RawBody {
    /// The declared media type, lower case, without parameters.
    pub media_type: String,
    /// The bytes.
    pub bytes: axum::body::Bytes,
}

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let media_type = request
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_default();
        let bytes = axum::body::Bytes::from_request(request, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                Problem::with_detail(ProblemKind::BodyTooLarge, e.body_text())
            } else {
                Problem::with_detail(ProblemKind::InvalidBody, clip(&e.body_text()))
            }
        })?;
        Ok(RawBody { media_type, bytes })
    }
}

impl RawBody {
    /// Refuses a media type not in `allowed`.
    pub fn expect(&self, allowed: &[&str]) -> Result<(), Problem> {
        if allowed.contains(&self.media_type.as_str()) {
            Ok(())
        } else {
            Err(Problem::with_detail(
                ProblemKind::UnsupportedMediaType,
                format!("send the body as {}", allowed.join(" or ")),
            ))
        }
    }
}
