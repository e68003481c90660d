//! The operations of the fare application, host side. Each runs in one secure session and
//! (except `read`) ends in one CommitTransaction, so a card pulled away at any point keeps
//! either the whole change or none of it; the returned [`TransactionProof`] is what a
//! terminal uploads for clearing to verify with the card's transaction-MAC key.

use smartticket_core::Timestamp;
use smartticket_crypto::keys::{KeyRole, KeyVersion};

use super::records::{Contract, ContractKind, Environment, LogEvent, LogRecord, RECORD_BYTES};
use super::{
    CONTRACT_SLOTS, FARE_AID, FILE_CONTRACTS, FILE_ENVIRONMENT, FILE_LOG, FILE_PURSE, FILE_TMAC, FareError, KEY_COUNT,
    KEY_CREDIT, KEY_DEBIT, KEY_MASTER, KEY_READ, KeySource, LOG_RECORDS, PURSE_BALANCE_MAX, TRIPS_MAX, access_rights,
    comm_mode, trips_file,
};
use crate::desfire::codes::{Command, Status};
use crate::desfire::files::{FileKind, u24_le};
use crate::desfire::host::{Committed, Desfire, Session};
use crate::error::CardError;
use crate::sim::image::DEFAULT_KEY;
use crate::transport::Transport;

/// What a terminal uploads for one committed card transaction: clearing derives the card's
/// transaction-MAC key from the UID, recomputes the TMV over the TMI, and only then trusts
/// what the TMI says happened.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TransactionProof {
    /// The card.
    #[serde(with = "hex_array")]
    pub uid: [u8; 7],
    /// The transaction counter after this transaction.
    pub tmc: u32,
    /// The transaction MAC.
    #[serde(with = "hex_array")]
    pub tmv: [u8; 8],
    /// The transaction MAC input.
    #[serde(with = "hex_vec")]
    pub tmi: Vec<u8>,
}

mod hex_array {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer, const N: usize>(bytes: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode_upper(bytes))
    }
    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(d: D) -> Result<[u8; N], D::Error> {
        let bytes = hex::decode(String::deserialize(d)?).map_err(serde::de::Error::custom)?;
        bytes.try_into().map_err(|_| serde::de::Error::custom("wrong length"))
    }
}

mod hex_vec {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode_upper(bytes))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        hex::decode(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl TransactionProof {
    fn from_commit(uid: [u8; 7], committed: Committed) -> TransactionProof {
        TransactionProof { uid, tmc: committed.tmc, tmv: committed.tmv, tmi: committed.tmi.as_bytes().to_vec() }
    }
}

/// Everything on a card, as read with the read key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CardState {
    /// The UID.
    #[serde(with = "hex_array")]
    pub uid: [u8; 7],
    /// The environment.
    pub environment: Environment,
    /// The contract slots.
    pub contracts: [Option<Contract>; CONTRACT_SLOTS],
    /// The purse balance in minor units.
    pub purse: i32,
    /// Trips left in each slot.
    pub trips: [i32; CONTRACT_SLOTS],
    /// The event log, oldest first.
    pub log: Vec<LogRecord>,
    /// The transaction counter.
    pub tmc: u32,
    /// The key version of each application key (0 = default key).
    pub key_versions: [u8; KEY_COUNT as usize],
}

/// Where and when a terminal acts, for the log record it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terminal {
    /// The device id.
    pub device: u32,
    /// Its location (zone or stop).
    pub location: u16,
    /// Now.
    pub at: Timestamp,
}

/// The card's UID, from GetVersion (cards without random ID report it unauthenticated,
/// and the key diversification needs it before any authentication).
pub fn identify<T: Transport>(card: &mut Desfire<T>) -> Result<[u8; 7], FareError> {
    card.select_application([0, 0, 0])?;
    let version = card.get_version()?;
    version
        .get(14..21)
        .and_then(|uid| uid.try_into().ok())
        .ok_or_else(|| FareError::Card(CardError::CardMisbehaved("GetVersion answer has no UID".into())))
}

