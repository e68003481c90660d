//! The list file codec (FORMAT.md): the fixed header, the three payload sections and the
//! signature. Parsing checks every count against its limit and the file length against the
//! counts before anything is allocated; only [`ListFile::verify`] makes the
//! [`VerifiedList`] that payload decoding requires.

use smartticket_crypto::keys::KeyVersion;
use smartticket_crypto::sign::{SIGNATURE_BYTES, Signature};

use super::coupon::COUPON_BYTES;
use super::error::{BuildError, ListError};
use super::key::{MEDIUM_KEY_BYTES, MediumKey};
use super::signing::{ListSigner, TrustedKeys};

/// The first four bytes of every list file: "STLS", SmartTicket list.
pub const LIST_MAGIC: [u8; 4] = *b"STLS";
/// The format version this code writes and reads.
pub const LIST_FORMAT_VERSION: u16 = 1;
/// Bytes of the header.
pub const HEADER_BYTES: usize = 64;
/// Bytes of an entry record: the key and one byte (a greenlist's coupon count, a
/// denylist's reason).
pub const ENTRY_BYTES: usize = MEDIUM_KEY_BYTES + 1;
/// Bytes of a removal record: the key.
pub const REMOVAL_BYTES: usize = MEDIUM_KEY_BYTES;
/// Bytes of the signature that ends the file.
pub const LIST_SIGNATURE_BYTES: usize = SIGNATURE_BYTES;

/// Most entries in a list, and most removals or updates in a delta. DESIGN §7 plans for a
/// 10M-medium greenlist; 2^24 leaves 60% headroom and keeps every offset in a `u32`.
pub const LIST_ENTRIES_MAX: u32 = 1 << 24;
/// Most coupons of one medium: a year of monthly coupons bought ahead, the current one and a
/// few single or event tickets. The count is one byte of the entry record.
pub const MEDIUM_COUPONS_MAX: u8 = 16;
/// Most coupons in a list: two per medium on average (the current coupon and the next one)
/// at the entry limit, which caps a validator's coupon memory at 1 GiB.
pub const LIST_COUPONS_MAX: u32 = 2 * LIST_ENTRIES_MAX;
/// Largest list file: a delta with the most removals, entries and coupons. A downloader
/// stops reading past it.
pub const LIST_FILE_BYTES_MAX: u64 = (HEADER_BYTES + LIST_SIGNATURE_BYTES) as u64
    + LIST_ENTRIES_MAX as u64 * (REMOVAL_BYTES + ENTRY_BYTES) as u64
    + LIST_COUPONS_MAX as u64 * COUPON_BYTES as u64;

const _: () = assert!(ENTRY_BYTES == 18 && REMOVAL_BYTES == 17 && COUPON_BYTES == 32);
// The payload length is a u32 in the header.
const _: () = assert!(LIST_FILE_BYTES_MAX < u32::MAX as u64);
// Greenlist offsets are u32.
const _: () = assert!((LIST_COUPONS_MAX as u64) < u32::MAX as u64);
const _: () = assert!(LIST_ENTRIES_MAX as u64 * MEDIUM_COUPONS_MAX as u64 >= LIST_COUPONS_MAX as u64);

/// Which list a file holds. The byte values are part of the file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ListKind {
    /// Valid and future coupons of token media.
    Greenlist = 1,
    /// Blocked cards and tokens.
    Denylist = 2,
}

impl std::fmt::Display for ListKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            ListKind::Greenlist => "greenlist",
            ListKind::Denylist => "denylist",
        })
    }
}

/// The header of a list file: what it is, which version, and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListHeader {
    /// Greenlist or denylist.
    pub kind: ListKind,
    /// Version of the list-signing key that signed it.
    pub key_version: KeyVersion,
    /// The version this file makes current, from 1.
    pub list_version: u64,
    /// 0 for a full list; for a delta, the version it applies to.
    pub base_version: u64,
    /// When the back office issued it, UTC seconds since the Unix epoch.
    pub issued_at_unix_s: u64,
    /// Entries of a full list, or updates of a delta.
    pub entry_count: u32,
    /// Removals of a delta; 0 in a full list.
    pub removal_count: u32,
    /// Coupons of all entries (greenlist); 0 in a denylist.
    pub coupon_count: u32,
}

impl ListHeader {
    /// Whether this is a delta (rather than a full list).
    pub fn is_delta(&self) -> bool {
        self.base_version != 0
    }

