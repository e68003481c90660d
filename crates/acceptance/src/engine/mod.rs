//! The validator engine (DESIGN §4): decides one tap at a time without the network, from
//! the card's own data or the signed lists, and writes every decision to the durable
//! journal before the gate may open. Our own code: this is the fare application's rules.
//!
//! Order of checks, for every medium: denylist first, then the medium's validity, then
//! passback, then what pays for the ride. Declines are typed ([`DeclineReason`]).

mod config;
mod decision;
mod passback;

use smartticket_card::desfire::host::Desfire;
use smartticket_card::emv::{self, TerminalData};
use smartticket_card::fare::KeySource;
use smartticket_card::fare::ops::{self, CardState, Charge, Terminal};
use smartticket_card::fare::records::{ContractKind, LogEvent};
use smartticket_card::transport::Transport;
use smartticket_core::Timestamp;
use smartticket_crypto::hsm::{Hsm, HsmError};
use smartticket_crypto::keys::KeyRole;
use smartticket_crypto::token::PanToken;

pub use config::{ConfigError, FareTable, ListKey, PASSBACK_SECONDS_MAX, ROUTE_ZONES_MAX, ValidatorConfig};
pub use decision::{Decision, DeclineReason, JournalRecord, MediumType, Outcome, Payment};
pub use passback::{PASSBACK_ENTRIES_MAX, Passback};

use crate::journal::{Journal, JournalError};
use crate::lists::{
    CouponFlags, Denylist, Greenlist, InstalledList, ListError, ListHolder, ListKind, MediumKey, TrustedKeys,
};

