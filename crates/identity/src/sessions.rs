//! Logging in and out, and turning a bearer token into a [`Principal`].
//!
//! A login checks the lockout first (a locked account is refused even with the right
//! password, so guessing gains nothing), verifies the password against a decoy when the
//! account does not exist (equal timing), and records every attempt in the audit log.

use chrono::Duration;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;
use smartticket_core::Timestamp;
use smartticket_core::id::{ApiKeyId, CustomerId, PartnerId, SessionId, StaffId};
use smartticket_store::{StoreError, Tx, decode_id, decode_time, sql};
use utoipa::ToSchema;

use crate::audit::{self, AuditCtx, AuditEvent, Outcome};
use crate::tokens::{self, SESSION_TOKEN_PREFIX, TokenKind};
use crate::{Email, Identity, IdentityError, Principal, Role, StaffRole, password};

/// Refresh a key's `last_used_at` at most this often: a write per request would make
/// every partner call contend for the single SQLite writer.
const KEY_LAST_USED_RESOLUTION_US: i64 = 5 * 60 * 1_000_000;

/// Which kind of account logs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Realm {
    /// A staff user (console).
    Staff,
    /// A customer (e-shop).
    Customer,
}

/// Credentials for a login.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Staff or customer.
    pub realm: Realm,
    /// The account's email.
    pub email: String,
    /// The password.
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

/// A granted login: the bearer token to send as `Authorization: Bearer …`.
#[derive(Serialize, ToSchema)]
pub struct LoginGranted {
    /// The session token. Keep it secret; it is not shown again.
    #[schema(value_type = String)]
    #[serde(serialize_with = "expose")]
    pub token: SecretString,
    /// The session's id (for logs and revocation; not a credential).
    pub session_id: SessionId,
    /// When the token stops working.
    pub expires_at: Timestamp,
    /// The role it carries.
    pub role: Role,
    /// The logged-in staff user's or customer's id.
    pub subject_id: String,
}

impl std::fmt::Debug for LoginGranted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginGranted").field("session_id", &self.session_id).finish_non_exhaustive()
    }
}

fn expose<S: serde::Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose_secret())
}

/// A password change by the account's holder.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The password in use now.
    #[schema(value_type = String, format = Password)]
    pub current_password: SecretString,
    /// The new password; must pass the policy and differ from the current one.
    #[schema(value_type = String, format = Password)]
    pub new_password: SecretString,
}

/// Whose sessions.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Holder {
    Staff(StaffId),
    Customer(CustomerId),
}

impl Holder {
    fn table(self) -> &'static str {
        match self {
            Holder::Staff(_) => "staff_users",
            Holder::Customer(_) => "customers",
        }
    }

    fn id_db(self) -> String {
        match self {
            Holder::Staff(id) => id.to_db(),
            Holder::Customer(id) => id.to_db(),
        }
    }

    fn id_display(self) -> String {
        match self {
            Holder::Staff(id) => id.to_string(),
            Holder::Customer(id) => id.to_string(),
        }
    }
}

/// What a login needs to know about an account.
struct Account {
    holder: Holder,
    role: Role,
    email: String,
    password_hash: Option<String>,
    disabled: bool,
    failed_logins: i64,
    locked_until: Option<Timestamp>,
}

type AccountRow = (String, String, Option<String>, bool, i64, Option<i64>, Option<String>);

