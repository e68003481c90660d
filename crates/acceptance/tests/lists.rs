//! Greenlists and denylists end to end: built and signed as the back office does, offered
//! to a validator's holder, and every way a file can be refused, each with its typed error
//! and the list in use left in place.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use smartticket_acceptance::lists::{
    BuildError, Coupon, CouponFlags, DenyReason, Denylist, DenylistDelta, Greenlist, GreenlistDelta, HEADER_BYTES,
    HsmSigner, KeySigner, LIST_ENTRIES_MAX, LIST_FILE_BYTES_MAX, LIST_FORMAT_VERSION, LIST_SIGNATURE_BYTES, ListError,
    ListFile, ListHolder, ListKind, MEDIUM_COUPONS_MAX, MediumKey, MediumKind, TrustedKeys,
};
use smartticket_crypto::hsm::soft::SoftHsm;
use smartticket_crypto::hsm::{Hsm, KeyAdmin};
use smartticket_crypto::keys::{KeyRef, KeyRole, KeyVersion};
use smartticket_crypto::sign::SigningKey;
use smartticket_crypto::token::PanToken;

const ISSUED_AT_UNIX_S: u64 = 1_790_000_000;
const V1: KeyVersion = KeyVersion::FIRST;

fn v(version: u8) -> KeyVersion {
    KeyVersion::new(version).unwrap()
}

fn signing_key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32]).unwrap()
}

fn trusted(keys: &[(KeyVersion, &SigningKey)]) -> TrustedKeys {
    let mut trusted = TrustedKeys::new();
    for (version, key) in keys {
        trusted.trust(*version, key.verifying_key()).unwrap();
    }
    trusted
}

fn token(n: u32) -> MediumKey {
    let mut bytes = [0x5a_u8; 16];
    bytes[..4].copy_from_slice(&n.to_be_bytes());
    MediumKey::bank_card(&PanToken(bytes))
}

fn coupon(product_code: u32, month: u64) -> Coupon {
    let start = 1_780_000_000 + month * 2_592_000;
    Coupon {
        valid_from_unix_s: start,
        valid_until_unix_s: start + 2_592_000,
        product_code,
        zones_bitmap: 0b11,
        photo_reference: 0,
        discount_code: 0,
        flags: CouponFlags::NONE,
    }
}

fn greenlist(media: u32) -> Greenlist {
    Greenlist::build((0..media).map(|n| (token(n), vec![coupon(n, 0), coupon(n, 1)]))).unwrap()
}

/// Replaces the signature by one over the altered header and payload, as a publisher with
/// the key (or a bug in ours) would: the file is authentic, so the structural checks decide.
fn resign(file: &mut Vec<u8>, key: &SigningKey) {
    file.truncate(file.len() - LIST_SIGNATURE_BYTES);
    let signature = key.sign(file);
    file.extend_from_slice(&signature.0);
}

/// A holder on version 1 of a 100-medium greenlist, and the file that made it so.
fn holder_on_version_1(key: &SigningKey, keys: &TrustedKeys) -> (ListHolder<Greenlist>, Vec<u8>) {
    let file = greenlist(100).encode_full(1, ISSUED_AT_UNIX_S, &KeySigner::new(key, V1)).unwrap();
    let mut holder = ListHolder::new();
    holder.offer(&file, keys).unwrap();
    (holder, file)
}

/// Offers `file`, expects `expected`, and checks version 1 is still in use and unchanged.
fn refused(holder: &mut ListHolder<Greenlist>, file: &[u8], keys: &TrustedKeys, expected: ListError) {
    let before = holder.list().cloned();
    assert_eq!(holder.offer(file, keys).map(|installed| installed.list_version), Err(expected));
    assert_eq!(holder.installed().map(|installed| installed.list_version), Some(1));
    assert_eq!(holder.list().cloned(), before);
}

