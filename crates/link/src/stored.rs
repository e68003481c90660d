//! The list files a validator installed, kept on its own storage so that after a restart it
//! decides from the same lists before the network is back: per kind, the last full file and
//! the deltas installed after it, replayed in order through the same checks as a download.
//!
//! Layout: `<dir>/<kind>/<version>-<base version>.stls` (20-digit numbers, so names sort by
//! version; base 0 is a full list). Files are written to a temporary name, synced, renamed
//! and the directory synced, so a crash leaves either the old set or the new one.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use smartticket_acceptance::engine::Validator;
use smartticket_acceptance::lists::{InstalledList, ListKind};

use crate::LinkError;

/// Most deltas kept after a full list. Past this the next download asks for the full list,
/// so a restart never replays an unbounded chain (each delta is applied to a copy of the
/// whole list).
pub const DELTAS_KEPT_MAX: usize = 64;
/// Largest stored file read back: the download limit.
const STORED_FILE_BYTES_MAX: u64 = crate::LIST_FILE_BYTES_MAX;
const EXTENSION: &str = "stls";

/// The list files of one validator.
#[derive(Debug, Clone)]
pub struct StoredLists {
    dir: PathBuf,
}

/// One stored file's name, read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct StoredName {
    version: u64,
    base_version: u64,
}

impl StoredName {
    fn parse(name: &str) -> Option<StoredName> {
        let stem = name.strip_suffix(&format!(".{EXTENSION}"))?;
        let (version, base) = stem.split_once('-')?;
        Some(StoredName { version: version.parse().ok()?, base_version: base.parse().ok()? })
    }

    fn file_name(self) -> String {
        format!("{:020}-{:020}.{EXTENSION}", self.version, self.base_version)
    }
}

impl StoredLists {
    /// The list files under `dir` (created if missing).
    pub fn open(dir: &Path) -> Result<StoredLists, LinkError> {
        for kind in [ListKind::Greenlist, ListKind::Denylist] {
            let path = dir.join(kind.to_string());
            fs::create_dir_all(&path).map_err(LinkError::io(&path))?;
        }
        Ok(StoredLists { dir: dir.to_path_buf() })
    }

    fn kind_dir(&self, kind: ListKind) -> PathBuf {
        self.dir.join(kind.to_string())
    }

    /// The stored files of `kind` from its last full list on, in version order.
    fn chain(&self, kind: ListKind) -> Result<Vec<StoredName>, LinkError> {
        let dir = self.kind_dir(kind);
        let mut names = Vec::new();
        for entry in fs::read_dir(&dir).map_err(LinkError::io(&dir))? {
            let entry = entry.map_err(LinkError::io(&dir))?;
            if let Some(name) = entry.file_name().to_str().and_then(StoredName::parse) {
                names.push(name);
            }
        }
        names.sort();
        let last_full = names.iter().rposition(|name| name.base_version == 0);
        Ok(match last_full {
            Some(index) => names.split_off(index),
            None => Vec::new(),
        })
    }

    /// Installs the stored lists into `engine`, through the same checks as a download. A
    /// file the engine refuses (damaged, or signed by a key retired since) ends that kind's
    /// chain there: it and the files after it are removed, and the lists before it stay.
    pub fn restore(&self, engine: &mut Validator) -> Result<Vec<InstalledList>, LinkError> {
        let mut installed = Vec::new();
        for kind in [ListKind::Greenlist, ListKind::Denylist] {
            let chain = self.chain(kind)?;
            for (index, name) in chain.iter().enumerate() {
                let path = self.kind_dir(kind).join(name.file_name());
                let refused = match read_limited(&path) {
                    Ok(bytes) => match engine.offer_list(&bytes) {
                        Ok(list) => {
                            installed.retain(|held: &InstalledList| held.kind != kind);
                            installed.push(list);
                            None
                        }
                        Err(error) => Some(error.to_string()),
                    },
                    Err(error) => Some(error.to_string()),
                };
                if let Some(reason) = refused {
                    tracing::warn!(%kind, file = %path.display(), %reason, "a stored list was refused; later ones are dropped");
                    for later in chain.iter().skip(index) {
                        let path = self.kind_dir(kind).join(later.file_name());
                        fs::remove_file(&path).map_err(LinkError::io(&path))?;
                    }
                    break;
                }
            }
        }
        Ok(installed)
    }

