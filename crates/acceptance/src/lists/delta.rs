//! A delta between two versions of a list, whatever its kind: media removed, and media
//! whose entry is set. One type for both lists, since the removals section, the
//! disjointness rule and the signing are the same; only the entries differ ([`Entries`]).

use std::ops::Range;

use super::error::{BuildError, ListError};
use super::format::{
    LIST_ENTRIES_MAX, ListHeader, VerifiedList, check_disjoint, check_versions, decode_removals, malformed, seal,
};
use super::key::MediumKey;
use super::signing::ListSigner;

/// What a list kind contributes to a delta file: its keys, and its entry sections. Public
/// only to name it in [`Delta`]'s bounds; this module is private, so no one outside the
/// crate implements it.
pub trait Entries: Sized {
    /// The listed media, strictly ascending.
    fn keys(&self) -> &[MediumKey];

    /// The header of a file holding these entries and `removal_count` removals.
    fn header(
        &self,
        list_version: u64,
        base_version: u64,
        removal_count: usize,
        issued_at_unix_s: u64,
        signer: &dyn ListSigner,
    ) -> Result<ListHeader, BuildError>;

    /// Writes the entry sections.
    fn write_entries(&self, out: &mut Vec<u8>);

    /// Reads the entry sections of a verified file.
    fn decode_entries(list: &VerifiedList<'_>) -> Result<Self, ListError>;
}

/// Changes from one list version to the next: media removed, and media whose entry is set
/// (replaced or new). No medium is both.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Delta<L> {
    pub(crate) removals: Vec<MediumKey>,
    pub(crate) updates: L,
}

impl<L: Entries> Delta<L> {
    /// A delta removing `removals` (any order; duplicates dropped) and setting every medium
    /// of `updates`.
    pub fn new<R>(removals: R, updates: L) -> Result<Delta<L>, BuildError>
    where
        R: IntoIterator<Item = MediumKey>,
    {
        let mut removed = Vec::new();
        for key in removals {
            if removed.len() >= LIST_ENTRIES_MAX as usize {
                return Err(BuildError::LimitExceeded {
                    what: "removals",
                    count: removed.len() as u64 + 1,
                    max: u64::from(LIST_ENTRIES_MAX),
                });
            }
            removed.push(key);
        }
        removed.sort_unstable();
        removed.dedup();
        check_disjoint(&removed, updates.keys()).map_err(BuildError::RemovedAndUpdated)?;
        Ok(Delta { removals: removed, updates })
    }

    /// Media removed, ascending.
    pub fn removals(&self) -> &[MediumKey] {
        &self.removals
    }

    /// Media set.
    pub fn updates(&self) -> &L {
        &self.updates
    }

    /// Media changed.
    pub fn change_count(&self) -> usize {
        self.removals.len() + self.updates.keys().len()
    }

    /// The signed delta file from `base_version` to `list_version`.
    pub fn encode(
        &self,
        base_version: u64,
        list_version: u64,
        issued_at_unix_s: u64,
        signer: &dyn ListSigner,
    ) -> Result<Vec<u8>, BuildError> {
        if base_version == 0 {
            return Err(BuildError::Versions("a delta's base version is at least 1"));
        }
        check_versions(list_version, base_version)?;
        let header = self.updates.header(list_version, base_version, self.removals.len(), issued_at_unix_s, signer)?;
        seal(
            &header,
            |out| {
                for key in &self.removals {
                    out.extend_from_slice(key.as_bytes());
                }
                self.updates.write_entries(out);
            },
            signer,
        )
    }

    pub(crate) fn decode(list: &VerifiedList<'_>) -> Result<Delta<L>, ListError> {
        let removals = decode_removals(list.removals())?;
        let updates = L::decode_entries(list)?;
        if let Err(key) = check_disjoint(&removals, updates.keys()) {
            let index = removals.binary_search(&key).unwrap_or(0);
            return Err(malformed("removals", index, "medium both removed and updated"));
        }
        Ok(Delta { removals, updates })
    }
}

/// One step of applying a delta to a list, in key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MergeStep {
    /// Copy the list's entries in this range unchanged (possibly empty).
    Keep(Range<usize>),
    /// Take the delta's entry at this index: a new medium, or one replacing a listed one.
    Set(usize),
}

/// Walks a list's keys and a delta's removals and updated keys (each ascending; removals and
/// updates disjoint) in key order, for both list kinds: each run of unchanged entries is one
/// [`MergeStep::Keep`], a removed medium is skipped, an updated or new one is a
/// [`MergeStep::Set`]. The caller has checked that every removed medium is listed.
pub(crate) fn merge(
    listed: &[MediumKey],
    removals: &[MediumKey],
    updated: &[MediumKey],
    mut step: impl FnMut(MergeStep),
) {
    let (mut removal, mut update, mut rest) = (0_usize, 0_usize, 0_usize);
    loop {
        let (key, is_update) = match (removals.get(removal), updated.get(update)) {
            (None, None) => break,
            (Some(removed), None) => (*removed, false),
            (None, Some(key)) => (*key, true),
            (Some(removed), Some(key)) => {
                if removed < key {
                    (*removed, false)
                } else {
                    (*key, true)
                }
            }
        };
        let unchanged = listed.get(rest..).unwrap_or_default().partition_point(|listed| *listed < key);
        step(MergeStep::Keep(rest..rest + unchanged));
        rest += unchanged;
        // The listed entry is replaced or removed: either way it is not copied.
        if listed.get(rest) == Some(&key) {
            rest += 1;
        }
        if is_update {
            step(MergeStep::Set(update));
            update += 1;
        } else {
            removal += 1;
        }
    }
    step(MergeStep::Keep(rest..listed.len()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_copies_runs_skips_removals_and_takes_updates() {
        let key = |n: u64| MediumKey::card_number(n);
        let listed = [key(1), key(2), key(3), key(5), key(8)];
        let mut steps = Vec::new();
        merge(&listed, &[key(2), key(8)], &[key(3), key(4), key(9)], |step| steps.push(step));
        assert_eq!(
            steps,
            [
                MergeStep::Keep(0..1),
                MergeStep::Keep(2..2),
                MergeStep::Set(0),
                MergeStep::Keep(3..3),
                MergeStep::Set(1),
                MergeStep::Keep(3..4),
                MergeStep::Keep(5..5),
                MergeStep::Set(2),
                MergeStep::Keep(5..5),
            ]
        );
    }
}
