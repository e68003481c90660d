//! The validator's side: the list in use and the rules for replacing it. A file becomes
//! the list in use only if it parses, is of the held kind, is signed by a trusted key no
//! older than the current one, and is the next version (a full list newer than the current
//! one, or a delta from exactly the current one). On any refusal the current list stays.

use smartticket_crypto::keys::KeyVersion;

use super::error::ListError;
use super::format::{ListFile, ListHeader, ListKind, VerifiedList};
use super::signing::TrustedKeys;

/// A list a [`ListHolder`] can hold: decoded only from a verified file, updated by deltas.
pub trait ListContent: Sized {
    /// The kind written in the header of its files.
    const KIND: ListKind;
    /// Its delta.
    type Delta;

    /// Reads a verified full list.
    fn decode_full(list: &VerifiedList<'_>) -> Result<Self, ListError>;

    /// Reads a verified delta.
    fn decode_delta(list: &VerifiedList<'_>) -> Result<Self::Delta, ListError>;

    /// A new list: this one with `delta` applied.
    fn apply_delta(&self, delta: &Self::Delta) -> Result<Self, ListError>;

    /// Entries held.
    fn entry_count(&self) -> usize;
}

/// What the list in use is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstalledList {
    /// Greenlist or denylist.
    pub kind: ListKind,
    /// Its version.
    pub list_version: u64,
    /// The key version that signed the last file applied.
    pub key_version: KeyVersion,
    /// When the back office issued the last file applied, UTC seconds since the Unix epoch.
    pub issued_at_unix_s: u64,
    /// Entries held.
    pub entry_count: usize,
}

/// The list of one kind a validator decides from, and the only way to replace it.
#[derive(Debug, Clone)]
pub struct ListHolder<L> {
    current: Option<(InstalledList, L)>,
}

impl<L: ListContent> Default for ListHolder<L> {
    fn default() -> Self {
        ListHolder { current: None }
    }
}

impl<L: ListContent> ListHolder<L> {
    /// A holder with no list yet: it accepts only a full list.
    pub fn new() -> ListHolder<L> {
        ListHolder::default()
    }

    /// The list in use, if any.
    pub fn list(&self) -> Option<&L> {
        self.current.as_ref().map(|(_, list)| list)
    }

    /// What the list in use is, if any.
    pub fn installed(&self) -> Option<&InstalledList> {
        self.current.as_ref().map(|(installed, _)| installed)
    }

    /// Offers a list file: full or delta. On success it is the list in use; on error the
    /// list in use is unchanged and the error says why the file was refused. The new list
    /// is built beside the old one (for a moment both are in memory), so nothing about the
    /// old one changes until the new one is complete.
    pub fn offer(&mut self, file: &[u8], keys: &TrustedKeys) -> Result<&InstalledList, ListError> {
        let file = ListFile::parse(file)?;
        let header = *file.header();
        if header.kind != L::KIND {
            return Err(ListError::WrongKind { expected: L::KIND, offered: header.kind });
        }
        // The signature is checked before the sequence so that a sequence error always
        // describes a file the back office really issued.
        let verified = file.verify(keys)?;
        check_sequence(self.installed(), &header)?;
        let list = match &self.current {
            Some((_, current)) if header.is_delta() => current.apply_delta(&L::decode_delta(&verified)?)?,
            _ => L::decode_full(&verified)?,
        };
        let installed = InstalledList {
            kind: header.kind,
            list_version: header.list_version,
            key_version: header.key_version,
            issued_at_unix_s: header.issued_at_unix_s,
            entry_count: list.entry_count(),
        };
        let (installed, _) = self.current.insert((installed, list));
        Ok(installed)
    }
}

/// Whether an authentic file of the right kind may replace the list in use.
pub fn check_sequence(current: Option<&InstalledList>, offered: &ListHeader) -> Result<(), ListError> {
    let Some(current) = current else {
        return if offered.is_delta() { Err(ListError::NoBaseList { base: offered.base_version }) } else { Ok(()) };
    };
    if offered.list_version == current.list_version {
        return Err(ListError::Replayed(offered.list_version));
    }
    if offered.list_version < current.list_version {
        return Err(ListError::Downgrade { current: current.list_version, offered: offered.list_version });
    }
    if offered.key_version < current.key_version {
        return Err(ListError::KeyVersionRolledBack { current: current.key_version, offered: offered.key_version });
    }
    if offered.is_delta() && offered.base_version != current.list_version {
        return Err(ListError::DeltaBaseMismatch { current: current.list_version, base: offered.base_version });
    }
    Ok(())
}