    /// Bytes of the payload the counts announce.
    pub fn payload_bytes(&self) -> u64 {
        u64::from(self.removal_count) * REMOVAL_BYTES as u64
            + u64::from(self.entry_count) * ENTRY_BYTES as u64
            + u64::from(self.coupon_count) * COUPON_BYTES as u64
    }

    /// Bytes of the whole file.
    pub fn file_bytes(&self) -> u64 {
        (HEADER_BYTES + LIST_SIGNATURE_BYTES) as u64 + self.payload_bytes()
    }

    fn encode(&self) -> [u8; HEADER_BYTES] {
        // The header is checked before it is encoded, so the payload length fits.
        let payload_bytes = u32::try_from(self.payload_bytes()).unwrap_or(u32::MAX);
        let fields: [&[u8]; 12] = [
            &LIST_MAGIC,
            &LIST_FORMAT_VERSION.to_le_bytes(),
            &[self.kind as u8],
            &[self.key_version.get()],
            &self.list_version.to_le_bytes(),
            &self.base_version.to_le_bytes(),
            &self.issued_at_unix_s.to_le_bytes(),
            &self.entry_count.to_le_bytes(),
            &self.removal_count.to_le_bytes(),
            &self.coupon_count.to_le_bytes(),
            &payload_bytes.to_le_bytes(),
            &[0; 16],
        ];
        let mut out = [0_u8; HEADER_BYTES];
        for (slot, byte) in out.iter_mut().zip(fields.into_iter().flatten()) {
            *slot = *byte;
        }
        out
    }

    fn decode(bytes: &[u8; HEADER_BYTES]) -> Result<ListHeader, ListError> {
        let (magic, rest) = bytes.split_first_chunk::<4>().ok_or(ListError::MalformedHeader("short"))?;
        if *magic != LIST_MAGIC {
            return Err(ListError::BadMagic(*magic));
        }
        let mut reader = FieldReader(rest);
        let format_version = u16::from_le_bytes(reader.take()?);
        if format_version != LIST_FORMAT_VERSION {
            return Err(ListError::UnsupportedFormatVersion {
                offered: format_version,
                supported: LIST_FORMAT_VERSION,
            });
        }
        let [kind] = reader.take()?;
        let kind = match kind {
            1 => ListKind::Greenlist,
            2 => ListKind::Denylist,
            other => return Err(ListError::UnknownListKind(other)),
        };
        let [key_version] = reader.take()?;
        let key_version = KeyVersion::new(key_version).map_err(|_| ListError::MalformedHeader("key version 0"))?;
        let header = ListHeader {
            kind,
            key_version,
            list_version: u64::from_le_bytes(reader.take()?),
            base_version: u64::from_le_bytes(reader.take()?),
            issued_at_unix_s: u64::from_le_bytes(reader.take()?),
            entry_count: u32::from_le_bytes(reader.take()?),
            removal_count: u32::from_le_bytes(reader.take()?),
            coupon_count: u32::from_le_bytes(reader.take()?),
        };
        let payload_bytes = u32::from_le_bytes(reader.take()?);
        let reserved: [u8; 16] = reader.take()?;
        header.check()?;
        if u64::from(payload_bytes) != header.payload_bytes() {
            return Err(ListError::MalformedHeader("payload length does not match the counts"));
        }
        if reserved != [0; 16] {
            return Err(ListError::MalformedHeader("reserved bytes are not zero"));
        }
        Ok(header)
    }

    /// The rules every header obeys; the decoder and the builders share them.
    fn check(&self) -> Result<(), ListError> {
        if self.list_version == 0 {
            return Err(ListError::MalformedHeader("list version 0"));
        }
        if self.base_version >= self.list_version {
            return Err(ListError::MalformedHeader("delta base version is not below the list version"));
        }
        limit("entries", self.entry_count, LIST_ENTRIES_MAX)?;
        limit("removals", self.removal_count, LIST_ENTRIES_MAX)?;
        limit("coupons", self.coupon_count, LIST_COUPONS_MAX)?;
        if !self.is_delta() && self.removal_count != 0 {
            return Err(ListError::MalformedHeader("a full list has removals"));
        }
        match self.kind {
            ListKind::Denylist if self.coupon_count != 0 => Err(ListError::MalformedHeader("a denylist has coupons")),
            ListKind::Greenlist
                if u64::from(self.coupon_count) < u64::from(self.entry_count)
                    || u64::from(self.coupon_count) > u64::from(self.entry_count) * u64::from(MEDIUM_COUPONS_MAX) =>
            {
                Err(ListError::MalformedHeader("coupon count does not fit the entry count"))
            }
            _ => Ok(()),
        }
    }
}

