//! Every error the API returns, as an RFC 9457 `application/problem+json` document with
//! a stable `type` per kind of error. This is the one place errors become HTTP: domain
//! errors convert into a [`Problem`] here and nowhere else.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use smartticket_catalog::CatalogError;
use smartticket_core::PagingError;
use smartticket_fleet::FleetError;
use smartticket_identity::{AccountError, IdentityError, LinkRefused};
use smartticket_sales::SalesError;
use smartticket_sales::payments::GatewayError;
use smartticket_store::StoreError;
use utoipa::ToSchema;

/// The media type of problem documents (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Prefix of every problem `type`; the slug after it never changes once released.
pub const PROBLEM_TYPE_PREFIX: &str = "urn:smartticket:problem:";

macro_rules! problem_kinds {
    ($($variant:ident => ($slug:literal, $status:expr, $title:literal),)*) => {
        /// The kinds of problem, each with a stable slug, an HTTP status and a title.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ProblemKind {
            $(
                #[doc = $title]
                $variant,
            )*
        }

        impl ProblemKind {
            /// Every kind, for documentation and tests.
            pub const ALL: &'static [ProblemKind] = &[$(ProblemKind::$variant),*];

            /// The stable slug, e.g. `invalid-json`.
            pub fn slug(self) -> &'static str {
                match self { $(ProblemKind::$variant => $slug,)* }
            }

            /// The HTTP status.
            pub fn status(self) -> StatusCode {
                match self { $(ProblemKind::$variant => $status,)* }
            }

            /// A short summary that does not change between occurrences.
            pub fn title(self) -> &'static str {
                match self { $(ProblemKind::$variant => $title,)* }
            }
        }
    };
}

problem_kinds! {
    InvalidJson => ("invalid-json", StatusCode::BAD_REQUEST, "The request body is not valid JSON"),
    InvalidBody => ("invalid-body", StatusCode::UNPROCESSABLE_ENTITY, "The request body does not match the expected fields and types"),
    UnsupportedMediaType => ("unsupported-media-type", StatusCode::UNSUPPORTED_MEDIA_TYPE, "The request body must be application/json"),
    BodyTooLarge => ("body-too-large", StatusCode::PAYLOAD_TOO_LARGE, "The request body is larger than allowed"),
    InvalidQuery => ("invalid-query", StatusCode::BAD_REQUEST, "The query string is not valid"),
    InvalidPath => ("invalid-path", StatusCode::BAD_REQUEST, "A path parameter is not valid"),
    InvalidHeader => ("invalid-header", StatusCode::BAD_REQUEST, "A request header is not valid"),
    Validation => ("validation", StatusCode::UNPROCESSABLE_ENTITY, "A field is not valid"),
    WeakPassword => ("weak-password", StatusCode::UNPROCESSABLE_ENTITY, "The password does not meet the password policy"),
    EmailTaken => ("email-taken", StatusCode::CONFLICT, "An account with this email already exists"),
    NameTaken => ("name-taken", StatusCode::CONFLICT, "The name is already in use"),
    LastAdmin => ("last-admin", StatusCode::CONFLICT, "The change would leave no active administrator"),
    CatalogDateTaken => ("catalog-date-taken", StatusCode::CONFLICT, "A catalogue version already takes effect on this date"),
    InvalidCredentials => ("invalid-credentials", StatusCode::UNAUTHORIZED, "Email or password is wrong"),
    AccountLocked => ("account-locked", StatusCode::TOO_MANY_REQUESTS, "The account is locked after too many failed logins"),
    AccountDisabled => ("account-disabled", StatusCode::FORBIDDEN, "The account is disabled"),
    Unauthenticated => ("unauthenticated", StatusCode::UNAUTHORIZED, "This endpoint needs credentials"),
    TokenInvalid => ("token-invalid", StatusCode::UNAUTHORIZED, "The access token is not valid"),
    TokenExpired => ("token-expired", StatusCode::UNAUTHORIZED, "The session has expired"),
    WrongCurrentPassword => ("wrong-current-password", StatusCode::FORBIDDEN, "The current password is wrong"),
    Forbidden => ("forbidden", StatusCode::FORBIDDEN, "Your role may not use this endpoint"),
    NotFound => ("not-found", StatusCode::NOT_FOUND, "The resource does not exist"),
    NoRoute => ("no-route", StatusCode::NOT_FOUND, "There is no such endpoint"),
    MethodNotAllowed => ("method-not-allowed", StatusCode::METHOD_NOT_ALLOWED, "The endpoint does not support this method"),
    DatabaseUnavailable => ("database-unavailable", StatusCode::SERVICE_UNAVAILABLE, "The database is unavailable; retry later"),
    NotReady => ("not-ready", StatusCode::SERVICE_UNAVAILABLE, "The server is not ready"),
    Timeout => ("timeout", StatusCode::SERVICE_UNAVAILABLE, "The request took too long and was abandoned; nothing was changed"),
    IllegalTransition => ("illegal-transition", StatusCode::CONFLICT, "The medium's lifecycle does not allow this change"),
    Conflict => ("conflict", StatusCode::CONFLICT, "The request conflicts with the current state"),
    ProofRejected => ("proof-rejected", StatusCode::FORBIDDEN, "The proof of ownership does not match the card's use"),
    TooManyAttempts => ("too-many-attempts", StatusCode::TOO_MANY_REQUESTS, "Too many attempts; try again later"),
    DiscountNotApproved => ("discount-not-approved", StatusCode::FORBIDDEN, "The discount needs an approved request"),
    CallbackRejected => ("callback-rejected", StatusCode::BAD_REQUEST, "The payment callback is not authentic or not readable"),
    GatewayRefused => ("gateway-refused", StatusCode::BAD_GATEWAY, "The payment gateway refused the operation"),
    CardSession => ("card-session", StatusCode::UNPROCESSABLE_ENTITY, "The card session failed"),
    KeysUnavailable => ("keys-unavailable", StatusCode::SERVICE_UNAVAILABLE, "The keys needed are not available"),
    LinkInvalid => ("link-invalid", StatusCode::BAD_REQUEST, "The link is not valid"),
    LinkUsed => ("link-used", StatusCode::CONFLICT, "The link has already been used"),
    LinkExpired => ("link-expired", StatusCode::GONE, "The link has expired"),
    ListVersionUnknown => ("list-version-unknown", StatusCode::CONFLICT, "The list version given is not available; download the full list"),
    BatchConflict => ("batch-conflict", StatusCode::CONFLICT, "The batch conflicts with records already received"),
    Internal => ("internal", StatusCode::INTERNAL_SERVER_ERROR, "An internal error occurred"),
}

