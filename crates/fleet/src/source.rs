//! What the lists say, read from the selling tables (media, entitlements, approved
//! discounts) in one snapshot: the rules that decide which medium and coupon is listed, and
//! the fingerprint of the result that tells whether a new version is needed.
//!
//! The rules, each with why:
//! - Greenlist: media of kind `bank_card`, `phone_token`, `qr_token` with status `active`,
//!   and their entitlements of kind `contract` with status `active` (the only in-force
//!   status account-based media reach: `sales::entitlements::new_row`) whose validity has
//!   not ended. Trip products are left out: a coupon has no trip counter, so listing one
//!   would let it ride without limit.
//! - Product and discount numbers are the `card_product` and `card_discount` of the quote
//!   stored with the entitlement: what was sold, so a later catalogue can neither renumber
//!   nor drop a paid coupon. The quote's `requires_approval` sets PHOTO_REQUIRED, with the
//!   photo of the passenger's approved request for that discount; a coupon whose approval
//!   was revoked is withheld (the passenger may no longer ride on it at that price).
//! - Denylist: media with status `blocked` or `permanently_blocked`: fare cards by UID (by
//!   printed number if they have none), token media by token. Phone secure elements have
//!   no identifier a validator reads, and are left out.
//! - A row that cannot be listed (a token that does not decode, an incoherent coupon) is
//!   skipped and counted, never a reason to stop publishing everyone else's list; a medium
//!   with more coupons than an entry holds keeps the ones that start first.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use smartticket_acceptance::lists::{
    Coupon, CouponFlags, DenyReason, Denylist, Greenlist, ListKind, ListSigner, MEDIUM_COUPONS_MAX, MediumKey,
    MediumKind,
};
use smartticket_core::Timestamp;
use smartticket_crypto::token::PanToken;
use smartticket_store::{Db, StoreError, Tx, sql};

use crate::FleetError;

const MICROS_PER_SECOND: i64 = 1_000_000;

/// A list built from the database, with what describes it.
pub(crate) struct Built {
    /// The list.
    pub list: BuiltList,
    /// SHA-256 (hex) of the content: entries and coupons as the file holds them, unsigned.
    pub fingerprint: String,
    /// Rows that could not be listed (see the module docs).
    pub skipped: u64,
}

/// Either list.
pub(crate) enum BuiltList {
    /// A greenlist.
    Green(Greenlist),
    /// A denylist.
    Deny(Denylist),
}

impl BuiltList {
    pub fn kind(&self) -> ListKind {
        match self {
            BuiltList::Green(_) => ListKind::Greenlist,
            BuiltList::Deny(_) => ListKind::Denylist,
        }
    }

    pub fn entry_count(&self) -> usize {
        match self {
            BuiltList::Green(list) => list.len(),
            BuiltList::Deny(list) => list.len(),
        }
    }

    pub fn coupon_count(&self) -> usize {
        match self {
            BuiltList::Green(list) => list.coupon_count(),
            BuiltList::Deny(_) => 0,
        }
    }

    /// The signed full file as `version`.
    pub fn encode_full(&self, version: u64, issued_at_s: u64, signer: &dyn ListSigner) -> Result<Vec<u8>, FleetError> {
        Ok(match self {
            BuiltList::Green(list) => list.encode_full(version, issued_at_s, signer)?,
            BuiltList::Deny(list) => list.encode_full(version, issued_at_s, signer)?,
        })
    }
}

/// Builds the list of `kind` as the database says it should be at `now`.
pub(crate) async fn build(db: &Db, kind: ListKind, now: Timestamp) -> Result<Built, FleetError> {
    match kind {
        ListKind::Greenlist => build_greenlist(db, now).await,
        ListKind::Denylist => build_denylist(db).await,
    }
}

