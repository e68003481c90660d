//! Staff users: the people of operators, carriers and the back office, each with one
//! role. Creating, changing and disabling them is an administrator's job and audited.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;
use smartticket_core::Timestamp;
use smartticket_core::id::StaffId;
use smartticket_core::paging::{Page, PageSpec};
use smartticket_store::{Target, Tx, decode_id, decode_time, sql, unique_or};
use sqlx::{PgExecutor, SqliteExecutor};
use utoipa::ToSchema;

use crate::audit::{self, AuditCtx, AuditEvent};
use crate::{Identity, IdentityError, StaffRole};

/// Longest display name, in characters.
pub const DISPLAY_NAME_CHARS_MAX: usize = 100;

/// A staff user as the API shows it (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StaffUser {
    /// Id.
    pub id: StaffId,
    /// Login email, as entered.
    pub email: String,
    /// Name shown in the console and the audit log.
    pub display_name: String,
    /// What they may do.
    pub role: StaffRole,
    /// Disabled users cannot log in and their sessions stop working.
    pub disabled: bool,
    /// Set while the account is locked after failed logins.
    pub locked_until: Option<Timestamp>,
    /// When the user was created.
    pub created_at: Timestamp,
    /// When the user was last changed.
    pub updated_at: Timestamp,
}

/// A staff user to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStaff {
    /// Login email; unique among staff.
    pub email: String,
    /// Name shown in the console.
    pub display_name: String,
    /// Role.
    pub role: StaffRole,
    /// Initial password; must pass the password policy.
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

/// Changes to a staff user; absent fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffChanges {
    /// New display name.
    pub display_name: Option<String>,
    /// New role.
    pub role: Option<StaffRole>,
    /// Disable (true) or re-enable (false).
    pub disabled: Option<bool>,
}

/// Checks a display name: trimmed, 1 to 100 characters, no control characters.
pub fn check_display_name(field: &'static str, name: &str) -> Result<String, IdentityError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(IdentityError::invalid(field, "is required"));
    }
    if name.chars().count() > DISPLAY_NAME_CHARS_MAX {
        return Err(IdentityError::invalid(field, format!("is longer than {DISPLAY_NAME_CHARS_MAX} characters")));
    }
    if name.chars().any(char::is_control) {
        return Err(IdentityError::invalid(field, "contains control characters"));
    }
    Ok(name.to_owned())
}

type StaffRow = (String, String, String, String, bool, Option<i64>, i64, i64);
const STAFF_COLUMNS: &str = "id, email, display_name, role, disabled, locked_until_us, created_at_us, updated_at_us";

fn staff_from_row(row: StaffRow) -> Result<StaffUser, IdentityError> {
    let (id, email, display_name, role, disabled, locked_until_us, created_at_us, updated_at_us) = row;
    let role = StaffRole::parse(&role)
        .ok_or_else(|| smartticket_store::StoreError::Corrupt(format!("staff role `{role}`")))?;
    Ok(StaffUser {
        id: decode_id(&id, StaffId::from_db)?,
        email,
        display_name,
        role,
        disabled,
        locked_until: locked_until_us.map(decode_time).transpose()?,
        created_at: decode_time(created_at_us)?,
        updated_at: decode_time(updated_at_us)?,
    })
}

impl Identity {
    /// Creates a staff user. The email must be new among staff and the password must
    /// pass the policy.
    pub async fn create_staff(&self, ctx: &AuditCtx, new: NewStaff) -> Result<StaffUser, IdentityError> {
        let account = self.new_account(&new.email, &new.display_name, &new.password).await?;
        let (email, display_name) = (&account.email, &account.display_name);
        let id = StaffId::new();
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let inserted = sql!(tx.conn(), |c| {
            sqlx::query(
                "INSERT INTO staff_users (id, email, email_normalized, display_name, role, password_hash, \
                 password_changed_at_us, created_at_us, updated_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $7)",
            )
            .bind(id.to_db())
            .bind(email.as_str())
            .bind(email.normalized())
            .bind(display_name.as_str())
            .bind(new.role.as_str())
            .bind(account.password_hash.as_str())
            .bind(now.unix_micros())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        });
        unique_or(inserted, || IdentityError::EmailTaken)?;
        let event = AuditEvent::ok("staff.create", "staff", id)
            .details(json!({ "email": email.as_str(), "display_name": display_name, "role": new.role }));
        audit::record(&mut tx, ctx, now, event).await?;
        let user = fetch_staff(&mut tx, id).await?;
        tx.commit().await?;
        tracing::info!(staff = %id, role = %new.role, "staff user created");
        Ok(user)
    }