/// Selects the fare application, mapping "no such application" to [`FareError::NotPersonalised`].
fn select_fare<T: Transport>(card: &mut Desfire<T>) -> Result<(), FareError> {
    match card.select_application(FARE_AID) {
        Err(CardError::Refused { status: Status::APPLICATION_NOT_FOUND, .. }) => Err(FareError::NotPersonalised),
        other => Ok(other?),
    }
}

fn key_version<T: Transport>(card: &mut Desfire<T>, key_no: u8) -> Result<KeyVersion, FareError> {
    let version = card.get_key_version(key_no)?;
    KeyVersion::new(version).map_err(|_| FareError::NotPersonalised)
}

/// Opens a session on the fare application with `key_no`, keys from `keys`.
fn open_session<'c, T: Transport>(
    card: &'c mut Desfire<T>,
    keys: &KeySource<'_>,
    uid: &[u8; 7],
    key_no: u8,
    role: KeyRole,
) -> Result<Session<'c, T>, FareError> {
    select_fare(card)?;
    let version = key_version(card, key_no)?;
    let key = keys.card_key(role, version, uid, FARE_AID)?;
    let mut session = card.authenticate(key_no, key)?;
    session.set_tmac_file(Some(FILE_TMAC));
    Ok(session)
}

fn create_header(file: u8, kind: &FileKind) -> Vec<u8> {
    let mut header = vec![file, comm_mode(file).option()];
    header.extend_from_slice(&access_rights(file).to_bytes());
    match kind {
        FileKind::StdData { size } | FileKind::BackupData { size } => header.extend_from_slice(&u24_le(*size)),
        FileKind::Value { lower, upper, value, limited_credit } => {
            header.extend_from_slice(&lower.to_le_bytes());
            header.extend_from_slice(&upper.to_le_bytes());
            header.extend_from_slice(&value.to_le_bytes());
            header.push(u8::from(*limited_credit));
        }
        FileKind::CyclicRecord { record_size, max_records } => {
            header.extend_from_slice(&u24_le(*record_size));
            header.extend_from_slice(&u24_le(*max_records));
        }
        FileKind::TransactionMac => header.push(0x02),
    }
    header
}

fn record_bytes(count: usize) -> u32 {
    u32::try_from(RECORD_BYTES * count).unwrap_or(u32::MAX)
}

