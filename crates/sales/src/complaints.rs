//! Complaints (KIDSOK 3.2.4, seed 001): a cashier opens a case from a card held to the
//! reader or from a customer search, sees everything about the passenger (media,
//! discounts, purchases, entitlements, recent taps), and corrects entitlements. Every
//! correction carries a reason and is kept twice: in the case's own history and in the
//! audit log.

use serde::{Deserialize, Serialize};
use serde_json::json;
use smartticket_core::id::{ComplaintId, CustomerId, EntitlementId, MediumId, StaffId};
use smartticket_core::{Money, PageSpec, Timestamp};
use smartticket_identity::AuditCtx;
use smartticket_identity::audit::{self, AuditEvent};
use smartticket_store::{StoreError, Tx, decode_id, decode_time, sql};
use utoipa::ToSchema;

use crate::discounts::DiscountRequest;
use crate::entitlements::{self, Entitlement, EntitlementStatus, NewEntitlement};
use crate::media::{Medium, Scope, fetch_visible};
use crate::orders::{Buyer, ItemRequest, OrderSummary};
use crate::{Sales, SalesError};

/// Longest subject, reason or resolution.
const TEXT_CHARS_MAX: usize = 1000;
/// Taps shown per medium in a case.
const TAPS_SHOWN_MAX: i64 = 50;

/// Where a case is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ComplaintStatus {
    /// Being handled.
    Open,
    /// Resolved.
    Closed,
}

/// A correction a cashier makes in a case.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Correction {
    /// Moves an entitlement's end of validity (a day lost to a fault, a late delivery).
    ExtendValidity {
        /// The entitlement.
        entitlement_id: EntitlementId,
        /// The new end (exclusive); must be later than the current one.
        valid_until: Timestamp,
    },
    /// Withdraws an entitlement (sold by mistake, fraud).
    CancelEntitlement {
        /// The entitlement.
        entitlement_id: EntitlementId,
    },
    /// Gives a product free of charge (compensation), priced from today's catalogue for
    /// the record but not charged.
    GrantProduct {
        /// What, for which medium.
        item: ItemRequest,
    },
}

/// One recorded correction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ComplaintAction {
    /// When.
    pub at: Timestamp,
    /// Who.
    pub staff_id: StaffId,
    /// What.
    pub action: String,
    /// Why.
    pub reason: String,
    /// The details (the correction as asked, and its result).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// A complaint case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Complaint {
    /// Id.
    pub id: ComplaintId,
    /// The passenger, when known.
    pub customer_id: Option<CustomerId>,
    /// The medium it started from, when any.
    pub medium_id: Option<MediumId>,
    /// Who opened it.
    pub opened_by: StaffId,
    /// What it is about.
    pub subject: String,
    /// Status.
    pub status: ComplaintStatus,
    /// How it was resolved.
    pub resolution: Option<String>,
    /// Opened.
    pub created_at: Timestamp,
    /// Closed.
    pub closed_at: Option<Timestamp>,
    /// Corrections, oldest first.
    pub actions: Vec<ComplaintAction>,
}

/// A tap the back office knows of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MediumEventView {
    /// The medium.
    pub medium_id: MediumId,
    /// When.
    pub at: Timestamp,
    /// `tap` or `topup`.
    pub kind: String,
    /// Where.
    pub station: Option<String>,
    /// The amount (top-ups).
    pub amount: Option<Money>,
}

/// Everything a cashier sees in a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ComplaintCase {
    /// The case.
    pub complaint: Complaint,
    /// The passenger's media (or the one anonymous medium).
    pub media: Vec<Medium>,
    /// Entitlements on those media.
    pub entitlements: Vec<Entitlement>,
    /// The passenger's discount requests.
    pub discounts: Vec<DiscountRequest>,
    /// The passenger's orders, newest first.
    pub orders: Vec<OrderSummary>,
    /// Recent taps and top-ups, newest first.
    pub events: Vec<MediumEventView>,
}

fn check_text(field: &'static str, text: &str) -> Result<String, SalesError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > TEXT_CHARS_MAX {
        return Err(SalesError::invalid(field, format!("1 to {TEXT_CHARS_MAX} characters")));
    }
    Ok(text.to_owned())
}

type EventRow = (i64, String, Option<String>, Option<i64>, Option<String>);
type ComplaintRow = (String, Option<String>, Option<String>, String, String, String, Option<String>, i64, Option<i64>);

