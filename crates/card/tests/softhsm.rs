//! The whole fare flow with every master key inside a PKCS#11 token (SoftHSM2): the card
//! keys are diversified by the token (`CKM_AES_CMAC`), and clearing's check of the
//! transaction MAC uses a key the token derived.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![allow(clippy::inconsistent_digit_grouping)]

use smartticket_card::desfire::host::Desfire;
use smartticket_card::desfire::tmac::verify_transaction_mac;
use smartticket_card::fare::ops::{self, Load, Terminal};
use smartticket_card::fare::records::Environment;
use smartticket_card::fare::{FARE_AID, KeySource};
use smartticket_card::sim::SimCard;
use smartticket_core::Timestamp;
use smartticket_crypto::cmac::CmacKey;
use smartticket_crypto::diversify::DiversificationInput;
use smartticket_crypto::hsm::pkcs11::{Pkcs11Config, Pkcs11Hsm};
use smartticket_crypto::hsm::{Hsm, KeyAdmin};
use smartticket_crypto::keys::KeyRole;

fn variable(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: this test needs a SoftHSM2 token (SMARTTICKET_TEST_PKCS11_MODULE, \
             SMARTTICKET_TEST_PKCS11_TOKEN, SMARTTICKET_TEST_PKCS11_PIN; .ci/run sets them up)"
        )
    })
}

#[test]
#[ignore = "needs SoftHSM2 (SMARTTICKET_TEST_PKCS11_MODULE, _TOKEN, _PIN)"]
fn the_fare_flow_with_keys_that_never_leave_softhsm2() {
    let namespace = format!("card-test-{}", std::process::id());
    let config = Pkcs11Config {
        module: variable("SMARTTICKET_TEST_PKCS11_MODULE").into(),
        token_label: variable("SMARTTICKET_TEST_PKCS11_TOKEN"),
        pin: variable("SMARTTICKET_TEST_PKCS11_PIN").into(),
        namespace,
    };
    let mut hsm = Pkcs11Hsm::open(config).expect("open the SoftHSM2 token");
    for role in KeyRole::ALL {
        hsm.rotate(role).unwrap();
    }
    let keys = KeySource { hsm: &hsm, system_id: b"SmartTicket" };
    let at = Timestamp::parse_rfc3339("2026-11-21T08:00:00Z").unwrap();
    let terminal = Terminal { device: 1, location: 1, at };
    let environment = Environment { card_number: 42, profile: 1, discount_category: 0, expires: at, issuer: 1 };
    let mut card = Desfire::new(SimCard::blank([0x04, 0xAA, 1, 2, 3, 4, 5]));
    let issued = ops::personalise(&mut card, &keys, &keys, &environment).unwrap();
    let loaded = ops::load(&mut card, &keys, &Load { contracts: vec![], purse_credit: 80_00 }, terminal).unwrap();
    let debited = ops::debit_purse(&mut card, &keys, 12_50, terminal).unwrap();
    let state = ops::read(&mut card, &keys).unwrap();
    assert_eq!((state.purse, state.tmc), (67_50, 3));

    let master = hsm.active(KeyRole::TransactionMac).unwrap();
    for proof in [issued, loaded.proof, debited.proof] {
        let input = DiversificationInput::new(&proof.uid, &FARE_AID, b"SmartTicket").unwrap();
        let card_key = CmacKey::new(&hsm.derive_card_key(master, &input).unwrap());
        assert!(verify_transaction_mac(&card_key, proof.tmc, &proof.uid, &proof.tmi, &proof.tmv), "TMC {}", proof.tmc);
    }
    // Rotation: a card personalised under debit v1 still debits after v2 becomes active.
    hsm.rotate(KeyRole::Debit).unwrap();
    let keys = KeySource { hsm: &hsm, system_id: b"SmartTicket" };
    assert_eq!(ops::debit_purse(&mut card, &keys, 50, terminal).unwrap().balance, 67_00);
}
