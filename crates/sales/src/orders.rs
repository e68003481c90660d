//! Carts and orders. A buyer (a customer in the e-shop, a cashier at a counter, a partner
//! through its API key) fills one open cart, or sends the items at once; checkout prices
//! every item from the catalogue in force today and freezes the result as an order.
//!
//! Double clicks and retries: an order is identified by its buyer and an idempotency key,
//! and a cart becomes at most one order (a unique column, so two concurrent checkouts
//! race to one winner and the loser is answered with the winner's order).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use smartticket_catalog::{ProductKind, Quote, QuoteRequest, ZoneChoice};
use smartticket_core::id::{CartId, CartItemId, CustomerId, MediumId, OrderId, PartnerId, StaffId};
use smartticket_core::{Currency, Money, Timestamp};
use smartticket_identity::AuditCtx;
use smartticket_identity::audit::{self, AuditEvent};
use smartticket_store::{StoreError, Tx, decode_id, decode_time, sql};
use utoipa::ToSchema;

use crate::entitlements::Entitlement;
use crate::lifecycle::MediumStatus;
use crate::media::{MediumKind, MediumRecord, Scope, fetch_visible};
use crate::payments::Payment;
use crate::{Sales, SalesError};

/// Items in one cart or order: a family buying for its cards, never a bulk import.
pub const ITEMS_MAX: usize = 20;
/// Longest idempotency key.
pub const IDEMPOTENCY_KEY_CHARS_MAX: usize = 64;

/// Where a sale happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The passenger's e-shop.
    Eshop,
    /// A cashier at a counter.
    Counter,
    /// A partner through its API.
    Partner,
}

impl Channel {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Eshop => "eshop",
            Channel::Counter => "counter",
            Channel::Partner => "partner",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Channel> {
        [Channel::Eshop, Channel::Counter, Channel::Partner].into_iter().find(|c| c.as_str() == text)
    }
}

/// Who is buying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buyer {
    /// A passenger for their own media.
    Customer(CustomerId),
    /// A cashier for anyone's media.
    Cashier(StaffId),
    /// A partner for media it registered and anonymous cards.
    Partner(PartnerId),
}

impl Buyer {
    /// The owner column of carts and orders: the prefixed id, unique across kinds.
    pub(crate) fn owner(self) -> String {
        match self {
            Buyer::Customer(id) => id.to_string(),
            Buyer::Cashier(id) => id.to_string(),
            Buyer::Partner(id) => id.to_string(),
        }
    }

    /// Which media the buyer may sell for.
    pub fn scope(self) -> Scope {
        match self {
            Buyer::Customer(id) => Scope::Customer(id),
            Buyer::Cashier(_) => Scope::Staff,
            Buyer::Partner(id) => Scope::Partner(id),
        }
    }

    /// The channel the sale goes through.
    pub fn channel(self) -> Channel {
        match self {
            Buyer::Customer(_) => Channel::Eshop,
            Buyer::Cashier(_) => Channel::Counter,
            Buyer::Partner(_) => Channel::Partner,
        }
    }
}

/// One thing to buy: a product for a medium, with the wizard's choices (KIDSOK 3.1.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemRequest {
    /// The medium the product goes to.
    pub medium_id: MediumId,
    /// Product code.
    pub product: String,
    /// Discount category code (`adult` for the full fare).
    pub discount: String,
    /// Zones or a combi-zone, for products sold by zones.
    #[serde(default)]
    pub zones: ZoneChoice,
    /// First day of validity (network-local date); today when absent.
    #[serde(default)]
    pub start_date: Option<NaiveDate>,
    /// For stored value: the amount to load, in minor units.
    #[serde(default)]
    pub amount_minor: Option<i64>,
}

impl ItemRequest {
    pub(crate) fn quote_request(&self) -> QuoteRequest {
        QuoteRequest {
            product: self.product.clone(),
            discount: self.discount.clone(),
            zones: self.zones.clone(),
            start_date: self.start_date,
            amount_minor: self.amount_minor,
        }
    }
}

/// A line of the cart, priced as of now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CartItem {
    /// Id, to remove it.
    pub id: CartItemId,
    /// What was asked.
    pub request: ItemRequest,
    /// Today's price and validity; absent when the item can no longer be sold (then
    /// `problem` says why and checkout refuses until it is removed).
    pub quote: Option<Quote>,
    /// Why the item cannot be sold as it stands.
    pub problem: Option<String>,
}

