//! The EMV read flow against the simulated contactless card: each card family the flow must
//! cope with (Visa-like qVSDC with a PDOL, Mastercard-like format 1, cards that ignore or
//! refuse a PDOL, PAN only in track 2, no PPSE), PDOLs asking for unknown or oversized data,
//! a card pulled away at every step, and the simulator itself answering arbitrary commands.

// Test helpers outside #[test] functions unwrap too: a failure there is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use proptest::prelude::*;
use smartticket_card::apdu::StatusWord;
use smartticket_card::emv::sim::{EmvSimCard, GpoFormat};
use smartticket_card::emv::{self, EmvError, Step, TerminalData};
use smartticket_card::transport::{Transport, TransportError};
use smartticket_crypto::token::{Expiry, PanError, token_input};

/// Visa's published test PAN.
const VISA_PAN: &str = "4761 7390 0101 0119";
/// A Luhn-valid Mastercard-range PAN.
const MASTERCARD_PAN: &str = "5413 3300 8901 0129";

fn terminal() -> TerminalData {
    TerminalData::transit(276, 978, 260115, [0xDE, 0xAD, 0xBE, 0xEF])
}

fn expiry() -> Expiry {
    Expiry::new(28, 2).unwrap()
}

fn visa() -> EmvSimCard {
    EmvSimCard::visa(VISA_PAN, expiry(), "VISA CREDIT").unwrap()
}

fn mastercard() -> EmvSimCard {
    EmvSimCard::mastercard(MASTERCARD_PAN, expiry(), "MASTERCARD").unwrap()
}

#[test]
fn visa_like_card_with_pdol_and_format_2() {
    let mut card = visa().with_preferred_name("My Bank Visa");
    let read = emv::read_card(&mut card, &terminal()).unwrap();
    assert_eq!(read.pan().digits(), "4761739001010119");
    assert_eq!(read.masked_pan(), "4761 **** **** 0119");
    assert_eq!(read.expiry(), expiry());
    assert_eq!(read.label(), Some("VISA CREDIT"));
    assert_eq!(read.preferred_name(), Some("My Bank Visa"));
    assert_eq!(read.pan_sequence_number(), Some(0));
    assert_eq!(read.aid(), [0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10]);
    assert_eq!(read.token_input(), token_input(card.pan(), expiry()));
    // PPSE, SELECT, GPO and two records: no retry was needed.
    assert_eq!(card.commands_received(), 5);
    assert!(!format!("{read:?}").contains("4761739001010119"));
    assert!(!card.describe().contains("4761739001010119"));
}

#[test]
fn mastercard_like_card_with_format_1_and_no_pdol() {
    let mut card = mastercard().with_pan_sequence_number(Some(12));
    let read = emv::read_card(&mut card, &terminal()).unwrap();
    assert_eq!(read.pan().digits(), "5413330089010129");
    assert_eq!(read.expiry(), expiry());
    assert_eq!(read.pan_sequence_number(), Some(12));
    assert_eq!(read.application_interchange_profile(), [0x19, 0x80]);
}

#[test]
fn mastercard_like_card_with_format_2() {
    let mut card = mastercard().with_gpo_format(GpoFormat::Format2).with_pan_sequence_number(None);
    let read = emv::read_card(&mut card, &terminal()).unwrap();
    assert_eq!(read.pan().digits(), "5413330089010129");
    assert_eq!(read.pan_sequence_number(), None);
}

#[test]
fn pan_only_in_track_2() {
    for mut card in [visa().with_pan_only_in_track_2(), mastercard().with_pan_only_in_track_2()] {
        let read = emv::read_card(&mut card, &terminal()).unwrap();
        assert_eq!(read.pan().digits(), card.pan().digits());
        // Without 5F24 the expiry comes from track 2.
        assert_eq!(read.expiry(), expiry());
    }
}

#[test]
fn card_ignoring_the_pdol_accepts_whatever_we_send() {
    // A PDOL our answer could not fill: the card ignores it, so the empty retry works.
    let mut card = visa().with_pdol(Some(hex::decode("9F7C81FFDF0110").unwrap())).ignoring_pdol();
    let read = emv::read_card(&mut card, &terminal()).unwrap();
    assert_eq!(read.pan().digits(), "4761739001010119");
}

#[test]
fn card_refusing_a_wrong_pdol_gets_unknown_tags_as_zeros_of_the_right_length() {
    // Unknown (DF8101), constructed (BF50) and scheme-specific (9F6E, 9F7C) tags: answered
    // with zeros of the asked lengths, so a strict card finds the length right.
    let pdol = hex::decode("9F6604DF8101089F6E049F7C14BF50029F3704").unwrap();
    let mut card = visa().with_pdol(Some(pdol)).refusing_wrong_pdol();
    let read = emv::read_card(&mut card, &terminal()).unwrap();
    assert_eq!(read.pan().digits(), "4761739001010119");
    assert_eq!(card.commands_received(), 5);
}

#[test]
fn card_accepting_only_an_empty_pdol_is_retried_once() {
    let mut card = visa().accepting_only_empty_pdol();
    let read = emv::read_card(&mut card, &terminal()).unwrap();
    assert_eq!(read.pan().digits(), "4761739001010119");
    // PPSE, SELECT, GPO refused, GPO with 83 00, two records.
    assert_eq!(card.commands_received(), 6);
}