/// Why the engine could not decide. A decline is not an error; these are: the gate stays
/// shut and the device needs attention.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The journal refused the record: without it no gate may open.
    #[error("the journal refused the decision: {0}")]
    Journal(#[from] JournalError),
    /// A record could not be encoded.
    #[error("a journal record could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
    /// The secure module failed (tokenisation).
    #[error("the secure module failed: {0}")]
    Hsm(#[from] HsmError),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// One validator: its configuration, lists, journal and recent taps.
#[derive(Debug)]
pub struct Validator {
    config: ValidatorConfig,
    trusted: TrustedKeys,
    greenlist: ListHolder<Greenlist>,
    denylist: ListHolder<Denylist>,
    journal: Journal,
    passback: Passback,
    taps: u64,
}

impl Validator {
    /// A validator with no lists yet (it accepts fare cards, and refuses tokens until a
    /// greenlist arrives).
    pub fn new(config: ValidatorConfig, trusted: TrustedKeys, journal: Journal) -> Result<Validator, EngineError> {
        config.check()?;
        // Tap numbers continue across restarts: the journal's next sequence is above every
        // tap already written.
        let taps = journal.sequence_next();
        let passback = Passback::new(config.passback_seconds);
        Ok(Validator {
            config,
            trusted,
            greenlist: ListHolder::new(),
            denylist: ListHolder::new(),
            journal,
            passback,
            taps,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ValidatorConfig {
        &self.config
    }

    /// The journal (for uploads).
    pub fn journal_mut(&mut self) -> &mut Journal {
        &mut self.journal
    }

    /// The lists in use: greenlist, denylist.
    pub fn lists(&self) -> (Option<&InstalledList>, Option<&InstalledList>) {
        (self.greenlist.installed(), self.denylist.installed())
    }

    /// The greenlist in use, if any (simulators and diagnostics read it; decisions go
    /// through the `tap_*` methods).
    pub fn greenlist(&self) -> Option<&Greenlist> {
        self.greenlist.list()
    }

    /// The denylist in use, if any.
    pub fn denylist(&self) -> Option<&Denylist> {
        self.denylist.list()
    }

    /// Offers a list file (full or delta) of either kind. On error the list in use stays.
    pub fn offer_list(&mut self, file: &[u8]) -> Result<InstalledList, ListError> {
        let kind = crate::lists::ListFile::parse(file)?.header().kind;
        match kind {
            ListKind::Greenlist => self.greenlist.offer(file, &self.trusted).copied(),
            ListKind::Denylist => self.denylist.offer(file, &self.trusted).copied(),
        }
    }

    fn list_versions(&self) -> (u64, u64) {
        (
            self.greenlist.installed().map_or(0, |list| list.list_version),
            self.denylist.installed().map_or(0, |list| list.list_version),
        )
    }

    fn is_denied(&self, key: &MediumKey) -> bool {
        self.denylist.list().is_some_and(|list| list.contains(key))
    }

    fn next_tap(&mut self) -> u64 {
        let tap = self.taps;
        self.taps = self.taps.saturating_add(1);
        tap
    }

    fn decision(&mut self, at: Timestamp, medium: MediumType, key: &MediumKey, outcome: Outcome) -> Decision {
        Decision {
            tap: self.next_tap(),
            device: self.config.device,
            location: self.config.location,
            zone: self.config.zone,
            at_unix_s: unix_seconds(at),
            medium,
            medium_key: hex::encode(key.as_bytes()),
            masked_pan: None,
            outcome,
            proof: None,
            lists: self.list_versions(),
        }
    }

    /// Writes the decision to the journal; only then may the gate open.
    fn journal_decision(&mut self, decision: Decision) -> Result<Decision, EngineError> {
        let bytes = JournalRecord::Decision(decision.clone()).to_bytes()?;
        self.journal.append(&bytes)?;
        Ok(decision)
    }

    /// A fare card tap: read it in the secure session, choose a contract or the purse,
    /// commit, journal. An unreadable card is a journaled decline, not an error.
    pub fn tap_card<T: Transport>(
        &mut self,
        card: &mut Desfire<T>,
        keys: &KeySource<'_>,
        at: Timestamp,
    ) -> Result<Decision, EngineError> {
        let terminal = Terminal { device: self.config.device, location: self.config.location, at };
        let tap = self.taps;
        let mut intent_error = None;
        let tapped = {
            let Validator { config, denylist, journal, .. } = &mut *self;
            ops::tap(card, keys, terminal, |state| {
                let key = MediumKey::card_uid(&state.uid);
                let denied = key.is_some_and(|key| denylist.list().is_some_and(|list| list.contains(&key)));
                let (charge, outcome) = choose_card_charge(config, state, denied, at);
                if charge == Charge::Refuse {
                    return (charge, outcome);
                }
                // The card is about to commit: write the intent first, so a device that dies
                // between the card's commit and the decision record still left a trace.
                let intent = JournalRecord::Intent {
                    tap,
                    uid: hex::encode(state.uid),
                    tmc_expected: state.tmc.saturating_add(1),
                    at_unix_s: unix_seconds(at),
                };
                match intent.to_bytes().map_err(EngineError::from).and_then(|bytes| Ok(journal.append(&bytes)?)) {
                    Ok(_) => (charge, outcome),
                    Err(error) => {
                        intent_error = Some(error);
                        (Charge::Refuse, Outcome::Declined { reason: DeclineReason::CardUnreadable })
                    }
                }
            })
        };
        if let Some(error) = intent_error {
            return Err(error);
        }
        let (uid, outcome, proof) = match tapped {
            Ok(tapped) => {
                let outcome = with_balances(tapped.verdict, tapped.debited.as_ref());
                (Some(tapped.state.uid), outcome, tapped.debited.map(|debited| debited.proof))
            }
            Err(error) => {
                tracing::info!(device = self.config.device, %error, "card tap failed");
                (None, Outcome::Declined { reason: DeclineReason::CardUnreadable }, None)
            }
        };
        let key = uid.and_then(|uid| MediumKey::card_uid(&uid)).unwrap_or(MediumKey::card_number(0));
        let mut decision = self.decision(at, MediumType::FareCard, &key, outcome);
        decision.proof = proof;
        self.journal_decision(decision)
    }

    /// A token tap (phone, QR, or a bank card already tokenised): denylist, list age,
    /// passback, then the greenlist's coupons.
    pub fn tap_token(
        &mut self,
        key: &MediumKey,
        medium: MediumType,
        masked_pan: Option<String>,
        at: Timestamp,
    ) -> Result<Decision, EngineError> {
        let now_s = unix_seconds(at);
        let outcome = self.decide_token(key, medium, now_s);
        if outcome.is_accepted() {
            self.passback.accepted(*key, now_s);
        }
        let mut decision = self.decision(at, medium, key, outcome);
        decision.masked_pan = masked_pan;
        self.journal_decision(decision)
    }

    /// A bank card: the EMV read flow, tokenisation in the secure module (only the token
    /// and the masked PAN leave it), then as a token.
    pub fn tap_bank_card<T: Transport>(
        &mut self,
        card: &mut T,
        hsm: &dyn Hsm,
        terminal: &TerminalData,
        at: Timestamp,
    ) -> Result<Decision, EngineError> {
        let read = match emv::read_card(card, terminal) {
            Ok(read) => read,
            Err(error) => {
                tracing::info!(device = self.config.device, %error, "bank card unreadable");
                let key = MediumKey::card_number(0);
                let decision = self.decision(
                    at,
                    MediumType::BankCard,
                    &key,
                    Outcome::Declined { reason: DeclineReason::CardUnreadable },
                );
                return self.journal_decision(decision);
            }
        };
        let token = bank_card_token(hsm, &read)?;
        let key = MediumKey::bank_card(&token);
        self.tap_token(&key, MediumType::BankCard, Some(read.masked_pan()), at)
    }

    fn decide_token(&self, key: &MediumKey, medium: MediumType, now_s: u64) -> Outcome {
        let declined = |reason| Outcome::Declined { reason };
        if self.is_denied(key) {
            return declined(DeclineReason::Denylisted);
        }
        let fresh = |list: Option<&InstalledList>| {
            list.is_some_and(|list| now_s.saturating_sub(list.issued_at_unix_s) <= self.config.list_age_max_seconds)
        };
        if !fresh(self.greenlist.installed()) || !fresh(self.denylist.installed()) {
            return declined(DeclineReason::ListTooOld);
        }
        if self.passback.is_passback(key, now_s) {
            return declined(DeclineReason::Passback);
        }
        let coupons = self.greenlist.list().map_or(&[][..], |list| list.lookup(key));
        let zone = self.config.zone;
        let valid_now = || coupons.iter().filter(|coupon| coupon.is_valid_at(now_s));
        // Of the coupons valid here, the one that covers most of the route ahead.
        let best = valid_now()
            .filter(|coupon| coupon.covers_zone(zone))
            .max_by_key(|coupon| self.config.ride_zones().iter().filter(|zone| coupon.covers_zone(**zone)).count());
        if let Some(coupon) = best {
            let missing = self.config.ride_zones().iter().filter(|zone| !coupon.covers_zone(**zone)).count();
            let surcharge =
                (missing > 0).then(|| self.config.fares.single_fare(coupon.discount_code, missing)).flatten();
            let photo = coupon.flags.contains(CouponFlags::PHOTO_REQUIRED).then_some(coupon.photo_reference);
            return Outcome::Accepted {
                payment: Payment::Coupon { product: coupon.product_code, discount: coupon.discount_code },
                photo_reference: photo,
                surcharge_minor: surcharge,
            };
        }
        if valid_now().next().is_some() {
            return declined(DeclineReason::WrongZone);
        }
        if medium == MediumType::BankCard
            && self.config.emv_purchases
            && let Some(fare) = self.config.fares.single_fare(0, self.config.ride_zones().len())
        {
            return Outcome::Accepted {
                payment: Payment::EmvPurchase { fare_minor: fare },
                photo_reference: None,
                surcharge_minor: None,
            };
        }
        if !coupons.is_empty() && coupons.iter().all(|coupon| coupon.valid_until_unix_s <= now_s) {
            return declined(DeclineReason::Expired);
        }
        declined(DeclineReason::NoValidContract)
    }
}

/// The PAN token the back office registered for this card: HMAC under the active
/// tokenisation key, as `sales` computes it at registration.
pub fn bank_card_token(hsm: &dyn Hsm, card: &emv::EmvCard) -> Result<PanToken, HsmError> {
    let key = hsm.active(KeyRole::Tokenisation)?;
    let mac = zeroize::Zeroizing::new(hsm.hmac(key, &card.token_input())?);
    Ok(PanToken::from_hmac(&mac))
}

/// Chooses what pays for a ride on a fare card: a pass or event ticket valid here, else a
/// trip, else the purse. Runs inside the card's session, before anything is written.
fn choose_card_charge(config: &ValidatorConfig, state: &CardState, denied: bool, at: Timestamp) -> (Charge, Outcome) {
    let refuse = |reason| (Charge::Refuse, Outcome::Declined { reason });
    if denied {
        return refuse(DeclineReason::Denylisted);
    }
    if state.environment.expires != Timestamp::EPOCH && state.environment.expires <= at {
        return refuse(DeclineReason::Expired);
    }
    let window = chrono::Duration::seconds(i64::from(config.passback_seconds));
    // The card's own log: its last ride was at this device moments ago.
    let passback = state.log.last().is_some_and(|record| {
        record.device == config.device
            && matches!(record.event, LogEvent::Validation | LogEvent::TripUsed | LogEvent::PurseDebit)
            && record.at <= at
            && at.checked_sub(window).is_none_or(|since| record.at > since)
    });
    if passback {
        return refuse(DeclineReason::Passback);
    }
    let zone_bit = 1_u32.checked_shl(u32::from(config.zone).saturating_sub(1)).unwrap_or(0);
    let mut wrong_zone = false;
    let mut trip = None;
    for (slot, contract) in (0_u8..).zip(state.contracts.iter()) {
        let Some(contract) = contract else { continue };
        if contract.blocked || at < contract.valid_from || contract.valid_until <= at {
            continue;
        }
        if contract.zones & zone_bit == 0 {
            wrong_zone = true;
            continue;
        }
        match contract.kind {
            ContractKind::Period | ContractKind::Event => {
                let payment = Payment::CardContract { slot, product: contract.product };
                return (Charge::Ride { slot }, accepted(payment));
            }
            ContractKind::Trips => {
                let left = state.trips.get(usize::from(slot)).copied().unwrap_or(0);
                if left > 0 && trip.is_none() {
                    trip = Some((slot, contract.product, left));
                }
            }
        }
    }
    if let Some((slot, product, left)) = trip {
        let payment = Payment::CardTrip { slot, product, trips_left: left - 1 };
        return (Charge::Trip { slot }, accepted(payment));
    }
    let zones = config.ride_zones().len();
    let fare = config.fares.single_fare(state.environment.discount_category, zones);
    match fare.and_then(|fare| i32::try_from(fare).ok()) {
        Some(fare) if state.purse >= fare => {
            let payment =
                Payment::CardPurse { fare_minor: i64::from(fare), balance_minor: i64::from(state.purse - fare) };
            (Charge::Purse { amount: fare }, accepted(payment))
        }
        _ if wrong_zone => refuse(DeclineReason::WrongZone),
        _ if state.purse > 0 => refuse(DeclineReason::InsufficientBalance),
        _ => refuse(DeclineReason::NoValidContract),
    }
}

fn accepted(payment: Payment) -> Outcome {
    Outcome::Accepted { payment, photo_reference: None, surcharge_minor: None }
}

/// The verdict with the balances the card reported after its commit.
fn with_balances(outcome: Outcome, debited: Option<&ops::Debited>) -> Outcome {
    match (outcome, debited) {
        (
            Outcome::Accepted { payment: Payment::CardPurse { fare_minor, .. }, photo_reference, surcharge_minor },
            Some(d),
        ) => Outcome::Accepted {
            payment: Payment::CardPurse { fare_minor, balance_minor: i64::from(d.balance) },
            photo_reference,
            surcharge_minor,
        },
        (
            Outcome::Accepted { payment: Payment::CardTrip { slot, product, .. }, photo_reference, surcharge_minor },
            Some(d),
        ) => Outcome::Accepted {
            payment: Payment::CardTrip { slot, product, trips_left: d.trips_left.unwrap_or(0) },
            photo_reference,
            surcharge_minor,
        },
        (outcome, _) => outcome,
    }
}

fn unix_seconds(at: Timestamp) -> u64 {
    u64::try_from(at.unix_micros() / 1_000_000).unwrap_or(0)
}