/// The buyer's open cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Cart {
    /// Id; absent while nothing was ever added.
    pub id: Option<CartId>,
    /// The lines.
    pub items: Vec<CartItem>,
    /// The sum of the priced lines.
    pub total: Option<Money>,
}

/// Where an order is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Created, not paid.
    AwaitingPayment,
    /// Paid: its entitlements exist.
    Paid,
    /// Given up before payment.
    Cancelled,
    /// Paid back.
    Refunded,
}

impl OrderStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::AwaitingPayment => "awaiting_payment",
            OrderStatus::Paid => "paid",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Refunded => "refunded",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<OrderStatus> {
        [OrderStatus::AwaitingPayment, OrderStatus::Paid, OrderStatus::Cancelled, OrderStatus::Refunded]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// One priced line of an order, frozen at checkout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct OrderItem {
    /// 1-based position.
    pub position: u32,
    /// The medium.
    pub medium_id: MediumId,
    /// The quote as sold.
    pub quote: Quote,
}

/// An order with its items, payments and what it gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Order {
    /// Id.
    pub id: OrderId,
    /// Channel.
    pub channel: Channel,
    /// Status.
    pub status: OrderStatus,
    /// The passenger the media belong to, when there is one.
    pub customer_id: Option<CustomerId>,
    /// The partner that sold it.
    pub partner_id: Option<PartnerId>,
    /// The cashier that sold it.
    pub staff_id: Option<StaffId>,
    /// The sum of the items.
    pub total: Money,
    /// The lines.
    pub items: Vec<OrderItem>,
    /// Payment attempts, oldest first.
    pub payments: Vec<Payment>,
    /// What the paid order gave, by item.
    pub entitlements: Vec<Entitlement>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was paid.
    pub paid_at: Option<Timestamp>,
}

/// An order's header row, as stored.
#[derive(Debug, Clone)]
pub(crate) struct OrderHead {
    pub id: OrderId,
    pub channel: Channel,
    pub status: OrderStatus,
    pub customer_id: Option<CustomerId>,
    pub partner_id: Option<PartnerId>,
    pub staff_id: Option<StaffId>,
    pub total: Money,
    pub created_at: Timestamp,
    pub paid_at: Option<Timestamp>,
}

impl OrderHead {
    /// Whether `scope` may see this order: staff all, a customer theirs, a partner its
    /// own sales.
    pub fn visible_to(&self, scope: Scope) -> bool {
        match scope {
            Scope::Staff => true,
            Scope::Customer(customer) => self.customer_id == Some(customer),
            Scope::Partner(partner) => self.partner_id == Some(partner),
        }
    }
}

type OrderRow =
    (String, String, String, Option<String>, Option<String>, Option<String>, String, i64, String, i64, Option<i64>);
const ORDER_COLUMNS: &str =
    "id, channel, status, customer_id, partner_id, staff_id, owner, total_minor, currency, created_at_us, paid_at_us";

fn corrupt(what: String) -> SalesError {
    SalesError::Store(StoreError::Corrupt(what))
}

pub(crate) fn currency(code: &str) -> Result<Currency, SalesError> {
    Currency::from_code(code).map_err(|_| corrupt(format!("currency `{code}`")))
}

fn head_from_row(row: OrderRow) -> Result<OrderHead, SalesError> {
    let (id, channel, status, customer, partner, staff, _owner, total, currency_code, created, paid) = row;
    Ok(OrderHead {
        channel: Channel::parse(&channel).ok_or_else(|| corrupt(format!("order {id}: channel")))?,
        status: OrderStatus::parse(&status).ok_or_else(|| corrupt(format!("order {id}: status")))?,
        customer_id: customer.as_deref().map(|c| decode_id(c, CustomerId::from_db)).transpose()?,
        partner_id: partner.as_deref().map(|p| decode_id(p, PartnerId::from_db)).transpose()?,
        staff_id: staff.as_deref().map(|s| decode_id(s, StaffId::from_db)).transpose()?,
        total: Money::new(total, currency(&currency_code)?),
        created_at: decode_time(created)?,
        paid_at: paid.map(decode_time).transpose()?,
        id: decode_id(&id, OrderId::from_db)?,
    })
}

