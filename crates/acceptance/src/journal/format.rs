//! The journal's bytes on disk: segment header, record frame, watermark file, and the pure
//! scanner that recovery (and so the fuzz target) runs over a whole segment. Owns no I/O.
//! Parses whole, never panics, and allocates nothing per record.
//!
//! Segment file `journal-<first sequence, 20 digits>.seg`:
//!
//! ```text
//! header   0..4   magic "STJS"
//!          4..6   format version, u16 little-endian (1)
//!          6..8   reserved, zero
//!          8..24  device id
//!         24..32  first sequence in this segment, u64 LE (≥ 1)
//!         32..36  CRC-32 (IEEE, crc32fast) of bytes 0..32
//! record   0..4   magic "STJR"
//!          4..8   payload bytes, u32 LE (≤ RECORD_PAYLOAD_BYTES_MAX)
//!          8..16  sequence, u64 LE (previous + 1)
//!         16..20  CRC-32 of bytes 0..16 followed by the payload
//!         20..    payload
//! ```
//!
//! The watermark file has the segment header's layout with magic "STJW" and the highest
//! acknowledged sequence (0: none yet) in place of the first sequence.

use std::fmt;

/// Identifies the device a journal belongs to; written into every file so a journal copied
/// from another validator is refused instead of uploaded under the wrong name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeviceId(pub [u8; DEVICE_ID_BYTES]);

impl fmt::Display for DeviceId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&hex::encode(self.0))
    }
}

/// Bytes in a [`DeviceId`].
pub const DEVICE_ID_BYTES: usize = 16;
/// Version of the layout above; a file with another version is refused, never guessed at.
pub const FORMAT_VERSION: u16 = 1;
/// Bytes in a segment header (and in the watermark file, which shares its layout).
pub const SEGMENT_HEADER_BYTES: usize = 36;
/// Bytes in a record frame before its payload.
pub const RECORD_HEADER_BYTES: usize = 20;
/// Largest payload: a validator decision is a few hundred bytes; 4 KiB leaves room and keeps
/// the torn-tail search (at most one record long) and every read buffer small.
pub const RECORD_PAYLOAD_BYTES_MAX: usize = 4096;
/// Largest record frame, header included.
pub const RECORD_BYTES_MAX: usize = RECORD_HEADER_BYTES + RECORD_PAYLOAD_BYTES_MAX;

pub(crate) const SEGMENT_MAGIC: [u8; 4] = *b"STJS";
pub(crate) const WATERMARK_MAGIC: [u8; 4] = *b"STJW";
const RECORD_MAGIC: [u8; 4] = *b"STJR";

const _: () = assert!(SEGMENT_HEADER_BYTES == 4 + 2 + 2 + DEVICE_ID_BYTES + 8 + 4);
const _: () = assert!(RECORD_HEADER_BYTES == 4 + 4 + 8 + 4);
// Payload lengths are stored as u32 and converted to usize without loss.
const _: () = assert!(RECORD_PAYLOAD_BYTES_MAX <= u32::MAX as usize);
const _: () = assert!(usize::BITS >= 32);

/// What is wrong with the bytes at some offset of a journal file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Malformed {
    /// The file is shorter than its header.
    #[error("the file header is cut short")]
    HeaderTruncated,
    /// The header does not start with the magic for this kind of file.
    #[error("the file header has the wrong magic")]
    HeaderMagic,
    /// The header is of a format version this build does not read.
    #[error("format version {found} is not supported (this build reads {FORMAT_VERSION})")]
    HeaderVersion {
        /// The version in the file.
        found: u16,
    },
    /// The header's checksum does not match its bytes.
    #[error("the file header fails its checksum")]
    HeaderChecksum,
    /// Reserved header bytes are not zero.
    #[error("reserved header bytes are not zero")]
    HeaderReserved,
    /// A file that is only a header (the watermark) has bytes after it.
    #[error("unexpected bytes after the header")]
    HeaderTrailingBytes,
    /// A segment claims to start at sequence 0; sequences start at 1.
    #[error("the segment starts at sequence 0")]
    HeaderSequenceZero,
    /// The segment's file name and header disagree on its first sequence.
    #[error("the file name says the segment starts at {name}, the header says {header}")]
    HeaderNameMismatch {
        /// First sequence from the file name.
        name: u64,
        /// First sequence from the header.
        header: u64,
    },
    /// A record is cut short by the end of the file.
    #[error("the record is cut short by the end of the file")]
    RecordTruncated,
    /// A record does not start with the record magic.
    #[error("the record has the wrong magic")]
    RecordMagic,
    /// A record claims a payload longer than any record may have.
    #[error("the record claims {payload_bytes} payload bytes (at most {RECORD_PAYLOAD_BYTES_MAX})")]
    RecordLength {
        /// The claimed payload length.
        payload_bytes: u32,
    },
    /// A record's checksum does not match its bytes.
    #[error("the record fails its checksum")]
    RecordChecksum,
    /// A whole, checksummed record carries the wrong sequence: a duplicate or a gap.
    #[error("the record has sequence {found}, expected {expected}")]
    RecordSequence {
        /// The sequence that follows the previous record.
        expected: u64,
        /// The sequence in the record.
        found: u64,
    },
    /// A record runs past the end the segment had when the journal was opened.
    #[error("the record runs past the end of the segment as scanned at open")]
    RecordPastEnd,
    /// The sequence would pass `u64::MAX`.
    #[error("the sequence overflows")]
    SequenceOverflow,
}

