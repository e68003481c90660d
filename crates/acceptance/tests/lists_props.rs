//! Properties of the list format over generated lists and bytes: every list survives
//! encode → verify → decode; a delta between any two lists turns one into the other; no
//! byte string makes a holder panic; and no single-byte change of a signed file is accepted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use proptest::prelude::*;
use smartticket_acceptance::lists::{
    Coupon, CouponFlags, DenyReason, Denylist, DenylistDelta, Greenlist, GreenlistDelta, HEADER_BYTES, KeySigner,
    LIST_SIGNATURE_BYTES, ListContent, ListHolder, MediumKey, MediumKind, TrustedKeys,
};
use smartticket_crypto::keys::KeyVersion;
use smartticket_crypto::sign::SigningKey;

const V1: KeyVersion = KeyVersion::FIRST;

fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&[0x42; 32]).unwrap()
}

fn trusted() -> TrustedKeys {
    let mut keys = TrustedKeys::new();
    keys.trust(V1, signing_key().verifying_key()).unwrap();
    keys
}

/// Keys from a small universe, so two generated lists share media.
fn medium_key() -> impl Strategy<Value = MediumKey> {
    (0_u8..5, 0_u8..40).prop_map(|(kind, n)| match kind {
        0 => MediumKey::token(MediumKind::BankCardToken, &[n; 16]).unwrap(),
        1 => MediumKey::token(MediumKind::PhoneToken, &[n; 32]).unwrap(),
        2 => MediumKey::token(MediumKind::QrToken, &[n.wrapping_mul(7); 16]).unwrap(),
        3 => MediumKey::card_number(u64::from(n) * 1_000_003),
        _ => MediumKey::card_uid(&[4, n, 1, 2, 3, 4, 5][..if n % 2 == 0 { 7 } else { 4 }]).unwrap(),
    })
}

fn coupon() -> impl Strategy<Value = Coupon> {
    (0_u64..1 << 40, 1_u64..1 << 30, any::<u32>(), 1_u32.., 0_u32..3, any::<u16>()).prop_map(
        |(valid_from_unix_s, duration_s, product_code, zones_bitmap, photo, discount_code)| Coupon {
            valid_from_unix_s,
            valid_until_unix_s: valid_from_unix_s + duration_s,
            product_code,
            zones_bitmap,
            photo_reference: photo * 1000,
            discount_code,
            flags: if photo == 2 { CouponFlags::PHOTO_REQUIRED } else { CouponFlags::NONE },
        },
    )
}

fn greenlist() -> impl Strategy<Value = Greenlist> {
    prop::collection::vec((medium_key(), prop::collection::vec(coupon(), 0..5)), 0..60)
        .prop_map(|entries| Greenlist::build(entries).unwrap())
}

fn deny_reason() -> impl Strategy<Value = DenyReason> {
    prop_oneof![
        Just(DenyReason::Fraud),
        Just(DenyReason::Stolen),
        Just(DenyReason::Lost),
        Just(DenyReason::Replaced),
        Just(DenyReason::Other),
    ]
}

fn denylist() -> impl Strategy<Value = Denylist> {
    prop::collection::vec((medium_key(), deny_reason()), 0..80).prop_map(|entries| Denylist::build(entries).unwrap())
}

/// Holders on version 1 of `green` and `deny`.
fn holders(green: &Greenlist, deny: &Denylist) -> (ListHolder<Greenlist>, ListHolder<Denylist>) {
    let key = signing_key();
    let signer = KeySigner::new(&key, V1);
    let mut green_holder = ListHolder::new();
    green_holder.offer(&green.encode_full(1, 0, &signer).unwrap(), &trusted()).unwrap();
    let mut deny_holder = ListHolder::new();
    deny_holder.offer(&deny.encode_full(1, 0, &signer).unwrap(), &trusted()).unwrap();
    (green_holder, deny_holder)
}

