//! What can go wrong between a validator and the back office, and whether waiting helps.

use std::path::PathBuf;

use smartticket_acceptance::journal::JournalError;
use smartticket_acceptance::lists::ListError;

/// A failed round with the back office. Nothing the validator holds changed because of it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The back office's address is not a usable base URL.
    #[error("`{0}` is not an http:// base URL")]
    BadUrl(String),
    /// The request did not complete: no connection, a timeout, a broken answer.
    #[error("cannot reach the back office: {0}")]
    Unreachable(#[source] reqwest::Error),
    /// The token was refused (401) or lacks the role (403).
    #[error("the back office refused the credentials ({status}): {detail}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The problem document's detail.
        detail: String,
    },
    /// The version we hold is no longer available as a delta base: download the full list.
    #[error("the back office no longer has list version {0} to build a delta from")]
    VersionUnknown(u64),
    /// No list has been published yet.
    #[error("the back office has not published this list yet")]
    NotReady,
    /// The back office refused a batch as conflicting with what it stored: the same sequence
    /// with other bytes. Never retried: a person must look.
    #[error("the back office refused batch {batch_id} as a conflict: {detail}")]
    Conflict {
        /// The batch.
        batch_id: String,
        /// The problem document's detail.
        detail: String,
    },
    /// Any other answer we did not expect.
    #[error("the back office answered {status}: {detail}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The problem document's detail, or the start of the body.
        detail: String,
    },
    /// An answer that breaks the protocol (a missing header, a wrong acknowledgement).
    #[error("the back office's answer is not usable: {0}")]
    BadAnswer(String),
    /// An answer (a list download, an acknowledgement) is larger than this validator accepts.
    #[error("the back office's answer is larger than {max} bytes")]
    TooLarge {
        /// The limit.
        max: u64,
    },
    /// A downloaded list was refused by the validator (signature, sequence, key); the list in
    /// use stays.
    #[error("the downloaded list was refused: {0}")]
    ListRefused(#[from] ListError),
    /// The journal failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The stored list files could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Another thread panicked while holding the validator.
    #[error("the validator's lock is poisoned")]
    Poisoned,
}

impl LinkError {
    /// Whether trying again later may succeed (the network, the server's load, a list not
    /// published yet). Conflicts, refused credentials and refused lists need a person.
    pub fn is_retryable(&self) -> bool {
        match self {
            LinkError::Unreachable(_) | LinkError::NotReady | LinkError::VersionUnknown(_) => true,
            LinkError::Status { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            _ => false,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> LinkError {
        let path = path.into();
        move |source| LinkError::Io { path, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_failures_are_retried() {
        assert!(LinkError::NotReady.is_retryable());
        assert!(LinkError::Status { status: 503, detail: String::new() }.is_retryable());
        assert!(LinkError::Status { status: 429, detail: String::new() }.is_retryable());
        assert!(!LinkError::Status { status: 422, detail: String::new() }.is_retryable());
        assert!(!LinkError::Refused { status: 401, detail: String::new() }.is_retryable());
        assert!(!LinkError::Conflict { batch_id: "b".into(), detail: String::new() }.is_retryable());
    }
}
