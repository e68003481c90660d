//! The back office's side of offline acceptance (DESIGN §4): the greenlist and denylist
//! versions it publishes from what was sold and blocked, served as signed files (full or
//! delta) and as the KIDSOK XML web service, and the batches of records validators upload.
//!
//! The list format and the validator's rules belong to `smartticket-acceptance`. This crate
//! reads the selling tables (media, entitlements, approved discounts, photos) and never
//! writes them; it owns `list_versions`, `list_photo_refs` and the `validator_*` tables.
#![forbid(unsafe_code)]

mod error;
mod source;
mod uploads;
mod versions;
mod xml;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use smartticket_acceptance::lists::ListKind;
use smartticket_catalog::CatalogStore;
use smartticket_core::{Clock, Timestamp};
use smartticket_crypto::hsm::Hsm;
use smartticket_identity::AuditCtx;
use smartticket_store::Db;

pub use error::FleetError;
pub use uploads::{
    BATCH_ID_CHARS_MAX, BATCH_PAYLOAD_BYTES_MAX, BATCH_RECORDS_MAX, BatchAck, DEVICE_ID_CHARS_MAX, DeviceUploads,
    RECORD_BYTES_MAX, UploadBatch,
};
pub use versions::{DELTA_CACHE_ENTRIES_MAX, LIST_VERSIONS_KEPT, ListDownload, ListVersionInfo, PUBLISH_ATTEMPTS_MAX};
pub use xml::{GREENLIST_XSD, XML_BYTES_MAX, XmlDownload};

/// How often the server publishes both lists unless configured: a card blocked in selling
/// is in the next denylist within seconds of the block.
pub const PUBLISH_INTERVAL_MS_DEFAULT: u64 = 2_000;

/// What the fleet service is built from.
pub struct FleetParts {
    /// The database.
    pub db: Db,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Holds the list-signing key: the background publisher and deltas sign with it.
    pub hsm: Arc<dyn Hsm>,
    /// The tariff catalogue: codes beside the card numbers in the XML greenlist.
    pub catalog: CatalogStore,
}

/// The fleet service, shared by every request. Cheap to clone.
#[derive(Clone)]
pub struct Fleet {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    clock: Arc<dyn Clock>,
    hsm: Arc<dyn Hsm>,
    catalog: CatalogStore,
    deltas: versions::DeltaCache,
    /// One build at a time in this process: a second one would read the same rows.
    publishing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet").field("hsm", &self.inner.hsm.describe()).finish_non_exhaustive()
    }
}

impl Fleet {
    /// The service from its parts. Touches nothing until used.
    pub fn new(parts: FleetParts) -> Fleet {
        let FleetParts { db, clock, hsm, catalog } = parts;
        let inner = Inner {
            db,
            clock,
            hsm,
            catalog,
            deltas: versions::DeltaCache::default(),
            publishing: tokio::sync::Mutex::new(()),
        };
        Fleet { inner: Arc::new(inner) }
    }

    /// Builds the list of `kind` from the database as of `now` and stores it, signed by the
    /// active list-signing key of `hsm`, as the next version, unless its content equals
    /// the latest version's. Answers the version current afterwards.
    pub async fn publish(&self, kind: ListKind, hsm: &dyn Hsm, now: Timestamp) -> Result<ListVersionInfo, FleetError> {
        let _one_build = self.inner.publishing.lock().await;
        let db = &self.inner.db;
        for _ in 0..PUBLISH_ATTEMPTS_MAX {
            // The latest version first, then the sources: see `versions::store_next`.
            let head = versions::latest(db, kind).await?;
            let built = source::build(db, kind, now).await?;
            if let Some(current) = versions::store_next(db, head.as_ref(), &built, hsm, now).await? {
                return Ok(current);
            }
        }
        Err(FleetError::PublishContention { kind, attempts: PUBLISH_ATTEMPTS_MAX })
    }

    /// Publishes both lists now with the service's own keys and clock, the denylist first
    /// (a block is the more urgent news).
    pub async fn publish_all(&self) -> Result<[ListVersionInfo; 2], FleetError> {
        let now = self.inner.clock.now();
        let denylist = self.publish(ListKind::Denylist, self.inner.hsm.as_ref(), now).await?;
        let greenlist = self.publish(ListKind::Greenlist, self.inner.hsm.as_ref(), now).await?;
        Ok([denylist, greenlist])
    }

    /// The latest version of `kind`, if one was published.
    pub async fn latest(&self, kind: ListKind) -> Result<Option<ListVersionInfo>, FleetError> {
        versions::latest(&self.inner.db, kind).await
    }

    /// The signed file bringing a validator that holds version `since` (none: no list) to
    /// the latest version: the full list, or a delta from `since`; `UpToDate` when `since`
    /// is the latest. A `since` that is not stored is [`FleetError::UnknownVersion`].
    pub async fn list_file(&self, kind: ListKind, since: Option<u64>) -> Result<ListDownload, FleetError> {
        versions::download(&self.inner.db, &self.inner.deltas, self.inner.hsm.as_ref(), kind, since).await
    }

    /// The XML greenlist (KIDSOK 2.1) for a carrier holding version `since` (none: the full
    /// list), with the rules of [`Fleet::list_file`].
    pub async fn greenlist_xml(&self, since: Option<u64>) -> Result<XmlDownload, FleetError> {
        xml::greenlist_xml(&self.inner.db, &self.inner.catalog, since, self.inner.clock.now()).await
    }

    /// Takes a batch of a validator's journal records (see [`uploads`](crate::UploadBatch)
    /// for the rules), audited under `ctx`; a batch received before is answered again with
    /// nothing stored and no new audit entry.
    pub async fn receive_batch(&self, ctx: &AuditCtx, batch: &UploadBatch) -> Result<BatchAck, FleetError> {
        uploads::receive(&self.inner.db, ctx, batch, self.inner.clock.now()).await
    }

    /// What is stored of `device_id`'s journal; `None` when it never uploaded.
    pub async fn device_uploads(&self, device_id: &str) -> Result<Option<DeviceUploads>, FleetError> {
        uploads::device(&self.inner.db, device_id).await
    }

    /// Publishes both lists every `interval` until `shutdown` resolves. A failure (no
    /// list-signing key yet, the database away) is logged when it first appears and tried
    /// again at the next tick.
    pub async fn run_publisher(&self, interval: Duration, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut last_error: Option<String> = None;
        loop {
            match self.publish_all().await {
                Ok(_) => {
                    if last_error.take().is_some() {
                        tracing::info!("list publishing works again");
                    }
                }
                Err(error) => {
                    let text = error.to_string();
                    if last_error.as_deref() != Some(text.as_str()) {
                        tracing::warn!(error = %text, "cannot publish the lists now; trying again every interval");
                    }
                    last_error = Some(text);
                }
            }
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = &mut shutdown => break,
            }
        }
        tracing::info!("list publisher stopped");
    }
}
