//! Greenlist and denylist files (smartticket-acceptance `lists`) from arbitrary bytes: offered
//! as they are, and again with a valid signature appended so the payload decoders run too.
//! Never panics; whatever is accepted holds to the list invariants and re-encodes to the
//! very bytes it came from (the format has one encoding per list).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use smartticket_acceptance::lists::{
    Denylist, Greenlist, KeySigner, LIST_ENTRIES_MAX, ListFile, ListHolder, MEDIUM_COUPONS_MAX, TrustedKeys,
};
use smartticket_crypto::keys::KeyVersion;
use smartticket_crypto::sign::SigningKey;

/// What every run shares: the signing key, the validator's trusted keys (versions 1 to 3,
/// all the same key) and an empty greenlist file of version 1 to apply deltas onto.
struct Setup {
    key: SigningKey,
    trusted: TrustedKeys,
    empty: Vec<u8>,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let key = SigningKey::from_bytes(&[0x42; 32]).expect("a valid scalar");
        let mut trusted = TrustedKeys::new();
        for version in 1..=3 {
            trusted.trust(KeyVersion::new(version).expect("not 0"), key.verifying_key()).expect("fresh versions");
        }
        let empty = Greenlist::new().encode_full(1, 0, &KeySigner::new(&key, KeyVersion::FIRST)).expect("encodes");
        Setup { key, trusted, empty }
    })
}

fuzz_target!(|bytes: &[u8]| {
    let Setup { key, trusted, empty } = setup();

    // As they are: almost always refused before the signature.
    let _ = ListHolder::<Greenlist>::new().offer(bytes, trusted);
    let _ = ListHolder::<Denylist>::new().offer(bytes, trusted);

    // Signed: every structural check and decoder is reached.
    let mut signed = bytes.to_vec();
    signed.extend_from_slice(&key.sign(bytes).0);

    let mut green = ListHolder::<Greenlist>::new();
    if let Ok(installed) = green.offer(&signed, trusted).copied() {
        let list = green.list().expect("accepted");
        assert!(list.len() <= LIST_ENTRIES_MAX as usize);
        let mut previous = None;
        for (medium, coupons) in list.iter() {
            assert!(previous < Some(medium), "keys not strictly ascending");
            assert!(!coupons.is_empty() && coupons.len() <= usize::from(MEDIUM_COUPONS_MAX));
            assert!(coupons.iter().all(|coupon| coupon.check().is_ok()));
            assert_eq!(list.lookup(medium), coupons);
            previous = Some(medium);
        }
        let signer = KeySigner::new(key, installed.key_version);
        let again = list.encode_full(installed.list_version, installed.issued_at_unix_s, &signer).expect("encodes");
        assert_eq!(again, signed, "a full greenlist re-encodes to its own bytes");
    }
    // The same bytes onto an empty list of version 1: a delta with base 1 now applies.
    let mut base = ListHolder::<Greenlist>::new();
    base.offer(empty, trusted).expect("the empty list is accepted");
    if let Ok(installed) = base.offer(&signed, trusted).copied() {
        let header = *ListFile::parse(&signed).expect("an accepted file parses").header();
        // Removing anything from an empty list is inconsistent, so only additions remain.
        assert_eq!(header.removal_count, 0);
        assert_eq!(installed.entry_count, header.entry_count as usize);
        assert_eq!(installed.list_version, header.list_version);
    }

    let mut deny = ListHolder::<Denylist>::new();
    if let Ok(installed) = deny.offer(&signed, trusted).copied() {
        let list = deny.list().expect("accepted");
        assert!(list.iter().all(|(medium, reason)| list.reason(medium) == Some(reason)));
        let signer = KeySigner::new(key, installed.key_version);
        let again = list.encode_full(installed.list_version, installed.issued_at_unix_s, &signer).expect("encodes");
        assert_eq!(again, signed, "a full denylist re-encodes to its own bytes");
    }
});
