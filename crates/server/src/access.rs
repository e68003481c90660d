//! Who may call what. Every endpoint is registered through [`Api::endpoint`] with its
//! [`Access`]: the same call adds the route, documents the allowed roles in the OpenAPI
//! operation (`x-roles`), and puts the role check in front of the handler. A route cannot
//! exist without a declared access rule, and the document cannot disagree with the check.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use smartticket_identity::Role;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{RefOr, Response as OpenApiResponse, ResponseBuilder};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

use crate::AppState;
use crate::problem::{PROBLEM_JSON, Problem, ProblemKind};

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without credentials.
    Public,
    /// Callers holding one of these roles.
    Roles(&'static [Role]),
}

/// Every staff role.
pub const STAFF: &[Role] = &[Role::Admin, Role::Operator, Role::Cashier, Role::Carrier, Role::Auditor];
/// Everyone who logs in with a password (staff and customers), i.e. holds a session.
pub const SESSION_HOLDERS: &[Role] =
    &[Role::Admin, Role::Operator, Role::Cashier, Role::Carrier, Role::Auditor, Role::Customer];
/// Every role.
pub const ANY_ROLE: &[Role] = &Role::ALL;

/// One registered endpoint, as the route table and the tests see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteAccess {
    /// HTTP method.
    pub method: Method,
    /// Path template, e.g. `/api/v1/staff/{id}`.
    pub path: String,
    /// Who may call it.
    pub access: Access,
}

/// Builds the API: routes, their OpenAPI operations and their access rules together.
pub struct Api {
    state: AppState,
    router: OpenApiRouter<AppState>,
    routes: Vec<RouteAccess>,
}

impl Api {
    /// An empty API over `state`.
    pub fn new(state: AppState, router: OpenApiRouter<AppState>) -> Self {
        Self { state, router, routes: Vec::new() }
    }

    /// Adds the handlers of `routes!(…)`, all under `access`.
    pub fn endpoint(
        mut self,
        access: Access,
        (schemas, mut paths, method_router): UtoipaMethodRouter<AppState>,
    ) -> Self {
        for (path, item) in paths.paths.iter_mut() {
            for (method, operation) in operations_mut(item) {
                document_access(operation, access);
                self.routes.push(RouteAccess { method, path: path.clone(), access });
            }
        }
        let method_router = match access {
            Access::Public => method_router,
            Access::Roles(roles) => method_router.route_layer(from_fn_with_state((self.state.clone(), roles), require)),
        };
        self.router = self.router.routes((schemas, paths, method_router));
        self
    }

    /// The finished router and route table.
    pub fn finish(self) -> (OpenApiRouter<AppState>, Vec<RouteAccess>) {
        (self.router, self.routes)
    }
}

fn operations_mut(item: &mut PathItem) -> Vec<(Method, &mut Operation)> {
    let PathItem { get, put, post, delete, patch, head, options, .. } = item;
    [
        (Method::GET, get),
        (Method::PUT, put),
        (Method::POST, post),
        (Method::DELETE, delete),
        (Method::PATCH, patch),
        (Method::HEAD, head),
        (Method::OPTIONS, options),
    ]
    .into_iter()
    .filter_map(|(method, op)| op.as_mut().map(|op| (method, op)))
    .collect()
}

fn problem_response(description: &str) -> RefOr<OpenApiResponse> {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            utoipa::openapi::ContentBuilder::new()
                .schema(Some(utoipa::openapi::Ref::from_schema_name("ProblemDocument")))
                .build(),
        )
        .build()
        .into()
}

