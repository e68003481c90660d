//! The validator engine end to end on simulated media: fare cards personalised and loaded
//! with the real keys, bank cards through the EMV flow, signed lists, a journal on disk.
//! Each test checks the decision, what the card holds after, and what the journal holds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeMap;

use smartticket_acceptance::engine::{
    DeclineReason, FareTable, JournalRecord, MediumType, Outcome, Payment, Validator, ValidatorConfig, bank_card_token,
};
use smartticket_acceptance::journal::{DeviceId, Journal, JournalLimits};
use smartticket_acceptance::lists::{
    Coupon, CouponFlags, DenyReason, Denylist, Greenlist, HsmSigner, ListError, MediumKey, MediumKind, TrustedKeys,
};
use smartticket_card::desfire::host::Desfire;
use smartticket_card::emv::sim::EmvSimCard;
use smartticket_card::emv::{self, TerminalData};
use smartticket_card::fare::KeySource;
use smartticket_card::fare::ops::{self, Load, Terminal};
use smartticket_card::fare::records::{Contract, ContractKind, Environment, LogEvent};
use smartticket_card::sim::SimCard;
use smartticket_core::Timestamp;
use smartticket_crypto::hsm::soft::SoftHsm;
use smartticket_crypto::keys::KeyRole;
use smartticket_crypto::token::Expiry;

const DEVICE: u32 = 4_001;
const UID: [u8; 7] = [4, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60];

fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

fn secs(text: &str) -> u64 {
    u64::try_from(at(text).unix_micros() / 1_000_000).unwrap()
}

fn config() -> ValidatorConfig {
    let fares = FareTable {
        tariff_version: "test".into(),
        currency: "CZK".into(),
        single_fares: BTreeMap::from([(0, vec![2_000, 2_600, 3_200, 3_800]), (2, vec![1_000, 1_300, 1_600, 1_900])]),
    };
    ValidatorConfig {
        device: DEVICE,
        carrier: "DPMO".into(),
        location: 17,
        zone: 1,
        route_zones: vec![1, 2, 3],
        passback_seconds: 60,
        list_age_max_seconds: 3_600,
        emv_purchases: true,
        fares,
        list_keys: Vec::new(),
    }
}

struct Rig {
    hsm: SoftHsm,
    dir: tempfile::TempDir,
    validator: Validator,
}

impl Rig {
    fn new() -> Rig {
        let hsm = SoftHsm::generate(&KeyRole::ALL).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let validator = Rig::open_validator(&hsm, dir.path());
        Rig { hsm, dir, validator }
    }

    fn open_validator(hsm: &SoftHsm, dir: &std::path::Path) -> Validator {
        let (journal, _) = Journal::open(dir, DeviceId([7; 16]), JournalLimits::VALIDATOR).unwrap();
        Validator::new(config(), TrustedKeys::from_hsm(hsm).unwrap(), journal).unwrap()
    }

    fn keys(&self) -> KeySource<'_> {
        KeySource { hsm: &self.hsm, system_id: b"SmartTicket" }
    }

    fn card(&self, contracts: Vec<(Contract, i32)>, purse: i32) -> Desfire<SimCard> {
        let environment = Environment {
            card_number: 1,
            profile: 1,
            discount_category: 0,
            expires: at("2030-01-01T00:00:00Z"),
            issuer: 1,
        };
        let mut card = Desfire::new(SimCard::blank(UID));
        ops::personalise(&mut card, &self.keys(), &self.keys(), &environment).unwrap();
        let terminal = Terminal { device: 1, location: 1, at: at("2026-11-01T00:00:00Z") };
        if !contracts.is_empty() || purse > 0 {
            ops::load(&mut card, &self.keys(), &Load { contracts, purse_credit: purse }, terminal).unwrap();
        }
        card
    }

    fn tap(&mut self, card: &mut Desfire<SimCard>, when: &str) -> Outcome {
        self.tap_decision(card, when).outcome
    }

    fn tap_decision(&mut self, card: &mut Desfire<SimCard>, when: &str) -> smartticket_acceptance::engine::Decision {
        let keys = KeySource { hsm: &self.hsm, system_id: b"SmartTicket" };
        self.validator.tap_card(card, &keys, at(when)).unwrap()
    }

    /// Installs a greenlist and a denylist issued at `issued`.
    fn lists(&mut self, version: u64, green: Vec<(MediumKey, Vec<Coupon>)>, deny: Vec<MediumKey>, issued: &str) {
        let signer = HsmSigner::active(&self.hsm).unwrap();
        let greenlist = Greenlist::build(green).unwrap().encode_full(version, secs(issued), &signer).unwrap();
        let denylist = Denylist::build(deny.into_iter().map(|key| (key, DenyReason::Lost)))
            .unwrap()
            .encode_full(version, secs(issued), &signer)
            .unwrap();
        self.validator.offer_list(&greenlist).unwrap();
        self.validator.offer_list(&denylist).unwrap();
    }

    /// Every record in the journal, read as an upload would.
    fn journal(&mut self) -> Vec<JournalRecord> {
        let batch = self.validator.journal_mut().next_batch(4_096, 1 << 24).unwrap();
        batch.map_or_else(Vec::new, |batch| {
            batch.records.iter().map(|record| JournalRecord::from_bytes(&record.payload).unwrap()).collect()
        })
    }
}

