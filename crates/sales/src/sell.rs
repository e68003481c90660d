//! One-call sales for counters and partners: the order and its payment (cash or partner)
//! in one transaction, as a point of sale does them.
//!
//! Group commit: a durable commit costs an fsync, and on SQLite there is one writer, so a
//! commit per sale caps throughput at the disk's sync rate. Sales therefore go through a
//! writer task that takes every sale waiting (up to [`SALE_BATCH_MAX`]), runs each inside
//! its own savepoint in one transaction, commits once, and only then answers each caller.
//! A sale that fails rolls back to its savepoint and gets its own error; the others are
//! unaffected. Nobody is told "sold" before the commit that makes it durable.

use std::sync::{Arc, Weak};

use serde::Deserialize;
use smartticket_core::Timestamp;
use smartticket_core::id::OrderId;
use smartticket_identity::AuditCtx;
use smartticket_store::Tx;
use tokio::sync::{mpsc, oneshot};
use utoipa::ToSchema;

use std::collections::{HashMap, HashSet};

use smartticket_catalog::{ProductKind, Quote};
use smartticket_core::Money;
use smartticket_core::id::{MediumId, PaymentId};

use crate::entitlements::{self, NewEntitlement};
use crate::media::MediumRecord;
use crate::orders::{
    Buyer, ITEMS_MAX, ItemRequest, Order, OrderHead, OrderItem, OrderStatus, Tariff, check_idempotency_key,
    check_medium_takes, order_customer, seller_columns,
};
use crate::payments::{Payment, PaymentMethod, PaymentStart, PaymentStatus};
use crate::rows::{KeyRow, MediaEventRow, OrderItemRow, OrderRow, PaymentRow};
use crate::{Inner, Sales, SalesError};
use smartticket_identity::audit::AuditEvent;

/// Sales committed together at most: bounds a batch's transaction time (and so the
/// latency of its first sale) while amortising the fsync over many sales.
pub const SALE_BATCH_MAX: usize = 256;
/// Sales waiting for the writer at most; beyond this callers wait to enqueue, which is
/// the back-pressure a flood of requests meets.
pub const SALE_QUEUE_MAX: usize = 4096;

/// A sale in one call: what to sell and how it was paid.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaleRequest {
    /// What to sell.
    pub items: Vec<ItemRequest>,
    /// `cash` (a cashier with an open shift) or `partner` (collected by the partner).
    pub payment: PaymentStart,
}

struct Job {
    ctx: AuditCtx,
    buyer: Buyer,
    request: SaleRequest,
    /// Each item's quote and its JSON, made by the caller before queueing: pricing is
    /// pure, so it runs in parallel on the request's thread, not on the one writer.
    quotes: Vec<(Quote, String)>,
    key: String,
    tariff: Tariff,
    now: Timestamp,
    reply: oneshot::Sender<Result<Answer, SalesError>>,
}

/// What a sale's caller is told once the batch is durable.
enum Answer {
    /// Sold now: the order as written (no need to read it back).
    Sold(Box<Order>),
    /// Sold before, or sold alone: the order to read.
    Existing(OrderId),
}

/// The sender side of the writer task.
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

/// Writer tasks on PostgreSQL, which runs transactions side by side; SQLite has one
/// writer connection, so one task.
pub const POSTGRES_WRITERS: usize = 4;

impl Writer {
    /// Starts the writer tasks on the current runtime. They hold the service weakly and
    /// stop when the service is dropped (the queue closes).
    pub(crate) fn start(inner: Weak<Inner>, writers: usize) -> Writer {
        let (jobs, queue) = mpsc::channel(SALE_QUEUE_MAX);
        let queue = Arc::new(tokio::sync::Mutex::new(queue));
        for _ in 0..writers.max(1) {
            tokio::spawn(run(inner.clone(), queue.clone()));
        }
        Writer { jobs }
    }
}

async fn run(inner: Weak<Inner>, queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>) {
    let mut batch = Vec::with_capacity(SALE_BATCH_MAX);
    loop {
        // One writer takes what is waiting; the others wait their turn at the queue.
        let taken = queue.lock().await.recv_many(&mut batch, SALE_BATCH_MAX).await;
        if taken == 0 {
            return;
        }
        let Some(inner) = inner.upgrade() else { return };
        let sales = Sales { inner };
        let jobs = std::mem::take(&mut batch);
        sales.commit_batch(jobs).await;
    }
}

/// What the batch decided for one sale.
enum Decided {
    /// Sold (or refused) within the batch.
    Done(Result<Answer, SalesError>),
    /// To be sold alone, after the batch.
    Alone,
}