fn limit(what: &'static str, count: u32, max: u32) -> Result<(), ListError> {
    if count > max {
        Err(ListError::LimitExceeded { what, count: u64::from(count), max: u64::from(max) })
    } else {
        Ok(())
    }
}

/// Takes fixed-size fields off the front of the header.
struct FieldReader<'a>(&'a [u8]);

impl FieldReader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], ListError> {
        let (field, rest) = self.0.split_first_chunk::<N>().ok_or(ListError::MalformedHeader("short"))?;
        self.0 = rest;
        Ok(*field)
    }
}

/// A list file whose structure has been checked, but not yet its signature.
#[derive(Debug, Clone, Copy)]
pub struct ListFile<'a> {
    header: ListHeader,
    signed: &'a [u8],
    removals: &'a [[u8; REMOVAL_BYTES]],
    entries: &'a [[u8; ENTRY_BYTES]],
    coupons: &'a [[u8; COUPON_BYTES]],
    signature: Signature,
}

impl<'a> ListFile<'a> {
    /// Checks the header, every limit and the file length, and splits the payload into its
    /// sections. Never allocates.
    pub fn parse(bytes: &'a [u8]) -> Result<ListFile<'a>, ListError> {
        let bytes_total = bytes.len() as u64;
        if bytes_total > LIST_FILE_BYTES_MAX {
            return Err(ListError::LimitExceeded { what: "file bytes", count: bytes_total, max: LIST_FILE_BYTES_MAX });
        }
        let truncated = |bytes_expected: u64| ListError::Truncated { bytes_expected, bytes: bytes_total };
        let (header_bytes, rest) =
            bytes.split_first_chunk::<HEADER_BYTES>().ok_or(truncated((HEADER_BYTES + LIST_SIGNATURE_BYTES) as u64))?;
        let header = ListHeader::decode(header_bytes)?;
        let bytes_expected = header.file_bytes();
        if bytes_total < bytes_expected {
            return Err(truncated(bytes_expected));
        }
        if bytes_total > bytes_expected {
            return Err(ListError::TrailingBytes { bytes_expected, bytes: bytes_total });
        }
        let (signed, signature) = bytes.split_last_chunk::<LIST_SIGNATURE_BYTES>().ok_or(truncated(bytes_expected))?;
        let payload = signed.get(HEADER_BYTES..).ok_or(truncated(bytes_expected))?;
        debug_assert_eq!(rest.len(), payload.len() + LIST_SIGNATURE_BYTES);
        let (removals, payload) = split_records::<REMOVAL_BYTES>(payload, header.removal_count)?;
        let (entries, payload) = split_records::<ENTRY_BYTES>(payload, header.entry_count)?;
        let (coupons, payload) = split_records::<COUPON_BYTES>(payload, header.coupon_count)?;
        // The length check above makes the sections fill the payload exactly.
        if !payload.is_empty() {
            return Err(ListError::MalformedHeader("payload length does not match the counts"));
        }
        Ok(ListFile { header, signed, removals, entries, coupons, signature: Signature(*signature) })
    }

    /// The header (not yet authenticated).
    pub fn header(&self) -> &ListHeader {
        &self.header
    }

    /// Checks the signature over header and payload with the trusted key of the header's
    /// key version.
    pub fn verify(self, keys: &TrustedKeys) -> Result<VerifiedList<'a>, ListError> {
        let key = keys.verifying_key(self.header.key_version)?;
        key.verify(self.signed, &self.signature).map_err(|_| ListError::SignatureInvalid(self.header.key_version))?;
        Ok(VerifiedList { file: self })
    }
}

fn split_records<const N: usize>(bytes: &[u8], count: u32) -> Result<(&[[u8; N]], &[u8]), ListError> {
    let length = usize::try_from(count).ok().and_then(|count| count.checked_mul(N));
    let (section, rest) = length
        .and_then(|length| bytes.split_at_checked(length))
        .ok_or(ListError::MalformedHeader("payload length does not match the counts"))?;
    let (records, remainder) = section.as_chunks::<N>();
    debug_assert!(remainder.is_empty());
    Ok((records, rest))
}

