//! Catalogue versions in the database: publishing a document with the date it takes
//! effect, listing versions, and finding the version in force on a date. Owns the
//! `catalog_versions` table (migration 0002); documents are validated by
//! [`Catalog::from_document`] before they are stored and again when they are loaded.
//!
//! History is never rewritten: a version cannot take effect before today (except the
//! first, so a network can be set up with its real start date), no two versions share a
//! date, and the table refuses UPDATE and DELETE. Every version of a network keeps its
//! currency and timezone, so "today" can be read from any of them. Parsed catalogues are
//! cached by version id, so a sale never re-parses JSON.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use smartticket_core::id::CatalogVersionId;
use smartticket_core::paging::{Page, PageSpec};
use smartticket_core::{Clock, Timestamp};
use smartticket_identity::audit::{self, Actor, AuditCtx, AuditEvent};
use smartticket_store::{Db, StoreError, Target, decode_id, decode_time, sql, unique_or};
use sqlx::{PgExecutor, SqliteExecutor};
use utoipa::ToSchema;

use crate::catalog::Catalog;
use crate::document::CatalogDocument;
use crate::error::CatalogError;
use crate::quote::{Quote, QuoteRequest};

/// Longest note on a version, in characters: a sentence or two.
pub const NOTE_CHARS_MAX: usize = 500;
/// Parsed catalogues kept in memory. A network publishes a few versions a year, so this
/// holds every version a server will be asked about; past it the cache starts over.
pub const CACHE_VERSIONS_MAX: usize = 64;
/// Earliest effective date accepted.
pub const EFFECTIVE_YEAR_MIN: i32 = 2000;
/// Latest effective year accepted: dates are stored as `YYYY-MM-DD` text, which sorts by
/// date only while the year has four digits.
pub const EFFECTIVE_YEAR_MAX: i32 = 9999;

/// A stored version, without its document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VersionInfo {
    /// Id.
    pub id: CatalogVersionId,
    /// The first day (network-local) on which this version is in force.
    pub effective_from: NaiveDate,
    /// When it was published.
    pub published_at: Timestamp,
    /// Who published it: a staff id or a system component.
    pub published_by: String,
    /// Why, in the publisher's words.
    pub note: String,
    /// SHA-256 of the canonical JSON document, hex.
    pub document_sha256: String,
}

/// The catalogue service: versions in the database and a cache of parsed ones.
#[derive(Clone)]
pub struct CatalogStore {
    db: Db,
    clock: Arc<dyn Clock>,
    cache: Arc<RwLock<HashMap<CatalogVersionId, Arc<Catalog>>>>,
    current: Arc<RwLock<Option<Current>>>,
}

/// The catalogue in force, remembered briefly: every sale asks for it, and it changes
/// only when a version is published (which clears it here) or at midnight (the date is
/// part of the key). Another server publishing on the same PostgreSQL is seen within
/// [`CURRENT_TTL`].
#[derive(Clone)]
struct Current {
    fetched: std::time::Instant,
    today: NaiveDate,
    catalog: Arc<Catalog>,
}

/// How long the catalogue in force is reused before the database is asked again.
pub const CURRENT_TTL: std::time::Duration = std::time::Duration::from_secs(2);

impl fmt::Debug for CatalogStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cached = self.cache.read().map(|c| c.len()).unwrap_or_else(|p| p.into_inner().len());
        f.debug_struct("CatalogStore").field("db", &self.db).field("cached_versions", &cached).finish_non_exhaustive()
    }
}

type VersionRow = (String, String, i64, String, String, String);
const VERSION_COLUMNS: &str = "id, effective_from, published_at_us, published_by, note, document_sha256";

fn version_from_row(row: VersionRow) -> Result<VersionInfo, CatalogError> {
    let (id, effective_from, published_us, published_by, note, document_sha256) = row;
    let effective_from = NaiveDate::parse_from_str(&effective_from, "%Y-%m-%d")
        .map_err(|_| StoreError::Corrupt(format!("catalogue effective date `{effective_from}`")))?;
    Ok(VersionInfo {
        id: decode_id(&id, CatalogVersionId::from_db)?,
        effective_from,
        published_at: decode_time(published_us)?,
        published_by,
        note,
        document_sha256,
    })
}

