//! The persistent part of a simulated card: what survives power loss. Saved as JSON with
//! hex bytes, so a card image can be read (and, for tests, edited) by a person.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::desfire::files::{AccessRights, CommMode, FileKind};

/// Format tag of card image files.
pub const IMAGE_FORMAT: &str = "smartticket-sim-card/1";
/// The AES key a blank card ships with: all zero, version 0.
pub const DEFAULT_KEY: [u8; 16] = [0; 16];
/// Most applications on a card (DESFire EV2 allows 28; the fare application needs one).
pub const APPLICATIONS_MAX: usize = 28;
/// Most files in an application (DESFire EV2: 32).
pub const FILES_MAX: usize = 32;
/// Most keys in an application (DESFire EV2: 14).
pub const KEYS_MAX: usize = 14;
/// Largest data file the simulator accepts, in bytes.
pub const DATA_FILE_BYTES_MAX: u32 = 8 * 1024;

/// Hex (de)serialisation of byte strings in card images.
pub(crate) mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, T: AsRef<[u8]>>(bytes: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode_upper(bytes.as_ref()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: TryFrom<Vec<u8>>>(d: D) -> Result<T, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = hex::decode(text).map_err(serde::de::Error::custom)?;
        T::try_from(bytes).map_err(|_| serde::de::Error::custom("wrong length"))
    }
}

/// A key on the card and its version byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySlot {
    /// The AES-128 key.
    #[serde(with = "hex_bytes")]
    pub key: [u8; 16],
    /// Its version.
    pub version: u8,
}

impl KeySlot {
    /// The default key of a blank card.
    pub fn blank() -> KeySlot {
        KeySlot { key: DEFAULT_KEY, version: 0 }
    }
}

/// What a file holds, committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "content", rename_all = "snake_case")]
pub enum Content {
    /// Bytes of a standard or backup data file.
    Data {
        /// The bytes.
        #[serde(with = "hex_bytes")]
        bytes: Vec<u8>,
    },
    /// A value file.
    Value {
        /// The value.
        value: i32,
        /// How much LimitedCredit may add back (the debits of the last transaction).
        limited_credit_value: i32,
    },
    /// A cyclic record file, oldest first.
    Records {
        /// The records.
        records: Vec<Record>,
    },
    /// The transaction MAC file.
    TransactionMac {
        /// The card's transaction MAC key.
        #[serde(with = "hex_bytes")]
        key: [u8; 16],
        /// Its version.
        key_version: u8,
        /// The transaction counter.
        tmc: u32,
        /// The last transaction MAC.
        #[serde(with = "hex_bytes")]
        tmv: [u8; 8],
    },
}

/// One record of a record file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Record(#[serde(with = "hex_bytes")] pub Vec<u8>);

/// A file: its settings and committed content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimFile {
    /// Type and parameters.
    pub kind: FileKind,
    /// Communication mode.
    pub mode: CommMode,
    /// Access rights.
    pub access: AccessRights,
    /// Committed content.
    pub content: Content,
}

/// An application: its keys and files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Application {
    /// Keys 0..n; key 0 is the application master key.
    pub keys: Vec<KeySlot>,
    /// Files by number.
    pub files: BTreeMap<u8, SimFile>,
}

/// Everything a card keeps without power.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardImage {
    /// Always [`IMAGE_FORMAT`].
    pub format: String,
    /// The 7-byte UID.
    #[serde(with = "hex_bytes")]
    pub uid: [u8; 7],
    /// The card (PICC) master key.
    pub picc_key: KeySlot,
    /// Applications by AID (hex, as sent on the wire).
    pub applications: BTreeMap<String, Application>,
}

impl CardImage {
    /// A blank card with `uid`: default PICC key, no applications.
    pub fn blank(uid: [u8; 7]) -> CardImage {
        CardImage { format: IMAGE_FORMAT.into(), uid, picc_key: KeySlot::blank(), applications: BTreeMap::new() }
    }

    /// The application with `aid`.
    pub fn application(&self, aid: [u8; 3]) -> Option<&Application> {
        self.applications.get(&hex::encode_upper(aid))
    }

    pub(crate) fn application_mut(&mut self, aid: [u8; 3]) -> Option<&mut Application> {
        self.applications.get_mut(&hex::encode_upper(aid))
    }

    /// The transaction counter of an application, if it has a TMAC file.
    pub fn tmc(&self, aid: [u8; 3]) -> Option<u32> {
        self.application(aid)?.files.values().find_map(|file| match file.content {
            Content::TransactionMac { tmc, .. } => Some(tmc),
            _ => None,
        })
    }
}

/// The initial committed content of a new file.
pub fn initial_content(kind: &FileKind) -> Content {
    match kind {
        FileKind::StdData { size } | FileKind::BackupData { size } => {
            Content::Data { bytes: vec![0; usize::try_from(*size).unwrap_or(0)] }
        }
        FileKind::Value { value, .. } => Content::Value { value: *value, limited_credit_value: 0 },
        FileKind::CyclicRecord { .. } => Content::Records { records: Vec::new() },
        FileKind::TransactionMac => Content::TransactionMac { key: [0; 16], key_version: 0, tmc: 0, tmv: [0; 8] },
    }
}
