//! Account flows that go through the customer's mailbox: confirming the email address,
//! opening an account at a counter with the login details sent by email (KIDSOK 3.2.1),
//! and resetting a forgotten password.
//!
//! Each flow mails a link with a single-use token (`sta_…`, 256 random bits) whose SHA-256
//! digest alone is stored, with a purpose, an expiry and the time it was used. The mail is
//! queued in the same transaction as the change and its audit entry, so a link exists if
//! and only if its account change committed. What the letters say lives in [`letters`],
//! and nowhere else.

use chrono::Duration;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use smartticket_core::Timestamp;
use smartticket_core::id::CustomerId;
use smartticket_mail::{MailError, OutgoingMail};
use smartticket_store::{StoreError, Target, Tx, decode_id, decode_time, sql, unique_or};
use sqlx::{PgExecutor, SqliteExecutor};
use thiserror::Error;
use utoipa::ToSchema;

use crate::audit::{self, Actor, AuditCtx, AuditEvent, Outcome};
use crate::customers::Customer;
use crate::sessions::{Holder, revoke_all};
use crate::staff::check_display_name;
use crate::{Email, Identity, IdentityError, password, tokens};

/// Prefix of account tokens, the secret in mailed links.
pub const ACCOUNT_TOKEN_PREFIX: &str = "sta_";
/// Base64url characters of a token's 32 random bytes, without padding.
const ACCOUNT_TOKEN_BODY_CHARS: usize = 43;
/// How long an email confirmation link works: a week, as people read mail late.
pub const CONFIRM_EMAIL_TTL_HOURS: i64 = 7 * 24;
/// How long the "set your password" link of a counter-opened account works (KIDSOK 3.2.1:
/// the customer gets the login details by email and may start any time).
pub const COUNTER_SET_PASSWORD_TTL_HOURS: i64 = 7 * 24;
/// How long a password reset link works: short, since it grants the account.
pub const PASSWORD_RESET_TTL_MINUTES: i64 = 60;
/// Reset mails one account may be sent per hour: enough for a lost mail or two, too few
/// to flood a mailbox from the public endpoint.
pub const PASSWORD_RESET_MAILS_PER_HOUR_MAX: i64 = 3;
/// Longest `public_url`; links must fit comfortably in a mail line.
pub const PUBLIC_URL_CHARS_MAX: usize = 200;

/// What a token may be used for; a token of one purpose is unknown to the other flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    ConfirmEmail,
    SetPassword,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::ConfirmEmail => "confirm_email",
            Purpose::SetPassword => "set_password",
        }
    }
}

/// Why a mailed link was refused. Each says only what the holder of the link needs to
/// know to act (ask for a new one); none says anything about the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum LinkRefused {
    /// Malformed, never issued, or issued for another purpose.
    #[error("this link is not valid")]
    Unknown,
    /// Used already, or replaced by a newer link.
    #[error("this link has already been used")]
    Used,
    /// Past its expiry.
    #[error("this link has expired: ask for a new one")]
    Expired,
}

/// Why a flow that takes a mailed link failed: the link, or anything else.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AccountError {
    /// The link was refused.
    #[error(transparent)]
    Link(#[from] LinkRefused),
    /// Anything else: a weak password, a disabled account, storage.
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

impl From<StoreError> for AccountError {
    fn from(error: StoreError) -> Self {
        AccountError::Identity(IdentityError::Store(error))
    }
}

/// A link token sent back from a confirmation page.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailConfirmation {
    /// The `token` parameter of the mailed link.
    #[schema(value_type = String, format = Password)]
    pub token: SecretString,
}

/// An account opened by a cashier for a customer at a counter.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CounterRegistration {
    /// The customer's email: the login, and where the password link goes.
    pub email: String,
    /// The customer's name.
    pub display_name: String,
}

/// A request for a password reset link.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetRequest {
    /// The account's email.
    pub email: String,
}

/// A new password, with the link that allows setting it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetConfirmation {
    /// The `token` parameter of the mailed link.
    #[schema(value_type = String, format = Password)]
    pub token: SecretString,
    /// The new password; must pass the password policy.
    #[schema(value_type = String, format = Password)]
    pub new_password: SecretString,
}

