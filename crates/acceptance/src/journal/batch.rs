//! Upload batches: contiguous runs of records, named by a deterministic id so that a resent
//! batch carries the same id and the back office can answer it idempotently.

use std::fmt;

use super::format::{DEVICE_ID_BYTES, DeviceId};

/// Bytes in [`BatchId::to_bytes`].
pub const BATCH_ID_BYTES: usize = DEVICE_ID_BYTES + 8 + 8;

/// Names a batch by what it holds: device, first and last sequence. Not a hash: two batches
/// with the same id hold the same records, and the back office can read the range from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BatchId {
    /// The device whose journal the records come from.
    pub device_id: DeviceId,
    /// The first sequence in the batch.
    pub sequence_first: u64,
    /// The last sequence in the batch (inclusive).
    pub sequence_last: u64,
}

impl BatchId {
    /// Device id, then both sequences big-endian, so ids sort by device and sequence.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; BATCH_ID_BYTES] {
        let mut bytes = [0_u8; BATCH_ID_BYTES];
        let (device, sequences) = bytes.split_at_mut(DEVICE_ID_BYTES);
        let (first, last) = sequences.split_at_mut(8);
        device.copy_from_slice(&self.device_id.0);
        first.copy_from_slice(&self.sequence_first.to_be_bytes());
        last.copy_from_slice(&self.sequence_last.to_be_bytes());
        bytes
    }
}

/// Lowercase hex of [`BatchId::to_bytes`].
impl fmt::Display for BatchId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&hex::encode(self.to_bytes()))
    }
}

/// One journalled record, as uploaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Its sequence in the device's journal: dense, from 1.
    pub sequence: u64,
    /// The bytes the caller appended.
    pub payload: Vec<u8>,
}

/// Records `id.sequence_first..=id.sequence_last`, in order, none missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// The batch's id.
    pub id: BatchId,
    /// The records.
    pub records: Vec<Record>,
    /// Sum of the payload lengths.
    pub payload_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_is_the_range_it_names() {
        let id = BatchId { device_id: DeviceId([0xab; 16]), sequence_first: 1, sequence_last: 258 };
        let text = id.to_string();
        assert_eq!(text.len(), 2 * BATCH_ID_BYTES);
        assert!(text.starts_with(&"ab".repeat(16)));
        assert!(text.ends_with("00000000000000010000000000000102"));
        let other = BatchId { sequence_last: 257, ..id };
        assert_ne!(id.to_bytes(), other.to_bytes());
    }
}
