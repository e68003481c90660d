//! The built-in test acquirer: a bank that lives inside SmartTicket, for development,
//! demos and tests. It has a hosted payment page (served by the HTTP server), decides by
//! magic card numbers, and calls back with a webhook signed exactly as a real gateway
//! would sign it — so the callback path, signature checks and replays are exercised end to
//! end without a real bank.
//!
//! Magic numbers: `4111 1111 1111 1111` approves, `4000 0000 0000 0002` declines
//! (insufficient funds), `4000 0000 0000 0119` never answers (a timeout: the payment stays
//! pending until it expires); any other Luhn-valid number approves.
//!
//! Signature header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." || body>` under the
//! shared secret; callbacks older than [`CALLBACK_TOLERANCE_SECS`] are refused, so a
//! captured callback cannot be replayed later (and a replay within the window is
//! recognised by its event id).

use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use smartticket_core::id::PaymentId;
use smartticket_core::{Money, Timestamp};
use smartticket_crypto::token::{Pan, hmac_sha256};
use subtle::ConstantTimeEq;

use super::{CardGateway, GatewayError, GatewayEvent, GatewayOutcome};

/// The gateway's name.
pub const NAME: &str = "test-acquirer";
/// Header carrying the callback signature.
pub const SIGNATURE_HEADER: &str = "test-acquirer-signature";
/// How old (or early) a callback may be: five minutes, as common gateways allow.
pub const CALLBACK_TOLERANCE_SECS: i64 = 300;
/// Largest callback body accepted.
pub const CALLBACK_BODY_BYTES_MAX: usize = 4096;

/// The test acquirer's answer to a card number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Approve.
    Approve,
    /// Decline with a reason.
    Decline(&'static str),
    /// Never answer.
    Timeout,
}

/// Decides for a card number typed on the hosted page.
pub fn decide(pan: &Pan) -> Decision {
    match pan.digits() {
        "4000000000000002" => Decision::Decline("insufficient funds"),
        "4000000000000119" => Decision::Timeout,
        _ => Decision::Approve,
    }
}

/// The test acquirer with its webhook secret and the server's base URL.
pub struct TestAcquirer {
    secret: SecretString,
    base_url: String,
}

impl std::fmt::Debug for TestAcquirer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestAcquirer").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

impl TestAcquirer {
    /// A test acquirer signing with `secret`, its hosted page under `base_url`.
    pub fn new(secret: SecretString, base_url: impl Into<String>) -> Self {
        Self { secret, base_url: base_url.into().trim_end_matches('/').to_owned() }
    }

    fn mac(&self, timestamp: i64, body: &[u8]) -> Result<[u8; 32], GatewayError> {
        let mut message = format!("{timestamp}.").into_bytes();
        message.extend_from_slice(body);
        hmac_sha256(self.secret.expose_secret().as_bytes(), &message).map_err(|_| GatewayError::Signature("no key"))
    }

    /// Builds the signed callback the bank sends for `event` at `now`: the body and the
    /// signature header value.
    pub fn signed_callback(&self, event: &GatewayEvent, now: Timestamp) -> Result<(Vec<u8>, String), GatewayError> {
        let body = serde_json::to_vec(event).map_err(|e| GatewayError::Body(e.to_string()))?;
        let timestamp = now.unix_micros() / 1_000_000;
        let signature = format!("t={timestamp},v1={}", hex::encode(self.mac(timestamp, &body)?));
        Ok((body, signature))
    }
}

fn parse_signature(header: &str) -> Option<(i64, Vec<u8>)> {
    let mut timestamp = None;
    let mut mac = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse().ok(),
            Some(("v1", value)) => mac = hex::decode(value).ok(),
            _ => {}
        }
    }
    Some((timestamp?, mac?))
}

