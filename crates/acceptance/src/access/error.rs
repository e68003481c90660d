//! Access-control errors. A denial is not an error; these are: bad input (the caller's
//! mistake, nothing was changed) or a device fault (the door stays shut, someone must look).

use std::io;
use std::path::PathBuf;

use super::grant::GrantError;
use super::identifier::IdentifierError;
use super::list::ListDecodeError;
use crate::journal::JournalError;

/// Why the controller refused an operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// An identifier is invalid (input: nothing changed).
    #[error(transparent)]
    Identifier(#[from] IdentifierError),
    /// A grant is invalid (input: nothing changed).
    #[error(transparent)]
    Grant(#[from] GrantError),
    /// A door outside the controller's range (input: nothing changed).
    #[error("door {door} does not exist (doors are 1 to {max})", max = super::grant::DOORS_MAX)]
    DoorOutOfRange {
        /// The door given.
        door: u32,
    },
    /// The actor naming who makes a change is empty, too long or holds control characters.
    #[error("the actor must be 1 to {max} printable bytes", max = super::ACTOR_BYTES_MAX)]
    InvalidActor,
    /// The passback window is longer than allowed.
    #[error("the passback window of {seconds} s is longer than {max} s", max = crate::engine::PASSBACK_SECONDS_MAX)]
    PassbackWindow {
        /// The window given.
        seconds: u32,
    },
    /// The list holds as many identifiers as it may.
    #[error("the access list is full ({max} identifiers)", max = super::list::ACCESS_LIST_ENTRIES_MAX)]
    ListFull,
    /// The list file is damaged. It was left as it is; nothing was changed.
    #[error("access list {path} is damaged at {error}")]
    ListCorrupt {
        /// The file.
        path: PathBuf,
        /// Where and what.
        error: ListDecodeError,
    },
    /// The list file belongs to another device.
    #[error("access list {path} belongs to device {found}, this is device {expected}")]
    ListOtherDevice {
        /// The file.
        path: PathBuf,
        /// This device.
        expected: u32,
        /// The device in the file.
        found: u32,
    },
    /// The list file is larger than any list can be.
    #[error("access list {path} is {size_bytes} bytes, larger than any list")]
    ListTooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size_bytes: u64,
    },
    /// The journal holds events but the list file is gone: passes were lost, and starting
    /// with an empty list would hide that.
    #[error("access list {path} is missing although the journal holds events")]
    ListMissing {
        /// Where the file should be.
        path: PathBuf,
    },
    /// The operating system failed a read, write, sync or rename.
    #[error("access: cannot {operation} {path}: {source}")]
    Io {
        /// What was being done.
        operation: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The journal refused: no door opens and no change is made without it.
    #[error("the journal refused: {0}")]
    Journal(#[from] JournalError),
    /// An event could not be encoded.
    #[error("an event could not be encoded: {0}")]
    Encode(#[source] serde_json::Error),
    /// A journal record is not an access-control event.
    #[error("journal record {sequence} is not an access-control event: {source}")]
    EventUnreadable {
        /// Its sequence.
        sequence: u64,
        /// Why it did not parse.
        #[source]
        source: serde_json::Error,
    },
}

impl AccessError {
    /// Whether the caller's input was at fault (and nothing was changed), as opposed to the
    /// device.
    #[must_use]
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            AccessError::Identifier(_)
                | AccessError::Grant(_)
                | AccessError::DoorOutOfRange { .. }
                | AccessError::InvalidActor
                | AccessError::PassbackWindow { .. }
        )
    }
}
