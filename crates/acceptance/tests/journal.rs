//! The journal against real files: round trips, a cut at every byte of the last record, damage
//! anywhere before it, rotation and deletion, batches and acknowledgements, refusals.
// Helpers outside #[test] functions are test code too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use smartticket_acceptance::journal::{
    AttemptsMax, Backoff, Batch, BatchId, DeviceId, Journal, JournalError, JournalLimits, Malformed, RECORD_BYTES_MAX,
    RECORD_HEADER_BYTES, RECORD_PAYLOAD_BYTES_MAX, Recovery, SEGMENT_HEADER_BYTES, UPLOAD_BATCH_RECORDS_MAX,
};
use tempfile::TempDir;

const DEVICE: DeviceId = DeviceId([0x11; 16]);
const OTHER_DEVICE: DeviceId = DeviceId([0x22; 16]);
/// The smallest segments allowed: four 1000-byte records each.
const SMALL: JournalLimits =
    JournalLimits { segment_bytes_max: (SEGMENT_HEADER_BYTES + RECORD_BYTES_MAX) as u64, segment_count_max: 64 };
const KIB: usize = 1000;

/// A directory on tmpfs when there is one: the property tests open journals thousands of
/// times, and what they check does not depend on the sync reaching a disk.
fn directory() -> TempDir {
    let shm = Path::new("/dev/shm");
    let builder = tempfile::Builder::new();
    if shm.is_dir() { builder.tempdir_in(shm).unwrap() } else { builder.tempdir().unwrap() }
}

fn open(directory: &Path) -> (Journal, Recovery) {
    Journal::open(directory, DEVICE, JournalLimits::VALIDATOR).unwrap()
}

fn open_small(directory: &Path) -> Journal {
    Journal::open(directory, DEVICE, SMALL).unwrap().0
}

/// Every unacknowledged record as (sequence, payload), read through one batch.
fn unacknowledged(journal: &mut Journal) -> Vec<(u64, Vec<u8>)> {
    match journal.next_batch(UPLOAD_BATCH_RECORDS_MAX, u64::MAX).unwrap() {
        Some(batch) => batch.records.into_iter().map(|record| (record.sequence, record.payload)).collect(),
        None => Vec::new(),
    }
}

fn numbered(payloads: &[Vec<u8>]) -> Vec<(u64, Vec<u8>)> {
    payloads.iter().cloned().zip(1..).map(|(payload, sequence)| (sequence, payload)).collect()
}

fn segment_files(directory: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir(directory)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "seg"))
        .collect();
    paths.sort();
    paths
}

fn only_segment(directory: &Path) -> PathBuf {
    let segments = segment_files(directory);
    assert_eq!(segments.len(), 1);
    segments[0].clone()
}

/// Writes `payloads` into a new journal and returns its directory.
fn journal_with(payloads: &[Vec<u8>]) -> TempDir {
    let directory = directory();
    let (mut journal, recovery) = open(directory.path());
    assert!(recovery.created);
    for (expected, payload) in (1..).zip(payloads) {
        assert_eq!(journal.append(payload).unwrap(), expected);
    }
    directory
}

/// Offsets where each record of a single-segment journal starts.
fn record_starts(payloads: &[Vec<u8>]) -> Vec<usize> {
    payloads
        .iter()
        .scan(SEGMENT_HEADER_BYTES, |offset, payload| {
            let start = *offset;
            *offset += RECORD_HEADER_BYTES + payload.len();
            Some(start)
        })
        .collect()
}

#[test]
fn append_then_reopen_gives_back_the_same_records() {
    let payloads = vec![b"tap 1".to_vec(), Vec::new(), vec![0xee; RECORD_PAYLOAD_BYTES_MAX]];
    let directory = journal_with(&payloads);
    let (mut journal, recovery) = open(directory.path());
    assert_eq!(
        recovery,
        Recovery { created: false, torn_tail: None, segments_deleted: 0, sequence_next: 4, sequence_acknowledged: 0 }
    );
    assert_eq!(unacknowledged(&mut journal), numbered(&payloads));
    assert_eq!(journal.append(b"tap 4").unwrap(), 4);
    drop(journal);
    let (mut journal, _) = open(directory.path());
    assert_eq!(unacknowledged(&mut journal).len(), 4);
}

