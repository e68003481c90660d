//! The fare application end to end against the card simulator: personalise, load, read,
//! debit, consume; the transaction MAC verified as clearing will; and every attack and
//! accident the card must survive.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
// Amounts are written as major_minor: 100_00 is 100.00.
#![allow(clippy::inconsistent_digit_grouping)]

use proptest::prelude::*;
use smartticket_card::desfire::Status;
use smartticket_card::desfire::host::Desfire;
use smartticket_card::desfire::tmac::{TmiEntry, parse_tmi, verify_transaction_mac};
use smartticket_card::fare::ops::{self, Load, Terminal, TransactionProof};
use smartticket_card::fare::records::{Contract, ContractKind, Environment};
use smartticket_card::fare::{FARE_AID, FareError, KeySource};
use smartticket_card::sim::{SimCard, Tear};
use smartticket_card::transport::Transport;
use smartticket_card::{CardError, TransportError};
use smartticket_core::Timestamp;
use smartticket_crypto::cmac::CmacKey;
use smartticket_crypto::diversify::DiversificationInput;
use smartticket_crypto::hsm::soft::SoftHsm;
use smartticket_crypto::hsm::{Hsm, HsmError};
use smartticket_crypto::keys::{KeyRef, KeyRole};

const SYSTEM_ID: &[u8] = b"SmartTicket-test";

fn hsm() -> SoftHsm {
    SoftHsm::generate(&KeyRole::ALL).unwrap()
}

fn keys(hsm: &dyn Hsm) -> KeySource<'_> {
    KeySource { hsm, system_id: SYSTEM_ID }
}

fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

fn terminal() -> Terminal {
    Terminal { device: 7001, location: 3, at: at("2026-11-21T08:00:00Z") }
}

fn environment() -> Environment {
    Environment {
        card_number: 9_643_000_012_345,
        profile: 1,
        discount_category: 0,
        expires: at("2031-12-31T00:00:00Z"),
        issuer: 1,
    }
}

fn month_pass(serial: u32) -> Contract {
    Contract {
        kind: ContractKind::Period,
        product: 101,
        serial,
        zones: 0b111,
        valid_from: at("2026-11-01T00:00:00Z"),
        valid_until: at("2026-12-01T00:00:00Z"),
        discount_category: 0,
        blocked: false,
    }
}

fn ten_trips(serial: u32) -> Contract {
    Contract { kind: ContractKind::Trips, product: 210, serial, ..month_pass(serial) }
}

fn personalised(hsm: &SoftHsm, uid: [u8; 7]) -> (Desfire<SimCard>, TransactionProof) {
    let mut card = Desfire::new(SimCard::blank(uid));
    let proof = ops::personalise(&mut card, &keys(hsm), &keys(hsm), &environment()).unwrap();
    (card, proof)
}

/// What clearing does: derive the card's transaction-MAC key from the master, check TMV.
fn clearing_verifies(hsm: &dyn Hsm, proof: &TransactionProof) -> bool {
    let master = hsm.active(KeyRole::TransactionMac).unwrap();
    let input = DiversificationInput::new(&proof.uid, &FARE_AID, SYSTEM_ID).unwrap();
    let card_key = CmacKey::new(&hsm.derive_card_key(master, &input).unwrap());
    verify_transaction_mac(&card_key, proof.tmc, &proof.uid, &proof.tmi, &proof.tmv)
}

const UID: [u8; 7] = [0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66];

