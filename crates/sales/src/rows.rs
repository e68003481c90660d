//! The one place selling's main rows are inserted: orders, their idempotency keys and
//! lines, payments, entitlements and media events. Every writer takes a slice, so a single
//! change and a batch of hundreds (group commit, see [`crate::sell`]) share one SQL text
//! and one column order.

use smartticket_core::id::{EntitlementId, MediumId, OrderId, PaymentId};
use smartticket_store::{Tx, sql};

use crate::SalesError;

// Rows per statement: see `Tx::statement_chunks`.

/// An order as inserted.
pub(crate) struct OrderRow {
    pub id: OrderId,
    pub owner: String,
    pub customer_id: Option<String>,
    pub partner_id: Option<String>,
    pub staff_id: Option<String>,
    pub channel: &'static str,
    pub cart_id: Option<String>,
    pub status: &'static str,
    pub total_minor: i64,
    pub currency: &'static str,
    pub created_at_us: i64,
    pub paid_at_us: Option<i64>,
}

/// An idempotency key naming an order.
pub(crate) struct KeyRow {
    pub owner: String,
    pub key: String,
    pub order: OrderId,
}

/// An order line as inserted.
pub(crate) struct OrderItemRow {
    pub order: OrderId,
    pub position: i64,
    pub medium: MediumId,
    pub quote_json: String,
    pub price_minor: i64,
}

/// A payment as inserted.
pub(crate) struct PaymentRow {
    pub id: PaymentId,
    pub order: OrderId,
    pub method: &'static str,
    pub gateway: String,
    pub status: &'static str,
    pub amount_minor: i64,
    pub currency: &'static str,
    pub variable_symbol: Option<String>,
    pub shift_id: Option<String>,
    pub created_at_us: i64,
    pub decided_at_us: Option<i64>,
}

/// An entitlement as inserted.
pub(crate) struct EntitlementRow {
    pub id: EntitlementId,
    pub order: Option<OrderId>,
    pub medium: MediumId,
    pub kind: &'static str,
    pub status: &'static str,
    pub quote_json: String,
    pub product_code: String,
    pub discount_code: String,
    pub zones_mask: i64,
    pub valid_from_us: Option<i64>,
    pub valid_until_us: Option<i64>,
    pub trips: Option<i64>,
    pub amount_minor: i64,
    pub currency: &'static str,
    pub contract_serial: Option<i64>,
    pub external_ticket: Option<String>,
    pub created_at_us: i64,
}

/// Something a medium did, as the back office learns it.
pub(crate) struct MediaEventRow {
    pub medium: MediumId,
    pub at_us: i64,
    pub kind: &'static str,
    pub station: Option<String>,
    pub amount_minor: Option<i64>,
    pub currency: Option<&'static str>,
}

