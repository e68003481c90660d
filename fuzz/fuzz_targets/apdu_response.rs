//! `Response::parse` on arbitrary bytes: never panics, and a parsed response re-encodes to
//! exactly the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smartticket_card::apdu::Response;

fuzz_target!(|bytes: &[u8]| {
    let Ok(response) = Response::parse(bytes) else {
        return;
    };
    assert_eq!(response.encode().expect("a parsed response encodes"), bytes);
    assert_eq!(Response::parse(bytes), Ok(response));
});
