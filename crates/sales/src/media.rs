//! The media registry: fare cards (by UID and printed number), bank cards (only a token
//! and a masked number, through the token gate), phone secure elements and phone/QR
//! tokens; who owns each; and every lifecycle change, audited.
//!
//! Visibility: staff see every medium; a customer sees their own; a partner sees the
//! media it registered and anonymous cards (which anyone may top up). A medium outside
//! the caller's view answers "not found", exactly like one that does not exist.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;
use smartticket_core::Timestamp;
use smartticket_core::id::{CustomerId, MediumId, PartnerId};
use smartticket_crypto::keys::KeyRole;
use smartticket_crypto::token::{Expiry, Pan, PanToken, token_input};
use smartticket_identity::audit::{self, AuditEvent};
use smartticket_identity::{AuditCtx, Principal};
use smartticket_store::{Target, Tx, decode_id, decode_time, sql, unique_or};
use sqlx::{PgExecutor, SqliteExecutor};
use utoipa::ToSchema;

use crate::lifecycle::{MediumEvent, MediumStatus};
use crate::{Sales, SalesError};

/// Longest label a customer may give a medium.
pub const LABEL_CHARS_MAX: usize = 60;
/// Longest printed card number.
pub const PRINTED_NUMBER_CHARS_MAX: usize = 24;

/// What kind of carrier a medium is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MediumKind {
    /// A SmartTicket fare card (DESFire EV2/EV3): entitlements are written onto it.
    FareCard,
    /// A bank card used as a token (KIDSOK): entitlements go to the greenlist.
    BankCard,
    /// A phone's secure element holding the fare application (installed through a TSM).
    PhoneSe,
    /// A phone app token (greenlist).
    PhoneToken,
    /// A QR code token (greenlist).
    QrToken,
}

impl MediumKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            MediumKind::FareCard => "fare_card",
            MediumKind::BankCard => "bank_card",
            MediumKind::PhoneSe => "phone_se",
            MediumKind::PhoneToken => "phone_token",
            MediumKind::QrToken => "qr_token",
        }
    }

    fn parse(text: &str) -> Option<MediumKind> {
        [MediumKind::FareCard, MediumKind::BankCard, MediumKind::PhoneSe, MediumKind::PhoneToken, MediumKind::QrToken]
            .into_iter()
            .find(|k| k.as_str() == text)
    }

    /// Whether entitlements are written onto the medium (rather than listed in the greenlist).
    pub fn carries_data(self) -> bool {
        matches!(self, MediumKind::FareCard | MediumKind::PhoneSe)
    }
}

/// A medium as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Medium {
    /// Id.
    pub id: MediumId,
    /// Kind.
    pub kind: MediumKind,
    /// Lifecycle status.
    pub status: MediumStatus,
    /// The owner, if registered to an account.
    pub customer_id: Option<CustomerId>,
    /// The owner's name for it.
    pub label: Option<String>,
    /// A fare card's printed number.
    pub printed_number: Option<String>,
    /// A fare card's UID (hex).
    pub uid: Option<String>,
    /// A bank card's masked number, e.g. `4276 **** **** 1234`.
    pub masked_pan: Option<String>,
    /// A bank card's expiry, `YYMM`.
    pub card_expiry: Option<String>,
    /// The code on the registration receipt, asked for when blocking at a counter
    /// (KIDSOK 3.2.3). Shown to the owner and staff only.
    pub registration_receipt: Option<String>,
    /// Why the status last changed.
    pub status_reason: Option<String>,
    /// The medium that replaced this one.
    pub replaced_by: Option<MediumId>,
    /// When it was first activated.
    pub activated_at: Option<Timestamp>,
    /// When it was registered in the system.
    pub created_at: Timestamp,
}

/// Who is asking, for visibility.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Staff: everything.
    Staff,
    /// A customer: their own media.
    Customer(CustomerId),
    /// A partner: media it registered, and anonymous cards.
    Partner(PartnerId),
}

