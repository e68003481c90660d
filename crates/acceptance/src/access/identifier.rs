//! An access identifier as a reader delivers it: a bit length (Wiegand 26, 34, 37, 40, 56, 64
//! and others) and the value read. It owns validation and the one text form, `bits:HEX`;
//! ids of different lengths are different ids even when their values are equal, so a site
//! can mix readers of several lengths without one card opening another's door.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest identifier: 64 bits, so every value fits a `u64`.
pub const IDENTIFIER_BITS_MAX: u8 = 64;
/// Hex digits of the longest value (64 bits); more is refused, even as leading zeros, so
/// parsing reads a bounded number of characters.
const HEX_DIGITS_MAX: usize = 16;
/// Decimal digits of `u64::MAX`.
const DECIMAL_DIGITS_MAX: usize = 20;
/// Longest `bits:HEX` text accepted: `64:` and 16 digits.
pub const IDENTIFIER_TEXT_BYTES_MAX: usize = 2 + 1 + HEX_DIGITS_MAX;

/// Why an identifier was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentifierError {
    /// The bit length is 0 or above 64.
    #[error("an identifier has 1 to {IDENTIFIER_BITS_MAX} bits, not {bits}")]
    BitsOutOfRange {
        /// The length given.
        bits: u32,
    },
    /// The value needs more bits than the identifier has.
    #[error("the value {value:#X} does not fit in {bits} bits")]
    ValueTooLarge {
        /// The bit length.
        bits: u8,
        /// The value.
        value: u64,
    },
    /// The text is not `bits:HEX` (or, with a bit length given, a decimal or `0x` hex number).
    #[error("not an identifier: {0}")]
    Syntax(&'static str),
}

/// One identifier: `value` read from a reader of `bits` bits. Orders by length, then value
/// (the order of the access list file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identifier {
    bits: u8,
    value: u64,
}

impl Identifier {
    /// `value` as read by a reader of `bits` bits; refused unless 1 ≤ `bits` ≤ 64 and the
    /// value fits.
    pub fn new(bits: u8, value: u64) -> Result<Identifier, IdentifierError> {
        if bits == 0 || bits > IDENTIFIER_BITS_MAX {
            return Err(IdentifierError::BitsOutOfRange { bits: u32::from(bits) });
        }
        // For 64 bits every value fits; `checked_shr` is `None` exactly then.
        if value.checked_shr(u32::from(bits)).is_some_and(|rest| rest != 0) {
            return Err(IdentifierError::ValueTooLarge { bits, value });
        }
        Ok(Identifier { bits, value })
    }

    /// The bit length.
    #[must_use]
    pub fn bits(&self) -> u8 {
        self.bits
    }

    /// The value.
    #[must_use]
    pub fn value(&self) -> u64 {
        self.value
    }

    /// A plain number with its bit length given apart: decimal (`1715004`) or hex with a
    /// `0x` prefix (`0x1A2B3C`), as printed on cards or shown by reader tools.
    pub fn from_number(bits: u32, text: &str) -> Result<Identifier, IdentifierError> {
        let bits = u8::try_from(bits).map_err(|_| IdentifierError::BitsOutOfRange { bits })?;
        let value = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            Some(hex) => parse_hex(hex)?,
            None => parse_digits(text, DECIMAL_DIGITS_MAX, 10)?,
        };
        Identifier::new(bits, value)
    }
}

/// `bits:HEX`, upper case, no leading zeros: `26:1A2B3C`. The one form [`FromStr`] reads
/// back to the same identifier.
impl fmt::Display for Identifier {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}:{:X}", self.bits, self.value)
    }
}

/// Reads `bits:HEX` (hex in either case, leading zeros allowed up to 16 digits).
impl FromStr for Identifier {
    type Err = IdentifierError;

    fn from_str(text: &str) -> Result<Identifier, IdentifierError> {
        if text.len() > IDENTIFIER_TEXT_BYTES_MAX {
            return Err(IdentifierError::Syntax("too long"));
        }
        let (bits, hex) = text.split_once(':').ok_or(IdentifierError::Syntax("expected bits:HEX, e.g. 26:1A2B3C"))?;
        // Two digits cover 1..=64; a longer length is a typo, not a leading zero to skip.
        let bits = parse_digits(bits, 2, 10)?;
        let bits = u8::try_from(bits).map_err(|_| IdentifierError::Syntax("bit length"))?;
        Identifier::new(bits, parse_hex(hex)?)
    }
}

fn parse_hex(text: &str) -> Result<u64, IdentifierError> {
    parse_digits(text, HEX_DIGITS_MAX, 16)
}

/// Only ASCII digits of the radix, 1 to `digits_max` of them: `u64::from_str_radix` alone
/// would also take a sign.
fn parse_digits(text: &str, digits_max: usize, radix: u32) -> Result<u64, IdentifierError> {
    if text.is_empty() {
        return Err(IdentifierError::Syntax("empty number"));
    }
    if text.len() > digits_max {
        return Err(IdentifierError::Syntax("too many digits"));
    }
    if !text.chars().all(|character| character.is_digit(radix)) {
        return Err(IdentifierError::Syntax("not a digit"));
    }
    u64::from_str_radix(text, radix).map_err(|_| IdentifierError::Syntax("the number is larger than 64 bits"))
}

impl Serialize for Identifier {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Identifier {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Identifier, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips_and_lengths_differ() {
        let wiegand26 = Identifier::new(26, 0x1A_2B3C).unwrap();
        assert_eq!(wiegand26.to_string(), "26:1A2B3C");
        assert_eq!("26:1a2b3c".parse::<Identifier>(), Ok(wiegand26));
        assert_eq!("26:001A2B3C".parse::<Identifier>(), Ok(wiegand26));
        assert_ne!(Identifier::new(34, 0x1A_2B3C).unwrap(), wiegand26);
        assert_eq!(Identifier::from_number(26, "1715004"), Ok(wiegand26));
        assert_eq!(Identifier::from_number(26, "0x1A2B3C"), Ok(wiegand26));
    }

    #[test]
    fn bounds() {
        assert!(Identifier::new(64, u64::MAX).is_ok());
        assert!(Identifier::new(1, 1).is_ok());
        assert_eq!(Identifier::new(0, 0), Err(IdentifierError::BitsOutOfRange { bits: 0 }));
        assert_eq!(Identifier::new(65, 0), Err(IdentifierError::BitsOutOfRange { bits: 65 }));
        assert_eq!(Identifier::new(1, 2), Err(IdentifierError::ValueTooLarge { bits: 1, value: 2 }));
        assert!("26:+1".parse::<Identifier>().is_err());
        assert!("+6:1".parse::<Identifier>().is_err());
        assert!("064:1".parse::<Identifier>().is_err());
        assert!("64:00000000000000001".parse::<Identifier>().is_err());
        assert!(Identifier::from_number(300, "1").is_err());
    }
}
