//! The denylist (DESIGN §4): blocked cards (by number or UID) and tokens, each with why.
//! The validator checks it before anything else; in memory it is sorted keys beside their
//! reasons, searched in place.

use super::delta::{Delta, Entries, MergeStep, merge};
use super::error::{BuildError, ListError};
use super::format::{
    LIST_ENTRIES_MAX, ListHeader, ListKind, VerifiedList, check_ascending, check_versions, malformed, read_key, seal,
};
use super::greenlist::{count_u32, split_entry};
use super::holder::ListContent;
use super::key::MediumKey;
use super::signing::ListSigner;

/// Why a medium is blocked. The byte values are part of the file format; lower is more
/// serious, and a medium listed for several reasons keeps the most serious.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum DenyReason {
    /// Used fraudulently (a clone, a forged transaction): inspectors should act.
    Fraud = 1,
    /// Reported stolen.
    Stolen = 2,
    /// Reported lost.
    Lost = 3,
    /// Replaced by another medium (its coupons moved there).
    Replaced = 4,
    /// Blocked by staff for another reason.
    Other = 5,
}

impl DenyReason {
    fn from_byte(byte: u8) -> Option<DenyReason> {
        match byte {
            1 => Some(DenyReason::Fraud),
            2 => Some(DenyReason::Stolen),
            3 => Some(DenyReason::Lost),
            4 => Some(DenyReason::Replaced),
            5 => Some(DenyReason::Other),
            _ => None,
        }
    }
}

/// Blocked media. Invariants: keys strictly ascending, one reason per key, at most
/// [`LIST_ENTRIES_MAX`] entries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Denylist {
    keys: Vec<MediumKey>,
    reasons: Vec<DenyReason>,
}

impl Denylist {
    /// An empty denylist.
    pub fn new() -> Denylist {
        Denylist::default()
    }

    /// Builds a denylist from blocked media in any order; a medium given more than once
    /// keeps its most serious reason.
    pub fn build<I>(entries: I) -> Result<Denylist, BuildError>
    where
        I: IntoIterator<Item = (MediumKey, DenyReason)>,
    {
        let mut pairs: Vec<(MediumKey, DenyReason)> = Vec::new();
        for entry in entries {
            // Refused before pushing, so the input cannot grow memory without bound. Duplicates
            // count too: a correct caller has few.
            if pairs.len() >= LIST_ENTRIES_MAX as usize {
                return Err(BuildError::LimitExceeded {
                    what: "entries",
                    count: pairs.len() as u64 + 1,
                    max: u64::from(LIST_ENTRIES_MAX),
                });
            }
            pairs.push(entry);
        }
        // Sorting by (key, reason) puts the most serious reason of a key first, and dedup
        // keeps the first.
        pairs.sort_unstable();
        pairs.dedup_by_key(|(key, _)| *key);
        let mut list = Denylist { keys: Vec::with_capacity(pairs.len()), reasons: Vec::with_capacity(pairs.len()) };
        for (key, reason) in pairs {
            list.push_entry(key, reason);
        }
        list.assert_invariants();
        Ok(list)
    }

    /// Whether `key` is blocked.
    pub fn contains(&self, key: &MediumKey) -> bool {
        self.keys.binary_search(key).is_ok()
    }

    /// Why `key` is blocked, if it is.
    pub fn reason(&self, key: &MediumKey) -> Option<DenyReason> {
        self.keys.binary_search(key).ok().and_then(|index| self.reasons.get(index).copied())
    }

    /// Media listed.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no medium is listed.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Every blocked medium with its reason, in key order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&MediumKey, DenyReason)> + '_ {
        self.keys.iter().zip(self.reasons.iter().copied())
    }

    /// Bytes of memory this list holds: its two arrays at their capacities.
    pub fn resident_bytes(&self) -> usize {
        std::mem::size_of::<Denylist>()
            + self.keys.capacity() * std::mem::size_of::<MediumKey>()
            + self.reasons.capacity() * std::mem::size_of::<DenyReason>()
    }

    /// The signed full list file of this denylist as version `list_version`.
    pub fn encode_full(
        &self,
        list_version: u64,
        issued_at_unix_s: u64,
        signer: &dyn ListSigner,
    ) -> Result<Vec<u8>, BuildError> {
        check_versions(list_version, 0)?;
        let header = self.header(list_version, 0, 0, issued_at_unix_s, signer)?;
        seal(&header, |out| self.write_entries(out), signer)
    }

    /// This list with `delta` applied, refusing a delta that removes an unlisted medium;
    /// `self` is left as it is either way.
    pub fn apply(&self, delta: &DenylistDelta) -> Result<Denylist, ListError> {
        let entry_count = self.size_after(delta)?;
        let mut out = Denylist { keys: Vec::with_capacity(entry_count), reasons: Vec::with_capacity(entry_count) };
        merge(&self.keys, &delta.removals, &delta.updates.keys, |step| match step {
            MergeStep::Keep(range) => out.extend_from(self, range.start, range.end),
            MergeStep::Set(index) => {
                if let (Some(key), Some(reason)) = (delta.updates.keys.get(index), delta.updates.reasons.get(index)) {
                    out.push_entry(*key, *reason);
                }
            }
        });
        assert_eq!(out.len(), entry_count);
        out.assert_invariants();
        Ok(out)
    }

    fn size_after(&self, delta: &DenylistDelta) -> Result<usize, ListError> {
        let mut entry_count = self.len();
        for key in &delta.removals {
            if !self.contains(key) {
                return Err(ListError::DeltaInconsistent {
                    reason: "it removes a medium the list does not hold",
                    key: *key,
                });
            }
            entry_count -= 1;
        }
        entry_count += delta.updates.keys.iter().filter(|key| !self.contains(key)).count();
        if entry_count > LIST_ENTRIES_MAX as usize {
            return Err(ListError::LimitExceeded {
                what: "entries after the delta",
                count: entry_count as u64,
                max: u64::from(LIST_ENTRIES_MAX),
            });
        }
        Ok(entry_count)
    }

    fn push_entry(&mut self, key: MediumKey, reason: DenyReason) {
        assert!(self.keys.last() < Some(&key), "denylist keys must be pushed in ascending order");
        self.keys.push(key);
        self.reasons.push(reason);
    }

    fn extend_from(&mut self, other: &Denylist, start: usize, end: usize) {
        assert!(start <= end && end <= other.len());
        let keys = other.keys.get(start..end).unwrap_or_default();
        assert!(keys.is_empty() || self.keys.last() < keys.first(), "denylist runs must be appended in order");
        self.keys.extend_from_slice(keys);
        self.reasons.extend_from_slice(other.reasons.get(start..end).unwrap_or_default());
    }

    fn assert_invariants(&self) {
        assert_eq!(self.keys.len(), self.reasons.len());
        assert!(self.keys.len() <= LIST_ENTRIES_MAX as usize);
        debug_assert!(self.keys.windows(2).all(|pair| pair.first() < pair.last()));
    }
}

