//! Every primitive against its published vectors. Each block names the document and
//! section the numbers come from.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use hex_literal::hex;
use smartticket_crypto::cmac::{CmacKey, aes_cmac, truncate_ev2};
use smartticket_crypto::diversify::{DiversificationInput, an10922_aes128};
use smartticket_crypto::kdf::{Scp03Constant, counter_mode_cmac, scp03_derive};
use smartticket_crypto::sign::{Signature, SigningKey, VerifyingKey};
use smartticket_crypto::token::{Expiry, Pan, PanError, hmac_sha256, luhn_valid, token_input};

// RFC 4493 "The AES-CMAC Algorithm" §4 Test Vectors (= NIST SP 800-38B CMAC-AES128 examples).
const RFC4493_KEY: [u8; 16] = hex!("2b7e151628aed2a6abf7158809cf4f3c");
const RFC4493_M64: [u8; 64] = hex!(
    "6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710"
);

#[test]
fn rfc4493_section4_aes_cmac() {
    assert_eq!(aes_cmac(&RFC4493_KEY, &[]), hex!("bb1d6929e95937287fa37d129b756746"), "Example 1, len 0");
    assert_eq!(
        aes_cmac(&RFC4493_KEY, &RFC4493_M64[..16]),
        hex!("070a16b46b4d4144f79bdd9dd04a287c"),
        "Example 2, len 16"
    );
    assert_eq!(
        aes_cmac(&RFC4493_KEY, &RFC4493_M64[..40]),
        hex!("dfa66747de9ae63030ca32611497c827"),
        "Example 3, len 40"
    );
    assert_eq!(aes_cmac(&RFC4493_KEY, &RFC4493_M64), hex!("51f0bebf7e3b9d92fc49741779363cfe"), "Example 4, len 64");
}

#[test]
fn cmac_parts_equal_the_whole_and_truncation_takes_odd_bytes() {
    let key = CmacKey::new(&RFC4493_KEY);
    assert_eq!(key.mac_parts(&[&RFC4493_M64[..7], &RFC4493_M64[7..40]]), aes_cmac(&RFC4493_KEY, &RFC4493_M64[..40]));
    // AN12196: MACt keeps the bytes at odd offsets (1, 3, …, 15).
    let mac: [u8; 16] = core::array::from_fn(|i| i as u8);
    assert_eq!(truncate_ev2(&mac), [1, 3, 5, 7, 9, 11, 13, 15]);
    let full = key.mac(b"x");
    assert!(key.verify_truncated(&[b"x"], &truncate_ev2(&full)).is_ok());
    let mut flipped = truncate_ev2(&full);
    flipped[0] ^= 1;
    assert!(key.verify_truncated(&[b"x"], &flipped).is_err());
}

// NIST CAVP KDFCTR_gen.rsp (CAVS 14.4), [PRF=CMAC_AES128] [CTRLOCATION=MIDDLE_FIXED]
// [RLEN=8_BITS]; copy in RustCrypto/KDFs kbkdf/tests/data/CounterMode/KDFCTR_gen.rsp.
struct MiddleFixed {
    count: u32,
    key: &'static [u8],
    before: &'static [u8],
    after: &'static [u8],
    out: &'static [u8],
}

