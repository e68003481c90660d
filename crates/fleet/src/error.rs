//! Why a fleet operation failed, grouped by who must act: the caller (a version or batch
//! the back office cannot serve or take), the operator (keys, storage), or nobody yet (no
//! list published, publishers racing).

use smartticket_acceptance::lists::{BuildError, ListKind};
use smartticket_crypto::hsm::HsmError;
use smartticket_store::StoreError;

/// Why a fleet operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    // The caller's: answer 4xx.
    /// The version a validator says it holds is not stored: never published, newer than
    /// the latest, or pruned. It must download the full list.
    #[error("{kind} version {since} is not available (latest is {latest}); download the full list")]
    UnknownVersion {
        /// Which list.
        kind: ListKind,
        /// The version asked for as a base.
        since: u64,
        /// The latest version.
        latest: u64,
    },
    /// A batch field is out of its domain or a limit.
    #[error("{field}: {message}")]
    InvalidBatch {
        /// The field at fault.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The batch id is stored for another device or other sequences.
    #[error("batch {batch_id} was already received for other records ({stored})")]
    BatchIdReused {
        /// The batch id.
        batch_id: String,
        /// What it names in storage.
        stored: String,
    },
    /// A record arrived again with other bytes than the stored one: a second journal with
    /// the same device id, a damaged journal, or a forgery. The stored record stays.
    #[error("record {sequence} of device {device_id} is stored with other content")]
    RecordMismatch {
        /// The device.
        device_id: String,
        /// The sequence.
        sequence: u64,
    },

    // Nobody's fault yet: retry later.
    /// No version of this list has been published yet.
    #[error("no {0} has been published yet")]
    NothingPublished(ListKind),
    /// Other publishers stored a version every time this one tried.
    #[error("{kind}: other publishers kept storing new versions; {attempts} attempts made")]
    PublishContention {
        /// Which list.
        kind: ListKind,
        /// Attempts made.
        attempts: u32,
    },
    /// The XML document would be larger than the service answers.
    #[error("the XML greenlist would exceed {bytes_max} bytes; ask for a delta with `since`")]
    XmlTooLarge {
        /// The limit.
        bytes_max: usize,
    },

    // The operator's: answer 5xx.
    /// The list-signing key is missing or the HSM failed.
    #[error(transparent)]
    Keys(#[from] HsmError),
    /// A list could not be built or signed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A stored list file no longer parses or verifies under the key stored with it.
    #[error("stored {kind} version {version} is unreadable: {reason}")]
    StoredListInvalid {
        /// Which list.
        kind: ListKind,
        /// Which version.
        version: u64,
        /// Why.
        reason: String,
    },
    /// Writing the XML document failed.
    #[error("writing the XML greenlist: {0}")]
    Xml(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for FleetError {
    fn from(error: sqlx::Error) -> Self {
        FleetError::Store(StoreError::from(error))
    }
}

impl FleetError {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> FleetError {
        FleetError::InvalidBatch { field, message: message.into() }
    }
}
