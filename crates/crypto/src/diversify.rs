//! Per-card keys from a master key: NXP AN10922 "Symmetric key diversifications" §2.2,
//! AES-128. The diversification input `M` is the card UID, the application id and a system
//! identifier; the key is `CMAC(K, 0x01 || M)` with AN10922's own padding (to 32 bytes,
//! always two blocks), so cloning one card exposes only that card.
//!
//! When `M` is at least 16 bytes, AN10922 padding coincides with standard CMAC padding, so
//! any HSM's plain AES-CMAC computes the same key. SmartTicket's inputs are always that long
//! (see [`DiversificationInput`]); the general form here also covers shorter inputs for the
//! published vector.

use aes::Aes128;
use aes::cipher::{BlockCipherEncrypt, KeyInit};
use zeroize::Zeroizing;

use crate::CryptoError;
use crate::cmac::{BLOCK_BYTES, SecretKey16};

/// AN10922 diversification constant for an AES-128 key.
const AES128_DIVERSIFICATION_CONSTANT: u8 = 0x01;
/// Longest diversification input: 31 bytes, so `0x01 || M` fits two blocks.
pub const INPUT_BYTES_MAX: usize = 31;
/// Shortest system identifier SmartTicket accepts: with a 7-byte UID and 3-byte AID it
/// makes `M` 16 bytes, where AN10922 equals plain CMAC.
pub const SYSTEM_ID_BYTES_MIN: usize = 6;
/// Longest system identifier: `7 + 3 + 21 = 31`.
pub const SYSTEM_ID_BYTES_MAX: usize = 21;

/// What a card key is diversified from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DiversificationInput {
    bytes: Vec<u8>,
}

impl DiversificationInput {
    /// `UID (7 bytes) || AID (3 bytes, as sent to the card) || system identifier`.
    pub fn new(uid: &[u8; 7], aid: &[u8; 3], system_id: &[u8]) -> Result<Self, CryptoError> {
        if !(SYSTEM_ID_BYTES_MIN..=SYSTEM_ID_BYTES_MAX).contains(&system_id.len()) {
            return Err(CryptoError::Length { what: "system identifier", expected: "6 to 21", got: system_id.len() });
        }
        let mut bytes = Vec::with_capacity(uid.len() + aid.len() + system_id.len());
        bytes.extend_from_slice(uid);
        bytes.extend_from_slice(aid);
        bytes.extend_from_slice(system_id);
        Ok(Self { bytes })
    }

    /// The input `M`.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// `0x01 || M`: what a plain CMAC is computed over (equal to AN10922 for these lengths).
    pub fn cmac_message(&self) -> Vec<u8> {
        let mut message = Vec::with_capacity(1 + self.bytes.len());
        message.push(AES128_DIVERSIFICATION_CONSTANT);
        message.extend_from_slice(&self.bytes);
        message
    }
}

fn double(block: &[u8; BLOCK_BYTES]) -> [u8; BLOCK_BYTES] {
    // Multiplication by x in GF(2^128) with the polynomial x^128 + x^7 + x^2 + x + 1.
    let value = u128::from_be_bytes(*block);
    let carry = if value >> 127 == 1 { 0x87 } else { 0 };
    ((value << 1) ^ carry).to_be_bytes()
}

/// AN10922 §2.2 AES-128 diversification of `master` with input `m` (1 to 31 bytes).
pub fn an10922_aes128(master: &[u8; 16], m: &[u8]) -> Result<SecretKey16, CryptoError> {
    if m.is_empty() || m.len() > INPUT_BYTES_MAX {
        return Err(CryptoError::Length { what: "diversification input", expected: "1 to 31", got: m.len() });
    }
    let cipher = Aes128::new(&(*master).into());
    let encrypt = |block: [u8; BLOCK_BYTES]| -> [u8; BLOCK_BYTES] {
        let mut block = block.into();
        cipher.encrypt_block(&mut block);
        block.into()
    };
    let l = Zeroizing::new(encrypt([0; BLOCK_BYTES]));
    let k1 = Zeroizing::new(double(&l));
    let k2 = Zeroizing::new(double(&k1));
    // D = 0x01 || M, padded with 0x80 00… to exactly 32 bytes when shorter; the last block
    // is masked with K2 when padded and K1 when not, as in CMAC.
    let padded = m.len() < INPUT_BYTES_MAX;
    let mut data = Zeroizing::new(Vec::with_capacity(2 * BLOCK_BYTES));
    data.push(AES128_DIVERSIFICATION_CONSTANT);
    data.extend_from_slice(m);
    if padded {
        data.push(0x80);
    }
    data.resize(2 * BLOCK_BYTES, 0);
    let subkey = if padded { &k2 } else { &k1 };
    let (first, rest) = data.split_first_chunk::<BLOCK_BYTES>().ok_or(CryptoError::Malformed("padded input"))?;
    let last: &[u8; BLOCK_BYTES] = rest.try_into().map_err(|_| CryptoError::Malformed("padded input"))?;
    let chained = encrypt(*first);
    let mut masked = Zeroizing::new([0_u8; BLOCK_BYTES]);
    for (((out, byte), chain), sub) in masked.iter_mut().zip(last).zip(chained).zip(subkey.iter()) {
        *out = byte ^ chain ^ sub;
    }
    Ok(Zeroizing::new(encrypt(*masked)))
}
