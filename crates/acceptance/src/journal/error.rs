//! Journal errors: each says which file, which offset and what is wrong, and who must act.

use std::io;
use std::path::PathBuf;

use super::format::{DeviceId, Malformed};

/// Why the journal refused an operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The operating system failed a read, write, sync, rename or delete.
    #[error("journal: cannot {operation} {path}: {source}")]
    Io {
        /// What was being done.
        operation: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A file holds bytes that are not a torn tail: data already synced is damaged. Nothing
    /// was changed on disk; an operator must look at the file.
    #[error("journal: {path} at byte {offset_bytes}: {malformed}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Where in the file the damage starts.
        offset_bytes: u64,
        /// What is wrong there.
        malformed: Malformed,
    },
    /// A file belongs to another device's journal.
    #[error("journal: {path} belongs to device {found}, this is device {expected}")]
    DeviceMismatch {
        /// The file.
        path: PathBuf,
        /// The device that opened the journal.
        expected: DeviceId,
        /// The device named in the file.
        found: DeviceId,
    },
    /// Records between two sequences are missing: a segment was lost or is out of place.
    #[error("journal: {path} starts at sequence {found}, expected {expected}: records are missing")]
    SequenceGap {
        /// The segment after the gap.
        path: PathBuf,
        /// The sequence that should come next.
        expected: u64,
        /// The sequence the segment starts at.
        found: u64,
    },
    /// The watermark names a sequence beyond the last record on disk, or there are no
    /// segments although records were acknowledged: the journal lost records.
    #[error(
        "journal: acknowledged up to sequence {acknowledged}, but the records on disk end before \
         {sequence_next}"
    )]
    WatermarkAhead {
        /// The acknowledged sequence in the watermark file.
        acknowledged: u64,
        /// The sequence the next append would get.
        sequence_next: u64,
    },
    /// The watermark says records were acknowledged, but no segment is left. The journal never
    /// deletes its last segment, so segments were lost.
    #[error("journal: {directory} has a watermark (sequence {acknowledged}) but no segments")]
    SegmentsMissing {
        /// The journal directory.
        directory: PathBuf,
        /// The acknowledged sequence in the watermark file.
        acknowledged: u64,
    },
    /// The directory holds more segment files than any journal may have.
    #[error("journal: {directory} holds more than {segment_count_max} segments")]
    TooManySegments {
        /// The journal directory.
        directory: PathBuf,
        /// The limit.
        segment_count_max: u32,
    },
    /// A segment file is larger than any segment may be.
    #[error("journal: {path} is {size_bytes} bytes, larger than any segment ({size_bytes_max})")]
    SegmentTooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size_bytes: u64,
        /// The limit.
        size_bytes_max: u64,
    },
    /// Another process (or another `Journal` in this one) has the journal open.
    #[error("journal: {path} is locked by another writer")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// The caller's payload is longer than a record may hold.
    #[error("journal: a record of {payload_bytes} bytes is larger than {payload_bytes_max}")]
    RecordTooLarge {
        /// The payload's length.
        payload_bytes: usize,
        /// The limit.
        payload_bytes_max: usize,
    },
    /// Every segment the limits allow is in use and none is acknowledged: the records must be
    /// uploaded before more can be written. The gate must not open on an unjournalled decision.
    #[error("journal: full ({segment_count_max} segments are unacknowledged)")]
    Full {
        /// The limit that was reached.
        segment_count_max: u32,
    },
    /// An acknowledgement names a sequence that was never written.
    #[error("journal: acknowledgement of sequence {acknowledged}, but only {sequence_last} were written")]
    AcknowledgedBeyondWritten {
        /// The sequence acknowledged.
        acknowledged: u64,
        /// The last sequence written (0: none).
        sequence_last: u64,
    },
    /// An acknowledgement is for a batch of another device's journal.
    #[error("journal: acknowledgement for device {found}, this is device {expected}")]
    AcknowledgedOtherDevice {
        /// This journal's device.
        expected: DeviceId,
        /// The device in the acknowledged batch id.
        found: DeviceId,
    },
    /// The next sequence would pass `u64::MAX` (only a segment header claiming such a
    /// sequence can bring this about).
    #[error("journal: sequence numbers are exhausted")]
    SequencesExhausted,
    /// An earlier append failed part way; what reached the disk is unknown until recovery
    /// reads it back, so the journal must be dropped and opened again.
    #[error("journal: an earlier write failed; reopen the journal to recover")]
    Poisoned,
}