/// A decoded segment header or watermark file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileHeader {
    pub device_id: DeviceId,
    /// First sequence of a segment, or the acknowledged sequence of a watermark.
    pub sequence: u64,
}

pub(crate) fn encode_file_header(magic: [u8; 4], header: &FileHeader) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(SEGMENT_HEADER_BYTES);
    bytes.extend_from_slice(&magic);
    bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    bytes.extend_from_slice(&[0, 0]);
    bytes.extend_from_slice(&header.device_id.0);
    bytes.extend_from_slice(&header.sequence.to_le_bytes());
    assert_eq!(bytes.len(), SEGMENT_HEADER_BYTES - 4);
    let checksum = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&checksum.to_le_bytes());
    bytes
}

/// Decodes the header at the start of `bytes` (a whole file; trailing bytes are the caller's).
pub(crate) fn decode_file_header(magic: [u8; 4], bytes: &[u8]) -> Result<FileHeader, Malformed> {
    let (header, _) = bytes.split_first_chunk::<SEGMENT_HEADER_BYTES>().ok_or(Malformed::HeaderTruncated)?;
    let (body, checksum) = header.split_at(SEGMENT_HEADER_BYTES - 4);
    let (found_magic, rest) = take::<4>(body)?;
    if *found_magic != magic {
        return Err(Malformed::HeaderMagic);
    }
    // The version is read before the checksum so that a file from a newer build says so,
    // instead of looking corrupt.
    let (version, rest) = take::<2>(rest)?;
    let version = u16::from_le_bytes(*version);
    if version != FORMAT_VERSION {
        return Err(Malformed::HeaderVersion { found: version });
    }
    if checksum != crc32fast::hash(body).to_le_bytes() {
        return Err(Malformed::HeaderChecksum);
    }
    let (reserved, rest) = take::<2>(rest)?;
    if *reserved != [0, 0] {
        return Err(Malformed::HeaderReserved);
    }
    let (device_id, rest) = take::<DEVICE_ID_BYTES>(rest)?;
    let (sequence, rest) = take::<8>(rest)?;
    debug_assert!(rest.is_empty());
    Ok(FileHeader { device_id: DeviceId(*device_id), sequence: u64::from_le_bytes(*sequence) })
}

/// Frames `payload` as record `sequence` into `buffer` (cleared first, so the append path
/// reuses one allocation).
pub(crate) fn encode_record(buffer: &mut Vec<u8>, sequence: u64, payload: &[u8]) {
    assert!(sequence >= 1);
    assert!(payload.len() <= RECORD_PAYLOAD_BYTES_MAX);
    let payload_bytes = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    buffer.clear();
    buffer.extend_from_slice(&RECORD_MAGIC);
    buffer.extend_from_slice(&payload_bytes.to_le_bytes());
    buffer.extend_from_slice(&sequence.to_le_bytes());
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(buffer);
    hasher.update(payload);
    buffer.extend_from_slice(&hasher.finalize().to_le_bytes());
    buffer.extend_from_slice(payload);
    assert_eq!(buffer.len(), RECORD_HEADER_BYTES + payload.len());
}

/// A whole, checksummed record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RecordView<'a> {
    pub sequence: u64,
    pub payload: &'a [u8],
}

impl RecordView<'_> {
    pub fn record_bytes(&self) -> usize {
        RECORD_HEADER_BYTES + self.payload.len()
    }
}