/// The stored form of a date: `YYYY-MM-DD`, which sorts as text in date order. Dates
/// past the four-digit years are clamped to the last one, which compares the same way.
fn date_key(date: NaiveDate) -> String {
    if date.year() > EFFECTIVE_YEAR_MAX {
        return format!("{EFFECTIVE_YEAR_MAX}-12-31");
    }
    date.format("%Y-%m-%d").to_string()
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn publisher(actor: &Actor) -> String {
    match actor {
        Actor::Staff { id, .. } => id.to_string(),
        Actor::Customer { id } => id.to_string(),
        Actor::Partner { id } => id.to_string(),
        Actor::System { component } => component.clone(),
        Actor::Anonymous => "anonymous".to_owned(),
    }
}

impl CatalogStore {
    /// A service over `db`, reading time from `clock`.
    pub fn new(db: Db, clock: Arc<dyn Clock>) -> Self {
        Self { db, clock, cache: Arc::new(RwLock::new(HashMap::new())), current: Arc::new(RwLock::new(None)) }
    }

    /// The database this service reads and writes.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Publishes `document` as the catalogue from `effective_from` (a network-local date).
    ///
    /// Refuses an invalid document, an effective date before today unless no version
    /// exists yet, a date another version already has, and a change of the network's
    /// currency or timezone. Writes the audit entry `catalog.publish` in the same
    /// transaction; on any refusal nothing is stored.
    pub async fn publish(
        &self,
        ctx: &AuditCtx,
        document: CatalogDocument,
        effective_from: NaiveDate,
        note: &str,
    ) -> Result<VersionInfo, CatalogError> {
        check_effective_date(effective_from)?;
        let note = check_note(note)?;
        let catalog = Catalog::from_document(document)?;
        let now = self.clock.now();
        let today = catalog.local_date(now);
        let canonical = catalog.document().to_canonical_json();
        let sha256 = sha256_hex(&canonical);
        let id = CatalogVersionId::new();
        let mut tx = self.db.begin().await?;
        let newest = newest_version(tx.conn()).await?;
        match &newest {
            Some(newest) => {
                if effective_from < today {
                    return Err(CatalogError::BackDated { effective_from, today });
                }
                let previous = self.load(tx.conn(), newest).await?;
                check_same_network(&previous, &catalog)?;
            }
            None => tracing::info!(%effective_from, "publishing the first catalogue version"),
        }
        let inserted = sql!(tx.conn(), |c| {
            sqlx::query(
                "INSERT INTO catalog_versions (id, effective_from, published_at_us, published_by, note, document, \
                 document_sha256) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(id.to_db())
            .bind(date_key(effective_from))
            .bind(now.unix_micros())
            .bind(publisher(&ctx.actor))
            .bind(note.as_str())
            .bind(canonical.as_str())
            .bind(sha256.as_str())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
        });
        unique_or(inserted, || CatalogError::DuplicateDate(effective_from))?;
        let event = AuditEvent::ok("catalog.publish", "catalog_version", id).details(json!({
            "effective_from": effective_from,
            "document_sha256": sha256,
            "note": note,
            "network": catalog.network_name(),
            "products": catalog.products().count(),
            "first_version": newest.is_none(),
        }));
        audit::record(&mut tx, ctx, now, event).await?;
        let info = select_version(tx.conn(), id).await?.ok_or(CatalogError::NotFound(id))?;
        tx.commit().await?;
        self.remember(id, Arc::new(catalog.with_version(id)));
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = None;
        Ok(info)
    }

    /// Versions, latest effective date first, one page at a time (the cursor is the
    /// effective date).
    pub async fn versions(&self, page: &PageSpec<String>) -> Result<Page<VersionInfo>, CatalogError> {
        let rows: Vec<VersionRow> = sql!(self.db.reader(), |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {VERSION_COLUMNS} FROM catalog_versions \
                 WHERE ($1 IS NULL OR effective_from < $1) ORDER BY effective_from DESC LIMIT $2"
            )))
            .bind(page.after.as_deref())
            .bind(page.fetch_rows())
            .fetch_all(c)
            .await
        })?;
        let versions = rows.into_iter().map(version_from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(versions, page, |v| date_key(v.effective_from)))
    }

    /// One version with its catalogue.
    pub async fn version(&self, id: CatalogVersionId) -> Result<(VersionInfo, Arc<Catalog>), CatalogError> {
        let info = select_version(self.db.reader(), id).await?.ok_or(CatalogError::NotFound(id))?;
        let catalog = self.load(self.db.reader(), &info).await?;
        Ok((info, catalog))
    }

    /// The catalogue in force on `date` (network-local): the version with the greatest
    /// effective date not after it.
    pub async fn effective_on(&self, date: NaiveDate) -> Result<Arc<Catalog>, CatalogError> {
        self.in_force_on(date).await.map(|(_, catalog)| catalog)
    }

    /// Like [`CatalogStore::effective_on`], with the version's record.
    pub async fn in_force_on(&self, date: NaiveDate) -> Result<(VersionInfo, Arc<Catalog>), CatalogError> {
        let row: Option<VersionRow> = sql!(self.db.reader(), |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {VERSION_COLUMNS} FROM catalog_versions WHERE effective_from <= $1 \
                 ORDER BY effective_from DESC LIMIT 1"
            )))
            .bind(date_key(date))
            .fetch_optional(c)
            .await
        })?;
        let info = row.map(version_from_row).transpose()?.ok_or(CatalogError::NoCatalog(date))?;
        let catalog = self.load(self.db.reader(), &info).await?;
        Ok((info, catalog))
    }

    /// The network's date at `now` and the catalogue in force on it, from a short-lived
    /// memory (see [`CURRENT_TTL`]) when it is fresh.
    pub async fn in_force_at(&self, now: Timestamp) -> Result<(NaiveDate, Arc<Catalog>), CatalogError> {
        let remembered = self.current.read().unwrap_or_else(PoisonError::into_inner).clone();
        if let Some(current) = remembered
            && current.fetched.elapsed() < CURRENT_TTL
            && current.catalog.local_date(now) == current.today
        {
            return Ok((current.today, current.catalog));
        }
        let today = self.local_date(now).await?;
        let catalog = self.effective_on(today).await?;
        let fresh = Current { fetched: std::time::Instant::now(), today, catalog: catalog.clone() };
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(fresh);
        Ok((today, catalog))
    }

    /// Today in the network's timezone. Every version shares the timezone, so the newest
    /// one says; `NoCatalog` (with the UTC date) when nothing is published.
    pub async fn today(&self) -> Result<NaiveDate, CatalogError> {
        self.local_date(self.clock.now()).await
    }

    async fn local_date(&self, now: Timestamp) -> Result<NaiveDate, CatalogError> {
        let newest = newest_version(self.db.reader()).await?;
        let newest = newest.ok_or_else(|| CatalogError::NoCatalog(now.datetime().date_naive()))?;
        let catalog = self.load(self.db.reader(), &newest).await?;
        Ok(catalog.local_date(now))
    }

    /// Quotes `request` at `now` from the version in force on the network's local date,
    /// filling in [`Quote::catalog_version`].
    pub async fn quote(&self, request: &QuoteRequest, now: Timestamp) -> Result<Quote, CatalogError> {
        let (today, catalog) = self.in_force_at(now).await?;
        Ok(catalog.quote(request, today, now)?)
    }

    /// The parsed catalogue of `info`, from the cache or read, checked and cached.
    async fn load<'e>(
        &self,
        target: Target<impl SqliteExecutor<'e>, impl PgExecutor<'e>>,
        info: &VersionInfo,
    ) -> Result<Arc<Catalog>, CatalogError> {
        if let Some(catalog) = self.cache.read().unwrap_or_else(PoisonError::into_inner).get(&info.id) {
            return Ok(catalog.clone());
        }
        let document: Option<String> = sql!(target, |c| {
            sqlx::query_scalar("SELECT document FROM catalog_versions WHERE id = $1")
                .bind(info.id.to_db())
                .fetch_optional(c)
                .await
        })?;
        let document = document.ok_or(CatalogError::NotFound(info.id))?;
        let corrupt =
            |why: String| CatalogError::Store(StoreError::Corrupt(format!("catalogue version {}: {why}", info.id)));
        if sha256_hex(&document) != info.document_sha256 {
            return Err(corrupt("the document does not match its SHA-256".to_owned()));
        }
        let parsed = CatalogDocument::from_json(&document).map_err(|e| corrupt(e.to_string()))?;
        let catalog = Catalog::from_document(parsed).map_err(|e| corrupt(e.to_string()))?;
        let catalog = Arc::new(catalog.with_version(info.id));
        self.remember(info.id, catalog.clone());
        Ok(catalog)
    }

    fn remember(&self, id: CatalogVersionId, catalog: Arc<Catalog>) {
        let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= CACHE_VERSIONS_MAX && !cache.contains_key(&id) {
            cache.clear();
        }
        cache.insert(id, catalog);
    }
}

