//! GET PROCESSING OPTIONS: the command with the PDOL answer (EMV 4.4 Book 3 §6.5.8), its two
//! response formats, and the Application File Locator it returns (Book 3 §10.2).

use crate::apdu::{Command, StatusWord};
use crate::tlv::{self, Tag, Tlv};

use super::error::{EmvError, Step};
use super::records::WipedTlvs;
use super::select::{child_bytes, single_template};

/// Most AFL entries read. An AFL names one to six files on real cards (the traces in our
/// tests have one to four); the value field could hold 63, each a file to walk.
pub const AFL_ENTRIES_MAX: usize = 16;

/// Most records one AFL entry may span. Real entries span one to five records.
pub const RECORDS_PER_AFL_ENTRY_MAX: usize = 16;

/// Most records read in one tap. Each READ RECORD is a round trip of 5–20 ms over the air;
/// 32 keeps the slowest tap we accept well inside the half second a passenger waits at a gate.
pub const RECORDS_READ_MAX: usize = 32;

/// Status words after which GET PROCESSING OPTIONS is tried once more with an empty PDOL:
/// cards answer these when they dislike the PDOL values (`6985` conditions of use not
/// satisfied, `6984` referenced data not usable, `6A80` incorrect data, `6700` wrong length).
pub(crate) const GPO_RETRY_STATUS_WORDS: [StatusWord; 4] =
    [StatusWord(0x6985), StatusWord(0x6984), StatusWord(0x6A80), StatusWord(0x6700)];

/// CLA and INS of GET PROCESSING OPTIONS (Book 3 §6.5.8).
const GPO_CLA: u8 = 0x80;
const GPO_INS: u8 = 0xA8;

/// The GET PROCESSING OPTIONS command carrying `pdol_answer` in the Command Template `83`.
pub(crate) fn gpo_command(pdol_answer: &[u8]) -> Command {
    let template = Tlv::primitive(Tag(0x83), pdol_answer).encode();
    Command::new(GPO_CLA, GPO_INS, 0x00, 0x00).data(template).le(crate::apdu::SHORT_LE_MAX)
}

/// One record range of the Application File Locator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AflEntry {
    /// Short file identifier, 1–30.
    pub(crate) sfi: u8,
    /// First record to read, at least 1.
    pub(crate) first_record: u8,
    /// Last record to read, at least `first_record`.
    pub(crate) last_record: u8,
}

/// What GET PROCESSING OPTIONS answered.
#[derive(Debug)]
pub(crate) struct ProcessingOptions {
    /// Application Interchange Profile (82).
    pub(crate) aip: [u8; 2],
    /// The records to read.
    pub(crate) afl: Vec<AflEntry>,
    /// For format 2, the whole `77` template (empty for format 1): qVSDC cards put the
    /// track 2 equivalent data (57) here rather than in a record, so it is wiped on drop.
    pub(crate) template: WipedTlvs,
}

/// Reads a GET PROCESSING OPTIONS response: format 1 (`80`: AIP then AFL, no tags) or
/// format 2 (`77` holding `82` and `94` among other objects).
pub(crate) fn parse_response(data: &[u8]) -> Result<ProcessingOptions, EmvError> {
    let misbehaved = |why: String| EmvError::CardMisbehaved { step: Step::GetProcessingOptions, why };
    let tlvs =
        tlv::parse_all(data).map(WipedTlvs).map_err(|error| misbehaved(format!("malformed response: {error}")))?;
    let tlvs = tlvs.0.as_slice();
    let Some(first) = tlvs.first() else {
        return Err(misbehaved("empty response".to_owned()));
    };
    let template = match first.tag {
        Tag(0x80) => single_template(tlvs, Tag(0x80)),
        _ => single_template(tlvs, Tag(0x77)),
    }
    .map_err(misbehaved)?;
    match template.value_bytes() {
        Some(value) => format_1(value),
        None => format_2(template),
    }
}

fn format_1(value: &[u8]) -> Result<ProcessingOptions, EmvError> {
    let Some((&[aip_high, aip_low], afl)) = value.split_first_chunk::<2>() else {
        return Err(EmvError::CardMisbehaved {
            step: Step::GetProcessingOptions,
            why: format!("format 1 response of {} bytes has no AIP", value.len()),
        });
    };
    Ok(ProcessingOptions { aip: [aip_high, aip_low], afl: parse_afl(afl)?, template: WipedTlvs::default() })
}

fn format_2(template: &Tlv) -> Result<ProcessingOptions, EmvError> {
    let missing = |tag: Tag| EmvError::MissingTag { step: Step::GetProcessingOptions, tag };
    let aip = child_bytes(template, Tag(0x82)).ok_or_else(|| missing(Tag(0x82)))?;
    let aip: [u8; 2] = aip.try_into().map_err(|_| EmvError::CardMisbehaved {
        step: Step::GetProcessingOptions,
        why: format!("AIP of {} bytes, not 2", aip.len()),
    })?;
    let afl = child_bytes(template, Tag(0x94)).ok_or_else(|| missing(Tag(0x94)))?;
    Ok(ProcessingOptions { aip, afl: parse_afl(afl)?, template: WipedTlvs(vec![template.clone()]) })
}

