//! The controller's directory on disk: the list file, replaced whole and atomically (written to
//! a temporary name, synced, renamed over the old one, the directory synced), so a crash or a
//! full disk leaves the previous list or the new one, never a mix.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::error::AccessError;
use super::list::{AccessList, LIST_FILE_BYTES_MAX, decode_header};

/// The list file in the controller's directory.
pub const LIST_FILE_NAME: &str = "access-list.bin";
/// The journal's subdirectory.
pub const JOURNAL_DIRECTORY_NAME: &str = "journal";
/// Suffix of the list being written; one found at open is a leftover of a crash.
const TEMPORARY_SUFFIX: &str = ".tmp";

pub(crate) fn io_error(operation: &'static str, path: &Path) -> impl FnOnce(io::Error) -> AccessError {
    let path = path.to_path_buf();
    move |source| AccessError::Io { operation, path, source }
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(TEMPORARY_SUFFIX);
    PathBuf::from(temporary)
}

/// Reads and checks the list file of `device`; `None` if there is none. A damaged file or one
/// of another device is an error, and the file is left as it is for an operator to look at.
pub(crate) fn read_list(path: &Path, device: u32) -> Result<Option<AccessList>, AccessError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io_error("open", path)(error)),
    };
    let size_bytes = file.metadata().map_err(io_error("stat", path))?.len();
    if size_bytes > LIST_FILE_BYTES_MAX {
        return Err(AccessError::ListTooLarge { path: path.to_path_buf(), size_bytes });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size_bytes).unwrap_or(0));
    // `take` keeps a file that grows while we read within the bound.
    file.take(LIST_FILE_BYTES_MAX).read_to_end(&mut bytes).map_err(io_error("read", path))?;
    let corrupt = |error| AccessError::ListCorrupt { path: path.to_path_buf(), error };
    // The header first, so a list copied from another device says so rather than whatever
    // else may be wrong with it.
    let header = decode_header(&bytes).map_err(corrupt)?;
    if header.device != device {
        return Err(AccessError::ListOtherDevice { path: path.to_path_buf(), expected: device, found: header.device });
    }
    AccessList::decode(&bytes).map(Some).map_err(corrupt)
}

/// Replaces the list file with `list`; see the module docs.
pub(crate) fn write_list(path: &Path, list: &AccessList) -> Result<(), AccessError> {
    let bytes = list.encode();
    let temporary = temporary_path(path);
    let mut file = File::create(&temporary).map_err(io_error("create", &temporary))?;
    file.write_all(&bytes).map_err(io_error("write", &temporary))?;
    file.sync_all().map_err(io_error("sync", &temporary))?;
    drop(file);
    fs::rename(&temporary, path).map_err(io_error("rename into place", path))?;
    sync_parent(path)
}

/// Deletes a list left half-written by a crash: it never replaced the real one.
pub(crate) fn remove_leftover(path: &Path) -> Result<(), AccessError> {
    let temporary = temporary_path(path);
    match fs::remove_file(&temporary) {
        Ok(()) => sync_parent(path),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(io_error("remove the leftover", &temporary)(error)),
    }
}

/// Creates `directory` if it is missing, durably.
pub(crate) fn create_directory(directory: &Path) -> Result<(), AccessError> {
    match fs::create_dir(directory) {
        Ok(()) => sync_parent(directory),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(io_error("create the directory", directory)(error)),
    }
}

/// Makes a creation, rename or deletion of `path` durable.
fn sync_parent(path: &Path) -> Result<(), AccessError> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(parent).and_then(|handle| handle.sync_all()).map_err(io_error("sync the directory", parent))
}
