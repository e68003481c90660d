//! The validator's durable journal (DESIGN §4): every decision is appended and synced before
//! the gate opens, then uploaded in batches until the back office acknowledges it. It owns
//! framing, crash recovery and the upload watermark; what a decision says is the engine's.
//!
//! Our own code: no crate we know of fits, because we need a sync per record before `append`
//! returns, files bound to one device, and an acknowledgement watermark that frees segments.
//!
//! The directory holds `lock` (held by the one writer), `watermark` (the highest acknowledged
//! sequence; absent until the first acknowledgement) and `journal-<first sequence>.seg`
//! segments, appended to in order. The byte layout is documented at the top of `format.rs`.
//!
//! Recovery on [`Journal::open`]: a torn last record of the last segment (an append that never
//! returned) is cut away and reported; any other damage, a gap in the sequences or a file from
//! another device is a typed error, and nothing on disk is changed.

mod backoff;
mod batch;
mod error;
mod files;
mod format;

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub use backoff::{AttemptsMax, Backoff};
pub use batch::{BATCH_ID_BYTES, Batch, BatchId, Record};
pub use error::JournalError;
pub use format::{
    DEVICE_ID_BYTES, DeviceId, FORMAT_VERSION, Malformed, RECORD_BYTES_MAX, RECORD_HEADER_BYTES,
    RECORD_PAYLOAD_BYTES_MAX, SEGMENT_HEADER_BYTES,
};

use files::io_error;

/// The largest segment any journal may have: recovery reads one whole segment into memory.
pub const SEGMENT_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// The most segments any journal may have: bounds the directory listing at open.
pub const SEGMENT_COUNT_MAX: u32 = 4096;
/// The most records in one upload batch: bounds the batch and the back office's transaction.
pub const UPLOAD_BATCH_RECORDS_MAX: u32 = 4096;

/// How large a journal may grow. Passed explicitly: the right size depends on the device's
/// storage and how long it may stay offline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JournalLimits {
    /// A segment is closed and a new one started before it would pass this size.
    pub segment_bytes_max: u64,
    /// Appends fail with [`JournalError::Full`] once this many segments hold unacknowledged
    /// records.
    pub segment_count_max: u32,
}

impl JournalLimits {
    /// For a validator: 4 MiB segments, 1024 of them (4 GiB). At a few hundred bytes a
    /// decision that is millions of taps, weeks offline for the busiest gate.
    pub const VALIDATOR: Self = Self { segment_bytes_max: 4 * 1024 * 1024, segment_count_max: 1024 };

    /// Panics on limits outside the journal's bounds: they are constants in the caller's code.
    const fn assert_valid(&self) {
        // An empty segment always has room for the largest record, so rotation never loops.
        assert!(self.segment_bytes_max >= (SEGMENT_HEADER_BYTES + RECORD_BYTES_MAX) as u64);
        assert!(self.segment_bytes_max <= SEGMENT_BYTES_MAX);
        assert!(self.segment_count_max >= 1 && self.segment_count_max <= SEGMENT_COUNT_MAX);
    }
}

const _: () = JournalLimits::VALIDATOR.assert_valid();

/// What [`Journal::open`] found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// The directory held no journal; an empty one was created.
    pub created: bool,
    /// A record cut short by a crash was removed from the end of the last segment.
    pub torn_tail: Option<TornTail>,
    /// Fully acknowledged segments left over by a crash, deleted now.
    pub segments_deleted: u32,
    /// The sequence the next append gets.
    pub sequence_next: u64,
    /// The highest acknowledged sequence (0: none).
    pub sequence_acknowledged: u64,
}

/// The end of a segment that recovery cut away. Its record's append never returned, so no
/// gate opened on it and nothing acknowledged is lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The segment.
    pub path: PathBuf,
    /// Where the cut record started: the segment's length now.
    pub offset_bytes: u64,
    /// How many bytes were removed.
    pub bytes_discarded: u64,
    /// What was wrong with them.
    pub malformed: Malformed,
}

