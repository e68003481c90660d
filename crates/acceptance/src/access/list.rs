//! The access list: identifier → [`Grant`], held in memory and stored as one file, rewritten
//! whole on each change. Owns the file's bytes (pure encode and decode, which the fuzz target
//! runs); writing the file safely is `files.rs`'s, and deciding is the controller's.
//!
//! File `access-list.bin`, all integers little-endian:
//!
//! ```text
//! header   0..4   magic "STAL"
//!          4..6   format version, u16 (1)
//!          6..8   reserved, zero
//!          8..12  device number, u32
//!         12..20  revision, u64: how many changes the list has had
//!         20..24  entry count, u32 (≤ ACCESS_LIST_ENTRIES_MAX)
//!         24..28  CRC-32 (IEEE) of bytes 0..24
//! entry    0      bits, u8 (1..=64)
//!          1..9   value, u64 (fits in bits)
//!          9      flags: bit 0 blocked, bit 1 valid_from, bit 2 valid_until, bit 3 doors;
//!                 the other bits zero
//!         10..18  valid_from, i64 microseconds since the Unix epoch (zero when absent)
//!         18..26  valid_until, likewise
//!         26..30  doors mask, u32, bit 0 = door 1 (zero when absent, never zero when present)
//!         30      label bytes, u8 (≤ LABEL_BYTES_MAX)
//!         31..    label, UTF-8, no control characters
//! trailer         CRC-32 of every entry byte, u32
//! ```
//!
//! Entries are strictly ascending by (bits, value) and every absent field is zero, so a list
//! has exactly one encoding: a file that decodes re-encodes to the same bytes.

use std::collections::BTreeMap;

use smartticket_core::Timestamp;

use super::grant::{Doors, Grant, GrantError, LABEL_BYTES_MAX};
use super::identifier::{Identifier, IdentifierError};

/// Most identifiers in one list. A door controller holds tens of thousands of passes; a
/// million covers a campus many times over while the whole list stays small enough for a
/// small Linux board: under 100 MB on disk and in memory at worst, rewritten on each change.
pub const ACCESS_LIST_ENTRIES_MAX: u32 = 1_000_000;
/// Version of the layout above; another version is refused, never guessed at.
pub const LIST_FORMAT_VERSION: u16 = 1;
/// Bytes in the file header.
pub const LIST_HEADER_BYTES: usize = 28;
/// Bytes in an entry before its label.
pub const LIST_ENTRY_FIXED_BYTES: usize = 31;
/// Bytes in the largest entry.
pub const LIST_ENTRY_BYTES_MAX: usize = LIST_ENTRY_FIXED_BYTES + LABEL_BYTES_MAX;
/// Bytes in the trailer.
pub const LIST_TRAILER_BYTES: usize = 4;
/// The largest file a valid list can be; reading stops there.
pub const LIST_FILE_BYTES_MAX: u64 =
    (LIST_HEADER_BYTES + LIST_TRAILER_BYTES) as u64 + ACCESS_LIST_ENTRIES_MAX as u64 * LIST_ENTRY_BYTES_MAX as u64;

const LIST_MAGIC: [u8; 4] = *b"STAL";
const FLAG_BLOCKED: u8 = 1;
const FLAG_VALID_FROM: u8 = 1 << 1;
const FLAG_VALID_UNTIL: u8 = 1 << 2;
const FLAG_DOORS: u8 = 1 << 3;
const FLAGS_KNOWN: u8 = FLAG_BLOCKED | FLAG_VALID_FROM | FLAG_VALID_UNTIL | FLAG_DOORS;

const _: () = assert!(LIST_HEADER_BYTES == 4 + 2 + 2 + 4 + 8 + 4 + 4);
const _: () = assert!(LIST_ENTRY_FIXED_BYTES == 1 + 8 + 1 + 8 + 8 + 4 + 1);
// Label lengths are stored in one byte.
const _: () = assert!(LABEL_BYTES_MAX <= u8::MAX as usize);
// The whole file is read into memory: it must fit the address space of a 32-bit board.
const _: () = assert!(LIST_FILE_BYTES_MAX < u32::MAX as u64);