/// Personalises a blank card: creates the fare application and its files, sets every key
/// to its diversified value (the credit key from the minting authority's HSM), writes the
/// environment, and commits. The card's transaction counter is then 1.
pub fn personalise<T: Transport>(
    card: &mut Desfire<T>,
    issuer: &KeySource<'_>,
    minting: &KeySource<'_>,
    environment: &Environment,
) -> Result<TransactionProof, FareError> {
    let uid = identify(card)?;
    match card.select_application(FARE_AID) {
        Ok(()) => return Err(FareError::AlreadyPersonalised),
        Err(CardError::Refused { status: Status::APPLICATION_NOT_FOUND, .. }) => {}
        Err(other) => return Err(other.into()),
    }
    let version = |role| issuer.hsm.active(role).map(|key| key.version);
    let (v_perso, v_read, v_debit, v_tmac) = (
        version(KeyRole::Personalisation)?,
        version(KeyRole::Read)?,
        version(KeyRole::Debit)?,
        version(KeyRole::TransactionMac)?,
    );
    let v_credit = minting.hsm.active(KeyRole::Credit)?.version;
    let picc_key = issuer.card_key(KeyRole::Personalisation, v_perso, &uid, [0, 0, 0])?;
    let master = issuer.card_key(KeyRole::Personalisation, v_perso, &uid, FARE_AID)?;

    // Card level: create the application, then take the card master key away from its default.
    card.select_application([0, 0, 0])?;
    {
        let mut session = card.authenticate(0, zeroize::Zeroizing::new(DEFAULT_KEY))?;
        let mut header = FARE_AID.to_vec();
        header.extend_from_slice(&[0x09, 0x80 | KEY_COUNT]);
        session.administer(Command::CreateApplication, &header)?;
        session.change_key(0, &DEFAULT_KEY, &picc_key, v_perso.get())?;
    }

    // Application level: files, then keys, the master key last.
    card.select_application(FARE_AID)?;
    {
        let mut session = card.authenticate(KEY_MASTER, zeroize::Zeroizing::new(DEFAULT_KEY))?;
        let data_file = |count| FileKind::BackupData { size: record_bytes(count) };
        session.administer(Command::CreateBackupDataFile, &create_header(FILE_ENVIRONMENT, &data_file(1)))?;
        session
            .administer(Command::CreateBackupDataFile, &create_header(FILE_CONTRACTS, &data_file(CONTRACT_SLOTS)))?;
        let purse = FileKind::Value { lower: 0, upper: PURSE_BALANCE_MAX, value: 0, limited_credit: true };
        session.administer(Command::CreateValueFile, &create_header(FILE_PURSE, &purse))?;
        let log = FileKind::CyclicRecord { record_size: record_bytes(1), max_records: LOG_RECORDS };
        session.administer(Command::CreateCyclicRecordFile, &create_header(FILE_LOG, &log))?;
        for slot in 0..CONTRACT_SLOTS as u8 {
            let trips = FileKind::Value { lower: 0, upper: TRIPS_MAX, value: 0, limited_credit: true };
            session.administer(Command::CreateValueFile, &create_header(trips_file(slot), &trips))?;
        }
        let tmac_key = issuer.card_key(KeyRole::TransactionMac, v_tmac, &uid, FARE_AID)?;
        let mut tmac_data = zeroize::Zeroizing::new(tmac_key.to_vec());
        tmac_data.push(v_tmac.get());
        session.administer_full(
            Command::CreateTransactionMacFile,
            &create_header(FILE_TMAC, &FileKind::TransactionMac),
            &tmac_data,
        )?;
        let read = issuer.card_key(KeyRole::Read, v_read, &uid, FARE_AID)?;
        let debit = issuer.card_key(KeyRole::Debit, v_debit, &uid, FARE_AID)?;
        let credit = minting.card_key(KeyRole::Credit, v_credit, &uid, FARE_AID)?;
        session.change_key(KEY_READ, &DEFAULT_KEY, &read, v_read.get())?;
        session.change_key(KEY_DEBIT, &DEFAULT_KEY, &debit, v_debit.get())?;
        session.change_key(KEY_CREDIT, &DEFAULT_KEY, &credit, v_credit.get())?;
        session.change_key(KEY_MASTER, &DEFAULT_KEY, &master, v_perso.get())?;
    }

    // Under the new master key: the environment, committed with the first transaction MAC.
    let mut session = card.authenticate(KEY_MASTER, master)?;
    session.set_tmac_file(Some(FILE_TMAC));
    session.write_data(FILE_ENVIRONMENT, 0, &environment.encode(), comm_mode(FILE_ENVIRONMENT))?;
    let committed = session.commit()?;
    Ok(TransactionProof::from_commit(uid, committed))
}

fn read_tmc<T: Transport>(session: &mut Session<'_, T>) -> Result<u32, FareError> {
    let data = session.read_data(FILE_TMAC, 0, 12, comm_mode(FILE_TMAC))?;
    let tmc: [u8; 4] = data
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| CardError::CardMisbehaved("TMAC file too short".into()))?;
    Ok(u32::from_le_bytes(tmc))
}

fn read_contracts<T: Transport>(session: &mut Session<'_, T>) -> Result<[Option<Contract>; CONTRACT_SLOTS], FareError> {
    let bytes = session.read_data(FILE_CONTRACTS, 0, record_bytes(CONTRACT_SLOTS), comm_mode(FILE_CONTRACTS))?;
    let mut contracts = [None; CONTRACT_SLOTS];
    for (slot, chunk) in contracts.iter_mut().zip(bytes.chunks_exact(RECORD_BYTES)) {
        *slot = Contract::decode(chunk)?;
    }
    Ok(contracts)
}