#[test]
fn an_oversized_record_is_refused_and_nothing_is_written() {
    let directory = journal_with(&[b"one".to_vec()]);
    let (mut journal, _) = open(directory.path());
    let error = journal.append(&vec![0; RECORD_PAYLOAD_BYTES_MAX + 1]).unwrap_err();
    assert!(matches!(error, JournalError::RecordTooLarge { payload_bytes: 4097, payload_bytes_max: 4096 }));
    assert_eq!(journal.append(b"two").unwrap(), 2);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// A crash while appending leaves the last record cut anywhere, or its length written but
    /// its bytes zero. Either way recovery gives back exactly the records whose append had
    /// returned, reports the cut, and appending resumes with the lost record's sequence.
    #[test]
    fn a_cut_anywhere_in_the_last_record_recovers_exactly_the_earlier_ones(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..8),
    ) {
        let source = journal_with(&payloads);
        let original = fs::read(only_segment(source.path())).unwrap();
        let last_start = *record_starts(&payloads).last().unwrap();
        let earlier = numbered(&payloads[..payloads.len() - 1]);
        let work = directory();
        let segment = work.path().join(only_segment(source.path()).file_name().unwrap());

        for cut in last_start..=original.len() {
            for zero_filled in [false, true] {
                let mut bytes = original[..cut].to_vec();
                if zero_filled {
                    bytes.resize(original.len(), 0);
                }
                fs::write(&segment, &bytes).unwrap();
                let (mut journal, recovery) = open(work.path());
                let whole = bytes == original;
                let expected = if whole { numbered(&payloads) } else { earlier.clone() };
                prop_assert_eq!(unacknowledged(&mut journal), expected.clone());
                prop_assert_eq!(recovery.sequence_next, expected.len() as u64 + 1);
                match recovery.torn_tail {
                    Some(torn) => {
                        prop_assert!(!whole && bytes.len() > last_start);
                        prop_assert_eq!(torn.offset_bytes, last_start as u64);
                        prop_assert_eq!(torn.bytes_discarded, (bytes.len() - last_start) as u64);
                    }
                    None => prop_assert!(whole || bytes.len() == last_start),
                }
                let length_expected = if whole { original.len() } else { last_start };
                prop_assert_eq!(fs::metadata(&segment).unwrap().len(), length_expected as u64);
                // Appending resumes where the returned records end; a few cuts suffice.
                if cut == last_start + 1 || cut == original.len() {
                    let sequence = journal.append(b"after recovery").unwrap();
                    prop_assert_eq!(sequence, expected.len() as u64 + 1);
                    drop(journal);
                    let (mut journal, recovery) = open(work.path());
                    prop_assert_eq!(recovery.torn_tail, None);
                    let records = unacknowledged(&mut journal);
                    prop_assert_eq!(records.last().unwrap(), &(sequence, b"after recovery".to_vec()));
                }
            }
        }
    }
}

#[test]
fn a_flipped_byte_before_the_last_record_is_a_hard_error_and_leaves_the_file_alone() {
    let payloads: Vec<Vec<u8>> = (0..5_u8).map(|index| vec![index; 3 + usize::from(index)]).collect();
    let source = journal_with(&payloads);
    let segment = only_segment(source.path());
    let original = fs::read(&segment).unwrap();
    let starts = record_starts(&payloads);
    let last_start = *starts.last().unwrap();

    for offset in 0..last_start {
        let mut damaged = original.clone();
        damaged[offset] ^= 0x5a;
        fs::write(&segment, &damaged).unwrap();
        let error = Journal::open(source.path(), DEVICE, JournalLimits::VALIDATOR).unwrap_err();
        let record_start = starts.iter().rev().find(|start| **start <= offset).map_or(0, |start| *start as u64);
        match error {
            JournalError::Corrupt { path, offset_bytes, malformed } => {
                assert_eq!(path, segment);
                assert_eq!(offset_bytes, record_start, "byte {offset}: {malformed}");
            }
            other => panic!("byte {offset}: expected corruption, got {other}"),
        }
        assert_eq!(fs::read(&segment).unwrap(), damaged, "byte {offset}: the file was changed");
    }
}

