//! The greenlist (DESIGN §4, KIDSOK 2.1): for every token medium its current and future
//! coupons. In memory it is three flat arrays (sorted keys, coupon offsets, coupons), the
//! same layout as the file's sections, so a lookup is one binary search and two reads
//! with no allocation, and decoding is a linear copy.

use std::cmp::Ordering;

use super::coupon::Coupon;
use super::delta::{Delta, Entries, MergeStep, merge};
use super::error::{BuildError, ListError};
use super::format::{
    ENTRY_BYTES, LIST_COUPONS_MAX, LIST_ENTRIES_MAX, ListHeader, ListKind, MEDIUM_COUPONS_MAX, VerifiedList,
    check_ascending, check_versions, malformed, read_key, seal,
};
use super::holder::ListContent;
use super::key::{MEDIUM_KEY_BYTES, MediumKey};
use super::signing::ListSigner;

/// The coupons of every listed medium. Invariants: keys strictly ascending; every medium
/// has 1 to [`MEDIUM_COUPONS_MAX`] coupons, each passing [`Coupon::check`]; the counts are
/// within [`LIST_ENTRIES_MAX`] and [`LIST_COUPONS_MAX`].
#[derive(Clone, PartialEq, Eq)]
pub struct Greenlist {
    keys: Vec<MediumKey>,
    /// `keys.len() + 1` offsets into `coupons`: medium `i` has `coupons[offsets[i]..offsets[i + 1]]`.
    /// `u32` rather than `usize` halves them; [`LIST_COUPONS_MAX`] fits.
    coupon_offsets: Vec<u32>,
    coupons: Vec<Coupon>,
}

impl Default for Greenlist {
    fn default() -> Greenlist {
        Greenlist { keys: Vec::new(), coupon_offsets: vec![0], coupons: Vec::new() }
    }
}

impl std::fmt::Debug for Greenlist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Greenlist").field("entries", &self.len()).field("coupons", &self.coupon_count()).finish()
    }
}

impl Greenlist {
    /// An empty greenlist.
    pub fn new() -> Greenlist {
        Greenlist::default()
    }

    /// Builds a greenlist from media and their coupons, in any order. A medium given more
    /// than once gets the coupons of every mention, with exact duplicates dropped; a medium
    /// without a coupon is not listed. A medium's coupons are sorted by start of validity.
    pub fn build<I, C>(entries: I) -> Result<Greenlist, BuildError>
    where
        I: IntoIterator<Item = (MediumKey, C)>,
        C: AsRef<[Coupon]>,
    {
        let mut pairs: Vec<(MediumKey, Coupon)> = Vec::new();
        for (key, coupons) in entries {
            for coupon in coupons.as_ref() {
                coupon.check().map_err(|reason| BuildError::InvalidCoupon { key, reason })?;
                // Refused before pushing, so the input cannot grow memory without bound.
                if pairs.len() >= LIST_COUPONS_MAX as usize {
                    return Err(BuildError::LimitExceeded {
                        what: "coupons",
                        count: pairs.len() as u64 + 1,
                        max: u64::from(LIST_COUPONS_MAX),
                    });
                }
                pairs.push((key, *coupon));
            }
        }
        pairs.sort_unstable();
        pairs.dedup();
        let entry_count = pairs.chunk_by(|a, b| a.0 == b.0).count();
        if entry_count > LIST_ENTRIES_MAX as usize {
            return Err(BuildError::LimitExceeded {
                what: "entries",
                count: entry_count as u64,
                max: u64::from(LIST_ENTRIES_MAX),
            });
        }
        let mut list = Greenlist::with_capacity(entry_count, pairs.len());
        for group in pairs.chunk_by(|a, b| a.0 == b.0) {
            let Some((key, _)) = group.first() else { continue };
            if group.len() > usize::from(MEDIUM_COUPONS_MAX) {
                return Err(BuildError::TooManyCoupons {
                    key: *key,
                    count: group.len(),
                    max: usize::from(MEDIUM_COUPONS_MAX),
                });
            }
            list.push_entry(*key, group.iter().map(|(_, coupon)| *coupon));
        }
        list.assert_invariants();
        Ok(list)
    }

    /// The coupons of `key`, sorted by start of validity; empty if it is not listed.
    pub fn lookup(&self, key: &MediumKey) -> &[Coupon] {
        match self.keys.binary_search(key) {
            Ok(index) => self.coupons_of(index),
            Err(_) => &[],
        }
    }

    /// Media listed.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no medium is listed.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Coupons of all media.
    pub fn coupon_count(&self) -> usize {
        self.coupons.len()
    }