#[test]
fn personalise_load_read_debit_consume_and_every_tmac_verifies() {
    let hsm = hsm();
    let (mut card, issued) = personalised(&hsm, UID);
    assert_eq!(issued.tmc, 1);
    assert!(clearing_verifies(&hsm, &issued));

    let load = Load { contracts: vec![(month_pass(1), 0), (ten_trips(2), 10)], purse_credit: 50_00 };
    let loaded = ops::load(&mut card, &keys(&hsm), &load, terminal()).unwrap();
    assert_eq!((loaded.slots.clone(), loaded.balance, loaded.proof.tmc), (vec![0, 1], 50_00, 2));
    assert!(clearing_verifies(&hsm, &loaded.proof));

    let debited = ops::debit_purse(&mut card, &keys(&hsm), 30_00, terminal()).unwrap();
    assert_eq!((debited.balance, debited.proof.tmc), (20_00, 3));
    assert!(clearing_verifies(&hsm, &debited.proof));
    let entries = parse_tmi(&debited.proof.tmi, |_, _| None).unwrap();
    assert!(
        entries.contains(&TmiEntry::Debit { file: 3, amount: 30_00 }),
        "clearing reads the debit from the proven TMI: {entries:?}"
    );

    let trip = ops::consume_trip(&mut card, &keys(&hsm), 1, terminal()).unwrap();
    assert_eq!((trip.trips_left, trip.proof.tmc), (Some(9), 4));
    assert!(clearing_verifies(&hsm, &trip.proof));

    let state = ops::read(&mut card, &keys(&hsm)).unwrap();
    assert_eq!(state.environment, environment());
    assert_eq!(state.contracts[0], Some(month_pass(1)));
    assert_eq!(state.contracts[1], Some(ten_trips(2)));
    assert_eq!((state.purse, state.trips, state.tmc), (20_00, [0, 9, 0, 0], 4));
    assert_eq!(state.log.len(), 3);
    assert_eq!(
        state.log.iter().map(|r| r.sequence).collect::<Vec<_>>(),
        vec![2, 3, 4],
        "each log record names its transaction"
    );
    assert!(state.key_versions.iter().all(|v| *v == 1));
    assert!(state.contracts[0].unwrap().covers(at("2026-11-21T08:00:00Z"), 2));
    assert!(!state.contracts[0].unwrap().covers(at("2026-11-21T08:00:00Z"), 4), "zone 4 is not covered");
}

#[test]
fn loading_the_same_contract_twice_is_refused_before_writing() {
    let hsm = hsm();
    let (mut card, _) = personalised(&hsm, UID);
    let load = Load { contracts: vec![(month_pass(77), 0)], purse_credit: 0 };
    ops::load(&mut card, &keys(&hsm), &load, terminal()).unwrap();
    let again = ops::load(&mut card, &keys(&hsm), &load, terminal());
    assert!(matches!(again, Err(FareError::Refused(_))), "{again:?}");
    assert_eq!(card.transport_mut().image().tmc(FARE_AID), Some(2), "nothing was committed");
}

#[test]
fn a_validator_profile_cannot_credit() {
    let hsm = hsm();
    let (mut card, _) = personalised(&hsm, UID);
    let sam = hsm.restricted_to(&KeyRole::SAM_PROFILE);
    let load = Load { contracts: vec![], purse_credit: 1_000_00 };
    match ops::load(&mut card, &keys(&sam), &load, terminal()) {
        Err(FareError::Hsm(HsmError::KeyNotHeld(KeyRef { role: KeyRole::Credit, .. }))) => {}
        other => panic!("a SAM profile must not derive the credit key: {other:?}"),
    }
    // And the card itself refuses a credit under the debit key, even from someone who
    // holds the debit key.
    let uid = ops::identify(&mut card).unwrap();
    card.select_application(FARE_AID).unwrap();
    let debit_key =
        keys(&sam).card_key(KeyRole::Debit, sam.active(KeyRole::Debit).unwrap().version, &uid, FARE_AID).unwrap();
    let mut session = card.authenticate(2, debit_key).unwrap();
    let refused = session.credit(3, 100, smartticket_card::desfire::files::CommMode::Mac).unwrap_err();
    assert_eq!(refused.status(), Some(Status::PERMISSION_DENIED));
    drop(session);
    assert_eq!(ops::read(&mut card, &keys(&sam)).unwrap().purse, 0);
}

#[test]
fn keys_of_another_card_do_not_open_this_one() {
    let hsm = hsm();
    let (mut card, _) = personalised(&hsm, UID);
    let other_uid = [0x04, 9, 9, 9, 9, 9, 9];
    let wrong_key =
        keys(&hsm).card_key(KeyRole::Read, hsm.active(KeyRole::Read).unwrap().version, &other_uid, FARE_AID).unwrap();
    card.select_application(FARE_AID).unwrap();
    let error = card.authenticate(1, wrong_key).err().unwrap();
    assert_eq!(error.status(), Some(Status::AUTHENTICATION_ERROR), "{error:?}");
    let other_master = SoftHsm::generate(&KeyRole::ALL).unwrap();
    assert!(matches!(ops::read(&mut card, &keys(&other_master)), Err(FareError::Card(_))), "another system's masters");
}

/// A transport that records APDUs, and can flip a bit of the last MAC byte of one command
/// or one answer (counted from 0).
struct Wire<'a> {
    card: &'a mut SimCard,
    sent: Vec<Vec<u8>>,
    flip_command: Option<usize>,
    flip_answer: Option<usize>,
}

impl<'a> Wire<'a> {
    fn new(card: &'a mut SimCard) -> Self {
        Wire { card, sent: Vec::new(), flip_command: None, flip_answer: None }
    }
}