/// The order header `id`, if `scope` may see it, inside a transaction.
pub(crate) async fn fetch_head(tx: &mut Tx, scope: Scope, id: OrderId) -> Result<OrderHead, SalesError> {
    let row: Option<OrderRow> = sql!(tx.conn(), |c| {
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1")))
            .bind(id.to_db())
            .fetch_optional(c)
            .await
    })?;
    row.map(head_from_row)
        .transpose()?
        .filter(|head| head.visible_to(scope))
        .ok_or_else(|| SalesError::not_found("order", id))
}

/// The order an idempotency key of `owner` names.
pub(crate) async fn order_by_key(tx: &mut Tx, owner: &str, key: &str) -> Result<Option<OrderId>, SalesError> {
    let id: Option<String> = sql!(tx.conn(), |c| {
        sqlx::query_scalar("SELECT order_id FROM order_keys WHERE owner = $1 AND idempotency_key = $2")
            .bind(owner)
            .bind(key)
            .fetch_optional(c)
            .await
    })?;
    Ok(id.as_deref().map(|id| decode_id(id, OrderId::from_db)).transpose()?)
}

/// Records that `key` of `owner` names `order`.
async fn remember_key(tx: &mut Tx, owner: &str, key: &str, order: OrderId) -> Result<(), SalesError> {
    crate::rows::insert_keys(tx, &[crate::rows::KeyRow { owner: owner.to_owned(), key: key.to_owned(), order }]).await
}

/// The order a cart became.
async fn order_of_cart(tx: &mut Tx, cart: CartId) -> Result<Option<OrderId>, SalesError> {
    let id: Option<String> = sql!(tx.conn(), |c| {
        sqlx::query_scalar("SELECT id FROM orders WHERE cart_id = $1").bind(cart.to_db()).fetch_optional(c).await
    })?;
    Ok(id.as_deref().map(|id| decode_id(id, OrderId::from_db)).transpose()?)
}

/// Checks an idempotency key: 1–64 characters of letters, digits, `-`, `_`, `.`, `:`.
pub fn check_idempotency_key(key: &str) -> Result<&str, SalesError> {
    let ok = !key.is_empty()
        && key.chars().count() <= IDEMPOTENCY_KEY_CHARS_MAX
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if ok {
        Ok(key)
    } else {
        Err(SalesError::invalid(
            "idempotency_key",
            format!("1–{IDEMPOTENCY_KEY_CHARS_MAX} letters, digits, '-', '_', '.' or ':'"),
        ))
    }
}

/// The catalogue in force and the network's date, resolved before a transaction opens:
/// quoting inside one must not wait for a second connection from the pool.
#[derive(Clone)]
pub(crate) struct Tariff {
    pub catalog: std::sync::Arc<smartticket_catalog::Catalog>,
    pub today: NaiveDate,
}

/// Checks what can be decided without the database: the medium can receive products,
/// the catalogue quotes the item, stored value goes to a fare card. The discount approval
/// (which needs the database) is the caller's.
pub(crate) fn check_sellable(
    tariff: &Tariff,
    medium: &MediumRecord,
    item: &ItemRequest,
    now: Timestamp,
) -> Result<Quote, SalesError> {
    let quote = tariff
        .catalog
        .quote(&item.quote_request(), tariff.today, now)
        .map_err(smartticket_catalog::CatalogError::from)?;
    check_medium_takes(medium, item, &quote)?;
    Ok(quote)
}

/// Checks that `medium` can receive the quoted product: it is inactive or active, and
/// stored value goes to a fare card only.
pub(crate) fn check_medium_takes(medium: &MediumRecord, item: &ItemRequest, quote: &Quote) -> Result<(), SalesError> {
    if !matches!(medium.medium.status, MediumStatus::Inactive | MediumStatus::Active) {
        return Err(SalesError::invalid(
            "medium_id",
            format!(
                "medium {} is {}; products can only be bought for inactive or active media",
                item.medium_id, medium.medium.status
            ),
        ));
    }
    if quote.kind == ProductKind::StoredValue && medium.medium.kind != MediumKind::FareCard {
        return Err(SalesError::invalid("product", "stored value is loaded onto fare cards only"));
    }
    Ok(())
}

