//! ECDSA over P-256 with SHA-256 (FIPS 186-5; deterministic nonces per RFC 6979) for
//! greenlists, denylists, tariffs and load authorisations. P-256 rather than Ed25519 so the
//! same keys work in every PKCS#11 HSM (`CKM_ECDSA`), including SoftHSM2.

use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature as P256Signature, SigningKey as P256SigningKey, VerifyingKey as P256VerifyingKey};

use crate::CryptoError;

/// Bytes of a signature: `r || s`, 32 bytes each, big-endian.
pub const SIGNATURE_BYTES: usize = 64;
/// Bytes of a compressed SEC1 public key.
pub const PUBLIC_KEY_BYTES: usize = 33;

/// An ECDSA P-256 signature, `r || s`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; SIGNATURE_BYTES]);

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signature({})", hex::encode(self.0))
    }
}

/// A public key that checks signatures.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyingKey(P256VerifyingKey);

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyingKey({})", hex::encode(self.to_sec1()))
    }
}

impl VerifyingKey {
    /// Reads a SEC1 point (compressed 33 bytes or uncompressed 65 bytes).
    pub fn from_sec1(bytes: &[u8]) -> Result<Self, CryptoError> {
        P256VerifyingKey::from_sec1_bytes(bytes).map(Self).map_err(|_| CryptoError::Malformed("P-256 public key"))
    }

    /// The compressed SEC1 encoding.
    pub fn to_sec1(&self) -> [u8; PUBLIC_KEY_BYTES] {
        let point = self.0.to_sec1_point(true);
        let mut out = [0_u8; PUBLIC_KEY_BYTES];
        for (slot, byte) in out.iter_mut().zip(point.as_bytes()) {
            *slot = *byte;
        }
        out
    }

    /// Checks `signature` over `message` (hashed with SHA-256).
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), CryptoError> {
        let signature = P256Signature::from_slice(&signature.0).map_err(|_| CryptoError::Malformed("signature"))?;
        self.0.verify(message, &signature).map_err(|_| CryptoError::Verification)
    }
}

/// A P-256 private key held in software (the software HSM and tests).
#[derive(Clone)]
pub struct SigningKey(P256SigningKey);

impl SigningKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self, CryptoError> {
        loop {
            let mut scalar = zeroize::Zeroizing::new([0_u8; 32]);
            crate::random_bytes(scalar.as_mut())?;
            // Rejection sampling: a random 256-bit string is a valid scalar with
            // overwhelming probability; retry the rare zero or ≥ n case.
            if let Ok(key) = Self::from_bytes(&scalar) {
                return Ok(key);
            }
        }
    }

    /// Reads a 32-byte big-endian scalar.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, CryptoError> {
        P256SigningKey::from_slice(bytes).map(Self).map_err(|_| CryptoError::Malformed("P-256 private key"))
    }

    /// The 32-byte scalar; wipe it after use.
    pub fn to_bytes(&self) -> zeroize::Zeroizing<[u8; 32]> {
        let mut out = zeroize::Zeroizing::new([0_u8; 32]);
        out.copy_from_slice(self.0.to_bytes().as_slice());
        out
    }

    /// The public half.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey(*self.0.verifying_key())
    }

    /// Signs `message` (hashed with SHA-256), deterministically per RFC 6979.
    pub fn sign(&self, message: &[u8]) -> Signature {
        let signature: P256Signature = self.0.sign(message);
        let mut out = [0_u8; SIGNATURE_BYTES];
        out.copy_from_slice(signature.to_bytes().as_slice());
        Signature(out)
    }
}