/// Checks the base URL links are built on: `http(s)://host[:port][/path]`, no query, no
/// fragment, nothing a mail client could misread.
pub(crate) fn check_public_url(url: &str) -> Result<(), IdentityError> {
    const FIELD: &str = "public_url";
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    let Some(rest) = rest else {
        return Err(IdentityError::invalid(FIELD, "must start with https:// or http://"));
    };
    if rest.trim_end_matches('/').is_empty() {
        return Err(IdentityError::invalid(FIELD, "has no host"));
    }
    if url.chars().count() > PUBLIC_URL_CHARS_MAX {
        return Err(IdentityError::invalid(FIELD, format!("is longer than {PUBLIC_URL_CHARS_MAX} characters")));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '<' | '>' | '"')) {
        return Err(IdentityError::invalid(FIELD, "must have no spaces, query or fragment"));
    }
    Ok(())
}

/// The stored digest of a presented token, or `Unknown` when it cannot be one of ours.
fn digest_of(token: &SecretString) -> Result<Vec<u8>, LinkRefused> {
    let text = token.expose_secret();
    let body = text.strip_prefix(ACCOUNT_TOKEN_PREFIX).ok_or(LinkRefused::Unknown)?;
    let well_formed = body.len() == ACCOUNT_TOKEN_BODY_CHARS
        && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if well_formed { Ok(tokens::digest(text)) } else { Err(LinkRefused::Unknown) }
}

/// What a presented token refers to.
struct TokenRecord {
    customer: CustomerId,
    purpose: String,
    expires_at: Timestamp,
    used: bool,
    email: String,
    display_name: String,
    disabled: bool,
    email_confirmed: bool,
}

type TokenRow = (String, String, i64, Option<i64>, String, String, bool, Option<i64>);

/// Looks a token up, through a pool or inside a transaction.
async fn find_token<'e>(
    target: Target<impl SqliteExecutor<'e>, impl PgExecutor<'e>>,
    digest: &[u8],
) -> Result<Option<TokenRecord>, IdentityError> {
    let row: Option<TokenRow> = sql!(target, |c| {
        sqlx::query_as(
            "SELECT t.customer_id, t.purpose, t.expires_at_us, t.used_at_us, c.email, c.display_name, c.disabled, \
             c.email_confirmed_at_us FROM account_tokens t JOIN customers c ON c.id = t.customer_id \
             WHERE t.token_hash = $1",
        )
        .bind(digest)
        .fetch_optional(c)
        .await
    })?;
    let Some((customer, purpose, expires_us, used_us, email, display_name, disabled, confirmed_us)) = row else {
        return Ok(None);
    };
    Ok(Some(TokenRecord {
        customer: decode_id(&customer, CustomerId::from_db)?,
        purpose,
        expires_at: decode_time(expires_us)?,
        used: used_us.is_some(),
        email,
        display_name,
        disabled,
        email_confirmed: confirmed_us.is_some(),
    }))
}

/// The record of a token that may be used now for `purpose`, or why not.
fn usable(found: Option<TokenRecord>, purpose: Purpose, now: Timestamp) -> Result<TokenRecord, LinkRefused> {
    let record = found.filter(|r| r.purpose == purpose.as_str()).ok_or(LinkRefused::Unknown)?;
    if record.used {
        return Err(LinkRefused::Used);
    }
    if record.expires_at <= now {
        return Err(LinkRefused::Expired);
    }
    Ok(record)
}