#[test]
fn damage_to_the_header_says_what_is_wrong() {
    let source = journal_with(&[b"one".to_vec()]);
    let segment = only_segment(source.path());
    let original = fs::read(&segment).unwrap();
    let cases = [
        (0, Malformed::HeaderMagic),
        (4, Malformed::HeaderVersion { found: 1 ^ 0xff }),
        (12, Malformed::HeaderChecksum),
        (33, Malformed::HeaderChecksum),
    ];
    for (offset, expected) in cases {
        let mut damaged = original.clone();
        damaged[offset] ^= 0xff;
        fs::write(&segment, &damaged).unwrap();
        let error = Journal::open(source.path(), DEVICE, JournalLimits::VALIDATOR).unwrap_err();
        assert!(
            matches!(error, JournalError::Corrupt { offset_bytes: 0, malformed, .. } if malformed == expected),
            "byte {offset}: {error}"
        );
    }
    fs::write(&segment, &original[..SEGMENT_HEADER_BYTES - 1]).unwrap();
    let error = Journal::open(source.path(), DEVICE, JournalLimits::VALIDATOR).unwrap_err();
    assert!(matches!(error, JournalError::Corrupt { malformed: Malformed::HeaderTruncated, .. }), "{error}");
}

#[test]
fn a_flipped_byte_in_the_last_record_is_treated_as_a_torn_write() {
    let payloads = vec![b"first".to_vec(), b"second".to_vec()];
    let source = journal_with(&payloads);
    let segment = only_segment(source.path());
    let original = fs::read(&segment).unwrap();
    let last_start = record_starts(&payloads)[1];
    for offset in last_start..original.len() {
        let mut damaged = original.clone();
        damaged[offset] ^= 0x01;
        fs::write(&segment, &damaged).unwrap();
        let (mut journal, recovery) = open(source.path());
        assert_eq!(unacknowledged(&mut journal), numbered(&payloads[..1]), "byte {offset}");
        assert!(recovery.torn_tail.is_some());
    }
}

#[test]
fn a_journal_of_another_device_is_refused() {
    let directory = journal_with(&[b"one".to_vec(), b"two".to_vec()]);
    let error = Journal::open(directory.path(), OTHER_DEVICE, JournalLimits::VALIDATOR).unwrap_err();
    assert!(matches!(error, JournalError::DeviceMismatch { expected: OTHER_DEVICE, found: DEVICE, .. }), "{error}");
    let (mut journal, _) = open(directory.path());
    journal.acknowledge(1).unwrap();
    drop(journal);
    let error = Journal::open(directory.path(), OTHER_DEVICE, JournalLimits::VALIDATOR).unwrap_err();
    assert!(matches!(error, JournalError::DeviceMismatch { ref path, .. } if path.ends_with("watermark")), "{error}");
}

#[test]
fn a_second_writer_is_refused() {
    let directory = journal_with(&[]);
    let (_journal, _) = open(directory.path());
    let error = Journal::open(directory.path(), DEVICE, JournalLimits::VALIDATOR).unwrap_err();
    assert!(matches!(error, JournalError::Locked { .. }), "{error}");
}

#[test]
fn segments_rotate_and_go_once_acknowledged() {
    let directory = directory();
    let mut journal = open_small(directory.path());
    for expected in 1..=10 {
        assert_eq!(journal.append(&[expected as u8; KIB]).unwrap(), expected);
    }
    // Four 1000-byte records fill the smallest segment: 1-4, 5-8, 9-10.
    assert_eq!(segment_files(directory.path()).len(), 3);
    assert_eq!(journal.acknowledge(3).unwrap().segments_deleted, 0);
    assert_eq!(journal.acknowledge(4).unwrap().segments_deleted, 1);
    assert_eq!(segment_files(directory.path()).len(), 2);
    // The active segment stays even when all of it is acknowledged: it carries the sequence on.
    assert_eq!(journal.acknowledge(10).unwrap().segments_deleted, 1);
    assert_eq!(segment_files(directory.path()).len(), 1);
    assert_eq!(journal.next_batch(10, u64::MAX).unwrap(), None);
    drop(journal);

    let (mut journal, recovery) = Journal::open(directory.path(), DEVICE, SMALL).unwrap();
    assert_eq!((recovery.sequence_next, recovery.sequence_acknowledged), (11, 10));
    assert_eq!(journal.append(b"eleven").unwrap(), 11);
    assert_eq!(unacknowledged(&mut journal), vec![(11, b"eleven".to_vec())]);
}

