//! The fare application's records: 32 bytes each, little-endian, every field at a fixed
//! offset, a format byte first so the layout can evolve. Parsing checks the format and
//! every enumerated value; a card answering garbage gets a typed error, never a guess.

use smartticket_core::Timestamp;

/// Bytes of every record.
pub const RECORD_BYTES: usize = 32;
/// The layout version this build writes and reads.
pub const RECORD_FORMAT: u8 = 1;
/// Seconds from the Unix epoch to 2000-01-01T00:00:00Z, the card epoch: 32 bits of seconds
/// from 2000 last until 2136.
pub const CARD_EPOCH_UNIX_SECS: i64 = 946_684_800;

/// Why card bytes are not a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{record} record: {why}")]
pub struct RecordError {
    /// Which record.
    pub record: &'static str,
    /// What is wrong.
    pub why: &'static str,
}

/// An instant as the card stores it: whole seconds since 2000-01-01 UTC.
pub fn card_time(at: Timestamp) -> u32 {
    let secs = at.unix_micros().div_euclid(1_000_000) - CARD_EPOCH_UNIX_SECS;
    u32::try_from(secs.max(0)).unwrap_or(u32::MAX)
}

/// The instant a card time stands for.
pub fn from_card_time(secs: u32) -> Timestamp {
    Timestamp::from_unix_micros((i64::from(secs) + CARD_EPOCH_UNIX_SECS) * 1_000_000).unwrap_or(Timestamp::EPOCH)
}

struct Fields<'a> {
    bytes: &'a [u8; RECORD_BYTES],
}

impl Fields<'_> {
    fn u8(&self, at: usize) -> u8 {
        self.bytes.get(at).copied().unwrap_or(0)
    }
    fn u16(&self, at: usize) -> u16 {
        u16::from_le_bytes([self.u8(at), self.u8(at + 1)])
    }
    fn u32(&self, at: usize) -> u32 {
        u32::from_le_bytes([self.u8(at), self.u8(at + 1), self.u8(at + 2), self.u8(at + 3)])
    }
    fn i32(&self, at: usize) -> i32 {
        i32::from_le_bytes([self.u8(at), self.u8(at + 1), self.u8(at + 2), self.u8(at + 3)])
    }
    fn u64(&self, at: usize) -> u64 {
        u64::from(self.u32(at)) | u64::from(self.u32(at + 4)) << 32
    }
}

struct Builder {
    bytes: [u8; RECORD_BYTES],
}

impl Builder {
    fn new() -> Builder {
        let mut bytes = [0; RECORD_BYTES];
        bytes[0] = RECORD_FORMAT;
        Builder { bytes }
    }
    fn put(&mut self, at: usize, value: &[u8]) {
        for (slot, byte) in self.bytes.iter_mut().skip(at).zip(value) {
            *slot = *byte;
        }
    }
}

fn fields<'a>(record: &'static str, bytes: &'a [u8]) -> Result<Fields<'a>, RecordError> {
    let bytes: &[u8; RECORD_BYTES] = bytes.try_into().map_err(|_| RecordError { record, why: "not 32 bytes" })?;
    let fields = Fields { bytes };
    if fields.u8(0) != RECORD_FORMAT {
        return Err(RecordError { record, why: "unknown format version" });
    }
    Ok(fields)
}

/// Who the card belongs to and how it may be used (file 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Environment {
    /// The printed card number.
    pub card_number: u64,
    /// 0 anonymous, 1 named, 2 social card.
    pub profile: u8,
    /// Discount category (0 = full fare).
    pub discount_category: u16,
    /// Last day of validity.
    pub expires: Timestamp,
    /// The issuing organisation.
    pub issuer: u16,
}

impl Environment {
    /// The 32 bytes: format, card number (8), profile, discount (2), expiry (4), issuer (2).
    pub fn encode(&self) -> [u8; RECORD_BYTES] {
        let mut b = Builder::new();
        b.put(1, &self.card_number.to_le_bytes());
        b.put(9, &[self.profile]);
        b.put(10, &self.discount_category.to_le_bytes());
        b.put(12, &card_time(self.expires).to_le_bytes());
        b.put(16, &self.issuer.to_le_bytes());
        b.bytes
    }

    /// Reads the 32 bytes.
    pub fn decode(bytes: &[u8]) -> Result<Environment, RecordError> {
        let f = fields("environment", bytes)?;
        if f.u8(9) > 2 {
            return Err(RecordError { record: "environment", why: "unknown profile" });
        }
        Ok(Environment {
            card_number: f.u64(1),
            profile: f.u8(9),
            discount_category: f.u16(10),
            expires: from_card_time(f.u32(12)),
            issuer: f.u16(16),
        })
    }
}

/// The kinds of contract a slot can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContractKind {
    /// A period pass: unlimited rides in its zones between two instants.
    Period,
    /// A number of rides, counted in the slot's trips value file.
    Trips,
    /// An event ticket: entry to one event (with its own validity).
    Event,
}

impl ContractKind {
    fn code(self) -> u8 {
        match self {
            ContractKind::Period => 1,
            ContractKind::Trips => 2,
            ContractKind::Event => 3,
        }
    }

    fn from_code(code: u8) -> Option<ContractKind> {
        match code {
            1 => Some(ContractKind::Period),
            2 => Some(ContractKind::Trips),
            3 => Some(ContractKind::Event),
            _ => None,
        }
    }
}

