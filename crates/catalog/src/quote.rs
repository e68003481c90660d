//! Quoting: what a product costs for a discount and a choice of zones, and when it is
//! valid. Pure: the caller passes the network's local date and the current instant. Follows
//! the purchase wizard of KIDSOK 3.1.5: choose the tariff (discount), the period, the
//! zones or a combi-zone, and the start date; the end date is computed.
//!
//! Rules:
//! - **Zones.** A product with `zones = "chosen"` needs a list of zones (each declared,
//!   none twice) or a combi-zone, which resolves to its zones; the price is looked up by
//!   the number of zones. A product with `zones = "all"` takes no choice and covers every
//!   zone; it has one price per discount.
//! - **Price.** Looked up by (product, discount, zone count). A product without any price
//!   for the discount is "not offered" with it. Stored value has no table: the buyer's
//!   `amount_minor`, within the product's limits, is the price.
//! - **Start date** (time coupons and trips): today when absent; never before today nor
//!   more than `start_days_ahead_max` days after it. Other kinds take no start date.
//! - **Validity.** Time coupons and trips: from local 00:00 of the start date until local
//!   00:00 after the end date (see [`crate::validity`] for the end date and DST).
//!   Single fares: from `now` for their minutes. Events: their fixed window, refused once
//!   ended. Stored value: no validity.

use chrono::{NaiveDate, TimeDelta};
use serde::{Deserialize, Serialize};
use smartticket_core::id::CatalogVersionId;
use smartticket_core::{Money, Timestamp};
use utoipa::ToSchema;

use crate::catalog::{Catalog, Discount, Product, ProductTerms};
use crate::document::{Period, ProductKind, ZoneScope};
use crate::error::{QuoteError, clip};
use crate::validity;

/// Which zones the buyer chose. In JSON: `{"zones": [1, 2]}`, `{"combi": "OLOMOUC"}`, or
/// `"all"` (the default) for products covering every zone.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ZoneChoice {
    /// These zones.
    Zones(Vec<u8>),
    /// The zones of this combi-zone.
    Combi(String),
    /// No choice: the product covers every zone.
    #[default]
    All,
}

/// What the buyer asks the price of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    /// Product code.
    pub product: String,
    /// Discount category code.
    pub discount: String,
    /// Zones or a combi-zone, for products sold by zones.
    #[serde(default)]
    pub zones: ZoneChoice,
    /// First day of validity (local date) for time coupons and trips; today when absent.
    #[serde(default)]
    pub start_date: Option<NaiveDate>,
    /// The amount to load, in minor units, for stored value.
    #[serde(default)]
    pub amount_minor: Option<i64>,
}

/// A price and validity, as the catalogue states them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Quote {
    /// The catalogue version quoted from; set when the catalogue came from the store.
    pub catalog_version: Option<CatalogVersionId>,
    /// Product code.
    pub product: String,
    /// Product name.
    pub product_name: String,
    /// The product's number on cards.
    pub card_product: u32,
    /// The discount category's number on cards.
    pub card_discount: u16,
    /// Product kind.
    pub kind: ProductKind,
    /// Discount category code.
    pub discount: String,
    /// The discount needs an approval with a photo (KIDSOK 3.1.3–3.1.4); selling checks
    /// the medium has one.
    pub requires_approval: bool,
    /// The zones covered, sorted.
    pub zones: Vec<u8>,
    /// The price.
    pub price: Money,
    /// Start of validity; absent for stored value.
    pub valid_from: Option<Timestamp>,
    /// End of validity, exclusive; absent for stored value.
    pub valid_until: Option<Timestamp>,
    /// Trips included, for trip products.
    pub trips: Option<u16>,
}

impl Catalog {
    /// Quotes `request` on the network's local date `today` at instant `now`. See the
    /// module docs for the rules.
    pub fn quote(&self, request: &QuoteRequest, today: NaiveDate, now: Timestamp) -> Result<Quote, QuoteError> {
        let product =
            self.product(&request.product).ok_or_else(|| QuoteError::UnknownProduct(clip(&request.product)))?;
        let discount =
            self.discount(&request.discount).ok_or_else(|| QuoteError::UnknownDiscount(clip(&request.discount)))?;
        let zones = self.resolve_zones(product, &request.zones)?;
        let price = self.price_of(product, discount, zones.len(), request.amount_minor)?;
        let (valid_from, valid_until) = self.validity_of(product, request.start_date, today, now)?;
        let trips = match product.terms {
            ProductTerms::Trips { trips, .. } => Some(trips),
            _ => None,
        };
        Ok(Quote {
            catalog_version: self.version(),
            product: product.code.clone(),
            product_name: product.name.clone(),
            card_product: product.card_code,
            card_discount: discount.card_code,
            kind: product.kind,
            discount: discount.code.clone(),
            requires_approval: discount.approval,
            zones,
            price,
            valid_from,
            valid_until,
            trips,
        })
    }