/// The content fingerprint of a greenlist: the kind byte, then each entry's key, coupon
/// count and coupons, in key order (the file's payload, without header and signature).
pub(crate) fn greenlist_fingerprint(list: &Greenlist) -> String {
    let mut hash = Sha256::new();
    hash.update([ListKind::Greenlist as u8]);
    for (key, coupons) in list.iter() {
        hash.update(key.as_bytes());
        hash.update(u32::try_from(coupons.len()).unwrap_or(u32::MAX).to_le_bytes());
        for coupon in coupons {
            hash.update(coupon.to_bytes());
        }
    }
    hex::encode(hash.finalize())
}

/// The content fingerprint of a denylist: the kind byte, then each key and reason.
pub(crate) fn denylist_fingerprint(list: &Denylist) -> String {
    let mut hash = Sha256::new();
    hash.update([ListKind::Denylist as u8]);
    for (key, reason) in list.iter() {
        hash.update(key.as_bytes());
        hash.update([reason as u8]);
    }
    hex::encode(hash.finalize())
}

/// One in-force contract of a listed medium.
#[derive(sqlx::FromRow)]
struct CouponRow {
    medium_id: String,
    medium_kind: String,
    pan_token: Option<String>,
    device_ref: Option<String>,
    customer_id: Option<String>,
    quote: String,
    discount_code: String,
    zones_mask: i64,
    valid_from_us: Option<i64>,
    valid_until_us: i64,
}

/// An approved discount request, with the number its photo goes by if it has one yet.
#[derive(sqlx::FromRow)]
struct ApprovalRow {
    customer_id: String,
    category: String,
    photo_id: String,
    reference: Option<i64>,
    approved_until_us: i64,
}

/// The numbers of the sale, as the quote stored with the entitlement has them.
#[derive(Deserialize)]
struct SoldCodes {
    card_product: u32,
    card_discount: u16,
    #[serde(default)]
    requires_approval: bool,
}

/// How a greenlist build ended: built, or some photos need a reference number first.
enum Assembled {
    Done(Built),
    NeedsPhotoReferences(Vec<String>),
}

async fn build_greenlist(db: &Db, now: Timestamp) -> Result<Built, FleetError> {
    // At most twice: the second read sees every reference the first one lacked.
    for _ in 0..2 {
        let mut tx = db.begin_read().await?;
        let coupons = read_coupons(&mut tx, now).await?;
        let approvals = read_approvals(&mut tx, now).await?;
        tx.rollback().await?;
        match assemble_greenlist(coupons, approvals)? {
            Assembled::Done(built) => return Ok(built),
            Assembled::NeedsPhotoReferences(photos) => assign_photo_references(db, &photos, now).await?,
        }
    }
    Err(FleetError::Store(StoreError::Corrupt("photo references were assigned but are not visible".into())))
}

async fn read_coupons(tx: &mut Tx, now: Timestamp) -> Result<Vec<CouponRow>, FleetError> {
    let rows = sql!(tx.conn(), |c| {
        sqlx::query_as(
            "SELECT m.id AS medium_id, m.kind AS medium_kind, m.pan_token, m.device_ref, m.customer_id, \
             e.quote, e.discount_code, e.zones_mask, e.valid_from_us, e.valid_until_us \
             FROM entitlements e JOIN media m ON m.id = e.medium_id \
             WHERE e.kind = 'contract' AND e.status = 'active' AND e.trips IS NULL AND e.valid_until_us > $1 \
             AND m.status = 'active' AND m.kind IN ('bank_card', 'phone_token', 'qr_token')",
        )
        .bind(now.unix_micros())
        .fetch_all(c)
        .await
    })?;
    Ok(rows)
}

async fn read_approvals(tx: &mut Tx, now: Timestamp) -> Result<Vec<ApprovalRow>, FleetError> {
    // A coupon sold with a discount needing approval was checked to end within the approval
    // (`sales::discounts::holds_approval`), so an in-force coupon has an unexpired one.
    let rows = sql!(tx.conn(), |c| {
        sqlx::query_as(
            "SELECT r.customer_id, r.category, r.photo_id, p.reference, r.approved_until_us \
             FROM discount_requests r LEFT JOIN list_photo_refs p ON p.photo_id = r.photo_id \
             WHERE r.status = 'approved' AND r.approved_until_us > $1",
        )
        .bind(now.unix_micros())
        .fetch_all(c)
        .await
    })?;
    Ok(rows)
}