/// Offers `file` to a holder on version 1 of `base`: it must be refused, and `base` stay.
fn assert_refused<L: ListContent + Clone + PartialEq + std::fmt::Debug>(
    base: &L,
    holder: &mut ListHolder<L>,
    file: &[u8],
) {
    let result = holder.offer(file, &trusted()).map(|installed| installed.list_version);
    assert!(result.is_err(), "accepted an altered file as version {result:?}");
    assert_eq!(holder.installed().map(|installed| installed.list_version), Some(1));
    assert_eq!(holder.list(), Some(base));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn a_greenlist_survives_encode_and_decode(list in greenlist(), version in 1_u64.., issued in any::<u64>()) {
        let key = signing_key();
        let file = list.encode_full(version, issued, &KeySigner::new(&key, V1)).unwrap();
        let mut holder = ListHolder::<Greenlist>::new();
        let installed = *holder.offer(&file, &trusted()).unwrap();
        prop_assert_eq!((installed.list_version, installed.issued_at_unix_s), (version, issued));
        prop_assert_eq!(holder.list().unwrap(), &list);
        for (key, coupons) in list.iter() {
            prop_assert_eq!(holder.list().unwrap().lookup(key), coupons);
        }
    }

    #[test]
    fn a_greenlist_delta_turns_any_list_into_any_other(old in greenlist(), new in greenlist()) {
        let delta = GreenlistDelta::between(&old, &new);
        prop_assert_eq!(&old.apply(&delta).unwrap(), &new);
        let key = signing_key();
        let file = delta.encode(1, 2, 0, &KeySigner::new(&key, V1)).unwrap();
        let (mut holder, _) = holders(&old, &Denylist::new());
        prop_assert_eq!(holder.offer(&file, &trusted()).unwrap().list_version, 2);
        prop_assert_eq!(holder.list().unwrap(), &new);
    }

    #[test]
    fn a_denylist_and_its_deltas_survive_encode_and_decode(old in denylist(), new in denylist()) {
        let key = signing_key();
        let signer = KeySigner::new(&key, V1);
        let (_, mut holder) = holders(&Greenlist::new(), &old);
        prop_assert_eq!(holder.list().unwrap(), &old);
        let delta = DenylistDelta::between(&old, &new);
        prop_assert_eq!(holder.offer(&delta.encode(1, 2, 0, &signer).unwrap(), &trusted()).unwrap().list_version, 2);
        prop_assert_eq!(holder.list().unwrap(), &new);
        for (key, reason) in new.iter() {
            prop_assert_eq!(holder.list().unwrap().reason(key), Some(reason));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        mut bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..400),
            // A plausible header start, so parsing goes past the magic.
            prop::collection::vec(any::<u8>(), 0..400).prop_map(|mut rest| {
                let mut bytes = b"STLS\x01\x00".to_vec();
                bytes.append(&mut rest);
                bytes
            }),
        ],
    ) {
        let (mut green, mut deny) = holders(&Greenlist::new(), &Denylist::new());
        let _ = green.offer(&bytes, &trusted());
        let _ = deny.offer(&bytes, &trusted());
        // Signed, so the payload decoders are reached too.
        let signature = signing_key().sign(&bytes);
        bytes.extend_from_slice(&signature.0);
        let _ = green.offer(&bytes, &trusted());
        let _ = deny.offer(&bytes, &trusted());
    }

    #[test]
    fn authentic_files_with_altered_bytes_never_panic_and_never_break_invariants(
        list in greenlist(),
        changes in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        delta in any::<bool>(),
    ) {
        let key = signing_key();
        let signer = KeySigner::new(&key, V1);
        let mut file = if delta {
            GreenlistDelta::between(&Greenlist::new(), &list).encode(1, 2, 0, &signer).unwrap()
        } else {
            list.encode_full(2, 0, &signer).unwrap()
        };
        let signed_bytes = file.len() - LIST_SIGNATURE_BYTES;
        for (index, byte) in changes {
            file[index.index(signed_bytes)] = byte;
        }
        file.truncate(signed_bytes);
        let signature = key.sign(&file);
        file.extend_from_slice(&signature.0);
        let (mut holder, _) = holders(&Greenlist::new(), &Denylist::new());
        if holder.offer(&file, &trusted()).is_ok() {
            let accepted = holder.list().unwrap();
            for (key, coupons) in accepted.iter() {
                prop_assert!(!coupons.is_empty() && coupons.len() <= 16);
                prop_assert_eq!(accepted.lookup(key), coupons);
                prop_assert!(coupons.iter().all(|coupon| coupon.check().is_ok()));
            }
        }
    }

    #[test]
    fn any_single_byte_change_is_refused(
        base in greenlist(),
        next in greenlist(),
        deny_base in denylist(),
        deny_next in denylist(),
        index in any::<prop::sample::Index>(),
        flip in 1_u8..,
        kind in 0_u8..4,
    ) {
        let key = signing_key();
        let signer = KeySigner::new(&key, V1);
        let (mut green, mut deny) = holders(&base, &deny_base);
        let mut file = match kind {
            0 => next.encode_full(2, 0, &signer).unwrap(),
            1 => GreenlistDelta::between(&base, &next).encode(1, 2, 0, &signer).unwrap(),
            2 => deny_next.encode_full(2, 0, &signer).unwrap(),
            _ => DenylistDelta::between(&deny_base, &deny_next).encode(1, 2, 0, &signer).unwrap(),
        };
        prop_assert!(file.len() >= HEADER_BYTES + LIST_SIGNATURE_BYTES);
        let position = index.index(file.len());
        file[position] ^= flip;
        if kind < 2 {
            assert_refused(&base, &mut green, &file);
        } else {
            assert_refused(&deny_base, &mut deny, &file);
        }
    }
}
