//! The HSM: where every long-lived secret lives (DESIGN §3.1). Callers name a key by role
//! and version and ask for an operation; master key material never leaves an HSM. What
//! does leave is a per-card key (for one card session, wiped on drop), a token, or a
//! signature.
//!
//! Backends: [`soft::SoftHsm`], keys sealed in a file under a passphrase (the embedded
//! default), and [`pkcs11::Pkcs11Hsm`], keys generated inside a PKCS#11 token as
//! non-extractable (SoftHSM2 in tests, any HSM in production). [`backup`] splits a software
//! keystore into Shamir shares. The same test suite (`tests/hsm_suite.rs`) runs against both
//! backends.
//!
//! Versions: the newest version of a role is active; older ones are verify-only (they still
//! derive the keys of cards personalised under them) until retired, which destroys them.

pub mod backup;
pub mod pkcs11;
pub mod soft;

use std::fmt;

use crate::CryptoError;
use crate::cmac::SecretKey16;
use crate::diversify::DiversificationInput;
use crate::keys::{Kcv, KeyInfo, KeyKind, KeyRef, KeyRole, KeyState, KeyVersion};
use crate::sign::{Signature, VerifyingKey};

/// Why an HSM operation was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HsmError {
    /// This HSM holds no key of that role at that version (a validator's secure module
    /// asked to credit, or a retired version).
    #[error("this HSM does not hold the {0} key")]
    KeyNotHeld(KeyRef),
    /// This HSM holds no key of that role at all.
    #[error("this HSM holds no {0} key")]
    RoleNotHeld(KeyRole),
    /// The key exists but is of another algorithm than the operation needs.
    #[error("the {key} key cannot be used for {operation}")]
    WrongKind {
        /// The key.
        key: KeyRef,
        /// What was asked.
        operation: &'static str,
    },
    /// The active version cannot be retired; rotate first.
    #[error("{0} is the active version: rotate before retiring it")]
    RetireActive(KeyRef),
    /// No version is left after 255.
    #[error("the {0} key has reached version 255")]
    VersionsExhausted(KeyRole),
    /// The passphrase does not open the keystore (or the file was altered).
    #[error("wrong passphrase, or the keystore file was altered")]
    BadPassphrase,
    /// The keystore file is readable or writable by others.
    #[error("{path} is accessible by other users (mode {mode:o}); run `chmod 600 {path}`")]
    Permissions {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// The keystore or share file is not one this version can read.
    #[error("keystore file: {0}")]
    Format(String),
    /// Not enough Shamir shares, or shares of different backups.
    #[error("backup shares: {0}")]
    Shares(String),
    /// The PKCS#11 module or token failed.
    #[error("PKCS#11: {0}")]
    Pkcs11(String),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What happened.
        source: std::io::Error,
    },
    /// A primitive failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// An HSM: key inventory and the operations the fare system needs. Implementations are
/// thread-safe; PKCS#11 calls are serialised inside the backend.
pub trait Hsm: Send + Sync + fmt::Debug {
    /// A line saying which HSM this is (file path, token label), for logs and `keys list`.
    fn describe(&self) -> String;

    /// Every key held, with check values and states, ordered by role and version.
    fn inventory(&self) -> Result<Vec<KeyInfo>, HsmError>;

    /// The per-card AES key `CMAC(master, 0x01 || M)` (AN10922 §2.2) for one session.
    fn derive_card_key(&self, key: KeyRef, input: &DiversificationInput) -> Result<SecretKey16, HsmError>;

    /// HMAC-SHA256 under a tokenisation key.
    fn hmac(&self, key: KeyRef, message: &[u8]) -> Result<[u8; 32], HsmError>;

    /// ECDSA P-256 over SHA-256 of `message` with a list-signing key.
    fn sign(&self, key: KeyRef, message: &[u8]) -> Result<Signature, HsmError>;

    /// The public key of a list-signing key.
    fn verifying_key(&self, key: KeyRef) -> Result<VerifyingKey, HsmError>;

    /// The active (newest) version of `role`.
    fn active(&self, role: KeyRole) -> Result<KeyRef, HsmError> {
        self.inventory()?
            .into_iter()
            .filter(|info| info.key.role == role && info.state == KeyState::Active)
            .map(|info| info.key)
            .next()
            .ok_or(HsmError::RoleNotHeld(role))
    }

    /// Whether `key` is held.
    fn holds(&self, key: KeyRef) -> Result<bool, HsmError> {
        Ok(self.inventory()?.iter().any(|info| info.key == key))
    }
}

/// Key management: creating versions and retiring them.
pub trait KeyAdmin: Hsm {
    /// Creates the next version of `role` (version 1 if none), which becomes active; the
    /// previous active version becomes verify-only.
    fn rotate(&mut self, role: KeyRole) -> Result<KeyInfo, HsmError>;

    /// Destroys a verify-only version. Cards still on it can no longer be read.
    fn retire(&mut self, key: KeyRef) -> Result<(), HsmError>;
}

/// Which HSM to open.
#[derive(Debug)]
pub enum HsmSettings {
    /// A software keystore file and its passphrase.
    Soft {
        /// The keystore file.
        keystore: std::path::PathBuf,
        /// The passphrase that seals it.
        passphrase: secrecy::SecretString,
        /// The argon2id cost for sealing after a change.
        cost: soft::SealCost,
    },
    /// A PKCS#11 token.
    Pkcs11(pkcs11::Pkcs11Config),
}

/// Opens the HSM `settings` describe, ready for use and key management.
pub fn open(settings: HsmSettings) -> Result<Box<dyn KeyAdmin>, HsmError> {
    match settings {
        HsmSettings::Soft { keystore, passphrase, cost } => {
            Ok(Box::new(soft::FileKeystore::open(&keystore, passphrase, cost)?))
        }
        HsmSettings::Pkcs11(config) => Ok(Box::new(pkcs11::Pkcs11Hsm::open(config)?)),
    }
}

/// Marks the newest version of each role active and the rest verify-only.
pub(crate) fn with_states(mut keys: Vec<(KeyRef, Kcv)>) -> Vec<KeyInfo> {
    keys.sort_by_key(|(key, _)| *key);
    let newest: std::collections::BTreeMap<KeyRole, KeyVersion> =
        keys.iter().map(|(key, _)| (key.role, key.version)).fold(Default::default(), |mut newest, (role, version)| {
            let entry = newest.entry(role).or_insert(version);
            *entry = (*entry).max(version);
            newest
        });
    keys.into_iter()
        .map(|(key, kcv)| {
            let state =
                if newest.get(&key.role) == Some(&key.version) { KeyState::Active } else { KeyState::VerifyOnly };
            KeyInfo { key, kcv, state }
        })
        .collect()
}

/// The next version of `role` given what is held.
pub(crate) fn next_version(held: &[KeyInfo], role: KeyRole) -> Result<KeyVersion, HsmError> {
    match held.iter().filter(|info| info.key.role == role).map(|info| info.key.version).max() {
        None => Ok(KeyVersion::FIRST),
        Some(newest) => newest.next().ok_or(HsmError::VersionsExhausted(role)),
    }
}

/// Checks that `key` is of `kind` before an operation.
pub(crate) fn require_kind(key: KeyRef, kind: KeyKind, operation: &'static str) -> Result<(), HsmError> {
    if key.role.kind() == kind { Ok(()) } else { Err(HsmError::WrongKind { key, operation }) }
}