impl From<&Principal> for Scope {
    fn from(principal: &Principal) -> Scope {
        match principal {
            Principal::Staff { .. } => Scope::Staff,
            Principal::Customer { id, .. } => Scope::Customer(*id),
            Principal::Partner { id, .. } => Scope::Partner(*id),
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct MediumRow {
    id: String,
    kind: String,
    status: String,
    customer_id: Option<String>,
    partner_id: Option<String>,
    label: Option<String>,
    uid: Option<String>,
    printed_number: Option<String>,
    masked_pan: Option<String>,
    card_expiry: Option<String>,
    registration_receipt: Option<String>,
    next_contract_serial: i64,
    status_reason: Option<String>,
    replaced_by: Option<String>,
    created_at_us: i64,
    activated_at_us: Option<i64>,
}

const MEDIUM_COLUMNS: &str = "id, kind, status, customer_id, partner_id, label, uid, printed_number, masked_pan, \
    card_expiry, registration_receipt, next_contract_serial, status_reason, replaced_by, created_at_us, activated_at_us";

/// A medium with the internal fields the API does not show.
#[derive(Debug, Clone)]
pub(crate) struct MediumRecord {
    pub medium: Medium,
    pub partner_id: Option<PartnerId>,
    /// The serial the card's next contract will carry.
    pub next_contract_serial: i64,
}

impl MediumRecord {
    fn from_row(row: MediumRow) -> Result<MediumRecord, SalesError> {
        let corrupt = |what: &str| smartticket_store::StoreError::Corrupt(format!("medium {}: {what}", row.id));
        let medium = Medium {
            id: decode_id(&row.id, MediumId::from_db)?,
            kind: MediumKind::parse(&row.kind).ok_or_else(|| corrupt("kind"))?,
            status: MediumStatus::parse(&row.status).ok_or_else(|| corrupt("status"))?,
            customer_id: row.customer_id.as_deref().map(|id| decode_id(id, CustomerId::from_db)).transpose()?,
            label: row.label,
            printed_number: row.printed_number,
            uid: row.uid,
            masked_pan: row.masked_pan,
            card_expiry: row.card_expiry,
            registration_receipt: row.registration_receipt,
            status_reason: row.status_reason,
            replaced_by: row.replaced_by.as_deref().map(|id| decode_id(id, MediumId::from_db)).transpose()?,
            activated_at: row.activated_at_us.map(decode_time).transpose()?,
            created_at: decode_time(row.created_at_us)?,
        };
        Ok(MediumRecord {
            medium,
            partner_id: row.partner_id.as_deref().map(|id| decode_id(id, PartnerId::from_db)).transpose()?,
            next_contract_serial: row.next_contract_serial,
        })
    }

    /// Whether `scope` may see (and act on) this medium.
    pub fn visible_to(&self, scope: Scope) -> bool {
        match scope {
            Scope::Staff => true,
            Scope::Customer(customer) => self.medium.customer_id == Some(customer),
            Scope::Partner(partner) => {
                self.partner_id == Some(partner) || (self.medium.customer_id.is_none() && self.partner_id.is_none())
            }
        }
    }
}

/// Fetches a medium by a column (`id`, `printed_number`, `uid`, `pan_token`).
async fn select_by<'e>(
    target: Target<impl SqliteExecutor<'e>, impl PgExecutor<'e>>,
    column: &'static str,
    value: &str,
) -> Result<Option<MediumRecord>, SalesError> {
    let row: Option<MediumRow> = sql!(target, |c| {
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {MEDIUM_COLUMNS} FROM media WHERE {column} = $1")))
            .bind(value)
            .fetch_optional(c)
            .await
    })?;
    row.map(MediumRecord::from_row).transpose()
}

/// Media by id, many at once (group commit reads every medium of a batch in one query).
pub(crate) async fn fetch_many(tx: &mut Tx, ids: &[MediumId]) -> Result<Vec<MediumRecord>, SalesError> {
    let mut records = Vec::with_capacity(ids.len());
    for chunk in tx.statement_chunks(ids) {
        let rows: Vec<MediumRow> = sql!(tx.conn(), |c| {
            let mut select = sqlx::QueryBuilder::new(format!("SELECT {MEDIUM_COLUMNS} FROM media WHERE id IN ("));
            let mut list = select.separated(", ");
            for id in chunk {
                list.push_bind(id.to_db());
            }
            select.push(")");
            select.build_query_as().fetch_all(c).await
        })?;
        for row in rows {
            records.push(MediumRecord::from_row(row)?);
        }
    }
    Ok(records)
}

/// The medium `id` inside a transaction, if `scope` may see it.
pub(crate) async fn fetch_visible(tx: &mut Tx, scope: Scope, id: MediumId) -> Result<MediumRecord, SalesError> {
    select_by(tx.conn(), "id", &id.to_db())
        .await?
        .filter(|record| record.visible_to(scope))
        .ok_or_else(|| SalesError::not_found("medium", id))
}

/// The medium with card UID `uid` (upper-case hex), whoever may see it: a card held to a
/// reader identifies itself.
pub(crate) async fn fetch_by_uid(tx: &mut Tx, uid: &str) -> Result<Option<MediumRecord>, SalesError> {
    select_by(tx.conn(), "uid", uid).await
}

fn check_label(label: Option<&str>) -> Result<Option<String>, SalesError> {
    let Some(label) = label.map(str::trim).filter(|l| !l.is_empty()) else { return Ok(None) };
    if label.chars().count() > LABEL_CHARS_MAX || label.chars().any(char::is_control) {
        return Err(SalesError::invalid(
            "label",
            format!("at most {LABEL_CHARS_MAX} characters, no control characters"),
        ));
    }
    Ok(Some(label.to_owned()))
}

fn check_printed_number(number: &str) -> Result<String, SalesError> {
    let number: String = number.chars().filter(|c| !c.is_whitespace()).collect();
    if number.is_empty()
        || number.len() > PRINTED_NUMBER_CHARS_MAX
        || !number.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(SalesError::invalid("printed_number", "letters and digits only, at most 24"));
    }
    Ok(number.to_uppercase())
}

/// A fresh registration receipt code: 10 characters of Crockford base32 (no I, L, O, U),
/// easy to read aloud at a counter, 50 bits of randomness.
fn receipt_code() -> Result<String, SalesError> {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut random = [0_u8; 10];
    smartticket_crypto::random_bytes(&mut random).map_err(|e| SalesError::Conflict(e.to_string()))?;
    Ok(random.iter().map(|b| char::from(ALPHABET.get(usize::from(b & 0x1F)).copied().unwrap_or(b'0'))).collect())
}

/// Changes the status (through the lifecycle) and records why.
async fn transition(
    tx: &mut Tx,
    record: &MediumRecord,
    event: MediumEvent,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<MediumStatus, SalesError> {
    let next = record.medium.status.apply(event)?;
    let activated = (event == MediumEvent::Activate).then_some(now.unix_micros());
    sql!(tx.conn(), |c| {
        sqlx::query(
            "UPDATE media SET status = $2, status_reason = $3, updated_at_us = $4, \
             activated_at_us = COALESCE(activated_at_us, $5) WHERE id = $1 AND status = $6",
        )
        .bind(record.medium.id.to_db())
        .bind(next.as_str())
        .bind(reason)
        .bind(now.unix_micros())
        .bind(activated)
        .bind(record.medium.status.as_str())
        .execute(c)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(next)
}

/// The proof an anonymous card's holder gives (seed 001): two stations where the card was
/// used recently, or the amount of its last top-up.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum OwnershipProof {
    /// Two stations where the card was tapped in the last two weeks.
    Stations([String; 2]),
    /// The amount of the last top-up, in minor units.
    LastTopupMinor(i64),
}

impl Sales {
    async fn medium_record(&self, id: MediumId) -> Result<MediumRecord, SalesError> {
        select_by(self.db().reader(), "id", &id.to_db()).await?.ok_or_else(|| SalesError::not_found("medium", id))
    }

    /// One medium, if `scope` may see it.
    pub async fn medium(&self, scope: Scope, id: MediumId) -> Result<Medium, SalesError> {
        let record = self.medium_record(id).await?;
        if record.visible_to(scope) { Ok(record.medium) } else { Err(SalesError::not_found("medium", id)) }
    }

    /// A fare card by printed number or UID (staff and partners: to top up a card by its
    /// number).
    pub async fn find_card(
        &self,
        scope: Scope,
        printed_number: Option<&str>,
        uid: Option<&str>,
    ) -> Result<Medium, SalesError> {
        let found = match (printed_number, uid) {
            (Some(number), _) => {
                select_by(self.db().reader(), "printed_number", &check_printed_number(number)?).await?
            }
            (None, Some(uid)) => select_by(self.db().reader(), "uid", &uid.trim().to_uppercase()).await?,
            (None, None) => return Err(SalesError::invalid("printed_number", "give a printed number or a UID")),
        };
        let label = printed_number.or(uid).unwrap_or_default().to_owned();
        found.filter(|r| r.visible_to(scope)).map(|r| r.medium).ok_or_else(|| SalesError::not_found("card", label))
    }

    /// A customer's media, newest first (bounded: a person has a handful).
    pub async fn media_of(&self, customer: CustomerId) -> Result<Vec<Medium>, SalesError> {
        let rows: Vec<MediumRow> = sql!(self.db().reader(), |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {MEDIUM_COLUMNS} FROM media WHERE customer_id = $1 ORDER BY id DESC LIMIT 200"
            )))
            .bind(customer.to_db())
            .fetch_all(c)
            .await
        })?;
        rows.into_iter().map(|row| MediumRecord::from_row(row).map(|r| r.medium)).collect()
    }

    /// Registers a personalised card in stock (status manufactured).
    pub async fn register_stock(
        &self,
        ctx: &AuditCtx,
        uid: [u8; 7],
        printed_number: &str,
    ) -> Result<Medium, SalesError> {
        let number = check_printed_number(printed_number)?;
        let id = MediumId::new();
        let now = self.now();
        let uid = hex::encode_upper(uid);
        let mut tx = self.db().begin().await?;
        let inserted = sql!(tx.conn(), |c| {
            sqlx::query(
                "INSERT INTO media (id, kind, status, uid, printed_number, created_at_us, updated_at_us) \
                 VALUES ($1, 'fare_card', 'manufactured', $2, $3, $4, $4)",
            )
            .bind(id.to_db())
            .bind(uid.as_str())
            .bind(number.as_str())
            .bind(now.unix_micros())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        });
        unique_or(inserted, || SalesError::Conflict(format!("card {number} (UID {uid}) is already registered")))?;
        audit::record(
            &mut tx,
            ctx,
            now,
            AuditEvent::ok("medium.stock", "medium", id).details(json!({ "uid": uid, "printed_number": number })),
        )
        .await?;
        let record = fetch_visible(&mut tx, Scope::Staff, id).await?;
        tx.commit().await?;
        Ok(record.medium)
    }

    /// Applies a lifecycle event as staff (issue stock, unblock, destroy…), with a reason.
    pub async fn change_status(
        &self,
        ctx: &AuditCtx,
        scope: Scope,
        id: MediumId,
        event: MediumEvent,
        reason: Option<&str>,
    ) -> Result<Medium, SalesError> {
        let now = self.now();
        let mut tx = self.db().begin().await?;
        let record = fetch_visible(&mut tx, scope, id).await?;
        if scope != Scope::Staff && !matches!(event, MediumEvent::Block | MediumEvent::BlockPermanently) {
            return Err(SalesError::invalid("event", "only staff may do this; owners may block"));
        }
        if event == MediumEvent::Activate {
            return Err(SalesError::invalid("event", "use activation, which checks the one-active-card rule"));
        }
        let next = transition(&mut tx, &record, event, reason, now).await?;
        let details = json!({ "from": record.medium.status, "to": next, "event": event });
        audit::record(&mut tx, ctx, now, AuditEvent::ok("medium.status", "medium", id).details(details)).await?;
        let updated = fetch_visible(&mut tx, Scope::Staff, id).await?;
        tx.commit().await?;
        Ok(updated.medium)
    }

    /// Registers a fare card from stock to a customer (or, for a partner or a counter
    /// without a customer, as an anonymous card): hands it over, status inactive, and
    /// gives a registration receipt code.
    pub async fn register_fare_card(
        &self,
        ctx: &AuditCtx,
        scope: Scope,
        customer: Option<CustomerId>,
        printed_number: &str,
        label: Option<&str>,
    ) -> Result<Medium, SalesError> {
        let number = check_printed_number(printed_number)?;
        let label = check_label(label)?;
        let customer = match scope {
            Scope::Customer(own) => Some(own),
            _ => customer,
        };
        let partner = match scope {
            Scope::Partner(partner) => Some(partner),
            _ => None,
        };
        let now = self.now();
        let receipt = receipt_code()?;
        let mut tx = self.db().begin().await?;
        let record = select_by(tx.conn(), "printed_number", &number)
            .await?
            .filter(|r| r.medium.kind == MediumKind::FareCard)
            .ok_or_else(|| SalesError::not_found("card", &number))?;
        if record.medium.status != MediumStatus::Issued {
            // Registered cards are never taken over by someone typing their number.
            return Err(SalesError::Conflict(format!(
                "card {number} cannot be registered: it is {} (an anonymous card in use can be claimed with a proof of ownership)",
                record.medium.status
            )));
        }
        transition(&mut tx, &record, MediumEvent::HandOver, Some("registered"), now).await?;
        sql!(tx.conn(), |c| {
            sqlx::query("UPDATE media SET customer_id = $2, partner_id = $3, label = $4, registration_receipt = $5 WHERE id = $1")
                .bind(record.medium.id.to_db())
                .bind(customer.map(|c| c.to_db()))
                .bind(partner.map(|p| p.to_db()))
                .bind(label.as_deref())
                .bind(receipt.as_str())
                .execute(c)
                .await
                .map(|r| r.rows_affected())
        })?;
        let details = json!({ "printed_number": number, "customer": customer, "partner": partner });
        audit::record(
            &mut tx,
            ctx,
            now,
            AuditEvent::ok("medium.register", "medium", record.medium.id).details(details),
        )
        .await?;
        let updated = fetch_visible(&mut tx, Scope::Staff, record.medium.id).await?;
        tx.commit().await?;
        Ok(updated.medium)
    }

    /// The token gate (KIDSOK 3.1.2): turns a card number into a token in the HSM and
    /// registers the bank card under the token and a masked number. The PAN itself is
    /// dropped (and wiped) before this returns; it is never stored or logged.
    pub async fn register_bank_card(
        &self,
        ctx: &AuditCtx,
        customer: CustomerId,
        pan: &SecretString,
        expiry: &str,
        label: Option<&str>,
    ) -> Result<Medium, SalesError> {
        let pan = Pan::parse(secrecy::ExposeSecret::expose_secret(pan))
            .map_err(|e| SalesError::invalid("pan", e.to_string()))?;
        let expiry = Expiry::parse_mm_yy(expiry).map_err(|e| SalesError::invalid("expiry", e.to_string()))?;
        let label = check_label(label)?;
        let key = self.hsm().active(KeyRole::Tokenisation)?;
        let mac = zeroize::Zeroizing::new(self.hsm().hmac(key, &token_input(&pan, expiry))?);
        let token = format!("v{}:{}", key.version.get(), PanToken::from_hmac(&mac));
        let masked = pan.masked();
        drop(pan);
        let id = MediumId::new();
        let now = self.now();
        let receipt = receipt_code()?;
        let mut tx = self.db().begin().await?;
        if let Some(existing) = select_by(tx.conn(), "pan_token", &token).await? {
            let whose = if existing.medium.customer_id == Some(customer) { "your account" } else { "another account" };
            return Err(SalesError::Conflict(format!("this bank card is already registered to {whose}")));
        }
        let inserted = sql!(tx.conn(), |c| {
            sqlx::query(
                "INSERT INTO media (id, kind, status, customer_id, label, pan_token, masked_pan, card_expiry, \
                 registration_receipt, created_at_us, updated_at_us) \
                 VALUES ($1, 'bank_card', 'inactive', $2, $3, $4, $5, $6, $7, $8, $8)",
            )
            .bind(id.to_db())
            .bind(customer.to_db())
            .bind(label.as_deref())
            .bind(token.as_str())
            .bind(masked.as_str())
            .bind(expiry.yymm())
            .bind(receipt.as_str())
            .bind(now.unix_micros())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        });
        unique_or(inserted, || SalesError::Conflict("this bank card is already registered".into()))?;
        let details = json!({ "masked_pan": masked, "expiry": expiry.yymm(), "customer": customer });
        audit::record(&mut tx, ctx, now, AuditEvent::ok("medium.register_bank_card", "medium", id).details(details))
            .await?;
        let record = fetch_visible(&mut tx, Scope::Staff, id).await?;
        tx.commit().await?;
        Ok(record.medium)
    }

    /// The one online activation (CityPay 7.3): refuses a second active fare card for the
    /// same person when the policy says so.
    pub async fn activate(&self, ctx: &AuditCtx, scope: Scope, id: MediumId) -> Result<Medium, SalesError> {
        let now = self.now();
        let mut tx = self.db().begin().await?;
        let record = fetch_visible(&mut tx, scope, id).await?;
        if let (Some(customer), MediumKind::FareCard, true) =
            (record.medium.customer_id, record.medium.kind, self.policy().one_active_fare_card_per_customer)
        {
            let active: Option<String> = sql!(tx.conn(), |c| {
                sqlx::query_scalar(
                    "SELECT printed_number FROM media WHERE customer_id = $1 AND kind = 'fare_card' AND status = 'active' AND id <> $2",
                )
                .bind(customer.to_db())
                .bind(id.to_db())
                .fetch_optional(c)
                .await
            })?
            .flatten();
            if let Some(other) = active {
                return Err(SalesError::Conflict(format!(
                    "card {other} is already active for this person; block it first"
                )));
            }
        }
        transition(&mut tx, &record, MediumEvent::Activate, Some("activated online"), now).await?;
        audit::record(&mut tx, ctx, now, AuditEvent::ok("medium.activate", "medium", id)).await?;
        let updated = fetch_visible(&mut tx, Scope::Staff, id).await?;
        tx.commit().await?;
        Ok(updated.medium)
    }

    /// Blocks a medium: its owner from the e-shop, or a cashier, who must quote the
    /// registration receipt (KIDSOK 3.2.3) unless the medium is anonymous.
    pub async fn block(
        &self,
        ctx: &AuditCtx,
        scope: Scope,
        id: MediumId,
        permanent: bool,
        reason: &str,
        receipt: Option<&str>,
    ) -> Result<Medium, SalesError> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 200 {
            return Err(SalesError::invalid("reason", "say why, in at most 200 characters"));
        }
        let now = self.now();
        let mut tx = self.db().begin().await?;
        let record = fetch_visible(&mut tx, scope, id).await?;
        if scope == Scope::Staff
            && let Some(expected) = &record.medium.registration_receipt
        {
            let given = receipt.map(|r| r.trim().to_uppercase()).unwrap_or_default();
            if !bool::from(subtle::ConstantTimeEq::ct_eq(given.as_bytes(), expected.as_bytes())) {
                return Err(SalesError::invalid("receipt", "the registration receipt code does not match this medium"));
            }
        }
        let event = if permanent { MediumEvent::BlockPermanently } else { MediumEvent::Block };
        let next = transition(&mut tx, &record, event, Some(reason), now).await?;
        let details = json!({ "from": record.medium.status, "to": next, "reason": reason });
        audit::record(&mut tx, ctx, now, AuditEvent::ok("medium.block", "medium", id).details(details)).await?;
        let updated = fetch_visible(&mut tx, Scope::Staff, id).await?;
        tx.commit().await?;
        Ok(updated.medium)
    }

    /// Renames a medium (its owner's label).
    pub async fn rename(
        &self,
        ctx: &AuditCtx,
        scope: Scope,
        id: MediumId,
        label: Option<&str>,
    ) -> Result<Medium, SalesError> {
        let label = check_label(label)?;
        let now = self.now();
        let mut tx = self.db().begin().await?;
        fetch_visible(&mut tx, scope, id).await?;
        sql!(tx.conn(), |c| {
            sqlx::query("UPDATE media SET label = $2, updated_at_us = $3 WHERE id = $1")
                .bind(id.to_db())
                .bind(label.as_deref())
                .bind(now.unix_micros())
                .execute(c)
                .await
                .map(|r| r.rows_affected())
        })?;
        audit::record(
            &mut tx,
            ctx,
            now,
            AuditEvent::ok("medium.rename", "medium", id).details(json!({ "label": label })),
        )
        .await?;
        let updated = fetch_visible(&mut tx, Scope::Staff, id).await?;
        tx.commit().await?;
        Ok(updated.medium)
    }

    /// Claims an anonymous card for a customer with a proof of ownership (seed 001):
    /// checked against what the back office knows of the card's recent use, with a
    /// limited number of attempts per card per day.
    pub async fn claim_card(
        &self,
        ctx: &AuditCtx,
        customer: CustomerId,
        printed_number: &str,
        proof: &OwnershipProof,
        label: Option<&str>,
    ) -> Result<Medium, SalesError> {
        let number = check_printed_number(printed_number)?;
        let label = check_label(label)?;
        let now = self.now();
        let day_ago = now.checked_sub(chrono::Duration::days(1)).unwrap_or(now).unix_micros();
        let mut tx = self.db().begin().await?;
        let record = select_by(tx.conn(), "printed_number", &number)
            .await?
            .filter(|r| r.medium.kind == MediumKind::FareCard && r.medium.customer_id.is_none())
            .filter(|r| matches!(r.medium.status, MediumStatus::Inactive | MediumStatus::Active))
            .ok_or_else(|| SalesError::not_found("anonymous card", &number))?;
        let id = record.medium.id;
        let failures: i64 = sql!(tx.conn(), |c| {
            sqlx::query_scalar(
                "SELECT count(*) FROM ownership_attempts WHERE medium_id = $1 AND at_us >= $2 AND NOT succeeded",
            )
            .bind(id.to_db())
            .bind(day_ago)
            .fetch_one(c)
            .await
        })?;
        let allowed = i64::from(self.policy().ownership_attempts_per_day);
        if failures >= allowed {
            return Err(SalesError::TooManyAttempts(format!("card {number} accepts no more proofs today")));
        }
        let proven = self.check_proof(&mut tx, id, proof, now).await?;
        sql!(tx.conn(), |c| {
            sqlx::query(
                "INSERT INTO ownership_attempts (medium_id, customer_id, at_us, succeeded) VALUES ($1, $2, $3, $4)",
            )
            .bind(id.to_db())
            .bind(customer.to_db())
            .bind(now.unix_micros())
            .bind(proven)
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        })?;
        if !proven {
            let left = u32::try_from(allowed - failures - 1).unwrap_or(0);
            let event = AuditEvent { outcome: audit::Outcome::Denied, ..AuditEvent::ok("medium.claim", "medium", id) };
            audit::record(&mut tx, ctx, now, event).await?;
            tx.commit().await?;
            return Err(SalesError::ProofRejected { attempts_left: left });
        }
        sql!(tx.conn(), |c| {
            sqlx::query("UPDATE media SET customer_id = $2, label = $3, updated_at_us = $4 WHERE id = $1")
                .bind(id.to_db())
                .bind(customer.to_db())
                .bind(label.as_deref())
                .bind(now.unix_micros())
                .execute(c)
                .await
                .map(|r| r.rows_affected())
        })?;
        audit::record(
            &mut tx,
            ctx,
            now,
            AuditEvent::ok("medium.claim", "medium", id).details(json!({ "customer": customer })),
        )
        .await?;
        let updated = fetch_visible(&mut tx, Scope::Staff, id).await?;
        tx.commit().await?;
        Ok(updated.medium)
    }

    async fn check_proof(
        &self,
        tx: &mut Tx,
        id: MediumId,
        proof: &OwnershipProof,
        now: Timestamp,
    ) -> Result<bool, SalesError> {
        match proof {
            OwnershipProof::Stations(named) => {
                let since = now
                    .checked_sub(chrono::Duration::days(i64::from(self.policy().ownership_tap_window_days)))
                    .unwrap_or(Timestamp::EPOCH)
                    .unix_micros();
                let stations: Vec<String> = sql!(tx.conn(), |c| {
                    sqlx::query_scalar(
                        "SELECT DISTINCT station FROM media_events WHERE medium_id = $1 AND kind = 'tap' \
                         AND station IS NOT NULL AND at_us >= $2 LIMIT 1000",
                    )
                    .bind(id.to_db())
                    .bind(since)
                    .fetch_all(c)
                    .await
                })?;
                let normal = |s: &str| s.trim().to_lowercase();
                let [first, second] = named;
                let (first, second) = (normal(first), normal(second));
                Ok(first != second && [first, second].iter().all(|n| stations.iter().any(|s| normal(s) == *n)))
            }
            OwnershipProof::LastTopupMinor(amount) => {
                let last: Option<i64> = sql!(tx.conn(), |c| {
                    sqlx::query_scalar(
                        "SELECT amount_minor FROM media_events WHERE medium_id = $1 AND kind = 'topup' ORDER BY at_us DESC, seq DESC LIMIT 1",
                    )
                    .bind(id.to_db())
                    .fetch_optional(c)
                    .await
                })?
                .flatten();
                Ok(last == Some(*amount))
            }
        }
    }
}

/// Records something the medium did (a tap at a station, a top-up), for proofs of
/// ownership and the customer's history.
pub(crate) async fn record_event(
    tx: &mut Tx,
    medium: MediumId,
    at: Timestamp,
    kind: &'static str,
    station: Option<&str>,
    amount: Option<smartticket_core::Money>,
) -> Result<(), SalesError> {
    let row = crate::rows::MediaEventRow {
        medium,
        at_us: at.unix_micros(),
        kind,
        station: station.map(str::to_owned),
        amount_minor: amount.map(|a| a.amount_minor),
        currency: amount.map(|a| a.currency.code()),
    };
    crate::rows::insert_media_events(tx, &[row]).await?;
    Ok(())
}

impl Sales {
    /// Records a tap reported for a card (by clearing; tests and the demo call it too).
    pub async fn record_tap(&self, medium: MediumId, at: Timestamp, station: &str) -> Result<(), SalesError> {
        let mut tx = self.db().begin().await?;
        record_event(&mut tx, medium, at, "tap", Some(station), None).await?;
        tx.commit().await?;
        Ok(())
    }
}
