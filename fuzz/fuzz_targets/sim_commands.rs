//! Anything a terminal (or an attacker with a reader) can send to a card: the simulator
//! answers every APDU sequence without panicking, and its transaction counter never goes
//! back. The input is a sequence of APDUs, each prefixed by one length byte.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use smartticket_card::desfire::host::Desfire;
use smartticket_card::fare::{FARE_AID, KeySource, ops};
use smartticket_card::fare::records::Environment;
use smartticket_card::sim::{CardImage, SimCard};
use smartticket_card::transport::Transport;
use smartticket_core::Timestamp;
use smartticket_crypto::hsm::soft::SoftHsm;
use smartticket_crypto::keys::KeyRole;

static CARD: OnceLock<CardImage> = OnceLock::new();

fn personalised() -> CardImage {
    let hsm = SoftHsm::generate(&KeyRole::ALL).expect("keys");
    let keys = KeySource { hsm: &hsm, system_id: b"SmartTicket" };
    let mut card = Desfire::new(SimCard::blank([4, 1, 2, 3, 4, 5, 6]));
    let environment = Environment { card_number: 1, profile: 1, discount_category: 0, expires: Timestamp::EPOCH, issuer: 1 };
    ops::personalise(&mut card, &keys, &keys, &environment).expect("personalise");
    card.into_transport().image().clone()
}

fuzz_target!(|input: &[u8]| {
    let image = CARD.get_or_init(personalised).clone();
    let tmc_before = image.tmc(FARE_AID);
    let mut card = SimCard::new(image);
    let mut rest = input;
    while let Some((length, tail)) = rest.split_first() {
        let length = usize::from(*length).min(tail.len());
        let (apdu, tail) = tail.split_at(length);
        rest = tail;
        let answer = card.transmit(apdu).expect("the simulator is always present here");
        assert!(answer.len() >= 2, "every answer ends in a status word");
    }
    assert!(card.image().tmc(FARE_AID) >= tmc_before);
});