/// A list file whose signature verified under a trusted key: the only input the payload
/// decoders accept, so nothing unauthenticated is ever decoded into a list.
#[derive(Debug, Clone, Copy)]
pub struct VerifiedList<'a> {
    file: ListFile<'a>,
}

impl<'a> VerifiedList<'a> {
    /// The header, now authenticated.
    pub fn header(&self) -> &ListHeader {
        &self.file.header
    }

    pub(crate) fn removals(&self) -> &'a [[u8; REMOVAL_BYTES]] {
        self.file.removals
    }

    pub(crate) fn entries(&self) -> &'a [[u8; ENTRY_BYTES]] {
        self.file.entries
    }

    pub(crate) fn coupons(&self) -> &'a [[u8; COUPON_BYTES]] {
        self.file.coupons
    }
}

/// Reads the removals section: strictly ascending keys.
pub(crate) fn decode_removals(records: &[[u8; REMOVAL_BYTES]]) -> Result<Vec<MediumKey>, ListError> {
    let mut keys = Vec::with_capacity(records.len());
    for (index, record) in records.iter().enumerate() {
        let key = read_key("removals", index, record)?;
        check_ascending("removals", index, keys.last(), &key)?;
        keys.push(key);
    }
    Ok(keys)
}

/// Reads the key of record `index` of `section`.
pub(crate) fn read_key(
    section: &'static str,
    index: usize,
    bytes: &[u8; MEDIUM_KEY_BYTES],
) -> Result<MediumKey, ListError> {
    MediumKey::from_bytes(bytes).map_err(|reason| malformed(section, index, reason))
}

/// Keys of a section are strictly ascending: sorted for binary search, no duplicates.
pub(crate) fn check_ascending(
    section: &'static str,
    index: usize,
    previous: Option<&MediumKey>,
    key: &MediumKey,
) -> Result<(), ListError> {
    match previous {
        Some(previous) if previous >= key => Err(malformed(section, index, "keys are not strictly ascending")),
        _ => Ok(()),
    }
}

/// A malformed-record error.
pub(crate) fn malformed(section: &'static str, index: usize, reason: &'static str) -> ListError {
    ListError::MalformedRecord { section, index: index as u64, reason }
}

/// Checks that the removals of a delta are none of its updated keys (both sorted).
pub(crate) fn check_disjoint(removals: &[MediumKey], updated: &[MediumKey]) -> Result<(), MediumKey> {
    let mut updated = updated.iter().peekable();
    for removed in removals {
        while updated.next_if(|key| *key < removed).is_some() {}
        if updated.peek() == Some(&removed) {
            return Err(*removed);
        }
    }
    Ok(())
}

/// Writes a list file: header, payload (by `write_payload`), and the signature over both.
pub(crate) fn seal(
    header: &ListHeader,
    write_payload: impl FnOnce(&mut Vec<u8>),
    signer: &dyn ListSigner,
) -> Result<Vec<u8>, BuildError> {
    assert_eq!(header.key_version, signer.key_version());
    header.check().map_err(|error| match error {
        ListError::LimitExceeded { what, count, max } => BuildError::LimitExceeded { what, count, max },
        ListError::MalformedHeader(reason) => BuildError::Versions(reason),
        _ => BuildError::Versions("header refused"),
    })?;
    let signed_bytes = HEADER_BYTES as u64 + header.payload_bytes();
    // `check` bounded the counts, so this is at most LIST_FILE_BYTES_MAX.
    let capacity = usize::try_from(header.file_bytes()).map_err(|_| BuildError::LimitExceeded {
        what: "file bytes",
        count: u64::MAX,
        max: LIST_FILE_BYTES_MAX,
    })?;
    let mut file = Vec::with_capacity(capacity);
    file.extend_from_slice(&header.encode());
    write_payload(&mut file);
    // Pair assertion with the decoder's length check: the payload is what the counts say.
    assert_eq!(file.len() as u64, signed_bytes, "list payload does not match its header");
    let signature = signer.sign(&file)?;
    file.extend_from_slice(&signature.0);
    debug_assert_eq!(ListFile::parse(&file).map(|parsed| parsed.header), Ok(*header));
    Ok(file)
}

/// The versions a builder is asked to write, checked before any work.
pub(crate) fn check_versions(list_version: u64, base_version: u64) -> Result<(), BuildError> {
    if list_version == 0 {
        return Err(BuildError::Versions("list version 0"));
    }
    if base_version >= list_version {
        return Err(BuildError::Versions("delta base version is not below the list version"));
    }
    Ok(())
}
