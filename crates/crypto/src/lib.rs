//! The cryptography of SmartTicket and the [`Hsm`](hsm::Hsm) that holds its keys.
//!
//! Primitives come from RustCrypto (`aes`, `cmac`, `hmac`, `sha2`, `p256`, `aes-gcm`,
//! `argon2`); this crate composes them into what the fare system needs and proves each
//! composition against a published vector cited in its tests:
//!
//! - [`cmac`]: AES-128 CMAC (RFC 4493) and the DESFire EV2 truncation;
//! - [`kdf`]: NIST SP 800-108 counter-mode KDF with CMAC, in the GlobalPlatform SCP03 layout;
//! - [`diversify`]: per-card keys from a master key (NXP AN10922 §2.2, AES-128);
//! - [`token`]: PAN tokens (HMAC-SHA256 of PAN and expiry), masking and Luhn;
//! - [`sign`]: ECDSA P-256 signatures for lists and load authorisations;
//! - [`hsm`]: key roles and versions, the `Hsm` trait, a software keystore sealed under a
//!   passphrase, a PKCS#11 backend, and Shamir M-of-N backups.
//!
//! Secrets live in zeroizing containers, are compared in constant time, and have no
//! `Debug` output.
#![forbid(unsafe_code)]

pub mod cmac;
pub mod diversify;
pub mod hsm;
pub mod kdf;
pub mod keys;
pub mod sign;
pub mod token;

/// Fills `buffer` with bytes from the operating system's CSPRNG.
pub fn random_bytes(buffer: &mut [u8]) -> Result<(), CryptoError> {
    getrandom::fill(buffer).map_err(|e| CryptoError::Randomness(e.to_string()))
}

/// Failures of the primitives themselves (not of key management).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptoError {
    /// The operating system gave no randomness.
    #[error("no randomness available: {0}")]
    Randomness(String),
    /// An input had a length the algorithm does not accept.
    #[error("{what} must be {expected}, got {got} bytes")]
    Length {
        /// Which input.
        what: &'static str,
        /// What is accepted.
        expected: &'static str,
        /// What was given.
        got: usize,
    },
    /// A MAC or signature did not verify.
    #[error("verification failed")]
    Verification,
    /// Encoded key or signature bytes are malformed.
    #[error("malformed {0}")]
    Malformed(&'static str),
}
