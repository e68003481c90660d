//! What a paid order gives: one entitlement per item. On a fare card it waits as
//! `pending_delivery` until the card is next presented to an online reader (see
//! [`crate::delivery`]); on an account-based medium (bank card token, phone, QR) it is
//! `active` at once and reaches validators through the greenlist.
//!
//! Entitlements are never deleted: a refund, a transfer to a replacement medium or a
//! correction changes the status and leaves the old row as the record of what was sold.

use serde::{Deserialize, Serialize};
use smartticket_catalog::{ProductKind, Quote};
use smartticket_core::id::{EntitlementId, MediumId, OrderId};
use smartticket_core::{Money, Timestamp};
use smartticket_store::{StoreError, Tx, decode_id, decode_time, sql};
use utoipa::ToSchema;

use crate::SalesError;
use crate::media::MediumKind;
use crate::orders::currency;
use crate::rows::{EntitlementRow as NewEntitlementRow, insert_entitlements};

/// What an entitlement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntitlementKind {
    /// A contract: single fare, time coupon or trips.
    Contract,
    /// Value for the card's purse.
    PurseLoad,
    /// A ticket for an event, issued by its ticket server.
    EventTicket,
}

impl EntitlementKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EntitlementKind::Contract => "contract",
            EntitlementKind::PurseLoad => "purse_load",
            EntitlementKind::EventTicket => "event_ticket",
        }
    }

    fn parse(text: &str) -> Option<EntitlementKind> {
        [EntitlementKind::Contract, EntitlementKind::PurseLoad, EntitlementKind::EventTicket]
            .into_iter()
            .find(|k| k.as_str() == text)
    }

    /// The kind a product gives.
    pub fn of(kind: ProductKind) -> EntitlementKind {
        match kind {
            ProductKind::StoredValue => EntitlementKind::PurseLoad,
            ProductKind::Event => EntitlementKind::EventTicket,
            _ => EntitlementKind::Contract,
        }
    }
}

/// Where an entitlement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntitlementStatus {
    /// Paid, waiting to be written to the card at its next online tap.
    PendingDelivery,
    /// Written to the card.
    Delivered,
    /// In force on an account-based medium (greenlist).
    Active,
    /// Paid back.
    Refunded,
    /// Moved to a replacement medium (see `transferred_to`).
    Transferred,
    /// Withdrawn by a correction.
    Cancelled,
}

impl EntitlementStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EntitlementStatus::PendingDelivery => "pending_delivery",
            EntitlementStatus::Delivered => "delivered",
            EntitlementStatus::Active => "active",
            EntitlementStatus::Refunded => "refunded",
            EntitlementStatus::Transferred => "transferred",
            EntitlementStatus::Cancelled => "cancelled",
        }
    }

    fn parse(text: &str) -> Option<EntitlementStatus> {
        [
            EntitlementStatus::PendingDelivery,
            EntitlementStatus::Delivered,
            EntitlementStatus::Active,
            EntitlementStatus::Refunded,
            EntitlementStatus::Transferred,
            EntitlementStatus::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// Whether it still gives the right to travel (or will, once delivered).
    pub fn is_in_force(self) -> bool {
        matches!(self, EntitlementStatus::PendingDelivery | EntitlementStatus::Delivered | EntitlementStatus::Active)
    }
}

/// An entitlement as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Entitlement {
    /// Id.
    pub id: EntitlementId,
    /// The order that paid for it; absent for one granted by a correction.
    pub order_id: Option<OrderId>,
    /// The medium it is on.
    pub medium_id: MediumId,
    /// Kind.
    pub kind: EntitlementKind,
    /// Status.
    pub status: EntitlementStatus,
    /// Product code.
    pub product: String,
    /// Product name.
    pub product_name: String,
    /// Discount category.
    pub discount: String,
    /// Zones covered.
    pub zones: Vec<u8>,
    /// Start of validity.
    pub valid_from: Option<Timestamp>,
    /// End of validity (exclusive).
    pub valid_until: Option<Timestamp>,
    /// Trips, for trip products.
    pub trips: Option<u16>,
    /// Price paid, or value to load.
    pub amount: Money,
    /// The contract's serial on the card (fare cards).
    pub contract_serial: Option<u32>,
    /// When it was written to the card.
    pub delivered_at: Option<Timestamp>,
    /// The ticket server's ticket code (event tickets).
    pub external_ticket: Option<String>,
    /// The entitlement that replaced this one after a transfer.
    pub transferred_to: Option<EntitlementId>,
    /// When it was created.
    pub created_at: Timestamp,
}