/// What is wrong with the bytes of a list file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ListMalformed {
    /// The file is shorter than its header.
    #[error("the header is cut short")]
    HeaderTruncated,
    /// The file does not start with "STAL".
    #[error("not an access list (wrong magic)")]
    HeaderMagic,
    /// A format version this build does not read.
    #[error("format version {found} is not supported (this build reads {LIST_FORMAT_VERSION})")]
    HeaderVersion {
        /// The version in the file.
        found: u16,
    },
    /// The header fails its checksum.
    #[error("the header fails its checksum")]
    HeaderChecksum,
    /// Reserved header bytes are not zero.
    #[error("reserved header bytes are not zero")]
    HeaderReserved,
    /// More entries than any list may hold.
    #[error("the header claims {count} entries (at most {ACCESS_LIST_ENTRIES_MAX})")]
    TooManyEntries {
        /// The claimed count.
        count: u32,
    },
    /// An entry (or the trailer) is cut short by the end of the file.
    #[error("an entry is cut short")]
    EntryTruncated,
    /// An entry's identifier is invalid.
    #[error("bad identifier: {0}")]
    Identifier(IdentifierError),
    /// Unknown flag bits are set.
    #[error("unknown flags {flags:#04x}")]
    Flags {
        /// The flags byte.
        flags: u8,
    },
    /// A field that is absent is not zero (a second encoding of the same list).
    #[error("an absent field is not zero")]
    AbsentFieldNotZero,
    /// A timestamp outside the representable range.
    #[error("a timestamp is out of range")]
    Timestamp,
    /// The label is not UTF-8.
    #[error("the label is not UTF-8")]
    LabelUtf8,
    /// The grant breaks a rule.
    #[error("bad grant: {0}")]
    Grant(GrantError),
    /// Entries are not strictly ascending.
    #[error("entries are out of order or repeated")]
    Order,
    /// The entries fail the trailer's checksum.
    #[error("the entries fail their checksum")]
    Checksum,
    /// Bytes after the trailer.
    #[error("bytes after the end of the list")]
    TrailingBytes,
}

/// Where in a list file decoding failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("byte {offset_bytes}: {malformed}")]
pub struct ListDecodeError {
    /// Where the fault starts.
    pub offset_bytes: u64,
    /// What it is.
    pub malformed: ListMalformed,
}

/// Why an entry could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ListFullError {
    /// The list holds [`ACCESS_LIST_ENTRIES_MAX`] identifiers already.
    #[error("the access list is full ({ACCESS_LIST_ENTRIES_MAX} identifiers)")]
    Full,
}

/// The access list of one device. Every grant in it has passed [`Grant::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessList {
    device: u32,
    revision: u64,
    entries: BTreeMap<Identifier, Grant>,
}

impl AccessList {
    /// An empty list of `device`, at revision 0.
    #[must_use]
    pub fn new(device: u32) -> AccessList {
        AccessList { device, revision: 0, entries: BTreeMap::new() }
    }

    /// The device the list belongs to.
    #[must_use]
    pub fn device(&self) -> u32 {
        self.device
    }

    /// How many changes the list has had.
    #[must_use]
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// How many identifiers it holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The grant of `identifier`.
    #[must_use]
    pub fn get(&self, identifier: &Identifier) -> Option<&Grant> {
        self.entries.get(identifier)
    }

    /// Every entry, in order (by bit length, then value).
    pub fn iter(&self) -> impl Iterator<Item = (&Identifier, &Grant)> {
        self.entries.iter()
    }