/// The passenger an order is for: the buyer in the e-shop, else the one owner of the
/// media when they share one (a counter sale for a registered card).
pub(crate) fn order_customer<'a>(
    buyer: Buyer,
    media: impl IntoIterator<Item = &'a MediumRecord>,
) -> Option<CustomerId> {
    if let Buyer::Customer(id) = buyer {
        return Some(id);
    }
    let mut owners = media.into_iter().map(|m| m.medium.customer_id);
    let first = owners.next().flatten()?;
    owners.all(|owner| owner == Some(first)).then_some(first)
}

/// The partner and the cashier columns of an order sold by `buyer`.
pub(crate) fn seller_columns(buyer: Buyer) -> (Option<PartnerId>, Option<StaffId>) {
    match buyer {
        Buyer::Partner(id) => (Some(id), None),
        Buyer::Cashier(id) => (None, Some(id)),
        Buyer::Customer(_) => (None, None),
    }
}

/// The audit entry of a new order.
pub(crate) fn order_created(id: OrderId, buyer: Buyer, total: Money, items: usize, cart: Option<CartId>) -> AuditEvent {
    let details = json!({ "channel": buyer.channel(), "total": total, "items": items, "cart": cart });
    AuditEvent::ok("order.create", "order", id).details(details)
}

/// An item checked and priced for a sale.
pub(crate) struct Priced {
    pub request: ItemRequest,
    pub medium: MediumRecord,
    pub quote: Quote,
}

impl Sales {
    /// Checks that `item` can be sold by `buyer` now, and prices it from the catalogue in
    /// force today. Each refusal names the field and the reason.
    pub(crate) async fn price_item(
        &self,
        tx: &mut Tx,
        tariff: &Tariff,
        buyer: Buyer,
        item: &ItemRequest,
        now: Timestamp,
    ) -> Result<Priced, SalesError> {
        let medium = fetch_visible(tx, buyer.scope(), item.medium_id).await?;
        let quote = check_sellable(tariff, &medium, item, now)?;
        if quote.requires_approval {
            let customer = medium.medium.customer_id.ok_or_else(|| {
                SalesError::invalid(
                    "discount",
                    format!("discount {} needs an approval, which an anonymous card cannot hold", quote.discount),
                )
            })?;
            let until = quote.valid_until.unwrap_or(now);
            if !crate::discounts::holds_approval(tx, customer, &quote.discount, now, until).await? {
                return Err(SalesError::DiscountNotApproved {
                    discount: quote.discount.clone(),
                    until: quote.valid_until,
                });
            }
        }
        Ok(Priced { request: item.clone(), medium, quote })
    }

    /// The catalogue in force now.
    pub(crate) async fn tariff(&self) -> Result<Tariff, SalesError> {
        let (today, catalog) = self.catalog().in_force_at(self.now()).await?;
        Ok(Tariff { catalog, today })
    }

    async fn open_cart_id(tx: &mut Tx, owner: &str) -> Result<Option<CartId>, SalesError> {
        let id: Option<String> = sql!(tx.conn(), |c| {
            sqlx::query_scalar("SELECT id FROM carts WHERE owner = $1 AND status = 'open'")
                .bind(owner)
                .fetch_optional(c)
                .await
        })?;
        id.as_deref().map(|id| decode_id(id, CartId::from_db)).transpose().map_err(SalesError::from)
    }

    async fn cart_lines(tx: &mut Tx, cart: CartId) -> Result<Vec<(CartItemId, ItemRequest)>, SalesError> {
        let rows: Vec<(String, String)> = sql!(tx.conn(), |c| {
            sqlx::query_as("SELECT id, request FROM cart_items WHERE cart_id = $1 ORDER BY created_at_us, id")
                .bind(cart.to_db())
                .fetch_all(c)
                .await
        })?;
        rows.into_iter()
            .map(|(id, request)| {
                let request = serde_json::from_str(&request).map_err(|e| corrupt(format!("cart item {id}: {e}")))?;
                Ok((decode_id(&id, CartItemId::from_db)?, request))
            })
            .collect()
    }