impl ProblemKind {
    /// The full `type` URI.
    pub fn type_uri(self) -> String {
        format!("{PROBLEM_TYPE_PREFIX}{}", self.slug())
    }
}

/// One field that failed validation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldError {
    /// The field, as the API spells it (`email`, `display_name`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemDocument {
    /// A URI naming the kind of problem; stable, so clients can branch on it.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong this time, for a person to read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The request id; quote it when reporting a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// For validation problems: each field at fault.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// For `forbidden`: the roles that may use the endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_roles: Option<Vec<String>>,
    /// For `illegal-transition`: the lifecycle events allowed now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_events: Option<Vec<String>>,
}

/// An error on its way to becoming a response.
#[derive(Debug, Clone)]
pub struct Problem {
    /// Which kind.
    pub kind: ProblemKind,
    /// What went wrong this time.
    pub detail: Option<String>,
    /// Fields at fault.
    pub errors: Vec<FieldError>,
    /// Roles that may use the endpoint (for `forbidden`). Boxed slices keep a `Problem`
    /// small, since every handler's `Result` carries one.
    pub allowed_roles: Option<Box<[String]>>,
    /// Lifecycle events allowed now (for `illegal-transition`).
    pub allowed_events: Option<Box<[String]>>,
    /// Seconds after which a retry may succeed (sets `Retry-After`).
    pub retry_after_secs: Option<u32>,
    /// What went wrong inside, for the request's log line only; never sent to the client
    /// (driver messages can quote SQL and stored values).
    pub cause: Option<String>,
}

impl Problem {
    /// A problem of `kind` with no detail.
    pub fn new(kind: ProblemKind) -> Self {
        Self {
            kind,
            detail: None,
            errors: Vec::new(),
            allowed_roles: None,
            allowed_events: None,
            retry_after_secs: None,
            cause: None,
        }
    }

    /// A problem of `kind` saying `detail`.
    pub fn with_detail(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self { detail: Some(detail.into()), ..Self::new(kind) }
    }

    /// Attaches an internal cause for the log line.
    pub fn caused_by(mut self, cause: impl std::fmt::Display) -> Self {
        self.cause = Some(cause.to_string());
        self
    }

