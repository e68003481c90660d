//! The transaction MAC: the issuer-only proof of each committed card transaction (CityPay
//! 7.7's second MAC; DESFire EV2's TMAC). The card collects the plain data of every
//! command in the transaction into the TMI, and at commit computes
//! `TMV = MACt(SesTMMACKey, TMI)` with `SesTMMACKey = CMAC(K_TM, 5A 00 01 00 80 ||
//! (TMC+1) || UID)`, TMC being the transaction counter (4 bytes, least significant first).
//! Formulas: DESFire Light datasheet MF2DL(H)x0 §10.3.2–§10.3.4 (quoted in public material
//! on AN12343); the session-key derivation is checked against the Proxmark3 client's
//! published vector.
//!
//! The terminal never holds K_TM: it uploads UID, TMC, TMV and TMI, and clearing, holding
//! the transaction-MAC master, derives K_TM for the card, verifies TMV, and only then
//! parses the TMI it proved.

use smartticket_crypto::cmac::{CmacKey, TRUNCATED_MAC_BYTES};
use subtle::ConstantTimeEq;

use super::codes::Command;
use super::files::u24_le;

/// Most bytes a TMI may reach before the card refuses more commands in the transaction;
/// bounds memory on the card, in the upload, and in clearing. A full tap of the fare
/// application (reads of every file and three writes) is about 700 bytes.
pub const TMI_BYTES_MAX: usize = 2048;
/// Bytes of a UID.
pub const UID_BYTES: usize = 7;

/// `SesTMMACKey = CMAC(K_TM, 5A 00 01 00 80 || TMC || UID)`, where `tmc` is the counter
/// value the committed transaction reports (the stored counter plus one).
pub fn session_mac_key(transaction_mac_key: &CmacKey, tmc: u32, uid: &[u8; UID_BYTES]) -> CmacKey {
    session_key(transaction_mac_key, 0x5A, tmc, uid)
}

/// `SesTMENCKey`, the same with label `A5` (used for reader ids; kept for completeness).
pub fn session_enc_key(transaction_mac_key: &CmacKey, tmc: u32, uid: &[u8; UID_BYTES]) -> CmacKey {
    session_key(transaction_mac_key, 0xA5, tmc, uid)
}

fn session_key(key: &CmacKey, label: u8, tmc: u32, uid: &[u8; UID_BYTES]) -> CmacKey {
    let tmc = tmc.to_le_bytes();
    let derived = zeroize::Zeroizing::new(key.mac_parts(&[&[label, 0x00, 0x01, 0x00, 0x80], &tmc, uid]));
    CmacKey::new(&derived)
}

/// `TMV = MACt(SesTMMACKey, TMI)`.
pub fn transaction_mac(
    transaction_mac_key: &CmacKey,
    tmc: u32,
    uid: &[u8; UID_BYTES],
    tmi: &[u8],
) -> [u8; TRUNCATED_MAC_BYTES] {
    session_mac_key(transaction_mac_key, tmc, uid).mac_truncated(&[tmi])
}

/// Checks a TMV in constant time.
pub fn verify_transaction_mac(
    transaction_mac_key: &CmacKey,
    tmc: u32,
    uid: &[u8; UID_BYTES],
    tmi: &[u8],
    tmv: &[u8],
) -> bool {
    let expected = transaction_mac(transaction_mac_key, tmc, uid, tmi);
    tmv.len() == TRUNCATED_MAC_BYTES && bool::from(expected.ct_eq(tmv))
}

/// The transaction MAC input being collected, with the datasheet's update rules (§10.3.4):
/// parameters as on the command interface (offsets and lengths 3 bytes LE, values 4 bytes
/// LE), plain data whatever the communication mode, and zero padding to 16-byte
/// boundaries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tmi {
    bytes: Vec<u8>,
}

/// The TMI would exceed [`TMI_BYTES_MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the transaction is too long for its MAC input")]
pub struct TmiFull;

impl Tmi {
    /// An empty TMI (start of a transaction).
    pub fn new() -> Tmi {
        Tmi::default()
    }

