//! The partners' sales registry (seed 000): per day (network-local) and channel, how many
//! orders were paid, how many items, and for how much, with refunds shown apart so the
//! registry of a day never changes its gross figure afterwards. A partner sees only its
//! own sales; staff see any partner's or all.

use chrono::NaiveDate;
use serde::Serialize;
use smartticket_core::id::PartnerId;
use smartticket_core::{Currency, Money};
use smartticket_store::{decode_id, decode_time, sql};
use utoipa::ToSchema;

use crate::orders::{Channel, currency};
use crate::{Sales, SalesError};

/// Longest period of one registry: a quarter.
pub const REGISTRY_DAYS_MAX: i64 = 92;
/// Orders read for one registry; beyond this the period must be split.
pub const REGISTRY_ORDERS_MAX: i64 = 2_000_000;

/// One line: a day, a partner, a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RegistryRow {
    /// The network-local day the orders were paid.
    pub date: NaiveDate,
    /// The partner; absent for the operator's own channels.
    pub partner_id: Option<PartnerId>,
    /// The partner's name.
    pub partner_name: Option<String>,
    /// The channel.
    pub channel: Channel,
    /// Orders paid that day.
    pub orders: i64,
    /// Items in them.
    pub items: i64,
    /// What they cost.
    pub gross: Money,
    /// Of those, refunded since.
    pub refunded: Money,
}

/// The registry of a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Registry {
    /// First day.
    pub from: NaiveDate,
    /// Last day (inclusive).
    pub to: NaiveDate,
    /// The currency of every amount.
    pub currency: Currency,
    /// Lines by day, partner, channel.
    pub rows: Vec<RegistryRow>,
}

impl Sales {
    /// Sales of `partner` (or every channel when `None`) paid from `from` to `to`
    /// inclusive, by network-local day.
    pub async fn registry(
        &self,
        partner: Option<PartnerId>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Registry, SalesError> {
        if to < from {
            return Err(SalesError::invalid("to", "the period ends before it starts"));
        }
        if (to - from).num_days() >= REGISTRY_DAYS_MAX {
            return Err(SalesError::invalid("to", format!("a registry covers at most {REGISTRY_DAYS_MAX} days")));
        }
        let catalog = self.catalog().effective_on(self.catalog().today().await?).await?;
        let tz = catalog.timezone();
        let network_currency = catalog.currency();
        let start = smartticket_catalog::validity::day_start(tz, from)
            .ok_or_else(|| SalesError::invalid("from", "out of range"))?;
        let end = to
            .succ_opt()
            .and_then(|next| smartticket_catalog::validity::day_start(tz, next))
            .ok_or_else(|| SalesError::invalid("to", "out of range"))?;
        type Row = (String, Option<String>, Option<String>, String, String, i64, String, i64, i64);
        let rows: Vec<Row> = sql!(self.db().reader(), |c| {
            sqlx::query_as(
                "SELECT o.id, o.partner_id, p.name, o.channel, o.status, o.total_minor, o.currency, o.paid_at_us, \
                 (SELECT count(*) FROM order_items i WHERE i.order_id = o.id) \
                 FROM orders o LEFT JOIN partners p ON p.id = o.partner_id \
                 WHERE o.paid_at_us >= $1 AND o.paid_at_us < $2 AND ($3 IS NULL OR o.partner_id = $3) \
                 ORDER BY o.paid_at_us LIMIT $4",
            )
            .bind(start.unix_micros())
            .bind(end.unix_micros())
            .bind(partner.map(|p| p.to_db()))
            .bind(REGISTRY_ORDERS_MAX + 1)
            .fetch_all(c)
            .await
        })?;
        if i64::try_from(rows.len()).unwrap_or(i64::MAX) > REGISTRY_ORDERS_MAX {
            return Err(SalesError::invalid(
                "to",
                format!("more than {REGISTRY_ORDERS_MAX} orders; ask for a shorter period"),
            ));
        }
        let mut lines: std::collections::BTreeMap<(NaiveDate, Option<String>, &'static str), RegistryRow> =
            Default::default();
        for (id, partner_id, partner_name, channel, status, total, currency_code, paid_at, items) in rows {
            let channel = Channel::parse(&channel).ok_or_else(|| {
                SalesError::Store(smartticket_store::StoreError::Corrupt(format!("order {id}: channel")))
            })?;
            let amount = Money::new(total, currency(&currency_code)?);
            if amount.currency != network_currency {
                return Err(SalesError::Conflict(format!(
                    "order {id} is in {}, the network in {}",
                    amount.currency, network_currency
                )));
            }
            let date = smartticket_catalog::validity::local_date(tz, decode_time(paid_at)?);
            let partner_typed = partner_id.as_deref().map(|p| decode_id(p, PartnerId::from_db)).transpose()?;
            let zero = Money::new(0, network_currency);
            let line = lines.entry((date, partner_id.clone(), channel.as_str())).or_insert_with(|| RegistryRow {
                date,
                partner_id: partner_typed,
                partner_name,
                channel,
                orders: 0,
                items: 0,
                gross: zero,
                refunded: zero,
            });
            line.orders += 1;
            line.items += items;
            line.gross = line.gross.checked_add(amount).map_err(|e| SalesError::Conflict(e.to_string()))?;
            if status == "refunded" {
                line.refunded = line.refunded.checked_add(amount).map_err(|e| SalesError::Conflict(e.to_string()))?;
            }
        }
        Ok(Registry { from, to, currency: network_currency, rows: lines.into_values().collect() })
    }
}
