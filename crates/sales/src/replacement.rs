//! Lost and stolen media (KIDSOK 3.2.3, seed 001): the medium is blocked (so it enters the
//! denylist) and what it carried moves to a replacement medium of the same passenger:
//! contracts still in force become new entitlements there, and the purse balance waits
//! until taps made offline before the block have reached clearing, then moves too.
//!
//! Discount approvals belong to the passenger, not the medium, so they need no moving.

use chrono::Duration;
use serde::{Deserialize, Serialize};
use serde_json::json;
use smartticket_core::Timestamp;
use smartticket_core::id::{EntitlementId, MediumId};
use smartticket_identity::AuditCtx;
use smartticket_identity::audit::{self, AuditEvent};
use smartticket_store::{Tx, sql};
use utoipa::ToSchema;

use crate::entitlements::{self, EntitlementKind, EntitlementStatus, NewEntitlement};
use crate::lifecycle::{MediumEvent, MediumStatus};
use crate::media::{Medium, MediumKind, Scope, fetch_visible};
use crate::{Sales, SalesError};

/// A block with a replacement.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceRequest {
    /// The passenger's other medium that takes over.
    pub replacement_id: MediumId,
    /// Why (lost, stolen, damaged).
    pub reason: String,
    /// At a counter: the registration receipt code of the lost medium.
    #[serde(default)]
    pub receipt: Option<String>,
}

/// What a replacement did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ReplacementReport {
    /// The blocked medium.
    pub blocked: Medium,
    /// The medium that took over.
    pub replacement: Medium,
    /// Old entitlement → new entitlement, for each one moved.
    pub moved: Vec<(EntitlementId, EntitlementId)>,
    /// When the purse balance moves (fare cards), once clearing has seen every tap made
    /// before the block.
    pub balance_moves_after: Option<Timestamp>,
}

/// Taps recorded for `medium` since `since`: trips used before the loss.
async fn taps_since(tx: &mut Tx, medium: MediumId, since: Timestamp) -> Result<i64, SalesError> {
    let count: i64 = sql!(tx.conn(), |c| {
        sqlx::query_scalar("SELECT count(*) FROM media_events WHERE medium_id = $1 AND kind = 'tap' AND at_us >= $2")
            .bind(medium.to_db())
            .bind(since.unix_micros())
            .fetch_one(c)
            .await
    })?;
    Ok(count)
}