/// A contract in one slot of file 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Contract {
    /// Period, trips or event.
    pub kind: ContractKind,
    /// The catalogue product.
    pub product: u32,
    /// Identifies the sale (entitlement) this contract delivers: unique on the card, so a
    /// delivery can tell whether it already happened.
    pub serial: u32,
    /// The zones it covers, one bit per zone 1–32.
    pub zones: u32,
    /// First instant of validity.
    pub valid_from: Timestamp,
    /// Instant validity ends (exclusive).
    pub valid_until: Timestamp,
    /// The discount category it was sold under.
    pub discount_category: u16,
    /// Whether it was blocked (cancelled) after loading.
    pub blocked: bool,
}

impl Contract {
    /// The 32 bytes: format, status, kind, product (4), serial (4), zones (4), from (4),
    /// until (4), discount (2). An empty slot is all zeros after the format byte.
    pub fn encode(&self) -> [u8; RECORD_BYTES] {
        let mut b = Builder::new();
        b.put(1, &[if self.blocked { 2 } else { 1 }, self.kind.code()]);
        b.put(3, &self.product.to_le_bytes());
        b.put(7, &self.serial.to_le_bytes());
        b.put(11, &self.zones.to_le_bytes());
        b.put(15, &card_time(self.valid_from).to_le_bytes());
        b.put(19, &card_time(self.valid_until).to_le_bytes());
        b.put(23, &self.discount_category.to_le_bytes());
        b.bytes
    }

    /// The bytes of an empty slot.
    pub fn empty_slot() -> [u8; RECORD_BYTES] {
        Builder::new().bytes
    }

    /// Reads a slot: `None` when empty (or never written since personalisation).
    pub fn decode(bytes: &[u8]) -> Result<Option<Contract>, RecordError> {
        if bytes.len() == RECORD_BYTES && bytes.iter().all(|b| *b == 0) {
            return Ok(None);
        }
        let f = fields("contract", bytes)?;
        let status = f.u8(1);
        if status == 0 {
            return Ok(None);
        }
        if status > 2 {
            return Err(RecordError { record: "contract", why: "unknown status" });
        }
        let kind = ContractKind::from_code(f.u8(2)).ok_or(RecordError { record: "contract", why: "unknown kind" })?;
        Ok(Some(Contract {
            kind,
            product: f.u32(3),
            serial: f.u32(7),
            zones: f.u32(11),
            valid_from: from_card_time(f.u32(15)),
            valid_until: from_card_time(f.u32(19)),
            discount_category: f.u16(23),
            blocked: status == 2,
        }))
    }

    /// Whether it is valid at `at` in `zone` (1–32).
    pub fn covers(&self, at: Timestamp, zone: u8) -> bool {
        let in_zone = (1..=32).contains(&zone) && self.zones & (1_u32 << (zone - 1)) != 0;
        !self.blocked && in_zone && self.valid_from <= at && at < self.valid_until
    }
}

/// What a log record says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogEvent {
    /// Personalisation.
    Issued,
    /// A contract or purse value was loaded.
    Load,
    /// A ride on a contract.
    Validation,
    /// A ride paid from the purse.
    PurseDebit,
    /// A trip of a trips contract used.
    TripUsed,
}

impl LogEvent {
    fn code(self) -> u8 {
        match self {
            LogEvent::Issued => 1,
            LogEvent::Load => 2,
            LogEvent::Validation => 3,
            LogEvent::PurseDebit => 4,
            LogEvent::TripUsed => 5,
        }
    }

    fn from_code(code: u8) -> Option<LogEvent> {
        match code {
            1 => Some(LogEvent::Issued),
            2 => Some(LogEvent::Load),
            3 => Some(LogEvent::Validation),
            4 => Some(LogEvent::PurseDebit),
            5 => Some(LogEvent::TripUsed),
            _ => None,
        }
    }
}

/// One entry of the card's event log (file 4): the last taps, kept on the card so a
/// validator can refuse passback and an inspector can see recent use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogRecord {
    /// What happened.
    pub event: LogEvent,
    /// When.
    pub at: Timestamp,
    /// Which device.
    pub device: u32,
    /// Where (zone 1–32, or a stop code).
    pub location: u16,
    /// The contract slot used, if any.
    pub slot: Option<u8>,
    /// Purse change in minor units (negative for debits).
    pub amount: i32,
    /// Purse balance after the event.
    pub balance: i32,
    /// The transaction counter this record is committed with.
    pub sequence: u32,
}

impl LogRecord {
    /// The 32 bytes: format, event, slot, time (4), device (4), location (2), amount (4),
    /// balance (4), sequence (4).
    pub fn encode(&self) -> [u8; RECORD_BYTES] {
        let mut b = Builder::new();
        b.put(1, &[self.event.code(), self.slot.unwrap_or(0xFF)]);
        b.put(3, &card_time(self.at).to_le_bytes());
        b.put(7, &self.device.to_le_bytes());
        b.put(11, &self.location.to_le_bytes());
        b.put(13, &self.amount.to_le_bytes());
        b.put(17, &self.balance.to_le_bytes());
        b.put(21, &self.sequence.to_le_bytes());
        b.bytes
    }

    /// Reads a log record.
    pub fn decode(bytes: &[u8]) -> Result<LogRecord, RecordError> {
        let f = fields("log", bytes)?;
        let event = LogEvent::from_code(f.u8(1)).ok_or(RecordError { record: "log", why: "unknown event" })?;
        let slot = match f.u8(2) {
            0xFF => None,
            slot if usize::from(slot) < super::CONTRACT_SLOTS => Some(slot),
            _ => return Err(RecordError { record: "log", why: "slot out of range" }),
        };
        Ok(LogRecord {
            event,
            at: from_card_time(f.u32(3)),
            device: f.u32(7),
            location: f.u16(11),
            slot,
            amount: f.i32(13),
            balance: f.i32(17),
            sequence: f.u32(21),
        })
    }
}
