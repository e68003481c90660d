//! The journal directory: file names, the writer's lock, and files that must appear whole or
//! not at all (a new segment's header, the watermark): written to a temporary name, synced,
//! renamed, and the directory synced, so a crash leaves the old file or the new one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::error::JournalError;
use super::format::{self, DeviceId, FileHeader, Malformed, SEGMENT_HEADER_BYTES};

/// Held locked (`flock`) by the one open `Journal`; two writers would interleave sequences.
const LOCK_FILE_NAME: &str = "lock";
const WATERMARK_FILE_NAME: &str = "watermark";
const SEGMENT_PREFIX: &str = "journal-";
const SEGMENT_SUFFIX: &str = ".seg";
/// Suffix of a file being written for an atomic rename; one found at open is a leftover of a
/// crash and was never part of the journal.
const TEMPORARY_SUFFIX: &str = ".tmp";
/// Digits of the first sequence in a segment's name: `u64::MAX` has 20, and zero padding
/// makes the names sort in sequence order.
const SEGMENT_NAME_DIGITS: usize = 20;

/// A segment file found in the directory, known so far by its name only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NamedSegment {
    pub sequence_first: u64,
    pub path: PathBuf,
}

pub(crate) fn io_error(operation: &'static str, path: &Path) -> impl FnOnce(io::Error) -> JournalError {
    let path = path.to_path_buf();
    move |source| JournalError::Io { operation, path, source }
}

pub(crate) fn segment_path(directory: &Path, sequence_first: u64) -> PathBuf {
    directory.join(format!("{SEGMENT_PREFIX}{sequence_first:0SEGMENT_NAME_DIGITS$}{SEGMENT_SUFFIX}"))
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(SEGMENT_PREFIX)?.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != SEGMENT_NAME_DIGITS || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Takes the writer's lock, or says who holds it.
pub(crate) fn lock(directory: &Path) -> Result<File, JournalError> {
    let path = directory.join(LOCK_FILE_NAME);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_error("create the lock file", &path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(JournalError::Locked { path }),
        Err(fs::TryLockError::Error(source)) => Err(io_error("lock", &path)(source)),
    }
}

/// The segments in the directory, oldest first. Deletes leftover temporary files. Files with
/// other names are not ours and are left alone.
pub(crate) fn list_segments(directory: &Path, segment_count_max: u32) -> Result<Vec<NamedSegment>, JournalError> {
    // Bounds the listing even in a directory that is not ours: the lock, the watermark, the
    // segments, and room for a few leftovers.
    let entry_count_max = segment_count_max as usize + 64;
    let mut segments = Vec::new();
    let entries = fs::read_dir(directory).map_err(io_error("list", directory))?;
    for (index, entry) in entries.enumerate() {
        if index >= entry_count_max {
            return Err(JournalError::TooManySegments { directory: directory.to_path_buf(), segment_count_max });
        }
        let entry = entry.map_err(io_error("list", directory))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if let Some(stem) = name.strip_suffix(TEMPORARY_SUFFIX)
            && (stem == WATERMARK_FILE_NAME || parse_segment_name(stem).is_some())
        {
            let path = entry.path();
            fs::remove_file(&path).map_err(io_error("remove the leftover", &path))?;
            continue;
        }
        if let Some(sequence_first) = parse_segment_name(&name) {
            segments.push(NamedSegment { sequence_first, path: entry.path() });
        }
    }
    if segments.len() > segment_count_max as usize {
        return Err(JournalError::TooManySegments { directory: directory.to_path_buf(), segment_count_max });
    }
    segments.sort_by_key(|segment| segment.sequence_first);
    Ok(segments)
}

/// Reads a whole file of at most `size_bytes_max` bytes.
pub(crate) fn read_bounded(path: &Path, size_bytes_max: u64) -> Result<Vec<u8>, JournalError> {
    let file = File::open(path).map_err(io_error("open", path))?;
    let size_bytes = file.metadata().map_err(io_error("stat", path))?.len();
    if size_bytes > size_bytes_max {
        return Err(JournalError::SegmentTooLarge { path: path.to_path_buf(), size_bytes, size_bytes_max });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size_bytes).unwrap_or(0));
    // `take` keeps a file that grows while we read within the bound.
    file.take(size_bytes_max).read_to_end(&mut bytes).map_err(io_error("read", path))?;
    Ok(bytes)
}