    /// The bytes collected.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether nothing was collected (a commit with nothing to prove).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn push(&mut self, parts: &[&[u8]]) -> Result<(), TmiFull> {
        let added: usize = parts.iter().map(|p| p.len()).sum();
        if self.bytes.len() + added + 15 > TMI_BYTES_MAX {
            return Err(TmiFull);
        }
        for part in parts {
            self.bytes.extend_from_slice(part);
        }
        Ok(())
    }

    fn pad(&mut self) {
        let padded = self.bytes.len().next_multiple_of(16);
        self.bytes.resize(padded, 0);
    }

    /// ReadData: `Cmd || FileNo || Offset || Length || ZeroPad || Data || ZeroPad`.
    pub fn read_data(
        &mut self,
        command: Command,
        file: u8,
        offset: u32,
        length: u32,
        data: &[u8],
    ) -> Result<(), TmiFull> {
        self.push(&[&[command.code(), file], &u24_le(offset), &u24_le(length)])?;
        self.pad();
        self.push(&[data])?;
        self.pad();
        Ok(())
    }

    /// WriteData: `Cmd || FileNo || Offset || Length || ZeroPad || Data || ZeroPad`.
    pub fn write_data(&mut self, command: Command, file: u8, offset: u32, data: &[u8]) -> Result<(), TmiFull> {
        let length = u32::try_from(data.len()).map_err(|_| TmiFull)?;
        self.push(&[&[command.code(), file], &u24_le(offset), &u24_le(length)])?;
        self.pad();
        self.push(&[data])?;
        self.pad();
        Ok(())
    }

    /// GetValue, Credit, Debit, LimitedCredit: `Cmd || FileNo || Value || ZeroPad`.
    pub fn value(&mut self, command: Command, file: u8, value: i32) -> Result<(), TmiFull> {
        self.push(&[&[command.code(), file], &value.to_le_bytes()])?;
        self.pad();
        Ok(())
    }

    /// ReadRecords: `Cmd || FileNo || RecNo || RecCount || ZeroPad || Data || ZeroPad`.
    pub fn read_records(
        &mut self,
        command: Command,
        file: u8,
        first: u32,
        count: u32,
        data: &[u8],
    ) -> Result<(), TmiFull> {
        self.push(&[&[command.code(), file], &u24_le(first), &u24_le(count)])?;
        self.pad();
        self.push(&[data])?;
        self.pad();
        Ok(())
    }

    /// WriteRecord: `Cmd || FileNo || Offset || Length || ZeroPad || Data || ZeroPad`.
    pub fn write_record(&mut self, command: Command, file: u8, offset: u32, data: &[u8]) -> Result<(), TmiFull> {
        self.write_data(command, file, offset, data)
    }
}

/// One step of a transaction, as recovered from a verified TMI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TmiEntry {
    /// Data read from a data file.
    ReadData {
        /// File number.
        file: u8,
        /// Offset.
        offset: u32,
        /// The data.
        data: Vec<u8>,
    },
    /// Data written to a data file.
    WriteData {
        /// File number.
        file: u8,
        /// Offset.
        offset: u32,
        /// The data.
        data: Vec<u8>,
    },
    /// A value read.
    GetValue {
        /// File number.
        file: u8,
        /// Value.
        value: i32,
    },
    /// A credit.
    Credit {
        /// File number.
        file: u8,
        /// Amount.
        amount: i32,
    },
    /// A debit.
    Debit {
        /// File number.
        file: u8,
        /// Amount.
        amount: i32,
    },
    /// A limited credit.
    LimitedCredit {
        /// File number.
        file: u8,
        /// Amount.
        amount: i32,
    },
    /// Records read.
    ReadRecords {
        /// File number.
        file: u8,
        /// The record data.
        data: Vec<u8>,
    },
    /// A record appended.
    WriteRecord {
        /// File number.
        file: u8,
        /// The record data.
        data: Vec<u8>,
    },
}

/// Why a TMI could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("transaction MAC input is malformed at byte {offset}: {why}")]
pub struct TmiParseError {
    /// Where.
    pub offset: usize,
    /// What.
    pub why: &'static str,
}

fn u24_at(bytes: &[u8], at: usize) -> Option<u32> {
    match bytes.get(at..at + 3)? {
        [a, b, c] => Some(u32::from_le_bytes([*a, *b, *c, 0])),
        _ => None,
    }
}

fn i32_at(bytes: &[u8], at: usize) -> Option<i32> {
    let slice: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    Some(i32::from_le_bytes(slice))
}