impl CardGateway for TestAcquirer {
    fn name(&self) -> &'static str {
        NAME
    }

    fn checkout_url(&self, payment: PaymentId, return_url: &str) -> String {
        let encoded: String = return_url
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        format!("{}/test-acquirer/checkout/{payment}?return={encoded}", self.base_url)
    }

    fn verify_callback(
        &self,
        signature: Option<&str>,
        body: &[u8],
        now: Timestamp,
    ) -> Result<GatewayEvent, GatewayError> {
        if body.len() > CALLBACK_BODY_BYTES_MAX {
            return Err(GatewayError::Body("too large".into()));
        }
        let (timestamp, mac) = parse_signature(signature.ok_or(GatewayError::Signature("missing"))?)
            .ok_or(GatewayError::Signature("malformed"))?;
        let age = (now.unix_micros() / 1_000_000).saturating_sub(timestamp);
        if age.abs() > CALLBACK_TOLERANCE_SECS {
            return Err(GatewayError::Signature("outside the accepted time window"));
        }
        let expected = self.mac(timestamp, body)?;
        if !bool::from(expected.as_slice().ct_eq(&mac)) {
            return Err(GatewayError::Signature("does not match"));
        }
        serde_json::from_slice(body).map_err(|e| GatewayError::Body(e.to_string()))
    }

    fn refund(
        &self,
        payment: PaymentId,
        _reference: &str,
        amount: Money,
    ) -> BoxFuture<'_, Result<String, GatewayError>> {
        Box::pin(async move {
            if amount.amount_minor <= 0 {
                return Err(GatewayError::Refused("refund amount must be positive".into()));
            }
            Ok(format!("TA-REFUND-{payment}"))
        })
    }
}

/// The event the test acquirer sends for a decision (none for a timeout).
pub fn event_for(payment: PaymentId, decision: &Decision) -> Option<GatewayEvent> {
    let event_id = format!("ta-evt-{}", smartticket_core::id::Uuid::now_v7().simple());
    let outcome = match decision {
        Decision::Approve => GatewayOutcome::Approved { reference: format!("TA-{payment}") },
        Decision::Decline(reason) => GatewayOutcome::Declined { reason: (*reason).to_owned() },
        Decision::Timeout => return None,
    };
    Some(GatewayEvent { event_id, payment_id: payment, outcome })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acquirer() -> TestAcquirer {
        TestAcquirer::new(SecretString::from("shared secret".to_owned()), "http://127.0.0.1:8080/")
    }

    #[test]
    fn callbacks_verify_and_any_tampering_fails() {
        let acquirer = acquirer();
        let now = Timestamp::parse_rfc3339("2026-11-21T08:00:00Z").unwrap();
        let event = event_for(PaymentId::new(), &Decision::Approve).unwrap();
        let (body, signature) = acquirer.signed_callback(&event, now).unwrap();
        assert_eq!(acquirer.verify_callback(Some(&signature), &body, now).unwrap(), event);
        let mut tampered = body.clone();
        tampered[5] ^= 1;
        assert!(acquirer.verify_callback(Some(&signature), &tampered, now).is_err());
        assert!(acquirer.verify_callback(None, &body, now).is_err());
        assert!(acquirer.verify_callback(Some("t=1,v1=zz"), &body, now).is_err());
        let later = now.checked_add(chrono::Duration::minutes(6)).unwrap();
        assert_eq!(
            acquirer.verify_callback(Some(&signature), &body, later),
            Err(GatewayError::Signature("outside the accepted time window"))
        );
        let other = TestAcquirer::new(SecretString::from("another".to_owned()), "http://x");
        assert!(other.verify_callback(Some(&signature), &body, now).is_err());
    }

    #[test]
    fn magic_numbers_decide() {
        assert_eq!(decide(&Pan::parse("4111111111111111").unwrap()), Decision::Approve);
        assert_eq!(decide(&Pan::parse("4000000000000002").unwrap()), Decision::Decline("insufficient funds"));
        assert_eq!(decide(&Pan::parse("4000000000000119").unwrap()), Decision::Timeout);
        assert!(event_for(PaymentId::new(), &Decision::Timeout).is_none());
        let url = acquirer().checkout_url(PaymentId::new(), "http://shop/orders?x=1&y=2");
        assert!(url.starts_with("http://127.0.0.1:8080/test-acquirer/checkout/pay_"));
        assert!(url.ends_with("return=http%3A%2F%2Fshop%2Forders%3Fx%3D1%26y%3D2"), "{url}");
    }
}
