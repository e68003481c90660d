//! Key roles, versions and check values (DESIGN §3.1). A key is named by its role and a
//! version; the version is what a DESFire card stores beside each key, so a rotated master
//! can be told from the old one on every card and old versions keep verifying until retired.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::CryptoError;

/// What a key is for; each role has one algorithm and one holder (DESIGN §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyRole {
    /// Card master and application master: create the application, change keys. Issuer HSM.
    Personalisation,
    /// Purse credit and contract load: creates value. Minting authority's HSM only.
    Credit,
    /// Purse debit, trip consumption, log append. Validators' secure modules.
    Debit,
    /// Read contracts, purse and log. Validators, inspection, service centres.
    Read,
    /// Verifies the issuer MAC of every card transaction. Clearing only.
    TransactionMac,
    /// Turns a PAN into a token. Token gate and validators' secure modules.
    Tokenisation,
    /// Signs greenlists, denylists, tariffs and load authorisations. Back office.
    ListSigning,
}

/// The algorithm of a role's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// AES-128, used through CMAC (diversification) and the card protocol.
    Aes128,
    /// A 256-bit HMAC-SHA256 key.
    HmacSha256,
    /// An ECDSA P-256 key pair.
    EcdsaP256,
}

impl KeyRole {
    /// Every role.
    pub const ALL: [KeyRole; 7] = [
        KeyRole::Personalisation,
        KeyRole::Credit,
        KeyRole::Debit,
        KeyRole::Read,
        KeyRole::TransactionMac,
        KeyRole::Tokenisation,
        KeyRole::ListSigning,
    ];

    /// The only roles a validator's secure module may hold: it must never be able to create
    /// value (credit) or forge the issuer's transaction MAC.
    pub const SAM_PROFILE: [KeyRole; 3] = [KeyRole::Debit, KeyRole::Read, KeyRole::Tokenisation];

    /// The stable name used in files, labels and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRole::Personalisation => "personalisation",
            KeyRole::Credit => "credit",
            KeyRole::Debit => "debit",
            KeyRole::Read => "read",
            KeyRole::TransactionMac => "transaction_mac",
            KeyRole::Tokenisation => "tokenisation",
            KeyRole::ListSigning => "list_signing",
        }
    }

    /// The algorithm.
    pub fn kind(self) -> KeyKind {
        match self {
            KeyRole::Tokenisation => KeyKind::HmacSha256,
            KeyRole::ListSigning => KeyKind::EcdsaP256,
            _ => KeyKind::Aes128,
        }
    }
}

impl fmt::Display for KeyRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for KeyRole {
    type Err = CryptoError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        KeyRole::ALL.into_iter().find(|r| r.as_str() == text).ok_or(CryptoError::Malformed("key role"))
    }
}

/// A key version, 1–255: the byte a DESFire card keeps beside each key (0 marks an
/// unpersonalised default key, so it is never one of ours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct KeyVersion(u8);

impl KeyVersion {
    /// The first version of every role.
    pub const FIRST: KeyVersion = KeyVersion(1);

    /// A version, refusing 0.
    pub fn new(version: u8) -> Result<Self, CryptoError> {
        if version == 0 { Err(CryptoError::Malformed("key version 0")) } else { Ok(Self(version)) }
    }

    /// The byte.
    pub fn get(self) -> u8 {
        self.0
    }

    /// The version after this one, if any is left.
    pub fn next(self) -> Option<KeyVersion> {
        self.0.checked_add(1).map(KeyVersion)
    }
}

impl TryFrom<u8> for KeyVersion {
    type Error = CryptoError;
    fn try_from(version: u8) -> Result<Self, Self::Error> {
        KeyVersion::new(version)
    }
}

impl From<KeyVersion> for u8 {
    fn from(version: KeyVersion) -> u8 {
        version.0
    }
}

impl fmt::Display for KeyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// One key: a role at a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KeyRef {
    /// What it is for.
    pub role: KeyRole,
    /// Which generation.
    pub version: KeyVersion,
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.role, self.version)
    }
}

/// A key check value: three bytes that identify key material without revealing it, so two
/// HSMs (or a share restore) can be compared. AES keys: the first three bytes of CMAC over
/// a zero block; HMAC keys: of HMAC over 32 zero bytes; EC keys: of SHA-256 of the
/// compressed public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Kcv(pub [u8; 3]);

impl Kcv {
    /// The check value from the first three bytes of a longer output.
    pub fn from_prefix(bytes: &[u8]) -> Kcv {
        let mut kcv = [0_u8; 3];
        for (slot, byte) in kcv.iter_mut().zip(bytes) {
            *slot = *byte;
        }
        Kcv(kcv)
    }
}

impl fmt::Display for Kcv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode_upper(self.0))
    }
}

impl fmt::Debug for Kcv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kcv({self})")
    }
}

impl TryFrom<String> for Kcv {
    type Error = CryptoError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        let bytes = hex::decode(text).map_err(|_| CryptoError::Malformed("check value"))?;
        bytes.try_into().map(Kcv).map_err(|_| CryptoError::Malformed("check value length"))
    }
}

impl From<Kcv> for String {
    fn from(kcv: Kcv) -> String {
        kcv.to_string()
    }
}

/// Whether a key may still be used to create new things.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// The newest version: used for everything.
    Active,
    /// Superseded by a newer version: still derives keys of cards personalised under it
    /// and verifies what they produced, until retired.
    VerifyOnly,
}

/// What may be known about a key: never its material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// Role and version.
    pub key: KeyRef,
    /// Check value.
    pub kcv: Kcv,
    /// Active or verify-only.
    pub state: KeyState,
}
