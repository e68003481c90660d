//! File types, communication modes, access rights and the byte layouts of the Create*
//! commands and GetFileSettings (as transcribed from the DESFire EV2 command set in NXP
//! AN12196 §4.3/§5.9 and AN12343). Parsing is total: every length is checked.

use crate::codec::{CodecError, Reader};

/// Why a GetFileSettings answer could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// Too short or too long.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A field has a value the fare application does not use.
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// How a file's data travels after authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommMode {
    /// Plain data, no MAC.
    Plain,
    /// Plain data with a truncated CMAC on command and response.
    Mac,
    /// Encrypted data with a truncated CMAC.
    Full,
}

impl CommMode {
    /// The FileOption byte.
    pub fn option(self) -> u8 {
        match self {
            CommMode::Plain => 0x00,
            CommMode::Mac => 0x01,
            CommMode::Full => 0x03,
        }
    }

    /// Reads the low bits of a FileOption byte.
    pub fn from_option(option: u8) -> Option<CommMode> {
        match option & 0x03 {
            0x00 | 0x02 => Some(CommMode::Plain),
            0x01 => Some(CommMode::Mac),
            0x03 => Some(CommMode::Full),
            _ => None,
        }
    }
}

/// A key number in an access condition: 0–13 a key, 14 free, 15 never.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Access(pub u8);

impl Access {
    /// Anyone, without authentication.
    pub const FREE: Access = Access(0x0E);
    /// Nobody.
    pub const NEVER: Access = Access(0x0F);

    /// Whether a session authenticated with `key` (or none) satisfies this condition.
    pub fn allows(self, key: Option<u8>) -> bool {
        self == Access::FREE || (self != Access::NEVER && key == Some(self.0))
    }
}

/// The four access conditions of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct AccessRights {
    /// Read (data, records, GetValue).
    pub read: Access,
    /// Write (data, records; Debit/LimitedCredit/GetValue on value files).
    pub write: Access,
    /// Read and write (and Credit on value files).
    pub read_write: Access,
    /// Change the file's settings.
    pub change: Access,
}

impl AccessRights {
    /// The two bytes as sent, LSB first: `RW<<4 | Change`, then `Read<<4 | Write`.
    pub fn to_bytes(self) -> [u8; 2] {
        [(self.read_write.0 << 4) | (self.change.0 & 0x0F), (self.read.0 << 4) | (self.write.0 & 0x0F)]
    }

    /// Reads the two bytes.
    pub fn from_bytes(bytes: [u8; 2]) -> AccessRights {
        let [low, high] = bytes;
        AccessRights {
            read_write: Access(low >> 4),
            change: Access(low & 0x0F),
            read: Access(high >> 4),
            write: Access(high & 0x0F),
        }
    }

    /// May a session with `key` read this file?
    pub fn can_read(self, key: Option<u8>) -> bool {
        self.read.allows(key) || self.read_write.allows(key)
    }

    /// May a session with `key` write this file (or debit it)?
    pub fn can_write(self, key: Option<u8>) -> bool {
        self.write.allows(key) || self.read_write.allows(key)
    }

    /// The communication mode effective for an access: plain when the access is free and
    /// no key grants it (DESFire sends free-access data in plain, whatever the file says).
    pub fn effective_mode(self, declared: CommMode, key: Option<u8>, write: bool) -> CommMode {
        let free = if write {
            self.write == Access::FREE || self.read_write == Access::FREE
        } else {
            self.read == Access::FREE || self.read_write == Access::FREE
        };
        let by_key = if write {
            self.write.allows(key) && self.write != Access::FREE
                || self.read_write.allows(key) && self.read_write != Access::FREE
        } else {
            self.read.allows(key) && self.read != Access::FREE
                || self.read_write.allows(key) && self.read_write != Access::FREE
        };
        if free && !by_key { CommMode::Plain } else { declared }
    }
}

/// The kinds of file the fare application uses.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FileKind {
    /// Plain data, written immediately.
    StdData {
        /// Size in bytes.
        size: u32,
    },
    /// Data with a mirror: writes are pending until commit.
    BackupData {
        /// Size in bytes.
        size: u32,
    },
    /// A signed 32-bit value with limits; changes pending until commit.
    Value {
        /// Lowest value.
        lower: i32,
        /// Highest value.
        upper: i32,
        /// Initial value.
        value: i32,
        /// Whether LimitedCredit is allowed.
        limited_credit: bool,
    },
    /// Fixed-size records, the oldest overwritten when full; appends pending until commit.
    CyclicRecord {
        /// Bytes per record.
        record_size: u32,
        /// Records kept (the card keeps one more internally for the pending append).
        max_records: u32,
    },
    /// The transaction MAC file: counter and last MAC.
    TransactionMac,
}