    /// A validation problem on one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            detail: Some(format!("{field}: {message}")),
            errors: vec![FieldError { field: field.to_owned(), message }],
            ..Self::new(ProblemKind::Validation)
        }
    }

    /// The document this problem serialises to.
    pub fn document(&self, request_id: Option<String>) -> ProblemDocument {
        ProblemDocument {
            type_uri: self.kind.type_uri(),
            title: self.kind.title().to_owned(),
            status: self.kind.status().as_u16(),
            detail: self.detail.clone(),
            request_id,
            errors: self.errors.clone(),
            allowed_roles: self.allowed_roles.clone().map(Vec::from),
            allowed_events: self.allowed_events.clone().map(Vec::from),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        // The request id is filled in by the request-id middleware, which sees every
        // response; here the document is written without it and the kind is attached so
        // the middleware (and the access log) know what happened.
        let body = serde_json::to_vec(&self.document(None)).unwrap_or_default();
        let mut response = (self.kind.status(), body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(secs) = self.retry_after_secs {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response.extensions_mut().insert(self);
        response
    }
}

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        if error.is_unavailable() {
            let mut problem = Problem::new(ProblemKind::DatabaseUnavailable).caused_by(&error);
            problem.retry_after_secs = Some(5);
            return problem;
        }
        Problem::new(ProblemKind::Internal).caused_by(&error)
    }
}

impl From<PagingError> for Problem {
    fn from(error: PagingError) -> Self {
        let field = match error {
            PagingError::LimitOutOfRange(_) => "limit",
            PagingError::BadCursor => "cursor",
        };
        let mut problem = Problem::field(field, error.to_string());
        problem.kind = ProblemKind::InvalidQuery;
        problem
    }
}

impl From<IdentityError> for Problem {
    fn from(error: IdentityError) -> Self {
        use IdentityError as E;
        let detail = error.to_string();
        match error {
            E::Invalid { field, message } => Problem::field(field, message),
            E::WeakPassword(message) => Problem {
                errors: vec![FieldError { field: "password".into(), message }],
                ..Problem::with_detail(ProblemKind::WeakPassword, detail)
            },
            E::EmailTaken => Problem::with_detail(ProblemKind::EmailTaken, detail),
            E::NameTaken => Problem::with_detail(ProblemKind::NameTaken, detail),
            E::InvalidCredentials => Problem::with_detail(ProblemKind::InvalidCredentials, detail),
            E::AccountLocked { retry_after_secs, .. } => Problem {
                retry_after_secs: Some(u32::try_from(retry_after_secs).unwrap_or(u32::MAX)),
                ..Problem::with_detail(ProblemKind::AccountLocked, detail)
            },
            E::AccountDisabled => Problem::with_detail(ProblemKind::AccountDisabled, detail),
            E::TokenInvalid => Problem::with_detail(ProblemKind::TokenInvalid, detail),
            E::TokenExpired => Problem::with_detail(ProblemKind::TokenExpired, detail),
            E::WrongCurrentPassword => Problem::with_detail(ProblemKind::WrongCurrentPassword, detail),
            E::NotFound { .. } => Problem::with_detail(ProblemKind::NotFound, detail),
            E::LastAdmin => Problem::with_detail(ProblemKind::LastAdmin, detail),
            E::Store(store) => Problem::from(store),
            E::Hashing(_) => Problem::new(ProblemKind::Internal).caused_by(detail),
            other => Problem::new(ProblemKind::Internal).caused_by(other),
        }
    }
}

/// Maps a catalogue error to its problem: the caller's mistakes to 404/409/422 naming
/// the field, storage to 503/500.
fn catalog_problem(error: CatalogError) -> Problem {
    let detail = error.to_string();
    match error {
        CatalogError::Document(_) | CatalogError::NetworkChanged { .. } => Problem::field("document", detail),
        CatalogError::Quote(quote) => Problem::field(quote.field(), quote.to_string()),
        CatalogError::Invalid { field, message } => Problem::field(field, message),
        CatalogError::BackDated { .. } => Problem::field("effective_from", detail),
        CatalogError::DuplicateDate(_) => Problem {
            errors: vec![FieldError { field: "effective_from".into(), message: detail.clone() }],
            ..Problem::with_detail(ProblemKind::CatalogDateTaken, detail)
        },
        CatalogError::NoCatalog(_) | CatalogError::NotFound(_) => Problem::with_detail(ProblemKind::NotFound, detail),
        CatalogError::Store(store) => Problem::from(store),
        other => Problem::new(ProblemKind::Internal).caused_by(other),
    }
}

impl From<CatalogError> for Problem {
    fn from(error: CatalogError) -> Self {
        catalog_problem(error)
    }
}

