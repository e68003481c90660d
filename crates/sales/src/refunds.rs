//! Refunds of paid orders whose products were never used: every entitlement still waiting
//! for delivery, or in force on an account medium but not yet started. What a card already
//! carries cannot be taken back from here (the card is offline); that goes through a
//! complaint. The money goes back the way it came: the gateway for cards, the drawer for
//! cash, a transfer instruction for bank transfers and partners.

use serde_json::json;
use smartticket_core::Timestamp;
use smartticket_core::id::{OrderId, PaymentId};
use smartticket_identity::AuditCtx;
use smartticket_identity::audit::{self, AuditEvent};
use smartticket_store::{Tx, sql};

use crate::entitlements::{self, EntitlementStatus};
use crate::media::Scope;
use crate::orders::{Order, OrderStatus, fetch_head};
use crate::payments::{PaymentMethod, PaymentStatus};
use crate::{Sales, SalesError};

/// Longest refund reason.
const REASON_CHARS_MAX: usize = 300;

impl Sales {
    /// Why `order`'s entitlements cannot all be refunded, if they cannot.
    async fn refund_blocker(tx: &mut Tx, order: OrderId, now: Timestamp) -> Result<Option<String>, SalesError> {
        for entitlement in entitlements::of_order(tx, order).await? {
            let unused = match entitlement.status {
                EntitlementStatus::PendingDelivery => true,
                EntitlementStatus::Active => entitlement.valid_from.is_some_and(|from| from > now),
                _ => false,
            };
            if !unused {
                return Ok(Some(format!(
                    "{} is {} and may have been used; refund it through a complaint",
                    entitlement.product_name,
                    entitlement.status.as_str()
                )));
            }
        }
        let writing: i64 = sql!(tx.conn(), |c| {
            sqlx::query_scalar(
                "SELECT count(*) FROM deliveries d JOIN entitlements e ON e.medium_id = d.medium_id \
                 WHERE e.order_id = $1 AND d.status = 'writing'",
            )
            .bind(order.to_db())
            .fetch_one(c)
            .await
        })?;
        if writing > 0 {
            return Ok(Some("a card is being written right now; try again after the tap".into()));
        }
        Ok(None)
    }

    /// Refunds a paid order whose products are all unused (staff, with a reason). The
    /// entitlements are withdrawn in the same transaction, so nothing refunded can still
    /// be delivered.
    pub async fn refund_order(&self, ctx: &AuditCtx, order: OrderId, reason: &str) -> Result<Order, SalesError> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > REASON_CHARS_MAX {
            return Err(SalesError::invalid("reason", format!("say why, in at most {REASON_CHARS_MAX} characters")));
        }
        let now = self.now();
        let mut tx = self.db().begin().await?;
        let head = fetch_head(&mut tx, Scope::Staff, order).await?;
        if head.status != OrderStatus::Paid {
            return Err(SalesError::Conflict(format!(
                "order {order} is {}; only paid orders are refunded",
                head.status.as_str()
            )));
        }
        if let Some(why) = Self::refund_blocker(&mut tx, order, now).await? {
            return Err(SalesError::Conflict(why));
        }
        let payments = self.payments_of(&mut tx, order).await?;
        let payment = payments
            .into_iter()
            .find(|p| p.status == PaymentStatus::Approved)
            .ok_or_else(|| SalesError::Conflict(format!("order {order} has no approved payment")))?;
        if payment.method == PaymentMethod::Cash {
            let open: Option<String> = sql!(tx.conn(), |c| {
                sqlx::query_scalar("SELECT s.id FROM shifts s JOIN payments p ON p.shift_id = s.id WHERE p.id = $1 AND s.closed_at_us IS NULL")
                    .bind(payment.id.to_db())
                    .fetch_optional(c)
                    .await
            })?;
            if open.is_none() {
                return Err(SalesError::Conflict(
                    "the cash was taken in a shift that is closed; pay it back through a complaint".into(),
                ));
            }
        }
        // The bank first: if it refuses, nothing here changes. Its refund is idempotent by
        // payment id, so a retry after a failed commit does not pay back twice.
        let reference = match payment.method {
            PaymentMethod::Card => Some(
                self.gateway()
                    .refund(payment.id, payment.gateway_reference.as_deref().unwrap_or_default(), payment.amount)
                    .await
                    .map_err(SalesError::Gateway)?,
            ),
            _ => None,
        };
        for entitlement in entitlements::of_order(&mut tx, order).await? {
            entitlements::set_status(&mut tx, entitlement.id, &[entitlement.status], EntitlementStatus::Refunded, now)
                .await?;
        }
        mark_refunded(&mut tx, order, payment.id, reference.as_deref(), now).await?;
        let details = json!({ "payment": payment.id, "method": payment.method, "amount": payment.amount, "reason": reason, "refund": reference });
        audit::record(&mut tx, ctx, now, AuditEvent::ok("order.refund", "order", order).details(details)).await?;
        let refunded = self.order_in(&mut tx, Scope::Staff, order).await?;
        tx.commit().await?;
        Ok(refunded)
    }
}

async fn mark_refunded(
    tx: &mut Tx,
    order: OrderId,
    payment: PaymentId,
    reference: Option<&str>,
    now: Timestamp,
) -> Result<(), SalesError> {
    sql!(tx.conn(), |c| {
        sqlx::query("UPDATE orders SET status = 'refunded', updated_at_us = $2 WHERE id = $1 AND status = 'paid'")
            .bind(order.to_db())
            .bind(now.unix_micros())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
    })?;
    sql!(tx.conn(), |c| {
        sqlx::query("UPDATE payments SET status = 'refunded', failure = COALESCE($2, failure), decided_at_us = $3 WHERE id = $1")
            .bind(payment.to_db())
            .bind(reference.map(|r| format!("refund {r}")))
            .bind(now.unix_micros())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(())
}
