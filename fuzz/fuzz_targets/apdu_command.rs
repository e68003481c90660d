//! `Command::parse` on arbitrary bytes: never panics, and a parsed command re-encodes to
//! bytes that parse back to the same command.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smartticket_card::apdu::{APDU_COMMAND_BYTES_MAX, Command};

fuzz_target!(|bytes: &[u8]| {
    let Ok(command) = Command::parse(bytes) else {
        return;
    };
    assert!(bytes.len() <= APDU_COMMAND_BYTES_MAX);
    let encoded = command.encode().expect("a parsed command encodes");
    // Parsing accepts extended forms of short-sized lengths; encoding picks the short form.
    assert!(encoded.len() <= bytes.len());
    assert_eq!(Command::parse(&encoded).expect("re-encoded command parses"), command);
});