    /// Adds or replaces the grant of `identifier` (checked first) and counts a revision.
    /// Returns the grant it replaced.
    pub fn put(&mut self, identifier: Identifier, grant: Grant) -> Result<Option<Grant>, PutError> {
        grant.check().map_err(PutError::Grant)?;
        let full = self.entries.len() >= ACCESS_LIST_ENTRIES_MAX as usize;
        if full && !self.entries.contains_key(&identifier) {
            return Err(PutError::Full(ListFullError::Full));
        }
        self.revision = self.revision.saturating_add(1);
        Ok(self.entries.insert(identifier, grant))
    }

    /// Removes `identifier`; a revision is counted only if it was there.
    pub fn remove(&mut self, identifier: &Identifier) -> Option<Grant> {
        let removed = self.entries.remove(identifier);
        if removed.is_some() {
            self.revision = self.revision.saturating_add(1);
        }
        removed
    }

    /// Puts back what a failed change replaced, and its revision: the undo of `put`/`remove`.
    pub(crate) fn restore(&mut self, identifier: Identifier, previous: Option<Grant>, revision: u64) {
        match previous {
            Some(grant) => self.entries.insert(identifier, grant),
            None => self.entries.remove(&identifier),
        };
        self.revision = revision;
    }

    /// The file's bytes (see the module docs).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        // Bounded by `put`; a list over the limit could not be stored, and is not built here.
        assert!(self.entries.len() <= ACCESS_LIST_ENTRIES_MAX as usize);
        let entry_count = u32::try_from(self.entries.len()).unwrap_or(u32::MAX);
        let mut bytes = Vec::with_capacity(LIST_HEADER_BYTES + self.entries.len() * LIST_ENTRY_FIXED_BYTES + 32);
        bytes.extend_from_slice(&LIST_MAGIC);
        bytes.extend_from_slice(&LIST_FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&[0, 0]);
        bytes.extend_from_slice(&self.device.to_le_bytes());
        bytes.extend_from_slice(&self.revision.to_le_bytes());
        bytes.extend_from_slice(&entry_count.to_le_bytes());
        let checksum = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&checksum.to_le_bytes());
        for (identifier, grant) in &self.entries {
            encode_entry(&mut bytes, identifier, grant);
        }
        let entries = bytes.get(LIST_HEADER_BYTES..).unwrap_or_default();
        let checksum = crc32fast::hash(entries);
        bytes.extend_from_slice(&checksum.to_le_bytes());
        bytes
    }

    /// Reads a whole file, checking everything in the module docs.
    pub fn decode(bytes: &[u8]) -> Result<AccessList, ListDecodeError> {
        let header = decode_header(bytes)?;
        let mut list = AccessList::new(header.device);
        list.revision = header.revision;
        let mut offset = LIST_HEADER_BYTES;
        // One entry per pass, and the header's count is bounded.
        for _ in 0..header.entry_count {
            let rest = bytes.get(offset..).unwrap_or_default();
            let fault = |malformed| ListDecodeError { offset_bytes: offset as u64, malformed };
            let (identifier, grant, entry_bytes) = decode_entry(rest).map_err(fault)?;
            if list.entries.last_key_value().is_some_and(|(last, _)| *last >= identifier) {
                return Err(fault(ListMalformed::Order));
            }
            list.entries.insert(identifier, grant);
            offset += entry_bytes;
        }
        let at_trailer = |malformed| ListDecodeError { offset_bytes: offset as u64, malformed };
        let entries = bytes.get(LIST_HEADER_BYTES..offset).unwrap_or_default();
        let rest = bytes.get(offset..).unwrap_or_default();
        let (checksum, rest) = rest.split_first_chunk::<4>().ok_or(at_trailer(ListMalformed::EntryTruncated))?;
        if *checksum != crc32fast::hash(entries).to_le_bytes() {
            return Err(at_trailer(ListMalformed::Checksum));
        }
        if !rest.is_empty() {
            let offset_bytes = (offset + LIST_TRAILER_BYTES) as u64;
            return Err(ListDecodeError { offset_bytes, malformed: ListMalformed::TrailingBytes });
        }
        assert_eq!(list.entries.len(), header.entry_count as usize);
        Ok(list)
    }
}