/// Reads an AFL: four bytes per entry (SFI in the five high bits with the low three clear,
/// first record ≥ 1, last record ≥ first, records for offline data authentication ≤ the
/// range), within [`AFL_ENTRIES_MAX`], [`RECORDS_PER_AFL_ENTRY_MAX`] and
/// [`RECORDS_READ_MAX`]. An empty AFL is valid: everything may be in the GPO response.
pub(crate) fn parse_afl(bytes: &[u8]) -> Result<Vec<AflEntry>, EmvError> {
    let bad = |why: String| EmvError::BadAfl { why };
    let (chunks, rest) = bytes.as_chunks::<4>();
    if !rest.is_empty() {
        return Err(bad(format!("{} bytes is not a multiple of 4", bytes.len())));
    }
    if chunks.len() > AFL_ENTRIES_MAX {
        return Err(bad(format!("{} entries, at most {AFL_ENTRIES_MAX}", chunks.len())));
    }
    let mut entries = Vec::with_capacity(chunks.len());
    let mut records_total: usize = 0;
    for (index, &[sfi_byte, first_record, last_record, oda_records]) in chunks.iter().enumerate() {
        let sfi = sfi_byte >> 3;
        if sfi_byte & 0x07 != 0 || !(1..=30).contains(&sfi) {
            return Err(bad(format!("entry {index}: SFI byte {sfi_byte:02X} is not an SFI 1-30 shifted left by 3")));
        }
        if first_record == 0 || last_record < first_record {
            return Err(bad(format!("entry {index}: record range {first_record}..={last_record}")));
        }
        let records = usize::from(last_record - first_record) + 1;
        if usize::from(oda_records) > records {
            return Err(bad(format!("entry {index}: {oda_records} records for authentication of {records}")));
        }
        if records > RECORDS_PER_AFL_ENTRY_MAX {
            return Err(bad(format!("entry {index}: {records} records, at most {RECORDS_PER_AFL_ENTRY_MAX}")));
        }
        records_total += records;
        if records_total > RECORDS_READ_MAX {
            return Err(bad(format!("more than {RECORDS_READ_MAX} records in total")));
        }
        entries.push(AflEntry { sfi, first_record, last_record });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpo_command_wraps_the_answer_in_83() {
        let bytes = gpo_command(&[]).encode().unwrap();
        assert_eq!(bytes, [0x80, 0xA8, 0x00, 0x00, 0x02, 0x83, 0x00, 0x00]);
        let bytes = gpo_command(&[0x60, 0xF0, 0xC8]).encode().unwrap();
        assert_eq!(bytes, [0x80, 0xA8, 0x00, 0x00, 0x05, 0x83, 0x03, 0x60, 0xF0, 0xC8, 0x00]);
    }

    /// openemv/emv-utils `tests/emv_initiate_application_processing_test.c`, tests 1 and 2:
    /// the same AIP and AFL in format 1 and in format 2.
    #[test]
    fn both_response_formats_of_emv_utils() {
        let format_1 = [0x80, 0x0E, 0x78, 0x00, 0x08, 0x02, 0x02, 0x00, 0x10, 0x01, 0x04, 0x00, 0x18, 0x01, 0x02, 0x01];
        let options = parse_response(&format_1).unwrap();
        assert_eq!(options.aip, [0x78, 0x00]);
        let ranges: Vec<_> =
            options.afl.iter().map(|entry| (entry.sfi, entry.first_record, entry.last_record)).collect();
        assert_eq!(ranges, [(1, 2, 2), (2, 1, 4), (3, 1, 2)]);
        assert!(options.template.0.is_empty());

        let format_2 = [0x77, 0x0E, 0x82, 0x02, 0x39, 0x00, 0x94, 0x08, 0x18, 0x01, 0x02, 0x01, 0x20, 0x02, 0x04, 0x00];
        let options = parse_response(&format_2).unwrap();
        assert_eq!(options.aip, [0x39, 0x00]);
        let ranges: Vec<_> =
            options.afl.iter().map(|entry| (entry.sfi, entry.first_record, entry.last_record)).collect();
        assert_eq!(ranges, [(3, 1, 2), (4, 2, 4)]);
        assert_eq!(options.template.0.len(), 1);
    }

    /// openemv/emv-utils `tests/emv_read_application_data_test.c`, tests 2 and 7: an SFI byte
    /// with its low bits set, and a last record (0) before the first (1).
    #[test]
    fn malformed_afls_of_emv_utils() {
        let low_bits = [0x09, 0x02, 0x02, 0x00, 0x10, 0x01, 0x04, 0x00, 0x18, 0x01, 0x02, 0x01];
        let backwards = [0x08, 0x02, 0x02, 0x00, 0x10, 0x01, 0x00, 0x00, 0x18, 0x01, 0x02, 0x01];
        for afl in [low_bits, backwards] {
            assert!(matches!(parse_afl(&afl), Err(EmvError::BadAfl { .. })));
        }
    }

    #[test]
    fn afl_limits() {
        // 16 entries of 2 records each: at the total limit of 32.
        let full: Vec<u8> = (1..=16_u8).flat_map(|sfi| [sfi << 3, 1, 2, 0]).collect();
        assert_eq!(parse_afl(&full).unwrap().len(), 16);
        let mut over = full.clone();
        over.extend_from_slice(&[0x08, 1, 1, 0]);
        assert!(matches!(parse_afl(&over), Err(EmvError::BadAfl { .. })));
        // 11 entries of 3 records: 33, one more than RECORDS_READ_MAX.
        let too_many_records: Vec<u8> = (1..=11_u8).flat_map(|sfi| [sfi << 3, 1, 3, 0]).collect();
        assert!(matches!(parse_afl(&too_many_records), Err(EmvError::BadAfl { .. })));
        assert!(matches!(parse_afl(&[0x08, 1, 17, 0]), Err(EmvError::BadAfl { .. })));
        assert!(matches!(parse_afl(&[0xF8, 1, 1, 0]), Err(EmvError::BadAfl { .. })));
        assert!(matches!(parse_afl(&[0x00, 1, 1, 0]), Err(EmvError::BadAfl { .. })));
        assert!(matches!(parse_afl(&[0x08, 1, 2, 3]), Err(EmvError::BadAfl { .. })));
        assert_eq!(parse_afl(&[]).unwrap(), []);
    }
}
