//! Selling errors, each naming who must act: the caller (bad input, a refused transition),
//! the payer (a declined payment), or the operator (storage, keys).

use smartticket_store::StoreError;

use crate::lifecycle::IllegalTransition;

/// Why a selling operation was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SalesError {
    /// A field failed validation.
    #[error("{field}: {message}")]
    Invalid {
        /// The request field at fault.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// No such thing, or not visible to the caller (the two are not told apart, so ids of
    /// other people's things reveal nothing).
    #[error("{kind} {id} does not exist")]
    NotFound {
        /// What was looked for.
        kind: &'static str,
        /// The id or number given.
        id: String,
    },
    /// The lifecycle forbids this change.
    #[error(transparent)]
    IllegalTransition(#[from] IllegalTransition),
    /// The change conflicts with what exists (a card already registered, a second active
    /// card, an order already paid).
    #[error("{0}")]
    Conflict(String),
    /// The proof of ownership did not match what the back office knows.
    #[error("the proof does not match this card's recent use; {attempts_left} attempts left today")]
    ProofRejected {
        /// Attempts left before the card is locked for the day.
        attempts_left: u32,
    },
    /// Too many attempts; try again later.
    #[error("too many attempts: {0}")]
    TooManyAttempts(String),
    /// The discount needs an approval the passenger does not hold for the whole validity.
    #[error("discount {discount} needs an approved request covering the validity{}; request it with a photo", until.map(|u| format!(" (until {u})")).unwrap_or_default())]
    DiscountNotApproved {
        /// The discount category.
        discount: String,
        /// The end of the validity the approval must reach.
        until: Option<smartticket_core::Timestamp>,
    },
    /// The catalogue refused the item (unknown product, bad zones, dates).
    #[error(transparent)]
    Catalog(#[from] smartticket_catalog::CatalogError),
    /// The payment gateway refused or the callback is not authentic.
    #[error(transparent)]
    Gateway(crate::payments::GatewayError),
    /// The card or the reader failed during a delivery.
    #[error("card: {0}")]
    Card(String),
    /// An outgoing mail could not be queued.
    #[error(transparent)]
    Mail(#[from] smartticket_mail::MailError),
    /// The keys needed are not available.
    #[error("keys: {0}")]
    Keys(#[from] smartticket_crypto::hsm::HsmError),
    /// Storage failed; nothing was changed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for SalesError {
    fn from(error: sqlx::Error) -> Self {
        SalesError::Store(StoreError::from(error))
    }
}

impl SalesError {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        SalesError::Invalid { field, message: message.into() }
    }

    pub(crate) fn not_found(kind: &'static str, id: impl ToString) -> Self {
        SalesError::NotFound { kind, id: id.to_string() }
    }

    /// Names the order item at fault (`items[2].zones`), so a client can point at it.
    pub(crate) fn in_item(self, index: usize) -> Self {
        match self {
            SalesError::Invalid { field, message } => {
                SalesError::Invalid { field: "items", message: format!("item {}: {field}: {message}", index + 1) }
            }
            other => other,
        }
    }
}