/// Gives each photo its reference number (once: a photo keeps its number forever).
async fn assign_photo_references(db: &Db, photos: &[String], now: Timestamp) -> Result<(), FleetError> {
    let mut tx = db.begin().await?;
    for photo in photos {
        sql!(tx.conn(), |c| {
            sqlx::query(
                "INSERT INTO list_photo_refs (photo_id, assigned_at_us) VALUES ($1, $2) \
                 ON CONFLICT (photo_id) DO NOTHING",
            )
            .bind(photo.as_str())
            .bind(now.unix_micros())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        })?;
    }
    tx.commit().await?;
    Ok(())
}

/// The approval that gives a discounted coupon its photo: per passenger and category, the
/// one reaching furthest.
type Approvals = HashMap<(String, String), ApprovalRow>;

fn latest_approvals(rows: Vec<ApprovalRow>) -> Approvals {
    let mut approvals: Approvals = HashMap::new();
    for row in rows {
        let key = (row.customer_id.clone(), row.category.clone());
        match approvals.get(&key) {
            Some(kept) if kept.approved_until_us >= row.approved_until_us => {}
            _ => {
                approvals.insert(key, row);
            }
        }
    }
    approvals
}

fn assemble_greenlist(rows: Vec<CouponRow>, approvals: Vec<ApprovalRow>) -> Result<Assembled, FleetError> {
    let approvals = latest_approvals(approvals);
    let mut media: BTreeMap<MediumKey, Vec<Coupon>> = BTreeMap::new();
    let mut unreferenced: Vec<String> = Vec::new();
    let mut skipped = 0_u64;
    for row in rows {
        let Some(key) = token_medium_key(&row.medium_kind, row.pan_token.as_deref(), row.device_ref.as_deref()) else {
            tracing::warn!(medium = %row.medium_id, kind = %row.medium_kind, "greenlist: medium without a usable token; not listed");
            skipped += 1;
            continue;
        };
        let Ok(codes) = serde_json::from_str::<SoldCodes>(&row.quote) else {
            tracing::warn!(medium = %row.medium_id, "greenlist: entitlement quote without card codes; not listed");
            skipped += 1;
            continue;
        };
        let (photo_reference, flags) = if codes.requires_approval {
            let approval =
                row.customer_id.as_ref().and_then(|c| approvals.get(&(c.clone(), row.discount_code.clone())));
            match approval {
                Some(ApprovalRow { reference: Some(reference), .. }) => {
                    let reference = u32::try_from(*reference)
                        .map_err(|_| StoreError::Corrupt(format!("photo reference {reference} exceeds 32 bits")))?;
                    (reference, CouponFlags::PHOTO_REQUIRED)
                }
                Some(ApprovalRow { photo_id, .. }) => {
                    unreferenced.push(photo_id.clone());
                    continue;
                }
                None => {
                    tracing::info!(medium = %row.medium_id, discount = %row.discount_code, "greenlist: discount approval no longer held; coupon withheld");
                    skipped += 1;
                    continue;
                }
            }
        } else {
            (0, CouponFlags::NONE)
        };
        let coupon = Coupon {
            valid_from_unix_s: row.valid_from_us.and_then(seconds_floor).unwrap_or(u64::MAX),
            valid_until_unix_s: seconds_ceil(row.valid_until_us).unwrap_or(0),
            product_code: codes.card_product,
            zones_bitmap: u32::try_from(row.zones_mask).unwrap_or(0),
            photo_reference,
            discount_code: codes.card_discount,
            flags,
        };
        if let Err(reason) = coupon.check() {
            tracing::warn!(medium = %row.medium_id, reason, "greenlist: incoherent coupon; not listed");
            skipped += 1;
            continue;
        }
        media.entry(key).or_default().push(coupon);
    }
    if !unreferenced.is_empty() {
        unreferenced.sort_unstable();
        unreferenced.dedup();
        return Ok(Assembled::NeedsPhotoReferences(unreferenced));
    }
    for (key, coupons) in &mut media {
        coupons.sort_unstable();
        coupons.dedup();
        // Coupons sort by start of validity: the later ones are listed once earlier ones end.
        let limit = usize::from(MEDIUM_COUPONS_MAX);
        if coupons.len() > limit {
            tracing::warn!(medium = %key, coupons = coupons.len(), limit, "greenlist: more coupons than an entry holds; the latest wait");
            skipped += (coupons.len() - limit) as u64;
            coupons.truncate(limit);
        }
    }
    let list = Greenlist::build(media)?;
    let fingerprint = greenlist_fingerprint(&list);
    Ok(Assembled::Done(Built { list: BuiltList::Green(list), fingerprint, skipped }))
}

