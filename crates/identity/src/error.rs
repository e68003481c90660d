//! Identity errors, each naming who must act: the caller (bad input, wrong password), an
//! administrator (a disabled account), or the operator (storage).

use smartticket_core::Timestamp;
use smartticket_store::StoreError;
use thiserror::Error;

/// Why an identity operation was refused.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// A field failed validation; `field` names it as the API spells it.
    #[error("{field}: {message}")]
    Invalid {
        /// The request field at fault.
        field: &'static str,
        /// What is wrong, for a person to read.
        message: String,
    },
    /// The password is too short, too long or too easy to guess.
    #[error("password: {0}")]
    WeakPassword(String),
    /// Another account already uses this email.
    #[error("an account with this email already exists")]
    EmailTaken,
    /// Another partner already has this name.
    #[error("a partner with this name already exists")]
    NameTaken,
    /// Email and password do not match an active account. Deliberately says no more, so
    /// the answer does not reveal which emails have accounts.
    #[error("email or password is wrong")]
    InvalidCredentials,
    /// Too many failed logins; the account accepts none until `until`.
    #[error("too many failed logins: the account is locked until {until}")]
    AccountLocked {
        /// When the lock ends.
        until: Timestamp,
        /// Seconds from now until the lock ends (at least 1).
        retry_after_secs: u64,
    },
    /// The account was disabled by an administrator.
    #[error("this account is disabled")]
    AccountDisabled,
    /// The bearer token is malformed, unknown or revoked.
    #[error("the access token is not valid")]
    TokenInvalid,
    /// The bearer token was valid but has expired.
    #[error("the session has expired: log in again")]
    TokenExpired,
    /// The current password given for a change is wrong.
    #[error("the current password is wrong")]
    WrongCurrentPassword,
    /// No such staff user, customer, partner or key (or not visible to the caller).
    #[error("{kind} {id} does not exist")]
    NotFound {
        /// What was looked for.
        kind: &'static str,
        /// The id given.
        id: String,
    },
    /// The change would leave no active administrator, locking everyone out.
    #[error("this would leave no active administrator")]
    LastAdmin,
    /// Storage failed; nothing was changed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Password hashing failed (out of memory, or a corrupt stored hash).
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

impl From<sqlx::Error> for IdentityError {
    fn from(error: sqlx::Error) -> Self {
        IdentityError::Store(StoreError::from(error))
    }
}

impl IdentityError {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        IdentityError::Invalid { field, message: message.into() }
    }
}