fn check_effective_date(date: NaiveDate) -> Result<(), CatalogError> {
    if (EFFECTIVE_YEAR_MIN..=EFFECTIVE_YEAR_MAX).contains(&date.year()) {
        return Ok(());
    }
    Err(CatalogError::Invalid {
        field: "effective_from",
        message: format!("must be a date in the years {EFFECTIVE_YEAR_MIN} to {EFFECTIVE_YEAR_MAX}"),
    })
}

fn check_note(note: &str) -> Result<String, CatalogError> {
    let note = note.trim();
    if note.chars().count() > NOTE_CHARS_MAX {
        return Err(CatalogError::Invalid {
            field: "note",
            message: format!("must be at most {NOTE_CHARS_MAX} characters"),
        });
    }
    if note.chars().any(|c| c.is_control() && c != '\n') {
        return Err(CatalogError::Invalid { field: "note", message: "must not contain control characters".into() });
    }
    Ok(note.to_owned())
}

fn check_same_network(previous: &Catalog, next: &Catalog) -> Result<(), CatalogError> {
    if previous.currency() != next.currency() {
        return Err(CatalogError::NetworkChanged {
            field: "currency",
            was: previous.currency().to_string(),
            now: next.currency().to_string(),
        });
    }
    if previous.timezone() != next.timezone() {
        return Err(CatalogError::NetworkChanged {
            field: "timezone",
            was: previous.timezone().name().to_owned(),
            now: next.timezone().name().to_owned(),
        });
    }
    Ok(())
}