/// A blocked medium.
#[derive(sqlx::FromRow)]
struct BlockedRow {
    id: String,
    kind: String,
    uid: Option<String>,
    printed_number: Option<String>,
    pan_token: Option<String>,
    device_ref: Option<String>,
    status_reason: Option<String>,
    replaced_by: Option<String>,
}

async fn build_denylist(db: &Db) -> Result<Built, FleetError> {
    let rows: Vec<BlockedRow> = sql!(db.reader(), |c| {
        sqlx::query_as(
            "SELECT id, kind, uid, printed_number, pan_token, device_ref, status_reason, replaced_by \
             FROM media WHERE status IN ('blocked', 'permanently_blocked')",
        )
        .fetch_all(c)
        .await
    })?;
    let mut entries = Vec::with_capacity(rows.len());
    let mut skipped = 0_u64;
    for row in rows {
        let key = match row.kind.as_str() {
            "fare_card" => card_key(row.uid.as_deref(), row.printed_number.as_deref()),
            kind => token_medium_key(kind, row.pan_token.as_deref(), row.device_ref.as_deref()),
        };
        let Some(key) = key else {
            // Phone secure elements have nothing a validator could look up.
            if row.kind != "phone_se" {
                tracing::warn!(medium = %row.id, kind = %row.kind, "denylist: blocked medium without a usable identifier");
            }
            skipped += 1;
            continue;
        };
        entries.push((key, deny_reason(row.status_reason.as_deref(), row.replaced_by.is_some())));
    }
    let list = Denylist::build(entries)?;
    let fingerprint = denylist_fingerprint(&list);
    Ok(Built { list: BuiltList::Deny(list), fingerprint, skipped })
}

/// The key of a token medium: a bank card by its PAN token (`media.pan_token`), a phone or
/// QR token by its token (`media.device_ref`). Both are stored as hex, optionally after the
/// `v<key version>:` prefix the token gate writes; a phone or QR token is 16 or 32 bytes.
pub(crate) fn token_medium_key(kind: &str, pan_token: Option<&str>, device_ref: Option<&str>) -> Option<MediumKey> {
    match kind {
        "bank_card" => {
            let token = PanToken::from_hex(strip_key_version(pan_token?)?).ok()?;
            Some(MediumKey::bank_card(&token))
        }
        "phone_token" => MediumKey::token(MediumKind::PhoneToken, &hex::decode(strip_key_version(device_ref?)?).ok()?),
        "qr_token" => MediumKey::token(MediumKind::QrToken, &hex::decode(strip_key_version(device_ref?)?).ok()?),
        _ => None,
    }
}

/// A fare card's key: its UID (stored as hex), else its printed number if that is a number.
fn card_key(uid: Option<&str>, printed_number: Option<&str>) -> Option<MediumKey> {
    if let Some(uid) = uid {
        return MediumKey::card_uid(&hex::decode(uid).ok()?);
    }
    let number = printed_number?;
    if number.bytes().all(|b| b.is_ascii_digit()) { number.parse().ok().map(MediumKey::card_number) } else { None }
}

