//! Clearing parses transaction MAC inputs (after verifying them, but the parser must not
//! trust that): arbitrary bytes never panic, and what parses is within the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smartticket_card::desfire::tmac::{TMI_BYTES_MAX, parse_tmi};

fuzz_target!(|bytes: &[u8]| {
    if let Ok(entries) = parse_tmi(bytes, |_, _| Some(32)) {
        assert!(bytes.len() <= TMI_BYTES_MAX);
        assert!(entries.len() <= bytes.len() / 16);
    }
});
