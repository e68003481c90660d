//! Paying for an order: starting a payment by method, the gateway's callback, bank
//! statements, and what approval does (the order becomes paid, its entitlements are
//! created and the receipt is mailed, all in the approving transaction).
//!
//! Idempotency: a callback is recorded under its gateway event id before it acts, so a
//! repeated webhook is answered with the payment as it stands; a statement entry is
//! recorded under the bank's reference, so importing a statement twice matches nothing
//! twice; the database allows one approved payment per order, so a second approval (two
//! payment tabs) is refunded instead of charging twice.

use serde::{Deserialize, Serialize};
use serde_json::json;
use smartticket_core::id::{OrderId, PaymentId, StaffId};
use smartticket_core::{Money, Timestamp};
use smartticket_identity::AuditCtx;
use smartticket_identity::audit::{self, AuditEvent};
use smartticket_store::{StoreError, Tx, decode_id, decode_time, sql};
use utoipa::ToSchema;

use super::bank_transfer::{StatementEntry, new_variable_symbol, parse_camt053};
use super::{GatewayEvent, GatewayOutcome, Payment, PaymentMethod, PaymentStatus};
use crate::entitlements::{self, NewEntitlement};
use crate::media::{Scope, fetch_visible};
use crate::orders::{Buyer, OrderHead, OrderStatus, currency, fetch_head};
use crate::{Sales, SalesError};

/// How the payer wants to pay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum PaymentStart {
    /// A bank card on the gateway's hosted page (`redirect_url` of the answer); the bank
    /// sends the payer back to the order's page. The return address is never taken from
    /// the request, so the payment page cannot be made to redirect elsewhere.
    Card,
    /// A bank transfer quoting the variable symbol this returns.
    BankTransfer,
    /// Cash taken by the cashier into their open shift.
    Cash,
    /// Collected by the selling partner.
    Partner,
}

/// What importing a statement did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StatementReport {
    /// Entries read.
    pub entries: u32,
    /// Payments approved by an entry.
    pub matched: Vec<StatementMatch>,
    /// Entries that matched no pending payment, with why.
    pub unmatched: Vec<StatementMiss>,
    /// Entries already imported before (same bank reference): ignored.
    pub already_imported: u32,
}

/// An entry that paid an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StatementMatch {
    /// The bank's reference.
    pub reference: String,
    /// The payment approved.
    pub payment_id: PaymentId,
    /// The order paid.
    pub order_id: OrderId,
}

/// An entry that paid nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StatementMiss {
    /// The entry.
    pub entry: StatementEntry,
    /// Why it matched nothing.
    pub why: String,
}

#[derive(sqlx::FromRow)]
struct PaymentRow {
    id: String,
    order_id: String,
    method: String,
    gateway: String,
    status: String,
    amount_minor: i64,
    currency: String,
    gateway_reference: Option<String>,
    variable_symbol: Option<String>,
    failure: Option<String>,
    created_at_us: i64,
    decided_at_us: Option<i64>,
}

const PAYMENT_COLUMNS: &str = "id, order_id, method, gateway, status, amount_minor, currency, gateway_reference, \
    variable_symbol, failure, created_at_us, decided_at_us";

fn payment_from_row(row: PaymentRow) -> Result<Payment, SalesError> {
    let corrupt = |what: &str| SalesError::Store(StoreError::Corrupt(format!("payment {}: {what}", row.id)));
    Ok(Payment {
        id: decode_id(&row.id, PaymentId::from_db)?,
        order_id: decode_id(&row.order_id, OrderId::from_db)?,
        method: PaymentMethod::parse(&row.method).ok_or_else(|| corrupt("method"))?,
        gateway: row.gateway,
        status: PaymentStatus::parse(&row.status).ok_or_else(|| corrupt("status"))?,
        amount: Money::new(row.amount_minor, currency(&row.currency)?),
        variable_symbol: row.variable_symbol,
        gateway_reference: row.gateway_reference,
        failure: row.failure,
        redirect_url: None,
        created_at: decode_time(row.created_at_us)?,
        decided_at: row.decided_at_us.map(decode_time).transpose()?,
    })
}

async fn fetch_payment(tx: &mut Tx, id: PaymentId) -> Result<Payment, SalesError> {
    let row: Option<PaymentRow> = sql!(tx.conn(), |c| {
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1")))
            .bind(id.to_db())
            .fetch_optional(c)
            .await
    })?;
    row.map(payment_from_row).transpose()?.ok_or_else(|| SalesError::not_found("payment", id))
}