/// Reads a TMI back into its steps. Data lengths of reads are given by `read_lengths`
/// (file number → bytes per read), since the TMI itself pads them: the fare application
/// knows its file sizes. Only call this on a TMI whose TMV verified.
pub fn parse_tmi(tmi: &[u8], data_length: impl Fn(u8, u8) -> Option<usize>) -> Result<Vec<TmiEntry>, TmiParseError> {
    if tmi.len() > TMI_BYTES_MAX || !tmi.len().is_multiple_of(16) {
        return Err(TmiParseError { offset: 0, why: "length is not a multiple of 16 within the limit" });
    }
    let mut entries = Vec::new();
    let mut at = 0;
    // Each entry is at least one 16-byte block, so the loop is bounded by TMI_BYTES_MAX / 16.
    while at < tmi.len() {
        let fail = |why| TmiParseError { offset: at, why };
        let code = *tmi.get(at).ok_or(fail("truncated"))?;
        let file = *tmi.get(at + 1).ok_or(fail("truncated"))?;
        let command = Command::from_code(code).ok_or(fail("unknown command"))?;
        let header_end = at + 16;
        let entry = match command {
            Command::GetValue | Command::Credit | Command::Debit | Command::LimitedCredit => {
                let value = i32_at(tmi, at + 2).ok_or(fail("truncated value"))?;
                at = header_end;
                match command {
                    Command::GetValue => TmiEntry::GetValue { file, value },
                    Command::Credit => TmiEntry::Credit { file, amount: value },
                    Command::Debit => TmiEntry::Debit { file, amount: value },
                    _ => TmiEntry::LimitedCredit { file, amount: value },
                }
            }
            Command::ReadData
            | Command::ReadData2
            | Command::WriteData
            | Command::WriteData2
            | Command::ReadRecords
            | Command::ReadRecords2
            | Command::WriteRecord
            | Command::WriteRecord2 => {
                let offset = u24_at(tmi, at + 2).ok_or(fail("truncated offset"))?;
                let length = u24_at(tmi, at + 5).ok_or(fail("truncated length"))?;
                let length = match usize::try_from(length).ok().filter(|l| *l > 0) {
                    Some(length) => length,
                    None => data_length(code, file).ok_or(fail("unknown data length"))?,
                };
                let data = tmi.get(header_end..header_end + length).ok_or(fail("data past the end"))?.to_vec();
                at = (header_end + length).next_multiple_of(16);
                match command {
                    Command::ReadData | Command::ReadData2 => TmiEntry::ReadData { file, offset, data },
                    Command::WriteData | Command::WriteData2 => TmiEntry::WriteData { file, offset, data },
                    Command::ReadRecords | Command::ReadRecords2 => TmiEntry::ReadRecords { file, data },
                    _ => TmiEntry::WriteRecord { file, data },
                }
            }
            _ => return Err(fail("command does not belong in a TMI")),
        };
        entries.push(entry);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use hex_literal::hex;

    use super::*;

    // Proxmark3 client, client/src/mifare/desfiretest.c TestTransSessionKeys (commit
    // 1c6abec): K_TM 66A8…697B, UID 04010203040506, stored TMC 8 → the SV carries 9.
    #[test]
    fn proxmark3_transaction_session_keys() {
        let key = CmacKey::new(&hex!("66A8CB93269DC9BC2885B7A91B9C697B"));
        let uid = hex!("04010203040506");
        let expected_mac = CmacKey::new(&hex!("7C1AD2D9C5C08154A0A4914B401A6598"));
        let expected_enc = CmacKey::new(&hex!("119B902A07B18A865B8E1B0060594784"));
        assert_eq!(session_mac_key(&key, 9, &uid).mac(b"probe"), expected_mac.mac(b"probe"));
        assert_eq!(session_enc_key(&key, 9, &uid).mac(b"probe"), expected_enc.mac(b"probe"));
    }

    #[test]
    fn tmi_layout_follows_the_update_rules() {
        let mut tmi = Tmi::new();
        tmi.value(Command::Debit, 0x03, 250).unwrap();
        assert_eq!(tmi.as_bytes(), hex!("DC03FA000000 00000000000000000000"));
        tmi.write_record(Command::WriteRecord, 0x04, 0, &[0xAB; 32]).unwrap();
        assert_eq!(tmi.as_bytes().len(), 16 + 16 + 32);
        assert_eq!(tmi.as_bytes()[16..24], hex!("3B04000000200000"));
        let entries = parse_tmi(tmi.as_bytes(), |_, _| None).unwrap();
        assert_eq!(
            entries,
            vec![TmiEntry::Debit { file: 3, amount: 250 }, TmiEntry::WriteRecord { file: 4, data: vec![0xAB; 32] }]
        );
    }

    #[test]
    fn tmv_verifies_and_any_change_breaks_it() {
        let key = CmacKey::new(&[9; 16]);
        let uid = [4, 1, 2, 3, 4, 5, 6];
        let mut tmi = Tmi::new();
        tmi.value(Command::Debit, 3, 100).unwrap();
        let tmv = transaction_mac(&key, 5, &uid, tmi.as_bytes());
        assert!(verify_transaction_mac(&key, 5, &uid, tmi.as_bytes(), &tmv));
        assert!(!verify_transaction_mac(&key, 6, &uid, tmi.as_bytes(), &tmv), "another counter");
        let mut forged = tmi.clone();
        forged.value(Command::Debit, 3, 1).unwrap();
        assert!(!verify_transaction_mac(&key, 5, &uid, forged.as_bytes(), &tmv), "another TMI");
        assert!(!verify_transaction_mac(&CmacKey::new(&[8; 16]), 5, &uid, tmi.as_bytes(), &tmv), "another card key");
    }

    #[test]
    fn garbage_tmi_is_refused_without_panicking() {
        assert!(parse_tmi(&[0; 15], |_, _| None).is_err());
        assert!(parse_tmi(&[0xFF; 16], |_, _| None).is_err());
        let mut lying = vec![0x3D, 1, 0, 0, 0, 0xFF, 0xFF, 0x00];
        lying.resize(16, 0);
        assert!(parse_tmi(&lying, |_, _| None).is_err(), "a length past the end");
    }
}
