//! The fare flow through the real pcscd: the card simulator sits in vsmartcard's virtual
//! reader ([`VpcdBridge`]) and the host driver reaches it over PC/SC ([`PcscTransport`]),
//! so every APDU crosses libpcsclite, pcscd and the vpcd driver exactly as it would for a
//! card on a USB reader. Needs pcscd with the vpcd driver (`.ci/run` starts it); without
//! it these tests fail loudly rather than pass quietly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
// Amounts are written as major_minor: 100_00 is 100.00.
#![allow(clippy::inconsistent_digit_grouping)]

use std::sync::Mutex;
use std::time::Duration;

use smartticket_card::desfire::host::Desfire;
use smartticket_card::desfire::tmac::{TmiEntry, parse_tmi, verify_transaction_mac};
use smartticket_card::fare::ops::{self, Load, Terminal, TransactionProof};
use smartticket_card::fare::records::{Contract, ContractKind, Environment};
use smartticket_card::fare::{FARE_AID, FareError, KeySource};
use smartticket_card::sim::{SimCard, Tear};
use smartticket_card::transport::vpcd::{self, Ended, RunningBridge, VPCD_ADDR_DEFAULT};
use smartticket_card::transport::{PcscTransport, Transport, VpcdBridge};
use smartticket_card::{CardError, TransportError};
use smartticket_core::Timestamp;
use smartticket_crypto::cmac::CmacKey;
use smartticket_crypto::diversify::DiversificationInput;
use smartticket_crypto::hsm::Hsm;
use smartticket_crypto::hsm::soft::SoftHsm;
use smartticket_crypto::keys::KeyRole;

/// vpcd serves one virtual card per port: the tests take turns.
static ONE_VIRTUAL_CARD: Mutex<()> = Mutex::new(());

/// What vpcd's reader is called (`FRIENDLYNAME` in /etc/reader.conf.d/vpcd); pcscd
/// appends slot numbers ("Virtual PCD 00 00").
const READER: &str = "Virtual PCD";

/// How long pcscd may take to notice the virtual card: it polls presence every 400 ms.
const CARD_WAIT: Duration = Duration::from_secs(10);

const SYSTEM_ID: &[u8] = b"SmartTicket-test";
const UID: [u8; 7] = [0x04, 0x5C, 0x5C, 0x0D, 0x00, 0x35, 0x96];

fn keys(hsm: &dyn Hsm) -> KeySource<'_> {
    KeySource { hsm, system_id: SYSTEM_ID }
}

fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

fn terminal() -> Terminal {
    Terminal { device: 7002, location: 5, at: at("2026-11-21T08:00:00Z") }
}

fn environment() -> Environment {
    Environment {
        card_number: 9_643_000_035_963,
        profile: 1,
        discount_category: 0,
        expires: at("2031-12-31T00:00:00Z"),
        issuer: 1,
    }
}

fn ten_trips(serial: u32) -> Contract {
    Contract {
        kind: ContractKind::Trips,
        product: 210,
        serial,
        zones: 0b111,
        valid_from: at("2026-11-01T00:00:00Z"),
        valid_until: at("2026-12-01T00:00:00Z"),
        discount_category: 0,
        blocked: false,
    }
}

/// What clearing does: derive the card's transaction-MAC key from the master, check TMV.
fn clearing_verifies(hsm: &dyn Hsm, proof: &TransactionProof) -> bool {
    let master = hsm.active(KeyRole::TransactionMac).unwrap();
    let input = DiversificationInput::new(&proof.uid, &FARE_AID, SYSTEM_ID).unwrap();
    let card_key = CmacKey::new(&hsm.derive_card_key(master, &input).unwrap());
    verify_transaction_mac(&card_key, proof.tmc, &proof.uid, &proof.tmi, &proof.tmv)
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

/// Puts `card` into vpcd's reader and connects to it through pcscd.
fn insert(card: SimCard) -> (RunningBridge, PcscTransport) {
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
    let transport = PcscTransport::connect(&reader).unwrap();
    assert_eq!(transport.atr().unwrap(), vpcd::ATR, "pcscd reports the bridge's ATR");
    (bridge, transport)
}

/// Takes the card out of the reader and gives it back once pcscd has seen it leave (or
/// pcscd would take the next card put in for this one).
fn take_out(bridge: RunningBridge, transport: PcscTransport) -> (SimCard, Ended) {
    let (card, ended) = bridge.stop();
    let ended = ended.unwrap_or_else(|error| panic!("the bridge failed: {error}"));
    transport.wait_until_gone(CARD_WAIT).unwrap();
    (card, ended)
}

/// Counts APDUs on their way to a card.
struct Counting<'a> {
    card: &'a mut SimCard,
    apdus: u32,
}

impl Transport for Counting<'_> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.apdus += 1;
        self.card.transmit(command)
    }

    fn describe(&self) -> String {
        "counting".into()
    }
}

/// How many APDUs a debit sends, counted on a throw-away copy of the card.
fn apdus_of_a_debit(sim: &SimCard, hsm: &SoftHsm) -> u32 {
    let mut copy = SimCard::new(sim.image().clone());
    let mut card = Desfire::new(Counting { card: &mut copy, apdus: 0 });
    ops::debit_purse(&mut card, &keys(hsm), 5_00, terminal()).unwrap();
    card.transport_mut().apdus
}