impl Sales {
    /// An order's payments, oldest first.
    pub(crate) async fn payments_of(&self, tx: &mut Tx, order: OrderId) -> Result<Vec<Payment>, SalesError> {
        let rows: Vec<PaymentRow> = sql!(tx.conn(), |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {PAYMENT_COLUMNS} FROM payments WHERE order_id = $1 ORDER BY created_at_us, id LIMIT 100"
            )))
            .bind(order.to_db())
            .fetch_all(c)
            .await
        })?;
        let gateway = self.gateway();
        rows.into_iter()
            .map(|row| {
                let mut payment = payment_from_row(row)?;
                if payment.method == PaymentMethod::Card && payment.status == PaymentStatus::Pending {
                    payment.redirect_url = Some(gateway.checkout_url(payment.id, &self.return_url(payment.order_id)));
                }
                Ok(payment)
            })
            .collect()
    }

    fn return_url(&self, order: OrderId) -> String {
        format!("{}/orders/{order}", self.public_url())
    }

    /// One payment, if `scope` may see its order.
    pub async fn payment(&self, scope: Scope, id: PaymentId) -> Result<Payment, SalesError> {
        let mut tx = self.db().begin_read().await?;
        let payment = fetch_payment(&mut tx, id).await?;
        fetch_head(&mut tx, scope, payment.order_id).await.map_err(|_| SalesError::not_found("payment", id))?;
        let order_payments = self.payments_of(&mut tx, payment.order_id).await?;
        tx.rollback().await?;
        order_payments.into_iter().find(|p| p.id == id).ok_or_else(|| SalesError::not_found("payment", id))
    }

    /// Starts paying `order` by `method`. Cash and partner payments are approved at once
    /// (and the order fulfilled); a card payment returns the bank page to send the payer
    /// to; a bank transfer returns the variable symbol to quote.
    pub async fn start_payment(
        &self,
        ctx: &AuditCtx,
        buyer: Buyer,
        order: OrderId,
        method: &PaymentStart,
    ) -> Result<Payment, SalesError> {
        let now = self.now();
        let mut tx = self.db().begin().await?;
        let id = self.start_payment_in(&mut tx, ctx, buyer, order, method, now).await?;
        let payment = fetch_payment(&mut tx, id).await?;
        tx.commit().await?;
        if payment.method == PaymentMethod::Card {
            return self.payment(buyer.scope(), id).await;
        }
        Ok(payment)
    }

    /// [`Sales::start_payment`] inside the caller's transaction; the caller commits.
    pub(crate) async fn start_payment_in(
        &self,
        tx: &mut Tx,
        ctx: &AuditCtx,
        buyer: Buyer,
        order: OrderId,
        method: &PaymentStart,
        now: Timestamp,
    ) -> Result<PaymentId, SalesError> {
        let head = fetch_head(tx, buyer.scope(), order).await?;
        if head.status != OrderStatus::AwaitingPayment {
            return Err(SalesError::Conflict(format!(
                "order {order} is {}; it takes no payment",
                head.status.as_str()
            )));
        }
        let id = PaymentId::new();
        let (method_kind, gateway, variable_symbol, shift) = match (method, buyer) {
            (PaymentStart::Card, _) => (PaymentMethod::Card, self.gateway().name().to_owned(), None, None),
            (PaymentStart::BankTransfer, _) => {
                let vs = new_variable_symbol().map_err(|e| SalesError::Conflict(e.to_string()))?;
                (PaymentMethod::BankTransfer, "bank-transfer".to_owned(), Some(vs), None)
            }
            (PaymentStart::Cash, Buyer::Cashier(staff)) => {
                let shift = open_shift_of(tx, staff).await?;
                (PaymentMethod::Cash, "cash".to_owned(), None, Some(shift))
            }
            (PaymentStart::Cash, _) => {
                return Err(SalesError::invalid("method", "cash is taken by a cashier at a counter"));
            }
            (PaymentStart::Partner, Buyer::Partner(_)) => (PaymentMethod::Partner, "partner".to_owned(), None, None),
            (PaymentStart::Partner, _) => {
                return Err(SalesError::invalid("method", "only a partner collects payment itself"));
            }
        };
        if method_kind == PaymentMethod::Card {
            let pending: i64 = sql!(tx.conn(), |c| {
                sqlx::query_scalar(
                    "SELECT count(*) FROM payments WHERE order_id = $1 AND status = 'pending' AND method = 'card'",
                )
                .bind(order.to_db())
                .fetch_one(c)
                .await
            })?;
            // One live card attempt at a time keeps the payer from paying twice in two tabs.
            if pending >= 1 {
                return Err(SalesError::Conflict(
                    "a card payment for this order is already waiting at the bank; finish or abandon it first".into(),
                ));
            }
        }
        let row = crate::rows::PaymentRow {
            id,
            order,
            method: method_kind.as_str(),
            gateway,
            status: PaymentStatus::Pending.as_str(),
            amount_minor: head.total.amount_minor,
            currency: head.total.currency.code(),
            variable_symbol,
            shift_id: shift.map(|s: smartticket_core::id::ShiftId| s.to_db()),
            created_at_us: now.unix_micros(),
            decided_at_us: None,
        };
        crate::rows::insert_payments(tx, &[row]).await?;
        audit::record(tx, ctx, now, payment_started(id, order, method_kind, head.total)).await?;
        if matches!(method_kind, PaymentMethod::Cash | PaymentMethod::Partner) {
            self.approve_in(tx, ctx, id, &head, None, now).await?;
        }
        Ok(id)
    }

    /// Handles a callback of the configured card gateway: verifies it, then applies it
    /// once. A repeated callback (same event id) changes nothing and gets the payment as
    /// it stands.
    pub async fn gateway_callback(&self, signature: Option<&str>, body: &[u8]) -> Result<Payment, SalesError> {
        let now = self.now();
        let event = self.gateway().verify_callback(signature, body, now).map_err(SalesError::Gateway)?;
        let ctx = AuditCtx::system(self.gateway().name());
        let gateway_name = self.gateway().name();
        let mut tx = self.db().begin().await?;
        let payment = fetch_payment(&mut tx, event.payment_id).await?;
        let seen: Option<String> = sql!(tx.conn(), |c| {
            sqlx::query_scalar("SELECT payment_id FROM payment_callbacks WHERE gateway = $1 AND event_id = $2")
                .bind(gateway_name)
                .bind(event.event_id.as_str())
                .fetch_optional(c)
                .await
        })?;
        if seen.is_some() {
            tx.rollback().await?;
            return self.payment(Scope::Staff, payment.id).await;
        }
        let body_text = String::from_utf8_lossy(body).into_owned();
        sql!(tx.conn(), |c| {
            sqlx::query("INSERT INTO payment_callbacks (gateway, event_id, payment_id, received_at_us, body) VALUES ($1, $2, $3, $4, $5)")
                .bind(gateway_name)
                .bind(event.event_id.as_str())
                .bind(payment.id.to_db())
                .bind(now.unix_micros())
                .bind(body_text.as_str())
                .execute(c)
                .await
                .map(|r| r.rows_affected())
        })?;
        let refund = self.apply_gateway_event(&mut tx, &ctx, &payment, &event, now).await?;
        tx.commit().await?;
        if let Some((reference, amount)) = refund {
            self.refund_duplicate(&ctx, payment.id, &reference, amount).await?;
        }
        self.payment(Scope::Staff, payment.id).await
    }

    /// Applies a verified event; returns a refund to make when the order was already paid.
    async fn apply_gateway_event(
        &self,
        tx: &mut Tx,
        ctx: &AuditCtx,
        payment: &Payment,
        event: &GatewayEvent,
        now: Timestamp,
    ) -> Result<Option<(String, Money)>, SalesError> {
        if payment.method != PaymentMethod::Card || payment.status != PaymentStatus::Pending {
            // A late or contradictory answer for a decided payment: recorded above, no effect.
            let details = json!({ "event": event.event_id, "status": payment.status });
            let ignored = AuditEvent {
                outcome: audit::Outcome::Denied,
                ..AuditEvent::ok("payment.callback", "payment", payment.id)
            };
            audit::record(tx, ctx, now, ignored.details(details)).await?;
            return Ok(None);
        }
        let head = fetch_head(tx, Scope::Staff, payment.order_id).await?;
        match &event.outcome {
            GatewayOutcome::Approved { reference } => {
                if head.status != OrderStatus::AwaitingPayment {
                    // Paid meanwhile by another payment: take the money back, never keep both.
                    self.decide(
                        tx,
                        payment.id,
                        PaymentStatus::Failed,
                        Some(reference),
                        Some("order already paid; refunding"),
                        now,
                    )
                    .await?;
                    audit::record(tx, ctx, now, AuditEvent::ok("payment.duplicate", "payment", payment.id)).await?;
                    return Ok(Some((reference.clone(), payment.amount)));
                }
                self.approve_in(tx, ctx, payment.id, &head, Some(reference), now).await?;
            }
            GatewayOutcome::Declined { reason } | GatewayOutcome::Failed { reason } => {
                let status = if matches!(event.outcome, GatewayOutcome::Declined { .. }) {
                    PaymentStatus::Declined
                } else {
                    PaymentStatus::Failed
                };
                let reason: String = reason.chars().take(200).collect();
                self.decide(tx, payment.id, status, None, Some(&reason), now).await?;
                let details = json!({ "status": status, "reason": reason });
                audit::record(tx, ctx, now, AuditEvent::ok("payment.decline", "payment", payment.id).details(details))
                    .await?;
            }
        }
        Ok(None)
    }

    async fn refund_duplicate(
        &self,
        ctx: &AuditCtx,
        payment: PaymentId,
        reference: &str,
        amount: Money,
    ) -> Result<(), SalesError> {
        let refund = self.gateway().refund(payment, reference, amount).await.map_err(SalesError::Gateway)?;
        let now = self.now();
        let mut tx = self.db().begin().await?;
        self.decide(
            &mut tx,
            payment,
            PaymentStatus::Refunded,
            Some(&refund),
            Some("order already paid; refunded"),
            now,
        )
        .await
        .ok();
        audit::record(
            &mut tx,
            ctx,
            now,
            AuditEvent::ok("payment.refund", "payment", payment).details(json!({ "refund": refund })),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn decide(
        &self,
        tx: &mut Tx,
        payment: PaymentId,
        status: PaymentStatus,
        reference: Option<&str>,
        failure: Option<&str>,
        now: Timestamp,
    ) -> Result<(), SalesError> {
        sql!(tx.conn(), |c| {
            sqlx::query(
                "UPDATE payments SET status = $2, gateway_reference = COALESCE($3, gateway_reference), failure = $4, \
                 decided_at_us = $5 WHERE id = $1",
            )
            .bind(payment.to_db())
            .bind(status.as_str())
            .bind(reference)
            .bind(failure)
            .bind(now.unix_micros())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Approves `payment` and fulfils its order: status paid, one entitlement per item,
    /// the receipt in the outbox, the audit entry. Refuses (the unique index does) a second
    /// approved payment for one order.
    pub(crate) async fn approve_in(
        &self,
        tx: &mut Tx,
        ctx: &AuditCtx,
        payment: PaymentId,
        head: &OrderHead,
        reference: Option<&str>,
        now: Timestamp,
    ) -> Result<(), SalesError> {
        let approved = sql!(tx.conn(), |c| {
            sqlx::query(
                "UPDATE payments SET status = 'approved', gateway_reference = COALESCE($2, gateway_reference), \
                 decided_at_us = $3 WHERE id = $1 AND status = 'pending'",
            )
            .bind(payment.to_db())
            .bind(reference)
            .bind(now.unix_micros())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        });
        smartticket_store::unique_or(approved, || SalesError::Conflict(format!("order {} is already paid", head.id)))?;
        let paid = sql!(tx.conn(), |c| {
            sqlx::query("UPDATE orders SET status = 'paid', paid_at_us = $2, updated_at_us = $2 WHERE id = $1 AND status = 'awaiting_payment'")
                .bind(head.id.to_db())
                .bind(now.unix_micros())
                .execute(c)
                .await
                .map(|r| r.rows_affected())
        })?;
        if paid != 1 {
            return Err(SalesError::Conflict(format!("order {} is already paid", head.id)));
        }
        let items = Self::order_items(tx, head.id).await?;
        for item in &items {
            let medium = fetch_visible(tx, Scope::Staff, item.medium_id).await?;
            let new = NewEntitlement {
                order: Some(head.id),
                medium: item.medium_id,
                medium_kind: medium.medium.kind,
                quote: &item.quote,
                amount: item.quote.price,
                valid_from: None,
                valid_until: None,
                trips: None,
            };
            entitlements::create(tx, new, now).await?;
            if item.quote.kind == smartticket_catalog::ProductKind::StoredValue {
                crate::media::record_event(tx, item.medium_id, now, "topup", None, Some(item.quote.price)).await?;
            }
        }
        audit::record(tx, ctx, now, order_paid(head.id, payment, head.total)).await?;
        self.mail_receipt(tx, head, &items, now).await?;
        Ok(())
    }

    /// Imports a camt.053 statement: each booked credit whose variable symbol and amount
    /// match a pending bank-transfer payment approves it. Entries are remembered by the
    /// bank's reference, so importing the same statement again matches nothing twice.
    pub async fn import_statement(&self, ctx: &AuditCtx, xml: &str) -> Result<StatementReport, SalesError> {
        let entries = parse_camt053(xml).map_err(|e| SalesError::invalid("statement", e.to_string()))?;
        let now = self.now();
        let mut report = StatementReport {
            entries: u32::try_from(entries.len()).unwrap_or(u32::MAX),
            matched: Vec::new(),
            unmatched: Vec::new(),
            already_imported: 0,
        };
        let mut tx = self.db().begin().await?;
        for entry in entries {
            let event_id = format!("camt053:{}", entry.reference);
            let seen: Option<String> = sql!(tx.conn(), |c| {
                sqlx::query_scalar(
                    "SELECT payment_id FROM payment_callbacks WHERE gateway = 'bank-transfer' AND event_id = $1",
                )
                .bind(event_id.as_str())
                .fetch_optional(c)
                .await
            })?;
            if seen.is_some() {
                report.already_imported += 1;
                continue;
            }
            match self.match_entry(&mut tx, &entry).await? {
                Err(why) => report.unmatched.push(StatementMiss { entry, why }),
                Ok((payment, head)) => {
                    sql!(tx.conn(), |c| {
                        sqlx::query(
                            "INSERT INTO payment_callbacks (gateway, event_id, payment_id, received_at_us, body) \
                             VALUES ('bank-transfer', $1, $2, $3, $4)",
                        )
                        .bind(event_id.as_str())
                        .bind(payment.to_db())
                        .bind(now.unix_micros())
                        .bind(entry.reference.as_str())
                        .execute(c)
                        .await
                        .map(|r| r.rows_affected())
                    })?;
                    self.approve_in(&mut tx, ctx, payment, &head, Some(&entry.reference), now).await?;
                    report.matched.push(StatementMatch {
                        reference: entry.reference,
                        payment_id: payment,
                        order_id: head.id,
                    });
                }
            }
        }
        let details =
            json!({ "entries": report.entries, "matched": report.matched.len(), "unmatched": report.unmatched.len() });
        audit::record(
            &mut tx,
            ctx,
            now,
            AuditEvent::ok("payment.statement_import", "statement", "camt053").details(details),
        )
        .await?;
        tx.commit().await?;
        Ok(report)
    }

    async fn match_entry(
        &self,
        tx: &mut Tx,
        entry: &StatementEntry,
    ) -> Result<Result<(PaymentId, OrderHead), String>, SalesError> {
        if !entry.credit {
            return Ok(Err("a debit, not a payment to us".into()));
        }
        if !entry.booked {
            return Ok(Err("not booked yet".into()));
        }
        let Some(vs) = &entry.variable_symbol else { return Ok(Err("no variable symbol".into())) };
        let row: Option<(String, i64, String, String)> = sql!(tx.conn(), |c| {
            sqlx::query_as("SELECT id, amount_minor, currency, status FROM payments WHERE variable_symbol = $1")
                .bind(vs.as_str())
                .fetch_optional(c)
                .await
        })?;
        let Some((id, amount, currency_code, status)) = row else {
            return Ok(Err(format!("no payment has variable symbol {vs}")));
        };
        if status != "pending" {
            return Ok(Err(format!("the payment with variable symbol {vs} is already {status}")));
        }
        if amount != entry.amount.amount_minor || currency_code != entry.amount.currency.code() {
            return Ok(Err(format!(
                "amount {} does not match the {} expected",
                entry.amount,
                Money::new(amount, currency(&currency_code)?)
            )));
        }
        let payment = decode_id(&id, PaymentId::from_db)?;
        let order = fetch_payment(tx, payment).await?.order_id;
        let head = fetch_head(tx, Scope::Staff, order).await?;
        if head.status != OrderStatus::AwaitingPayment {
            return Ok(Err(format!("order {order} is already {}", head.status.as_str())));
        }
        Ok(Ok((payment, head)))
    }
}

/// The audit entry of a payment started.
pub(crate) fn payment_started(id: PaymentId, order: OrderId, method: PaymentMethod, amount: Money) -> AuditEvent {
    AuditEvent::ok("payment.start", "payment", id)
        .details(json!({ "order": order, "method": method, "amount": amount }))
}

/// The audit entry of an order paid.
pub(crate) fn order_paid(order: OrderId, payment: PaymentId, total: Money) -> AuditEvent {
    AuditEvent::ok("order.paid", "order", order).details(json!({ "payment": payment, "total": total }))
}

pub(crate) async fn open_shift_of(tx: &mut Tx, staff: StaffId) -> Result<smartticket_core::id::ShiftId, SalesError> {
    let id: Option<String> = sql!(tx.conn(), |c| {
        sqlx::query_scalar("SELECT id FROM shifts WHERE staff_id = $1 AND closed_at_us IS NULL")
            .bind(staff.to_db())
            .fetch_optional(c)
            .await
    })?;
    let id = id.ok_or_else(|| SalesError::Conflict("open a shift before taking cash".into()))?;
    Ok(decode_id(&id, smartticket_core::id::ShiftId::from_db)?)
}