impl Transport for Wire<'_> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let index = self.sent.len();
        let mut command = command.to_vec();
        if self.flip_command == Some(index) {
            let last_mac_byte = command.len() - 2; // before Le
            command[last_mac_byte] ^= 0x01;
        }
        self.sent.push(command.clone());
        let mut answer = self.card.transmit(&command)?;
        if self.flip_answer == Some(index) {
            let last_mac_byte = answer.len() - 3; // before SW1 SW2
            answer[last_mac_byte] ^= 0x01;
        }
        Ok(answer)
    }
    fn describe(&self) -> String {
        "wire".into()
    }
}

fn debit_key(hsm: &SoftHsm) -> smartticket_crypto::cmac::SecretKey16 {
    keys(hsm).card_key(KeyRole::Debit, hsm.active(KeyRole::Debit).unwrap().version, &UID, FARE_AID).unwrap()
}

const MAC: smartticket_card::desfire::files::CommMode = smartticket_card::desfire::files::CommMode::Mac;

fn funded_card(hsm: &SoftHsm) -> SimCard {
    let (mut card, _) = personalised(hsm, UID);
    ops::load(&mut card, &keys(hsm), &Load { contracts: vec![], purse_credit: 100_00 }, terminal()).unwrap();
    card.into_transport()
}

#[test]
fn a_replayed_command_is_refused_within_the_session() {
    let hsm = hsm();
    let mut sim = funded_card(&hsm);
    let mut desfire = Desfire::new(Wire::new(&mut sim));
    desfire.select_application(FARE_AID).unwrap();
    let mut session = desfire.authenticate(2, debit_key(&hsm)).unwrap();
    session.debit(3, 10_00, MAC).unwrap();
    drop(session);
    let wire = desfire.transport_mut();
    let debit_apdu = wire.sent.last().unwrap().clone();
    assert_eq!(debit_apdu[1], 0xDC);
    let answer = wire.card.transmit(&debit_apdu).unwrap();
    assert_eq!(answer, vec![0x91, 0x1E], "the same MAC under the next command counter is an integrity error");
    let mut card = Desfire::new(sim);
    assert_eq!(ops::read(&mut card, &keys(&hsm)).unwrap().purse, 100_00, "nothing was committed");
}

#[test]
fn a_command_mac_flipped_by_one_bit_is_refused() {
    let hsm = hsm();
    let mut sim = funded_card(&hsm);
    let mut wire = Wire::new(&mut sim);
    wire.flip_command = Some(3); // select, auth part 1, auth part 2, then the debit
    let mut desfire = Desfire::new(wire);
    desfire.select_application(FARE_AID).unwrap();
    let mut session = desfire.authenticate(2, debit_key(&hsm)).unwrap();
    let error = session.debit(3, 10_00, MAC).unwrap_err();
    assert_eq!(error.status(), Some(Status::INTEGRITY_ERROR), "{error:?}");
    assert!(session.commit().is_err(), "the session ended with the refusal");
    drop(session);
    let mut card = Desfire::new(sim);
    assert_eq!(ops::read(&mut card, &keys(&hsm)).unwrap().purse, 100_00);
}

#[test]
fn an_answer_mac_flipped_by_one_bit_is_refused_by_the_host() {
    let hsm = hsm();
    let mut sim = funded_card(&hsm);
    let mut wire = Wire::new(&mut sim);
    wire.flip_answer = Some(3); // the GetValue answer
    let mut desfire = Desfire::new(wire);
    desfire.select_application(FARE_AID).unwrap();
    let mut session = desfire.authenticate(2, debit_key(&hsm)).unwrap();
    let error = session.get_value(3, MAC).unwrap_err();
    assert!(matches!(error, CardError::CardMisbehaved(_)), "{error:?}");
}

fn balance_and_tmc(sim: SimCard, hsm: &SoftHsm) -> (i32, u32, SimCard) {
    let mut card = Desfire::new(sim);
    let state = ops::read(&mut card, &keys(hsm)).unwrap();
    (state.purse, state.tmc, card.into_transport())
}

/// How many APDUs a debit sends, counted on a throw-away copy of the card.
fn apdus_of_a_debit(sim: &SimCard, hsm: &SoftHsm) -> usize {
    let mut copy = SimCard::new(sim.image().clone());
    let mut wire = Desfire::new(Wire::new(&mut copy));
    ops::debit_purse(&mut wire, &keys(hsm), 5_00, terminal()).unwrap();
    let count = wire.transport_mut().sent.len();
    assert_eq!(wire.transport_mut().sent.last().unwrap()[1], 0xC7, "the last APDU is the commit");
    count
}

