//! Discounts that need approval (KIDSOK 3.1.3–3.1.4, 3.2.2): a passenger uploads a photo
//! and asks for a category; a cashier checks the documents, then approves for a period
//! (recording the method, who, and until when) or rejects with a reason. Only an approved,
//! unexpired request unlocks the category's products.
//!
//! Photos are never stored as uploaded: [`smartticket_photos::clean`] re-encodes them,
//! which drops every byte of metadata (GPS, camera, thumbnails) and anything that is not a
//! picture.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use smartticket_core::id::{CustomerId, DiscountRequestId, PhotoId, StaffId};
use smartticket_core::{Page, PageSpec, Timestamp};
use smartticket_identity::AuditCtx;
use smartticket_identity::audit::{self, AuditEvent};
use smartticket_store::{StoreError, Tx, decode_id, decode_time, sql};
use utoipa::ToSchema;

use crate::{Sales, SalesError};

/// Longest note or reason.
const TEXT_CHARS_MAX: usize = 500;
/// Longest approval period: a student card is checked at least once a year.
const APPROVAL_DAYS_MAX: i64 = 400;

/// Where a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Waiting for a cashier.
    Pending,
    /// Approved until `approved_until`.
    Approved,
    /// Rejected with a reason.
    Rejected,
    /// Approval withdrawn (in a complaint, or the documents were false).
    Revoked,
}

impl RequestStatus {
    fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Pending => "pending",
            RequestStatus::Approved => "approved",
            RequestStatus::Rejected => "rejected",
            RequestStatus::Revoked => "revoked",
        }
    }

    fn parse(text: &str) -> Option<RequestStatus> {
        [RequestStatus::Pending, RequestStatus::Approved, RequestStatus::Rejected, RequestStatus::Revoked]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// How the cashier checked the entitlement to the discount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalMethod {
    /// The passenger showed the document at a counter.
    DocumentAtCounter,
    /// A scan of the document sent with the request.
    DocumentScan,
    /// Checked in an external registry (a school's or the social office's).
    ExternalRegistry,
}

impl ApprovalMethod {
    fn as_str(self) -> &'static str {
        match self {
            ApprovalMethod::DocumentAtCounter => "document_at_counter",
            ApprovalMethod::DocumentScan => "document_scan",
            ApprovalMethod::ExternalRegistry => "external_registry",
        }
    }

    fn parse(text: &str) -> Option<ApprovalMethod> {
        [ApprovalMethod::DocumentAtCounter, ApprovalMethod::DocumentScan, ApprovalMethod::ExternalRegistry]
            .into_iter()
            .find(|m| m.as_str() == text)
    }
}

/// A discount request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DiscountRequest {
    /// Id.
    pub id: DiscountRequestId,
    /// The passenger.
    pub customer_id: CustomerId,
    /// The passenger's name, for the cashier's queue.
    pub customer_name: String,
    /// Discount category code.
    pub category: String,
    /// The photo sent.
    pub photo_id: PhotoId,
    /// The passenger's note.
    pub note: Option<String>,
    /// Status.
    pub status: RequestStatus,
    /// When it was asked.
    pub created_at: Timestamp,
    /// When it was decided.
    pub decided_at: Option<Timestamp>,
    /// The cashier who decided.
    pub decided_by: Option<StaffId>,
    /// How it was checked.
    pub method: Option<ApprovalMethod>,
    /// The document checked (type and number, as the cashier wrote it).
    pub document: Option<String>,
    /// First instant of the approval.
    pub approved_from: Option<Timestamp>,
    /// End of the approval (exclusive).
    pub approved_until: Option<Timestamp>,
    /// Why it was rejected or revoked.
    pub reason: Option<String>,
}

/// A cashier's approval.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// How the entitlement was checked.
    pub method: ApprovalMethod,
    /// The document checked (type and number).
    pub document: Option<String>,
    /// Last day the discount applies (network-local date, inclusive).
    pub valid_until: NaiveDate,
}

/// A stored photo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PhotoInfo {
    /// Id.
    pub id: PhotoId,
    /// Whose.
    pub customer_id: CustomerId,
    /// Width in pixels.
    pub width_px: u32,
    /// Height in pixels.
    pub height_px: u32,
    /// SHA-256 of the stored JPEG, hex.
    pub sha256: String,
}