#[test]
fn a_full_greenlist_round_trips_through_its_file() {
    let key = signing_key(1);
    let keys = trusted(&[(V1, &key)]);
    let built = greenlist(1000);
    let file = built.encode_full(7, ISSUED_AT_UNIX_S, &KeySigner::new(&key, V1)).unwrap();
    // Header, 18 bytes per entry, 32 per coupon, signature.
    assert_eq!(file.len(), HEADER_BYTES + 1000 * 18 + 2000 * 32 + LIST_SIGNATURE_BYTES);
    let mut holder = ListHolder::<Greenlist>::new();
    let installed = *holder.offer(&file, &keys).unwrap();
    assert_eq!((installed.kind, installed.list_version, installed.key_version), (ListKind::Greenlist, 7, V1));
    assert_eq!((installed.issued_at_unix_s, installed.entry_count), (ISSUED_AT_UNIX_S, 1000));
    let list = holder.list().unwrap();
    assert_eq!(list, &built);
    assert_eq!(list.lookup(&token(42)), &[coupon(42, 0), coupon(42, 1)]);
    assert!(list.lookup(&token(1000)).is_empty());
    assert!(list.lookup(&MediumKey::card_number(42)).is_empty());
}

#[test]
fn the_header_has_the_documented_layout() {
    let key = signing_key(1);
    let file = greenlist(3).encode_full(0x0102, 0x0a0b, &KeySigner::new(&key, v(9))).unwrap();
    let header: [u8; HEADER_BYTES] = file[..HEADER_BYTES].try_into().unwrap();
    assert_eq!(&header[0..4], b"STLS");
    assert_eq!(header[4..6], LIST_FORMAT_VERSION.to_le_bytes());
    assert_eq!(header[6], 1, "kind: greenlist");
    assert_eq!(header[7], 9, "key version");
    assert_eq!(header[8..16], 0x0102_u64.to_le_bytes());
    assert_eq!(header[16..24], 0_u64.to_le_bytes(), "base version: full");
    assert_eq!(header[24..32], 0x0a0b_u64.to_le_bytes());
    assert_eq!(header[32..36], 3_u32.to_le_bytes(), "entries");
    assert_eq!(header[36..40], 0_u32.to_le_bytes(), "removals");
    assert_eq!(header[40..44], 6_u32.to_le_bytes(), "coupons");
    assert_eq!(header[44..48], (3 * 18 + 6 * 32_u32).to_le_bytes(), "payload bytes");
    assert_eq!(header[48..64], [0; 16]);
    assert_eq!(&file[64..81], token(0).as_bytes());
    assert_eq!(file[81], 2, "coupons of the first entry");
    assert_eq!(file[64 + 3 * 18..64 + 3 * 18 + 32], coupon(0, 0).to_bytes());
    // FORMAT.md states the largest file.
    assert_eq!(LIST_FILE_BYTES_MAX, 1_660_944_512);
    // The signature covers header and payload.
    let signed = &file[..file.len() - LIST_SIGNATURE_BYTES];
    let signature = smartticket_crypto::sign::Signature(file[signed.len()..].try_into().unwrap());
    key.verifying_key().verify(signed, &signature).unwrap();
}

#[test]
fn a_greenlist_delta_turns_the_base_into_the_next_version() {
    let key = signing_key(1);
    let keys = trusted(&[(V1, &key)]);
    let signer = KeySigner::new(&key, V1);
    let (mut holder, _) = holder_on_version_1(&key, &keys);
    let old = holder.list().unwrap().clone();
    // Remove 0..10, change the coupons of 50, add 100..105.
    let new = Greenlist::build(
        (10..105).map(|n| (token(n), if n == 50 { vec![coupon(7, 3)] } else { vec![coupon(n, 0), coupon(n, 1)] })),
    )
    .unwrap();
    let delta = GreenlistDelta::between(&old, &new);
    assert_eq!(delta.removals().len(), 10);
    assert_eq!(delta.updates().len(), 6);
    let file = delta.encode(1, 2, ISSUED_AT_UNIX_S + 60, &signer).unwrap();
    let installed = *holder.offer(&file, &keys).unwrap();
    assert_eq!((installed.list_version, installed.entry_count), (2, 95));
    assert_eq!(holder.list().unwrap(), &new);
    assert_eq!(holder.list().unwrap().lookup(&token(50)), &[coupon(7, 3)]);
    assert!(holder.list().unwrap().lookup(&token(3)).is_empty());

    // The same changes stated directly give the same delta.
    let updates = Greenlist::build(
        (100..105).map(|n| (token(n), vec![coupon(n, 0), coupon(n, 1)])).chain([(token(50), vec![coupon(7, 3)])]),
    )
    .unwrap();
    assert_eq!(GreenlistDelta::new((0..10).rev().map(token), updates).unwrap(), delta);
}