#[test]
fn oversized_pdol_falls_back_to_an_empty_one() {
    // 255 + 16 bytes asked: more than a GET PROCESSING OPTIONS carries. A card that ignores
    // the PDOL takes the empty one; a strict card refuses it, and the error says why.
    let oversized = hex::decode("9F7C81FFDF0110").unwrap();
    let mut lenient = visa().with_pdol(Some(oversized.clone())).ignoring_pdol();
    assert!(emv::read_card(&mut lenient, &terminal()).is_ok());

    let mut strict = visa().with_pdol(Some(oversized)).refusing_wrong_pdol();
    let error = emv::read_card(&mut strict, &terminal()).unwrap_err();
    let EmvError::PdolUnusable { why, sw } = &error else { panic!("{error}") };
    assert!(why.contains("271 bytes"), "{why}");
    assert_eq!(*sw, StatusWord(0x6985));
    assert_eq!(error.step(), Some(Step::GetProcessingOptions));
}

#[test]
fn malformed_pdol_falls_back_to_an_empty_one() {
    // A truncated tag, an entry asking 256 bytes, and 65 entries.
    let too_many: Vec<u8> = std::iter::repeat_n([0x9F, 0x37, 0x01], 65).flatten().collect();
    for pdol in [vec![0x9F], hex::decode("9F7C820100").unwrap(), too_many] {
        let mut lenient = visa().with_pdol(Some(pdol.clone())).ignoring_pdol();
        assert!(emv::read_card(&mut lenient, &terminal()).is_ok());
        let mut strict = visa().with_pdol(Some(pdol));
        let error = emv::read_card(&mut strict, &terminal()).unwrap_err();
        assert!(matches!(error, EmvError::PdolUnusable { .. }), "{error}");
    }
}

#[test]
fn card_without_ppse_is_found_by_direct_selection() {
    let mut card = visa().without_ppse();
    let read = emv::read_card(&mut card, &terminal()).unwrap();
    assert_eq!(read.pan().digits(), "4761739001010119");

    // Mastercard comes after the three Visa AIDs in KNOWN_AIDS.
    let mut card = mastercard().without_ppse();
    let read = emv::read_card(&mut card, &terminal()).unwrap();
    assert_eq!(read.pan().digits(), "5413330089010129");
    // PPSE, 3 Visa SELECTs refused, Mastercard SELECT, GPO, two records.
    assert_eq!(card.commands_received(), 8);
}

#[test]
fn unknown_application_without_ppse() {
    let mut card = visa().with_aid(&[0xA0, 0x00, 0x00, 0x09, 0x99, 0x99]).without_ppse();
    let error = emv::read_card(&mut card, &terminal()).unwrap_err();
    assert!(matches!(error, EmvError::NoApplication { .. }), "{error}");
    assert!(error.to_string().contains("known AIDs"), "{error}");
}

#[test]
fn simulator_refuses_an_invalid_pan() {
    assert_eq!(EmvSimCard::visa("4761 7390 0101 0118", expiry(), "X").unwrap_err(), PanError::Luhn);
    assert!(EmvSimCard::mastercard("12345", expiry(), "X").is_err());
}

/// Passes commands to a card until `remaining` reaches zero, then acts as if the card left.
struct PulledAway<T> {
    card: T,
    remaining: usize,
}

impl<T: Transport> Transport for PulledAway<T> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        if self.remaining == 0 {
            return Err(TransportError::CardRemoved);
        }
        self.remaining -= 1;
        self.card.transmit(command)
    }

    fn describe(&self) -> String {
        self.card.describe()
    }
}

#[test]
fn card_pulled_away_at_every_step_is_a_transport_error_naming_the_step() {
    let expected_steps = [
        Step::SelectPpse,
        Step::SelectApplication,
        Step::GetProcessingOptions,
        Step::ReadRecord { sfi: 1, record: 1 },
        Step::ReadRecord { sfi: 2, record: 1 },
    ];
    for (remaining, step) in expected_steps.into_iter().enumerate() {
        let mut card = PulledAway { card: visa(), remaining };
        let error = emv::read_card(&mut card, &terminal()).unwrap_err();
        assert_eq!(error, EmvError::Transport { step, source: TransportError::CardRemoved });
        assert!(error.is_transport());
    }
    let mut card = PulledAway { card: visa(), remaining: expected_steps.len() };
    assert!(emv::read_card(&mut card, &terminal()).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// The simulator answers anything with a status word and never panics.
    #[test]
    fn simulator_answers_arbitrary_commands(commands in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..16)) {
        let mut card = visa();
        for command in commands {
            let response = card.respond(&command);
            prop_assert!(response.len() >= 2);
        }
    }

    /// Any valid PAN and expiry survive a round trip through every card family.
    #[test]
    fn any_valid_pan_reads_back(
        body in "[0-9]{11,18}",
        year in 0_u8..=99,
        month in 1_u8..=12,
        family in 0_usize..4,
    ) {
        let pan = with_check_digit(&body);
        let expiry = Expiry::new(year, month).unwrap();
        let card = match family {
            0 => EmvSimCard::visa(&pan, expiry, "V").unwrap(),
            1 => EmvSimCard::mastercard(&pan, expiry, "M").unwrap(),
            2 => EmvSimCard::visa(&pan, expiry, "V").unwrap().with_pan_only_in_track_2(),
            _ => EmvSimCard::mastercard(&pan, expiry, "M").unwrap().accepting_only_empty_pdol().without_ppse(),
        };
        let mut card = card;
        let read = emv::read_card(&mut card, &terminal()).unwrap();
        prop_assert_eq!(read.pan().digits(), pan.as_str());
        prop_assert_eq!(read.expiry(), expiry);
    }
}

/// `body` followed by its Luhn check digit.
fn with_check_digit(body: &str) -> String {
    (0..=9)
        .map(|digit| format!("{body}{digit}"))
        .find(|candidate| smartticket_crypto::token::luhn_valid(candidate))
        .unwrap()
}