/// Bit `n-1` for zone `n` (zones are 1–32, as on the card).
pub fn zones_mask(zones: &[u8]) -> u32 {
    zones.iter().filter(|z| (1..=32).contains(*z)).fold(0, |mask, zone| mask | (1_u32 << (zone - 1)))
}

/// The zones of a mask, ascending.
pub fn zones_of(mask: u32) -> Vec<u8> {
    (1..=32_u8).filter(|zone| mask & (1_u32 << (zone - 1)) != 0).collect()
}

#[derive(sqlx::FromRow)]
struct EntitlementRow {
    id: String,
    order_id: Option<String>,
    medium_id: String,
    kind: String,
    status: String,
    quote: String,
    zones_mask: i64,
    amount_minor: i64,
    currency: String,
    contract_serial: Option<i64>,
    delivered_at_us: Option<i64>,
    external_ticket: Option<String>,
    transferred_to: Option<String>,
    created_at_us: i64,
    valid_from_us: Option<i64>,
    valid_until_us: Option<i64>,
    trips: Option<i64>,
}

pub(crate) const ENTITLEMENT_COLUMNS: &str = "id, order_id, medium_id, kind, status, quote, zones_mask, amount_minor, \
    currency, contract_serial, delivered_at_us, external_ticket, transferred_to, created_at_us, valid_from_us, \
    valid_until_us, trips";

fn from_row(row: EntitlementRow) -> Result<Entitlement, SalesError> {
    let corrupt = |what: &str| SalesError::Store(StoreError::Corrupt(format!("entitlement {}: {what}", row.id)));
    let quote: Quote = serde_json::from_str(&row.quote).map_err(|_| corrupt("quote"))?;
    Ok(Entitlement {
        id: decode_id(&row.id, EntitlementId::from_db)?,
        order_id: row.order_id.as_deref().map(|o| decode_id(o, OrderId::from_db)).transpose()?,
        medium_id: decode_id(&row.medium_id, MediumId::from_db)?,
        kind: EntitlementKind::parse(&row.kind).ok_or_else(|| corrupt("kind"))?,
        status: EntitlementStatus::parse(&row.status).ok_or_else(|| corrupt("status"))?,
        product: quote.product,
        product_name: quote.product_name,
        discount: quote.discount,
        zones: zones_of(u32::try_from(row.zones_mask).map_err(|_| corrupt("zones"))?),
        // Validity and trips are the row's, not the quote's: corrections change them.
        valid_from: row.valid_from_us.map(decode_time).transpose()?,
        valid_until: row.valid_until_us.map(decode_time).transpose()?,
        trips: row.trips.map(|t| u16::try_from(t).map_err(|_| corrupt("trips"))).transpose()?,
        amount: Money::new(row.amount_minor, currency(&row.currency)?),
        contract_serial: row.contract_serial.map(|s| u32::try_from(s).map_err(|_| corrupt("serial"))).transpose()?,
        delivered_at: row.delivered_at_us.map(decode_time).transpose()?,
        external_ticket: row.external_ticket,
        transferred_to: row.transferred_to.as_deref().map(|t| decode_id(t, EntitlementId::from_db)).transpose()?,
        created_at: decode_time(row.created_at_us)?,
    })
}

async fn select_where(tx: &mut Tx, condition: &'static str, value: &str) -> Result<Vec<Entitlement>, SalesError> {
    let rows: Vec<EntitlementRow> = sql!(tx.conn(), |c| {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ENTITLEMENT_COLUMNS} FROM entitlements WHERE {condition} ORDER BY created_at_us, id LIMIT 1000"
        )))
        .bind(value)
        .fetch_all(c)
        .await
    })?;
    rows.into_iter().map(from_row).collect()
}

/// The entitlements an order gave.
pub(crate) async fn of_order(tx: &mut Tx, order: OrderId) -> Result<Vec<Entitlement>, SalesError> {
    select_where(tx, "order_id = $1", &order.to_db()).await
}

/// A medium's entitlements, oldest first (bounded: a card holds a handful at a time).
pub(crate) async fn of_medium(tx: &mut Tx, medium: MediumId) -> Result<Vec<Entitlement>, SalesError> {
    select_where(tx, "medium_id = $1", &medium.to_db()).await
}

/// One entitlement.
pub(crate) async fn fetch(tx: &mut Tx, id: EntitlementId) -> Result<Entitlement, SalesError> {
    select_where(tx, "id = $1", &id.to_db())
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| SalesError::not_found("entitlement", id))
}