impl From<AccountError> for Problem {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::Link(refused) => {
                let kind = match refused {
                    LinkRefused::Unknown => ProblemKind::LinkInvalid,
                    LinkRefused::Used => ProblemKind::LinkUsed,
                    LinkRefused::Expired => ProblemKind::LinkExpired,
                };
                Problem::with_detail(kind, refused.to_string())
            }
            AccountError::Identity(error) => Problem::from(error),
            other => Problem::new(ProblemKind::Internal).caused_by(other),
        }
    }
}

impl From<SalesError> for Problem {
    fn from(error: SalesError) -> Self {
        let detail = error.to_string();
        match error {
            SalesError::Invalid { field, message } => Problem::field(field, message),
            SalesError::NotFound { .. } => Problem::with_detail(ProblemKind::NotFound, detail),
            SalesError::IllegalTransition(transition) => Problem {
                errors: vec![FieldError { field: "event".into(), message: detail.clone() }],
                allowed_events: Some(transition.allowed.iter().map(|e| e.as_str().to_owned()).collect()),
                ..Problem::with_detail(ProblemKind::IllegalTransition, detail)
            },
            SalesError::Conflict(_) => Problem::with_detail(ProblemKind::Conflict, detail),
            SalesError::ProofRejected { .. } => Problem::with_detail(ProblemKind::ProofRejected, detail),
            SalesError::TooManyAttempts(_) => {
                Problem { retry_after_secs: Some(60), ..Problem::with_detail(ProblemKind::TooManyAttempts, detail) }
            }
            SalesError::DiscountNotApproved { .. } => Problem {
                errors: vec![FieldError { field: "discount".into(), message: detail.clone() }],
                ..Problem::with_detail(ProblemKind::DiscountNotApproved, detail)
            },
            SalesError::Catalog(catalog) => Problem::from(catalog),
            SalesError::Gateway(GatewayError::Signature(_) | GatewayError::Body(_)) => {
                Problem::with_detail(ProblemKind::CallbackRejected, detail)
            }
            SalesError::Gateway(GatewayError::Refused(_)) => Problem::with_detail(ProblemKind::GatewayRefused, detail),
            SalesError::Card(_) => Problem::with_detail(ProblemKind::CardSession, detail),
            SalesError::Mail(mail) => Problem::new(ProblemKind::Internal).caused_by(mail),
            SalesError::Keys(keys) => Problem::new(ProblemKind::KeysUnavailable).caused_by(keys),
            SalesError::Store(store) => Problem::from(store),
            other => Problem::new(ProblemKind::Internal).caused_by(other),
        }
    }
}

impl From<FleetError> for Problem {
    fn from(error: FleetError) -> Self {
        let detail = error.to_string();
        match error {
            FleetError::UnknownVersion { .. } => Problem {
                errors: vec![FieldError { field: "since".into(), message: detail.clone() }],
                ..Problem::with_detail(ProblemKind::ListVersionUnknown, detail)
            },
            FleetError::InvalidBatch { field, message } => Problem::field(field, message),
            FleetError::BatchIdReused { .. } | FleetError::RecordMismatch { .. } => {
                Problem::with_detail(ProblemKind::BatchConflict, detail)
            }
            FleetError::XmlTooLarge { .. } => Problem::field("since", detail),
            // The publisher runs every few seconds: the first list (or a quieter moment) is near.
            FleetError::NothingPublished(_) | FleetError::PublishContention { .. } => {
                Problem { retry_after_secs: Some(2), ..Problem::with_detail(ProblemKind::NotReady, detail) }
            }
            FleetError::Keys(keys) => Problem::new(ProblemKind::KeysUnavailable).caused_by(keys),
            FleetError::Store(store) => Problem::from(store),
            other => Problem::new(ProblemKind::Internal).caused_by(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_unique_and_urn_shaped() {
        let mut slugs: Vec<&str> = ProblemKind::ALL.iter().map(|k| k.slug()).collect();
        slugs.sort_unstable();
        let before = slugs.len();
        slugs.dedup();
        assert_eq!(before, slugs.len(), "two kinds share a slug");
        for kind in ProblemKind::ALL {
            assert!(kind.slug().bytes().all(|b| b.is_ascii_lowercase() || b == b'-'));
            assert!(kind.status().is_client_error() || kind.status().is_server_error());
        }
    }

    #[test]
    fn storage_details_are_not_echoed() {
        let problem = Problem::from(StoreError::Corrupt("SELECT secret FROM x".into()));
        assert_eq!(problem.kind, ProblemKind::Internal);
        assert_eq!(problem.detail, None);
        let document = serde_json::to_string(&problem.document(None)).unwrap();
        assert!(!document.contains("SELECT"), "{document}");
        assert!(problem.cause.unwrap().contains("SELECT"), "the cause is kept for the log");
    }
}
