//! Reading the audit log.

use axum::Json;
use axum::extract::State;
use smartticket_core::paging::{Page, PageRequest};
use smartticket_identity::Role;
use smartticket_identity::audit::{self, AuditEntry, AuditFilter};
use utoipa_axum::routes;

use crate::AppState;
use crate::access::{Access, Api};
use crate::extract::ApiQuery;
use crate::problem::Problem;

const READERS: &[Role] = &[Role::Admin, Role::Auditor];

pub(crate) fn register(api: Api) -> Api {
    api.endpoint(Access::Roles(READERS), routes!(list_audit))
}

/// Audit entries, newest first, filtered by actor, action, target and time.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditFilter, PageRequest),
    responses((status = 200, body = Page<AuditEntry>)))]
async fn list_audit(
    State(app): State<AppState>,
    ApiQuery(filter): ApiQuery<AuditFilter>,
    ApiQuery(page): ApiQuery<PageRequest>,
) -> Result<Json<Page<AuditEntry>>, Problem> {
    Ok(Json(audit::list(app.db(), &filter, &page.spec()?).await?))
}
