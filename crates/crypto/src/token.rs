//! Bank cards as tokens (KIDSOK 3.1.2): the PAN is turned into a token by a keyed hash of
//! the PAN and expiry, and only the token and a masked number are ever kept.
//!
//! `token = HMAC-SHA256(K_token, PAN || "=" || YYMM)` cut to its first 128 bits
//! (NIST SP 800-107 §5.3.3 allows truncation to ≥ 64 bits for HMAC; 128 keeps collisions out
//! of reach for any realistic number of cards while halving the greenlist). The same
//! function runs in the back office's HSM and in a validator's secure module, so a card
//! tapped on a bus matches the token registered in the e-shop.

use std::fmt;

use zeroize::Zeroizing;

use crate::CryptoError;

/// Bytes of a PAN token.
pub const TOKEN_BYTES: usize = 16;
/// ISO/IEC 7812 PAN lengths.
pub const PAN_DIGITS_MIN: usize = 12;
/// ISO/IEC 7812 PAN lengths.
pub const PAN_DIGITS_MAX: usize = 19;

/// A primary account number, checked (12–19 digits, Luhn) and wiped on drop. It prints
/// only masked.
#[derive(Clone)]
pub struct Pan(Zeroizing<String>);

impl Pan {
    /// Reads a PAN; spaces and dashes between digit groups are ignored.
    pub fn parse(text: &str) -> Result<Pan, PanError> {
        let digits: Zeroizing<String> = Zeroizing::new(text.chars().filter(|c| !matches!(c, ' ' | '-')).collect());
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(PanError::NotDigits);
        }
        if !(PAN_DIGITS_MIN..=PAN_DIGITS_MAX).contains(&digits.len()) {
            return Err(PanError::Length(digits.len()));
        }
        if !luhn_valid(&digits) {
            return Err(PanError::Luhn);
        }
        Ok(Pan(digits))
    }

    /// The digits; handle with care.
    pub fn digits(&self) -> &str {
        &self.0
    }

    /// First four and last four digits, the rest hidden in groups of four:
    /// `4276 **** **** 1234` (the form KIDSOK 3.1.2 shows customers).
    pub fn masked(&self) -> String {
        let digits = self.0.as_bytes();
        let count = digits.len();
        let shown = |index: usize| index < 4 || index + 4 >= count;
        let mut masked = String::with_capacity(count + count / 4);
        for (index, digit) in digits.iter().enumerate() {
            if index > 0 && index % 4 == 0 {
                masked.push(' ');
            }
            masked.push(if shown(index) { char::from(*digit) } else { '*' });
        }
        masked
    }
}

impl fmt::Debug for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pan({})", self.masked())
    }
}

/// Why a PAN or expiry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PanError {
    /// Something other than digits, spaces and dashes.
    #[error("a card number has only digits")]
    NotDigits,
    /// Too few or too many digits.
    #[error("a card number has 12 to 19 digits, not {0}")]
    Length(usize),
    /// The check digit is wrong (a typo).
    #[error("the card number's check digit is wrong")]
    Luhn,
    /// The expiry is not MM/YY or YYMM with a month 01–12.
    #[error("the expiry must be a month 01-12 and a two-digit year")]
    Expiry,
}

/// The Luhn (ISO/IEC 7812-1 Annex B) check over a string of ASCII digits.
pub fn luhn_valid(digits: &str) -> bool {
    let mut sum: u32 = 0;
    for (position, byte) in digits.bytes().rev().enumerate() {
        let Some(digit) = char::from(byte).to_digit(10) else {
            return false;
        };
        let value = if !position.is_multiple_of(2) {
            let doubled = digit * 2;
            if doubled > 9 { doubled - 9 } else { doubled }
        } else {
            digit
        };
        sum += value;
    }
    !digits.is_empty() && sum.is_multiple_of(10)
}

/// A card's expiry month as EMV stores it (tag 5F24 gives YYMMDD; the month is enough).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    /// Two-digit year.
    pub year: u8,
    /// Month, 1–12.
    pub month: u8,
}

impl Expiry {
    /// A checked expiry.
    pub fn new(year: u8, month: u8) -> Result<Expiry, PanError> {
        if year > 99 || !(1..=12).contains(&month) { Err(PanError::Expiry) } else { Ok(Expiry { year, month }) }
    }

    /// Reads `MM/YY`, `MMYY` as typed by a person.
    pub fn parse_mm_yy(text: &str) -> Result<Expiry, PanError> {
        let digits: String = text.chars().filter(|c| *c != '/' && *c != ' ').collect();
        if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PanError::Expiry);
        }
        let month = digits.get(..2).and_then(|m| m.parse().ok()).ok_or(PanError::Expiry)?;
        let year = digits.get(2..).and_then(|y| y.parse().ok()).ok_or(PanError::Expiry)?;
        Expiry::new(year, month)
    }

    /// `YYMM`.
    pub fn yymm(&self) -> String {
        format!("{:02}{:02}", self.year, self.month)
    }
}

/// The bytes the token key is applied to: `PAN || "=" || YYMM`, ASCII.
pub fn token_input(pan: &Pan, expiry: Expiry) -> Zeroizing<Vec<u8>> {
    let mut input = Zeroizing::new(Vec::with_capacity(pan.digits().len() + 5));
    input.extend_from_slice(pan.digits().as_bytes());
    input.push(b'=');
    input.extend_from_slice(expiry.yymm().as_bytes());
    input
}

/// A PAN token: the stable, non-reversible identifier of a bank card in SmartTicket.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PanToken(pub [u8; TOKEN_BYTES]);

impl PanToken {
    /// Cuts an HMAC-SHA256 output to a token.
    pub fn from_hmac(mac: &[u8; 32]) -> PanToken {
        let mut token = [0_u8; TOKEN_BYTES];
        token.copy_from_slice(mac.first_chunk::<TOKEN_BYTES>().map(|c| c.as_slice()).unwrap_or(&[0; TOKEN_BYTES]));
        PanToken(token)
    }

    /// Reads the hex form.
    pub fn from_hex(text: &str) -> Result<PanToken, CryptoError> {
        let bytes = hex::decode(text).map_err(|_| CryptoError::Malformed("token hex"))?;
        bytes.try_into().map(PanToken).map_err(|_| CryptoError::Malformed("token length"))
    }
}

impl fmt::Display for PanToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for PanToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PanToken({self})")
    }
}

/// HMAC-SHA256 with a raw key: the software side of tokenisation.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Result<[u8; 32], CryptoError> {
    use hmac::{KeyInit, Mac};
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).map_err(|_| CryptoError::Length {
        what: "HMAC key",
        expected: "any",
        got: key.len(),
    })?;
    mac.update(message);
    Ok(mac.finalize().into_bytes().into())
}