    fn resolve_zones(&self, product: &Product, choice: &ZoneChoice) -> Result<Vec<u8>, QuoteError> {
        match (product.zones, choice) {
            (ZoneScope::All, ZoneChoice::All) => Ok(self.zones().keys().copied().collect()),
            (ZoneScope::All, _) => Err(QuoteError::ZonesNotApplicable(product.code.clone())),
            (ZoneScope::Chosen, ZoneChoice::All) => Err(QuoteError::ZonesRequired(product.code.clone())),
            (ZoneScope::Chosen, ZoneChoice::Combi(code)) => {
                self.combi_zone(code).map(<[u8]>::to_vec).ok_or_else(|| QuoteError::UnknownCombiZone(clip(code)))
            }
            (ZoneScope::Chosen, ZoneChoice::Zones(chosen)) => {
                if chosen.is_empty() {
                    return Err(QuoteError::ZonesRequired(product.code.clone()));
                }
                let mut zones = Vec::with_capacity(chosen.len().min(self.zones().len()));
                for zone in chosen {
                    if !self.zones().contains_key(zone) {
                        return Err(QuoteError::UnknownZone(*zone));
                    }
                    if zones.contains(zone) {
                        return Err(QuoteError::DuplicateZone(*zone));
                    }
                    zones.push(*zone);
                }
                zones.sort_unstable();
                Ok(zones)
            }
        }
    }

    fn price_of(
        &self,
        product: &Product,
        discount: &Discount,
        zone_count: usize,
        amount_minor: Option<i64>,
    ) -> Result<Money, QuoteError> {
        if let ProductTerms::StoredValue { min, max } = product.terms {
            let amount = Money::new(
                amount_minor.ok_or_else(|| QuoteError::AmountRequired(product.code.clone()))?,
                self.currency(),
            );
            if amount.amount_minor < min.amount_minor || amount.amount_minor > max.amount_minor {
                return Err(QuoteError::AmountOutOfRange { amount, min, max });
            }
            return Ok(amount);
        }
        if amount_minor.is_some() {
            return Err(QuoteError::AmountNotApplicable(product.code.clone()));
        }
        let key = match product.zones {
            // A chosen list holds distinct declared zones, so it never exceeds 32.
            ZoneScope::Chosen => Some(u8::try_from(zone_count).unwrap_or(u8::MAX)),
            ZoneScope::All => None,
        };
        product.price(&discount.code, key).ok_or_else(|| {
            if product.is_offered_with(&discount.code) {
                QuoteError::NoPriceForZones {
                    product: product.code.clone(),
                    discount: discount.code.clone(),
                    zones: zone_count,
                }
            } else {
                QuoteError::NotOffered { product: product.code.clone(), discount: discount.code.clone() }
            }
        })
    }

    fn validity_of(
        &self,
        product: &Product,
        start_date: Option<NaiveDate>,
        today: NaiveDate,
        now: Timestamp,
    ) -> Result<(Option<Timestamp>, Option<Timestamp>), QuoteError> {
        let no_start_date = || match start_date {
            Some(_) => Err(QuoteError::StartDateNotApplicable(product.code.clone())),
            None => Ok(()),
        };
        match &product.terms {
            ProductTerms::SingleFare { minutes } => {
                no_start_date()?;
                let until = now.checked_add(TimeDelta::minutes(i64::from(*minutes))).ok_or(QuoteError::OutOfRange)?;
                Ok((Some(now), Some(until)))
            }
            ProductTerms::TimeCoupon { period } => self.coupon_validity(start_date, today, *period),
            ProductTerms::Trips { validity_days, .. } => {
                self.coupon_validity(start_date, today, Period::Days(*validity_days))
            }
            ProductTerms::StoredValue { .. } => {
                no_start_date()?;
                Ok((None, None))
            }
            ProductTerms::Event { starts, ends, .. } => {
                no_start_date()?;
                if now >= *ends {
                    return Err(QuoteError::EventOver { product: product.code.clone(), ended: *ends });
                }
                Ok((Some(*starts), Some(*ends)))
            }
        }
    }

    fn coupon_validity(
        &self,
        start_date: Option<NaiveDate>,
        today: NaiveDate,
        period: Period,
    ) -> Result<(Option<Timestamp>, Option<Timestamp>), QuoteError> {
        let start = start_date.unwrap_or(today);
        if start < today {
            return Err(QuoteError::StartInPast { start, today });
        }
        let latest = today
            .checked_add_days(chrono::Days::new(u64::from(self.start_days_ahead_max())))
            .ok_or(QuoteError::OutOfRange)?;
        if start > latest {
            return Err(QuoteError::StartTooFarAhead { start, latest });
        }
        let end = validity::end_date(start, period).ok_or(QuoteError::OutOfRange)?;
        let (from, until) = validity::coupon_window(self.timezone(), start, end).ok_or(QuoteError::OutOfRange)?;
        Ok((Some(from), Some(until)))
    }
}