fn pass(zones: u32, from: &str, until: &str) -> (Contract, i32) {
    let contract = Contract {
        kind: ContractKind::Period,
        product: 24,
        serial: 1,
        zones,
        valid_from: at(from),
        valid_until: at(until),
        discount_category: 0,
        blocked: false,
    };
    (contract, 0)
}

fn coupon(zones: u32, from: &str, until: &str) -> Coupon {
    Coupon {
        valid_from_unix_s: secs(from),
        valid_until_unix_s: secs(until),
        product_code: 24,
        zones_bitmap: zones,
        photo_reference: 0,
        discount_code: 0,
        flags: CouponFlags::NONE,
    }
}

fn phone(n: u8) -> MediumKey {
    MediumKey::token(MediumKind::PhoneToken, &[n; 16]).unwrap()
}

#[test]
fn a_pass_valid_here_opens_the_gate_and_is_logged_on_the_card() {
    let mut rig = Rig::new();
    let mut card = rig.card(vec![pass(0b11, "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")], 5_000);
    let outcome = rig.tap(&mut card, "2026-11-21T08:00:00Z");
    assert_eq!(
        outcome,
        Outcome::Accepted {
            payment: Payment::CardContract { slot: 0, product: 24 },
            photo_reference: None,
            surcharge_minor: None
        }
    );
    let state = ops::read(&mut card, &rig.keys()).unwrap();
    assert_eq!(state.purse, 5_000, "a pass costs the purse nothing");
    let last = state.log.last().unwrap();
    assert_eq!((last.event, last.device, last.slot), (LogEvent::Validation, DEVICE, Some(0)));
    // Moments later at the same device: passback, read from the card's own log.
    let again = rig.tap(&mut card, "2026-11-21T08:00:30Z");
    assert_eq!(again, Outcome::Declined { reason: DeclineReason::Passback });
    let later = rig.tap(&mut card, "2026-11-21T08:02:00Z");
    assert!(later.is_accepted());

    let records = rig.journal();
    let decisions: Vec<_> = records
        .iter()
        .filter_map(|record| match record {
            JournalRecord::Decision(decision) => Some(decision),
            JournalRecord::Intent { .. } => None,
        })
        .collect();
    assert_eq!(decisions.len(), 3, "every decision is journaled, declines too");
    let intents = records.iter().filter(|record| matches!(record, JournalRecord::Intent { .. })).count();
    assert_eq!(intents, 2, "an intent precedes each commit");
    let proof = decisions[0].proof.as_ref().expect("an accepted card tap carries the card's proof");
    assert_eq!(proof.uid, UID);
    assert!(decisions[1].proof.is_none(), "a refusal commits nothing");
}

#[test]
fn without_a_pass_the_purse_pays_the_fare_for_the_route_ahead() {
    let mut rig = Rig::new();
    let mut card = rig.card(vec![], 5_000);
    // Three zones ahead, full fare: 32.00.
    let outcome = rig.tap(&mut card, "2026-11-21T08:00:00Z");
    assert_eq!(
        outcome,
        Outcome::Accepted {
            payment: Payment::CardPurse { fare_minor: 3_200, balance_minor: 1_800 },
            photo_reference: None,
            surcharge_minor: None
        }
    );
    let declined = rig.tap(&mut card, "2026-11-21T09:00:00Z");
    assert_eq!(declined, Outcome::Declined { reason: DeclineReason::InsufficientBalance });
    assert_eq!(ops::read(&mut card, &rig.keys()).unwrap().purse, 1_800, "a decline leaves the card as it was");
}

