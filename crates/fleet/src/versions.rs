//! The published versions of each list (`list_versions`): storing a new one when the content
//! changed, and answering a download with the full file or a signed delta from the version
//! a validator holds.
//!
//! Versions of a kind are numbered 1, 2, 3… with no gaps. A publisher reads the latest
//! version, then the sources, and stores the next number only if it is still free: the
//! primary key (kind, version) makes a concurrent publisher's insert fail instead of giving
//! one number to two files, and the loser builds again from fresh sources. So every stored
//! version was built from data at least as new as the one before it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::json;
use smartticket_acceptance::lists::{
    Denylist, DenylistDelta, Greenlist, GreenlistDelta, HsmSigner, ListContent, ListFile, ListKind, TrustedKeys,
};
use smartticket_core::Timestamp;
use smartticket_crypto::hsm::Hsm;
use smartticket_crypto::keys::{KeyRole, KeyVersion};
use smartticket_crypto::sign::VerifyingKey;
use smartticket_identity::AuditCtx;
use smartticket_identity::audit::{self, AuditEvent};
use smartticket_store::{Db, StoreError, Tx, decode_time, sql};

use crate::FleetError;
use crate::source::Built;

/// Versions kept per kind. Older ones are deleted when a new one is stored: a validator
/// holding one gets the full list instead of a delta. Every version is a full file, so this
/// bounds storage to this many files per kind. At the busiest (a new version every publish
/// interval of 2 s) it covers 8 minutes offline; lists change far less often than that most
/// of the day, and a validator back after longer downloads the full file.
pub const LIST_VERSIONS_KEPT: u64 = 256;
/// Attempts to store a new version while other publishers keep storing theirs.
pub const PUBLISH_ATTEMPTS_MAX: u32 = 5;
/// Deltas remembered (per kind and base version, for the latest version only): validators
/// on the same version ask for the same delta, which is computed and signed once.
pub const DELTA_CACHE_ENTRIES_MAX: usize = 64;

/// One stored version of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListVersionInfo {
    /// Greenlist or denylist.
    pub kind: ListKind,
    /// Its version.
    pub version: u64,
    /// When it was issued (whole seconds, as in the file).
    pub issued_at: Timestamp,
    /// The list-signing key version that signed it.
    pub key_version: KeyVersion,
    /// Media listed.
    pub entry_count: u64,
    /// Coupons listed (greenlist; 0 for a denylist).
    pub coupon_count: u64,
    /// SHA-256 (hex) of the content.
    pub fingerprint: String,
    /// Bytes of the full file.
    pub file_bytes: u64,
}

/// What a list download answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListDownload {
    /// A signed file that brings the caller to `version`: the full list (`base_version` 0)
    /// or a delta from `base_version`.
    File {
        /// The version the file makes current.
        version: u64,
        /// 0 for a full list, else the version the delta applies to.
        base_version: u64,
        /// The signed file.
        bytes: Arc<[u8]>,
    },
    /// The caller holds the latest version already.
    UpToDate {
        /// The latest version.
        version: u64,
    },
}

/// The stored name of a kind.
pub(crate) fn kind_name(kind: ListKind) -> &'static str {
    match kind {
        ListKind::Greenlist => "greenlist",
        ListKind::Denylist => "denylist",
    }
}

#[derive(sqlx::FromRow)]
struct HeadRow {
    version: i64,
    issued_at_us: i64,
    key_version: i64,
    entry_count: i64,
    coupon_count: i64,
    fingerprint: String,
    file_bytes: i64,
}

const HEAD_COLUMNS: &str = "version, issued_at_us, key_version, entry_count, coupon_count, fingerprint, \
    CAST(length(file) AS BIGINT) AS file_bytes";

