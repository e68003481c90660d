//! The terminal's side of the PDOL: the values a validator gives a bank card that asks for
//! them in its Processing Options Data Object List, and how each is fitted to the length the
//! card asks for (EMV 4.4 Book 3 §5.4, rules a–e).
//!
//! Time and randomness come in as values (transaction date, unpredictable number): this
//! module never reads the clock or a random source.

use crate::tlv::{self, Tag};

/// Most value bytes a PDOL answer may hold. The answer travels as `83 L value` in the data
/// field of a short GET PROCESSING OPTIONS, at most 255 bytes (EMV contactless readers use
/// short APDUs only); a 128–252 byte value needs a three-byte header `83 81 L`, so 252.
pub const PDOL_ANSWER_BYTES_MAX: usize = 252;
const _: () = assert!(PDOL_ANSWER_BYTES_MAX + 3 == crate::apdu::SHORT_DATA_BYTES_MAX);

/// Terminal Transaction Qualifiers for a transit gate (EMV Book C-3, Kernel 3, tag 9F66):
/// byte 1 `A0` = MSD supported (b8) and qVSDC supported (b6), online capable (b4 "offline
/// only" clear), no PIN pad and no signature; byte 2 `00` = neither an online cryptogram nor
/// a CVM is required at the gate (transit authorises afterwards, by account); byte 3 `40` =
/// consumer device CVM supported, so phones and watches are not pushed to a CVM; byte 4 RFU.
pub const TRANSIT_TTQ: [u8; 4] = [0xA0, 0x00, 0x40, 0x00];

/// Terminal type (9F35, n2) `25`: operated by the merchant (2), unattended, offline with
/// online capability (5), as a gate or a bus validator is.
pub const TRANSIT_TERMINAL_TYPE: u8 = 0x25;

/// Terminal capabilities (9F33): no contact or magnetic-stripe input (byte 1), "No CVM
/// required" only (byte 2, b4), no offline data authentication performed (byte 3).
pub const TRANSIT_TERMINAL_CAPABILITIES: [u8; 3] = [0x00, 0x08, 0x00];

/// Additional terminal capabilities (9F40): services (byte 1, b6); nothing else.
pub const TRANSIT_ADDITIONAL_TERMINAL_CAPABILITIES: [u8; 5] = [0x20, 0x00, 0x00, 0x00, 0x00];

/// Merchant category code (9F15) 4111: local and suburban commuter passenger transport.
pub const TRANSIT_MERCHANT_CATEGORY_CODE: u16 = 4111;

/// Transaction type (9C) 00: purchase of goods or services.
pub const TRANSACTION_TYPE_PURCHASE: u8 = 0;

/// The values a terminal answers PDOL requests with. Tags not named here are answered from
/// [`TerminalData::extra`], and failing that with zeros of the requested length (Book 3 §5.4
/// rule a), which cards accept as "the terminal does not know".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalData {
    /// 9F66 Terminal Transaction Qualifiers (binary).
    pub terminal_transaction_qualifiers: [u8; 4],
    /// 9F02 Amount, Authorised, in minor units (n12). Zero for a tap that only identifies the
    /// card; the fare when the gate charges it at once.
    pub amount_authorised_minor: u64,
    /// 9F03 Amount, Other, in minor units (n12).
    pub amount_other_minor: u64,
    /// 9F1A Terminal Country Code, ISO 3166-1 numeric (n3), e.g. 276.
    pub terminal_country_code: u16,
    /// 5F2A Transaction Currency Code, ISO 4217 numeric (n3), e.g. 978.
    pub transaction_currency_code: u16,
    /// 9A Transaction Date as the decimal number YYMMDD (n6), e.g. 260115.
    pub transaction_date_yymmdd: u32,
    /// 9F21 Transaction Time as the decimal number HHMMSS (n6).
    pub transaction_time_hhmmss: u32,
    /// 9C Transaction Type as a decimal number 0–99 (n2).
    pub transaction_type: u8,
    /// 9F37 Unpredictable Number: fresh random bytes for every tap.
    pub unpredictable_number: [u8; 4],
    /// 95 Terminal Verification Results (binary).
    pub terminal_verification_results: [u8; 5],
    /// 9F35 Terminal Type, as the BCD byte of its two digits (e.g. `0x25`).
    pub terminal_type: u8,
    /// 9F33 Terminal Capabilities (binary).
    pub terminal_capabilities: [u8; 3],
    /// 9F40 Additional Terminal Capabilities (binary).
    pub additional_terminal_capabilities: [u8; 5],
    /// 9F15 Merchant Category Code as a decimal number (n4).
    pub merchant_category_code: u16,
    /// Values for further tags (binary, fitted like any binary value), for scheme- or
    /// acquirer-specific requests such as 9F6E or 9F7C. Looked up after the fields above.
    pub extra: Vec<(Tag, Vec<u8>)>,
}