#[test]
fn an_empty_delta_only_moves_the_version_on() {
    let key = signing_key(1);
    let keys = trusted(&[(V1, &key)]);
    let (mut holder, _) = holder_on_version_1(&key, &keys);
    let before = holder.list().unwrap().clone();
    let file = GreenlistDelta::default().encode(1, 2, ISSUED_AT_UNIX_S, &KeySigner::new(&key, V1)).unwrap();
    assert_eq!(holder.offer(&file, &keys).unwrap().list_version, 2);
    assert_eq!(holder.list().unwrap(), &before);
}

#[test]
fn a_denylist_round_trips_and_takes_deltas() {
    let key = signing_key(2);
    let keys = trusted(&[(V1, &key)]);
    let signer = KeySigner::new(&key, V1);
    let uid = MediumKey::card_uid(&[0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66]).unwrap();
    let phone = MediumKey::token(MediumKind::PhoneToken, &[3; 32]).unwrap();
    let old = Denylist::build([
        (MediumKey::card_number(1001), DenyReason::Lost),
        (uid, DenyReason::Stolen),
        (token(1), DenyReason::Lost),
        (token(1), DenyReason::Fraud),
    ])
    .unwrap();
    assert_eq!(old.len(), 3);
    assert_eq!(old.reason(&token(1)), Some(DenyReason::Fraud), "the most serious reason is kept");
    let mut holder = ListHolder::<Denylist>::new();
    holder.offer(&old.encode_full(1, ISSUED_AT_UNIX_S, &signer).unwrap(), &keys).unwrap();
    assert_eq!(holder.list().unwrap(), &old);
    assert!(holder.list().unwrap().contains(&uid));
    assert!(!holder.list().unwrap().contains(&phone));

    let new = Denylist::build([(uid, DenyReason::Fraud), (token(1), DenyReason::Fraud), (phone, DenyReason::Replaced)])
        .unwrap();
    let delta = DenylistDelta::between(&old, &new);
    assert_eq!(delta.removals(), &[MediumKey::card_number(1001)]);
    assert_eq!(delta.updates().len(), 2);
    assert_eq!(delta.change_count(), 3);
    holder.offer(&delta.encode(1, 2, ISSUED_AT_UNIX_S, &signer).unwrap(), &keys).unwrap();
    assert_eq!(holder.list().unwrap(), &new);
    assert_eq!(holder.list().unwrap().reason(&phone), Some(DenyReason::Replaced));
    assert!(!holder.list().unwrap().contains(&MediumKey::card_number(1001)));
}

#[test]
fn lists_signed_in_an_hsm_verify_with_the_keys_it_publishes() {
    let mut hsm = SoftHsm::generate(&[KeyRole::ListSigning, KeyRole::Debit]).unwrap();
    let list = greenlist(10);
    let file = list.encode_full(1, ISSUED_AT_UNIX_S, &HsmSigner::active(&hsm).unwrap()).unwrap();
    let mut holder = ListHolder::<Greenlist>::new();
    holder.offer(&file, &TrustedKeys::from_hsm(&hsm).unwrap()).unwrap();

    // Rotation: version 2 signs from now on; the validator learns both.
    hsm.rotate(KeyRole::ListSigning).unwrap();
    let keys = TrustedKeys::from_hsm(&hsm).unwrap();
    let signer_v2 = HsmSigner::active(&hsm).unwrap();
    let signer_v1 = HsmSigner::new(&hsm, KeyRef { role: KeyRole::ListSigning, version: V1 }).unwrap();
    let file_v2 = list.encode_full(2, ISSUED_AT_UNIX_S, &signer_v2).unwrap();
    assert_eq!(holder.offer(&file_v2, &keys).unwrap().key_version, v(2));
    // The old key is still trusted, but may not sign after the new one has.
    let file_v1 = list.encode_full(3, ISSUED_AT_UNIX_S, &signer_v1).unwrap();
    assert_eq!(
        holder.offer(&file_v1, &keys).unwrap_err(),
        ListError::KeyVersionRolledBack { current: v(2), offered: V1 }
    );
    assert_eq!(holder.installed().unwrap().list_version, 2);

    let debit = hsm.active(KeyRole::Debit).unwrap();
    assert!(matches!(HsmSigner::new(&hsm, debit), Err(BuildError::NotListSigningKey(_))));
}