/// Marks one token used, if nobody else did first; false when someone did.
async fn mark_used(tx: &mut Tx, digest: &[u8], now: Timestamp) -> Result<bool, IdentityError> {
    let changed = sql!(tx.conn(), |c| {
        sqlx::query("UPDATE account_tokens SET used_at_us = $2 WHERE token_hash = $1 AND used_at_us IS NULL")
            .bind(digest)
            .bind(now.unix_micros())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(changed == 1)
}

/// Sets the email confirmation time unless it is set; returns true when this confirmed it.
async fn confirm_address(tx: &mut Tx, customer: CustomerId, now: Timestamp) -> Result<bool, IdentityError> {
    let changed = sql!(tx.conn(), |c| {
        sqlx::query(
            "UPDATE customers SET email_confirmed_at_us = $2, updated_at_us = $2 \
             WHERE id = $1 AND email_confirmed_at_us IS NULL",
        )
        .bind(customer.to_db())
        .bind(now.unix_micros())
        .execute(c)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(changed == 1)
}

/// The audit context of a flow proven by a mailed link: the link's holder acts as the
/// customer, as a login does.
fn as_customer(ctx: &AuditCtx, customer: CustomerId) -> AuditCtx {
    let mut ctx = ctx.clone();
    if ctx.actor == Actor::Anonymous {
        ctx.actor = Actor::Customer { id: customer };
    }
    ctx
}

/// A mail the flows could not build: the address is the customer's fault; the rest
/// cannot happen with the bounded names and URL the letters use.
fn mail_refused(error: MailError) -> IdentityError {
    match error {
        MailError::Address { .. }
        | MailError::Empty { field: "to" }
        | MailError::TooLong { field: "to", .. }
        | MailError::ControlCharacters { field: "to" } => {
            IdentityError::invalid("email", format!("cannot receive mail: {error}"))
        }
        other => IdentityError::invalid("mail", other.to_string()),
    }
}

/// A link to mail: whose account, to which address, for what, and for how long.
struct LinkMail<'a> {
    customer: CustomerId,
    email: &'a str,
    purpose: Purpose,
    ttl: Duration,
}

impl Identity {
    /// Makes a token as `link` says, valid from `now`, and queues `letter`'s mail with the
    /// link in it, all inside `tx`. Returns when the link expires.
    async fn mail_link(
        &self,
        tx: &mut Tx,
        now: Timestamp,
        link: LinkMail<'_>,
        letter: impl FnOnce(&str, Timestamp) -> letters::Letter,
    ) -> Result<Timestamp, IdentityError> {
        let LinkMail { customer, email, purpose, ttl } = link;
        let expires_at = now.checked_add(ttl).ok_or_else(|| IdentityError::invalid("ttl", "too large"))?;
        let token = tokens::generate(ACCOUNT_TOKEN_PREFIX)?;
        sql!(tx.conn(), |c| {
            sqlx::query(
                "INSERT INTO account_tokens (token_hash, customer_id, purpose, created_at_us, expires_at_us) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(token.digest.as_slice())
            .bind(customer.to_db())
            .bind(purpose.as_str())
            .bind(now.unix_micros())
            .bind(expires_at.unix_micros())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        })?;
        let page = match purpose {
            Purpose::ConfirmEmail => "confirm-email",
            Purpose::SetPassword => "set-password",
        };
        let base = self.policy.public_url.trim_end_matches('/');
        let link = format!("{base}/{page}?token={}", token.text.expose_secret());
        let letters::Letter { subject, body } = letter(&link, expires_at);
        let mail = OutgoingMail::new(email, &subject, &body).map_err(mail_refused)?;
        smartticket_mail::enqueue(tx, now, &mail).await?;
        Ok(expires_at)
    }

    /// Queues the confirmation mail of a new self-registered account, inside the
    /// registration's transaction.
    pub(crate) async fn mail_email_confirmation(
        &self,
        tx: &mut Tx,
        now: Timestamp,
        customer: CustomerId,
        email: &Email,
        display_name: &str,
    ) -> Result<Timestamp, IdentityError> {
        let link = LinkMail {
            customer,
            email: email.as_str(),
            purpose: Purpose::ConfirmEmail,
            ttl: Duration::hours(CONFIRM_EMAIL_TTL_HOURS),
        };
        self.mail_link(tx, now, link, |link, expires_at| letters::confirm_email(display_name, link, expires_at)).await
    }

    /// Confirms the email address of the account a confirmation link was sent for. The
    /// link works once.
    pub async fn confirm_email(&self, ctx: &AuditCtx, token: &SecretString) -> Result<Customer, AccountError> {
        let digest = digest_of(token)?;
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let record = usable(find_token(tx.conn(), &digest).await?, Purpose::ConfirmEmail, now)?;
        if !mark_used(&mut tx, &digest, now).await? {
            return Err(LinkRefused::Used.into());
        }
        let newly = confirm_address(&mut tx, record.customer, now).await?;
        let event = AuditEvent::ok("customer.confirm_email", "customer", record.customer)
            .details(json!({ "email": record.email, "already_confirmed": !newly }));
        audit::record(&mut tx, &as_customer(ctx, record.customer), now, event).await?;
        tx.commit().await?;
        Ok(self.customer(record.customer).await?)
    }

    /// Opens an account for a customer at a counter (KIDSOK 3.2.1): no password yet, and a
    /// mail with the login and a link to choose a password, valid
    /// [`COUNTER_SET_PASSWORD_TTL_HOURS`]. The account cannot log in until then.
    pub async fn create_customer_at_counter(
        &self,
        ctx: &AuditCtx,
        email: &str,
        display_name: &str,
    ) -> Result<Customer, IdentityError> {
        let email = Email::parse(email)?;
        let display_name = check_display_name("display_name", display_name)?;
        let id = CustomerId::new();
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let inserted = sql!(tx.conn(), |c| {
            sqlx::query(
                "INSERT INTO customers (id, email, email_normalized, display_name, password_hash, created_at_us, \
                 updated_at_us) VALUES ($1, $2, $3, $4, NULL, $5, $5)",
            )
            .bind(id.to_db())
            .bind(email.as_str())
            .bind(email.normalized())
            .bind(display_name.as_str())
            .bind(now.unix_micros())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        });
        unique_or(inserted, || IdentityError::EmailTaken)?;
        let link = LinkMail {
            customer: id,
            email: email.as_str(),
            purpose: Purpose::SetPassword,
            ttl: Duration::hours(COUNTER_SET_PASSWORD_TTL_HOURS),
        };
        let expires_at = self
            .mail_link(&mut tx, now, link, |link, expires_at| {
                letters::counter_welcome(&display_name, email.as_str(), link, expires_at)
            })
            .await?;
        let event = AuditEvent::ok("customer.create_at_counter", "customer", id).details(json!({
            "email": email.as_str(),
            "display_name": display_name,
            "link_expires_at": expires_at,
        }));
        audit::record(&mut tx, ctx, now, event).await?;
        tx.commit().await?;
        tracing::info!(customer = %id, "customer account opened at a counter");
        self.customer(id).await
    }

    /// Mails a password reset link valid [`PASSWORD_RESET_TTL_MINUTES`] if a customer
    /// has this email, is enabled and has had fewer than
    /// [`PASSWORD_RESET_MAILS_PER_HOUR_MAX`] links in the last hour. Answers `Ok(())`
    /// in every case, so the answer does not tell who has an account; the audit log
    /// records what happened.
    pub async fn request_password_reset(&self, ctx: &AuditCtx, email: &str) -> Result<(), IdentityError> {
        let email = Email::parse(email)?;
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let row: Option<(String, String, String, bool)> = sql!(tx.conn(), |c| {
            sqlx::query_as("SELECT id, email, display_name, disabled FROM customers WHERE email_normalized = $1")
                .bind(email.normalized())
                .fetch_optional(c)
                .await
        })?;
        let Some((id, stored_email, display_name, disabled)) = row else {
            self.record_reset_refused(&mut tx, ctx, now, &email, None, "no_account").await?;
            return Ok(tx.commit().await?);
        };
        let id = decode_id(&id, CustomerId::from_db)?;
        if disabled {
            self.record_reset_refused(&mut tx, ctx, now, &email, Some(id), "disabled").await?;
            return Ok(tx.commit().await?);
        }
        if recent_password_links(&mut tx, id, now).await? >= PASSWORD_RESET_MAILS_PER_HOUR_MAX {
            self.record_reset_refused(&mut tx, ctx, now, &email, Some(id), "rate_limited").await?;
            return Ok(tx.commit().await?);
        }
        let link = LinkMail {
            customer: id,
            email: &stored_email,
            purpose: Purpose::SetPassword,
            ttl: Duration::minutes(PASSWORD_RESET_TTL_MINUTES),
        };
        let expires_at = self
            .mail_link(&mut tx, now, link, |link, expires_at| letters::password_reset(&display_name, link, expires_at))
            .await?;
        let event = AuditEvent::ok("auth.password_reset_request", "customer", id)
            .details(json!({ "email": email.as_str(), "sent": true, "link_expires_at": expires_at }));
        audit::record(&mut tx, ctx, now, event).await?;
        Ok(tx.commit().await?)
    }

    async fn record_reset_refused(
        &self,
        tx: &mut Tx,
        ctx: &AuditCtx,
        now: Timestamp,
        email: &Email,
        customer: Option<CustomerId>,
        why: &str,
    ) -> Result<(), IdentityError> {
        let event = AuditEvent {
            action: "auth.password_reset_request",
            target_kind: customer.map(|_| "customer"),
            target_id: customer.map(|id| id.to_string()),
            outcome: Outcome::Denied,
            details: json!({ "email": email.as_str(), "sent": false, "why": why }),
        };
        Ok(audit::record(tx, ctx, now, event).await?)
    }

    /// Sets a customer's password with a mailed link (a reset, or the first password of a
    /// counter-opened account). The link works once and also retires every other
    /// password link of the account; the email counts as confirmed (the link was read in
    /// that mailbox); the lockout is cleared; every session of the account ends.
    pub async fn set_password_with_token(
        &self,
        ctx: &AuditCtx,
        token: &SecretString,
        new_password: &SecretString,
    ) -> Result<(), AccountError> {
        let digest = digest_of(token)?;
        let now = self.clock.now();
        // Check the link before the password, and hash outside the transaction: hashing
        // takes tens of milliseconds and SQLite has one writer.
        let record = usable(find_token(self.db.reader(), &digest).await?, Purpose::SetPassword, now)?;
        if record.disabled {
            return Err(IdentityError::AccountDisabled.into());
        }
        password::check_strength(new_password, &[&record.email, &record.display_name])?;
        let hash = self.hasher.hash(new_password).await?;
        let mut tx = self.db.begin().await?;
        if !mark_used(&mut tx, &digest, now).await? {
            return Err(LinkRefused::Used.into());
        }
        let customer = record.customer;
        sql!(tx.conn(), |c| {
            sqlx::query(
                "UPDATE account_tokens SET used_at_us = $2 \
                 WHERE customer_id = $1 AND purpose = 'set_password' AND used_at_us IS NULL",
            )
            .bind(customer.to_db())
            .bind(now.unix_micros())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(IdentityError::from)?;
        sql!(tx.conn(), |c| {
            sqlx::query(
                "UPDATE customers SET password_hash = $2, failed_logins = 0, locked_until_us = NULL, \
                 updated_at_us = $3 WHERE id = $1",
            )
            .bind(customer.to_db())
            .bind(hash.as_str())
            .bind(now.unix_micros())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(IdentityError::from)?;
        let confirmed = !record.email_confirmed && confirm_address(&mut tx, customer, now).await?;
        let ended = revoke_all(&mut tx, Holder::Customer(customer), now, None).await?;
        let event = AuditEvent::ok("auth.password_set", "customer", customer)
            .details(json!({ "sessions_ended": ended, "email_confirmed_now": confirmed }));
        audit::record(&mut tx, &as_customer(ctx, customer), now, event).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Password links (reset or counter) made for `customer` within the last hour.
async fn recent_password_links(tx: &mut Tx, customer: CustomerId, now: Timestamp) -> Result<i64, IdentityError> {
    let since = now.checked_sub(Duration::hours(1)).unwrap_or(Timestamp::EPOCH);
    Ok(sql!(tx.conn(), |c| {
        sqlx::query_scalar(
            "SELECT count(*) FROM account_tokens WHERE customer_id = $1 AND purpose = 'set_password' \
             AND created_at_us > $2",
        )
        .bind(customer.to_db())
        .bind(since.unix_micros())
        .fetch_one(c)
        .await
    })?)
}

/// Every letter the account flows send: English for now, short, with the link and when
/// it stops working. Translations will replace these functions, not their callers.
pub mod letters {
    use smartticket_core::Timestamp;

    use super::PASSWORD_RESET_TTL_MINUTES;

    /// A subject line and a plain-text body.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Letter {
        /// The subject line.
        pub subject: String,
        /// The plain-text body.
        pub body: String,
    }

    fn when(at: Timestamp) -> String {
        at.datetime().format("%Y-%m-%d %H:%M UTC").to_string()
    }

    /// Asks a new e-shop customer to confirm their address.
    pub fn confirm_email(name: &str, link: &str, expires_at: Timestamp) -> Letter {
        Letter {
            subject: "Confirm your email address for SmartTicket".into(),
            body: format!(
                "Hello {name},\n\n\
                 please confirm that this is your email address by opening this link:\n\n\
                 {link}\n\n\
                 The link works once, until {}.\n\n\
                 If you did not open a SmartTicket account, ignore this email.\n",
                when(expires_at)
            ),
        }
    }

    /// Gives a customer whose account was opened at a counter their login and a link to
    /// choose a password (KIDSOK 3.2.1).
    pub fn counter_welcome(name: &str, email: &str, link: &str, expires_at: Timestamp) -> Letter {
        Letter {
            subject: "Your SmartTicket account: choose your password".into(),
            body: format!(
                "Hello {name},\n\n\
                 a SmartTicket account was opened for you at a counter. You log in with this email \
                 address: {email}\n\n\
                 Choose your password here:\n\n\
                 {link}\n\n\
                 The link works once, until {}. After that, use \"Forgot password\" on the login page.\n\n\
                 If you did not ask for an account, ignore this email.\n",
                when(expires_at)
            ),
        }
    }

    /// Sends a password reset link.
    pub fn password_reset(name: &str, link: &str, expires_at: Timestamp) -> Letter {
        Letter {
            subject: "Reset your SmartTicket password".into(),
            body: format!(
                "Hello {name},\n\n\
                 someone, hopefully you, asked to reset the password of your SmartTicket account. \
                 Choose a new password here:\n\n\
                 {link}\n\n\
                 The link works once, for {PASSWORD_RESET_TTL_MINUTES} minutes (until {}).\n\n\
                 If you did not ask for this, ignore this email: your password stays as it is.\n",
                when(expires_at)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls_are_plain_bases() {
        for good in ["http://127.0.0.1:8080", "https://shop.example.cz/", "https://example.cz/eshop"] {
            assert!(check_public_url(good).is_ok(), "{good}");
        }
        for bad in ["", "ftp://x", "https://", "https://x?y=1", "https://x#a", "https://a b", "javascript:alert(1)"] {
            assert!(check_public_url(bad).is_err(), "{bad}");
        }
        assert!(check_public_url(&format!("https://{}", "a".repeat(PUBLIC_URL_CHARS_MAX))).is_err());
    }

    #[test]
    fn malformed_tokens_are_unknown_without_a_lookup() {
        let made = tokens::generate(ACCOUNT_TOKEN_PREFIX).unwrap();
        assert_eq!(digest_of(&made.text), Ok(made.digest));
        for bad in [
            "",
            "sta_",
            "sts_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "sta_!!",
            "sta_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ] {
            assert_eq!(digest_of(&SecretString::from(bad.to_owned())), Err(LinkRefused::Unknown), "{bad:?}");
        }
    }

    #[test]
    fn letters_carry_the_link_and_the_expiry() {
        let at = Timestamp::parse_rfc3339("2026-11-28T08:00:00Z").unwrap();
        for letter in [
            letters::confirm_email("Jana", "https://x/confirm-email?token=sta_1", at),
            letters::counter_welcome("Jana", "jana@example.cz", "https://x/set-password?token=sta_1", at),
            letters::password_reset("Jana", "https://x/set-password?token=sta_1", at),
        ] {
            assert!(letter.body.contains("?token=sta_1\n"), "{}", letter.body);
            assert!(letter.body.contains("2026-11-28 08:00 UTC"), "{}", letter.body);
            assert!(OutgoingMail::new("jana@example.cz", &letter.subject, &letter.body).is_ok());
        }
    }
}
