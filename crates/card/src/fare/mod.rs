//! The fare application on a DESFire EV2/EV3 card (DESIGN §3.2): its file layout and
//! access rights, its records ([`records`]), and the host operations ([`ops`]) —
//! personalise, read, load (minting), debit and consume a trip — each one atomic
//! transaction that ends in CommitTransaction and returns the card's transaction MAC.
//!
//! Keys: application key 0 is diversified from the personalisation master, 1 from read,
//! 2 from debit, 3 from credit; the transaction MAC file's key from the transaction-MAC
//! master. A terminal that holds only read, debit and tokenisation keys (a validator's
//! secure module) can read, debit and consume, and nothing else: the card itself refuses
//! a credit under the debit key, and the terminal cannot even derive the credit key.

pub mod ops;
pub mod records;

use smartticket_crypto::diversify::DiversificationInput;
use smartticket_crypto::hsm::{Hsm, HsmError};
use smartticket_crypto::keys::{KeyRef, KeyRole, KeyVersion};

use crate::desfire::files::{Access, AccessRights, CommMode};
use crate::error::CardError;
use records::RecordError;

/// The fare application's id, as sent on the wire (least significant byte first).
pub const FARE_AID: [u8; 3] = [0x01, 0x54, 0x53];
/// Application key numbers.
pub const KEY_MASTER: u8 = 0;
/// The read key.
pub const KEY_READ: u8 = 1;
/// The debit key.
pub const KEY_DEBIT: u8 = 2;
/// The credit key.
pub const KEY_CREDIT: u8 = 3;
/// Keys in the application.
pub const KEY_COUNT: u8 = 4;

/// Environment: card number, profile, discount, expiry (backup data, MAC).
pub const FILE_ENVIRONMENT: u8 = 0x01;
/// Contracts: fixed slots (backup data, full mode).
pub const FILE_CONTRACTS: u8 = 0x02;
/// The purse (value file, MAC).
pub const FILE_PURSE: u8 = 0x03;
/// The event log (cyclic records, MAC).
pub const FILE_LOG: u8 = 0x04;
/// Trips remaining of each contract slot: files 0x05…0x08 (value files, MAC).
pub const FILE_TRIPS_FIRST: u8 = 0x05;
/// The transaction MAC file.
pub const FILE_TMAC: u8 = 0x0F;

/// Contract slots on a card.
pub const CONTRACT_SLOTS: usize = 4;
/// Log records kept (the oldest is overwritten).
pub const LOG_RECORDS: u32 = 8;
/// Largest purse balance in minor units (an operator limit, CityPay 7.9's card limit).
pub const PURSE_BALANCE_MAX: i32 = 1_000_000;
/// Most trips one slot can hold.
pub const TRIPS_MAX: i32 = 1_000;

/// The file number of a slot's trips counter.
pub fn trips_file(slot: u8) -> u8 {
    FILE_TRIPS_FIRST + slot
}

/// The access rights of each file, in one table so the personalisation and the tests
/// agree: read key reads everything, debit key debits and logs, credit key loads.
pub fn access_rights(file: u8) -> AccessRights {
    let key = Access;
    match file {
        FILE_ENVIRONMENT => AccessRights {
            read: key(KEY_READ),
            write: key(KEY_MASTER),
            read_write: key(KEY_MASTER),
            change: key(KEY_MASTER),
        },
        FILE_CONTRACTS => AccessRights {
            read: key(KEY_READ),
            write: key(KEY_CREDIT),
            read_write: key(KEY_CREDIT),
            change: key(KEY_MASTER),
        },
        FILE_LOG => AccessRights {
            read: key(KEY_READ),
            write: key(KEY_DEBIT),
            read_write: key(KEY_CREDIT),
            change: key(KEY_MASTER),
        },
        FILE_TMAC => AccessRights {
            read: Access::FREE,
            write: Access::NEVER,
            read_write: Access::NEVER,
            change: key(KEY_MASTER),
        },
        // The purse and the trips counters: GetValue with the read key, Debit with the debit
        // key, Credit only with the credit key (DESFire grants Credit to the read-write key).
        _ => AccessRights {
            read: key(KEY_READ),
            write: key(KEY_DEBIT),
            read_write: key(KEY_CREDIT),
            change: key(KEY_MASTER),
        },
    }
}

/// The communication mode of each file: contracts travel encrypted, the rest MACed; the
/// TMAC file is public.
pub fn comm_mode(file: u8) -> CommMode {
    match file {
        FILE_CONTRACTS => CommMode::Full,
        FILE_TMAC => CommMode::Plain,
        _ => CommMode::Mac,
    }
}

/// Why a fare operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FareError {
    /// The card refused, misbehaved or left the field.
    #[error(transparent)]
    Card(#[from] CardError),
    /// The HSM does not hold a needed key (e.g. a validator asked to credit).
    #[error(transparent)]
    Hsm(#[from] HsmError),
    /// The card's data is not a valid fare application record.
    #[error("card data: {0}")]
    Record(#[from] RecordError),
    /// The card has no fare application (blank, or another system's card).
    #[error("the card has no SmartTicket fare application")]
    NotPersonalised,
    /// The card is already personalised.
    #[error("the card is already personalised")]
    AlreadyPersonalised,
    /// The operation does not fit the card (no free slot, purse limit, no trips left).
    #[error("{0}")]
    Refused(String),
}

/// Where the card keys of one card come from: an HSM, the system identifier, and the
/// card's UID.
pub struct KeySource<'a> {
    /// The HSM holding the masters.
    pub hsm: &'a dyn Hsm,
    /// The system identifier mixed into every diversification (6–21 bytes).
    pub system_id: &'a [u8],
}

impl KeySource<'_> {
    /// The card's key of `role` at `version`, for application `aid`.
    pub fn card_key(
        &self,
        role: KeyRole,
        version: KeyVersion,
        uid: &[u8; 7],
        aid: [u8; 3],
    ) -> Result<smartticket_crypto::cmac::SecretKey16, FareError> {
        let input = DiversificationInput::new(uid, &aid, self.system_id).map_err(HsmError::from)?;
        Ok(self.hsm.derive_card_key(KeyRef { role, version }, &input)?)
    }
}
