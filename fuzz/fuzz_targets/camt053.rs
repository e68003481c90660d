//! `bank_transfer::parse_camt053` on arbitrary UTF-8 (the imported bank statement is
//! untrusted): never panics, and whatever it accepts holds by construction: within the entry
//! limit, every entry has a non-empty reference of bounded length, a real ISO 4217 currency,
//! and a variable symbol (when found) of 1 to 10 digits without leading zeros. Parsing is
//! deterministic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smartticket_core::Currency;
use smartticket_sales::payments::bank_transfer::{ENTRIES_MAX, parse_camt053};

/// The parser keeps at most this many characters of an element's text.
const TEXT_CHARS_MAX: usize = 1024;

fuzz_target!(|bytes: &[u8]| {
    let Ok(xml) = std::str::from_utf8(bytes) else {
        return;
    };
    let Ok(entries) = parse_camt053(xml) else {
        return;
    };
    assert!(entries.len() <= ENTRIES_MAX);
    for (position, entry) in entries.iter().enumerate() {
        assert!(!entry.reference.is_empty(), "entry {position} has an empty reference");
        assert!(
            entry.reference.chars().count() <= TEXT_CHARS_MAX || entry.reference == format!("entry-{position}"),
            "entry {position}: reference longer than the text limit"
        );
        let currency = entry.amount.currency;
        assert_eq!(Currency::from_code(currency.code()).ok(), Some(currency), "currency does not round-trip");
        if let Some(vs) = &entry.variable_symbol {
            assert!((1..=10).contains(&vs.len()), "variable symbol {vs:?} has a bad length");
            assert!(vs.bytes().all(|b| b.is_ascii_digit()), "variable symbol {vs:?} is not all digits");
            assert!(vs == "0" || !vs.starts_with('0'), "variable symbol {vs:?} keeps a leading zero");
        }
    }
    assert_eq!(parse_camt053(xml).ok().as_ref(), Some(&entries), "parsing is not deterministic");
});
