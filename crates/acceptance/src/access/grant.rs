//! What one identifier may do: a label for people, a validity period, the doors (or zones)
//! it opens, and a block flag. Owns the rules every grant must follow wherever it comes from
//! (the REST API, the shell, the list file), so a grant that is stored is always valid.

use serde::{Deserialize, Serialize};
use smartticket_core::Timestamp;

/// Longest label, in UTF-8 bytes: a person's name or a pass number fits; the bound keeps
/// list entries and journal records small (a record holds a whole grant).
pub const LABEL_BYTES_MAX: usize = 64;
/// Doors (or zones) a controller tells apart, numbered from 1. A door controller drives a
/// few locks; 32 leave room for zones and fit one `u32` mask per entry.
pub const DOORS_MAX: u8 = 32;

/// Why a grant was refused. [`GrantError::field`] names the offending field for APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrantError {
    /// The label is longer than [`LABEL_BYTES_MAX`].
    #[error("the label is {bytes} bytes long, at most {LABEL_BYTES_MAX} are allowed")]
    LabelTooLong {
        /// Its length.
        bytes: usize,
    },
    /// The label holds a control character (it is shown on screens and written to logs).
    #[error("the label holds a control character")]
    LabelControlCharacter,
    /// The validity ends before (or when) it starts.
    #[error("valid_until must be after valid_from")]
    ValidityInverted,
    /// A door number outside 1..=[`DOORS_MAX`].
    #[error("door {door} does not exist (doors are 1 to {DOORS_MAX})")]
    DoorOutOfRange {
        /// The number given.
        door: u32,
    },
    /// A list of doors that is empty: such a grant opens nothing, block it instead.
    #[error("the list of doors is empty (omit it for all doors, or block the identifier)")]
    NoDoors,
}

impl GrantError {
    /// The field at fault, as named in the REST API and the journal.
    #[must_use]
    pub fn field(&self) -> &'static str {
        match self {
            GrantError::LabelTooLong { .. } | GrantError::LabelControlCharacter => "label",
            GrantError::ValidityInverted => "valid_until",
            GrantError::DoorOutOfRange { .. } | GrantError::NoDoors => "doors",
        }
    }
}

/// A set of doors, 1..=[`DOORS_MAX`], as a bit mask (bit 0 is door 1). Never empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Doors(u32);

const _: () = assert!(DOORS_MAX as u32 == u32::BITS);

impl Doors {
    /// The doors with these numbers.
    pub fn from_numbers(numbers: impl IntoIterator<Item = u32>) -> Result<Doors, GrantError> {
        let mut mask = 0_u32;
        for door in numbers.into_iter().take(usize::from(DOORS_MAX) + 1) {
            mask |= door_bit(door).ok_or(GrantError::DoorOutOfRange { door })?;
        }
        Doors::from_mask(mask)
    }

    /// The doors whose bits are set.
    pub fn from_mask(mask: u32) -> Result<Doors, GrantError> {
        if mask == 0 {
            return Err(GrantError::NoDoors);
        }
        Ok(Doors(mask))
    }

    /// The mask (bit 0 is door 1).
    #[must_use]
    pub fn mask(&self) -> u32 {
        self.0
    }

    /// Whether `door` is in the set.
    #[must_use]
    pub fn contains(&self, door: u8) -> bool {
        door_bit(u32::from(door)).is_some_and(|bit| self.0 & bit != 0)
    }

    /// The door numbers, ascending.
    pub fn numbers(&self) -> impl Iterator<Item = u8> + '_ {
        (1..=DOORS_MAX).filter(|door| self.contains(*door))
    }
}

/// The bit of door `door`, or `None` outside 1..=[`DOORS_MAX`].
pub(crate) fn door_bit(door: u32) -> Option<u32> {
    if door == 0 || door > u32::from(DOORS_MAX) {
        return None;
    }
    1_u32.checked_shl(door - 1)
}

impl Serialize for Doors {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.numbers())
    }
}

impl<'de> Deserialize<'de> for Doors {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Doors, D::Error> {
        // A `Vec` of at most a few dozen numbers: bounded by the body or record it comes in.
        let numbers = Vec::<u32>::deserialize(deserializer)?;
        Doors::from_numbers(numbers).map_err(serde::de::Error::custom)
    }
}

/// What an identifier may do. Build one with struct syntax and [`Grant::check`] it, or let
/// the access list check it as it is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Whose pass this is, for people reading the list and the journal.
    pub label: String,
    /// Valid from this instant (inclusive); `None`: always was.
    pub valid_from: Option<Timestamp>,
    /// Valid until this instant (exclusive); `None`: no end.
    pub valid_until: Option<Timestamp>,
    /// The doors it opens; `None`: every door.
    pub doors: Option<Doors>,
    /// Refused everywhere, but kept (and told apart from an unknown identifier).
    pub blocked: bool,
}

impl Grant {
    /// A grant for `label` at every door, with no time limits.
    #[must_use]
    pub fn everywhere(label: impl Into<String>) -> Grant {
        Grant { label: label.into(), valid_from: None, valid_until: None, doors: None, blocked: false }
    }

    /// Checks the rules above.
    pub fn check(&self) -> Result<(), GrantError> {
        check_label(&self.label)?;
        if let (Some(from), Some(until)) = (self.valid_from, self.valid_until)
            && until <= from
        {
            return Err(GrantError::ValidityInverted);
        }
        if self.doors.is_some_and(|doors| doors.mask() == 0) {
            return Err(GrantError::NoDoors);
        }
        Ok(())
    }
}

fn check_label(label: &str) -> Result<(), GrantError> {
    if label.len() > LABEL_BYTES_MAX {
        return Err(GrantError::LabelTooLong { bytes: label.len() });
    }
    if label.chars().any(char::is_control) {
        return Err(GrantError::LabelControlCharacter);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doors_are_one_to_thirty_two() {
        let doors = Doors::from_numbers([1, 3, 32]).unwrap();
        assert_eq!(doors.mask(), 0b101 | 1 << 31);
        assert_eq!(doors.numbers().collect::<Vec<_>>(), [1, 3, 32]);
        assert!(!doors.contains(2) && !doors.contains(0) && !doors.contains(33));
        assert_eq!(Doors::from_numbers([0]), Err(GrantError::DoorOutOfRange { door: 0 }));
        assert_eq!(Doors::from_numbers([33]), Err(GrantError::DoorOutOfRange { door: 33 }));
        assert_eq!(Doors::from_numbers([]), Err(GrantError::NoDoors));
    }
}