async fn fetch_complaint(tx: &mut Tx, id: ComplaintId) -> Result<Complaint, SalesError> {
    let row: Option<ComplaintRow> = sql!(tx.conn(), |c| {
        sqlx::query_as(
            "SELECT id, customer_id, medium_id, opened_by, subject, status, resolution, created_at_us, closed_at_us \
             FROM complaints WHERE id = $1",
        )
        .bind(id.to_db())
        .fetch_optional(c)
        .await
    })?;
    let (_, customer, medium, opened_by, subject, status, resolution, created, closed) =
        row.ok_or_else(|| SalesError::not_found("complaint", id))?;
    let actions: Vec<(i64, String, String, String, String)> = sql!(tx.conn(), |c| {
        sqlx::query_as("SELECT at_us, staff_id, action, reason, details FROM complaint_actions WHERE complaint_id = $1 ORDER BY seq LIMIT 1000")
            .bind(id.to_db())
            .fetch_all(c)
            .await
    })?;
    let corrupt = |what: &str| SalesError::Store(StoreError::Corrupt(format!("complaint {id}: {what}")));
    Ok(Complaint {
        id,
        customer_id: customer.as_deref().map(|c| decode_id(c, CustomerId::from_db)).transpose()?,
        medium_id: medium.as_deref().map(|m| decode_id(m, MediumId::from_db)).transpose()?,
        opened_by: decode_id(&opened_by, StaffId::from_db)?,
        subject,
        status: match status.as_str() {
            "open" => ComplaintStatus::Open,
            "closed" => ComplaintStatus::Closed,
            _ => return Err(corrupt("status")),
        },
        resolution,
        created_at: decode_time(created)?,
        closed_at: closed.map(decode_time).transpose()?,
        actions: actions
            .into_iter()
            .map(|(at, staff, action, reason, details)| {
                Ok(ComplaintAction {
                    at: decode_time(at)?,
                    staff_id: decode_id(&staff, StaffId::from_db)?,
                    action,
                    reason,
                    details: serde_json::from_str(&details).map_err(|_| corrupt("action details"))?,
                })
            })
            .collect::<Result<_, SalesError>>()?,
    })
}

impl Sales {
    /// Opens a case about a passenger, a medium (a card held to the reader), or both.
    pub async fn open_complaint(
        &self,
        ctx: &AuditCtx,
        staff: StaffId,
        customer: Option<CustomerId>,
        medium: Option<MediumId>,
        subject: &str,
    ) -> Result<Complaint, SalesError> {
        let subject = check_text("subject", subject)?;
        let now = self.now();
        let mut tx = self.db().begin().await?;
        let customer = match (customer, medium) {
            (None, None) => return Err(SalesError::invalid("customer_id", "give the passenger or the medium")),
            (customer, Some(medium)) => {
                let record = fetch_visible(&mut tx, Scope::Staff, medium).await?;
                if customer.is_some() && record.medium.customer_id.is_some() && customer != record.medium.customer_id {
                    return Err(SalesError::invalid("medium_id", "the medium belongs to another passenger"));
                }
                customer.or(record.medium.customer_id)
            }
            (Some(customer), None) => Some(customer),
        };
        if let Some(customer) = customer {
            let exists: Option<String> = sql!(tx.conn(), |c| {
                sqlx::query_scalar("SELECT id FROM customers WHERE id = $1")
                    .bind(customer.to_db())
                    .fetch_optional(c)
                    .await
            })?;
            if exists.is_none() {
                return Err(SalesError::not_found("customer", customer));
            }
        }
        let id = ComplaintId::new();
        sql!(tx.conn(), |c| {
            sqlx::query(
                "INSERT INTO complaints (id, customer_id, medium_id, opened_by, subject, status, created_at_us) \
                 VALUES ($1, $2, $3, $4, $5, 'open', $6)",
            )
            .bind(id.to_db())
            .bind(customer.map(|c| c.to_db()))
            .bind(medium.map(|m| m.to_db()))
            .bind(staff.to_db())
            .bind(subject.as_str())
            .bind(now.unix_micros())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        })?;
        let details = json!({ "customer": customer, "medium": medium, "subject": subject });
        audit::record(&mut tx, ctx, now, AuditEvent::ok("complaint.open", "complaint", id).details(details)).await?;
        let complaint = fetch_complaint(&mut tx, id).await?;
        tx.commit().await?;
        Ok(complaint)
    }