fn info_of(kind: ListKind, row: HeadRow) -> Result<ListVersionInfo, FleetError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("{kind} version {}: {what}", row.version));
    Ok(ListVersionInfo {
        kind,
        version: u64::try_from(row.version).map_err(|_| corrupt("version"))?,
        issued_at: decode_time(row.issued_at_us)?,
        key_version: u8::try_from(row.key_version)
            .ok()
            .and_then(|v| KeyVersion::new(v).ok())
            .ok_or_else(|| corrupt("key version"))?,
        entry_count: u64::try_from(row.entry_count).map_err(|_| corrupt("entry count"))?,
        coupon_count: u64::try_from(row.coupon_count).map_err(|_| corrupt("coupon count"))?,
        fingerprint: row.fingerprint,
        file_bytes: u64::try_from(row.file_bytes).map_err(|_| corrupt("file length"))?,
    })
}

/// The latest version of `kind`, if any.
pub(crate) async fn latest(db: &Db, kind: ListKind) -> Result<Option<ListVersionInfo>, FleetError> {
    let row: Option<HeadRow> = sql!(db.reader(), |c| {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {HEAD_COLUMNS} FROM list_versions WHERE kind = $1 ORDER BY version DESC LIMIT 1"
        )))
        .bind(kind_name(kind))
        .fetch_optional(c)
        .await
    })?;
    row.map(|row| info_of(kind, row)).transpose()
}

async fn latest_version_in(tx: &mut Tx, kind: ListKind) -> Result<u64, FleetError> {
    let version: Option<i64> = sql!(tx.conn(), |c| {
        sqlx::query_scalar("SELECT max(version) FROM list_versions WHERE kind = $1")
            .bind(kind_name(kind))
            .fetch_one(c)
            .await
    })?;
    Ok(version.and_then(|v| u64::try_from(v).ok()).unwrap_or(0))
}

/// A stored file and the key that signed it.
struct StoredFile {
    key_version: i64,
    key_public: Vec<u8>,
    file: Vec<u8>,
}

async fn stored_file(db: &Db, kind: ListKind, version: u64) -> Result<Option<StoredFile>, FleetError> {
    let Ok(version) = i64::try_from(version) else { return Ok(None) };
    let row: Option<(i64, Vec<u8>, Vec<u8>)> = sql!(db.reader(), |c| {
        sqlx::query_as("SELECT key_version, key_public, file FROM list_versions WHERE kind = $1 AND version = $2")
            .bind(kind_name(kind))
            .bind(version)
            .fetch_optional(c)
            .await
    })?;
    Ok(row.map(|(key_version, key_public, file)| StoredFile { key_version, key_public, file }))
}

/// Decodes a stored full file, verifying it under the key stored with it: the database is
/// ours, but a file that no longer verifies must never be turned into a delta.
fn decode_stored<L: ListContent>(kind: ListKind, version: u64, stored: &StoredFile) -> Result<L, FleetError> {
    let invalid = |reason: String| FleetError::StoredListInvalid { kind, version, reason };
    let key_version = u8::try_from(stored.key_version)
        .ok()
        .and_then(|v| KeyVersion::new(v).ok())
        .ok_or_else(|| invalid("key version out of range".into()))?;
    let key = VerifyingKey::from_sec1(&stored.key_public).map_err(|e| invalid(e.to_string()))?;
    let mut keys = TrustedKeys::new();
    keys.trust(key_version, key).map_err(|e| invalid(e.to_string()))?;
    let verified =
        ListFile::parse(&stored.file).and_then(|file| file.verify(&keys)).map_err(|e| invalid(e.to_string()))?;
    if verified.header().list_version != version || verified.header().is_delta() {
        return Err(invalid("the file is not the full list of this version".into()));
    }
    L::decode_full(&verified).map_err(|e| invalid(e.to_string()))
}

