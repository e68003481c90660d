//! A validator's link to the back office (DESIGN §4): it downloads the signed greenlist and
//! denylist (full, or a delta from the version held), keeps the files it installed so a
//! restart decides from the same lists, and uploads the journal in batches until each is
//! acknowledged. The rules (signatures, version order, idempotent storage) live in
//! `acceptance` and `fleet`; this crate is only the wire between them.
//!
//! Every call is bounded: list downloads by [`LIST_FILE_BYTES_MAX`], batches by
//! [`BATCH_RECORDS_MAX`] and [`BATCH_PAYLOAD_BYTES_MAX`], each request by
//! [`REQUEST_TIMEOUT`]. Retrying is the caller's: a failed round leaves everything as it was,
//! and [`LinkError::is_retryable`] says whether waiting (with the journal's `Backoff`) helps.
#![forbid(unsafe_code)]

mod client;
mod error;
mod stored;
mod sync;

pub use client::{BackOffice, BatchAck, DeviceUploads, Fetched, LIST_FILE_BYTES_MAX, REQUEST_TIMEOUT};
pub use error::LinkError;
pub use stored::{DELTAS_KEPT_MAX, StoredLists};
pub use sync::{BATCH_PAYLOAD_BYTES_MAX, BATCH_RECORDS_MAX, ListSync, UploadReport, sync_lists, upload_pending};