#[test]
#[ignore = "needs pcscd with vsmartcard-vpcd (see .ci/run)"]
fn personalise_load_debit_read_through_pcscd_and_every_tmac_verifies() {
    let _turn = ONE_VIRTUAL_CARD.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    require_pcscd_with_vpcd();
    let hsm = SoftHsm::generate(&KeyRole::ALL).unwrap();
    let (bridge, transport) = insert(SimCard::blank(UID));
    assert!(transport.reader().contains(READER), "{}", transport.describe());
    let mut card = Desfire::new(transport);

    let issued = ops::personalise(&mut card, &keys(&hsm), &keys(&hsm), &environment()).unwrap();
    assert_eq!((issued.uid, issued.tmc), (UID, 1));
    assert!(clearing_verifies(&hsm, &issued), "personalisation");

    let load = Load { contracts: vec![(ten_trips(35_963), 10)], purse_credit: 50_00 };
    let loaded = ops::load(&mut card, &keys(&hsm), &load, terminal()).unwrap();
    assert_eq!((loaded.slots.clone(), loaded.balance, loaded.proof.tmc), (vec![0], 50_00, 2));
    assert!(clearing_verifies(&hsm, &loaded.proof), "load");

    let debited = ops::debit_purse(&mut card, &keys(&hsm), 12_50, terminal()).unwrap();
    assert_eq!((debited.balance, debited.proof.tmc), (37_50, 3));
    assert!(clearing_verifies(&hsm, &debited.proof), "debit");
    let entries = parse_tmi(&debited.proof.tmi, |_, _| None).unwrap();
    assert!(entries.contains(&TmiEntry::Debit { file: 3, amount: 12_50 }), "the proven TMI: {entries:?}");

    let trip = ops::consume_trip(&mut card, &keys(&hsm), 0, terminal()).unwrap();
    assert_eq!((trip.trips_left, trip.proof.tmc), (Some(9), 4));
    assert!(clearing_verifies(&hsm, &trip.proof), "trip");

    let state = ops::read(&mut card, &keys(&hsm)).unwrap();
    assert_eq!(state.uid, UID);
    assert_eq!(state.environment, environment());
    assert_eq!(state.contracts[0], Some(ten_trips(35_963)));
    assert_eq!((state.purse, state.trips[0], state.tmc), (37_50, 9, 4));
    assert_eq!(state.log.iter().map(|r| r.sequence).collect::<Vec<_>>(), vec![2, 3, 4]);

    // The same card, read in-process after leaving the reader: what pcscd carried is
    // what the card committed.
    let (sim, ended) = take_out(bridge, card.into_transport());
    assert_eq!(ended, Ended::Stopped);
    assert_eq!(sim.image().tmc(FARE_AID), Some(4));
    let mut direct = Desfire::new(sim);
    assert_eq!(ops::read(&mut direct, &keys(&hsm)).unwrap(), state);
}

#[test]
#[ignore = "needs pcscd with vsmartcard-vpcd (see .ci/run)"]
fn a_card_torn_in_the_reader_is_a_removal_and_keeps_its_old_state() {
    let _turn = ONE_VIRTUAL_CARD.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    require_pcscd_with_vpcd();
    let hsm = SoftHsm::generate(&KeyRole::ALL).unwrap();
    let mut sim = SimCard::blank(UID);
    {
        let mut card = Desfire::new(&mut sim);
        ops::personalise(&mut card, &keys(&hsm), &keys(&hsm), &environment()).unwrap();
        let load = Load { contracts: vec![], purse_credit: 20_00 };
        ops::load(&mut card, &keys(&hsm), &load, terminal()).unwrap();
    }
    // Pull the card out of the field just before the debit's last APDU, the commit.
    let commit = apdus_of_a_debit(&sim, &hsm);
    sim.arm_tear(Tear::BeforeCommand(commit));
    let (bridge, transport) = insert(sim);
    let mut card = Desfire::new(transport);
    let torn = ops::debit_purse(&mut card, &keys(&hsm), 5_00, terminal());
    assert!(
        matches!(torn, Err(FareError::Card(CardError::Transport(TransportError::CardRemoved)))),
        "through pcscd, a tear is a removal: {torn:?}"
    );
    let (mut sim, ended) = take_out(bridge, card.into_transport());
    assert_eq!(ended, Ended::CardGone, "the bridge hung up on vpcd: a removal");
    assert!(!sim.is_present());

    // Tapped again: the debit never happened, and now it completes.
    sim.tap();
    let (bridge, transport) = insert(sim);
    let mut card = Desfire::new(transport);
    let state = ops::read(&mut card, &keys(&hsm)).unwrap();
    assert_eq!((state.purse, state.tmc), (20_00, 2), "nothing of the torn debit remains");
    let debited = ops::debit_purse(&mut card, &keys(&hsm), 5_00, terminal()).unwrap();
    assert_eq!((debited.balance, debited.proof.tmc), (15_00, 3));
    assert!(clearing_verifies(&hsm, &debited.proof));
    assert_eq!(take_out(bridge, card.into_transport()).0.image().tmc(FARE_AID), Some(3));
}
