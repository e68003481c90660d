//! Partners (banks, retailers, apps) and their API keys. A key is shown once when made,
//! stored as a digest, and can be revoked; a partner sees only what it sold.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;
use smartticket_core::Timestamp;
use smartticket_core::id::{ApiKeyId, PartnerId};
use smartticket_core::paging::{Page, PageSpec};
use smartticket_store::{Target, Tx, decode_id, decode_time, sql, unique_or};
use sqlx::{PgExecutor, SqliteExecutor};
use utoipa::ToSchema;

use crate::audit::{self, AuditCtx, AuditEvent};
use crate::staff::check_display_name;
use crate::tokens::{self, API_KEY_PREFIX, API_KEY_SHOWN_CHARS};
use crate::{Email, Identity, IdentityError};

/// Most unrevoked keys one partner may hold: enough to rotate per environment, few
/// enough that a forgotten key is noticed.
pub const API_KEYS_PER_PARTNER_MAX: i64 = 10;

/// A partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Partner {
    /// Id.
    pub id: PartnerId,
    /// Unique name.
    pub name: String,
    /// Where to write about the integration.
    pub contact_email: String,
    /// A disabled partner's keys stop working.
    pub disabled: bool,
    /// When the partner was added.
    pub created_at: Timestamp,
}

/// A partner to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPartner {
    /// Unique name.
    pub name: String,
    /// Contact email.
    pub contact_email: String,
}

/// An API key as listed: everything but the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ApiKeyInfo {
    /// Id.
    pub id: ApiKeyId,
    /// The partner it belongs to.
    pub partner_id: PartnerId,
    /// What the partner uses it for.
    pub label: String,
    /// The key's first characters, to tell keys apart.
    pub prefix: String,
    /// Who made it.
    pub created_by: String,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it was revoked; revoked keys authenticate nothing.
    pub revoked_at: Option<Timestamp>,
    /// Roughly when it was last used (updated at most every five minutes).
    pub last_used_at: Option<Timestamp>,
}

/// A key to make.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    /// What it is for (`production`, `test shop`).
    pub label: String,
}

/// A freshly made key: the only time its text is available.
#[derive(Serialize, ToSchema)]
pub struct IssuedApiKey {
    /// The key's record.
    #[serde(flatten)]
    pub info: ApiKeyInfo,
    /// The key. Store it now: it cannot be shown again.
    #[schema(value_type = String)]
    #[serde(serialize_with = "expose")]
    pub key: SecretString,
}

fn expose<S: serde::Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose_secret())
}

impl std::fmt::Debug for IssuedApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedApiKey").field("info", &self.info).finish_non_exhaustive()
    }
}

type PartnerRow = (String, String, String, bool, i64);
type KeyRow = (String, String, String, String, String, i64, Option<i64>, Option<i64>);
const KEY_COLUMNS: &str =
    "id, partner_id, label, token_prefix, created_by, created_at_us, revoked_at_us, last_used_at_us";

fn partner_from_row(row: PartnerRow) -> Result<Partner, IdentityError> {
    let (id, name, contact_email, disabled, created_us) = row;
    Ok(Partner {
        id: decode_id(&id, PartnerId::from_db)?,
        name,
        contact_email,
        disabled,
        created_at: decode_time(created_us)?,
    })
}

fn key_from_row(row: KeyRow) -> Result<ApiKeyInfo, IdentityError> {
    let (id, partner_id, label, prefix, created_by, created_us, revoked_us, used_us) = row;
    Ok(ApiKeyInfo {
        id: decode_id(&id, ApiKeyId::from_db)?,
        partner_id: decode_id(&partner_id, PartnerId::from_db)?,
        label,
        prefix,
        created_by,
        created_at: decode_time(created_us)?,
        revoked_at: revoked_us.map(decode_time).transpose()?,
        last_used_at: used_us.map(decode_time).transpose()?,
    })
}

impl Identity {
    /// Adds a partner.
    pub async fn create_partner(&self, ctx: &AuditCtx, new: NewPartner) -> Result<Partner, IdentityError> {
        let name = check_display_name("name", &new.name)?;
        let contact = Email::parse(&new.contact_email).map_err(|e| match e {
            IdentityError::Invalid { message, .. } => IdentityError::Invalid { field: "contact_email", message },
            other => other,
        })?;
        let id = PartnerId::new();
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let inserted = sql!(tx.conn(), |c| {
            sqlx::query(
                "INSERT INTO partners (id, name, contact_email, created_at_us, updated_at_us) VALUES ($1, $2, $3, $4, $4)",
            )
            .bind(id.to_db())
            .bind(name.as_str())
            .bind(contact.as_str())
            .bind(now.unix_micros())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        });
        unique_or(inserted, || IdentityError::NameTaken)?;
        let event = AuditEvent::ok("partner.create", "partner", id)
            .details(json!({ "name": name, "contact_email": contact.as_str() }));
        audit::record(&mut tx, ctx, now, event).await?;
        let partner = fetch_partner(&mut tx, id).await?;
        tx.commit().await?;
        Ok(partner)
    }

    /// One partner.
    pub async fn partner(&self, id: PartnerId) -> Result<Partner, IdentityError> {
        select_partner(self.db.reader(), id).await
    }

    /// Partners in order of creation.
    pub async fn list_partners(&self, page: &PageSpec<String>) -> Result<Page<Partner>, IdentityError> {
        let rows: Vec<PartnerRow> = sql!(self.db.reader(), |c| {
            sqlx::query_as(
                "SELECT id, name, contact_email, disabled, created_at_us FROM partners \
                 WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2",
            )
            .bind(page.after.as_deref())
            .bind(page.fetch_rows())
            .fetch_all(c)
            .await
        })?;
        let partners = rows.into_iter().map(partner_from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(partners, page, |p| p.id.to_db()))
    }

