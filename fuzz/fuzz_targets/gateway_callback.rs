//! `TestAcquirer::verify_callback` on an arbitrary signature header and body (the webhook
//! is reachable by anyone). Input layout: byte 0 is the header's length (255: no header),
//! bytes 1 and 2 choose a tampering (position, value), then the header (lossy UTF-8), then
//! the body.
//!
//! Never panics, and never accepts a callback unless the header carries, within the time
//! window, a timestamp and the HMAC of `"<t>." || body` under the secret (checked here with
//! an independent reading of the header), the body being the event returned. A body signed
//! here, and the signed callback of any event the body deserialises to, are accepted; one
//! flipped byte of the MAC, or one changed character of the header, makes either fail.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;
use smartticket_core::Timestamp;
use smartticket_crypto::token::hmac_sha256;
use smartticket_sales::payments::test_acquirer::{CALLBACK_BODY_BYTES_MAX, CALLBACK_TOLERANCE_SECS, TestAcquirer};
use smartticket_sales::payments::{CardGateway, GatewayError, GatewayEvent};

const SECRET: &str = "fuzz secret";
/// 2026-11-21T08:00:00Z.
const NOW_MICROS: i64 = 1_795_248_000_000_000;

fuzz_target!(|bytes: &[u8]| {
    let [header_len, flip_at, flip_with, rest @ ..] = bytes else {
        return;
    };
    let (header, body) = if *header_len == u8::MAX {
        (None, rest)
    } else {
        let (header, body) = rest.split_at(usize::from(*header_len).min(rest.len()));
        (Some(String::from_utf8_lossy(header).into_owned()), body)
    };
    let acquirer = TestAcquirer::new(SecretString::from(SECRET.to_owned()), "http://x");
    let now = Timestamp::from_unix_micros(NOW_MICROS).expect("a representable instant");
    let now_secs = NOW_MICROS / 1_000_000;
    let parsed: Option<GatewayEvent> = serde_json::from_slice(body).ok();

    // The fuzzer's own header: accepted only when it is right.
    if let Ok(event) = acquirer.verify_callback(header.as_deref(), body, now) {
        let header = header.as_deref().unwrap_or_default();
        assert!(body.len() <= CALLBACK_BODY_BYTES_MAX, "accepted an oversized body");
        assert!(signed_correctly(header, body, now_secs), "accepted a wrong signature {header:?}");
        assert_eq!(parsed.as_ref(), Some(&event), "the event is not the body's");
    }

    // The body as it came, signed here at `now`.
    let own = format!("t={now_secs},v1={}", hex::encode(mac(now_secs, body)));
    let verdict = acquirer.verify_callback(Some(&own), body, now);
    if body.len() > CALLBACK_BODY_BYTES_MAX {
        assert!(matches!(verdict, Err(GatewayError::Body(_))), "oversized body: {verdict:?}");
    } else {
        assert_eq!(verdict.as_ref().ok(), parsed.as_ref(), "a correctly signed body: {verdict:?}");
    }
    assert_tampering_fails(&acquirer, &own, body, now, *flip_at, *flip_with);

    // The callback the acquirer itself would send for the event.
    let Some(event) = parsed else {
        return;
    };
    let (signed_body, signature) = acquirer.signed_callback(&event, now).expect("an event serialises and signs");
    let verdict = acquirer.verify_callback(Some(&signature), &signed_body, now);
    if signed_body.len() > CALLBACK_BODY_BYTES_MAX {
        assert!(matches!(verdict, Err(GatewayError::Body(_))), "oversized signed callback: {verdict:?}");
    } else {
        assert_eq!(verdict, Ok(event), "the acquirer's own callback was refused");
    }
    assert_tampering_fails(&acquirer, &signature, &signed_body, now, *flip_at, *flip_with);
});

fn mac(timestamp: i64, body: &[u8]) -> [u8; 32] {
    let mut message = format!("{timestamp}.").into_bytes();
    message.extend_from_slice(body);
    hmac_sha256(SECRET.as_bytes(), &message).expect("HMAC takes any key")
}

/// Some `t=` in the header is within the window and some `v1=` is the MAC for it.
fn signed_correctly(header: &str, body: &[u8], now_secs: i64) -> bool {
    let fields: Vec<(&str, &str)> = header.split(',').filter_map(|part| part.trim().split_once('=')).collect();
    let macs: Vec<Vec<u8>> =
        fields.iter().filter(|(key, _)| *key == "v1").filter_map(|(_, value)| hex::decode(value).ok()).collect();
    fields
        .iter()
        .filter(|(key, _)| *key == "t")
        .filter_map(|(_, value)| value.parse::<i64>().ok())
        .filter(|t| (i128::from(now_secs) - i128::from(*t)).abs() <= i128::from(CALLBACK_TOLERANCE_SECS))
        .any(|t| macs.iter().any(|candidate| candidate.as_slice() == mac(t, body)))
}

/// `header` is a correct `t=<t>,v1=<hex>` for `body`; one flipped MAC byte, or one header
/// character replaced by another (not merely its other case: hex is case-blind), fails.
fn assert_tampering_fails(
    acquirer: &TestAcquirer,
    header: &str,
    body: &[u8],
    now: Timestamp,
    flip_at: u8,
    flip_with: u8,
) {
    let (timestamp, hex_mac) = header
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
        .expect("a signature header of the documented form");
    let mut raw = hex::decode(hex_mac).expect("hex MAC");
    let at = usize::from(flip_at) % raw.len();
    raw[at] ^= flip_with.max(1);
    let flipped = format!("t={timestamp},v1={}", hex::encode(&raw));
    let verdict = acquirer.verify_callback(Some(&flipped), body, now);
    assert!(verdict.is_err(), "MAC byte {at} flipped, still accepted: {flipped}");
    if body.len() <= CALLBACK_BODY_BYTES_MAX {
        assert_eq!(verdict, Err(GatewayError::Signature("does not match")), "MAC byte {at} flipped");
    }

    let at = usize::from(flip_at) % header.len();
    let original = char::from(header.as_bytes()[at]);
    let replacement = char::from(b' ' + flip_with % 95);
    if !replacement.eq_ignore_ascii_case(&original) {
        let mut changed = header.to_owned();
        changed.replace_range(at..=at, replacement.encode_utf8(&mut [0; 4]));
        let verdict = acquirer.verify_callback(Some(&changed), body, now);
        assert!(verdict.is_err(), "header character {at} changed to {replacement:?}, still accepted: {changed}");
    }
}
