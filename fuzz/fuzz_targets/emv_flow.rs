//! A bank card (or someone between us and it) answering anything at all to the EMV read
//! flow: `emv::read_card` must return an error or a card, never panic, never hang, and never
//! accept a PAN that fails the Luhn check or the ISO/IEC 7812 length.
//!
//! The input is the card's answers, one after another, each prefixed by a two-byte
//! big-endian length (two bytes, because real answers run to 258 bytes: a 256-byte record
//! and SW1-SW2). When the input runs out the card "leaves the field". The first byte picks
//! the terminal's PDOL values, so both a zero and a non-zero amount are exercised.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smartticket_card::apdu::GET_RESPONSE_ROUNDS_MAX;
use smartticket_card::emv::{self, TerminalData};
use smartticket_card::transport::{Transport, TransportError};
use smartticket_crypto::token::{PAN_DIGITS_MAX, PAN_DIGITS_MIN, luhn_valid};

struct Scripted<'a> {
    answers: &'a [u8],
    commands: usize,
}

impl Transport for Scripted<'_> {
    fn transmit(&mut self, _command: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.commands += 1;
        let Some((length, rest)) = self.answers.split_first_chunk::<2>() else {
            return Err(TransportError::CardRemoved);
        };
        let length = usize::from(u16::from_be_bytes(*length)).min(rest.len());
        let (answer, rest) = rest.split_at(length);
        self.answers = rest;
        Ok(answer.to_vec())
    }

    fn describe(&self) -> String {
        "fuzz".into()
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&selector, answers)) = input.split_first() else {
        return;
    };
    let mut terminal = TerminalData::transit(276, 978, 260115, [selector, 0x11, 0x22, 0x33]);
    terminal.amount_authorised_minor = u64::from(selector) * 10;
    let mut card = Scripted { answers, commands: 0 };
    if let Ok(read) = emv::read_card(&mut card, &terminal) {
        let digits = read.pan().digits();
        assert!(luhn_valid(digits), "accepted a PAN failing the Luhn check");
        assert!((PAN_DIGITS_MIN..=PAN_DIGITS_MAX).contains(&digits.len()));
    }
    // The flow's limits bound the commands whatever the input: one SELECT PPSE, then per
    // application a SELECT and at most two GET PROCESSING OPTIONS, and the records of one;
    // each exchange is one command, maybe a re-send after 6Cxx, and its GET RESPONSE rounds.
    let exchanges = 1 + emv::APPLICATIONS_TRIED_MAX * 3 + emv::RECORDS_READ_MAX;
    let commands_max = exchanges * (2 + GET_RESPONSE_ROUNDS_MAX);
    assert!(card.commands <= commands_max, "{} commands, at most {commands_max}", card.commands);
});