/// Whether an acknowledgement moved the watermark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acknowledgement {
    /// Records acknowledged now for the first time; 0 for a repeated acknowledgement.
    pub records_acknowledged: u64,
    /// Segments deleted because every record in them is now acknowledged.
    pub segments_deleted: u32,
}

/// The journal of one device, open for appending; see the module docs.
#[derive(Debug)]
pub struct Journal {
    directory: PathBuf,
    device_id: DeviceId,
    limits: JournalLimits,
    /// Closed segments, oldest first; each holds at least one unacknowledged record.
    sealed: VecDeque<Segment>,
    /// The segment appended to, and its file.
    active: Segment,
    active_file: File,
    sequence_next: u64,
    sequence_acknowledged: u64,
    /// Where the last batch ended, so the next one need not re-read the segment from its start.
    read_hint: Option<ReadHint>,
    /// Holds the record being appended: no allocation per append.
    record_buffer: Vec<u8>,
    /// A failed append leaves the end of the active segment unknown (and after a failed
    /// sync, Linux may report the next sync as clean), so nothing more is done until reopened.
    poisoned: bool,
    _lock: File,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Segment {
    path: PathBuf,
    sequence_first: u64,
    record_count: u64,
    size_bytes: u64,
}

impl Segment {
    /// The sequence after this segment's last record.
    fn sequence_end(&self) -> u64 {
        self.sequence_first + self.record_count
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ReadHint {
    segment_sequence_first: u64,
    sequence: u64,
    offset_bytes: u64,
}

/// A segment as recovery found it.
struct Scanned {
    segment: Segment,
    torn_tail: Option<Malformed>,
}

impl Journal {
    /// Opens (or, in a directory without one, creates) the journal of `device_id`, recovering
    /// from a crash: see the module docs. The directory must exist. Panics if `limits` are
    /// outside [`SEGMENT_BYTES_MAX`] and [`SEGMENT_COUNT_MAX`] or leave no room for a record.
    pub fn open(
        directory: &Path,
        device_id: DeviceId,
        limits: JournalLimits,
    ) -> Result<(Self, Recovery), JournalError> {
        limits.assert_valid();
        let lock = files::lock(directory)?;
        let mut named = files::list_segments(directory, SEGMENT_COUNT_MAX)?;
        let watermark = files::read_watermark(directory, device_id)?;
        let created = named.is_empty();
        if let Some(acknowledged) = watermark
            && created
        {
            // The last segment is never deleted: with a watermark there must be one.
            let directory = directory.to_path_buf();
            return Err(JournalError::SegmentsMissing { directory, acknowledged });
        }
        let sequence_acknowledged = watermark.unwrap_or(0);
        if created {
            let (path, _) = files::create_segment(directory, device_id, 1)?;
            named.push(files::NamedSegment { sequence_first: 1, path });
        }
        let segments_deleted = delete_stale_segments(directory, &mut named, sequence_acknowledged)?;

        let mut scanned = Vec::with_capacity(named.len());
        for (index, segment) in named.iter().enumerate() {
            let sequence_expected = match scanned.last() {
                Some(Scanned { segment: previous, .. }) => previous.sequence_end(),
                None => segment.sequence_first.min(sequence_acknowledged.saturating_add(1)),
            };
            let is_last = index + 1 == named.len();
            scanned.push(scan(segment, device_id, sequence_expected, is_last)?);
        }
        let Some(Scanned { segment: active, torn_tail }) = scanned.pop() else {
            // Not reached: an empty directory got a new segment above.
            let directory = directory.to_path_buf();
            return Err(JournalError::SegmentsMissing { directory, acknowledged: sequence_acknowledged });
        };
        let sequence_next = active.sequence_end();
        if sequence_acknowledged >= sequence_next {
            // Also catches a "torn" record that the back office has acknowledged: it was
            // written whole, so it is damage, and the file stays as it is.
            return Err(JournalError::WatermarkAhead { acknowledged: sequence_acknowledged, sequence_next });
        }
        let active_file = files::open_for_append(&active.path)?;
        let torn_tail = match torn_tail {
            Some(malformed) => Some(cut_torn_tail(&active_file, &active, malformed)?),
            None => None,
        };

        let recovery = Recovery { created, torn_tail, segments_deleted, sequence_next, sequence_acknowledged };
        let journal = Self {
            directory: directory.to_path_buf(),
            device_id,
            limits,
            sealed: scanned.into_iter().map(|scanned| scanned.segment).collect(),
            active,
            active_file,
            sequence_next,
            sequence_acknowledged,
            read_hint: None,
            record_buffer: Vec::with_capacity(RECORD_BYTES_MAX),
            poisoned: false,
            _lock: lock,
        };
        journal.assert_invariants();
        Ok((journal, recovery))
    }

    /// Appends one record and returns its sequence once the record is on stable storage.
    /// Only then may the gate open. On an I/O error the journal must be reopened.
    pub fn append(&mut self, payload: &[u8]) -> Result<u64, JournalError> {
        if self.poisoned {
            return Err(JournalError::Poisoned);
        }
        if payload.len() > RECORD_PAYLOAD_BYTES_MAX {
            return Err(JournalError::RecordTooLarge {
                payload_bytes: payload.len(),
                payload_bytes_max: RECORD_PAYLOAD_BYTES_MAX,
            });
        }
        let record_bytes = (RECORD_HEADER_BYTES + payload.len()) as u64;
        if self.active.size_bytes + record_bytes > self.limits.segment_bytes_max {
            let segment_count = self.sealed.len() + 1;
            if segment_count >= self.limits.segment_count_max as usize {
                return Err(JournalError::Full { segment_count_max: self.limits.segment_count_max });
            }
            self.poison_on_error(Self::rotate)?;
        }
        let sequence = self.sequence_next;
        // Only a segment header claiming a sequence near u64::MAX gets here.
        let sequence_after = sequence.checked_add(1).ok_or(JournalError::SequencesExhausted)?;
        format::encode_record(&mut self.record_buffer, sequence, payload);
        self.poison_on_error(Self::write_record)?;

        self.active.record_count += 1;
        self.active.size_bytes += record_bytes;
        self.sequence_next = sequence_after;
        assert!(self.active.size_bytes <= self.limits.segment_bytes_max);
        assert_eq!(self.active.sequence_end(), self.sequence_next);
        Ok(sequence)
    }

    /// The oldest unacknowledged records, at most `records_max` of them and at most
    /// `payload_bytes_max` payload bytes; `None` when everything is acknowledged. Until
    /// acknowledged, the same call returns the same records again (more, if more were
    /// appended and the limits allow). Records are checked again as they are read. Panics if
    /// `records_max` is 0 or above [`UPLOAD_BATCH_RECORDS_MAX`], or if `payload_bytes_max`
    /// is below [`RECORD_PAYLOAD_BYTES_MAX`] (a batch must always fit one record).
    pub fn next_batch(&mut self, records_max: u32, payload_bytes_max: u64) -> Result<Option<Batch>, JournalError> {
        assert!((1..=UPLOAD_BATCH_RECORDS_MAX).contains(&records_max));
        // The largest record always fits, so every batch makes progress.
        assert!(payload_bytes_max >= RECORD_PAYLOAD_BYTES_MAX as u64);
        if self.poisoned {
            return Err(JournalError::Poisoned);
        }
        let sequence_first = self.sequence_acknowledged + 1;
        if sequence_first == self.sequence_next {
            return Ok(None);
        }
        let mut read = BatchRead {
            sequence_wanted: sequence_first,
            records: Vec::new(),
            payload_bytes: 0,
            records_max: records_max as usize,
            payload_bytes_max,
            hint: self.read_hint,
        };
        let segments = self.sealed.iter().chain(std::iter::once(&self.active));
        for segment in segments.filter(|segment| segment.sequence_end() > sequence_first) {
            if !read.take_from(segment)? {
                break;
            }
        }
        self.read_hint = read.hint;
        let BatchRead { records, payload_bytes, .. } = read;
        // An unacknowledged record exists and the largest record fits any batch.
        assert!(!records.is_empty());
        let Some(last) = records.last() else {
            return Ok(None);
        };
        let id = BatchId { device_id: self.device_id, sequence_first, sequence_last: last.sequence };
        assert_eq!(id.sequence_last - id.sequence_first + 1, records.len() as u64);
        assert!(id.sequence_last < self.sequence_next);
        Ok(Some(Batch { id, records, payload_bytes }))
    }

    /// Up to `records_max` records from `sequence_first` on (or from the oldest still on disk,
    /// if acknowledged segments were deleted), for reading the journal back (an event list).
    /// Unlike [`Journal::next_batch`] it starts anywhere and moves no upload position. Panics
    /// if `records_max` is 0 or above [`UPLOAD_BATCH_RECORDS_MAX`].
    pub fn read_from(&self, sequence_first: u64, records_max: u32) -> Result<Vec<Record>, JournalError> {
        assert!((1..=UPLOAD_BATCH_RECORDS_MAX).contains(&records_max));
        if self.poisoned {
            return Err(JournalError::Poisoned);
        }
        let oldest = self.sealed.front().unwrap_or(&self.active).sequence_first;
        let sequence_wanted = sequence_first.max(oldest);
        let mut read = BatchRead {
            sequence_wanted,
            records: Vec::new(),
            payload_bytes: 0,
            records_max: records_max as usize,
            // The record count bounds the read: at most records_max whole records.
            payload_bytes_max: u64::MAX,
            hint: None,
        };
        let segments = self.sealed.iter().chain(std::iter::once(&self.active));
        for segment in segments.filter(|segment| segment.sequence_end() > sequence_wanted) {
            if !read.take_from(segment)? {
                break;
            }
        }
        assert!(read.records.len() <= records_max as usize);
        Ok(read.records)
    }

    /// Records that the back office holds every record up to `sequence_last`: persists the
    /// watermark, then deletes segments holding only acknowledged records. Idempotent: a
    /// sequence already acknowledged changes nothing. A sequence never written is an error.
    pub fn acknowledge(&mut self, sequence_last: u64) -> Result<Acknowledgement, JournalError> {
        if self.poisoned {
            return Err(JournalError::Poisoned);
        }
        let sequence_written_last = self.sequence_next - 1;
        if sequence_last > sequence_written_last {
            return Err(JournalError::AcknowledgedBeyondWritten {
                acknowledged: sequence_last,
                sequence_last: sequence_written_last,
            });
        }
        let records_acknowledged = sequence_last.saturating_sub(self.sequence_acknowledged);
        if records_acknowledged > 0 {
            // Watermark first: a crash before the deletions leaves segments that the next
            // open recognises as acknowledged and deletes.
            files::write_watermark(&self.directory, self.device_id, sequence_last)?;
            self.sequence_acknowledged = sequence_last;
        }
        // Also on a repeated acknowledgement, to finish deletions an earlier error cut short.
        let segments_deleted = self.delete_acknowledged_segments()?;
        self.assert_invariants();
        Ok(Acknowledgement { records_acknowledged, segments_deleted })
    }

    /// [`Journal::acknowledge`] for a batch id, checking that it names this device.
    pub fn acknowledge_batch(&mut self, id: &BatchId) -> Result<Acknowledgement, JournalError> {
        if id.device_id != self.device_id {
            return Err(JournalError::AcknowledgedOtherDevice { expected: self.device_id, found: id.device_id });
        }
        self.acknowledge(id.sequence_last)
    }

    /// The device this journal belongs to.
    #[must_use]
    pub fn device_id(&self) -> DeviceId {
        self.device_id
    }

    /// The sequence the next append gets; every lower one (from 1) was written.
    #[must_use]
    pub fn sequence_next(&self) -> u64 {
        self.sequence_next
    }

    /// The highest acknowledged sequence (0: none).
    #[must_use]
    pub fn sequence_acknowledged(&self) -> u64 {
        self.sequence_acknowledged
    }

    /// Segments on disk, the active one included.
    #[must_use]
    pub fn segment_count(&self) -> usize {
        self.sealed.len() + 1
    }

    fn poison_on_error(&mut self, operation: fn(&mut Self) -> Result<(), JournalError>) -> Result<(), JournalError> {
        let result = operation(self);
        self.poisoned |= result.is_err();
        result
    }

    /// Closes the active segment and starts the next with its header already synced, so a
    /// crash leaves either no new segment or an empty, valid one.
    fn rotate(&mut self) -> Result<(), JournalError> {
        // An empty segment has room for any record: rotating it would loop.
        assert!(self.active.record_count > 0);
        let (path, file) = files::create_segment(&self.directory, self.device_id, self.sequence_next)?;
        let segment = Segment {
            path,
            sequence_first: self.sequence_next,
            record_count: 0,
            size_bytes: SEGMENT_HEADER_BYTES as u64,
        };
        let sealed = std::mem::replace(&mut self.active, segment);
        self.sealed.push_back(sealed);
        self.active_file = file;
        Ok(())
    }

    /// Writes the encoded record at the end of the active segment (an explicit offset, so a
    /// short write can never shift later records) and syncs it.
    fn write_record(&mut self) -> Result<(), JournalError> {
        let path = &self.active.path;
        self.active_file.seek(SeekFrom::Start(self.active.size_bytes)).map_err(io_error("seek in", path))?;
        self.active_file.write_all(&self.record_buffer).map_err(io_error("append to", path))?;
        // sync_data also persists the new length, which reading the data back needs.
        self.active_file.sync_data().map_err(io_error("sync", path))
    }

    fn delete_acknowledged_segments(&mut self) -> Result<u32, JournalError> {
        let mut segments_deleted = 0_u32;
        while let Some(oldest) = self.sealed.front() {
            if oldest.sequence_end() > self.sequence_acknowledged + 1 {
                break;
            }
            std::fs::remove_file(&oldest.path).map_err(io_error("delete", &oldest.path))?;
            self.sealed.pop_front();
            segments_deleted += 1;
        }
        if segments_deleted > 0 {
            // Not needed for safety (a deleted segment that comes back is acknowledged and
            // deleted again at open); done so the space is reliably freed.
            files::sync_directory(&self.directory)?;
        }
        Ok(segments_deleted)
    }

    fn assert_invariants(&self) {
        let mut sequence_expected = None;
        for segment in self.sealed.iter().chain(std::iter::once(&self.active)) {
            if let Some(expected) = sequence_expected {
                assert_eq!(segment.sequence_first, expected);
            }
            assert!(segment.size_bytes >= SEGMENT_HEADER_BYTES as u64);
            sequence_expected = Some(segment.sequence_end());
        }
        assert_eq!(sequence_expected, Some(self.sequence_next));
        assert!(self.sequence_acknowledged < self.sequence_next);
        assert!(self.sealed.iter().all(|segment| segment.record_count > 0));
        if let Some(oldest) = self.sealed.front() {
            assert!(oldest.sequence_first <= self.sequence_acknowledged + 1);
        } else {
            assert!(self.active.sequence_first <= self.sequence_acknowledged + 1);
        }
    }
}

/// Deletes segments before the last whose records are all acknowledged (leftovers of a crash
/// between writing the watermark and deleting them). Returns how many.
fn delete_stale_segments(
    directory: &Path,
    named: &mut Vec<files::NamedSegment>,
    sequence_acknowledged: u64,
) -> Result<u32, JournalError> {
    // Judged by the next segment's name: segment i ends before segment i + 1 starts.
    let stale_count = named
        .windows(2)
        .take_while(|pair| {
            pair.get(1).is_some_and(|next| next.sequence_first <= sequence_acknowledged.saturating_add(1))
        })
        .count();
    for segment in named.drain(..stale_count) {
        std::fs::remove_file(&segment.path).map_err(io_error("delete", &segment.path))?;
    }
    if stale_count > 0 {
        tracing::info!(directory = %directory.display(), stale_count, "journal: deleted acknowledged segments");
        files::sync_directory(directory)?;
    }
    Ok(u32::try_from(stale_count).unwrap_or(u32::MAX))
}

/// Reads and checks one segment at open.
fn scan(
    named: &files::NamedSegment,
    device_id: DeviceId,
    sequence_expected: u64,
    is_last: bool,
) -> Result<Scanned, JournalError> {
    let path = &named.path;
    let bytes = files::read_bounded(path, SEGMENT_BYTES_MAX)?;
    let header = format::decode_file_header(format::SEGMENT_MAGIC, &bytes)
        .map_err(|malformed| files::corrupt(path, 0, malformed))?;
    // Device and name are checked before the records so that the error says the most useful
    // thing: a foreign or misnamed file, rather than some record in it.
    if header.device_id != device_id {
        return Err(JournalError::DeviceMismatch { path: path.clone(), expected: device_id, found: header.device_id });
    }
    if header.sequence != named.sequence_first {
        let malformed = Malformed::HeaderNameMismatch { name: named.sequence_first, header: header.sequence };
        return Err(files::corrupt(path, 0, malformed));
    }
    if header.sequence != sequence_expected {
        return Err(JournalError::SequenceGap {
            path: path.clone(),
            expected: sequence_expected,
            found: header.sequence,
        });
    }
    let scan = format::scan_segment(&bytes, is_last).map_err(|error| JournalError::Corrupt {
        path: path.clone(),
        offset_bytes: error.offset_bytes,
        malformed: error.malformed,
    })?;
    assert_eq!(scan.header, header);
    assert!(scan.bytes_valid <= bytes.len() as u64);
    assert!(scan.torn_tail.is_some() == (scan.bytes_valid < bytes.len() as u64));
    Ok(Scanned {
        segment: Segment {
            path: path.clone(),
            sequence_first: header.sequence,
            record_count: scan.record_count,
            size_bytes: scan.bytes_valid,
        },
        torn_tail: scan.torn_tail,
    })
}

/// Cuts the active segment back to its last whole record and syncs the cut.
fn cut_torn_tail(file: &File, active: &Segment, malformed: Malformed) -> Result<TornTail, JournalError> {
    let path = &active.path;
    let size_bytes = file.metadata().map_err(io_error("stat", path))?.len();
    file.set_len(active.size_bytes).map_err(io_error("truncate", path))?;
    file.sync_all().map_err(io_error("sync", path))?;
    let torn_tail = TornTail {
        path: path.clone(),
        offset_bytes: active.size_bytes,
        bytes_discarded: size_bytes.saturating_sub(active.size_bytes),
        malformed,
    };
    tracing::warn!(
        path = %path.display(),
        offset_bytes = torn_tail.offset_bytes,
        bytes_discarded = torn_tail.bytes_discarded,
        %malformed,
        "journal: cut a record torn by a crash (its append never returned)"
    );
    Ok(torn_tail)
}

/// The state of one `next_batch` as it walks the segments.
struct BatchRead {
    sequence_wanted: u64,
    records: Vec<Record>,
    payload_bytes: u64,
    records_max: usize,
    payload_bytes_max: u64,
    hint: Option<ReadHint>,
}

impl BatchRead {
    /// Takes records from `segment`; returns whether the batch has room for more.
    fn take_from(&mut self, segment: &Segment) -> Result<bool, JournalError> {
        let (offset_start, sequence_start) = match self.hint {
            Some(hint)
                if hint.segment_sequence_first == segment.sequence_first && hint.sequence == self.sequence_wanted =>
            {
                (hint.offset_bytes, hint.sequence)
            }
            _ => (SEGMENT_HEADER_BYTES as u64, segment.sequence_first),
        };
        let mut reader = SegmentReader::open(segment, offset_start, sequence_start)?;
        let mut buffer = Vec::with_capacity(RECORD_BYTES_MAX);
        // One record per pass, and the segment holds `record_count` of them.
        for _ in 0..segment.record_count {
            if reader.offset_bytes == segment.size_bytes {
                return Ok(true);
            }
            let offset_bytes = reader.offset_bytes;
            let (sequence, payload) = reader.next(&mut buffer)?;
            if sequence < self.sequence_wanted {
                continue;
            }
            let payload_bytes = payload.len() as u64;
            let full =
                self.records.len() == self.records_max || self.payload_bytes + payload_bytes > self.payload_bytes_max;
            if full {
                self.hint = Some(ReadHint { segment_sequence_first: segment.sequence_first, sequence, offset_bytes });
                return Ok(false);
            }
            self.records.push(Record { sequence, payload: payload.to_vec() });
            self.payload_bytes += payload_bytes;
            self.sequence_wanted += 1;
        }
        Ok(reader.offset_bytes == segment.size_bytes)
    }
}

/// Reads records of a segment in order from a known position, checking each one again: the
/// file may have been damaged since it was scanned at open.
struct SegmentReader<'a> {
    segment: &'a Segment,
    reader: BufReader<File>,
    offset_bytes: u64,
    sequence_next: u64,
}

impl<'a> SegmentReader<'a> {
    fn open(segment: &'a Segment, offset_bytes: u64, sequence_next: u64) -> Result<Self, JournalError> {
        assert!(offset_bytes >= SEGMENT_HEADER_BYTES as u64 && offset_bytes <= segment.size_bytes);
        assert!(sequence_next >= segment.sequence_first && sequence_next <= segment.sequence_end());
        let path = &segment.path;
        let mut file = File::open(path).map_err(io_error("open", path))?;
        file.seek(SeekFrom::Start(offset_bytes)).map_err(io_error("seek in", path))?;
        Ok(Self { segment, reader: BufReader::new(file), offset_bytes, sequence_next })
    }