/// Why [`AccessList::put`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PutError {
    /// The grant breaks a rule.
    #[error(transparent)]
    Grant(GrantError),
    /// The list is full.
    #[error(transparent)]
    Full(ListFullError),
}

/// A decoded list header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListHeader {
    /// The device the list belongs to.
    pub device: u32,
    /// Its revision.
    pub revision: u64,
    /// How many entries follow.
    pub entry_count: u32,
}

/// Reads only the header: enough to say whose list a file is before reading it all.
pub fn decode_header(bytes: &[u8]) -> Result<ListHeader, ListDecodeError> {
    let at_start = |malformed| ListDecodeError { offset_bytes: 0, malformed };
    let (header, _) = bytes.split_first_chunk::<LIST_HEADER_BYTES>().ok_or(at_start(ListMalformed::HeaderTruncated))?;
    let (body, checksum) = header.split_at(LIST_HEADER_BYTES - 4);
    let mut reader = Reader(body);
    if reader.header_field::<4>()? != LIST_MAGIC {
        return Err(at_start(ListMalformed::HeaderMagic));
    }
    // Before the checksum, so that a newer file says so instead of looking corrupt.
    let version = u16::from_le_bytes(reader.header_field()?);
    if version != LIST_FORMAT_VERSION {
        return Err(at_start(ListMalformed::HeaderVersion { found: version }));
    }
    if checksum != crc32fast::hash(body).to_le_bytes() {
        return Err(at_start(ListMalformed::HeaderChecksum));
    }
    if reader.header_field::<2>()? != [0, 0] {
        return Err(at_start(ListMalformed::HeaderReserved));
    }
    let device = u32::from_le_bytes(reader.header_field()?);
    let revision = u64::from_le_bytes(reader.header_field()?);
    let entry_count = u32::from_le_bytes(reader.header_field()?);
    if entry_count > ACCESS_LIST_ENTRIES_MAX {
        return Err(at_start(ListMalformed::TooManyEntries { count: entry_count }));
    }
    Ok(ListHeader { device, revision, entry_count })
}

fn encode_entry(bytes: &mut Vec<u8>, identifier: &Identifier, grant: &Grant) {
    let label = grant.label.as_bytes();
    // `put` checked the grant.
    assert!(label.len() <= LABEL_BYTES_MAX);
    let mut flags = 0_u8;
    for (present, flag) in [
        (grant.blocked, FLAG_BLOCKED),
        (grant.valid_from.is_some(), FLAG_VALID_FROM),
        (grant.valid_until.is_some(), FLAG_VALID_UNTIL),
        (grant.doors.is_some(), FLAG_DOORS),
    ] {
        if present {
            flags |= flag;
        }
    }
    let micros = |at: Option<Timestamp>| at.map_or(0, Timestamp::unix_micros);
    bytes.push(identifier.bits());
    bytes.extend_from_slice(&identifier.value().to_le_bytes());
    bytes.push(flags);
    bytes.extend_from_slice(&micros(grant.valid_from).to_le_bytes());
    bytes.extend_from_slice(&micros(grant.valid_until).to_le_bytes());
    bytes.extend_from_slice(&grant.doors.map_or(0, |doors| doors.mask()).to_le_bytes());
    bytes.push(u8::try_from(label.len()).unwrap_or(u8::MAX));
    bytes.extend_from_slice(label);
}