#[test]
fn damaged_files_are_refused_and_the_list_in_use_stays() {
    let key = signing_key(1);
    let keys = trusted(&[(V1, &key)]);
    let (mut holder, _) = holder_on_version_1(&key, &keys);
    let file = greenlist(20).encode_full(2, ISSUED_AT_UNIX_S, &KeySigner::new(&key, V1)).unwrap();
    let length = file.len() as u64;

    // Corrupted: one byte of the payload.
    let mut corrupted = file.clone();
    corrupted[HEADER_BYTES + 100] ^= 0x01;
    refused(&mut holder, &corrupted, &keys, ListError::SignatureInvalid(V1));
    // Corrupted: one byte of the signature.
    let mut corrupted = file.clone();
    *corrupted.last_mut().unwrap() ^= 0x80;
    refused(&mut holder, &corrupted, &keys, ListError::SignatureInvalid(V1));
    // Truncated, at every depth.
    refused(
        &mut holder,
        &file[..file.len() - 1],
        &keys,
        ListError::Truncated { bytes_expected: length, bytes: length - 1 },
    );
    refused(&mut holder, &file[..HEADER_BYTES], &keys, ListError::Truncated { bytes_expected: length, bytes: 64 });
    refused(&mut holder, &file[..10], &keys, ListError::Truncated { bytes_expected: 128, bytes: 10 });
    refused(&mut holder, &[], &keys, ListError::Truncated { bytes_expected: 128, bytes: 0 });
    // Extended.
    let mut longer = file.clone();
    longer.push(0);
    refused(&mut holder, &longer, &keys, ListError::TrailingBytes { bytes_expected: length, bytes: length + 1 });
    // Not a list.
    let mut other = file.clone();
    other[..4].copy_from_slice(b"PK\x03\x04");
    refused(&mut holder, &other, &keys, ListError::BadMagic(*b"PK\x03\x04"));
}

/// A change to a file's bytes.
type Alteration = dyn Fn(&mut Vec<u8>);