/// Every row a batch writes.
#[derive(Default)]
struct BatchRows<'a> {
    orders: Vec<OrderRow>,
    keys: Vec<KeyRow>,
    items: Vec<OrderItemRow>,
    payments: Vec<PaymentRow>,
    entitlements: Vec<crate::rows::EntitlementRow>,
    events: Vec<MediaEventRow>,
    audit: Vec<(&'a AuditCtx, Timestamp, AuditEvent)>,
    serials_used: HashSet<MediumId>,
    receipts: Vec<(OrderHead, Vec<OrderItem>)>,
}

impl<'a> BatchRows<'a> {
    /// Adds one sale's rows: a sale is built apart and joins the batch only once nothing
    /// about it can fail any more, so a refused sale leaves no row behind.
    fn absorb(&mut self, sale: BatchRows<'a>) {
        self.orders.extend(sale.orders);
        self.keys.extend(sale.keys);
        self.items.extend(sale.items);
        self.payments.extend(sale.payments);
        self.entitlements.extend(sale.entitlements);
        self.events.extend(sale.events);
        self.audit.extend(sale.audit);
        self.serials_used.extend(sale.serials_used);
        self.receipts.extend(sale.receipts);
    }

    async fn write(&self, tx: &mut Tx, media: &HashMap<MediumId, MediumRecord>) -> Result<(), SalesError> {
        crate::rows::insert_orders(tx, &self.orders).await?;
        crate::rows::insert_keys(tx, &self.keys).await?;
        crate::rows::insert_order_items(tx, &self.items).await?;
        crate::rows::insert_payments(tx, &self.payments).await?;
        crate::rows::insert_entitlements(tx, &self.entitlements).await?;
        crate::rows::insert_media_events(tx, &self.events).await?;
        for medium in &self.serials_used {
            let Some(record) = media.get(medium) else { continue };
            crate::rows::set_next_serial(tx, *medium, record.next_contract_serial).await?;
        }
        smartticket_identity::audit::record_many(tx, &self.audit).await?;
        Ok(())
    }
}

/// The orders the batch's idempotency keys already name, by (owner, key).
async fn batch_keys(tx: &mut Tx, jobs: &[Job]) -> Result<HashMap<(String, String), OrderId>, SalesError> {
    let mut by_owner: HashMap<String, Vec<&str>> = HashMap::new();
    for job in jobs {
        by_owner.entry(job.buyer.owner()).or_default().push(job.key.as_str());
    }
    let mut known = HashMap::new();
    for (owner, keys) in by_owner {
        for row in crate::rows::keys_named(tx, &owner, &keys).await? {
            known.insert((row.owner, row.key), row.order);
        }
    }
    Ok(known)
}

