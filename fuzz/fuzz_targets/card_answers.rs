//! A card (or someone between us and it) answering anything at all: the host driver reading
//! a whole fare card must return an error, never panic, and never accept data without a
//! valid MAC. The input is a sequence of answers, each prefixed by one length byte.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use smartticket_card::desfire::host::Desfire;
use smartticket_card::fare::KeySource;
use smartticket_card::fare::ops;
use smartticket_card::transport::{Transport, TransportError};
use smartticket_crypto::hsm::soft::SoftHsm;
use smartticket_crypto::keys::KeyRole;

static HSM: OnceLock<SoftHsm> = OnceLock::new();

struct Scripted<'a> {
    answers: &'a [u8],
}

impl Transport for Scripted<'_> {
    fn transmit(&mut self, _command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let Some((length, rest)) = self.answers.split_first() else {
            return Err(TransportError::CardRemoved);
        };
        let length = usize::from(*length).min(rest.len());
        let (answer, rest) = rest.split_at(length);
        self.answers = rest;
        Ok(answer.to_vec())
    }
    fn describe(&self) -> String {
        "fuzz".into()
    }
}

fuzz_target!(|answers: &[u8]| {
    let hsm = HSM.get_or_init(|| SoftHsm::generate(&KeyRole::ALL).expect("keys"));
    let keys = KeySource { hsm, system_id: b"SmartTicket" };
    let mut card = Desfire::new(Scripted { answers });
    // Without the card's keys no garbage can complete an authentication, so every run must
    // end in an error.
    assert!(ops::read(&mut card, &keys).is_err());
});