#[test]
fn authentic_but_malformed_files_are_refused() {
    let key = signing_key(1);
    let keys = trusted(&[(V1, &key)]);
    let (mut holder, _) = holder_on_version_1(&key, &keys);
    let file = greenlist(20).encode_full(2, ISSUED_AT_UNIX_S, &KeySigner::new(&key, V1)).unwrap();
    let entry = |index: usize| HEADER_BYTES + index * 18;
    let coupon_at = |index: usize| HEADER_BYTES + 20 * 18 + index * 32;
    let cases: Vec<(Box<Alteration>, ListError)> = vec![
        (
            Box::new(|f| f[4..6].copy_from_slice(&2_u16.to_le_bytes())),
            ListError::UnsupportedFormatVersion { offered: 2, supported: 1 },
        ),
        (Box::new(|f| f[6] = 9), ListError::UnknownListKind(9)),
        (Box::new(|f| f[7] = 0), ListError::MalformedHeader("key version 0")),
        (Box::new(|f| f[8..16].fill(0)), ListError::MalformedHeader("list version 0")),
        (
            Box::new(|f| f[16..24].copy_from_slice(&2_u64.to_le_bytes())),
            ListError::MalformedHeader("delta base version is not below the list version"),
        ),
        (
            Box::new(|f| f[32..36].copy_from_slice(&(LIST_ENTRIES_MAX + 1).to_le_bytes())),
            ListError::LimitExceeded { what: "entries", count: u64::from(LIST_ENTRIES_MAX) + 1, max: 1 << 24 },
        ),
        (
            Box::new(|f| f[36..40].copy_from_slice(&1_u32.to_le_bytes())),
            ListError::MalformedHeader("a full list has removals"),
        ),
        (
            Box::new(|f| f[40..44].copy_from_slice(&(20 * 17_u32).to_le_bytes())),
            ListError::MalformedHeader("coupon count does not fit the entry count"),
        ),
        (
            Box::new(|f| f[44..48].copy_from_slice(&1_u32.to_le_bytes())),
            ListError::MalformedHeader("payload length does not match the counts"),
        ),
        (Box::new(|f| f[63] = 1), ListError::MalformedHeader("reserved bytes are not zero")),
        (
            Box::new(move |f| f.copy_within(entry(3)..entry(3) + 17, entry(4))),
            ListError::MalformedRecord { section: "entries", index: 4, reason: "keys are not strictly ascending" },
        ),
        (
            Box::new(move |f| f[entry(5)] = 0),
            ListError::MalformedRecord { section: "entries", index: 5, reason: "unknown medium kind" },
        ),
        (
            Box::new(move |f| f[entry(6) + 17] = 0),
            ListError::MalformedRecord { section: "entries", index: 6, reason: "coupon count is not 1 to 16" },
        ),
        (
            Box::new(move |f| f[entry(19) + 17] = 3),
            ListError::MalformedRecord {
                section: "entries",
                index: 19,
                reason: "more coupons announced than the file holds",
            },
        ),
        (
            Box::new(move |f| f[entry(19) + 17] = 1),
            ListError::MalformedRecord { section: "coupons", index: 39, reason: "coupon belongs to no entry" },
        ),
        (
            Box::new(move |f| f[coupon_at(7) + 4..coupon_at(7) + 8].fill(0)),
            ListError::MalformedRecord { section: "coupons", index: 7, reason: "coupon covers no zone" },
        ),
    ];
    for (alter, expected) in cases {
        let mut altered = file.clone();
        alter(&mut altered);
        resign(&mut altered, &key);
        refused(&mut holder, &altered, &keys, expected);
    }
}

#[test]
fn replayed_downgraded_and_out_of_sequence_files_are_refused() {
    let key = signing_key(1);
    let keys = trusted(&[(V1, &key)]);
    let signer = KeySigner::new(&key, V1);
    let (mut holder, version_1) = holder_on_version_1(&key, &keys);
    let list = holder.list().unwrap().clone();
    let version_2 = list.encode_full(2, ISSUED_AT_UNIX_S, &signer).unwrap();
    // Replayed: the file in use, offered again.
    refused(&mut holder, &version_1, &keys, ListError::Replayed(1));
    // A delta for another base.
    let delta = GreenlistDelta::default();
    refused(
        &mut holder,
        &delta.encode(5, 6, ISSUED_AT_UNIX_S, &signer).unwrap(),
        &keys,
        ListError::DeltaBaseMismatch { current: 1, base: 5 },
    );
    // A delta whose base version matches, but built from another list.
    let foreign = GreenlistDelta::new([token(5000)], Greenlist::new()).unwrap();
    refused(
        &mut holder,
        &foreign.encode(1, 2, ISSUED_AT_UNIX_S, &signer).unwrap(),
        &keys,
        ListError::DeltaInconsistent { reason: "it removes a medium the list does not hold", key: token(5000) },
    );
    // Downgraded: version 2 in use, version 1 offered again.
    holder.offer(&version_2, &keys).unwrap();
    assert_eq!(holder.offer(&version_1, &keys).unwrap_err(), ListError::Downgrade { current: 2, offered: 1 });
    assert_eq!(holder.offer(&version_2, &keys).unwrap_err(), ListError::Replayed(2));
    assert_eq!(holder.installed().unwrap().list_version, 2);
    // A newer full list is accepted whatever came before (resynchronisation).
    assert_eq!(holder.offer(&list.encode_full(9, ISSUED_AT_UNIX_S, &signer).unwrap(), &keys).unwrap().list_version, 9);

    // A delta before any full list.
    let mut empty = ListHolder::<Greenlist>::new();
    assert_eq!(
        empty.offer(&delta.encode(1, 2, ISSUED_AT_UNIX_S, &signer).unwrap(), &keys).unwrap_err(),
        ListError::NoBaseList { base: 1 }
    );
    assert!(empty.list().is_none());
}