impl Sales {
    /// Sells `request` for `buyer` in one call: prices the items, creates the order and
    /// takes the payment. The same idempotency key returns the same order.
    pub async fn sell(
        &self,
        ctx: &AuditCtx,
        buyer: Buyer,
        request: SaleRequest,
        key: &str,
    ) -> Result<Order, SalesError> {
        let key = check_idempotency_key(key)?.to_owned();
        if !matches!(request.payment, PaymentStart::Cash | PaymentStart::Partner) {
            return Err(SalesError::invalid("payment", "a one-call sale is paid in cash or by the partner"));
        }
        let items = &request.items;
        if items.is_empty() || items.len() > ITEMS_MAX {
            return Err(SalesError::invalid("items", format!("an order has 1 to {ITEMS_MAX} items")));
        }
        let tariff = self.tariff().await?;
        let now = self.now();
        let mut quotes = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let quote = tariff
                .catalog
                .quote(&item.quote_request(), tariff.today, now)
                .map_err(|e| SalesError::from(smartticket_catalog::CatalogError::from(e)).in_item(index))?;
            let json = serde_json::to_string(&quote).map_err(|e| SalesError::invalid("items", e.to_string()))?;
            quotes.push((quote, json));
        }
        let (reply, answer) = oneshot::channel();
        let job = Job { ctx: ctx.clone(), buyer, request, quotes, key, tariff, now, reply };
        let writer = self.writer();
        writer.jobs.send(job).await.map_err(|_| SalesError::Conflict("the sales writer has stopped".into()))?;
        match answer.await.map_err(|_| SalesError::Conflict("the sales writer has stopped".into()))?? {
            Answer::Sold(order) => Ok(*order),
            Answer::Existing(order) => self.order(buyer.scope(), order).await,
        }
    }

    fn writer(&self) -> &Writer {
        self.inner.writer.get_or_init(|| {
            let writers = match self.db().backend() {
                smartticket_store::Backend::Sqlite => 1,
                smartticket_store::Backend::Postgres => POSTGRES_WRITERS,
            };
            Writer::start(Arc::downgrade(&self.inner), writers)
        })
    }

    /// Runs `jobs` in one transaction and commits once, then answers every caller. The
    /// batch is written with multi-row statements ([`Sales::write_batch`]); if that fails
    /// as a whole (a constraint another writer raced into), it is undone and every sale is
    /// retried alone in its own savepoint, so one bad sale never fails the others.
    async fn commit_batch(&self, jobs: Vec<Job>) {
        let started = std::time::Instant::now();
        let fail_all = |jobs: Vec<Job>, message: String| {
            for job in jobs {
                let _ = job.reply.send(Err(SalesError::Store(smartticket_store::StoreError::Corrupt(message.clone()))));
            }
        };
        let mut tx = match self.db().begin().await {
            Ok(tx) => tx,
            Err(error) => return fail_all(jobs, error.to_string()),
        };
        let outcomes = match self.write_batch_or_each(&mut tx, &jobs).await {
            Ok(outcomes) => outcomes,
            Err(error) => return fail_all(jobs, error.to_string()),
        };
        let written = started.elapsed();
        match tx.commit().await {
            Ok(()) => {
                tracing::debug!(
                    sales = jobs.len(),
                    write_us = written.as_micros() as u64,
                    commit_us = (started.elapsed() - written).as_micros() as u64,
                    "batch of sales committed"
                );
                for (job, outcome) in jobs.into_iter().zip(outcomes) {
                    let _ = job.reply.send(outcome);
                }
            }
            // Nothing of the batch is durable: every caller hears so, none is told "sold".
            Err(error) => {
                tracing::error!(%error, sales = jobs.len(), "a batch of sales failed to commit");
                fail_all(jobs, error.to_string());
            }
        }
    }

    async fn write_batch_or_each(
        &self,
        tx: &mut Tx,
        jobs: &[Job],
    ) -> Result<Vec<Result<Answer, SalesError>>, SalesError> {
        tx.savepoint().await?;
        match self.write_batch(tx, jobs).await {
            Ok(outcomes) => {
                tx.release_savepoint().await?;
                // Sales the batch could not decide alone (a discount needing an approval
                // check) run one by one after it, so they see its keys.
                let mut finished = Vec::with_capacity(outcomes.len());
                for (job, outcome) in jobs.iter().zip(outcomes) {
                    finished.push(match outcome {
                        Decided::Done(result) => result,
                        Decided::Alone => self.one_sale(tx, job).await.map(Answer::Existing),
                    });
                }
                Ok(finished)
            }
            Err(error) => {
                tracing::warn!(%error, sales = jobs.len(), "batch write refused; retrying each sale alone");
                tx.rollback_to_savepoint().await?;
                let mut finished = Vec::with_capacity(jobs.len());
                for job in jobs {
                    finished.push(self.one_sale(tx, job).await.map(Answer::Existing));
                }
                Ok(finished)
            }
        }
    }

    /// Decides every sale of the batch from two reads (keys, media), then writes them all
    /// with one multi-row statement per table.
    async fn write_batch(&self, tx: &mut Tx, jobs: &[Job]) -> Result<Vec<Decided>, SalesError> {
        let read_started = std::time::Instant::now();
        let mut known = batch_keys(tx, jobs).await?;
        let mut medium_ids: Vec<MediumId> =
            jobs.iter().flat_map(|j| j.request.items.iter().map(|i| i.medium_id)).collect();
        medium_ids.sort_unstable_by_key(MediumId::to_db);
        medium_ids.dedup();
        let mut media: HashMap<MediumId, MediumRecord> =
            crate::media::fetch_many(tx, &medium_ids).await?.into_iter().map(|r| (r.medium.id, r)).collect();
        tracing::trace!(read_us = read_started.elapsed().as_micros() as u64, "batch keys and media read");
        let mut rows = BatchRows::default();
        let mut decided = Vec::with_capacity(jobs.len());
        for job in jobs {
            let owner = job.buyer.owner();
            if let Some(existing) = known.get(&(owner.clone(), job.key.clone())) {
                // A retry: the first call's audit entry stands for this one.
                job.ctx.mark_recorded();
                decided.push(Decided::Done(Ok(Answer::Existing(*existing))));
                continue;
            }
            match self.decide_sale(tx, job, &mut media, &mut rows).await {
                Ok(Some(order)) => {
                    known.insert((owner, job.key.clone()), order.id);
                    decided.push(Decided::Done(Ok(Answer::Sold(Box::new(order)))));
                }
                Ok(None) => decided.push(Decided::Alone),
                Err(error) => decided.push(Decided::Done(Err(error))),
            }
        }
        let decided_at = std::time::Instant::now();
        rows.write(tx, &media).await?;
        tracing::trace!(write_us = decided_at.elapsed().as_micros() as u64, "batch rows written");
        for (head, items) in &rows.receipts {
            self.mail_receipt(tx, head, items, jobs.first().map(|j| j.now).unwrap_or_else(|| self.now())).await?;
        }
        Ok(decided)
    }

    /// Checks one sale and adds its rows; `Ok(None)` when it must run alone.
    async fn decide_sale<'j>(
        &self,
        tx: &mut Tx,
        job: &'j Job,
        media: &mut HashMap<MediumId, MediumRecord>,
        batch: &mut BatchRows<'j>,
    ) -> Result<Option<Order>, SalesError> {
        let mut rows = BatchRows::default();
        let items = &job.request.items;
        for (index, (item, (quote, _))) in items.iter().zip(&job.quotes).enumerate() {
            let record = media
                .get(&item.medium_id)
                .filter(|r| r.visible_to(job.buyer.scope()))
                .ok_or_else(|| SalesError::not_found("medium", item.medium_id))?;
            check_medium_takes(record, item, quote).map_err(|e| e.in_item(index))?;
            if quote.requires_approval {
                return Ok(None);
            }
        }
        let currency = job
            .quotes
            .first()
            .map(|(q, _)| q.price.currency)
            .ok_or_else(|| SalesError::invalid("items", "no items"))?;
        let total = Money::sum(currency, job.quotes.iter().map(|(q, _)| q.price))
            .map_err(|e| SalesError::invalid("items", e.to_string()))?;
        let (method, gateway, shift) = match (&job.request.payment, job.buyer) {
            (PaymentStart::Cash, Buyer::Cashier(staff)) => {
                (PaymentMethod::Cash, "cash", Some(crate::payments::open_shift_of(tx, staff).await?))
            }
            (PaymentStart::Partner, Buyer::Partner(_)) => (PaymentMethod::Partner, "partner", None),
            (PaymentStart::Cash, _) => {
                return Err(SalesError::invalid("method", "cash is taken by a cashier at a counter"));
            }
            _ => return Err(SalesError::invalid("method", "only a partner collects payment itself")),
        };
        let now_us = job.now.unix_micros();
        let order = OrderId::new();
        let payment = PaymentId::new();
        let customer = order_customer(job.buyer, items.iter().filter_map(|i| media.get(&i.medium_id)));
        let (partner, staff) = seller_columns(job.buyer);
        rows.orders.push(OrderRow {
            id: order,
            owner: job.buyer.owner(),
            customer_id: customer.map(|c| c.to_db()),
            partner_id: partner.map(|p| p.to_db()),
            staff_id: staff.map(|s| s.to_db()),
            channel: job.buyer.channel().as_str(),
            cart_id: None,
            status: OrderStatus::Paid.as_str(),
            total_minor: total.amount_minor,
            currency: total.currency.code(),
            created_at_us: now_us,
            paid_at_us: Some(now_us),
        });
        rows.keys.push(KeyRow { owner: job.buyer.owner(), key: job.key.clone(), order });
        rows.payments.push(PaymentRow {
            id: payment,
            order,
            method: method.as_str(),
            gateway: gateway.to_owned(),
            status: PaymentStatus::Approved.as_str(),
            amount_minor: total.amount_minor,
            currency: total.currency.code(),
            variable_symbol: None,
            shift_id: shift.map(|s| s.to_db()),
            created_at_us: now_us,
            decided_at_us: Some(now_us),
        });
        let mut lines = Vec::with_capacity(items.len());
        let mut views = Vec::with_capacity(items.len());
        for ((position, item), (quote, quote_json)) in (1_i64..).zip(items).zip(&job.quotes) {
            let record =
                media.get_mut(&item.medium_id).ok_or_else(|| SalesError::not_found("medium", item.medium_id))?;
            let new = NewEntitlement {
                order: Some(order),
                medium: item.medium_id,
                medium_kind: record.medium.kind,
                quote,
                amount: quote.price,
                valid_from: None,
                valid_until: None,
                trips: None,
            };
            let serial = if entitlements::needs_serial(&new) {
                let serial = record.next_contract_serial;
                entitlements::check_serial(item.medium_id, serial)?;
                record.next_contract_serial += 1;
                rows.serials_used.insert(item.medium_id);
                Some(serial)
            } else {
                None
            };
            let row = entitlements::new_row(&new, serial, quote_json.clone(), job.now)?;
            views.push(entitlements::view_of(&row, quote)?);
            rows.entitlements.push(row);
            if quote.kind == ProductKind::StoredValue {
                rows.events.push(MediaEventRow {
                    medium: item.medium_id,
                    at_us: now_us,
                    kind: "topup",
                    station: None,
                    amount_minor: Some(quote.price.amount_minor),
                    currency: Some(quote.price.currency.code()),
                });
            }
            rows.items.push(OrderItemRow {
                order,
                position,
                medium: item.medium_id,
                quote_json: quote_json.clone(),
                price_minor: quote.price.amount_minor,
            });
            lines.push(OrderItem {
                position: u32::try_from(position).unwrap_or(u32::MAX),
                medium_id: item.medium_id,
                quote: quote.clone(),
            });
        }
        // One entry for the whole sale: the order, its payment and its approval happened as
        // one act, in one transaction.
        let details = serde_json::json!({
            "channel": job.buyer.channel(),
            "total": total,
            "items": items.len(),
            "payment": payment,
            "method": method,
        });
        rows.audit.push((&job.ctx, job.now, AuditEvent::ok("order.sell", "order", order).details(details)));
        let answer = Order {
            id: order,
            channel: job.buyer.channel(),
            status: OrderStatus::Paid,
            customer_id: customer,
            partner_id: partner,
            staff_id: staff,
            total,
            items: lines.clone(),
            payments: vec![Payment {
                id: payment,
                order_id: order,
                method,
                gateway: gateway.to_owned(),
                status: PaymentStatus::Approved,
                amount: total,
                variable_symbol: None,
                gateway_reference: None,
                failure: None,
                redirect_url: None,
                created_at: job.now,
                decided_at: Some(job.now),
            }],
            entitlements: views,
            created_at: job.now,
            paid_at: Some(job.now),
        };
        if customer.is_some() {
            let head = OrderHead {
                id: order,
                channel: job.buyer.channel(),
                status: OrderStatus::Paid,
                customer_id: customer,
                partner_id: partner,
                staff_id: staff,
                total,
                created_at: job.now,
                paid_at: Some(job.now),
            };
            rows.receipts.push((head, lines));
        }
        batch.absorb(rows);
        Ok(Some(answer))
    }

    /// One sale inside the batch's transaction, between a savepoint and its release.
    async fn one_sale(&self, tx: &mut Tx, job: &Job) -> Result<OrderId, SalesError> {
        tx.savepoint().await?;
        match self.sale_in(tx, job).await {
            Ok(order) => {
                tx.release_savepoint().await?;
                Ok(order)
            }
            Err(error) => {
                tx.rollback_to_savepoint().await?;
                Err(error)
            }
        }
    }

    /// One sale through the ordinary order and payment code (the batch's fallback).
    async fn sale_in(&self, tx: &mut Tx, job: &Job) -> Result<OrderId, SalesError> {
        let owner = job.buyer.owner();
        if let Some(existing) = crate::orders::order_by_key(tx, &owner, &job.key).await? {
            // A retry: the first call's audit entry stands for this one.
            job.ctx.mark_recorded();
            return Ok(existing);
        }
        let order = self
            .create_order_in(tx, &job.tariff, &job.ctx, job.buyer, &job.request.items, &job.key, None, job.now)
            .await?;
        self.start_payment_in(tx, &job.ctx, job.buyer, order, &job.request.payment, job.now).await?;
        Ok(order)
    }
}

/// How many orders are paid and how many payments approved: the two must always agree
/// (one approved payment per paid order), and a benchmark compares them with the sales
/// it was told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaidCounts {
    /// Orders with status paid.
    pub paid_orders: i64,
    /// Payments with status approved.
    pub approved_payments: i64,
}

impl Sales {
    /// Counts paid orders and approved payments.
    pub async fn paid_counts(&self) -> Result<PaidCounts, SalesError> {
        let paid_orders: i64 = smartticket_store::sql!(self.db().reader(), |c| {
            sqlx::query_scalar("SELECT count(*) FROM orders WHERE status = 'paid'").fetch_one(c).await
        })?;
        let approved_payments: i64 = smartticket_store::sql!(self.db().reader(), |c| {
            sqlx::query_scalar("SELECT count(*) FROM payments WHERE status = 'approved'").fetch_one(c).await
        })?;
        Ok(PaidCounts { paid_orders, approved_payments })
    }
}