/// The acknowledged sequence, or `None` when nothing was ever acknowledged.
pub(crate) fn read_watermark(directory: &Path, device_id: DeviceId) -> Result<Option<u64>, JournalError> {
    let path = directory.join(WATERMARK_FILE_NAME);
    let bytes = match read_bounded(&path, SEGMENT_HEADER_BYTES as u64 + 1) {
        Ok(bytes) => bytes,
        Err(JournalError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Ok(None);
        }
        Err(JournalError::SegmentTooLarge { .. }) => {
            return Err(corrupt(&path, SEGMENT_HEADER_BYTES, Malformed::HeaderTrailingBytes));
        }
        Err(error) => return Err(error),
    };
    let header = format::decode_file_header(format::WATERMARK_MAGIC, &bytes)
        .map_err(|malformed| corrupt(&path, 0, malformed))?;
    // Written whole by `write_atomically`: a byte more is damage, not a torn write.
    if bytes.len() != SEGMENT_HEADER_BYTES {
        return Err(corrupt(&path, SEGMENT_HEADER_BYTES, Malformed::HeaderTrailingBytes));
    }
    if header.device_id != device_id {
        return Err(JournalError::DeviceMismatch { path, expected: device_id, found: header.device_id });
    }
    Ok(Some(header.sequence))
}

pub(crate) fn write_watermark(
    directory: &Path,
    device_id: DeviceId,
    sequence_acknowledged: u64,
) -> Result<(), JournalError> {
    assert!(sequence_acknowledged >= 1);
    let header = FileHeader { device_id, sequence: sequence_acknowledged };
    let bytes = format::encode_file_header(format::WATERMARK_MAGIC, &header);
    write_atomically(&directory.join(WATERMARK_FILE_NAME), &bytes)?;
    sync_directory(directory)
}

/// Creates the segment starting at `sequence_first` (header only) and opens it for appending.
pub(crate) fn create_segment(
    directory: &Path,
    device_id: DeviceId,
    sequence_first: u64,
) -> Result<(PathBuf, File), JournalError> {
    assert!(sequence_first >= 1);
    let path = segment_path(directory, sequence_first);
    let header = FileHeader { device_id, sequence: sequence_first };
    write_atomically(&path, &format::encode_file_header(format::SEGMENT_MAGIC, &header))?;
    sync_directory(directory)?;
    let file = open_for_append(&path)?;
    Ok((path, file))
}

pub(crate) fn open_for_append(path: &Path) -> Result<File, JournalError> {
    OpenOptions::new().write(true).open(path).map_err(io_error("open for writing", path))
}

/// Writes `bytes` to `path` so that after a crash `path` holds either its old content or all
/// of `bytes`. The caller syncs the directory to make the rename itself durable.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), JournalError> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(TEMPORARY_SUFFIX);
    let temporary = PathBuf::from(temporary);
    let mut file = File::create(&temporary).map_err(io_error("create", &temporary))?;
    file.write_all(bytes).map_err(io_error("write", &temporary))?;
    file.sync_all().map_err(io_error("sync", &temporary))?;
    drop(file);
    fs::rename(&temporary, path).map_err(io_error("rename into place", path))
}

/// Makes creations, renames and deletions in `directory` durable.
pub(crate) fn sync_directory(directory: &Path) -> Result<(), JournalError> {
    File::open(directory).and_then(|handle| handle.sync_all()).map_err(io_error("sync the directory", directory))
}

pub(crate) fn corrupt(path: &Path, offset_bytes: usize, malformed: Malformed) -> JournalError {
    JournalError::Corrupt { path: path.to_path_buf(), offset_bytes: offset_bytes as u64, malformed }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip_and_sort() {
        let directory = Path::new("/j");
        let path = segment_path(directory, 42);
        assert_eq!(path, Path::new("/j/journal-00000000000000000042.seg"));
        let name = path.file_name().unwrap().to_str().unwrap();
        assert_eq!(parse_segment_name(name), Some(42));
        assert_eq!(parse_segment_name("journal-18446744073709551615.seg"), Some(u64::MAX));
        assert_eq!(parse_segment_name("journal-42.seg"), None);
        assert_eq!(parse_segment_name("journal-0000000000000000004x.seg"), None);
        assert_eq!(parse_segment_name("journal-+0000000000000000042.seg"), None);
        assert_eq!(parse_segment_name("journal-99999999999999999999.seg"), None);
    }
}
