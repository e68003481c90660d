//! `tlv::parse_dol` on arbitrary bytes: never panics, the limits hold, and the entries
//! re-encode (tag, then a one-byte or `81 xx` length) to bytes that parse back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smartticket_card::tlv::{self, DOL_ENTRIES_MAX, DOL_ENTRY_LENGTH_MAX};

fuzz_target!(|bytes: &[u8]| {
    let Ok(entries) = tlv::parse_dol(bytes) else {
        return;
    };
    assert!(entries.len() <= DOL_ENTRIES_MAX);
    let mut encoded = Vec::new();
    for &(tag, length) in &entries {
        assert!(length <= DOL_ENTRY_LENGTH_MAX);
        assert!(tag.is_well_formed(), "parsed a malformed tag {tag}");
        encoded.extend_from_slice(&tag.bytes());
        if length >= 0x80 {
            encoded.push(0x81);
        }
        encoded.push(u8::try_from(length).expect("checked above"));
    }
    assert_eq!(tlv::parse_dol(&encoded).expect("re-encoded DOL parses"), entries);
});