impl Entries for Denylist {
    fn keys(&self) -> &[MediumKey] {
        &self.keys
    }

    fn header(
        &self,
        list_version: u64,
        base_version: u64,
        removal_count: usize,
        issued_at_unix_s: u64,
        signer: &dyn ListSigner,
    ) -> Result<ListHeader, BuildError> {
        Ok(ListHeader {
            kind: ListKind::Denylist,
            key_version: signer.key_version(),
            list_version,
            base_version,
            issued_at_unix_s,
            entry_count: count_u32("entries", self.len(), LIST_ENTRIES_MAX)?,
            removal_count: count_u32("removals", removal_count, LIST_ENTRIES_MAX)?,
            coupon_count: 0,
        })
    }

    fn write_entries(&self, out: &mut Vec<u8>) {
        for (key, reason) in self.iter() {
            out.extend_from_slice(key.as_bytes());
            out.push(reason as u8);
        }
    }

    fn decode_entries(list: &VerifiedList<'_>) -> Result<Denylist, ListError> {
        let entries = list.entries();
        let mut out = Denylist { keys: Vec::with_capacity(entries.len()), reasons: Vec::with_capacity(entries.len()) };
        for (index, record) in entries.iter().enumerate() {
            let (key, reason) = split_entry(record);
            let key = read_key("entries", index, key)?;
            check_ascending("entries", index, out.keys.last(), &key)?;
            let reason = DenyReason::from_byte(reason).ok_or_else(|| malformed("entries", index, "unknown reason"))?;
            out.keys.push(key);
            out.reasons.push(reason);
        }
        out.assert_invariants();
        Ok(out)
    }
}

/// Changes from one denylist version to the next.
pub type DenylistDelta = Delta<Denylist>;

impl DenylistDelta {
    /// The delta that turns `old` into `new`.
    pub fn between(old: &Denylist, new: &Denylist) -> DenylistDelta {
        let mut delta = DenylistDelta::default();
        let mut olds = old.iter().peekable();
        let mut news = new.iter().peekable();
        loop {
            match (olds.peek(), news.peek()) {
                (None, None) => break,
                (Some((old_key, _)), Some((new_key, _))) if old_key == new_key => {
                    if let (Some((_, old_reason)), Some((key, new_reason))) = (olds.next(), news.next())
                        && old_reason != new_reason
                    {
                        delta.updates.push_entry(*key, new_reason);
                    }
                }
                (Some((old_key, _)), Some((new_key, _))) if old_key > new_key => {
                    if let Some((key, reason)) = news.next() {
                        delta.updates.push_entry(*key, reason);
                    }
                }
                (None, Some(_)) => {
                    if let Some((key, reason)) = news.next() {
                        delta.updates.push_entry(*key, reason);
                    }
                }
                (Some(_), _) => delta.removals.extend(olds.next().map(|(key, _)| *key)),
            }
        }
        delta.updates.assert_invariants();
        delta
    }
}

impl ListContent for Denylist {
    const KIND: ListKind = ListKind::Denylist;
    type Delta = DenylistDelta;

    fn decode_full(list: &VerifiedList<'_>) -> Result<Denylist, ListError> {
        Denylist::decode_entries(list)
    }

    fn decode_delta(list: &VerifiedList<'_>) -> Result<DenylistDelta, ListError> {
        DenylistDelta::decode(list)
    }

    fn apply_delta(&self, delta: &DenylistDelta) -> Result<Denylist, ListError> {
        self.apply(delta)
    }

    fn entry_count(&self) -> usize {
        self.len()
    }
}