#[test]
fn files_under_unknown_or_retired_keys_and_of_the_wrong_kind_are_refused() {
    let key = signing_key(1);
    let stranger = signing_key(3);
    let mut keys = trusted(&[(V1, &key)]);
    let (mut holder, _) = holder_on_version_1(&key, &keys);
    let list = holder.list().unwrap().clone();
    // A key version the validator does not know.
    let file = list.encode_full(2, ISSUED_AT_UNIX_S, &KeySigner::new(&key, v(2))).unwrap();
    refused(&mut holder, &file, &keys, ListError::UnknownKeyVersion(v(2)));
    // A known version, but another key: the signature does not verify.
    let file = list.encode_full(2, ISSUED_AT_UNIX_S, &KeySigner::new(&stranger, V1)).unwrap();
    refused(&mut holder, &file, &keys, ListError::SignatureInvalid(V1));
    // A denylist offered to the greenlist holder.
    let file = Denylist::new().encode_full(2, ISSUED_AT_UNIX_S, &KeySigner::new(&key, V1)).unwrap();
    refused(
        &mut holder,
        &file,
        &keys,
        ListError::WrongKind { expected: ListKind::Greenlist, offered: ListKind::Denylist },
    );
    // A retired version: refused by name, and never trusted again.
    keys.trust(v(2), stranger.verifying_key()).unwrap();
    let file = list.encode_full(2, ISSUED_AT_UNIX_S, &KeySigner::new(&key, V1)).unwrap();
    keys.retire(V1);
    refused(&mut holder, &file, &keys, ListError::KeyRetired(V1));
    assert_eq!(keys.trust(V1, key.verifying_key()), Err(ListError::KeyRetired(V1)));
    assert_eq!(keys.trust(v(2), key.verifying_key()), Err(ListError::KeyConflict(v(2))));
    let file = list.encode_full(2, ISSUED_AT_UNIX_S, &KeySigner::new(&stranger, v(2))).unwrap();
    assert_eq!(holder.offer(&file, &keys).unwrap().key_version, v(2));
}

#[test]
fn malformed_denylist_and_delta_records_are_refused() {
    let key = signing_key(1);
    let keys = trusted(&[(V1, &key)]);
    let signer = KeySigner::new(&key, V1);
    let base = Denylist::build((0..10).map(|n| (token(n), DenyReason::Lost))).unwrap();
    let mut holder = ListHolder::<Denylist>::new();
    holder.offer(&base.encode_full(1, ISSUED_AT_UNIX_S, &signer).unwrap(), &keys).unwrap();

    let mut file = base.encode_full(2, ISSUED_AT_UNIX_S, &signer).unwrap();
    file[HEADER_BYTES + 2 * 18 + 17] = 6;
    resign(&mut file, &key);
    assert_eq!(
        holder.offer(&file, &keys).unwrap_err(),
        ListError::MalformedRecord { section: "entries", index: 2, reason: "unknown reason" }
    );

    // A delta removing and updating the same medium (removal 0 is token(3), update 0 token(20)).
    let delta = DenylistDelta::new([token(3)], Denylist::build([(token(20), DenyReason::Lost)]).unwrap()).unwrap();
    let mut file = delta.encode(1, 2, ISSUED_AT_UNIX_S, &signer).unwrap();
    file.copy_within(HEADER_BYTES..HEADER_BYTES + 17, HEADER_BYTES + 17);
    resign(&mut file, &key);
    assert_eq!(
        holder.offer(&file, &keys).unwrap_err(),
        ListError::MalformedRecord { section: "removals", index: 0, reason: "medium both removed and updated" }
    );
    // Removals out of order.
    let delta = DenylistDelta::new([token(3), token(4)], Denylist::new()).unwrap();
    let mut file = delta.encode(1, 2, ISSUED_AT_UNIX_S, &signer).unwrap();
    file.copy_within(HEADER_BYTES..HEADER_BYTES + 17, HEADER_BYTES + 17);
    resign(&mut file, &key);
    assert_eq!(
        holder.offer(&file, &keys).unwrap_err(),
        ListError::MalformedRecord { section: "removals", index: 1, reason: "keys are not strictly ascending" }
    );
    // A denylist header with coupons.
    let mut file = base.encode_full(2, ISSUED_AT_UNIX_S, &signer).unwrap();
    file[40] = 1;
    resign(&mut file, &key);
    assert_eq!(holder.offer(&file, &keys).unwrap_err(), ListError::MalformedHeader("a denylist has coupons"));
    assert_eq!(holder.installed().unwrap().list_version, 1);
    assert_eq!(holder.list().unwrap(), &base);
}

