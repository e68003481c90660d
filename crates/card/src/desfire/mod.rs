//! MIFARE DESFire EV2/EV3 native commands, wrapped in ISO/IEC 7816-4 APDUs: command and
//! status codes, file settings and access rights ([`codes`], [`files`]), EV2 secure
//! messaging shared by host and card ([`sm`]), the transaction MAC ([`tmac`]), and the
//! host driver ([`host`]).
//!
//! Wrapping (as every NXP application note and the Proxmark3 client do): `CLA=90, INS=<native
//! command>, P1=P2=00, Lc, data, Le=00`; the answer is `data || 91 <native status>`. Data
//! longer than one frame travels in `AF` continuation frames in both directions.
//!
//! Covered subset (what the fare application uses): SelectApplication, GetVersion,
//! GetCardUID, AuthenticateEV2First/NonFirst (AES), GetKeyVersion, ChangeKey,
//! CreateApplication, CreateStdDataFile, CreateBackupDataFile, CreateValueFile,
//! CreateCyclicRecordFile, CreateTransactionMACFile, GetFileSettings, ChangeFileSettings,
//! ReadData/WriteData, GetValue, Credit, Debit, LimitedCredit, ReadRecords/WriteRecord,
//! CommitTransaction (with TMC/TMV), AbortTransaction. Communication modes plain, MAC and
//! full. Not covered: legacy DES/3DES/EV1 authentication, LRP, linear record files,
//! UpdateRecord, CommitReaderID, delegated applications, originality signatures.

pub mod codes;
pub mod files;
pub mod host;
pub mod sm;
pub mod tmac;

pub use codes::{Command, Status};

/// CLA of ISO-wrapped native commands.
pub const NATIVE_CLA: u8 = 0x90;
/// SW1 of a native status.
pub const NATIVE_SW1: u8 = 0x91;
/// Most data bytes in one command or response frame. DESFire frames carry up to 64 bytes
/// including command, status and CRC; 48 data bytes leaves room for all of them in every
/// mode and is a multiple of the AES block, so continuation frames split cleanly.
pub const FRAME_DATA_BYTES_MAX: usize = 48;
/// Most data bytes in a whole (reassembled) command or response: bounds memory on both
/// sides. The largest exchange of the fare application is a 160-byte read plus padding.
pub const MESSAGE_BYTES_MAX: usize = 1024;

/// A native command frame in an ISO 7816-4 case 4 APDU (`Le = 00`), or case 2 with no data.
pub fn wrap(command: u8, data: &[u8]) -> Vec<u8> {
    let mut apdu = Vec::with_capacity(data.len() + 6);
    apdu.extend_from_slice(&[NATIVE_CLA, command, 0x00, 0x00]);
    if !data.is_empty() {
        // Frames are at most FRAME_DATA_BYTES_MAX long, so the length fits a short Lc.
        apdu.push(u8::try_from(data.len()).unwrap_or(u8::MAX));
        apdu.extend_from_slice(data);
    }
    apdu.push(0x00);
    apdu
}
