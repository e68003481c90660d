//! Access-control list files (smartticket-acceptance `access`) from arbitrary bytes. Never
//! panics; whatever decodes holds to the list's rules and re-encodes to the very bytes it came
//! from (the format has one encoding per list).
#![no_main]

use libfuzzer_sys::fuzz_target;
use smartticket_acceptance::access::{ACCESS_LIST_ENTRIES_MAX, AccessList, decode_header};

fuzz_target!(|bytes: &[u8]| {
    let header = decode_header(bytes);
    let Ok(list) = AccessList::decode(bytes) else {
        return;
    };
    let header = header.expect("a list that decodes has a header that decodes");
    assert_eq!(list.device(), header.device);
    assert_eq!(list.revision(), header.revision);
    assert_eq!(list.len(), header.entry_count as usize);
    assert!(list.len() <= ACCESS_LIST_ENTRIES_MAX as usize);
    let mut previous = None;
    for (identifier, grant) in list.iter() {
        assert!(previous < Some(*identifier), "keys not strictly ascending");
        assert!(grant.check().is_ok());
        assert_eq!(identifier.to_string().parse(), Ok(*identifier));
        previous = Some(*identifier);
    }
    assert_eq!(list.encode(), bytes, "a list re-encodes to its own bytes");
});