impl FileKind {
    /// The file type byte of GetFileSettings.
    pub fn type_byte(&self) -> u8 {
        match self {
            FileKind::StdData { .. } => 0x00,
            FileKind::BackupData { .. } => 0x01,
            FileKind::Value { .. } => 0x02,
            FileKind::CyclicRecord { .. } => 0x04,
            FileKind::TransactionMac => 0x05,
        }
    }
}

/// What GetFileSettings reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSettings {
    /// Type and its parameters (for value files `value` holds the limited-credit value).
    pub kind: FileKind,
    /// Communication mode.
    pub mode: CommMode,
    /// Access rights.
    pub access: AccessRights,
    /// For record files: how many records are stored.
    pub records: Option<u32>,
}

/// Little-endian 3-byte size as DESFire sends it.
pub fn u24_le(value: u32) -> [u8; 3] {
    let [a, b, c, _] = value.to_le_bytes();
    [a, b, c]
}

fn read_u24(reader: &mut Reader<'_>) -> Result<u32, CodecError> {
    let [a, b, c] = reader.array::<3>()?;
    Ok(u32::from_le_bytes([a, b, c, 0]))
}

fn read_i32(reader: &mut Reader<'_>) -> Result<i32, CodecError> {
    Ok(i32::from_le_bytes(reader.array::<4>()?))
}

impl FileSettings {
    /// Encodes as the card answers GetFileSettings.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.kind.type_byte(), self.mode.option()];
        out.extend_from_slice(&self.access.to_bytes());
        match &self.kind {
            FileKind::StdData { size } | FileKind::BackupData { size } => out.extend_from_slice(&u24_le(*size)),
            FileKind::Value { lower, upper, value, limited_credit } => {
                out.extend_from_slice(&lower.to_le_bytes());
                out.extend_from_slice(&upper.to_le_bytes());
                out.extend_from_slice(&value.to_le_bytes());
                out.push(u8::from(*limited_credit));
            }
            FileKind::CyclicRecord { record_size, max_records } => {
                out.extend_from_slice(&u24_le(*record_size));
                out.extend_from_slice(&u24_le(*max_records));
                out.extend_from_slice(&u24_le(self.records.unwrap_or(0)));
            }
            FileKind::TransactionMac => out.extend_from_slice(&[0x02, 0x00]),
        }
        out
    }

    /// Parses a GetFileSettings answer, refusing unknown types and wrong lengths.
    pub fn parse(bytes: &[u8]) -> Result<FileSettings, SettingsError> {
        let mut reader = Reader::new(bytes);
        let file_type = reader.u8()?;
        let option = reader.u8()?;
        let mode = CommMode::from_option(option).ok_or(SettingsError::Invalid("file option"))?;
        let access = AccessRights::from_bytes(reader.array::<2>()?);
        let mut records = None;
        let kind = match file_type {
            0x00 => FileKind::StdData { size: read_u24(&mut reader)? },
            0x01 => FileKind::BackupData { size: read_u24(&mut reader)? },
            0x02 => FileKind::Value {
                lower: read_i32(&mut reader)?,
                upper: read_i32(&mut reader)?,
                value: read_i32(&mut reader)?,
                limited_credit: reader.u8()? & 0x01 == 0x01,
            },
            0x04 => {
                let record_size = read_u24(&mut reader)?;
                let max_records = read_u24(&mut reader)?;
                records = Some(read_u24(&mut reader)?);
                FileKind::CyclicRecord { record_size, max_records }
            }
            0x05 => {
                let _key_option = reader.u8()?;
                let _key_version = reader.u8()?;
                FileKind::TransactionMac
            }
            _ => return Err(SettingsError::Invalid("file type")),
        };
        reader.expect_end()?;
        Ok(FileSettings { kind, mode, access, records })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_rights_byte_order_matches_an12196() {
        // AN12196 §5.9: NDEF file with Read free, Write/RW/Change key 0 is `00 E0`.
        let ndef = AccessRights { read: Access::FREE, write: Access(0), read_write: Access(0), change: Access(0) };
        assert_eq!(ndef.to_bytes(), [0x00, 0xE0]);
        assert_eq!(AccessRights::from_bytes([0x00, 0xE0]), ndef);
    }

    #[test]
    fn settings_round_trip() {
        let value = FileSettings {
            kind: FileKind::Value { lower: 0, upper: 100_000, value: 0, limited_credit: true },
            mode: CommMode::Full,
            access: AccessRights { read: Access(1), write: Access(2), read_write: Access(3), change: Access(0) },
            records: None,
        };
        assert_eq!(FileSettings::parse(&value.encode()).unwrap(), value);
        assert!(FileSettings::parse(&[0x07, 0, 0, 0]).is_err());
        assert!(FileSettings::parse(&[0x00, 0x03, 0x00]).is_err());
    }
}