    /// Makes an API key for a partner and returns its text, the only time it is shown.
    pub async fn create_api_key(
        &self,
        ctx: &AuditCtx,
        partner_id: PartnerId,
        new: NewApiKey,
    ) -> Result<IssuedApiKey, IdentityError> {
        let label = check_display_name("label", &new.label)?;
        let token = tokens::generate(API_KEY_PREFIX)?;
        let prefix: String = token.text.expose_secret().chars().take(API_KEY_SHOWN_CHARS).collect();
        let id = ApiKeyId::new();
        let now = self.clock.now();
        let created_by = match &ctx.actor {
            crate::Actor::Staff { id, .. } => id.to_string(),
            crate::Actor::System { component } => component.clone(),
            _ => "unknown".to_owned(),
        };
        let mut tx = self.db.begin().await?;
        fetch_partner(&mut tx, partner_id).await?;
        let live_keys: i64 = sql!(tx.conn(), |c| {
            sqlx::query_scalar("SELECT count(*) FROM partner_api_keys WHERE partner_id = $1 AND revoked_at_us IS NULL")
                .bind(partner_id.to_db())
                .fetch_one(c)
                .await
        })?;
        if live_keys >= API_KEYS_PER_PARTNER_MAX {
            return Err(IdentityError::invalid(
                "label",
                format!("the partner already has {API_KEYS_PER_PARTNER_MAX} active keys: revoke one first"),
            ));
        }
        sql!(tx.conn(), |c| {
            sqlx::query(
                "INSERT INTO partner_api_keys (id, partner_id, label, token_hash, token_prefix, created_by, \
                 created_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(id.to_db())
            .bind(partner_id.to_db())
            .bind(label.as_str())
            .bind(token.digest.as_slice())
            .bind(prefix.as_str())
            .bind(created_by.as_str())
            .bind(now.unix_micros())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        })?;
        let event = AuditEvent::ok("partner.api_key.create", "api_key", id)
            .details(json!({ "partner_id": partner_id, "label": label, "prefix": prefix }));
        audit::record(&mut tx, ctx, now, event).await?;
        let info = fetch_key(&mut tx, partner_id, id).await?;
        tx.commit().await?;
        Ok(IssuedApiKey { info, key: token.text })
    }

    /// A partner's keys, newest last, without their texts.
    pub async fn list_api_keys(&self, partner_id: PartnerId) -> Result<Vec<ApiKeyInfo>, IdentityError> {
        self.partner(partner_id).await?;
        // Bounded: at most API_KEYS_PER_PARTNER_MAX live keys, and revoked ones are few.
        let rows: Vec<KeyRow> = sql!(self.db.reader(), |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {KEY_COLUMNS} FROM partner_api_keys WHERE partner_id = $1 ORDER BY id LIMIT 1000"
            )))
            .bind(partner_id.to_db())
            .fetch_all(c)
            .await
        })?;
        rows.into_iter().map(key_from_row).collect()
    }

    /// Revokes a key at once; requests using it fail from now on. Revoking twice is
    /// harmless and keeps the first revocation time.
    pub async fn revoke_api_key(
        &self,
        ctx: &AuditCtx,
        partner_id: PartnerId,
        key_id: ApiKeyId,
    ) -> Result<ApiKeyInfo, IdentityError> {
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let before = fetch_key(&mut tx, partner_id, key_id).await?;
        if before.revoked_at.is_none() {
            sql!(tx.conn(), |c| {
                sqlx::query("UPDATE partner_api_keys SET revoked_at_us = $2 WHERE id = $1")
                    .bind(key_id.to_db())
                    .bind(now.unix_micros())
                    .execute(c)
                    .await
                    .map(|r| r.rows_affected())
            })?;
        }
        let event = AuditEvent::ok("partner.api_key.revoke", "api_key", key_id)
            .details(json!({ "partner_id": partner_id, "already_revoked": before.revoked_at.is_some() }));
        audit::record(&mut tx, ctx, now, event).await?;
        let after = fetch_key(&mut tx, partner_id, key_id).await?;
        tx.commit().await?;
        Ok(after)
    }
}

async fn fetch_partner(tx: &mut Tx, id: PartnerId) -> Result<Partner, IdentityError> {
    select_partner(tx.conn(), id).await
}

/// One partner, read through a pool or inside a transaction.
async fn select_partner<'e>(
    target: Target<impl SqliteExecutor<'e>, impl PgExecutor<'e>>,
    id: PartnerId,
) -> Result<Partner, IdentityError> {
    let row: Option<PartnerRow> = sql!(target, |c| {
        sqlx::query_as("SELECT id, name, contact_email, disabled, created_at_us FROM partners WHERE id = $1")
            .bind(id.to_db())
            .fetch_optional(c)
            .await
    })?;
    row.map(partner_from_row).transpose()?.ok_or_else(|| partner_not_found(id))
}

async fn fetch_key(tx: &mut Tx, partner_id: PartnerId, id: ApiKeyId) -> Result<ApiKeyInfo, IdentityError> {
    let row: Option<KeyRow> = sql!(tx.conn(), |c| {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM partner_api_keys WHERE id = $1 AND partner_id = $2"
        )))
        .bind(id.to_db())
        .bind(partner_id.to_db())
        .fetch_optional(c)
        .await
    })?;
    row.map(key_from_row).transpose()?.ok_or_else(|| IdentityError::NotFound { kind: "API key", id: id.to_string() })
}

fn partner_not_found(id: PartnerId) -> IdentityError {
    IdentityError::NotFound { kind: "partner", id: id.to_string() }
}