    fn next<'b>(&mut self, buffer: &'b mut Vec<u8>) -> Result<(u64, &'b [u8]), JournalError> {
        let path = &self.segment.path;
        let offset_bytes = self.offset_bytes;
        let corrupt = |malformed| JournalError::Corrupt { path: path.clone(), offset_bytes, malformed };
        let read_error = |source: io::Error| match source.kind() {
            io::ErrorKind::UnexpectedEof => corrupt(Malformed::RecordTruncated),
            _ => io_error("read", path)(source),
        };
        let mut header = [0_u8; RECORD_HEADER_BYTES];
        self.reader.read_exact(&mut header).map_err(read_error)?;
        let payload_bytes = format::record_payload_bytes(&header).map_err(corrupt)?;
        buffer.clear();
        buffer.extend_from_slice(&header);
        buffer.resize(RECORD_HEADER_BYTES + payload_bytes, 0);
        let payload = buffer.get_mut(RECORD_HEADER_BYTES..).unwrap_or_default();
        self.reader.read_exact(payload).map_err(read_error)?;
        let buffer: &'b [u8] = buffer;
        let record = format::decode_record(buffer).map_err(corrupt)?;
        if record.sequence != self.sequence_next {
            return Err(corrupt(Malformed::RecordSequence { expected: self.sequence_next, found: record.sequence }));
        }
        let offset_after = self.offset_bytes + record.record_bytes() as u64;
        // The segment can only have changed under us if something other than the journal
        // wrote to it since it was scanned.
        if offset_after > self.segment.size_bytes {
            return Err(corrupt(Malformed::RecordPastEnd));
        }
        self.offset_bytes = offset_after;
        self.sequence_next = self.sequence_next.saturating_add(1);
        Ok((record.sequence, record.payload))
    }
}