#[test]
fn segments_left_by_a_crash_after_the_watermark_are_deleted_at_open() {
    let directory = directory();
    let mut journal = open_small(directory.path());
    for _ in 0..10 {
        journal.append(&[7; KIB]).unwrap();
    }
    let segments = segment_files(directory.path());
    let kept: Vec<Vec<u8>> = segments.iter().map(|path| fs::read(path).unwrap()).collect();
    journal.acknowledge(9).unwrap();
    drop(journal);
    // As if the crash came between the watermark and the deletions; only the first deletion
    // reached the disk in one case, only the second in the other.
    for restored in [&segments[1..2], &segments[0..1], &segments[0..2]] {
        for path in restored {
            let index = segments.iter().position(|segment| segment == path).unwrap();
            fs::write(path, &kept[index]).unwrap();
        }
        let (mut journal, recovery) = Journal::open(directory.path(), DEVICE, SMALL).unwrap();
        assert_eq!(recovery.segments_deleted, restored.len() as u32);
        assert_eq!(segment_files(directory.path()), segments[2..]);
        assert_eq!(unacknowledged(&mut journal), vec![(10, vec![7; KIB])]);
    }
}

#[test]
fn a_missing_segment_is_a_gap() {
    let directory = directory();
    let mut journal = open_small(directory.path());
    for _ in 0..10 {
        journal.append(&[7; KIB]).unwrap();
    }
    drop(journal);
    let segments = segment_files(directory.path());
    fs::remove_file(&segments[1]).unwrap();
    let error = Journal::open(directory.path(), DEVICE, SMALL).unwrap_err();
    assert!(
        matches!(error, JournalError::SequenceGap { ref path, expected: 5, found: 9 } if *path == segments[2]),
        "{error}"
    );
    fs::remove_file(&segments[0]).unwrap();
    let error = Journal::open(directory.path(), DEVICE, SMALL).unwrap_err();
    assert!(matches!(error, JournalError::SequenceGap { expected: 1, found: 9, .. }), "{error}");
}

#[test]
fn a_cut_record_in_an_earlier_segment_is_a_hard_error() {
    let directory = directory();
    let mut journal = open_small(directory.path());
    for _ in 0..6 {
        journal.append(&[7; KIB]).unwrap();
    }
    drop(journal);
    let first = &segment_files(directory.path())[0];
    let bytes = fs::read(first).unwrap();
    fs::write(first, &bytes[..bytes.len() - 10]).unwrap();
    let error = Journal::open(directory.path(), DEVICE, SMALL).unwrap_err();
    assert!(
        matches!(error, JournalError::Corrupt { ref path, malformed: Malformed::RecordTruncated, .. } if path == first),
        "{error}"
    );
    assert_eq!(fs::metadata(first).unwrap().len() as usize, bytes.len() - 10);
}

#[test]
fn an_empty_segment_left_by_a_crash_during_rotation_is_used() {
    let directory = directory();
    let mut journal = open_small(directory.path());
    for _ in 0..5 {
        journal.append(&[7; KIB]).unwrap();
    }
    drop(journal);
    let second = &segment_files(directory.path())[1];
    let bytes = fs::read(second).unwrap();
    fs::write(second, &bytes[..SEGMENT_HEADER_BYTES]).unwrap();
    let (mut journal, recovery) = Journal::open(directory.path(), DEVICE, SMALL).unwrap();
    assert_eq!((recovery.sequence_next, recovery.torn_tail), (5, None));
    assert_eq!(journal.append(b"five").unwrap(), 5);
    assert_eq!(journal.segment_count(), 2);
}

#[test]
fn a_full_journal_refuses_appends_until_acknowledged() {
    let directory = directory();
    let limits = JournalLimits { segment_count_max: 2, ..SMALL };
    let (mut journal, _) = Journal::open(directory.path(), DEVICE, limits).unwrap();
    for expected in 1..=8 {
        assert_eq!(journal.append(&[1; KIB]).unwrap(), expected);
    }
    let error = journal.append(&[1; KIB]).unwrap_err();
    assert!(matches!(error, JournalError::Full { segment_count_max: 2 }), "{error}");
    // Refusing is not a failed write: the journal goes on once space is freed.
    journal.acknowledge(4).unwrap();
    assert_eq!(journal.append(&[1; KIB]).unwrap(), 9);
}

