//! The EMV read flow through the real pcscd: a simulated bank card sits in vsmartcard's
//! virtual reader ([`VpcdBridge`]) and [`read_card`] reaches it over PC/SC
//! ([`PcscTransport`]), as a validator reads a bank card on a USB reader. Needs pcscd with
//! the vpcd driver (`.ci/run` starts it); without it these tests fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::Mutex;
use std::time::Duration;

use smartticket_card::emv::sim::EmvSimCard;
use smartticket_card::emv::{EmvCard, TerminalData, read_card};
use smartticket_card::transport::vpcd::{self, Ended, VPCD_ADDR_DEFAULT};
use smartticket_card::transport::{PcscTransport, VpcdBridge};
use smartticket_crypto::token::Expiry;

/// vpcd serves one virtual card per port: the tests take turns.
static ONE_VIRTUAL_CARD: Mutex<()> = Mutex::new(());

/// What vpcd's reader is called (`FRIENDLYNAME` in /etc/reader.conf.d/vpcd).
const READER: &str = "Virtual PCD";

/// How long pcscd may take to notice the virtual card: it polls presence every 400 ms.
const CARD_WAIT: Duration = Duration::from_secs(10);

/// Visa's published test PAN.
const VISA_PAN: &str = "4761 7390 0101 0119";
/// A Luhn-valid Mastercard-range PAN.
const MASTERCARD_PAN: &str = "5413 3300 8901 0129";

fn expiry() -> Expiry {
    Expiry::new(28, 2).unwrap()
}

fn terminal() -> TerminalData {
    TerminalData::transit(203, 203, 261121, [0x35, 0x96, 0x3A, 0x5E])
}

/// Fails the test with what to do when pcscd or its vpcd reader is missing.
fn require_pcscd_with_vpcd() {
    let readers = PcscTransport::list_readers().unwrap_or_else(|error| {
        panic!(
            "pcscd is not reachable: {error}. These tests need pcscd with vsmartcard-vpcd: \
             start `pcscd -f -a &` as root (see .ci/run)"
        )
    });
    assert!(
        readers.iter().any(|name| name.contains(READER)),
        "pcscd runs but has no {READER:?} reader (readers: {readers:?}); install vsmartcard-vpcd \
         (/etc/reader.conf.d/vpcd) and restart pcscd"
    );
}

/// Puts `card` into vpcd's reader, reads it over PC/SC, takes it out again (waiting until
/// pcscd has seen it leave, so the next test's card is not taken for this one).
fn read_through_pcscd(card: EmvSimCard) -> (EmvCard, EmvSimCard) {
    let bridge = VpcdBridge::connect(VPCD_ADDR_DEFAULT, card)
        .unwrap_or_else(|error| panic!("cannot put the card into vpcd's reader: {error}"))
        .spawn()
        .unwrap();
    let reader = PcscTransport::wait_for_card(READER, CARD_WAIT).unwrap_or_else(|error| {
        panic!(
            "pcscd did not see the virtual card within {CARD_WAIT:?}: {error} (if an earlier run was \
             interrupted, pcscd may still take its card for present: restart pcscd)"
        )
    });
    let mut transport = PcscTransport::connect(&reader).unwrap();
    assert_eq!(transport.atr().unwrap(), vpcd::EMV_ATR, "pcscd reports the bank card's ATR");
    let read = read_card(&mut transport, &terminal());
    let (sim, ended) = bridge.stop();
    assert_eq!(ended.unwrap(), Ended::Stopped);
    transport.wait_until_gone(CARD_WAIT).unwrap();
    (read.unwrap(), sim)
}

#[test]
#[ignore = "needs pcscd with the vpcd reader"]
fn a_visa_card_is_read_through_pcscd() {
    let _turn = ONE_VIRTUAL_CARD.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    require_pcscd_with_vpcd();
    let visa = EmvSimCard::visa(VISA_PAN, expiry(), "VISA CREDIT").unwrap().with_preferred_name("Test Bank Visa");
    let (card, sim) = read_through_pcscd(visa);
    assert_eq!(card.pan().digits(), "4761739001010119");
    assert_eq!(card.masked_pan(), "4761 **** **** 0119");
    assert_eq!(card.expiry(), expiry());
    assert_eq!(card.aid(), [0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10]);
    assert_eq!((card.label(), card.preferred_name()), (Some("VISA CREDIT"), Some("Test Bank Visa")));
    // The strict PDOL check passed, so the PDOL answer crossed pcscd whole.
    assert!(sim.commands_received() >= 5, "PPSE, AID, GPO and two records: {}", sim.commands_received());
}

#[test]
#[ignore = "needs pcscd with the vpcd reader"]
fn a_mastercard_ignoring_the_pdol_is_read_through_pcscd() {
    let _turn = ONE_VIRTUAL_CARD.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    require_pcscd_with_vpcd();
    let mastercard = EmvSimCard::mastercard(MASTERCARD_PAN, expiry(), "MASTERCARD")
        .unwrap()
        .with_pdol(Some(vec![0x9F, 0x66, 0x04, 0x9F, 0x37, 0x04]))
        .ignoring_pdol();
    let (card, _) = read_through_pcscd(mastercard);
    assert_eq!(card.pan().digits(), "5413330089010129");
    assert_eq!(card.expiry(), expiry());
    assert_eq!(card.aid(), [0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10]);
    assert_eq!(card.label(), Some("MASTERCARD"));
}