async fn find_account(tx: &mut Tx, realm: Realm, email: &Email) -> Result<Option<Account>, IdentityError> {
    let row: Option<AccountRow> = match realm {
        Realm::Staff => sql!(tx.conn(), |c| {
            sqlx::query_as(
                "SELECT id, email, password_hash, disabled, failed_logins, locked_until_us, role \
                 FROM staff_users WHERE email_normalized = $1",
            )
            .bind(email.normalized())
            .fetch_optional(c)
            .await
        })?,
        Realm::Customer => sql!(tx.conn(), |c| {
            sqlx::query_as(
                "SELECT id, email, password_hash, disabled, failed_logins, locked_until_us, NULL \
                 FROM customers WHERE email_normalized = $1",
            )
            .bind(email.normalized())
            .fetch_optional(c)
            .await
        })?,
    };
    let Some((id, email, password_hash, disabled, failed_logins, locked_us, role)) = row else {
        return Ok(None);
    };
    let (holder, role) = match realm {
        Realm::Staff => {
            let role =
                role.as_deref().and_then(StaffRole::parse).ok_or_else(|| StoreError::Corrupt("staff role".into()))?;
            (Holder::Staff(decode_id(&id, StaffId::from_db)?), Role::from(role))
        }
        Realm::Customer => (Holder::Customer(decode_id(&id, CustomerId::from_db)?), Role::Customer),
    };
    let locked_until = locked_us.map(decode_time).transpose()?;
    Ok(Some(Account { holder, role, email, password_hash, disabled, failed_logins, locked_until }))
}

impl Identity {
    /// Checks credentials and opens a session.
    pub async fn login(&self, ctx: &AuditCtx, request: LoginRequest) -> Result<LoginGranted, IdentityError> {
        let email = Email::parse(&request.email)?;
        let typed = request.password.expose_secret();
        if typed.is_empty() || typed.len() > password::PASSWORD_BYTES_MAX {
            // Never hash unbounded input; an over-long password cannot be anyone's.
            return Err(IdentityError::InvalidCredentials);
        }
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let account = find_account(&mut tx, request.realm, &email).await?;
        if let Some(until) = account.as_ref().and_then(|a| a.locked_until).filter(|until| *until > now) {
            let target = account.as_ref().map(|a| a.holder);
            self.record_failed_login(&mut tx, ctx, now, &email, target, "locked").await?;
            tx.commit().await?;
            let wait_us = until.unix_micros().saturating_sub(now.unix_micros());
            let retry_after_secs = u64::try_from(wait_us).unwrap_or(0).div_ceil(1_000_000).max(1);
            return Err(IdentityError::AccountLocked { until, retry_after_secs });
        }
        let matches =
            self.hasher.verify(&request.password, account.as_ref().and_then(|a| a.password_hash.as_deref())).await?;
        let Some(account) = account.filter(|a| a.password_hash.is_some()) else {
            self.record_failed_login(&mut tx, ctx, now, &email, None, "no_account").await?;
            tx.commit().await?;
            return Err(IdentityError::InvalidCredentials);
        };
        if !matches {
            let locked = self.count_failure(&mut tx, &account, now).await?;
            let why = if locked { "wrong_password_now_locked" } else { "wrong_password" };
            self.record_failed_login(&mut tx, ctx, now, &email, Some(account.holder), why).await?;
            tx.commit().await?;
            return Err(IdentityError::InvalidCredentials);
        }
        if account.disabled {
            self.record_failed_login(&mut tx, ctx, now, &email, Some(account.holder), "disabled").await?;
            tx.commit().await?;
            return Err(IdentityError::AccountDisabled);
        }
        let granted = self.open_session(&mut tx, ctx, &account, now).await?;
        tx.commit().await?;
        Ok(granted)
    }