fn read_log<T: Transport>(session: &mut Session<'_, T>) -> Result<Vec<LogRecord>, FareError> {
    let settings = session.get_file_settings(FILE_LOG)?;
    if settings.records.unwrap_or(0) == 0 {
        return Ok(Vec::new());
    }
    let bytes = session.read_records(FILE_LOG, 0, 0, comm_mode(FILE_LOG))?;
    bytes.chunks_exact(RECORD_BYTES).map(|chunk| LogRecord::decode(chunk).map_err(FareError::from)).collect()
}

/// Reads everything with the read key, changing nothing.
pub fn read<T: Transport>(card: &mut Desfire<T>, keys: &KeySource<'_>) -> Result<CardState, FareError> {
    let uid = identify(card)?;
    select_fare(card)?;
    let key_versions = key_versions(card)?;
    let mut session = open_session(card, keys, &uid, KEY_READ, KeyRole::Read)?;
    read_state(&mut session, uid, key_versions)
}

fn key_versions<T: Transport>(card: &mut Desfire<T>) -> Result<[u8; KEY_COUNT as usize], FareError> {
    let mut key_versions = [0_u8; KEY_COUNT as usize];
    for (key_no, slot) in (0..KEY_COUNT).zip(key_versions.iter_mut()) {
        *slot = card.get_key_version(key_no)?;
    }
    Ok(key_versions)
}

fn read_state<T: Transport>(
    session: &mut Session<'_, T>,
    uid: [u8; 7],
    key_versions: [u8; KEY_COUNT as usize],
) -> Result<CardState, FareError> {
    let environment =
        Environment::decode(&session.read_data(FILE_ENVIRONMENT, 0, record_bytes(1), comm_mode(FILE_ENVIRONMENT))?)?;
    let contracts = read_contracts(session)?;
    let purse = session.get_value(FILE_PURSE, comm_mode(FILE_PURSE))?;
    let mut trips = [0; CONTRACT_SLOTS];
    for (slot, trips) in (0..CONTRACT_SLOTS as u8).zip(trips.iter_mut()) {
        *trips = session.get_value(trips_file(slot), comm_mode(trips_file(slot)))?;
    }
    let log = read_log(session)?;
    let tmc = read_tmc(session)?;
    Ok(CardState { uid, environment, contracts, purse, trips, log, tmc, key_versions })
}

/// What a load (delivery of sold entitlements) writes in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Load {
    /// Contracts to add, each with its trips (0 unless a trips contract).
    pub contracts: Vec<(Contract, i32)>,
    /// Minor units to add to the purse.
    pub purse_credit: i32,
}

/// What a load did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The slot each contract went to, in order.
    pub slots: Vec<u8>,
    /// The purse balance after.
    pub balance: i32,
    /// The transaction proof.
    pub proof: TransactionProof,
}

/// A slot is free when empty, or when its contract has ended and no trips are left.
fn free_slot(
    contracts: &[Option<Contract>; CONTRACT_SLOTS],
    trips: &[i32; CONTRACT_SLOTS],
    taken: &[u8],
    at: Timestamp,
) -> Option<u8> {
    (0..CONTRACT_SLOTS as u8).find(|slot| {
        let index = usize::from(*slot);
        let reusable = match contracts.get(index).copied().flatten() {
            None => true,
            Some(contract) => contract.valid_until <= at && trips.get(index).copied().unwrap_or(0) == 0,
        };
        reusable && !taken.contains(slot)
    })
}