/// The hex after an optional `v<digits>:` prefix; `None` for any other prefix.
fn strip_key_version(stored: &str) -> Option<&str> {
    match stored.split_once(':') {
        None => Some(stored),
        Some((prefix, hex)) => {
            let digits = prefix.strip_prefix('v')?;
            (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(hex)
        }
    }
}

/// Words of a block's free-text reason (English, Czech, Russian stems, lower case) that
/// name its cause. The selling API takes the reason as text, so this is a best reading of
/// it; the most serious cause named wins.
const FRAUD_WORDS: &[&str] = &["fraud", "clone", "forged", "podvod", "мошен"];
const STOLEN_WORDS: &[&str] = &["stolen", "theft", "odcizen", "ukraden", "zcizen", "украд", "краж"];
const LOST_WORDS: &[&str] = &["lost", "ztracen", "ztrát", "ztrat", "потер", "утер"];

/// Why a blocked medium is listed: the most serious cause its reason names, else Replaced
/// when it has a replacement, else Other.
pub(crate) fn deny_reason(reason: Option<&str>, replaced: bool) -> DenyReason {
    let reason = reason.unwrap_or_default().to_lowercase();
    let names = |words: &[&str]| words.iter().any(|word| reason.contains(word));
    if names(FRAUD_WORDS) {
        DenyReason::Fraud
    } else if names(STOLEN_WORDS) {
        DenyReason::Stolen
    } else if names(LOST_WORDS) {
        DenyReason::Lost
    } else if replaced {
        DenyReason::Replaced
    } else {
        DenyReason::Other
    }
}

/// Whole seconds at or before `micros`.
fn seconds_floor(micros: i64) -> Option<u64> {
    u64::try_from(micros.div_euclid(MICROS_PER_SECOND)).ok()
}

/// Whole seconds at or after `micros` (an exclusive end is never moved earlier).
fn seconds_ceil(micros: i64) -> Option<u64> {
    let whole = micros.div_euclid(MICROS_PER_SECOND) + i64::from(micros.rem_euclid(MICROS_PER_SECOND) != 0);
    u64::try_from(whole).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_tokens_decode_with_or_without_their_key_version() {
        let hex = "00112233445566778899aabbccddeeff";
        let plain = token_medium_key("bank_card", Some(hex), None).unwrap();
        assert_eq!(token_medium_key("bank_card", Some(&format!("v1:{hex}")), None), Some(plain));
        assert_eq!(token_medium_key("bank_card", Some(&format!("x1:{hex}")), None), None);
        assert_eq!(token_medium_key("bank_card", Some("v1:00"), None), None);
        let long = format!("{hex}{hex}");
        let phone = token_medium_key("phone_token", None, Some(&long)).unwrap();
        assert_eq!(phone.kind(), MediumKind::PhoneToken);
        assert_eq!(token_medium_key("qr_token", None, Some("zz")), None);
        assert_eq!(token_medium_key("fare_card", Some(hex), None), None);
    }

    #[test]
    fn cards_are_keyed_by_uid_then_by_number() {
        assert_eq!(
            card_key(Some("04112233445566"), Some("1001")),
            MediumKey::card_uid(&[4, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66])
        );
        assert_eq!(card_key(None, Some("1001")), Some(MediumKey::card_number(1001)));
        assert_eq!(card_key(None, Some("AB12")), None);
        assert_eq!(card_key(Some("0411"), None), None);
    }

    #[test]
    fn the_most_serious_named_cause_wins() {
        assert_eq!(deny_reason(Some("Lost on the tram"), true), DenyReason::Lost);
        assert_eq!(deny_reason(Some("karta odcizena v tramvaji"), false), DenyReason::Stolen);
        assert_eq!(deny_reason(Some("stolen, then used: a clone"), false), DenyReason::Fraud);
        assert_eq!(deny_reason(Some("new card issued"), true), DenyReason::Replaced);
        assert_eq!(deny_reason(None, false), DenyReason::Other);
    }

    #[test]
    fn validity_rounds_outwards_to_whole_seconds() {
        assert_eq!(seconds_floor(1_500_000), Some(1));
        assert_eq!(seconds_ceil(1_500_000), Some(2));
        assert_eq!(seconds_ceil(2_000_000), Some(2));
        assert_eq!(seconds_floor(-1), None);
    }
}