    /// Every medium with its coupons, in key order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&MediumKey, &[Coupon])> + '_ {
        self.keys.iter().enumerate().map(|(index, key)| (key, self.coupons_of(index)))
    }

    /// Bytes of memory this list holds: its three arrays at their capacities.
    pub fn resident_bytes(&self) -> usize {
        std::mem::size_of::<Greenlist>()
            + self.keys.capacity() * std::mem::size_of::<MediumKey>()
            + self.coupon_offsets.capacity() * std::mem::size_of::<u32>()
            + self.coupons.capacity() * std::mem::size_of::<Coupon>()
    }

    /// The signed full list file of this greenlist as version `list_version`.
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

    /// This list with `delta` applied. Checks that the delta fits (every removed medium is
    /// listed) and that the result is within the limits before building it; `self` is left
    /// as it is either way.
    pub fn apply(&self, delta: &GreenlistDelta) -> Result<Greenlist, ListError> {
        let (entry_count, coupon_count) = self.size_after(delta)?;
        let mut out = Greenlist::with_capacity(entry_count, coupon_count);
        merge(&self.keys, &delta.removals, &delta.updates.keys, |step| match step {
            MergeStep::Keep(range) => out.extend_from(self, range.start, range.end),
            MergeStep::Set(index) => {
                if let Some(key) = delta.updates.keys.get(index) {
                    out.push_entry(*key, delta.updates.coupons_of(index).iter().copied());
                }
            }
        });
        // Pair assertion with the sizing pass.
        assert_eq!((out.len(), out.coupon_count()), (entry_count, coupon_count));
        out.assert_invariants();
        Ok(out)
    }

    /// Entries and coupons after `delta`, refusing a delta that removes an unlisted medium.
    fn size_after(&self, delta: &GreenlistDelta) -> Result<(usize, usize), ListError> {
        let mut entry_count = self.len();
        let mut coupon_count = self.coupon_count();
        for key in &delta.removals {
            let index = self.keys.binary_search(key).map_err(|_| ListError::DeltaInconsistent {
                reason: "it removes a medium the list does not hold",
                key: *key,
            })?;
            entry_count -= 1;
            coupon_count -= self.coupons_of(index).len();
        }
        for (key, coupons) in delta.updates.iter() {
            match self.keys.binary_search(key) {
                Ok(index) => coupon_count -= self.coupons_of(index).len(),
                Err(_) => entry_count += 1,
            }
            coupon_count += coupons.len();
        }
        if entry_count > LIST_ENTRIES_MAX as usize {
            return Err(ListError::LimitExceeded {
                what: "entries after the delta",
                count: entry_count as u64,
                max: u64::from(LIST_ENTRIES_MAX),
            });
        }
        if coupon_count > LIST_COUPONS_MAX as usize {
            return Err(ListError::LimitExceeded {
                what: "coupons after the delta",
                count: coupon_count as u64,
                max: u64::from(LIST_COUPONS_MAX),
            });
        }
        Ok((entry_count, coupon_count))
    }

    fn with_capacity(entry_count: usize, coupon_count: usize) -> Greenlist {
        let mut coupon_offsets = Vec::with_capacity(entry_count + 1);
        coupon_offsets.push(0);
        Greenlist { keys: Vec::with_capacity(entry_count), coupon_offsets, coupons: Vec::with_capacity(coupon_count) }
    }

    /// Appends a medium after every listed one.
    fn push_entry(&mut self, key: MediumKey, coupons: impl Iterator<Item = Coupon>) {
        assert!(self.keys.last() < Some(&key), "greenlist keys must be pushed in ascending order");
        let before = self.coupons.len();
        self.coupons.extend(coupons);
        let count = self.coupons.len() - before;
        assert!((1..=usize::from(MEDIUM_COUPONS_MAX)).contains(&count));
        self.keys.push(key);
        self.coupon_offsets.push(self.coupons.len() as u32);
    }

    /// Appends entries `start..end` of `other`, which all sort after this list's.
    fn extend_from(&mut self, other: &Greenlist, start: usize, end: usize) {
        assert!(start <= end && end <= other.len());
        if start == end {
            return;
        }
        let keys = other.keys.get(start..end).unwrap_or_default();
        let offsets = other.coupon_offsets.get(start..=end).unwrap_or_default();
        let (Some(first), Some(last)) = (offsets.first(), offsets.last()) else { return };
        assert!(self.keys.last() < keys.first(), "greenlist runs must be appended in ascending order");
        let base = self.coupons.len() as u32;
        self.keys.extend_from_slice(keys);
        self.coupons.extend_from_slice(other.coupons.get(*first as usize..*last as usize).unwrap_or_default());
        // Offsets are ascending, so `offset - first` never underflows.
        self.coupon_offsets.extend(offsets.iter().skip(1).map(|offset| offset - first + base));
    }

    fn coupons_of(&self, index: usize) -> &[Coupon] {
        let start = self.coupon_offsets.get(index).copied().unwrap_or(0) as usize;
        let end = self.coupon_offsets.get(index + 1).copied().unwrap_or(0) as usize;
        self.coupons.get(start..end).unwrap_or_default()
    }

    /// Cheap structural invariants, checked after every construction.
    fn assert_invariants(&self) {
        assert_eq!(self.coupon_offsets.len(), self.keys.len() + 1);
        assert_eq!(self.coupon_offsets.first(), Some(&0));
        assert_eq!(self.coupon_offsets.last().map(|last| *last as usize), Some(self.coupons.len()));
        assert!(self.keys.len() <= LIST_ENTRIES_MAX as usize && self.coupons.len() <= LIST_COUPONS_MAX as usize);
        debug_assert!(self.keys.windows(2).all(|pair| pair.first() < pair.last()));
        debug_assert!(self.coupon_offsets.windows(2).all(|pair| pair.first() < pair.last()));
    }
}