#[test]
fn a_card_pulled_away_before_commit_keeps_its_old_state() {
    let hsm = hsm();
    let sim = funded_card(&hsm);
    let (balance, tmc, mut sim) = balance_and_tmc(sim, &hsm);
    let apdus = apdus_of_a_debit(&sim, &hsm) as u32;
    // Tear before each APDU in turn, the commit included.
    for apdu in 1..=apdus {
        sim.tap();
        sim.arm_tear(Tear::BeforeCommand(apdu));
        let mut card = Desfire::new(sim);
        let result = ops::debit_purse(&mut card, &keys(&hsm), 5_00, terminal());
        assert!(
            matches!(result, Err(FareError::Card(CardError::Transport(TransportError::CardRemoved)))),
            "tear at {apdu}: {result:?}"
        );
        sim = card.into_transport();
        sim.tap();
        let (after_balance, after_tmc, back) = balance_and_tmc(sim, &hsm);
        assert_eq!((after_balance, after_tmc), (balance, tmc), "tear before APDU {apdu} changed the card");
        sim = back;
    }
    // The next tap completes cleanly.
    let mut card = Desfire::new(sim);
    let done = ops::debit_purse(&mut card, &keys(&hsm), 5_00, terminal()).unwrap();
    assert_eq!((done.balance, done.proof.tmc), (balance - 5_00, tmc + 1));
}

#[test]
fn a_tear_after_the_commit_is_seen_at_the_next_tap_by_the_counter() {
    let hsm = hsm();
    let sim = funded_card(&hsm);
    let (balance, tmc, mut sim) = balance_and_tmc(sim, &hsm);
    let commit = apdus_of_a_debit(&sim, &hsm) as u32;
    sim.arm_tear(Tear::AfterCommand(commit)); // the commit runs; its answer is lost
    let mut card = Desfire::new(sim);
    assert!(ops::debit_purse(&mut card, &keys(&hsm), 5_00, terminal()).is_err());
    let mut sim = card.into_transport();
    sim.tap();
    let (after_balance, after_tmc, _) = balance_and_tmc(sim, &hsm);
    assert_eq!(
        (after_balance, after_tmc),
        (balance - 5_00, tmc + 1),
        "the counter tells the terminal the write happened"
    );
}

#[test]
fn a_forged_transaction_mac_is_detected() {
    let hsm = hsm();
    let (mut card, _) = personalised(&hsm, UID);
    let loaded =
        ops::load(&mut card, &keys(&hsm), &Load { contracts: vec![], purse_credit: 10_00 }, terminal()).unwrap();
    let debited = ops::debit_purse(&mut card, &keys(&hsm), 3_00, terminal()).unwrap();
    assert!(clearing_verifies(&hsm, &debited.proof));
    let mut smaller = debited.proof.clone();
    let at = smaller.tmi.iter().position(|b| *b == 0xDC).unwrap();
    smaller.tmi[at + 2] = 0x01; // claim a debit of 1 instead of 300
    assert!(!clearing_verifies(&hsm, &smaller), "an edited TMI");
    let mut replayed = loaded.proof.clone();
    replayed.tmc = debited.proof.tmc;
    assert!(!clearing_verifies(&hsm, &replayed), "an old TMV under a new counter");
    let mut other_card = debited.proof.clone();
    other_card.uid = [0x04, 1, 1, 1, 1, 1, 1];
    assert!(!clearing_verifies(&hsm, &other_card), "the TMV of another card");
    let other_issuer = SoftHsm::generate(&KeyRole::ALL).unwrap();
    assert!(!clearing_verifies(&other_issuer, &debited.proof), "verified with the wrong master");
}

#[test]
fn card_images_persist_and_reload() {
    let hsm = hsm();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    let mut sim = SimCard::blank(UID);
    sim.save_to(&path).unwrap();
    let mut card = Desfire::new(sim);
    ops::personalise(&mut card, &keys(&hsm), &keys(&hsm), &environment()).unwrap();
    ops::load(&mut card, &keys(&hsm), &Load { contracts: vec![(month_pass(5), 0)], purse_credit: 7_00 }, terminal())
        .unwrap();
    drop(card);
    let mut reloaded = Desfire::new(SimCard::open(&path).unwrap());
    let state = ops::read(&mut reloaded, &keys(&hsm)).unwrap();
    assert_eq!((state.purse, state.tmc, state.contracts[0]), (7_00, 2, Some(month_pass(5))));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o077, 0, "card images hold keys: private");
}