    /// Open cases, oldest first.
    pub async fn complaints(
        &self,
        open_only: bool,
        page: &PageSpec<i64>,
    ) -> Result<smartticket_core::Page<Complaint>, SalesError> {
        let after = page.after.unwrap_or(i64::MIN);
        let ids: Vec<String> = sql!(self.db().reader(), |c| {
            sqlx::query_scalar(
                "SELECT id FROM complaints WHERE ($1 = 0 OR status = 'open') AND created_at_us > $2 ORDER BY created_at_us, id LIMIT $3",
            )
            .bind(i64::from(open_only))
            .bind(after)
            .bind(page.fetch_rows())
            .fetch_all(c)
            .await
        })?;
        let mut tx = self.db().begin_read().await?;
        let mut cases = Vec::with_capacity(ids.len());
        for id in ids {
            cases.push(fetch_complaint(&mut tx, decode_id(&id, ComplaintId::from_db)?).await?);
        }
        tx.rollback().await?;
        Ok(smartticket_core::Page::from_rows(cases, page, |c| c.created_at.unix_micros()))
    }

    /// The whole case file.
    pub async fn complaint_case(&self, id: ComplaintId) -> Result<ComplaintCase, SalesError> {
        let mut tx = self.db().begin_read().await?;
        let complaint = fetch_complaint(&mut tx, id).await?;
        let media = match (complaint.customer_id, complaint.medium_id) {
            (Some(customer), _) => {
                tx.rollback().await?;
                let media = self.media_of(customer).await?;
                tx = self.db().begin_read().await?;
                media
            }
            (None, Some(medium)) => vec![fetch_visible(&mut tx, Scope::Staff, medium).await?.medium],
            (None, None) => Vec::new(),
        };
        let mut all_entitlements = Vec::new();
        let mut events = Vec::new();
        for medium in &media {
            all_entitlements.extend(entitlements::of_medium(&mut tx, medium.id).await?);
            let rows: Vec<EventRow> = sql!(tx.conn(), |c| {
                sqlx::query_as(
                    "SELECT at_us, kind, station, amount_minor, currency FROM media_events WHERE medium_id = $1 \
                     ORDER BY at_us DESC, seq DESC LIMIT $2",
                )
                .bind(medium.id.to_db())
                .bind(TAPS_SHOWN_MAX)
                .fetch_all(c)
                .await
            })?;
            for (at, kind, station, amount, currency) in rows {
                let amount = match (amount, currency) {
                    (Some(amount), Some(code)) => Some(Money::new(amount, crate::orders::currency(&code)?)),
                    _ => None,
                };
                events.push(MediumEventView { medium_id: medium.id, at: decode_time(at)?, kind, station, amount });
            }
        }
        tx.rollback().await?;
        events.sort_by_key(|event| std::cmp::Reverse(event.at));
        let (discounts, orders) = match complaint.customer_id {
            Some(customer) => {
                let page = PageSpec { limit: 100, after: None };
                let discounts = self.discount_requests(None, Some(customer), &page).await?.items;
                let orders =
                    self.orders(Scope::Staff, Some(customer), &PageSpec { limit: 100, after: None }).await?.items;
                (discounts, orders)
            }
            None => (Vec::new(), Vec::new()),
        };
        Ok(ComplaintCase { complaint, media, entitlements: all_entitlements, discounts, orders, events })
    }