#[test]
fn builders_refuse_what_no_validator_would_accept() {
    let key = signing_key(1);
    let signer = KeySigner::new(&key, V1);
    let too_many: Vec<Coupon> = (0..=u64::from(MEDIUM_COUPONS_MAX)).map(|month| coupon(1, month)).collect();
    assert!(matches!(
        Greenlist::build([(token(1), too_many)]),
        Err(BuildError::TooManyCoupons { count: 17, max: 16, .. })
    ));
    let backwards = Coupon { valid_until_unix_s: 0, ..coupon(1, 0) };
    assert!(matches!(
        Greenlist::build([(token(1), [backwards])]),
        Err(BuildError::InvalidCoupon { reason: "coupon validity ends before it starts", .. })
    ));
    let photo = Coupon { flags: CouponFlags::PHOTO_REQUIRED, ..coupon(1, 0) };
    assert!(matches!(Greenlist::build([(token(1), [photo])]), Err(BuildError::InvalidCoupon { .. })));
    assert!(matches!(
        GreenlistDelta::new([token(1)], greenlist(2)),
        Err(BuildError::RemovedAndUpdated(key)) if key == token(1)
    ));
    assert!(matches!(greenlist(2).encode_full(0, 0, &signer), Err(BuildError::Versions(_))));
    assert!(matches!(GreenlistDelta::default().encode(0, 1, 0, &signer), Err(BuildError::Versions(_))));
    assert!(matches!(GreenlistDelta::default().encode(3, 3, 0, &signer), Err(BuildError::Versions(_))));
    assert!(matches!(DenylistDelta::default().encode(4, 3, 0, &signer), Err(BuildError::Versions(_))));

    // Duplicates merge; coupons come out sorted by start of validity.
    let list = Greenlist::build([
        (token(1), vec![coupon(1, 2)]),
        (token(1), vec![coupon(1, 0), coupon(1, 2)]),
        (token(2), vec![]),
    ])
    .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list.lookup(&token(1)), &[coupon(1, 0), coupon(1, 2)]);
}

#[test]
fn the_parsed_header_is_available_before_verification() {
    let key = signing_key(1);
    let file = greenlist(5).encode_full(4, ISSUED_AT_UNIX_S, &KeySigner::new(&key, V1)).unwrap();
    let parsed = ListFile::parse(&file).unwrap();
    let header = *parsed.header();
    assert_eq!(
        (header.kind, header.list_version, header.entry_count, header.coupon_count),
        (ListKind::Greenlist, 4, 5, 10)
    );
    assert!(!header.is_delta());
    assert_eq!(header.file_bytes(), file.len() as u64);
    let verified = parsed.verify(&trusted(&[(V1, &key)])).unwrap();
    assert_eq!(verified.header(), &header);
    assert_eq!(parsed.verify(&TrustedKeys::new()).unwrap_err(), ListError::UnknownKeyVersion(V1));
}
