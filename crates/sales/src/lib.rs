//! Selling (DESIGN §1 steps 1–2): the media registry and its lifecycle, carts and orders,
//! payments through exchangeable gateways, the entitlements a paid order gives, and their
//! delivery onto cards at the next tap.
//!
//! Every change is one database transaction that also writes its audit entry (and, where
//! a customer is told, its email into the outbox), so a change and its record cannot
//! part. Prices never come from a client: they are quoted from the catalogue in force.
#![forbid(unsafe_code)]

pub mod complaints;
pub mod delivery;
pub mod discounts;
pub mod entitlements;
mod error;
mod event_tickets;
pub mod lifecycle;
pub mod media;
pub mod orders;
pub mod payments;
mod receipts;
mod refunds;
pub mod registry;
pub mod replacement;
mod rows;
pub mod sell;
pub mod shifts;

use std::sync::Arc;

use smartticket_catalog::CatalogStore;
use smartticket_core::Clock;
use smartticket_crypto::hsm::Hsm;
use smartticket_store::Db;

use crate::payments::CardGateway;

pub use error::SalesError;
pub use lifecycle::{IllegalTransition, MediumEvent, MediumStatus};

/// Operator choices that shape selling.
#[derive(Debug, Clone)]
pub struct SalesPolicy {
    /// Only one active named fare card per person (CityPay 7.3).
    pub one_active_fare_card_per_customer: bool,
    /// Failed proofs of ownership allowed per card per day.
    pub ownership_attempts_per_day: u32,
    /// How far back taps count as "recently visited stations".
    pub ownership_tap_window_days: u32,
    /// Days a blocked card's purse balance waits before it moves to the replacement:
    /// taps made offline before the block must reach clearing first (seed 001).
    pub balance_transfer_wait_days: u32,
    /// How long a delivery session may wait for the reader's next answer.
    pub delivery_step_timeout_ms: u64,
}

impl Default for SalesPolicy {
    fn default() -> Self {
        Self {
            one_active_fare_card_per_customer: true,
            ownership_attempts_per_day: 5,
            ownership_tap_window_days: 14,
            balance_transfer_wait_days: 14,
            delivery_step_timeout_ms: 10_000,
        }
    }
}

/// The selling service, shared by every request.
#[derive(Clone)]
pub struct Sales {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    db: Db,
    clock: Arc<dyn Clock>,
    hsm: Arc<dyn Hsm>,
    catalog: CatalogStore,
    gateway: Arc<dyn CardGateway>,
    public_url: String,
    policy: SalesPolicy,
    deliveries: delivery::Sessions,
    writer: std::sync::OnceLock<sell::Writer>,
}

/// What the selling service is built from.
pub struct SalesParts {
    /// The database.
    pub db: Db,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Keys: tokenisation for bank cards, credit keys for deliveries.
    pub hsm: Arc<dyn Hsm>,
    /// The tariff catalogue.
    pub catalog: CatalogStore,
    /// The card payment gateway chosen by configuration.
    pub gateway: Arc<dyn CardGateway>,
    /// This server's public address, for links in mails and the bank's return page.
    pub public_url: String,
    /// Operator choices.
    pub policy: SalesPolicy,
}

impl std::fmt::Debug for Sales {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sales").field("policy", &self.inner.policy).finish_non_exhaustive()
    }
}

impl Sales {
    /// A selling service from its parts.
    pub fn new(parts: SalesParts) -> Self {
        let SalesParts { db, clock, hsm, catalog, gateway, public_url, policy } = parts;
        let public_url = public_url.trim_end_matches('/').to_owned();
        let deliveries = delivery::Sessions::default();
        let writer = std::sync::OnceLock::new();
        Self { inner: Arc::new(Inner { db, clock, hsm, catalog, gateway, public_url, policy, deliveries, writer }) }
    }

    /// The catalogue service.
    pub fn catalog(&self) -> &CatalogStore {
        &self.inner.catalog
    }

    /// The card gateway.
    pub fn gateway(&self) -> &dyn CardGateway {
        self.inner.gateway.as_ref()
    }

    pub(crate) fn public_url(&self) -> &str {
        &self.inner.public_url
    }

    /// This server's public address, without a trailing slash.
    pub fn public_base(&self) -> &str {
        &self.inner.public_url
    }

    pub(crate) fn deliveries(&self) -> &delivery::Sessions {
        &self.inner.deliveries
    }

    pub(crate) fn db(&self) -> &Db {
        &self.inner.db
    }

    pub(crate) fn now(&self) -> smartticket_core::Timestamp {
        self.inner.clock.now()
    }

    pub(crate) fn hsm(&self) -> &dyn Hsm {
        self.inner.hsm.as_ref()
    }

    pub(crate) fn policy(&self) -> &SalesPolicy {
        &self.inner.policy
    }
}
