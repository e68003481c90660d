//! Who may do what: staff users with roles, customers (the email is the account, KIDSOK
//! 3.1.1), partners with API keys, login sessions, and the append-only audit log that
//! records every change with who, when, from where and why.
//!
//! Secrets never rest in clear: passwords are argon2id hashes, session tokens and API keys
//! are random 256-bit values stored as SHA-256 digests (they carry full entropy, so a slow
//! hash would only slow every request). The HTTP layer decides *which* role may call an
//! endpoint; this crate answers *who* the caller is and records what they did.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod audit;
pub mod customers;
mod email;
mod error;
pub mod partners;
pub mod password;
mod principal;
pub mod sessions;
pub mod staff;
mod tokens;

use std::sync::Arc;

use smartticket_core::Clock;
use smartticket_store::Db;

pub use accounts::{AccountError, LinkRefused};
pub use audit::{Actor, AuditCtx};
pub use email::{EMAIL_CHARS_MAX, Email};
pub use error::IdentityError;
pub use principal::{Principal, Role, StaffRole};
pub use tokens::{API_KEY_PREFIX, SESSION_TOKEN_PREFIX};

/// Limits and lifetimes of credentials. The defaults follow OWASP's guidance for staff
/// consoles; operators tune them in the configuration file.
#[derive(Debug, Clone)]
pub struct IdentityPolicy {
    /// How long a login session lasts before it must be renewed by logging in again.
    pub session_ttl_minutes: u32,
    /// Failed logins in a row that lock an account.
    pub login_failures_max: u32,
    /// How long a locked account stays locked.
    pub lockout_minutes: u32,
    /// Cost of the argon2id password hash.
    pub password_hashing: password::HashingCost,
    /// Where customers reach the e-shop; mailed links start with it
    /// (`{public_url}/confirm-email?token=…`).
    pub public_url: String,
}

impl Default for IdentityPolicy {
    fn default() -> Self {
        Self {
            session_ttl_minutes: 8 * 60,
            login_failures_max: 5,
            lockout_minutes: 15,
            password_hashing: password::HashingCost::default(),
            public_url: "http://127.0.0.1:8080".into(),
        }
    }
}

/// The identity service: the database, the clock and the policy, shared by every request.
#[derive(Debug, Clone)]
pub struct Identity {
    db: Db,
    clock: Arc<dyn Clock>,
    policy: Arc<IdentityPolicy>,
    hasher: password::PasswordHasher,
}

impl Identity {
    /// A service over `db`, reading time from `clock`. Refuses a policy whose `public_url`
    /// is not a plain `http(s)://` base.
    pub fn new(db: Db, clock: Arc<dyn Clock>, policy: IdentityPolicy) -> Result<Self, IdentityError> {
        accounts::check_public_url(&policy.public_url)?;
        let hasher = password::PasswordHasher::new(policy.password_hashing)?;
        Ok(Self { db, clock, policy: Arc::new(policy), hasher })
    }

    /// The database this service writes to.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The clock this service reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The policy in force.
    pub fn policy(&self) -> &IdentityPolicy {
        &self.policy
    }

    /// Checks what every new account needs (a valid email, a name, a password that passes
    /// the policy judged against both) and hashes the password.
    pub(crate) async fn new_account(
        &self,
        email: &str,
        display_name: &str,
        password: &secrecy::SecretString,
    ) -> Result<NewAccount, IdentityError> {
        let email = Email::parse(email)?;
        let display_name = staff::check_display_name("display_name", display_name)?;
        password::check_strength(password, &[email.as_str(), &display_name])?;
        let password_hash = self.hasher.hash(password).await?;
        Ok(NewAccount { email, display_name, password_hash })
    }
}

/// A validated account, ready to insert.
pub(crate) struct NewAccount {
    pub email: Email,
    pub display_name: String,
    pub password_hash: String,
}