/// What to create.
pub(crate) struct NewEntitlement<'a> {
    pub order: Option<OrderId>,
    pub medium: MediumId,
    pub medium_kind: MediumKind,
    pub quote: &'a Quote,
    pub amount: Money,
    /// Overrides of the quote (a transfer keeps what remains, a correction extends).
    pub valid_from: Option<Timestamp>,
    pub valid_until: Option<Timestamp>,
    pub trips: Option<u16>,
}

/// Whether an entitlement of `kind` for a medium of `medium_kind` waits for delivery to
/// a card (and so needs a contract serial).
pub(crate) fn goes_on_card(kind: EntitlementKind, medium_kind: MediumKind) -> bool {
    medium_kind == MediumKind::FareCard && kind != EntitlementKind::EventTicket
}

/// The row of a new entitlement: pending delivery on a fare card, active on account-based
/// media; `serial` is the card's contract serial for contracts on fare cards.
pub(crate) fn new_row(
    new: &NewEntitlement<'_>,
    serial: Option<i64>,
    quote_json: String,
    now: Timestamp,
) -> Result<NewEntitlementRow, SalesError> {
    let kind = EntitlementKind::of(new.quote.kind);
    let status = if goes_on_card(kind, new.medium_kind) {
        EntitlementStatus::PendingDelivery
    } else {
        EntitlementStatus::Active
    };
    let external_ticket = match kind {
        EntitlementKind::EventTicket => Some(crate::event_tickets::issue(new.quote)?),
        _ => None,
    };
    Ok(NewEntitlementRow {
        id: EntitlementId::new(),
        order: new.order,
        medium: new.medium,
        kind: kind.as_str(),
        status: status.as_str(),
        quote_json,
        product_code: new.quote.product.clone(),
        discount_code: new.quote.discount.clone(),
        zones_mask: i64::from(zones_mask(&new.quote.zones)),
        valid_from_us: new.valid_from.or(new.quote.valid_from).map(|t| t.unix_micros()),
        valid_until_us: new.valid_until.or(new.quote.valid_until).map(|t| t.unix_micros()),
        trips: new.trips.or(new.quote.trips).map(i64::from),
        amount_minor: new.amount.amount_minor,
        currency: new.amount.currency.code(),
        contract_serial: serial,
        external_ticket,
        created_at_us: now.unix_micros(),
    })
}

/// The API view of an entitlement just built by [`new_row`] (a batch answers without
/// reading back what it wrote).
pub(crate) fn view_of(row: &NewEntitlementRow, quote: &Quote) -> Result<Entitlement, SalesError> {
    let corrupt = |what: &str| SalesError::Store(StoreError::Corrupt(format!("new entitlement {}: {what}", row.id)));
    let time = |us: Option<i64>| us.map(decode_time).transpose();
    Ok(Entitlement {
        id: row.id,
        order_id: row.order,
        medium_id: row.medium,
        kind: EntitlementKind::parse(row.kind).ok_or_else(|| corrupt("kind"))?,
        status: EntitlementStatus::parse(row.status).ok_or_else(|| corrupt("status"))?,
        product: quote.product.clone(),
        product_name: quote.product_name.clone(),
        discount: quote.discount.clone(),
        zones: quote.zones.clone(),
        valid_from: time(row.valid_from_us)?,
        valid_until: time(row.valid_until_us)?,
        trips: row.trips.map(|t| u16::try_from(t).map_err(|_| corrupt("trips"))).transpose()?,
        amount: Money::new(row.amount_minor, currency(row.currency)?),
        contract_serial: row.contract_serial.map(|s| u32::try_from(s).map_err(|_| corrupt("serial"))).transpose()?,
        delivered_at: None,
        external_ticket: row.external_ticket.clone(),
        transferred_to: None,
        created_at: decode_time(row.created_at_us)?,
    })
}

/// Whether an entitlement needs a contract serial on its card.
pub(crate) fn needs_serial(new: &NewEntitlement<'_>) -> bool {
    let kind = EntitlementKind::of(new.quote.kind);
    kind == EntitlementKind::Contract && goes_on_card(kind, new.medium_kind)
}

/// Creates an entitlement, taking the card's next contract serial when it needs one.
pub(crate) async fn create(tx: &mut Tx, new: NewEntitlement<'_>, now: Timestamp) -> Result<EntitlementId, SalesError> {
    let serial = if needs_serial(&new) {
        let serial: i64 = sql!(tx.conn(), |c| {
            sqlx::query_scalar(
                "UPDATE media SET next_contract_serial = next_contract_serial + 1 WHERE id = $1 \
                 RETURNING next_contract_serial - 1",
            )
            .bind(new.medium.to_db())
            .fetch_one(c)
            .await
        })?;
        check_serial(new.medium, serial)?;
        Some(serial)
    } else {
        None
    };
    let quote_json = serde_json::to_string(new.quote).map_err(|e| SalesError::invalid("quote", e.to_string()))?;
    let row = new_row(&new, serial, quote_json, now)?;
    let id = row.id;
    insert_entitlements(tx, &[row]).await?;
    Ok(id)
}

