//! The key of a list entry: one medium in a fixed 17-byte form (a kind byte, then 16 bytes
//! of identity), so entries are fixed-size, compare bytewise and are binary-searched in place.
//! Each medium has exactly one encoding: [`MediumKey::from_bytes`] refuses any other.

use std::fmt;

use smartticket_crypto::token::{PanToken, TOKEN_BYTES};

/// Bytes of a key: the kind byte and [`MEDIUM_ID_BYTES`] of identity.
pub const MEDIUM_KEY_BYTES: usize = 1 + MEDIUM_ID_BYTES;
/// Bytes of identity. 128 bits, as for PAN tokens (`crypto::token`): collisions stay out of
/// reach for any realistic number of media, and the 10M-entry list stays small.
pub const MEDIUM_ID_BYTES: usize = 16;
/// Bytes of a long token; only its first [`MEDIUM_ID_BYTES`] key the lists.
pub const TOKEN_LONG_BYTES: usize = 32;
/// ISO/IEC 14443-3 UID lengths: single, double and triple size.
pub const CARD_UID_BYTES: [usize; 3] = [4, 7, 10];

const _: () = assert!(MEDIUM_KEY_BYTES == 17);
const _: () = assert!(TOKEN_BYTES == MEDIUM_ID_BYTES);
const _: () = assert!(std::mem::size_of::<MediumKey>() == MEDIUM_KEY_BYTES);

/// What identifies a medium in the lists. The byte values are part of the file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum MediumKind {
    /// A bank card's PAN token (`crypto::token::PanToken`).
    BankCardToken = 1,
    /// A phone app's token.
    PhoneToken = 2,
    /// A QR code's token.
    QrToken = 3,
    /// A fare card's printed number.
    CardNumber = 4,
    /// A card's ISO 14443 UID (4, 7 or 10 bytes).
    CardUid = 5,
}

impl MediumKind {
    fn from_byte(byte: u8) -> Option<MediumKind> {
        match byte {
            1 => Some(MediumKind::BankCardToken),
            2 => Some(MediumKind::PhoneToken),
            3 => Some(MediumKind::QrToken),
            4 => Some(MediumKind::CardNumber),
            5 => Some(MediumKind::CardUid),
            _ => None,
        }
    }

    fn is_token(self) -> bool {
        matches!(self, MediumKind::BankCardToken | MediumKind::PhoneToken | MediumKind::QrToken)
    }
}

/// One medium, as the greenlist and the denylist key it. Orders as its bytes do, which is
/// the order of entries in a list file.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MediumKey([u8; MEDIUM_KEY_BYTES]);

impl MediumKey {
    /// A bank card, by its PAN token.
    pub fn bank_card(token: &PanToken) -> MediumKey {
        MediumKey::with_id(MediumKind::BankCardToken, &token.0)
    }

    /// A token medium from its token bytes: 16 bytes, or 32 bytes of which the first 16 key
    /// the lists (the back office and the validator both go through here, so they agree).
    /// `None` for another length or a kind that is not a token.
    pub fn token(kind: MediumKind, token: &[u8]) -> Option<MediumKey> {
        if !kind.is_token() || (token.len() != MEDIUM_ID_BYTES && token.len() != TOKEN_LONG_BYTES) {
            return None;
        }
        let id: &[u8; MEDIUM_ID_BYTES] = token.get(..MEDIUM_ID_BYTES)?.try_into().ok()?;
        Some(MediumKey::with_id(kind, id))
    }

    /// A fare card by its printed number (big-endian, so keys sort by number).
    pub fn card_number(number: u64) -> MediumKey {
        let mut id = [0_u8; MEDIUM_ID_BYTES];
        for (slot, byte) in id.iter_mut().zip(number.to_be_bytes()) {
            *slot = byte;
        }
        MediumKey::with_id(MediumKind::CardNumber, &id)
    }

    /// A card by its UID: a length byte, then the UID, then zeros, so a 4-byte UID can
    /// never equal a 7-byte one that starts with it. `None` unless 4, 7 or 10 bytes.
    pub fn card_uid(uid: &[u8]) -> Option<MediumKey> {
        if !CARD_UID_BYTES.contains(&uid.len()) {
            return None;
        }
        let mut id = [0_u8; MEDIUM_ID_BYTES];
        id[0] = u8::try_from(uid.len()).ok()?;
        for (slot, byte) in id.iter_mut().skip(1).zip(uid) {
            *slot = *byte;
        }
        Some(MediumKey::with_id(MediumKind::CardUid, &id))
    }