const KDFCTR_MIDDLE_FIXED_8: &[MiddleFixed] = &[
    MiddleFixed {
        count: 0,
        key: &hex!("b6e04abd1651f8794d4326f4c684e631"),
        before: &hex!(
            "93612f7256c46a3d856d3e951e32dbf15fe11159d0b389ad38d603850fee6d18d22031435ed36ee20da76745fbea4b10fe1e"
        ),
        after: &hex!("99322aae605a5f01e32b"),
        out: &hex!("dcb1db87a68762c6b3354779fa590bef"),
    },
    MiddleFixed {
        count: 1,
        key: &hex!("f1e71b1dd502aad84728834bfcdb281c"),
        before: &hex!(
            "f9df43aaafc930f8b2a45a4bf6fb1e0f51237d4d4c2768304b407b7816e77eadab3030fd2cb21c619be5540250579f275a19"
        ),
        after: &hex!("2d965ea59a8b6cc432ad"),
        out: &hex!("f405141e34dd81817c7b608fab372e6a"),
    },
    MiddleFixed {
        count: 2,
        key: &hex!("f8844ba943586c432a3651f23850bdd4"),
        before: &hex!(
            "170b43391c09e65f9672c01d9743767ce9b96f48096e96a0041f3f9ca7ee8703606ed794ba67b5132afe0f83dd1df733e57c"
        ),
        after: &hex!("dea6e0549413fc2a26d0"),
        out: &hex!("8dfc0cc6a66631351f09c625b6cc4bf0"),
    },
    MiddleFixed {
        count: 3,
        key: &hex!("c18d9038d8d919da9f1102157c0d22b1"),
        before: &hex!(
            "5306e1d8d2f2c60c9a86eb63d8c7061ddd16652620d55b86081dc311523e4a14139d80e5e91a003457615c002145cc1464b3"
        ),
        after: &hex!("df701b2abdbbc19fd57f"),
        out: &hex!("0035580951d7607fe135bfd8ad7ebf1e"),
    },
    MiddleFixed {
        count: 10,
        key: &hex!("a239154d967d7c9d852bd99589e1ac1c"),
        before: &hex!(
            "5d4cefc0dd8e954fe0f1645f19f8fc4654f88fa08b42eb67be98db3a228cdff00f0f5287fe32fb9a59f626d1984e33d6eacd"
        ),
        after: &hex!("a3e27c1764932ce58625"),
        out: &hex!("f69af7108762cfb95a2282c12eb58d914a78369c8f4a91c7850c81c973f704e9"),
    },
    MiddleFixed {
        count: 20,
        key: &hex!("db6891ec19c0a5648c49cc214aa79a62"),
        before: &hex!(
            "0e9dc3c24d8fee4c8ebae8496dd74a8c43e98df9b44f5a87ca3e0e06f25316c42e40ab56f0514b41abafb62436df5e2a853b"
        ),
        after: &hex!("5e3b3bb3678e62841248"),
        out: &hex!("4333fc7ffa48b574c623704306242b78e5bc07e3"),
    },
];

#[test]
fn nist_cavp_kdfctr_cmac_aes128_middle_fixed_8bit_counter() {
    for vector in KDFCTR_MIDDLE_FIXED_8 {
        let key = CmacKey::from_slice(vector.key).unwrap();
        let out = counter_mode_cmac(&key, vector.before, vector.after, vector.out.len()).unwrap();
        assert_eq!(out.as_slice(), vector.out, "COUNT={}", vector.count);
    }
}

// NIST CAVP KDFCTR_gen.rsp, [PRF=CMAC_AES128] [CTRLOCATION=BEFORE_FIXED] [RLEN=8_BITS]:
// the counter first, then the fixed data (an empty "before" part).
#[test]
fn nist_cavp_kdfctr_cmac_aes128_before_fixed_8bit_counter() {
    let cases: [(&[u8], &[u8], &[u8]); 3] = [
        (
            &hex!("dff1e50ac0b69dc40f1051d46c2b069c"),
            &hex!(
                "c16e6e02c5a3dcc8d78b9ac1306877761310455b4e41469951d9e6c2245a064b33fd8c3b01203a7824485bf0a64060c4648b707d2607935699316ea5"
            ),
            &hex!("8be8f0869b3c0ba97b71863d1b9f7813"),
        ),
        (
            &hex!("e4d94da336fada7c0ee4a9591dd0327a"),
            &hex!(
                "538fefb2eeb7c50c84bf603a7beddff4bba049f0052c45f13c56e9ae5944eb22d677f280e5a29c588cf40c7c57f7767aad3d595069fb40d02c01f866"
            ),
            &hex!("268a1d44ba5a5b1a28b9a611c76671f7"),
        ),
        (
            &hex!("682e814d872397eba71170a693514904"),
            &hex!(
                "e323cdfa7873a0d72cd86ffb4468744f097db60498f7d0e3a43bafd2d1af675e4a88338723b1236199705357c47bf1d89b2f4617a340980e6331625c"
            ),
            &hex!("dac9b6ca405749cfb065a0f1e42c7c4224d3d5db32fdafe9dee6ca193316f2c7"),
        ),
    ];
    for (key, fixed, out) in cases {
        let key = CmacKey::from_slice(key).unwrap();
        assert_eq!(counter_mode_cmac(&key, &[], fixed, out.len()).unwrap().as_slice(), out);
    }
}