fn check_text(field: &'static str, text: Option<&str>) -> Result<Option<String>, SalesError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else { return Ok(None) };
    if text.chars().count() > TEXT_CHARS_MAX || text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(SalesError::invalid(field, format!("at most {TEXT_CHARS_MAX} characters, no control characters")));
    }
    Ok(Some(text.to_owned()))
}

/// Whether `customer` holds an approval of `category` in force at `now` and still at
/// `until` (the end of the product's validity): the approval covers the whole product.
pub(crate) async fn holds_approval(
    tx: &mut Tx,
    customer: CustomerId,
    category: &str,
    now: Timestamp,
    until: Timestamp,
) -> Result<bool, SalesError> {
    let latest = now.unix_micros().max(until.unix_micros());
    let found: Option<String> = sql!(tx.conn(), |c| {
        sqlx::query_scalar(
            "SELECT id FROM discount_requests WHERE customer_id = $1 AND category = $2 AND status = 'approved' \
             AND approved_from_us <= $3 AND approved_until_us > $4 LIMIT 1",
        )
        .bind(customer.to_db())
        .bind(category)
        .bind(now.unix_micros())
        .bind(latest)
        .fetch_optional(c)
        .await
    })?;
    Ok(found.is_some())
}

type RequestRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<String>,
);
const REQUEST_COLUMNS: &str = "r.id, r.customer_id, c.display_name, r.category, r.photo_id, r.note, r.status, \
    r.created_at_us, r.decided_at_us, r.decided_by, r.method, r.document, r.approved_from_us, r.approved_until_us, r.reason";

fn request_from_row(row: RequestRow) -> Result<DiscountRequest, SalesError> {
    let (
        id,
        customer,
        name,
        category,
        photo,
        note,
        status,
        created,
        decided,
        by,
        method,
        document,
        from,
        until,
        reason,
    ) = row;
    let corrupt = |what: &str| SalesError::Store(StoreError::Corrupt(format!("discount request {id}: {what}")));
    Ok(DiscountRequest {
        customer_id: decode_id(&customer, CustomerId::from_db)?,
        customer_name: name,
        category,
        photo_id: decode_id(&photo, PhotoId::from_db)?,
        note,
        status: RequestStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
        created_at: decode_time(created)?,
        decided_at: decided.map(decode_time).transpose()?,
        decided_by: by.as_deref().map(|b| decode_id(b, StaffId::from_db)).transpose()?,
        method: method.as_deref().map(|m| ApprovalMethod::parse(m).ok_or_else(|| corrupt("method"))).transpose()?,
        document,
        approved_from: from.map(decode_time).transpose()?,
        approved_until: until.map(decode_time).transpose()?,
        reason,
        id: decode_id(&id, DiscountRequestId::from_db)?,
    })
}

async fn fetch_request(tx: &mut Tx, id: DiscountRequestId) -> Result<DiscountRequest, SalesError> {
    let row: Option<RequestRow> = sql!(tx.conn(), |c| {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS} FROM discount_requests r JOIN customers c ON c.id = r.customer_id WHERE r.id = $1"
        )))
        .bind(id.to_db())
        .fetch_optional(c)
        .await
    })?;
    row.map(request_from_row).transpose()?.ok_or_else(|| SalesError::not_found("discount request", id))
}