#[test]
fn batches_are_contiguous_retries_repeat_and_acknowledgements_are_idempotent() {
    let directory = directory();
    let mut journal = open_small(directory.path());
    for sequence in 1..=10_u64 {
        journal.append(&[sequence as u8; 2 * KIB]).unwrap();
    }
    let batch = journal.next_batch(3, u64::MAX).unwrap().unwrap();
    assert_eq!((batch.id.device_id, batch.id.sequence_first, batch.id.sequence_last), (DEVICE, 1, 3));
    assert_eq!(batch.payload_bytes, 3 * 2 * KIB as u64);
    // Not acknowledged yet (say the upload timed out): the same batch again, same id.
    assert_eq!(journal.next_batch(3, u64::MAX).unwrap().unwrap(), batch);

    assert_eq!(journal.acknowledge_batch(&batch.id).unwrap().records_acknowledged, 3);
    assert_eq!(journal.acknowledge_batch(&batch.id).unwrap().records_acknowledged, 0);
    assert_eq!(journal.acknowledge(2).unwrap().records_acknowledged, 0);

    // The byte limit: two 2000-byte payloads fit in 4096 bytes, a third does not. The batch
    // also crosses from the second segment into the third.
    let batch = journal.next_batch(UPLOAD_BATCH_RECORDS_MAX, RECORD_PAYLOAD_BYTES_MAX as u64).unwrap().unwrap();
    assert_eq!((batch.id.sequence_first, batch.id.sequence_last), (4, 5));
    assert_eq!(batch.records.iter().map(|record| record.payload[0]).collect::<Vec<_>>(), [4, 5]);
    // An acknowledgement inside a batch: the next batch starts right after it.
    journal.acknowledge(4).unwrap();
    let batch = journal.next_batch(4, u64::MAX).unwrap().unwrap();
    assert_eq!((batch.id.sequence_first, batch.id.sequence_last), (5, 8));
    let sequences: Vec<u64> = batch.records.iter().map(|record| record.sequence).collect();
    assert_eq!(sequences, [5, 6, 7, 8]);

    let error = journal.acknowledge(11).unwrap_err();
    assert!(matches!(error, JournalError::AcknowledgedBeyondWritten { acknowledged: 11, sequence_last: 10 }));
    let foreign = smartticket_acceptance::journal::BatchId { device_id: OTHER_DEVICE, ..batch.id };
    let error = journal.acknowledge_batch(&foreign).unwrap_err();
    assert!(matches!(error, JournalError::AcknowledgedOtherDevice { .. }), "{error}");
    drop(journal);

    // The watermark survives a restart; the retried batch after it has the same id.
    let (mut journal, recovery) = Journal::open(directory.path(), DEVICE, SMALL).unwrap();
    assert_eq!(recovery.sequence_acknowledged, 4);
    assert_eq!(journal.next_batch(4, u64::MAX).unwrap().unwrap().id, batch.id);
    journal.acknowledge(10).unwrap();
    assert_eq!(journal.next_batch(4, u64::MAX).unwrap(), None);
}

#[test]
fn an_acknowledged_record_that_looks_torn_is_damage() {
    let payloads = vec![b"one".to_vec(), b"two".to_vec()];
    let directory = journal_with(&payloads);
    let (mut journal, _) = open(directory.path());
    journal.acknowledge(2).unwrap();
    drop(journal);
    let segment = only_segment(directory.path());
    let bytes = fs::read(&segment).unwrap();
    fs::write(&segment, &bytes[..bytes.len() - 1]).unwrap();
    let error = Journal::open(directory.path(), DEVICE, JournalLimits::VALIDATOR).unwrap_err();
    assert!(matches!(error, JournalError::WatermarkAhead { acknowledged: 2, sequence_next: 2 }), "{error}");
    assert_eq!(fs::metadata(&segment).unwrap().len() as usize, bytes.len() - 1);
}

#[test]
fn a_watermark_without_segments_is_refused() {
    let directory = journal_with(&[b"one".to_vec()]);
    let (mut journal, _) = open(directory.path());
    journal.acknowledge(1).unwrap();
    drop(journal);
    fs::remove_file(only_segment(directory.path())).unwrap();
    let error = Journal::open(directory.path(), DEVICE, JournalLimits::VALIDATOR).unwrap_err();
    assert!(matches!(error, JournalError::SegmentsMissing { acknowledged: 1, .. }), "{error}");
}

#[test]
fn leftovers_of_atomic_writes_are_removed_and_other_files_kept() {
    let directory = journal_with(&[b"one".to_vec()]);
    let leftovers = ["watermark.tmp", "journal-00000000000000000002.seg.tmp"];
    for name in leftovers {
        fs::write(directory.path().join(name), b"half written").unwrap();
    }
    fs::write(directory.path().join("notes.txt"), b"not ours").unwrap();
    let (mut journal, _) = open(directory.path());
    assert_eq!(unacknowledged(&mut journal).len(), 1);
    for name in leftovers {
        assert!(!directory.path().join(name).exists(), "{name}");
    }
    assert!(directory.path().join("notes.txt").exists());
}

