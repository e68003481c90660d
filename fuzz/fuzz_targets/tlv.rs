//! `tlv::parse_all` on arbitrary bytes: never panics, the limits hold, and a parsed tree
//! re-encodes to bytes that parse back to the same tree (the bytes themselves may differ:
//! padding is dropped and lengths become minimal).
#![no_main]

use libfuzzer_sys::fuzz_target;
use smartticket_card::tlv::{self, TLV_NODES_MAX};

fuzz_target!(|bytes: &[u8]| {
    let Ok(tlvs) = tlv::parse_all(bytes) else {
        return;
    };
    assert!(tlv::depth_first(&tlvs).count() <= TLV_NODES_MAX);
    for node in tlv::depth_first(&tlvs) {
        assert!(node.tag.is_well_formed(), "parsed a malformed tag {}", node.tag);
        assert_eq!(node.tag.is_constructed(), node.value_bytes().is_none());
    }
    let encoded = tlv::encode_all(&tlvs);
    assert!(encoded.len() <= bytes.len());
    assert_eq!(tlv::parse_all(&encoded).expect("re-encoded TLV parses"), tlvs);
});
