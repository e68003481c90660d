//! The audit log: who did what, to what, when, from where, and why.
//!
//! Entries are written in the same transaction as the change they describe, so a change
//! without its entry (or an entry without its change) cannot exist. The table refuses
//! UPDATE and DELETE by trigger. Ids are written in their prefixed form (`stf_…`) so an
//! entry reads on its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use smartticket_core::Timestamp;
use smartticket_core::id::{CustomerId, PartnerId, StaffId};
use smartticket_core::paging::{Page, PageSpec};
use smartticket_store::{Db, StoreError, Tx, decode_time, sql};
use utoipa::{IntoParams, ToSchema};

use crate::{Principal, StaffRole};

/// Longest reason kept, in characters; a reason is a sentence, not a document.
pub const REASON_CHARS_MAX: usize = 500;

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A logged-in staff member, with the role they held at the time.
    Staff {
        /// Who.
        id: StaffId,
        /// Their role when acting.
        role: StaffRole,
    },
    /// A logged-in customer.
    Customer {
        /// Who.
        id: CustomerId,
    },
    /// A partner's API key.
    Partner {
        /// Which partner.
        id: PartnerId,
    },
    /// A process acting on its own (the CLI, a scheduled job), named.
    System {
        /// The component, e.g. `cli` or `demo`.
        component: String,
    },
    /// Nobody logged in (registration, a failed login).
    Anonymous,
}

impl From<&Principal> for Actor {
    fn from(principal: &Principal) -> Actor {
        match principal {
            Principal::Staff { id, role, .. } => Actor::Staff { id: *id, role: *role },
            Principal::Customer { id, .. } => Actor::Customer { id: *id },
            Principal::Partner { id, .. } => Actor::Partner { id: *id },
        }
    }
}

impl Actor {
    /// The stored form: kind, id (prefixed), role.
    pub fn columns(&self) -> (&'static str, Option<String>, Option<&'static str>) {
        match self {
            Actor::Staff { id, role } => ("staff", Some(id.to_string()), Some(role.as_str())),
            Actor::Customer { id } => ("customer", Some(id.to_string()), None),
            Actor::Partner { id } => ("partner", Some(id.to_string()), None),
            Actor::System { component } => ("system", Some(component.clone()), None),
            Actor::Anonymous => ("anonymous", None, None),
        }
    }
}

/// The circumstances of a change, carried from the request to the audit entry.
#[derive(Debug, Clone)]
pub struct AuditCtx {
    /// Who is acting.
    pub actor: Actor,
    /// The client's address, as the server saw it.
    pub source_ip: Option<String>,
    /// The request id, to join the entry with logs.
    pub request_id: Option<String>,
    /// Why, in the actor's words.
    pub reason: Option<String>,
    recorded: Option<Arc<AtomicBool>>,
}

impl AuditCtx {
    /// A context for `actor` with no request around it.
    pub fn new(actor: Actor) -> Self {
        Self { actor, source_ip: None, request_id: None, reason: None, recorded: None }
    }

    /// A context for a process acting on its own behalf.
    pub fn system(component: &str) -> Self {
        Self::new(Actor::System { component: component.to_owned() })
    }

    /// Attaches a flag set whenever an entry is recorded under this context; the HTTP
    /// layer uses it to prove every successful change was audited.
    pub fn with_recorded_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.recorded = Some(flag);
        self
    }

    /// Marks the request as accounted for without a new entry: an idempotent repeat,
    /// whose first occurrence recorded the change.
    pub fn mark_recorded(&self) {
        if let Some(flag) = &self.recorded {
            flag.store(true, std::sync::atomic::Ordering::Release);
        }
    }

    /// Sets the reason, trimmed and cut to [`REASON_CHARS_MAX`].
    pub fn with_reason(mut self, reason: Option<&str>) -> Self {
        self.reason =
            reason.map(str::trim).filter(|r| !r.is_empty()).map(|r| r.chars().take(REASON_CHARS_MAX).collect());
        self
    }
}

/// How the attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The change was made.
    Ok,
    /// Refused for lack of permission or credentials (a failed login).
    Denied,
    /// Attempted and failed.
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }
}

/// One thing that happened.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    /// What, as `noun.verb`: `staff.create`, `auth.login`.
    pub action: &'static str,
    /// The kind of thing acted on (`staff`, `partner`), if any.
    pub target_kind: Option<&'static str>,
    /// Its id, in prefixed form.
    pub target_id: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// What changed: non-secret fields only.
    pub details: serde_json::Value,
}

impl AuditEvent {
    /// A successful `action` on `target_kind` `target_id`.
    pub fn ok(action: &'static str, target_kind: &'static str, target_id: impl ToString) -> Self {
        Self {
            action,
            target_kind: Some(target_kind),
            target_id: Some(target_id.to_string()),
            outcome: Outcome::Ok,
            details: serde_json::Value::Object(Default::default()),
        }
    }