    /// One staff user.
    pub async fn staff(&self, id: StaffId) -> Result<StaffUser, IdentityError> {
        select_staff(self.db.reader(), id).await
    }

    /// Staff users in order of creation, one page at a time.
    pub async fn list_staff(&self, page: &PageSpec<String>) -> Result<Page<StaffUser>, IdentityError> {
        let rows: Vec<StaffRow> = sql!(self.db.reader(), |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {STAFF_COLUMNS} FROM staff_users WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2"
            )))
            .bind(page.after.as_deref())
            .bind(page.fetch_rows())
            .fetch_all(c)
            .await
        })?;
        let users = rows.into_iter().map(staff_from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(users, page, |u| u.id.to_db()))
    }

    /// Changes a staff user's name, role or disabled flag. Refuses to leave the system
    /// without an active administrator. Disabling ends the user's sessions.
    pub async fn update_staff(
        &self,
        ctx: &AuditCtx,
        id: StaffId,
        changes: StaffChanges,
    ) -> Result<StaffUser, IdentityError> {
        let display_name =
            changes.display_name.as_deref().map(|n| check_display_name("display_name", n)).transpose()?;
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let before = fetch_staff(&mut tx, id).await?;
        let role = changes.role.unwrap_or(before.role);
        let disabled = changes.disabled.unwrap_or(before.disabled);
        let was_active_admin = before.role == StaffRole::Admin && !before.disabled;
        let stays_active_admin = role == StaffRole::Admin && !disabled;
        if was_active_admin && !stays_active_admin && active_admins(&mut tx).await? <= 1 {
            return Err(IdentityError::LastAdmin);
        }
        let display_name = display_name.unwrap_or_else(|| before.display_name.clone());
        sql!(tx.conn(), |c| {
            sqlx::query(
                "UPDATE staff_users SET display_name = $2, role = $3, disabled = $4, updated_at_us = $5 WHERE id = $1",
            )
            .bind(id.to_db())
            .bind(display_name.as_str())
            .bind(role.as_str())
            .bind(disabled)
            .bind(now.unix_micros())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        })?;
        if disabled && !before.disabled {
            crate::sessions::revoke_all(&mut tx, crate::sessions::Holder::Staff(id), now, None).await?;
        }
        let event = AuditEvent::ok("staff.update", "staff", id).details(json!({
            "before": { "display_name": before.display_name, "role": before.role, "disabled": before.disabled },
            "after": { "display_name": display_name, "role": role, "disabled": disabled },
        }));
        audit::record(&mut tx, ctx, now, event).await?;
        let after = fetch_staff(&mut tx, id).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Active administrators, for tools that must not lock everyone out.
    pub async fn count_active_admins(&self) -> Result<i64, IdentityError> {
        let mut tx = self.db.begin().await?;
        let count = active_admins(&mut tx).await?;
        tx.rollback().await?;
        Ok(count)
    }
}

pub(crate) async fn fetch_staff(tx: &mut Tx, id: StaffId) -> Result<StaffUser, IdentityError> {
    select_staff(tx.conn(), id).await
}

/// One staff user, read through a pool or inside a transaction.
async fn select_staff<'e>(
    target: Target<impl SqliteExecutor<'e>, impl PgExecutor<'e>>,
    id: StaffId,
) -> Result<StaffUser, IdentityError> {
    let row: Option<StaffRow> = sql!(target, |c| {
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {STAFF_COLUMNS} FROM staff_users WHERE id = $1")))
            .bind(id.to_db())
            .fetch_optional(c)
            .await
    })?;
    row.map(staff_from_row).transpose()?.ok_or_else(|| not_found(id))
}

async fn active_admins(tx: &mut Tx) -> Result<i64, IdentityError> {
    Ok(sql!(tx.conn(), |c| {
        sqlx::query_scalar("SELECT count(*) FROM staff_users WHERE role = 'admin' AND NOT disabled").fetch_one(c).await
    })?)
}

fn not_found(id: StaffId) -> IdentityError {
    IdentityError::NotFound { kind: "staff user", id: id.to_string() }
}