/// Loads contracts and purse value with the credit key: the minting authority's act.
/// Refuses (before writing anything) when there is no free slot, a contract is already on
/// the card (same serial), or a limit would be exceeded.
pub fn load<T: Transport>(
    card: &mut Desfire<T>,
    keys: &KeySource<'_>,
    load: &Load,
    terminal: Terminal,
) -> Result<Loaded, FareError> {
    if load.purse_credit < 0 || load.contracts.iter().any(|(_, trips)| *trips < 0 || *trips > TRIPS_MAX) {
        return Err(FareError::Refused("amounts and trips must be positive and within limits".into()));
    }
    let uid = identify(card)?;
    let mut session = open_session(card, keys, &uid, KEY_CREDIT, KeyRole::Credit)?;
    let contracts = read_contracts(&mut session)?;
    let mut trips = [0; CONTRACT_SLOTS];
    for (slot, trips) in (0..CONTRACT_SLOTS as u8).zip(trips.iter_mut()) {
        *trips = session.get_value(trips_file(slot), comm_mode(trips_file(slot)))?;
    }
    let balance = session.get_value(FILE_PURSE, comm_mode(FILE_PURSE))?;
    let tmc = read_tmc(&mut session)?;
    let mut slots = Vec::new();
    for (contract, _) in &load.contracts {
        if contracts.iter().flatten().any(|c| c.serial == contract.serial) {
            return Err(FareError::Refused(format!("contract {} is already on the card", contract.serial)));
        }
        let slot = free_slot(&contracts, &trips, &slots, terminal.at)
            .ok_or_else(|| FareError::Refused("no free contract slot".into()))?;
        slots.push(slot);
    }
    let new_balance = balance
        .checked_add(load.purse_credit)
        .filter(|b| *b <= PURSE_BALANCE_MAX)
        .ok_or_else(|| FareError::Refused(format!("the purse would exceed {PURSE_BALANCE_MAX}")))?;
    for ((contract, contract_trips), slot) in load.contracts.iter().zip(&slots) {
        let offset = u32::from(*slot) * record_bytes(1);
        session.write_data(FILE_CONTRACTS, offset, &contract.encode(), comm_mode(FILE_CONTRACTS))?;
        if contract.kind == ContractKind::Trips && *contract_trips > 0 {
            session.credit(trips_file(*slot), *contract_trips, comm_mode(trips_file(*slot)))?;
        }
    }
    if load.purse_credit > 0 {
        session.credit(FILE_PURSE, load.purse_credit, comm_mode(FILE_PURSE))?;
    }
    let record = LogRecord {
        event: LogEvent::Load,
        at: terminal.at,
        device: terminal.device,
        location: terminal.location,
        slot: slots.first().copied(),
        amount: load.purse_credit,
        balance: new_balance,
        sequence: tmc.saturating_add(1),
    };
    session.write_record(FILE_LOG, &record.encode(), comm_mode(FILE_LOG))?;
    let committed = session.commit()?;
    Ok(Loaded { slots, balance: new_balance, proof: TransactionProof::from_commit(uid, committed) })
}

/// What a debit or trip consumption did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Debited {
    /// The purse balance after (unchanged for a trip).
    pub balance: i32,
    /// Trips left in the slot (for a trip).
    pub trips_left: Option<i32>,
    /// The transaction proof.
    pub proof: TransactionProof,
}

/// A validator's transaction: read with the read key, then switch to the debit key
/// (EV2 NonFirst, same transaction) to debit one value file and log it, then commit.
struct DebitTransaction<'c, T: Transport> {
    session: Session<'c, T>,
    uid: [u8; 7],
    debit_version: KeyVersion,
    tmc: u32,
}

impl<'c, T: Transport> DebitTransaction<'c, T> {
    fn open(card: &'c mut Desfire<T>, keys: &KeySource<'_>) -> Result<Self, FareError> {
        let uid = identify(card)?;
        select_fare(card)?;
        let debit_version = key_version(card, KEY_DEBIT)?;
        let mut session = open_session(card, keys, &uid, KEY_READ, KeyRole::Read)?;
        let tmc = read_tmc(&mut session)?;
        Ok(DebitTransaction { session, uid, debit_version, tmc })
    }