    /// Applies a correction in an open case, with its reason.
    pub async fn correct(
        &self,
        ctx: &AuditCtx,
        staff: StaffId,
        id: ComplaintId,
        correction: &Correction,
        reason: &str,
    ) -> Result<ComplaintCase, SalesError> {
        let reason = check_text("reason", reason)?;
        let now = self.now();
        let tariff = self.tariff().await?;
        let mut tx = self.db().begin().await?;
        let complaint = fetch_complaint(&mut tx, id).await?;
        if complaint.status != ComplaintStatus::Open {
            return Err(SalesError::Conflict(format!("complaint {id} is closed")));
        }
        let (action, result) = match correction {
            Correction::ExtendValidity { entitlement_id, valid_until } => {
                let entitlement = self.case_entitlement(&mut tx, &complaint, *entitlement_id).await?;
                let current = entitlement
                    .valid_until
                    .ok_or_else(|| SalesError::invalid("entitlement_id", "it has no end of validity"))?;
                if *valid_until <= current {
                    return Err(SalesError::invalid(
                        "valid_until",
                        format!("must be later than the current end, {current}"),
                    ));
                }
                if !entitlement.status.is_in_force() {
                    return Err(SalesError::invalid(
                        "entitlement_id",
                        format!("it is {}", entitlement.status.as_str()),
                    ));
                }
                sql!(tx.conn(), |c| {
                    sqlx::query("UPDATE entitlements SET valid_until_us = $2, updated_at_us = $3 WHERE id = $1")
                        .bind(entitlement_id.to_db())
                        .bind(valid_until.unix_micros())
                        .bind(now.unix_micros())
                        .execute(c)
                        .await
                        .map(|r| r.rows_affected())
                })?;
                // A delivered contract changes on the card only with a new write: it goes
                // back to pending delivery under a new serial.
                if entitlement.status == EntitlementStatus::Delivered {
                    crate::entitlements::redeliver(&mut tx, *entitlement_id, now).await?;
                }
                ("extend_validity", json!({ "from": current, "to": valid_until }))
            }
            Correction::CancelEntitlement { entitlement_id } => {
                let entitlement = self.case_entitlement(&mut tx, &complaint, *entitlement_id).await?;
                entitlements::set_status(
                    &mut tx,
                    *entitlement_id,
                    &[EntitlementStatus::PendingDelivery, EntitlementStatus::Active, EntitlementStatus::Delivered],
                    EntitlementStatus::Cancelled,
                    now,
                )
                .await?;
                ("cancel_entitlement", json!({ "was": entitlement.status }))
            }
            Correction::GrantProduct { item } => {
                let priced = self.price_item(&mut tx, &tariff, Buyer::Cashier(staff), item, now).await?;
                if complaint.customer_id.is_some() && priced.medium.medium.customer_id != complaint.customer_id {
                    return Err(SalesError::invalid("item", "the medium belongs to another passenger"));
                }
                let free = Money::new(0, priced.quote.price.currency);
                let new = NewEntitlement {
                    order: None,
                    medium: item.medium_id,
                    medium_kind: priced.medium.medium.kind,
                    quote: &priced.quote,
                    amount: if priced.quote.kind == smartticket_catalog::ProductKind::StoredValue {
                        priced.quote.price
                    } else {
                        free
                    },
                    valid_from: None,
                    valid_until: None,
                    trips: None,
                };
                let granted = entitlements::create(&mut tx, new, now).await?;
                (
                    "grant_product",
                    json!({ "entitlement": granted, "product": priced.quote.product, "list_price": priced.quote.price }),
                )
            }
        };
        let details = json!({ "correction": correction, "result": result });
        sql!(tx.conn(), |c| {
            sqlx::query("INSERT INTO complaint_actions (complaint_id, at_us, staff_id, action, reason, details) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(id.to_db())
                .bind(now.unix_micros())
                .bind(staff.to_db())
                .bind(action)
                .bind(reason.as_str())
                .bind(details.to_string())
                .execute(c)
                .await
                .map(|r| r.rows_affected())
        })?;
        let event = AuditEvent::ok("complaint.correct", "complaint", id)
            .details(json!({ "action": action, "details": details }));
        let mut ctx = ctx.clone();
        ctx.reason = Some(reason.clone());
        audit::record(&mut tx, &ctx, now, event).await?;
        tx.commit().await?;
        self.complaint_case(id).await
    }

    async fn case_entitlement(
        &self,
        tx: &mut Tx,
        complaint: &Complaint,
        id: EntitlementId,
    ) -> Result<Entitlement, SalesError> {
        let entitlement = entitlements::fetch(tx, id).await?;
        let medium = fetch_visible(tx, Scope::Staff, entitlement.medium_id).await?;
        let belongs = match complaint.customer_id {
            Some(customer) => medium.medium.customer_id == Some(customer),
            None => complaint.medium_id == Some(entitlement.medium_id),
        };
        if belongs { Ok(entitlement) } else { Err(SalesError::not_found("entitlement in this case", id)) }
    }

    /// Closes a case with its resolution.
    pub async fn close_complaint(
        &self,
        ctx: &AuditCtx,
        id: ComplaintId,
        resolution: &str,
    ) -> Result<Complaint, SalesError> {
        let resolution = check_text("resolution", resolution)?;
        let now = self.now();
        let mut tx = self.db().begin().await?;
        let complaint = fetch_complaint(&mut tx, id).await?;
        if complaint.status != ComplaintStatus::Open {
            return Err(SalesError::Conflict(format!("complaint {id} is already closed")));
        }
        sql!(tx.conn(), |c| {
            sqlx::query("UPDATE complaints SET status = 'closed', resolution = $2, closed_at_us = $3 WHERE id = $1 AND status = 'open'")
                .bind(id.to_db())
                .bind(resolution.as_str())
                .bind(now.unix_micros())
                .execute(c)
                .await
                .map(|r| r.rows_affected())
        })?;
        audit::record(
            &mut tx,
            ctx,
            now,
            AuditEvent::ok("complaint.close", "complaint", id).details(json!({ "resolution": resolution })),
        )
        .await?;
        let closed = fetch_complaint(&mut tx, id).await?;
        tx.commit().await?;
        Ok(closed)
    }
}
