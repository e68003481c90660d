//! Why a list file was refused ([`ListError`], on the validator) or could not be built
//! ([`BuildError`], in the back office). Variants are grouped by who is at fault.

use smartticket_crypto::hsm::HsmError;
use smartticket_crypto::keys::{KeyRef, KeyVersion};

use super::format::ListKind;
use super::key::MediumKey;

/// Why a validator refused a list file. The list in use stays in use whatever the error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ListError {
    // The bytes are not a well-formed list file: damaged in transit or storage, cut short,
    // or not a list at all.
    /// The file ends before its header, payload and signature do.
    #[error("list file truncated: {bytes_expected} bytes expected, {bytes} present")]
    Truncated {
        /// Bytes the header announces (or the smallest possible file).
        bytes_expected: u64,
        /// Bytes present.
        bytes: u64,
    },
    /// Bytes follow the signature.
    #[error("list file has trailing bytes: {bytes_expected} bytes expected, {bytes} present")]
    TrailingBytes {
        /// Bytes the header announces.
        bytes_expected: u64,
        /// Bytes present.
        bytes: u64,
    },
    /// The file does not start with the list magic.
    #[error("not a SmartTicket list file (magic {0:02x?})")]
    BadMagic([u8; 4]),
    /// A format version this validator does not read.
    #[error("list format version {offered} is not supported (this validator reads {supported})")]
    UnsupportedFormatVersion {
        /// The file's.
        offered: u16,
        /// Ours.
        supported: u16,
    },
    /// A list kind byte that is neither greenlist nor denylist.
    #[error("unknown list kind {0}")]
    UnknownListKind(u8),
    /// A header field is out of its domain.
    #[error("malformed list header: {0}")]
    MalformedHeader(&'static str),
    /// A count or size is above its limit.
    #[error("{what}: {count} is more than the limit of {max}")]
    LimitExceeded {
        /// What was counted.
        what: &'static str,
        /// How many.
        count: u64,
        /// The limit.
        max: u64,
    },
    /// A record of the payload is malformed.
    #[error("malformed {section} record {index}: {reason}")]
    MalformedRecord {
        /// `removals`, `entries` or `coupons`.
        section: &'static str,
        /// Its index in the section.
        index: u64,
        /// What is wrong.
        reason: &'static str,
    },

    // The file is well formed but not authentic: forged, altered, or signed with a key this
    // validator does not trust.
    /// No trusted list-signing key has this version.
    #[error("list signed with key version {0}, which this validator does not know")]
    UnknownKeyVersion(KeyVersion),
    /// The key version was retired: its lists are refused even with a valid signature.
    #[error("list signed with retired key version {0}")]
    KeyRetired(KeyVersion),
    /// The signature does not verify: the file was altered after signing, or forged.
    #[error("list signature does not verify with key version {0}")]
    SignatureInvalid(KeyVersion),

    // Authentic, but not the next list for this validator.
    /// A greenlist offered where a denylist is held, or the reverse.
    #[error("a {offered} was offered where a {expected} is held")]
    WrongKind {
        /// What this holder keeps.
        expected: ListKind,
        /// What was offered.
        offered: ListKind,
    },
    /// The version in use, offered again.
    #[error("list version {0} is already in use (replayed)")]
    Replayed(u64),
    /// An older version than the one in use.
    #[error("list version {offered} is older than version {current} in use (downgrade)")]
    Downgrade {
        /// In use.
        current: u64,
        /// Offered.
        offered: u64,
    },
    /// Signed with an older key version than the list in use: once lists come under a new
    /// key, an old key (perhaps the reason for the rotation) may not sign the next one.
    #[error("list signed with key version {offered}, older than version {current} of the list in use")]
    KeyVersionRolledBack {
        /// Key version of the list in use.
        current: KeyVersion,
        /// Key version of the offered list.
        offered: KeyVersion,
    },
    /// A delta arrived before any full list.
    #[error("delta to version {base} offered, but no list is in use yet")]
    NoBaseList {
        /// The version it applies to.
        base: u64,
    },
    /// A delta for another version than the one in use.
    #[error("delta applies to version {base}, but version {current} is in use")]
    DeltaBaseMismatch {
        /// In use.
        current: u64,
        /// What the delta applies to.
        base: u64,
    },
    /// A delta that does not fit the list in use although its base version does: the
    /// publisher built it from another list.
    #[error("delta does not fit the list in use: {reason} ({key})")]
    DeltaInconsistent {
        /// What does not fit.
        reason: &'static str,
        /// The medium concerned.
        key: MediumKey,
    },

    // The caller's mistake.
    /// Two different keys offered as the same version.
    #[error("key version {0} is already trusted with another key")]
    KeyConflict(KeyVersion),
}

/// Why the back office could not build or sign a list.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A coupon fails [`Coupon::check`](super::Coupon::check).
    #[error("coupon of {key}: {reason}")]
    InvalidCoupon {
        /// The medium.
        key: MediumKey,
        /// What is wrong.
        reason: &'static str,
    },
    /// A medium has more coupons than one entry holds.
    #[error("{key} has {count} coupons; at most {max} fit one entry")]
    TooManyCoupons {
        /// The medium.
        key: MediumKey,
        /// How many it has.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The list is above a limit.
    #[error("{what}: {count} is more than the limit of {max}")]
    LimitExceeded {
        /// What was counted.
        what: &'static str,
        /// How many.
        count: u64,
        /// The limit.
        max: u64,
    },
    /// A delta both removes and updates the same medium.
    #[error("{0} is both removed and updated by the delta")]
    RemovedAndUpdated(MediumKey),
    /// List and base versions that no validator would accept.
    #[error("bad list versions: {0}")]
    Versions(&'static str),
    /// The key offered for signing is not a list-signing key.
    #[error("{0} is not a list-signing key")]
    NotListSigningKey(KeyRef),
    /// The HSM did not sign.
    #[error(transparent)]
    Signing(#[from] HsmError),
}