    /// Reads the 17 bytes of a list entry, refusing any but the one encoding of a medium.
    pub fn from_bytes(bytes: &[u8; MEDIUM_KEY_BYTES]) -> Result<MediumKey, &'static str> {
        let [kind, id @ ..] = bytes;
        let kind = MediumKind::from_byte(*kind).ok_or("unknown medium kind")?;
        match kind {
            MediumKind::BankCardToken | MediumKind::PhoneToken | MediumKind::QrToken => {}
            MediumKind::CardNumber => {
                if id.iter().skip(8).any(|byte| *byte != 0) {
                    return Err("card number key has bytes after the number");
                }
            }
            MediumKind::CardUid => {
                let [length, uid @ ..] = id;
                let length = usize::from(*length);
                if !CARD_UID_BYTES.contains(&length) {
                    return Err("card UID key has a length other than 4, 7 or 10");
                }
                if uid.iter().skip(length).any(|byte| *byte != 0) {
                    return Err("card UID key has bytes after the UID");
                }
            }
        }
        Ok(MediumKey(*bytes))
    }

    /// The 17 bytes as written in a list file.
    pub fn as_bytes(&self) -> &[u8; MEDIUM_KEY_BYTES] {
        &self.0
    }

    /// What kind of medium.
    pub fn kind(&self) -> MediumKind {
        let [kind, ..] = self.0;
        // Every constructor writes a known kind byte.
        MediumKind::from_byte(kind).unwrap_or(MediumKind::BankCardToken)
    }

    fn with_id(kind: MediumKind, id: &[u8; MEDIUM_ID_BYTES]) -> MediumKey {
        let mut bytes = [0_u8; MEDIUM_KEY_BYTES];
        bytes[0] = kind as u8;
        for (slot, byte) in bytes.iter_mut().skip(1).zip(id) {
            *slot = *byte;
        }
        MediumKey(bytes)
    }
}

impl fmt::Debug for MediumKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [_, id @ ..] = &self.0;
        write!(f, "{:?}({})", self.kind(), hex::encode(id))
    }
}

impl fmt::Display for MediumKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_constructor_gives_a_key_that_reads_back() {
        let keys = [
            MediumKey::bank_card(&PanToken([7; 16])),
            MediumKey::token(MediumKind::PhoneToken, &[1; 32]).unwrap(),
            MediumKey::token(MediumKind::QrToken, &[2; 16]).unwrap(),
            MediumKey::card_number(1_234_567_890),
            MediumKey::card_uid(&[4, 1, 2, 3, 4, 5, 6]).unwrap(),
            MediumKey::card_uid(&[1, 2, 3, 4]).unwrap(),
        ];
        for key in keys {
            assert_eq!(MediumKey::from_bytes(key.as_bytes()), Ok(key));
        }
    }

    #[test]
    fn a_long_token_keys_by_its_first_half() {
        let mut long = [9_u8; 32];
        long[20] = 0;
        assert_eq!(MediumKey::token(MediumKind::PhoneToken, &long), MediumKey::token(MediumKind::PhoneToken, &[9; 16]));
        assert_eq!(MediumKey::token(MediumKind::PhoneToken, &[9; 20]), None);
        assert_eq!(MediumKey::token(MediumKind::CardNumber, &[9; 16]), None);
    }

    #[test]
    fn uids_of_different_lengths_never_collide() {
        let short = MediumKey::card_uid(&[1, 2, 3, 4]).unwrap();
        let long = MediumKey::card_uid(&[1, 2, 3, 4, 0, 0, 0]).unwrap();
        assert_ne!(short, long);
        assert_eq!(MediumKey::card_uid(&[1, 2, 3]), None);
    }

    #[test]
    fn non_canonical_bytes_are_refused() {
        let mut bytes = *MediumKey::card_number(5).as_bytes();
        bytes[16] = 1;
        assert!(MediumKey::from_bytes(&bytes).is_err());
        let mut bytes = *MediumKey::card_uid(&[1, 2, 3, 4]).unwrap().as_bytes();
        bytes[10] = 1;
        assert!(MediumKey::from_bytes(&bytes).is_err());
        bytes = *MediumKey::card_uid(&[1, 2, 3, 4]).unwrap().as_bytes();
        bytes[1] = 5;
        assert!(MediumKey::from_bytes(&bytes).is_err());
        assert!(MediumKey::from_bytes(&[0; 17]).is_err());
        assert!(MediumKey::from_bytes(&[6; 17]).is_err());
    }

    #[test]
    fn card_numbers_sort_by_number() {
        assert!(MediumKey::card_number(255) < MediumKey::card_number(256));
    }
}