#[test]
fn a_blank_card_and_a_garbage_answer_get_typed_errors() {
    let hsm = hsm();
    let mut blank = Desfire::new(SimCard::blank(UID));
    assert!(matches!(ops::read(&mut blank, &keys(&hsm)), Err(FareError::NotPersonalised)));
    struct Garbage;
    impl Transport for Garbage {
        fn transmit(&mut self, _: &[u8]) -> Result<Vec<u8>, TransportError> {
            Ok(vec![0x42])
        }
        fn describe(&self) -> String {
            "garbage".into()
        }
    }
    let mut garbage = Desfire::new(Garbage);
    assert!(matches!(ops::read(&mut garbage, &keys(&hsm)), Err(FareError::Card(CardError::CardMisbehaved(_)))));
    let (mut card, _) = personalised(&hsm, UID);
    assert!(matches!(
        ops::personalise(&mut card, &keys(&hsm), &keys(&hsm), &environment()),
        Err(FareError::AlreadyPersonalised)
    ));
}

/// One random step of the counter property: an operation, possibly torn at a random APDU.
#[derive(Debug, Clone)]
enum Step {
    Load(i32),
    Debit(i32),
    Trip,
    Read,
}

fn step() -> impl Strategy<Value = (Step, Option<(bool, u32)>)> {
    let op = prop_oneof![
        (1..5_000_i32).prop_map(Step::Load),
        (1..3_000_i32).prop_map(Step::Debit),
        Just(Step::Trip),
        Just(Step::Read),
    ];
    (op, proptest::option::weighted(0.4, (any::<bool>(), 1..16_u32)))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, ..ProptestConfig::default() })]

    /// 10 runs × 1,000 operations = 10,000 random operations with random tears: the card's
    /// transaction counter never repeats a value with different content, never goes back,
    /// and every committed transaction verifies.
    #[test]
    fn the_counter_never_repeats_under_random_tears(steps in proptest::collection::vec(step(), 1000)) {
        let hsm = hsm();
        let (card, _) = personalised(&hsm, UID);
        let mut sim = card.into_transport();
        let mut seen: std::collections::HashMap<u32, Vec<u8>> = std::collections::HashMap::new();
        let mut last_tmc = sim.image().tmc(FARE_AID).unwrap();
        for (step, tear) in steps {
            sim.tap();
            if let Some((after, apdu)) = tear {
                sim.arm_tear(if after { Tear::AfterCommand(apdu) } else { Tear::BeforeCommand(apdu) });
            }
            let mut card = Desfire::new(sim);
            let proof = match step {
                Step::Load(amount) => {
                    let load = Load { contracts: vec![(ten_trips(amount as u32), 3)], purse_credit: amount };
                    ops::load(&mut card, &keys(&hsm), &load, terminal()).ok().map(|l| l.proof)
                }
                Step::Debit(amount) => ops::debit_purse(&mut card, &keys(&hsm), amount, terminal()).ok().map(|d| d.proof),
                Step::Trip => (0..4).find_map(|slot| ops::consume_trip(&mut card, &keys(&hsm), slot, terminal()).ok()).map(|d| d.proof),
                Step::Read => { let _ = ops::read(&mut card, &keys(&hsm)); None }
            };
            sim = card.into_transport();
            let tmc = sim.image().tmc(FARE_AID).unwrap();
            prop_assert!(tmc >= last_tmc, "the counter went back from {} to {}", last_tmc, tmc);
            prop_assert!(tmc <= last_tmc + 1, "one operation commits at most once");
            last_tmc = tmc;
            if let Some(proof) = proof {
                prop_assert!(clearing_verifies(&hsm, &proof));
                let previous = seen.insert(proof.tmc, proof.tmi.clone());
                prop_assert!(previous.is_none(), "counter {} was reported twice", proof.tmc);
            }
        }
    }
}

#[test]
fn a_card_on_a_retired_key_version_gets_a_typed_error() {
    use smartticket_crypto::hsm::KeyAdmin;
    let mut hsm = hsm();
    let (mut card, _) = personalised(&hsm, UID);
    hsm.rotate(KeyRole::Read).unwrap();
    assert!(ops::read(&mut card, &keys(&hsm)).is_ok(), "version 1 still reads after rotation");
    let old = KeyRef { role: KeyRole::Read, version: smartticket_crypto::keys::KeyVersion::FIRST };
    hsm.retire(old).unwrap();
    match ops::read(&mut card, &keys(&hsm)) {
        Err(FareError::Hsm(HsmError::KeyNotHeld(key))) => assert_eq!(key, old),
        other => panic!("expected the retired version to be named: {other:?}"),
    }
}