    async fn open_session(
        &self,
        tx: &mut Tx,
        ctx: &AuditCtx,
        account: &Account,
        now: Timestamp,
    ) -> Result<LoginGranted, IdentityError> {
        let table = account.holder.table();
        sql!(tx.conn(), |c| {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE {table} SET failed_logins = 0, locked_until_us = NULL WHERE id = $1"
            )))
            .bind(account.holder.id_db())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        })?;
        let token = tokens::generate(SESSION_TOKEN_PREFIX)?;
        let session_id = SessionId::new();
        let ttl = Duration::minutes(i64::from(self.policy.session_ttl_minutes));
        let expires_at =
            now.checked_add(ttl).ok_or_else(|| IdentityError::invalid("session_ttl_minutes", "too large"))?;
        let (staff_id, customer_id) = match account.holder {
            Holder::Staff(id) => (Some(id.to_db()), None),
            Holder::Customer(id) => (None, Some(id.to_db())),
        };
        sql!(tx.conn(), |c| {
            sqlx::query(
                "INSERT INTO sessions (id, token_hash, staff_id, customer_id, created_at_us, expires_at_us, source_ip) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(session_id.to_db())
            .bind(token.digest.as_slice())
            .bind(staff_id.as_deref())
            .bind(customer_id.as_deref())
            .bind(now.unix_micros())
            .bind(expires_at.unix_micros())
            .bind(ctx.source_ip.as_deref())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        })?;
        let mut login_ctx = ctx.clone();
        login_ctx.actor = match account.holder {
            Holder::Staff(id) => crate::Actor::Staff {
                id,
                role: StaffRole::ALL.into_iter().find(|r| Role::from(*r) == account.role).unwrap_or(StaffRole::Auditor),
            },
            Holder::Customer(id) => crate::Actor::Customer { id },
        };
        let event = AuditEvent::ok("auth.login", "session", session_id)
            .details(json!({ "email": account.email, "expires_at": expires_at }));
        audit::record(tx, &login_ctx, now, event).await?;
        Ok(LoginGranted {
            token: token.text,
            session_id,
            expires_at,
            role: account.role,
            subject_id: account.holder.id_display(),
        })
    }

    /// Counts a wrong password; returns true when this failure locked the account.
    async fn count_failure(&self, tx: &mut Tx, account: &Account, now: Timestamp) -> Result<bool, IdentityError> {
        let failures = account.failed_logins.saturating_add(1);
        let lock = failures >= i64::from(self.policy.login_failures_max);
        let locked_until = lock
            .then(|| now.checked_add(Duration::minutes(i64::from(self.policy.lockout_minutes))))
            .flatten()
            .map(Timestamp::unix_micros);
        let table = account.holder.table();
        sql!(tx.conn(), |c| {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE {table} SET failed_logins = $2, locked_until_us = $3 WHERE id = $1"
            )))
            .bind(account.holder.id_db())
            .bind(if lock { 0 } else { failures })
            .bind(locked_until)
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        })?;
        if lock {
            tracing::warn!(account = %account.holder.id_display(), "account locked after repeated failed logins");
        }
        Ok(lock)
    }

    async fn record_failed_login(
        &self,
        tx: &mut Tx,
        ctx: &AuditCtx,
        now: Timestamp,
        email: &Email,
        target: Option<Holder>,
        why: &str,
    ) -> Result<(), IdentityError> {
        let event = AuditEvent {
            action: "auth.login",
            target_kind: target.map(|h| match h {
                Holder::Staff(_) => "staff",
                Holder::Customer(_) => "customer",
            }),
            target_id: target.map(Holder::id_display),
            outcome: Outcome::Denied,
            details: json!({ "email": email.as_str(), "why": why }),
        };
        audit::record(tx, ctx, now, event).await?;
        Ok(())
    }

    /// Resolves a bearer token to the caller, checking expiry, revocation and whether the
    /// account is still enabled — on every request, so a revocation takes effect at once.
    pub async fn authenticate(&self, token: &SecretString) -> Result<Principal, IdentityError> {
        match tokens::classify(token)? {
            TokenKind::Session => self.authenticate_session(token).await,
            TokenKind::ApiKey => self.authenticate_api_key(token).await,
        }
    }

    async fn authenticate_session(&self, token: &SecretString) -> Result<Principal, IdentityError> {
        type Row =
            (String, i64, Option<i64>, Option<String>, Option<String>, Option<String>, Option<bool>, Option<bool>);
        let digest = tokens::digest(token.expose_secret());
        let row: Option<Row> = sql!(self.db.reader(), |c| {
            sqlx::query_as(
                "SELECT s.id, s.expires_at_us, s.revoked_at_us, s.staff_id, s.customer_id, st.role, st.disabled, \
                 cu.disabled FROM sessions s LEFT JOIN staff_users st ON st.id = s.staff_id \
                 LEFT JOIN customers cu ON cu.id = s.customer_id WHERE s.token_hash = $1",
            )
            .bind(digest.as_slice())
            .fetch_optional(c)
            .await
        })?;
        let Some((id, expires_us, revoked_us, staff_id, customer_id, role, staff_disabled, customer_disabled)) = row
        else {
            return Err(IdentityError::TokenInvalid);
        };
        if revoked_us.is_some() {
            return Err(IdentityError::TokenInvalid);
        }
        if decode_time(expires_us)? <= self.clock.now() {
            return Err(IdentityError::TokenExpired);
        }
        let session = decode_id(&id, SessionId::from_db)?;
        match (staff_id, customer_id) {
            (Some(staff), None) => {
                if staff_disabled.unwrap_or(true) {
                    return Err(IdentityError::AccountDisabled);
                }
                let role = role
                    .as_deref()
                    .and_then(StaffRole::parse)
                    .ok_or_else(|| StoreError::Corrupt("staff role".into()))?;
                Ok(Principal::Staff { id: decode_id(&staff, StaffId::from_db)?, role, session })
            }
            (None, Some(customer)) => {
                if customer_disabled.unwrap_or(true) {
                    return Err(IdentityError::AccountDisabled);
                }
                Ok(Principal::Customer { id: decode_id(&customer, CustomerId::from_db)?, session })
            }
            _ => Err(StoreError::Corrupt(format!("session {id} has no single holder")).into()),
        }
    }

    async fn authenticate_api_key(&self, token: &SecretString) -> Result<Principal, IdentityError> {
        let digest = tokens::digest(token.expose_secret());
        type Row = (String, String, Option<i64>, Option<i64>, bool);
        let row: Option<Row> = sql!(self.db.reader(), |c| {
            sqlx::query_as(
                "SELECT k.id, k.partner_id, k.revoked_at_us, k.last_used_at_us, p.disabled \
                 FROM partner_api_keys k JOIN partners p ON p.id = k.partner_id WHERE k.token_hash = $1",
            )
            .bind(digest.as_slice())
            .fetch_optional(c)
            .await
        })?;
        let Some((key_id, partner_id, revoked_us, last_used_us, partner_disabled)) = row else {
            return Err(IdentityError::TokenInvalid);
        };
        if revoked_us.is_some() {
            return Err(IdentityError::TokenInvalid);
        }
        if partner_disabled {
            return Err(IdentityError::AccountDisabled);
        }
        let key = decode_id(&key_id, ApiKeyId::from_db)?;
        let now = self.clock.now().unix_micros();
        if last_used_us.is_none_or(|used| now.saturating_sub(used) > KEY_LAST_USED_RESOLUTION_US) {
            self.touch_api_key(key, now).await;
        }
        Ok(Principal::Partner { id: decode_id(&partner_id, PartnerId::from_db)?, key })
    }

    /// Best effort: a failure to note the last use must not fail the partner's request.
    async fn touch_api_key(&self, key: ApiKeyId, now_us: i64) {
        let result: Result<(), StoreError> = async {
            let mut tx = self.db.begin().await?;
            sql!(tx.conn(), |c| {
                sqlx::query("UPDATE partner_api_keys SET last_used_at_us = $2 WHERE id = $1")
                    .bind(key.to_db())
                    .bind(now_us)
                    .execute(c)
                    .await
                    .map(|r| r.rows_affected())
            })?;
            tx.commit().await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(key = %key, error = %e, "could not record API key use");
        }
    }

    /// Ends the caller's session.
    pub async fn logout(&self, ctx: &AuditCtx, principal: &Principal) -> Result<(), IdentityError> {
        let Some(session) = principal.session() else {
            return Err(IdentityError::invalid(
                "authorization",
                "API keys have no session to end; revoke the key instead",
            ));
        };
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        sql!(tx.conn(), |c| {
            sqlx::query("UPDATE sessions SET revoked_at_us = $2 WHERE id = $1 AND revoked_at_us IS NULL")
                .bind(session.to_db())
                .bind(now.unix_micros())
                .execute(c)
                .await
                .map(|r| r.rows_affected())
        })?;
        audit::record(&mut tx, ctx, now, AuditEvent::ok("auth.logout", "session", session)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Changes the caller's own password, after checking the current one, and ends every
    /// other session of the account (a stolen token dies with the old password).
    pub async fn change_password(
        &self,
        ctx: &AuditCtx,
        principal: &Principal,
        change: PasswordChange,
    ) -> Result<(), IdentityError> {
        let holder = match principal {
            Principal::Staff { id, .. } => Holder::Staff(*id),
            Principal::Customer { id, .. } => Holder::Customer(*id),
            Principal::Partner { .. } => {
                return Err(IdentityError::invalid(
                    "authorization",
                    "partners authenticate with API keys, not passwords",
                ));
            }
        };
        let table = holder.table();
        let row: Option<(String, String, Option<String>)> = sql!(self.db.reader(), |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT email, display_name, password_hash FROM {table} WHERE id = $1"
            )))
            .bind(holder.id_db())
            .fetch_optional(c)
            .await
        })?;
        let (email, name, stored) =
            row.ok_or_else(|| IdentityError::NotFound { kind: "account", id: holder.id_display() })?;
        let current = change.current_password.expose_secret();
        if current.is_empty()
            || current.len() > password::PASSWORD_BYTES_MAX
            || !self.hasher.verify(&change.current_password, stored.as_deref()).await?
        {
            return Err(IdentityError::WrongCurrentPassword);
        }
        if change.new_password.expose_secret() == current {
            return Err(IdentityError::WeakPassword("must differ from the current password".into()));
        }
        password::check_strength(&change.new_password, &[&email, &name])?;
        let hash = self.hasher.hash(&change.new_password).await?;
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let extra = if matches!(holder, Holder::Staff(_)) { ", password_changed_at_us = $3" } else { "" };
        sql!(tx.conn(), |c| {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE {table} SET password_hash = $2, updated_at_us = $3{extra} WHERE id = $1"
            )))
            .bind(holder.id_db())
            .bind(hash.as_str())
            .bind(now.unix_micros())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        })?;
        let ended = revoke_all(&mut tx, holder, now, principal.session()).await?;
        let event = AuditEvent::ok("auth.password_change", holder_kind(holder), holder.id_display())
            .details(json!({ "other_sessions_ended": ended }));
        audit::record(&mut tx, ctx, now, event).await?;
        tx.commit().await?;
        Ok(())
    }
}

fn holder_kind(holder: Holder) -> &'static str {
    match holder {
        Holder::Staff(_) => "staff",
        Holder::Customer(_) => "customer",
    }
}

/// Revokes every live session of `holder` except `keep`; returns how many ended.
pub(crate) async fn revoke_all(
    tx: &mut Tx,
    holder: Holder,
    now: Timestamp,
    keep: Option<SessionId>,
) -> Result<u64, IdentityError> {
    let column = match holder {
        Holder::Staff(_) => "staff_id",
        Holder::Customer(_) => "customer_id",
    };
    let keep = keep.map(|s| s.to_db());
    Ok(sql!(tx.conn(), |c| {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE sessions SET revoked_at_us = $2 WHERE {column} = $1 AND revoked_at_us IS NULL \
             AND ($3 IS NULL OR id <> $3)"
        )))
        .bind(holder.id_db())
        .bind(now.unix_micros())
        .bind(keep.as_deref())
        .execute(c)
        .await
        .map(|r| r.rows_affected())
    })?)
}