/// Stores `built` as the version after `head` (the latest version, read *before* the
/// sources of `built` were): `Some` with the version current afterwards (`head` itself
/// when the content is the same), `None` when another publisher stored a version since
/// `head` was read. Then `built` may be older than that version and must be built again:
/// storing it anyway could take back a block the other version already listed.
pub(crate) async fn store_next(
    db: &Db,
    head: Option<&ListVersionInfo>,
    built: &Built,
    hsm: &dyn Hsm,
    now: Timestamp,
) -> Result<Option<ListVersionInfo>, FleetError> {
    if let Some(head) = head.filter(|head| head.fingerprint == built.fingerprint) {
        return Ok(Some(head.clone()));
    }
    let kind = built.list.kind();
    let key = hsm.active(KeyRole::ListSigning)?;
    let signer = HsmSigner::new(hsm, key)?;
    let key_public = hsm.verifying_key(key)?.to_sec1();
    // Whole seconds, as the file holds them, so the stored time and the file's agree.
    let issued_at_s = u64::try_from(now.unix_micros().div_euclid(1_000_000)).unwrap_or(0);
    let issued_at = Timestamp::from_unix_micros(i64::try_from(issued_at_s).unwrap_or(0).saturating_mul(1_000_000))
        .unwrap_or(Timestamp::EPOCH);
    let base = head.map_or(0, |head| head.version);
    let version = base + 1;
    // Signed before the write transaction, so the single SQLite writer never waits on the HSM.
    let file = built.list.encode_full(version, issued_at_s, &signer)?;
    let info = ListVersionInfo {
        kind,
        version,
        issued_at,
        key_version: key.version,
        entry_count: built.list.entry_count() as u64,
        coupon_count: built.list.coupon_count() as u64,
        fingerprint: built.fingerprint.clone(),
        file_bytes: file.len() as u64,
    };
    let mut tx = db.begin().await?;
    if latest_version_in(&mut tx, kind).await? != base {
        return Ok(None);
    }
    match insert_version(&mut tx, &info, &key_public, &file).await {
        Ok(()) => {}
        // A concurrent publisher (PostgreSQL) took the number between the check and the insert.
        Err(FleetError::Store(error)) if error.is_unique_violation() => return Ok(None),
        Err(error) => return Err(error),
    }
    prune(&mut tx, kind, version).await?;
    let details = json!({
        "entries": info.entry_count,
        "coupons": info.coupon_count,
        "key_version": key.version.get(),
        "fingerprint": info.fingerprint,
        "file_bytes": info.file_bytes,
        "skipped": built.skipped,
    });
    let target = format!("{kind}:{version}");
    let event = AuditEvent::ok("list.publish", "list_version", target).details(details);
    audit::record(&mut tx, &AuditCtx::system("fleet"), now, event).await?;
    tx.commit().await?;
    tracing::info!(%kind, version, entries = info.entry_count, coupons = info.coupon_count, skipped = built.skipped, "list version published");
    Ok(Some(info))
}