    fn debit_and_log(
        mut self,
        keys: &KeySource<'_>,
        file: u8,
        amount: i32,
        record: LogRecord,
    ) -> Result<TransactionProof, FareError> {
        let debit_key = keys.card_key(KeyRole::Debit, self.debit_version, &self.uid, FARE_AID)?;
        self.session.reauthenticate(KEY_DEBIT, debit_key)?;
        self.session.debit(file, amount, comm_mode(file))?;
        let record = LogRecord { sequence: self.tmc.saturating_add(1), ..record };
        self.session.write_record(FILE_LOG, &record.encode(), comm_mode(FILE_LOG))?;
        let committed = self.session.commit()?;
        Ok(TransactionProof::from_commit(self.uid, committed))
    }

    /// A ride on a pass: nothing to debit, but the log record is written under the debit
    /// key and committed, so the ride has a transaction MAC for clearing like any other.
    fn log_only(mut self, keys: &KeySource<'_>, record: LogRecord) -> Result<TransactionProof, FareError> {
        let debit_key = keys.card_key(KeyRole::Debit, self.debit_version, &self.uid, FARE_AID)?;
        self.session.reauthenticate(KEY_DEBIT, debit_key)?;
        let record = LogRecord { sequence: self.tmc.saturating_add(1), ..record };
        self.session.write_record(FILE_LOG, &record.encode(), comm_mode(FILE_LOG))?;
        let committed = self.session.commit()?;
        Ok(TransactionProof::from_commit(self.uid, committed))
    }
}

/// What a validator charges for a ride, decided from the card's state inside the tap's
/// transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    /// A ride on the period pass or event ticket in this slot: only logged.
    Ride {
        /// The contract slot.
        slot: u8,
    },
    /// One trip of the trips contract in this slot.
    Trip {
        /// The contract slot.
        slot: u8,
    },
    /// A fare debited from the purse, in minor units.
    Purse {
        /// The fare.
        amount: i32,
    },
    /// Nothing: the ride is refused, and the card is left as it was.
    Refuse,
}

/// The result of [`tap`]: the card as it was, and what was committed (nothing if refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tapped<R> {
    /// The card as read at the start of the tap.
    pub state: CardState,
    /// The caller's verdict, as `decide` returned it.
    pub verdict: R,
    /// What was charged.
    pub charge: Charge,
    /// The balance and trips after, and the transaction proof; `None` when refused.
    pub debited: Option<Debited>,
}

/// A validator's tap in one secure session and at most one transaction: read everything
/// with the read key, let `decide` choose the charge from what the card holds, then
/// switch to the debit key, charge, log and commit. A card pulled away before the commit
/// keeps its old state; a refusal writes nothing.
pub fn tap<T: Transport, R>(
    card: &mut Desfire<T>,
    keys: &KeySource<'_>,
    terminal: Terminal,
    decide: impl FnOnce(&CardState) -> (Charge, R),
) -> Result<Tapped<R>, FareError> {
    let uid = identify(card)?;
    select_fare(card)?;
    let key_versions = key_versions(card)?;
    let debit_version = KeyVersion::new(key_versions.get(usize::from(KEY_DEBIT)).copied().unwrap_or(0))
        .map_err(|_| FareError::NotPersonalised)?;
    let mut session = open_session(card, keys, &uid, KEY_READ, KeyRole::Read)?;
    let state = read_state(&mut session, uid, key_versions)?;
    let (charge, verdict) = decide(&state);
    let tmc = state.tmc;
    let transaction = DebitTransaction { session, uid, debit_version, tmc };
    let record = |event, slot, amount, balance| LogRecord {
        event,
        at: terminal.at,
        device: terminal.device,
        location: terminal.location,
        slot,
        amount,
        balance,
        sequence: 0,
    };
    let debited = match charge {
        Charge::Refuse => None,
        Charge::Ride { slot } => {
            contract_in(&state, slot)?;
            let log = record(LogEvent::Validation, Some(slot), 0, state.purse);
            let proof = transaction.log_only(keys, log)?;
            Some(Debited { balance: state.purse, trips_left: None, proof })
        }
        Charge::Trip { slot } => {
            contract_in(&state, slot)?;
            let trips = state.trips.get(usize::from(slot)).copied().unwrap_or(0);
            if trips < 1 {
                return Err(FareError::Refused(format!("no trips left in slot {slot}")));
            }
            let log = record(LogEvent::TripUsed, Some(slot), 0, state.purse);
            let proof = transaction.debit_and_log(keys, trips_file(slot), 1, log)?;
            Some(Debited { balance: state.purse, trips_left: Some(trips - 1), proof })
        }
        Charge::Purse { amount } => {
            if amount <= 0 {
                return Err(FareError::Refused("a debit is a positive amount".into()));
            }
            if state.purse < amount {
                return Err(FareError::Refused(format!("insufficient balance: {} < {amount}", state.purse)));
            }
            let balance = state.purse - amount;
            let log = record(LogEvent::PurseDebit, None, -amount, balance);
            let proof = transaction.debit_and_log(keys, FILE_PURSE, amount, log)?;
            Some(Debited { balance, trips_left: None, proof })
        }
    };
    Ok(Tapped { state, verdict, charge, debited })
}