// GlobalPlatform SCP03 (GPC 2.2 Amendment D §4.1.5) session keys from the default keyset
// 40..4F; values published in OpenJavaCard/openjavacard-tools
// src/test/java/org/openjavacard/gp/scp/SCP03DerivationTest.java (commit 0770e99).
#[test]
fn scp03_session_keys_from_the_default_keyset() {
    let static_key = CmacKey::new(&hex!("404142434445464748494a4b4c4d4e4f"));
    let context = hex!("A7F76C713F0A713D 31900058C1C451A2");
    let s_enc = scp03_derive(&static_key, Scp03Constant::SessionEnc, &context, 128).unwrap();
    let s_mac = scp03_derive(&static_key, Scp03Constant::SessionMac, &context, 128).unwrap();
    let s_rmac = scp03_derive(&static_key, Scp03Constant::SessionRmac, &context, 128).unwrap();
    assert_eq!(s_enc.as_slice(), hex!("258a78866f41482bef482dc8ca976ccd"));
    assert_eq!(s_mac.as_slice(), hex!("053db6abc7fdf3b63a0d965ee16b0255"));
    assert_eq!(s_rmac.as_slice(), hex!("eda0b4f2ec0345bfc50f3bc59cfef936"));
}

// SCP03 card and host cryptograms (64-bit, derived with S-MAC) from the exchange published
// in osmocom/pysim tests/unittests/test_globalplatform.py, class SCP03_Test_AES128_11
// (commit 078ac2b): static keys 00..0F / 10..1F, host challenge b13e5f938fc108c4, card
// challenge 3eb51047495b249f.
#[test]
fn scp03_cryptograms_from_a_published_exchange() {
    let static_enc = CmacKey::new(&hex!("000102030405060708090a0b0c0d0e0f"));
    let static_mac = CmacKey::new(&hex!("101112131415161718191a1b1c1d1e1f"));
    let context = hex!("b13e5f938fc108c4 3eb51047495b249f");
    let s_enc = scp03_derive(&static_enc, Scp03Constant::SessionEnc, &context, 128).unwrap();
    assert_eq!(s_enc.as_slice(), hex!("c4e87149f2114da66bb015a567d751f9"));
    let s_mac = scp03_derive(&static_mac, Scp03Constant::SessionMac, &context, 128).unwrap();
    let s_mac = CmacKey::from_slice(&s_mac).unwrap();
    let card = scp03_derive(&s_mac, Scp03Constant::CardCryptogram, &context, 64).unwrap();
    let host = scp03_derive(&s_mac, Scp03Constant::HostCryptogram, &context, 64).unwrap();
    assert_eq!(card.as_slice(), hex!("66c484c1d2ef1948"), "card cryptogram in the INITIALIZE UPDATE response");
    assert_eq!(host.as_slice(), hex!("7d5f5826a993ebc8"), "host cryptogram in EXTERNAL AUTHENTICATE");
}

// NXP AN10922 "Symmetric key diversifications" §2.2.1, AES-128 example (as reproduced in
// nfc-tools/libfreefare test/test_mifare_key_deriver_an10922.c, commit 75f08d3).
#[test]
fn an10922_section_2_2_aes128_example() {
    let master = hex!("00112233445566778899AABBCCDDEEFF");
    let uid = hex!("04782E21801D80");
    let aid = hex!("3042F5");
    let system = hex!("4E585020416275"); // "NXP Abu"
    let m = hex!("04782E21801D803042F54E585020416275");
    let expected = hex!("A8DD63A3B89D54B37CA802473FDA9175");
    assert_eq!(*an10922_aes128(&master, &m).unwrap(), expected);
    let input = DiversificationInput::new(&uid, &aid, &system).unwrap();
    assert_eq!(input.as_bytes(), m);
    assert_eq!(input.cmac_message(), hex!("0104782E21801D803042F54E585020416275"));
    // At this length (|M| ≥ 16) AN10922 equals plain CMAC, which is what an HSM computes.
    assert_eq!(aes_cmac(&master, &input.cmac_message()), expected);
}

#[test]
fn an10922_differs_from_plain_cmac_only_below_16_bytes() {
    let master = hex!("00112233445566778899AABBCCDDEEFF");
    for length in 1..=31_usize {
        let m: Vec<u8> = (0..length as u8).collect();
        let mut message = vec![0x01];
        message.extend_from_slice(&m);
        let equal = *an10922_aes128(&master, &m).unwrap() == aes_cmac(&master, &message);
        assert_eq!(equal, length >= 16, "|M| = {length}");
    }
    assert!(an10922_aes128(&master, &[]).is_err());
    assert!(an10922_aes128(&master, &[0; 32]).is_err());
    assert!(DiversificationInput::new(&[0; 7], &[0; 3], b"short").is_err(), "system ids under 6 bytes are refused");
}