/// The version with the latest effective date, if any.
async fn newest_version<'e>(
    target: Target<impl SqliteExecutor<'e>, impl PgExecutor<'e>>,
) -> Result<Option<VersionInfo>, CatalogError> {
    let row: Option<VersionRow> = sql!(target, |c| {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {VERSION_COLUMNS} FROM catalog_versions ORDER BY effective_from DESC LIMIT 1"
        )))
        .fetch_optional(c)
        .await
    })?;
    row.map(version_from_row).transpose()
}

async fn select_version<'e>(
    target: Target<impl SqliteExecutor<'e>, impl PgExecutor<'e>>,
    id: CatalogVersionId,
) -> Result<Option<VersionInfo>, CatalogError> {
    let row: Option<VersionRow> = sql!(target, |c| {
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {VERSION_COLUMNS} FROM catalog_versions WHERE id = $1")))
            .bind(id.to_db())
            .fetch_optional(c)
            .await
    })?;
    row.map(version_from_row).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_keys_sort_like_dates() {
        let early = NaiveDate::from_ymd_opt(2026, 9, 30).unwrap();
        let late = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
        assert!(date_key(early) < date_key(late));
        assert_eq!(date_key(early), "2026-09-30");
        let far = NaiveDate::from_ymd_opt(12000, 1, 1).unwrap();
        assert_eq!(date_key(far), "9999-12-31");
    }

    #[test]
    fn notes_are_trimmed_and_bounded() {
        assert_eq!(check_note("  price rise  ").unwrap(), "price rise");
        assert!(check_note(&"x".repeat(NOTE_CHARS_MAX + 1)).is_err());
        assert!(check_note("bell\u{7}").is_err());
    }
}