impl TerminalData {
    /// Transit defaults ([`TRANSIT_TTQ`], amount zero, purchase, unattended gate) for a tap
    /// in `terminal_country_code` charging in `transaction_currency_code`, on the given date
    /// with the given unpredictable number (both from the caller: no clock, no RNG here).
    pub fn transit(
        terminal_country_code: u16,
        transaction_currency_code: u16,
        transaction_date_yymmdd: u32,
        unpredictable_number: [u8; 4],
    ) -> TerminalData {
        TerminalData {
            terminal_transaction_qualifiers: TRANSIT_TTQ,
            amount_authorised_minor: 0,
            amount_other_minor: 0,
            terminal_country_code,
            transaction_currency_code,
            transaction_date_yymmdd,
            transaction_time_hhmmss: 0,
            transaction_type: TRANSACTION_TYPE_PURCHASE,
            unpredictable_number,
            terminal_verification_results: [0; 5],
            terminal_type: TRANSIT_TERMINAL_TYPE,
            terminal_capabilities: TRANSIT_TERMINAL_CAPABILITIES,
            additional_terminal_capabilities: TRANSIT_ADDITIONAL_TERMINAL_CAPABILITIES,
            merchant_category_code: TRANSIT_MERCHANT_CATEGORY_CODE,
            extra: Vec::new(),
        }
    }

    /// The terminal's value for `tag` and how to fit it, or `None` if the terminal does not
    /// know the tag.
    fn value(&self, tag: Tag) -> Option<(Format, Vec<u8>)> {
        let numeric = |value: u64, digits: usize| Some((Format::Numeric, bcd(value, digits)));
        let binary = |bytes: &[u8]| Some((Format::Binary, bytes.to_vec()));
        match tag.0 {
            0x9F66 => binary(&self.terminal_transaction_qualifiers),
            0x9F02 => numeric(self.amount_authorised_minor, 12),
            0x9F03 => numeric(self.amount_other_minor, 12),
            0x9F1A => numeric(u64::from(self.terminal_country_code), 3),
            0x5F2A => numeric(u64::from(self.transaction_currency_code), 3),
            0x9A => numeric(u64::from(self.transaction_date_yymmdd), 6),
            0x9F21 => numeric(u64::from(self.transaction_time_hhmmss), 6),
            0x9C => numeric(u64::from(self.transaction_type), 2),
            0x9F37 => binary(&self.unpredictable_number),
            0x95 => binary(&self.terminal_verification_results),
            // Already BCD: keep the byte as it is, but fit it as a number.
            0x9F35 => Some((Format::Numeric, vec![self.terminal_type])),
            0x9F33 => binary(&self.terminal_capabilities),
            0x9F40 => binary(&self.additional_terminal_capabilities),
            0x9F15 => numeric(u64::from(self.merchant_category_code), 4),
            _ => self.extra.iter().find(|(extra_tag, _)| *extra_tag == tag).and_then(|(_, bytes)| binary(bytes)),
        }
    }