// RFC 4231 "Identifiers and Test Vectors for HMAC-SHA-224, …-256, …" §4.2 (Test Case 1) and
// §4.3 (Test Case 2).
#[test]
fn rfc4231_hmac_sha256() {
    assert_eq!(
        hmac_sha256(&[0x0b; 20], b"Hi There").unwrap(),
        hex!("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
    );
    assert_eq!(
        hmac_sha256(b"Jefe", b"what do ya want for nothing?").unwrap(),
        hex!("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    );
}

// RFC 6979 "Deterministic Usage of DSA and ECDSA" Appendix A.2.5, P-256 with SHA-256.
#[test]
fn rfc6979_a25_p256_sha256() {
    let key =
        SigningKey::from_bytes(&hex!("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721")).unwrap();
    let mut uncompressed = vec![0x04];
    uncompressed.extend_from_slice(&hex!("60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6"));
    uncompressed.extend_from_slice(&hex!("7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299"));
    let public = VerifyingKey::from_sec1(&uncompressed).unwrap();
    assert_eq!(key.verifying_key(), public);
    // "test": s is already in the lower half, so the signature is exactly the RFC's.
    let test = key.sign(b"test");
    assert_eq!(
        test.0,
        hex!(
            "F1ABB023518351CD71D881567B1EA663ED3EFCF6C5132B354F28D3B0B7D38367"
            "019F4113742A2B14BD25926B49C649155F267E60D3814B4C0CC84250E46F0083"
        )
    );
    // "sample": the same r; s is the RFC's or its low-S twin n − s, which p256 prefers.
    let sample = key.sign(b"sample");
    assert_eq!(sample.0[..32], hex!("EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716"));
    let s = &sample.0[32..];
    assert!(
        s == hex!("F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8")
            || s == hex!("0834E36AD29A83BF2BC9385E491D6099C8FDF9D1ED67AA7EA5F51F93782857A9")
    );
    let rfc_sample = Signature(hex!(
        "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716"
        "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8"
    ));
    assert!(public.verify(b"sample", &rfc_sample).is_ok() || public.verify(b"sample", &sample).is_ok());
    assert!(public.verify(b"test", &test).is_ok());
    assert!(public.verify(b"tesT", &test).is_err());
    let compressed = public.to_sec1();
    assert_eq!(VerifyingKey::from_sec1(&compressed).unwrap(), public);
}

// The Luhn check (ISO/IEC 7812-1 Annex B), with the textbook example 79927398713 and card
// processors' published test numbers (Stripe and Braintree testing documentation).
#[test]
fn luhn_and_pan_rules() {
    assert!(luhn_valid("79927398713"));
    assert!(!luhn_valid("79927398710"));
    for pan in ["4111111111111111", "4012888888881881", "5555555555554444", "378282246310005", "6011111111111117"] {
        assert!(luhn_valid(pan), "{pan}");
        assert!(Pan::parse(pan).is_ok());
    }
    assert!(!luhn_valid("4242424242424241"), "Stripe's deliberately wrong number");
    assert_eq!(Pan::parse("4242 4242 4242 4241").unwrap_err(), PanError::Luhn);
    assert_eq!(Pan::parse("4111-1111-1111-1111").unwrap().masked(), "4111 **** **** 1111");
    assert_eq!(Pan::parse("378282246310005").unwrap().masked(), "3782 **** ***0 005");
    assert_eq!(Pan::parse("12345").unwrap_err(), PanError::Length(5));
    assert_eq!(Pan::parse("41111111111x1111").unwrap_err(), PanError::NotDigits);
    assert!(!format!("{:?}", Pan::parse("4111111111111111").unwrap()).contains("41111111"));
    assert_eq!(Expiry::parse_mm_yy("09/27").unwrap(), Expiry { year: 27, month: 9 });
    assert!(Expiry::parse_mm_yy("13/27").is_err());
    let pan = Pan::parse("4111111111111111").unwrap();
    assert_eq!(token_input(&pan, Expiry::new(27, 9).unwrap()).as_slice(), b"4111111111111111=2709");
}
