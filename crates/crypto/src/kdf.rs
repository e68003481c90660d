//! NIST SP 800-108 (rev. 1) §4.1 key derivation in counter mode with AES-CMAC as the PRF,
//! and the GlobalPlatform SCP03 layout of its fixed input data (GPC 2.2 Amendment D §4.1.5).
//!
//! The counter is 8 bits and sits between the data before it (label, separator, length)
//! and the data after it (context): NIST's "middle fixed" location, which is what SCP03 and
//! the DESFire EV2 session vectors use.

use zeroize::Zeroizing;

use crate::CryptoError;
use crate::cmac::{BLOCK_BYTES, CmacKey};

/// Most output an 8-bit counter can produce: 255 PRF blocks.
pub const OUTPUT_BYTES_MAX: usize = 255 * BLOCK_BYTES;

/// `K(i) = CMAC(KI, before || [i]_8 || after)` for `i = 1, 2, …`, concatenated and cut to
/// `output_bytes`.
pub fn counter_mode_cmac(
    key: &CmacKey,
    before: &[u8],
    after: &[u8],
    output_bytes: usize,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if output_bytes == 0 || output_bytes > OUTPUT_BYTES_MAX {
        return Err(CryptoError::Length { what: "KDF output", expected: "1 to 4080", got: output_bytes });
    }
    let mut output = Zeroizing::new(Vec::with_capacity(output_bytes.next_multiple_of(BLOCK_BYTES)));
    let mut counter: u8 = 1;
    while output.len() < output_bytes {
        let block = Zeroizing::new(key.mac_parts(&[before, &[counter], after]));
        output.extend_from_slice(block.as_ref());
        counter = counter.wrapping_add(1);
    }
    output.truncate(output_bytes);
    Ok(output)
}

/// SCP03 derivation constants (GPC 2.2 Amendment D, Table 4-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Scp03Constant {
    /// Card cryptogram.
    CardCryptogram = 0x00,
    /// Host cryptogram.
    HostCryptogram = 0x01,
    /// Session encryption key S-ENC.
    SessionEnc = 0x04,
    /// Session command MAC key S-MAC.
    SessionMac = 0x06,
    /// Session response MAC key S-RMAC.
    SessionRmac = 0x07,
}

/// The SCP03 data derivation: fixed input `00…00 (11 bytes) || constant || 00 || L (2 bytes,
/// bits) || i || context`, output `output_bits` long (64 for cryptograms, 128 for keys).
pub fn scp03_derive(
    key: &CmacKey,
    constant: Scp03Constant,
    context: &[u8],
    output_bits: u16,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if output_bits == 0 || !output_bits.is_multiple_of(8) {
        return Err(CryptoError::Length { what: "SCP03 output", expected: "a whole number of bytes", got: 0 });
    }
    let [high, low] = output_bits.to_be_bytes();
    // Label: eleven zero bytes and the constant; separation indicator 0x00; L in bits.
    let before = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, constant as u8, 0x00, high, low];
    counter_mode_cmac(key, &before, context, usize::from(output_bits / 8))
}