#[test]
fn a_pass_for_other_zones_or_out_of_date_does_not_count() {
    let mut rig = Rig::new();
    // Zone 4 only, and an expired city pass; no money.
    let mut card = rig.card(
        vec![
            pass(0b1000, "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"),
            pass(0b11, "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z"),
        ],
        0,
    );
    assert_eq!(rig.tap(&mut card, "2026-11-21T08:00:00Z"), Outcome::Declined { reason: DeclineReason::WrongZone });
    let mut empty = rig.card(vec![], 0);
    let outcome = rig.tap(&mut empty, "2026-11-21T08:00:00Z");
    assert_eq!(outcome, Outcome::Declined { reason: DeclineReason::NoValidContract });
}

#[test]
fn a_blocked_card_is_refused_once_the_denylist_names_it_and_keeps_its_money() {
    let mut rig = Rig::new();
    let mut card = rig.card(vec![], 5_000);
    rig.lists(1, vec![], vec![MediumKey::card_uid(&UID).unwrap()], "2026-11-21T07:00:00Z");
    assert_eq!(rig.tap(&mut card, "2026-11-21T08:00:00Z"), Outcome::Declined { reason: DeclineReason::Denylisted });
    assert_eq!(ops::read(&mut card, &rig.keys()).unwrap().purse, 5_000);
}

#[test]
fn a_card_pulled_away_is_a_journaled_decline() {
    let mut rig = Rig::new();
    let mut card = Desfire::new(SimCard::blank(UID));
    let outcome = rig.tap(&mut card, "2026-11-21T08:00:00Z");
    assert_eq!(outcome, Outcome::Declined { reason: DeclineReason::CardUnreadable });
    assert_eq!(rig.journal().len(), 1);
}

#[test]
fn tokens_pass_on_coupons_with_photo_and_surcharge_and_fail_with_reasons() {
    let mut rig = Rig::new();
    let now = "2026-11-21T08:00:00Z";
    let t = at(now);
    // No lists yet: a token cannot be checked.
    let decision = rig.validator.tap_token(&phone(1), MediumType::PhoneToken, None, t).unwrap();
    assert_eq!(decision.outcome, Outcome::Declined { reason: DeclineReason::ListTooOld });

    let mut student = coupon(0b11, "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z");
    student.discount_code = 2;
    student.photo_reference = 77;
    student.flags = CouponFlags::PHOTO_REQUIRED;
    rig.lists(
        1,
        vec![
            (phone(1), vec![student]),
            (phone(2), vec![coupon(0b111, "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")]),
            (phone(3), vec![coupon(0b1000, "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")]),
            (phone(4), vec![coupon(0b1, "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z")]),
            (phone(5), vec![coupon(0b1, "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")]),
        ],
        vec![phone(5)],
        "2026-11-21T07:30:00Z",
    );
    let tap = |rig: &mut Rig, n: u8, when: Timestamp| {
        rig.validator.tap_token(&phone(n), MediumType::PhoneToken, None, when).unwrap().outcome
    };
    // The student's coupon covers zones 1-2 of 1-3: the driver sees the photo, and one
    // zone's student fare (13.00... for one zone: 10.00) buys the rest.
    assert_eq!(
        tap(&mut rig, 1, t),
        Outcome::Accepted {
            payment: Payment::Coupon { product: 24, discount: 2 },
            photo_reference: Some(77),
            surcharge_minor: Some(1_000)
        }
    );
    assert_eq!(
        tap(&mut rig, 2, t),
        Outcome::Accepted {
            payment: Payment::Coupon { product: 24, discount: 0 },
            photo_reference: None,
            surcharge_minor: None
        }
    );
    assert_eq!(tap(&mut rig, 2, t), Outcome::Declined { reason: DeclineReason::Passback });
    assert_eq!(tap(&mut rig, 3, t), Outcome::Declined { reason: DeclineReason::WrongZone });
    assert_eq!(tap(&mut rig, 4, t), Outcome::Declined { reason: DeclineReason::Expired });
    assert_eq!(tap(&mut rig, 5, t), Outcome::Declined { reason: DeclineReason::Denylisted });
    assert_eq!(tap(&mut rig, 6, t), Outcome::Declined { reason: DeclineReason::NoValidContract });
    // Two hours later the lists are older than the hour this device allows.
    let stale = at("2026-11-21T09:45:00Z");
    assert_eq!(tap(&mut rig, 2, stale), Outcome::Declined { reason: DeclineReason::ListTooOld });
}