/// Refuses a serial a card contract cannot hold.
pub(crate) fn check_serial(medium: MediumId, serial: i64) -> Result<(), SalesError> {
    if (1..=i64::from(u32::MAX)).contains(&serial) {
        Ok(())
    } else {
        Err(SalesError::Conflict(format!("medium {medium} has used every contract serial")))
    }
}

/// Sets an entitlement's status, only from one of `from` and only if nobody changed it
/// since it was read (so two racing changes cannot both win).
pub(crate) async fn set_status(
    tx: &mut Tx,
    id: EntitlementId,
    from: &[EntitlementStatus],
    to: EntitlementStatus,
    now: Timestamp,
) -> Result<(), SalesError> {
    let current = fetch(tx, id).await?.status;
    if !from.contains(&current) {
        return Err(SalesError::Conflict(format!(
            "entitlement {id} is {}; cannot make it {}",
            current.as_str(),
            to.as_str()
        )));
    }
    let changed = sql!(tx.conn(), |c| {
        sqlx::query("UPDATE entitlements SET status = $2, updated_at_us = $3 WHERE id = $1 AND status = $4")
            .bind(id.to_db())
            .bind(to.as_str())
            .bind(now.unix_micros())
            .bind(current.as_str())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
    })?;
    if changed != 1 {
        return Err(SalesError::Conflict(format!("entitlement {id} changed meanwhile; reload and try again")));
    }
    Ok(())
}

/// Marks a pending entitlement as written to its card.
pub(crate) async fn mark_delivered(
    tx: &mut Tx,
    id: EntitlementId,
    delivery: Option<smartticket_core::id::DeliverySessionId>,
    now: Timestamp,
) -> Result<(), SalesError> {
    let changed = sql!(tx.conn(), |c| {
        sqlx::query(
            "UPDATE entitlements SET status = 'delivered', delivered_at_us = $2, delivery_id = $3, updated_at_us = $2 \
             WHERE id = $1 AND status = 'pending_delivery'",
        )
        .bind(id.to_db())
        .bind(now.unix_micros())
        .bind(delivery.map(|d| d.to_db()))
        .execute(c)
        .await
        .map(|r| r.rows_affected())
    })?;
    if changed != 1 {
        return Err(SalesError::Conflict(format!("entitlement {id} is no longer waiting for delivery")));
    }
    Ok(())
}

/// Sends a delivered contract whose terms changed back to the card under a new serial
/// (the card keeps the old one until it ends, which the new one outlasts).
pub(crate) async fn redeliver(tx: &mut Tx, id: EntitlementId, now: Timestamp) -> Result<(), SalesError> {
    let entitlement = fetch(tx, id).await?;
    let serial: i64 = sql!(tx.conn(), |c| {
        sqlx::query_scalar(
            "UPDATE media SET next_contract_serial = next_contract_serial + 1 WHERE id = $1 RETURNING next_contract_serial - 1",
        )
        .bind(entitlement.medium_id.to_db())
        .fetch_one(c)
        .await
    })?;
    let changed = sql!(tx.conn(), |c| {
        sqlx::query(
            "UPDATE entitlements SET status = 'pending_delivery', contract_serial = $2, delivered_at_us = NULL, \
             delivery_id = NULL, updated_at_us = $3 WHERE id = $1 AND status = 'delivered'",
        )
        .bind(id.to_db())
        .bind(serial)
        .bind(now.unix_micros())
        .execute(c)
        .await
        .map(|r| r.rows_affected())
    })?;
    if changed != 1 {
        return Err(SalesError::Conflict(format!("entitlement {id} changed meanwhile")));
    }
    Ok(())
}

impl crate::Sales {
    /// What a medium carries and will carry, if `scope` may see the medium.
    pub async fn entitlements_of(
        &self,
        scope: crate::media::Scope,
        medium: MediumId,
    ) -> Result<Vec<Entitlement>, SalesError> {
        let mut tx = self.db().begin_read().await?;
        crate::media::fetch_visible(&mut tx, scope, medium).await?;
        let entitlements = of_medium(&mut tx, medium).await?;
        tx.rollback().await?;
        Ok(entitlements)
    }
}