/// The payload length a record header announces, checked against the limit; lets a reader
/// know how many more bytes to fetch before it can verify the record.
pub(crate) fn record_payload_bytes(header: &[u8; RECORD_HEADER_BYTES]) -> Result<usize, Malformed> {
    let (magic, rest) = take::<4>(header)?;
    if *magic != RECORD_MAGIC {
        return Err(Malformed::RecordMagic);
    }
    let (payload_bytes, _) = take::<4>(rest)?;
    let payload_bytes = u32::from_le_bytes(*payload_bytes);
    if payload_bytes as usize > RECORD_PAYLOAD_BYTES_MAX {
        return Err(Malformed::RecordLength { payload_bytes });
    }
    Ok(payload_bytes as usize)
}

/// Decodes the record at the start of `bytes`; bytes after it are left to the caller.
pub(crate) fn decode_record(bytes: &[u8]) -> Result<RecordView<'_>, Malformed> {
    let (header, rest) = bytes.split_first_chunk::<RECORD_HEADER_BYTES>().ok_or(Malformed::RecordTruncated)?;
    let payload_bytes = record_payload_bytes(header)?;
    let payload = rest.get(..payload_bytes).ok_or(Malformed::RecordTruncated)?;
    let (checked, checksum) = header.split_at(RECORD_HEADER_BYTES - 4);
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(checked);
    hasher.update(payload);
    if checksum != hasher.finalize().to_le_bytes() {
        return Err(Malformed::RecordChecksum);
    }
    let (_, rest) = take::<8>(checked)?;
    let (sequence, _) = take::<8>(rest)?;
    Ok(RecordView { sequence: u64::from_le_bytes(*sequence), payload })
}

/// What a segment holds, as found by [`scan_segment`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentScan {
    pub header: FileHeader,
    pub record_count: u64,
    /// End of the last whole record: the length the file should have.
    pub bytes_valid: u64,
    /// Set when the bytes after `bytes_valid` are a record cut short by a crash.
    pub torn_tail: Option<Malformed>,
}

/// Where in the segment a hard error was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ScanError {
    pub offset_bytes: u64,
    pub malformed: Malformed,
}

/// Checks a whole segment: its header, then every record in order with contiguous sequences.
///
/// A bad record is a torn tail only if `tail_may_be_torn` (the last segment: the only place a
/// write can have been in flight), the bytes from it to the end could be one record, and no
/// whole record with a later sequence starts anywhere after it. Appends are written and synced
/// one at a time, so a crash tears at most the last record and leaves no bytes beyond it; a
/// bad record followed by a good one is damage to data already synced, a hard error.
pub(crate) fn scan_segment(bytes: &[u8], tail_may_be_torn: bool) -> Result<SegmentScan, ScanError> {
    let at_start = |malformed| ScanError { offset_bytes: 0, malformed };
    let header = decode_file_header(SEGMENT_MAGIC, bytes).map_err(at_start)?;
    if header.sequence == 0 {
        return Err(at_start(Malformed::HeaderSequenceZero));
    }
    let mut scan = SegmentScan { header, record_count: 0, bytes_valid: SEGMENT_HEADER_BYTES as u64, torn_tail: None };
    let mut offset = SEGMENT_HEADER_BYTES;
    let mut sequence_next = header.sequence;
    // Each pass consumes at least one record header: the file's length bounds the loop.
    let record_count_max = (bytes.len() / RECORD_HEADER_BYTES) as u64;
    while let Some(rest) = bytes.get(offset..).filter(|rest| !rest.is_empty()) {
        assert!(scan.record_count <= record_count_max);
        let offset_bytes = offset as u64;
        let error = |malformed| ScanError { offset_bytes, malformed };
        match decode_record(rest) {
            Ok(record) if record.sequence == sequence_next => {
                offset += record.record_bytes();
                sequence_next = sequence_next.checked_add(1).ok_or(error(Malformed::SequenceOverflow))?;
                scan.record_count += 1;
                scan.bytes_valid = offset as u64;
            }
            // A whole record with a valid checksum was written in full: a wrong sequence in it
            // is never a torn write.
            Ok(record) => {
                return Err(error(Malformed::RecordSequence { expected: sequence_next, found: record.sequence }));
            }
            Err(malformed) => {
                let torn =
                    tail_may_be_torn && rest.len() <= RECORD_BYTES_MAX && !whole_record_follows(rest, sequence_next);
                if !torn {
                    return Err(error(malformed));
                }
                scan.torn_tail = Some(malformed);
                return Ok(scan);
            }
        }
    }
    Ok(scan)
}

/// Whether a whole record with sequence `sequence_min` or later starts anywhere in `tail`
/// after its first byte. `tail` is at most one record long, so this stays cheap.
fn whole_record_follows(tail: &[u8], sequence_min: u64) -> bool {
    assert!(tail.len() <= RECORD_BYTES_MAX);
    (1..tail.len()).any(|start| {
        let candidate = tail.get(start..).unwrap_or_default();
        candidate.starts_with(&RECORD_MAGIC)
            && decode_record(candidate).is_ok_and(|record| record.sequence >= sequence_min)
    })
}