#[test]
fn a_bank_card_is_read_tokenised_and_accepted_on_its_coupon_or_charged_a_single_fare() {
    let mut rig = Rig::new();
    let terminal = TerminalData::transit(203, 203, 261121, [1, 2, 3, 4]);
    let expiry = Expiry::new(29, 12).unwrap();
    let mut with_coupon = EmvSimCard::visa("4111111111111111", expiry, "VISA").unwrap();
    let token = bank_card_token(&rig.hsm, &emv::read_card(&mut with_coupon, &terminal).unwrap()).unwrap();
    rig.lists(
        1,
        vec![(MediumKey::bank_card(&token), vec![coupon(0b111, "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")])],
        vec![],
        "2026-11-21T07:30:00Z",
    );
    let t = at("2026-11-21T08:00:00Z");
    let decision = rig.validator.tap_bank_card(&mut with_coupon, &rig.hsm, &terminal, t).unwrap();
    assert!(matches!(decision.outcome, Outcome::Accepted { payment: Payment::Coupon { .. }, .. }), "{decision:?}");
    assert_eq!(
        decision.masked_pan.as_deref(),
        Some(emv::read_card(&mut with_coupon, &terminal).unwrap().masked_pan().as_str())
    );
    assert!(!decision.medium_key.contains("4111111111111111"));

    let mut without = EmvSimCard::mastercard("5555555555554444", expiry, "MASTERCARD").unwrap();
    let decision = rig.validator.tap_bank_card(&mut without, &rig.hsm, &terminal, t).unwrap();
    assert_eq!(
        decision.outcome,
        Outcome::Accepted {
            payment: Payment::EmvPurchase { fare_minor: 3_200 },
            photo_reference: None,
            surcharge_minor: None
        }
    );
    let records = rig.journal();
    let text = format!("{records:?}");
    assert!(!text.contains("5555555555554444") && !text.contains("4111111111111111"), "no PAN in the journal");
}

#[test]
fn a_bad_list_is_refused_and_the_good_one_stays() {
    let mut rig = Rig::new();
    rig.lists(
        2,
        vec![(phone(1), vec![coupon(0b1, "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")])],
        vec![],
        "2026-11-21T07:30:00Z",
    );
    let signer = HsmSigner::active(&rig.hsm).unwrap();
    let older = Greenlist::build(Vec::<(MediumKey, Vec<Coupon>)>::new())
        .unwrap()
        .encode_full(1, secs("2026-11-21T07:00:00Z"), &signer)
        .unwrap();
    assert!(matches!(rig.validator.offer_list(&older), Err(ListError::Downgrade { .. })));
    let mut forged = Greenlist::build(Vec::<(MediumKey, Vec<Coupon>)>::new())
        .unwrap()
        .encode_full(3, secs("2026-11-21T07:40:00Z"), &signer)
        .unwrap();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert!(rig.validator.offer_list(&forged).is_err());
    assert_eq!(rig.validator.lists().0.unwrap().list_version, 2);
    let decision =
        rig.validator.tap_token(&phone(1), MediumType::PhoneToken, None, at("2026-11-21T08:00:00Z")).unwrap();
    assert!(decision.outcome.is_accepted());
}

#[test]
fn tap_numbers_continue_after_a_restart() {
    let mut rig = Rig::new();
    let mut card = rig.card(vec![], 10_000);
    let first = rig.tap_decision(&mut card, "2026-11-21T08:00:00Z").tap;
    let Rig { hsm, dir, validator } = rig;
    drop(validator);
    let mut validator = Rig::open_validator(&hsm, dir.path());
    let keys = KeySource { hsm: &hsm, system_id: b"SmartTicket" };
    let second = validator.tap_card(&mut card, &keys, at("2026-11-21T09:00:00Z")).unwrap().tap;
    assert!(second > first, "{second} after {first}");
}