/// Splits an entry record into its key and its value byte.
pub(crate) fn split_entry(record: &[u8; ENTRY_BYTES]) -> (&[u8; MEDIUM_KEY_BYTES], u8) {
    let [key @ .., value] = record;
    (key, *value)
}

/// A count for the header, refused above its limit.
pub(crate) fn count_u32(what: &'static str, count: usize, max: u32) -> Result<u32, BuildError> {
    match u32::try_from(count) {
        Ok(count) if count <= max => Ok(count),
        _ => Err(BuildError::LimitExceeded { what, count: count as u64, max: u64::from(max) }),
    }
}

impl Entries for Greenlist {
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
            kind: ListKind::Greenlist,
            key_version: signer.key_version(),
            list_version,
            base_version,
            issued_at_unix_s,
            entry_count: count_u32("entries", self.len(), LIST_ENTRIES_MAX)?,
            removal_count: count_u32("removals", removal_count, LIST_ENTRIES_MAX)?,
            coupon_count: count_u32("coupons", self.coupon_count(), LIST_COUPONS_MAX)?,
        })
    }

    /// Writes the entries section, then the coupons section.
    fn write_entries(&self, out: &mut Vec<u8>) {
        for (key, coupons) in self.iter() {
            out.extend_from_slice(key.as_bytes());
            // push_entry keeps every count within 1..=MEDIUM_COUPONS_MAX.
            out.push(coupons.len() as u8);
        }
        for coupon in &self.coupons {
            out.extend_from_slice(&coupon.to_bytes());
        }
    }

    /// Reads the entries and coupons sections of a verified file.
    fn decode_entries(list: &VerifiedList<'_>) -> Result<Greenlist, ListError> {
        let (entries, coupons) = (list.entries(), list.coupons());
        let mut out = Greenlist::with_capacity(entries.len(), coupons.len());
        let mut coupon_records = coupons.iter().enumerate();
        for (index, record) in entries.iter().enumerate() {
            let (key, count) = split_entry(record);
            let key = read_key("entries", index, key)?;
            check_ascending("entries", index, out.keys.last(), &key)?;
            if count == 0 || count > MEDIUM_COUPONS_MAX {
                return Err(malformed("entries", index, "coupon count is not 1 to 16"));
            }
            for _ in 0..count {
                let (coupon_index, bytes) = coupon_records
                    .next()
                    .ok_or_else(|| malformed("entries", index, "more coupons announced than the file holds"))?;
                let coupon = Coupon::from_bytes(bytes).map_err(|reason| malformed("coupons", coupon_index, reason))?;
                out.coupons.push(coupon);
            }
            out.keys.push(key);
            out.coupon_offsets.push(out.coupons.len() as u32);
        }
        if let Some((coupon_index, _)) = coupon_records.next() {
            return Err(malformed("coupons", coupon_index, "coupon belongs to no entry"));
        }
        out.assert_invariants();
        Ok(out)
    }
}

/// Changes from one greenlist version to the next.
pub type GreenlistDelta = Delta<Greenlist>;

impl GreenlistDelta {
    /// The delta that turns `old` into `new`.
    pub fn between(old: &Greenlist, new: &Greenlist) -> GreenlistDelta {
        let mut delta = GreenlistDelta::default();
        let mut olds = old.iter().peekable();
        let mut news = new.iter().peekable();
        loop {
            let order = match (olds.peek(), news.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some((old_key, _)), Some((new_key, _))) => old_key.cmp(new_key),
            };
            match order {
                Ordering::Less => delta.removals.extend(olds.next().map(|(key, _)| *key)),
                Ordering::Greater => {
                    if let Some((key, coupons)) = news.next() {
                        delta.updates.push_entry(*key, coupons.iter().copied());
                    }
                }
                Ordering::Equal => {
                    if let (Some((_, old_coupons)), Some((key, new_coupons))) = (olds.next(), news.next())
                        && old_coupons != new_coupons
                    {
                        delta.updates.push_entry(*key, new_coupons.iter().copied());
                    }
                }
            }
        }
        delta.updates.assert_invariants();
        delta
    }
}

impl ListContent for Greenlist {
    const KIND: ListKind = ListKind::Greenlist;
    type Delta = GreenlistDelta;

    fn decode_full(list: &VerifiedList<'_>) -> Result<Greenlist, ListError> {
        Greenlist::decode_entries(list)
    }

    fn decode_delta(list: &VerifiedList<'_>) -> Result<GreenlistDelta, ListError> {
        GreenlistDelta::decode(list)
    }

    fn apply_delta(&self, delta: &GreenlistDelta) -> Result<Greenlist, ListError> {
        self.apply(delta)
    }

    fn entry_count(&self) -> usize {
        self.len()
    }
}