fn contract_in(state: &CardState, slot: u8) -> Result<Contract, FareError> {
    state
        .contracts
        .get(usize::from(slot))
        .copied()
        .flatten()
        .ok_or_else(|| FareError::Refused(format!("slot {slot} holds no contract")))
}

/// Debits the purse by `amount` with the read and debit keys, and logs it.
pub fn debit_purse<T: Transport>(
    card: &mut Desfire<T>,
    keys: &KeySource<'_>,
    amount: i32,
    terminal: Terminal,
) -> Result<Debited, FareError> {
    if amount <= 0 {
        return Err(FareError::Refused("a debit is a positive amount".into()));
    }
    let mut transaction = DebitTransaction::open(card, keys)?;
    let balance = transaction.session.get_value(FILE_PURSE, comm_mode(FILE_PURSE))?;
    if balance < amount {
        return Err(FareError::Refused(format!("insufficient balance: {balance} < {amount}")));
    }
    let balance = balance - amount;
    let record = LogRecord {
        event: LogEvent::PurseDebit,
        at: terminal.at,
        device: terminal.device,
        location: terminal.location,
        slot: None,
        amount: -amount,
        balance,
        sequence: 0,
    };
    let proof = transaction.debit_and_log(keys, FILE_PURSE, amount, record)?;
    Ok(Debited { balance, trips_left: None, proof })
}

/// Uses one trip of the trips contract in `slot`, and logs it.
pub fn consume_trip<T: Transport>(
    card: &mut Desfire<T>,
    keys: &KeySource<'_>,
    slot: u8,
    terminal: Terminal,
) -> Result<Debited, FareError> {
    if usize::from(slot) >= CONTRACT_SLOTS {
        return Err(FareError::Refused(format!("slot {slot} does not exist")));
    }
    let mut transaction = DebitTransaction::open(card, keys)?;
    let trips = transaction.session.get_value(trips_file(slot), comm_mode(trips_file(slot)))?;
    if trips < 1 {
        return Err(FareError::Refused(format!("no trips left in slot {slot}")));
    }
    let balance = transaction.session.get_value(FILE_PURSE, comm_mode(FILE_PURSE))?;
    let record = LogRecord {
        event: LogEvent::TripUsed,
        at: terminal.at,
        device: terminal.device,
        location: terminal.location,
        slot: Some(slot),
        amount: 0,
        balance,
        sequence: 0,
    };
    let proof = transaction.debit_and_log(keys, trips_file(slot), 1, record)?;
    Ok(Debited { balance, trips_left: Some(trips - 1), proof })
}