fn take<const N: usize>(bytes: &[u8]) -> Result<(&[u8; N], &[u8]), Malformed> {
    // Callers pass slices of fixed-size headers they already hold whole.
    bytes.split_first_chunk::<N>().ok_or(Malformed::HeaderTruncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEVICE: DeviceId = DeviceId([7; DEVICE_ID_BYTES]);

    fn segment(first: u64, payloads: &[&[u8]]) -> Vec<u8> {
        let header = FileHeader { device_id: DEVICE, sequence: first };
        let mut bytes = encode_file_header(SEGMENT_MAGIC, &header);
        let mut buffer = Vec::new();
        for (index, payload) in payloads.iter().enumerate() {
            encode_record(&mut buffer, first + index as u64, payload);
            bytes.extend_from_slice(&buffer);
        }
        bytes
    }

    #[test]
    fn header_round_trips_and_names_its_faults() {
        let header = FileHeader { device_id: DEVICE, sequence: 42 };
        let bytes = encode_file_header(WATERMARK_MAGIC, &header);
        assert_eq!(bytes.len(), SEGMENT_HEADER_BYTES);
        assert_eq!(decode_file_header(WATERMARK_MAGIC, &bytes), Ok(header));
        assert_eq!(decode_file_header(SEGMENT_MAGIC, &bytes), Err(Malformed::HeaderMagic));
        assert_eq!(decode_file_header(WATERMARK_MAGIC, &bytes[..35]), Err(Malformed::HeaderTruncated));
        let mut newer = bytes.clone();
        newer[4] = 2;
        assert_eq!(decode_file_header(WATERMARK_MAGIC, &newer), Err(Malformed::HeaderVersion { found: 2 }));
        let mut flipped = bytes;
        flipped[30] ^= 1;
        assert_eq!(decode_file_header(WATERMARK_MAGIC, &flipped), Err(Malformed::HeaderChecksum));
    }

    #[test]
    fn scan_counts_whole_records() {
        let bytes = segment(5, &[b"a", b"", b"ccc"]);
        let scan = scan_segment(&bytes, false).unwrap();
        assert_eq!(scan.record_count, 3);
        assert_eq!(scan.bytes_valid, bytes.len() as u64);
        assert_eq!(scan.torn_tail, None);
    }

    #[test]
    fn torn_tail_only_in_the_last_segment() {
        let mut bytes = segment(1, &[b"first", b"second"]);
        bytes.truncate(bytes.len() - 3);
        let scan = scan_segment(&bytes, true).unwrap();
        assert_eq!(scan.record_count, 1);
        assert_eq!(scan.torn_tail, Some(Malformed::RecordTruncated));
        let error = scan_segment(&bytes, false).unwrap_err();
        assert_eq!(error.offset_bytes, (SEGMENT_HEADER_BYTES + RECORD_HEADER_BYTES + 5) as u64);
    }

    #[test]
    fn zeroed_tail_is_torn_but_a_bad_record_before_a_good_one_is_not() {
        let mut zeroed = segment(1, &[b"first"]);
        zeroed.extend_from_slice(&[0; 64]);
        assert_eq!(scan_segment(&zeroed, true).unwrap().torn_tail, Some(Malformed::RecordMagic));

        let mut flipped = segment(1, &[b"first", b"second"]);
        flipped[SEGMENT_HEADER_BYTES + 1] ^= 0x40;
        let error = scan_segment(&flipped, true).unwrap_err();
        assert_eq!(error.offset_bytes, SEGMENT_HEADER_BYTES as u64);
        assert_eq!(error.malformed, Malformed::RecordMagic);
    }

    #[test]
    fn a_whole_record_with_the_wrong_sequence_is_a_hard_error() {
        let mut bytes = segment(1, &[b"one"]);
        let mut buffer = Vec::new();
        encode_record(&mut buffer, 1, b"one again");
        bytes.extend_from_slice(&buffer);
        let error = scan_segment(&bytes, true).unwrap_err();
        assert_eq!(error.malformed, Malformed::RecordSequence { expected: 2, found: 1 });
    }

    #[test]
    fn overflowing_sequence_is_refused() {
        let bytes = segment(u64::MAX, &[b"last"]);
        assert_eq!(scan_segment(&bytes, true).unwrap_err().malformed, Malformed::SequenceOverflow);
    }
}
