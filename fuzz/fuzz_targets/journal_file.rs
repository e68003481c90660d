//! Recovery reads whatever a crash, a disk or an operator left in a journal directory: any
//! bytes as a segment never panic, what is accepted is a contiguous run of records, and the
//! recovered journal takes appends and reopens clean. Odd first byte: instead of raw bytes,
//! a valid journal built from the input is cut or has a byte flipped (checksums would
//! otherwise keep the fuzzer from ever reaching a second record).
#![no_main]

use std::fs;
use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use smartticket_acceptance::journal::{
    DEVICE_ID_BYTES, DeviceId, Journal, JournalError, JournalLimits, RECORD_HEADER_BYTES, UPLOAD_BATCH_RECORDS_MAX,
};

const SEGMENT_NAME: &str = "journal-00000000000000000001.seg";
const RECORDS_MAX: usize = 32;

fuzz_target!(|input: &[u8]| {
    let Some((mode, rest)) = input.split_first() else {
        return;
    };
    let directory = scratch_directory();
    if mode & 1 == 0 {
        raw(&directory, rest);
    } else {
        mutated(&directory, rest);
    }
});

/// One directory per fuzzing process, emptied for each input; on tmpfs when there is one,
/// since every append syncs.
fn scratch_directory() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let root = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
    let directory = root.join(format!("smartticket-journal-fuzz-{}", std::process::id()));
    let _ = fs::remove_dir_all(&directory);
    fs::create_dir_all(&directory).unwrap();
    directory
}

fn raw(directory: &Path, bytes: &[u8]) {
    // The file's own device id (header bytes 8..24), so the fuzzer gets past that check.
    let device_id = bytes
        .get(8..8 + DEVICE_ID_BYTES)
        .and_then(|device| <[u8; DEVICE_ID_BYTES]>::try_from(device).ok())
        .map_or(DeviceId([0; DEVICE_ID_BYTES]), DeviceId);
    fs::write(directory.join(SEGMENT_NAME), bytes).unwrap();
    let Ok((mut journal, recovery)) = Journal::open(directory, device_id, JournalLimits::VALIDATOR) else {
        return;
    };
    let records = read_all(&mut journal);
    assert_eq!(records.len() as u64 + 1, recovery.sequence_next);
    let sequence = match journal.append(b"after recovery") {
        // A header may claim a first sequence near u64::MAX.
        Err(JournalError::SequencesExhausted) => return,
        result => result.unwrap(),
    };
    assert_eq!(sequence, recovery.sequence_next);
    drop(journal);
    let (_, again) = Journal::open(directory, device_id, JournalLimits::VALIDATOR).unwrap();
    assert_eq!(again.torn_tail, None);
    assert_eq!(again.sequence_next, sequence + 1);
}

fn mutated(directory: &Path, input: &[u8]) {
    let Some((&[kind, position_high, position_low, flip], mut rest)) = input.split_first_chunk::<4>() else {
        return;
    };
    let device_id = DeviceId([0x5a; DEVICE_ID_BYTES]);
    let mut payloads = Vec::new();
    while let Some((&length, after)) = rest.split_first()
        && payloads.len() < RECORDS_MAX
    {
        let (payload, after) = after.split_at(usize::from(length).min(after.len()));
        payloads.push(payload.to_vec());
        rest = after;
    }
    let (mut journal, _) = Journal::open(directory, device_id, JournalLimits::VALIDATOR).unwrap();
    for (payload, expected) in payloads.iter().zip(1..) {
        assert_eq!(journal.append(payload).unwrap(), expected);
    }
    drop(journal);

    let segment = directory.join(SEGMENT_NAME);
    let original = fs::read(&segment).unwrap();
    let position = usize::from(u16::from_be_bytes([position_high, position_low])) % original.len();
    let last_start = original.len() - payloads.last().map_or(0, |payload| RECORD_HEADER_BYTES + payload.len());
    let mut damaged = original.clone();
    let flipped = kind % 3 == 0 && flip != 0;
    match kind % 3 {
        0 => damaged[position] ^= flip,
        1 => damaged.truncate(position),
        _ => damaged[position..].fill(0),
    }
    fs::write(&segment, &damaged).unwrap();

    match Journal::open(directory, device_id, JournalLimits::VALIDATOR) {
        Ok((mut journal, _)) => {
            // Never a flipped byte before the last record: that is damage to synced data.
            assert!(!(flipped && position < last_start), "a flip at {position} was accepted");
            let records = read_all(&mut journal);
            assert!(records.len() <= payloads.len());
            for (record, payload) in records.iter().zip(&payloads) {
                assert_eq!(record, payload, "recovery returned a record that was not written");
            }
        }
        // An unchanged journal always opens.
        Err(error) => assert_ne!(damaged, original, "{error}"),
    }
}

/// Every record after recovery, checked to be numbered 1, 2, 3...
fn read_all(journal: &mut Journal) -> Vec<Vec<u8>> {
    let Some(batch) = journal.next_batch(UPLOAD_BATCH_RECORDS_MAX, u64::MAX).unwrap() else {
        return Vec::new();
    };
    assert!(batch.records.len() < UPLOAD_BATCH_RECORDS_MAX as usize);
    assert_eq!(batch.id.sequence_first, 1);
    assert_eq!(batch.id.sequence_last, batch.records.len() as u64);
    for (record, expected) in batch.records.iter().zip(1..) {
        assert_eq!(record.sequence, expected);
    }
    batch.records.into_iter().map(|record| record.payload).collect()
}
