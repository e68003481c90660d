//! AES-128 CMAC (NIST SP 800-38B, RFC 4493) over RustCrypto's `cmac`, with a key type that
//! keeps the expanded AES key so repeated MACs under one key (a clearing run verifying
//! thousands of transactions of one card) skip the key schedule, and the truncation
//! DESFire EV2 uses on the wire.

use ::cmac::{Cmac, Mac};
use aes::Aes128;
use aes::cipher::KeyInit;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::CryptoError;

/// Bytes in an AES block and a full CMAC.
pub const BLOCK_BYTES: usize = 16;
/// Bytes in a DESFire EV2 truncated MAC (`MACt`): the odd-numbered bytes of the CMAC.
pub const TRUNCATED_MAC_BYTES: usize = 8;

/// An AES-128 key ready to MAC with. Clones share nothing mutable; the expanded key is
/// wiped by `aes`'s own `ZeroizeOnDrop` (enabled through the `zeroize` feature).
#[derive(Clone)]
pub struct CmacKey {
    mac: Cmac<Aes128>,
}

impl CmacKey {
    /// Expands a 16-byte key.
    pub fn new(key: &[u8; 16]) -> Self {
        Self { mac: <Cmac<Aes128> as KeyInit>::new(&(*key).into()) }
    }

    /// Expands a key given as a slice; refuses any length but 16.
    pub fn from_slice(key: &[u8]) -> Result<Self, CryptoError> {
        let key: &[u8; 16] =
            key.try_into().map_err(|_| CryptoError::Length { what: "AES-128 key", expected: "16", got: key.len() })?;
        Ok(Self::new(key))
    }

    /// The CMAC of the concatenation of `parts`.
    pub fn mac_parts(&self, parts: &[&[u8]]) -> [u8; BLOCK_BYTES] {
        let mut mac = self.mac.clone();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// The CMAC of `message`.
    pub fn mac(&self, message: &[u8]) -> [u8; BLOCK_BYTES] {
        self.mac_parts(&[message])
    }

    /// The EV2 truncated MAC of the concatenation of `parts`.
    pub fn mac_truncated(&self, parts: &[&[u8]]) -> [u8; TRUNCATED_MAC_BYTES] {
        truncate_ev2(&self.mac_parts(parts))
    }

    /// Checks a truncated MAC in constant time.
    pub fn verify_truncated(&self, parts: &[&[u8]], expected: &[u8]) -> Result<(), CryptoError> {
        let actual = self.mac_truncated(parts);
        if expected.len() == TRUNCATED_MAC_BYTES && bool::from(actual.ct_eq(expected)) {
            Ok(())
        } else {
            Err(CryptoError::Verification)
        }
    }
}

/// One-shot AES-128 CMAC.
pub fn aes_cmac(key: &[u8; 16], message: &[u8]) -> [u8; BLOCK_BYTES] {
    CmacKey::new(key).mac(message)
}

/// The DESFire EV2 truncation of a CMAC: bytes 1, 3, 5, …, 15 (the odd-numbered bytes,
/// counting from 0), as NXP AN12196 describes `MACt`.
pub fn truncate_ev2(mac: &[u8; BLOCK_BYTES]) -> [u8; TRUNCATED_MAC_BYTES] {
    let mut truncated = [0_u8; TRUNCATED_MAC_BYTES];
    for (out, pair) in truncated.iter_mut().zip(mac.chunks_exact(2)) {
        if let [_, odd] = pair {
            *out = *odd;
        }
    }
    truncated
}

/// A key held only as long as needed, wiped on drop.
pub type SecretKey16 = Zeroizing<[u8; 16]>;
