//! Native command codes and status codes (NXP AN12196, AN12343; the Proxmark3 client's
//! `include/protocols.h`). Unknown values are kept, never refused at parse time.

use std::fmt;

/// Native commands SmartTicket sends or the simulator understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Command {
    /// Continue a multi-frame exchange.
    AdditionalFrame = 0xAF,
    /// Select an application by AID (or the PICC level with 000000).
    SelectApplication = 0x5A,
    /// Product and production data.
    GetVersion = 0x60,
    /// The real UID (needed when random IDs are on); full mode.
    GetCardUid = 0x51,
    /// EV2 mutual authentication, first in a transaction.
    AuthenticateEv2First = 0x71,
    /// EV2 mutual authentication keeping TI and the command counter.
    AuthenticateEv2NonFirst = 0x77,
    /// The version byte of a key.
    GetKeyVersion = 0x64,
    /// Replace a key.
    ChangeKey = 0xC4,
    /// Create an application.
    CreateApplication = 0xCA,
    /// Create a standard data file (not transactional).
    CreateStdDataFile = 0xCD,
    /// Create a backup data file (transactional).
    CreateBackupDataFile = 0xCB,
    /// Create a value file (transactional).
    CreateValueFile = 0xCC,
    /// Create a cyclic record file (transactional).
    CreateCyclicRecordFile = 0xC0,
    /// Create the transaction MAC file.
    CreateTransactionMacFile = 0xCE,
    /// File type, communication mode, access rights and size.
    GetFileSettings = 0xF5,
    /// Change a file's communication mode and access rights.
    ChangeFileSettings = 0x5F,
    /// Read a data file (EV1/EV2 native code).
    ReadData = 0xBD,
    /// Read a data file (the ISO-chaining code used by NTAG 424 and DESFire Light).
    ReadData2 = 0xAD,
    /// Write a data file (EV1/EV2 native code).
    WriteData = 0x3D,
    /// Write a data file (NTAG 424 / DESFire Light code).
    WriteData2 = 0x8D,
    /// Read a value file.
    GetValue = 0x6C,
    /// Increase a value file (needs the read-write key).
    Credit = 0x0C,
    /// Decrease a value file.
    Debit = 0xDC,
    /// Increase a value file by at most the last debits.
    LimitedCredit = 0x1C,
    /// Read records (EV1/EV2 native code).
    ReadRecords = 0xBB,
    /// Read records (NTAG 424 / DESFire Light code).
    ReadRecords2 = 0xAB,
    /// Append a record (EV1/EV2 native code).
    WriteRecord = 0x3B,
    /// Append a record (DESFire Light code).
    WriteRecord2 = 0x8B,
    /// Make every pending change of the transaction permanent.
    CommitTransaction = 0xC7,
    /// Discard every pending change.
    AbortTransaction = 0xA7,
}

impl Command {
    /// Every command, for decoding.
    pub const ALL: [Command; 30] = [
        Command::AdditionalFrame,
        Command::SelectApplication,
        Command::GetVersion,
        Command::GetCardUid,
        Command::AuthenticateEv2First,
        Command::AuthenticateEv2NonFirst,
        Command::GetKeyVersion,
        Command::ChangeKey,
        Command::CreateApplication,
        Command::CreateStdDataFile,
        Command::CreateBackupDataFile,
        Command::CreateValueFile,
        Command::CreateCyclicRecordFile,
        Command::CreateTransactionMacFile,
        Command::GetFileSettings,
        Command::ChangeFileSettings,
        Command::ReadData,
        Command::ReadData2,
        Command::WriteData,
        Command::WriteData2,
        Command::GetValue,
        Command::Credit,
        Command::Debit,
        Command::LimitedCredit,
        Command::ReadRecords,
        Command::ReadRecords2,
        Command::WriteRecord,
        Command::WriteRecord2,
        Command::CommitTransaction,
        Command::AbortTransaction,
    ];

    /// The command for a code, if known.
    pub fn from_code(code: u8) -> Option<Command> {
        Command::ALL.into_iter().find(|c| *c as u8 == code)
    }

    /// The code byte.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// A native status (the SW2 of `91 xx`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status(pub u8);

impl Status {
    /// Success.
    pub const OK: Status = Status(0x00);
    /// Nothing changed (e.g. commit with nothing pending).
    pub const NO_CHANGES: Status = Status(0x0C);
    /// Out of EEPROM.
    pub const OUT_OF_EEPROM: Status = Status(0x0E);
    /// Unknown command code.
    pub const ILLEGAL_COMMAND: Status = Status(0x1C);
    /// CRC or MAC mismatch, or bad padding.
    pub const INTEGRITY_ERROR: Status = Status(0x1E);
    /// Key number does not exist.
    pub const NO_SUCH_KEY: Status = Status(0x40);
    /// Command length wrong.
    pub const LENGTH_ERROR: Status = Status(0x7E);
    /// Access rights do not allow this.
    pub const PERMISSION_DENIED: Status = Status(0x9D);
    /// A parameter value is invalid.
    pub const PARAMETER_ERROR: Status = Status(0x9E);
    /// No such application.
    pub const APPLICATION_NOT_FOUND: Status = Status(0xA0);
    /// Authentication failed (or is required).
    pub const AUTHENTICATION_ERROR: Status = Status(0xAE);
    /// More frames follow.
    pub const ADDITIONAL_FRAME: Status = Status(0xAF);
    /// Beyond a file's size or a value's limits.
    pub const BOUNDARY_ERROR: Status = Status(0xBE);
    /// The previous command was not completed; the card aborted.
    pub const COMMAND_ABORTED: Status = Status(0xCA);
    /// Too many files, applications or records.
    pub const COUNT_ERROR: Status = Status(0xCE);
    /// The application or file already exists.
    pub const DUPLICATE_ERROR: Status = Status(0xDE);
    /// Memory fault.
    pub const MEMORY_ERROR: Status = Status(0xEE);
    /// No such file.
    pub const FILE_NOT_FOUND: Status = Status(0xF0);

    /// A short name for logs and errors.
    pub fn name(self) -> &'static str {
        match self {
            Status::OK => "OPERATION_OK",
            Status::NO_CHANGES => "NO_CHANGES",
            Status::OUT_OF_EEPROM => "OUT_OF_EEPROM",
            Status::ILLEGAL_COMMAND => "ILLEGAL_COMMAND_CODE",
            Status::INTEGRITY_ERROR => "INTEGRITY_ERROR",
            Status::NO_SUCH_KEY => "NO_SUCH_KEY",
            Status::LENGTH_ERROR => "LENGTH_ERROR",
            Status::PERMISSION_DENIED => "PERMISSION_DENIED",
            Status::PARAMETER_ERROR => "PARAMETER_ERROR",
            Status::APPLICATION_NOT_FOUND => "APPLICATION_NOT_FOUND",
            Status::AUTHENTICATION_ERROR => "AUTHENTICATION_ERROR",
            Status::ADDITIONAL_FRAME => "ADDITIONAL_FRAME",
            Status::BOUNDARY_ERROR => "BOUNDARY_ERROR",
            Status::COMMAND_ABORTED => "COMMAND_ABORTED",
            Status::COUNT_ERROR => "COUNT_ERROR",
            Status::DUPLICATE_ERROR => "DUPLICATE_ERROR",
            Status::MEMORY_ERROR => "MEMORY_ERROR",
            Status::FILE_NOT_FOUND => "FILE_NOT_FOUND",
            _ => "UNKNOWN",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "91{:02X} {}", self.0, self.name())
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