#[test]
fn a_damaged_watermark_is_a_hard_error() {
    let directory = journal_with(&[b"one".to_vec()]);
    let (mut journal, _) = open(directory.path());
    journal.acknowledge(1).unwrap();
    drop(journal);
    let watermark = directory.path().join("watermark");
    let mut bytes = fs::read(&watermark).unwrap();
    bytes.push(0);
    fs::write(&watermark, &bytes).unwrap();
    let error = Journal::open(directory.path(), DEVICE, JournalLimits::VALIDATOR).unwrap_err();
    assert!(matches!(error, JournalError::Corrupt { malformed: Malformed::HeaderTrailingBytes, .. }), "{error}");
    bytes.pop();
    bytes[30] ^= 1;
    fs::write(&watermark, &bytes).unwrap();
    let error = Journal::open(directory.path(), DEVICE, JournalLimits::VALIDATOR).unwrap_err();
    assert!(matches!(error, JournalError::Corrupt { malformed: Malformed::HeaderChecksum, .. }), "{error}");
}

/// How one upload attempt goes wrong, or does not.
#[derive(Clone, Copy, Debug)]
enum Network {
    /// The batch never arrives.
    Lost,
    /// The back office stores the batch but its answer never arrives.
    AnswerLost,
    Delivered,
}

/// A back office that stores records by sequence, so a resent batch changes nothing and is
/// answered as the first time.
#[derive(Default)]
struct BackOffice {
    stored: BTreeMap<u64, Vec<u8>>,
}

impl BackOffice {
    fn receive(&mut self, batch: &Batch, network: Network) -> Option<BatchId> {
        if let Network::Lost = network {
            return None;
        }
        for record in &batch.records {
            let stored = self.stored.entry(record.sequence).or_insert_with(|| record.payload.clone());
            assert_eq!(*stored, record.payload, "sequence {} resent with other content", record.sequence);
        }
        match network {
            Network::AnswerLost => None,
            _ => Some(batch.id),
        }
    }
}

#[test]
fn uploads_are_retried_with_backoff_until_acknowledged_and_land_once() {
    let directory = directory();
    let mut journal = open_small(directory.path());
    for sequence in 1..=30_u32 {
        journal.append(format!("tap {sequence}").as_bytes()).unwrap();
    }
    let backoff = Backoff::new(100, 1_600, AttemptsMax::Unlimited);
    // Every batch is lost once, then stored with its answer lost, then answered: the third
    // send repeats records the back office already holds.
    let script = [Network::Lost, Network::AnswerLost, Network::Delivered];
    let mut back_office = BackOffice::default();
    let mut failed_batch: Option<BatchId> = None;
    let mut failures = 0_u32;
    let mut waits_ms = Vec::new();
    for (attempt, network) in (0_u64..).zip(script.iter().cycle()).take(200) {
        let Some(batch) = journal.next_batch(4, u64::MAX).unwrap() else { break };
        // A retry resends the same records under the same id.
        if let Some(failed) = failed_batch {
            assert_eq!(batch.id, failed);
        }
        match back_office.receive(&batch, *network) {
            Some(id) => {
                journal.acknowledge_batch(&id).unwrap();
                failed_batch = None;
                failures = 0;
            }
            None => {
                failed_batch = Some(batch.id);
                failures += 1;
                waits_ms.push(backoff.delay_ms(failures, attempt.wrapping_mul(0x9e37_79b9_7f4a_7c15)).unwrap());
            }
        }
    }
    assert_eq!(journal.next_batch(4, u64::MAX).unwrap(), None);
    assert_eq!(journal.sequence_acknowledged(), 30);
    let expected: BTreeMap<u64, Vec<u8>> =
        (1..=30).map(|sequence| (sequence, format!("tap {sequence}").into_bytes())).collect();
    assert_eq!(back_office.stored, expected);
    // Two failures in a row before each delivery: waits of 50-100 ms, then 100-200 ms.
    assert!(
        waits_ms.chunks(2).all(|pair| (50..=100).contains(&pair[0]) && (100..=200).contains(&pair[1])),
        "{waits_ms:?}"
    );
}