/// Decodes the entry at the start of `bytes`; returns it and its length.
fn decode_entry(bytes: &[u8]) -> Result<(Identifier, Grant, usize), ListMalformed> {
    let mut reader = Reader(bytes);
    let [bits] = reader.entry_field::<1>()?;
    let value = u64::from_le_bytes(reader.entry_field()?);
    let identifier = Identifier::new(bits, value).map_err(ListMalformed::Identifier)?;
    let [flags] = reader.entry_field::<1>()?;
    let from = reader.entry_field()?;
    let until = reader.entry_field()?;
    let doors = reader.entry_field()?;
    let [label_bytes] = reader.entry_field::<1>()?;
    if flags & !FLAGS_KNOWN != 0 {
        return Err(ListMalformed::Flags { flags });
    }
    let valid_from = optional_timestamp(flags & FLAG_VALID_FROM != 0, i64::from_le_bytes(from))?;
    let valid_until = optional_timestamp(flags & FLAG_VALID_UNTIL != 0, i64::from_le_bytes(until))?;
    let doors = match (flags & FLAG_DOORS != 0, u32::from_le_bytes(doors)) {
        (true, mask) => Some(Doors::from_mask(mask).map_err(ListMalformed::Grant)?),
        (false, 0) => None,
        (false, _) => return Err(ListMalformed::AbsentFieldNotZero),
    };
    let label_bytes = usize::from(label_bytes);
    if label_bytes > LABEL_BYTES_MAX {
        return Err(ListMalformed::Grant(GrantError::LabelTooLong { bytes: label_bytes }));
    }
    let label = reader.0.get(..label_bytes).ok_or(ListMalformed::EntryTruncated)?;
    let label = std::str::from_utf8(label).map_err(|_| ListMalformed::LabelUtf8)?.to_owned();
    let grant = Grant { label, valid_from, valid_until, doors, blocked: flags & FLAG_BLOCKED != 0 };
    grant.check().map_err(ListMalformed::Grant)?;
    Ok((identifier, grant, LIST_ENTRY_FIXED_BYTES + label_bytes))
}

fn optional_timestamp(present: bool, micros: i64) -> Result<Option<Timestamp>, ListMalformed> {
    match (present, micros) {
        (true, micros) => Timestamp::from_unix_micros(micros).map(Some).ok_or(ListMalformed::Timestamp),
        (false, 0) => Ok(None),
        (false, _) => Err(ListMalformed::AbsentFieldNotZero),
    }
}

/// A cursor over bytes already held whole.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    /// The header is read from a slice of its own exact length, so this never fails there.
    fn header_field<const N: usize>(&mut self) -> Result<[u8; N], ListDecodeError> {
        self.array().ok_or(ListDecodeError { offset_bytes: 0, malformed: ListMalformed::HeaderTruncated })
    }

    fn entry_field<const N: usize>(&mut self) -> Result<[u8; N], ListMalformed> {
        self.array().ok_or(ListMalformed::EntryTruncated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> AccessList {
        let mut list = AccessList::new(7);
        list.put(Identifier::new(26, 0x1A_2B3C).unwrap(), Grant::everywhere("Petra")).unwrap();
        let grant = Grant {
            label: "Иван".to_owned(),
            valid_from: Timestamp::from_unix_micros(1_700_000_000_000_000),
            valid_until: Timestamp::from_unix_micros(1_800_000_000_000_000),
            doors: Some(Doors::from_numbers([2, 5]).unwrap()),
            blocked: true,
        };
        list.put(Identifier::new(64, u64::MAX).unwrap(), grant).unwrap();
        list
    }

    #[test]
    fn encodes_and_decodes_to_the_same_bytes() {
        let list = sample();
        let bytes = list.encode();
        let decoded = AccessList::decode(&bytes).unwrap();
        assert_eq!(decoded, list);
        assert_eq!(decoded.revision(), 2);
        assert_eq!(decoded.encode(), bytes);
    }

    #[test]
    fn every_flipped_bit_is_refused() {
        let bytes = sample().encode();
        for index in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[index] ^= 0x10;
            assert!(AccessList::decode(&flipped).is_err(), "byte {index}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(AccessList::decode(&longer).unwrap_err().malformed, ListMalformed::TrailingBytes);
        for length in 0..bytes.len() {
            assert!(AccessList::decode(&bytes[..length]).is_err(), "length {length}");
        }
    }
}