impl Sales {
    /// Blocks `lost` for good and moves what it carries to `request.replacement_id`. Both
    /// must belong to the same passenger; staff must quote the lost medium's registration
    /// receipt. The block commits first, since it must never wait on anything else; the
    /// move is one transaction (all of it or none) and can be repeated on the blocked
    /// medium if it failed.
    pub async fn replace_medium(
        &self,
        ctx: &AuditCtx,
        scope: Scope,
        lost: MediumId,
        request: &ReplaceRequest,
    ) -> Result<ReplacementReport, SalesError> {
        let now = self.now();
        if request.replacement_id == lost {
            return Err(SalesError::invalid("replacement_id", "the replacement must be another medium"));
        }
        // The block itself (receipt check, lifecycle, audit) is the ordinary one.
        let reason = request.reason.trim();
        let mut tx = self.db().begin().await?;
        let old = fetch_visible(&mut tx, scope, lost).await?;
        let new = fetch_visible(&mut tx, scope, request.replacement_id).await?;
        let Some(customer) = old.medium.customer_id else {
            return Err(SalesError::invalid(
                "replacement_id",
                "an anonymous medium's products cannot be moved; claim it first",
            ));
        };
        if new.medium.customer_id != Some(customer) {
            return Err(SalesError::invalid("replacement_id", "the replacement must belong to the same passenger"));
        }
        if !matches!(new.medium.status, MediumStatus::Inactive | MediumStatus::Active) {
            return Err(SalesError::invalid("replacement_id", format!("the replacement is {}", new.medium.status)));
        }
        tx.rollback().await?;
        // An inactive medium can only be blocked for good; an active one is blocked first.
        let permanent = !old.medium.status.allowed().contains(&MediumEvent::Block);
        match old.medium.status {
            // Already blocked (from the e-shop first, the replacement chosen later): go on.
            MediumStatus::Blocked | MediumStatus::PermanentlyBlocked if old.medium.replaced_by.is_none() => {}
            _ => {
                self.block(ctx, scope, lost, permanent, reason, request.receipt.as_deref()).await?;
            }
        }

        let mut tx = self.db().begin().await?;
        let old = fetch_visible(&mut tx, Scope::Staff, lost).await?;
        if old.medium.replaced_by.is_some() {
            return Err(SalesError::Conflict(format!("medium {lost} was already replaced")));
        }
        let next = match old.medium.status {
            MediumStatus::PermanentlyBlocked => MediumStatus::PermanentlyBlocked,
            status => status.apply(MediumEvent::BlockPermanently)?,
        };
        let changed = sql!(tx.conn(), |c| {
            sqlx::query("UPDATE media SET status = $2, replaced_by = $3, status_reason = $4, updated_at_us = $5 WHERE id = $1 AND status = $6")
                .bind(lost.to_db())
                .bind(next.as_str())
                .bind(request.replacement_id.to_db())
                .bind(reason)
                .bind(now.unix_micros())
                .bind(old.medium.status.as_str())
                .execute(c)
                .await
                .map(|r| r.rows_affected())
        })?;
        if changed != 1 {
            return Err(SalesError::Conflict(format!("medium {lost} changed meanwhile; try again")));
        }
        let mut moved = Vec::new();
        for entitlement in entitlements::of_medium(&mut tx, lost).await? {
            let in_force = entitlement.status.is_in_force() && entitlement.valid_until.is_none_or(|until| until > now);
            if !in_force
                || entitlement.kind == EntitlementKind::PurseLoad
                    && entitlement.status != EntitlementStatus::PendingDelivery
            {
                // Delivered purse value is on the card: it moves with the balance below.
                continue;
            }
            let quote_json: String = sql!(tx.conn(), |c| {
                sqlx::query_scalar("SELECT quote FROM entitlements WHERE id = $1")
                    .bind(entitlement.id.to_db())
                    .fetch_one(c)
                    .await
            })?;
            let quote: smartticket_catalog::Quote = serde_json::from_str(&quote_json)
                .map_err(|e| SalesError::Conflict(format!("entitlement {}: {e}", entitlement.id)))?;
            // Trips used on the lost card are not given again: the taps clearing has seen
            // since the contract was sold are taken off.
            let trips = match entitlement.trips {
                Some(trips) if entitlement.status == EntitlementStatus::Delivered => {
                    let used = taps_since(&mut tx, lost, entitlement.created_at).await?;
                    Some(u16::try_from((i64::from(trips) - used).max(0)).unwrap_or(0))
                }
                other => other,
            };
            let new_id = entitlements::create(
                &mut tx,
                NewEntitlement {
                    order: entitlement.order_id,
                    medium: request.replacement_id,
                    medium_kind: new.medium.kind,
                    quote: &quote,
                    amount: entitlement.amount,
                    valid_from: entitlement.valid_from,
                    valid_until: entitlement.valid_until,
                    trips,
                },
                now,
            )
            .await?;
            entitlements::set_status(
                &mut tx,
                entitlement.id,
                &[entitlement.status],
                EntitlementStatus::Transferred,
                now,
            )
            .await?;
            sql!(tx.conn(), |c| {
                sqlx::query("UPDATE entitlements SET transferred_to = $2 WHERE id = $1")
                    .bind(entitlement.id.to_db())
                    .bind(new_id.to_db())
                    .execute(c)
                    .await
                    .map(|r| r.rows_affected())
            })?;
            moved.push((entitlement.id, new_id));
        }
        let balance_moves_after = if old.medium.kind == MediumKind::FareCard && new.medium.kind == MediumKind::FareCard
        {
            let after = now
                .checked_add(Duration::days(i64::from(self.policy().balance_transfer_wait_days)))
                .ok_or_else(|| SalesError::invalid("balance_transfer_wait_days", "out of range"))?;
            let inserted = sql!(tx.conn(), |c| {
                sqlx::query(
                    "INSERT INTO balance_transfers (id, from_medium, to_medium, status, available_after_us, created_at_us) \
                     VALUES ($1, $2, $3, 'waiting', $4, $5)",
                )
                .bind(smartticket_core::id::Uuid::now_v7().hyphenated().to_string())
                .bind(lost.to_db())
                .bind(request.replacement_id.to_db())
                .bind(after.unix_micros())
                .bind(now.unix_micros())
                .execute(c)
                .await
                .map(|r| r.rows_affected())
            });
            smartticket_store::unique_or(inserted, || {
                SalesError::Conflict(format!("medium {lost}'s balance is already moving"))
            })?;
            Some(after)
        } else {
            None
        };
        let details = json!({ "replacement": request.replacement_id, "moved": moved.len(), "balance_moves_after": balance_moves_after, "reason": reason });
        audit::record(&mut tx, ctx, now, AuditEvent::ok("medium.replace", "medium", lost).details(details)).await?;
        let blocked = fetch_visible(&mut tx, Scope::Staff, lost).await?.medium;
        let replacement = fetch_visible(&mut tx, Scope::Staff, request.replacement_id).await?.medium;
        tx.commit().await?;
        Ok(ReplacementReport { blocked, replacement, moved, balance_moves_after })
    }
}