    /// Adds the details.
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// Writes `event` inside `tx`, so it commits or rolls back with the change it describes.
pub async fn record(tx: &mut Tx, ctx: &AuditCtx, at: Timestamp, event: AuditEvent) -> Result<(), StoreError> {
    record_many(tx, &[(ctx, at, event)]).await
}

/// Writes many events inside `tx` with multi-row inserts (group commit writes hundreds of
/// sales in one transaction).
pub async fn record_many(tx: &mut Tx, events: &[(&AuditCtx, Timestamp, AuditEvent)]) -> Result<(), StoreError> {
    for chunk in tx.statement_chunks(events) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|(ctx, at, event)| {
                let (actor_kind, actor_id, actor_role) = ctx.actor.columns();
                (ctx, at.unix_micros(), actor_kind, actor_id, actor_role, event, event.details.to_string())
            })
            .collect();
        sql!(tx.conn(), |c| {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO audit_log (at_us, actor_kind, actor_id, actor_role, action, target_kind, target_id, \
                 outcome, reason, source_ip, request_id, details) ",
            );
            insert.push_values(&rows, |mut row, (ctx, at, kind, id, role, event, details)| {
                row.push_bind(*at)
                    .push_bind(*kind)
                    .push_bind(id.clone())
                    .push_bind(*role)
                    .push_bind(event.action)
                    .push_bind(event.target_kind)
                    .push_bind(event.target_id.clone())
                    .push_bind(event.outcome.as_str())
                    .push_bind(ctx.reason.clone())
                    .push_bind(ctx.source_ip.clone())
                    .push_bind(ctx.request_id.clone())
                    .push_bind(details.clone());
            });
            insert.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    for (ctx, _, _) in events {
        if let Some(flag) = &ctx.recorded {
            flag.store(true, Ordering::Release);
        }
    }
    Ok(())
}

/// Writes `event` in a transaction of its own: for events with no other change (a failed
/// login).
pub async fn record_alone(db: &Db, ctx: &AuditCtx, at: Timestamp, event: AuditEvent) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    record(&mut tx, ctx, at, event).await?;
    tx.commit().await
}

/// One entry of the audit log.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEntry {
    /// Position in the log; strictly increasing.
    pub seq: i64,
    /// When.
    pub at: Timestamp,
    /// `staff`, `customer`, `partner`, `system` or `anonymous`.
    pub actor_kind: String,
    /// The actor's id (or the system component's name).
    pub actor_id: Option<String>,
    /// A staff actor's role at the time.
    pub actor_role: Option<String>,
    /// What was done, as `noun.verb`.
    pub action: String,
    /// The kind of thing acted on.
    pub target_kind: Option<String>,
    /// Its id.
    pub target_id: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// Why, as given by the actor.
    pub reason: Option<String>,
    /// The client's address.
    pub source_ip: Option<String>,
    /// The request id, for joining with server logs.
    pub request_id: Option<String>,
    /// What changed.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// Which entries to list; every filter is optional and they combine with AND.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// Only entries by this actor id.
    pub actor: Option<String>,
    /// Only this action, e.g. `staff.create`.
    pub action: Option<String>,
    /// Only entries about this target id.
    pub target: Option<String>,
    /// Only entries at or after this instant.
    pub from: Option<Timestamp>,
    /// Only entries before this instant.
    pub to: Option<Timestamp>,
}

type AuditRow = (
    i64,
    i64,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
);

/// Lists entries matching `filter`, newest first, one page at a time.
pub async fn list(db: &Db, filter: &AuditFilter, page: &PageSpec<i64>) -> Result<Page<AuditEntry>, StoreError> {
    let fetch = page.fetch_rows();
    let rows: Vec<AuditRow> = sql!(db.reader(), |c| {
        sqlx::query_as(
            "SELECT seq, at_us, actor_kind, actor_id, actor_role, action, target_kind, target_id, outcome, reason, \
             source_ip, request_id, details FROM audit_log \
             WHERE ($1 IS NULL OR seq < $1) AND ($2 IS NULL OR actor_id = $2) AND ($3 IS NULL OR action = $3) \
             AND ($4 IS NULL OR target_id = $4) AND ($5 IS NULL OR at_us >= $5) AND ($6 IS NULL OR at_us < $6) \
             ORDER BY seq DESC LIMIT $7",
        )
        .bind(page.after)
        .bind(filter.actor.as_deref())
        .bind(filter.action.as_deref())
        .bind(filter.target.as_deref())
        .bind(filter.from.map(Timestamp::unix_micros))
        .bind(filter.to.map(Timestamp::unix_micros))
        .bind(fetch)
        .fetch_all(c)
        .await
    })?;
    let entries = rows.into_iter().map(entry_from_row).collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_rows(entries, page, |e| e.seq))
}

fn entry_from_row(row: AuditRow) -> Result<AuditEntry, StoreError> {
    let (
        seq,
        at_us,
        actor_kind,
        actor_id,
        actor_role,
        action,
        target_kind,
        target_id,
        outcome,
        reason,
        ip,
        rid,
        details,
    ) = row;
    let outcome = match outcome.as_str() {
        "ok" => Outcome::Ok,
        "denied" => Outcome::Denied,
        "failed" => Outcome::Failed,
        other => return Err(StoreError::Corrupt(format!("audit outcome `{other}`"))),
    };
    let details = serde_json::from_str(&details).map_err(|e| StoreError::Corrupt(format!("audit details: {e}")))?;
    Ok(AuditEntry {
        seq,
        at: decode_time(at_us)?,
        actor_kind,
        actor_id,
        actor_role,
        action,
        target_kind,
        target_id,
        outcome,
        reason,
        source_ip: ip,
        request_id: rid,
        details,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_trimmed_and_bounded() {
        let ctx = AuditCtx::system("t").with_reason(Some("  "));
        assert_eq!(ctx.reason, None);
        let long = "ř".repeat(REASON_CHARS_MAX + 10);
        let ctx = AuditCtx::system("t").with_reason(Some(&long));
        assert_eq!(ctx.reason.unwrap().chars().count(), REASON_CHARS_MAX);
    }
}