    async fn cart_in(&self, tx: &mut Tx, tariff: &Tariff, buyer: Buyer, now: Timestamp) -> Result<Cart, SalesError> {
        let Some(cart) = Self::open_cart_id(tx, &buyer.owner()).await? else {
            return Ok(Cart { id: None, items: Vec::new(), total: None });
        };
        let mut items = Vec::new();
        for (id, request) in Self::cart_lines(tx, cart).await? {
            let (quote, problem) = match self.price_item(tx, tariff, buyer, &request, now).await {
                Ok(priced) => (Some(priced.quote), None),
                Err(SalesError::Store(e)) => return Err(SalesError::Store(e)),
                Err(refused) => (None, Some(refused.to_string())),
            };
            items.push(CartItem { id, request, quote, problem });
        }
        let priced: Vec<Money> = items.iter().filter_map(|i| i.quote.as_ref().map(|q| q.price)).collect();
        let total = match priced.first() {
            Some(first) => Some(
                Money::sum(first.currency, priced.iter().copied())
                    .map_err(|e| SalesError::invalid("items", e.to_string()))?,
            ),
            None => None,
        };
        Ok(Cart { id: Some(cart), items, total })
    }

    /// The buyer's open cart, priced as of now.
    pub async fn cart(&self, buyer: Buyer) -> Result<Cart, SalesError> {
        let now = self.now();
        // A read, but through a transaction so every line is priced against one snapshot.
        let tariff = self.tariff().await?;
        let mut tx = self.db().begin_read().await?;
        let cart = self.cart_in(&mut tx, &tariff, buyer, now).await?;
        tx.rollback().await?;
        Ok(cart)
    }