    /// The value field of a PDOL answer: for each entry of `pdol` (tags and lengths, EMV
    /// Book 3 §5.4), the terminal's value fitted to the length asked for, or zeros for a tag
    /// the terminal does not know or a constructed one.
    ///
    /// Fails when the PDOL is malformed (see [`tlv::parse_dol`], which also bounds the
    /// entries) or asks for more than [`PDOL_ANSWER_BYTES_MAX`] bytes in total.
    pub fn pdol_answer(&self, pdol: &[u8]) -> Result<Vec<u8>, PdolError> {
        let entries = tlv::parse_dol(pdol).map_err(|error| PdolError::Malformed(error.to_string()))?;
        let total_bytes = entries.iter().fold(0_usize, |total, (_, length)| total.saturating_add(*length));
        if total_bytes > PDOL_ANSWER_BYTES_MAX {
            return Err(PdolError::TooLong { total_bytes });
        }
        let mut answer = Vec::with_capacity(total_bytes);
        for (tag, length) in entries {
            match self.value(tag) {
                Some((format, value)) if !tag.is_constructed() => fit(format, &value, length, &mut answer),
                _ => answer.resize(answer.len() + length, 0x00),
            }
        }
        debug_assert_eq!(answer.len(), total_bytes);
        Ok(answer)
    }
}

/// Why a PDOL could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PdolError {
    /// The PDOL is not a valid data object list.
    #[error("malformed PDOL: {0}")]
    Malformed(String),
    /// The PDOL asks for more than fits a GET PROCESSING OPTIONS.
    #[error("the PDOL asks for {total_bytes} bytes, at most {PDOL_ANSWER_BYTES_MAX} fit")]
    TooLong {
        /// Bytes asked for.
        total_bytes: usize,
    },
}

/// Data element formats as far as fitting them to a DOL length goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// `n`: right-aligned digits; cut on the left, padded with leading zeros.
    Numeric,
    /// `b`, `an`, `ans`: cut on the right, padded with trailing zeros.
    Binary,
}

/// Appends `value` fitted to `length` bytes (Book 3 §5.4 rules c and d).
fn fit(format: Format, value: &[u8], length: usize, out: &mut Vec<u8>) {
    match format {
        Format::Numeric => {
            let kept = value.get(value.len().saturating_sub(length)..).unwrap_or(value);
            out.resize(out.len() + (length - kept.len()), 0x00);
            out.extend_from_slice(kept);
        }
        Format::Binary => {
            let kept = value.get(..length).unwrap_or(value);
            out.extend_from_slice(kept);
            out.resize(out.len() + (length - kept.len()), 0x00);
        }
    }
}

/// `value` as `digits` BCD digits, right-aligned in `ceil(digits / 2)` bytes; higher digits
/// that do not fit are dropped, as a shorter DOL length would drop them.
fn bcd(value: u64, digits: usize) -> Vec<u8> {
    let byte_count = digits.div_ceil(2);
    let mut bytes = vec![0_u8; byte_count];
    let mut rest = value;
    for byte in bytes.iter_mut().rev() {
        // A remainder of 10 is below 10, so the conversions cannot fail.
        let low = u8::try_from(rest % 10).unwrap_or(0);
        rest /= 10;
        let high = u8::try_from(rest % 10).unwrap_or(0);
        rest /= 10;
        *byte = (high << 4) | low;
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcd_right_aligns_and_drops_high_digits() {
        assert_eq!(bcd(978, 3), [0x09, 0x78]);
        assert_eq!(bcd(1000, 12), [0, 0, 0, 0, 0x10, 0x00]);
        assert_eq!(bcd(260115, 6), [0x26, 0x01, 0x15]);
        assert_eq!(bcd(12345, 4), [0x23, 0x45]);
    }

    #[test]
    fn fit_follows_book_3_rules_c_and_d() {
        let mut out = Vec::new();
        fit(Format::Numeric, &[0x12, 0x34], 3, &mut out);
        fit(Format::Numeric, &[0x12, 0x34], 1, &mut out);
        fit(Format::Binary, &[0xAB, 0xCD], 3, &mut out);
        fit(Format::Binary, &[0xAB, 0xCD], 1, &mut out);
        assert_eq!(out, [0x00, 0x12, 0x34, 0x34, 0xAB, 0xCD, 0x00, 0xAB]);
    }
}
