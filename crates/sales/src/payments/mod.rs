//! Payments. A payment belongs to an order and goes through one method: a card via a
//! gateway (the bank's hosted page and its signed callback), a bank transfer matched by
//! variable symbol on a statement import, cash in a cashier's shift, or a partner that
//! collects the money itself and settles through its registry.
//!
//! Which bank processes cards is configuration ([`CardGateway`] is the seam, KIDSOK 3.3.2's
//! note that the bank will change): sales code never names a bank. The database allows
//! one approved payment per order, so a double click or a replayed callback can never
//! charge twice.

pub mod bank_transfer;
mod flow;
pub mod test_acquirer;

pub(crate) use flow::open_shift_of;
pub use flow::{PaymentStart, StatementMatch, StatementMiss, StatementReport};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use smartticket_core::id::{OrderId, PaymentId};
use smartticket_core::{Money, Timestamp};
use utoipa::ToSchema;

/// How a payment is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    /// A bank card through the configured gateway.
    Card,
    /// A bank transfer with a variable symbol.
    BankTransfer,
    /// Cash at a counter.
    Cash,
    /// Collected by the selling partner.
    Partner,
}

impl PaymentMethod {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentMethod::Card => "card",
            PaymentMethod::BankTransfer => "bank_transfer",
            PaymentMethod::Cash => "cash",
            PaymentMethod::Partner => "partner",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<PaymentMethod> {
        [PaymentMethod::Card, PaymentMethod::BankTransfer, PaymentMethod::Cash, PaymentMethod::Partner]
            .into_iter()
            .find(|m| m.as_str() == text)
    }
}

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Waiting for the bank, the transfer, or the payer.
    Pending,
    /// Money received (or guaranteed).
    Approved,
    /// The bank said no.
    Declined,
    /// Did not complete (timeout, error); the order may be paid again.
    Failed,
    /// Paid back.
    Refunded,
}

impl PaymentStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Approved => "approved",
            PaymentStatus::Declined => "declined",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Refunded => "refunded",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<PaymentStatus> {
        [
            PaymentStatus::Pending,
            PaymentStatus::Approved,
            PaymentStatus::Declined,
            PaymentStatus::Failed,
            PaymentStatus::Refunded,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// A payment as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Payment {
    /// Id.
    pub id: PaymentId,
    /// The order paid.
    pub order_id: OrderId,
    /// Method.
    pub method: PaymentMethod,
    /// Which gateway processed it (`test-acquirer`, `bank-transfer`, `cash`, `partner`).
    pub gateway: String,
    /// Status.
    pub status: PaymentStatus,
    /// Amount.
    pub amount: Money,
    /// For a bank transfer: the variable symbol to quote.
    pub variable_symbol: Option<String>,
    /// The gateway's reference once decided.
    pub gateway_reference: Option<String>,
    /// Why it failed or was declined.
    pub failure: Option<String>,
    /// For a card payment: where to send the payer (the bank's hosted page).
    pub redirect_url: Option<String>,
    /// When it was started.
    pub created_at: Timestamp,
    /// When it was decided.
    pub decided_at: Option<Timestamp>,
}

/// What a gateway's callback says happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum GatewayOutcome {
    /// The money is taken.
    Approved {
        /// The gateway's reference.
        reference: String,
    },
    /// The bank refused.
    Declined {
        /// Why, as the bank says.
        reason: String,
    },
    /// Something went wrong.
    Failed {
        /// What.
        reason: String,
    },
}

/// A verified gateway callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayEvent {
    /// The gateway's id for this event: a repeated delivery carries the same id.
    pub event_id: String,
    /// Our payment it is about.
    pub payment_id: PaymentId,
    /// What happened.
    #[serde(flatten)]
    pub outcome: GatewayOutcome,
}

/// Why a gateway refused or could not be reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The callback's signature is missing, malformed, stale or wrong.
    #[error("callback signature: {0}")]
    Signature(&'static str),
    /// The callback body is not what the gateway sends.
    #[error("callback body: {0}")]
    Body(String),
    /// The gateway could not do what was asked.
    #[error("gateway: {0}")]
    Refused(String),
}

/// A card payment gateway: the seam between selling and a bank.
pub trait CardGateway: Send + Sync {
    /// The name stored with payments.
    fn name(&self) -> &'static str;

    /// The page to send the payer to for `payment`; the bank returns them to `return_url`.
    fn checkout_url(&self, payment: PaymentId, return_url: &str) -> String;

    /// Checks a callback's authenticity and freshness at `now`, and reads it.
    fn verify_callback(
        &self,
        signature: Option<&str>,
        body: &[u8],
        now: Timestamp,
    ) -> Result<GatewayEvent, GatewayError>;

    /// Pays back `amount` of an approved payment; returns the bank's refund reference.
    fn refund(&self, payment: PaymentId, reference: &str, amount: Money)
    -> BoxFuture<'_, Result<String, GatewayError>>;
}