pub(crate) async fn insert_orders(tx: &mut Tx, rows: &[OrderRow]) -> Result<(), SalesError> {
    for chunk in tx.statement_chunks(rows) {
        sql!(tx.conn(), |c| {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO orders (id, owner, customer_id, partner_id, staff_id, channel, cart_id, status, total_minor, \
                 currency, created_at_us, paid_at_us, updated_at_us) ",
            );
            insert.push_values(chunk, |mut b, r| {
                b.push_bind(r.id.to_db())
                    .push_bind(r.owner.clone())
                    .push_bind(r.customer_id.clone())
                    .push_bind(r.partner_id.clone())
                    .push_bind(r.staff_id.clone())
                    .push_bind(r.channel)
                    .push_bind(r.cart_id.clone())
                    .push_bind(r.status)
                    .push_bind(r.total_minor)
                    .push_bind(r.currency)
                    .push_bind(r.created_at_us)
                    .push_bind(r.paid_at_us)
                    .push_bind(r.paid_at_us.unwrap_or(r.created_at_us));
            });
            insert.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

pub(crate) async fn insert_keys(tx: &mut Tx, rows: &[KeyRow]) -> Result<(), SalesError> {
    for chunk in tx.statement_chunks(rows) {
        sql!(tx.conn(), |c| {
            let mut insert = sqlx::QueryBuilder::new("INSERT INTO order_keys (owner, idempotency_key, order_id) ");
            insert.push_values(chunk, |mut b, r| {
                b.push_bind(r.owner.clone()).push_bind(r.key.clone()).push_bind(r.order.to_db());
            });
            insert.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

pub(crate) async fn insert_order_items(tx: &mut Tx, rows: &[OrderItemRow]) -> Result<(), SalesError> {
    for chunk in tx.statement_chunks(rows) {
        sql!(tx.conn(), |c| {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO order_items (id, order_id, position, medium_id, quote, price_minor) ",
            );
            insert.push_values(chunk, |mut b, r| {
                b.push_bind(format!("{}-{}", r.order.to_db(), r.position))
                    .push_bind(r.order.to_db())
                    .push_bind(r.position)
                    .push_bind(r.medium.to_db())
                    .push_bind(r.quote_json.clone())
                    .push_bind(r.price_minor);
            });
            insert.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

pub(crate) async fn insert_payments(tx: &mut Tx, rows: &[PaymentRow]) -> Result<(), SalesError> {
    for chunk in tx.statement_chunks(rows) {
        sql!(tx.conn(), |c| {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO payments (id, order_id, method, gateway, status, amount_minor, currency, variable_symbol, \
                 shift_id, created_at_us, decided_at_us) ",
            );
            insert.push_values(chunk, |mut b, r| {
                b.push_bind(r.id.to_db())
                    .push_bind(r.order.to_db())
                    .push_bind(r.method)
                    .push_bind(r.gateway.clone())
                    .push_bind(r.status)
                    .push_bind(r.amount_minor)
                    .push_bind(r.currency)
                    .push_bind(r.variable_symbol.clone())
                    .push_bind(r.shift_id.clone())
                    .push_bind(r.created_at_us)
                    .push_bind(r.decided_at_us);
            });
            insert.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

pub(crate) async fn insert_entitlements(tx: &mut Tx, rows: &[EntitlementRow]) -> Result<(), SalesError> {
    for chunk in tx.statement_chunks(rows) {
        sql!(tx.conn(), |c| {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO entitlements (id, order_id, medium_id, kind, status, quote, product_code, discount_code, \
                 zones_mask, valid_from_us, valid_until_us, trips, amount_minor, currency, contract_serial, \
                 external_ticket, created_at_us, updated_at_us) ",
            );
            insert.push_values(chunk, |mut b, r| {
                b.push_bind(r.id.to_db())
                    .push_bind(r.order.map(|o| o.to_db()))
                    .push_bind(r.medium.to_db())
                    .push_bind(r.kind)
                    .push_bind(r.status)
                    .push_bind(r.quote_json.clone())
                    .push_bind(r.product_code.clone())
                    .push_bind(r.discount_code.clone())
                    .push_bind(r.zones_mask)
                    .push_bind(r.valid_from_us)
                    .push_bind(r.valid_until_us)
                    .push_bind(r.trips)
                    .push_bind(r.amount_minor)
                    .push_bind(r.currency)
                    .push_bind(r.contract_serial)
                    .push_bind(r.external_ticket.clone())
                    .push_bind(r.created_at_us)
                    .push_bind(r.created_at_us);
            });
            insert.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

pub(crate) async fn insert_media_events(tx: &mut Tx, rows: &[MediaEventRow]) -> Result<(), SalesError> {
    for chunk in tx.statement_chunks(rows) {
        sql!(tx.conn(), |c| {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO media_events (medium_id, at_us, kind, station, amount_minor, currency) ",
            );
            insert.push_values(chunk, |mut b, r| {
                b.push_bind(r.medium.to_db())
                    .push_bind(r.at_us)
                    .push_bind(r.kind)
                    .push_bind(r.station.clone())
                    .push_bind(r.amount_minor)
                    .push_bind(r.currency);
            });
            insert.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

/// The idempotency keys of `owner` among `keys` that name an order already. (By owner:
/// the primary key starts with it, so this is an index lookup per key.)
pub(crate) async fn keys_named(tx: &mut Tx, owner: &str, keys: &[&str]) -> Result<Vec<KeyRow>, SalesError> {
    let mut found = Vec::new();
    for chunk in tx.statement_chunks(keys) {
        let rows: Vec<(String, String, String)> = sql!(tx.conn(), |c| {
            let mut select =
                sqlx::QueryBuilder::new("SELECT owner, idempotency_key, order_id FROM order_keys WHERE owner = ");
            select.push_bind(owner).push(" AND idempotency_key IN (");
            let mut list = select.separated(", ");
            for key in chunk {
                list.push_bind(*key);
            }
            select.push(")");
            select.build_query_as().fetch_all(c).await
        })?;
        for (owner, key, order) in rows {
            found.push(KeyRow { owner, key, order: smartticket_store::decode_id(&order, OrderId::from_db)? });
        }
    }
    Ok(found)
}

/// Moves a card's next contract serial forward to `next` (never back: the condition
/// refuses a concurrent writer's lower value).
pub(crate) async fn set_next_serial(tx: &mut Tx, medium: MediumId, next: i64) -> Result<(), SalesError> {
    let changed = sql!(tx.conn(), |c| {
        sqlx::query("UPDATE media SET next_contract_serial = $2 WHERE id = $1 AND next_contract_serial < $2")
            .bind(medium.to_db())
            .bind(next)
            .execute(c)
            .await
            .map(|r| r.rows_affected())
    })?;
    if changed != 1 {
        return Err(SalesError::Conflict(format!("medium {medium}'s contract serials changed meanwhile")));
    }
    Ok(())
}
