//! The journal survives `kill -9`: a child process (this test binary, re-run on one test)
//! appends and prints each sequence once `append` has returned; the parent kills it with
//! SIGKILL part way, reopens the journal, and finds every printed record exactly once.
#![cfg(unix)]
// Helpers outside #[test] functions are test code too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::{BTreeMap, HashSet};
use std::env;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use smartticket_acceptance::journal::{
    DeviceId, Journal, JournalLimits, RECORD_BYTES_MAX, SEGMENT_HEADER_BYTES, UPLOAD_BATCH_RECORDS_MAX,
};

const DEVICE: DeviceId = DeviceId([0x33; 16]);
/// The smallest segments: with 200-byte records they rotate every 20 appends, so kills also
/// land around rotations and the deletions that acknowledgements cause.
const LIMITS: JournalLimits =
    JournalLimits { segment_bytes_max: (SEGMENT_HEADER_BYTES + RECORD_BYTES_MAX) as u64, segment_count_max: 1024 };
const PAYLOAD_BYTES: usize = 180;
/// Set in the child's environment: the journal directory, and which round this is.
const CHILD_DIRECTORY: &str = "SMARTTICKET_JOURNAL_KILL_CHILD_DIRECTORY";
const CHILD_ROUND: &str = "SMARTTICKET_JOURNAL_KILL_CHILD_ROUND";
/// The child stops by itself after this long; the parent kills it well before.
const CHILD_RUNTIME_MAX: Duration = Duration::from_secs(30);

/// The child's side. Does nothing in a normal test run.
#[test]
fn kill_child() {
    let Some(directory) = env::var_os(CHILD_DIRECTORY) else {
        return;
    };
    let round: u32 = env::var(CHILD_ROUND).unwrap().parse().unwrap();
    let (mut journal, _) = Journal::open(Path::new(&directory), DEVICE, LIMITS).unwrap();
    let mut stdout = std::io::stdout().lock();
    let started = Instant::now();
    for index in 0..1_000_000_u32 {
        if started.elapsed() > CHILD_RUNTIME_MAX {
            break;
        }
        let payload = payload(round, index);
        let sequence = journal.append(payload.as_bytes()).unwrap();
        // Printed only after append returned: what the gate would have opened on.
        writeln!(stdout, "appended {sequence} {payload}").unwrap();
        stdout.flush().unwrap();
        if index % 16 == 15 {
            let acknowledged = sequence - 8;
            journal.acknowledge(acknowledged).unwrap();
            writeln!(stdout, "acknowledged {acknowledged}").unwrap();
            stdout.flush().unwrap();
        }
    }
}

fn payload(round: u32, index: u32) -> String {
    let mut payload = format!("round {round} index {index} ");
    payload.extend(std::iter::repeat_n('.', PAYLOAD_BYTES - payload.len()));
    payload
}

/// What the child printed, over all rounds.
#[derive(Default)]
struct Printed {
    appended: BTreeMap<u64, String>,
    acknowledged_max: u64,
}

impl Printed {
    /// Takes one line of the child's output; returns whether it was an append.
    fn take(&mut self, line: &str) -> bool {
        // The test harness may print its own text before ours on the same line.
        if let Some(at) = line.find("appended ") {
            let (sequence, payload) = line[at + "appended ".len()..].split_once(' ').unwrap();
            let previous = self.appended.insert(sequence.parse().unwrap(), payload.to_owned());
            assert_eq!(previous, None, "sequence {sequence} returned twice");
            return true;
        }
        if let Some(at) = line.find("acknowledged ") {
            let sequence: u64 = line[at + "acknowledged ".len()..].trim().parse().unwrap();
            self.acknowledged_max = self.acknowledged_max.max(sequence);
        }
        false
    }
}

#[test]
fn kill_9_loses_no_returned_record_and_duplicates_none() {
    if env::var_os(CHILD_DIRECTORY).is_some() {
        return;
    }
    let directory = tempfile::tempdir().unwrap();
    let mut printed = Printed::default();
    let mut sequence_next = 1;
    // Appends to wait for before each kill, varied so the kills land at different points.
    for (round, kill_after) in [3_u32, 41, 17, 64, 29].into_iter().enumerate() {
        let mut child = Command::new(env::current_exe().unwrap())
            .args(["--exact", "kill_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIRECTORY, directory.path())
            .env(CHILD_ROUND, round.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first_of_round = printed.appended.len();
        let mut appended = 0;
        while appended < kill_after {
            let Some(line) = lines.next() else { break };
            appended += u32::from(printed.take(&line.unwrap()));
        }
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(9), "round {round}: the child ended by itself: {status}");
        // What the child printed before it died is still in the pipe.
        for line in lines {
            printed.take(&line.unwrap());
        }
        assert!(printed.appended.len() >= first_of_round + kill_after as usize, "round {round}");
        let first_sequence = *printed.appended.keys().nth(first_of_round).unwrap();
        assert_eq!(first_sequence, sequence_next, "round {round}: appending resumed elsewhere");
        sequence_next = check(directory.path(), &printed, round);
    }
}

/// Reopens the journal after a kill and checks it against what the child printed; returns
/// the sequence the next append will get.
fn check(directory: &Path, printed: &Printed, round: usize) -> u64 {
    let (mut journal, recovery) = Journal::open(directory, DEVICE, LIMITS).unwrap();
    let watermark = recovery.sequence_acknowledged;
    assert!(watermark >= printed.acknowledged_max, "round {round}: an acknowledgement was lost");
    let batch = journal.next_batch(UPLOAD_BATCH_RECORDS_MAX, u64::MAX).unwrap().unwrap();
    assert!(batch.records.len() < UPLOAD_BATCH_RECORDS_MAX as usize);

    let mut payloads_seen = HashSet::new();
    let mut unprinted = 0;
    for (record, expected) in batch.records.iter().zip(watermark + 1..) {
        assert_eq!(record.sequence, expected, "round {round}: sequences are not contiguous");
        let payload = String::from_utf8(record.payload.clone()).unwrap();
        assert!(payloads_seen.insert(payload.clone()), "round {round}: {payload:?} journalled twice");
        match printed.appended.get(&record.sequence) {
            Some(printed_payload) => assert_eq!(*printed_payload, payload, "round {round}"),
            // Appended, then killed before printing: allowed, once per kill at most, and it
            // must not be a copy of a record the child did report.
            None => {
                unprinted += 1;
                assert!(!printed.appended.values().any(|printed| *printed == payload));
            }
        }
    }
    assert!(unprinted <= round + 1, "round {round}: {unprinted} records nobody appended");
    let sequence_last = batch.id.sequence_last;
    for (sequence, payload) in printed.appended.range(watermark + 1..) {
        assert!(*sequence <= sequence_last, "round {round}: sequence {sequence} ({payload}) is lost");
    }
    assert_eq!(recovery.sequence_next, sequence_last + 1);
    recovery.sequence_next
}