/// Writes the access rule into the operation: security requirement, `x-roles`, a line in
/// the description, and the 401/403/503 answers every protected endpoint can give.
fn document_access(operation: &mut Operation, access: Access) {
    let roles: Vec<&str> = match access {
        Access::Public => Vec::new(),
        Access::Roles(roles) => roles.iter().map(|r| r.as_str()).collect(),
    };
    let extensions = operation.extensions.get_or_insert_with(Default::default);
    extensions.insert("x-roles".into(), serde_json::json!(roles));
    let who = if roles.is_empty() { "anyone, without credentials".to_owned() } else { roles.join(", ") };
    let description = operation.description.get_or_insert_with(String::new);
    if !description.is_empty() {
        description.push_str("\n\n");
    }
    description.push_str(&format!("**Allowed:** {who}."));
    let responses = &mut operation.responses.responses;
    if !roles.is_empty() {
        operation.security = Some(vec![SecurityRequirement::new::<_, _, &str>("bearer", [])]);
        responses.entry("401".into()).or_insert_with(|| problem_response("No valid credentials"));
        responses
            .entry("403".into())
            .or_insert_with(|| problem_response("The caller's role may not use this endpoint"));
    }
    responses.entry("503".into()).or_insert_with(|| problem_response("The database is unavailable; retry later"));
    responses.entry("500".into()).or_insert_with(|| problem_response("Internal error"));
    normalise_error_responses(responses);
}

/// Error answers are always problem documents: whatever a handler's annotation says, a
/// 4xx/5xx body is `application/problem+json`, and every answer gets a description.
fn normalise_error_responses(responses: &mut std::collections::BTreeMap<String, RefOr<OpenApiResponse>>) {
    for (status, response) in responses.iter_mut() {
        let RefOr::T(response) = response else { continue };
        let code = status.parse::<u16>().ok().and_then(|c| axum::http::StatusCode::from_u16(c).ok());
        if response.description.is_empty() {
            response.description = code.and_then(|c| c.canonical_reason()).unwrap_or("Answer").to_owned();
        }
        if code.is_some_and(|c| c.is_client_error() || c.is_server_error())
            && let Some(content) = response.content.shift_remove("application/json")
        {
            response.content.insert(PROBLEM_JSON.to_owned(), content);
        }
    }
}

/// Longest `Authorization` value considered; tokens are 47 characters.
const AUTHORIZATION_CHARS_MAX: usize = 256;

/// Reads `Authorization: Bearer <token>`. `Ok(None)` when the header is absent.
pub(crate) fn bearer(headers: &HeaderMap) -> Result<Option<SecretString>, Problem> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || Problem::with_detail(ProblemKind::TokenInvalid, "expected `Authorization: Bearer <token>`");
    let text = value.to_str().map_err(|_| malformed())?;
    if text.len() > AUTHORIZATION_CHARS_MAX {
        return Err(malformed());
    }
    let (scheme, token) = text.split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(malformed());
    }
    Ok(Some(SecretString::from(token.trim().to_owned())))
}

/// The role check in front of every protected handler: authenticate, then authorise.
async fn require(
    State((app, roles)): State<(AppState, &'static [Role])>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = match bearer(request.headers()) {
        Ok(Some(token)) => token,
        Ok(None) => {
            return Problem::with_detail(ProblemKind::Unauthenticated, "send `Authorization: Bearer <token>`")
                .into_response();
        }
        Err(problem) => return problem.into_response(),
    };
    let principal = match app.identity().authenticate(&token).await {
        Ok(principal) => principal,
        Err(error) => return Problem::from(error).into_response(),
    };
    if !roles.contains(&principal.role()) {
        let mut problem = Problem::with_detail(
            ProblemKind::Forbidden,
            format!("the role `{}` may not use this endpoint", principal.role()),
        );
        problem.allowed_roles = Some(roles.iter().map(|r| r.as_str().to_owned()).collect());
        return problem.into_response();
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        let mut headers = HeaderMap::new();
        assert!(bearer(&headers).unwrap().is_none());
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert!(bearer(&headers).is_err());
        headers.insert(header::AUTHORIZATION, "bearer sts_x".parse().unwrap());
        assert!(bearer(&headers).unwrap().is_some());
        headers.insert(header::AUTHORIZATION, "Bearer ".parse().unwrap());
        assert!(bearer(&headers).is_err());
    }
}