    /// Adds a line to the buyer's open cart (opening one if needed), after checking it can
    /// be sold now.
    pub async fn add_to_cart(&self, ctx: &AuditCtx, buyer: Buyer, item: &ItemRequest) -> Result<Cart, SalesError> {
        let now = self.now();
        let owner = buyer.owner();
        let tariff = self.tariff().await?;
        let mut tx = self.db().begin().await?;
        self.price_item(&mut tx, &tariff, buyer, item, now).await?;
        let cart = match Self::open_cart_id(&mut tx, &owner).await? {
            Some(cart) => cart,
            None => {
                let cart = CartId::new();
                sql!(tx.conn(), |c| {
                    sqlx::query("INSERT INTO carts (id, owner, status, created_at_us, updated_at_us) VALUES ($1, $2, 'open', $3, $3)")
                        .bind(cart.to_db())
                        .bind(owner.as_str())
                        .bind(now.unix_micros())
                        .execute(c)
                        .await
                        .map(|r| r.rows_affected())
                })?;
                cart
            }
        };
        let count: i64 = sql!(tx.conn(), |c| {
            sqlx::query_scalar("SELECT count(*) FROM cart_items WHERE cart_id = $1")
                .bind(cart.to_db())
                .fetch_one(c)
                .await
        })?;
        if usize::try_from(count).unwrap_or(usize::MAX) >= ITEMS_MAX {
            return Err(SalesError::invalid("items", format!("a cart holds at most {ITEMS_MAX} items")));
        }
        let item_id = CartItemId::new();
        let request = serde_json::to_string(item).map_err(|e| SalesError::invalid("item", e.to_string()))?;
        sql!(tx.conn(), |c| {
            sqlx::query(
                "INSERT INTO cart_items (id, cart_id, request, medium_id, created_at_us) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(item_id.to_db())
            .bind(cart.to_db())
            .bind(request.as_str())
            .bind(item.medium_id.to_db())
            .bind(now.unix_micros())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        })?;
        Self::touch_cart(&mut tx, cart, now).await?;
        let details =
            json!({ "item": item_id, "medium": item.medium_id, "product": item.product, "discount": item.discount });
        audit::record(&mut tx, ctx, now, AuditEvent::ok("cart.add", "cart", cart).details(details)).await?;
        let view = self.cart_in(&mut tx, &tariff, buyer, now).await?;
        tx.commit().await?;
        Ok(view)
    }

    async fn touch_cart(tx: &mut Tx, cart: CartId, now: Timestamp) -> Result<(), SalesError> {
        sql!(tx.conn(), |c| {
            sqlx::query("UPDATE carts SET updated_at_us = $2 WHERE id = $1")
                .bind(cart.to_db())
                .bind(now.unix_micros())
                .execute(c)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Removes a line from the buyer's open cart.
    pub async fn remove_from_cart(&self, ctx: &AuditCtx, buyer: Buyer, item: CartItemId) -> Result<Cart, SalesError> {
        let now = self.now();
        let tariff = self.tariff().await?;
        let mut tx = self.db().begin().await?;
        let cart = Self::open_cart_id(&mut tx, &buyer.owner())
            .await?
            .ok_or_else(|| SalesError::not_found("cart item", item))?;
        let removed = sql!(tx.conn(), |c| {
            sqlx::query("DELETE FROM cart_items WHERE id = $1 AND cart_id = $2")
                .bind(item.to_db())
                .bind(cart.to_db())
                .execute(c)
                .await
                .map(|r| r.rows_affected())
        })?;
        if removed == 0 {
            return Err(SalesError::not_found("cart item", item));
        }
        Self::touch_cart(&mut tx, cart, now).await?;
        audit::record(&mut tx, ctx, now, AuditEvent::ok("cart.remove", "cart", cart).details(json!({ "item": item })))
            .await?;
        let view = self.cart_in(&mut tx, &tariff, buyer, now).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Turns the buyer's open cart into an order, priced now. The same idempotency key
    /// returns the same order; a cart already checked out by a concurrent request gives
    /// that request's order.
    pub async fn checkout(&self, ctx: &AuditCtx, buyer: Buyer, idempotency_key: &str) -> Result<Order, SalesError> {
        let key = check_idempotency_key(idempotency_key)?;
        let owner = buyer.owner();
        let now = self.now();
        let tariff = self.tariff().await?;
        let mut tx = self.db().begin().await?;
        if let Some(existing) = order_by_key(&mut tx, &owner, key).await? {
            tx.rollback().await?;
            return self.order(buyer.scope(), existing).await;
        }
        let cart = Self::open_cart_id(&mut tx, &owner)
            .await?
            .ok_or_else(|| SalesError::invalid("cart", "the cart is empty"))?;
        let lines = Self::cart_lines(&mut tx, cart).await?;
        if lines.is_empty() {
            return Err(SalesError::invalid("cart", "the cart is empty"));
        }
        let requests: Vec<ItemRequest> = lines.into_iter().map(|(_, request)| request).collect();
        let created = self.create_order_in(&mut tx, &tariff, ctx, buyer, &requests, key, Some(cart), now).await;
        let id = match created {
            Ok(id) => id,
            Err(SalesError::Store(e)) if e.is_unique_violation() => {
                // A concurrent checkout of this cart won: answer with its order, and let this
                // key name it too, so a retry gets the same answer.
                tx.rollback().await?;
                let mut tx = self.db().begin().await?;
                let winner = match order_by_key(&mut tx, &owner, key).await? {
                    Some(order) => order,
                    None => {
                        let winner = order_of_cart(&mut tx, cart).await?.ok_or(SalesError::Store(e))?;
                        remember_key(&mut tx, &owner, key, winner).await?;
                        winner
                    }
                };
                tx.commit().await?;
                return self.order(buyer.scope(), winner).await;
            }
            Err(other) => return Err(other),
        };
        let updated = sql!(tx.conn(), |c| {
            sqlx::query("UPDATE carts SET status = 'checked_out', updated_at_us = $2 WHERE id = $1 AND status = 'open'")
                .bind(cart.to_db())
                .bind(now.unix_micros())
                .execute(c)
                .await
                .map(|r| r.rows_affected())
        })?;
        if updated != 1 {
            return Err(SalesError::Conflict("the cart was checked out meanwhile; try again".into()));
        }
        tx.commit().await?;
        self.order(buyer.scope(), id).await
    }

    /// Creates an order from `items` directly (counters and partners, which sell in one
    /// call). The same idempotency key returns the same order, whatever the items.
    pub async fn create_order(
        &self,
        ctx: &AuditCtx,
        buyer: Buyer,
        items: &[ItemRequest],
        idempotency_key: &str,
    ) -> Result<Order, SalesError> {
        let key = check_idempotency_key(idempotency_key)?;
        let owner = buyer.owner();
        let now = self.now();
        let tariff = self.tariff().await?;
        let mut tx = self.db().begin().await?;
        if let Some(existing) = order_by_key(&mut tx, &owner, key).await? {
            tx.rollback().await?;
            return self.order(buyer.scope(), existing).await;
        }
        let id = match self.create_order_in(&mut tx, &tariff, ctx, buyer, items, key, None, now).await {
            Ok(id) => id,
            Err(SalesError::Store(e)) if e.is_unique_violation() => {
                // The same key sent twice at once: the other request created the order.
                tx.rollback().await?;
                let mut tx = self.db().begin().await?;
                let winner = order_by_key(&mut tx, &owner, key).await?;
                tx.rollback().await?;
                return self.order(buyer.scope(), winner.ok_or(SalesError::Store(e))?).await;
            }
            Err(other) => return Err(other),
        };
        tx.commit().await?;
        self.order(buyer.scope(), id).await
    }

    /// Prices `items` and inserts the order and its lines; the caller commits.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn create_order_in(
        &self,
        tx: &mut Tx,
        tariff: &Tariff,
        ctx: &AuditCtx,
        buyer: Buyer,
        items: &[ItemRequest],
        key: &str,
        cart: Option<CartId>,
        now: Timestamp,
    ) -> Result<OrderId, SalesError> {
        if items.is_empty() || items.len() > ITEMS_MAX {
            return Err(SalesError::invalid("items", format!("an order has 1 to {ITEMS_MAX} items")));
        }
        let mut priced = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let item = self.price_item(tx, tariff, buyer, item, now).await.map_err(|e| e.in_item(index))?;
            priced.push(item);
        }
        let currency =
            priced.first().map(|p| p.quote.price.currency).ok_or_else(|| SalesError::invalid("items", "no items"))?;
        let total = Money::sum(currency, priced.iter().map(|p| p.quote.price))
            .map_err(|e| SalesError::invalid("items", e.to_string()))?;
        let customer = order_customer(buyer, priced.iter().map(|p| &p.medium));
        let (partner, staff) = seller_columns(buyer);
        let id = OrderId::new();
        let order = crate::rows::OrderRow {
            id,
            owner: buyer.owner(),
            customer_id: customer.map(|c| c.to_db()),
            partner_id: partner.map(|p| p.to_db()),
            staff_id: staff.map(|s| s.to_db()),
            channel: buyer.channel().as_str(),
            cart_id: cart.map(|c| c.to_db()),
            status: OrderStatus::AwaitingPayment.as_str(),
            total_minor: total.amount_minor,
            currency: total.currency.code(),
            created_at_us: now.unix_micros(),
            paid_at_us: None,
        };
        crate::rows::insert_orders(tx, &[order]).await?;
        remember_key(tx, &buyer.owner(), key, id).await?;
        let lines = (1_i64..)
            .zip(&priced)
            .map(|(position, item)| {
                Ok(crate::rows::OrderItemRow {
                    order: id,
                    position,
                    medium: item.request.medium_id,
                    quote_json: serde_json::to_string(&item.quote)
                        .map_err(|e| SalesError::invalid("items", e.to_string()))?,
                    price_minor: item.quote.price.amount_minor,
                })
            })
            .collect::<Result<Vec<_>, SalesError>>()?;
        crate::rows::insert_order_items(tx, &lines).await?;
        audit::record(tx, ctx, now, order_created(id, buyer, total, priced.len(), cart)).await?;
        Ok(id)
    }

    pub(crate) async fn order_items(tx: &mut Tx, id: OrderId) -> Result<Vec<OrderItem>, SalesError> {
        let rows: Vec<(i64, String, String)> = sql!(tx.conn(), |c| {
            sqlx::query_as("SELECT position, medium_id, quote FROM order_items WHERE order_id = $1 ORDER BY position")
                .bind(id.to_db())
                .fetch_all(c)
                .await
        })?;
        rows.into_iter()
            .map(|(position, medium, quote)| {
                Ok(OrderItem {
                    position: u32::try_from(position).map_err(|_| corrupt(format!("order {id}: position")))?,
                    medium_id: decode_id(&medium, MediumId::from_db)?,
                    quote: serde_json::from_str(&quote).map_err(|e| corrupt(format!("order {id} quote: {e}")))?,
                })
            })
            .collect()
    }

    /// An order with everything about it, if `scope` may see it.
    pub async fn order(&self, scope: Scope, id: OrderId) -> Result<Order, SalesError> {
        let mut tx = self.db().begin_read().await?;
        let order = self.order_in(&mut tx, scope, id).await?;
        tx.rollback().await?;
        Ok(order)
    }

    pub(crate) async fn order_in(&self, tx: &mut Tx, scope: Scope, id: OrderId) -> Result<Order, SalesError> {
        let head = fetch_head(tx, scope, id).await?;
        let items = Self::order_items(tx, id).await?;
        let payments = self.payments_of(tx, id).await?;
        let entitlements = crate::entitlements::of_order(tx, id).await?;
        Ok(Order {
            id: head.id,
            channel: head.channel,
            status: head.status,
            customer_id: head.customer_id,
            partner_id: head.partner_id,
            staff_id: head.staff_id,
            total: head.total,
            items,
            payments,
            entitlements,
            created_at: head.created_at,
            paid_at: head.paid_at,
        })
    }

    /// Orders visible to `scope`, newest first; a customer's own, a partner's sales, or
    /// (staff) one customer's when `customer` is given.
    pub async fn orders(
        &self,
        scope: Scope,
        customer: Option<CustomerId>,
        page: &smartticket_core::PageSpec<String>,
    ) -> Result<smartticket_core::Page<OrderSummary>, SalesError> {
        let (column, value) = match (scope, customer) {
            (Scope::Customer(own), _) => ("customer_id", Some(own.to_db())),
            (Scope::Partner(partner), _) => ("partner_id", Some(partner.to_db())),
            (Scope::Staff, Some(customer)) => ("customer_id", Some(customer.to_db())),
            (Scope::Staff, None) => ("id", None),
        };
        let after = page.after.clone().unwrap_or_else(|| "~".to_owned());
        let limit = page.fetch_rows();
        let filter = if value.is_some() { format!("{column} = $3 AND") } else { String::new() };
        let rows: Vec<OrderRow> = sql!(self.db().reader(), |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {ORDER_COLUMNS} FROM orders WHERE {filter} id < $1 ORDER BY id DESC LIMIT $2"
            )))
            .bind(after.as_str())
            .bind(limit)
            .bind(value.as_deref())
            .fetch_all(c)
            .await
        })?;
        let summaries = rows
            .into_iter()
            .map(|row| {
                let head = head_from_row(row)?;
                Ok(OrderSummary {
                    id: head.id,
                    channel: head.channel,
                    status: head.status,
                    customer_id: head.customer_id,
                    total: head.total,
                    created_at: head.created_at,
                    paid_at: head.paid_at,
                })
            })
            .collect::<Result<Vec<_>, SalesError>>()?;
        Ok(smartticket_core::Page::from_rows(summaries, page, |o| o.id.to_db()))
    }

    /// Gives up an unpaid order (its buyer or staff).
    pub async fn cancel_order(&self, ctx: &AuditCtx, scope: Scope, id: OrderId) -> Result<Order, SalesError> {
        let now = self.now();
        let mut tx = self.db().begin().await?;
        let head = fetch_head(&mut tx, scope, id).await?;
        if head.status != OrderStatus::AwaitingPayment {
            return Err(SalesError::Conflict(format!(
                "order {id} is {}; only unpaid orders can be cancelled",
                head.status.as_str()
            )));
        }
        let pending: i64 = sql!(tx.conn(), |c| {
            sqlx::query_scalar(
                "SELECT count(*) FROM payments WHERE order_id = $1 AND status = 'pending' AND method = 'card'",
            )
            .bind(id.to_db())
            .fetch_one(c)
            .await
        })?;
        if pending > 0 {
            return Err(SalesError::Conflict(
                "a card payment is still in progress at the bank; wait for its answer".into(),
            ));
        }
        sql!(tx.conn(), |c| {
            sqlx::query("UPDATE orders SET status = 'cancelled', updated_at_us = $2 WHERE id = $1 AND status = 'awaiting_payment'")
                .bind(id.to_db())
                .bind(now.unix_micros())
                .execute(c)
                .await
                .map(|r| r.rows_affected())
        })?;
        sql!(tx.conn(), |c| {
            sqlx::query("UPDATE payments SET status = 'failed', failure = 'order cancelled', decided_at_us = $2 WHERE order_id = $1 AND status = 'pending'")
                .bind(id.to_db())
                .bind(now.unix_micros())
                .execute(c)
                .await
                .map(|r| r.rows_affected())
        })?;
        audit::record(&mut tx, ctx, now, AuditEvent::ok("order.cancel", "order", id)).await?;
        let order = self.order_in(&mut tx, Scope::Staff, id).await?;
        tx.commit().await?;
        Ok(order)
    }
}

/// An order in a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct OrderSummary {
    /// Id.
    pub id: OrderId,
    /// Channel.
    pub channel: Channel,
    /// Status.
    pub status: OrderStatus,
    /// The passenger.
    pub customer_id: Option<CustomerId>,
    /// Total.
    pub total: Money,
    /// Created.
    pub created_at: Timestamp,
    /// Paid.
    pub paid_at: Option<Timestamp>,
}