    /// Keeps a file the engine has just installed. A full list replaces every older file of
    /// its kind.
    pub fn save(&self, kind: ListKind, version: u64, base_version: u64, bytes: &[u8]) -> Result<(), LinkError> {
        let dir = self.kind_dir(kind);
        let name = StoredName { version, base_version };
        let path = dir.join(name.file_name());
        let temporary = dir.join(format!(".{}.tmp", name.file_name()));
        let mut file = fs::File::create(&temporary).map_err(LinkError::io(&temporary))?;
        file.write_all(bytes).map_err(LinkError::io(&temporary))?;
        file.sync_all().map_err(LinkError::io(&temporary))?;
        drop(file);
        fs::rename(&temporary, &path).map_err(LinkError::io(&path))?;
        sync_dir(&dir)?;
        if base_version == 0 {
            for entry in fs::read_dir(&dir).map_err(LinkError::io(&dir))? {
                let entry = entry.map_err(LinkError::io(&dir))?;
                let older = entry.file_name().to_str().and_then(StoredName::parse).is_some_and(|old| old != name);
                if older {
                    fs::remove_file(entry.path()).map_err(LinkError::io(entry.path()))?;
                }
            }
            sync_dir(&dir)?;
        }
        Ok(())
    }

    /// Whether the next download of `kind` should be a full list: no full list is stored, or
    /// [`DELTAS_KEPT_MAX`] deltas already follow it.
    pub fn wants_full(&self, kind: ListKind) -> Result<bool, LinkError> {
        let chain = self.chain(kind)?;
        Ok(chain.is_empty() || chain.len() > DELTAS_KEPT_MAX)
    }
}

fn read_limited(path: &Path) -> Result<Vec<u8>, LinkError> {
    use std::io::Read as _;
    let file = fs::File::open(path).map_err(LinkError::io(path))?;
    let mut bytes = Vec::new();
    file.take(STORED_FILE_BYTES_MAX + 1).read_to_end(&mut bytes).map_err(LinkError::io(path))?;
    if bytes.len() as u64 > STORED_FILE_BYTES_MAX {
        return Err(LinkError::TooLarge { max: STORED_FILE_BYTES_MAX });
    }
    Ok(bytes)
}

fn sync_dir(dir: &Path) -> Result<(), LinkError> {
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(LinkError::io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_by_version_and_read_back() {
        let name = StoredName { version: 12, base_version: 11 };
        assert_eq!(StoredName::parse(&name.file_name()), Some(name));
        assert_eq!(StoredName::parse("x.stls"), None);
        assert_eq!(StoredName::parse(".00000000000000000012-00000000000000000011.stls.tmp"), None);
        let mut names = [StoredName { version: 100, base_version: 0 }, StoredName { version: 9, base_version: 0 }]
            .map(StoredName::file_name);
        names.sort();
        assert!(names[0].starts_with("00000000000000000009"));
    }

    #[test]
    fn a_full_list_replaces_older_files_and_deltas_follow_it() {
        let dir = tempfile::tempdir().unwrap();
        let stored = StoredLists::open(dir.path()).unwrap();
        assert!(stored.wants_full(ListKind::Greenlist).unwrap());
        stored.save(ListKind::Greenlist, 1, 0, b"full 1").unwrap();
        stored.save(ListKind::Greenlist, 2, 1, b"delta 2").unwrap();
        assert!(!stored.wants_full(ListKind::Greenlist).unwrap());
        assert_eq!(stored.chain(ListKind::Greenlist).unwrap().len(), 2);
        stored.save(ListKind::Greenlist, 3, 0, b"full 3").unwrap();
        assert_eq!(stored.chain(ListKind::Greenlist).unwrap(), vec![StoredName { version: 3, base_version: 0 }]);
        assert_eq!(fs::read_dir(stored.kind_dir(ListKind::Greenlist)).unwrap().count(), 1);
        assert!(stored.wants_full(ListKind::Denylist).unwrap());
        for version in 4..4 + DELTAS_KEPT_MAX as u64 {
            stored.save(ListKind::Greenlist, version, version - 1, b"delta").unwrap();
        }
        assert!(stored.wants_full(ListKind::Greenlist).unwrap());
    }
}