async fn insert_version(tx: &mut Tx, info: &ListVersionInfo, key_public: &[u8], file: &[u8]) -> Result<(), FleetError> {
    let too_large = || StoreError::Corrupt("a list count does not fit the database".into());
    let version = i64::try_from(info.version).map_err(|_| too_large())?;
    let entries = i64::try_from(info.entry_count).map_err(|_| too_large())?;
    let coupons = i64::try_from(info.coupon_count).map_err(|_| too_large())?;
    sql!(tx.conn(), |c| {
        sqlx::query(
            "INSERT INTO list_versions (kind, version, issued_at_us, key_version, key_public, entry_count, \
             coupon_count, fingerprint, file) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(kind_name(info.kind))
        .bind(version)
        .bind(info.issued_at.unix_micros())
        .bind(i64::from(info.key_version.get()))
        .bind(key_public)
        .bind(entries)
        .bind(coupons)
        .bind(info.fingerprint.as_str())
        .bind(file)
        .execute(c)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

async fn prune(tx: &mut Tx, kind: ListKind, latest: u64) -> Result<(), FleetError> {
    let Some(oldest_kept) = latest.checked_sub(LIST_VERSIONS_KEPT - 1).filter(|v| *v > 1) else { return Ok(()) };
    let below = i64::try_from(oldest_kept).unwrap_or(i64::MAX);
    sql!(tx.conn(), |c| {
        sqlx::query("DELETE FROM list_versions WHERE kind = $1 AND version < $2")
            .bind(kind_name(kind))
            .bind(below)
            .execute(c)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// A signed delta already made: the version it leads to, and the file.
type CachedDelta = (u64, Arc<[u8]>);

/// Signed deltas already made, by (kind byte, base version).
#[derive(Default)]
pub(crate) struct DeltaCache {
    entries: Mutex<HashMap<(u8, u64), CachedDelta>>,
}

impl DeltaCache {
    fn get(&self, kind: ListKind, base: u64, latest: u64) -> Option<Arc<[u8]>> {
        let entries = self.entries.lock().ok()?;
        entries.get(&(kind as u8, base)).filter(|(to, _)| *to == latest).map(|(_, bytes)| bytes.clone())
    }

    fn put(&self, kind: ListKind, base: u64, latest: u64, bytes: Arc<[u8]>) {
        let Ok(mut entries) = self.entries.lock() else { return };
        // Deltas to an older version are of no use any more.
        entries.retain(|(cached_kind, _), (to, _)| *cached_kind != kind as u8 || *to == latest);
        if entries.len() >= DELTA_CACHE_ENTRIES_MAX {
            entries.clear();
        }
        entries.insert((kind as u8, base), (latest, bytes));
    }
}

/// The file that brings a holder of `since` (none: nothing) to the latest version.
pub(crate) async fn download(
    db: &Db,
    cache: &DeltaCache,
    hsm: &dyn Hsm,
    kind: ListKind,
    since: Option<u64>,
) -> Result<ListDownload, FleetError> {
    let head = latest(db, kind).await?.ok_or(FleetError::NothingPublished(kind))?;
    let unknown = |since| FleetError::UnknownVersion { kind, since, latest: head.version };
    let Some(since) = since else {
        let stored = stored_file(db, kind, head.version).await?.ok_or(FleetError::NothingPublished(kind))?;
        return Ok(ListDownload::File { version: head.version, base_version: 0, bytes: stored.file.into() });
    };
    if since == head.version {
        return Ok(ListDownload::UpToDate { version: head.version });
    }
    if since == 0 || since > head.version {
        return Err(unknown(since));
    }
    if let Some(bytes) = cache.get(kind, since, head.version) {
        return Ok(ListDownload::File { version: head.version, base_version: since, bytes });
    }
    let base = stored_file(db, kind, since).await?.ok_or_else(|| unknown(since))?;
    let latest_file = stored_file(db, kind, head.version).await?.ok_or(FleetError::NothingPublished(kind))?;
    let issued_at_s = u64::try_from(head.issued_at.unix_micros().div_euclid(1_000_000)).unwrap_or(0);
    let signer = HsmSigner::active(hsm)?;
    let bytes: Arc<[u8]> = match kind {
        ListKind::Greenlist => {
            let old: Greenlist = decode_stored(kind, since, &base)?;
            let new: Greenlist = decode_stored(kind, head.version, &latest_file)?;
            GreenlistDelta::between(&old, &new).encode(since, head.version, issued_at_s, &signer)?.into()
        }
        ListKind::Denylist => {
            let old: Denylist = decode_stored(kind, since, &base)?;
            let new: Denylist = decode_stored(kind, head.version, &latest_file)?;
            DenylistDelta::between(&old, &new).encode(since, head.version, issued_at_s, &signer)?.into()
        }
    };
    cache.put(kind, since, head.version, bytes.clone());
    Ok(ListDownload::File { version: head.version, base_version: since, bytes })
}

/// The greenlist of `version` (the latest, and a base for the XML delta), decoded.
pub(crate) async fn greenlist(db: &Db, version: u64) -> Result<Option<Greenlist>, FleetError> {
    let kind = ListKind::Greenlist;
    match stored_file(db, kind, version).await? {
        Some(stored) => decode_stored(kind, version, &stored).map(Some),
        None => Ok(None),
    }
}