impl Sales {
    /// Stores a passenger's photo after cleaning it (re-encoded JPEG, no metadata).
    pub async fn upload_photo(
        &self,
        ctx: &AuditCtx,
        customer: CustomerId,
        bytes: &[u8],
    ) -> Result<PhotoInfo, SalesError> {
        let clean = smartticket_photos::clean(bytes, &smartticket_photos::PhotoLimits::default())
            .map_err(|e| SalesError::invalid("photo", e.to_string()))?;
        let id = PhotoId::new();
        let now = self.now();
        let sha256 = hex::encode(clean.sha256);
        let mut tx = self.db().begin().await?;
        let exists: Option<String> = sql!(tx.conn(), |c| {
            sqlx::query_scalar("SELECT id FROM customers WHERE id = $1").bind(customer.to_db()).fetch_optional(c).await
        })?;
        if exists.is_none() {
            return Err(SalesError::not_found("customer", customer));
        }
        sql!(tx.conn(), |c| {
            sqlx::query(
                "INSERT INTO photos (id, customer_id, jpeg, sha256, width_px, height_px, uploaded_by, created_at_us) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(id.to_db())
            .bind(customer.to_db())
            .bind(clean.jpeg.as_slice())
            .bind(sha256.as_str())
            .bind(i64::from(clean.width_px))
            .bind(i64::from(clean.height_px))
            .bind(ctx.actor.columns().1.unwrap_or_else(|| "system".to_owned()))
            .bind(now.unix_micros())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        })?;
        let details =
            json!({ "customer": customer, "width_px": clean.width_px, "height_px": clean.height_px, "sha256": sha256 });
        audit::record(&mut tx, ctx, now, AuditEvent::ok("photo.upload", "photo", id).details(details)).await?;
        tx.commit().await?;
        Ok(PhotoInfo { id, customer_id: customer, width_px: clean.width_px, height_px: clean.height_px, sha256 })
    }

    /// A photo's JPEG, for its owner (`Some(customer)`) or staff (`None`).
    pub async fn photo(&self, owner: Option<CustomerId>, id: PhotoId) -> Result<Vec<u8>, SalesError> {
        let row: Option<(String, Vec<u8>)> = sql!(self.db().reader(), |c| {
            sqlx::query_as("SELECT customer_id, jpeg FROM photos WHERE id = $1")
                .bind(id.to_db())
                .fetch_optional(c)
                .await
        })?;
        match row {
            Some((customer, jpeg)) if owner.is_none_or(|o| o.to_db() == customer) => Ok(jpeg),
            _ => Err(SalesError::not_found("photo", id)),
        }
    }

    /// A passenger asks for `category` with one of their photos.
    pub async fn request_discount(
        &self,
        ctx: &AuditCtx,
        customer: CustomerId,
        category: &str,
        photo: PhotoId,
        note: Option<&str>,
    ) -> Result<DiscountRequest, SalesError> {
        let note = check_text("note", note)?;
        let now = self.now();
        let today = self.catalog().today().await?;
        let catalog = self.catalog().effective_on(today).await?;
        let discount = catalog.discount(category).ok_or_else(|| {
            SalesError::invalid(
                "category",
                format!("no discount category `{}`", smartticket_core::id::echo_untrusted(category)),
            )
        })?;
        if !discount.approval {
            return Err(SalesError::invalid(
                "category",
                format!("{} needs no approval; buy it directly", discount.code),
            ));
        }
        let mut tx = self.db().begin().await?;
        let photo_owner: Option<String> = sql!(tx.conn(), |c| {
            sqlx::query_scalar("SELECT customer_id FROM photos WHERE id = $1")
                .bind(photo.to_db())
                .fetch_optional(c)
                .await
        })?;
        if photo_owner.as_deref() != Some(customer.to_db().as_str()) {
            return Err(SalesError::not_found("photo", photo));
        }
        let id = DiscountRequestId::new();
        let inserted = sql!(tx.conn(), |c| {
            sqlx::query(
                "INSERT INTO discount_requests (id, customer_id, category, photo_id, note, status, created_at_us) \
                 VALUES ($1, $2, $3, $4, $5, 'pending', $6)",
            )
            .bind(id.to_db())
            .bind(customer.to_db())
            .bind(discount.code.as_str())
            .bind(photo.to_db())
            .bind(note.as_deref())
            .bind(now.unix_micros())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        });
        smartticket_store::unique_or(inserted, || {
            SalesError::Conflict(format!("a request for {} is already waiting for a cashier", discount.code))
        })?;
        audit::record(
            &mut tx,
            ctx,
            now,
            AuditEvent::ok("discount.request", "discount_request", id).details(json!({ "category": discount.code })),
        )
        .await?;
        let request = fetch_request(&mut tx, id).await?;
        tx.commit().await?;
        Ok(request)
    }

    /// Requests in `status` (the cashier's queue: pending, oldest first), or one
    /// customer's requests (newest first).
    pub async fn discount_requests(
        &self,
        status: Option<RequestStatus>,
        customer: Option<CustomerId>,
        page: &PageSpec<i64>,
    ) -> Result<Page<DiscountRequest>, SalesError> {
        let after = page.after.unwrap_or(i64::MIN);
        let rows: Vec<RequestRow> = sql!(self.db().reader(), |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {REQUEST_COLUMNS} FROM discount_requests r JOIN customers c ON c.id = r.customer_id \
                 WHERE ($1 IS NULL OR r.status = $1) AND ($2 IS NULL OR r.customer_id = $2) AND r.created_at_us > $3 \
                 ORDER BY r.created_at_us, r.id LIMIT $4"
            )))
            .bind(status.map(RequestStatus::as_str))
            .bind(customer.map(|c| c.to_db()))
            .bind(after)
            .bind(page.fetch_rows())
            .fetch_all(c)
            .await
        })?;
        let requests = rows.into_iter().map(request_from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(requests, page, |r| r.created_at.unix_micros()))
    }

    /// One request, for its passenger or staff.
    pub async fn discount_request(
        &self,
        owner: Option<CustomerId>,
        id: DiscountRequestId,
    ) -> Result<DiscountRequest, SalesError> {
        let mut tx = self.db().begin_read().await?;
        let request = fetch_request(&mut tx, id).await?;
        tx.rollback().await?;
        if owner.is_some_and(|o| o != request.customer_id) {
            return Err(SalesError::not_found("discount request", id));
        }
        Ok(request)
    }

    /// A cashier approves a pending request until the end of `approval.valid_until`.
    pub async fn approve_discount(
        &self,
        ctx: &AuditCtx,
        staff: StaffId,
        id: DiscountRequestId,
        approval: &Approval,
    ) -> Result<DiscountRequest, SalesError> {
        let document = check_text("document", approval.document.as_deref())?;
        let now = self.now();
        let today = self.catalog().today().await?;
        let catalog = self.catalog().effective_on(today).await?;
        if approval.valid_until < today {
            return Err(SalesError::invalid("valid_until", "the last day is in the past"));
        }
        if (approval.valid_until - today).num_days() > APPROVAL_DAYS_MAX {
            return Err(SalesError::invalid("valid_until", format!("at most {APPROVAL_DAYS_MAX} days ahead")));
        }
        let until = approval
            .valid_until
            .succ_opt()
            .and_then(|next| smartticket_catalog::validity::day_start(catalog.timezone(), next))
            .ok_or_else(|| SalesError::invalid("valid_until", "not a representable date"))?;
        let mut tx = self.db().begin().await?;
        let request = fetch_request(&mut tx, id).await?;
        if request.status != RequestStatus::Pending {
            return Err(SalesError::Conflict(format!("request {id} is already {}", request.status.as_str())));
        }
        sql!(tx.conn(), |c| {
            sqlx::query(
                "UPDATE discount_requests SET status = 'approved', decided_at_us = $2, decided_by = $3, method = $4, \
                 document = $5, approved_from_us = $2, approved_until_us = $6 WHERE id = $1 AND status = 'pending'",
            )
            .bind(id.to_db())
            .bind(now.unix_micros())
            .bind(staff.to_db())
            .bind(approval.method.as_str())
            .bind(document.as_deref())
            .bind(until.unix_micros())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        })?;
        let details = json!({ "category": request.category, "method": approval.method, "until": until, "customer": request.customer_id });
        audit::record(&mut tx, ctx, now, AuditEvent::ok("discount.approve", "discount_request", id).details(details))
            .await?;
        let updated = fetch_request(&mut tx, id).await?;
        tx.commit().await?;
        Ok(updated)
    }

    /// A cashier rejects a pending request, or revokes an approval, with a reason.
    pub async fn reject_discount(
        &self,
        ctx: &AuditCtx,
        staff: StaffId,
        id: DiscountRequestId,
        reason: &str,
    ) -> Result<DiscountRequest, SalesError> {
        let reason = check_text("reason", Some(reason))?.ok_or_else(|| SalesError::invalid("reason", "say why"))?;
        let now = self.now();
        let mut tx = self.db().begin().await?;
        let request = fetch_request(&mut tx, id).await?;
        let to = match request.status {
            RequestStatus::Pending => RequestStatus::Rejected,
            RequestStatus::Approved => RequestStatus::Revoked,
            other => return Err(SalesError::Conflict(format!("request {id} is already {}", other.as_str()))),
        };
        sql!(tx.conn(), |c| {
            sqlx::query(
                "UPDATE discount_requests SET status = $2, decided_at_us = $3, decided_by = $4, reason = $5 WHERE id = $1 AND status = $6",
            )
            .bind(id.to_db())
            .bind(to.as_str())
            .bind(now.unix_micros())
            .bind(staff.to_db())
            .bind(reason.as_str())
            .bind(request.status.as_str())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        })?;
        let action = if to == RequestStatus::Rejected { "discount.reject" } else { "discount.revoke" };
        audit::record(
            &mut tx,
            ctx,
            now,
            AuditEvent::ok(action, "discount_request", id).details(json!({ "reason": reason })),
        )
        .await?;
        let updated = fetch_request(&mut tx, id).await?;
        tx.commit().await?;
        Ok(updated)
    }
}
