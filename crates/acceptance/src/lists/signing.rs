//! Who signs lists and whom a validator trusts. The back office signs through
//! [`ListSigner`] (a software key or the `Hsm`'s list-signing key, DESIGN §3.1); a validator
//! checks against [`TrustedKeys`], the list-signing public keys by version, minus the retired.

use std::collections::{BTreeMap, BTreeSet};

use smartticket_crypto::hsm::{Hsm, HsmError};
use smartticket_crypto::keys::{KeyRef, KeyRole, KeyVersion};
use smartticket_crypto::sign::{Signature, SigningKey, VerifyingKey};

use super::error::{BuildError, ListError};

/// Signs list files.
pub trait ListSigner {
    /// The version of the list-signing key, written into the header it signs.
    fn key_version(&self) -> KeyVersion;

    /// ECDSA P-256 over SHA-256 of `message`.
    fn sign(&self, message: &[u8]) -> Result<Signature, HsmError>;
}

/// A list-signing key held in software (tests, benchmarks, a demo back office).
#[derive(Clone)]
pub struct KeySigner<'a> {
    key: &'a SigningKey,
    version: KeyVersion,
}

impl<'a> KeySigner<'a> {
    /// Signs with `key`, announcing it as `version`.
    pub fn new(key: &'a SigningKey, version: KeyVersion) -> KeySigner<'a> {
        KeySigner { key, version }
    }
}

impl ListSigner for KeySigner<'_> {
    fn key_version(&self) -> KeyVersion {
        self.version
    }

    fn sign(&self, message: &[u8]) -> Result<Signature, HsmError> {
        Ok(self.key.sign(message))
    }
}

/// A list-signing key inside an [`Hsm`].
#[derive(Debug, Clone, Copy)]
pub struct HsmSigner<'a> {
    hsm: &'a dyn Hsm,
    key: KeyRef,
}

impl<'a> HsmSigner<'a> {
    /// Signs with `key`, which must be a list-signing key.
    pub fn new(hsm: &'a dyn Hsm, key: KeyRef) -> Result<HsmSigner<'a>, BuildError> {
        if key.role != KeyRole::ListSigning {
            return Err(BuildError::NotListSigningKey(key));
        }
        Ok(HsmSigner { hsm, key })
    }

    /// Signs with the active list-signing key of `hsm`.
    pub fn active(hsm: &'a dyn Hsm) -> Result<HsmSigner<'a>, BuildError> {
        HsmSigner::new(hsm, hsm.active(KeyRole::ListSigning)?)
    }
}

impl ListSigner for HsmSigner<'_> {
    fn key_version(&self) -> KeyVersion {
        self.key.version
    }

    fn sign(&self, message: &[u8]) -> Result<Signature, HsmError> {
        self.hsm.sign(self.key, message)
    }
}

/// The list-signing public keys a validator accepts, by version. A retired version is
/// remembered so it can be refused by name and never trusted again.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: BTreeMap<KeyVersion, VerifyingKey>,
    retired: BTreeSet<KeyVersion>,
}

impl TrustedKeys {
    /// No key: every list is refused.
    pub fn new() -> TrustedKeys {
        TrustedKeys::default()
    }

    /// Every list-signing key `hsm` holds (active and verify-only).
    pub fn from_hsm(hsm: &dyn Hsm) -> Result<TrustedKeys, HsmError> {
        let mut trusted = TrustedKeys::new();
        for info in hsm.inventory()? {
            if info.key.role == KeyRole::ListSigning {
                trusted.keys.insert(info.key.version, hsm.verifying_key(info.key)?);
            }
        }
        Ok(trusted)
    }

    /// Trusts `key` as `version`. Refuses a retired version, and another key for a version
    /// already trusted (a provisioning mistake, or an attempt to swap a key).
    pub fn trust(&mut self, version: KeyVersion, key: VerifyingKey) -> Result<(), ListError> {
        if self.retired.contains(&version) {
            return Err(ListError::KeyRetired(version));
        }
        match self.keys.get(&version) {
            Some(known) if *known != key => Err(ListError::KeyConflict(version)),
            _ => {
                self.keys.insert(version, key);
                Ok(())
            }
        }
    }

    /// Retires `version`: files it signed are refused from now on. The list in use stays in
    /// use until a file under a trusted key replaces it.
    pub fn retire(&mut self, version: KeyVersion) {
        self.keys.remove(&version);
        self.retired.insert(version);
    }

    /// The key of `version`, if trusted.
    pub fn verifying_key(&self, version: KeyVersion) -> Result<&VerifyingKey, ListError> {
        if self.retired.contains(&version) {
            return Err(ListError::KeyRetired(version));
        }
        self.keys.get(&version).ok_or(ListError::UnknownKeyVersion(version))
    }
}
