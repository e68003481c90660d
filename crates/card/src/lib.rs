//! Talking to fare media: ISO 7816-4 APDUs and BER-TLV ([`apdu`], [`tlv`]), the ways bytes
//! reach a card ([`transport`]), MIFARE DESFire EV2 secure messaging ([`desfire`]), and the
//! fare application built on it, with a card simulator that implements the card side of
//! exactly the subset the host uses.
//!
//! Every byte from a card is untrusted: parsers never panic, never allocate without a bound,
//! and answer with a typed error saying who is at fault.
#![forbid(unsafe_code)]

pub mod apdu;
pub mod codec;
pub mod desfire;
pub mod emv;
pub mod error;
pub mod fare;
pub mod sim;
pub mod tlv;
pub mod transport;

pub use error::{CardError, TransportError};
